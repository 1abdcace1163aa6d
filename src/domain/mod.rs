//! The ground floor: the types every other module shares, importing nothing of ours.
//!
//! - [`read`]: [`Plate`] (personal data, never displayed), [`ReadId`], the read records and evidence
//!   [`Hold`]s.
//! - [`confusion`]: the one table of characters OCR mixes up, used by the recognizer's plate formats,
//!   the tracker's text distance and the hotlist matcher.
//! - [`audit`]: the audit log's vocabulary ([`Action`], [`Outcome`], [`NewAuditEntry`]) and the
//!   [`AuditSink`] every access is recorded through.
//! - [`user`], [`role`], [`release`]: the records of users and release requests as stored; the rules on
//!   them are in `access`.
//!
//! Rule: nothing here names another module of the crate (`scripts/import-graph` checks it).

pub mod audit;
pub mod confusion;
pub mod read;
pub mod release;
pub mod role;
pub mod user;

pub use audit::{Action, AuditError, AuditSink, NewAuditEntry, Outcome};
pub use read::{Candidate, Hold, HoldRequest, ImageKind, NewRead, Plate, PlateError, ReadId, Release, StoredRead};
