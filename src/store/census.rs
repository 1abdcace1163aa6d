//! What a store holds, counted: written beside the store (`<store>.census.json`) when the daemon
//! starts and stops, so that when a store is lost to corruption the operator is told what was in it.

use super::{Result, Store};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Census {
    /// When it was counted (UTC ms).
    pub at_ms: i64,
    pub reads: u64,
    /// Reads with hold records (released ones included).
    pub reads_with_holds: u64,
    pub users: u64,
    pub pushed_hotlists: u64,
    pub release_requests: u64,
    pub outbox_messages: u64,
    pub reads_waiting_upload: u64,
    pub audit_head: u64,
}

impl std::fmt::Display for Census {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = jiff::Timestamp::from_millisecond(self.at_ms).map(|t| t.to_string()).unwrap_or_default();
        write!(
            f,
            "as counted at {at}: {} reads, {} reads with evidence holds, {} users, {} pushed hotlists, {} release requests, \
             {} outbox messages and {} reads not yet sent up, audit entries 1..={}",
            self.reads,
            self.reads_with_holds,
            self.users,
            self.pushed_hotlists,
            self.release_requests,
            self.outbox_messages,
            self.reads_waiting_upload,
            self.audit_head
        )
    }
}

/// `<store>.census.json`, beside the store so it stays when the store is moved aside.
pub fn census_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "store".into());
    name.push(".census.json");
    store.with_file_name(name)
}

/// The last census written for the store at `store`, if any (and readable).
pub fn read_census(store: &Path) -> Option<Census> {
    std::fs::read(census_path(store)).ok().and_then(|b| serde_json::from_slice(&b).ok())
}

impl Store {
    /// Counts what the store holds (redb keeps each tree's count).
    pub fn census(&self) -> Result<Census> {
        let t = &self.trees;
        Ok(Census {
            at_ms: jiff::Timestamp::now().as_millisecond(),
            reads: t.reads.len()?,
            reads_with_holds: t.holds.len()?,
            users: t.users.len()?,
            pushed_hotlists: t.hotlists.len()?,
            release_requests: t.releases.len()?,
            outbox_messages: t.outbox.len()?,
            reads_waiting_upload: t.upload_queue.len()?,
            audit_head: self.audit_head_seq()?,
        })
    }

    /// Counts the store and writes the census beside it (atomically: a new file renamed over the old).
    pub fn write_census(&self) -> Result<Census> {
        let c = self.census()?;
        let path = census_path(&self.path);
        let tmp = path.with_extension("json.tmp");
        let io = |source| super::StoreError::Io { path: path.clone(), source };
        std::fs::write(&tmp, serde_json::to_vec_pretty(&c).unwrap_or_default()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(c)
    }
}
