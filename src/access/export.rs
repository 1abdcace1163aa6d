//! Export bundles (R-AC3): the reads and images a release request covers, its request record, and a
//! manifest with the SHA-256 of every file, signed with the device's ed25519 key so the receiving
//! agency and a court can check nothing was altered.

use super::release::{ReleaseError, Request, Scope, may_export};
use super::{Action, AuditError, AuditSink, NewAuditEntry, Outcome};
use crate::store::{ImageKind, PlatePattern, Store, StoreError, StoredRead};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "polewatch-export/1";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Release(#[from] ReleaseError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("device key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },
    #[error("bundle does not verify: {0}")]
    Verify(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io { path: path.to_path_buf(), source }
}

/// The device's signing key: a 32-byte ed25519 seed in a 0600 file outside the store.
pub struct DeviceKey(SigningKey);

impl DeviceKey {
    pub fn load_or_create(path: &Path) -> Result<DeviceKey, ExportError> {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::read(path) {
            Ok(bytes) => {
                let seed: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| ExportError::Key { path: path.into(), reason: "not 32 bytes".into() })?;
                Ok(DeviceKey(SigningKey::from_bytes(&seed)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::getrandom(&mut seed)
                    .map_err(|e| ExportError::Key { path: path.into(), reason: e.to_string() })?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io(dir))?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io(path))?;
                std::io::Write::write_all(&mut f, &seed).map_err(io(path))?;
                f.sync_all().map_err(io(path))?;
                log::info!(key = path.display().to_string().as_str(); "created the device signing key");
                Ok(DeviceKey(SigningKey::from_bytes(&seed)))
            }
            Err(e) => Err(io(path)(e)),
        }
    }

    /// An existing key only (for printing its public half); never creates one.
    pub fn load(path: &Path) -> Result<DeviceKey, ExportError> {
        let bytes = std::fs::read(path).map_err(io(path))?;
        let seed: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| ExportError::Key { path: path.into(), reason: "not 32 bytes".into() })?;
        Ok(DeviceKey(SigningKey::from_bytes(&seed)))
    }

    pub fn public_hex(&self) -> String {
        hex(self.0.verifying_key().as_bytes())
    }
}

fn hex(b: &[u8]) -> String {
    ::hex::encode(b)
}

/// Hex digits only (`u8::from_str_radix` took "+a" for 0x0a).
fn unhex(s: &str) -> Option<Vec<u8>> {
    ::hex::decode(s).ok()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub request_id: String,
    pub case_number: String,
    pub agency: String,
    pub created_at: String,
    pub exported_by: String,
    pub device_public_key: String,
    pub reads: usize,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

/// Who is exporting, for the audit log and the manifest.
pub struct Exporter<'a> {
    pub user: &'a str,
    pub organisation: &'a str,
    pub source: &'a str,
}

fn reads_in_scope(store: &Store, scope: &Scope, now_ms: i64) -> Result<Vec<StoredRead>, ExportError> {
    let mut reads = match scope {
        Scope::Plates { plates, from_ms, to_ms, .. } => {
            let mut out = Vec::new();
            for p in plates {
                let pattern = PlatePattern::parse(p).map_err(|_| ReleaseError::BadPlate)?;
                out.extend(
                    store
                        .search(&pattern, usize::MAX)?
                        .into_iter()
                        .filter(|r| r.captured_at_ms >= *from_ms && r.captured_at_ms <= *to_ms),
                );
            }
            out
        }
        Scope::HeldForCase { case_number } => store.held_for_case(case_number, now_ms)?,
    };
    reads.sort_by_key(|r| r.id);
    reads.dedup_by_key(|r| r.id);
    Ok(reads)
}

/// Writes the bundle for an approved request under `out_dir`. The export is audited before any file is
/// written: if the audit log cannot record it, nothing leaves.
pub fn export(
    store: &Store,
    request: &Request,
    key: &DeviceKey,
    out_dir: &Path,
    who: &Exporter<'_>,
    audit: &dyn AuditSink,
    now_ms: i64,
) -> Result<Bundle, ExportError> {
    let base = NewAuditEntry {
        user: who.user.into(),
        organisation: who.organisation.into(),
        source: who.source.into(),
        action: Some(Action::Export),
        object: request.id.to_string(),
        purpose: request.request.purpose.clone(),
        case_number: request.request.case_number.clone(),
        ..Default::default()
    };
    if let Err(e) = may_export(request) {
        audit.record(NewAuditEntry { outcome: Some(Outcome::Denied), detail: e.to_string(), ..base })?;
        return Err(e.into());
    }
    let reads = reads_in_scope(store, &request.request.scope, now_ms)?;
    let seq = audit.record(NewAuditEntry {
        outcome: Some(Outcome::Ok),
        result_count: Some(reads.len() as u64),
        ..base.clone()
    })?;

    let created = jiff::Timestamp::from_millisecond(now_ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let dir = out_dir.join(format!("polewatch-export-{}-{}", request.id, created.strftime("%Y%m%dT%H%M%SZ")));
    let result = write_bundle(store, request, key, &dir, &reads, who, created);
    if let Err(e) = &result {
        // The data may have partly left: say so in the log of record.
        let _ = audit.record(NewAuditEntry {
            outcome: Some(Outcome::Error),
            detail: format!("export of entry #{seq} failed: {e}"),
            ..base
        });
    }
    result
}

fn write_bundle(
    store: &Store,
    request: &Request,
    key: &DeviceKey,
    dir: &Path,
    reads: &[StoredRead],
    who: &Exporter<'_>,
    created: jiff::Timestamp,
) -> Result<Bundle, ExportError> {
    std::fs::create_dir_all(dir.join("images")).map_err(io(dir))?;
    let mut files = Vec::new();
    let mut put = |rel: String, bytes: &[u8]| -> Result<(), ExportError> {
        let p = dir.join(&rel);
        std::fs::write(&p, bytes).map_err(io(&p))?;
        files.push(ManifestFile { path: rel, sha256: hex(&Sha256::digest(bytes)), bytes: bytes.len() as u64 });
        Ok(())
    };
    put("request.json".into(), &json(request)?)?;
    let payload: Vec<_> = reads.iter().map(crate::uplink::payload::ReadV1::from).collect();
    put("reads.json".into(), &json(&payload)?)?;
    for r in reads {
        for (kind, name) in [(ImageKind::Crop, "crop"), (ImageKind::Frame, "frame")] {
            if let Some(img) = store.image(r.id, kind)? {
                put(format!("images/{}-{name}.jpg", r.id), &img)?;
            }
        }
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        request_id: request.id.to_string(),
        case_number: request.request.case_number.clone(),
        agency: request.request.agency.clone(),
        created_at: format!("{created:.3}"),
        exported_by: who.user.into(),
        device_public_key: key.public_hex(),
        reads: reads.len(),
        files,
    };
    let mbytes = serde_json::to_vec_pretty(&manifest).map_err(|e| ExportError::Verify(e.to_string()))?;
    let mpath = dir.join("manifest.json");
    std::fs::write(&mpath, &mbytes).map_err(io(&mpath))?;
    let sig = key.0.sign(&mbytes);
    let spath = dir.join("manifest.sig");
    let sbytes = hex(&sig.to_bytes());
    std::fs::write(&spath, &sbytes).map_err(io(&spath))?;
    let sums = sha256sums(&manifest.files, &mbytes, sbytes.as_bytes());
    let sums_path = dir.join(SUMS);
    std::fs::write(&sums_path, sums).map_err(io(&sums_path))?;
    Ok(Bundle { dir: dir.to_path_buf(), manifest })
}

/// `SHA256SUMS` beside the manifest: every file, the manifest and its signature, in the format
/// `sha256sum -c` reads ("<hex>  <path>"), so a recipient without polewatch can check the files. It is not
/// signed itself: the signed manifest is what `polewatch export verify --key` checks.
pub const SUMS: &str = "SHA256SUMS";

fn sha256sums(files: &[ManifestFile], manifest: &[u8], sig: &[u8]) -> String {
    let mut out = String::new();
    for f in files {
        out.push_str(&format!("{}  {}\n", f.sha256, f.path));
    }
    out.push_str(&format!("{}  manifest.json\n", hex(&Sha256::digest(manifest))));
    out.push_str(&format!("{}  manifest.sig\n", hex(&Sha256::digest(sig))));
    out
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, ExportError> {
    serde_json::to_vec_pretty(v).map_err(|e| ExportError::Verify(format!("cannot encode: {e}")))
}

/// Checks a bundle: the signature over the manifest (against `expected_key` when given, else the key
/// the manifest names) and the SHA-256 of every file; no file may be missing or extra.
pub fn verify_bundle(dir: &Path, expected_key: Option<&str>) -> Result<Manifest, ExportError> {
    let mpath = dir.join("manifest.json");
    let mbytes = std::fs::read(&mpath).map_err(io(&mpath))?;
    let manifest: Manifest =
        serde_json::from_slice(&mbytes).map_err(|e| ExportError::Verify(format!("manifest: {e}")))?;
    let key_hex = expected_key.unwrap_or(&manifest.device_public_key);
    let key_bytes: [u8; 32] =
        unhex(key_hex).and_then(|b| b.try_into().ok()).ok_or_else(|| ExportError::Verify("bad public key".into()))?;
    let vk = VerifyingKey::from_bytes(&key_bytes).map_err(|e| ExportError::Verify(e.to_string()))?;
    let spath = dir.join("manifest.sig");
    let sig_hex = std::fs::read_to_string(&spath).map_err(io(&spath))?;
    let sums_path = dir.join(SUMS);
    let sig_bytes: [u8; 64] = unhex(sig_hex.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ExportError::Verify("bad signature encoding".into()))?;
    vk.verify(&mbytes, &ed25519_dalek::Signature::from_bytes(&sig_bytes))
        .map_err(|_| ExportError::Verify("signature does not match the manifest".into()))?;
    let mut listed = std::collections::HashSet::new();
    for f in &manifest.files {
        let p = dir.join(&f.path);
        let bytes = std::fs::read(&p).map_err(|_| ExportError::Verify(format!("{} is missing", f.path)))?;
        if hex(&Sha256::digest(&bytes)) != f.sha256 {
            return Err(ExportError::Verify(format!("{} was altered", f.path)));
        }
        listed.insert(f.path.clone());
    }
    // Bundles from before SHA256SUMS have none; where there is one it must be exactly what this manifest gives.
    match std::fs::read(&sums_path) {
        Ok(sums) if sums != sha256sums(&manifest.files, &mbytes, sig_hex.as_bytes()).as_bytes() => {
            return Err(ExportError::Verify(format!("{SUMS} does not match the signed manifest")));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&sums_path)(e)),
    }
    for sub in ["", "images"] {
        for e in std::fs::read_dir(dir.join(sub)).map_err(io(dir))?.flatten() {
            let rel = if sub.is_empty() {
                e.file_name().to_string_lossy().into_owned()
            } else {
                format!("{sub}/{}", e.file_name().to_string_lossy())
            };
            if e.path().is_file()
                && !listed.contains(&rel)
                && !["manifest.json", "manifest.sig", SUMS].contains(&rel.as_str())
            {
                return Err(ExportError::Verify(format!("{rel} is not in the manifest")));
            }
        }
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decoding_takes_hex_digits_only() {
        assert_eq!(unhex("0aff"), Some(vec![0x0a, 0xff]));
        assert_eq!(unhex("0AFF"), Some(vec![0x0a, 0xff]));
        assert_eq!(unhex("+a"), None, "from_str_radix read a sign");
        assert_eq!(unhex("-0"), None);
        assert_eq!(unhex("abc"), None, "an odd count");
        assert_eq!(unhex(" a"), None);
        assert_eq!(hex(&[0, 0x7f, 0xff]), "007fff");
    }

    #[test]
    fn sha256sums_lines_are_in_the_coreutils_format() {
        let files = vec![ManifestFile { path: "reads.json".into(), sha256: "ab".repeat(32), bytes: 3 }];
        let s = sha256sums(&files, b"{}", b"00");
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], format!("{}  reads.json", "ab".repeat(32)));
        assert!(lines[1].ends_with("  manifest.json") && lines[2].ends_with("  manifest.sig"));
        assert!(s.ends_with('\n'));
    }
}
