//! Evidence changes: holds, alert decisions, release requests and their decisions. This is the one door
//! through which the HTTPS API and the central server's MQTT commands change evidence, so both keep the
//! same order:
//! 1. the caller's permission;
//! 2. whether the change can be made (the read exists, the hold is not released, the alert is undecided…);
//!    each refusal is audited with why (outcome `denied` for a rule, `error` for what does not exist);
//! 3. `ok` is recorded, and only then the change is made. Should the store still fail, a second entry with
//!    outcome `error` names the first as void: the log never leaves an `ok` alone for a change not made.
//!
//! Check-then-act runs under one lock, so a check cannot go stale before its act, whichever door the two
//! callers came through. Every call writes (and syncs) the audit log: async callers run it on the blocking
//! pool.

use crate::access::release::{self, NewRequest, Request};
use crate::access::roles::{self, Permission, Role};
use crate::access::text::{CaseNumber, Note, Reason, for_audit};
use crate::access::{Action, AuditError, AuditSink, NewAuditEntry, Outcome};
use crate::store::{AlertRecord, Decision, Hold, HoldRequest, ReadId, Store, StoreError, Verification};
use std::sync::{Arc, Mutex};

/// Who asks, and on what authority.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Who, as the records they make name them (a hold's `placed_by`, a verification's `by`): a console
    /// user's name, or the `by` of a central server's command.
    pub name: String,
    pub organisation: String,
    /// Where the request came from: the console client's address, or `mqtt` and the command's id.
    pub source: String,
    pub authority: Authority,
}

/// What an [`Actor`] may do.
#[derive(Debug, Clone)]
pub enum Authority {
    /// A console user: what their roles permit.
    Roles(Vec<Role>),
    /// The central server over its command topics, which the department entrusts with every evidence
    /// change; who sent each command is its `by`, named in the audit entry.
    Central,
}

impl Actor {
    fn may(&self, p: Permission) -> bool {
        match &self.authority {
            Authority::Roles(r) => roles::may(r, p),
            Authority::Central => true,
        }
    }

    /// As the audit log names them: `central:<by>` for the central server.
    pub fn audit_user(&self) -> String {
        match self.authority {
            Authority::Roles(_) => self.name.clone(),
            Authority::Central => format!("central:{}", self.name),
        }
    }

    /// An audit entry for `action` by this actor; the caller fills in the rest.
    pub fn entry(&self, action: Action) -> NewAuditEntry {
        NewAuditEntry {
            user: self.audit_user(),
            organisation: self.organisation.clone(),
            source: self.source.clone(),
            action: Some(action),
            ..Default::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// The actor's roles lack the permission; audited as denied.
    #[error("your role may not {0}")]
    Forbidden(String),
    /// The request itself is wrong: not an id, an expiry in the past, a release outside the limits.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(&'static str),
    /// The record's state forbids it: already released, already decided.
    #[error("{0}")]
    Conflict(String),
    /// The audit log could not record it, so nothing was done.
    #[error("the audit log cannot record this access, so it is refused")]
    Audit(#[source] AuditError),
    /// The record could not be read to check the change; nothing was recorded or done.
    #[error("the store cannot be read: {0}")]
    Store(#[source] StoreError),
    /// Recorded as ok, then refused by the store: a second entry voids the first.
    #[error("not done: {0}")]
    NotDone(#[source] StoreError),
}

pub type Result<T> = std::result::Result<T, EvidenceError>;

/// A hold as asked for; the read id as received, so that a malformed one is audited too.
#[derive(Debug, Clone)]
pub struct HoldAsk {
    pub read_id: String,
    pub case_number: CaseNumber,
    pub reason: Reason,
    /// Absent: until released.
    pub expires_at_ms: Option<i64>,
}

/// A decision on a release request.
#[derive(Debug, Clone, Default)]
pub struct ReleaseDecision {
    pub approved: bool,
    pub note: Note,
    /// Required to approve a request whose scope is the whole store.
    pub confirm_whole_store: bool,
}

pub struct Evidence {
    store: Arc<Store>,
    audit: Arc<dyn AuditSink>,
    limits: release::Limits,
    /// Serialises check-then-act of every change made here.
    changes: Mutex<()>,
}

impl Evidence {
    pub fn new(store: Arc<Store>, audit: Arc<dyn AuditSink>, limits: release::Limits) -> Self {
        Evidence { store, audit, limits, changes: Mutex::new(()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses, and audits the refusal, unless the actor may do one of `ps`.
    pub fn require(&self, who: &Actor, ps: &[Permission], action: Action, object: &str) -> Result<()> {
        if ps.iter().any(|p| who.may(*p)) {
            return Ok(());
        }
        let names: Vec<&str> = ps.iter().map(|p| p.as_str()).collect();
        let entry = NewAuditEntry {
            object: for_audit(object),
            outcome: Some(Outcome::Denied),
            detail: format!("role lacks {}", names.join(" or ")),
            ..who.entry(action)
        };
        self.audit.record(entry).map_err(EvidenceError::Audit)?;
        Err(EvidenceError::Forbidden(names.join(" or ").replace('_', " ")))
    }

    /// Audits a refusal and returns it.
    fn refuse<T>(&self, base: NewAuditEntry, outcome: Outcome, why: EvidenceError) -> Result<T> {
        let entry = NewAuditEntry { outcome: Some(outcome), detail: why.to_string(), ..base };
        self.audit.record(entry).map_err(EvidenceError::Audit)?;
        Err(why)
    }

    /// Records `entry` as ok, then makes the change (see the module's step 3).
    fn act<T>(&self, entry: NewAuditEntry, change: impl FnOnce() -> std::result::Result<T, StoreError>) -> Result<T> {
        act_on(self.audit.as_ref(), entry, change).map_err(Into::into)
    }

    pub fn place_hold(&self, who: &Actor, ask: HoldAsk, now_ms: i64) -> Result<Hold> {
        self.require(who, &[Permission::PlaceHold], Action::HoldPlaced, &ask.read_id)?;
        let base = NewAuditEntry {
            object: for_audit(&ask.read_id),
            case_number: ask.case_number.to_string(),
            detail: ask.reason.to_string(),
            ..who.entry(Action::HoldPlaced)
        };
        let Some(rid) = parse_read_id(&ask.read_id) else {
            return self.refuse(base, Outcome::Error, EvidenceError::Invalid("not a read id".into()));
        };
        if ask.expires_at_ms.is_some_and(|e| e <= now_ms) {
            let why = EvidenceError::Invalid("a hold's expiry must be in the future".into());
            return self.refuse(base, Outcome::Denied, why);
        }
        let _g = self.lock();
        if self.store.get_read(rid).map_err(EvidenceError::Store)?.is_none() {
            return self.refuse(base, Outcome::Error, EvidenceError::NotFound("no such read"));
        }
        let req = HoldRequest {
            placed_by: who.name.clone(),
            case_number: ask.case_number.into_string(),
            reason: ask.reason.into_string(),
            expires_at_ms: ask.expires_at_ms,
        };
        self.act(base, || self.store.place_hold(rid, req, now_ms))
    }

    pub fn release_hold(
        &self,
        who: &Actor,
        read_id: &str,
        hold_id: uuid::Uuid,
        reason: Reason,
        now_ms: i64,
    ) -> Result<Hold> {
        self.require(who, &[Permission::ReleaseHold], Action::HoldReleased, read_id)?;
        let base = NewAuditEntry {
            object: format!("{}/{hold_id}", for_audit(read_id)),
            detail: reason.to_string(),
            ..who.entry(Action::HoldReleased)
        };
        let Some(rid) = parse_read_id(read_id) else {
            return self.refuse(base, Outcome::Error, EvidenceError::Invalid("not a read id".into()));
        };
        let _g = self.lock();
        let holds = self.store.holds_for(rid).map_err(EvidenceError::Store)?;
        match holds.iter().find(|h| h.id == hold_id) {
            None => self.refuse(base, Outcome::Error, EvidenceError::NotFound("no such hold on this read")),
            Some(h) if h.released.is_some() => {
                self.refuse(base, Outcome::Denied, EvidenceError::Conflict("the hold was already released".into()))
            }
            Some(h) => {
                let base = NewAuditEntry { case_number: h.case_number.clone(), ..base };
                self.act(base, || self.store.release_hold(rid, hold_id, &who.name, reason.as_str(), now_ms))
            }
        }
    }

    /// A person's verification of an alert (policy 471.4(f)): confirmed or rejected, once.
    pub fn decide_alert(
        &self,
        who: &Actor,
        alert_id: uuid::Uuid,
        decision: Decision,
        note: Note,
        now_ms: i64,
    ) -> Result<AlertRecord> {
        let action = if decision == Decision::Verified { Action::AlertVerified } else { Action::AlertRejected };
        self.require(who, &[Permission::VerifyAlert], action, &alert_id.to_string())?;
        let base = NewAuditEntry { object: alert_id.to_string(), detail: note.to_string(), ..who.entry(action) };
        let _g = self.lock();
        match self.store.alert(alert_id).map_err(EvidenceError::Store)? {
            None => self.refuse(base, Outcome::Error, EvidenceError::NotFound("no such alert")),
            Some(a) if a.verification.is_some() => {
                self.refuse(base, Outcome::Denied, EvidenceError::Conflict("the alert was already decided".into()))
            }
            Some(_) => {
                let v = Verification { decision, by: who.name.clone(), at_ms: now_ms, note: note.into_string() };
                self.act(base, || self.store.verify_alert(alert_id, v))
            }
        }
    }

    /// A written request for data to leave the box (471.7), checked against the configured limits.
    pub fn request_release(&self, who: &Actor, ask: NewRequest, now_ms: i64) -> Result<uuid::Uuid> {
        self.require(who, &[Permission::RequestRelease], Action::ReleaseRequested, "")?;
        let scope = if ask.scope.whole_store() { "; WHOLE STORE" } else { "" };
        let base = NewAuditEntry {
            purpose: for_audit(&ask.purpose),
            case_number: for_audit(&ask.case_number),
            detail: format!("{} ({}){scope}", for_audit(&ask.agency), for_audit(&ask.jurisdiction)),
            ..who.entry(Action::ReleaseRequested)
        };
        if let Err(e) = release::check_new(&ask, &self.limits) {
            return self.refuse(base, Outcome::Denied, EvidenceError::Invalid(e.to_string()));
        }
        let r = Request {
            id: uuid::Uuid::now_v7(),
            request: ask,
            entered_by: who.name.clone(),
            entered_at_ms: now_ms,
            decision: None,
            exports: vec![],
        };
        self.act(NewAuditEntry { object: r.id.to_string(), ..base }, || self.store.put_release(&r))?;
        Ok(r.id)
    }

    /// Approves or refuses a release request, once; a whole-store scope needs the approver's confirmation.
    pub fn decide_release(&self, who: &Actor, id: uuid::Uuid, d: ReleaseDecision, now_ms: i64) -> Result<()> {
        self.require(who, &[Permission::ApproveRelease], Action::ReleaseDecided, &id.to_string())?;
        let _g = self.lock();
        let base = NewAuditEntry { object: id.to_string(), ..who.entry(Action::ReleaseDecided) };
        let Some(mut r) = self.store.release(id).map_err(EvidenceError::Store)? else {
            return self.refuse(base, Outcome::Error, EvidenceError::NotFound("no such release request"));
        };
        let base =
            NewAuditEntry { case_number: r.request.case_number.clone(), purpose: r.request.purpose.clone(), ..base };
        if let Err(e) =
            release::decide_confirmed(&mut r, &who.name, d.approved, d.confirm_whole_store, d.note.as_str(), now_ms)
        {
            return self.refuse(base, Outcome::Denied, EvidenceError::Conflict(e.to_string()));
        }
        let mut detail = if d.approved { "approved".to_string() } else { "refused".to_string() };
        if r.request.scope.whole_store() {
            detail.push_str("; the scope is the WHOLE STORE, confirmed by the approver");
        }
        if !d.note.as_str().is_empty() {
            detail.push_str(&format!("; note: {}", d.note));
        }
        self.act(NewAuditEntry { detail, ..base }, || self.store.put_release(&r))
    }
}

impl Evidence {
    /// Notes a written export bundle on its request (the export itself was audited as it was written),
    /// under the lock so that a decision made meanwhile is not overwritten.
    pub fn note_export(&self, id: uuid::Uuid, dir: &str) -> Result<()> {
        let _g = self.lock();
        let Some(mut r) = self.store.release(id).map_err(EvidenceError::Store)? else {
            return Err(EvidenceError::NotFound("no such release request"));
        };
        r.exports.push(dir.to_string());
        self.store.put_release(&r).map_err(EvidenceError::NotDone)
    }
}

fn parse_read_id(id: &str) -> Option<ReadId> {
    id.parse::<uuid::Uuid>().ok().map(ReadId)
}

/// A checked change made through `sink`: `entry` recorded as ok, then the change; a store failure is
/// recorded as a second entry that voids the first by its seq. For changes outside this service (the
/// hotlists, a purge confirmation) that follow the same order.
pub fn act_on<T, E: std::fmt::Display>(
    sink: &dyn AuditSink,
    entry: NewAuditEntry,
    change: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, ActError<E>> {
    let seq = sink.record(NewAuditEntry { outcome: Some(Outcome::Ok), ..entry.clone() }).map_err(ActError::Audit)?;
    change().map_err(|e| {
        let void = NewAuditEntry {
            outcome: Some(Outcome::Error),
            detail: format!("not done, entry #{seq} is void: {e}"),
            ..entry
        };
        if let Err(ae) = sink.record(void) {
            log::error!("audit: cannot record that entry #{seq} was not done: {ae}");
        }
        ActError::NotDone(e)
    })
}

/// Why [`act_on`] did not make its change.
#[derive(Debug, thiserror::Error)]
pub enum ActError<E> {
    #[error("the audit log cannot record this access, so it is refused")]
    Audit(#[source] AuditError),
    #[error("not done: {0}")]
    NotDone(E),
}

impl From<ActError<StoreError>> for EvidenceError {
    fn from(e: ActError<StoreError>) -> Self {
        match e {
            ActError::Audit(a) => EvidenceError::Audit(a),
            ActError::NotDone(s) => EvidenceError::NotDone(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::audit::{AuditKey, AuditLog};
    use crate::store::{Candidate, NewRead, Plate, StoreOptions};

    #[derive(Default)]
    struct Memory(Mutex<Vec<NewAuditEntry>>);

    impl AuditSink for Memory {
        fn record(&self, e: NewAuditEntry) -> std::result::Result<u64, AuditError> {
            let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
            v.push(e);
            Ok(v.len() as u64 + 40)
        }
    }

    fn entry() -> NewAuditEntry {
        NewAuditEntry {
            user: "olive".into(),
            action: Some(Action::AlertVerified),
            object: "a1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_change_that_fails_after_its_ok_entry_voids_it_by_seq() {
        let sink = Memory::default();
        let r: std::result::Result<(), _> =
            act_on(&sink, entry(), || Err(StoreError::InvalidAlert("alert a1 was already decided".into())));
        assert!(matches!(r, Err(ActError::NotDone(_))));
        let v = sink.0.lock().unwrap();
        assert_eq!(v.iter().map(|e| e.outcome).collect::<Vec<_>>(), vec![Some(Outcome::Ok), Some(Outcome::Error)]);
        assert!(v[1].detail.starts_with("not done, entry #41 is void:"), "{}", v[1].detail);
        assert_eq!((v[1].action, v[1].object.as_str()), (Some(Action::AlertVerified), "a1"));
    }

    #[test]
    fn a_change_that_works_leaves_one_ok_entry() {
        let sink = Memory::default();
        assert_eq!(act_on(&sink, entry(), || Ok::<_, StoreError>(7)).ok(), Some(7));
        assert_eq!(sink.0.lock().unwrap().len(), 1);
    }

    /// A real store and audit log in a temp dir, and one stored read.
    fn service() -> (tempfile::TempDir, Evidence, Arc<AuditLog>, ReadId) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&StoreOptions::at(dir.path().join("store"))).unwrap();
        let store = Arc::new(store);
        let log = Arc::new(AuditLog::new(store.clone(), AuditKey::from_bytes(&[3; 32]).unwrap()));
        let read = store
            .put_read(NewRead {
                camera_id: "c1".into(),
                captured_at_ms: 1_000,
                plate: Plate::new("7KQX214").unwrap(),
                confidence: 0.9,
                char_confidences: vec![0.9; 7],
                candidates: vec![Candidate { text: "7KQX214".into(), confidence: 0.9 }],
                bbox: [0, 0, 100, 30],
                region: None,
                frame_seq: 1,
                crop_jpeg: None,
                frame_jpeg: None,
            })
            .unwrap();
        let limits = release::Limits { allowed_jurisdictions: vec![], max_range_days: 30 };
        (dir, Evidence::new(store, log.clone(), limits), log, read)
    }

    fn console(roles: &[Role]) -> Actor {
        Actor {
            name: "olive".into(),
            organisation: "Auburn PD".into(),
            source: "10.0.0.7:5000".into(),
            authority: Authority::Roles(roles.to_vec()),
        }
    }

    fn central() -> Actor {
        Actor {
            name: "dispatcher 14".into(),
            organisation: String::new(),
            source: "mqtt cmd-1".into(),
            authority: Authority::Central,
        }
    }

    fn ask(read: &str) -> HoldAsk {
        HoldAsk {
            read_id: read.into(),
            case_number: CaseNumber::parse("C-2026-7").unwrap(),
            reason: Reason::parse("evidence in a burglary").unwrap(),
            expires_at_ms: None,
        }
    }

    fn outcomes(log: &AuditLog, action: &str) -> Vec<(String, Outcome, String)> {
        let mut v: Vec<_> =
            log.latest(50, None, Some(action)).unwrap().into_iter().map(|e| (e.user, e.outcome, e.detail)).collect();
        v.reverse();
        v
    }

    #[test]
    fn a_role_without_the_permission_is_refused_and_the_refusal_audited() {
        let (_d, ev, log, read) = service();
        let r = ev.place_hold(&console(&[Role::Auditor]), ask(&read.to_string()), 2_000);
        assert!(matches!(r, Err(EvidenceError::Forbidden(_))), "{r:?}");
        assert_eq!(
            outcomes(&log, "hold_placed"),
            vec![("olive".into(), Outcome::Denied, "role lacks place_hold".into())]
        );
        assert!(ev.store.holds_for(read).unwrap().is_empty());
    }

    #[test]
    fn both_doors_place_and_release_a_hold_with_the_audit_entry_first() {
        let (_d, ev, log, read) = service();
        let h = ev.place_hold(&central(), ask(&read.to_string()), 2_000).unwrap();
        assert_eq!(h.placed_by, "dispatcher 14");
        let entries = outcomes(&log, "hold_placed");
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].0.as_str(), entries[0].1), ("central:dispatcher 14", Outcome::Ok));
        let who = console(&[Role::Supervisor]);
        let reason = || Reason::parse("case closed").unwrap();
        ev.release_hold(&who, &read.to_string(), h.id, reason(), 3_000).unwrap();
        // A second release is refused, and recorded as refused: no second `ok`.
        let again = ev.release_hold(&central(), &read.to_string(), h.id, reason(), 4_000);
        assert!(matches!(again, Err(EvidenceError::Conflict(_))), "{again:?}");
        let released = outcomes(&log, "hold_released");
        assert_eq!(released.iter().map(|e| e.1).collect::<Vec<_>>(), vec![Outcome::Ok, Outcome::Denied]);
    }

    #[test]
    fn what_does_not_exist_or_is_malformed_is_refused_and_audited_as_an_error() {
        let (_d, ev, log, _read) = service();
        let r = ev.place_hold(&central(), ask("not-a-uuid"), 2_000);
        assert!(matches!(r, Err(EvidenceError::Invalid(_))), "{r:?}");
        let r = ev.place_hold(&central(), ask(&uuid::Uuid::now_v7().to_string()), 2_000);
        assert!(matches!(r, Err(EvidenceError::NotFound("no such read"))), "{r:?}");
        let r = ev.decide_alert(&central(), uuid::Uuid::now_v7(), Decision::Verified, Note::default(), 2_000);
        assert!(matches!(r, Err(EvidenceError::NotFound("no such alert"))), "{r:?}");
        assert_eq!(outcomes(&log, "hold_placed").iter().map(|e| e.1).collect::<Vec<_>>(), vec![Outcome::Error; 2]);
        assert_eq!(outcomes(&log, "alert_verified")[0].1, Outcome::Error);
    }

    #[test]
    fn an_expiry_in_the_past_is_refused() {
        let (_d, ev, log, read) = service();
        let mut a = ask(&read.to_string());
        a.expires_at_ms = Some(1_500);
        let r = ev.place_hold(&central(), a, 2_000);
        assert!(matches!(r, Err(EvidenceError::Invalid(_))), "{r:?}");
        assert_eq!(outcomes(&log, "hold_placed")[0].1, Outcome::Denied);
        assert!(ev.store.holds_for(read).unwrap().is_empty());
    }
}
