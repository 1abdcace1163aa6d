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
