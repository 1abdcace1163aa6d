//! Users and the rules on them, pure: no I/O, the clock passed in as `now_ms`.
//!
//! - Training (policy 471.4 (d), 471.8): a user without current training in every
//!   `access.required_courses` can neither log in ([`check_login`]) nor act ([`may_act`]).
//! - Lockout (CJIS 5.5.3): `lockout_failures` failed logins within `lockout_window_minutes` lock the
//!   account until an administrator unlocks it. A failure counts while it is younger than the window.
//! - Inactivity (CJIS 5.5.1 / AC-2(3)): an account not used for `unused_account_days` (no login since
//!   creation, the last login or the last unlock) is disabled; unlocking re-enables it.
//!
//! The I/O around these rules (store, audit, sessions) is in [`super::service`].

use super::roles::Role;

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 60 * MINUTE_MS;

/// Longest display name, organisation, job title, course name or lock reason.
pub const MAX_TEXT: usize = 200;

pub use crate::domain::user::{Lock, LockKind, PendingRoles, Training, User};

/// The access rules of `[access]` and `[api]`, durations in ms (built by `config`: `AccessPolicy::from_config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    pub required_courses: Vec<String>,
    pub lockout_failures: u32,
    pub lockout_window_ms: i64,
    pub unused_account_ms: i64,
    pub session_idle_ms: i64,
    pub session_absolute_ms: i64,
}

/// Why a login (or, mid-session, an action) is refused. Shown to the user: it names the rule, never the
/// password, and a wrong password and an unknown username read the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginDenied {
    #[error("wrong username or password")]
    BadPassword,
    #[error("the account is locked ({}); an administrator must unlock it", lock_words(*.kind))]
    Locked { kind: LockKind },
    #[error("the account is disabled: not used for more than {days} days; an administrator must unlock it")]
    Disabled { days: i64 },
    #[error("no current training in `{course}` (policy 471.4 (d)); ask the training manager")]
    NoCurrentTraining { course: String },
    #[error("the account has no role")]
    NoRole,
    #[error("the account's roles wait for a second administrator's approval")]
    RolesPending,
    #[error("the account holds the admin role together with a data role; an administrator must split it")]
    RoleConflict,
    /// Only with the right password, on an account that may otherwise act.
    #[error("the password was set by an administrator and must be changed before the first use")]
    MustChangePassword,
}

fn lock_words(kind: LockKind) -> &'static str {
    match kind {
        LockKind::Admin => "by an administrator",
        LockKind::FailedLogins => "too many failed logins",
        LockKind::Unused => "unused",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserInvalid {
    #[error("username must be 1 to 64 of a-z, 0-9, `.`, `_`, `-`")]
    Username,
    #[error("username `{0}` is reserved")]
    Reserved(String),
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{0} is longer than {MAX_TEXT} characters or holds control characters")]
    Text(&'static str),
    #[error("a user needs at least one role")]
    NoRole,
    #[error("the admin role may not be held together with a data role (supervisor, operator): separation of duties")]
    Separation,
    #[error("training completed in the future")]
    CompletedInFuture,
    #[error("training must expire after it was completed")]
    ExpiresBeforeCompleted,
}

/// Names the audit log uses for the daemon itself.
const RESERVED: &[&str] = &["system", "daemon", "cli", "mqtt"];

/// Lowercases ASCII and checks `[a-z0-9._-]{1,64}`.
pub fn normalize_username(s: &str) -> Result<String, UserInvalid> {
    let u = s.trim().to_ascii_lowercase();
    let ok = (1..=64).contains(&u.len())
        && u.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(UserInvalid::Username);
    }
    if RESERVED.contains(&u.as_str()) {
        return Err(UserInvalid::Reserved(u));
    }
    Ok(u)
}

fn text(field: &'static str, v: &str) -> Result<String, UserInvalid> {
    let v = v.trim();
    if v.is_empty() {
        return Err(UserInvalid::Empty(field));
    }
    if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(UserInvalid::Text(field));
    }
    Ok(v.to_string())
}

/// What an administrator gives for a new user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub display_name: String,
    pub organisation: String,
    pub job_title: String,
    pub roles: Vec<Role>,
}

/// A checked new user with its password hash; no training yet, so it cannot log in until trained.
pub fn new_user(n: NewUser, password_hash: String, created_by: &str, now_ms: i64) -> Result<User, UserInvalid> {
    let mut roles = n.roles;
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        return Err(UserInvalid::NoRole);
    }
    if mixes_admin_and_data(&roles) {
        return Err(UserInvalid::Separation);
    }
    Ok(User {
        username: normalize_username(&n.username)?,
        display_name: text("display name", &n.display_name)?,
        organisation: text("organisation", &n.organisation)?,
        job_title: text("job title", &n.job_title)?,
        roles,
        password_hash,
        password_changed_ms: now_ms,
        training: Vec::new(),
        created_ms: now_ms,
        created_by: created_by.to_string(),
        last_login_ms: None,
        unlocked_ms: None,
        failed_logins: Vec::new(),
        locked: None,
        must_change_password: false,
        pending_roles: None,
    })
}

/// Whether the roles put running the box (admin) and reading its data (supervisor, operator) in one
/// hand, which separation of duties forbids.
pub fn mixes_admin_and_data(roles: &[Role]) -> bool {
    roles.contains(&Role::Admin) && roles.iter().any(|r| matches!(r, Role::Supervisor | Role::Operator))
}

/// The user with its roles moved into [`PendingRoles`], granted by `by`: not in effect until
/// [`with_roles_approved`].
pub fn with_roles_pending(user: &User, by: &str, now_ms: i64) -> User {
    let mut u = user.clone();
    let roles = std::mem::take(&mut u.roles);
    u.pending_roles = Some(PendingRoles { roles, by: by.to_string(), at_ms: now_ms });
    u
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApproveError {
    #[error("the account has no roles waiting for approval")]
    NothingPending,
    #[error("the administrator who granted the roles may not approve them: a second administrator must")]
    SameAdmin,
    #[error("an administrator may not approve roles on their own account")]
    OwnAccount,
}

/// A second administrator's approval of pending roles.
pub fn with_roles_approved(user: &User, approver: &str) -> Result<User, ApproveError> {
    let Some(p) = &user.pending_roles else {
        return Err(ApproveError::NothingPending);
    };
    if approver == user.username {
        return Err(ApproveError::OwnAccount);
    }
    if approver == p.by {
        return Err(ApproveError::SameAdmin);
    }
    let mut u = user.clone();
    u.roles = p.roles.clone();
    u.pending_roles = None;
    Ok(u)
}

/// Checks a training record; the course name is trimmed.
pub fn check_training(t: Training, now_ms: i64) -> Result<Training, UserInvalid> {
    let course = text("course", &t.course)?;
    if t.completed_ms > now_ms {
        return Err(UserInvalid::CompletedInFuture);
    }
    if t.expires_ms <= t.completed_ms {
        return Err(UserInvalid::ExpiresBeforeCompleted);
    }
    Ok(Training { course, ..t })
}

/// The user with `t` recorded; it replaces an earlier record of the same course (the latest word wins).
pub fn with_training(user: &User, t: Training) -> User {
    let mut u = user.clone();
    u.training.retain(|x| !x.is_for(&t.course));
    u.training.push(t);
    u
}

pub fn with_lock(user: &User, kind: LockKind, by: &str, reason: &str, now_ms: i64) -> User {
    let mut u = user.clone();
    u.locked = Some(Lock { at_ms: now_ms, kind, by: by.to_string(), reason: reason.to_string() });
    u
}

/// Unlocked, failures forgotten, inactivity clock restarted.
pub fn unlocked(user: &User, now_ms: i64) -> User {
    let mut u = user.clone();
    u.locked = None;
    u.failed_logins.clear();
    u.unlocked_ms = Some(now_ms);
    u
}

/// Last time the account was in use: created, logged in or unlocked.
pub fn last_activity_ms(user: &User) -> i64 {
    user.created_ms.max(user.last_login_ms.unwrap_or(i64::MIN)).max(user.unlocked_ms.unwrap_or(i64::MIN))
}

fn lock_denial(lock: &Lock, policy: &AccessPolicy) -> LoginDenied {
    match lock.kind {
        LockKind::Unused => LoginDenied::Disabled { days: policy.unused_account_ms / DAY_MS },
        kind => LoginDenied::Locked { kind },
    }
}

fn is_unused(user: &User, policy: &AccessPolicy, now_ms: i64) -> bool {
    now_ms - last_activity_ms(user) > policy.unused_account_ms
}

/// Everything but the password: lock, inactivity, roles, training. For each request of a session,
/// so a user locked or whose training lapsed mid-session is stopped at once.
pub fn may_act(user: &User, policy: &AccessPolicy, now_ms: i64) -> Result<(), LoginDenied> {
    if let Some(lock) = &user.locked {
        return Err(lock_denial(lock, policy));
    }
    if is_unused(user, policy, now_ms) {
        return Err(LoginDenied::Disabled { days: policy.unused_account_ms / DAY_MS });
    }
    if user.roles.is_empty() {
        return Err(if user.pending_roles.is_some() { LoginDenied::RolesPending } else { LoginDenied::NoRole });
    }
    if mixes_admin_and_data(&user.roles) {
        return Err(LoginDenied::RoleConflict);
    }
    for course in &policy.required_courses {
        if !user.training.iter().any(|t| t.is_for(course) && t.is_current(now_ms)) {
            return Err(LoginDenied::NoCurrentTraining { course: course.clone() });
        }
    }
    Ok(())
}

/// One login attempt, the password already verified (`password_ok`). Returns the user as it must be
/// stored (failures counted, lock set, last login) and the verdict.
///
/// A wrong password always answers `BadPassword`, so the verdict reveals nothing about the account to
/// someone without the password; it counts while the account is not locked, and the failure that
/// reaches `lockout_failures` within the window locks it. Only with the right password are lock,
/// inactivity and training reported, so the attempt after the locking one is refused even with the
/// right password.
pub fn check_login(
    user: &User,
    password_ok: bool,
    policy: &AccessPolicy,
    now_ms: i64,
) -> (User, Result<(), LoginDenied>) {
    let mut u = user.clone();
    // Failures from "the future" (clock stepped back) still count: the safe side.
    u.failed_logins.retain(|t| now_ms - t < policy.lockout_window_ms);
    if !password_ok {
        if u.locked.is_none() {
            u.failed_logins.push(now_ms);
            if u.failed_logins.len() >= policy.lockout_failures as usize {
                let reason = format!(
                    "{} failed logins within {} minutes",
                    u.failed_logins.len(),
                    policy.lockout_window_ms / MINUTE_MS
                );
                u = with_lock(&u, LockKind::FailedLogins, "system", &reason, now_ms);
            }
        }
        return (u, Err(LoginDenied::BadPassword));
    }
    if u.locked.is_none() && is_unused(&u, policy, now_ms) {
        // Kept as a lock so the account shows as disabled and stays so until an administrator acts.
        let since = jiff::Timestamp::from_millisecond(last_activity_ms(&u)).map(|t| t.to_string()).unwrap_or_default();
        let reason = format!("not used since {since}");
        u = with_lock(&u, LockKind::Unused, "system", &reason, now_ms);
    }
    if let Err(e) = may_act(&u, policy, now_ms) {
        return (u, Err(e));
    }
    u.failed_logins.clear();
    if u.must_change_password {
        return (u, Err(LoginDenied::MustChangePassword));
    }
    u.last_login_ms = Some(now_ms);
    (u, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = MINUTE_MS;
    const DAY: i64 = DAY_MS;
    /// 2026-06-01T00:00:00Z
    const T0: i64 = 1_780_272_000_000;

    fn policy() -> AccessPolicy {
        AccessPolicy::default()
    }

    fn trained_user() -> User {
        let n = NewUser {
            username: "JDoe".into(),
            display_name: "Jane Doe".into(),
            organisation: "Auburn PD".into(),
            job_title: "Officer".into(),
            roles: vec![Role::Operator],
        };
        let u = new_user(n, "$argon2id$dummy".into(), "admin", T0 - 10 * DAY).unwrap();
        with_training(
            &u,
            Training { course: "ALPR operator".into(), completed_ms: T0 - 10 * DAY, expires_ms: T0 + 365 * DAY },
        )
    }

    #[test]
    fn defaults_come_from_config() {
        let p = policy();
        assert_eq!(p.lockout_failures, 5);
        assert_eq!(p.lockout_window_ms, 15 * MIN);
        assert_eq!(p.unused_account_ms, 90 * DAY);
        assert_eq!(p.session_idle_ms, 30 * MIN);
        assert_eq!(p.session_absolute_ms, 12 * 60 * MIN);
        assert_eq!(p.required_courses, vec!["ALPR operator".to_string()]);
    }

    #[test]
    fn usernames() {
        assert_eq!(normalize_username(" JDoe "), Ok("jdoe".into()));
        assert_eq!(normalize_username("j.doe_2-x"), Ok("j.doe_2-x".into()));
        assert_eq!(normalize_username(&"a".repeat(64)).map(|s| s.len()), Ok(64));
        for bad in ["", "a".repeat(65).as_str(), "j doe", "jdoe@pd", "jdö", "a:b", "(unknown)"] {
            assert_eq!(normalize_username(bad), Err(UserInvalid::Username), "{bad}");
        }
        assert!(matches!(normalize_username("System"), Err(UserInvalid::Reserved(_))));
    }

    #[test]
    fn new_user_checks_fields() {
        let n = |roles: Vec<Role>, title: &str| NewUser {
            username: "x1".into(),
            display_name: "X".into(),
            organisation: "PD".into(),
            job_title: title.into(),
            roles,
        };
        assert_eq!(new_user(n(vec![], "t"), String::new(), "a", 0), Err(UserInvalid::NoRole));
        assert_eq!(new_user(n(vec![Role::Admin], " "), String::new(), "a", 0), Err(UserInvalid::Empty("job title")));
        assert_eq!(new_user(n(vec![Role::Admin], "a\nb"), String::new(), "a", 0), Err(UserInvalid::Text("job title")));
        // Sorted and deduplicated. (Was admin + operator, which separation of duties now refuses.)
        let u = new_user(n(vec![Role::Auditor, Role::Admin, Role::Auditor], "t"), String::new(), "a", 0).unwrap();
        assert_eq!(u.roles, vec![Role::Admin, Role::Auditor]);
    }

    #[test]
    fn login_ok_records_time_and_clears_failures() {
        let u = trained_user();
        let (u, r) = check_login(&u, false, &policy(), T0);
        assert_eq!(r, Err(LoginDenied::BadPassword));
        assert_eq!(u.failed_logins, vec![T0]);
        let (u, r) = check_login(&u, true, &policy(), T0 + MIN);
        assert_eq!(r, Ok(()));
        assert_eq!(u.last_login_ms, Some(T0 + MIN));
        assert!(u.failed_logins.is_empty());
    }

    #[test]
    fn five_failures_in_the_window_lock_and_the_sixth_is_refused_with_the_right_password() {
        let mut u = trained_user();
        for i in 0..5 {
            let (next, r) = check_login(&u, false, &policy(), T0 + i * 2 * MIN);
            assert_eq!(r, Err(LoginDenied::BadPassword));
            assert_eq!(next.locked.is_some(), i == 4, "attempt {}", i + 1);
            u = next;
        }
        let lock = u.locked.clone().unwrap();
        assert_eq!(lock.kind, LockKind::FailedLogins);
        assert_eq!(lock.reason, "5 failed logins within 15 minutes");
        let (u2, r) = check_login(&u, true, &policy(), T0 + 9 * MIN);
        assert_eq!(r, Err(LoginDenied::Locked { kind: LockKind::FailedLogins }));
        assert_eq!(u2.last_login_ms, None);
        // And it stays locked long after the window: only an administrator unlocks.
        assert_eq!(
            check_login(&u, true, &policy(), T0 + 30 * DAY).1,
            Err(LoginDenied::Locked { kind: LockKind::FailedLogins })
        );
        let u = unlocked(&u, T0 + DAY);
        assert_eq!(check_login(&u, true, &policy(), T0 + DAY + 1).1, Ok(()));
    }

    #[test]
    fn failures_spread_over_more_than_the_window_do_not_lock() {
        let mut u = trained_user();
        // Every 4 minutes: the 5th is 16 minutes after the 1st, so at most 4 are ever in the window.
        for i in 0..20 {
            let (next, r) = check_login(&u, false, &policy(), T0 + i * 4 * MIN);
            assert_eq!(r, Err(LoginDenied::BadPassword));
            assert!(next.locked.is_none(), "attempt {}", i + 1);
            assert!(next.failed_logins.len() <= 4);
            u = next;
        }
        assert_eq!(check_login(&u, true, &policy(), T0 + 80 * MIN).1, Ok(()));
    }

    #[test]
    fn window_boundary_a_failure_exactly_window_old_no_longer_counts() {
        let mut u = trained_user();
        for t in [0, MIN, 2 * MIN, 3 * MIN] {
            u = check_login(&u, false, &policy(), T0 + t).0;
        }
        assert!(check_login(&u, false, &policy(), T0 + 15 * MIN).0.locked.is_none());
        assert!(check_login(&u, false, &policy(), T0 + 15 * MIN - 1).0.locked.is_some());
    }

    #[test]
    fn training_must_be_current_for_login_and_action() {
        // Inactivity out of the way: this is about training alone.
        let p = AccessPolicy { unused_account_ms: 10_000 * DAY, ..policy() };
        let u = trained_user();
        let expires = T0 + 365 * DAY;
        assert_eq!(check_login(&u, true, &p, expires - 1).1, Ok(()));
        let course = LoginDenied::NoCurrentTraining { course: "ALPR operator".into() };
        assert_eq!(check_login(&u, true, &p, expires).1, Err(course.clone()));
        assert_eq!(may_act(&u, &p, expires - 1), Ok(()));
        assert_eq!(may_act(&u, &p, expires), Err(course.clone()));
        // Untrained: refused; a record for another course does not help.
        let mut untrained = u.clone();
        untrained.training.clear();
        assert_eq!(check_login(&untrained, true, &p, T0).1, Err(course.clone()));
        let other = with_training(
            &untrained,
            Training { course: "First aid".into(), completed_ms: T0 - DAY, expires_ms: T0 + DAY },
        );
        assert_eq!(check_login(&other, true, &p, T0).1, Err(course.clone()));
        // Every required course, case-insensitive.
        let p2 = AccessPolicy { required_courses: vec!["ALPR operator".into(), "CJIS security".into()], ..p.clone() };
        assert_eq!(
            check_login(&u, true, &p2, T0).1,
            Err(LoginDenied::NoCurrentTraining { course: "CJIS security".into() })
        );
        let both = with_training(
            &u,
            Training { course: "cjis SECURITY".into(), completed_ms: T0 - DAY, expires_ms: T0 + DAY },
        );
        assert_eq!(check_login(&both, true, &p2, T0).1, Ok(()));
    }

    #[test]
    fn training_record_replaces_same_course_and_is_checked() {
        let u = trained_user();
        let t = Training { course: " alpr OPERATOR ".into(), completed_ms: T0, expires_ms: T0 + DAY };
        let t = check_training(t, T0).unwrap();
        assert_eq!(t.course, "alpr OPERATOR");
        let u = with_training(&u, t);
        assert_eq!(u.training.len(), 1);
        assert_eq!(u.training[0].expires_ms, T0 + DAY);
        let future = Training { course: "c".into(), completed_ms: T0 + 1, expires_ms: T0 + DAY };
        assert_eq!(check_training(future, T0), Err(UserInvalid::CompletedInFuture));
        let backwards = Training { course: "c".into(), completed_ms: T0, expires_ms: T0 };
        assert_eq!(check_training(backwards, T0), Err(UserInvalid::ExpiresBeforeCompleted));
    }

    #[test]
    fn unused_accounts_are_disabled_until_unlocked() {
        let p = policy();
        let mut u = trained_user();
        u.training[0].expires_ms = T0 + 1000 * DAY;
        let (u, r) = check_login(&u, true, &p, T0);
        assert_eq!(r, Ok(()));
        // 90 days after the last login: still fine; a moment later: disabled, and kept so.
        assert_eq!(check_login(&u, true, &p, T0 + 90 * DAY).1, Ok(()));
        let (u, r) = check_login(&u, true, &p, T0 + 90 * DAY + 1);
        assert_eq!(r, Err(LoginDenied::Disabled { days: 90 }));
        assert_eq!(u.locked.as_ref().map(|l| l.kind), Some(LockKind::Unused));
        assert_eq!(may_act(&u, &p, T0 + 90 * DAY + 2), Err(LoginDenied::Disabled { days: 90 }));
        // A wrong password still says only that.
        assert_eq!(check_login(&u, false, &p, T0 + 91 * DAY).1, Err(LoginDenied::BadPassword));
        let u = unlocked(&u, T0 + 100 * DAY);
        assert_eq!(check_login(&u, true, &p, T0 + 100 * DAY + 1).1, Ok(()));
        // Never logged in: counted from creation.
        let fresh = trained_user();
        let created = fresh.created_ms;
        let mut fresh2 = fresh.clone();
        fresh2.training[0].expires_ms = created + 1000 * DAY;
        assert_eq!(check_login(&fresh2, true, &p, created + 91 * DAY).1, Err(LoginDenied::Disabled { days: 90 }));
    }

    #[test]
    fn admin_lock_is_reported_only_with_the_right_password() {
        let u = with_lock(&trained_user(), LockKind::Admin, "boss", "under review", T0);
        assert_eq!(check_login(&u, false, &policy(), T0).1, Err(LoginDenied::BadPassword));
        let (after, r) = check_login(&u, true, &policy(), T0);
        assert_eq!(r, Err(LoginDenied::Locked { kind: LockKind::Admin }));
        assert_eq!(after.locked.unwrap().reason, "under review", "the admin's reason stays");
        assert!(!LoginDenied::Locked { kind: LockKind::Admin }.to_string().contains("under review"));
    }

    #[test]
    fn admin_and_data_roles_are_never_held_together() {
        let n = |roles: Vec<Role>| NewUser {
            username: "x1".into(),
            display_name: "X".into(),
            organisation: "PD".into(),
            job_title: "t".into(),
            roles,
        };
        assert_eq!(
            new_user(n(vec![Role::Admin, Role::Supervisor]), String::new(), "a", 0),
            Err(UserInvalid::Separation)
        );
        assert_eq!(new_user(n(vec![Role::Operator, Role::Admin]), String::new(), "a", 0), Err(UserInvalid::Separation));
        assert!(
            new_user(n(vec![Role::Admin, Role::Auditor]), String::new(), "a", 0).is_ok(),
            "auditing is not reading data"
        );
        // An account stored before the rule may not act until split.
        let mut u = trained_user();
        u.roles = vec![Role::Admin, Role::Operator];
        assert_eq!(may_act(&u, &policy(), T0), Err(LoginDenied::RoleConflict));
    }

    #[test]
    fn pending_roles_need_a_second_administrator() {
        let u = with_roles_pending(&trained_user(), "adam", T0);
        assert!(u.roles.is_empty());
        assert_eq!(check_login(&u, true, &policy(), T0).1, Err(LoginDenied::RolesPending));
        assert_eq!(with_roles_approved(&u, "adam"), Err(ApproveError::SameAdmin));
        assert_eq!(with_roles_approved(&u, "jdoe"), Err(ApproveError::OwnAccount));
        let ok = with_roles_approved(&u, "ada").unwrap();
        assert_eq!(ok.roles, vec![Role::Operator]);
        assert_eq!(with_roles_approved(&ok, "ada"), Err(ApproveError::NothingPending));
        assert_eq!(check_login(&ok, true, &policy(), T0).1, Ok(()));
    }

    #[test]
    fn an_administrators_password_must_be_changed_and_a_wrong_one_says_nothing_of_it() {
        let mut u = trained_user();
        u.must_change_password = true;
        assert_eq!(check_login(&u, false, &policy(), T0).1, Err(LoginDenied::BadPassword));
        let (after, r) = check_login(&u, true, &policy(), T0);
        assert_eq!(r, Err(LoginDenied::MustChangePassword));
        assert_eq!(after.last_login_ms, None);
        // Lock and training come first: the temporary password opens nothing on a locked account.
        let locked = with_lock(&u, LockKind::Admin, "boss", "r", T0);
        assert_eq!(check_login(&locked, true, &policy(), T0).1, Err(LoginDenied::Locked { kind: LockKind::Admin }));
    }

    #[test]
    fn debug_hides_the_hash() {
        let mut u = trained_user();
        u.password_hash = "$argon2id$v=19$secretstuff".into();
        assert!(!format!("{u:?}").contains("secretstuff"));
    }

    proptest! {
        /// Whatever the sequence of attempts, the account is locked exactly when some attempt was the
        /// `lockout_failures`-th failure within the window (counted since the last success), and a
        /// locked account never lets anyone in.
        #[test]
        fn lockout_matches_a_naive_model(steps in proptest::collection::vec((0i64..8 * MIN, any::<bool>()), 1..40)) {
            let p = policy();
            let mut u = trained_user();
            let mut now = T0;
            let mut failures: Vec<i64> = Vec::new();
            let mut locked = false;
            for (gap, ok) in steps {
                now += gap;
                let (next, r) = check_login(&u, ok, &p, now);
                if locked {
                    prop_assert!(r.is_err());
                } else if ok {
                    prop_assert_eq!(r, Ok(()));
                    failures.clear();
                } else {
                    failures.retain(|t| now - t < p.lockout_window_ms);
                    failures.push(now);
                    locked = failures.len() >= p.lockout_failures as usize;
                }
                prop_assert_eq!(next.locked.is_some(), locked);
                u = next;
            }
        }
    }
}
