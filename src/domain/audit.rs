//! The audit log's vocabulary: what happened ([`Action`]), how it ended ([`Outcome`]), an entry as a
//! caller gives it ([`NewAuditEntry`]) and where entries go ([`AuditSink`]). The chain that implements the
//! sink is `access::audit`; the store and every front door record through the trait.

use serde::{Deserialize, Serialize};

/// What happened, for the audit log. Names are stable: they are what auditors filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Login,
    LoginFailed,
    Logout,
    Search,
    ViewRead,
    ViewImage,
    Export,
    HoldPlaced,
    HoldReleased,
    AlertVerified,
    AlertRejected,
    HotlistChanged,
    UserAdded,
    UserChanged,
    UserLocked,
    UserUnlocked,
    TrainingRecorded,
    PasswordChanged,
    ConfigReloaded,
    RetentionPurge,
    ReleaseRequested,
    ReleaseDecided,
    AuditViewed,
    AuditCheckpoint,
    /// The list of release requests (plates, case numbers, agencies) was read.
    ReleasesViewed,
    /// The list of users (people, their organisations and roles) was read.
    UsersViewed,
    /// An operator started a new audit chain over a lost one (`polewatch audit restart-chain`).
    AuditChainRestarted,
    /// An inbound command refused before it was applied (malformed, unknown, retained, unsigned…).
    CommandRejected,
    /// An operator confirmed the clock and a large retention purge (`cmd/confirm_purge`).
    PurgeConfirmed,
    /// The audit chain was verified through the running daemon (the result is in the entry).
    AuditVerified,
    /// A compliance report for a period was produced (the period and flag count are in the entry).
    AuditReport,
    /// The alert queue (hits with read text, list entry and match kind) or an alert's crop was read, or
    /// its live stream opened.
    AlertsViewed,
    /// The evidence holds (read ids, case numbers, who placed them) and the retention state were read.
    HoldsViewed,
    /// The hotlists in force or their entries (plates) were read.
    HotlistsViewed,
    /// The Cameras page's state (live) was opened.
    CamerasViewed,
    /// The store's disk watermark step changed (warn, no frames, no crops, full, or back).
    DiskWatermark,
    /// The store's encryption key was rotated, or a rotation started or resumed (`polewatch store rotate-key`).
    StoreKeyRotated,
    /// The store was converted from the sled layout of earlier versions (`polewatch store migrate-sled`).
    StoreMigrated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    /// Refused by policy (no permission, no training, locked, missing purpose…).
    Denied,
    Error,
}

/// One audit entry as a caller gives it; the log adds sequence number, time and chain fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NewAuditEntry {
    /// Username, or `system` / `central:<by>` for the daemon itself and the central server.
    pub user: String,
    pub organisation: String,
    /// Source address (`127.0.0.1:51234`), `cli`, `mqtt` or `daemon`.
    pub source: String,
    pub action: Option<Action>,
    /// What was acted on: a read id, a user name, a list name, a release request id…
    pub object: String,
    /// The plate or partial plate searched, exactly as given.
    pub query: String,
    pub purpose: String,
    pub case_number: String,
    pub result_count: Option<u64>,
    pub outcome: Option<Outcome>,
    /// Why it was denied or failed; never holds a password.
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log write failed: {0}")]
    Write(String),
    #[error("audit key: {0}")]
    Key(String),
    /// The chain in the store is not the one the key was last used with, or an entry is broken.
    #[error("audit log: {0}")]
    Chain(String),
}

/// Where audit entries go. A failure to record must stop the access being recorded.
pub trait AuditSink: Send + Sync {
    /// Appends the entry durably; returns its sequence number.
    fn record(&self, entry: NewAuditEntry) -> Result<u64, AuditError>;
}
