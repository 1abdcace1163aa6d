//! Hotlists pushed by the central server, kept so they survive a restart, and reads by time for
//! retroactive matching.

use super::{Result, Store, StoreError, StoredRead, decode, first_key_at};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedList {
    pub name: String,
    pub csv: String,
    pub pushed_by: String,
    pub pushed_at_ms: i64,
}

impl Store {
    /// Saves (or replaces) a pushed hotlist; durable on return.
    pub fn put_pushed_list(&self, list: &PushedList) -> Result<()> {
        let v = serde_json::to_vec(list)
            .map_err(|e| StoreError::Decode { key: "hotlist".into(), reason: e.to_string() })?;
        self.trees.hotlists.insert(list.name.as_bytes(), v)?;
        self.trees.durable()?;
        Ok(())
    }

    pub fn remove_pushed_list(&self, name: &str) -> Result<bool> {
        let existed = self.trees.hotlists.remove(name.as_bytes())?.is_some();
        self.trees.durable()?;
        Ok(existed)
    }

    pub fn pushed_lists(&self) -> Result<Vec<PushedList>> {
        self.trees.hotlists.iter().map(|e| e.map_err(StoreError::from).and_then(|(k, v)| decode(&k, &v))).collect()
    }

    /// Calls `f` for every read captured at or after `from_ms`, oldest first, until it returns false.
    pub fn for_each_read_since(&self, from_ms: i64, mut f: impl FnMut(StoredRead) -> bool) -> Result<()> {
        for e in self.trees.reads.range(first_key_at(from_ms).to_vec()..) {
            let (k, v) = e?;
            if !f(self.decode_read(&k, &v)?) {
                break;
            }
        }
        Ok(())
    }
}
