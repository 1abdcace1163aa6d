//! The hand-off from cameras to the store: analysed frames are read by the recognizer, frame reads
//! are grouped per vehicle by the tracker, and each vehicle read (with the crop of its best frame) goes
//! to the [`ReadSink`]. One thread owns the recognizer (OpenCV networks are not shared between threads).

use super::reads::ReadSink;
use super::recent::Recent;
use crate::ingest::{Frame, FrameQueue, PixelFormat};
use crate::recognize::{PlateRead, Recognizer, View};
use crate::store::{AlertRecord, Plate, StoredRead};
use crate::track::{
    EarlyRead, FrameRead, PlateCandidate, Reading, TrackEvent, TrackId, Tracker, TrackerConfig, VehicleRead,
};
use crate::uplink::payload::{AlertStage, CertaintyV1, FinalReadV1, HitV1};
use opencv::core::Mat;
use opencv::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counters for STATUS= and the benchmarks.
#[derive(Debug, Default)]
pub struct AnalyseStats {
    pub frames: AtomicU64,
    pub frames_failed: AtomicU64,
    pub plates_read: AtomicU64,
    pub vehicle_reads: AtomicU64,
    pub store_errors: AtomicU64,
    /// Provisional alerts updated (confirmed, changed or withdrawn) as their pass closed.
    pub alert_updates: AtomicU64,
    /// Sum of frame-to-stored-read latency (capture of the best frame to durable store), ms.
    pub latency_ms_sum: AtomicU64,
    /// The most recent latencies of reads stored when their pass closed (at most [`LATENCY_KEPT`]), for
    /// percentiles: they include the rest of the pass after its best frame and the tracker's closing gap.
    pub latencies_ms: std::sync::Mutex<std::collections::VecDeque<u32>>,
    /// The same for reads stored on an early read that hit a hotlist, while the vehicle was in view.
    pub early_latencies_ms: std::sync::Mutex<std::collections::VecDeque<u32>>,
    /// For reads stored when their pass closed: the vehicle's last frame (its last sight in the view) to
    /// the read's handling done (stored and alerted), ms.
    pub gone_latencies_ms: std::sync::Mutex<std::collections::VecDeque<u32>>,
    /// The Cameras page's live snapshot and recent plate heights.
    pub snapshots: Arc<super::snapshot::Snapshots>,
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

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame of {width}x{height} has {got} bytes, expected {want} (or odd sides for I420)")]
    Size { width: u32, height: u32, got: usize, want: usize },
    #[error("OpenCV: {0}")]
    Cv(#[from] opencv::Error),
}

/// The frame's bytes checked against its size and format (I420 needs even sides).
fn checked(f: &Frame) -> Result<(i32, i32), FrameError> {
    let want = f.format.len(f.width, f.height);
    let even = f.format == PixelFormat::Bgr || (f.width.is_multiple_of(2) && f.height.is_multiple_of(2));
    if f.data.len() != want || f.width < 2 || f.height < 2 || !even {
        return Err(FrameError::Size { width: f.width, height: f.height, got: f.data.len(), want });
    }
    Ok((f.width as i32, f.height as i32))
}

/// An OpenCV header over the frame's own bytes: `CV_8UC3` for BGR, the `height * 3/2` rows of one byte
/// that OpenCV's I420 conversions read.
///
/// # Safety
/// The header borrows `f.data` without a lifetime: it must be dropped before the frame, and used only as
/// an input (OpenCV's const inputs).
unsafe fn header(f: &Frame, (w, h): (i32, i32)) -> opencv::Result<Mat> {
    let (rows, typ) = match f.format {
        PixelFormat::Bgr => (h, opencv::core::CV_8UC3),
        PixelFormat::I420 => (h * 3 / 2, opencv::core::CV_8UC1),
    };
    // SAFETY: the size and type match the length `checked` verified; the caller keeps the frame alive.
    unsafe { Mat::new_rows_cols_with_data_unsafe_def(rows, w, typ, f.data.as_ptr().cast_mut().cast()) }
}

/// The frame as an owned BGR image.
pub fn frame_to_bgr(f: &Frame) -> Result<Mat, FrameError> {
    let size = checked(f)?;
    // SAFETY: the header is dropped at the end of this function, before the frame; it is only read.
    let img = unsafe { header(f, size) }?;
    match f.format {
        PixelFormat::Bgr => Ok(img.try_clone()?),
        PixelFormat::I420 => {
            let mut out = Mat::default();
            opencv::imgproc::cvt_color(&img, &mut out, opencv::imgproc::COLOR_YUV2BGR_I420, 0)?;
            Ok(out)
        }
    }
}

thread_local! {
    /// This thread's BGR image for I420 frames, reused frame after frame: a fresh 6 MiB image per 1080p
    /// frame would be mapped and faulted in each time.
    static BGR: std::cell::RefCell<Mat> = std::cell::RefCell::new(Mat::default());
}

/// Runs `f` on the frame as a BGR image without a copy per analysis: a BGR frame's own bytes, or an I420
/// frame converted into this thread's one reused image. `f` must copy what it keeps (crops and JPEGs do).
pub fn with_bgr<R>(fr: &Frame, f: impl FnOnce(&Mat) -> R) -> Result<R, FrameError> {
    let size = checked(fr)?;
    // SAFETY: the header is dropped at the end of this function, before the frame; `f` gets a shared
    // reference to it (BGR) or only the converted copy (I420).
    let img = unsafe { header(fr, size) }?;
    match fr.format {
        PixelFormat::Bgr => Ok(f(&img)),
        PixelFormat::I420 => BGR.with(|bgr| {
            let mut bgr = bgr.borrow_mut();
            opencv::imgproc::cvt_color(&img, &mut *bgr, opencv::imgproc::COLOR_YUV2BGR_I420, 0)?;
            Ok(f(&bgr))
        }),
    }
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
            full.get_or_insert_with(|| crate::recognize::encode_jpeg(img, s.crop_quality).ok().map(std::sync::Arc::new))
                .clone()
        } else {
            None
        };
        // Plate text is personal data: debug only. What the tracker was handed, frame by frame, is what a
        // late or missed alert is traced back to.
        log::debug!(
            camera = &*frame.camera, frame_seq = frame.seq, captured_at_ms = frame.captured_at_ms;
            "frame read {} confidence {:.3} at ({:.0}, {:.0}) width {:.0} px",
            plate.expose(),
            r.confidence,
            r.bbox.x,
            r.bbox.y,
            r.bbox.w
        );
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

/// A vehicle still in view whose early read hit a hotlist: the read stored for it and the provisional
/// alerts raised on it, updated when its pass closes.
struct Provisional {
    read: StoredRead,
    alerts: Vec<AlertRecord>,
}

/// Stores the tracker's events. Vehicle reads are stored when their pass closes (or a parked car
/// reports). With `early_alerts`, an early read (confident, or several frames agreeing) is matched
/// against the hotlists at once: on a hit it is stored, stands for its pass (so the pass still makes one
/// stored read) and raises provisional alerts; when the pass closes each alert is updated under its id,
/// confirmed, changed or withdrawn by the pass's vote. An early read that hits nothing is not stored:
/// the pass's vote is, when it closes.
///
/// One alert id per vehicle and hotlist entry ([`Recent`]): a hit for a camera and entry alerted on
/// moments ago (the first alert's track still open, or closed within twice the tracker's gap) is the
/// same car on a second track; it updates the first alert instead of raising another, and a read whose
/// hits all fold so is not stored again.
struct Events<'a> {
    sink: &'a ReadSink,
    stats: &'a AnalyseStats,
    early_alerts: bool,
    provisional: HashMap<TrackId, Provisional>,
    recent: Recent,
}

/// The vote as sent in an update.
fn final_read_of<C>(r: &Reading<C>, frames: u32) -> FinalReadV1 {
    FinalReadV1 {
        plate: r.plate.expose().to_string(),
        confidence: r.confidence,
        frames,
        candidates: r
            .candidates
            .iter()
            .map(|c| crate::store::Candidate { text: c.plate.expose().to_string(), confidence: c.confidence })
            .collect(),
    }
}

impl Events<'_> {
    fn handle(&mut self, events: Vec<TrackEvent<Images>>) {
        for e in events {
            // Which track each frame read went to is what a missed or late alert is traced back to.
            match &e {
                TrackEvent::Early(r) => log::debug!(
                    track = r.track_id.to_string().as_str(), frames = r.frames, basis = r.basis.as_str();
                    "early read"
                ),
                TrackEvent::Vehicle(v) => log::debug!(
                    track = v.track_id.to_string().as_str(), frames = v.frames, report = v.report;
                    "vehicle read"
                ),
            }
            match e {
                TrackEvent::Early(early) if self.early_alerts => self.early(early),
                TrackEvent::Early(_) => {}
                TrackEvent::Vehicle(v) => {
                    if v.report == 0 {
                        self.recent.closed(v.track_id, v.last_seen_ms);
                        if let Some(p) = self.provisional.remove(&v.track_id) {
                            let first = v.first_seen_ms;
                            self.close_provisional(p, v);
                            self.recent.forget(first);
                            continue;
                        }
                    }
                    let (first, last, pass) = (v.first_seen_ms, v.last_seen_ms, v.report == 0 && !v.parked);
                    self.vehicle(v);
                    self.recent.forget(first);
                    if pass {
                        let gone = (jiff::Timestamp::now().as_millisecond() - last).max(0) as u64;
                        keep(&self.stats.gone_latencies_ms, gone);
                    }
                }
            }
        }
    }

    fn hits_of(&self, r: &Reading<Images>) -> Vec<HitV1> {
        let candidates: Vec<(String, f32)> =
            r.candidates.iter().map(|c| (c.plate.expose().to_string(), c.confidence)).collect();
        self.sink.hotlists.hits(r.plate.expose(), &candidates, r.region.as_deref())
    }

    /// Splits hits into those that are a second alert of an alert raised moments ago on this camera
    /// for the same entry (with that alert's id), and fresh ones.
    fn partition(
        &self,
        camera: &str,
        track: TrackId,
        at_ms: i64,
        hits: Vec<HitV1>,
    ) -> (Vec<(HitV1, uuid::Uuid)>, Vec<HitV1>) {
        let (mut folded, mut fresh) = (Vec::new(), Vec::new());
        for h in hits {
            match self.recent.fold(camera, &h.list, &h.entry, track, at_ms) {
                Some(id) => folded.push((h, id)),
                None => fresh.push(h),
            }
        }
        (folded, fresh)
    }

    fn remember(&mut self, camera: &str, alert: &AlertRecord, track: TrackId, at_ms: i64, open: bool) {
        if let Ok(hit) = crate::alert::hit_of(alert) {
            self.recent.raised(camera, &hit.list, &hit.entry, alert.id, track, at_ms, open);
        }
    }

    /// Raises `hits` on a stored read; remembers them.
    #[allow(clippy::too_many_arguments)]
    fn raise_fresh(
        &mut self,
        read: &StoredRead,
        hits: Vec<HitV1>,
        stage: AlertStage,
        certainty: &CertaintyV1,
        track: TrackId,
        at_ms: i64,
        open: bool,
    ) -> Vec<AlertRecord> {
        let mut out = Vec::new();
        for hit in hits {
            match self.sink.hotlists.raise_hit(read, hit, stage, certainty) {
                Ok(a) => {
                    self.remember(&read.camera_id, &a, track, at_ms, open);
                    out.push(a);
                }
                Err(e) => {
                    log::error!("alert NOT raised: {e}");
                    self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.sink.wake();
        out
    }

    /// Updates an earlier alert of this vehicle (a second track hit its entry) with this track's vote.
    fn update_folded(&mut self, id: uuid::Uuid, v: &VehicleRead<Images>, certainty: &CertaintyV1) {
        let target = self.sink.hotlists.target().clone();
        let store = self.sink.store.as_ref();
        let read = match store
            .alert(id)
            .and_then(|a| a.map(|a| store.get_read(a.read_id)).transpose())
            .map(Option::flatten)
        {
            Ok(Some(read)) => read,
            Ok(None) => {
                log::warn!(alert = id.to_string().as_str(); "alert or its read gone; second track's hit not folded into it");
                return;
            }
            Err(e) => {
                log::error!(alert = id.to_string().as_str(); "alert update NOT queued: {e}");
                self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let stage = if v.reading.plate == read.plate { AlertStage::Confirmed } else { AlertStage::Changed };
        match crate::alert::update(
            store,
            &target.site,
            &target.device,
            id,
            &read,
            stage,
            certainty.clone(),
            final_read_of(&v.reading, v.frames),
        ) {
            Ok(_) => {
                self.stats.alert_updates.fetch_add(1, Ordering::Relaxed);
                log::info!(alert = id.to_string().as_str(), track = v.track_id.to_string().as_str(); "second track of an alerted vehicle: alert updated, not raised again");
            }
            Err(e) => {
                log::error!(alert = id.to_string().as_str(); "alert update NOT queued: {e}");
                self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sink.wake();
    }

    /// A vehicle read with no provisional alert behind it (a pass's vote, a parked car's report).
    fn vehicle(&mut self, v: VehicleRead<Images>) {
        let certainty = CertaintyV1 {
            basis: "pass".into(),
            frames: v.frames,
            agreeing_frames: v.agreeing_frames,
            confidence: v.reading.confidence,
        };
        let (track, camera, first, last) = (v.track_id, v.camera_id.clone(), v.first_seen_ms, v.last_seen_ms);
        let hits = self.hits_of(&v.reading);
        let (folded, fresh) = self.partition(&camera, track, first, hits);
        for (_, id) in &folded {
            self.update_folded(*id, &v, &certainty);
            self.recent.raised(&camera, "", "", *id, track, last, false);
        }
        let images = v.reading.best.crop.clone();
        let ms = v.reading.best.captured_at_ms;
        let read = with_images(v.into_new_read(None), images);
        if folded.is_empty() {
            if let Some((_, alerts)) = self.store(read, ms, AlertStage::Confirmed, certainty) {
                for a in &alerts {
                    self.remember(&camera, a, track, last, false);
                }
            }
        } else if !fresh.is_empty() {
            // Entries not alerted on yet: this track's read is stored and alerted on for them.
            if let Some(stored) = self.store_only(read, ms, false) {
                self.raise_fresh(&stored, fresh, AlertStage::Confirmed, &certainty, track, last, false);
            }
        }
    }

    fn early(&mut self, early: EarlyRead<Images>) {
        // A track already alerted on: its pass's vote confirms, changes or withdraws the alert.
        if self.provisional.contains_key(&early.track_id) {
            return;
        }
        let hits = self.hits_of(&early.reading);
        if hits.is_empty() {
            return;
        }
        let certainty = CertaintyV1 {
            basis: early.basis.as_str().into(),
            frames: early.frames,
            agreeing_frames: early.agreeing_frames,
            confidence: early.reading.confidence,
        };
        let track = early.track_id;
        let camera = early.camera_id.clone();
        let ms = early.reading.best.captured_at_ms;
        let (folded, fresh) = self.partition(&camera, track, ms, hits);
        let images = early.reading.best.crop.clone();
        let read = with_images(early.into_new_read(None), images);
        if folded.is_empty() {
            if let Some((stored, alerts)) = self.store(read, ms, AlertStage::Provisional, certainty) {
                for a in &alerts {
                    self.remember(&camera, a, track, ms, true);
                }
                self.provisional.insert(track, Provisional { read: stored, alerts });
            }
            return;
        }
        // A second track of a vehicle already alerted on: no new alert for those entries; this track's
        // pass updates the first alerts when it closes. Its read is the vehicle's stored read, unless it
        // also hits an entry not alerted on yet.
        let store = self.sink.store.clone();
        let mut alerts = Vec::new();
        let mut vehicle_read = None;
        for (_, id) in &folded {
            match store.alert(*id) {
                Ok(Some(a)) => {
                    if vehicle_read.is_none() {
                        vehicle_read = store.get_read(a.read_id).ok().flatten();
                    }
                    self.recent.raised(&camera, "", "", a.id, track, ms, true);
                    alerts.push(a);
                }
                Ok(None) => {}
                Err(e) => log::error!(alert = id.to_string().as_str(); "alert not read back: {e}"),
            }
        }
        if !fresh.is_empty()
            && let Some(stored) = self.store_only(read, ms, true)
        {
            alerts.extend(self.raise_fresh(&stored, fresh, AlertStage::Provisional, &certainty, track, ms, true));
            vehicle_read = Some(stored);
        }
        if let Some(read) = vehicle_read {
            log::info!(track = track.to_string().as_str(), alerts = alerts.len() as u64; "early read of a second track of an alerted vehicle: folded into its alerts");
            self.provisional.insert(track, Provisional { read, alerts });
        }
    }

    /// The pass of a vehicle that raised provisional alerts closed: its vote confirms, changes or
    /// withdraws each. Its read was stored with the early read; none more is.
    fn close_provisional(&mut self, p: Provisional, v: VehicleRead<Images>) {
        let r = &v.reading;
        let still = self.hits_of(r);
        let certainty = CertaintyV1 {
            basis: "pass".into(),
            frames: v.frames,
            agreeing_frames: v.agreeing_frames,
            confidence: r.confidence,
        };
        let final_read = final_read_of(r, v.frames);
        let target = self.sink.hotlists.target().clone();
        let mut alerted: Vec<(String, String)> = Vec::new();
        for a in &p.alerts {
            let Ok(hit) = crate::alert::hit_of(a) else { continue };
            alerted.push((hit.list.clone(), hit.entry.clone()));
            let stage = if !still.iter().any(|h| h.list == hit.list && h.entry == hit.entry) {
                AlertStage::Withdrawn
            } else if r.plate == p.read.plate {
                AlertStage::Confirmed
            } else {
                AlertStage::Changed
            };
            match crate::alert::update(
                self.sink.store.as_ref(),
                &target.site,
                &target.device,
                a.id,
                &p.read,
                stage,
                certainty.clone(),
                final_read.clone(),
            ) {
                Ok(_) => self.stats.alert_updates.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    log::error!(alert = a.id.to_string().as_str(); "alert update NOT queued: {e}");
                    self.stats.store_errors.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
        // An entry the vote hits and the early read did not: alerted now, on the vehicle's stored read
        // (or, when another track of the vehicle alerted it moments ago, that alert is updated).
        let new: Vec<HitV1> =
            still.into_iter().filter(|h| !alerted.iter().any(|(l, e)| *l == h.list && *e == h.entry)).collect();
        let (folded, fresh) = self.partition(&v.camera_id, v.track_id, v.first_seen_ms, new);
        for (_, id) in &folded {
            self.update_folded(*id, &v, &certainty);
        }
        self.raise_fresh(&p.read, fresh, AlertStage::Confirmed, &certainty, v.track_id, v.last_seen_ms, false);
        self.sink.wake();
    }

    /// Stores a read without matching it; counts it and its latency.
    fn store_only(&mut self, new_read: crate::store::NewRead, best_ms: i64, early: bool) -> Option<StoredRead> {
        match self.sink.store_only(new_read) {
            Ok(stored) => {
                self.count(best_ms, early);
                log::info!(read = stored.id.to_string().as_str(); "vehicle read stored");
                Some(stored)
            }
            Err(e) => {
                self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                log::error!("vehicle read NOT stored: {e}");
                None
            }
        }
    }

    fn count(&self, best_ms: i64, early: bool) {
        self.stats.vehicle_reads.fetch_add(1, Ordering::Relaxed);
        let latency = (jiff::Timestamp::now().as_millisecond() - best_ms).max(0) as u64;
        self.stats.latency_ms_sum.fetch_add(latency, Ordering::Relaxed);
        keep(if early { &self.stats.early_latencies_ms } else { &self.stats.latencies_ms }, latency);
    }

    /// Stores a read and raises its alerts; counts it and its latency.
    fn store(
        &mut self,
        new_read: crate::store::NewRead,
        best_ms: i64,
        stage: AlertStage,
        certainty: CertaintyV1,
    ) -> Option<(StoredRead, Vec<AlertRecord>)> {
        match self.sink.accept_as(new_read, Some((stage, &certainty))) {
            Ok((stored, alerts)) => {
                self.count(best_ms, stage == AlertStage::Provisional);
                log::info!(read = stored.id.to_string().as_str(), alerts = alerts.len() as u64; "vehicle read stored");
                Some((stored, alerts))
            }
            Err(e) => {
                self.stats.store_errors.fetch_add(1, Ordering::Relaxed);
                log::error!("vehicle read NOT stored: {e}");
                None
            }
        }
    }
}

/// Adds a latency to a window of the most recent [`LATENCY_KEPT`].
fn keep(kept: &std::sync::Mutex<std::collections::VecDeque<u32>>, ms: u64) {
    let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
    if kept.len() >= LATENCY_KEPT {
        kept.pop_front();
    }
    kept.push_back(ms.min(u32::MAX as u64) as u32);
}

/// Runs until `stop`: frames from the queue through the recognizer and tracker into the sink. Open
/// tracks are flushed (reported) on stop, so a shutdown loses no pass already seen.
/// Settings the analysis thread re-reads for every frame, so a reload's camera views, confidence floor and
/// full-frame choice apply at once (tracker settings and early alerts apply on restart).
/// A reload swaps the whole `Arc`, so a frame takes a reference, not a copy of the camera table.
pub type SharedSettings = Arc<std::sync::Mutex<Arc<Settings>>>;

pub fn run(
    mut rec: Recognizer,
    shared: SharedSettings,
    frames: Arc<FrameQueue>,
    sink: Arc<ReadSink>,
    stats: Arc<AnalyseStats>,
    stop: impl Fn() -> bool,
) {
    let current = || shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let settings = current();
    let mut tracker = match Tracker::new(settings.tracker.clone()) {
        // With early alerts, a frame that reads a hotlisted plate confidently alerts at once (the
        // track's vote still confirms, changes or withdraws it when the pass closes).
        Ok(t) if settings.early_alerts => {
            let hotlists = sink.hotlists.clone();
            t.watching(move |p| !hotlists.hits(p.expose(), &[], None).is_empty())
        }
        Ok(t) => t,
        Err(e) => {
            log::error!("tracker settings invalid, frames are not analysed: {e}");
            return;
        }
    };
    let mut events = Events {
        sink: &sink,
        stats: &stats,
        early_alerts: settings.early_alerts,
        provisional: HashMap::new(),
        recent: Recent::new(&settings.tracker),
    };
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
        // No copy of the frame's bytes; one only to rotate it.
        let result = with_bgr(&frame, |img| {
            let turned = match rotate.abs() >= 0.01 {
                true => Some(crate::recognize::rotated(img, rotate).map_err(|e| e.to_string())?),
                false => None,
            };
            let img: &Mat = turned.as_ref().unwrap_or(img);
            let r = rec.recognize(img, &view).map_err(|e| e.to_string())?;
            crate::observe::recorder().frame(&frame.camera, frame.captured_at_ms, &r);
            stats.plates_read.fetch_add(r.reads.len() as u64, Ordering::Relaxed);
            let seen = super::snapshot::boxes(&r);
            Ok((frame_reads(&frame, img, r.reads, &settings), seen))
        })
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        match result {
            Ok((reads, seen)) => {
                // Boxes are in the rotated frame's pixels, as is the region of interest.
                tracker.set_view(&frame.camera, frame.width, frame.height, &view.roi);
                let (opened, resumed) = (tracker.stats().tracks_opened, tracker.stats().tracks_resumed);
                events.handle(tracker.push_frame(reads, frame.captured_at_ms));
                let st = tracker.stats();
                if st.tracks_opened > opened || st.tracks_resumed > resumed {
                    log::debug!(
                        camera = &*frame.camera, frame_seq = frame.seq, opened = st.tracks_opened - opened,
                        resumed = st.tracks_resumed - resumed;
                        "tracks started"
                    );
                }
                stats.snapshots.record(frame, rotate, seen);
            }
            Err(e) => {
                stats.frames_failed.fetch_add(1, Ordering::Relaxed);
                crate::observe::recorder().frame_failed(&frame.camera);
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
    use crate::pipeline::hotlists::{AlertTarget, Hotlists};
    use crate::track::{BestFrame, Direction, EarlyBasis, Reading};

    /// Tracks are a minute apart (separate passes) unless a test says otherwise.
    fn at(track: u64) -> i64 {
        1_790_000_000_000 + track as i64 * 60_000
    }

    fn reading(text: &str, confidence: f32, ms: i64) -> Reading<Images> {
        Reading {
            plate: Plate::new(text).unwrap(),
            confidence,
            char_confidences: vec![confidence; text.len()],
            candidates: vec![PlateCandidate { plate: Plate::new(text).unwrap(), confidence }],
            region: None,
            best: BestFrame {
                frame_seq: 3,
                captured_at_ms: ms,
                bbox: [10, 10, 80, 20],
                confidence,
                crop: Images { crop: vec![0xFF, 0xD8, 1], frame: None },
            },
        }
    }

    fn early(track: u64, text: &str) -> TrackEvent<Images> {
        early_on("c", track, text, at(track) + 300)
    }

    fn early_on(camera: &str, track: u64, text: &str, ms: i64) -> TrackEvent<Images> {
        TrackEvent::Early(EarlyRead {
            track_id: TrackId(track),
            camera_id: camera.into(),
            frames: 3,
            agreeing_frames: 3,
            basis: EarlyBasis::Agreement,
            reading: reading(text, 0.6, ms),
        })
    }

    fn closed(track: u64, text: &str) -> TrackEvent<Images> {
        closed_on("c", track, text, at(track), at(track) + 1000)
    }

    fn closed_on(camera: &str, track: u64, text: &str, first_ms: i64, last_ms: i64) -> TrackEvent<Images> {
        TrackEvent::Vehicle(VehicleRead {
            track_id: TrackId(track),
            camera_id: camera.into(),
            reading: reading(text, 0.7, first_ms + 300),
            first_seen_ms: first_ms,
            last_seen_ms: last_ms,
            frames: 9,
            agreeing_frames: 7,
            direction: Direction::Approaching,
            parked: false,
            report: 0,
        })
    }

    /// A store in `dir` and a read sink with a hotlist of MUC4821 (exact) and KPW55* (wildcard).
    fn store_and_sink(dir: &std::path::Path) -> (Arc<crate::store::Store>, ReadSink) {
        let store = Arc::new(crate::store::Store::open(&crate::store::StoreOptions::at(dir.join("store"))).unwrap().0);
        let list = dir.join("hot.csv");
        std::fs::write(
            &list,
            "plate,region,category,priority,source,expiry,notes\nMUC4821,,stolen,1,t,,\nKPW55*,,wanted,1,t,,\n",
        )
        .unwrap();
        let target = AlertTarget { site: "s".into(), device: "d".into(), max_packet_bytes: 1 << 20 };
        let hotlists = Arc::new(Hotlists::load(store.clone(), &[list], 0, target).unwrap());
        let sink = ReadSink { store: store.clone(), hotlists, uplink: None };
        (store, sink)
    }

    /// The messages waiting in the outbox, as JSON.
    fn outbox(store: &crate::store::Store) -> Vec<serde_json::Value> {
        store.outbox_peek(None, 100).unwrap().iter().map(|m| serde_json::from_slice(&m.payload).unwrap()).collect()
    }

    #[test]
    fn a_hotlisted_early_read_alerts_provisionally_and_its_pass_confirms_changes_or_withdraws_it() {
        let dir = tempfile::tempdir().unwrap();
        let (store, sink) = store_and_sink(dir.path());
        let stats = AnalyseStats::default();
        let mut ev = Events {
            sink: &sink,
            stats: &stats,
            early_alerts: true,
            provisional: HashMap::new(),
            recent: Recent::new(&TrackerConfig::default()),
        };

        // Not hotlisted: the early read is not stored; the pass's vote is, once.
        ev.handle(vec![early(1, "7KQX214")]);
        assert_eq!(store.count_reads(), 0);
        ev.handle(vec![closed(1, "7KQX214")]);
        assert_eq!((store.count_reads(), outbox(&store).len()), (1, 0));

        // Hotlisted: stored and alerted at once, provisional, saying how sure.
        ev.handle(vec![early(2, "MUC4821")]);
        assert_eq!(store.count_reads(), 2);
        let msgs = outbox(&store);
        assert_eq!(msgs.len(), 1);
        let id = msgs[0]["id"].clone();
        assert_eq!((msgs[0]["stage"].as_str(), msgs[0]["revision"].as_u64()), (Some("provisional"), Some(0)));
        assert_eq!(msgs[0]["certainty"]["basis"], "agreement");
        assert_eq!(msgs[0]["certainty"]["agreeing_frames"], 3);
        // The pass closes on the same text: confirmed under the same id; no second read.
        ev.handle(vec![closed(2, "MUC4821")]);
        assert_eq!(store.count_reads(), 2, "one stored read per vehicle");
        let msgs = outbox(&store);
        assert_eq!(msgs.len(), 2);
        assert_eq!(
            (&msgs[1]["id"], msgs[1]["stage"].as_str(), msgs[1]["revision"].as_u64()),
            (&id, Some("confirmed"), Some(1))
        );
        assert_eq!(msgs[1]["final_read"]["plate"], "MUC4821");
        let uid: uuid::Uuid = id.as_str().unwrap().parse().unwrap();
        assert_eq!(crate::alert::stage_of(&store.alert(uid).unwrap().unwrap()), AlertStage::Confirmed);

        // A wildcard entry hit by another text of the pass: changed. A vote that hits nothing: withdrawn.
        ev.handle(vec![early(3, "KPW5513"), early(4, "MUC4821")]);
        ev.handle(vec![closed(3, "KPW5518"), closed(4, "WXY9990")]);
        let msgs = outbox(&store);
        let stages: Vec<(&str, u64)> =
            msgs[2..].iter().map(|m| (m["stage"].as_str().unwrap(), m["revision"].as_u64().unwrap())).collect();
        assert_eq!(stages, [("provisional", 0), ("provisional", 0), ("changed", 1), ("withdrawn", 1)]);
        assert_eq!(msgs[4]["id"], msgs[2]["id"]);
        assert_eq!(msgs[5]["id"], msgs[3]["id"]);
        assert_eq!(store.count_reads(), 4);
        assert_eq!(stats.alert_updates.load(Ordering::Relaxed), 3);

        // With early alerts off, only the pass's vote is stored and alerted on, as confirmed.
        let mut off = Events {
            sink: &sink,
            stats: &stats,
            early_alerts: false,
            provisional: HashMap::new(),
            recent: Recent::new(&TrackerConfig::default()),
        };
        off.handle(vec![early(5, "MUC4821"), closed(5, "MUC4821")]);
        let msgs = outbox(&store);
        assert_eq!(
            (msgs.len(), msgs[6]["stage"].as_str(), msgs[6]["certainty"]["basis"].as_str()),
            (7, Some("confirmed"), Some("pass"))
        );
        assert_eq!(store.count_reads(), 5);

        // The vote hits another entry than the early read did: the first is withdrawn, the other alerted
        // (confirmed) on the vehicle's one stored read.
        ev.handle(vec![early(6, "MUC4821")]);
        ev.handle(vec![closed(6, "KPW5599")]);
        let msgs = outbox(&store);
        let tail: Vec<(&str, u64, &str)> = msgs[7..]
            .iter()
            .map(|m| {
                (m["stage"].as_str().unwrap(), m["revision"].as_u64().unwrap(), m["hit"]["entry"].as_str().unwrap())
            })
            .collect();
        assert_eq!(tail, [("provisional", 0, "MUC4821"), ("withdrawn", 1, "MUC4821"), ("confirmed", 0, "KPW55*")]);
        assert_eq!(msgs[9]["read"]["id"], msgs[7]["read"]["id"]);
        assert_eq!(store.count_reads(), 6);
    }

    #[test]
    fn a_car_whose_track_splits_gets_one_alert_id_per_entry_and_camera_updated_by_each_track() {
        let dir = tempfile::tempdir().unwrap();
        let (store, sink) = store_and_sink(dir.path());
        let stats = AnalyseStats::default();
        let cfg = TrackerConfig::default();
        let mut ev = Events {
            sink: &sink,
            stats: &stats,
            early_alerts: true,
            provisional: HashMap::new(),
            recent: Recent::new(&cfg),
        };
        let entries = |from: usize| -> Vec<(String, String, u64)> {
            outbox(&store)[from..]
                .iter()
                .map(|m| {
                    (
                        m["id"].as_str().unwrap().to_string(),
                        m["stage"].as_str().unwrap().to_string(),
                        m["revision"].as_u64().unwrap(),
                    )
                })
                .collect()
        };
        let t = at(1);

        // Track 1 alerts; the car's track splits and track 2 reads the same plate while 1 is still open.
        ev.handle(vec![early_on("c", 1, "MUC4821", t + 300)]);
        ev.handle(vec![early_on("c", 2, "MUC4821", t + 900)]);
        assert_eq!(outbox(&store).len(), 1, "no second alert for the same vehicle and entry");
        assert_eq!(store.count_reads(), 1, "one stored read per vehicle");
        // Both tracks close: each updates the one alert, with the next revision.
        ev.handle(vec![closed_on("c", 1, "MUC4821", t, t + 800)]);
        ev.handle(vec![closed_on("c", 2, "MUC4821", t + 900, t + 2000)]);
        let first = entries(0);
        let id = first[0].0.clone();
        assert_eq!(
            first,
            [
                (id.clone(), "provisional".into(), 0),
                (id.clone(), "confirmed".into(), 1),
                (id.clone(), "confirmed".into(), 2)
            ]
        );
        assert_eq!(store.count_reads(), 1);

        // A third piece with no early read, starting within the tracker's gap plus margin of the last
        // frame: its vote updates the same alert; no read stored, no new id.
        ev.handle(vec![closed_on("c", 3, "MUC4821", t + 2000 + 2 * cfg.gap_ms, t + 5000 + 2 * cfg.gap_ms)]);
        let tail = entries(3);
        assert_eq!(tail, [(id.clone(), "confirmed".into(), 3)]);
        assert_eq!(store.count_reads(), 1);

        // Never folded: the same entry on another camera, another entry on the same camera (both in
        // the window), and the same entry on the same camera after the window.
        ev.handle(vec![early_on("c2", 4, "MUC4821", t + 6000), early_on("c", 5, "KPW5513", t + 6000)]);
        let tail = entries(4);
        assert_eq!(tail.len(), 2);
        assert!(tail.iter().all(|(i, stage, rev)| *i != id && stage == "provisional" && *rev == 0));
        assert_ne!(tail[0].0, tail[1].0);
        let late = t + 5000 + 4 * cfg.gap_ms + 1;
        ev.handle(vec![closed_on("c", 6, "MUC4821", late, late + 500)]);
        let tail = entries(6);
        assert_eq!(tail.len(), 1);
        assert_ne!(tail[0].0, id);
        assert_eq!((tail[0].1.as_str(), tail[0].2), ("confirmed", 0));
        assert_eq!(store.count_reads(), 4);
    }

    fn frame(w: u32, h: u32, data: Vec<u8>) -> Frame {
        Frame { camera: "c".into(), seq: 0, captured_at_ms: 0, width: w, height: h, format: PixelFormat::Bgr, data }
    }

    #[test]
    fn packed_bgr_becomes_an_image_and_wrong_sizes_are_errors() {
        let bgr = frame_to_bgr(&frame(4, 2, (0..24).collect())).unwrap();
        assert_eq!((bgr.cols(), bgr.rows(), bgr.channels()), (4, 2, 3));
        assert_eq!(*bgr.at_2d::<opencv::core::Vec3b>(1, 1).unwrap(), opencv::core::Vec3b::from([15, 16, 17]));
        assert!(matches!(frame_to_bgr(&frame(4, 2, vec![0; 23])), Err(FrameError::Size { .. })));
        assert!(matches!(frame_to_bgr(&frame(1, 1, vec![0; 3])), Err(FrameError::Size { .. })));
    }

    /// Grey I420 (U = V = 128) becomes grey in BGR, video range expanded as decoders' I420 is
    /// (Y 200 -> (200 - 16) * 255 / 219 = 214, what videoconvert gave before), through both the owned image
    /// and the reused one; odd sides are refused.
    #[test]
    fn i420_becomes_bgr_and_odd_sides_are_errors() {
        let mut data = vec![200u8; 4 * 2];
        data.extend([128u8; 4]);
        let f = Frame { format: PixelFormat::I420, ..frame(4, 2, data) };
        let owned = frame_to_bgr(&f).unwrap();
        assert_eq!((owned.cols(), owned.rows(), owned.channels()), (4, 2, 3));
        let px = *owned.at_2d::<opencv::core::Vec3b>(1, 3).unwrap();
        assert!(px.iter().all(|&c| c.abs_diff(214) <= 1), "{px:?}");
        let same = with_bgr(&f, |m| *m.at_2d::<opencv::core::Vec3b>(1, 3).unwrap()).unwrap();
        assert_eq!(same, px);
        let odd = Frame { format: PixelFormat::I420, ..frame(3, 2, vec![0; 3 * 2 + 2]) };
        assert!(matches!(with_bgr(&odd, |_| ()), Err(FrameError::Size { .. })));
    }
}
