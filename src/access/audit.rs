//! The tamper-evident audit log (policy 471.6 (a): every access documented by name, date and time).
//!
//! Entries are numbered from 1 without gaps, chained and MACed with a key kept outside the store:
//!
//! ```text
//! hash = SHA-256(prev_hash ‖ canonical(entry))      prev_hash of entry 1: 32 zero bytes
//! mac  = HMAC-SHA256(key, hash)
//! ```
//!
//! `canonical(entry)` is compact JSON (serde_json) of [`Canonical`]: `{"v":1,"seq":…,"at_ms":…,
//! "user":…,"organisation":…,"source":…,"action":…,"object":…,"query":…,"purpose":…,"case_number":…,
//! "result_count":…,"outcome":…,"detail":…}`, fields in exactly that order, no whitespace, integers in
//! decimal, strings as serde_json escapes them (UTF-8 kept, `"` `\` and control characters escaped), an
//! absent result count as `null`, action and outcome by their snake_case names. serde_json writes a
//! struct's fields in declaration order, so the bytes follow from the entry alone. Changing a field, the
//! order or an action's name breaks every existing chain: add a new `v` instead.
//!
//! Stored form (see `store::audit`): the entry as JSON ([`AuditEntry`], hashes and MAC as lowercase
//! hex) under its sequence number. Decoding is strict (no unknown fields, lowercase hex only), so any
//! change to the stored bytes either fails to decode or changes what is hashed.
//!
//! What [`verify`] catches, reported at the first bad sequence number: an edited entry (hash), a
//! deleted, inserted or reordered one (sequence gap or `prev_hash`), a chain rebuilt with another key
//! (MAC, at entry 1). A truncated tail leaves a valid shorter chain: it is caught by a [`Checkpoint`]
//! kept off the box, and by the store's head pointer unless that was rewritten too.

mod filter;
mod key;
mod sink;
mod verify;

pub use filter::{Filter, UnknownAction, action_name, parse_action};
pub use key::{AuditKey, ChainHead, KeyError, KeyTextError, head_path};
pub use sink::{AuditLog, VerifyError, verify_summary};
pub use verify::{
    Broken, BrokenReason, Checkpoint, CheckpointError, Unreadable, Verifier, VerifyReport, decode_record, verify,
};

use super::{Action, NewAuditEntry, Outcome};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A SHA-256 or HMAC-SHA256 output.
pub type Digest = [u8; 32];

/// The `prev_hash` of entry 1.
pub const GENESIS: Digest = [0; 32];

/// Version of the canonical encoding, hashed with every entry.
pub const CANONICAL_VERSION: u32 = 1;

/// One entry as stored: what the caller gave, plus sequence number, time and chain fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub seq: u64,
    /// UTC, milliseconds since the Unix epoch.
    pub at_ms: i64,
    pub user: String,
    pub organisation: String,
    pub source: String,
    pub action: Action,
    pub object: String,
    pub query: String,
    pub purpose: String,
    pub case_number: String,
    pub result_count: Option<u64>,
    pub outcome: Outcome,
    pub detail: String,
    #[serde(with = "hex32")]
    pub prev_hash: Digest,
    #[serde(with = "hex32")]
    pub hash: Digest,
    #[serde(with = "hex32")]
    pub mac: Digest,
}

/// What is hashed; see the module documentation. Field order is part of the format.
#[derive(Serialize)]
struct Canonical<'a> {
    v: u32,
    seq: u64,
    at_ms: i64,
    user: &'a str,
    organisation: &'a str,
    source: &'a str,
    action: Action,
    object: &'a str,
    query: &'a str,
    purpose: &'a str,
    case_number: &'a str,
    result_count: Option<u64>,
    outcome: Outcome,
    detail: &'a str,
}

/// The canonical bytes of an entry (without `prev_hash`, `hash` and `mac`).
pub fn canonical(e: &AuditEntry) -> Vec<u8> {
    let c = Canonical {
        v: CANONICAL_VERSION,
        seq: e.seq,
        at_ms: e.at_ms,
        user: &e.user,
        organisation: &e.organisation,
        source: &e.source,
        action: e.action,
        object: &e.object,
        query: &e.query,
        purpose: &e.purpose,
        case_number: &e.case_number,
        result_count: e.result_count,
        outcome: e.outcome,
        detail: &e.detail,
    };
    // Strings, integers and unit enums only: serde_json cannot fail on this.
    serde_json::to_vec(&c).expect("canonical audit entry serialises")
}

/// `SHA-256(prev_hash ‖ canonical(entry))`.
pub fn entry_hash(e: &AuditEntry) -> Digest {
    let mut h = Sha256::new();
    h.update(e.prev_hash);
    h.update(canonical(e));
    h.finalize().into()
}

/// Why an entry cannot be recorded at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidEntry {
    #[error("an audit entry needs an action")]
    NoAction,
    #[error("an audit entry needs an outcome")]
    NoOutcome,
    #[error("an audit entry needs a user (a name, `system` or `central:<by>`)")]
    NoUser,
}

/// Checks what a caller gave before anything is written.
pub fn check(new: &NewAuditEntry) -> Result<(Action, Outcome), InvalidEntry> {
    let action = new.action.ok_or(InvalidEntry::NoAction)?;
    let outcome = new.outcome.ok_or(InvalidEntry::NoOutcome)?;
    if new.user.trim().is_empty() {
        return Err(InvalidEntry::NoUser);
    }
    Ok((action, outcome))
}

/// Builds entry `seq` after `prev_hash`, with its hash and MAC.
pub fn seal(
    new: &NewAuditEntry,
    seq: u64,
    at_ms: i64,
    prev_hash: Digest,
    key: &AuditKey,
) -> Result<AuditEntry, InvalidEntry> {
    let (action, outcome) = check(new)?;
    let mut e = AuditEntry {
        seq,
        at_ms,
        user: new.user.clone(),
        organisation: new.organisation.clone(),
        source: new.source.clone(),
        action,
        object: new.object.clone(),
        query: new.query.clone(),
        purpose: new.purpose.clone(),
        case_number: new.case_number.clone(),
        result_count: new.result_count,
        outcome,
        detail: new.detail.clone(),
        prev_hash,
        hash: GENESIS,
        mac: GENESIS,
    };
    e.hash = entry_hash(&e);
    e.mac = key.mac(&e.hash);
    Ok(e)
}

/// The stored bytes of an entry.
pub fn encode(e: &AuditEntry) -> Vec<u8> {
    serde_json::to_vec(e).expect("audit entry serialises")
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-29T14:03:07.250Z`.
pub fn format_ms(at_ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(at_ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => format!("{at_ms} ms"),
    }
}

pub(crate) mod hex {
    pub fn encode(b: &[u8]) -> String {
        ::hex::encode(b)
    }

    /// Lowercase hex only, so one value has one spelling.
    pub fn decode(s: &str) -> Option<Vec<u8>> {
        if s.bytes().any(|c| c.is_ascii_uppercase()) {
            return None;
        }
        ::hex::decode(s).ok()
    }
}

pub(crate) mod hex32 {
    pub fn serialize<S: serde::Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex::encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s: &str = serde::Deserialize::deserialize(d)?;
        super::hex::decode(s)
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .ok_or_else(|| serde::de::Error::custom("expected 64 lowercase hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(i: u64) -> NewAuditEntry {
        NewAuditEntry {
            user: format!("officer{}", i % 3),
            organisation: "Auburn PD".into(),
            source: "10.0.0.7:51234".into(),
            action: Some(if i.is_multiple_of(2) { Action::Search } else { Action::ViewRead }),
            object: format!("read-{i}"),
            query: "7AB*".into(),
            purpose: "stolen vehicle".into(),
            case_number: "C-2026-1".into(),
            result_count: Some(i),
            outcome: Some(Outcome::Ok),
            detail: String::new(),
        }
    }

    #[test]
    fn canonical_bytes_are_fixed() {
        let key = AuditKey::from_bytes(&[7; 32]).unwrap();
        let e = seal(&sample(2), 1, 1_700_000_000_123, GENESIS, &key).unwrap();
        assert_eq!(
            String::from_utf8(canonical(&e)).unwrap(),
            r#"{"v":1,"seq":1,"at_ms":1700000000123,"user":"officer2","organisation":"Auburn PD","source":"10.0.0.7:51234","action":"search","object":"read-2","query":"7AB*","purpose":"stolen vehicle","case_number":"C-2026-1","result_count":2,"outcome":"ok","detail":""}"#
        );
        // Computed independently (Python hashlib/hmac from the module documentation), so an accidental
        // format change shows up here and not as "every log is edited".
        assert_eq!(hex::encode(&e.hash), "0ee2cf664ddc41f0780628aa8ac09dcf7f968e81a89a48fe332e5a2eb7b62a23");
        assert_eq!(hex::encode(&e.mac), "49b0d0f62715dcb1e0c6d82888039a046d6c37a843ee06927e6ea8f745295bde");
    }

    #[test]
    fn seal_chains_and_macs() {
        let key = AuditKey::from_bytes(&[1; 32]).unwrap();
        let a = seal(&sample(1), 1, 10, GENESIS, &key).unwrap();
        let b = seal(&sample(2), 2, 11, a.hash, &key).unwrap();
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(b.hash, entry_hash(&b));
        assert!(key.verify_mac(&b.hash, &b.mac));
        let other = AuditKey::from_bytes(&[2; 32]).unwrap();
        assert!(!other.verify_mac(&b.hash, &b.mac));
    }

    #[test]
    fn entries_without_action_outcome_or_user_are_refused() {
        let key = AuditKey::from_bytes(&[1; 32]).unwrap();
        let mut n = sample(1);
        n.action = None;
        assert_eq!(seal(&n, 1, 0, GENESIS, &key), Err(InvalidEntry::NoAction));
        let mut n = sample(1);
        n.outcome = None;
        assert_eq!(seal(&n, 1, 0, GENESIS, &key), Err(InvalidEntry::NoOutcome));
        let mut n = sample(1);
        n.user = " ".into();
        assert_eq!(seal(&n, 1, 0, GENESIS, &key), Err(InvalidEntry::NoUser));
    }

    #[test]
    fn stored_form_round_trips_and_is_strict() {
        let key = AuditKey::from_bytes(&[1; 32]).unwrap();
        let e = seal(&sample(3), 1, 10, GENESIS, &key).unwrap();
        let bytes = encode(&e);
        assert_eq!(serde_json::from_slice::<AuditEntry>(&bytes).unwrap(), e);
        let text = String::from_utf8(bytes).unwrap();
        let upper = text.replace(&hex::encode(&e.hash), &hex::encode(&e.hash).to_uppercase());
        assert!(serde_json::from_str::<AuditEntry>(&upper).is_err(), "uppercase hex is a second spelling");
        let extra = text.replacen('{', r#"{"note":"x","#, 1);
        assert!(serde_json::from_str::<AuditEntry>(&extra).is_err());
    }

    #[test]
    fn times_print_with_milliseconds() {
        assert_eq!(format_ms(1_700_000_000_120), "2023-11-14T22:13:20.120Z");
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
    }
}
