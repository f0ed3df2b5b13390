//! A listener's TLS settings and one connection's handshake.

use super::watch::Identity;
use super::{invalid, CertFiles, Trust};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Which client certificates a listener asks for.
#[derive(Clone, Debug)]
pub enum ClientAuth {
    /// None (S3 clients, operators).
    None,
    /// Asked for and verified against the trust when presented; clients without one are
    /// served too (a coordinator's admin listener: operators have none, nodes and peers do).
    Optional(Arc<Trust>),
    /// Required: a client without a certificate the trust accepts cannot finish the
    /// handshake (a node's listener).
    Required(Arc<Trust>),
}

/// A listener's TLS settings: HTTP/1.1 over TLS 1.2 or 1.3 with the pair `files`, read again
/// when the files change, asking clients for certificates as `clients` says. Fails if the
/// files do not load now.
pub fn server_config(
    files: &CertFiles,
    clients: ClientAuth,
) -> io::Result<Arc<rustls::ServerConfig>> {
    let b = rustls::ServerConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?;
    let mutual = !matches!(clients, ClientAuth::None);
    let b = match clients {
        ClientAuth::None => b.with_no_client_auth(),
        ClientAuth::Optional(t) => b.with_client_cert_verifier(t.clients(false)),
        ClientAuth::Required(t) => b.with_client_cert_verifier(t.clients(true)),
    };
    let mut c = b.with_cert_resolver(Identity::new(files)?);
    if mutual {
        // A resumed session skips the client certificate's verification: every connection
        // makes a full handshake, so a revoked or expired certificate is refused at its next
        // connection.
        c.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        c.send_tls13_tickets = 0;
    }
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(c))
}

/// What a plain-HTTP client on a TLS port reads before the connection closes.
const SPEAK_TLS: &str = "This port speaks HTTPS (TLS): use an https:// URL.\n";

/// Accepts one TLS connection on `stream` within `deadline`. A client that starts with
/// anything but a TLS handshake record (plain HTTP) gets a `400` saying to use `https://`
/// and `Ok(None)`.
pub async fn accept(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    deadline: Duration,
) -> io::Result<Option<tokio_rustls::server::TlsStream<TcpStream>>> {
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out");
    let mut first = [0u8; 1];
    let n = tokio::time::timeout(deadline, stream.peek(&mut first))
        .await
        .map_err(|_| timed_out())??;
    // 0x16: a TLS handshake record.
    if n == 1 && first[0] != 0x16 {
        let mut stream = stream;
        let answer = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{SPEAK_TLS}",
            SPEAK_TLS.len()
        );
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
        return Ok(None);
    }
    let tls = tokio::time::timeout(deadline, acceptor.accept(stream))
        .await
        .map_err(|_| timed_out())??;
    Ok(Some(tls))
}
