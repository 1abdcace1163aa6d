//! Reconnect schedule of a camera (R-IN3): the first retry after 250 ms, each wait then 1.5 times the
//! last, capped at 60 s, every wait moved by up to ±20 % at random (so cameras that failed together do
//! not retry in step). A camera that drops its TCP session or restarts its server is retried three times
//! within the first 1.2 s and no wait is longer than a second for the first 2 s, so it is back within
//! about a second of being reachable again; a dead camera settles at
//! one attempt a minute (from the 15th attempt, some 2.5 minutes in) and never spins. A camera that streamed
//! starts again from the first step.

use std::time::Duration;

/// The first wait.
pub const FIRST: Duration = Duration::from_millis(250);
/// Each wait is this many times the last.
pub const GROWTH: f64 = 1.5;
/// The longest wait.
pub const CAP: Duration = Duration::from_secs(60);
/// Each wait is moved by up to this share of itself, either way.
pub const JITTER: f64 = 0.2;

/// The wait before attempt `attempt + 1` (attempt 0 follows the first failure), without jitter.
pub fn base(attempt: u32) -> Duration {
    let secs = FIRST.as_secs_f64() * GROWTH.powi(attempt.min(64) as i32);
    Duration::from_secs_f64(secs.min(CAP.as_secs_f64()))
}

/// The wait with jitter; `unit` is a random number in `0..1` (0.5: none). Never above [`CAP`].
pub fn delay(attempt: u32, unit: f64) -> Duration {
    let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.5 };
    base(attempt).mul_f64(1.0 + JITTER * (2.0 * unit - 1.0)).min(CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_fast_grows_and_is_capped() {
        let ms: Vec<u128> = (0..6).map(|a| base(a).as_millis()).collect();
        assert_eq!(ms, [250, 375, 562, 843, 1265, 1898]);
        // Three retries within the first 1.2 s of an outage (250 + 375 + 562 ms, jitter aside), and no
        // wait over a second until some 2 s in.
        assert!((0..3).map(base).sum::<Duration>() < Duration::from_millis(1200));
        assert!(base(3) < Duration::from_secs(1));
        assert_eq!(base(14), CAP);
        assert!(base(13) < CAP);
        assert_eq!(base(u32::MAX), CAP);
        assert_eq!(delay(u32::MAX, 1.0), CAP, "jitter never goes past the cap");
    }

    #[test]
    fn jitter_stays_within_a_fifth_either_way() {
        for a in 0..14 {
            let b = base(a).as_secs_f64();
            assert!((delay(a, 0.0).as_secs_f64() - 0.8 * b).abs() < 1e-6);
            assert!((delay(a, 1.0).as_secs_f64() - 1.2 * b).abs() < 1e-6);
            assert_eq!(delay(a, 0.5), base(a));
        }
        assert_eq!(delay(0, f64::NAN), base(0));
    }
}
