//! Multi-frame grouping and voting (R-RC4): the recognizer reads a plate in many frames of one pass; the
//! tracker groups those frame reads per vehicle and emits one vehicle read per pass. Pure logic: no I/O,
//! no clock of its own (times are passed in as ms), generic over the crop handle `C` so it never touches
//! image bytes.
//!
//! - [`read`]: what goes in ([`FrameRead`]) and what comes out ([`TrackEvent`]: [`EarlyRead`],
//!   [`VehicleRead`], each convertible to the store's [`NewRead`](crate::store::NewRead)).
//! - [`text`]: edit distance that forgives OCR confusions (`0 O D Q`, `1 I 7`, `8 B`, `5 S`, `2 Z`, `6 G`).
//! - [`motion`]: boxes, prediction from the last velocity, stillness, direction of travel.
//! - [`vote`]: the per-position vote over a track's frames, candidates, the best frame.
//! - [`tracker`]: assignment of frame reads to tracks, closing, parked cars, early reads.
//! - [`config`]: [`TrackerConfig`] and its defaults for 8–15 analysed frames per second.
//!
//! **Grouping.** Per camera, each frame read is scored against every open track (and, after all of
//! those, every recently closed parked track that reported, see parked cars below). A pair is allowed only if the read lands near the
//! box predicted from the track's last velocity (distance between centres in plate widths, the gate
//! widening with the time since the track was last seen), its width is within `max_size_ratio` of the
//! prediction, and its text is similar to the track's leading text or last text (confusion-aware edit
//! distance, `min_text_similarity`). A track takes at most one read per frame. Cost = distance / gate +
//! (1 − similarity); pairs are assigned greedily, cheapest first; reads left over start new tracks.
//! Position keeps two cars with near-identical plates apart; text keeps a car from taking over a track
//! it merely drives through.
//!
//! **Voting.** Per-position vote: the text length is chosen by the frames' confidences, then each
//! position by the summed per-character confidences of the frames of that length. A whole-string vote
//! cannot recover the plate when every frame has a different single error; the per-position vote can,
//! and it degrades to the whole-string vote when frames agree.
//!
//! **Closing.** A track closes when not seen for `gap_ms`; it then reports one [`VehicleRead`] if it
//! has `min_frames` frames and a voted confidence of at least `min_confidence` (or raised an early read:
//! an alert must never point at a pass that was not reported), else it is dropped and counted.
//!
//! **Parked cars.** A track whose box has stayed within `parked_motion_widths` for `parked_after_ms`
//! reports at once, without waiting to close, and then again only every `parked_repeat_ms` while it
//! stays, each report voting over the frames since the last. A track that has reported and stood still
//! when last seen (0.75 s within `parked_motion_widths`) is remembered for `parked_repeat_ms` after its
//! last frame: a read at the same spot with a similar text that no open track takes resumes it (same
//! track id), so an occluded or motion-gated parked car is not a new pass after every gap. A moving car's track is not remembered: the next car on
//! its path, or the same car round the block, is a new pass (remembering every track let a replayed pass
//! wake the last one's track frame by frame, and a hotlisted plate went unalerted).
//!
//! **Early reads.** Once per track, before the first report, an [`EarlyRead`] goes out for hotlist
//! alerts when the vote over at least `early_min_frames` frames reaches `early_confidence`
//! ([`EarlyBasis::Confident`]), or when `early_agree_frames` frames, most of the track's, read the voted
//! text exactly and the vote reaches `min_confidence` ([`EarlyBasis::Agreement`]: plates no single frame
//! is sure of, at dusk or night, small or dirty). A tracker told which texts to watch for
//! ([`Tracker::watching`]: the daemon passes its hotlist check) also raises it on the first frame that
//! reads a watched text with `early_confidence` while the track's vote is that text
//! ([`EarlyBasis::ConfidentFrame`]): a hit goes out on its first confident read, not three frames later,
//! and the pass's vote still confirms, changes or withdraws it. The vehicle read(s) for the same track carry the same
//! [`TrackId`]; the early read vouches for the track, so a pass that raised one always reports.

pub mod config;
pub mod motion;
pub mod read;
pub mod text;
pub mod tracker;
pub mod vote;

pub use config::{ConfigError, TrackerConfig};
pub use motion::Direction;
pub use read::{
    BestFrame, EarlyBasis, EarlyRead, FrameRead, PlateCandidate, Reading, TrackEvent, TrackId, VehicleRead,
};
pub use tracker::{TrackStats, Tracker};
