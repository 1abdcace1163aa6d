//! Release requests (policy 471.7): stored data leaves the box only against a written request from a
//! law enforcement or prosecutorial agency in an allowed jurisdiction, reviewed and approved by someone
//! other than who entered it. Pure rules; the store keeps the records and `export` writes the bundle.

use serde::{Deserialize, Serialize};

/// What a request asks for: reads of these plates (exact or wildcard) in a time range, or the reads held
/// as evidence under a case number (evidence export).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scope {
    Plates { plates: Vec<String>, from_ms: i64, to_ms: i64 },
    HeldForCase { case_number: String },
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReleaseError {
    #[error("the request needs {0}")]
    Missing(&'static str),
    #[error("agencies in jurisdiction `{0}` may not receive ALPR data (access.allowed_jurisdictions)")]
    Jurisdiction(String),
    #[error("the time range ends before it starts")]
    BadRange,
    #[error("a plate in the request is not a valid plate or pattern")]
    BadPlate,
    #[error("the request was already decided")]
    AlreadyDecided,
    #[error("the person who entered a request may not also approve it")]
    SameReviewer,
    #[error("no approved request: data may not leave the box")]
    NotApproved,
}

/// Checks a request before it is put on file.
pub fn check_new(r: &NewRequest, allowed_jurisdictions: &[String]) -> Result<(), ReleaseError> {
    for (v, what) in [
        (&r.agency, "the requesting agency"),
        (&r.jurisdiction, "the agency's jurisdiction"),
        (&r.requester_name, "the name of the person requesting"),
        (&r.purpose, "the intended purpose"),
    ] {
        if v.trim().is_empty() {
            return Err(ReleaseError::Missing(what));
        }
    }
    if !allowed_jurisdictions.iter().any(|j| j.eq_ignore_ascii_case(r.jurisdiction.trim())) {
        return Err(ReleaseError::Jurisdiction(r.jurisdiction.clone()));
    }
    match &r.scope {
        Scope::Plates { plates, from_ms, to_ms } => {
            if plates.is_empty() {
                return Err(ReleaseError::Missing("at least one plate"));
            }
            if to_ms < from_ms {
                return Err(ReleaseError::BadRange);
            }
            if plates.iter().any(|p| crate::store::PlatePattern::parse(p).is_err()) {
                return Err(ReleaseError::BadPlate);
            }
        }
        Scope::HeldForCase { case_number } => {
            if case_number.trim().is_empty() {
                return Err(ReleaseError::Missing("the case number of the held records"));
            }
        }
    }
    Ok(())
}

/// Records a reviewer's decision; separation of duties: not the person who entered it.
pub fn decide(r: &mut Request, reviewer: &str, approved: bool, note: &str, now_ms: i64) -> Result<(), ReleaseError> {
    if r.decision.is_some() {
        return Err(ReleaseError::AlreadyDecided);
    }
    if reviewer.trim().is_empty() {
        return Err(ReleaseError::Missing("the reviewer"));
    }
    if reviewer == r.entered_by {
        return Err(ReleaseError::SameReviewer);
    }
    r.decision = Some(Decision { reviewer: reviewer.to_string(), approved, at_ms: now_ms, note: note.to_string() });
    Ok(())
}

/// Only an approved request lets data leave.
pub fn may_export(r: &Request) -> Result<(), ReleaseError> {
    match &r.decision {
        Some(d) if d.approved => Ok(()),
        _ => Err(ReleaseError::NotApproved),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req() -> NewRequest {
        NewRequest {
            agency: "Placer County Sheriff".into(),
            jurisdiction: "CA".into(),
            requester_name: "Det. R. Alvarez".into(),
            purpose: "robbery investigation".into(),
            case_number: "PCSO-26-1182".into(),
            scope: Scope::Plates { plates: vec!["7ABC123".into(), "8XY*".into()], from_ms: 0, to_ms: 10 },
        }
    }

    #[test]
    fn requests_need_every_field_and_an_allowed_jurisdiction() {
        let ok = ["CA".to_string()];
        assert_eq!(check_new(&req(), &ok), Ok(()));
        assert_eq!(check_new(&NewRequest { jurisdiction: "ca ".into(), ..req() }, &ok), Ok(()));
        assert_eq!(check_new(&NewRequest { jurisdiction: "NV".into(), ..req() }, &ok), Err(ReleaseError::Jurisdiction("NV".into())));
        assert!(matches!(check_new(&NewRequest { purpose: " ".into(), ..req() }, &ok), Err(ReleaseError::Missing(_))));
        assert!(matches!(check_new(&NewRequest { requester_name: "".into(), ..req() }, &ok), Err(ReleaseError::Missing(_))));
        let bad_range = NewRequest { scope: Scope::Plates { plates: vec!["A1".into()], from_ms: 5, to_ms: 1 }, ..req() };
        assert_eq!(check_new(&bad_range, &ok), Err(ReleaseError::BadRange));
        let bad_plate = NewRequest { scope: Scope::Plates { plates: vec!["A%1".into()], from_ms: 0, to_ms: 1 }, ..req() };
        assert_eq!(check_new(&bad_plate, &ok), Err(ReleaseError::BadPlate));
    }

    #[test]
    fn only_an_approved_request_by_another_person_allows_export() {
        let mut r = Request { id: uuid::Uuid::nil(), request: req(), entered_by: "clerk".into(), entered_at_ms: 0, decision: None, exports: vec![] };
        assert_eq!(may_export(&r), Err(ReleaseError::NotApproved));
        assert_eq!(decide(&mut r, "clerk", true, "", 1), Err(ReleaseError::SameReviewer));
        decide(&mut r, "cmdr", false, "no nexus", 1).unwrap();
        assert_eq!(may_export(&r), Err(ReleaseError::NotApproved));
        assert_eq!(decide(&mut r, "cmdr2", true, "", 2), Err(ReleaseError::AlreadyDecided));
        r.decision = None;
        decide(&mut r, "cmdr", true, "ok", 3).unwrap();
        assert_eq!(may_export(&r), Ok(()));
    }
}
