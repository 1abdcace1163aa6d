//! Users on a real store: every change and login attempt audited exactly once, a failing audit sink
//! stops the change, lockout and training through the service, and `polewatch user …` run as a binary.

use polewatch::access::service::{Actor, UNKNOWN_USER, UserError, UserService};
use polewatch::access::session::SessionEnded;
use polewatch::access::users::{AccessPolicy, LockKind, LoginDenied, NewUser, Training};
use polewatch::access::{Action, AuditError, AuditSink, NewAuditEntry, Outcome, Role};
use polewatch::store::{Store, StoreOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const MIN: i64 = 60_000;
const DAY: i64 = 24 * 60 * MIN;
/// 2026-06-01T00:00:00Z
const T0: i64 = 1_780_272_000_000;
const PW: &str = "correct horse battery staple";

/// Collects entries; fails every record while `fail` is set.
#[derive(Default)]
struct MemSink {
    entries: Mutex<Vec<NewAuditEntry>>,
    fail: Mutex<bool>,
}

impl MemSink {
    fn take(&self) -> Vec<NewAuditEntry> {
        std::mem::take(&mut *self.entries.lock().unwrap())
    }
    fn set_failing(&self, f: bool) {
        *self.fail.lock().unwrap() = f;
    }
}

impl AuditSink for MemSink {
    fn record(&self, entry: NewAuditEntry) -> Result<u64, AuditError> {
        if *self.fail.lock().unwrap() {
            return Err(AuditError::Write("disk full (test)".into()));
        }
        let mut e = self.entries.lock().unwrap();
        e.push(entry);
        Ok(e.len() as u64)
    }
}

/// Refuses everything.
struct FailingSink;

impl AuditSink for FailingSink {
    fn record(&self, _: NewAuditEntry) -> Result<u64, AuditError> {
        Err(AuditError::Write("audit log unavailable (test)".into()))
    }
}

fn admin() -> Actor {
    Actor { user: "root-admin".into(), organisation: "Auburn PD".into(), source: "cli".into() }
}

fn new_user(name: &str, roles: Vec<Role>) -> NewUser {
    NewUser {
        username: name.into(),
        display_name: "Jane Doe".into(),
        organisation: "Auburn PD".into(),
        job_title: "Officer".into(),
        roles,
    }
}

fn course(completed_ms: i64, expires_ms: i64) -> Training {
    Training { course: "ALPR operator".into(), completed_ms, expires_ms }
}

struct Rig {
    _dir: tempfile::TempDir,
    sink: Arc<MemSink>,
    svc: UserService,
    store: Arc<Store>,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&StoreOptions::at(dir.path().join("store"))).unwrap();
    let store = Arc::new(store);
    let sink = Arc::new(MemSink::default());
    let svc = UserService::new(store.clone(), AccessPolicy::default(), sink.clone());
    Rig { _dir: dir, sink, svc, store }
}

/// The one entry the last call left, with the fields every entry needs.
fn one(sink: &MemSink, action: Action, outcome: Outcome) -> NewAuditEntry {
    let e = sink.take();
    assert_eq!(e.len(), 1, "{e:#?}");
    let e = e.into_iter().next().unwrap();
    assert_eq!(e.action, Some(action), "{e:#?}");
    assert_eq!(e.outcome, Some(outcome), "{e:#?}");
    assert!(!e.user.is_empty() && !e.source.is_empty(), "{e:#?}");
    assert!(!e.detail.contains(PW), "never a password in the log: {e:#?}");
    e
}

#[test]
fn every_action_leaves_exactly_one_audit_entry() {
    let r = rig();
    let u = r.svc.add_user(&admin(), new_user("JDoe", vec![Role::Operator]), PW, T0).unwrap();
    assert_eq!(u.username, "jdoe");
    let e = one(&r.sink, Action::UserAdded, Outcome::Ok);
    assert_eq!((e.user.as_str(), e.object.as_str(), e.source.as_str()), ("root-admin", "jdoe", "cli"));
    assert!(e.detail.contains("operator"), "{}", e.detail);
    let stored = r.store.get_user("jdoe").unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));

    // Untrained: the right password is not enough (471.4 (d)).
    let err = r.svc.login("jdoe", PW, "10.0.0.5:4431", T0 + MIN).unwrap_err();
    assert!(matches!(err, UserError::Denied(LoginDenied::NoCurrentTraining { .. })), "{err}");
    let e = one(&r.sink, Action::LoginFailed, Outcome::Denied);
    assert_eq!((e.user.as_str(), e.object.as_str(), e.source.as_str()), ("jdoe", "jdoe", "10.0.0.5:4431"));
    assert!(e.detail.contains("ALPR operator"), "{}", e.detail);

    r.svc.record_training(&admin(), "jdoe", course(T0 - DAY, T0 + 365 * DAY), T0 + 2 * MIN).unwrap();
    let e = one(&r.sink, Action::TrainingRecorded, Outcome::Ok);
    assert!(e.detail.contains("ALPR operator") && e.detail.contains("2026-05-31"), "{}", e.detail);

    let (u, session) = r.svc.login("JDOE", PW, "10.0.0.5:4431", T0 + 3 * MIN).unwrap();
    assert_eq!(u.last_login_ms, Some(T0 + 3 * MIN));
    let e = one(&r.sink, Action::Login, Outcome::Ok);
    assert_eq!((e.user.as_str(), e.organisation.as_str()), ("jdoe", "Auburn PD"));
    assert_eq!(r.store.get_user("jdoe").unwrap().unwrap().last_login_ms, Some(T0 + 3 * MIN), "stored");
    let (who, _) = r.svc.session_user(&session.token, T0 + 4 * MIN).unwrap();
    assert_eq!(who.username, "jdoe");

    r.svc.set_password(&admin(), "jdoe", "a brand new passphrase", T0 + 5 * MIN).unwrap();
    one(&r.sink, Action::PasswordChanged, Outcome::Ok);
    assert!(r.svc.session_user(&session.token, T0 + 6 * MIN).is_err(), "a new password ends sessions");
    assert!(matches!(r.svc.login("jdoe", PW, "x", T0 + 6 * MIN), Err(UserError::Denied(LoginDenied::BadPassword))));
    let e = one(&r.sink, Action::LoginFailed, Outcome::Denied);
    assert_eq!(e.detail, "wrong password");

    let (_, session) = r.svc.login("jdoe", "a brand new passphrase", "x", T0 + 7 * MIN).unwrap();
    one(&r.sink, Action::Login, Outcome::Ok);
    r.svc.lock(&admin(), "jdoe", "under internal review", T0 + 8 * MIN).unwrap();
    let e = one(&r.sink, Action::UserLocked, Outcome::Ok);
    assert!(e.detail.contains("under internal review"));
    // Locked mid-session: the next request is refused.
    assert!(matches!(r.svc.session_user(&session.token, T0 + 9 * MIN), Err(UserError::Session(SessionEnded::Unknown))));
    assert!(matches!(
        r.svc.login("jdoe", "a brand new passphrase", "x", T0 + 9 * MIN),
        Err(UserError::Denied(LoginDenied::Locked { kind: LockKind::Admin }))
    ));
    one(&r.sink, Action::LoginFailed, Outcome::Denied);

    r.svc.unlock(&admin(), "jdoe", T0 + 10 * MIN).unwrap();
    let e = one(&r.sink, Action::UserUnlocked, Outcome::Ok);
    assert!(e.detail.contains("under internal review"), "{}", e.detail);
    let (_, session) = r.svc.login("jdoe", "a brand new passphrase", "x", T0 + 11 * MIN).unwrap();
    one(&r.sink, Action::Login, Outcome::Ok);
    r.svc.logout(&session.token, "x").unwrap();
    one(&r.sink, Action::Logout, Outcome::Ok);
}

#[test]
fn refusals_are_audited_as_denied_and_change_nothing() {
    let r = rig();
    let a = admin();
    let err = r.svc.add_user(&a, new_user("jdoe", vec![Role::Operator]), "police123", T0).unwrap_err();
    assert!(matches!(err, UserError::Password(_)), "{err}");
    let e = one(&r.sink, Action::UserAdded, Outcome::Denied);
    assert!(!e.detail.contains("police123"));
    assert!(r.store.get_user("jdoe").unwrap().is_none());

    let err = r.svc.add_user(&a, new_user("jdoe", vec![Role::Operator]), "jdoe-is-my-name", T0).unwrap_err();
    assert!(matches!(err, UserError::Password(_)), "{err}");
    one(&r.sink, Action::UserAdded, Outcome::Denied);

    r.svc.add_user(&a, new_user("jdoe", vec![Role::Operator]), PW, T0).unwrap();
    one(&r.sink, Action::UserAdded, Outcome::Ok);
    let err = r.svc.add_user(&a, new_user("jdoe", vec![Role::Admin]), PW, T0).unwrap_err();
    assert!(matches!(err, UserError::Exists(_)), "{err}");
    one(&r.sink, Action::UserAdded, Outcome::Denied);
    assert_eq!(r.store.get_user("jdoe").unwrap().unwrap().roles, vec![Role::Operator]);

    assert!(matches!(r.svc.lock(&a, "nobody", "r", T0), Err(UserError::NotFound(_))));
    one(&r.sink, Action::UserLocked, Outcome::Denied);
    assert!(matches!(r.svc.lock(&a, "jdoe", "  ", T0), Err(UserError::LockReason(_))));
    one(&r.sink, Action::UserLocked, Outcome::Denied);
    let err = r.svc.record_training(&a, "jdoe", course(T0 + DAY, T0 + 2 * DAY), T0).unwrap_err();
    assert!(matches!(err, UserError::Invalid(_)), "{err}");
    one(&r.sink, Action::TrainingRecorded, Outcome::Denied);
    assert!(r.store.get_user("jdoe").unwrap().unwrap().training.is_empty());

    // Unknown usernames: same answer as a wrong password, and the typed name is not recorded.
    let err = r.svc.login("Hunter2-typed-in-the-name-box", PW, "x", T0).unwrap_err();
    assert!(matches!(err, UserError::Denied(LoginDenied::BadPassword)));
    let e = one(&r.sink, Action::LoginFailed, Outcome::Denied);
    assert_eq!(e.user, UNKNOWN_USER);
    assert!(!format!("{e:?}").to_lowercase().contains("hunter2"));
    assert!(matches!(r.svc.login("nosuchuser", PW, "x", T0), Err(UserError::Denied(LoginDenied::BadPassword))));
    one(&r.sink, Action::LoginFailed, Outcome::Denied);
}

#[test]
fn failing_audit_sink_blocks_every_action() {
    let r = rig();
    r.svc.add_user(&admin(), new_user("jdoe", vec![Role::Operator]), PW, T0).unwrap();
    r.svc.record_training(&admin(), "jdoe", course(T0 - DAY, T0 + 365 * DAY), T0).unwrap();
    r.sink.take();
    let before = r.store.get_user("jdoe").unwrap().unwrap();

    r.sink.set_failing(true);
    let audit_err =
        |res: Result<_, UserError>| assert!(matches!(res, Err(UserError::Audit(_))), "expected an audit error");
    audit_err(r.svc.add_user(&admin(), new_user("asmith", vec![Role::Auditor]), PW, T0).map(|_| ()));
    audit_err(r.svc.set_password(&admin(), "jdoe", "another fine passphrase", T0).map(|_| ()));
    audit_err(r.svc.record_training(&admin(), "jdoe", course(T0 - DAY, T0 + 2 * DAY), T0).map(|_| ()));
    audit_err(r.svc.lock(&admin(), "jdoe", "test", T0).map(|_| ()));
    audit_err(r.svc.unlock(&admin(), "jdoe", T0).map(|_| ()));
    audit_err(r.svc.login("jdoe", PW, "x", T0 + MIN).map(|_| ()));
    audit_err(r.svc.login("jdoe", "wrong password here", "x", T0 + MIN).map(|_| ()));
    audit_err(r.svc.login("nosuchuser", PW, "x", T0 + MIN).map(|_| ()));

    assert!(r.store.get_user("asmith").unwrap().is_none(), "not added");
    assert_eq!(r.store.get_user("jdoe").unwrap().unwrap(), before, "nothing about jdoe changed");
    assert_eq!(r.svc.sessions().active(T0 + MIN), 0, "no session from the refused login");

    // The service with a sink that always fails: nothing at all happens.
    let svc = UserService::new(r.store.clone(), AccessPolicy::default(), Arc::new(FailingSink));
    assert!(matches!(
        svc.add_user(&admin(), new_user("bsmith", vec![Role::Operator]), PW, T0),
        Err(UserError::Audit(_))
    ));
    assert!(r.store.get_user("bsmith").unwrap().is_none());

    r.sink.set_failing(false);
    assert!(r.svc.login("jdoe", PW, "x", T0 + 2 * MIN).is_ok());
}

#[test]
fn lockout_through_the_service_survives_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let sink = Arc::new(MemSink::default());
    {
        let (store, _) = Store::open(&StoreOptions::at(&path)).unwrap();
        let store = Arc::new(store);
        let svc = UserService::new(store.clone(), AccessPolicy::default(), sink.clone());
        svc.add_user(&admin(), new_user("jdoe", vec![Role::Operator]), PW, T0).unwrap();
        svc.record_training(&admin(), "jdoe", course(T0 - DAY, T0 + 365 * DAY), T0).unwrap();
        sink.take();
        for i in 0..5 {
            let r = svc.login("jdoe", "not the password", "10.1.1.1:1", T0 + i * MIN);
            assert!(matches!(r, Err(UserError::Denied(LoginDenied::BadPassword))));
            let e = one(&sink, Action::LoginFailed, Outcome::Denied);
            assert_eq!(e.detail.contains("account locked: 5 failed logins within 15 minutes"), i == 4, "{}", e.detail);
        }
        drop(svc);
        Arc::try_unwrap(store).ok().unwrap().close().unwrap();
    }
    let (store, _) = Store::open(&StoreOptions::at(&path)).unwrap();
    let svc = UserService::new(Arc::new(store), AccessPolicy::default(), sink.clone());
    // The 6th attempt, right password, after a restart: refused.
    let r = svc.login("jdoe", PW, "10.1.1.1:1", T0 + 6 * MIN);
    assert!(matches!(r, Err(UserError::Denied(LoginDenied::Locked { kind: LockKind::FailedLogins }))), "{r:?}");
    one(&sink, Action::LoginFailed, Outcome::Denied);
    svc.unlock(&admin(), "jdoe", T0 + 7 * MIN).unwrap();
    assert!(svc.login("jdoe", PW, "10.1.1.1:1", T0 + 8 * MIN).is_ok());
}

#[test]
fn session_expiry_and_lapsed_training_through_the_service() {
    let r = rig();
    r.svc.add_user(&admin(), new_user("jdoe", vec![Role::Operator]), PW, T0).unwrap();
    r.svc.record_training(&admin(), "jdoe", course(T0 - DAY, T0 + 2 * 60 * MIN), T0).unwrap();
    let (_, s) = r.svc.login("jdoe", PW, "x", T0).unwrap();
    assert!(r.svc.session_user(&s.token, T0 + 29 * MIN).is_ok());
    assert!(matches!(r.svc.session_user(&s.token, T0 + 60 * MIN), Err(UserError::Session(SessionEnded::Idle))));
    let (_, s) = r.svc.login("jdoe", PW, "x", T0 + 100 * MIN).unwrap();
    // Training lapses at T0 + 2 h, mid-session.
    let r2 = r.svc.session_user(&s.token, T0 + 121 * MIN);
    assert!(matches!(r2, Err(UserError::Denied(LoginDenied::NoCurrentTraining { .. }))), "{r2:?}");
    assert!(matches!(r.svc.session_user(&s.token, T0 + 122 * MIN), Err(UserError::Session(SessionEnded::Unknown))));
}

// ---- the binary ----

fn cli(dir: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_polewatch"))
        .arg("--config")
        .arg(dir.join("polewatch.toml"))
        .arg("user")
        .args(args)
        .env("USER", "ops-person")
        .env_remove("SUDO_USER")
        .env_remove("POLEWATCH_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn cli_adds_the_first_admin_lists_locks_and_unlocks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = format!(
        "[site]\nsite_id = \"s1\"\ndevice_id = \"d1\"\norganisation = \"Auburn PD\"\n\n[store]\npath = \"{}\"\n\n[access]\naudit_key_file = \"{}\"\n\n[logging]\ntarget = \"stderr\"\n",
        d.join("store").display(),
        d.join("audit.key").display()
    );
    std::fs::write(d.join("polewatch.toml"), cfg).unwrap();

    let out = cli(
        d,
        &[
            "add",
            "Chief",
            "--name",
            "Pat Chief",
            "--title",
            "ALPR administrator",
            "--role",
            "admin",
            "--role",
            "auditor",
        ],
        Some(&format!("{PW}\n")),
    );
    let stdout = ok(&out);
    assert!(stdout.contains("added chief"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(PW) && !stdout.contains(PW));
    // The addition is in the hash-chained audit log, by the person running the command.
    let shown = Command::new(env!("CARGO_BIN_EXE_polewatch"))
        .arg("--config")
        .arg(d.join("polewatch.toml"))
        .args(["audit", "show", "--action", "user_added"])
        .env("USER", "ops-person")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("ops-person") && shown.contains("chief"), "{shown}");
    assert!(!shown.contains(PW));

    // A banned password is refused, with the reason and without the password.
    let out = cli(d, &["add", "op1", "--name", "O P", "--title", "Officer", "--role", "operator"], Some("Password1\n"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("list of common"), "{stderr}");
    assert!(!stderr.contains("Password1"), "{stderr}");

    ok(&cli(
        d,
        &["train", "chief", "--course", "ALPR operator", "--completed", "2020-01-10", "--expires", "2099-12-31"],
        None,
    ));
    let list = ok(&cli(d, &["list"], None));
    let rows: Vec<&str> = list.lines().collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows[0].starts_with("username\t"));
    let cols: Vec<&str> = rows[1].split('\t').collect();
    assert_eq!(
        &cols[..6],
        ["chief", "Pat Chief", "Auburn PD", "ALPR administrator", "admin,auditor", "active"],
        "{list}"
    );
    assert!(cols[6].contains("ALPR operator until 2099-12-31"), "{list}");
    assert!(!list.contains("argon2"), "no hashes in the list");

    ok(&cli(d, &["lock", "chief", "--reason", "left the unit"], None));
    let list = ok(&cli(d, &["list"], None));
    assert!(list.contains("locked: left the unit"), "{list}");
    ok(&cli(d, &["unlock", "chief"], None));
    let list = ok(&cli(d, &["list"], None));
    assert!(list.lines().nth(1).unwrap().contains("\tactive\t"), "{list}");

    ok(&cli(d, &["passwd", "chief"], Some("a different long passphrase\n")));

    // What the CLI wrote is what the service reads: the new password logs in.
    let (store, _) = Store::open(&StoreOptions::at(d.join("store"))).unwrap();
    let svc = UserService::new(Arc::new(store), AccessPolicy::default(), Arc::new(MemSink::default()));
    let now = jiff::Timestamp::now().as_millisecond();
    assert!(svc.login("chief", "a different long passphrase", "test", now).is_ok());
}

/// Issue 20 finding 3 at the service: what an administrator does in the console (roles granted, a
/// password set, a lock) is held to separation of duties, and each step is audited once.
#[test]
fn console_grants_wait_for_a_second_admin_and_admin_passwords_are_temporary() {
    let r = rig();
    let root = admin();
    let adam = Actor { user: "adam".into(), organisation: "Auburn PD".into(), source: "10.0.0.9:1".into() };
    let ada = Actor { user: "ada".into(), ..adam.clone() };
    for name in ["adam", "ada"] {
        r.svc.add_user(&root, new_user(name, vec![Role::Admin]), PW, T0).unwrap();
        r.svc.record_training(&root, name, course(T0 - DAY, T0 + 365 * DAY), T0).unwrap();
    }
    r.sink.take();

    let err = r.svc.admin_add_user(&adam, new_user("boss", vec![Role::Admin, Role::Operator]), PW, T0).unwrap_err();
    assert!(err.to_string().contains("separation of duties"), "{err}");
    one(&r.sink, Action::UserAdded, Outcome::Denied);

    let u = r.svc.admin_add_user(&adam, new_user("jdoe", vec![Role::Operator]), PW, T0).unwrap();
    assert!(u.roles.is_empty() && u.must_change_password);
    assert_eq!(
        u.pending_roles.as_ref().map(|p| (p.roles.clone(), p.by.clone())),
        Some((vec![Role::Operator], "adam".to_string()))
    );
    let e = one(&r.sink, Action::UserAdded, Outcome::Ok);
    assert!(e.detail.contains("second administrator") && e.detail.contains("temporary"), "{}", e.detail);
    r.svc.record_training(&adam, "jdoe", course(T0 - DAY, T0 + 365 * DAY), T0).unwrap();
    r.sink.take();
    assert!(matches!(r.svc.login("jdoe", PW, "x", T0 + MIN), Err(UserError::Denied(LoginDenied::RolesPending))));
    one(&r.sink, Action::LoginFailed, Outcome::Denied);
    assert!(r.svc.approve_roles(&adam, "jdoe", T0).is_err(), "not by the admin who granted them");
    one(&r.sink, Action::UserChanged, Outcome::Denied);
    r.svc.approve_roles(&ada, "jdoe", T0).unwrap();
    let e = one(&r.sink, Action::UserChanged, Outcome::Ok);
    assert!(e.detail.contains("operator approved") && e.detail.contains("adam"), "{}", e.detail);

    // The temporary password: login refused until changed; the change is the user's own, then a login.
    assert!(matches!(r.svc.login("jdoe", PW, "x", T0 + MIN), Err(UserError::Denied(LoginDenied::MustChangePassword))));
    one(&r.sink, Action::LoginFailed, Outcome::Denied);
    assert!(matches!(
        r.svc.change_own_password("jdoe", "wrong current one", "new long words", "x", T0 + MIN),
        Err(UserError::Denied(LoginDenied::BadPassword))
    ));
    one(&r.sink, Action::LoginFailed, Outcome::Denied);
    let (u, session) = r.svc.change_own_password("jdoe", PW, "new long words", "x", T0 + 2 * MIN).unwrap();
    assert!(!u.must_change_password);
    let e = r.sink.take();
    assert_eq!(
        e.iter().map(|x| (x.action, x.outcome, x.user.as_str())).collect::<Vec<_>>(),
        vec![
            (Some(Action::PasswordChanged), Some(Outcome::Ok), "jdoe"),
            (Some(Action::Login), Some(Outcome::Ok), "jdoe"),
        ]
    );
    assert!(r.svc.session_user(&session.token, T0 + 3 * MIN).is_ok());
    // An administrator's reset is temporary again and ends the sessions.
    r.svc.reset_password(&adam, "jdoe", "admin chosen words", T0 + 4 * MIN).unwrap();
    assert!(one(&r.sink, Action::PasswordChanged, Outcome::Ok).detail.contains("temporary"));
    assert!(r.svc.session_user(&session.token, T0 + 5 * MIN).is_err());
    assert!(matches!(
        r.svc.login("jdoe", "admin chosen words", "x", T0 + 5 * MIN),
        Err(UserError::Denied(LoginDenied::MustChangePassword))
    ));
    r.sink.take();

    // The last administrator who can act is not locked from the console (root on the box still may).
    r.svc.admin_lock(&adam, "ada", "on leave", T0).unwrap();
    one(&r.sink, Action::UserLocked, Outcome::Ok);
    assert!(matches!(r.svc.admin_lock(&ada, "adam", "mistake", T0), Err(UserError::LastAdmin(_))));
    one(&r.sink, Action::UserLocked, Outcome::Denied);
    assert!(r.store.get_user("adam").unwrap().unwrap().locked.is_none());
}
