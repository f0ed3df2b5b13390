//! Network faults for tests: network namespaces joined by a bridge, whose links a test cuts
//! and heals ([`Net`]), and a TCP proxy that delays every byte it carries ([`DelayProxy`]).

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Network namespaces made for one test, each joined to a bridge in a hub namespace by a
/// veth pair, on a /24 of their own; the test's own namespace joins the bridge too. All of it
/// is removed when dropped.
pub struct Net {
    tag: String,
    /// First three octets of the subnet.
    pub subnet: String,
    hub: String,
    members: Vec<String>,
}

/// Runs `ip args`, answering its error output on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    /// The hub with its bridge, and this namespace's link to it at `SUBNET.100`. Fails
    /// (with why) where namespaces cannot be made: not root, no `ip`, no veth support.
    pub fn new() -> Result<Net, String> {
        let pid = std::process::id();
        let tag = format!("ts{}", pid % 100_000);
        let net = Net {
            subnet: format!("10.{}.{}", 200 + pid % 50, (pid / 50) % 250),
            hub: format!("{tag}hub"),
            tag,
            members: Vec::new(),
        };
        let (hub, root, root_peer) = (
            net.hub.clone(),
            format!("{}r", net.tag),
            format!("{}rb", net.tag),
        );
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        ip(&[
            "link", "add", &root, "type", "veth", "peer", "name", &root_peer,
        ])?;
        ip(&["link", "set", &root_peer, "netns", &hub])?;
        ip(&["-n", &hub, "link", "set", &root_peer, "master", "br0", "up"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}.100/24", net.subnet),
            "dev",
            &root,
        ])?;
        ip(&["link", "set", &root, "up"])?;
        Ok(net)
    }

    /// A new namespace `name` joined to the bridge at `SUBNET.host`; returns the namespace's
    /// name and its address.
    pub fn add(&mut self, name: &str, host: u8) -> Result<(String, String), String> {
        let ns = format!("{}{name}", self.tag);
        let (inner, outer) = (format!("{ns}a"), format!("{ns}b"));
        ip(&["netns", "add", &ns])?;
        self.members.push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&[
            "link", "add", &inner, "type", "veth", "peer", "name", &outer,
        ])?;
        ip(&["link", "set", &inner, "netns", &ns])?;
        ip(&["link", "set", &outer, "netns", &self.hub])?;
        ip(&[
            "-n", &self.hub, "link", "set", &outer, "master", "br0", "up",
        ])?;
        let addr = format!("{}.{host}", self.subnet);
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            &inner,
        ])?;
        ip(&["-n", &ns, "link", "set", &inner, "up"])?;
        Ok((ns, addr))
    }

    /// Cuts namespace `ns` off the bridge: nothing reaches it or leaves it.
    pub fn cut(&self, ns: &str) {
        ip(&["-n", &self.hub, "link", "set", &format!("{ns}b"), "down"]).unwrap();
    }

    /// Joins namespace `ns` to the bridge again.
    pub fn heal(&self, ns: &str) {
        ip(&["-n", &self.hub, "link", "set", &format!("{ns}b"), "up"]).unwrap();
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes the links in it, and a veth goes with its peer.
        for ns in self.members.iter().chain(std::iter::once(&self.hub)) {
            let _ = ip(&["netns", "del", ns]);
        }
        let _ = ip(&["link", "del", &format!("{}r", self.tag)]);
    }
}

/// A TCP proxy on loopback that holds every chunk it carries, in both directions, for a
/// fixed delay before passing it on (a slow link, without limiting its bandwidth).
pub struct DelayProxy {
    /// The address to connect to instead of the upstream.
    pub addr: String,
    upstream: Arc<Mutex<Option<String>>>,
}

impl DelayProxy {
    /// Starts the proxy; connections wait for [`DelayProxy::forward_to`].
    pub async fn start(delay: Duration) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream: Arc<Mutex<Option<String>>> = Arc::default();
        let up = upstream.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let up = up.clone();
                tokio::spawn(async move {
                    let target = loop {
                        if let Some(t) = up.lock().unwrap().clone() {
                            break t;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    };
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::spawn(delayed_copy(cr, sw, delay));
                    tokio::spawn(delayed_copy(sr, cw, delay));
                });
            }
        });
        DelayProxy { addr, upstream }
    }

    /// Where connections go.
    pub fn forward_to(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = Some(upstream.to_string());
    }
}

/// Copies `from` to `to`, each chunk sent `delay` after it was read (order kept).
async fn delayed_copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    });
    let mut buf = vec![0; 64 << 10];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let at = tokio::time::Instant::now() + delay;
                if tx.send((at, buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}
