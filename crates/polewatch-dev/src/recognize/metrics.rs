//! Accuracy figures for a labelled set: detection recall and precision at an IoU threshold, OCR-only
//! and end-to-end exact match, character accuracy and time per stage. Pure counting.

use super::geometry::BoxF;

/// Counts for one group (or all groups) of a labelled set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub images: u64,
    /// Labelled plates (with or without text).
    pub plates: u64,
    /// Labelled plates whose text is known.
    pub texts: u64,
    pub det_tp: u64,
    pub det_fp: u64,
    pub det_fn: u64,
    /// The detector's boxes before the recognizer dropped the ones whose reading was not plate-like.
    pub raw_det_tp: u64,
    pub raw_det_fp: u64,
    pub ocr_exact: u64,
    pub e2e_exact: u64,
    pub chars_total: u64,
    pub chars_right: u64,
    pub detect_ms: f64,
    pub ocr_ms: f64,
    pub ocr_calls: u64,
}

/// The figures a benchmark prints (fractions 0..1, milliseconds).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Figures {
    pub images: u64,
    pub plates: u64,
    pub det_recall: f64,
    pub det_precision: f64,
    /// Precision of the detector alone (before the plate-text check).
    pub raw_det_precision: f64,
    pub ocr_exact: f64,
    pub e2e_exact: f64,
    pub char_accuracy: f64,
    pub ms_detect: f64,
    pub ms_ocr: f64,
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.images += o.images;
        self.plates += o.plates;
        self.texts += o.texts;
        self.det_tp += o.det_tp;
        self.det_fp += o.det_fp;
        self.det_fn += o.det_fn;
        self.raw_det_tp += o.raw_det_tp;
        self.raw_det_fp += o.raw_det_fp;
        self.ocr_exact += o.ocr_exact;
        self.e2e_exact += o.e2e_exact;
        self.chars_total += o.chars_total;
        self.chars_right += o.chars_right;
        self.detect_ms += o.detect_ms;
        self.ocr_ms += o.ocr_ms;
        self.ocr_calls += o.ocr_calls;
    }

    /// Detection counts of one image: predicted boxes matched one-to-one to labelled ones.
    pub fn detections(&mut self, predicted: &[BoxF], truth: &[BoxF], iou: f32) -> Vec<Option<usize>> {
        let m = match_boxes(predicted, truth, iou);
        let tp = m.iter().filter(|x| x.is_some()).count() as u64;
        self.det_tp += tp;
        self.det_fn += truth.len() as u64 - tp;
        self.det_fp += predicted.len() as u64 - tp;
        m
    }

    /// The detector's own boxes of one image (before the plate-text check), for its raw precision.
    pub fn raw_detections(&mut self, predicted: &[BoxF], truth: &[BoxF], iou: f32) {
        let tp = match_boxes(predicted, truth, iou).iter().filter(|x| x.is_some()).count() as u64;
        self.raw_det_tp += tp;
        self.raw_det_fp += predicted.len() as u64 - tp;
    }

    /// One OCR-only reading of a labelled plate.
    pub fn ocr(&mut self, truth: &str, read: Option<&str>) {
        let read = read.unwrap_or("");
        self.ocr_exact += u64::from(read == truth);
        self.chars_total += truth.len() as u64;
        self.chars_right += truth.len().saturating_sub(levenshtein(truth.as_bytes(), read.as_bytes())) as u64;
    }

    pub fn figures(&self) -> Figures {
        Figures {
            images: self.images,
            plates: self.plates,
            det_recall: ratio(self.det_tp, self.det_tp + self.det_fn),
            det_precision: ratio(self.det_tp, self.det_tp + self.det_fp),
            raw_det_precision: ratio(self.raw_det_tp, self.raw_det_tp + self.raw_det_fp),
            ocr_exact: ratio(self.ocr_exact, self.texts),
            e2e_exact: ratio(self.e2e_exact, self.texts),
            char_accuracy: ratio(self.chars_right, self.chars_total),
            ms_detect: if self.images == 0 { 0.0 } else { self.detect_ms / self.images as f64 },
            ms_ocr: if self.ocr_calls == 0 { 0.0 } else { self.ocr_ms / self.ocr_calls as f64 },
        }
    }
}

/// For each labelled box, the predicted box matched to it (greedy by IoU, each used once), when the
/// overlap reaches `iou`.
pub fn match_boxes(predicted: &[BoxF], truth: &[BoxF], iou: f32) -> Vec<Option<usize>> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (t, tb) in truth.iter().enumerate() {
        for (p, pb) in predicted.iter().enumerate() {
            let v = pb.iou(tb);
            if v >= iou {
                pairs.push((v, t, p));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut out = vec![None; truth.len()];
    let mut used = vec![false; predicted.len()];
    for (_, t, p) in pairs {
        if out[t].is_none() && !used[p] {
            out[t] = Some(p);
            used[p] = true;
        }
    }
    out
}

/// The daemon's (its start-up check reads the embedded plate within one edit).
pub use super::smoke::levenshtein;

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32) -> BoxF {
        BoxF { x, y: 0.0, w: 10.0, h: 10.0 }
    }

    #[test]
    fn one_to_one_matching_counts_duplicates_as_false_positives() {
        let mut t = Tally::default();
        let m = t.detections(&[b(0.0), b(1.0), b(100.0)], &[b(0.5), b(50.0)], 0.5);
        assert!(m[0].is_some());
        assert_eq!(m[1], None);
        assert_eq!((t.det_tp, t.det_fp, t.det_fn), (1, 2, 1));
        let f = t.figures();
        assert!((f.det_recall - 0.5).abs() < 1e-9 && (f.det_precision - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn raw_precision_counts_the_detector_alone() {
        let mut t = Tally::default();
        t.detections(&[b(0.0)], &[b(0.0)], 0.5);
        t.raw_detections(&[b(0.0), b(100.0), b(200.0), b(300.0)], &[b(0.0)], 0.5);
        let f = t.figures();
        assert!((f.det_precision - 1.0).abs() < 1e-9);
        assert!((f.raw_det_precision - 0.25).abs() < 1e-9);
    }

    #[test]
    fn ocr_exact_and_character_accuracy() {
        let mut t = Tally { texts: 3, ..Tally::default() };
        t.ocr("ABC123", Some("ABC123"));
        t.ocr("ABC123", Some("A8C123"));
        t.ocr("XY1", None);
        let f = t.figures();
        assert!((f.ocr_exact - 1.0 / 3.0).abs() < 1e-9);
        assert!((f.char_accuracy - 11.0 / 15.0).abs() < 1e-9);
        assert_eq!(levenshtein(b"kitten", b"sitting"), 3);
    }
}
