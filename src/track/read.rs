//! What the tracker takes in and gives out. Plate texts are [`Plate`]s, so `Debug` on any of these types
//! never shows one.

use super::motion::Direction;
use crate::domain::{Candidate, NewRead, Plate};
use std::fmt;

/// One plate found in one analysed frame, as the recognizer hands it over. `C` is the crop handle
/// (a buffer reference, a file name): the tracker only keeps and hands back the best one.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRead<C> {
    pub camera_id: String,
    pub frame_seq: u64,
    pub captured_at_ms: i64,
    /// x, y, width, height in frame pixels.
    pub bbox: [u32; 4],
    /// The recognizer's best text.
    pub plate: Plate,
    /// One per character of `plate`; any other length is ignored and `confidence` used instead.
    pub char_confidences: Vec<f32>,
    /// 0..=1 (out-of-range values are clamped, NaN counts as 0).
    pub confidence: f32,
    /// The recognizer's top-N texts, best first (may include `plate`).
    pub candidates: Vec<PlateCandidate>,
    pub region: Option<String>,
    pub crop: C,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlateCandidate {
    pub plate: Plate,
    pub confidence: f32,
}

/// One vehicle's track: unique within one [`Tracker`](super::Tracker), the same on the early read and
/// every vehicle read of the track, so downstream code can tell a report of a vehicle it already alerted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackId(pub u64);

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "track-{}", self.0)
    }
}

/// The frame a report takes its crop, time and box from: the most confident frame that read exactly the
/// voted text (or, when no frame did, the closest text).
#[derive(Debug, Clone, PartialEq)]
pub struct BestFrame<C> {
    pub frame_seq: u64,
    pub captured_at_ms: i64,
    pub bbox: [u32; 4],
    pub confidence: f32,
    pub crop: C,
}

/// The vote over a set of frame reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading<C> {
    pub plate: Plate,
    /// 0..=1: the share of frames that agree on the length, times the mean of `char_confidences`.
    pub confidence: f32,
    /// One per character of `plate`: the share of the position's vote the winning character got, times
    /// the mean confidence of the frames that voted for it.
    pub char_confidences: Vec<f32>,
    /// `plate` first with `confidence`, then other texts read, each with its mean confidence per frame
    /// (0 in frames that did not offer it), highest first; all in 0..=1.
    pub candidates: Vec<PlateCandidate>,
    /// The region guess with the most confidence behind it.
    pub region: Option<String>,
    pub best: BestFrame<C>,
}

impl<C> Reading<C> {
    /// The store's record; `frame_jpeg` is left empty (set it on the result where configured).
    fn into_new_read(self, camera_id: String, crop_jpeg: Option<Vec<u8>>) -> NewRead {
        NewRead {
            camera_id,
            captured_at_ms: self.best.captured_at_ms,
            plate: self.plate,
            confidence: self.confidence,
            char_confidences: self.char_confidences,
            candidates: self
                .candidates
                .into_iter()
                .map(|c| Candidate { text: String::from(c.plate), confidence: c.confidence })
                .collect(),
            bbox: self.best.bbox,
            region: self.region,
            frame_seq: self.best.frame_seq,
            crop_jpeg,
            frame_jpeg: None,
        }
    }
}

/// What an early read rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyBasis {
    /// The vote over `early_min_frames` frames reached `early_confidence`.
    Confident,
    /// `early_agree_frames` frames, most of the track's, read the voted text exactly; the vote reached
    /// `min_confidence` but not `early_confidence`.
    Agreement,
    /// A frame read a watched (hotlisted) text with `early_confidence` and the track's vote is that text
    /// (see [`Tracker::watching`](super::Tracker::watching)); fewer than `early_min_frames` frames, or
    /// a vote not yet that sure.
    ConfidentFrame,
    /// The per-position vote over `early_min_frames` frames is a watched text and reached
    /// `min_confidence`, though no frame need have read it exactly (frames each misread in other places).
    Vote,
}

impl EarlyBasis {
    pub fn as_str(&self) -> &'static str {
        match self {
            EarlyBasis::Confident => "confident",
            EarlyBasis::Agreement => "agreement",
            EarlyBasis::ConfidentFrame => "confident-frame",
            EarlyBasis::Vote => "vote",
        }
    }
}

/// A read before the pass ends, for hotlist alerts. The vehicle read that follows carries the same
/// `track_id`, and may differ in text when later frames outvote it.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlyRead<C> {
    pub track_id: TrackId,
    pub camera_id: String,
    pub frames: u32,
    /// Of `frames`, those that read the voted text exactly.
    pub agreeing_frames: u32,
    pub basis: EarlyBasis,
    pub reading: Reading<C>,
}

/// One report of one vehicle: the whole pass, or for a parked car the frames since its last report.
#[derive(Debug, Clone, PartialEq)]
pub struct VehicleRead<C> {
    pub track_id: TrackId,
    pub camera_id: String,
    pub reading: Reading<C>,
    /// First and last capture time of the frames this report votes over.
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub frames: u32,
    /// Of `frames`, those that read the voted text exactly.
    pub agreeing_frames: u32,
    pub direction: Direction,
    /// Reported because the car stayed put, not because its track closed.
    pub parked: bool,
    /// 0 for a track's first report, then 1, 2, … for a parked car's repeats.
    pub report: u32,
}

impl<C> EarlyRead<C> {
    /// The store's record for this read (the caller encodes `reading.best.crop` first).
    pub fn into_new_read(self, crop_jpeg: Option<Vec<u8>>) -> NewRead {
        self.reading.into_new_read(self.camera_id, crop_jpeg)
    }
}

impl<C> VehicleRead<C> {
    /// The store's record: capture time, box and frame sequence of the best frame; `frame_jpeg` empty.
    /// The caller encodes `reading.best.crop` first.
    pub fn into_new_read(self, crop_jpeg: Option<Vec<u8>>) -> NewRead {
        self.reading.into_new_read(self.camera_id, crop_jpeg)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrackEvent<C> {
    Early(EarlyRead<C>),
    Vehicle(VehicleRead<C>),
}

impl<C> TrackEvent<C> {
    pub fn track_id(&self) -> TrackId {
        match self {
            TrackEvent::Early(e) => e.track_id,
            TrackEvent::Vehicle(v) => v.track_id,
        }
    }
}
