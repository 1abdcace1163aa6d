//! The hand-off from cameras to the store: analysed frames are read by the recognizer, frame reads
//! are grouped per vehicle by the tracker, and each vehicle read (with the crop of its best frame) goes
//! to the [`ReadSink`]. One thread owns the recognizer (OpenCV networks are not shared between threads).

use super::reads::ReadSink;
use crate::config::Config;
use crate::ingest::{Frame, FrameQueue};
use crate::recognize::{PlateRead, Recognizer, View};
use crate::store::Plate;
use crate::track::{FrameRead, PlateCandidate, TrackEvent, TrackId, Tracker, TrackerConfig};
use opencv::core::Mat;
use opencv::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counters for STATUS= and the benchmarks.
#[derive(Debug, Default)]
pub struct AnalyseStats {
    pub frames: AtomicU64,
    pub frames_failed: AtomicU64,
    pub plates_read: AtomicU64,
    pub vehicle_reads: AtomicU64,
    pub store_errors: AtomicU64,
    /// Sum of frame-to-stored-read latency (capture of the best frame to durable store), ms.
    pub latency_ms_sum: AtomicU64,
    /// The most recent latencies (at most [`LATENCY_KEPT`]), for percentiles.
    pub latencies_ms: std::sync::Mutex<std::collections::VecDeque<u32>>,
}

pub const LATENCY_KEPT: usize = 10_000;

/// What the thread needs from the configuration.
#[derive(Clone)]
pub struct Settings {
    pub views: HashMap<String, View>,
    pub min_read_confidence: f32,
    pub early_alerts: bool,
    pub tracker: TrackerConfig,
    pub crop_quality: i32,
    /// Cameras whose reads also keep the full frame (`store_full_frames`, per camera or store-wide).
    pub full_frames: HashSet<String>,
}

/// The images a frame read carries through the tracker: the plate crop and, where configured, the frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Images {
    pub crop: Vec<u8>,
    pub frame: Option<std::sync::Arc<Vec<u8>>>,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        Settings {
            views: cfg.cameras.iter().map(|c| (c.id.clone(), View::from_camera(c))).collect(),
            min_read_confidence: cfg.recognizer.min_read_confidence as f32,
            early_alerts: cfg.hotlists.alert_on_first_confident_read,
            tracker: TrackerConfig::from(&cfg.tracker),
            crop_quality: 90,
            full_frames: cfg
                .cameras
                .iter()
                .filter(|c| c.store_full_frames.unwrap_or(cfg.store.store_full_frames))
                .map(|c| c.id.clone())
                .collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {width}x{height} has {got} bytes, expected {want} (packed BGR)")]
    Size { width: u32, height: u32, got: usize, want: usize },
    #[error("OpenCV: {0}")]
    Cv(#[from] opencv::Error),
}

/// The frame (packed BGR, as ingest delivers it) as an owned OpenCV image.
pub fn frame_to_bgr(f: &Frame) -> Result<Mat, FrameError> {
    let (w, h) = (f.width as usize, f.height as usize);
    let want = w * h * 3;
    if f.data.len() != want || w < 2 || h < 2 {
        return Err(FrameError::Size { width: f.width, height: f.height, got: f.data.len(), want });
    }
    let m = Mat::new_rows_cols_with_data(h as i32, (w * 3) as i32, &f.data[..])?;
    Ok(m.reshape(3, h as i32)?.try_clone()?)
}

/// The frame reads of one frame, for the tracker: crops JPEG-encoded from the frame itself so that a
/// vehicle read's crop comes from the same frame as its best reading.
fn frame_reads(frame: &Frame, img: &Mat, reads: Vec<PlateRead>, s: &Settings) -> Vec<FrameRead<Images>> {
    let mut out = Vec::new();
    // One encoding of the full frame, shared by every plate in it.
    let mut full: Option<Option<std::sync::Arc<Vec<u8>>>> = None;
    for r in reads {
        if r.confidence < s.min_read_confidence {
            continue;
        }
        let Ok(plate) = Plate::new(&r.text) else { continue };
        let crop = crate::recognize::prepare::crop(img, r.bbox, 0.1, 0.2)
            .ok()
            .flatten()
            .and_then(|c| crate::recognize::encode_jpeg(&c, s.crop_quality).ok())
            .unwrap_or_default();
        let candidates = r
            .candidates
            .iter()
            .filter_map(|c| Plate::new(&c.text).ok().map(|p| PlateCandidate { plate: p, confidence: c.confidence }))
            .collect();
        let frame_jpeg = if s.full_frames.contains(&*frame.camera) {
            full.get_or_insert_with(|| crate::recognize::encode_jpeg(img, s.crop_quality).ok().map(std::sync::Arc::new)).clone()
        } else {
            None
        };
        out.push(FrameRead {
            camera_id: frame.camera.to_string(),
            frame_seq: frame.seq,
            captured_at_ms: frame.captured_at_ms,
            bbox: r.bbox.to_pixels(),
            plate,
            char_confidences: r.char_confidences,
            confidence: r.confidence,
            candidates,
            region: None,
            crop: Images { crop, frame: frame_jpeg },
        });
    }
    out
}

fn with_images(mut r: crate::store::NewRead, images: Images) -> crate::store::NewRead {
    r.crop_jpeg = (!images.crop.is_empty()).then_some(images.crop);
    r.frame_jpeg = images.frame.map(|f| std::sync::Arc::try_unwrap(f).unwrap_or_else(|shared| (*shared).clone()));
    r
}

/// Stores the tracker's events: vehicle reads always; with `early_alerts`, an early read is stored (and
/// alerted on) at once and stands for its pass, so the pass's closing read is not stored a second time.
struct Events<'a> {
    sink: &'a ReadSink,
    stats: &'a AnalyseStats,
    early_alerts: bool,
    early_stored: HashSet<TrackId>,
}

impl Events<'_> {
    fn handle(&mut self, events: Vec<TrackEvent<Images>>) {
        for e in events {
            let (new_read, best_ms) = match e {
                TrackEvent::Early(early) if self.early_alerts => {
                    self.early_stored.insert(early.track_id);
                    let images = early.reading.best.crop.clone();
                    let ms = early.reading.best.captured_at_ms;
                    (with_images(early.into_new_read(None), images), ms)
                }
                TrackEvent::Early(_) => continue,
                TrackEvent::Vehicle(v) => {
                    if v.report == 0 && self.early_stored.remove(&v.track_id) {
                        continue;
                    }
                    let images = v.reading.best.crop.clone();
                    let ms = v.reading.best.captured_at_ms;
                    (with_images(v.into_new_read(None), images), ms)
                }
            };
            match self.sink.accept(new_read) {
                Ok((id, alerts)) => {
                    self.stats.vehicle_reads.fetch_add(1, Ordering::Relaxed);
                    let latency = (jiff::Timestamp::now().as_millisecond() - best_ms).max(0) as u64;
                    self.stats.latency_ms_sum.fetch_add(latency, Ordering::Relaxed);
                    let mut kept = self.stats.latencies_ms.lock().unwrap_or_else(|p| p.into_inner());
                    if kept.len() >= LATENCY_KEPT {
                        kept.pop_front();
                    }
                    kept.push_back(latency.min(u32::MAX as u64) as u32);
                    drop(kept);
                    log::info!(read = id.to_string().as_str(), alerts = alerts.len() as u64; "vehicle read stored");
                }
                Err(e) => {
                    self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                    log::error!("vehicle read NOT stored: {e}");
                }
            }
        }
    }
}

/// Runs until `stop`: frames from the queue through the recognizer and tracker into the sink. Open
/// tracks are flushed (reported) on stop, so a shutdown loses no pass already seen.
/// Settings the analysis thread re-reads for every frame, so a reload's camera views, confidence floor and
/// full-frame choice apply at once (tracker settings and early alerts apply on restart).
/// A reload swaps the whole `Arc`, so a frame takes a reference, not a copy of the camera table.
pub type SharedSettings = Arc<std::sync::Mutex<Arc<Settings>>>;

pub fn run(mut rec: Recognizer, shared: SharedSettings, frames: Arc<FrameQueue>, sink: Arc<ReadSink>, stats: Arc<AnalyseStats>, stop: impl Fn() -> bool) {
    let current = || shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let settings = current();
    let mut tracker = match Tracker::new(settings.tracker.clone()) {
        Ok(t) => t,
        Err(e) => {
            log::error!("tracker settings invalid, frames are not analysed: {e}");
            return;
        }
    };
    let mut events = Events { sink: &sink, stats: &stats, early_alerts: settings.early_alerts, early_stored: HashSet::new() };
    let mut last_error_log = std::time::Instant::now() - Duration::from_secs(60);
    while !stop() {
        let Some(frame) = frames.pop(Duration::from_millis(200)) else {
            events.handle(tracker.tick(jiff::Timestamp::now().as_millisecond()));
            continue;
        };
        stats.frames.fetch_add(1, Ordering::Relaxed);
        let settings = current();
        // Frames are rotated here, once, so that crops and boxes share the rotated frame's pixels.
        let mut view = settings.views.get(&*frame.camera).cloned().unwrap_or_default();
        let rotate = std::mem::take(&mut view.rotate_deg);
        // One copy of the frame's bytes; a second only to rotate it.
        let result = frame_to_bgr(&frame).map_err(|e| e.to_string()).and_then(|img| {
            let turned = match rotate.abs() >= 0.01 {
                true => Some(crate::recognize::rotated(&img, rotate).map_err(|e| e.to_string())?),
                false => None,
            };
            let img: &Mat = turned.as_ref().unwrap_or(&img);
            let r = rec.recognize(img, &view).map_err(|e| e.to_string())?;
            stats.plates_read.fetch_add(r.reads.len() as u64, Ordering::Relaxed);
            Ok(frame_reads(&frame, img, r.reads, &settings))
        });
        match result {
            Ok(reads) => events.handle(tracker.push_frame(reads, frame.captured_at_ms)),
            Err(e) => {
                stats.frames_failed.fetch_add(1, Ordering::Relaxed);
                // One line per minute at most: a broken stream must not flood the journal.
                if last_error_log.elapsed() >= Duration::from_secs(60) {
                    last_error_log = std::time::Instant::now();
                    log::warn!(camera = &*frame.camera; "frame not analysed: {e}");
                }
            }
        }
    }
    events.handle(tracker.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(w: u32, h: u32, data: Vec<u8>) -> Frame {
        Frame { camera: "c".into(), seq: 0, captured_at_ms: 0, width: w, height: h, data }
    }

    #[test]
    fn packed_bgr_becomes_an_image_and_wrong_sizes_are_errors() {
        let bgr = frame_to_bgr(&frame(4, 2, (0..24).collect())).unwrap();
        assert_eq!((bgr.cols(), bgr.rows(), bgr.channels()), (4, 2, 3));
        assert_eq!(*bgr.at_2d::<opencv::core::Vec3b>(1, 1).unwrap(), opencv::core::Vec3b::from([15, 16, 17]));
        assert!(matches!(frame_to_bgr(&frame(4, 2, vec![0; 23])), Err(FrameError::Size { .. })));
        assert!(matches!(frame_to_bgr(&frame(1, 1, vec![0; 3])), Err(FrameError::Size { .. })));
    }
}
