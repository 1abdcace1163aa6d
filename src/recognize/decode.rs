//! Turning OCR network outputs (probabilities per slot or per time step) into text, per-character
//! confidences and ranked alternatives. Pure: the networks' tensors arrive as row-major slices.

/// One decoded reading of a plate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reading {
    pub text: String,
    /// Probability of each character of `text`.
    pub char_confidences: Vec<f32>,
    /// Probability of the whole reading (product over its slots or CTC paths).
    pub confidence: f32,
}

/// `probs` holds `rows` × `classes` probabilities row-major; `alphabet[i]` is class i's character.
/// Each slot is one character or `pad`. Returns up to `top_n` readings, best first: beam search over
/// the slots so alternatives differ where the network was unsure.
pub fn decode_slots(probs: &[f32], rows: usize, alphabet: &[char], pad: char, top_n: usize) -> Vec<Reading> {
    let classes = alphabet.len();
    if classes == 0 || probs.len() < rows * classes {
        return Vec::new();
    }
    // Beam of (class per slot so far, log probability).
    let width = top_n.max(1) * 4;
    let mut beam: Vec<(Vec<usize>, f32)> = vec![(Vec::new(), 0.0)];
    for r in 0..rows {
        let row = &probs[r * classes..(r + 1) * classes];
        let mut best: Vec<usize> = (0..classes).collect();
        best.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        best.truncate(width.min(classes));
        let mut next = Vec::with_capacity(beam.len() * best.len());
        for (seq, lp) in &beam {
            for &c in &best {
                let mut s = seq.clone();
                s.push(c);
                next.push((s, lp + row[c].max(1e-12).ln()));
            }
        }
        next.sort_by(|a, b| b.1.total_cmp(&a.1));
        next.truncate(width);
        beam = next;
    }
    let mut out: Vec<Reading> = Vec::new();
    // The most probable reading being all pads means the network sees no characters: read nothing.
    if beam.first().is_some_and(|(seq, _)| seq.iter().all(|&c| alphabet[c] == pad)) {
        return out;
    }
    for (seq, lp) in beam {
        let mut text = String::new();
        let mut confs = Vec::new();
        for (r, &c) in seq.iter().enumerate() {
            if alphabet[c] != pad {
                text.push(alphabet[c]);
                confs.push(probs[r * classes + c]);
            }
        }
        // Pads in different slots can give the same text; the first (most probable) stands for it.
        if !text.is_empty() && !out.iter().any(|o| o.text == text) {
            out.push(Reading { text, char_confidences: confs, confidence: lp.exp() });
        }
        if out.len() >= top_n.max(1) {
            break;
        }
    }
    out
}

/// Greedy CTC: the most probable class per step, repeats collapsed, blanks dropped. `alphabet` maps the
/// non-blank classes in order (class `blank` is skipped when counting).
pub fn decode_ctc_greedy(
    probs: &[f32],
    steps: usize,
    classes: usize,
    blank: usize,
    alphabet: &[char],
) -> Option<Reading> {
    if probs.len() < steps * classes || classes != alphabet.len() + 1 {
        return None;
    }
    let mut text = String::new();
    let mut confs: Vec<f32> = Vec::new();
    let mut path_lp = 0.0f32;
    let mut prev = blank;
    for t in 0..steps {
        let row = &probs[t * classes..(t + 1) * classes];
        let (c, p) = row.iter().copied().enumerate().max_by(|a, b| a.1.total_cmp(&b.1))?;
        path_lp += p.max(1e-12).ln();
        if c != blank {
            if c != prev {
                text.push(class_char(c, blank, alphabet));
                confs.push(p);
            } else if let Some(last) = confs.last_mut() {
                *last = last.max(p);
            }
        }
        prev = c;
    }
    (!text.is_empty()).then(|| Reading { text, char_confidences: confs, confidence: path_lp.exp() })
}

fn merge_max(into: &mut [f32], from: &[f32]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a = a.max(*b);
    }
}

fn class_char(c: usize, blank: usize, alphabet: &[char]) -> char {
    alphabet[if c > blank { c - 1 } else { c }]
}

/// CTC prefix beam search: sums the probability of every path that yields the same text, so the
/// confidence is the reading's probability, and returns up to `top_n` texts best first.
/// Character confidences come from the best path's steps for each character.
pub fn decode_ctc_beam(
    probs: &[f32],
    steps: usize,
    classes: usize,
    blank: usize,
    alphabet: &[char],
    beam_width: usize,
    top_n: usize,
) -> Vec<Reading> {
    use std::collections::HashMap;
    if probs.len() < steps * classes || classes != alphabet.len() + 1 {
        return Vec::new();
    }
    // prefix (class ids) -> (p ending in blank, p ending in non-blank, per-char best prob)
    type Entry = (f64, f64, Vec<f32>);
    let mut beams: HashMap<Vec<usize>, Entry> = HashMap::new();
    beams.insert(Vec::new(), (1.0, 0.0, Vec::new()));
    for t in 0..steps {
        let row = &probs[t * classes..(t + 1) * classes];
        let mut next: HashMap<Vec<usize>, Entry> = HashMap::new();
        for (prefix, (pb, pnb, confs)) in &beams {
            for (c, &p) in row.iter().enumerate() {
                let p = p as f64;
                if p < 1e-6 {
                    continue;
                }
                if c == blank {
                    let e = next.entry(prefix.clone()).or_insert((0.0, 0.0, confs.clone()));
                    e.0 += (pb + pnb) * p;
                    merge_max(&mut e.2, confs);
                    continue;
                }
                let last = prefix.last().copied();
                let mut ext = prefix.clone();
                ext.push(c);
                let mut ext_confs = confs.clone();
                ext_confs.push(p as f32);
                let e = next.entry(ext).or_insert((0.0, 0.0, ext_confs.clone()));
                // Paths that reach the same text keep each character's best probability.
                merge_max(&mut e.2, &ext_confs);
                if last == Some(c) {
                    // A repeat needs a blank between; without one it stays the same prefix.
                    e.1 += pb * p;
                    let same = next.entry(prefix.clone()).or_insert((0.0, 0.0, confs.clone()));
                    same.1 += pnb * p;
                    merge_max(&mut same.2, confs);
                    if let Some(l) = same.2.last_mut() {
                        *l = l.max(p as f32);
                    }
                } else {
                    e.1 += (pb + pnb) * p;
                }
            }
        }
        let mut v: Vec<(Vec<usize>, Entry)> = next.into_iter().collect();
        v.sort_by(|a, b| (b.1.0 + b.1.1).total_cmp(&(a.1.0 + a.1.1)));
        v.truncate(beam_width.max(1));
        beams = v.into_iter().collect();
    }
    let mut v: Vec<(Vec<usize>, Entry)> = beams.into_iter().filter(|(p, _)| !p.is_empty()).collect();
    v.sort_by(|a, b| (b.1.0 + b.1.1).total_cmp(&(a.1.0 + a.1.1)));
    v.into_iter()
        .take(top_n.max(1))
        .map(|(prefix, (pb, pnb, confs))| Reading {
            text: prefix.iter().map(|&c| class_char(c, blank, alphabet)).collect(),
            char_confidences: confs,
            confidence: (pb + pnb) as f32,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AB: [char; 4] = ['A', 'B', '1', '_'];

    fn onehot(rows: &[(usize, f32)], classes: usize) -> Vec<f32> {
        let mut v = Vec::new();
        for &(c, p) in rows {
            let rest = (1.0 - p) / (classes - 1) as f32;
            for k in 0..classes {
                v.push(if k == c { p } else { rest });
            }
        }
        v
    }

    #[test]
    fn slots_read_text_drop_pads_and_rank_alternatives() {
        // A, then B-or-1 (unsure), then 1, then pad.
        let mut probs = onehot(&[(0, 0.97), (1, 0.55), (2, 0.97), (3, 0.97)], 4);
        probs[4..8].copy_from_slice(&[0.01, 0.55, 0.43, 0.01]);
        let r = decode_slots(&probs, 4, &AB, '_', 3);
        assert_eq!(r[0].text, "AB1");
        assert_eq!(r[1].text, "A11");
        assert!(r[0].confidence > r[1].confidence);
        assert_eq!(r[0].char_confidences.len(), 3);
        assert!((r[0].char_confidences[1] - 0.55).abs() < 1e-6);
        assert!((r[0].confidence - 0.97f32.powi(3) * 0.55).abs() < 1e-3);
    }

    #[test]
    fn slots_with_only_pads_read_nothing() {
        let probs = onehot(&[(3, 0.99), (3, 0.99)], 4);
        assert!(decode_slots(&probs, 2, &AB, '_', 3).is_empty());
        assert!(decode_slots(&probs[..3], 2, &AB, '_', 3).is_empty());
    }

    // CTC classes: 0 blank, then A B 1.
    const CTC: [char; 3] = ['A', 'B', '1'];

    #[test]
    fn ctc_greedy_collapses_repeats_and_keeps_blank_separated_doubles() {
        // A A - A B B - 1
        let probs = onehot(&[(1, 0.9), (1, 0.8), (0, 0.9), (1, 0.9), (2, 0.9), (2, 0.7), (0, 0.9), (3, 0.95)], 4);
        let r = decode_ctc_greedy(&probs, 8, 4, 0, &CTC).unwrap();
        assert_eq!(r.text, "AAB1");
        assert_eq!(r.char_confidences, vec![0.9, 0.9, 0.9, 0.95]);
    }

    #[test]
    fn ctc_beam_sums_paths_and_agrees_with_greedy_when_sure() {
        let probs = onehot(&[(1, 0.9), (0, 0.9), (2, 0.9), (2, 0.9), (0, 0.9), (3, 0.9)], 4);
        let g = decode_ctc_greedy(&probs, 6, 4, 0, &CTC).unwrap();
        let b = decode_ctc_beam(&probs, 6, 4, 0, &CTC, 8, 3);
        assert_eq!(b[0].text, g.text);
        assert_eq!(b[0].text, "AB1");
        // Several alignments give AB1, so its probability exceeds the single best path's.
        assert!(b[0].confidence > g.confidence);
        assert!(b.len() > 1 && b[1].confidence <= b[0].confidence);
        // Each character's confidence is its best step's, whichever path reached the text first.
        assert!(b[0].char_confidences.iter().all(|&c| (c - 0.9).abs() < 1e-6), "{:?}", b[0].char_confidences);
    }

    #[test]
    fn ctc_beam_prefers_text_with_more_total_probability_than_the_best_path() {
        // Best single path is blank,blank (empty) but "A" collects more mass across paths.
        let probs = vec![0.4, 0.35, 0.15, 0.1, 0.4, 0.35, 0.15, 0.1];
        let b = decode_ctc_beam(&probs, 2, 4, 0, &CTC, 8, 2);
        assert_eq!(b[0].text, "A");
    }

    #[test]
    fn ctc_beam_char_confidence_is_the_best_step_not_the_first_path() {
        // "A" is first reached by an unlikely step (0.05), then surely (0.9) after a blank.
        let probs = vec![0.9, 0.05, 0.03, 0.02, 0.05, 0.9, 0.03, 0.02];
        let b = decode_ctc_beam(&probs, 2, 4, 0, &CTC, 8, 1);
        assert_eq!(b[0].text, "A");
        assert!((b[0].char_confidences[0] - 0.9).abs() < 1e-6, "{:?}", b[0].char_confidences);
    }

    #[test]
    fn ctc_rejects_wrong_class_count() {
        assert!(decode_ctc_greedy(&[0.5; 10], 2, 5, 0, &CTC).is_none());
        assert!(decode_ctc_beam(&[0.5; 10], 2, 5, 0, &CTC, 4, 2).is_empty());
    }
}
