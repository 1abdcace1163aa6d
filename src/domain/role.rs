//! The roles a user holds (stored with the user). What each role may do is `access::roles`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages user accounts; no access to reads by itself.
    Admin,
    /// Operator's work plus what policy gives the commander or designee: evidence hold release,
    /// release approval (471.7 (b)), exports and hotlists.
    Supervisor,
    /// Searches and views reads, places holds, verifies alerts, requests releases.
    Operator,
    /// Reviews the audit log (471.6 (c)); no access to reads.
    Auditor,
    /// Mounts and aims cameras: sees the cameras' state (and, later, their snapshots), nothing of stored
    /// reads.
    Installer,
}
