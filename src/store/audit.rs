//! Storage of the audit log (the chain itself is built and checked in `access::audit`):
//! - `audit`: sequence number (u64 BE, from 1, gapless) → the entry's bytes;
//! - `meta/audit_head`: the last sequence number written (u64 BE).
//!
//! Append-only: nothing here rewrites or removes an entry, and retention never opens this tree.
//! An append finds the chain head through the head pointer, read and written inside its write
//! transaction; redb runs one write transaction at a time, so concurrent appends are serialised.

use super::{Result, Store, StoreError};

const HEAD_KEY: &[u8] = b"audit_head";

/// One stored audit record as found, for the verifier: nothing is assumed about its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The key as a sequence number; None when the key is not 8 bytes (not written by polewatch).
    pub key_seq: Option<u64>,
    pub bytes: Vec<u8>,
}

fn damaged(msg: String) -> StoreError {
    StoreError::Audit(msg)
}

#[derive(Debug, thiserror::Error)]
#[error("damaged: the head pointer is not 8 bytes")]
struct DamagedHead;

fn head_of(v: Option<Vec<u8>>) -> std::result::Result<u64, DamagedHead> {
    match v {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(v.as_slice()).map(u64::from_be_bytes).map_err(|_| DamagedHead),
    }
}

impl Store {
    /// Appends `count` records after the chain head in one transaction and makes them durable before
    /// returning the first new sequence number. `make(i, seq, prev)` builds record `i` of the batch for
    /// `seq` from the bytes of the record before it (None for seq 1); it must have no side effects (an
    /// error after it ran writes nothing).
    ///
    /// Refuses (and writes nothing) when the head pointer names a missing record or a record already
    /// exists where the next one would go: a damaged log is never written over.
    pub fn audit_append(
        &self,
        count: usize,
        make: impl Fn(usize, u64, Option<&[u8]>) -> Result<Vec<u8>>,
    ) -> Result<u64> {
        let t = &self.trees;
        let first = t.db.transaction(|tx| {
            let head = head_of(tx.get(&t.meta, HEAD_KEY)?).map_err(|e| damaged(e.to_string()))?;
            let mut prev = match head {
                0 => None,
                n => match tx.get(&t.audit, n.to_be_bytes())? {
                    Some(v) => Some(v),
                    None => return Err(damaged(format!("damaged: entry {n}, the chain head, is missing"))),
                },
            };
            for i in 0..count {
                let seq = head + 1 + i as u64;
                let record = make(i, seq, prev.as_deref())?;
                if tx.insert(&t.audit, seq.to_be_bytes(), &record)?.is_some() {
                    return Err(damaged(format!("damaged: entry {seq} already exists past the chain head {head}")));
                }
                prev = Some(record);
            }
            tx.insert(&t.meta, HEAD_KEY, (head + count as u64).to_be_bytes())?;
            Ok(head + 1)
        })?;
        // Durable before the access it records goes ahead.
        self.trees.durable()?;
        Ok(first)
    }

    /// The last sequence number written (0: none), from the head pointer.
    pub fn audit_head_seq(&self) -> Result<u64> {
        head_of(self.trees.meta.get(HEAD_KEY)?).map_err(|e| StoreError::Audit(e.to_string()))
    }

    /// True when no audit entry was ever written (no records and no head pointer).
    pub fn audit_is_empty(&self) -> Result<bool> {
        Ok(self.trees.audit.is_empty()? && self.audit_head_seq()? == 0)
    }

    pub fn audit_record(&self, seq: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.trees.audit.get(seq.to_be_bytes())?)
    }

    /// Records newest first, for views of the latest entries.
    pub fn audit_records_rev(&self) -> impl Iterator<Item = Result<AuditRecord>> + use<> {
        self.trees.audit.iter().rev().map(|e| {
            let (k, v) = e?;
            Ok(AuditRecord { key_seq: <[u8; 8]>::try_from(k.as_slice()).ok().map(u64::from_be_bytes), bytes: v })
        })
    }

    /// Every record in key order, whatever its key.
    pub fn audit_records(&self) -> impl Iterator<Item = Result<AuditRecord>> + use<> {
        self.trees.audit.iter().map(|e| {
            let (k, v) = e?;
            Ok(AuditRecord { key_seq: <[u8; 8]>::try_from(k.as_slice()).ok().map(u64::from_be_bytes), bytes: v })
        })
    }
}
