//! Which decoded frames are analysed (R-IN2): one every `1 / analysis_fps` of stream time. Decided on the
//! decoder's output pad, before colour conversion, so frames that are not analysed are never converted.
//! Stream time (buffer timestamps) rather than the wall clock, so a file replayed faster than real time
//! or a burst after a network hiccup is sampled by what the camera saw, not by when it arrived.

pub struct Sampler {
    every_ns: u64,
    next_ns: Option<u64>,
}

impl Sampler {
    pub fn new(fps: f64) -> Sampler {
        let fps = if fps.is_finite() && fps > 0.0 { fps } else { 1.0 };
        Sampler { every_ns: (1e9 / fps) as u64, next_ns: None }
    }

    /// Whether the frame at `pts_ns` is analysed.
    pub fn take(&mut self, pts_ns: u64) -> bool {
        match self.next_ns {
            // A timestamp far behind the schedule is a new segment (replay, discontinuity): restart.
            Some(next) if pts_ns + 2 * self.every_ns >= next && pts_ns < next => false,
            Some(next) if pts_ns >= next && pts_ns - next < self.every_ns => {
                // On schedule: keep the grid, so jitter does not drift the rate down.
                self.next_ns = Some(next + self.every_ns);
                true
            }
            _ => {
                self.next_ns = Some(pts_ns + self.every_ns);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_analysis_rate_from_a_faster_stream() {
        let mut s = Sampler::new(5.0);
        // 15 fps for 3 s with ±3 ms jitter.
        let taken = (0..45u64).filter(|i| s.take(i * 66_666_667 + (i % 3) * 3_000_000)).count();
        assert_eq!(taken, 15);
    }

    #[test]
    fn a_slower_stream_passes_whole_and_a_jump_back_restarts() {
        let mut s = Sampler::new(10.0);
        assert!((0..10u64).all(|i| s.take(i * 500_000_000)));
        assert!(s.take(0), "a new segment starting at 0 is sampled at once");
        assert!(!s.take(10_000_000));
    }
}
