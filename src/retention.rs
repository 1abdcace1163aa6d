//! Retention rules, free of I/O: when the clock may be trusted, which reads may be purged, which holds
//! still bind. The sweeper in `store::sweeper` applies them.

use crate::config::Retention as RetentionConfig;
use crate::store::model::Hold;

pub const DAY_MS: i64 = 86_400_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub min_days: u32,
    pub max_days: u32,
    pub max_clock_lead_ms: i64,
    pub max_clock_lag_ms: i64,
    pub require_clock_sync: bool,
}

impl From<&RetentionConfig> for Policy {
    fn from(c: &RetentionConfig) -> Policy {
        Policy {
            min_days: c.min_days,
            max_days: c.max_days,
            max_clock_lead_ms: c.max_clock_lead_days as i64 * DAY_MS,
            max_clock_lag_ms: c.max_clock_lag_s as i64 * 1000,
            require_clock_sync: c.require_clock_sync,
        }
    }
}

/// Why the clock is not trusted for purging (purging on a wrong clock destroys records early).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockDistrust {
    #[error("the system clock is not synchronised (NTP/PTP)")]
    Unsynchronised,
    #[error("the clock is {behind_ms} ms behind the newest stored read")]
    BehindNewestRead { behind_ms: i64 },
    #[error("the clock is {ahead_days} days ahead of the newest stored read")]
    FarAheadOfNewestRead { ahead_days: i64 },
}

/// `synced`: what the kernel says of clock sync (None: could not tell, treated as unsynchronised when
/// the policy requires sync). `newest_ms`: capture time of the newest stored read, if any.
pub fn check_clock(now_ms: i64, newest_ms: Option<i64>, synced: Option<bool>, p: &Policy) -> Result<(), ClockDistrust> {
    if p.require_clock_sync && synced != Some(true) {
        return Err(ClockDistrust::Unsynchronised);
    }
    if let Some(newest) = newest_ms {
        if now_ms < newest - p.max_clock_lag_ms {
            return Err(ClockDistrust::BehindNewestRead { behind_ms: newest - now_ms });
        }
        if now_ms - newest > p.max_clock_lead_ms {
            return Err(ClockDistrust::FarAheadOfNewestRead { ahead_days: (now_ms - newest) / DAY_MS });
        }
    }
    Ok(())
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
    use crate::store::model::{ReadId, Release};

    fn policy() -> Policy {
        Policy { min_days: 365, max_days: 400, max_clock_lead_ms: 30 * DAY_MS, max_clock_lag_ms: 300_000, require_clock_sync: true }
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
        assert_eq!(check_clock(now, None, Some(true), &p), Ok(()));
        assert_eq!(check_clock(now, None, None, &p), Err(ClockDistrust::Unsynchronised));
        assert_eq!(check_clock(now, None, Some(false), &p), Err(ClockDistrust::Unsynchronised));
        let relaxed = Policy { require_clock_sync: false, ..p };
        assert_eq!(check_clock(now, None, None, &relaxed), Ok(()));
        assert_eq!(check_clock(now, Some(now + 300_000), Some(true), &p), Ok(()));
        assert_eq!(
            check_clock(now, Some(now + 300_001), Some(true), &p),
            Err(ClockDistrust::BehindNewestRead { behind_ms: 300_001 })
        );
        assert_eq!(check_clock(now, Some(now - 30 * DAY_MS), Some(true), &p), Ok(()));
        assert_eq!(
            check_clock(now, Some(now - 31 * DAY_MS), Some(true), &p),
            Err(ClockDistrust::FarAheadOfNewestRead { ahead_days: 31 })
        );
    }
}
