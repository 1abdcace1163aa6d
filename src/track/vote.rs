//! The vote over one report's frame reads: text, per-character confidences, candidates, best frame.
//!
//! Per-position vote, not whole-string: the length is chosen first (sum of the frames' confidences
//! per length), then each position by the summed per-character confidences of the frames of that
//! length. When every frame has a different single misread (`7A8C123`, `7ABCI23`, `TABC123`) no frame
//! holds the plate and a whole-string vote returns a misread; the per-position vote returns the plate.
//! Frames of another length (a dropped or extra character) only lower the length share: aligning them
//! position by position would vote shifted characters.
//!
//! Only aggregates are kept (per length and position, per distinct text), so a parked car seen for an
//! hour costs no more memory than one seen for a second.

use super::read::{BestFrame, FrameRead, PlateCandidate, Reading};
use super::text::distance;
use crate::domain::Plate;
use std::collections::BTreeMap;

/// The characters a [`Plate`] may hold; a position's votes are indexed by this order.
const SLOTS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn slot(c: u8) -> Option<usize> {
    match c {
        b'0'..=b'9' => Some((c - b'0') as usize),
        b'A'..=b'Z' => Some(10 + (c - b'A') as usize),
        _ => None,
    }
}

/// Distinct texts kept for candidates and best frames: a recognizer that reads noise cannot grow a
/// ballot without bound. Texts beyond it still vote per position.
const MAX_TEXTS: usize = 64;

/// A confidence as given, clamped to 0..=1, NaN as 0: one bad value must not poison a sum.
pub(crate) fn unit(x: f32) -> f32 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

#[derive(Debug, Clone)]
struct LengthTally {
    weight: f32,
    frames: u32,
    /// Per position, per slot: summed character confidence and number of frames.
    votes: Vec<[f32; 36]>,
    counts: Vec<[u32; 36]>,
}

#[derive(Debug, Clone)]
struct TextTally<C> {
    plate: Plate,
    /// Sum over frames of the confidence each frame gave this text (0 where it did not offer it).
    score: f32,
    /// Frames whose best text this was.
    frames: u32,
    /// The most confident frame whose best text this was.
    best: Option<BestFrame<C>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Ballot<C> {
    frames: u32,
    lengths: BTreeMap<usize, LengthTally>,
    texts: Vec<TextTally<C>>,
    regions: BTreeMap<String, f32>,
}

impl<C> Default for Ballot<C> {
    fn default() -> Self {
        Ballot { frames: 0, lengths: BTreeMap::new(), texts: Vec::new(), regions: BTreeMap::new() }
    }
}

/// The voted text with its confidences.
struct Winner {
    plate: Plate,
    char_confidences: Vec<f32>,
    confidence: f32,
}

impl<C: Clone> Ballot<C> {
    pub fn frames(&self) -> u32 {
        self.frames
    }

    pub fn add(&mut self, r: FrameRead<C>) {
        self.frames = self.frames.saturating_add(1);
        let conf = unit(r.confidence);
        let text = r.plate.expose().as_bytes();
        let n = text.len();
        let lt = self.lengths.entry(n).or_insert_with(|| LengthTally {
            weight: 0.0,
            frames: 0,
            votes: vec![[0.0; 36]; n],
            counts: vec![[0; 36]; n],
        });
        lt.weight += conf;
        lt.frames += 1;
        let per_char = r.char_confidences.len() == n;
        for (i, &c) in text.iter().enumerate() {
            if let Some(k) = slot(c) {
                lt.votes[i][k] += if per_char { unit(r.char_confidences[i]) } else { conf };
                lt.counts[i][k] += 1;
            }
        }
        if let Some(region) = &r.region {
            *self.regions.entry(region.clone()).or_insert(0.0) += conf;
        }
        // What this frame gives each text: its confidence to the best text, a candidate's own to the
        // candidate; a text offered twice counts once, at its highest.
        let mut offered: Vec<(&Plate, f32)> = vec![(&r.plate, conf)];
        for c in &r.candidates {
            let s = unit(c.confidence);
            match offered.iter_mut().find(|(p, _)| *p == &c.plate) {
                Some(o) => o.1 = o.1.max(s),
                None => offered.push((&c.plate, s)),
            }
        }
        for (p, s) in offered {
            if let Some(t) = self.tally_mut(p) {
                t.score += s;
            }
        }
        let frame = BestFrame {
            frame_seq: r.frame_seq,
            captured_at_ms: r.captured_at_ms,
            bbox: r.bbox,
            confidence: conf,
            crop: r.crop,
        };
        if let Some(t) = self.tally_mut(&r.plate) {
            t.frames += 1;
            if t.best.as_ref().is_none_or(|b| frame.confidence > b.confidence) {
                t.best = Some(frame);
            }
        }
    }

    fn tally_mut(&mut self, p: &Plate) -> Option<&mut TextTally<C>> {
        let i = match self.texts.iter().position(|t| &t.plate == p) {
            Some(i) => i,
            None if self.texts.len() < MAX_TEXTS => {
                self.texts.push(TextTally { plate: p.clone(), score: 0.0, frames: 0, best: None });
                self.texts.len() - 1
            }
            None => return None,
        };
        Some(&mut self.texts[i])
    }

    fn winner(&self) -> Option<Winner> {
        // Ties: more frames, then the longer text (a dropped character is a likelier misread than an
        // extra one).
        let (_, lt) = self
            .lengths
            .iter()
            .max_by(|a, b| a.1.weight.total_cmp(&b.1.weight).then(a.1.frames.cmp(&b.1.frames)).then(a.0.cmp(b.0)))?;
        let total: f32 = self.lengths.values().map(|l| l.weight).sum();
        let length_share = if total > 0.0 { lt.weight / total } else { lt.frames as f32 / self.frames.max(1) as f32 };
        let mut text = Vec::with_capacity(lt.votes.len());
        let mut char_confidences = Vec::with_capacity(lt.votes.len());
        for (votes, counts) in lt.votes.iter().zip(&lt.counts) {
            // Ties: more frames, then the earlier slot, so the result never depends on frame order.
            let k = (0..SLOTS.len())
                .max_by(|&a, &b| votes[a].total_cmp(&votes[b]).then(counts[a].cmp(&counts[b])).then(b.cmp(&a)))?;
            let sum: f32 = votes.iter().sum();
            let share = if sum > 0.0 { votes[k] / sum } else { 0.0 };
            let mean = if counts[k] > 0 { votes[k] / counts[k] as f32 } else { 0.0 };
            text.push(SLOTS[k]);
            char_confidences.push(unit(share * mean));
        }
        let plate = Plate::new(std::str::from_utf8(&text).ok()?).ok()?;
        let mean = char_confidences.iter().sum::<f32>() / char_confidences.len().max(1) as f32;
        Some(Winner { plate, char_confidences, confidence: unit(length_share * mean) })
    }

    /// The voted text and its confidence, without building candidates or cloning a crop (the tracker
    /// asks after every frame).
    pub fn leading(&self) -> Option<(Plate, f32)> {
        self.winner().map(|w| (w.plate, w.confidence))
    }

    /// Frames whose best text was exactly `plate`.
    pub fn agreeing(&self, plate: &Plate) -> u32 {
        self.texts.iter().find(|t| &t.plate == plate).map_or(0, |t| t.frames)
    }

    /// None when no frame has been added.
    pub fn reading(&self, max_candidates: usize, confusable_cost: f32) -> Option<Reading<C>> {
        let Winner { plate, char_confidences, confidence } = self.winner()?;
        // The frame that read exactly the voted text, most confident first; when the vote put together a
        // text no frame read, the frame whose text is closest to it.
        let best = self
            .texts
            .iter()
            .filter_map(|t| {
                t.best.as_ref().map(|b| {
                    (
                        t.plate != plate,
                        distance(t.plate.expose().as_bytes(), plate.expose().as_bytes(), confusable_cost),
                        b,
                    )
                })
            })
            .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(b.2.confidence.total_cmp(&a.2.confidence)))?
            .2
            .clone();
        let n = self.frames.max(1) as f32;
        let mut others: Vec<PlateCandidate> = self
            .texts
            .iter()
            .filter(|t| t.plate != plate)
            .map(|t| PlateCandidate { plate: t.plate.clone(), confidence: unit(t.score / n) })
            .collect();
        others.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then_with(|| a.plate.cmp(&b.plate)));
        let mut candidates = vec![PlateCandidate { plate: plate.clone(), confidence }];
        candidates.extend(others.into_iter().take(max_candidates.saturating_sub(1)));
        let region = self.regions.iter().max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(a.0))).map(|(r, _)| r.clone());
        Some(Reading { plate, confidence, char_confidences, candidates, region, best })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(seq: u64, text: &str, conf: f32) -> FrameRead<u64> {
        FrameRead {
            camera_id: "cam".into(),
            frame_seq: seq,
            captured_at_ms: 1000 + seq as i64 * 100,
            bbox: [10 * seq as u32, 0, 80, 20],
            plate: Plate::new(text).unwrap(),
            char_confidences: vec![conf; text.len()],
            confidence: conf,
            candidates: vec![],
            region: None,
            crop: seq,
        }
    }

    fn ballot(frames: Vec<FrameRead<u64>>) -> Ballot<u64> {
        let mut b = Ballot::default();
        for f in frames {
            b.add(f);
        }
        b
    }

    #[test]
    fn per_position_vote_recovers_a_plate_no_frame_read() {
        let b = ballot(vec![
            frame(1, "7A8C123", 0.9),
            frame(2, "7ABCI23", 0.8),
            frame(3, "TABC123", 0.85),
            frame(4, "7ABC1Z3", 0.7),
        ]);
        let r = b.reading(5, 0.25).unwrap();
        assert_eq!(r.plate.expose(), "7ABC123");
        assert_eq!(b.leading().unwrap().0.expose(), "7ABC123");
        // No frame read it: the best frame is the closest text (one confusion away), most confident first.
        assert_eq!(r.best.crop, 1);
        assert_eq!(r.best.frame_seq, 1);
        assert_eq!(r.best.captured_at_ms, 1100);
        // Candidates: the vote first, then what the frames read.
        assert_eq!(r.candidates.len(), 5);
        assert_eq!(r.candidates[0].plate, r.plate);
        assert_eq!(r.candidates[0].confidence, r.confidence);
        assert_eq!(r.candidates[1].plate.expose(), "7A8C123");
        assert!((r.candidates[1].confidence - 0.9 / 4.0).abs() < 1e-6);
    }

    #[test]
    fn best_frame_is_the_most_confident_exact_one() {
        let b = ballot(vec![
            frame(1, "7ABC123", 0.7),
            frame(2, "7ABC123", 0.95),
            frame(3, "7A8C123", 0.99),
            frame(4, "7ABC123", 0.8),
        ]);
        let r = b.reading(5, 0.25).unwrap();
        assert_eq!(r.plate.expose(), "7ABC123");
        assert_eq!(r.best.crop, 2);
        // Even when confusions cost nothing, an exact frame wins over a confused one.
        assert_eq!(b.reading(5, 0.0).unwrap().best.crop, 2);
    }

    #[test]
    fn char_confidence_is_agreement_times_confidence() {
        let b = ballot(vec![frame(1, "AB1", 0.9), frame(2, "AB1", 0.9), frame(3, "A81", 0.6)]);
        let r = b.reading(5, 0.25).unwrap();
        assert_eq!(r.plate.expose(), "AB1");
        assert!((r.char_confidences[0] - 0.8).abs() < 1e-6); // all agree: mean of 0.9, 0.9, 0.6
        assert!((r.char_confidences[1] - 0.75 * 0.9).abs() < 1e-6); // B has 1.8 of 2.4
        let mean = (0.8 + 0.675 + 0.8) / 3.0;
        assert!((r.confidence - mean).abs() < 1e-6);
    }

    #[test]
    fn other_lengths_lower_the_confidence_but_do_not_vote_characters() {
        let b = ballot(vec![
            frame(1, "7ABC123", 0.9),
            frame(2, "7ABC12", 0.9),
            frame(3, "7ABC123", 0.9),
            frame(4, "7ABC123", 0.9),
        ]);
        let r = b.reading(5, 0.25).unwrap();
        assert_eq!(r.plate.expose(), "7ABC123");
        assert!((r.confidence - 0.75 * 0.9).abs() < 1e-5);
        assert!(r.char_confidences.iter().all(|&c| (c - 0.9).abs() < 1e-6));
        // A length tie goes to the longer text.
        let b = ballot(vec![frame(1, "7ABC12", 0.9), frame(2, "7ABC123", 0.9)]);
        assert_eq!(b.leading().unwrap().0.expose(), "7ABC123");
    }

    #[test]
    fn bad_inputs_are_clamped_and_mismatched_char_confidences_ignored() {
        let mut f = frame(1, "AB1", 0.8);
        f.char_confidences = vec![0.1];
        let mut g = frame(2, "AB1", f32::NAN);
        g.char_confidences = vec![f32::NAN, 7.0, -1.0];
        g.candidates = vec![PlateCandidate { plate: Plate::new("A81").unwrap(), confidence: 3.0 }];
        let r = ballot(vec![f, g]).reading(5, 0.25).unwrap();
        assert_eq!(r.plate.expose(), "AB1");
        assert!(r.char_confidences.iter().all(|c| (0.0..=1.0).contains(c)));
        assert!((r.char_confidences[0] - 0.4).abs() < 1e-6); // 0.8 from f, 0 from g's NaN: mean 0.4
        assert!(r.candidates.iter().all(|c| (0.0..=1.0).contains(&c.confidence)));
        assert_eq!(r.candidates[1].plate.expose(), "A81");
        assert!((r.candidates[1].confidence - 0.5).abs() < 1e-6);
        assert_eq!(r.best.crop, 1);
    }

    #[test]
    fn agreeing_counts_the_frames_that_read_a_text_exactly() {
        let b = ballot(vec![frame(1, "AB1", 0.4), frame(2, "AB1", 0.3), frame(3, "A81", 0.6), frame(4, "AB1", 0.35)]);
        assert_eq!(b.agreeing(&Plate::new("AB1").unwrap()), 3);
        assert_eq!(b.agreeing(&Plate::new("A81").unwrap()), 1);
        assert_eq!(b.agreeing(&Plate::new("ZZ9").unwrap()), 0);
    }

    #[test]
    fn region_is_voted_by_confidence() {
        let mut fs = vec![frame(1, "AB1", 0.9), frame(2, "AB1", 0.4), frame(3, "AB1", 0.4), frame(4, "AB1", 0.9)];
        fs[0].region = Some("CA".into());
        fs[1].region = Some("NV".into());
        fs[2].region = Some("NV".into());
        assert_eq!(ballot(fs.clone()).reading(5, 0.25).unwrap().region.as_deref(), Some("CA"));
        fs[3].region = Some("NV".into());
        assert_eq!(ballot(fs).reading(5, 0.25).unwrap().region.as_deref(), Some("NV"));
        assert_eq!(ballot(vec![frame(1, "AB1", 0.9)]).reading(5, 0.25).unwrap().region, None);
        assert!(Ballot::<u64>::default().reading(5, 0.25).is_none());
    }

    #[test]
    fn distinct_texts_are_bounded() {
        let mut b = Ballot::default();
        for i in 0..(MAX_TEXTS as u64 + 50) {
            b.add(frame(i, &format!("AB{i:04}"), 0.9));
        }
        assert_eq!(b.texts.len(), MAX_TEXTS);
        assert_eq!(b.frames(), MAX_TEXTS as u32 + 50);
        assert!(b.reading(5, 0.25).is_some());
    }

    fn arb_frame() -> impl Strategy<Value = FrameRead<u64>> {
        (
            "[A-Z0-9]{1,9}",
            proptest::collection::vec(-0.5f32..1.5, 0..10),
            -0.5f32..1.5,
            proptest::collection::vec(("[A-Z0-9]{1,9}", -0.5f32..1.5), 0..4),
        )
            .prop_map(|(t, cc, c, cands)| {
                let mut f = frame(0, &t, c);
                f.char_confidences = cc;
                f.candidates = cands
                    .into_iter()
                    .map(|(t, c)| PlateCandidate { plate: Plate::new(&t).unwrap(), confidence: c })
                    .collect();
                f
            })
    }

    proptest! {
        #[test]
        fn readings_are_well_formed(frames in proptest::collection::vec(arb_frame(), 1..12), max in 1usize..6) {
            let b = ballot(frames);
            let r = b.reading(max, 0.25).unwrap();
            prop_assert_eq!(r.char_confidences.len(), r.plate.expose().len());
            prop_assert!((0.0..=1.0).contains(&r.confidence));
            prop_assert!(r.char_confidences.iter().all(|c| (0.0..=1.0).contains(c)));
            prop_assert!(!r.candidates.is_empty() && r.candidates.len() <= max);
            prop_assert_eq!(&r.candidates[0].plate, &r.plate);
            prop_assert!(r.candidates.iter().all(|c| (0.0..=1.0).contains(&c.confidence)));
            prop_assert!(r.candidates[1..].windows(2).all(|w| w[0].confidence >= w[1].confidence));
        }
    }
}
