//! The tracker: frame reads in, early and vehicle reads out (rules in the [module docs](super)).
//!
//! Time: `now_ms` must be on the capture clock of `captured_at_ms`. Ingest that runs live passes the
//! wall clock; a consumer working through a backlog passes the capture time of the frame it is at, so
//! that tracks do not close while their frames wait in a queue.

use super::config::{ConfigError, TrackerConfig};
use super::motion::{Motion, Path, Rect};
use super::read::{EarlyBasis, EarlyRead, FrameRead, TrackEvent, TrackId, VehicleRead};
use super::text::similarity;
use super::vote::Ballot;
use crate::domain::Plate;
use std::collections::BTreeMap;

/// Counters for metrics: what went in, what came out, what was dropped and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackStats {
    pub frames: u64,
    pub tracks_opened: u64,
    /// Remembered tracks that a read at the same spot brought back (parked cars after a gap).
    pub tracks_resumed: u64,
    pub early_reads: u64,
    /// Every vehicle read, repeats included.
    pub vehicle_reads: u64,
    /// Vehicle reads that repeat a parked car's report.
    pub repeat_reads: u64,
    pub dropped_few_frames: u64,
    pub dropped_low_confidence: u64,
    /// Tracks closed early because their camera had `max_tracks_per_camera` open.
    pub evicted: u64,
    /// Tracks closed `exit_gap_ms` after their last frame because their box had driven out of the view.
    pub left_view: u64,
}

/// The frames since a track's last report: what its next report votes over.
#[derive(Debug)]
struct Window<C> {
    ballot: Ballot<C>,
    path: Path,
    first_seen_ms: i64,
    last_seen_ms: i64,
}

#[derive(Debug)]
struct Track<C> {
    id: TrackId,
    camera_id: String,
    motion: Motion,
    /// None right after a report, until the next frame.
    window: Option<Window<C>>,
    /// The voted text so far and the last frame's text, which new reads are compared with.
    lead: Plate,
    last_text: Plate,
    last_frame: (u64, i64),
    early_sent: bool,
    /// The text of the last early read, and how many went out: a track whose vote moves to another text
    /// (the first early read was a misread, which may have hit no hotlist) raises one again for the new
    /// text, at most [`MAX_EARLY_READS`] times.
    early_text: Option<Plate>,
    earlies: u32,
    reports: u32,
    /// Capture time of the last frame of the last report.
    last_report_ms: i64,
}

#[derive(Debug)]
struct Camera<C> {
    open: Vec<Track<C>>,
    /// Closed tracks that reported and stood still when last seen, kept `parked_repeat_ms` after their
    /// last frame so that a read at the same spot resumes them. They hold no frames (no crops).
    dormant: Vec<Track<C>>,
}

impl<C> Default for Camera<C> {
    fn default() -> Self {
        Camera { open: Vec::new(), dormant: Vec::new() }
    }
}

/// Where a read may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Open(usize),
    Dormant(usize),
}

/// Which texts are watched for (on a hotlist): a frame that reads one with `early_confidence` raises the
/// track's early read at once, without waiting for `early_min_frames` (see [`Tracker::watching`]).
#[derive(Default)]
pub struct Watch(Option<WatchFn>);

/// Whether a plate's text is watched for (clippy's type_complexity on the field's type written out).
type WatchFn = Box<dyn Fn(&Plate) -> bool + Send>;

impl Watch {
    fn hits(&self, p: &Plate) -> bool {
        self.0.as_ref().is_some_and(|f| f(p))
    }
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "Watch(set)" } else { "Watch(none)" })
    }
}

/// What a camera's analysis sees: its frame and region of interest (frame pixels; empty: the whole frame).
/// A plate whose centre is outside is never read, so a track carried out of it has left.
#[derive(Debug, Clone, PartialEq)]
struct Bounds {
    width: f32,
    height: f32,
    roi: Vec<[u32; 2]>,
}

impl Bounds {
    fn holds(&self, r: &Rect) -> bool {
        (0.0..self.width).contains(&r.cx)
            && (0.0..self.height).contains(&r.cy)
            && crate::recognize::geometry::in_polygon(&self.roi, r.cx, r.cy)
    }
}

#[derive(Debug)]
pub struct Tracker<C> {
    cfg: TrackerConfig,
    cameras: BTreeMap<String, Camera<C>>,
    /// Per camera, from [`Tracker::set_view`]; a camera without one closes on `gap_ms` only.
    views: BTreeMap<String, Bounds>,
    next_id: u64,
    stats: TrackStats,
    watch: Watch,
}

impl<C: Clone> Tracker<C> {
    pub fn new(cfg: TrackerConfig) -> Result<Tracker<C>, ConfigError> {
        cfg.validate()?;
        Ok(Tracker {
            cfg,
            cameras: BTreeMap::new(),
            views: BTreeMap::new(),
            next_id: 1,
            stats: TrackStats::default(),
            watch: Watch::default(),
        })
    }

    /// Texts to watch for: the first frame of a track that reads one of them with `early_confidence`
    /// raises the track's early read ([`EarlyBasis::ConfidentFrame`]) if the track's vote is that text,
    /// rather than after `early_min_frames` frames. The caller passes its hotlist check, so that a hit is
    /// alerted on the first confident read while the vote over the pass still confirms, changes or
    /// withdraws it.
    pub fn watching(mut self, watched: impl Fn(&Plate) -> bool + Send + 'static) -> Tracker<C> {
        self.watch = Watch(Some(Box::new(watched)));
        self
    }

    /// The camera's frame size and region of interest (empty: the whole frame), in the pixels of its
    /// reads' boxes. With it, a track whose box has moved out of that view at its last velocity closes
    /// after `exit_gap_ms` instead of `gap_ms`. Cheap to call for every frame.
    pub fn set_view(&mut self, camera: &str, width: u32, height: u32, roi: &[[u32; 2]]) {
        let (width, height) = (width as f32, height as f32);
        match self.views.get_mut(camera) {
            Some(b) if b.width == width && b.height == height && b.roi == roi => {}
            Some(b) => *b = Bounds { width, height, roi: roi.to_vec() },
            None => {
                self.views.insert(camera.to_string(), Bounds { width, height, roi: roi.to_vec() });
            }
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &TrackStats {
        &self.stats
    }

    /// Tracks not yet closed, all cameras.
    pub fn open_tracks(&self) -> usize {
        self.cameras.values().map(|c| c.open.len()).sum()
    }

    /// One frame read. Reads of the same frame should go together through [`Tracker::push_frame`], so
    /// that they are assigned together rather than first come, first served.
    pub fn push(&mut self, r: FrameRead<C>, now_ms: i64) -> Vec<TrackEvent<C>> {
        self.push_frame(vec![r], now_ms)
    }

    /// The reads of one analysed frame (any cameras). First closes what is idle at `now_ms` (or at the
    /// newest capture time given, if later), then assigns the reads: every allowed (read, track) pair
    /// is scored, pairs are taken cheapest first while both are free, and reads left over resume a
    /// remembered track or start a new one. Events come in that order: closes, then per read.
    pub fn push_frame(&mut self, reads: Vec<FrameRead<C>>, now_ms: i64) -> Vec<TrackEvent<C>> {
        let clock = reads.iter().map(|r| r.captured_at_ms).fold(now_ms, i64::max);
        let mut events = self.tick(clock);
        let mut groups: Vec<(String, Vec<FrameRead<C>>)> = Vec::new();
        for r in reads {
            match groups.iter_mut().find(|g| g.0 == r.camera_id) {
                Some(g) => g.1.push(r),
                None => groups.push((r.camera_id.clone(), vec![r])),
            }
        }
        for (camera, reads) in groups {
            self.assign(camera, reads, &mut events);
        }
        events
    }

    /// Closes the tracks not seen for `gap_ms`, or for `exit_gap_ms` when they have driven out of the
    /// camera's view (reporting or dropping each), and forgets remembered tracks older than
    /// `parked_repeat_ms`.
    pub fn tick(&mut self, now_ms: i64) -> Vec<TrackEvent<C>> {
        let mut events = Vec::new();
        let Tracker { cfg, cameras, stats, views, .. } = self;
        for (id, cam) in cameras.iter_mut() {
            let view = views.get(id);
            let (mut idle, open): (Vec<_>, Vec<_>) = std::mem::take(&mut cam.open).into_iter().partition(|t| {
                let unseen = now_ms.saturating_sub(t.motion.last_ms);
                if unseen > cfg.gap_ms {
                    return true;
                }
                let left = view.is_some_and(|v| left_view(cfg, t, v, now_ms, unseen));
                stats.left_view += u64::from(left);
                left
            });
            cam.open = open;
            idle.sort_by_key(|t| (t.motion.last_ms, t.id));
            for t in idle {
                close(cfg, stats, cam, t, &mut events);
            }
            cam.dormant.retain(|t| now_ms.saturating_sub(t.motion.last_ms) <= cfg.parked_repeat_ms);
        }
        cameras.retain(|_, c| !c.open.is_empty() || !c.dormant.is_empty());
        events
    }

    /// Shutdown: closes every track now, whatever its age, and forgets the remembered ones.
    pub fn flush(&mut self) -> Vec<TrackEvent<C>> {
        let mut events = Vec::new();
        let Tracker { cfg, cameras, stats, .. } = self;
        for cam in cameras.values_mut() {
            let mut open = std::mem::take(&mut cam.open);
            open.sort_by_key(|t| (t.motion.last_ms, t.id));
            for t in open {
                close(cfg, stats, cam, t, &mut events);
            }
        }
        cameras.clear();
        events
    }

    fn assign(&mut self, camera: String, reads: Vec<FrameRead<C>>, events: &mut Vec<TrackEvent<C>>) {
        let Tracker { cfg, cameras, next_id, stats, watch, .. } = self;
        stats.frames += reads.len() as u64;
        let cam = cameras.entry(camera.clone()).or_default();
        let rects: Vec<Rect> = reads.iter().map(|r| Rect::from_bbox(r.bbox)).collect();
        let mut pairs: Vec<(f32, usize, Slot)> = Vec::new();
        for (i, r) in reads.iter().enumerate() {
            for (j, t) in cam.open.iter().enumerate() {
                if let Some(c) = open_cost(cfg, t, r, &rects[i]) {
                    pairs.push((c, i, Slot::Open(j)));
                }
            }
            for (j, t) in cam.dormant.iter().enumerate() {
                if let Some(c) = dormant_cost(cfg, t, r, &rects[i]) {
                    pairs.push((c, i, Slot::Dormant(j)));
                }
            }
        }
        // Greedy, cheapest pair first; ties by read, then slot, so the outcome never depends on sort
        // stability. Optimal assignment (Hungarian) buys nothing at a handful of plates per frame.
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut slot_of: Vec<Option<Slot>> = vec![None; reads.len()];
        let mut taken: Vec<Slot> = Vec::new();
        for (_, i, s) in pairs {
            if slot_of[i].is_none() && !taken.contains(&s) {
                slot_of[i] = Some(s);
                taken.push(s);
            }
        }
        let mut dormant: Vec<Option<Track<C>>> = std::mem::take(&mut cam.dormant).into_iter().map(Some).collect();
        let mut later: Vec<(Option<Track<C>>, FrameRead<C>, Rect)> = Vec::new();
        for ((r, rect), slot) in reads.into_iter().zip(rects).zip(slot_of) {
            match slot {
                Some(Slot::Open(j)) => update(cfg, stats, watch, &mut cam.open[j], r, rect, events),
                Some(Slot::Dormant(j)) => later.push((dormant[j].take(), r, rect)),
                None => later.push((None, r, rect)),
            }
        }
        cam.dormant = dormant.into_iter().flatten().collect();
        for (resumed, r, rect) in later {
            let mut track = match resumed {
                Some(t) => {
                    stats.tracks_resumed += 1;
                    t
                }
                None => {
                    stats.tracks_opened += 1;
                    let id = TrackId(*next_id);
                    *next_id += 1;
                    Track {
                        id,
                        camera_id: camera.clone(),
                        motion: Motion::new(rect, r.captured_at_ms),
                        window: None,
                        lead: r.plate.clone(),
                        last_text: r.plate.clone(),
                        last_frame: (r.frame_seq, r.captured_at_ms),
                        early_sent: false,
                        early_text: None,
                        earlies: 0,
                        reports: 0,
                        last_report_ms: r.captured_at_ms,
                    }
                }
            };
            if cam.open.len() >= cfg.max_tracks_per_camera {
                // The least recently seen track is the likeliest to be gone already.
                if let Some(k) = (0..cam.open.len()).min_by_key(|&k| (cam.open[k].motion.last_ms, cam.open[k].id)) {
                    let t = cam.open.remove(k);
                    stats.evicted += 1;
                    close(cfg, stats, cam, t, events);
                }
            }
            update(cfg, stats, watch, &mut track, r, rect, events);
            cam.open.push(track);
        }
    }
}

/// How alike the read's text is to the track's: the better of its voted text and its last text, so that
/// a read like the last misread still joins.
fn text_similarity<C>(cfg: &TrackerConfig, t: &Track<C>, r: &FrameRead<C>) -> f32 {
    let text = r.plate.expose().as_bytes();
    similarity(text, t.lead.expose().as_bytes(), cfg.confusable_cost).max(similarity(
        text,
        t.last_text.expose().as_bytes(),
        cfg.confusable_cost,
    ))
}

fn size_ok(cfg: &TrackerConfig, expected: &Rect, got: &Rect) -> bool {
    let ratio = got.w / expected.w;
    ratio <= cfg.max_size_ratio && ratio >= 1.0 / cfg.max_size_ratio
}

/// The cost of giving read `r` to open track `t`, or None when a gate forbids it.
fn open_cost<C>(cfg: &TrackerConfig, t: &Track<C>, r: &FrameRead<C>, rect: &Rect) -> Option<f32> {
    if t.last_frame == (r.frame_seq, r.captured_at_ms) {
        return None; // two plates in one frame are two vehicles
    }
    let dt_ms = r.captured_at_ms.saturating_sub(t.motion.last_ms).max(0);
    // A parked car's velocity is jitter; carried over seconds it would walk the prediction off.
    let horizon = if t.motion.still_ms() >= cfg.parked_after_ms { 0 } else { cfg.gap_ms };
    let pred = t.motion.predict(r.captured_at_ms, horizon);
    let dist = rect.centre_distance(&pred) / pred.w.max(rect.w);
    let growth = if t.motion.has_velocity() { cfg.gate_growth_widths_per_s } else { cfg.max_speed_widths_per_s };
    let gate = (cfg.position_gate_widths + growth * dt_ms as f32 / 1000.0).min(cfg.max_gate_widths);
    if dist > gate || !size_ok(cfg, &pred, rect) {
        return None;
    }
    let sim = text_similarity(cfg, t, r);
    (sim >= cfg.min_text_similarity).then_some(dist / gate + (1.0 - sim))
}

/// Whether track `t`, unseen for `unseen` ms, has driven out of `view`: its box, carried on at its last
/// velocity, is outside by now. A track without velocity (one frame) or standing still stays until
/// `gap_ms`: nothing says where it went.
fn left_view<C>(cfg: &TrackerConfig, t: &Track<C>, view: &Bounds, now_ms: i64, unseen: i64) -> bool {
    cfg.exit_gap_ms > 0
        && unseen >= cfg.exit_gap_ms
        && t.motion.has_velocity()
        && t.motion.still_ms() < STOOD_MS
        && !view.holds(&t.motion.predict(now_ms, cfg.gap_ms))
}

/// The cost of resuming remembered track `t` with read `r`: only where it stood, with a similar text.
fn dormant_cost<C>(cfg: &TrackerConfig, t: &Track<C>, r: &FrameRead<C>, rect: &Rect) -> Option<f32> {
    let last = &t.motion.last;
    let dist = rect.centre_distance(last) / last.w.max(rect.w);
    if dist > cfg.parked_motion_widths || !size_ok(cfg, last, rect) {
        return None;
    }
    let sim = text_similarity(cfg, t, r);
    // After every open pair: a read that continues a pass in view never wakes a remembered one.
    (sim >= cfg.min_text_similarity).then_some(DORMANT_COST + dist / cfg.parked_motion_widths + (1.0 - sim))
}

/// A track whose box stayed within `parked_motion_widths` for this long before it was lost stood
/// there: 6–11 frames at 8–15 fps, longer than a moving car stays within half a plate width (a car
/// crossing the picture at walking pace moves over a plate width a second).
const STOOD_MS: i64 = 750;

/// Added to every dormant pair's cost; above any open pair's (at most 1 + 1).
const DORMANT_COST: f32 = 4.0;

/// Early reads per track at most (one per distinct voted text).
const MAX_EARLY_READS: u32 = 3;

/// Adds a read to its track, then raises the early read or a parked report if one is due.
fn update<C: Clone>(
    cfg: &TrackerConfig,
    stats: &mut TrackStats,
    watch: &Watch,
    t: &mut Track<C>,
    r: FrameRead<C>,
    rect: Rect,
    events: &mut Vec<TrackEvent<C>>,
) {
    let at = r.captured_at_ms;
    // A confident frame of a watched text that has had no early read yet.
    let watched = (t.reports == 0
        && t.earlies < MAX_EARLY_READS
        && super::vote::unit(r.confidence) >= cfg.early_confidence
        && t.early_text.as_ref() != Some(&r.plate)
        && watch.hits(&r.plate))
    .then(|| r.plate.clone());
    t.motion.observe(rect, at, cfg.parked_motion_widths);
    t.last_frame = (r.frame_seq, at);
    t.last_text = r.plate.clone();
    let w = t.window.get_or_insert_with(|| Window {
        ballot: Ballot::default(),
        path: Path::default(),
        first_seen_ms: at,
        last_seen_ms: at,
    });
    w.first_seen_ms = w.first_seen_ms.min(at);
    w.last_seen_ms = w.last_seen_ms.max(at);
    w.path.push(rect);
    w.ballot.add(r);
    let confidence = match w.ballot.leading() {
        Some((lead, confidence)) => {
            t.lead = lead;
            confidence
        }
        None => 0.0,
    };
    // The full reading (which clones the crop handle) only once the early read is due.
    let due = !t.early_sent || (t.earlies < MAX_EARLY_READS && t.early_text.as_ref() != Some(&t.lead));
    // A watched text read confidently in this frame, and the track's vote is that text.
    let watched = watched.filter(|p| *p == t.lead);
    if (due || watched.is_some()) && t.reports == 0 {
        let frames = w.ballot.frames();
        let confident = due && frames >= cfg.early_min_frames && confidence >= cfg.early_confidence;
        let agreeing = if confident || cfg.early_agree_frames == 0 { 0 } else { w.ballot.agreeing(&t.lead) };
        let agreed = due
            && cfg.early_agree_frames > 0
            && agreeing >= cfg.early_agree_frames
            && 2 * agreeing > frames
            && frames >= cfg.min_frames
            && confidence >= cfg.min_confidence;
        // The per-position vote over several frames is a watched text, as sure as a vehicle read must
        // be, though no frame need have read it exactly: a dusk plate misread one character at a time
        // is voted right after a few frames (bench alerts: 0.3 s in, where the exact-agreement rule
        // waited 1.2 s). Only for watched texts: what it costs is a provisional alert a person checks.
        let voted = !(confident || agreed || watched.is_some())
            && due
            && frames >= cfg.early_min_frames
            && confidence >= cfg.min_confidence
            && watch.hits(&t.lead);
        if (confident || agreed || watched.is_some() || voted)
            && let Some(reading) = w.ballot.reading(cfg.max_candidates, cfg.confusable_cost)
        {
            t.early_sent = true;
            t.early_text = Some(reading.plate.clone());
            t.earlies += 1;
            stats.early_reads += 1;
            let basis = match (confident, agreed, watched.is_some()) {
                (true, _, _) => EarlyBasis::Confident,
                (false, true, _) => EarlyBasis::Agreement,
                (false, false, true) => EarlyBasis::ConfidentFrame,
                (false, false, false) => EarlyBasis::Vote,
            };
            let agreeing_frames = if agreed && !confident { agreeing } else { w.ballot.agreeing(&reading.plate) };
            events.push(TrackEvent::Early(EarlyRead {
                track_id: t.id,
                camera_id: t.camera_id.clone(),
                frames,
                agreeing_frames,
                basis,
                reading,
            }));
        }
    }
    if t.motion.still_ms() >= cfg.parked_after_ms
        && (t.reports == 0 || at.saturating_sub(t.last_report_ms) >= cfg.parked_repeat_ms)
        && let Ok(v) = report(cfg, stats, t, true)
    {
        events.push(TrackEvent::Vehicle(v));
    }
}

enum NoReport {
    Empty,
    FewFrames,
    LowConfidence,
}

/// The vehicle read of the track's window, if it qualifies: `min_frames` and `min_confidence`, or an
/// early read already out for a first report. On success the window starts afresh.
fn report<C: Clone>(
    cfg: &TrackerConfig,
    stats: &mut TrackStats,
    t: &mut Track<C>,
    parked: bool,
) -> Result<VehicleRead<C>, NoReport> {
    let w = t.window.as_ref().ok_or(NoReport::Empty)?;
    let reading = w.ballot.reading(cfg.max_candidates, cfg.confusable_cost).ok_or(NoReport::Empty)?;
    let vouched = t.reports == 0 && t.early_sent;
    if !vouched && w.ballot.frames() < cfg.min_frames {
        return Err(NoReport::FewFrames);
    }
    if !vouched && reading.confidence < cfg.min_confidence {
        return Err(NoReport::LowConfidence);
    }
    let agreeing_frames = w.ballot.agreeing(&reading.plate);
    let v = VehicleRead {
        track_id: t.id,
        camera_id: t.camera_id.clone(),
        reading,
        first_seen_ms: w.first_seen_ms,
        last_seen_ms: w.last_seen_ms,
        frames: w.ballot.frames(),
        agreeing_frames,
        direction: w.path.direction(cfg.approach_growth, cfg.min_travel_widths),
        parked,
        report: t.reports,
    };
    t.last_report_ms = w.last_seen_ms;
    t.reports += 1;
    t.window = None;
    stats.vehicle_reads += 1;
    if v.report > 0 {
        stats.repeat_reads += 1;
    }
    Ok(v)
}

/// A track's end: its first report, or a parked car's repeat if due; then remembered if it reported and
/// stood still when last seen.
fn close<C: Clone>(
    cfg: &TrackerConfig,
    stats: &mut TrackStats,
    cam: &mut Camera<C>,
    mut t: Track<C>,
    events: &mut Vec<TrackEvent<C>>,
) {
    let due = t.reports == 0
        || t.window.as_ref().is_some_and(|w| w.last_seen_ms.saturating_sub(t.last_report_ms) >= cfg.parked_repeat_ms);
    if due {
        let parked = t.motion.still_ms() >= cfg.parked_after_ms;
        match report(cfg, stats, &mut t, parked) {
            Ok(v) => events.push(TrackEvent::Vehicle(v)),
            Err(NoReport::FewFrames) if t.reports == 0 => stats.dropped_few_frames += 1,
            Err(NoReport::LowConfidence) if t.reports == 0 => stats.dropped_low_confidence += 1,
            Err(_) => {}
        }
    }
    // Only a car that stood when last seen is remembered (parked, or stopped and then motion-gated): a
    // moving car's pass is over when its track closes, and the next car along the same path (or the same
    // car going round the block) is a new pass, whatever its text.
    if t.reports > 0 && t.motion.still_ms() >= STOOD_MS {
        t.window = None;
        if cam.dormant.len() >= cfg.max_tracks_per_camera
            && let Some(k) = (0..cam.dormant.len()).min_by_key(|&k| (cam.dormant[k].motion.last_ms, cam.dormant[k].id))
        {
            cam.dormant.remove(k);
        }
        cam.dormant.push(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::{Direction, PlateCandidate};

    fn read(cam: &str, seq: u64, at: i64, bbox: [u32; 4], text: &str, conf: f32) -> FrameRead<u64> {
        FrameRead {
            camera_id: cam.into(),
            frame_seq: seq,
            captured_at_ms: at,
            bbox,
            plate: Plate::new(text).unwrap(),
            char_confidences: vec![conf; text.len()],
            confidence: conf,
            candidates: vec![],
            region: Some("CA".into()),
            crop: seq,
        }
    }

    fn tracker(cfg: TrackerConfig) -> Tracker<u64> {
        Tracker::new(cfg).unwrap()
    }

    fn vehicles(evs: &[TrackEvent<u64>]) -> Vec<&VehicleRead<u64>> {
        evs.iter()
            .filter_map(|e| match e {
                TrackEvent::Vehicle(v) => Some(v),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_bad_config_is_refused() {
        let bad = TrackerConfig { min_confidence: 1.5, ..Default::default() };
        assert!(matches!(Tracker::<u64>::new(bad), Err(ConfigError::OutOfRange { key: "min_confidence", .. })));
    }

    #[test]
    fn tick_closes_only_after_the_gap() {
        let mut tr = tracker(TrackerConfig::default());
        assert!(tr.push(read("a", 1, 900, [100, 100, 80, 20], "7ABC123", 0.8), 900).is_empty());
        assert!(tr.push(read("a", 2, 1000, [200, 105, 80, 20], "7ABC123", 0.8), 1000).is_empty());
        assert!(tr.tick(2500).is_empty());
        assert_eq!(tr.open_tracks(), 1);
        let evs = tr.tick(2501);
        let v = vehicles(&evs);
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].first_seen_ms, v[0].last_seen_ms, v[0].frames, v[0].report, v[0].parked),
            (900, 1000, 2, 0, false)
        );
        assert_eq!(v[0].direction, Direction::Right);
        assert_eq!(tr.open_tracks(), 0);
        assert_eq!(tr.stats().vehicle_reads, 1);
        assert!(tr.tick(100_000).is_empty());
    }

    #[test]
    fn push_closes_idle_tracks_by_the_frame_time_too() {
        let mut tr = tracker(TrackerConfig::default());
        tr.push(read("a", 1, 1000, [100, 100, 80, 20], "7ABC123", 0.8), 1000);
        tr.push(read("a", 2, 1100, [100, 100, 80, 20], "7ABC123", 0.8), 1100);
        // `now` lags (a backlog), but a frame captured 2 s later proves the first track gone.
        let evs = tr.push(read("a", 30, 3100, [100, 100, 80, 20], "7ABC123", 0.8), 1200);
        assert_eq!(vehicles(&evs).len(), 1);
        assert_eq!(tr.open_tracks(), 1);
    }

    #[test]
    fn reads_of_one_frame_never_share_a_track() {
        let mut tr = tracker(TrackerConfig::default());
        tr.push_frame(
            vec![read("a", 1, 0, [100, 100, 80, 20], "AB123", 0.8), read("a", 1, 0, [120, 100, 80, 20], "AB123", 0.8)],
            0,
        );
        assert_eq!(tr.open_tracks(), 2);
        // One after the other, the same holds.
        tr.push(read("a", 2, 100, [100, 100, 80, 20], "AB123", 0.8), 100);
        tr.push(read("a", 2, 100, [120, 100, 80, 20], "AB123", 0.8), 100);
        assert_eq!(tr.open_tracks(), 2);
        assert_eq!(tr.stats().tracks_opened, 2);
    }

    #[test]
    fn cameras_are_tracked_apart() {
        let mut tr = tracker(TrackerConfig::default());
        for seq in 0..3 {
            let at = seq as i64 * 100;
            tr.push_frame(
                vec![
                    read("a", seq, at, [100, 100, 80, 20], "AB123", 0.8),
                    read("b", seq, at, [100, 100, 80, 20], "AB123", 0.8),
                ],
                at,
            );
        }
        let evs = tr.flush();
        let v = vehicles(&evs);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].camera_id.as_str(), v[1].camera_id.as_str()), ("a", "b"));
        assert_ne!(v[0].track_id, v[1].track_id);
    }

    #[test]
    fn close_parallel_cars_with_similar_plates_stay_apart() {
        // Two cars two plate widths apart, plates one character apart, reads handed over in either order.
        let mut tr = tracker(TrackerConfig::default());
        for i in 0..12u32 {
            let at = i as i64 * 100;
            let y = 100 + 15 * i;
            // Cross-misreads are the most confident frames: on the wrong track they would be its best crop.
            let mut a = read(
                "a",
                i as u64,
                at,
                [400, y, 80, 20],
                if i == 4 { "7ABC128" } else { "7ABC123" },
                if i == 4 { 0.95 } else { 0.8 },
            );
            let mut b = read(
                "a",
                i as u64,
                at,
                [560, y + 2, 80, 20],
                if i == 6 { "7ABC123" } else { "7ABC128" },
                if i == 6 { 0.95 } else { 0.8 },
            );
            a.crop = 1000 + i as u64;
            b.crop = 2000 + i as u64;
            let frame = if i % 2 == 0 { vec![a, b] } else { vec![b, a] };
            tr.push_frame(frame, at);
        }
        let evs = tr.flush();
        let mut v = vehicles(&evs);
        v.sort_by_key(|v| v.reading.best.crop);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].reading.plate.expose(), "7ABC123");
        assert!(v[0].reading.best.crop < 2000);
        assert_eq!(v[1].reading.plate.expose(), "7ABC128");
        assert!(v[1].reading.best.crop >= 2000);
        assert_eq!(v[0].frames, 12);
        assert_eq!(v[0].direction, Direction::Down);
    }

    #[test]
    fn identical_plates_two_widths_apart_are_told_apart_by_position() {
        // Cloned plates in neighbouring lanes, driving opposite ways; the reads come in either order.
        let mut tr = tracker(TrackerConfig::default());
        for i in 0..12u32 {
            let at = i as i64 * 100;
            let mut a =
                read("a", i as u64, at, [400, 100 + 15 * i, 80, 20], "7ABC123", if i == 5 { 0.99 } else { 0.8 });
            let mut b =
                read("a", i as u64, at, [560, 400 - 15 * i, 80, 20], "7ABC123", if i == 7 { 0.99 } else { 0.8 });
            a.crop = 1000 + i as u64;
            b.crop = 2000 + i as u64;
            tr.push_frame(if i % 2 == 0 { vec![a, b] } else { vec![b, a] }, at);
        }
        let evs = tr.flush();
        let mut v = vehicles(&evs);
        v.sort_by_key(|v| v.reading.best.crop);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].reading.best.crop, v[0].direction, v[0].frames), (1005, Direction::Down, 12));
        assert_eq!((v[1].reading.best.crop, v[1].direction, v[1].frames), (2007, Direction::Up, 12));
    }

    #[test]
    fn a_different_plate_does_not_join_even_in_place() {
        let mut tr = tracker(TrackerConfig::default());
        tr.push(read("a", 1, 0, [100, 100, 80, 20], "7ABC123", 0.8), 0);
        tr.push(read("a", 2, 100, [100, 100, 80, 20], "KXM4490", 0.8), 100);
        assert_eq!(tr.open_tracks(), 2);
    }

    #[test]
    fn an_early_read_goes_out_once_and_vouches_for_its_track() {
        let cfg = TrackerConfig { early_min_frames: 1, min_frames: 3, ..Default::default() };
        let mut tr = tracker(cfg);
        let evs = tr.push(read("a", 1, 0, [100, 100, 80, 20], "7ABC123", 0.95), 0);
        assert_eq!(evs.len(), 1);
        let TrackEvent::Early(e) = &evs[0] else { panic!("expected an early read") };
        assert_eq!((e.frames, e.reading.plate.expose()), (1, "7ABC123"));
        assert!(tr.push(read("a", 2, 100, [100, 100, 80, 20], "7ABC123", 0.95), 100).is_empty());
        // Two frames, fewer than min_frames, but an alert may already point at this pass.
        let evs = tr.tick(10_000);
        assert_eq!(vehicles(&evs).len(), 1);
        assert_eq!(evs[0].track_id(), e.track_id);
        assert_eq!(tr.stats().early_reads, 1);
        assert_eq!(tr.stats().dropped_few_frames, 0);
    }

    #[test]
    fn a_watched_text_read_confidently_raises_the_early_read_on_its_first_frame() {
        let watched = |tr: Tracker<u64>| tr.watching(|p: &Plate| p.expose() == "MUC4821" || p.expose() == "KPW5513");
        let early = |evs: &[TrackEvent<u64>]| -> Vec<(String, EarlyBasis, u32)> {
            evs.iter()
                .filter_map(|e| {
                    if let TrackEvent::Early(e) = e {
                        Some((e.reading.plate.expose().to_string(), e.basis, e.frames))
                    } else {
                        None
                    }
                })
                .collect()
        };
        // Defaults (3 frames before an early read): a watched text is alerted on its first confident frame.
        let mut tr = watched(tracker(TrackerConfig::default()));
        let evs = tr.push(read("a", 1, 0, [100, 100, 80, 20], "MUC4821", 0.95), 0);
        assert_eq!(early(&evs), [("MUC4821".to_string(), EarlyBasis::ConfidentFrame, 1)]);
        assert!(
            early(&tr.push(read("a", 2, 100, [100, 100, 80, 20], "MUC4821", 0.97), 100)).is_empty(),
            "once per text"
        );
        // Not watched, or watched but not confident: no early read on the first frame.
        let evs = tr.push_frame(
            vec![
                read("b", 1, 0, [100, 100, 80, 20], "7ABC123", 0.99),
                read("c", 1, 0, [100, 100, 80, 20], "KPW5513", 0.6),
            ],
            200,
        );
        assert!(early(&evs).is_empty());
        // Without a watch the same frame waits for the vote over 3 frames.
        let mut plain = tracker(TrackerConfig::default());
        assert!(early(&plain.push(read("a", 1, 0, [100, 100, 80, 20], "MUC4821", 0.95), 0)).is_empty());
        // A confident frame of a watched text the track's vote does not lead with (two frames read
        // another text) raises nothing until the vote comes round to it.
        let mut tr = watched(tracker(TrackerConfig::default()));
        tr.push(read("a", 1, 0, [100, 100, 80, 20], "MUC4321", 0.8), 0);
        tr.push(read("a", 2, 100, [100, 100, 80, 20], "MUC4321", 0.8), 100);
        assert!(early(&tr.push(read("a", 3, 200, [100, 100, 80, 20], "MUC4821", 0.9), 200)).is_empty());
        let evs = tr.push(read("a", 4, 300, [100, 100, 80, 20], "MUC4821", 1.0), 300);
        assert_eq!(early(&evs).len(), 1);
        assert_eq!(early(&evs)[0].0, "MUC4821");
    }

    /// The dusk plate of `bench alerts`, as the shipped recognizer read its first frames (each wrong in one
    /// or two places): the per-position vote is the plate after the third frame, and a watched plate is
    /// raised then; the same frames of an unwatched plate wait for exact agreement.
    #[test]
    fn a_watched_text_the_vote_puts_together_raises_the_early_read_before_any_frame_agrees() {
        // Text, confidence, per-character confidences, as read (demo clip at 1080p, frames 121, 123–126).
        let frames: [(&str, f32, &[f32]); 5] = [
            ("MUC421", 0.13, &[1.0, 0.37, 0.51, 0.84, 0.95, 0.98]),
            ("MJC4821", 0.36, &[1.0, 0.67, 0.92, 0.84, 0.69, 1.0, 1.0]),
            ("MUC4321", 0.31, &[1.0, 0.92, 0.99, 0.78, 0.47, 1.0, 1.0]),
            ("MUC4821", 0.21, &[1.0, 0.57, 0.74, 0.87, 0.58, 1.0, 1.0]),
            ("MJ0821", 0.08, &[1.0, 0.79, 0.34, 0.74, 0.91, 0.99]),
        ];
        let run = |tr: &mut Tracker<u64>| -> Vec<(usize, String, EarlyBasis)> {
            let mut out = Vec::new();
            for (i, (text, conf, chars)) in frames.iter().enumerate() {
                let at = i as i64 * 100;
                let mut r = read("a", i as u64, at, [100, 100, 80, 20], text, *conf);
                r.char_confidences = chars.to_vec();
                for e in tr.push(r, at) {
                    if let TrackEvent::Early(e) = e {
                        out.push((i, e.reading.plate.expose().to_string(), e.basis));
                    }
                }
            }
            out
        };
        let mut watched = tracker(TrackerConfig::default()).watching(|p: &Plate| p.expose() == "MUC4821");
        assert_eq!(run(&mut watched), [(2, "MUC4821".to_string(), EarlyBasis::Vote)]);
        let mut plain = tracker(TrackerConfig::default());
        assert!(run(&mut plain).is_empty(), "unwatched: no frame agrees, no vote is sure");
        // A vote below min_confidence is not enough, watched or not.
        let mut strict = tracker(TrackerConfig { min_confidence: 0.95, ..Default::default() })
            .watching(|p: &Plate| p.expose() == "MUC4821");
        assert!(run(&mut strict).is_empty());
    }

    #[test]
    fn unconfident_tracks_raise_no_early_read_without_agreement() {
        let mut tr = tracker(TrackerConfig { early_agree_frames: 0, ..Default::default() });
        for i in 0..10 {
            assert!(
                tr.push(read("a", i, i as i64 * 100, [100, 100, 80, 20], "7ABC123", 0.8), i as i64 * 100).is_empty()
            );
        }
        assert_eq!(tr.stats().early_reads, 0);
        // Frames that keep disagreeing, or agree on a vote below min_confidence, raise none either.
        let mut tr = tracker(TrackerConfig::default());
        for i in 0..10u64 {
            let text = ["7ABC123", "7A8C123", "7ABC1Z3"][i as usize % 3];
            assert!(
                tr.push(read("a", i, i as i64 * 100, [100, 100, 80, 20], text, 0.6), i as i64 * 100)
                    .iter()
                    .all(|e| !matches!(e, TrackEvent::Early(_)))
            );
        }
        for i in 0..10u64 {
            tr.push(read("b", i, i as i64 * 100, [100, 100, 80, 20], "KXM4490", 0.4), i as i64 * 100);
        }
        assert_eq!(tr.stats().early_reads, 0);
    }

    #[test]
    fn a_track_whose_vote_moves_to_another_text_raises_an_early_read_for_it() {
        let mut tr = tracker(TrackerConfig { early_agree_frames: 2, ..Default::default() });
        let mut early = Vec::new();
        for (i, text) in ["MUC4B21", "MUC4B21", "MUC4821", "MUC4821", "MUC4821", "MUC4821"].iter().enumerate() {
            for e in tr.push(read("a", i as u64, i as i64 * 100, [100, 100, 80, 20], text, 0.6), i as i64 * 100) {
                if let TrackEvent::Early(e) = e {
                    early.push((e.track_id, e.reading.plate.expose().to_string()));
                }
            }
        }
        assert_eq!(early.len(), 2, "{early:?}");
        assert_eq!(early[0].0, early[1].0, "the same track");
        assert_eq!((early[0].1.as_str(), early[1].1.as_str()), ("MUC4B21", "MUC4821"));
        assert_eq!(vehicles(&tr.flush()).len(), 1, "still one vehicle read");
    }

    #[test]
    fn frames_that_agree_raise_an_early_read_that_no_frame_was_sure_of() {
        let mut tr = tracker(TrackerConfig { early_agree_frames: 3, ..Default::default() });
        let mut evs = Vec::new();
        for i in 0..3u64 {
            evs.extend(tr.push(read("a", i, i as i64 * 100, [100, 100, 80, 20], "MUC4821", 0.6), i as i64 * 100));
            if i < 2 {
                assert!(evs.is_empty(), "not before the third agreeing frame");
            }
        }
        assert_eq!(evs.len(), 1);
        let TrackEvent::Early(e) = &evs[0] else { panic!("expected an early read") };
        assert_eq!(
            (e.basis, e.frames, e.agreeing_frames, e.reading.plate.expose()),
            (EarlyBasis::Agreement, 3, 3, "MUC4821")
        );
        assert!(e.reading.confidence < 0.9);
        // A confident track says so.
        let mut tr = tracker(TrackerConfig::default());
        let evs: Vec<_> = (0..3u64)
            .flat_map(|i| tr.push(read("a", i, i as i64 * 100, [100, 100, 80, 20], "7ABC123", 0.95), i as i64 * 100))
            .collect();
        let Some(TrackEvent::Early(e)) = evs.first() else { panic!("expected an early read") };
        assert_eq!((e.basis, e.agreeing_frames), (EarlyBasis::Confident, 3));
    }

    #[test]
    fn dropped_tracks_are_counted_by_reason() {
        let mut tr = tracker(TrackerConfig::default());
        tr.push(read("a", 1, 0, [100, 100, 80, 20], "7ABC123", 0.9), 0);
        for i in 0..4 {
            tr.push(
                read("a", 10 + i, 5000 + i as i64 * 100, [900, 100, 80, 20], "KXM4490", 0.3),
                5000 + i as i64 * 100,
            );
        }
        assert!(vehicles(&tr.tick(60_000)).is_empty());
        let s = tr.stats();
        assert_eq!((s.dropped_few_frames, s.dropped_low_confidence, s.vehicle_reads, s.frames), (1, 1, 0, 5));
    }

    #[test]
    fn the_least_recently_seen_track_is_evicted_when_a_camera_is_full() {
        let cfg = TrackerConfig { max_tracks_per_camera: 2, ..Default::default() };
        let mut tr = tracker(cfg);
        tr.push(read("a", 1, 0, [100, 100, 80, 20], "AAA111", 0.9), 0);
        tr.push(read("a", 2, 100, [100, 100, 80, 20], "AAA111", 0.9), 100);
        tr.push(read("a", 3, 200, [900, 100, 80, 20], "BBB222", 0.9), 200);
        let evs = tr.push(read("a", 4, 300, [100, 900, 80, 20], "CCC333", 0.9), 300);
        let v = vehicles(&evs);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].reading.plate.expose(), "AAA111");
        assert_eq!(tr.open_tracks(), 2);
        assert_eq!(tr.stats().evicted, 1);
    }

    #[test]
    fn a_parked_track_resumes_only_in_place_and_with_a_similar_text() {
        let mut tr = tracker(TrackerConfig::default());
        // Parked: the same spot for longer than parked_after_ms (it reports while in view).
        let mut reported = Vec::new();
        for i in 0..=16 {
            let at = i * 1_000;
            let evs = tr.push(read("a", i as u64, at, [100, 100, 80, 20], "7ABC123", 0.9), at);
            reported.extend(vehicles(&evs).iter().map(|v| (v.track_id, v.parked)));
        }
        reported.extend(vehicles(&tr.tick(20_000)).iter().map(|v| (v.track_id, v.parked)));
        assert_eq!(reported.len(), 1, "{reported:?}");
        let (first, parked) = reported[0];
        assert!(parked);
        // One frame, three plates: elsewhere with the same text, in place with another text (two new
        // passes), and in place with a misread of the same plate (resumed).
        for (seq, at, dx) in [(100, 25_000, 4), (101, 25_100, 2)] {
            tr.push_frame(
                vec![
                    read("a", seq, at, [600, 100, 80, 20], "7ABC123", 0.9),
                    read("a", seq, at, [98, 99, 80, 20], "KXM4490", 0.9),
                    read("a", seq, at, [100 + dx, 102, 80, 20], if dx == 4 { "7A8C123" } else { "7ABC123" }, 0.9),
                ],
                at,
            );
        }
        assert_eq!(tr.stats().tracks_resumed, 1);
        // Not reported again before the repeat is due.
        let evs = tr.tick(35_000);
        let v = vehicles(&evs);
        assert_eq!(v.len(), 2, "the two new passes, not the resumed one");
        assert!(v.iter().all(|v| v.track_id != first));
        // Forgotten after parked_repeat_ms without a frame.
        tr.tick(25_100 + 300_001);
        tr.push(read("a", 200, 400_000, [100, 100, 80, 20], "7ABC123", 0.9), 400_000);
        assert_eq!(tr.stats().tracks_resumed, 1);
    }

    #[test]
    fn a_moving_car_that_passed_is_not_resumed_by_the_next_pass_on_its_path() {
        // Two passes of the same plate along the same path, 17 s apart (the same car round the block,
        // or a replayed clip): each is its own track, with its own early read and vehicle read. The second
        // pass's last frames land where the first pass's track was last seen; they must not wake it.
        for watching in [false, true] {
            let t = Tracker::new(TrackerConfig::default()).unwrap();
            let mut t = if watching { t.watching(|p: &Plate| p.expose() == "MUC4821") } else { t };
            let (mut earlies, mut passes) = (0, Vec::new());
            for pass in 0..2i64 {
                let t0 = pass * 17_000;
                for i in 0..20i64 {
                    let at = t0 + i * 100;
                    // The same jittered boxes each pass, as a replayed clip gives.
                    let box_ = [800 + 12 * (i % 2) as u32, (350 + 25 * i) as u32, 110, 30];
                    let evs = t.push(read("a", (pass * 100 + i) as u64, at, box_, "MUC4821", 0.95), at);
                    earlies += evs.iter().filter(|e| matches!(e, TrackEvent::Early(_))).count();
                }
                passes.extend(vehicles(&t.tick(t0 + 5_000)).iter().map(|v| (v.track_id, v.frames)));
            }
            assert_eq!(passes.len(), 2, "one vehicle read per pass: {passes:?}");
            assert!(passes[0].0 != passes[1].0 && passes.iter().all(|p| p.1 == 20), "{passes:?}");
            assert_eq!(t.stats().tracks_resumed, 0);
            assert_eq!(earlies, 2, "an early read per pass (watching: {watching})");
        }
    }

    /// A car driving down a 1920x1080 frame at 100 ms a frame, 40 px a frame, its plate read in frames
    /// `0..n` from y = `y0`; then frames without reads until `until_ms`. Returns when each vehicle read
    /// came out (the `now` of the frame that closed it).
    fn drive(tr: &mut Tracker<u64>, y0: u32, n: u32, until_ms: i64) -> Vec<i64> {
        let mut closed = Vec::new();
        let mut at = 0;
        while at <= until_ms {
            let i = (at / 100) as u32;
            tr.set_view("a", 1920, 1080, &[]);
            let reads =
                if i < n { vec![read("a", i as u64, at, [900, y0 + 40 * i, 120, 30], "7ABC123", 0.9)] } else { vec![] };
            if !vehicles(&tr.push_frame(reads, at)).is_empty() {
                closed.push(at);
            }
            at += 100;
        }
        closed
    }

    #[test]
    fn a_car_that_drives_out_of_the_frame_is_reported_without_waiting_the_gap() {
        // Last read at y = 1010 (centre 1025) moving down 400 px/s: carried on, it is out of the
        // frame 300 ms later, so the pass closes on the frame at exit_gap_ms, not at gap_ms.
        let mut tr = tracker(TrackerConfig::default());
        let closed = drive(&mut tr, 650, 10, 3000);
        assert_eq!(closed, vec![900 + 300], "closed at exit_gap_ms after the last read");
        assert_eq!(tr.stats().left_view, 1);
        // Off: only the gap closes it.
        let mut tr = tracker(TrackerConfig { exit_gap_ms: 0, ..Default::default() });
        assert_eq!(drive(&mut tr, 650, 10, 3000), vec![900 + 1600]);
        assert_eq!(tr.stats().left_view, 0);
    }

    #[test]
    fn a_car_lost_in_the_middle_of_the_frame_keeps_its_track_for_the_gap() {
        // The same car lost at y = 410: carried on for the whole gap it is still in the frame (a missed
        // detection, an occlusion), so its track stays open and a later read joins it.
        let mut tr = tracker(TrackerConfig::default());
        assert_eq!(drive(&mut tr, 50, 10, 3000), vec![900 + 1600]);
        assert_eq!(tr.stats().left_view, 0);
        let mut tr = tracker(TrackerConfig::default());
        drive(&mut tr, 50, 10, 1400);
        tr.push(read("a", 15, 1500, [900, 650, 120, 30], "7ABC123", 0.9), 1500);
        assert_eq!((tr.open_tracks(), tr.stats().tracks_opened), (1, 1), "the read after the miss joins the track");
    }

    #[test]
    fn leaving_the_region_of_interest_is_leaving_the_view() {
        // The region of interest ends at y = 700 (a lane's stretch of road): a car carried past it has
        // left, though the frame goes on.
        let roi = [[0, 0], [1920, 0], [1920, 700], [0, 700]];
        let mut tr = tracker(TrackerConfig::default());
        for i in 0..10u32 {
            let at = i as i64 * 100;
            tr.set_view("a", 1920, 1080, &roi);
            tr.push_frame(vec![read("a", i as u64, at, [900, 300 + 40 * i, 120, 30], "7ABC123", 0.9)], at);
        }
        let closed: Vec<i64> =
            (10..30).map(|i| i * 100).filter(|&at| !vehicles(&tr.push_frame(vec![], at)).is_empty()).collect();
        assert_eq!(closed, vec![1200]);
        // A camera without a view set closes on the gap only.
        let mut tr = tracker(TrackerConfig::default());
        for i in 0..10u32 {
            let at = i as i64 * 100;
            tr.push_frame(vec![read("b", i as u64, at, [900, 650 + 40 * i, 120, 30], "7ABC123", 0.9)], at);
        }
        assert!((10..24).all(|i| tr.push_frame(vec![], i * 100).is_empty()));
        assert_eq!(vehicles(&tr.push_frame(vec![], 2500)).len(), 1);
    }

    #[test]
    fn a_car_that_stopped_at_the_edge_is_not_closed_as_gone() {
        // A car that drove to the bottom edge and stood there 1 s: no velocity worth carrying on.
        let mut tr = tracker(TrackerConfig::default());
        for i in 0..20u32 {
            let at = i as i64 * 100;
            let y = 650 + 40 * i.min(8);
            tr.set_view("a", 1920, 1080, &[]);
            tr.push_frame(vec![read("a", i as u64, at, [900, y, 120, 30], "7ABC123", 0.9)], at);
        }
        assert!((20..35).all(|i| tr.push_frame(vec![], i * 100).is_empty()), "stood still: the gap applies");
        assert_eq!(tr.stats().left_view, 0);
    }

    #[test]
    fn flush_reports_open_tracks_and_forgets_the_rest() {
        let mut tr = tracker(TrackerConfig::default());
        for i in 0..3 {
            tr.push(read("a", i, i as i64 * 100, [100, 100, 80, 20], "7ABC123", 0.9), i as i64 * 100);
        }
        assert_eq!(vehicles(&tr.flush()).len(), 1);
        assert_eq!(tr.open_tracks(), 0);
        tr.push(read("a", 10, 1000, [100, 100, 80, 20], "7ABC123", 0.9), 1000);
        assert_eq!(tr.stats().tracks_resumed, 0);
    }

    #[test]
    fn the_store_record_comes_from_the_best_frame() {
        let mut tr = tracker(TrackerConfig::default());
        let mut r = read("cam-3", 7, 1000, [100, 100, 80, 20], "7ABC123", 0.7);
        r.candidates = vec![
            PlateCandidate { plate: Plate::new("7ABC123").unwrap(), confidence: 0.7 },
            PlateCandidate { plate: Plate::new("7A8C123").unwrap(), confidence: 0.2 },
        ];
        tr.push(r, 1000);
        tr.push(read("cam-3", 8, 1100, [110, 100, 84, 21], "7ABC123", 0.9), 1100);
        tr.push(read("cam-3", 9, 1200, [120, 100, 88, 22], "7A8C123", 0.95), 1200);
        let evs = tr.flush();
        let TrackEvent::Vehicle(v) = evs.into_iter().next().unwrap() else { panic!("expected a vehicle read") };
        assert_eq!(v.reading.best.crop, 8);
        let n = v.into_new_read(Some(vec![0xff, 0xd8]));
        assert_eq!(
            (n.camera_id.as_str(), n.captured_at_ms, n.frame_seq, n.bbox),
            ("cam-3", 1100, 8, [110, 100, 84, 21])
        );
        assert_eq!(n.plate.expose(), "7ABC123");
        assert_eq!(n.char_confidences.len(), 7);
        assert_eq!(n.candidates[0].text, "7ABC123");
        assert_eq!(n.candidates[1].text, "7A8C123");
        assert!((n.candidates[1].confidence - (0.2 + 0.95) / 3.0).abs() < 1e-6);
        assert_eq!(n.region.as_deref(), Some("CA"));
        assert_eq!(n.crop_jpeg, Some(vec![0xff, 0xd8]));
        assert_eq!(n.frame_jpeg, None);
    }

    #[test]
    fn odd_inputs_do_not_break_the_tracker() {
        let mut tr = tracker(TrackerConfig::default());
        tr.push(read("a", 5, 1000, [0, 0, 0, 0], "A", f32::NAN), 1000);
        tr.push(read("a", 4, 900, [0, 0, 0, 0], "A", 2.0), 900); // out of order
        tr.push(read("a", 6, 1100, [u32::MAX, u32::MAX, u32::MAX, 0], "A", -1.0), 1100);
        tr.push(read("a", 7, i64::MIN / 2, [1, 1, 1, 1], "A", 0.5), i64::MIN / 2);
        tr.push(read("b", 1, i64::MAX, [1, 1, 1, 1], "A", 0.5), i64::MAX);
        tr.push(read("b", 2, i64::MIN, [1, 1, 1, 1], "A", 0.5), i64::MIN);
        tr.tick(i64::MIN);
        tr.tick(i64::MAX);
        tr.push(read("c", 1, i64::MIN, [1, 1, 1, 1], "A", 0.5), i64::MIN);
        tr.push(read("c", 2, i64::MAX, [1, 1, 1, 1], "A", 0.5), i64::MIN);
        let evs = tr.flush();
        assert!(vehicles(&evs).iter().all(|v| (0.0..=1.0).contains(&v.reading.confidence)));
    }
}
