//! ALPR telemetry: what tells a blinded, defocused, re-aimed or iced camera from a working one while it still
//! streams frames. Pure logic, no I/O and no clock of its own (times are given), so it is tested with made-up
//! weeks.
//!
//! Per camera:
//! - a **baseline of reads per hour by hour of week** (168 slots, UTC): each hour the camera streamed
//!   through (frames analysed in at least [`COVERED_MINUTES`] of its minutes) is folded into its slot, a plain
//!   mean over the first weeks and then a moving mean. Once a slot has been seen `learn_weeks` times and expects at
//!   least `min_expected_reads_per_hour`, an hour that ends with fewer reads than `rate_drop_ratio` of it
//!   raises [`Reason::ReadRateLow`]; such an hour is not learnt (an iced week must not become normal). The next
//!   hour that meets the ratio clears it.
//! - the **plate height in pixels** of every plate read: the median of the last `height_window` plates must
//!   stay within `[min_plate_height_px, max_plate_height_px]`, else [`Reason::PlateHeightLow`] or
//!   [`Reason::PlateHeightHigh`] (a camera re-aimed or zoomed away, or a lens that lost focus and makes
//!   the detector's boxes swell). Back in the band clears it.
//!
//! No plate text enters here: only counts, times and box heights.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Hours in a week: the baseline's slots.
pub const SLOTS: usize = 168;
/// An hour counts (is judged and learnt) only when frames were analysed in this many of its minutes.
pub const COVERED_MINUTES: u32 = 54;
/// The moving mean's weight of the newest week once the first weeks are learnt (1/4).
const MOVING_WEIGHT: f64 = 0.25;

/// The thresholds, from `[telemetry]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub min_plate_height_px: f64,
    pub max_plate_height_px: f64,
    pub height_window: usize,
    pub rate_drop_ratio: f64,
    pub min_expected_reads_per_hour: f64,
    pub learn_weeks: u32,
}

impl Default for Params {
    /// The defaults of `[telemetry]`.
    fn default() -> Params {
        Params {
            min_plate_height_px: 14.0,
            max_plate_height_px: 240.0,
            height_window: 50,
            rate_drop_ratio: 0.3,
            min_expected_reads_per_hour: 6.0,
            learn_weeks: 1,
        }
    }
}

/// Why a camera is degraded.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Reason {
    /// The hour that ended had `reads`, where its hour of week expects `expected`.
    ReadRateLow { reads: u64, expected: f64 },
    /// The median plate height fell below the band.
    PlateHeightLow { median_px: f64, min_px: f64 },
    /// The median plate height rose above the band.
    PlateHeightHigh { median_px: f64, max_px: f64 },
}

/// The two things watched; a camera has at most one reason of each kind at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ReadRate,
    PlateHeight,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ReadRate => "read_rate",
            Kind::PlateHeight => "plate_height",
        }
    }
}

impl Reason {
    pub fn kind(&self) -> Kind {
        match self {
            Reason::ReadRateLow { .. } => Kind::ReadRate,
            Reason::PlateHeightLow { .. } | Reason::PlateHeightHigh { .. } => Kind::PlateHeight,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::ReadRateLow { reads, expected } => {
                write!(f, "{reads} reads in the last hour where {expected:.1} are usual for this hour of the week")
            }
            Reason::PlateHeightLow { median_px, min_px } => {
                write!(f, "plates are {median_px:.0} px high (median), below the band's {min_px:.0} px")
            }
            Reason::PlateHeightHigh { median_px, max_px } => {
                write!(f, "plates are {median_px:.0} px high (median), above the band's {max_px:.0} px")
            }
        }
    }
}

/// A change of a camera's degraded state.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `camera_degraded`: raised, or its reason of this kind changed.
    Degraded(Reason),
    /// The reason of this kind no longer holds.
    Recovered(Kind),
}

/// The learnt reads per hour, by hour of week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub mean: Vec<f64>,
    pub weeks: Vec<u32>,
}

impl Default for Baseline {
    fn default() -> Baseline {
        Baseline { mean: vec![0.0; SLOTS], weeks: vec![0; SLOTS] }
    }
}

impl Baseline {
    fn fold(&mut self, slot: usize, reads: u64, learn_weeks: u32) {
        let (m, w) = (&mut self.mean[slot], &mut self.weeks[slot]);
        let x = reads as f64;
        if *w < learn_weeks.max(1) {
            *m += (x - *m) / (*w as f64 + 1.0);
        } else {
            *m += (x - *m) * MOVING_WEIGHT;
        }
        *w = w.saturating_add(1);
    }

    /// What the slot expects, once it has been learnt.
    pub fn expected(&self, slot: usize, p: &Params) -> Option<f64> {
        (self.weeks.get(slot).copied().unwrap_or(0) >= p.learn_weeks).then(|| self.mean[slot])
    }

    fn valid(&self) -> bool {
        self.mean.len() == SLOTS && self.weeks.len() == SLOTS && self.mean.iter().all(|m| m.is_finite() && *m >= 0.0)
    }
}

/// The hour of week (0 = Monday 00:00–01:00 UTC) of a time.
pub fn slot_of(ms: i64) -> usize {
    // 1970-01-01 was a Thursday: 3 days (72 hours) after a Monday.
    ((ms.div_euclid(HOUR_MS) + 72).rem_euclid(SLOTS as i64)) as usize
}

const HOUR_MS: i64 = 3_600_000;

/// The hour being counted.
#[derive(Debug, Clone, PartialEq)]
struct Hour {
    start_ms: i64,
    reads: u64,
    /// Bit m: frames were analysed in minute m of the hour.
    minutes: u64,
}

impl Hour {
    fn at(ms: i64) -> Hour {
        Hour { start_ms: ms.div_euclid(HOUR_MS) * HOUR_MS, reads: 0, minutes: 0 }
    }
    fn covered(&self) -> bool {
        self.minutes.count_ones() >= COVERED_MINUTES
    }
}

/// One camera's telemetry.
#[derive(Debug, Clone, Default)]
pub struct Camera {
    pub baseline: Baseline,
    hour: Option<Hour>,
    heights: VecDeque<f32>,
    degraded: BTreeMap<Kind, Reason>,
}

impl Camera {
    pub fn with_baseline(baseline: Baseline) -> Camera {
        Camera { baseline: if baseline.valid() { baseline } else { Baseline::default() }, ..Camera::default() }
    }

    /// The reasons in force, one per kind.
    pub fn degraded(&self) -> Vec<&Reason> {
        self.degraded.values().collect()
    }

    /// Reads counted in the current hour, and what its slot expects (when learnt).
    pub fn this_hour(&self, p: &Params) -> Option<(u64, Option<f64>)> {
        self.hour.as_ref().map(|h| (h.reads, self.baseline.expected(slot_of(h.start_ms), p)))
    }

    /// A frame was analysed at `at_ms`.
    pub fn frame(&mut self, at_ms: i64, p: &Params) -> Vec<Change> {
        let changes = self.roll(at_ms, p);
        if let Some(h) = &mut self.hour {
            let minute = ((at_ms - h.start_ms) / 60_000).clamp(0, 59);
            h.minutes |= 1 << minute;
        }
        changes
    }

    /// A vehicle read of this camera was stored at `at_ms`.
    pub fn read(&mut self, at_ms: i64, p: &Params) -> Vec<Change> {
        let changes = self.roll(at_ms, p);
        if let Some(h) = &mut self.hour {
            h.reads += 1;
        }
        changes
    }

    /// A plate `height_px` high was read.
    pub fn plate(&mut self, height_px: f32, p: &Params) -> Vec<Change> {
        if !height_px.is_finite() || height_px <= 0.0 {
            return Vec::new();
        }
        self.heights.push_back(height_px);
        while self.heights.len() > p.height_window {
            self.heights.pop_front();
        }
        if self.heights.len() < p.height_window {
            return Vec::new();
        }
        let median = median(&self.heights);
        let reason = if median < p.min_plate_height_px {
            Some(Reason::PlateHeightLow { median_px: median, min_px: p.min_plate_height_px })
        } else if median > p.max_plate_height_px {
            Some(Reason::PlateHeightHigh { median_px: median, max_px: p.max_plate_height_px })
        } else {
            None
        };
        self.set(Kind::PlateHeight, reason)
    }

    /// Time passes (no frame, no read): hours that ended are judged.
    pub fn tick(&mut self, now_ms: i64, p: &Params) -> Vec<Change> {
        self.roll(now_ms, p)
    }

    /// Ends the current hour when `now_ms` is past it: judges and learns it, and starts the hour of `now_ms`.
    fn roll(&mut self, now_ms: i64, p: &Params) -> Vec<Change> {
        let mut changes = Vec::new();
        match &self.hour {
            // Within the hour (or before it, after a clock step back): nothing ends.
            Some(h) if now_ms < h.start_ms + HOUR_MS => return changes,
            _ => {}
        }
        if let Some(h) = self.hour.take()
            && h.covered()
        {
            let slot = slot_of(h.start_ms);
            let low = match self.baseline.expected(slot, p) {
                Some(expected) if expected >= p.min_expected_reads_per_hour => ((h.reads as f64)
                    < p.rate_drop_ratio * expected)
                    .then_some(Reason::ReadRateLow { reads: h.reads, expected }),
                // Not judged: nothing to say about the rate.
                _ => None,
            };
            let judged = self.baseline.expected(slot, p).is_some_and(|e| e >= p.min_expected_reads_per_hour);
            if low.is_none() {
                self.baseline.fold(slot, h.reads, p.learn_weeks);
            }
            if judged || low.is_some() {
                changes.extend(self.set(Kind::ReadRate, low));
            }
        }
        self.hour = Some(Hour::at(now_ms));
        changes
    }

    fn set(&mut self, kind: Kind, reason: Option<Reason>) -> Vec<Change> {
        match reason {
            Some(r) => {
                let was = self.degraded.insert(kind, r.clone());
                // A new reason of a kind already raised is news only when it changes its nature (low → high).
                let same = was.as_ref().is_some_and(|w| std::mem::discriminant(w) == std::mem::discriminant(&r));
                if same { Vec::new() } else { vec![Change::Degraded(r)] }
            }
            None => match self.degraded.remove(&kind) {
                Some(_) => vec![Change::Recovered(kind)],
                None => Vec::new(),
            },
        }
    }
}

fn median(v: &VecDeque<f32>) -> f64 {
    let mut s: Vec<f32> = v.iter().copied().collect();
    s.sort_by(f32::total_cmp);
    let n = s.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 { s[n / 2] as f64 } else { (s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0 }
}

/// Every camera's telemetry, by camera id.
#[derive(Debug, Default)]
pub struct Fleet {
    pub params: Params,
    pub cameras: BTreeMap<String, Camera>,
}

/// The baselines as saved between runs (`<state dir>/telemetry.json`).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    pub v: u32,
    pub baselines: BTreeMap<String, Baseline>,
}

impl Fleet {
    pub fn new(params: Params) -> Fleet {
        Fleet { params, cameras: BTreeMap::new() }
    }

    pub fn camera(&mut self, id: &str) -> &mut Camera {
        self.cameras.entry(id.to_string()).or_default()
    }

    pub fn frame(&mut self, id: &str, at_ms: i64) -> Vec<Change> {
        let p = self.params.clone();
        self.camera(id).frame(at_ms, &p)
    }

    pub fn read(&mut self, id: &str, at_ms: i64) -> Vec<Change> {
        let p = self.params.clone();
        self.camera(id).read(at_ms, &p)
    }

    pub fn plate(&mut self, id: &str, height_px: f32) -> Vec<Change> {
        let p = self.params.clone();
        self.camera(id).plate(height_px, &p)
    }

    /// Judges every camera's ended hours.
    pub fn tick(&mut self, now_ms: i64) -> Vec<(String, Change)> {
        let p = self.params.clone();
        let mut out = Vec::new();
        for (id, cam) in self.cameras.iter_mut() {
            out.extend(cam.tick(now_ms, &p).into_iter().map(|c| (id.clone(), c)));
        }
        out
    }

    pub fn saved(&self) -> Saved {
        Saved { v: 1, baselines: self.cameras.iter().map(|(id, c)| (id.clone(), c.baseline.clone())).collect() }
    }

    pub fn restore(&mut self, saved: Saved) {
        for (id, b) in saved.baselines {
            let cam = self.camera(&id);
            *cam = Camera::with_baseline(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 2026-11-30 00:00 UTC.
    const MONDAY: i64 = 1_795_996_800_000;
    const WEEK: i64 = 7 * 24 * HOUR_MS;

    fn params() -> Params {
        Params {
            min_plate_height_px: 16.0,
            max_plate_height_px: 120.0,
            height_window: 9,
            rate_drop_ratio: 0.3,
            min_expected_reads_per_hour: 6.0,
            learn_weeks: 2,
        }
    }

    /// One hour from `start`: a frame every 30 s and `reads` reads spread over it. Returns the changes.
    fn hour(c: &mut Camera, start: i64, reads: u64, p: &Params) -> Vec<Change> {
        let mut out = Vec::new();
        for s in 0..120 {
            out.extend(c.frame(start + s * 30_000, p));
        }
        for r in 0..reads {
            out.extend(c.read(start + (r as i64 * HOUR_MS) / reads.max(1) as i64 + 1, p));
        }
        out
    }

    #[test]
    fn hours_of_the_week_start_on_monday_utc() {
        assert_eq!(slot_of(MONDAY), 0);
        assert_eq!(slot_of(MONDAY + 25 * HOUR_MS + 59 * 60_000), 25);
        assert_eq!(slot_of(MONDAY - 1), 167);
        assert_eq!(slot_of(MONDAY + WEEK), 0);
    }

    #[test]
    fn a_read_rate_far_below_the_learnt_hour_raises_and_a_normal_hour_clears() {
        let p = params();
        let mut c = Camera::default();
        // Two weeks of Monday 08:00 with 40 reads (and 09:00 with 3, a quiet hour): learnt, nothing raised.
        for w in 0..2 {
            assert!(hour(&mut c, MONDAY + w * WEEK + 8 * HOUR_MS, 40, &p).is_empty());
            assert!(hour(&mut c, MONDAY + w * WEEK + 9 * HOUR_MS, 3, &p).is_empty());
            assert!(c.tick(MONDAY + w * WEEK + 10 * HOUR_MS, &p).is_empty());
        }
        assert_eq!(c.baseline.expected(8, &p), Some(40.0));
        // Week 3: 08:00 brings 5 reads (a blinded camera): camera_degraded when the hour ends.
        assert!(hour(&mut c, MONDAY + 2 * WEEK + 8 * HOUR_MS, 5, &p).is_empty(), "judged when the hour ends");
        let ch = c.tick(MONDAY + 2 * WEEK + 9 * HOUR_MS, &p);
        assert_eq!(ch, vec![Change::Degraded(Reason::ReadRateLow { reads: 5, expected: 40.0 })]);
        assert_eq!(c.degraded().len(), 1);
        // The bad hour is not learnt.
        assert_eq!(c.baseline.expected(8, &p), Some(40.0));
        // A quiet hour (baseline 3 < 6) is not judged: no change either way.
        assert!(hour(&mut c, MONDAY + 2 * WEEK + 9 * HOUR_MS, 0, &p).is_empty());
        assert!(c.tick(MONDAY + 2 * WEEK + 10 * HOUR_MS, &p).is_empty());
        assert_eq!(c.degraded().len(), 1, "still degraded");
        // Week 4, 08:00 normal again: cleared.
        hour(&mut c, MONDAY + 3 * WEEK + 8 * HOUR_MS, 36, &p);
        assert_eq!(c.tick(MONDAY + 3 * WEEK + 9 * HOUR_MS, &p), vec![Change::Recovered(Kind::ReadRate)]);
        assert!(c.degraded().is_empty());
        // The moving mean learnt 36.
        assert_eq!(c.baseline.expected(8, &p), Some(39.0));
    }

    #[test]
    fn an_hour_the_camera_was_mostly_down_is_neither_judged_nor_learnt() {
        let p = params();
        let mut c = Camera::default();
        for w in 0..2 {
            hour(&mut c, MONDAY + w * WEEK, 40, &p);
            c.tick(MONDAY + w * WEEK + HOUR_MS, &p);
        }
        // Frames in only the first 20 minutes, and 2 reads.
        let start = MONDAY + 2 * WEEK;
        for s in 0..40 {
            c.frame(start + s * 30_000, &p);
        }
        c.read(start + 1000, &p);
        c.read(start + 2000, &p);
        assert!(c.tick(start + HOUR_MS, &p).is_empty());
        assert_eq!(c.baseline.weeks[0], 2);
        // Before a slot is learnt (learn_weeks), nothing is judged either.
        let mut fresh = Camera::default();
        hour(&mut fresh, MONDAY, 0, &p);
        assert!(fresh.tick(MONDAY + HOUR_MS, &p).is_empty());
    }

    #[test]
    fn the_median_plate_height_must_stay_in_the_band() {
        let p = params();
        let mut c = Camera::default();
        // Not judged before the window is full.
        for _ in 0..8 {
            assert!(c.plate(10.0, &p).is_empty());
        }
        assert_eq!(c.plate(10.0, &p), vec![Change::Degraded(Reason::PlateHeightLow { median_px: 10.0, min_px: 16.0 })]);
        assert!(c.plate(11.0, &p).is_empty(), "the same kind of reason is raised once");
        // Back in the band: cleared once the median is.
        let mut changes = Vec::new();
        for _ in 0..5 {
            changes.extend(c.plate(40.0, &p));
        }
        assert_eq!(changes, vec![Change::Recovered(Kind::PlateHeight)]);
        // Too big (zoomed in, or a defocused blob): raised as high. Single outliers do not move the median.
        c.plate(500.0, &p);
        assert!(c.degraded().is_empty());
        let mut changes = Vec::new();
        for _ in 0..9 {
            changes.extend(c.plate(300.0, &p));
        }
        assert_eq!(changes, vec![Change::Degraded(Reason::PlateHeightHigh { median_px: 300.0, max_px: 120.0 })]);
        assert!(c.plate(f32::NAN, &p).is_empty() && c.plate(-1.0, &p).is_empty());
    }

    #[test]
    fn baselines_survive_a_restart_and_bad_saves_are_ignored() {
        let p = params();
        let mut f = Fleet::new(p.clone());
        for w in 0..2 {
            for s in 0..120 {
                f.frame("lane1", MONDAY + w * WEEK + s * 30_000);
            }
            for r in 0..20 {
                f.read("lane1", MONDAY + w * WEEK + r * 60_000);
            }
            f.tick(MONDAY + w * WEEK + HOUR_MS);
        }
        let text = serde_json::to_string(&f.saved()).unwrap();
        assert!(!text.contains("plate"), "no plate data in the saved baselines");
        let mut g = Fleet::new(p.clone());
        g.restore(serde_json::from_str(&text).unwrap());
        assert_eq!(g.camera("lane1").baseline.expected(0, &p), Some(20.0));
        let mut broken = Saved { v: 1, baselines: BTreeMap::new() };
        broken.baselines.insert("x".into(), Baseline { mean: vec![1.0; 3], weeks: vec![1; 3] });
        g.restore(broken);
        assert_eq!(g.camera("x").baseline, Baseline::default());
        // A degraded hour on a restored camera is raised by tick.
        for s in 0..120 {
            g.frame("lane1", MONDAY + 2 * WEEK + s * 30_000);
        }
        let ch = g.tick(MONDAY + 2 * WEEK + HOUR_MS);
        assert_eq!(ch, vec![("lane1".to_string(), Change::Degraded(Reason::ReadRateLow { reads: 0, expected: 20.0 }))]);
    }
}
