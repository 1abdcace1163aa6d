//! Which entries `polewatch audit show` prints.

use super::AuditEntry;
use crate::access::Action;

/// All given conditions must hold. Time: `since_ms <= at_ms < until_ms`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Exact user name.
    pub user: Option<String>,
    pub action: Option<Action>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Substring of the query terms, ASCII case ignored (plates are compared in upper case).
    pub query: Option<String>,
}

impl Filter {
    pub fn matches(&self, e: &AuditEntry) -> bool {
        self.user.as_ref().is_none_or(|u| *u == e.user)
            && self.action.is_none_or(|a| a == e.action)
            && self.since_ms.is_none_or(|s| e.at_ms >= s)
            && self.until_ms.is_none_or(|u| e.at_ms < u)
            && self.query.as_ref().is_none_or(|q| e.query.to_ascii_uppercase().contains(&q.to_ascii_uppercase()))
    }

    /// The filter in words, for the audit entry that records the viewing.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(u) = &self.user {
            parts.push(format!("user={u}"));
        }
        if let Some(a) = self.action {
            parts.push(format!("action={}", action_name(a)));
        }
        if let Some(s) = self.since_ms {
            parts.push(format!("since={}", super::format_ms(s)));
        }
        if let Some(u) = self.until_ms {
            parts.push(format!("until={}", super::format_ms(u)));
        }
        if self.query.is_some() {
            // The query itself goes in the entry's own `query` field.
            parts.push("query=(see query)".into());
        }
        if parts.is_empty() { "all entries".into() } else { parts.join(" ") }
    }
}

pub fn action_name(a: Action) -> String {
    serde_json::to_value(a).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| format!("{a:?}"))
}

/// A name that is not an action's; the message lists every action's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action `{given}`; one of {}", .known.join(", "))]
pub struct UnknownAction {
    pub given: String,
    pub known: Vec<String>,
}

/// An action by its snake_case name (`retention_purge`), as auditors filter on it.
pub fn parse_action(s: &str) -> Result<Action, UnknownAction> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        const ALL: &[Action] = &[
            Action::Login,
            Action::LoginFailed,
            Action::Logout,
            Action::Search,
            Action::ViewRead,
            Action::ViewImage,
            Action::Export,
            Action::HoldPlaced,
            Action::HoldReleased,
            Action::AlertVerified,
            Action::AlertRejected,
            Action::HotlistChanged,
            Action::UserAdded,
            Action::UserChanged,
            Action::UserLocked,
            Action::UserUnlocked,
            Action::TrainingRecorded,
            Action::PasswordChanged,
            Action::ConfigReloaded,
            Action::RetentionPurge,
            Action::ReleaseRequested,
            Action::ReleaseDecided,
            Action::AuditViewed,
            Action::AuditCheckpoint,
            Action::ReleasesViewed,
            Action::UsersViewed,
            Action::AuditChainRestarted,
            Action::CommandRejected,
            Action::PurgeConfirmed,
            Action::AuditVerified,
            Action::AuditReport,
            Action::AlertsViewed,
            Action::HoldsViewed,
            Action::HotlistsViewed,
            Action::CamerasViewed,
            Action::DiskWatermark,
            Action::StoreKeyRotated,
            Action::StoreMigrated,
        ];
        UnknownAction { given: s.to_string(), known: ALL.iter().map(|a| action_name(*a)).collect() }
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::super::{AuditKey, GENESIS, seal};
    use super::*;

    fn entry(user: &str, action: Action, at_ms: i64, query: &str) -> AuditEntry {
        let mut n = sample(1);
        n.user = user.into();
        n.action = Some(action);
        n.query = query.into();
        seal(&n, 1, at_ms, GENESIS, &AuditKey::from_bytes(&[1; 32]).unwrap()).unwrap()
    }

    #[test]
    fn every_condition_must_hold() {
        let e = entry("alice", Action::Search, 1_000, "7ab123");
        assert!(Filter::default().matches(&e));
        let f = Filter {
            user: Some("alice".into()),
            action: Some(Action::Search),
            since_ms: Some(1_000),
            until_ms: Some(1_001),
            query: Some("AB12".into()),
        };
        assert!(f.matches(&e));
        assert!(!Filter { user: Some("ali".into()), ..f.clone() }.matches(&e), "users match exactly");
        assert!(!Filter { action: Some(Action::Export), ..f.clone() }.matches(&e));
        assert!(!Filter { since_ms: Some(1_001), ..f.clone() }.matches(&e));
        assert!(!Filter { until_ms: Some(1_000), ..f.clone() }.matches(&e), "until is exclusive");
        assert!(!Filter { query: Some("XYZ".into()), ..f.clone() }.matches(&e));
    }

    #[test]
    fn actions_parse_by_their_stable_names() {
        assert_eq!(parse_action("retention_purge"), Ok(Action::RetentionPurge));
        assert_eq!(parse_action("audit_viewed"), Ok(Action::AuditViewed));
        let err = parse_action("purge").unwrap_err().to_string();
        assert!(err.contains("retention_purge") && err.contains("audit_checkpoint"), "{err}");
    }

    #[test]
    fn the_description_leaves_the_plate_to_the_query_field() {
        let f = Filter {
            user: Some("bob".into()),
            action: Some(Action::Search),
            query: Some("7AB".into()),
            ..Filter::default()
        };
        let d = f.describe();
        assert!(d.contains("user=bob") && d.contains("action=search"), "{d}");
        assert!(!d.contains("7AB"), "{d}");
        assert_eq!(Filter::default().describe(), "all entries");
    }
}
