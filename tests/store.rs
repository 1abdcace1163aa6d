//! The store (redb) on a real temp dir: round trip, search, holds, reopen, corruption, locking, and the
//! conversion of a store left by the sled layout of earlier versions.

mod support;

use polewatch::store::*;
use polewatch_dev::bench::synthetic_read;
use std::path::Path;
use support::snapshot;

fn open(dir: &Path) -> (Store, OpenOutcome) {
    Store::open(&StoreOptions::at(dir.join("store"))).expect("store opens")
}

fn read(plate: &str, at_ms: i64) -> NewRead {
    let mut r = synthetic_read(1, at_ms, 0);
    r.plate = Plate::new(plate).unwrap();
    r
}

const T0: i64 = 1_790_000_000_000;

#[test]
fn round_trip_with_images_survives_reopen() {
    let d = tempfile::tempdir().unwrap();
    let (s, outcome) = open(d.path());
    assert_eq!(outcome, OpenOutcome::Created);
    let mut r = synthetic_read(42, T0, 3000);
    r.frame_jpeg = Some(vec![0xFF, 0xD8, 1, 2, 3]);
    r.candidates.push(Candidate { text: "T0000O42".into(), confidence: 0.2 });
    let id = s.put_read(r.clone()).unwrap();
    assert_eq!(id.millis(), T0);
    s.close().unwrap();

    let (s, outcome) = open(d.path());
    assert_eq!(outcome, OpenOutcome::Opened);
    let got = s.get_read(id).unwrap().expect("read is there after reopen");
    assert_eq!(got.plate, r.plate);
    assert_eq!(got.camera_id, r.camera_id);
    assert_eq!(got.captured_at_ms, T0);
    assert_eq!(got.candidates, r.candidates);
    assert_eq!(got.char_confidences, r.char_confidences);
    assert_eq!(got.bbox, r.bbox);
    assert_eq!(got.frame_seq, 42);
    assert!(got.has_crop && got.has_frame);
    assert_eq!(s.image(id, ImageKind::Crop).unwrap(), r.crop_jpeg);
    assert_eq!(s.image(id, ImageKind::Frame).unwrap(), r.frame_jpeg);
    assert_eq!(s.newest_read_ms().unwrap(), Some(T0));
    assert_eq!(s.get_read(ReadId::new(T0)).unwrap(), None);
}

#[test]
fn invalid_reads_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = open(d.path());
    let mut r = read("ABC123", T0);
    r.camera_id.clear();
    assert!(matches!(s.put_read(r), Err(StoreError::InvalidRead(_))));
    assert!(matches!(s.put_read(read("ABC123", -1)), Err(StoreError::InvalidRead(_))));
    // a batch with one bad read stores nothing
    assert!(s.put_reads(vec![read("AAA111", T0), read("AAA112", -5)]).is_err());
    assert_eq!(s.count_reads(), 0);
}

#[test]
fn exact_prefix_suffix_and_wildcard_search() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = open(d.path());
    let plates = ["7ABC123", "7ABD999", "ABC1234", "XBC1234", "ABC1299", "ABC12", "ZZZ1234", "7ABC123"];
    let ids = s.put_reads(plates.iter().enumerate().map(|(i, p)| read(p, T0 + i as i64)).collect()).unwrap();
    let find = |p: &str| -> Vec<String> {
        s.search(&PlatePattern::parse(p).unwrap(), 100)
            .unwrap()
            .into_iter()
            .map(|r| r.plate.expose().to_string())
            .collect()
    };
    assert_eq!(find("7ABC123"), ["7ABC123", "7ABC123"]);
    assert_eq!(find("7abc-123"), ["7ABC123", "7ABC123"]);
    assert!(find("7ABC12").is_empty(), "exact search must not match a longer plate's prefix");
    assert_eq!(find("7AB*"), ["7ABC123", "7ABD999", "7ABC123"]);
    assert_eq!(find("?BC1234"), ["XBC1234", "ABC1234"]);
    assert_eq!(find("ABC12??"), ["ABC1299", "ABC1234"]);
    assert_eq!(find("*1234"), ["ZZZ1234", "XBC1234", "ABC1234"]);
    assert_eq!(find("*BC12*"), ["7ABC123", "ABC12", "ABC1299", "XBC1234", "ABC1234", "7ABC123"]);
    assert_eq!(find("*").len(), plates.len());
    // newest first, and limited
    let two = s.search(&PlatePattern::parse("7ABC123").unwrap(), 1).unwrap();
    assert_eq!(two.len(), 1);
    assert_eq!(two[0].id, ids[7]);
}

#[test]
fn holds_are_recorded_released_and_validated() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = open(d.path());
    let id = s.put_read(read("HELD1", T0)).unwrap();
    let req = HoldRequest {
        placed_by: "det. smith".into(),
        case_number: "2026-000123".into(),
        reason: "homicide evidence".into(),
        expires_at_ms: None,
    };
    let h = s.place_hold(id, req.clone(), T0 + 10).unwrap();
    assert_eq!((h.placed_by.as_str(), h.case_number.as_str(), h.placed_at_ms), ("det. smith", "2026-000123", T0 + 10));
    let h2 = s.place_hold(id, HoldRequest { expires_at_ms: Some(T0 + 1_000_000), ..req.clone() }, T0 + 20).unwrap();
    assert_eq!(s.holds_for(id).unwrap().len(), 2);

    let missing = ReadId::new(T0 + 5);
    assert!(matches!(s.place_hold(missing, req.clone(), T0), Err(StoreError::ReadNotFound(_))));
    let no_case = HoldRequest { case_number: " ".into(), ..req.clone() };
    assert!(matches!(s.place_hold(id, no_case, T0), Err(StoreError::InvalidHold(_))));
    let past = HoldRequest { expires_at_ms: Some(T0), ..req };
    assert!(matches!(s.place_hold(id, past, T0 + 1), Err(StoreError::InvalidHold(_))));

    let rel = s.release_hold(id, h.id, "sgt. jones", "case closed", T0 + 30).unwrap();
    assert_eq!(rel.released.as_ref().map(|r| r.by.as_str()), Some("sgt. jones"));
    assert!(matches!(s.release_hold(id, h.id, "x", "y", T0 + 40), Err(StoreError::HoldAlreadyReleased(_))));
    assert!(matches!(s.release_hold(id, uuid::Uuid::nil(), "x", "y", T0), Err(StoreError::HoldNotFound { .. })));
    s.close().unwrap();

    let (s, _) = open(d.path());
    let holds = s.holds_for(id).unwrap();
    assert_eq!(holds.len(), 2);
    assert!(holds.iter().any(|x| x.id == h.id && x.released.is_some()));
    assert!(holds.iter().any(|x| x.id == h2.id && x.released.is_none()));
    assert_eq!(s.all_holds().unwrap().len(), 2);
}

#[test]
fn a_second_process_cannot_open_a_store_in_use() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = open(d.path());
    s.put_read(read("LOCK1", T0)).unwrap();
    // redb locks its file: a second process is refused.
    // The second process is this test binary running `second_process_writes_reads` (the writer of the
    // kill -9 harness, which used to be the daemon's `debug write-reads`).
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "second_process_writes_reads", "--nocapture", "--test-threads=1"])
        .env(SECOND_PROCESS_STORE, d.path().join("store"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another process"), "{err}");
    assert!(s.get_read(ReadId::new(T0)).is_ok());
}

const SECOND_PROCESS_STORE: &str = "POLEWATCH_TEST_SECOND_PROCESS_STORE";

/// The child of `a_second_process_cannot_open_a_store_in_use`: writes reads into the store named in
/// [`SECOND_PROCESS_STORE`] until killed, and fails with the store's error when it cannot open it. Returns
/// at once without the variable (a plain `--ignored` run).
#[test]
#[ignore]
fn second_process_writes_reads() {
    let Some(store) = std::env::var_os(SECOND_PROCESS_STORE) else { return };
    if let Err(e) = polewatch_dev::bench::crash::write_forever(Path::new(&store), 1, 0, false) {
        panic!("{e:#}");
    }
}

/// Issue 15: a corrupt store was moved aside and replaced by an empty one on any open, by the daemon and
/// by checking tools alike. Now opening refuses and leaves every byte; only the operator's explicit
/// `OnCorrupt::MoveAside` (`audit restart-chain`) moves it aside, kept byte for byte.
#[test]
fn a_corrupt_store_is_refused_untouched_and_moved_aside_only_on_request() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = open(d.path());
    s.put_read(read("OLD1", T0)).unwrap();
    s.close().unwrap();
    let file = d.path().join("store/store.redb");
    let garbage = b"this is not a redb file\0\x01\x02".to_vec();
    std::fs::write(&file, &garbage).unwrap();
    let before = snapshot(d.path());

    match Store::open(&StoreOptions::at(d.path().join("store"))) {
        Err(StoreError::Corrupt { cause, .. }) => assert!(!cause.is_empty()),
        Err(e) => panic!("unexpected error {e}"),
        Ok((_, outcome)) => panic!("a corrupt store must not be opened, got {outcome:?}"),
    }
    assert_eq!(snapshot(d.path()), before, "refusing leaves every file as it was, and adds none");

    // A tool that only looks never creates a store either.
    let mut look = StoreOptions::at(d.path().join("nothing-here"));
    look.create = false;
    assert!(matches!(Store::open(&look), Err(StoreError::Missing { .. })));
    assert!(!d.path().join("nothing-here").exists());

    let mut opts = StoreOptions::at(d.path().join("store"));
    opts.on_corrupt = OnCorrupt::MoveAside;
    let (s, outcome) = Store::open(&opts).unwrap();
    let OpenOutcome::RecoveredFromCorruption { moved_to, cause } = outcome else {
        panic!("expected recovery, got {outcome:?}")
    };
    assert!(!cause.is_empty());
    assert!(moved_to.file_name().unwrap().to_string_lossy().starts_with("store.corrupt-"));
    assert_eq!(std::fs::read(moved_to.join("store.redb")).unwrap(), garbage, "the old store is kept byte for byte");
    assert_eq!(s.count_reads(), 0);
    s.put_read(read("NEW1", T0)).unwrap();
}

#[test]
fn a_store_from_a_newer_polewatch_is_refused_not_touched() {
    let d = tempfile::tempdir().unwrap();
    {
        std::fs::create_dir(d.path().join("store")).unwrap();
        let db = redb::Database::create(d.path().join("store/store.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        let meta: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("meta");
        tx.open_table(meta).unwrap().insert(&b"schema_version"[..], &99u32.to_be_bytes()[..]).unwrap();
        tx.commit().unwrap();
    }
    match Store::open(&StoreOptions::at(d.path().join("store"))) {
        Err(StoreError::NewerSchema { found: 99, supported, .. }) => assert_eq!(supported, SCHEMA_VERSION),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a newer store must not be opened"),
    }
}

#[test]
fn concurrent_writers_all_land() {
    let d = tempfile::tempdir().unwrap();
    let (s, _) = open(d.path());
    let s = std::sync::Arc::new(s);
    let handles: Vec<_> = (0..8)
        .map(|w| {
            let s = s.clone();
            std::thread::spawn(move || {
                (0..50)
                    .map(|i| s.put_read(synthetic_read(w * 1000 + i, T0 + (w * 1000 + i) as i64, 100)).unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let ids: Vec<ReadId> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    assert_eq!(ids.len(), 400);
    for id in &ids {
        assert!(s.get_read(*id).unwrap().is_some());
    }
    assert_eq!(s.count_reads(), 400);
}

/// A store in the sled layout of earlier versions, made here by copying a real store's trees into sled:
/// the daemon refuses it with the command to run, and `migrate-sled` brings every entry across (reads,
/// images, index, holds, queued messages) with the sled store kept beside it.
#[test]
fn a_sled_store_is_refused_then_migrated_entry_for_entry() {
    use redb::{ReadableDatabase, ReadableTable, TableHandle};
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("made");
    let (s, _) = Store::open(&StoreOptions::at(&src)).unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        let mut r = read(&format!("MIG{i:03}"), T0 + i * 1000);
        r.crop_jpeg = Some(vec![0xFF, 0xD8, i as u8]);
        ids.push(s.put_read(r).unwrap());
    }
    let req =
        HoldRequest { placed_by: "sgt".into(), case_number: "C-9".into(), reason: "case".into(), expires_at_ms: None };
    let hold = s.place_hold(ids[3], req, T0).unwrap();
    let queued = s.enqueue(Lane::Other, "status", b"hello".to_vec()).unwrap();
    s.close().unwrap();

    let sled_path = d.path().join("store");
    let mut copied = 0usize;
    {
        let from = redb::Database::create(src.join("store.redb")).unwrap();
        let r = from.begin_read().unwrap();
        let to = sled::open(&sled_path).unwrap();
        for h in r.list_tables().unwrap() {
            let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new(h.name());
            let t = r.open_table(def).unwrap();
            let tree = to.open_tree(h.name()).unwrap();
            for e in t.iter().unwrap() {
                let (k, v) = e.unwrap();
                tree.insert(k.value(), v.value()).unwrap();
                copied += 1;
            }
        }
        to.flush().unwrap();
    }
    match Store::open(&StoreOptions::at(&sled_path)) {
        Err(e @ StoreError::SledFormat { .. }) => assert!(e.to_string().contains("migrate-sled"), "{e}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a sled store must not be opened as if new"),
    }
    assert!(!sled_path.join("store.redb").exists(), "refusing writes nothing");

    let m = polewatch::store::migrate::migrate_sled(&sled_path).unwrap();
    assert!(m.entries() as usize >= copied - 1, "{m:?} vs {copied}");
    assert!(m.trees.contains(&("reads", 40)) && m.trees.contains(&("holds", 1)), "{m:?}");
    assert!(m.sled_kept_at.join("conf").exists(), "the sled store is kept");
    assert!(matches!(polewatch::store::migrate::migrate_sled(&sled_path), Err(StoreError::NotSled { .. })));

    let (s, outcome) = Store::open(&StoreOptions::at(&sled_path)).unwrap();
    assert_eq!(outcome, OpenOutcome::Opened);
    assert_eq!(s.count_reads(), 40);
    for (i, id) in ids.iter().enumerate() {
        let r = s.get_read(*id).unwrap().expect("every read is there");
        assert_eq!(r.plate.expose(), format!("MIG{i:03}"));
        assert_eq!(s.image(*id, ImageKind::Crop).unwrap(), Some(vec![0xFF, 0xD8, i as u8]));
    }
    let found = s.search(&PlatePattern::parse("MIG01*").unwrap(), 100).unwrap();
    assert_eq!(found.len(), 10, "the plate index came across");
    assert_eq!(s.holds_for(ids[3]).unwrap(), vec![hold]);
    let waiting = s.outbox_peek(None, 10).unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].key, queued);
    let next = s.enqueue(Lane::Other, "status", b"again".to_vec()).unwrap();
    assert!(next.seq() > queued.seq(), "the id counter goes on past the copied messages");
}
