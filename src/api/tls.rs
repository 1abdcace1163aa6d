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

/// How long a generated certificate is valid.
pub const GENERATED_VALID_DAYS: i64 = 2 * 365;
/// A generated certificate is replaced at start-up once it is this close to its end.
pub const RENEW_BEFORE_DAYS: i64 = 30;

const DAY_SECS: u64 = 86_400;

/// Whether a generated certificate written at `written` must be replaced at `now` (its file's
/// modification time is when it was made: nothing else writes it).
pub fn needs_renewal(written: std::time::SystemTime, now: std::time::SystemTime) -> bool {
    let age_days = now.duration_since(written).map(|d| (d.as_secs() / DAY_SECS) as i64).unwrap_or(0);
    age_days >= GENERATED_VALID_DAYS - RENEW_BEFORE_DAYS
}

/// Creates a self-signed certificate for `names` unless a current one exists at the paths: valid from a
/// day ago for [`GENERATED_VALID_DAYS`], and made again at start-up [`RENEW_BEFORE_DAYS`] before it ends
/// (browsers then ask once more to accept it).
pub fn ensure_self_signed(cert: &Path, key: &Path, names: &[String]) -> Result<(), ApiTlsError> {
    use std::os::unix::fs::OpenOptionsExt;
    if cert.exists() && key.exists() {
        let written = std::fs::metadata(cert)
            .and_then(|m| m.modified())
            .map_err(|source| ApiTlsError::Io { path: cert.into(), source })?;
        if !needs_renewal(written, std::time::SystemTime::now()) {
            return Ok(());
        }
        log::warn!(cert = cert.display().to_string().as_str(); "the generated console certificate is near its end: making a new one");
    }
    let kp = rcgen::KeyPair::generate().map_err(|e| ApiTlsError::Generate(e.to_string()))?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(|e| ApiTlsError::Generate(e.to_string()))?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "polewatch console");
    let today = jiff::tz::TimeZone::UTC.to_datetime(jiff::Timestamp::now()).date();
    let day = |d: jiff::civil::Date| rcgen::date_time_ymd(i32::from(d.year()), d.month() as u8, d.day() as u8);
    let span = |n: i64| jiff::Span::new().days(n);
    let (from, until) = today
        .checked_sub(span(1))
        .and_then(|f| today.checked_add(span(GENERATED_VALID_DAYS)).map(|u| (f, u)))
        .map_err(|e| ApiTlsError::Generate(e.to_string()))?;
    params.not_before = day(from);
    params.not_after = day(until);
    let c = params.self_signed(&kp).map_err(|e| ApiTlsError::Generate(e.to_string()))?;
    if let Some(d) = cert.parent() {
        std::fs::create_dir_all(d).map_err(|source| ApiTlsError::Io { path: d.into(), source })?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(key)
        .map_err(|source| ApiTlsError::Io { path: key.into(), source })?;
    std::io::Write::write_all(&mut f, kp.serialize_pem().as_bytes())
        .map_err(|source| ApiTlsError::Io { path: key.into(), source })?;
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
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| ApiTlsError::Pem { path: key.into(), what: "private key" })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn generated_certificates_are_renewed_a_month_before_they_end() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        let day = Duration::from_secs(DAY_SECS);
        assert!(!needs_renewal(t0, t0));
        assert!(!needs_renewal(t0, t0 + day * 699));
        assert!(needs_renewal(t0, t0 + day * 700));
        assert!(!needs_renewal(t0 + day, t0), "a file from the future is not renewed in a loop");
    }
}
