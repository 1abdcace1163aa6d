//! Storage of the audit log (the chain itself is built and checked in `access::audit`):
//! - `audit`: sequence number (u64 BE, from 1, gapless) → the entry's bytes;
//! - `meta/audit_head`: the last sequence number written (u64 BE).
//!
//! Append-only: nothing here rewrites or removes an entry, and retention never opens this tree.
//! sled transactions cannot scan, so an append finds the chain head through the head pointer, read and
//! written inside the transaction: concurrent appends touch the same key and sled serialises them.

use super::{Result, Store, StoreError, tx_err};
use sled::Transactional;
use sled::transaction::ConflictableTransactionError;

const HEAD_KEY: &[u8] = b"audit_head";

/// One stored audit record as found, for the verifier: nothing is assumed about its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The key as a sequence number; None when the key is not 8 bytes (not written by polewatch).
    pub key_seq: Option<u64>,
    pub bytes: Vec<u8>,
}

fn damaged(msg: String) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(StoreError::Audit(msg))
}

#[derive(Debug, thiserror::Error)]
#[error("damaged: the head pointer is not 8 bytes")]
struct DamagedHead;

fn head_of(v: Option<sled::IVec>) -> std::result::Result<u64, DamagedHead> {
    match v {
        None => Ok(0),
        Some(v) => <[u8; 8]>::try_from(v.as_ref()).map(u64::from_be_bytes).map_err(|_| DamagedHead),
    }
}

impl Store {
    /// Appends `count` records after the chain head in one transaction and makes them durable before
    /// returning the first new sequence number. `make(i, seq, prev)` builds record `i` of the batch for
    /// `seq` from the bytes of the record before it (None for seq 1). sled may run the transaction again
    /// on a conflict, so `make` must have no side effects.
    ///
    /// Refuses (and writes nothing) when the head pointer names a missing record or a record already
    /// exists where the next one would go: a damaged log is never written over.
    pub fn audit_append(
        &self,
        count: usize,
        make: impl Fn(usize, u64, Option<&[u8]>) -> Result<Vec<u8>>,
    ) -> Result<u64> {
        let first = (&self.trees.audit, &self.trees.meta)
            .transaction(|(audit, meta)| {
                let head = head_of(meta.get(HEAD_KEY)?).map_err(|e| damaged(e.to_string()))?;
                let mut prev = match head {
                    0 => None,
                    n => match audit.get(n.to_be_bytes())? {
                        Some(v) => Some(v.to_vec()),
                        None => return Err(damaged(format!("damaged: entry {n}, the chain head, is missing"))),
                    },
                };
                for i in 0..count {
                    let seq = head + 1 + i as u64;
                    let record = make(i, seq, prev.as_deref()).map_err(ConflictableTransactionError::Abort)?;
                    if audit.insert(&seq.to_be_bytes()[..], record.as_slice())?.is_some() {
                        return Err(damaged(format!("damaged: entry {seq} already exists past the chain head {head}")));
                    }
                    prev = Some(record);
                }
                meta.insert(HEAD_KEY, &(head + count as u64).to_be_bytes()[..])?;
                Ok(head + 1)
            })
            .map_err(tx_err)?;
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
        Ok(self.trees.audit.is_empty() && self.audit_head_seq()? == 0)
    }

    pub fn audit_record(&self, seq: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.trees.audit.get(seq.to_be_bytes())?.map(|v| v.to_vec()))
    }

    /// Records newest first, for views of the latest entries.
    pub fn audit_records_rev(&self) -> impl Iterator<Item = Result<AuditRecord>> + use<> {
        self.trees.audit.iter().rev().map(|e| {
            let (k, v) = e?;
            Ok(AuditRecord { key_seq: <[u8; 8]>::try_from(k.as_ref()).ok().map(u64::from_be_bytes), bytes: v.to_vec() })
        })
    }

    /// Every record in key order, whatever its key.
    pub fn audit_records(&self) -> impl Iterator<Item = Result<AuditRecord>> + use<> {
        self.trees.audit.iter().map(|e| {
            let (k, v) = e?;
            Ok(AuditRecord { key_seq: <[u8; 8]>::try_from(k.as_ref()).ok().map(u64::from_be_bytes), bytes: v.to_vec() })
        })
    }
}
