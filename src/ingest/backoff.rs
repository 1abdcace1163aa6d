//! Reconnect schedule of a camera (R-IN3): 1 s five times, 5 s five times, 10 s ten times, then 60 s,
//! forever. A camera that streamed for a while starts again from the beginning.

use std::time::Duration;

pub fn delay(attempt: u32) -> Duration {
    Duration::from_secs(match attempt {
        0..=4 => 1,
        5..=9 => 5,
        10..=19 => 10,
        _ => 60,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_the_requirement() {
        let secs: Vec<u64> = (0..22).map(|a| delay(a).as_secs()).collect();
        assert_eq!(secs, [1, 1, 1, 1, 1, 5, 5, 5, 5, 5, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 60, 60]);
        assert_eq!(delay(u32::MAX).as_secs(), 60);
    }
}
