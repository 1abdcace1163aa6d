//! [`AuditLog`]: the chain kept in the store, as the [`AuditSink`] every access goes through.

use super::{check, decode_record, encode, seal, AuditKey, Broken, Checkpoint, Digest, Verifier, VerifyReport, GENESIS};
use crate::access::{AuditError, AuditSink, NewAuditEntry};
use crate::store::{AuditRecord, Store, StoreError};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Broken(#[from] Broken),
    #[error("cannot read the audit log: {0}")]
    Store(#[from] StoreError),
}

pub struct AuditLog {
    store: Arc<Store>,
    key: AuditKey,
}

fn write_err(e: impl std::fmt::Display) -> AuditError {
    AuditError::Write(e.to_string())
}

/// The hash of the stored entry `seq`, which the next entry must commit to.
fn hash_of(seq: u64, bytes: &[u8]) -> crate::store::Result<Digest> {
    decode_record(&AuditRecord { key_seq: Some(seq), bytes: bytes.to_vec() })
        .map(|e| e.hash)
        .map_err(|u| StoreError::Audit(format!("the chain head cannot be read: {}", u.0)))
}

impl AuditLog {
    pub fn new(store: Arc<Store>, key: AuditKey) -> AuditLog {
        AuditLog { store, key }
    }

    /// Loads the key (creating it only for an empty log) and checks it against the chain head, so a
    /// wrong key file stops the start instead of extending the chain with MACs nobody can check.
    pub fn open(store: Arc<Store>, key_file: &Path) -> Result<AuditLog, AuditError> {
        let empty = store.audit_is_empty().map_err(write_err)?;
        let key = AuditKey::load_or_create(key_file, empty)?;
        let log = AuditLog::new(store, key);
        log.check_head()?;
        Ok(log)
    }

    fn check_head(&self) -> Result<(), AuditError> {
        let head = self.store.audit_head_seq().map_err(write_err)?;
        if head == 0 {
            return Ok(());
        }
        let entry = self.store.audit_record(head).map_err(write_err)?.map(|bytes| decode_record(&AuditRecord { key_seq: Some(head), bytes }));
        match entry {
            Some(Ok(e)) if self.key.verify_mac(&e.hash, &e.mac) => Ok(()),
            Some(Ok(_)) => Err(AuditError::Key(format!(
                "the audit key does not match entry {head}, the chain head: wrong key file, or the log was altered (run `polewatch audit verify`)"
            ))),
            // Appends will fail and be refused one by one, each an alarm; reads are still taken and purged.
            _ => {
                log::error!(head = head; "audit log damaged: its head entry is missing or unreadable; every audited access will be refused (run `polewatch audit verify`)");
                Ok(())
            }
        }
    }

    /// The newest `limit` entries matching `user` and `action` (its snake_case name), newest first.
    /// Reading is not verification: `verify` checks the chain.
    pub fn latest(&self, limit: usize, user: Option<&str>, action: Option<&str>) -> Result<Vec<super::AuditEntry>, AuditError> {
        let action = action.map(super::filter::parse_action).transpose().map_err(AuditError::Write)?;
        let mut out = Vec::new();
        for r in self.store.audit_records_rev() {
            if out.len() >= limit {
                break;
            }
            let e = decode_record(&r.map_err(write_err)?).map_err(|u| AuditError::Write(u.0))?;
            if user.is_none_or(|u| u == e.user) && action.is_none_or(|a| a == e.action) {
                out.push(e);
            }
        }
        Ok(out)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn key(&self) -> &AuditKey {
        &self.key
    }

    /// Appends the entries together (all or none), durable on return; returns the first one's sequence
    /// number, the rest following it. A failure is logged as an alarm and the caller must refuse the access.
    pub fn record_all(&self, entries: &[NewAuditEntry]) -> Result<u64, AuditError> {
        let result = self.append(entries);
        if let Err(e) = &result {
            let first = entries.first();
            log::error!(
                user = first.map_or("", |n| n.user.as_str()), action = first.and_then(|n| n.action).map(super::filter::action_name).unwrap_or_default().as_str(),
                entries = entries.len();
                "AUDIT LOG WRITE FAILED, the access is refused: {e}"
            );
        }
        result
    }

    fn append(&self, entries: &[NewAuditEntry]) -> Result<u64, AuditError> {
        if entries.is_empty() {
            return Err(AuditError::Write("no entries given".into()));
        }
        for e in entries {
            check(e).map_err(write_err)?;
        }
        self.store
            .audit_append(entries.len(), |i, seq, prev| {
                let prev_hash = match prev {
                    None => GENESIS,
                    Some(bytes) => hash_of(seq - 1, bytes)?,
                };
                let new = entries.get(i).ok_or_else(|| StoreError::Audit(format!("no entry {i} in this batch")))?;
                // Taken inside the transaction, so times follow sequence numbers (clock steps aside).
                let now = jiff::Timestamp::now().as_millisecond();
                let e = seal(new, seq, now, prev_hash, &self.key).map_err(|e| StoreError::Audit(e.to_string()))?;
                Ok(encode(&e))
            })
            .map_err(write_err)
    }

    /// Checks the whole chain, and the store's head pointer; with a checkpoint, also that the log still
    /// holds the checkpoint's entry unchanged.
    pub fn verify(&self, checkpoint: Option<Checkpoint>) -> Result<VerifyReport, VerifyError> {
        // The head pointer is read before and after the walk: entries appended meanwhile are not a break.
        let before = self.store.audit_head_seq()?;
        let mut v = Verifier::new(&self.key, checkpoint);
        for r in self.store.audit_records() {
            v.push(decode_record(&r?))?;
        }
        let after = self.store.audit_head_seq()?;
        let last = v.last_seq();
        let pointer = if last < before {
            before
        } else if last > after {
            after
        } else {
            last
        };
        Ok(v.finish(Some(pointer))?)
    }
}

/// The one-line result of a verification that passed, as `polewatch audit verify` prints it (offline or
/// through the running daemon alike).
pub fn verify_summary(r: &VerifyReport) -> String {
    let mut s = match &r.head {
        Some(h) => format!("audit log OK: {} entries; head seq {} at {} hash {}", r.entries, h.seq, h.at, super::hex::encode(&h.hash)),
        None => "audit log OK: 0 entries".to_string(),
    };
    if let Some(seq) = r.checkpoint_seq {
        s.push_str(&format!("\ncheckpoint at seq {seq} matches"));
    }
    s
}

impl AuditLog {
    /// Every entry that decodes, oldest first, for reports (a record that does not decode is for
    /// `verify` to name).
    pub fn entries(&self) -> Result<Vec<super::AuditEntry>, AuditError> {
        let mut out = Vec::new();
        for r in self.store.audit_records() {
            if let Ok(e) = decode_record(&r.map_err(write_err)?) {
                out.push(e);
            }
        }
        Ok(out)
    }
}

impl AuditSink for AuditLog {
    fn record(&self, entry: NewAuditEntry) -> Result<u64, AuditError> {
        self.record_all(std::slice::from_ref(&entry))
    }
}
