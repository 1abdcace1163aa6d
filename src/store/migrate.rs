//! One-off conversion of a store written by sled (polewatch before the move to redb, see [`super::kv`])
//! into the redb layout (`polewatch store migrate-sled`, daemon stopped).
//!
//! Every tree is copied entry for entry into a new store beside the old one, made durable and counted
//! again after reopening; only when every count matches is the new store put in place, and the sled
//! store is kept beside it (`<store>.sled-<time>`), byte for byte. An interruption leaves the sled store
//! where it was and a partial copy that the next run replaces.

use super::{Result, StoreError, Trees, kv};
use std::path::{Path, PathBuf};

/// What a migration copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    /// Entries per tree, in the store's tree order.
    pub trees: Vec<(&'static str, u64)>,
    /// Where the sled store now is.
    pub sled_kept_at: PathBuf,
}

impl Migrated {
    pub fn entries(&self) -> u64 {
        self.trees.iter().map(|(_, n)| n).sum()
    }
}

/// Entries copied per redb transaction.
const CHUNK: usize = 2_000;

fn sled_err(path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(source) if source.to_string().contains("lock") => {
            StoreError::Locked { path: path.to_path_buf() }
        }
        sled::Error::Io(source) => StoreError::Io { path: path.to_path_buf(), source },
        e => StoreError::Corrupt { path: path.to_path_buf(), cause: format!("sled: {e}") },
    }
}

fn beside(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "store".into());
    path.with_file_name(format!("{name}{suffix}"))
}

/// Converts the sled store at `path` in place (see the module's note).
pub fn migrate_sled(path: &Path) -> Result<Migrated> {
    if path.join(kv::FILE_NAME).exists() {
        return Err(StoreError::NotSled { path: path.to_path_buf() });
    }
    if !path.join("conf").exists() && !path.join("db").exists() {
        return Err(StoreError::Missing { path: path.to_path_buf() });
    }
    let old = sled::Config::new().path(path).open().map_err(|e| sled_err(path, e))?;
    let staging = beside(path, ".redb-migrating");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|source| StoreError::Io { path: staging.clone(), source })?;
    }
    std::fs::create_dir_all(&staging).map_err(|source| StoreError::Io { path: staging.clone(), source })?;
    let open_new = || kv::Db::open(&staging, 64 << 20).map(Trees::new).map_err(|e| e.store_error(&staging));
    let mut counts = Vec::new();
    {
        let new = open_new()?;
        new.db.create_trees(&new.all())?;
        for tree in new.all() {
            let from = old.open_tree(tree.name()).map_err(|e| sled_err(path, e))?;
            let mut n = 0u64;
            let mut chunk: Vec<(sled::IVec, sled::IVec)> = Vec::with_capacity(CHUNK);
            let mut entries = from.iter();
            loop {
                chunk.clear();
                for e in entries.by_ref().take(CHUNK) {
                    chunk.push(e.map_err(|e| sled_err(path, e))?);
                }
                if chunk.is_empty() {
                    break;
                }
                new.db.transaction(|tx| {
                    for (k, v) in &chunk {
                        tx.insert(tree, k, v)?;
                    }
                    Ok::<_, StoreError>(())
                })?;
                n += chunk.len() as u64;
            }
            counts.push((tree.name(), n));
        }
        // Outbox keys carry ids from sled's counter: the new counter starts past every one of them.
        let next = old.generate_id().map_err(|e| sled_err(path, e))? + 1;
        new.db.continue_ids_from(next)?;
        new.durable()?;
    }
    // Counted again from the file, reopened: what is put in place is what was read back.
    let again = open_new()?;
    for (name, n) in &counts {
        let got = again.all().into_iter().find(|t| t.name() == *name).map(|t| t.len()).transpose()?.unwrap_or(0);
        if got != *n {
            return Err(StoreError::Commit(format!(
                "migration check: tree {name} has {got} entries in the copy, {n} in the sled store; nothing was replaced"
            )));
        }
    }
    drop(again);
    drop(old);
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
    let kept = beside(path, &format!(".sled-{stamp}"));
    std::fs::rename(path, &kept).map_err(|source| StoreError::Io { path: path.to_path_buf(), source })?;
    std::fs::rename(&staging, path).map_err(|source| StoreError::Io { path: staging.clone(), source })?;
    if let Some(parent) = path.parent() {
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|source| StoreError::Io { path: parent.to_path_buf(), source })?;
    }
    Ok(Migrated { trees: counts, sled_kept_at: kept })
}
