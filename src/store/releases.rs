//! Release requests on file (`releases` tree: request id → JSON). They are records of the department
//! and are never purged by read retention.

use super::{Result, Store, StoreError, decode};
use crate::domain::release::Request;

impl Store {
    /// Saves a release request (new or updated); durable on return.
    pub fn put_release(&self, r: &Request) -> Result<()> {
        let v =
            serde_json::to_vec(r).map_err(|e| StoreError::Decode { key: "release".into(), reason: e.to_string() })?;
        self.trees.releases.insert(r.id.as_bytes(), v)?;
        self.trees.durable()?;
        Ok(())
    }

    pub fn release(&self, id: uuid::Uuid) -> Result<Option<Request>> {
        match self.trees.releases.get(id.as_bytes())? {
            Some(v) => Ok(Some(decode(id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    pub fn releases(&self) -> Result<Vec<Request>> {
        self.trees.releases.iter().map(|e| e.map_err(StoreError::from).and_then(|(k, v)| decode(&k, &v))).collect()
    }

    /// Reads held as evidence under `case_number` (binding holds only).
    pub fn held_for_case(&self, case_number: &str, now_ms: i64) -> Result<Vec<super::StoredRead>> {
        let mut out = Vec::new();
        for e in self.trees.holds.iter() {
            let (k, v) = e?;
            let holds: Vec<super::Hold> = decode(&k, &v)?;
            if holds.iter().any(|h| h.case_number == case_number && crate::retention::hold_binds(h, now_ms))
                && let Some(h) = holds.first()
                && let Some(r) = self.get_read(h.read_id)?
            {
                out.push(r);
            }
        }
        Ok(out)
    }
}
