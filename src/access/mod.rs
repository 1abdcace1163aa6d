//! Access control and accountability (product R-AC1…R-AC4; the department's ALPR policy 471.4–471.8):
//! users with roles and training, sessions, the tamper-evident audit log, release requests.
//!
//! - [`roles`]: who may do what: one table.
//! - [`audit`]: append-only, hash-chained, MACed audit log (its own tree in the store, never purged by retention).
//! - [`users`]: users, training, lockout, inactivity (pure rules).
//! - [`password`]: password rules and argon2id hashing; [`session`]: console sessions in memory.
//! - [`service`]: [`service::UserService`], the user rules on the store, every change audited.
//! - [`release`]: release requests (471.7); [`export`]: signed bundles (the posted policy is
//!   `config::policy`: it is rendered from the whole configuration).
//! - [`text`]: the length and character limits of every free-text field the API and MQTT commands take.
//!
//! Everything that touches stored reads goes through an [`AuditSink`] first: if the entry cannot be
//! written, the access does not happen.

pub mod audit;
pub mod export;
pub mod password;
pub mod release;
pub mod report;
pub mod roles;
pub mod service;
pub mod session;
pub mod text;
pub mod users;

pub use roles::{Permission, Role};

// The audit action types and the sink trait are ground-floor types (the store records through them too).
pub use crate::domain::audit::{Action, AuditError, AuditSink, NewAuditEntry, Outcome};
