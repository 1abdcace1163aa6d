//! Encryption at rest (issue 16 §3, CJIS SC-28): AES-256-GCM over every read record, crop, frame and
//! plate-index value, and a keyed hash (HMAC-SHA256) in place of the plate in index keys.
//!
//! - **Keys.** One 32-byte master key, from the systemd credential `store.key` (`LoadCredentialEncrypted=`,
//!   found in `$CREDENTIALS_DIRECTORY`) or from `[store] key_file` (mode 0600 or stricter, else refused).
//!   Two subkeys are derived from it with HMAC-SHA256 and fixed labels: the AES key and the index key.
//!   The key id (4 bytes) is derived the same way and written in every sealed value, so a rotation can be
//!   interrupted and resumed: each value says which key sealed it.
//! - **Sealed value**: `0x01 ‖ key id (4) ‖ nonce (12) ‖ AES-256-GCM(ciphertext ‖ tag)`, 33 bytes over the
//!   plain text. Nonces are 96 random bits from the OS for every value (2^-32 collision bound is reached
//!   only after ~2^32 values under one key; a box stores ~10^7 a year, and rotation resets the count).
//!   The associated data binds the value to its tree and key, so a value moved to another read (or a
//!   crop swapped between reads) fails to open.
//! - **Index**: `plate_idx` keys are `HMAC(index key, plate)[..16] ‖ 0 ‖ read id` (exact search and
//!   hotlist hits are one prefix scan); the value is the sealed plate, which wildcard search decrypts on a
//!   scan of the index (no reversed index is kept: a suffix of a keyed hash means nothing).
//!
//! Values that do not start with 0x01 are plain (a store from before encryption): JSON starts with `{`
//! and JPEG with 0xFF. Only `polewatch store rotate-key` reads them once encryption is on.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

type HmacSha256 = Hmac<Sha256>;

pub const SEALED_V1: u8 = 0x01;
pub const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
/// Bytes a sealed value adds to its plain text (header and GCM tag).
pub const OVERHEAD: usize = HEADER_LEN + 16;
/// Length of the keyed plate hash at the start of an encrypted index key.
pub const TAG_LEN: usize = 16;
/// Name of the systemd credential that holds the key (`LoadCredentialEncrypted=store.key:…`).
pub const CREDENTIAL_NAME: &str = "store.key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("store key {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("store key {} has mode {mode:o}; others can read it: chmod 600 it (refused)", path.display())]
    Exposed { path: PathBuf, mode: u32 },
    #[error("store key {} must hold 32 random bytes, raw or as 64 hex digits (found {len} bytes)", path.display())]
    Malformed { path: PathBuf, len: usize },
    #[error(
        "store.encryption is on but there is no key: set store.key_file, or give the systemd credential {CREDENTIAL_NAME} (LoadCredentialEncrypted=)"
    )]
    Missing,
}

/// One master key and what is derived from it.
pub struct Key {
    id: [u8; KEY_ID_LEN],
    aead: Aes256Gcm,
    index: [u8; 32],
    /// Where it came from (for messages; never the key itself).
    pub source: PathBuf,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key(id {}, from {})", self.id_hex(), self.source.display())
    }
}

fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    m.update(label);
    m.finalize().into_bytes().into()
}

impl Key {
    pub fn from_bytes(master: &[u8; 32], source: PathBuf) -> Key {
        let aes = derive(master, b"polewatch store aes-256-gcm v1");
        let id_full = derive(master, b"polewatch store key id v1");
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&id_full[..KEY_ID_LEN]);
        Key {
            id,
            aead: Aes256Gcm::new((&aes).into()),
            index: derive(master, b"polewatch store plate index v1"),
            source,
        }
    }

    /// Reads a key file: 32 raw bytes or 64 hex digits (whitespace around them ignored). A file that
    /// group or others may read is refused.
    pub fn load_file(path: &Path) -> Result<Key, KeyError> {
        let meta = std::fs::metadata(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Exposed { path: path.to_path_buf(), mode });
        }
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
        let master = parse_key(&bytes).ok_or(KeyError::Malformed { path: path.to_path_buf(), len: bytes.len() })?;
        Ok(Key::from_bytes(&master, path.to_path_buf()))
    }

    /// The key the settings ask for: the systemd credential when the service has one, else `key_file`.
    /// None when encryption is off. (`Key::from_config` passes `[store]`'s `encryption` and `key_file`.)
    pub fn configured(encryption: bool, key_file: Option<&Path>) -> Result<Option<Key>, KeyError> {
        if !encryption {
            return Ok(None);
        }
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
            let p = Path::new(&dir).join(CREDENTIAL_NAME);
            if p.is_file() {
                // systemd makes credential files 0400 for the service user; the mode check holds.
                return Key::load_file(&p).map(Some);
            }
        }
        match key_file {
            Some(p) => Key::load_file(p).map(Some),
            None => Err(KeyError::Missing),
        }
    }

    /// Writes a new random key to `path` with mode 0600; refuses to overwrite a file.
    pub fn generate_file(path: &Path) -> Result<(), KeyError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut master = [0u8; 32];
        getrandom::getrandom(&mut master)
            .map_err(|e| KeyError::Read { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) })?;
        let hex: String = master.iter().map(|b| format!("{b:02x}")).collect();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
        f.write_all(format!("{hex}\n").as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|source| KeyError::Read { path: path.to_path_buf(), source })
    }

    pub fn id(&self) -> [u8; KEY_ID_LEN] {
        self.id
    }

    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Keyed hash of a plate for the index (first 16 bytes of HMAC-SHA256).
    pub fn plate_tag(&self, plate: &[u8]) -> [u8; TAG_LEN] {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.index).expect("HMAC takes any key length");
        m.update(plate);
        let full = m.finalize().into_bytes();
        let mut t = [0u8; TAG_LEN];
        t.copy_from_slice(&full[..TAG_LEN]);
        t
    }

    /// Seals `plain` for the value at (`tree`, `key`).
    pub fn seal(&self, tree: &[u8], key: &[u8], plain: &[u8]) -> Result<Vec<u8>, CryptError> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(|e| CryptError::Random(e.to_string()))?;
        let aad = aad(tree, key);
        let ct = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: &aad })
            .map_err(|_| CryptError::Seal)?;
        let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open_with(&self, tree: &[u8], key: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptError> {
        let aad = aad(tree, key);
        self.aead
            .decrypt(
                Nonce::from_slice(&sealed[1 + KEY_ID_LEN..HEADER_LEN]),
                Payload { msg: &sealed[HEADER_LEN..], aad: &aad },
            )
            .map_err(|_| CryptError::Auth)
    }
}

fn aad(tree: &[u8], key: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(tree.len() + 1 + key.len());
    a.extend_from_slice(tree);
    a.push(0);
    a.extend_from_slice(key);
    a
}

/// 32 raw bytes, or 64 hex digits with optional surrounding whitespace.
pub fn parse_key(bytes: &[u8]) -> Option<[u8; 32]> {
    if bytes.len() == 32 {
        return bytes.try_into().ok();
    }
    let s = std::str::from_utf8(bytes).ok()?.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptError {
    #[error("the OS random source failed: {0}")]
    Random(String),
    #[error("encryption failed")]
    Seal,
    #[error("value is sealed under key {0}, which is not loaded")]
    UnknownKey(String),
    #[error("value does not authenticate (wrong key, or altered or moved)")]
    Auth,
    #[error("value is stored in clear text but the store is encrypted")]
    Plain,
    #[error("sealed value is truncated")]
    Short,
}

/// Is `v` a sealed value (rather than a plain one from before encryption)?
pub fn is_sealed(v: &[u8]) -> bool {
    v.first() == Some(&SEALED_V1)
}

/// Key id of a sealed value.
pub fn key_id_of(v: &[u8]) -> Option<[u8; KEY_ID_LEN]> {
    (is_sealed(v) && v.len() >= HEADER_LEN).then(|| v[1..1 + KEY_ID_LEN].try_into().expect("4 bytes"))
}

/// The keys a store is opened with: the current one seals; older ones (during a rotation) only open.
#[derive(Debug)]
pub struct Keyring {
    pub current: Key,
    pub old: Vec<Key>,
    /// Plain values are accepted (only while a rotation encrypts a store that was not encrypted).
    pub accept_plain: bool,
}

impl Keyring {
    pub fn single(k: Key) -> Keyring {
        Keyring { current: k, old: Vec::new(), accept_plain: false }
    }

    pub fn seal(&self, tree: &[u8], key: &[u8], plain: &[u8]) -> Result<Vec<u8>, CryptError> {
        self.current.seal(tree, key, plain)
    }

    pub fn open(&self, tree: &[u8], key: &[u8], v: &[u8]) -> Result<Vec<u8>, CryptError> {
        if !is_sealed(v) {
            return if self.accept_plain { Ok(v.to_vec()) } else { Err(CryptError::Plain) };
        }
        if v.len() < OVERHEAD {
            return Err(CryptError::Short);
        }
        let id = &v[1..1 + KEY_ID_LEN];
        let k = std::iter::once(&self.current)
            .chain(self.old.iter())
            .find(|k| k.id[..] == *id)
            .ok_or_else(|| CryptError::UnknownKey(id.iter().map(|b| format!("{b:02x}")).collect()))?;
        k.open_with(tree, key, v)
    }

    pub fn all(&self) -> impl Iterator<Item = &Key> {
        std::iter::once(&self.current).chain(self.old.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        Key::from_bytes(&[b; 32], PathBuf::from("test"))
    }

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = Keyring::single(key(1));
        let s = k.seal(b"reads", b"id1", b"{\"plate\":\"ABC1234\"}").unwrap();
        assert_eq!(s.len(), 19 + OVERHEAD);
        assert!(!s.windows(7).any(|w| w == b"ABC1234"));
        assert_eq!(k.open(b"reads", b"id1", &s).unwrap(), b"{\"plate\":\"ABC1234\"}");
        // Bound to its place: another key or tree does not open it.
        assert_eq!(k.open(b"reads", b"id2", &s), Err(CryptError::Auth));
        assert_eq!(k.open(b"images", b"id1", &s), Err(CryptError::Auth));
        // Same plain text twice: different nonces, different bytes.
        assert_ne!(s, k.seal(b"reads", b"id1", b"{\"plate\":\"ABC1234\"}").unwrap());
        // Flipped bit fails.
        let mut t = s.clone();
        *t.last_mut().unwrap() ^= 1;
        assert_eq!(k.open(b"reads", b"id1", &t), Err(CryptError::Auth));
    }

    #[test]
    fn key_ids_select_the_key_and_plain_values_are_refused() {
        let (a, b) = (key(1), key(2));
        assert_ne!(a.id(), b.id());
        let sa = a.seal(b"t", b"k", b"x").unwrap();
        assert_eq!(key_id_of(&sa), Some(a.id()));
        let only_b = Keyring::single(key(2));
        assert!(matches!(only_b.open(b"t", b"k", &sa), Err(CryptError::UnknownKey(_))));
        let both = Keyring { current: key(2), old: vec![key(1)], accept_plain: false };
        assert_eq!(both.open(b"t", b"k", &sa).unwrap(), b"x");
        assert_eq!(both.open(b"t", b"k", b"{plain}"), Err(CryptError::Plain));
        assert_eq!(a.plate_tag(b"ABC1234"), key(1).plate_tag(b"ABC1234"));
        assert_ne!(a.plate_tag(b"ABC1234"), b.plate_tag(b"ABC1234"));
    }

    #[test]
    fn key_files_parse_and_loose_modes_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        Key::generate_file(&p).unwrap();
        assert!(Key::generate_file(&p).is_err(), "never overwrites a key");
        let k = Key::load_file(&p).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(Key::load_file(&p), Err(KeyError::Exposed { mode: 0o640, .. })));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(Key::load_file(&p).unwrap().id(), k.id());
        let bad = d.path().join("bad");
        std::fs::write(&bad, "abc").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(Key::load_file(&bad), Err(KeyError::Malformed { len: 3, .. })));
        assert_eq!(parse_key(&[7u8; 32]), Some([7u8; 32]));
    }
}
