//! Opening the store's database: lock and corruption handling, schema version.

use super::{OnCorrupt, Result, SCHEMA_VERSION, StoreError, StoreOptions, Trees, kv};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    Created,
    Opened,
    /// The old store could not be opened as it was corrupt; it was moved to `moved_to` untouched.
    RecoveredFromCorruption {
        moved_to: PathBuf,
        cause: String,
    },
}

enum Failure {
    Corrupt(String),
    Other(StoreError),
}

fn try_open(opts: &StoreOptions) -> std::result::Result<kv::Db, Failure> {
    std::fs::create_dir_all(&opts.path)
        .map_err(|source| Failure::Other(StoreError::Io { path: opts.path.clone(), source }))?;
    kv::Db::open(&opts.path, opts.cache_capacity_bytes).map_err(|e| match e {
        kv::OpenError::Corrupt(cause) => Failure::Corrupt(cause),
        e => Failure::Other(e.store_error(&opts.path)),
    })
}

/// A store closed and reopened at once in one process can find the file still held by the handle being
/// dropped on another thread: wait a little before calling it taken. Another process holding it still
/// gets `Locked`.
fn try_open_waiting(opts: &StoreOptions) -> std::result::Result<kv::Db, Failure> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match try_open(opts) {
            Err(Failure::Other(StoreError::Locked { .. })) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// The store's trees. A store being created gets them all in one commit; a tool that only looks
/// writes nothing and finds them or calls the store damaged.
fn trees(db: kv::Db, opts: &StoreOptions) -> Result<Trees> {
    let t = Trees::new(db);
    match t.db.missing_trees(&t.all())? {
        None => {}
        // Only a new store (or one from a build with fewer trees): an open finds them and writes nothing.
        Some(_) if opts.create => t.db.create_trees(&t.all())?,
        Some(missing) => {
            return Err(StoreError::Corrupt { path: opts.path.clone(), cause: format!("it has no `{missing}` tree") });
        }
    }
    Ok(t)
}

/// Reads or writes the schema version; refuses a store written by a newer polewatch.
fn check_schema(t: &Trees, path: &Path) -> Result<()> {
    match t.meta.get("schema_version")? {
        Some(v) if v.len() == 4 => {
            let found = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
            if found > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema { path: path.to_path_buf(), found, supported: SCHEMA_VERSION });
            }
            Ok(())
        }
        Some(_) => Err(StoreError::Decode { key: "meta/schema_version".into(), reason: "not 4 bytes".into() }),
        None => {
            t.meta.insert("schema_version", SCHEMA_VERSION.to_be_bytes())?;
            t.meta.insert("created_at_ms", jiff::Timestamp::now().as_millisecond().to_be_bytes())?;
            t.durable()?;
            Ok(())
        }
    }
}

fn aside_path(path: &Path) -> PathBuf {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "store".into());
    let mut candidate = path.with_file_name(format!("{name}.corrupt-{stamp}"));
    let mut n = 1;
    while candidate.exists() {
        candidate = path.with_file_name(format!("{name}.corrupt-{stamp}-{n}"));
        n += 1;
    }
    candidate
}

pub(super) fn open(opts: &StoreOptions) -> Result<(Trees, OpenOutcome)> {
    let existed = opts.path.join(kv::FILE_NAME).exists();
    if !existed && (opts.path.join("conf").exists() || opts.path.join("db").exists()) {
        return Err(StoreError::SledFormat { path: opts.path.clone() });
    }
    if !existed && !opts.create {
        return Err(StoreError::Missing { path: opts.path.clone() });
    }
    if let Some(parent) = opts.path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Io { path: parent.to_path_buf(), source })?;
    }
    let outcome;
    let db = match try_open_waiting(opts) {
        Ok(db) => {
            outcome = if existed { OpenOutcome::Opened } else { OpenOutcome::Created };
            db
        }
        Err(Failure::Other(e)) => return Err(e),
        Err(Failure::Corrupt(cause)) if opts.on_corrupt == OnCorrupt::Refuse => {
            log::error!(store = opts.path.display().to_string().as_str(); "store is corrupt ({cause}); refusing to open it, nothing was moved or written");
            return Err(StoreError::Corrupt { path: opts.path.clone(), cause });
        }
        Err(Failure::Corrupt(cause)) => {
            let moved_to = aside_path(&opts.path);
            std::fs::rename(&opts.path, &moved_to)
                .map_err(|source| StoreError::Io { path: opts.path.clone(), source })?;
            log::error!(
                store = opts.path.display().to_string().as_str(), moved_to = moved_to.display().to_string().as_str();
                "store is corrupt ({cause}); moved it aside untouched and started a new one"
            );
            let db = try_open(opts).map_err(|f| match f {
                Failure::Other(e) => e,
                Failure::Corrupt(cause) => StoreError::Corrupt { path: opts.path.clone(), cause },
            })?;
            outcome = OpenOutcome::RecoveredFromCorruption { moved_to, cause };
            db
        }
    };
    let t = trees(db, opts)?;
    // A tool that only looks never writes the schema version of a store that lacks one.
    if !opts.create && t.meta.get("schema_version")?.is_none() {
        return Err(StoreError::Corrupt { path: opts.path.clone(), cause: "it has no schema version".into() });
    }
    check_schema(&t, &opts.path)?;
    check_keys(&t, opts)?;
    Ok((t, outcome))
}

pub(super) const KEY_ID_KEY: &[u8] = b"enc_key_id";
pub(super) const ROTATION_KEY: &[u8] = b"enc_rotation_to";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The store and the key must go together: an encrypted store is never opened without its key (nor
/// with another), a store holding clear reads is not silently mixed with sealed ones, and a rotation
/// that was interrupted is finished before anything else writes.
fn check_keys(t: &Trees, opts: &StoreOptions) -> Result<()> {
    let refuse = |reason: String| Err(StoreError::Encryption { path: opts.path.clone(), reason });
    let meta_id = t.meta.get(KEY_ID_KEY)?.map(|v| v.to_vec());
    let rotation_to = t.meta.get(ROTATION_KEY)?.map(|v| v.to_vec());
    let Some(ring) = &opts.keys else {
        if let Some(id) = meta_id.as_ref().or(rotation_to.as_ref()) {
            return refuse(format!(
                "is encrypted (key id {}); set `encryption = true` under [store] and give its key (key_file or the systemd credential)",
                hex(id)
            ));
        }
        return Ok(());
    };
    let current = ring.current.id();
    if opts.rotating {
        if let Some(to) = &rotation_to
            && to[..] != current[..]
        {
            return refuse(format!(
                "an unfinished key rotation goes to key id {}; resume it with that key, not {}",
                hex(to),
                ring.current.id_hex()
            ));
        }
        if let Some(id) = &meta_id
            && !ring.all().any(|k| k.id()[..] == id[..])
        {
            return refuse(format!(
                "is encrypted under key id {}, which is neither the configured key nor the new one",
                hex(id)
            ));
        }
        t.meta.insert(ROTATION_KEY, &current[..])?;
        t.durable()?;
        return Ok(());
    }
    if let Some(to) = rotation_to {
        return refuse(format!(
            "a key rotation to key id {} was interrupted; finish it with `polewatch store rotate-key --new-key FILE` (that key) before starting",
            hex(&to)
        ));
    }
    match meta_id {
        Some(id) if id[..] == current[..] => Ok(()),
        Some(id) => refuse(format!(
            "the key from {} (id {}) is not this store's key (id {}); refusing to open it",
            ring.current.source.display(),
            ring.current.id_hex(),
            hex(&id)
        )),
        None if t.reads.is_empty()? && t.images.is_empty()? => {
            t.meta.insert(KEY_ID_KEY, &current[..])?;
            t.durable()?;
            Ok(())
        }
        None => refuse(
            "holds reads in clear text; encrypt them first with `polewatch store rotate-key --new-key FILE`".into(),
        ),
    }
}
