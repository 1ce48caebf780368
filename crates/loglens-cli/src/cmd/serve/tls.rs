//! TLS for serve's stream listeners: HTTPS, and syslog or GELF over TCP (syslog over TLS as
//! RFC 5425 frames it). The configuration comes from PEM files; each accepted connection
//! completes its handshake before a byte of it is read as a request or a frame.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A listener's TLS configuration.
pub type Config = Arc<rustls::ServerConfig>;

/// An accepted connection after its handshake.
pub type Stream = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

/// The configuration from a PEM certificate chain (the server's certificate first) and its PEM
/// private key (PKCS#8, PKCS#1 or SEC1); errors name the file at fault.
pub fn config(cert: &Path, key: &Path) -> anyhow::Result<Config> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("TLS certificate {}", cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "TLS certificate {}: no certificate in it",
        cert.display()
    );
    let private = PrivateKeyDer::from_pem_file(key).with_context(|| format!("TLS key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .with_context(|| {
            format!(
                "TLS key {} does not go with certificate {}",
                key.display(),
                cert.display()
            )
        })?;
    Ok(Arc::new(config))
}

/// The connection once its handshake is done; `None` when the client failed it (plain text
/// on a TLS port, a certificate it does not trust): its alert is sent and the connection
/// ends at once, instead of an answer whose write would wait for the handshake.
pub fn accept(config: &Config, stream: TcpStream) -> Option<Stream> {
    let connection = rustls::ServerConnection::new(config.clone()).ok()?;
    let mut tls = rustls::StreamOwned::new(connection, stream);
    tls.conn.complete_io(&mut tls.sock).ok()?;
    Some(tls)
}

/// Ends a connection cleanly (`close_notify`), so the client can tell it from a cut one.
pub fn close(mut stream: Stream) {
    stream.conn.send_close_notify();
    let _ = stream.flush();
}
