//! The audit log on a real store: a clean log verifies; edits, deletions, reorders, truncation and a
//! chain rebuilt with another key, made directly in the store's redb file as an intruder would, are reported at the right
//! sequence number; writes on a damaged log fail; purges are audited and never touch the log; and
//! `polewatch audit` exits as scripts expect.

mod support;

use polewatch::access::audit::{
    AuditEntry, AuditKey, AuditLog, Broken, BrokenReason, ChainHead, Checkpoint, GENESIS, KeyError, VerifyError,
    VerifyReport, decode_record, encode, seal,
};
use polewatch::access::{Action, AuditError, AuditSink, NewAuditEntry, Outcome};
use polewatch::clock::FixedClock;
use polewatch::retention::{DAY_MS, Policy};
use polewatch::store::sweeper::{SweepOutcome, SweepSettings, sweep};
use polewatch::store::{AuditRecord, HoldRequest, OnCorrupt, Store, StoreError, StoreOptions};
use polewatch_dev::bench::synthetic_read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use support::snapshot;
use tokio_util::sync::CancellationToken;

const KEY: [u8; 32] = [0x42; 32];

fn key() -> AuditKey {
    AuditKey::from_bytes(&KEY).unwrap()
}

fn store_path(dir: &Path) -> PathBuf {
    dir.join("store")
}

fn new_entry(i: u64) -> NewAuditEntry {
    NewAuditEntry {
        user: format!("officer{}", i % 4),
        organisation: "Auburn PD".into(),
        source: format!("10.0.0.{}:5{i:04}", i % 200),
        action: Some(if i.is_multiple_of(3) { Action::ViewRead } else { Action::Search }),
        object: "reads".into(),
        query: format!("7AB{i:03}"),
        purpose: "stolen vehicle".into(),
        case_number: format!("C-{i}"),
        result_count: Some(i % 5),
        outcome: Some(Outcome::Ok),
        detail: String::new(),
    }
}

/// Runs `f` on an audit log over the store in `dir`, then closes the store cleanly.
fn with_log<T>(dir: &Path, k: AuditKey, f: impl FnOnce(&AuditLog) -> T) -> T {
    let (store, _) = Store::open(&StoreOptions::at(store_path(dir))).unwrap();
    let store = Arc::new(store);
    let log = AuditLog::new(store.clone(), k);
    let out = f(&log);
    drop(log);
    Arc::try_unwrap(store).ok().expect("no other store handle").close().unwrap();
    out
}

/// A log of `n` entries written through the real sink; returns its head as a checkpoint.
fn write_log(dir: &Path, n: u64) -> Checkpoint {
    with_log(dir, key(), |log| {
        for i in 1..=n {
            assert_eq!(log.record(new_entry(i)).unwrap(), i);
        }
        log.verify(None).unwrap().head.unwrap()
    })
}

fn verify(dir: &Path, cp: Option<Checkpoint>) -> Result<VerifyReport, VerifyError> {
    with_log(dir, key(), |log| log.verify(cp))
}

fn broken(dir: &Path, cp: Option<Checkpoint>) -> Broken {
    match verify(dir, cp) {
        Err(VerifyError::Broken(b)) => b,
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

/// One tree of the store's redb file, opened raw inside a tamperer's write transaction.
struct RawTree<'a> {
    tx: &'a redb::WriteTransaction,
    def: redb::TableDefinition<'static, &'static [u8], &'static [u8]>,
}

impl RawTree<'_> {
    fn get(&self, k: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>, redb::Error> {
        use redb::ReadableTable;
        Ok(self.tx.open_table(self.def)?.get(k.as_ref())?.map(|v| v.value().to_vec()))
    }

    fn insert(&self, k: impl AsRef<[u8]>, v: impl AsRef<[u8]>) -> Result<(), redb::Error> {
        self.tx.open_table(self.def)?.insert(k.as_ref(), v.as_ref())?;
        Ok(())
    }

    fn remove(&self, k: impl AsRef<[u8]>) -> Result<(), redb::Error> {
        self.tx.open_table(self.def)?.remove(k.as_ref())?;
        Ok(())
    }
}

/// Changes the store's trees directly, as someone with the store's files (but not the key) could.
fn tamper(dir: &Path, f: impl FnOnce(&RawTree, &RawTree)) {
    let db =
        redb::Database::create(store_path(dir).join("store.redb")).expect("open the store's file to tamper with it");
    let tx = db.begin_write().unwrap();
    let tree = |name: &'static str| RawTree { tx: &tx, def: redb::TableDefinition::new(name) };
    f(&tree("audit"), &tree("meta"));
    tx.commit().unwrap();
}

fn k(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn stored(audit: &RawTree, seq: u64) -> AuditEntry {
    let bytes = audit.get(k(seq)).unwrap().unwrap();
    decode_record(&AuditRecord { key_seq: Some(seq), bytes }).unwrap()
}

#[test]
fn a_clean_log_verifies_and_keeps_what_was_recorded() {
    let d = tempfile::tempdir().unwrap();
    let head = write_log(d.path(), 50);
    let r = verify(d.path(), None).unwrap();
    assert_eq!((r.entries, r.head.as_ref().map(|h| h.seq)), (50, Some(50)));
    assert_eq!(r.head.unwrap(), head);
    tamper(d.path(), |audit, _| {
        let e = stored(audit, 17);
        let n = new_entry(17);
        assert_eq!(
            (e.seq, e.user, e.query, e.case_number, e.action, e.outcome),
            (17, n.user, n.query, n.case_number, Action::Search, Outcome::Ok)
        );
        assert_eq!(stored(audit, 16).hash, e.prev_hash);
        assert!(stored(audit, 1).prev_hash == GENESIS);
        let now = jiff::Timestamp::now().as_millisecond();
        assert!((now - 60_000..=now).contains(&e.at_ms), "times are UTC milliseconds of the write");
    });
}

#[test]
fn one_edited_byte_is_reported_at_its_entry() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 50);
    tamper(d.path(), |audit, _| {
        let mut v = audit.get(k(17)).unwrap().unwrap().to_vec();
        // The plate searched, 7AB017 → 7AB018.
        let at = v.windows(6).position(|w| w == b"7AB017").unwrap() + 5;
        v[at] = b'8';
        audit.insert(k(17), v).unwrap();
    });
    let b = broken(d.path(), None);
    assert_eq!((b.first_bad_seq, b.reason), (17, BrokenReason::Edited));
}

#[test]
fn a_deleted_entry_is_reported_at_its_seq() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 50);
    tamper(d.path(), |audit, _| {
        audit.remove(k(23)).unwrap();
    });
    let b = broken(d.path(), None);
    assert_eq!((b.first_bad_seq, b.reason), (23, BrokenReason::OutOfSequence { found: 24 }));
}

#[test]
fn entries_deleted_from_the_middle_and_renumbered_are_reported_at_the_first() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 50);
    tamper(d.path(), |audit, meta| {
        // 20..=25 gone, the rest moved down with their seq fields rewritten: gapless, but not chained.
        for seq in 26..=50u64 {
            let mut e = stored(audit, seq);
            e.seq = seq - 6;
            audit.insert(k(seq - 6), encode(&e)).unwrap();
        }
        for seq in 45..=50u64 {
            audit.remove(k(seq)).unwrap();
        }
        meta.insert("audit_head", 44u64.to_be_bytes()).unwrap();
    });
    assert_eq!(broken(d.path(), None).first_bad_seq, 20);
}

#[test]
fn swapped_entries_are_reported_at_the_first_of_them() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 50);
    tamper(d.path(), |audit, _| {
        let (a, b) = (audit.get(k(10)).unwrap().unwrap(), audit.get(k(40)).unwrap().unwrap());
        audit.insert(k(10), b).unwrap();
        audit.insert(k(40), a).unwrap();
    });
    let b = broken(d.path(), None);
    assert_eq!(b.first_bad_seq, 10);
    assert!(b.to_string().contains("key 10 holds entry 40"), "{b}");

    // Swapped with their seq fields rewritten to fit the keys: the chain links give them away.
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 50);
    tamper(d.path(), |audit, _| {
        let (mut a, mut b) = (stored(audit, 30), stored(audit, 31));
        (a.seq, b.seq) = (31, 30);
        audit.insert(k(30), encode(&b)).unwrap();
        audit.insert(k(31), encode(&a)).unwrap();
    });
    assert_eq!(broken(d.path(), None).first_bad_seq, 30);
}

#[test]
fn a_truncated_tail_is_caught_by_the_checkpoint_and_by_the_head_pointer_unless_rewritten() {
    let d = tempfile::tempdir().unwrap();
    let cp = write_log(d.path(), 50);
    assert_eq!(cp.seq, 50);
    tamper(d.path(), |audit, _| {
        for seq in 41..=50u64 {
            audit.remove(k(seq)).unwrap();
        }
    });
    // The store's head pointer still says 50.
    let b = broken(d.path(), None);
    assert_eq!((b.first_bad_seq, b.reason), (41, BrokenReason::MissingBeforeHead { head: 50 }));

    // Head pointer rewritten too: a valid shorter chain, caught only with the checkpoint.
    tamper(d.path(), |_, meta| {
        meta.insert("audit_head", 40u64.to_be_bytes()).unwrap();
    });
    assert_eq!(verify(d.path(), None).unwrap().entries, 40);
    let b = broken(d.path(), Some(cp.clone()));
    assert_eq!((b.first_bad_seq, b.reason), (41, BrokenReason::MissingBeforeCheckpoint { checkpoint_seq: 50 }));

    // Regrown to 50 different entries: the checkpoint's entry differs.
    with_log(d.path(), key(), |log| {
        for i in 41..=50 {
            log.record(new_entry(i + 1000)).unwrap();
        }
    });
    let b = broken(d.path(), Some(cp));
    assert_eq!((b.first_bad_seq, b.reason), (50, BrokenReason::CheckpointDiffers));
}

#[test]
fn a_chain_rebuilt_with_another_key_is_a_key_mismatch_at_seq_1() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 50);
    let other = AuditKey::from_bytes(&[0x17; 32]).unwrap();
    let forger = other.clone();
    tamper(d.path(), move |audit, _| {
        // Edit entry 5 and re-chain everything after it, hashes and MACs, with the forger's key.
        let mut prev = GENESIS;
        for seq in 1..=50u64 {
            let e = stored(audit, seq);
            let mut n = NewAuditEntry {
                user: e.user,
                organisation: e.organisation,
                source: e.source,
                action: Some(e.action),
                object: e.object,
                query: e.query,
                purpose: e.purpose,
                case_number: e.case_number,
                result_count: e.result_count,
                outcome: Some(e.outcome),
                detail: e.detail,
            };
            if seq == 5 {
                n.query = "NOTHING".into();
            }
            let sealed = seal(&n, seq, e.at_ms, prev, &forger).unwrap();
            prev = sealed.hash;
            audit.insert(k(seq), encode(&sealed)).unwrap();
        }
    });
    let b = broken(d.path(), None);
    assert_eq!((b.first_bad_seq, b.reason), (1, BrokenReason::KeyMismatch));
    assert_eq!(
        with_log(d.path(), other, |log| log.verify(None).unwrap().entries),
        50,
        "consistent under the forger's key"
    );
}

#[test]
fn record_fails_and_writes_nothing_on_a_damaged_log() {
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 5);
    tamper(d.path(), |audit, _| {
        audit.remove(k(5)).unwrap();
    });
    with_log(d.path(), key(), |log| {
        let err = log.record(new_entry(6)).unwrap_err();
        assert!(matches!(err, AuditError::Write(ref m) if m.contains("entry 5, the chain head, is missing")), "{err}");
        assert_eq!(log.store().audit_head_seq().unwrap(), 5);
        assert_eq!(log.store().audit_record(6).unwrap(), None);
    });

    // A lost head pointer must not make the next append overwrite entry 1.
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 5);
    tamper(d.path(), |_, meta| {
        meta.remove("audit_head").unwrap();
    });
    with_log(d.path(), key(), |log| {
        let err = log.record(new_entry(6)).unwrap_err();
        assert!(err.to_string().contains("entry 1 already exists"), "{err}");
    });
    assert!(verify(d.path(), None).is_err(), "the head pointer is gone, but no entry was overwritten");
    tamper(d.path(), |audit, _| assert_eq!(stored(audit, 1).query, "7AB001"));
}

#[test]
fn entries_missing_an_action_outcome_or_user_are_refused() {
    let d = tempfile::tempdir().unwrap();
    with_log(d.path(), key(), |log| {
        for n in [
            NewAuditEntry { action: None, ..new_entry(1) },
            NewAuditEntry { outcome: None, ..new_entry(1) },
            NewAuditEntry { user: String::new(), ..new_entry(1) },
        ] {
            assert!(log.record(n).is_err());
        }
        assert!(log.store().audit_is_empty().unwrap());
    });
}

#[test]
fn concurrent_appends_stay_gapless_and_chained() {
    let d = tempfile::tempdir().unwrap();
    with_log(d.path(), key(), |log| {
        std::thread::scope(|s| {
            for w in 0..4u64 {
                s.spawn(move || {
                    for i in 0..40 {
                        log.record(new_entry(w * 100 + i)).unwrap();
                    }
                });
            }
        });
        let r = log.verify(None).unwrap();
        assert_eq!(r.entries, 160);
    });
}

#[test]
fn the_key_is_created_only_for_an_empty_log_and_must_match() {
    let d = tempfile::tempdir().unwrap();
    let key_file = d.path().join("keys/sub/audit.key");
    let (store, _) = Store::open(&StoreOptions::at(store_path(d.path()))).unwrap();
    let store = Arc::new(store);
    let log = AuditLog::open(store.clone(), &key_file).unwrap();
    let meta = std::fs::metadata(&key_file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read_to_string(&key_file).unwrap().trim().len(), 64);
    log.record(new_entry(1)).unwrap();
    drop(log);
    // Reopened with the same file: fine.
    drop(AuditLog::open(store.clone(), &key_file).unwrap());

    // Missing with a non-empty log: refused, and no new key appears.
    let moved = d.path().join("audit.key.bak");
    std::fs::rename(&key_file, &moved).unwrap();
    match AuditLog::open(store.clone(), &key_file) {
        Err(AuditError::Key(m)) => assert!(m.contains("a new key would hide tampering"), "{m}"),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("a missing key with a non-empty log must be refused"),
    }
    assert!(!key_file.exists());
    assert!(matches!(AuditKey::load_or_create(&key_file, false), Err(KeyError::MissingWithLog { .. })));

    // Another key: refused at open, before anything is appended with it.
    std::fs::write(&key_file, format!("{}\n", "ab".repeat(32))).unwrap();
    match AuditLog::open(store.clone(), &key_file) {
        Err(AuditError::Key(m)) => assert!(m.contains("does not match entry 1"), "{m}"),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("a wrong key must be refused"),
    }
    std::fs::write(&key_file, "not a key\n").unwrap();
    assert!(matches!(AuditKey::load(&key_file), Err(KeyError::Malformed { .. })));
    std::fs::rename(&moved, &key_file).unwrap();
    assert!(AuditLog::open(store, &key_file).is_ok());
}

#[test]
fn purges_are_audited_and_never_touch_the_audit_log() {
    const NOW: i64 = 1_800_000_000_000;
    let d = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&StoreOptions::at(store_path(d.path()))).unwrap();
    let store = Arc::new(store);
    let log = AuditLog::new(store.clone(), key());
    for i in 1..=10 {
        log.record(new_entry(i)).unwrap();
    }
    let before: Vec<AuditRecord> = store.audit_records().map(Result::unwrap).collect();
    let p = Policy {
        min_days: 10,
        max_days: 10,
        max_clock_lead_ms: 60 * DAY_MS,
        max_clock_lag_ms: 0,
        require_clock_sync: true,
        max_purge_percent: 100,
        large_purge_min_reads: 0,
    };
    store.put_reads((0..30).map(|i| synthetic_read(i, NOW - 20 * DAY_MS + i as i64, 100)).collect()).unwrap();
    let held = store.put_read(synthetic_read(99, NOW - 20 * DAY_MS + 500, 0)).unwrap();
    let req = HoldRequest {
        placed_by: "det. a".into(),
        case_number: "C-9".into(),
        reason: "evidence".into(),
        expires_at_ms: None,
    };
    store.place_hold(held, req, NOW).unwrap();
    store.put_read(synthetic_read(100, NOW, 0)).unwrap();
    let settings = SweepSettings { batch_size: 7, batch_pause: Duration::ZERO };

    // Without a sink nothing is recorded and the log is untouched.
    let unsynced = FixedClock { now: NOW, synced: Some(false) };
    let r = sweep(&store, &p, &unsynced, settings, &CancellationToken::new(), None).unwrap();
    assert!(matches!(r.outcome, SweepOutcome::Refused(_)));
    assert_eq!(store.audit_records().map(Result::unwrap).collect::<Vec<_>>(), before);

    // A refused purge is recorded as denied.
    let r = sweep(&store, &p, &unsynced, settings, &CancellationToken::new(), Some(&log)).unwrap();
    assert!(matches!(r.outcome, SweepOutcome::Refused(_)));

    // A completed purge, with its counts.
    let clock = FixedClock { now: NOW, synced: Some(true) };
    let r = sweep(&store, &p, &clock, settings, &CancellationToken::new(), Some(&log)).unwrap();
    assert_eq!((r.outcome, r.purged, r.held_kept), (SweepOutcome::Completed, 30, 1));
    assert_eq!(store.count_reads(), 2);

    let report = log.verify(None).unwrap();
    assert_eq!(report.entries, 12);
    let after: Vec<AuditRecord> = store.audit_records().map(Result::unwrap).collect();
    assert_eq!(&after[..10], &before[..], "the purge left every earlier audit entry as it was");
    let entries: Vec<AuditEntry> = after.iter().map(|r| decode_record(r).unwrap()).collect();
    let (refused, done) = (&entries[10], &entries[11]);
    assert_eq!(
        (refused.action, refused.outcome, refused.result_count),
        (Action::RetentionPurge, Outcome::Denied, Some(0))
    );
    assert!(refused.detail.starts_with("refused: "), "{}", refused.detail);
    assert_eq!((done.action, done.outcome, done.result_count), (Action::RetentionPurge, Outcome::Ok, Some(30)));
    assert_eq!((done.user.as_str(), done.source.as_str(), done.object.as_str()), ("system", "daemon", "reads"));
    assert!(done.detail.contains("30 deleted, 1 kept under evidence hold"), "{}", done.detail);
}

// --- the CLI ---------------------------------------------------------------------------------------

fn cli_setup(dir: &Path, n: u64) -> PathBuf {
    let key_file = dir.join("audit.key");
    std::fs::write(&key_file, format!("{}\n", "42".repeat(32))).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    write_log(dir, n);
    let cfg = dir.join("polewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nsite_id = \"s\"\ndevice_id = \"d\"\norganisation = \"Auburn PD\"\n[store]\npath = \"{}\"\n[access]\naudit_key_file = \"{}\"\n",
            store_path(dir).display(),
            key_file.display()
        ),
    )
    .unwrap();
    cfg
}

fn polewatch(cfg: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_polewatch"))
        .arg("--config")
        .arg(cfg)
        .arg("audit")
        .args(args)
        .env("USER", "auditor1")
        .env_remove("SUDO_USER")
        .env_remove("POLEWATCH_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_verify_checkpoint_and_show() {
    let d = tempfile::tempdir().unwrap();
    let cfg = cli_setup(d.path(), 30);

    let (code, out, err) = polewatch(&cfg, &["verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("audit log OK: 30 entries; head seq 30"), "{out}");
    assert!(!d.path().join("audit.key.head").exists(), "verify writes nothing, not even beside the key");

    let (code, out, err) = polewatch(&cfg, &["checkpoint"]);
    assert_eq!(code, Some(0), "{err}");
    let cp = Checkpoint::parse(&out).unwrap();
    assert_eq!(cp.seq, 31, "the checkpoint covers its own entry");
    let cp_file = d.path().join("cp.json");
    std::fs::write(&cp_file, &out).unwrap();

    // Searches for 7AB01x: entries 10..=19, of which 10, 11, 13, 14, 16, 17, 19 are searches.
    let (code, out, err) = polewatch(&cfg, &["show", "--action", "search", "--query", "7ab01"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [10, 11, 13, 14, 16, 17, 19]);
    assert!(lines[0]["at"].as_str().unwrap().ends_with('Z'));
    let (code, out, _) = polewatch(&cfg, &["show", "--user", "officer1", "--limit", "2"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 2);
    let (code, out, _) = polewatch(&cfg, &["show", "--until", "2000-01-01T00:00:00Z"]);
    assert_eq!((code, out.as_str()), (Some(0), ""));
    let (code, _, err) = polewatch(&cfg, &["show", "--since", "yesterday"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("RFC 3339"), "{err}");

    // Each viewing was recorded, with who, the plate asked for and how much was shown.
    let (code, out, _) = polewatch(&cfg, &["show", "--action", "audit_viewed"]);
    assert_eq!(code, Some(0));
    let viewed: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(viewed.len(), 3, "{out}");
    assert_eq!(viewed[0]["user"], "auditor1");
    assert_eq!(viewed[0]["source"], "cli");
    assert_eq!(viewed[0]["query"], "7ab01");
    assert_eq!(viewed[0]["result_count"], 7);
    assert_eq!(viewed[0]["organisation"], "Auburn PD");

    let (code, out, err) = polewatch(&cfg, &["verify", "--checkpoint", cp_file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("checkpoint at seq 31 matches"), "{out}");

    // Cut back to 20 entries, head pointer and all: only the checkpoint notices.
    tamper(d.path(), |audit, meta| {
        for seq in 21..=40u64 {
            audit.remove(k(seq)).unwrap();
        }
        meta.insert("audit_head", 20u64.to_be_bytes()).unwrap();
    });
    // The chain itself is intact; the record beside the key (written by checkpoint and show) notices.
    let (code, out, err) = polewatch(&cfg, &["verify"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("audit log OK: 20 entries"), "{out}");
    assert!(
        err.contains("the audit key was last used with entry 35") && err.contains("this log ends at entry 20"),
        "{err}"
    );
    let (code, _, err) = polewatch(&cfg, &["verify", "--checkpoint", cp_file.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(err.contains("audit log broken at seq 21: missing"), "{err}");
}

#[test]
fn cli_verify_fails_on_an_edited_entry_and_never_creates_a_key() {
    let d = tempfile::tempdir().unwrap();
    let cfg = cli_setup(d.path(), 12);
    tamper(d.path(), |audit, _| {
        let mut v = audit.get(k(7)).unwrap().unwrap().to_vec();
        let at = v.windows(8).position(|w| w == b"officer3").unwrap();
        v[at + 7] = b'2';
        audit.insert(k(7), v).unwrap();
    });
    let (code, out, err) = polewatch(&cfg, &["verify"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(err.contains("audit log broken at seq 7: content does not match its hash (edited)"), "{err}");
    // Nothing may be written to a broken log by the tools either: no checkpoint.
    let (code, out, err) = polewatch(&cfg, &["checkpoint"]);
    assert_eq!((code, out.as_str()), (Some(1), ""));
    assert!(err.contains("no checkpoint taken"), "{err}");

    std::fs::remove_file(d.path().join("audit.key")).unwrap();
    let (code, _, err) = polewatch(&cfg, &["verify"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("audit.key"), "{err}");
    assert!(!d.path().join("audit.key").exists());
    let (code, _, err) = polewatch(&cfg, &["show"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("a new key would hide tampering"), "{err}");
}

#[test]
fn a_purge_that_cannot_be_recorded_is_an_error_not_silence() {
    const NOW: i64 = 1_800_000_000_000;
    let d = tempfile::tempdir().unwrap();
    write_log(d.path(), 3);
    tamper(d.path(), |audit, _| {
        audit.remove(k(3)).unwrap();
    });
    let (store, _) = Store::open(&StoreOptions::at(store_path(d.path()))).unwrap();
    let store = Arc::new(store);
    let log = AuditLog::new(store.clone(), key());
    store.put_reads((0..5).map(|i| synthetic_read(i, NOW - 20 * DAY_MS + i as i64, 0)).collect()).unwrap();
    let p = Policy {
        min_days: 10,
        max_days: 10,
        max_clock_lead_ms: 60 * DAY_MS,
        max_clock_lag_ms: 0,
        require_clock_sync: false,
        max_purge_percent: 100,
        large_purge_min_reads: 0,
    };
    let clock = FixedClock { now: NOW, synced: None };
    let settings = SweepSettings { batch_size: 10, batch_pause: Duration::ZERO };
    let err = sweep(&store, &p, &clock, settings, &CancellationToken::new(), Some(&log)).unwrap_err();
    assert!(err.to_string().contains("the purge was not recorded"), "{err}");
    // Deletion past retention is required, so it went ahead; the error is what raises the alarm.
    assert_eq!(store.count_reads(), 0);
}

// --- issue 15: a corrupt store must not silently restart the chain ------------------------------------

fn logged(store: Arc<Store>, key_file: &Path, n: u64) -> Arc<Store> {
    let log = AuditLog::open(store.clone(), key_file).unwrap();
    for i in 1..=n {
        log.record(new_entry(i)).unwrap();
    }
    store
}

#[test]
fn the_key_records_its_chain_head_and_refuses_a_chain_that_restarts_or_is_cut() {
    let d = tempfile::tempdir().unwrap();
    let key_file = d.path().join("audit.key");
    let (store, _) = Store::open(&StoreOptions::at(store_path(d.path()))).unwrap();
    let store = logged(Arc::new(store), &key_file, 9);
    let head = ChainHead::load(&key_file).unwrap().expect("the head is recorded beside the key");
    assert_eq!(head.seq, 9);
    Arc::try_unwrap(store).ok().unwrap().close().unwrap();

    // The store is lost and an empty one appears: the daemon's open refuses to begin a new chain.
    std::fs::rename(store_path(d.path()), d.path().join("lost")).unwrap();
    let (empty, _) = Store::open(&StoreOptions::at(store_path(d.path()))).unwrap();
    let empty = Arc::new(empty);
    match AuditLog::open_verified(empty.clone(), &key_file) {
        Err(AuditError::Chain(m)) => assert!(
            m.contains("last used with entry 9") && m.contains("ends at entry 0") && m.contains("restart-chain"),
            "{m}"
        ),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("a new chain over a lost one must not start by itself"),
    }
    assert!(empty.audit_is_empty().unwrap(), "nothing was written");
    // A chain rebuilt with the same key and as many entries is another chain: refused too.
    let other = AuditLog::new(empty.clone(), AuditKey::load(&key_file).unwrap());
    for i in 1..=12 {
        other.record(new_entry(100 + i)).unwrap();
    }
    match AuditLog::open(empty.clone(), &key_file) {
        Err(AuditError::Chain(m)) => assert!(m.contains("entry 9 is not the entry the audit key last wrote"), "{m}"),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("a replaced chain must be refused"),
    }
}

#[test]
fn a_corrupt_entry_stops_start_up_naming_its_seq() {
    let d = tempfile::tempdir().unwrap();
    let key_file = d.path().join("audit.key");
    std::fs::write(&key_file, format!("{}\n", "42".repeat(32))).unwrap();
    write_log(d.path(), 12);
    tamper(d.path(), |audit, _| {
        let mut v = audit.get(k(7)).unwrap().unwrap().to_vec();
        let at = v.windows(8).position(|w| w == b"officer3").unwrap();
        v[at + 7] = b'2';
        audit.insert(k(7), v).unwrap();
    });
    let (store, _) = Store::open(&StoreOptions::at(store_path(d.path()))).unwrap();
    match AuditLog::open_verified(Arc::new(store), &key_file) {
        Err(AuditError::Chain(m)) => assert!(m.contains("broken at seq 7") && m.contains("start-up stopped"), "{m}"),
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("start-up must stop on a broken entry"),
    }
}

/// The finding: one corrupt store made `audit verify` move it aside and create an empty one,
/// and the next verify said "OK: 0 entries". Now verify refuses and leaves every byte; the operator's
/// `restart-chain` keeps the old copy, says what was lost, and starts the new chain with that record.
#[test]
fn verify_never_modifies_a_corrupt_store_and_restart_chain_is_explicit_and_reports_the_loss() {
    let d = tempfile::tempdir().unwrap();
    let cfg = cli_setup(d.path(), 15);
    let key_file = d.path().join("audit.key");
    // The daemon's open records the head beside the key and a census beside the store.
    {
        let (store, _) = Store::open(&StoreOptions::at(store_path(d.path()))).unwrap();
        let store = Arc::new(store);
        store.put_reads((0..3).map(|i| synthetic_read(i, 1_790_000_000_000 + i as i64, 0)).collect()).unwrap();
        let log = AuditLog::open_verified(store.clone(), &key_file).unwrap();
        log.record(new_entry(16)).unwrap();
        store.write_census().unwrap();
        drop(log);
        Arc::try_unwrap(store).ok().unwrap().close().unwrap();
    }
    std::fs::write(store_path(d.path()).join("store.redb"), b"this is not a redb file\0\x01\x02").unwrap();
    let before = snapshot(d.path());

    for args in [&["verify"][..], &["show"][..], &["checkpoint"][..]] {
        let (code, out, err) = polewatch(&cfg, args);
        assert_eq!(code, Some(1), "{args:?}: {out}{err}");
        assert!(err.contains("is corrupt") && err.contains("left as it is"), "{args:?}: {err}");
    }
    assert_eq!(snapshot(d.path()), before, "the checking tools changed nothing");
    // The daemon's open refuses the same way.
    assert!(matches!(Store::open(&StoreOptions::at(store_path(d.path()))), Err(StoreError::Corrupt { .. })));
    assert_eq!(snapshot(d.path()), before);

    let (code, out, err) = polewatch(&cfg, &["restart-chain", "--reason", "INC-42: store corrupt after power loss"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(err.contains("moved, byte for byte, to"), "{err}");
    assert!(
        out.contains("new audit chain started at entry 1")
            && out.contains("3 reads")
            && out.contains("audit entries 1..=16"),
        "{out}"
    );
    let kept: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("store.corrupt-"))
        .collect();
    assert_eq!(kept.len(), 1, "the old copy is kept");
    let (code, out, err) = polewatch(&cfg, &["verify"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("audit log OK: 1 entries"), "{out}");
    let (code, out, _) = polewatch(&cfg, &["show", "--action", "audit_chain_restarted"]);
    assert_eq!(code, Some(0));
    let e: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.contains("INC-42")
            && detail.contains("previous chain ended at entry 16")
            && detail.contains("store.corrupt-"),
        "{detail}"
    );
    // Restarting again over a living chain is refused.
    let (code, _, err) = polewatch(&cfg, &["restart-chain", "--reason", "again"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("nothing to restart"), "{err}");
    let _ = OnCorrupt::Refuse;
}
