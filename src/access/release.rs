//! Release requests (policy 471.7): stored data leaves the box only against a written request from a
//! law enforcement or prosecutorial agency in an allowed jurisdiction, reviewed and approved by someone
//! other than who entered it. Pure rules; the store keeps the records and `export` writes the bundle.

pub use crate::domain::release::{Decision, NewRequest, Request, Scope};

/// Most plates one request may list.
pub const MAX_PLATES: usize = 100;

impl Scope {
    pub fn whole_store(&self) -> bool {
        matches!(self, Scope::Plates { whole_store: true, .. })
    }
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
    #[error("{0}")]
    Text(#[from] crate::access::text::TextError),
    #[error("a request may list at most {MAX_PLATES} plates")]
    TooManyPlates,
    #[error("a scope with a wildcard may span at most {0} days; list exact plates for a longer range")]
    RangeTooLong(i64),
    #[error("a pattern with no literal start or end reaches every read: the request must say `whole_store: true`")]
    WholeStoreUnflagged,
    #[error("`whole_store` is set but no plate pattern covers the whole store")]
    WholeStoreWithoutPattern,
    #[error("this request covers the whole store: the approver must confirm it (`confirm_whole_store: true`)")]
    WholeStoreUnconfirmed,
}

const DAY_MS: i64 = 86_400_000;

/// The limits of `[access]` that requests are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub allowed_jurisdictions: Vec<String>,
    /// `access.max_release_days`.
    pub max_range_days: i64,
}

/// Whether a pattern can only be answered by reading the whole store (no literal start or end).
pub fn covers_whole_store(p: &crate::store::PlatePattern) -> bool {
    matches!(p.scan(), crate::store::pattern::Scan::All)
}

/// Checks a request before it is put on file: every field present and within the limits of
/// [`crate::access::text`], an allowed jurisdiction, a case number, and a scope that is either listed
/// exact plates or a time range of at most `max_range_days` (see [`Scope`]).
pub fn check_new(r: &NewRequest, limits: &Limits) -> Result<(), ReleaseError> {
    use crate::access::text::{CaseNumber, Label};
    for (v, what) in [
        (&r.agency, "the requesting agency"),
        (&r.jurisdiction, "the agency's jurisdiction"),
        (&r.requester_name, "the name of the person requesting"),
        (&r.purpose, "the intended purpose"),
        (&r.case_number, "a case number"),
    ] {
        if v.trim().is_empty() {
            return Err(ReleaseError::Missing(what));
        }
    }
    for v in [&r.agency, &r.jurisdiction, &r.requester_name, &r.purpose] {
        Label::parse(v)?;
    }
    CaseNumber::parse(&r.case_number)?;
    if !limits.allowed_jurisdictions.iter().any(|j| j.eq_ignore_ascii_case(r.jurisdiction.trim())) {
        return Err(ReleaseError::Jurisdiction(crate::access::text::for_audit(&r.jurisdiction)));
    }
    match &r.scope {
        Scope::Plates { plates, from_ms, to_ms, whole_store } => {
            if plates.is_empty() {
                return Err(ReleaseError::Missing("at least one plate"));
            }
            if plates.len() > MAX_PLATES {
                return Err(ReleaseError::TooManyPlates);
            }
            if to_ms < from_ms {
                return Err(ReleaseError::BadRange);
            }
            let mut patterns = Vec::with_capacity(plates.len());
            for p in plates {
                patterns.push(crate::store::PlatePattern::parse(p).map_err(|_| ReleaseError::BadPlate)?);
            }
            let everything = patterns.iter().any(covers_whole_store);
            if everything && !whole_store {
                return Err(ReleaseError::WholeStoreUnflagged);
            }
            if *whole_store && !everything {
                return Err(ReleaseError::WholeStoreWithoutPattern);
            }
            let wild = patterns.iter().any(|p| !p.is_exact());
            let max = limits.max_range_days.max(1);
            if wild && to_ms.saturating_sub(*from_ms) > max.saturating_mul(DAY_MS) {
                return Err(ReleaseError::RangeTooLong(max));
            }
        }
        Scope::HeldForCase { case_number } => {
            if case_number.trim().is_empty() {
                return Err(ReleaseError::Missing("the case number of the held records"));
            }
            CaseNumber::parse(case_number)?;
        }
    }
    Ok(())
}

/// [`decide`], with the approver's confirmation that a whole-store request is meant: approving one needs
/// `confirm_whole_store`.
pub fn decide_confirmed(
    r: &mut Request,
    reviewer: &str,
    approved: bool,
    confirm_whole_store: bool,
    note: &str,
    now_ms: i64,
) -> Result<(), ReleaseError> {
    if approved && r.request.scope.whole_store() && !confirm_whole_store && r.decision.is_none() {
        return Err(ReleaseError::WholeStoreUnconfirmed);
    }
    decide(r, reviewer, approved, note, now_ms)
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
            scope: Scope::Plates {
                plates: vec!["7ABC123".into(), "8XY*".into()],
                from_ms: 0,
                to_ms: 10,
                whole_store: false,
            },
        }
    }

    fn limits() -> Limits {
        Limits { allowed_jurisdictions: vec!["CA".to_string()], max_range_days: 90 }
    }

    #[test]
    fn scope_is_listed_plates_or_a_bounded_range_and_everything_is_flagged() {
        let ok = limits();
        let plates = |p: &[&str], days: i64, whole: bool| NewRequest {
            scope: Scope::Plates {
                plates: p.iter().map(|x| x.to_string()).collect(),
                from_ms: 0,
                to_ms: days * DAY_MS,
                whole_store: whole,
            },
            ..req()
        };
        assert_eq!(
            check_new(&NewRequest { case_number: " ".into(), ..req() }, &ok),
            Err(ReleaseError::Missing("a case number"))
        );
        assert!(matches!(
            check_new(&NewRequest { case_number: "C\u{0}1".into(), ..req() }, &ok),
            Err(ReleaseError::Text(_))
        ));
        assert!(matches!(
            check_new(&NewRequest { case_number: "9".repeat(65), ..req() }, &ok),
            Err(ReleaseError::Text(_))
        ));
        assert!(matches!(
            check_new(&NewRequest { agency: "a".repeat(1 << 20), ..req() }, &ok),
            Err(ReleaseError::Text(_))
        ));
        // Exact plates: any range.
        assert_eq!(check_new(&plates(&["7ABC123"], 3650, false), &ok), Ok(()));
        // A wildcard: at most 90 days.
        assert_eq!(check_new(&plates(&["7AB*"], 90, false), &ok), Ok(()));
        assert_eq!(check_new(&plates(&["7AB*"], 91, false), &ok), Err(ReleaseError::RangeTooLong(90)));
        // Everything: only flagged, and still bounded.
        assert_eq!(check_new(&plates(&["*"], 30, false), &ok), Err(ReleaseError::WholeStoreUnflagged));
        assert_eq!(check_new(&plates(&["?*"], 30, false), &ok), Err(ReleaseError::WholeStoreUnflagged));
        assert_eq!(check_new(&plates(&["*"], 30, true), &ok), Ok(()));
        assert_eq!(check_new(&plates(&["*"], 36500, true), &ok), Err(ReleaseError::RangeTooLong(90)));
        assert_eq!(check_new(&plates(&["7AB*"], 30, true), &ok), Err(ReleaseError::WholeStoreWithoutPattern));
        let many: Vec<String> = (0..101).map(|i| format!("A{i}")).collect();
        let many: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
        assert_eq!(check_new(&plates(&many, 1, false), &ok), Err(ReleaseError::TooManyPlates));
    }

    #[test]
    fn a_whole_store_request_is_approved_only_when_the_approver_confirms_it() {
        let new = NewRequest {
            scope: Scope::Plates { plates: vec!["*".into()], from_ms: 0, to_ms: DAY_MS, whole_store: true },
            ..req()
        };
        let mut r = Request {
            id: uuid::Uuid::nil(),
            request: new,
            entered_by: "clerk".into(),
            entered_at_ms: 0,
            decision: None,
            exports: vec![],
        };
        assert_eq!(decide_confirmed(&mut r, "cmdr", true, false, "", 1), Err(ReleaseError::WholeStoreUnconfirmed));
        assert!(r.decision.is_none());
        decide_confirmed(&mut r, "cmdr", true, true, "", 1).unwrap();
        assert_eq!(may_export(&r), Ok(()));
    }

    #[test]
    fn requests_need_every_field_and_an_allowed_jurisdiction() {
        let ok = limits();
        assert_eq!(check_new(&req(), &ok), Ok(()));
        assert_eq!(check_new(&NewRequest { jurisdiction: "ca ".into(), ..req() }, &ok), Ok(()));
        assert_eq!(
            check_new(&NewRequest { jurisdiction: "NV".into(), ..req() }, &ok),
            Err(ReleaseError::Jurisdiction("NV".into()))
        );
        assert!(matches!(check_new(&NewRequest { purpose: " ".into(), ..req() }, &ok), Err(ReleaseError::Missing(_))));
        assert!(matches!(
            check_new(&NewRequest { requester_name: "".into(), ..req() }, &ok),
            Err(ReleaseError::Missing(_))
        ));
        let bad_range = NewRequest {
            scope: Scope::Plates { plates: vec!["A1".into()], from_ms: 5, to_ms: 1, whole_store: false },
            ..req()
        };
        assert_eq!(check_new(&bad_range, &ok), Err(ReleaseError::BadRange));
        let bad_plate = NewRequest {
            scope: Scope::Plates { plates: vec!["A%1".into()], from_ms: 0, to_ms: 1, whole_store: false },
            ..req()
        };
        assert_eq!(check_new(&bad_plate, &ok), Err(ReleaseError::BadPlate));
    }

    #[test]
    fn only_an_approved_request_by_another_person_allows_export() {
        let mut r = Request {
            id: uuid::Uuid::nil(),
            request: req(),
            entered_by: "clerk".into(),
            entered_at_ms: 0,
            decision: None,
            exports: vec![],
        };
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
