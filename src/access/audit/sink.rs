//! [`AuditLog`]: the chain kept in the store, as the [`AuditSink`] every access goes through.

use super::{
    AuditKey, Broken, ChainHead, Checkpoint, Digest, GENESIS, Verifier, VerifyReport, check, decode_record, encode,
    seal,
};
use crate::access::{AuditError, AuditSink, NewAuditEntry};
use crate::store::{AuditRecord, Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    /// The key file, beside which the chain head is recorded after every append; None: not recorded.
    key_file: Option<PathBuf>,
    /// The highest seq recorded there by this process (concurrent appends must not move it back).
    recorded: Mutex<u64>,
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
        AuditLog { store, key, key_file: None, recorded: Mutex::new(0) }
    }

    /// A log whose appends are recorded beside `key_file` (see [`ChainHead`]).
    pub fn with_key_file(store: Arc<Store>, key: AuditKey, key_file: &Path) -> AuditLog {
        AuditLog { store, key, key_file: Some(key_file.to_path_buf()), recorded: Mutex::new(0) }
    }

    /// Loads the key (creating it only for an empty log and a key never used), checks it against the
    /// chain head, so a wrong key file stops the start instead of extending the chain with MACs nobody
    /// can check, and checks that the log continues the chain the key was last used with.
    pub fn open(store: Arc<Store>, key_file: &Path) -> Result<AuditLog, AuditError> {
        let empty = store.audit_is_empty().map_err(write_err)?;
        let key = AuditKey::load_or_create(key_file, empty)?;
        let log = AuditLog::with_key_file(store, key, key_file);
        log.check_continues()?;
        log.check_head()?;
        Ok(log)
    }

    /// [`AuditLog::open`], then the whole chain verified: the daemon starts only on an intact log, and a
    /// broken entry stops it naming the entry's sequence number.
    pub fn open_verified(store: Arc<Store>, key_file: &Path) -> Result<AuditLog, AuditError> {
        let log = AuditLog::open(store, key_file)?;
        match log.verify(None) {
            Ok(_) => Ok(log),
            Err(VerifyError::Broken(b)) => Err(AuditError::Chain(format!(
                "{b}; start-up stopped: run `polewatch audit verify`, keep a copy of the store, and find out what happened before anything is appended"
            ))),
            Err(VerifyError::Store(e)) => Err(write_err(e)),
        }
    }

    /// Refuses a log that does not continue the chain the key was last used with: shorter (cut short,
    /// or a lost store recreated empty) or with another entry where the key's last one was.
    pub fn check_continues(&self) -> Result<(), AuditError> {
        let Some(file) = &self.key_file else { return Ok(()) };
        let Some(rec) = ChainHead::load(file)? else { return Ok(()) };
        let at = jiff::Timestamp::from_millisecond(rec.at_ms).map(|t| t.to_string()).unwrap_or_default();
        let head = self.store.audit_head_seq().map_err(write_err)?;
        let restart = "if the store was lost, `polewatch audit restart-chain` records that and starts a new chain; otherwise restore the store from its backup";
        if head < rec.seq {
            return Err(AuditError::Chain(format!(
                "the audit key was last used with entry {} (at {at}), but this log ends at entry {head}: the chain was cut short or started again over a lost one; refusing to continue it ({restart})",
                rec.seq
            )));
        }
        let found = self
            .store
            .audit_record(rec.seq)
            .map_err(write_err)?
            .map(|bytes| decode_record(&AuditRecord { key_seq: Some(rec.seq), bytes }));
        match found {
            Some(Ok(e)) if super::hex::encode(&e.hash) == rec.hash => Ok(()),
            Some(Ok(_)) => Err(AuditError::Chain(format!(
                "entry {} is not the entry the audit key last wrote (at {at}): the chain was replaced; refusing to continue it ({restart})",
                rec.seq
            ))),
            Some(Err(u)) => Err(AuditError::Chain(format!("entry {} cannot be read: {}", rec.seq, u.0))),
            None => Err(AuditError::Chain(format!(
                "entry {}, the last one the audit key wrote (at {at}), is missing ({restart})",
                rec.seq
            ))),
        }
    }

    /// The operator's explicit action after a store was lost: on an empty log, starts a new chain whose
    /// first entry says so, naming the chain that was lost and what the lost store held. Returns its seq.
    pub fn restart_chain(&self, by: &str, reason: &str, lost: &str) -> Result<u64, AuditError> {
        if !self.store.audit_is_empty().map_err(write_err)? {
            return Err(AuditError::Chain(
                "the audit log is not empty: a chain is restarted only over a lost one".into(),
            ));
        }
        let previous = match &self.key_file {
            Some(f) => ChainHead::load(f)?,
            None => None,
        };
        let prev = match &previous {
            Some(h) => format!(
                "the previous chain ended at entry {} (hash {}, at {})",
                h.seq,
                h.hash,
                jiff::Timestamp::from_millisecond(h.at_ms).map(|t| t.to_string()).unwrap_or_default()
            ),
            None => "no record of the previous chain's head".into(),
        };
        let entry = NewAuditEntry {
            user: by.to_string(),
            source: "cli".into(),
            action: Some(crate::access::Action::AuditChainRestarted),
            object: "audit log".into(),
            outcome: Some(crate::access::Outcome::Ok),
            detail: format!("new chain started by an operator: {reason}; {prev}; lost: {lost}"),
            ..NewAuditEntry::default()
        };
        self.record(entry)
    }

    /// Records the chain head beside the key after an append (best effort: a failure is logged, and the
    /// record stays behind the log, which the check accepts).
    fn note_head(&self, last_seq: u64) {
        let Some(file) = &self.key_file else { return };
        let mut recorded = self.recorded.lock().unwrap_or_else(|e| e.into_inner());
        if last_seq <= *recorded {
            return;
        }
        let entry = self
            .store
            .audit_record(last_seq)
            .ok()
            .flatten()
            .and_then(|bytes| decode_record(&AuditRecord { key_seq: Some(last_seq), bytes }).ok());
        let Some(e) = entry else { return };
        let head = ChainHead { seq: last_seq, hash: super::hex::encode(&e.hash), at_ms: e.at_ms };
        match head.save(file) {
            Ok(()) => *recorded = last_seq,
            Err(err) => log::error!(seq = last_seq; "cannot record the audit chain head beside the key: {err}"),
        }
    }

    fn check_head(&self) -> Result<(), AuditError> {
        let head = self.store.audit_head_seq().map_err(write_err)?;
        if head == 0 {
            return Ok(());
        }
        let entry = self
            .store
            .audit_record(head)
            .map_err(write_err)?
            .map(|bytes| decode_record(&AuditRecord { key_seq: Some(head), bytes }));
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
    pub fn latest(
        &self,
        limit: usize,
        user: Option<&str>,
        action: Option<&str>,
    ) -> Result<Vec<super::AuditEntry>, AuditError> {
        let action =
            action.map(super::filter::parse_action).transpose().map_err(|e| AuditError::Write(e.to_string()))?;
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
        if let Ok(first) = &result {
            self.note_head(first + entries.len() as u64 - 1);
        }
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
        Some(h) => format!(
            "audit log OK: {} entries; head seq {} at {} hash {}",
            r.entries,
            h.seq,
            h.at,
            super::hex::encode(&h.hash)
        ),
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
