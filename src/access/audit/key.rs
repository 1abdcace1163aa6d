//! The audit chain's HMAC key (`access.audit_key_file`), kept outside the store so that whoever holds a
//! copy of the store cannot re-chain an edited log.
//!
//! File format: the key as hex (upper or lower case), at least 64 digits (32 bytes), surrounding
//! whitespace ignored. Hex so that it can be printed, copied into a safe and typed back in. A new key is
//! 32 bytes from the OS random source, written as 64 lowercase digits and a newline, mode 0600.
//! A key file others can read is reported by the configuration checks (`config::files`), not refused
//! here: refusing would stop the daemon, and its accesses' auditing, over a chmod.
//!
//! Beside the key, `<key file>.head` records the chain head the key was last used with ([`ChainHead`],
//! JSON `{seq, hash, at_ms}`), so that a log that comes back shorter, empty or with another entry at that
//! place (a store lost and silently recreated, a truncated tail) is refused instead of continued.

use super::Digest;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

type HmacSha256 = Hmac<Sha256>;

pub const MIN_KEY_BYTES: usize = 32;

/// Why a key file's text is not a key.
#[derive(Debug, thiserror::Error)]
pub enum KeyTextError {
    #[error("not hex: expected hex digits only, an even number of them")]
    NotHex,
    #[error("{0} bytes of key; at least {MIN_KEY_BYTES} (64 hex digits) are needed")]
    TooShort(usize),
    #[error("{0}")]
    Key(Box<KeyError>),
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("audit key file {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("audit key file {}: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "audit key file {} is missing but the audit log has entries: a new key would hide tampering; restore the key from its backup",
        path.display()
    )]
    MissingWithLog { path: PathBuf },
    #[error("cannot get random bytes for a new audit key: {0}")]
    Random(String),
    #[error("audit key: {0}")]
    Invalid(String),
}

impl From<KeyError> for crate::access::AuditError {
    fn from(e: KeyError) -> Self {
        crate::access::AuditError::Key(e.to_string())
    }
}

/// An HMAC-SHA256 key, keyed once: each MAC clones the prepared state instead of re-keying.
#[derive(Clone)]
pub struct AuditKey {
    keyed: HmacSha256,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

impl AuditKey {
    pub fn from_bytes(key: &[u8]) -> Result<AuditKey, KeyError> {
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::Invalid(format!("{} bytes; at least {MIN_KEY_BYTES} are needed", key.len())));
        }
        let keyed = HmacSha256::new_from_slice(key).map_err(|e| KeyError::Invalid(e.to_string()))?;
        Ok(AuditKey { keyed })
    }

    /// Parses the file format (hex, at least 64 digits).
    pub fn parse(text: &str) -> Result<AuditKey, KeyTextError> {
        let t = text.trim().to_ascii_lowercase();
        let bytes = super::hex::decode(&t).ok_or(KeyTextError::NotHex)?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyTextError::TooShort(bytes.len()));
        }
        AuditKey::from_bytes(&bytes).map_err(|e| KeyTextError::Key(Box::new(e)))
    }

    /// A new random key, and its file form.
    pub fn generate() -> Result<(AuditKey, String), KeyError> {
        let mut bytes = [0u8; MIN_KEY_BYTES];
        getrandom::getrandom(&mut bytes).map_err(|e| KeyError::Random(e.to_string()))?;
        Ok((AuditKey::from_bytes(&bytes)?, format!("{}\n", super::hex::encode(&bytes))))
    }

    pub fn load(path: &Path) -> Result<AuditKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io { path: path.to_path_buf(), source })?;
        AuditKey::parse(&text).map_err(|e| KeyError::Malformed { path: path.to_path_buf(), reason: e.to_string() })
    }

    /// Loads the key, or creates one when the file is missing and the log is empty. A missing key with a
    /// non-empty log is an error: a new key would make every old entry look forged and every forged one
    /// look new.
    pub fn load_or_create(path: &Path, log_is_empty: bool) -> Result<AuditKey, KeyError> {
        match std::fs::symlink_metadata(path) {
            Ok(_) => AuditKey::load(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !log_is_empty {
                    return Err(KeyError::MissingWithLog { path: path.to_path_buf() });
                }
                create(path)
            }
            Err(source) => Err(KeyError::Io { path: path.to_path_buf(), source }),
        }
    }

    pub fn mac(&self, hash: &Digest) -> Digest {
        let mut m = self.keyed.clone();
        m.update(hash);
        m.finalize().into_bytes().into()
    }

    /// Constant-time comparison of a stored MAC.
    pub fn verify_mac(&self, hash: &Digest, mac: &Digest) -> bool {
        let mut m = self.keyed.clone();
        m.update(hash);
        m.verify_slice(mac).is_ok()
    }
}

/// The chain head a key was last used with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainHead {
    pub seq: u64,
    /// The entry's hash, lowercase hex.
    pub hash: String,
    pub at_ms: i64,
}

/// `<key file>.head`.
pub fn head_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "audit.key".into());
    name.push(".head");
    key_file.with_file_name(name)
}

impl ChainHead {
    /// The record kept beside `key_file`; None when there is none (a key from before records were kept).
    pub fn load(key_file: &Path) -> Result<Option<ChainHead>, KeyError> {
        let path = head_path(key_file);
        match std::fs::read(&path) {
            Ok(b) => {
                serde_json::from_slice(&b).map(Some).map_err(|e| KeyError::Malformed { path, reason: e.to_string() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(KeyError::Io { path, source }),
        }
    }

    /// Writes the record durably: a new file, synced, renamed over the old one.
    pub fn save(&self, key_file: &Path) -> Result<(), KeyError> {
        let path = head_path(key_file);
        let io = |source| KeyError::Io { path: path.clone(), source };
        let tmp = path.with_extension("head.tmp");
        let mut f =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(io)?;
        f.write_all(&serde_json::to_vec(self).unwrap_or_default()).and_then(|_| f.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(())
    }
}

fn create(path: &Path) -> Result<AuditKey, KeyError> {
    let io = |source| KeyError::Io { path: path.to_path_buf(), source };
    let (key, text) = AuditKey::generate()?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(io)?;
    // create_new: if another process made the key meanwhile, use theirs rather than overwrite it.
    let mut f = match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return AuditKey::load(path),
        Err(e) => return Err(io(e)),
    };
    f.write_all(text.as_bytes()).and_then(|_| f.sync_all()).map_err(io)?;
    // The directory entry too, so a crash cannot lose a key that entries were already MACed with.
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    log::warn!(
        key_file = path.display().to_string().as_str();
        "created a new audit key; back it up off the box: without it the audit log cannot be verified"
    );
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_of_at_least_32_bytes() {
        let hex64 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let k = AuditKey::parse(&format!("  {hex64}\n")).unwrap();
        let same = AuditKey::from_bytes(&crate::access::audit::hex::decode(&hex64.to_lowercase()).unwrap()).unwrap();
        assert_eq!(k.mac(&[5; 32]), same.mac(&[5; 32]));
        assert!(AuditKey::parse(&hex64[..62]).unwrap_err().to_string().contains("31 bytes"));
        assert!(AuditKey::parse(&hex64[..63]).unwrap_err().to_string().contains("not hex"));
        assert!(AuditKey::parse(&format!("{}zz", &hex64[..62])).unwrap_err().to_string().contains("not hex"));
        assert!(AuditKey::parse(&format!("{hex64}{hex64}")).is_ok(), "longer keys are fine for HMAC");
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let k = AuditKey::from_bytes(&[0xab; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "AuditKey(..)");
    }

    #[test]
    fn generated_keys_differ_and_round_trip() {
        let (a, ta) = AuditKey::generate().unwrap();
        let (_, tb) = AuditKey::generate().unwrap();
        assert_ne!(ta, tb);
        assert_eq!(ta.len(), 65);
        assert_eq!(AuditKey::parse(&ta).unwrap().mac(&[1; 32]), a.mac(&[1; 32]));
    }
}
