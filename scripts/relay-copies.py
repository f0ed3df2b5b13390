#!/usr/bin/env python3
"""What a zero-copy relay would buy the coordinator hop of a GET on this machine.

A sender streams a file from page cache with sendfile (what a node does for a raw read), a
relay forwards it to a receiver over loopback TCP (what the coordinator does), the receiver
reads it into a buffer (the client). Three relays, alternating, ROUNDS rounds each:

  copy    recv into a user buffer, send from it (today's coordinator: the bytes are in user
          memory, where blake3 verifies them)
  splice  socket -> pipe -> socket with splice(2): no user-space copy, but nothing can verify
          the bytes on the way
  tee     splice, plus tee(2) of every piece into a second pipe read into a user buffer: the
          cheapest way to still see (and hash) every byte while the bytes themselves are
          spliced (the hash itself is left out, so this flatters tee)

Prints MB/s of each round and the medians. Usage: scripts/relay-copies.py [ROUNDS=5] [MIB=256]
"""
import ctypes
import fcntl
import os
import socket
import statistics
import sys
import tempfile
import threading
import time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
SIZE = (int(sys.argv[2]) if len(sys.argv) > 2 else 256) << 20
PIECE = 1 << 20
F_SETPIPE_SZ = 1031
LIBC = ctypes.CDLL(None, use_errno=True)


def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def sender(ls, path):
    conn, _ = ls.accept()
    fd = os.open(path, os.O_RDONLY)
    off = 0
    while off < SIZE:
        off += os.sendfile(conn.fileno(), fd, off, SIZE - off)
    os.close(fd)
    conn.close()


def receiver(ls, out):
    conn, _ = ls.accept()
    buf = bytearray(PIECE)
    got = 0
    while True:
        n = conn.recv_into(buf)
        if n == 0:
            break
        got += n
    out.append(got)


def pipe():
    r, w = os.pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, PIECE)
    return r, w


def relay(mode, up, down):
    if mode == "copy":
        buf = bytearray(PIECE)
        view = memoryview(buf)
        while True:
            n = up.recv_into(buf)
            if n == 0:
                return
            down.sendall(view[:n])
    r, w = pipe()
    r2, w2 = pipe()
    seen = bytearray(PIECE)
    while True:
        n = os.splice(up.fileno(), w, PIECE)
        if n == 0:
            return
        if mode == "tee":
            if LIBC.tee(r, w2, ctypes.c_size_t(n), 0) != n:
                raise OSError(ctypes.get_errno(), "tee")
            got = 0
            while got < n:
                got += os.readv(r2, [memoryview(seen)[got:n]])
        left = n
        while left:
            left -= os.splice(r, down.fileno(), left)


def once(mode, path):
    ls1, ls2 = listener(), listener()
    threading.Thread(target=sender, args=(ls1, path), daemon=True).start()
    out = []
    rt = threading.Thread(target=receiver, args=(ls2, out))
    rt.start()
    up = socket.create_connection(ls1.getsockname())
    down = socket.create_connection(ls2.getsockname())
    t0 = time.time()
    relay(mode, up, down)
    down.close()
    rt.join()
    elapsed = time.time() - t0
    up.close()
    assert out[0] == SIZE, (mode, out[0])
    return SIZE / elapsed / 1e6


def main():
    with tempfile.NamedTemporaryFile(dir=".") as f:
        f.write(os.urandom(SIZE))
        f.flush()
        with open(f.name, "rb") as g:  # page cache
            while g.read(PIECE):
                pass
        runs = {"copy": [], "splice": [], "tee": []}
        for r in range(ROUNDS):
            for mode in runs:
                runs[mode].append(once(mode, f.name))
            print(f"round {r + 1}: " + ", ".join(f"{m} {v[-1]:.0f} MB/s" for m, v in runs.items()))
        print("medians: " + ", ".join(f"{m} {statistics.median(v):.0f} MB/s" for m, v in runs.items()))


if __name__ == "__main__":
    main()
