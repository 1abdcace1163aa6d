//! Release requests as the store keeps them (policy 471.7). The rules on them (scope limits, who may
//! decide, when an export may run) are in `access::release`.

use serde::{Deserialize, Serialize};

/// What a request asks for: reads of these plates (exact or wildcard) in a time range, or the reads held
/// as evidence under a case number (evidence export).
///
/// Scope rules (`access::release::check_new`): listed exact plates may span any time range; a scope with a wildcard
/// spans at most the configured maximum (`access.max_release_days`); a pattern with no literal start or
/// end (`*`, `?*`, `*7*`) reaches the whole store and needs `whole_store: true`, which the approver
/// must confirm in the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    Plates {
        plates: Vec<String>,
        from_ms: i64,
        to_ms: i64,
        #[serde(default)]
        whole_store: bool,
    },
    HeldForCase {
        case_number: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRequest {
    pub agency: String,
    /// The agency's jurisdiction (e.g. a state code), checked against `access.allowed_jurisdictions`.
    pub jurisdiction: String,
    pub requester_name: String,
    pub purpose: String,
    pub case_number: String,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub reviewer: String,
    pub approved: bool,
    pub at_ms: i64,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: uuid::Uuid,
    #[serde(flatten)]
    pub request: NewRequest,
    /// The user who put the written request on file.
    pub entered_by: String,
    pub entered_at_ms: i64,
    pub decision: Option<Decision>,
    /// Exports made under this request (bundle ids), for the record.
    #[serde(default)]
    pub exports: Vec<String>,
}
