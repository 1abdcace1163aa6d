//! The Cameras page's live snapshot (issue 18 §1): the analysis thread hands each analysed frame here with
//! the boxes it found; the frame itself is kept only while someone is aiming (a snapshot was asked for in
//! the last [`WATCH_MS`]), and then it is moved, not copied. Plate heights are kept for
//! [`RECENT_MS`] whether or not anyone watches (a few bytes a plate), for the verdict
//! "no plates in the last 10 minutes" and the heights of the last cars when none is in view.

use crate::ingest::Frame;
use crate::recognize::{BoxF, FrameResult};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// A snapshot is kept this long after the last request for one.
pub const WATCH_MS: i64 = 10_000;
/// A frame with plates is shown instead of the latest frame while it is younger than this.
pub const PLATES_SHOWN_MS: i64 = 5_000;
const HEIGHTS_KEPT: usize = 2_000;
/// How far back plate heights are kept.
pub const RECENT_MS: i64 = 10 * 60_000;

/// A box on the snapshot: the OCR text when it read as a plate.
#[derive(Debug, Clone, PartialEq)]
pub struct ShotBox {
    pub bbox: BoxF,
    pub text: Option<String>,
    pub confidence: f32,
}

/// One analysed frame as the recognizer saw it (rotate it by `rotate_deg` to match the boxes).
#[derive(Debug)]
pub struct Shot {
    pub frame: Frame,
    pub rotate_deg: f64,
    pub boxes: Vec<ShotBox>,
}

#[derive(Debug, Default)]
struct PerCamera {
    latest: Option<Arc<Shot>>,
    with_plates: Option<Arc<Shot>>,
    /// (capture time ms, plate height px) of plates read, oldest first.
    heights: VecDeque<(i64, f32)>,
}

#[derive(Debug)]
pub struct Snapshots {
    cameras: Mutex<HashMap<String, PerCamera>>,
    watched_until_ms: AtomicI64,
    started_ms: i64,
}

impl Default for Snapshots {
    fn default() -> Snapshots {
        Snapshots {
            cameras: Mutex::default(),
            watched_until_ms: AtomicI64::new(0),
            started_ms: jiff::Timestamp::now().as_millisecond(),
        }
    }
}

/// The boxes of a frame's result: the reads with their text, then the boxes that did not read.
pub fn boxes(r: &FrameResult) -> Vec<ShotBox> {
    let read = r.reads.iter().map(|p| ShotBox { bbox: p.bbox, text: Some(p.text.clone()), confidence: p.confidence });
    read.chain(r.rejected.iter().map(|b| ShotBox { bbox: *b, text: None, confidence: 0.0 })).collect()
}

/// What the page gets for one camera.
#[derive(Debug, Clone)]
pub struct View {
    /// The frame shown: the newest with plates while it is recent, else the newest.
    pub shot: Option<Arc<Shot>>,
    /// Heights of plates read in the last `recent_ms`, oldest first.
    pub recent_heights: Vec<f32>,
    /// Since the analysis began watching (the daemon's start).
    pub watched_ms: i64,
}

impl Snapshots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PerCamera>> {
        self.cameras.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Someone is aiming: keep frames for the next [`WATCH_MS`].
    pub fn watch(&self, now_ms: i64) {
        self.watched_until_ms.fetch_max(now_ms + WATCH_MS, Ordering::Relaxed);
    }

    pub fn watched(&self, now_ms: i64) -> bool {
        self.watched_until_ms.load(Ordering::Relaxed) > now_ms
    }

    /// The analysis thread's hand-over, after the frame's reads went on: heights always, the frame while
    /// watched (dropped at once otherwise, as before).
    pub fn record(&self, frame: Frame, rotate_deg: f64, boxes: Vec<ShotBox>) {
        let recent_ms = RECENT_MS;
        let at = frame.captured_at_ms;
        let keep = self.watched(jiff::Timestamp::now().as_millisecond());
        let mut cams = self.lock();
        let cam = cams.entry(frame.camera.to_string()).or_default();
        for b in boxes.iter().filter(|b| b.text.is_some()) {
            cam.heights.push_back((at, b.bbox.h));
        }
        while cam.heights.front().is_some_and(|(t, _)| *t < at - recent_ms) || cam.heights.len() > HEIGHTS_KEPT {
            cam.heights.pop_front();
        }
        if !keep {
            cam.latest = None;
            cam.with_plates = None;
            return;
        }
        let plates = boxes.iter().any(|b| b.text.is_some());
        let shot = Arc::new(Shot { frame, rotate_deg, boxes });
        if plates {
            cam.with_plates = Some(shot.clone());
        }
        cam.latest = Some(shot);
    }

    pub fn view(&self, camera: &str, now_ms: i64) -> View {
        let recent_ms = RECENT_MS;
        let cams = self.lock();
        let watched_ms = now_ms - self.started_ms;
        let Some(cam) = cams.get(camera) else {
            return View { shot: None, recent_heights: Vec::new(), watched_ms };
        };
        let shot = match &cam.with_plates {
            Some(p) if p.frame.captured_at_ms >= now_ms - PLATES_SHOWN_MS => Some(p.clone()),
            _ => cam.latest.clone(),
        };
        let recent_heights = cam.heights.iter().filter(|(t, _)| *t >= now_ms - recent_ms).map(|(_, h)| *h).collect();
        View { shot, recent_heights, watched_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(cam: &str, at: i64) -> Frame {
        Frame {
            camera: cam.into(),
            seq: 0,
            captured_at_ms: at,
            width: 2,
            height: 2,
            format: crate::ingest::PixelFormat::Bgr,
            data: vec![0; 12],
        }
    }

    fn plate(h: f32) -> ShotBox {
        ShotBox { bbox: BoxF { x: 0.0, y: 0.0, w: 2.0 * h, h }, text: Some("7ABC123".into()), confidence: 0.9 }
    }

    #[test]
    fn frames_are_kept_only_while_watched_and_heights_always() {
        let s = Snapshots::default();
        let now = jiff::Timestamp::now().as_millisecond();
        s.record(frame("a", now - 1000), 0.0, vec![plate(30.0)]);
        let v = s.view("a", now);
        assert!(v.shot.is_none(), "nobody watched: no frame kept");
        assert_eq!(v.recent_heights, vec![30.0]);
        s.watch(now);
        s.record(frame("a", now - 500), 0.0, vec![plate(40.0)]);
        s.record(frame("a", now - 100), 0.0, vec![]);
        let v = s.view("a", now);
        assert_eq!(
            v.shot.as_ref().map(|x| x.frame.captured_at_ms),
            Some(now - 500),
            "the recent frame with plates is shown"
        );
        let v = s.view("a", now + PLATES_SHOWN_MS);
        assert_eq!(v.shot.as_ref().map(|x| x.frame.captured_at_ms), Some(now - 100), "then the newest frame");
        // Heights older than the window leave.
        s.record(frame("a", now + RECENT_MS + 100_000), 0.0, vec![]);
        assert!(s.view("a", now + RECENT_MS + 100_000).recent_heights.is_empty());
        assert!(s.view("b", now).shot.is_none());
    }
}
