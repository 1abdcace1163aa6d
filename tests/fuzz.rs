//! Property-based fuzzing of the inputs that come from outside the box: inbound MQTT commands (the
//! checks every command passes before it is applied), the TOML configuration loader, hotlist CSV, stored
//! audit records, search patterns, and the API's JSON bodies through the real router. Short by
//! default (part of `make test`); at scale: `PROPTEST_CASES=200000 cargo test --release --test fuzz`.
//! The properties: nothing panics, nothing malformed, retained, oversized or unsigned is accepted, an
//! accepted signed command is exactly what was signed, and every config problem names its file.

use base64::Engine;
use ed25519_dalek::Signer;
use polewatch::uplink::check_command;
use polewatch::uplink::payload::{CommandV1, command_signing_bytes};
use proptest::prelude::*;
use std::path::Path;

mod support;

const TOPIC: &str = "polewatch/site1/pole-01/cmd/hold";
const MAX: usize = 4096;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn server() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32])
}

fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ]
}

/// What a signed command's body may hold: no fractional numbers.
fn integral_leaf() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    tree(json_leaf().boxed())
}

fn tree(leaf: BoxedStrategy<serde_json::Value>) -> impl Strategy<Value = serde_json::Value> {
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Command-shaped objects: the right fields most of the time, wrong types, extra fields and odd values
/// some of the time.
fn command_like() -> impl Strategy<Value = serde_json::Value> {
    (
        prop_oneof![4 => Just(serde_json::json!(1)), 1 => json_leaf()],
        prop_oneof![4 => "[a-z0-9-]{1,20}".prop_map(serde_json::Value::from), 1 => ".{0,200}".prop_map(serde_json::Value::from), 1 => json_leaf()],
        prop_oneof![4 => "[a-z ]{0,12}".prop_map(serde_json::Value::from), 1 => json_leaf()],
        json_value(),
        prop::option::of(prop_oneof![".{0,100}".prop_map(serde_json::Value::from), json_leaf()]),
        prop::option::of((".{1,8}", json_leaf())),
    )
        .prop_map(|(v, id, by, body, sig, extra)| {
            let mut m = serde_json::Map::new();
            m.insert("v".into(), v);
            m.insert("id".into(), id);
            m.insert("by".into(), by);
            m.insert("body".into(), body);
            if let Some(s) = sig {
                m.insert("sig".into(), s);
            }
            if let Some((k, e)) = extra {
                m.insert(k, e);
            }
            serde_json::Value::Object(m)
        })
}

fn accepted_is_well_formed(c: &CommandV1, payload: &[u8], retain: bool) -> Result<(), TestCaseError> {
    prop_assert!(payload.len() <= MAX);
    prop_assert!(!retain);
    prop_assert_eq!(c.v, 1);
    prop_assert!(!c.id.is_empty() && c.id.len() <= 128);
    prop_assert!(!c.by.trim().is_empty() && c.by.len() <= 128);
    Ok(())
}

fn sign(mut c: CommandV1) -> CommandV1 {
    c.sig = None;
    let s = server().sign(&command_signing_bytes(TOPIC, &c));
    c.sig = Some(base64::engine::general_purpose::STANDARD.encode(s.to_bytes()));
    c
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_checked_without_panic(payload in prop::collection::vec(any::<u8>(), 0..MAX + 64), retain in any::<bool>()) {
        if let Ok(c) = check_command(TOPIC, &payload, retain, MAX, None) {
            accepted_is_well_formed(&c, &payload, retain)?;
        }
        // With a key configured, random bytes never pass.
        prop_assert!(check_command(TOPIC, &payload, retain, MAX, Some(&server().verifying_key())).is_err());
    }

    #[test]
    fn command_shaped_input_is_accepted_only_when_well_formed(v in command_like(), retain in any::<bool>(), pad in 0usize..64) {
        let mut payload = serde_json::to_vec(&v).unwrap();
        payload.extend(std::iter::repeat_n(b' ', pad));
        match check_command(TOPIC, &payload, retain, MAX, None) {
            Ok(c) => accepted_is_well_formed(&c, &payload, retain)?,
            Err(r) => prop_assert!(!r.why.is_empty() && r.why.len() < 400, "{}", r.why),
        }
        let key = server().verifying_key();
        if let Ok(c) = check_command(TOPIC, &payload, retain, MAX, Some(&key)) {
            // Only a real signature by the server passes: the fuzzer cannot forge one.
            prop_assert!(key.verify_strict(&command_signing_bytes(TOPIC, &c), &ed25519_dalek::Signature::from_slice(
                &base64::engine::general_purpose::STANDARD.decode(c.sig.as_deref().unwrap_or_default()).unwrap()).unwrap()).is_ok());
        }
    }

    #[test]
    fn a_signed_command_changed_anywhere_is_refused_or_means_the_same(
        id in "[a-z0-9-]{1,20}", by in "[a-z]{1,12}", body in tree(integral_leaf().boxed()), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let signed = sign(CommandV1 { v: 1, id, by, body: serde_json::json!({ "x": body }), sig: None });
        let original = command_signing_bytes(TOPIC, &signed);
        let mut payload = serde_json::to_vec(&signed).unwrap();
        let key = server().verifying_key();
        prop_assert!(check_command(TOPIC, &payload, false, 1 << 20, Some(&key)).is_ok(), "the signed command itself passes");
        for (at, byte) in flips {
            let i = at.index(payload.len());
            payload[i] = byte;
        }
        if let Ok(c) = check_command(TOPIC, &payload, false, 1 << 20, Some(&key)) {
            prop_assert_eq!(command_signing_bytes(TOPIC, &c), original, "an accepted command is what was signed");
        }
        // A fractional number in a signed body is refused, never misread.
        let fractional = sign(CommandV1 { v: 1, id: "f".into(), by: "b".into(), body: serde_json::json!({ "x": 0.1 }), sig: None });
        prop_assert!(check_command(TOPIC, &serde_json::to_vec(&fractional).unwrap(), false, 1 << 20, Some(&key)).is_err());
        // Signed for this topic, it is refused on another.
        prop_assert!(check_command("polewatch/site1/pole-02/cmd/hold", &serde_json::to_vec(&signed).unwrap(), false, 1 << 20, Some(&key)).is_err());
    }

    #[test]
    fn any_config_text_loads_or_names_its_file(text in "(?s).{0,600}") {
        let p = Path::new("/etc/polewatch/polewatch.toml");
        if let Err(e) = polewatch::config::load_texts(&[(p, text.as_str())]) {
            for problem in e.problems() {
                prop_assert_eq!(problem.file.as_path(), p);
            }
        }
    }

    #[test]
    fn config_shaped_text_loads_or_names_file_line_and_key(
        lines in prop::collection::vec((
            prop::sample::select(vec!["site", "cameras", "store", "store.retention", "mqtt", "api", "access", "hotlists", "tracker", "logging", "service", "recognizer"]),
            prop::sample::select(vec!["site_id", "device_id", "id", "name", "url", "path", "min_days", "max_days", "host", "port", "enabled", "max_purge_percent", "max_command_kib", "command_public_key", "latency_ms", "organisation", "level", "nosuch"]),
            prop_oneof![
                "[a-z0-9]{0,10}".prop_map(|s| format!("\"{s}\"")),
                (0usize..6000).prop_map(|n| format!("\"{}\"", "n".repeat(n))),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<bool>().prop_map(|b| b.to_string()),
                Just("[1, 2]".to_string()),
                Just("\"rtsp://192.0.2.1/s\"".to_string()),
            ],
            any::<bool>(),
        ), 0..12),
    ) {
        let mut text = String::from("[site]\nsite_id = \"s1\"\ndevice_id = \"d1\"\n");
        for (table, key, value, array) in &lines {
            if *array && *table == "cameras" {
                text.push_str(&format!("[[cameras]]\nid = \"c\"\nurl = \"rtsp://192.0.2.1/s\"\n{key} = {value}\n"));
            } else {
                text.push_str(&format!("[{table}]\n{key} = {value}\n"));
            }
        }
        let p = Path::new("/etc/polewatch/polewatch.toml");
        if let Err(e) = polewatch::config::load_texts(&[(p, text.as_str())]) {
            for problem in e.problems() {
                prop_assert_eq!(problem.file.as_path(), p);
                prop_assert!(problem.to_string().len() < 2000, "an error never carries a long value back: {}", problem);
            }
        }
    }

    // Issue 15, the other inputs from outside the box (the same properties are cargo fuzz targets in
    // fuzz/, which need a nightly build of the whole tree).

    #[test]
    fn any_hotlist_text_parses_or_names_its_lines(text in "(?s).{0,800}") {
        if let Err(polewatch::hotlist::HotlistError::Invalid { problems, .. }) = polewatch::hotlist::parse_csv("fuzz", &text, 1_700_000_000_000) {
            prop_assert!(!problems.is_empty());
            for p in &problems {
                prop_assert!(p.message.len() < 2000, "a problem quotes a long value back: {}", p.message);
            }
        }
    }

    #[test]
    fn hotlist_shaped_csv_parses_or_names_its_lines(
        rows in prop::collection::vec((
            "[A-Z0-9*?]{0,12}|.{0,12}", "[a-z-]{0,6}", "[a-z ]{0,12}", "[0-9]{0,2}|x", "[a-z]{0,6}", "(2027-01-01)?|.{0,10}", ".{0,20}",
        ), 0..20),
        bom in any::<bool>(),
    ) {
        let mut text = String::from(if bom { "\u{feff}plate,region,category,priority,source,expiry,notes\n" } else { "plate,region,category,priority,source,expiry,notes\n" });
        for (plate, region, cat, prio, src, exp, notes) in &rows {
            text.push_str(&format!("{plate},{region},{cat},{prio},{src},{exp},{notes}\n"));
        }
        match polewatch::hotlist::parse_csv("fuzz", &text, 1_700_000_000_000) {
            Ok(list) => prop_assert!(list.entries.len() <= rows.len()),
            Err(polewatch::hotlist::HotlistError::Invalid { problems, .. }) => {
                prop_assert!(problems.iter().all(|p| p.line <= rows.len() as u64 + 2), "{problems:?}");
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }

    #[test]
    fn audit_verify_takes_any_stored_bytes_without_panic(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 0..8),
        checkpoint in "(?s).{0,200}",
    ) {
        use polewatch::access::audit::{decode_record, AuditKey, Checkpoint, Verifier};
        let key = AuditKey::from_bytes(&[9; 32]).unwrap();
        let mut v = Verifier::new(&key, Checkpoint::parse(&checkpoint).ok());
        if let Some(bytes) = records.first() {
            // Random bytes are never a valid first entry under this key.
            let first = polewatch::store::AuditRecord { key_seq: Some(1), bytes: bytes.clone() };
            prop_assert!(v.push(decode_record(&first)).is_err(), "random bytes passed as entry 1");
        }
        // Any record, any key: decoded or refused, never a panic.
        for (i, bytes) in records.iter().enumerate() {
            let _ = decode_record(&polewatch::store::AuditRecord { key_seq: (i % 2 == 0).then_some(i as u64), bytes: bytes.clone() });
        }
    }

    #[test]
    fn api_search_patterns_and_globs_parse_without_panic(text in "(?s).{0,40}", plate in "[A-Z0-9]{0,16}") {
        if let Ok(p) = polewatch::store::PlatePattern::parse(&text) {
            let _ = p.matches(plate.as_bytes());
        }
        let _ = polewatch::hotlist::PlateGlob::parse(&text);
        let body = serde_json::json!({ "plate": text, "purpose": "x", "case_number": "y" });
        prop_assert!(serde_json::to_vec(&body).is_ok());
    }
}

/// The API in process: a store with reads, a hold and a hotlist, users of every role logged in, and the
/// real router (every extractor, permission check, audit write and store call), driven without TLS.
mod api_rig {
    use polewatch::access::AuditSink;
    use polewatch::access::audit::AuditLog;
    use polewatch::access::export::DeviceKey;
    use polewatch::access::roles::Role;
    use polewatch::access::service::{Actor, UserService};
    use polewatch::access::users::AccessPolicy;
    use polewatch::api::ApiState;
    use polewatch::store::{Plate, Store, StoreOptions};
    use std::sync::{Arc, OnceLock};

    pub const PW: &str = "tulip-harbor-quartz";

    pub struct Rig {
        pub router: axum::Router,
        /// (role, session token) of each signed-in user.
        pub tokens: Vec<(&'static str, String)>,
        pub read_ids: Vec<String>,
        pub hold_id: String,
        pub rt: tokio::runtime::Runtime,
        _dir: tempfile::TempDir,
    }

    pub fn rig() -> &'static Rig {
        static RIG: OnceLock<Rig> = OnceLock::new();
        RIG.get_or_init(build)
    }

    fn build() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cfg = super::support::site_config(d);
        let store = Arc::new(Store::open(&StoreOptions::at(d.join("store"))).unwrap().0);
        let audit = Arc::new(AuditLog::open(store.clone(), &cfg.access.audit_key_file).unwrap());
        let policy = AccessPolicy::from_config(&cfg.access, &cfg.api);
        let users = Arc::new(UserService::new(store.clone(), policy, audit.clone() as Arc<dyn AuditSink>));
        let admin = Actor { user: "root-setup".into(), organisation: "Auburn PD".into(), source: "test".into() };
        let t = jiff::Timestamp::now().as_millisecond();
        let people = [
            ("operator", "olive", Role::Operator),
            ("supervisor", "sam", Role::Supervisor),
            ("auditor", "audrey", Role::Auditor),
            ("admin", "ada", Role::Admin),
            ("installer", "ian", Role::Installer),
        ];
        let mut tokens = Vec::new();
        for (tag, name, role) in people.into_iter().chain([("", "victor", Role::Operator)]) {
            super::support::add_officer(&users, &admin, name, role, PW, true, t);
            if !tag.is_empty() {
                tokens.push((tag, users.login(name, PW, "127.0.0.1:1", t).unwrap().1.token));
            }
        }
        let mut read_ids = Vec::new();
        for (i, p) in ["7ABC123", "7ABC123", "8XY0001"].iter().enumerate() {
            let mut r = polewatch_dev::bench::synthetic_read(i as u64, t - (i as i64 + 1) * 60_000, 600);
            r.plate = Plate::new(p).unwrap();
            read_ids.push(store.put_read(r).unwrap());
        }
        let hold = store
            .place_hold(
                read_ids[0],
                polewatch::store::HoldRequest {
                    placed_by: "sam".into(),
                    case_number: "C-1".into(),
                    reason: "fuzz".into(),
                    expires_at_ms: None,
                },
                t,
            )
            .unwrap();
        let list = d.join("state-stolen.csv");
        std::fs::write(
            &list,
            "plate,region,category,priority,source,expiry,notes\n8XY0001,,stolen,1,DOJ,,\n7AB*,,wanted,2,DOJ,,\n",
        )
        .unwrap();
        let target = polewatch::pipeline::hotlists::AlertTarget {
            site: "s1".into(),
            device: "pole-01".into(),
            max_packet_bytes: 1 << 20,
        };
        let hotlists =
            Arc::new(polewatch::pipeline::hotlists::Hotlists::load(store.clone(), &[list], 30, target).unwrap());
        let device_key = DeviceKey::load_or_create(&cfg.access.device_key_file).unwrap();
        let limits = polewatch::access::release::Limits {
            allowed_jurisdictions: cfg.access.allowed_jurisdictions.clone(),
            max_range_days: i64::from(cfg.access.max_release_days),
        };
        let evidence = Arc::new(polewatch::evidence::Evidence::new(store.clone(), audit.clone(), limits));
        let state = Arc::new(ApiState {
            store,
            users,
            audit: audit.clone(),
            audit_log: audit,
            evidence,
            config: cfg,
            device_key,
            export_dir: d.join("exports"),
            hotlists: Some(hotlists),
            cameras: None,
            snapshots: Some(Arc::new(polewatch::pipeline::snapshot::Snapshots::default())),
        });
        // The handlers move their fsyncs off the async workers (block_in_place): a multi-thread runtime.
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        Rig {
            router: polewatch::api::router(state),
            tokens,
            read_ids: read_ids.iter().map(|r| r.to_string()).collect(),
            hold_id: hold.id.to_string(),
            rt,
            _dir: dir,
        }
    }

    impl Rig {
        /// POSTs `body` to `path` as the user of `token` (None: no session) and returns the status.
        pub fn post(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> u16 {
            use tower::ServiceExt;
            let mut req = axum::http::Request::post(path).header("content-type", "application/json");
            if let Some(t) = token {
                req = req.header("authorization", format!("Bearer {t}"));
            }
            let mut req = req.body(axum::body::Body::from(body)).unwrap();
            let addr: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
            req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
            let resp = self.rt.block_on(self.router.clone().oneshot(req)).unwrap();
            resp.status().as_u16()
        }
    }
}

/// Each POST route with the fields of its body. Logout and the caller's own password change are left
/// out: they end the session the rest of the run signs in with.
const API_ROUTES: &[(&str, &[&str])] = &[
    ("/api/login", &["username", "password"]),
    ("/api/search", &["plate", "purpose", "case_number", "from", "to", "camera", "page"]),
    ("/api/reads/{id}", &["purpose", "case_number"]),
    ("/api/reads/{id}/crop", &["purpose", "case_number"]),
    ("/api/holds", &["read_id", "case_number", "reason", "expires_at"]),
    ("/api/holds/release", &["read_id", "hold_id", "reason"]),
    ("/api/alerts/{id}/decision", &["decision", "note"]),
    ("/api/cameras/{id}/roi", &["points", "width", "height"]),
    ("/api/hotlists/search", &["query"]),
    ("/api/hotlists/local", &["plate", "region", "category", "priority", "expiry", "notes", "reason"]),
    ("/api/hotlists/local/remove", &["plate", "reason"]),
    ("/api/releases", &["agency", "jurisdiction", "requester_name", "purpose", "case_number", "scope"]),
    ("/api/releases/{id}/decision", &["approved", "note", "confirm_whole_store"]),
    ("/api/releases/{id}/export", &[]),
    ("/api/audit/verify", &["checkpoint"]),
    ("/api/users", &["username", "display_name", "organisation", "job_title", "roles", "password"]),
    ("/api/users/{name}/training", &["course", "completed", "expires"]),
    ("/api/users/{name}/lock", &["reason"]),
    ("/api/users/{name}/unlock", &[]),
    ("/api/users/{name}/password", &["password"]),
    ("/api/users/{name}/approve", &[]),
];

/// Values that mean something to the rig: its read ids, its hold, a case, a plate, roles, times, a scope.
fn api_known_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    let rig = api_rig::rig();
    let mut known: Vec<serde_json::Value> = rig.read_ids.iter().map(|r| r.clone().into()).collect();
    known.push(rig.hold_id.clone().into());
    for v in ["C-1", "7ABC123", "7AB*", "*", "investigation", "approve", "reject", "verified", "2026-01-01T00:00:00Z"] {
        known.push(v.into());
    }
    known.extend([
        json!(["operator"]),
        json!(["admin", "auditor"]),
        json!(true),
        json!(1),
        json!([[0.0, 0.0], [100.0, 0.0], [100.0, 80.0]]),
        json!({"kind": "plates", "plates": ["7ABC123"], "from_ms": 0, "to_ms": 86_400_000}),
        json!({"kind": "held_for_case", "case_number": "C-1"}),
    ]);
    prop::sample::select(known)
}

/// A route and its body: most bodies have the route's own fields (some dropped, one extra now and
/// then) with meaningful or arbitrary values; the rest are any JSON or any bytes.
fn api_request() -> impl Strategy<Value = (String, Vec<u8>)> {
    let value =
        prop_oneof![3 => ".{0,30}".prop_map(serde_json::Value::from), 3 => api_known_value(), 1 => json_value()];
    let fields = prop::collection::vec((value, prop::bool::weighted(0.9)), 8);
    let id = prop_oneof![
        (0usize..3).prop_map(|i| api_rig::rig().read_ids[i].clone()),
        Just(uuid::Uuid::now_v7().to_string()),
        ".{0,40}".prop_map(|s| pct(&s)),
    ];
    // Accounts changed by name are never the signed-in ones: a lock or a reset would end their sessions.
    let name = prop::sample::select(&["victor", "nobody", "x"][..]).prop_map(str::to_string);
    let body_kind = prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)];
    (
        prop::sample::select(API_ROUTES),
        id,
        name,
        fields,
        body_kind,
        json_value(),
        prop::collection::vec(any::<u8>(), 0..200),
        prop::option::weighted(0.1, ".{0,12}"),
    )
        .prop_map(|((path, names), id, name, fields, kind, any_json, bytes, extra)| {
            let path = path.replace("{id}", &id).replace("{name}", &name);
            let body = match kind {
                0 => {
                    let mut m: serde_json::Map<String, serde_json::Value> = names
                        .iter()
                        .zip(fields)
                        .filter(|(_, (_, keep))| *keep)
                        .map(|(n, (v, _))| (n.to_string(), v))
                        .collect();
                    if let Some(x) = extra {
                        m.insert(x, serde_json::Value::Null);
                    }
                    serde_json::to_vec(&m).unwrap()
                }
                1 => serde_json::to_vec(&any_json).unwrap(),
                _ => bytes,
            };
            (path, body)
        })
}

/// `s` percent-encoded as one path segment.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    /// Any body to any POST route, as any role or none: answered (2xx or 4xx; 503 only when the audit log
    /// refuses, which it must not here), never a panic, never a server error.
    #[test]
    fn api_json_bodies_are_answered_without_panic_or_server_error(
        (path, body) in api_request(),
        who in 0usize..6,
    ) {
        let rig = api_rig::rig();
        let token = rig.tokens.get(who).map(|(_, t)| t.as_str());
        let status = rig.post(&path, token, body.clone());
        prop_assert!(
            status < 500,
            "{path} as {:?} answered {status} to {}",
            rig.tokens.get(who).map(|(r, _)| *r),
            String::from_utf8_lossy(&body)
        );
    }
}
