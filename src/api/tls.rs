//! The console's TLS: the certificate and key named in `[api]`, or a self-signed pair generated on first
//! start and kept beside the store (a laptop in the cabinet accepts it once, by fingerprint).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ApiTlsError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: not a usable PEM {what}", path.display())]
    Pem { path: PathBuf, what: &'static str },
    #[error("certificate generation failed: {0}")]
    Generate(String),
    #[error("TLS configuration rejected: {0}")]
    Config(String),
}

/// Where the generated pair goes when none is configured.
pub fn generated_paths(state_dir: &Path) -> (PathBuf, PathBuf) {
    (state_dir.join("api-cert.pem"), state_dir.join("api-key.pem"))
}

/// Creates a self-signed certificate for `names` unless one exists at the paths.
pub fn ensure_self_signed(cert: &Path, key: &Path, names: &[String]) -> Result<(), ApiTlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    if cert.exists() && key.exists() {
        return Ok(());
    }
    let kp = rcgen::KeyPair::generate().map_err(|e| ApiTlsError::Generate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| ApiTlsError::Generate(e.to_string()))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "polewatch console");
    let c = params.self_signed(&kp).map_err(|e| ApiTlsError::Generate(e.to_string()))?;
    if let Some(d) = cert.parent() {
        std::fs::create_dir_all(d).map_err(|source| ApiTlsError::Io { path: d.into(), source })?;
    }
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(key).map_err(|source| ApiTlsError::Io { path: key.into(), source })?;
    std::io::Write::write_all(&mut f, kp.serialize_pem().as_bytes()).map_err(|source| ApiTlsError::Io { path: key.into(), source })?;
    std::fs::write(cert, c.pem()).map_err(|source| ApiTlsError::Io { path: cert.into(), source })?;
    log::warn!(cert = cert.display().to_string().as_str(); "no [api] tls_cert configured: generated a self-signed certificate for the console");
    Ok(())
}

pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, ApiTlsError> {
    let cert_pem = std::fs::read(cert).map_err(|source| ApiTlsError::Io { path: cert.into(), source })?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ApiTlsError::Pem { path: cert.into(), what: "certificate" })?;
    if chain.is_empty() {
        return Err(ApiTlsError::Pem { path: cert.into(), what: "certificate" });
    }
    let key_pem = std::fs::read(key).map_err(|source| ApiTlsError::Io { path: key.into(), source })?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| ApiTlsError::Pem { path: key.into(), what: "private key" })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ApiTlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| ApiTlsError::Config(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
