//! Kill -9 at random moments while a child process stores reads: every read the child was told is
//! durable must be there, intact and indexed, and the store must open every time.

use std::time::Duration;

#[test]
fn sigkill_loses_no_acknowledged_read() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_polewatch-dev"));
    let r = polewatch_dev::bench::crash::run_cycles(exe, dir.path(), 30, Duration::from_millis(400)).unwrap();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    assert_eq!((r.lost, r.damaged, r.failed_opens, r.corrupt_recoveries), (0, 0, 0, 0));
    // The test means something only if the child got reads acknowledged before most kills.
    assert!(r.acknowledged >= 100, "only {} reads were acknowledged in 30 cycles", r.acknowledged);
}

#[test]
fn sigkill_loses_no_acknowledged_hold_audit_entry_or_outbox_message() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_polewatch-dev"));
    let opts = polewatch_dev::bench::crash::Options {
        cycles: 20,
        max_delay: Duration::from_millis(500),
        verify_every: 5,
        ..Default::default()
    };
    let r = polewatch_dev::bench::crash::run(exe, dir.path(), &opts).unwrap();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    assert_eq!(r.violations(), 0, "{r:#?}");
    assert!(
        r.acknowledged_holds >= 20 && r.acknowledged_audit >= 20 && r.acknowledged_outbox >= 20,
        "too little was acknowledged to mean anything: {r:#?}"
    );
}

mod powercut_model {
    use polewatch_dev::bench::powercut::{Fate, Model, SyncFileRange, parse_journal};

    fn rec(kind: u8, path: &str, a: u64, data: &[u8]) -> Vec<u8> {
        let mut v = vec![kind];
        v.extend((path.len() as u32).to_le_bytes());
        v.extend(path.as_bytes());
        v.extend(a.to_le_bytes());
        v.extend(0u64.to_le_bytes());
        v.extend((data.len() as u32).to_le_bytes());
        v.extend(data);
        v
    }

    #[test]
    fn unsynced_writes_are_lost_and_synced_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        std::fs::create_dir_all(&root).unwrap();
        let f = root.join("db");
        let fs = f.to_str().unwrap();
        let mut j = Vec::new();
        j.extend(rec(4, fs, 0, b""));
        j.extend(rec(1, fs, 0, b"synced"));
        j.extend(rec(3, fs, 0, b""));
        j.extend(rec(1, fs, 6, b"-after"));
        j.extend(rec(8, fs, 0, b""));
        // A record cut off by the kill.
        j.extend(&rec(1, fs, 12, b"cut")[..10]);
        let ops = parse_journal(&j);
        assert_eq!(ops.len(), 5);
        let mut strict = Model::load(&root).unwrap();
        strict.replay(&ops, SyncFileRange::NotDurable);
        strict.materialize(&root, Fate::LoseAll).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"synced");
        assert_eq!(strict.last_dropped_writes, 1);
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        let mut kind = Model::load(&root).unwrap();
        kind.replay(&ops, SyncFileRange::Durable);
        kind.materialize(&root, Fate::LoseAll).unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"synced-after");
    }

    #[test]
    fn renames_move_synced_data_and_unlinks_remove() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("old"), b"gone").unwrap();
        let (tmp, head, old) = (root.join("h.tmp"), root.join("h"), root.join("old"));
        let mut j = Vec::new();
        j.extend(rec(4, tmp.to_str().unwrap(), 0, b""));
        j.extend(rec(1, tmp.to_str().unwrap(), 0, b"v2"));
        j.extend(rec(3, tmp.to_str().unwrap(), 0, b""));
        j.extend(rec(5, tmp.to_str().unwrap(), 0, head.to_str().unwrap().as_bytes()));
        j.extend(rec(6, old.to_str().unwrap(), 0, b""));
        let mut m = Model::load(&root).unwrap();
        m.replay(&parse_journal(&j), SyncFileRange::NotDurable);
        m.materialize(&root, Fate::LoseAll).unwrap();
        assert_eq!(std::fs::read(&head).unwrap(), b"v2");
        assert!(!tmp.exists() && !old.exists());
    }
}

/// The power-cut simulation (src/bench/powercut.rs): only what was synced survives a cut. sled, even with
/// its log and blob files synced by hand, lost acknowledged items in some cuts (this test failed in 2 of 4
/// runs, and 6 of 300 bench cuts lost items), which is why the store moved to redb. Needs a C compiler
/// (`cc`) for the shim.
#[test]
fn a_power_cut_loses_no_acknowledged_item_and_the_store_opens() {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_polewatch-dev"));
    let opts = polewatch_dev::bench::crash::Options {
        cycles: 12,
        max_delay: Duration::from_millis(1500),
        cut: polewatch_dev::bench::crash::Cut::PowerLoss(polewatch_dev::bench::powercut::SyncFileRange::NotDurable),
        verify_every: 4,
        ..Default::default()
    };
    let r = polewatch_dev::bench::crash::run(exe, dir.path(), &opts).unwrap();
    assert!(r.problems.is_empty(), "{:#?}", r.problems);
    assert_eq!(r.violations(), 0, "{r:#?}");
    assert!(r.acknowledged >= 50, "too little was acknowledged to mean anything: {r:#?}");
}
