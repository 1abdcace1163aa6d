//! Retention against a real store: random reads, holds and clock moves; after every sweep the store
//! holds exactly what the policy says it must.

use polewatch::bench::synthetic_read;
use polewatch::clock::FixedClock;
use polewatch::retention::{check_clock, Policy, DAY_MS};
use polewatch::store::sweeper::{sweep, SweepOutcome, SweepSettings};
use polewatch::store::{HoldRequest, ReadId, Store, StoreOptions};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

const NOW0: i64 = 1_800_000_000_000;

#[derive(Debug, Clone)]
enum HoldSpec {
    None,
    Open,
    Expires(i64),
    Released,
}

fn hold_spec() -> impl Strategy<Value = HoldSpec> {
    prop_oneof![
        4 => Just(HoldSpec::None),
        1 => Just(HoldSpec::Open),
        1 => (-20 * DAY_MS..500 * DAY_MS).prop_map(HoldSpec::Expires),
        1 => Just(HoldSpec::Released),
    ]
}

#[derive(Debug, Clone)]
struct Step {
    advance_ms: i64,
    synced: Option<bool>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![
            1 => Just(0i64),                  // the same instant
            2 => 0i64..7_200_000,             // a sweep or two later
            2 => 0i64..100 * DAY_MS,          // time passes
            1 => -3 * DAY_MS..0i64,            // clock steps back
            1 => 30 * DAY_MS..400 * DAY_MS,   // clock jumps far ahead
        ],
        prop_oneof![6 => Just(Some(true)), 1 => Just(Some(false)), 1 => Just(None)],
    )
        .prop_map(|(advance_ms, synced)| Step { advance_ms, synced })
}

fn policy() -> impl Strategy<Value = Policy> {
    (1u32..400, 0u32..200, any::<bool>()).prop_map(|(min_days, extra, require_clock_sync)| Policy {
        min_days,
        max_days: min_days + extra,
        max_clock_lead_ms: 60 * DAY_MS,
        max_clock_lag_ms: 300_000,
        require_clock_sync,
    })
}

/// Ages anywhere, and ages within hours of the min_days and max_days boundaries, where off-by-one
/// errors live.
fn age(p: Policy) -> impl Strategy<Value = i64> {
    let near = |days: u32| (days as i64 * DAY_MS - 3 * 3_600_000)..(days as i64 * DAY_MS + 3 * 3_600_000);
    let edge = |days: u32| (days as i64 * DAY_MS - 120_000)..(days as i64 * DAY_MS + 120_000);
    prop_oneof![3 => 0..900 * DAY_MS, 1 => near(p.min_days), 1 => near(p.max_days), 1 => edge(p.max_days.max(p.min_days))]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sweeps_keep_exactly_what_policy_requires(
        (p, reads) in policy().prop_flat_map(|p| (Just(p), prop::collection::vec((age(p), hold_spec()), 1..40))),
        steps in prop::collection::vec(step(), 1..5),
        batch in 1usize..7,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&StoreOptions::at(dir.path().join("s"))).unwrap();
        // Model: read id -> (captured_at, hold expiry: None = no binding hold, Some(None) = open hold, Some(Some(t)) = until t)
        let mut model: BTreeMap<ReadId, (i64, Option<Option<i64>>)> = BTreeMap::new();
        for (i, (age, hold)) in reads.iter().enumerate() {
            let at = NOW0 - age;
            let id = store.put_read(synthetic_read(i as u64, at, 16)).unwrap();
            let req = |expires_at_ms| HoldRequest { placed_by: "det. a".into(), case_number: "C-9".into(), reason: "evidence".into(), expires_at_ms };
            let binding = match hold {
                HoldSpec::None => None,
                HoldSpec::Open => { store.place_hold(id, req(None), at).unwrap(); Some(None) }
                HoldSpec::Expires(rel) => { store.place_hold(id, req(Some(NOW0 + rel)), NOW0 + rel - 1).unwrap(); Some(Some(NOW0 + rel)) }
                HoldSpec::Released => {
                    let h = store.place_hold(id, req(None), at).unwrap();
                    store.release_hold(id, h.id, "sgt. b", "closed", at + 1).unwrap();
                    None
                }
            };
            model.insert(id, (at, binding));
        }
        let mut clock = FixedClock { now: NOW0, synced: Some(true) };
        for s in &steps {
            clock.now += s.advance_ms;
            clock.synced = s.synced;
            let newest = model.values().map(|(at, _)| *at).max();
            let trusted = check_clock(clock.now, newest, clock.synced, &p).is_ok();
            let before = store.count_reads();
            let report = sweep(&store, &p, &clock, SweepSettings { batch_size: batch, batch_pause: Duration::ZERO }, &AtomicBool::new(false), None).unwrap();
            if !trusted {
                prop_assert!(matches!(report.outcome, SweepOutcome::Refused(_)), "{:?}", report.outcome);
                prop_assert_eq!(store.count_reads(), before, "nothing may be deleted on an untrusted clock");
                continue;
            }
            prop_assert_eq!(&report.outcome, &SweepOutcome::Completed);
            let keep_days = p.max_days.max(p.min_days) as i64;
            let mut purged = 0;
            let mut held_kept = 0;
            model.retain(|id, (at, hold)| {
                let expired = *at < clock.now - keep_days * DAY_MS;
                let held = matches!(hold, Some(None)) || matches!(hold, Some(Some(t)) if clock.now < *t);
                let keep = !expired || held;
                // Invariant 1: never younger than min_days; 2: never a held read.
                assert!(keep || (*at < clock.now - p.min_days as i64 * DAY_MS && !held), "policy model broke for {id}");
                if expired && held { held_kept += 1; }
                if !keep { purged += 1; }
                keep
            });
            prop_assert_eq!(report.purged, purged);
            prop_assert_eq!(report.held_kept, held_kept);
            for (id, (at, hold)) in &model {
                let r = store.get_read(*id).unwrap();
                prop_assert!(r.is_some(), "read at {} (now {}) with hold {:?} was purged", at, clock.now, hold);
                if hold.is_some() {
                    prop_assert!(!store.holds_for(*id).unwrap().is_empty(), "hold record lost");
                }
            }
            prop_assert_eq!(store.count_reads(), model.len());
        }
    }
}

#[test]
fn a_sweep_stops_when_asked_and_resumes_later() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&StoreOptions::at(dir.path().join("s"))).unwrap();
    let p = Policy { min_days: 10, max_days: 10, max_clock_lead_ms: 60 * DAY_MS, max_clock_lag_ms: 0, require_clock_sync: true };
    store.put_reads((0..50).map(|i| synthetic_read(i, NOW0 - 20 * DAY_MS + i as i64, 0)).collect()).unwrap();
    store.put_read(synthetic_read(99, NOW0, 0)).unwrap();
    let clock = FixedClock { now: NOW0, synced: Some(true) };
    let settings = SweepSettings { batch_size: 5, batch_pause: Duration::ZERO };
    let stopped = sweep(&store, &p, &clock, settings, &AtomicBool::new(true), None).unwrap();
    assert_eq!(stopped.outcome, SweepOutcome::Stopped);
    assert_eq!(store.count_reads(), 51);
    let done = sweep(&store, &p, &clock, settings, &AtomicBool::new(false), None).unwrap();
    assert_eq!((done.outcome, done.purged, done.batches), (SweepOutcome::Completed, 50, 11));
    assert_eq!(store.count_reads(), 1);
}

/// Found by the property test: purging the newest read must not make the clock look far ahead
/// half-way through a sweep.
#[test]
fn purging_the_newest_read_does_not_stop_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&StoreOptions::at(dir.path().join("s"))).unwrap();
    let p = Policy { min_days: 26, max_days: 45, max_clock_lead_ms: 60 * DAY_MS, max_clock_lag_ms: 300_000, require_clock_sync: false };
    store.put_read(synthetic_read(0, NOW0 - 100 * DAY_MS, 0)).unwrap();
    store.put_read(synthetic_read(1, NOW0 - 50 * DAY_MS, 0)).unwrap();
    let clock = FixedClock { now: NOW0, synced: None };
    let r = sweep(&store, &p, &clock, SweepSettings { batch_size: 1, batch_pause: Duration::ZERO }, &AtomicBool::new(false), None).unwrap();
    assert_eq!((r.outcome, r.purged), (SweepOutcome::Completed, 2));
}
