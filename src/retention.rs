//! Retention rules, free of I/O: when the clock may be trusted, which reads may be purged, which holds
//! still bind. The sweeper in `store::sweeper` applies them.

use crate::domain::Hold;

pub const DAY_MS: i64 = 86_400_000;

/// The retention settings in the units the rules use; `config` builds it from `[store.retention]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub min_days: u32,
    pub max_days: u32,
    pub max_clock_lead_ms: i64,
    pub max_clock_lag_ms: i64,
    pub require_clock_sync: bool,
    /// A sweep that would delete more than this share of the stored reads (percent) waits for an
    /// operator's confirmation or a day of trusted time. 100 turns the guard off.
    pub max_purge_percent: u32,
    /// ...unless it deletes at most this many reads: a small store's ordinary purge is not held up.
    pub large_purge_min_reads: u64,
}

/// Why the clock is not trusted for purging (purging on a wrong clock destroys records early).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockDistrust {
    #[error("the system clock is not synchronised (NTP/PTP)")]
    Unsynchronised,
    #[error(
        "the wall clock is {ahead_days} days ahead of the trusted time (last trusted time plus the time the daemon has been running)"
    )]
    FarAheadOfTrustedTime { ahead_days: i64 },
}

/// Trusted time: an instant that a wrong wall clock cannot move far. It is the high-water mark of time
/// the daemon trusted (persisted in the store) plus the monotonic time elapsed since, and follows the
/// wall clock forward only in steps of at most `max_clock_lead`, or when an operator confirms.
///
/// Reads are stamped with the wall clock, so judging the clock by the newest stored read lets one read
/// taken under a wrong clock vouch for that clock; trusted time does not look at reads at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustAnchor {
    /// Trusted time at `mono_ms`.
    pub trusted_ms: i64,
    /// The monotonic clock's reading when `trusted_ms` was taken.
    pub mono_ms: i64,
}

impl TrustAnchor {
    /// The first anchor of a process: the persisted high-water mark, or, in a store that has none
    /// (new, or written by an older polewatch), the newest stored read, or else the wall clock (an empty
    /// store has nothing a wrong clock could purge).
    pub fn start(persisted_ms: Option<i64>, newest_read_ms: Option<i64>, wall_ms: i64, mono_ms: i64) -> TrustAnchor {
        TrustAnchor { trusted_ms: persisted_ms.or(newest_read_ms).unwrap_or(wall_ms), mono_ms }
    }

    /// Trusted time now: the anchor plus the monotonic time since (never backwards).
    pub fn now(&self, mono_ms: i64) -> i64 {
        self.trusted_ms.saturating_add(mono_ms.saturating_sub(self.mono_ms).max(0))
    }

    /// Moves the anchor to now, following the wall clock forward when it is ahead by no more than the
    /// policy's lead (an NTP step, a box that was off for a while) or when `confirmed` by an operator.
    pub fn advance(&self, wall_ms: i64, mono_ms: i64, confirmed: bool, p: &Policy) -> TrustAnchor {
        let t = self.now(mono_ms);
        let follows = wall_ms > t && (confirmed || wall_ms - t <= p.max_clock_lead_ms);
        TrustAnchor { trusted_ms: if follows { wall_ms } else { t }, mono_ms }
    }
}

/// `synced`: what the kernel says of clock sync (None: could not tell, treated as unsynchronised when
/// the policy requires sync). `trusted_ms`: trusted time (see [`TrustAnchor`]), already advanced.
pub fn check_clock(wall_ms: i64, trusted_ms: i64, synced: Option<bool>, p: &Policy) -> Result<(), ClockDistrust> {
    if p.require_clock_sync && synced != Some(true) {
        return Err(ClockDistrust::Unsynchronised);
    }
    if wall_ms - trusted_ms > p.max_clock_lead_ms {
        return Err(ClockDistrust::FarAheadOfTrustedTime { ahead_days: (wall_ms - trusted_ms) / DAY_MS });
    }
    Ok(())
}

/// The instant a purge is judged at: the earlier of the wall clock and trusted time, so a read is
/// purged only when it is past retention under both, and a hold binds while either says it does.
pub fn purge_now_ms(wall_ms: i64, trusted_ms: i64) -> i64 {
    wall_ms.min(trusted_ms)
}

/// Whether purging `expired` of `total` stored reads in one sweep is large enough to need an
/// operator's confirmation (or a day's wait).
pub fn purge_is_large(expired: u64, total: u64, p: &Policy) -> bool {
    if p.max_purge_percent >= 100 || expired <= p.large_purge_min_reads {
        return false;
    }
    (expired as u128) * 100 > (total as u128) * p.max_purge_percent as u128
}

/// How many unexpired reads make a purge of `expired` reads small: the purge is large
/// ([`purge_is_large`]) exactly when fewer than this many reads past the cutoff are stored. None: it is
/// never large. The sweeper counts unexpired reads only up to this bound, so judging a purge costs in
/// proportion to what expires, not to the store's size.
pub fn unexpired_reads_for_small_purge(expired: u64, p: &Policy) -> Option<u64> {
    if p.max_purge_percent >= 100 || expired <= p.large_purge_min_reads {
        return None;
    }
    if p.max_purge_percent == 0 {
        return Some(u64::MAX);
    }
    // large ⇔ expired·100 > (expired + rest)·pct ⇔ rest·pct < expired·(100 − pct) ⇔ rest < ⌈expired·(100 − pct) / pct⌉
    let pct = p.max_purge_percent as u128;
    let bound = (expired as u128 * (100 - pct)).div_ceil(pct);
    Some(u64::try_from(bound).unwrap_or(u64::MAX))
}

/// Reads captured before this instant are past retention. Never later than `now - min_days`, whatever
/// `max_days` says.
pub fn purge_cutoff_ms(now_ms: i64, p: &Policy) -> i64 {
    let days = p.max_days.max(p.min_days) as i64;
    now_ms.saturating_sub(days.saturating_mul(DAY_MS))
}

/// A hold binds until released or past its expiry.
pub fn hold_binds(h: &Hold, now_ms: i64) -> bool {
    h.released.is_none() && h.expires_at_ms.is_none_or(|e| now_ms < e)
}

/// The whole rule for one read.
pub fn may_purge(captured_at_ms: i64, holds: &[Hold], now_ms: i64, p: &Policy) -> bool {
    captured_at_ms < purge_cutoff_ms(now_ms, p) && !holds.iter().any(|h| hold_binds(h, now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ReadId, Release};

    fn policy() -> Policy {
        Policy {
            min_days: 365,
            max_days: 400,
            max_clock_lead_ms: 30 * DAY_MS,
            max_clock_lag_ms: 300_000,
            require_clock_sync: true,
            max_purge_percent: 10,
            large_purge_min_reads: 100,
        }
    }

    fn hold(expires: Option<i64>, released: bool) -> Hold {
        Hold {
            id: uuid::Uuid::nil(),
            read_id: ReadId::new(0),
            placed_by: "det. a".into(),
            placed_at_ms: 0,
            case_number: "C-1".into(),
            reason: "evidence".into(),
            expires_at_ms: expires,
            released: released.then(|| Release { by: "sgt. b".into(), at_ms: 1, reason: "case closed".into() }),
        }
    }

    #[test]
    fn cutoff_never_undercuts_min_days() {
        let mut p = policy();
        let now = 1000 * DAY_MS;
        assert_eq!(purge_cutoff_ms(now, &p), now - 400 * DAY_MS);
        p.max_days = 10; // invalid config must still not shorten retention below min_days
        assert_eq!(purge_cutoff_ms(now, &p), now - 365 * DAY_MS);
    }

    #[test]
    fn holds_bind_until_released_or_expired() {
        let now = 500 * DAY_MS;
        assert!(hold_binds(&hold(None, false), now));
        assert!(hold_binds(&hold(Some(now + 1), false), now));
        assert!(!hold_binds(&hold(Some(now), false), now));
        assert!(!hold_binds(&hold(None, true), now));
        let p = policy();
        let old = now - 401 * DAY_MS;
        assert!(may_purge(old, &[], now, &p));
        assert!(!may_purge(old, &[hold(None, false)], now, &p));
        assert!(may_purge(old, &[hold(None, true), hold(Some(now - 1), false)], now, &p));
        assert!(!may_purge(now - 399 * DAY_MS, &[], now, &p));
    }

    #[test]
    fn clock_checks() {
        let p = policy();
        let now = 1000 * DAY_MS;
        assert_eq!(check_clock(now, now, Some(true), &p), Ok(()));
        assert_eq!(check_clock(now, now, None, &p), Err(ClockDistrust::Unsynchronised));
        assert_eq!(check_clock(now, now, Some(false), &p), Err(ClockDistrust::Unsynchronised));
        let relaxed = Policy { require_clock_sync: false, ..p };
        assert_eq!(check_clock(now, now, None, &relaxed), Ok(()));
        // Behind trusted time: no refusal, the purge is judged at the earlier instant.
        assert_eq!(check_clock(now - 400 * DAY_MS, now, Some(true), &p), Ok(()));
        assert_eq!(purge_now_ms(now - 400 * DAY_MS, now), now - 400 * DAY_MS);
        assert_eq!(check_clock(now + 30 * DAY_MS, now, Some(true), &p), Ok(()));
        assert_eq!(
            check_clock(now + 31 * DAY_MS, now, Some(true), &p),
            Err(ClockDistrust::FarAheadOfTrustedTime { ahead_days: 31 })
        );
    }

    #[test]
    fn trusted_time_follows_small_steps_and_ignores_jumps() {
        let p = policy();
        let t0 = 1000 * DAY_MS;
        let a = TrustAnchor::start(Some(t0), Some(t0 + 700 * DAY_MS), t0 + 5, 50);
        assert_eq!(a.trusted_ms, t0, "the persisted mark wins over a read stamped by a wrong clock");
        assert_eq!(a.now(50 + 10_000), t0 + 10_000);
        assert_eq!(a.now(10), t0, "never backwards");
        // A two-year jump is not followed; monotonic time still is.
        let b = a.advance(t0 + 730 * DAY_MS, 50 + 10_000, false, &p);
        assert_eq!(b.trusted_ms, t0 + 10_000);
        // A step within the lead is (NTP correction, a box that was off a while).
        let c = b.advance(t0 + 20 * DAY_MS, 50 + 20_000, false, &p);
        assert_eq!(c.trusted_ms, t0 + 20 * DAY_MS);
        // The wall clock behind trusted time does not pull it back.
        let d = c.advance(t0, 50 + 30_000, false, &p);
        assert_eq!(d.trusted_ms, t0 + 20 * DAY_MS + 10_000);
        // An operator's confirmation follows any forward step.
        assert_eq!(b.advance(t0 + 730 * DAY_MS, 50 + 10_000, true, &p).trusted_ms, t0 + 730 * DAY_MS);
        assert_eq!(TrustAnchor::start(None, None, t0, 0).trusted_ms, t0);
        assert_eq!(TrustAnchor::start(None, Some(t0 - 5), t0, 0).trusted_ms, t0 - 5);
    }

    #[test]
    fn large_purges_are_flagged() {
        let p = policy();
        assert!(!purge_is_large(100, 100, &p), "at most large_purge_min_reads is never large");
        assert!(purge_is_large(101, 1000, &p));
        assert!(!purge_is_large(100, 1000, &p));
        assert!(!purge_is_large(150, 1500, &p));
        assert!(purge_is_large(151, 1500, &p));
        assert!(!purge_is_large(10_000, 10_000, &Policy { max_purge_percent: 100, ..p }));
    }

    #[test]
    fn the_bounded_count_decides_as_the_full_count_does() {
        // Whatever the share and the counts, counting unexpired reads up to the bound gives the same
        // answer as counting the whole store.
        for pct in [0, 1, 3, 10, 33, 50, 99, 100] {
            let p = Policy { max_purge_percent: pct, large_purge_min_reads: 5, ..policy() };
            for expired in [0, 5, 6, 7, 10, 99, 100, 101, 1000, 2733] {
                for rest in [0, 1, 8, 9, 10, 89, 90, 91, 899, 900, 901, 24_597, 24_598, 24_599, 10_000_000] {
                    let large = purge_is_large(expired, expired + rest, &p);
                    let bounded = match unexpired_reads_for_small_purge(expired, &p) {
                        None => false,
                        Some(bound) => rest.min(bound) < bound,
                    };
                    assert_eq!(bounded, large, "pct {pct}, expired {expired}, rest {rest}");
                }
            }
        }
        // A day of a 10^7-read year at the default 10%: at most nine days' worth is counted.
        let p = Policy { max_purge_percent: 10, large_purge_min_reads: 1000, ..policy() };
        assert_eq!(unexpired_reads_for_small_purge(27_323, &p), Some(245_907));
        assert_eq!(unexpired_reads_for_small_purge(1000, &p), None);
    }
}
