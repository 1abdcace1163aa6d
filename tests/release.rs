//! Release requests and signed export bundles against a real store: only an approved request lets data
//! out, the bundle holds exactly the scope, and any change to it is detected.

use polewatch::access::export::{DeviceKey, Exporter, export, verify_bundle};
use polewatch::access::release::{Limits, NewRequest, Request, Scope, check_new, decide};
use polewatch::access::{Action, AuditError, AuditSink, NewAuditEntry, Outcome};
use polewatch::store::{HoldRequest, Plate, Store, StoreOptions};
use polewatch_dev::bench::synthetic_read;
use std::process::Command;
use std::sync::Mutex;

#[derive(Default)]
struct Memory(Mutex<Vec<NewAuditEntry>>);

impl AuditSink for Memory {
    fn record(&self, e: NewAuditEntry) -> Result<u64, AuditError> {
        let mut v = self.0.lock().unwrap();
        v.push(e);
        Ok(v.len() as u64)
    }
}

struct Broken;

impl AuditSink for Broken {
    fn record(&self, _: NewAuditEntry) -> Result<u64, AuditError> {
        Err(AuditError::Write("disk full".into()))
    }
}

const T0: i64 = 1_790_000_000_000;

fn request(scope: Scope) -> Request {
    let new = NewRequest {
        agency: "Placer County Sheriff".into(),
        jurisdiction: "CA".into(),
        requester_name: "Det. R. Alvarez".into(),
        purpose: "robbery investigation".into(),
        case_number: "PCSO-26-1182".into(),
        scope,
    };
    check_new(&new, &Limits { allowed_jurisdictions: vec!["CA".into()], max_range_days: 90 }).unwrap();
    Request {
        id: uuid::Uuid::now_v7(),
        request: new,
        entered_by: "clerk".into(),
        entered_at_ms: T0,
        decision: None,
        exports: vec![],
    }
}

fn who() -> Exporter<'static> {
    Exporter { user: "cmdr", organisation: "Auburn PD", source: "cli" }
}

#[test]
fn export_needs_an_approved_request_and_produces_a_verifiable_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&StoreOptions::at(dir.path().join("store"))).unwrap();
    for (i, p) in ["7ABC123", "7ABC123", "8XY0001", "ZZZ999"].iter().enumerate() {
        let mut r = synthetic_read(i as u64, T0 + i as i64 * 1000, 500);
        r.plate = Plate::new(p).unwrap();
        store.put_read(r).unwrap();
    }
    let key = DeviceKey::load_or_create(&dir.path().join("keys/device.key")).unwrap();
    let audit = Memory::default();
    let out = dir.path().join("out");
    let mut req = request(Scope::Plates {
        plates: vec!["7ABC123".into(), "8XY*".into()],
        from_ms: T0,
        to_ms: T0 + 2500,
        whole_store: false,
    });
    store.put_release(&req).unwrap();

    let err = export(&store, &req, &key, &out, &who(), &audit, T0).unwrap_err();
    assert!(err.to_string().contains("no approved request"), "{err}");
    assert!(!out.exists(), "nothing is written without approval");
    assert_eq!(audit.0.lock().unwrap().last().unwrap().outcome, Some(Outcome::Denied));

    decide(&mut req, "cmdr", true, "approved per 471.7", T0 + 10).unwrap();
    store.put_release(&req).unwrap();
    assert!(export(&store, &req, &key, &out, &who(), &Broken, T0).is_err(), "no audit, no export");
    assert!(!out.exists());

    let b = export(&store, &req, &key, &out, &who(), &audit, T0 + 20).unwrap();
    assert_eq!(b.manifest.reads, 3, "two 7ABC123 and the 8XY0001 read inside the time range");
    assert_eq!(b.manifest.request_id, req.id.to_string());
    let e = audit.0.lock().unwrap().last().unwrap().clone();
    assert_eq!(
        (e.action, e.outcome, e.result_count, e.case_number.as_str()),
        (Some(Action::Export), Some(Outcome::Ok), Some(3), "PCSO-26-1182")
    );
    let m = verify_bundle(&b.dir, Some(&key.public_hex())).unwrap();
    assert_eq!(m.files.iter().filter(|f| f.path.starts_with("images/")).count(), 3);
    assert!(m.files.iter().any(|f| f.path == "request.json"));

    // Checked without polewatch (coreutils) and with the CLI, which takes the key from the caller only.
    let sha256sum = |dir: &std::path::Path| {
        Command::new("sha256sum").args(["-c", "--strict", "SHA256SUMS"]).current_dir(dir).output().unwrap()
    };
    let out = sha256sum(&b.dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.ends_with(": OK")).count(), m.files.len() + 2);
    let cli = |key: &str| {
        Command::new(env!("CARGO_BIN_EXE_polewatch"))
            .args(["export", "verify"])
            .arg(&b.dir)
            .args(["--key", key])
            .output()
            .unwrap()
    };
    let ok = cli(&key.public_hex());
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("bundle OK"));
    let key_file = dir.path().join("device.pub");
    std::fs::write(&key_file, format!("{}\n", key.public_hex())).unwrap();
    assert!(cli(key_file.to_str().unwrap()).status.success(), "the key from a file");
    let wrong = DeviceKey::load_or_create(&dir.path().join("keys/wrong.key")).unwrap();
    let bad = cli(&wrong.public_hex());
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("signature does not match"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(!cli(&format!("+a{}", &key.public_hex()[2..])).status.success(), "a sign is not a hex digit");
    let no_key = Command::new(env!("CARGO_BIN_EXE_polewatch")).args(["export", "verify"]).arg(&b.dir).output().unwrap();
    assert!(!no_key.status.success(), "verifying needs a key from outside the bundle");

    // Any change is caught: an altered file, an extra file, another key.
    let reads = b.dir.join("reads.json");
    let original = std::fs::read(&reads).unwrap();
    std::fs::write(&reads, String::from_utf8_lossy(&original).replace("7ABC123", "7ABC128")).unwrap();
    assert!(verify_bundle(&b.dir, None).unwrap_err().to_string().contains("reads.json was altered"));
    assert!(!sha256sum(&b.dir).status.success(), "coreutils sees it too");
    std::fs::write(&reads, &original).unwrap();
    std::fs::write(b.dir.join("images/extra.jpg"), b"x").unwrap();
    assert!(verify_bundle(&b.dir, None).unwrap_err().to_string().contains("not in the manifest"));
    std::fs::remove_file(b.dir.join("images/extra.jpg")).unwrap();
    let other = DeviceKey::load_or_create(&dir.path().join("keys/other.key")).unwrap();
    assert!(verify_bundle(&b.dir, Some(&other.public_hex())).is_err());
    verify_bundle(&b.dir, None).unwrap();
}

#[test]
fn evidence_export_takes_the_reads_held_for_the_case() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&StoreOptions::at(dir.path().join("store"))).unwrap();
    let a = store.put_read(synthetic_read(1, T0, 100)).unwrap();
    let b = store.put_read(synthetic_read(2, T0 + 1, 100)).unwrap();
    store.put_read(synthetic_read(3, T0 + 2, 100)).unwrap();
    let hold = |case: &str| HoldRequest {
        placed_by: "det".into(),
        case_number: case.into(),
        reason: "evidence".into(),
        expires_at_ms: None,
    };
    store.place_hold(a, hold("C-1"), T0).unwrap();
    store.place_hold(b, hold("C-2"), T0).unwrap();
    let mut req = request(Scope::HeldForCase { case_number: "C-1".into() });
    decide(&mut req, "cmdr", true, "", T0).unwrap();
    let key = DeviceKey::load_or_create(&dir.path().join("device.key")).unwrap();
    let bundle = export(&store, &req, &key, dir.path(), &who(), &Memory::default(), T0 + 5).unwrap();
    assert_eq!(bundle.manifest.reads, 1);
    let reads: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.dir.join("reads.json")).unwrap()).unwrap();
    assert_eq!(reads[0]["id"], a.to_string());
}

#[test]
fn device_key_is_created_private_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("k/device.key");
    let k1 = DeviceKey::load_or_create(&p).unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
    let k2 = DeviceKey::load_or_create(&p).unwrap();
    assert_eq!(k1.public_hex(), k2.public_hex());
    std::fs::write(&p, b"short").unwrap();
    assert!(DeviceKey::load_or_create(&p).is_err());
}
