//! What the pipeline reports as it works, for the metrics and the ALPR telemetry: recognizer latencies,
//! plates per frame and their heights, frames analysed and dropped, reads stored, the last retention sweep.
//! One process-wide [`Recorder`] ([`recorder()`]) so that the analysis thread, the read sink and the frame
//! queue each report with one call and need no new plumbing. No plate text is recorded.

use super::telemetry::{self, Change, Fleet, Kind};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::{Mutex, OnceLock};

/// Label set of per-camera series.
pub type CameraLabel = Vec<(&'static str, String)>;
type HistogramFamily = Family<CameraLabel, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … ~4 s.
    Histogram::new([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
}
fn plates_histogram() -> Histogram {
    Histogram::new([0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0])
}
fn height_histogram() -> Histogram {
    Histogram::new([8.0, 12.0, 16.0, 20.0, 24.0, 32.0, 40.0, 48.0, 64.0, 80.0, 96.0, 128.0, 160.0, 200.0, 256.0, 320.0])
}

/// The last retention sweep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sweep {
    pub at_ms: i64,
    pub purged: u64,
}

/// A degraded camera's state as health and status show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Degraded {
    pub kind: &'static str,
    pub detail: String,
}

pub struct Recorder {
    pub detector_seconds: Histogram,
    pub ocr_seconds: Histogram,
    pub plates_per_frame: HistogramFamily,
    pub plate_height_pixels: HistogramFamily,
    pub frames_analysed: Family<CameraLabel, Counter>,
    /// Frames the recognizer could not analyse, by camera.
    analysis_errors: Mutex<std::collections::BTreeMap<String, u64>>,
    pub reads_stored: Family<CameraLabel, Counter>,
    /// `camera_degraded` events raised, by camera and kind.
    pub degraded_events: Family<CameraLabel, Counter>,
    sweep: Mutex<Option<Sweep>>,
    telemetry: Mutex<Option<Fleet>>,
    /// Woken when a camera's degraded state changes (the MQTT status goes out at once).
    pub changed: std::sync::Arc<tokio::sync::Notify>,
}

static RECORDER: OnceLock<Recorder> = OnceLock::new();

/// The process's recorder.
pub fn recorder() -> &'static Recorder {
    RECORDER.get_or_init(Recorder::new)
}

fn camera(id: &str) -> CameraLabel {
    vec![("camera", id.to_string())]
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            detector_seconds: latency_histogram(),
            ocr_seconds: latency_histogram(),
            plates_per_frame: Family::new_with_constructor(plates_histogram as fn() -> Histogram),
            plate_height_pixels: Family::new_with_constructor(height_histogram as fn() -> Histogram),
            frames_analysed: Family::default(),
            analysis_errors: Mutex::new(std::collections::BTreeMap::new()),
            reads_stored: Family::default(),
            degraded_events: Family::default(),
            sweep: Mutex::new(None),
            telemetry: Mutex::new(None),
            changed: std::sync::Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Turns the ALPR telemetry on with these thresholds (None: off); learnt baselines are kept.
    pub fn configure_telemetry(&self, params: Option<telemetry::Params>) {
        let mut t = lock(&self.telemetry);
        match (params, t.as_mut()) {
            (None, _) => *t = None,
            (Some(p), Some(fleet)) => fleet.params = p,
            (Some(p), None) => *t = Some(Fleet::new(p)),
        }
    }

    /// One frame through the recognizer: its latencies, its plates' number and heights.
    pub fn frame(&self, camera_id: &str, at_ms: i64, r: &crate::recognize::FrameResult) {
        self.detector_seconds.observe(r.detect_ms / 1e3);
        if r.detections > 0 {
            let per_plate = r.ocr_ms / 1e3 / r.detections as f64;
            for _ in 0..r.detections {
                self.ocr_seconds.observe(per_plate);
            }
        }
        let label = camera(camera_id);
        self.frames_analysed.get_or_create(&label).inc();
        self.plates_per_frame.get_or_create(&label).observe(r.reads.len() as f64);
        let heights = self.plate_height_pixels.get_or_create(&label);
        for p in &r.reads {
            heights.observe(p.bbox.h as f64);
        }
        drop(heights);
        self.with_telemetry(camera_id, |fleet| {
            let mut ch = fleet.frame(camera_id, at_ms);
            for p in &r.reads {
                ch.extend(fleet.plate(camera_id, p.bbox.h));
            }
            ch
        });
    }

    /// A frame the recognizer could not analyse.
    pub fn frame_failed(&self, camera_id: &str) {
        *lock(&self.analysis_errors).entry(camera_id.to_string()).or_default() += 1;
    }

    /// Frames not analysed for an error, as `polewatch_camera_frames_lost_total` rows.
    pub fn analysis_errors(&self) -> Vec<(CameraLabel, u64)> {
        lock(&self.analysis_errors)
            .iter()
            .map(|(id, n)| (vec![("camera", id.clone()), ("reason", "analysis_error".to_string())], *n))
            .collect()
    }

    /// A vehicle read of this camera was stored.
    pub fn read_stored(&self, camera_id: &str, at_ms: i64) {
        self.reads_stored.get_or_create(&camera(camera_id)).inc();
        self.with_telemetry(camera_id, |fleet| fleet.read(camera_id, at_ms));
    }

    /// Judges the hours that ended; call every few seconds.
    pub fn tick(&self, now_ms: i64) {
        let changes = match lock(&self.telemetry).as_mut() {
            Some(fleet) => fleet.tick(now_ms),
            None => return,
        };
        for (camera, c) in changes {
            self.report(&camera, c);
        }
    }

    fn with_telemetry(&self, camera_id: &str, f: impl FnOnce(&mut Fleet) -> Vec<Change>) {
        let changes = match lock(&self.telemetry).as_mut() {
            Some(fleet) => f(fleet),
            None => return,
        };
        for c in changes {
            self.report(camera_id, c);
        }
    }

    fn report(&self, camera_id: &str, c: Change) {
        match c {
            Change::Degraded(reason) => {
                let kind = reason.kind().as_str();
                self.degraded_events
                    .get_or_create(&vec![("camera", camera_id.to_string()), ("kind", kind.to_string())])
                    .inc();
                log::warn!(camera = camera_id, event = "camera_degraded", kind = kind; "camera {camera_id} degraded: {reason}");
            }
            Change::Recovered(kind) => {
                log::info!(camera = camera_id, event = "camera_recovered", kind = kind.as_str(); "camera {camera_id} no longer degraded ({})", kind.as_str());
            }
        }
        self.changed.notify_one();
    }

    /// Each camera's reasons in force.
    pub fn degraded(&self, camera_id: &str) -> Vec<Degraded> {
        match lock(&self.telemetry).as_ref().and_then(|f| f.cameras.get(camera_id)) {
            Some(c) => {
                c.degraded().into_iter().map(|r| Degraded { kind: r.kind().as_str(), detail: r.to_string() }).collect()
            }
            None => Vec::new(),
        }
    }

    /// Per camera with telemetry: (kinds in force, reads this hour, expected reads this hour).
    pub fn telemetry_view(&self) -> Vec<(String, Vec<Kind>, u64, Option<f64>)> {
        let t = lock(&self.telemetry);
        let Some(fleet) = t.as_ref() else { return Vec::new() };
        fleet
            .cameras
            .iter()
            .map(|(id, c)| {
                let (reads, expected) = c.this_hour(&fleet.params).unwrap_or((0, None));
                (id.clone(), c.degraded().into_iter().map(|r| r.kind()).collect(), reads, expected)
            })
            .collect()
    }

    /// The learnt baselines, to save.
    pub fn saved_baselines(&self) -> Option<telemetry::Saved> {
        lock(&self.telemetry).as_ref().map(|f| f.saved())
    }

    /// Baselines saved by an earlier run.
    pub fn restore_baselines(&self, saved: telemetry::Saved) {
        if let Some(f) = lock(&self.telemetry).as_mut() {
            f.restore(saved);
        }
    }

    pub fn swept(&self, at_ms: i64, purged: u64) {
        *lock(&self.sweep) = Some(Sweep { at_ms, purged });
    }

    pub fn last_sweep(&self) -> Option<Sweep> {
        *lock(&self.sweep)
    }
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder::new()
    }
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
}
