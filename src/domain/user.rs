//! The records of users as the store keeps them. The rules on them (training, lockout, inactivity, who
//! may approve roles) are in `access::users`; the store keeps these records without knowing those rules.

use super::role::Role;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Lowercase `[a-z0-9._-]{1,64}`, see `access::users::normalize_username`.
    pub username: String,
    pub display_name: String,
    pub organisation: String,
    /// Policy 471.3.1 (a): the job title of everyone authorised to use the system.
    pub job_title: String,
    pub roles: Vec<Role>,
    /// argon2id PHC string.
    pub password_hash: String,
    #[serde(default)]
    pub password_changed_ms: i64,
    #[serde(default)]
    pub training: Vec<Training>,
    pub created_ms: i64,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub last_login_ms: Option<i64>,
    /// Last unlock by an administrator: restarts the inactivity clock.
    #[serde(default)]
    pub unlocked_ms: Option<i64>,
    /// Times of failed logins still inside the lockout window.
    #[serde(default)]
    pub failed_logins: Vec<i64>,
    #[serde(default)]
    pub locked: Option<Lock>,
    /// Set when an administrator chose the password (a new account made in the console, a reset): the
    /// next login must replace it, so the administrator cannot use the account unnoticed.
    #[serde(default)]
    pub must_change_password: bool,
    /// Roles an administrator granted through the console, not in effect until a second administrator
    /// approves them (separation of duties, CJIS AC-5).
    #[serde(default)]
    pub pending_roles: Option<PendingRoles>,
}

/// Roles waiting for a second administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRoles {
    pub roles: Vec<Role>,
    /// The administrator who granted them: may not approve them.
    pub by: String,
    pub at_ms: i64,
}

impl fmt::Debug for User {
    // Not the hash: it is what an offline guesser needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("display_name", &self.display_name)
            .field("organisation", &self.organisation)
            .field("job_title", &self.job_title)
            .field("roles", &self.roles)
            .field("password_hash", &"<redacted>")
            .field("training", &self.training)
            .field("created_ms", &self.created_ms)
            .field("last_login_ms", &self.last_login_ms)
            .field("unlocked_ms", &self.unlocked_ms)
            .field("failed_logins", &self.failed_logins)
            .field("locked", &self.locked)
            .field("must_change_password", &self.must_change_password)
            .field("pending_roles", &self.pending_roles)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Training {
    pub course: String,
    pub completed_ms: i64,
    /// First instant the training no longer counts.
    pub expires_ms: i64,
}

impl Training {
    pub fn is_current(&self, now_ms: i64) -> bool {
        self.completed_ms <= now_ms && now_ms < self.expires_ms
    }

    pub fn is_for(&self, course: &str) -> bool {
        // Case-insensitive: `alpr operator` typed on the CLI is the configured `ALPR operator`.
        self.course.trim().to_lowercase() == course.trim().to_lowercase()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// Locked by an administrator.
    Admin,
    /// Too many failed logins.
    FailedLogins,
    /// Not used for `unused_account_days`.
    Unused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub at_ms: i64,
    pub kind: LockKind,
    /// Who locked it: an administrator's username, or `system`.
    pub by: String,
    pub reason: String,
}
