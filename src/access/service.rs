//! [`UserService`]: the user rules of [`super::users`] applied to the store, with every change and
//! every login attempt audited.
//!
//! Order of each change: check it, compute the new user (pure), **record the audit entry**, then
//! write the store. A refused audit entry therefore stops the change: nothing is written and the
//! caller gets [`UserError::Audit`]. If the store write fails after the entry was recorded, a second
//! entry with outcome `error` says the change was not applied (best effort: the log just took one).
//! Refused requests (bad password rule, unknown user…) are audited with outcome `denied`.
//!
//! Permission checks (`ManageUsers`) are the caller's: the API checks the session's roles; the CLI
//! runs as root on the box.

use super::password::{self, HashError, PasswordProblem};
use super::roles::Role;
use super::session::{MAX_SESSIONS_PER_USER, Session, SessionEnded, Sessions, TokenError};
use super::users::{self, AccessPolicy, ApproveError, LockKind, LoginDenied, NewUser, Training, User, UserInvalid};
use super::{Action, AuditError, AuditSink, NewAuditEntry, Outcome};
use crate::store::{Store, StoreError};
use std::sync::{Arc, Mutex, MutexGuard};

/// Who asks, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: String,
    pub organisation: String,
    /// `cli`, or the client's address.
    pub source: String,
}

/// The audit log's name for a login attempt on a username that does not exist. The name typed is not
/// recorded: people type their password into the username field.
pub const UNKNOWN_USER: &str = "(unknown)";

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(transparent)]
    Invalid(#[from] UserInvalid),
    #[error(transparent)]
    Password(#[from] PasswordProblem),
    #[error("user `{0}` already exists")]
    Exists(String),
    #[error("no user `{0}`")]
    NotFound(String),
    #[error("{0}")]
    LockReason(&'static str),
    #[error("`{0}` is the last administrator who can act: another must exist before this one is locked")]
    LastAdmin(String),
    #[error(transparent)]
    Approve(#[from] ApproveError),
    #[error(transparent)]
    Denied(#[from] LoginDenied),
    #[error(transparent)]
    Session(#[from] SessionEnded),
    #[error("not done: the audit log did not record it: {0}")]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
    #[error(transparent)]
    Token(#[from] TokenError),
}

pub struct UserService {
    store: Arc<Store>,
    policy: AccessPolicy,
    audit: Arc<dyn AuditSink>,
    sessions: Sessions,
    /// Serialises read-modify-write of users (a login counting a failure, an admin locking): the
    /// store allows one process, so a lock in this one is enough.
    write: Mutex<()>,
}

impl UserService {
    pub fn new(store: Arc<Store>, policy: AccessPolicy, audit: Arc<dyn AuditSink>) -> UserService {
        let sessions = Sessions::new(policy.session_idle_ms, policy.session_absolute_ms);
        UserService { store, policy, audit, sessions, write: Mutex::new(()) }
    }

    pub fn policy(&self) -> &AccessPolicy {
        &self.policy
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    fn lock_writes(&self) -> MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, username: &str) -> Result<Option<User>, UserError> {
        Ok(self.store.get_user(&users::normalize_username(username)?)?)
    }

    pub fn list(&self) -> Result<Vec<User>, UserError> {
        Ok(self.store.list_users()?)
    }

    fn entry(by: &Actor, action: Action, object: &str, outcome: Outcome, detail: String) -> NewAuditEntry {
        NewAuditEntry {
            user: by.user.clone(),
            organisation: by.organisation.clone(),
            source: by.source.clone(),
            action: Some(action),
            object: object.to_string(),
            outcome: Some(outcome),
            detail,
            ..NewAuditEntry::default()
        }
    }

    /// Audits a refusal and returns it (or the audit failure, which is worse news).
    fn refuse<T>(&self, by: &Actor, action: Action, object: &str, e: UserError) -> Result<T, UserError> {
        self.audit.record(Self::entry(by, action, object, Outcome::Denied, e.to_string()))?;
        Err(e)
    }

    /// Audit first, then write: see the module comment.
    fn commit(&self, entry: NewAuditEntry, write: impl FnOnce() -> Result<(), StoreError>) -> Result<(), UserError> {
        self.audit.record(entry.clone())?;
        if let Err(e) = write() {
            let undo = NewAuditEntry { outcome: Some(Outcome::Error), detail: format!("not applied: {e}"), ..entry };
            if let Err(ae) = self.audit.record(undo) {
                log::error!("audit: cannot record that a change was not applied: {ae}");
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// The stored user, or a refusal audited under `action`.
    fn existing(&self, by: &Actor, action: Action, username: &str) -> Result<User, UserError> {
        let name = match users::normalize_username(username) {
            Ok(n) => n,
            Err(e) => return self.refuse(by, action, "", e.into()),
        };
        match self.store.get_user(&name)? {
            Some(u) => Ok(u),
            None => self.refuse(by, action, &name, UserError::NotFound(name.clone())),
        }
    }

    /// Adds a user whose roles are in effect at once and whose password is theirs: for `polewatch user
    /// add`, run as root on the box (the first administrator is made this way).
    pub fn add_user(&self, by: &Actor, new: NewUser, password: &str, now_ms: i64) -> Result<User, UserError> {
        self.add(by, new, password, false, now_ms)
    }

    /// Adds a user for an administrator in the console (separation of duties): the roles wait for a
    /// second administrator ([`Self::approve_roles`]) and the password is temporary (the first login
    /// must change it, [`Self::change_own_password`]).
    pub fn admin_add_user(&self, by: &Actor, new: NewUser, password: &str, now_ms: i64) -> Result<User, UserError> {
        self.add(by, new, password, true, now_ms)
    }

    fn add(&self, by: &Actor, new: NewUser, password: &str, console: bool, now_ms: i64) -> Result<User, UserError> {
        let a = Action::UserAdded;
        let _w = self.lock_writes();
        let name = match users::normalize_username(&new.username) {
            Ok(n) => n,
            Err(e) => return self.refuse(by, a, "", e.into()),
        };
        if let Some(p) = password::password_problem(password, &name) {
            return self.refuse(by, a, &name, p.into());
        }
        let user = match users::new_user(new, String::new(), &by.user, now_ms) {
            Ok(u) => u,
            Err(e) => return self.refuse(by, a, &name, e.into()),
        };
        if self.store.get_user(&name)?.is_some() {
            return self.refuse(by, a, &name, UserError::Exists(name.clone()));
        }
        let user = User { password_hash: password::hash_password(password)?, ..user };
        let roles: Vec<&str> = user.roles.iter().map(|r| r.as_str()).collect();
        let mut detail = format!(
            "name `{}`, organisation `{}`, job title `{}`, roles {}",
            user.display_name,
            user.organisation,
            user.job_title,
            roles.join(",")
        );
        let user = if console {
            detail.push_str("; the roles wait for a second administrator; temporary password");
            User { must_change_password: true, ..users::with_roles_pending(&user, &by.user, now_ms) }
        } else {
            user
        };
        let mut taken = false;
        self.commit(Self::entry(by, a, &name, Outcome::Ok, detail), || {
            taken = !self.store.insert_new_user(&user)?;
            Ok(())
        })?;
        if taken {
            // Cannot happen while this process holds the store and the write lock; say so if it does.
            return Err(UserError::Exists(name));
        }
        Ok(user)
    }

    /// Sets a password that stays (`polewatch user passwd`, root on the box). Ends the user's sessions.
    pub fn set_password(&self, by: &Actor, username: &str, password: &str, now_ms: i64) -> Result<User, UserError> {
        self.put_password(by, username, password, false, now_ms)
    }

    /// An administrator's reset in the console: the password is temporary, so the next login must
    /// change it and the administrator cannot use the account unnoticed. Ends the user's sessions.
    pub fn reset_password(&self, by: &Actor, username: &str, password: &str, now_ms: i64) -> Result<User, UserError> {
        self.put_password(by, username, password, true, now_ms)
    }

    fn put_password(
        &self,
        by: &Actor,
        username: &str,
        password: &str,
        temporary: bool,
        now_ms: i64,
    ) -> Result<User, UserError> {
        let a = Action::PasswordChanged;
        let _w = self.lock_writes();
        let user = self.existing(by, a, username)?;
        if let Some(p) = password::password_problem(password, &user.username) {
            return self.refuse(by, a, &user.username, p.into());
        }
        let updated = User {
            password_hash: password::hash_password(password)?,
            password_changed_ms: now_ms,
            must_change_password: temporary,
            ..user
        };
        let detail = if temporary { "temporary: must be changed at the next login".to_string() } else { String::new() };
        self.commit(Self::entry(by, a, &updated.username, Outcome::Ok, detail), || self.store.put_user(&updated))?;
        self.sessions.end_user(&updated.username);
        Ok(updated)
    }

    /// A second administrator approves the roles another granted in the console.
    pub fn approve_roles(&self, by: &Actor, username: &str, _now_ms: i64) -> Result<User, UserError> {
        let a = Action::UserChanged;
        let _w = self.lock_writes();
        let user = self.existing(by, a, username)?;
        let updated = match users::with_roles_approved(&user, &by.user) {
            Ok(u) => u,
            Err(e) => return self.refuse(by, a, &user.username, e.into()),
        };
        let granted = user.pending_roles.as_ref().map(|p| format!("{} on {}", p.by, day(p.at_ms))).unwrap_or_default();
        let roles: Vec<&str> = updated.roles.iter().map(|r| r.as_str()).collect();
        let detail = format!("roles {} approved (granted by {granted})", roles.join(","));
        self.commit(Self::entry(by, a, &updated.username, Outcome::Ok, detail), || self.store.put_user(&updated))?;
        Ok(updated)
    }

    pub fn record_training(&self, by: &Actor, username: &str, t: Training, now_ms: i64) -> Result<User, UserError> {
        let a = Action::TrainingRecorded;
        let _w = self.lock_writes();
        let user = self.existing(by, a, username)?;
        let t = match users::check_training(t, now_ms) {
            Ok(t) => t,
            Err(e) => return self.refuse(by, a, &user.username, e.into()),
        };
        let detail = format!("course `{}`, completed {}, expires {}", t.course, day(t.completed_ms), day(t.expires_ms));
        let updated = users::with_training(&user, t);
        self.commit(Self::entry(by, a, &updated.username, Outcome::Ok, detail), || self.store.put_user(&updated))?;
        Ok(updated)
    }

    /// Locks the account and ends its sessions: `polewatch user lock`, root on the box, who can always
    /// unlock again.
    pub fn lock(&self, by: &Actor, username: &str, reason: &str, now_ms: i64) -> Result<User, UserError> {
        self.lock_as(by, username, reason, false, now_ms)
    }

    /// An administrator's lock in the console: never of the last administrator who can act, which would
    /// leave the console with nobody to unlock anyone.
    pub fn admin_lock(&self, by: &Actor, username: &str, reason: &str, now_ms: i64) -> Result<User, UserError> {
        self.lock_as(by, username, reason, true, now_ms)
    }

    fn lock_as(&self, by: &Actor, username: &str, reason: &str, console: bool, now_ms: i64) -> Result<User, UserError> {
        let a = Action::UserLocked;
        let _w = self.lock_writes();
        let user = self.existing(by, a, username)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > users::MAX_TEXT || reason.chars().any(char::is_control) {
            return self.refuse(by, a, &user.username, UserError::LockReason("a lock needs a one-line reason"));
        }
        if console && user.roles.contains(&Role::Admin) && users::may_act(&user, &self.policy, now_ms).is_ok() {
            let others = self.store.list_users()?;
            let others = others
                .iter()
                .filter(|u| {
                    u.username != user.username
                        && u.roles.contains(&Role::Admin)
                        && users::may_act(u, &self.policy, now_ms).is_ok()
                })
                .count();
            if others == 0 {
                return self.refuse(by, a, &user.username, UserError::LastAdmin(user.username.clone()));
            }
        }
        let updated = users::with_lock(&user, LockKind::Admin, &by.user, reason, now_ms);
        self.commit(Self::entry(by, a, &updated.username, Outcome::Ok, format!("reason: {reason}")), || {
            self.store.put_user(&updated)
        })?;
        self.sessions.end_user(&updated.username);
        Ok(updated)
    }

    /// Unlocks the account, forgets its failed logins and restarts its inactivity clock (this is also
    /// how a disabled, unused account is re-enabled).
    pub fn unlock(&self, by: &Actor, username: &str, now_ms: i64) -> Result<User, UserError> {
        let a = Action::UserUnlocked;
        let _w = self.lock_writes();
        let user = self.existing(by, a, username)?;
        let detail = match &user.locked {
            Some(l) => format!("was locked at {} by {}: {}", day(l.at_ms), l.by, l.reason),
            None => "was not locked; inactivity clock restarted".to_string(),
        };
        let updated = users::unlocked(&user, now_ms);
        self.commit(Self::entry(by, a, &updated.username, Outcome::Ok, detail), || self.store.put_user(&updated))?;
        Ok(updated)
    }

    /// Checks a password and the account's rules; on success a new session. The error names the real
    /// reason (the audit entry records it); the console answers every refusal alike.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        source: &str,
        now_ms: i64,
    ) -> Result<(User, Session), UserError> {
        self.sign_in(username, password, None, source, now_ms)
    }

    /// A user who proves their current password (the temporary one an administrator set, or their own)
    /// replaces it and is logged in. A wrong current password counts as a failed login.
    pub fn change_own_password(
        &self,
        username: &str,
        current: &str,
        new: &str,
        source: &str,
        now_ms: i64,
    ) -> Result<(User, Session), UserError> {
        self.sign_in(username, current, Some(new), source, now_ms)
    }

    fn sign_in(
        &self,
        username: &str,
        password: &str,
        new_password: Option<&str>,
        source: &str,
        now_ms: i64,
    ) -> Result<(User, Session), UserError> {
        let unknown = |detail: &str| -> Result<(User, Session), UserError> {
            password::verify_nothing(password);
            let by = Actor { user: UNKNOWN_USER.into(), organisation: String::new(), source: source.into() };
            self.audit.record(Self::entry(&by, Action::LoginFailed, "", Outcome::Denied, detail.into()))?;
            Err(LoginDenied::BadPassword.into())
        };
        let Ok(name) = users::normalize_username(username) else {
            return unknown("not a valid username");
        };
        let Some(seen) = self.store.get_user(&name)? else {
            return unknown("unknown username");
        };
        // argon2 outside the write lock: it is the slow part, and logins should not queue behind it.
        let verified = password::verify_password(password, &seen.password_hash);
        let _w = self.lock_writes();
        // Read again: another attempt may have counted a failure or locked the account meanwhile.
        let Some(user) = self.store.get_user(&name)? else {
            return unknown("user removed during login");
        };
        let ok = if user.password_hash == seen.password_hash {
            verified
        } else {
            password::verify_password(password, &user.password_hash)
        };
        let (updated, verdict) = users::check_login(&user, ok, &self.policy, now_ms);
        let verdict = match (verdict, new_password) {
            // Changing it is what a temporary password is for.
            (Err(LoginDenied::MustChangePassword), Some(_)) => Ok(()),
            (v, _) => v,
        };
        let by = Actor { user: name.clone(), organisation: user.organisation.clone(), source: source.into() };
        match verdict {
            Ok(()) => {
                let mut updated = updated;
                if let Some(new) = new_password {
                    let problem = password::password_problem(new, &name)
                        .or((new == password).then_some(PasswordProblem::Unchanged));
                    if let Some(p) = problem {
                        return self.refuse(&by, Action::PasswordChanged, &name, p.into());
                    }
                    let detail = if updated.must_change_password {
                        "by the user, replacing a password an administrator set"
                    } else {
                        "by the user"
                    };
                    updated = User {
                        password_hash: password::hash_password(new)?,
                        password_changed_ms: now_ms,
                        must_change_password: false,
                        last_login_ms: Some(now_ms),
                        ..updated
                    };
                    self.commit(Self::entry(&by, Action::PasswordChanged, &name, Outcome::Ok, detail.into()), || {
                        self.store.put_user(&updated)
                    })?;
                    self.sessions.end_user(&name);
                }
                let before = self.sessions.count_for(&name, now_ms);
                let session = self.sessions.create(&name, now_ms)?;
                let detail = if before >= MAX_SESSIONS_PER_USER {
                    format!("the oldest session ended: at most {MAX_SESSIONS_PER_USER} per user")
                } else {
                    String::new()
                };
                let entry = Self::entry(&by, Action::Login, &name, Outcome::Ok, detail);
                let done = self.commit(entry, || self.store.put_user(&updated));
                if let Err(e) = done {
                    self.sessions.end(&session.token);
                    return Err(e);
                }
                Ok((updated, session))
            }
            Err(denied) => {
                let mut detail = if ok { denied.to_string() } else { "wrong password".to_string() };
                if let (None, Some(lock)) = (&user.locked, &updated.locked) {
                    detail.push_str(&format!("; account locked: {}", lock.reason));
                } else if !ok && user.locked.is_some() {
                    detail.push_str("; account already locked");
                }
                let entry = Self::entry(&by, Action::LoginFailed, &name, Outcome::Denied, detail);
                if updated != user {
                    self.commit(entry, || self.store.put_user(&updated))?;
                } else {
                    self.audit.record(entry)?;
                }
                Err(denied.into())
            }
        }
    }

    /// Ends a session. It ends even if the audit log refuses the entry (ending access is never held
    /// back); the refusal is still returned.
    pub fn logout(&self, token: &str, source: &str) -> Result<(), UserError> {
        let Some(s) = self.sessions.end(token) else {
            return Err(SessionEnded::Unknown.into());
        };
        let org = self.store.get_user(&s.username).ok().flatten().map(|u| u.organisation).unwrap_or_default();
        let by = Actor { user: s.username.clone(), organisation: org, source: source.into() };
        self.audit.record(Self::entry(&by, Action::Logout, &s.username, Outcome::Ok, String::new()))?;
        Ok(())
    }

    /// For each request: the session's user, if the session is live and the user may still act
    /// (not locked, training current…). A session whose user may no longer act is ended.
    pub fn session_user(&self, token: &str, now_ms: i64) -> Result<(User, Session), UserError> {
        let s = self.sessions.touch(token, now_ms)?;
        let user = match self.store.get_user(&s.username)? {
            Some(u) => u,
            None => {
                self.sessions.end(token);
                return Err(SessionEnded::Unknown.into());
            }
        };
        if let Err(e) = users::may_act(&user, &self.policy, now_ms) {
            self.sessions.end(token);
            return Err(e.into());
        }
        Ok((user, s))
    }
}

/// `YYYY-MM-DD` (UTC) of a time in ms, for audit details.
pub fn day(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| jiff::tz::TimeZone::UTC.to_datetime(t).date().to_string())
        .unwrap_or_else(|_| ms.to_string())
}
