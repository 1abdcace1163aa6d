//! Whether the supervisor pets the systemd watchdog (`WATCHDOG=1`) on this tick. Pure: the supervisor
//! gathers the facts (is the analysis thread alive, each running camera's decoded-frame count, a
//! monotonic clock) and acts on the [`Verdict`].
//!
//! **Rule.** Pet when the frame-analysis thread is alive and either no camera runs or at least one has
//! delivered a frame within the watchdog window. Withhold when the analysis thread has ended (nothing
//! would read the cameras' frames) or when every running camera has been silent for longer than the
//! window; systemd then restarts the daemon. A camera's silence counts from its last frame, or from
//! when the supervisor first saw it (a camera that never delivers is silent from its start).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What the supervisor does with the watchdog on this tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pet,
    /// The frame-analysis thread has ended.
    AnalysisDead,
    /// Every running camera has been silent for longer than the window; `shortest` is the least silent.
    CamerasSilent {
        cameras: usize,
        shortest: Duration,
    },
}

/// The verdict from whether the analysis thread is alive, each running camera's silence and the
/// watchdog window (systemd's `WatchdogSec`).
pub fn decide(analysis_alive: bool, silences: &[Duration], window: Duration) -> Verdict {
    if !analysis_alive {
        return Verdict::AnalysisDead;
    }
    match silences.iter().min() {
        None => Verdict::Pet,
        Some(&s) if s <= window => Verdict::Pet,
        Some(&s) => Verdict::CamerasSilent { cameras: silences.len(), shortest: s },
    }
}

/// Each camera's decoded-frame count and when it last moved, so that its silence can be told.
#[derive(Debug, Default)]
pub struct CameraSilence {
    /// Camera id -> (frames decoded, monotonic ms when that count was first seen).
    seen: HashMap<Arc<str>, (u64, u64)>,
}

impl CameraSilence {
    /// Records each running camera's frame count at `now_ms` (a monotonic clock, ms) and returns each
    /// one's silence, in the order given. A camera not seen before (new, or started by a reload) is
    /// silent from now; a camera no longer listed is forgotten. A count that changed in either
    /// direction (a restarted camera counts from 0 again) starts its silence anew.
    pub fn observe(&mut self, now_ms: u64, frames: &[(Arc<str>, u64)]) -> Vec<Duration> {
        self.seen.retain(|id, _| frames.iter().any(|(f, _)| f == id));
        frames
            .iter()
            .map(|(id, n)| {
                let entry = self.seen.entry(id.clone()).or_insert((*n, now_ms));
                if entry.0 != *n {
                    *entry = (*n, now_ms);
                }
                Duration::from_millis(now_ms.saturating_sub(entry.1))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(30);

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn a_live_analysis_thread_with_no_cameras_is_petted() {
        assert_eq!(decide(true, &[], WINDOW), Verdict::Pet);
    }

    #[test]
    fn one_camera_with_a_recent_frame_is_enough_to_pet() {
        assert_eq!(decide(true, &[s(0)], WINDOW), Verdict::Pet);
        assert_eq!(decide(true, &[s(300), s(29), s(3600)], WINDOW), Verdict::Pet);
        // Silent for exactly the window still counts as heard within it.
        assert_eq!(decide(true, &[WINDOW], WINDOW), Verdict::Pet);
    }

    #[test]
    fn a_dead_analysis_thread_is_never_petted_whatever_the_cameras_do() {
        assert_eq!(decide(false, &[], WINDOW), Verdict::AnalysisDead);
        assert_eq!(decide(false, &[s(0), s(1)], WINDOW), Verdict::AnalysisDead);
    }

    #[test]
    fn cameras_all_silent_longer_than_the_window_are_not_petted() {
        assert_eq!(decide(true, &[s(31)], WINDOW), Verdict::CamerasSilent { cameras: 1, shortest: s(31) });
        assert_eq!(
            decide(true, &[s(600), s(45), s(31)], WINDOW),
            Verdict::CamerasSilent { cameras: 3, shortest: s(31) }
        );
    }

    #[test]
    fn silence_counts_from_the_last_frame_or_from_when_the_camera_was_first_seen() {
        let mut c = CameraSilence::default();
        let (gate, lane): (Arc<str>, Arc<str>) = ("gate".into(), "lane2".into());
        // First seen at t=1000 ms: silent from then, whatever its count.
        assert_eq!(c.observe(1_000, &[(gate.clone(), 0)]), vec![s(0)]);
        assert_eq!(c.observe(16_000, &[(gate.clone(), 0)]), vec![s(15)]);
        // A frame (the count moved) resets its silence; no frame lets it grow.
        assert_eq!(c.observe(31_000, &[(gate.clone(), 7)]), vec![s(0)]);
        assert_eq!(c.observe(46_000, &[(gate.clone(), 7), (lane.clone(), 0)]), vec![s(15), s(0)]);
        assert_eq!(c.observe(77_000, &[(gate.clone(), 7), (lane.clone(), 0)]), vec![s(46), s(31)]);
        let silences = c.observe(78_000, &[(gate.clone(), 7), (lane.clone(), 0)]);
        assert_eq!(decide(true, &silences, WINDOW), Verdict::CamerasSilent { cameras: 2, shortest: s(32) });
        // Removed by a reload, then back (restarted: its count begins at 0 again): silent from its return.
        assert_eq!(c.observe(80_000, &[(lane.clone(), 0)]), vec![s(34)]);
        assert_eq!(c.observe(90_000, &[(gate.clone(), 0), (lane.clone(), 0)]), vec![s(0), s(44)]);
        // A restarted camera whose count fell back below the last one seen also starts anew.
        assert_eq!(c.observe(95_000, &[(gate.clone(), 0), (lane.clone(), 0)]), vec![s(5), s(49)]);
        let mut d = CameraSilence::default();
        d.observe(0, &[(gate.clone(), 500)]);
        assert_eq!(d.observe(60_000, &[(gate.clone(), 3)]), vec![s(0)]);
    }
}
