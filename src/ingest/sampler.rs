//! Which decoded frames are analysed (R-IN2): one per slot of `1 / analysis_fps` of stream time, the
//! frame nearest each slot. Decided on the decoder's output pad, before colour conversion, so frames that
//! are not analysed are never converted. Stream time (buffer timestamps) rather than the wall clock, so a
//! file replayed faster than real time or a burst after a network hiccup is sampled by what the camera
//! saw, not by when it arrived.
//!
//! Slots lie on a fixed grid (jitter never drifts it). A frame is taken for the next slot once it lies
//! within half a source frame before that slot, or at or after it: the frame after it would then be at
//! least as far past the slot, so the frame taken is the nearest one that can be known without waiting.
//! A slot is never skipped because its frame came a little late; the grid restarts only after a gap of
//! more than a slot (or a jump back in time: a new segment). The source interval is learned from the
//! timestamps (a moving average of the recent frame-to-frame steps), so jitter of ±20 ms on an RTSP
//! stream neither skips a slot nor takes two frames for one.

/// Weight of the newest step in the moving average of the source's frame interval.
const STEP_WEIGHT: f64 = 0.1;

pub struct Sampler {
    every_ns: u64,
    /// The slot the next analysed frame stands for.
    next_ns: Option<u64>,
    /// The previous frame's timestamp, for the source interval.
    last_pts: Option<u64>,
    /// Moving average of the source's frame interval (0: not known yet).
    interval_ns: f64,
}

impl Sampler {
    pub fn new(fps: f64) -> Sampler {
        let fps = if fps.is_finite() && fps > 0.0 { fps } else { 1.0 };
        Sampler { every_ns: (1e9 / fps) as u64, next_ns: None, last_pts: None, interval_ns: 0.0 }
    }

    /// Half the source's frame interval as learned so far, never more than half a slot.
    fn half_frame(&self) -> u64 {
        ((self.interval_ns / 2.0) as u64).min(self.every_ns / 2)
    }

    fn learn(&mut self, pts_ns: u64) {
        if let Some(last) = self.last_pts {
            // Steps from gaps, bursts and jumps back are not the source's rate.
            if pts_ns > last && pts_ns - last <= 4 * self.every_ns.max(250_000_000) {
                let step = (pts_ns - last) as f64;
                self.interval_ns = if self.interval_ns == 0.0 {
                    step
                } else {
                    self.interval_ns + STEP_WEIGHT * (step - self.interval_ns)
                };
            }
        }
        self.last_pts = Some(pts_ns);
    }

    /// Whether the frame at `pts_ns` is analysed.
    pub fn take(&mut self, pts_ns: u64) -> bool {
        self.learn(pts_ns);
        let half = self.half_frame();
        let every = self.every_ns;
        let next = match self.next_ns {
            // A timestamp far behind the schedule is a new segment (replay, discontinuity): restart.
            Some(next) if pts_ns + 2 * every < next => None,
            n => n,
        };
        let Some(next) = next else {
            self.next_ns = Some(pts_ns + every);
            return true;
        };
        if pts_ns + half < next {
            // Not yet within half a source frame of the slot: a later frame is nearer.
            return false;
        }
        // Up to one slot of lag is kept (a late frame's slot is still served, so jitter costs no slot);
        // after a longer gap the slots without frames are given up, on the same grid.
        let behind = pts_ns.saturating_sub(next) / every;
        let next = if behind >= 2 { next + (behind - 1) * every } else { next };
        self.next_ns = Some(next + every);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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

    #[test]
    fn ten_of_fifteen_with_jittered_timestamps() {
        // A pattern the old sampler (take only at or after the slot, restart when a slot late) turned
        // into 5 analysed fps: 15 fps, timestamps moved by +20, +11, -17 ms in turn.
        let jitter = [20i64, 11, -17];
        let mut s = Sampler::new(10.0);
        let taken = (0..900i64)
            .filter(|&i| s.take((1_000_000_000 + i * 66_666_667 + jitter[i as usize % 3] * 1_000_000) as u64))
            .count();
        assert!((594..=606).contains(&taken), "{taken} frames of 900 (60 s) analysed, want 600");
    }

    /// Frames of a `source_fps` stream over `seconds`, each timestamp moved by up to `jitter_ms` either
    /// way, with the frames in `gaps` (start index, length) missing. Sorted, as a decoder delivers them.
    fn stream(source_fps: f64, seconds: f64, jitter: &[i64], gaps: &[(usize, usize)]) -> (Vec<u64>, f64) {
        let n = (source_fps * seconds) as usize;
        let period = 1e9 / source_fps;
        let mut missing = 0.0;
        let mut pts = Vec::new();
        for i in 0..n {
            if gaps.iter().any(|&(at, len)| i >= at && i < at + len) {
                missing += 1.0;
                continue;
            }
            let t = 1_000_000_000.0 + i as f64 * period + jitter[i % jitter.len()] as f64 * 1e6;
            pts.push(t as u64);
        }
        pts.sort_unstable();
        (pts, missing / source_fps)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// The analysed rate is within 5% of the target, or the whole source where it is slower, for
        /// jittered timestamps and occasional gaps (the seconds a gap lasts are not counted).
        #[test]
        fn analysed_rate_is_the_target_on_jittered_streams(
            source_fps in prop::sample::select(vec![12.5f64, 15.0, 25.0, 30.0]),
            target in prop::sample::select(vec![5.0f64, 8.0, 10.0, 12.0, 15.0]),
            // Short patterns repeat (as an encoder's frame sizes do), long ones look random.
            jitter in prop_oneof![prop::collection::vec(-20i64..=20, 1..8), prop::collection::vec(-20i64..=20, 8..200)],
            gaps in prop::collection::vec((0usize..1500, 1usize..20), 0..3),
        ) {
            let seconds = 60.0;
            let (pts, lost_s) = stream(source_fps, seconds, &jitter, &gaps);
            let mut s = Sampler::new(target);
            let taken = pts.iter().filter(|&&p| s.take(p)).count() as f64;
            let expected_fps = target.min(source_fps);
            let rate = taken / (seconds - lost_s);
            prop_assert!(
                (rate - expected_fps).abs() <= 0.05 * expected_fps,
                "{source_fps} fps source, target {target}: analysed {rate:.2} fps ({taken} frames)"
            );
        }
    }
}
