//! Chunking and checksums shared by the store implementations.
//!
//! A shard is a sequence of chunks of `chunk_size` bytes (the last may be shorter). Each
//! stored chunk is `blake3(data) || data`, so a read verifies exactly the chunks it touches.

use crate::error::{Result, StoreError};
use bytes::{Bytes, BytesMut};

/// Bytes of checksum in front of every stored chunk.
pub const CHUNK_HASH_LEN: usize = 32;

/// Collects appended bytes into sealed, checksummed chunks.
pub struct ChunkBuffer {
    chunk_size: usize,
    buf: BytesMut,
    /// Total bytes appended.
    pub length: u64,
}

impl ChunkBuffer {
    /// A buffer producing chunks of `chunk_size` data bytes.
    pub fn new(chunk_size: u32) -> Self {
        let chunk_size = chunk_size as usize;
        ChunkBuffer {
            chunk_size,
            buf: BytesMut::new(),
            length: 0,
        }
    }

    /// Appends `data`, calling `emit` with each chunk that becomes full (as stored bytes:
    /// checksum then data).
    pub fn push(
        &mut self,
        mut data: &[u8],
        mut emit: impl FnMut(Bytes) -> Result<()>,
    ) -> Result<()> {
        self.length += data.len() as u64;
        while !data.is_empty() {
            if self.buf.is_empty() {
                self.buf.reserve(CHUNK_HASH_LEN + self.chunk_size);
                self.buf.extend_from_slice(&[0u8; CHUNK_HASH_LEN]);
            }
            let room = CHUNK_HASH_LEN + self.chunk_size - self.buf.len();
            let take = room.min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() == CHUNK_HASH_LEN + self.chunk_size {
                emit(self.seal())?;
            }
        }
        Ok(())
    }

    /// The final partial chunk, if any.
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.buf.is_empty()).then(|| self.seal())
    }

    fn seal(&mut self) -> Bytes {
        let mut chunk = self.buf.split();
        let hash = blake3::hash(&chunk[CHUNK_HASH_LEN..]);
        chunk[..CHUNK_HASH_LEN].copy_from_slice(hash.as_bytes());
        chunk.freeze()
    }
}

/// Checks a stored chunk and returns its data bytes (no copy).
pub fn verify_chunk(stored: Bytes, what: &dyn std::fmt::Display) -> Result<Bytes> {
    if stored.len() < CHUNK_HASH_LEN {
        return Err(StoreError::Corrupt(format!("{what}: chunk too short")));
    }
    let data = stored.slice(CHUNK_HASH_LEN..);
    if blake3::hash(&data).as_bytes() != &stored[..CHUNK_HASH_LEN] {
        return Err(StoreError::Corrupt(format!("{what}: checksum mismatch")));
    }
    Ok(data)
}

/// Verifies records (`blake3(data) || data` each, back to back in `records`) of chunks
/// `first..` of a shard with `chunk_size` data bytes per chunk, and returns `[offset,
/// offset+len)` of the shard as slices of `records` (no copy). A record whose hash does not
/// match, or records that end short, are [`StoreError::Corrupt`].
pub fn verify_records(
    records: Bytes,
    chunk_size: u32,
    first: u64,
    offset: u64,
    len: u64,
    what: &dyn std::fmt::Display,
) -> Result<Vec<Bytes>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let stored = CHUNK_HASH_LEN + chunk_size as usize;
    let mut chunks = Vec::with_capacity(records.len() / stored + 1);
    let mut pos = 0usize;
    while pos < records.len() {
        let n = stored.min(records.len() - pos);
        chunks.push(verify_chunk(records.slice(pos..pos + n), what)?);
        pos += n;
    }
    let have: u64 = chunks.iter().map(|c| c.len() as u64).sum();
    if first * chunk_size as u64 + have < offset + len || first * (chunk_size as u64) > offset {
        return Err(StoreError::Corrupt(format!(
            "{what}: records cover {have} bytes from chunk {first}, not {offset}+{len}"
        )));
    }
    Ok(assemble(chunks, chunk_size, first, offset, len))
}

/// `[offset, offset+len)` of a shard as slices of its verified chunks `first..` (no copy).
pub fn assemble(
    chunks: Vec<Bytes>,
    chunk_size: u32,
    first: u64,
    offset: u64,
    len: u64,
) -> Vec<Bytes> {
    let mut skip = (offset - first * chunk_size as u64) as usize;
    let mut left = len as usize;
    let mut out = Vec::with_capacity(chunks.len());
    for c in chunks {
        if left == 0 {
            break;
        }
        let from = skip.min(c.len());
        skip -= from;
        let take = (c.len() - from).min(left);
        if take > 0 {
            out.push(c.slice(from..from + take));
            left -= take;
        }
    }
    out
}

/// Reads exactly `len` bytes at `offset` into a new buffer, without zeroing it first (the
/// reads fill the vector's spare capacity).
pub(crate) fn read_at(f: &std::fs::File, offset: u64, len: usize) -> std::io::Result<Bytes> {
    let mut buf: Vec<u8> = Vec::with_capacity(len);
    while buf.len() < len {
        let at = offset + buf.len() as u64;
        match rustix::io::pread(f, rustix::buffer::spare_capacity(&mut buf), at) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // The allocation may hold more than was asked for, and the reads may have filled it.
    buf.truncate(len);
    Ok(Bytes::from(buf))
}
