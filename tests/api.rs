//! The HTTPS API over real TLS on 127.0.0.1: login, training, lockout, roles, search rules, one audit
//! entry per action, release and export; and the console driven by headless Chromium.

mod support;

use polewatch::access::audit::AuditLog;
use polewatch::access::export::DeviceKey;
use polewatch::access::roles::Role;
use polewatch::access::service::{Actor, UserService};
use polewatch::access::users::{AccessPolicy, NewUser, Training};
use polewatch::access::AuditSink;
use polewatch::api::{self, ApiState};
use polewatch::bench::synthetic_read;
use polewatch::store::{Plate, Store, StoreOptions};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const PW: &str = "tulip-harbor-quartz";
const DAY: i64 = 86_400_000;

struct Server {
    base: String,
    agent: ureq::Agent,
    audit: Arc<AuditLog>,
    store: Arc<Store>,
    export_dir: std::path::PathBuf,
    device_key_hex: String,
    handle: axum_server::Handle<SocketAddr>,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn config(dir: &Path) -> polewatch::config::Config {
    let text = format!(
        "[site]\nsite_id = \"s1\"\ndevice_id = \"pole-01\"\norganisation = \"Auburn PD\"\n[store]\npath = \"{}\"\n[access]\naudit_key_file = \"{}\"\ndevice_key_file = \"{}\"\ncustodian = \"Records\"\n",
        dir.join("store").display(),
        dir.join("keys/audit.key").display(),
        dir.join("keys/device.key").display()
    );
    polewatch::config::load_texts(&[(Path::new("t.toml"), text.as_str())]).unwrap().config
}

fn start() -> Server {
    polewatch::uplink::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    let store = Arc::new(Store::open(&StoreOptions::at(dir.path().join("store"))).unwrap().0);
    let audit = Arc::new(AuditLog::open(store.clone(), &cfg.access.audit_key_file).unwrap());
    let policy = AccessPolicy::from_config(&cfg.access, &cfg.api);
    let users = Arc::new(UserService::new(store.clone(), policy, audit.clone() as Arc<dyn AuditSink>));
    let admin = Actor { user: "root-setup".into(), organisation: "Auburn PD".into(), source: "test".into() };
    let t = now();
    for (name, role, trained) in [
        ("olive", Role::Operator, true),
        ("sam", Role::Supervisor, true),
        ("audrey", Role::Auditor, true),
        ("newbie", Role::Operator, false),
        ("lockme", Role::Operator, true),
        ("adam", Role::Admin, true),
    ] {
        let nu = NewUser { username: name.into(), display_name: name.into(), organisation: "Auburn PD".into(), job_title: "Officer".into(), roles: vec![role] };
        users.add_user(&admin, nu, PW, t).unwrap();
        if trained {
            users.record_training(&admin, name, Training { course: "ALPR operator".into(), completed_ms: t - DAY, expires_ms: t + 365 * DAY }, t).unwrap();
        }
    }
    for (i, p) in ["7ABC123", "7ABC123", "8XY0001"].iter().enumerate() {
        let mut r = synthetic_read(i as u64, t - (i as i64 + 1) * 60_000, 600);
        r.plate = Plate::new(p).unwrap();
        store.put_read(r).unwrap();
    }
    let (cert, key) = api::tls::generated_paths(dir.path());
    api::tls::ensure_self_signed(&cert, &key, &["127.0.0.1".into()]).unwrap();
    let tls = api::tls::server_config(&cert, &key).unwrap();
    let device_key = DeviceKey::load_or_create(&cfg.access.device_key_file).unwrap();
    let device_key_hex = device_key.public_hex();
    let export_dir = dir.path().join("exports");
    let state = Arc::new(ApiState {
        store: store.clone(),
        users,
        audit: audit.clone(),
        audit_log: audit.clone(),
        config: cfg,
        device_key,
        export_dir: export_dir.clone(),
    });
    let port = support::free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let handle = axum_server::Handle::new();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.spawn(api::serve(state, addr, tls, handle.clone()));
    let pem = std::fs::read(&cert).unwrap();
    let certs: Vec<ureq::tls::Certificate<'static>> =
        ureq::tls::parse_pem(&pem).filter_map(|i| match i.ok()? { ureq::tls::PemItem::Certificate(c) => Some(c), _ => None }).collect();
    let tls_cfg = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs))).build();
    let agent: ureq::Agent = ureq::Agent::config_builder().tls_config(tls_cfg).http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into();
    let base = format!("https://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while agent.get(&format!("{base}/policy")).call().is_err() {
        assert!(std::time::Instant::now() < deadline, "API did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { base, agent, audit, store, export_dir, device_key_hex, handle, _rt: rt, _dir: dir }
}

impl Server {
    fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut r = self.agent.get(&format!("{}{}", self.base, path));
        if let Some(t) = token {
            r = r.header("authorization", &format!("Bearer {t}"));
        }
        let mut res = r.call().unwrap();
        let status = res.status().as_u16();
        (status, res.body_mut().read_json().unwrap_or(Value::Null))
    }

    fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let mut r = self.agent.post(&format!("{}{}", self.base, path));
        if let Some(t) = token {
            r = r.header("authorization", &format!("Bearer {t}"));
        }
        let mut res = r.send_json(body).unwrap();
        let status = res.status().as_u16();
        (status, res.body_mut().read_json().unwrap_or(Value::Null))
    }

    fn login(&self, user: &str) -> String {
        let (s, v) = self.post("/api/login", None, json!({"username": user, "password": PW}));
        assert_eq!(s, 200, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// Audit entries written since `from_seq` (exclusive).
    fn audit_since(&self, from_seq: u64) -> Vec<polewatch::access::audit::AuditEntry> {
        let mut v: Vec<_> = self.audit.latest(100_000, None, None).unwrap().into_iter().filter(|e| e.seq > from_seq).collect();
        v.reverse();
        v
    }

    fn head(&self) -> u64 {
        self.audit.latest(1, None, None).unwrap().first().map(|e| e.seq).unwrap_or(0)
    }
}

#[test]
fn nothing_without_login_and_the_policy_is_public() {
    let s = start();
    assert_eq!(s.get("/api/search?plate=7ABC123&purpose=audit&case_number=1", None).0, 401);
    assert_eq!(s.get("/api/me", Some("forged-token")).0, 401);
    let mut res = s.agent.get(&format!("{}/policy", s.base)).call().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let page = res.body_mut().read_to_string().unwrap();
    assert!(page.contains("ALPR usage and privacy policy") && page.contains("ALPR operator") && page.contains("Records"));
}

#[test]
fn untrained_and_locked_users_are_refused() {
    let s = start();
    let (st, v) = s.post("/api/login", None, json!({"username": "newbie", "password": PW}));
    assert_eq!(st, 401);
    assert!(v["error"].as_str().unwrap().contains("training"), "{v}");
    for _ in 0..5 {
        assert_eq!(s.post("/api/login", None, json!({"username": "lockme", "password": "wrong-password-1"})).0, 401);
    }
    let (st, v) = s.post("/api/login", None, json!({"username": "lockme", "password": PW}));
    assert_eq!(st, 401, "the 6th attempt within 15 minutes is refused even with the right password");
    assert!(v["error"].as_str().unwrap().to_lowercase().contains("lock"), "{v}");
}

#[test]
fn searches_need_purpose_and_case_and_each_access_is_audited_once() {
    let s = start();
    let t = s.login("olive");
    let before = s.head();
    let (st, _) = s.get("/api/search?plate=7ABC123&case_number=C-1", Some(&t));
    assert_eq!(st, 400, "no purpose");
    let (st, _) = s.get("/api/search?plate=7ABC123&purpose=stolen%20vehicle", Some(&t));
    assert_eq!(st, 400, "no case number");
    let (st, v) = s.get("/api/search?plate=7ABC*&purpose=stolen%20vehicle&case_number=C-1", Some(&t));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["total"], 2);
    let id = v["reads"][0]["id"].as_str().unwrap().to_string();
    let (st, r) = s.get(&format!("/api/reads/{id}?purpose=stolen%20vehicle&case_number=C-1"), Some(&t));
    assert_eq!(st, 200);
    assert_eq!(r["plate"], "7ABC123");
    let mut res = s.agent.get(&format!("{}/api/reads/{id}/crop?purpose=stolen%20vehicle&case_number=C-1", s.base)).header("authorization", &format!("Bearer {t}")).call().unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.body_mut().read_to_vec().unwrap().len(), 600);
    let (st, _) = s.post("/api/holds", Some(&t), json!({"read_id": id, "case_number": "C-1", "reason": "evidence"}));
    assert_eq!(st, 200);

    let e = s.audit_since(before);
    let actions: Vec<String> = e.iter().map(|x| format!("{:?}/{:?}", x.action, x.outcome)).collect();
    assert_eq!(
        actions,
        ["Search/Denied", "Search/Denied", "Search/Ok", "ViewRead/Ok", "ViewImage/Ok", "HoldPlaced/Ok"],
        "exactly one entry per action"
    );
    let search = &e[2];
    assert_eq!((search.user.as_str(), search.organisation.as_str()), ("olive", "Auburn PD"));
    assert_eq!((search.query.as_str(), search.purpose.as_str(), search.case_number.as_str(), search.result_count), ("7ABC*", "stolen vehicle", "C-1", Some(2)));
    assert!(search.source.starts_with("127.0.0.1:"));
    assert!(s.audit.verify(None).is_ok());
}

#[test]
fn roles_limit_what_each_user_may_do() {
    let s = start();
    let a = s.login("audrey");
    let before = s.head();
    assert_eq!(s.get("/api/search?plate=7ABC123&purpose=audit&case_number=A-1", Some(&a)).0, 403, "an auditor does not search reads");
    let (st, v) = s.get("/api/audit?limit=20", Some(&a));
    assert_eq!(st, 200);
    assert!(!v["entries"].as_array().unwrap().is_empty());
    let e = s.audit_since(before);
    assert_eq!(e.iter().map(|x| format!("{:?}/{:?}", x.action, x.outcome)).collect::<Vec<_>>(), ["Search/Denied", "AuditViewed/Ok"]);
    let o = s.login("olive");
    assert_eq!(s.get("/api/audit", Some(&o)).0, 403, "an operator does not read the audit log");
    assert_eq!(s.get("/api/users", Some(&o)).0, 403);
}

#[test]
fn export_needs_an_approved_request_from_another_person() {
    let s = start();
    let o = s.login("olive");
    let sup = s.login("sam");
    let req = json!({"agency": "Placer County Sheriff", "jurisdiction": "CA", "requester_name": "Det. R. Alvarez",
        "purpose": "robbery investigation", "case_number": "PCSO-26-1182",
        "scope": {"kind": "plates", "plates": ["7ABC123"], "from_ms": 0, "to_ms": now() + DAY}});
    let (st, v) = s.post("/api/releases", Some(&o), {
        let mut r = req.clone();
        r["jurisdiction"] = json!("NV");
        r
    });
    assert_eq!(st, 400, "{v}");
    let (st, v) = s.post("/api/releases", Some(&o), req);
    assert_eq!(st, 200, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(s.post(&format!("/api/releases/{id}/export"), Some(&sup), json!({})).0, 403, "not approved yet");
    assert_eq!(s.post(&format!("/api/releases/{id}/decision"), Some(&o), json!({"approved": true})).0, 403, "operators do not approve");
    let (st, _) = s.post(&format!("/api/releases/{id}/decision"), Some(&sup), json!({"approved": true, "note": "per 471.7"}));
    assert_eq!(st, 200);
    let (st, v) = s.post(&format!("/api/releases/{id}/export"), Some(&sup), json!({}));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["manifest"]["reads"], 2);
    let dir = std::path::PathBuf::from(v["dir"].as_str().unwrap());
    assert!(dir.starts_with(&s.export_dir));
    polewatch::access::export::verify_bundle(&dir, Some(&s.device_key_hex)).unwrap();
    let exports = s.audit.latest(100, None, Some("export")).unwrap();
    assert_eq!(exports.iter().filter(|e| e.outcome == polewatch::access::Outcome::Ok).count(), 1);
    let _ = &s.store;
}

#[test]
fn browser_logs_in_searches_opens_a_read_and_finds_the_audit_entry() {
    let s = start();
    let Some(b) = support::webdriver::Browser::start() else {
        eprintln!("SKIPPED: chromium/chromedriver not installed (scripts/install-deps installs them)");
        return;
    };
    b.goto(&s.base);
    b.type_into("#username", "olive");
    b.type_into("#password", PW);
    b.click("#login-button");
    b.wait_text("#who", "olive");
    b.type_into("#plate", "7ABC123");
    b.select("#purpose", "stolen vehicle");
    b.type_into("#case", "CASE-77");
    b.click("#search-button");
    b.wait_text("#search-count", "2 read(s)");
    b.click("#results tbody tr");
    b.wait_text("#read-detail", "7ABC123");
    let png = b.screenshot_png();
    assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-read.png");
    std::fs::write(&out, &png).unwrap();
    eprintln!("console screenshot: {}", out.display());
    let e = s.audit.latest(50, Some("olive"), None).unwrap();
    let search = e.iter().find(|x| x.case_number == "CASE-77" && x.query == "7ABC123").expect("the browser's search is in the audit log");
    assert_eq!(search.purpose, "stolen vehicle");
    assert!(e.iter().any(|x| x.case_number == "CASE-77" && format!("{:?}", x.action).contains("ViewRead")));
}

#[test]
fn the_daemon_serves_the_console_over_https_with_a_generated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let cfg = dir.path().join("polewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nsite_id = \"s1\"\ndevice_id = \"d1\"\n[store]\npath = \"{}\"\n[store.retention]\nrequire_clock_sync = false\n\
             [api]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n[access]\naudit_key_file = \"{}\"\ndevice_key_file = \"{}\"\n[logging]\ntarget = \"stderr\"\n",
            dir.path().join("state/store").display(),
            dir.path().join("keys/audit.key").display(),
            dir.path().join("keys/device.key").display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_polewatch")).args(["run", "--config"]).arg(&cfg).stderr(std::process::Stdio::null()).spawn().unwrap();
    let cert = dir.path().join("state/api-cert.pem");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let body = loop {
        assert!(std::time::Instant::now() < deadline, "console did not come up");
        if cert.exists() {
            let pem = std::fs::read(&cert).unwrap();
            let certs: Vec<ureq::tls::Certificate<'static>> =
                ureq::tls::parse_pem(&pem).filter_map(|i| match i.ok()? { ureq::tls::PemItem::Certificate(c) => Some(c), _ => None }).collect();
            let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs))).build();
            let agent: ureq::Agent = ureq::Agent::config_builder().tls_config(tls).http_status_as_error(false).build().into();
            if let Ok(mut r) = agent.get(&format!("https://127.0.0.1:{port}/")).call() {
                let login = agent.post(&format!("https://127.0.0.1:{port}/api/login")).send_json(json!({"username": "nobody", "password": "nothing-here"})).unwrap();
                assert_eq!(login.status().as_u16(), 401);
                break r.body_mut().read_to_string().unwrap();
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(body.contains("polewatch console"));
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    // The failed login is in the audit log, which verifies.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_polewatch")).args(["audit", "verify", "--config"]).arg(&cfg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = std::process::Command::new(env!("CARGO_BIN_EXE_polewatch")).args(["audit", "show", "--action", "login_failed", "--config"]).arg(&cfg).output().unwrap();
    assert!(String::from_utf8_lossy(&shown.stdout).contains("login_failed"), "{}", String::from_utf8_lossy(&shown.stdout));
}

/// Each remaining audited action through the API leaves exactly one entry, naming who, what and how it
/// ended.
#[test]
fn every_other_action_leaves_exactly_one_audit_entry() {
    let s = start();
    let o = s.login("olive");
    let sup = s.login("sam");
    // An alert to decide on.
    let read = s.store.search(&polewatch::store::PlatePattern::parse("8XY0001").unwrap(), 1).unwrap().remove(0);
    let hit = polewatch::uplink::payload::HitV1 {
        list: "l".into(),
        entry: "8XY0001".into(),
        category: "stolen".into(),
        priority: 1,
        source: "t".into(),
        match_kind: "exact".into(),
        score: 1.0,
        matched_text: "8XY0001".into(),
    };
    let alert = polewatch::alert::raise(&s.store, "s1", "pole-01", &read, hit, false, 1 << 20).unwrap();
    let (_, held) = s.post("/api/holds", Some(&o), json!({"read_id": read.id.to_string(), "case_number": "C-9", "reason": "evidence"}));
    let req = json!({"agency": "Placer County Sheriff", "jurisdiction": "CA", "requester_name": "Det. A", "purpose": "robbery",
        "case_number": "C-9", "scope": {"kind": "held_for_case", "case_number": "C-9"}});

    let id = std::cell::RefCell::new(String::new());
    type Step<'a> = (&'static str, Box<dyn Fn() -> u16 + 'a>);
    let mut steps: Vec<Step> = Vec::new();
    steps.push(("AlertVerified/Ok", Box::new(|| s.post(&format!("/api/alerts/{}/decision", alert.id), Some(&o), json!({"decision": "verified", "note": "state system"})).0)));
    steps.push(("ReleaseRequested/Ok", Box::new(|| {
        let (st, v) = s.post("/api/releases", Some(&o), req.clone());
        *id.borrow_mut() = v["id"].as_str().unwrap_or_default().to_string();
        st
    })));
    steps.push(("ReleaseDecided/Ok", Box::new(|| s.post(&format!("/api/releases/{}/decision", id.borrow()), Some(&sup), json!({"approved": true})).0)));
    steps.push(("Export/Ok", Box::new(|| s.post(&format!("/api/releases/{}/export", id.borrow()), Some(&sup), json!({})).0)));
    steps.push(("HoldReleased/Ok", Box::new(|| s.post("/api/holds/release", Some(&sup), json!({"read_id": read.id.to_string(), "hold_id": held["hold_id"], "reason": "case closed"})).0)));
    steps.push(("Logout/Ok", Box::new(|| s.post("/api/logout", Some(&o), json!({})).0)));
    for (expected, step) in steps {
        let before = s.head();
        let status = step();
        let e = s.audit_since(before);
        let got: Vec<String> = e.iter().map(|x| format!("{:?}/{:?}", x.action, x.outcome)).collect();
        assert_eq!(got, [expected], "status {status}");
        assert_eq!(status, 200, "{expected}");
        assert!(!e[0].user.is_empty() && e[0].source.starts_with("127.0.0.1:"));
    }
    assert_eq!(s.get("/api/me", Some(&o)).0, 401, "logged out");
    assert!(s.audit.verify(None).is_ok());
}

#[test]
fn an_admin_manages_users_while_the_daemon_runs() {
    let s = start();
    let adm = s.login("adam");
    let o = s.login("olive");
    let new = json!({"username": "dana", "display_name": "Dana", "job_title": "Officer", "roles": ["operator"], "password": "kettle-marsh-ember"});
    assert_eq!(s.post("/api/users", Some(&o), new.clone()).0, 403, "only admins manage users");
    let weak = json!({"username": "weak", "display_name": "W", "job_title": "Officer", "roles": ["operator"], "password": "password1"});
    let (st, v) = s.post("/api/users", Some(&adm), weak);
    assert_eq!(st, 400, "{v}");
    assert!(!v["error"].as_str().unwrap().contains("password1"));
    assert_eq!(s.post("/api/users", Some(&adm), new).0, 200);
    let (st, v) = s.post("/api/login", None, json!({"username": "dana", "password": "kettle-marsh-ember"}));
    assert_eq!(st, 401, "no training yet: {v}");
    let t = now();
    let training = json!({"course": "ALPR operator", "completed": jiff::Timestamp::from_millisecond(t - DAY).unwrap().to_string(),
                          "expires": jiff::Timestamp::from_millisecond(t + 30 * DAY).unwrap().to_string()});
    assert_eq!(s.post("/api/users/dana/training", Some(&adm), training).0, 200);
    assert_eq!(s.post("/api/login", None, json!({"username": "dana", "password": "kettle-marsh-ember"})).0, 200);
    assert_eq!(s.post("/api/users/dana/lock", Some(&adm), json!({"reason": "left the unit"})).0, 200);
    assert_eq!(s.post("/api/login", None, json!({"username": "dana", "password": "kettle-marsh-ember"})).0, 401);
    assert_eq!(s.post("/api/users/dana/unlock", Some(&adm), json!({})).0, 200);
    assert_eq!(s.post("/api/login", None, json!({"username": "dana", "password": "kettle-marsh-ember"})).0, 200);
    let changes = s.audit.latest(100, Some("adam"), None).unwrap();
    let kinds: Vec<String> = changes.iter().rev().map(|e| format!("{:?}/{:?}", e.action, e.outcome)).collect();
    assert!(kinds.contains(&"UserAdded/Ok".to_string()) && kinds.contains(&"TrainingRecorded/Ok".to_string()), "{kinds:?}");
    assert!(kinds.contains(&"UserLocked/Ok".to_string()) && kinds.contains(&"UserUnlocked/Ok".to_string()), "{kinds:?}");
}
