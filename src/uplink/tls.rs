//! TLS for the broker connection: rustls with the ring provider (one provider for the whole binary),
//! server verified against the configured CA, optional client certificate (mTLS). No plaintext here.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} is not a usable PEM file: {reason}", path.display())]
    BadPem { path: PathBuf, reason: String },
    #[error("CA certificate in {} rejected: {reason}", path.display())]
    BadCa { path: PathBuf, reason: String },
    #[error("client certificate/key rejected: {0}")]
    BadClientCert(String),
}

/// Installs ring as the process-wide rustls provider; a second install is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let data = std::fs::read(path).map_err(|source| TlsError::Read { path: path.into(), source })?;
    let certs = CertificateDer::pem_slice_iter(&data)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem { path: path.into(), reason: e.to_string() })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate { path: path.into() });
    }
    Ok(certs)
}

pub fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca)? {
        roots.add(c).map_err(|e| TlsError::BadCa { path: ca.into(), reason: e.to_string() })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::BadClientCert(e.to_string()))?
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let chain = certs(cert)?;
            let data = std::fs::read(key).map_err(|source| TlsError::Read { path: key.into(), source })?;
            let key = PrivateKeyDer::from_pem_slice(&data)
                .map_err(|e| TlsError::BadPem { path: key.into(), reason: e.to_string() })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| TlsError::BadClientCert(e.to_string()))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}
