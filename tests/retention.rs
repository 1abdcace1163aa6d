//! Retention against a real store: random reads, holds and clock moves; after every sweep the store
//! holds exactly what the policy says it must. A wall clock that jumps (while real, monotonic time
//! goes on) purges nothing early, and large purges wait.

use polewatch::clock::{FixedClock, ManualClock};
use polewatch::retention::{ClockDistrust, DAY_MS, Policy, TrustAnchor, check_clock, purge_now_ms};
use polewatch::store::sweeper::{SweepOutcome, SweepSettings, sweep};
use polewatch::store::{HoldRequest, ReadId, Store, StoreOptions};
use polewatch_dev::bench::synthetic_read;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
enum Move {
    /// Real time passes: wall and monotonic clocks move together.
    Pass(i64),
    /// Someone sets the wall clock by this much; real time hardly moves.
    SetWall(i64),
    /// The wall clock is put right again.
    Correct,
}

#[derive(Debug, Clone)]
struct Step {
    mv: Move,
    synced: Option<bool>,
}

fn step() -> impl Strategy<Value = Step> {
    (
        prop_oneof![
            1 => Just(Move::Pass(0)),                                   // the same instant
            2 => (0i64..7_200_000).prop_map(Move::Pass),                // a sweep or two later
            2 => (0i64..100 * DAY_MS).prop_map(Move::Pass),             // time passes
            1 => (-3 * DAY_MS..0i64).prop_map(Move::SetWall),           // clock steps back
            1 => (30 * DAY_MS..800 * DAY_MS).prop_map(Move::SetWall),   // clock jumps far ahead
            1 => (0i64..20 * DAY_MS).prop_map(Move::SetWall),           // an NTP step forward
            1 => Just(Move::Correct),
        ],
        prop_oneof![6 => Just(Some(true)), 1 => Just(Some(false)), 1 => Just(None)],
    )
        .prop_map(|(mv, synced)| Step { mv, synced })
}

fn policy() -> impl Strategy<Value = Policy> {
    (1u32..400, 0u32..200, any::<bool>()).prop_map(|(min_days, extra, require_clock_sync)| Policy {
        min_days,
        max_days: min_days + extra,
        max_clock_lead_ms: 60 * DAY_MS,
        max_clock_lag_ms: 300_000,
        require_clock_sync,
        max_purge_percent: 100,
        large_purge_min_reads: 0,
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
        let mut clock = ManualClock { wall_ms: NOW0, mono_ms: 5_000, synced: Some(true) };
        // Trusted time as the store must keep it: from the newest read at the first sweep (no mark yet).
        let mut anchor: Option<TrustAnchor> = None;
        // Real time, which no one can set.
        let real = |c: &ManualClock| NOW0 + c.mono_ms - 5_000;
        for s in &steps {
            match s.mv {
                Move::Pass(ms) => clock.pass(ms),
                Move::SetWall(by) => { clock.mono_ms += 10_000; clock.wall_ms += by + 10_000; }
                Move::Correct => clock.wall_ms = real(&clock),
            }
            clock.synced = s.synced;
            let newest = model.values().map(|(at, _)| *at).max();
            let a = anchor.unwrap_or_else(|| TrustAnchor::start(None, newest, clock.wall_ms, clock.mono_ms)).advance(clock.wall_ms, clock.mono_ms, false, &p);
            anchor = Some(a);
            let trusted_ok = check_clock(clock.wall_ms, a.trusted_ms, clock.synced, &p).is_ok();
            let before = store.count_reads();
            let report = sweep(&store, &p, &clock, SweepSettings { batch_size: batch, batch_pause: Duration::ZERO }, &CancellationToken::new(), None).unwrap();
            prop_assert_eq!(report.trusted_ms, a.trusted_ms);
            if !trusted_ok {
                prop_assert!(matches!(report.outcome, SweepOutcome::Refused(_)), "{:?}", report.outcome);
                prop_assert_eq!(store.count_reads(), before, "nothing may be deleted on an untrusted clock");
                continue;
            }
            prop_assert_eq!(&report.outcome, &SweepOutcome::Completed);
            let now = purge_now_ms(clock.wall_ms, a.trusted_ms);
            let keep_days = p.max_days.max(p.min_days) as i64;
            let mut purged = 0;
            let mut held_kept = 0;
            let real_now = real(&clock);
            model.retain(|id, (at, hold)| {
                let expired = *at < now - keep_days * DAY_MS;
                let held = matches!(hold, Some(None)) || matches!(hold, Some(Some(t)) if now < *t);
                let keep = !expired || held;
                // Invariant 1: never younger than min_days; 2: never a held read; 3: never more than
                // the allowed clock lead early by real time, whatever the wall clock said.
                assert!(keep || (*at < now - p.min_days as i64 * DAY_MS && !held), "policy model broke for {id}");
                if expired && held { held_kept += 1; }
                if !keep { purged += 1; }
                keep
            });
            // Trusted time may follow the wall clock only in steps of at most the lead, one per sweep.
            prop_assert!(a.trusted_ms <= real_now + p.max_clock_lead_ms * steps.len() as i64 + 20_000 * steps.len() as i64,
                "trusted time {} ran away from real time {}", a.trusted_ms, real_now);
            prop_assert_eq!(report.purged, purged);
            prop_assert_eq!(report.held_kept, held_kept);
            for (id, (at, hold)) in &model {
                let r = store.get_read(*id).unwrap();
                prop_assert!(r.is_some(), "read at {} (now {}) with hold {:?} was purged", at, clock.wall_ms, hold);
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
    let p = Policy {
        min_days: 10,
        max_days: 10,
        max_clock_lead_ms: 60 * DAY_MS,
        max_clock_lag_ms: 0,
        require_clock_sync: true,
        max_purge_percent: 100,
        large_purge_min_reads: 0,
    };
    store.put_reads((0..50).map(|i| synthetic_read(i, NOW0 - 20 * DAY_MS + i as i64, 0)).collect()).unwrap();
    store.put_read(synthetic_read(99, NOW0, 0)).unwrap();
    let clock = FixedClock { now: NOW0, synced: Some(true) };
    let settings = SweepSettings { batch_size: 5, batch_pause: Duration::ZERO };
    let stopped = sweep(&store, &p, &clock, settings, &cancelled(), None).unwrap();
    assert_eq!(stopped.outcome, SweepOutcome::Stopped);
    assert_eq!(store.count_reads(), 51);
    let done = sweep(&store, &p, &clock, settings, &CancellationToken::new(), None).unwrap();
    assert_eq!((done.outcome, done.purged, done.batches), (SweepOutcome::Completed, 50, 11));
    assert_eq!(store.count_reads(), 1);
}

/// Found by the property test: purging the newest read must not make the clock look far ahead
/// half-way through a sweep.
#[test]
fn purging_the_newest_read_does_not_stop_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&StoreOptions::at(dir.path().join("s"))).unwrap();
    let p = Policy {
        min_days: 26,
        max_days: 45,
        max_clock_lead_ms: 60 * DAY_MS,
        max_clock_lag_ms: 300_000,
        require_clock_sync: false,
        max_purge_percent: 100,
        large_purge_min_reads: 0,
    };
    store.put_read(synthetic_read(0, NOW0 - 100 * DAY_MS, 0)).unwrap();
    store.put_read(synthetic_read(1, NOW0 - 50 * DAY_MS, 0)).unwrap();
    let clock = FixedClock { now: NOW0, synced: None };
    let r = sweep(
        &store,
        &p,
        &clock,
        SweepSettings { batch_size: 1, batch_pause: Duration::ZERO },
        &CancellationToken::new(),
        None,
    )
    .unwrap();
    assert_eq!((r.outcome, r.purged), (SweepOutcome::Completed, 2));
}

/// The issue-15 finding: with the wall clock two years ahead, the first sweep was refused, but one read
/// stored under the new clock then vouched for it, and the next sweep deleted 195 of 196 reads; back on
/// the right clock every sweep was refused. Trusted time (persisted mark + monotonic time) ignores the
/// reads' stamps and survives a restart.
#[test]
fn a_forward_clock_jump_purges_nothing_early_even_after_reads_are_stored_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let opts = StoreOptions::at(dir.path().join("s"));
    let (store, _) = Store::open(&opts).unwrap();
    let p = Policy {
        min_days: 365,
        max_days: 365,
        max_clock_lead_ms: 30 * DAY_MS,
        max_clock_lag_ms: 300_000,
        require_clock_sync: false,
        max_purge_percent: 10,
        large_purge_min_reads: 0,
    };
    let settings = SweepSettings { batch_size: 16, batch_pause: Duration::ZERO };
    let stop = CancellationToken::new();
    // 196 reads over the last 364 days, and 4 past retention.
    let ages: Vec<i64> = (0..196).map(|i| i * 364 * DAY_MS / 196 + 60_000).collect();
    store.put_reads(ages.iter().enumerate().map(|(i, age)| synthetic_read(i as u64, NOW0 - age, 0)).collect()).unwrap();
    store.put_reads((0..4).map(|i| synthetic_read(500 + i, NOW0 - 400 * DAY_MS, 0)).collect()).unwrap();
    let mut clock = ManualClock { wall_ms: NOW0, mono_ms: 1_000, synced: None };
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert_eq!((r.outcome, r.purged), (SweepOutcome::Completed, 4));
    assert_eq!(store.count_reads(), 196);

    // The wall clock jumps two years ahead.
    clock.mono_ms += 10_000;
    clock.set_wall(NOW0 + 730 * DAY_MS);
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert!(
        matches!(r.outcome, SweepOutcome::Refused(ClockDistrust::FarAheadOfTrustedTime { ahead_days: 729..=730 })),
        "{:?}",
        r.outcome
    );
    // Ten seconds later a read is stored with the wrong clock, as the camera pipeline stamps them.
    clock.pass(10_000);
    store.put_read(synthetic_read(900, clock.wall_ms, 0)).unwrap();
    clock.pass(10_000);
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert!(matches!(r.outcome, SweepOutcome::Refused(_)), "{:?}", r.outcome);
    assert_eq!(
        store.count_reads(),
        197,
        "nothing unexpired may be purged after a read is stored under the jumped clock"
    );

    // A restart on the wrong clock: the monotonic clock starts again, the persisted mark holds.
    store.close().unwrap();
    let (store, _) = Store::open(&opts).unwrap();
    let mut clock = ManualClock { wall_ms: clock.wall_ms + 5_000, mono_ms: 0, synced: None };
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert!(matches!(r.outcome, SweepOutcome::Refused(_)), "{:?}", r.outcome);
    assert!((r.trusted_ms - NOW0).abs() < 60_000, "trusted time {} stays by the real time {NOW0}", r.trusted_ms);
    assert_eq!(store.count_reads(), 197);

    // Back on the right clock, sweeps run again (before the fix every one was refused for two years).
    clock.mono_ms += 5_000;
    clock.set_wall(NOW0 + 45_000);
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert_eq!((r.outcome, r.purged), (SweepOutcome::Completed, 0));
    // Ten days on, exactly the reads that passed 365 days go; the read stamped in the future stays.
    clock.pass(10 * DAY_MS);
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    let expected = ages.iter().filter(|a| NOW0 - **a < clock.wall_ms - 365 * DAY_MS).count() as u64;
    assert!(expected > 0);
    assert_eq!((r.outcome, r.purged), (SweepOutcome::Completed, expected));
    assert_eq!(store.count_reads(), 197 - expected as usize);
}

#[test]
fn a_purge_of_a_large_share_waits_for_confirmation_or_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&StoreOptions::at(dir.path().join("s"))).unwrap();
    let p = Policy {
        min_days: 10,
        max_days: 10,
        max_clock_lead_ms: 60 * DAY_MS,
        max_clock_lag_ms: 300_000,
        require_clock_sync: false,
        max_purge_percent: 10,
        large_purge_min_reads: 5,
    };
    let settings = SweepSettings { batch_size: 16, batch_pause: Duration::ZERO };
    let stop = CancellationToken::new();
    store.put_reads((0..100).map(|i| synthetic_read(i, NOW0 - i as i64 * 60_000, 0)).collect()).unwrap();
    store.put_reads((0..5).map(|i| synthetic_read(200 + i, NOW0 - 20 * DAY_MS, 0)).collect()).unwrap();
    let mut clock = ManualClock { wall_ms: NOW0, mono_ms: 0, synced: None };
    // Five of 105 (within large_purge_min_reads): an ordinary purge.
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert_eq!((r.outcome, r.purged), (SweepOutcome::Completed, 5));

    // 30 of 130 expire at once: held back.
    store.put_reads((0..30).map(|i| synthetic_read(300 + i, NOW0 - 20 * DAY_MS, 0)).collect()).unwrap();
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert_eq!(r.outcome, SweepOutcome::AwaitingConfirmation { expired: 30, stored: 130, left_ms: DAY_MS });
    assert_eq!(store.count_reads(), 130);
    clock.pass(DAY_MS / 2);
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert!(matches!(r.outcome, SweepOutcome::AwaitingConfirmation { .. }), "{:?}", r.outcome);
    // An operator confirms: it goes ahead, once.
    store.confirm_purge("sgt. b").unwrap();
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert_eq!((r.outcome, r.purged), (SweepOutcome::Completed, 30));
    assert_eq!(store.purge_confirmation().unwrap(), None);

    // Another large purge, unconfirmed, goes ahead after a day of trusted time.
    store.put_reads((0..40).map(|i| synthetic_read(400 + i, NOW0 - 20 * DAY_MS, 0)).collect()).unwrap();
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert!(matches!(r.outcome, SweepOutcome::AwaitingConfirmation { expired: 40, .. }), "{:?}", r.outcome);
    clock.pass(DAY_MS - 1);
    assert!(matches!(
        sweep(&store, &p, &clock, settings, &stop, None).unwrap().outcome,
        SweepOutcome::AwaitingConfirmation { .. }
    ));
    clock.pass(1);
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert_eq!((r.outcome, r.purged), (SweepOutcome::Completed, 40));

    // The wait is in running time: setting the clock ahead (a step within the lead, followed by trusted
    // time) does not cut it short.
    store.put_reads((0..40).map(|i| synthetic_read(500 + i, clock.wall_ms - 20 * DAY_MS, 0)).collect()).unwrap();
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert!(matches!(r.outcome, SweepOutcome::AwaitingConfirmation { .. }), "{:?}", r.outcome);
    clock.mono_ms += 1_000;
    clock.set_wall(clock.wall_ms + 2 * DAY_MS);
    let r = sweep(&store, &p, &clock, settings, &stop, None).unwrap();
    assert!(
        matches!(r.outcome, SweepOutcome::AwaitingConfirmation { .. }),
        "a clock step must not end the wait: {:?}",
        r.outcome
    );
}

/// The `reads` tree is keyed by capture time (UUIDv7), so it is the sweep's time-ordered index: a day's
/// purge in a year's store deletes that day's reads by capture time, whatever order they were written
/// in, keeps a held one, and examines nothing else (batches follow what expired, not the store's size).
/// The large-purge guard with its bounded count still holds back a purge of a large share.
#[test]
fn a_days_purge_walks_only_that_day_by_capture_time_and_keeps_holds() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(&StoreOptions::at(dir.path().join("s"))).unwrap();
    // The daemon's guard (10%), with a small floor so this store's day counts as a purge to judge.
    let p = Policy {
        min_days: 365,
        max_days: 365,
        max_clock_lead_ms: 30 * DAY_MS,
        max_clock_lag_ms: 300_000,
        require_clock_sync: true,
        max_purge_percent: 10,
        large_purge_min_reads: 2,
    };
    // Three reads a day for 366 days, written newest first; then a late upload of a read from the
    // oldest day (a box that was offline), written last.
    let per_day = 3;
    let at = |day: i64, k: i64| NOW0 - (365 - day) * DAY_MS - DAY_MS + 1 + k * 1000;
    for day in (0..366).rev() {
        store.put_reads((0..per_day).map(|k| synthetic_read((day * 10 + k) as u64, at(day, k), 0)).collect()).unwrap();
    }
    let late = store.put_read(synthetic_read(99_999, at(0, 50), 0)).unwrap();
    let total = 366 * per_day as usize + 1;
    // One read of the expiring day is held as evidence.
    let held = store.search(&polewatch::store::PlatePattern::parse("T0000001").unwrap(), 10).unwrap()[0].id;
    let req = HoldRequest {
        placed_by: "det. a".into(),
        case_number: "C-7".into(),
        reason: "evidence".into(),
        expires_at_ms: None,
    };
    store.place_hold(held, req, NOW0).unwrap();

    let clock = FixedClock { now: NOW0, synced: Some(true) };
    let batch = 2;
    let r = sweep(
        &store,
        &p,
        &clock,
        SweepSettings { batch_size: batch, batch_pause: Duration::ZERO },
        &CancellationToken::new(),
        None,
    )
    .unwrap();
    // Day 0 (4 reads with the late one) is past 365 days; day 1 is not.
    assert_eq!((r.outcome, r.purged, r.held_kept), (SweepOutcome::Completed, 3, 1));
    assert!(
        r.batches as usize <= 4 / batch + 1,
        "{} batches for 4 expired reads: the sweep walked past the cutoff",
        r.batches
    );
    assert_eq!(store.count_reads(), total - 3);
    assert!(
        store.get_read(late).unwrap().is_none(),
        "the late upload of an expired read is purged by its capture time"
    );
    assert!(store.get_read(held).unwrap().is_some(), "a held read is never purged");
    assert_eq!(store.oldest_read_ms().unwrap(), Some(at(0, 1)), "the held read is the oldest left");
    let second = store.search(&polewatch::store::PlatePattern::parse("T0000010").unwrap(), 10).unwrap();
    assert_eq!(second.len(), 1, "day 1 is kept");

    // Thirty days on: 90 more (8% of the store) go, the held read stays.
    let sweep_at = |now: i64| {
        sweep(
            &store,
            &p,
            &FixedClock { now, synced: Some(true) },
            SweepSettings { batch_size: batch, batch_pause: Duration::ZERO },
            &CancellationToken::new(),
            None,
        )
        .unwrap()
    };
    let r = sweep_at(NOW0 + 30 * DAY_MS);
    assert_eq!((r.outcome, r.purged, r.held_kept), (SweepOutcome::Completed, 90, 1));
    assert_eq!(store.count_reads(), total - 93);
    // 150 days on, 361 of 1006 (36%) would go at once: held back, with the exact store size reported.
    let r = sweep_at(NOW0 + 150 * DAY_MS);
    assert_eq!(
        r.outcome,
        SweepOutcome::AwaitingConfirmation { expired: 361, stored: total as u64 - 93, left_ms: DAY_MS }
    );
    assert_eq!(store.count_reads(), total - 93);
}

/// A token already cancelled: a shutdown that came before the sweep.
fn cancelled() -> CancellationToken {
    let t = CancellationToken::new();
    t.cancel();
    t
}
