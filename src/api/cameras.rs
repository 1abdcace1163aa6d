//! The installer's Cameras page: each camera's state and rates, and a verdict in plain words (pure; the
//! route samples the cameras). Plate heights and lighting are judged on the snapshot when aiming
//! ([`super::aim`]).

use serde::Serialize;
use std::sync::atomic::Ordering;

/// One camera's counters at one instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    pub id: String,
    pub state: String,
    pub streaming: bool,
    pub decoder: Option<String>,
    pub frames_decoded: u64,
    pub frames_sampled: u64,
    pub frames_gated: u64,
    /// Times the camera started streaming (the first connection included).
    pub connects: u64,
    pub analysis_fps: f64,
    pub motion_gate: bool,
}

/// Rates between two samples (None for the first).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Rates {
    pub decoded_fps: f64,
    pub analysed_fps: f64,
    /// Frames skipped by the motion gate per second.
    pub gated_fps: f64,
    /// Seconds since the decoded count last grew.
    pub since_frame_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    #[serde(flatten)]
    pub sample: Sample,
    pub reconnects: u64,
    pub rates: Option<Rates>,
    pub verdict: String,
}

pub fn sample(c: &crate::ingest::camera::Camera) -> Sample {
    let st = c.stats();
    let state = c.state();
    Sample {
        id: c.id.to_string(),
        state: state.to_string(),
        streaming: matches!(state, crate::ingest::CameraState::Streaming),
        decoder: c.decoder().map(|d| d.to_string()),
        frames_decoded: st.frames_decoded.load(Ordering::Relaxed),
        frames_sampled: st.frames_sampled.load(Ordering::Relaxed),
        frames_gated: st.frames_gated.load(Ordering::Relaxed),
        connects: st.connects.load(Ordering::Relaxed),
        analysis_fps: c.config().analysis_fps,
        motion_gate: c.config().motion_gate,
    }
}

/// Rates from `before` to `now` over `secs`; `since_frame_s` carries on from the last rates when no new
/// frame came.
pub fn rates(before: &Sample, now: &Sample, secs: f64, last: Option<Rates>) -> Rates {
    let d = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / secs.max(1e-3);
    let decoded = d(before.frames_decoded, now.frames_decoded);
    let sampled = d(before.frames_sampled, now.frames_sampled);
    let gated = d(before.frames_gated, now.frames_gated);
    let since =
        if now.frames_decoded > before.frames_decoded { 0.0 } else { last.map_or(0.0, |l| l.since_frame_s) + secs };
    let r1 = |x: f64| (x * 10.0).round() / 10.0;
    Rates {
        decoded_fps: r1(decoded),
        analysed_fps: r1(sampled - gated),
        gated_fps: r1(gated),
        since_frame_s: r1(since),
    }
}

/// What an installer on a ladder needs to hear, in plain words.
pub fn verdict(s: &Sample, r: Option<&Rates>) -> String {
    if s.state == "disabled" {
        return "disabled in the configuration".into();
    }
    if s.state == "connecting" {
        return "connecting to the camera…".into();
    }
    if !s.streaming {
        return format!("not streaming ({}): check the address, the credentials and the network", s.state);
    }
    let Some(r) = r else {
        return "streaming; measuring…".into();
    };
    if r.since_frame_s >= 3.0 {
        return format!("no frame for {:.0} s: the camera or the network stalls", r.since_frame_s);
    }
    if s.motion_gate && s.frames_sampled >= 20 && s.frames_gated == s.frames_sampled {
        return "motion gate never opens: nothing moves in the region of interest, or motion_threshold is too high"
            .into();
    }
    let sampled = r.analysed_fps + r.gated_fps;
    if s.analysis_fps > 0.0 && sampled < 0.5 * s.analysis_fps.min(r.decoded_fps.max(0.1)) {
        return format!(
            "only {sampled:.1} frames a second reach the analysis of the {:.1} configured: the stream is slower or the box cannot keep up",
            s.analysis_fps
        );
    }
    format!(
        "streaming {:.1} fps, analysing {:.1} fps{}; Aim shows the snapshot with plate heights and lighting",
        r.decoded_fps,
        r.analysed_fps,
        if s.motion_gate { format!(" ({:.1} skipped by the motion gate)", r.gated_fps) } else { String::new() }
    )
}

pub fn view(s: Sample, r: Option<Rates>) -> View {
    let verdict = verdict(&s, r.as_ref());
    View { reconnects: s.connects.saturating_sub(1), rates: r, verdict, sample: s }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(state: &str, decoded: u64, sampled: u64, gated: u64) -> Sample {
        Sample {
            id: "c".into(),
            state: state.into(),
            streaming: state == "streaming",
            decoder: None,
            frames_decoded: decoded,
            frames_sampled: sampled,
            frames_gated: gated,
            connects: 1,
            analysis_fps: 5.0,
            motion_gate: true,
        }
    }

    #[test]
    fn verdicts_say_what_is_wrong_in_plain_words() {
        assert!(verdict(&s("backoff(failed-auth, attempt 2)", 0, 0, 0), None).contains("credentials"));
        let (a, b) = (s("streaming", 100, 50, 10), s("streaming", 150, 60, 12));
        let r = rates(&a, &b, 2.0, None);
        assert_eq!((r.decoded_fps, r.analysed_fps, r.gated_fps, r.since_frame_s), (25.0, 4.0, 1.0, 0.0));
        assert!(
            verdict(&b, Some(&r)).starts_with("streaming 25.0 fps, analysing 4.0 fps"),
            "{}",
            verdict(&b, Some(&r))
        );
        let stalled = rates(&b, &b, 2.0, Some(rates(&b, &b, 2.0, Some(r))));
        assert_eq!(stalled.since_frame_s, 4.0);
        assert!(verdict(&b, Some(&stalled)).starts_with("no frame for 4 s"));
        let (a, b) = (s("streaming", 100, 20, 20), s("streaming", 150, 30, 30));
        assert!(verdict(&b, Some(&rates(&a, &b, 2.0, None))).contains("motion gate never opens"));
        let (a, b) = (s("streaming", 100, 20, 0), s("streaming", 150, 21, 0));
        assert!(verdict(&b, Some(&rates(&a, &b, 2.0, None))).contains("cannot keep up"));
        assert_eq!(view(s("streaming", 1, 1, 0), None).reconnects, 0);
    }
}
