//! Plate formats per region (`@@@####`: `@` letter, `#` digit, `*` either, else that exact character).
//! They rank a plate's candidate readings and fix the OCR confusions a pattern can settle (O/0, I/1,
//! B/8, S/5, Z/2, G/6: the table is `domain::confusion`) — only at positions where the pattern demands a
//! letter or a digit.

use super::decode::Reading;
use super::settings::PlateFormat;
use crate::domain::confusion::{digit_for_letter, letter_for_digit};

/// Ranking weight of a reading no pattern fits, relative to one that fits as read.
const UNMATCHED_WEIGHT: f32 = 0.25;
/// Ranking weight of a reading that fits only after confusions were fixed.
const FIXED_WEIGHT: f32 = 0.8;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Candidate {
    pub text: String,
    pub char_confidences: Vec<f32>,
    pub confidence: f32,
    /// The pattern the text fits, if formats are configured and one does.
    pub pattern: Option<String>,
    /// Characters changed to fit the pattern.
    pub fixed: u32,
}

impl Candidate {
    /// The reading as the network read it: no pattern fitted, nothing changed.
    fn as_read(r: &Reading) -> Candidate {
        Candidate {
            text: r.text.clone(),
            char_confidences: r.char_confidences.clone(),
            confidence: r.confidence,
            pattern: None,
            fixed: 0,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Formats {
    by_region: Vec<(String, Vec<String>)>,
}

impl Formats {
    pub fn new(formats: &[PlateFormat]) -> Formats {
        Formats { by_region: formats.iter().map(|f| (f.region.to_ascii_lowercase(), f.patterns.clone())).collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.by_region.is_empty()
    }

    /// Patterns for a camera's region; an empty region takes every region's patterns. A region such as
    /// `us-ca` also takes the patterns of `us`.
    fn patterns(&self, region: &str) -> Vec<&str> {
        let region = region.to_ascii_lowercase();
        self.by_region
            .iter()
            .filter(|(r, _)| region.is_empty() || *r == region || region.starts_with(&format!("{r}-")))
            .flat_map(|(_, ps)| ps.iter().map(String::as_str))
            .collect()
    }

    /// Candidates from the OCR's readings, fixed to the formats where they demand it, best first.
    pub fn apply(&self, region: &str, readings: &[Reading]) -> Vec<Candidate> {
        let patterns = self.patterns(region);
        let mut out: Vec<(f32, Candidate)> = Vec::new();
        for r in readings {
            let (cand, weight) =
                if patterns.is_empty() { (Candidate::as_read(r), 1.0) } else { best_fit(&patterns, r) };
            // Two readings fixed into the same text are one candidate holding both probabilities.
            if let Some((w, c)) = out.iter_mut().find(|(_, c)| c.text == cand.text) {
                c.confidence += cand.confidence;
                *w += weight * cand.confidence;
                continue;
            }
            out.push((weight * cand.confidence, cand));
        }
        out.sort_by(|a, b| b.0.total_cmp(&a.0));
        out.into_iter()
            .map(|(_, c)| {
                let mut c = c;
                c.confidence = c.confidence.min(1.0);
                c
            })
            .collect()
    }
}

fn best_fit(patterns: &[&str], r: &Reading) -> (Candidate, f32) {
    let mut best: Option<(String, u32, &str)> = None;
    for p in patterns {
        if let Some((text, fixed)) = fit(p, &r.text)
            && best.as_ref().is_none_or(|b| fixed < b.1)
        {
            best = Some((text, fixed, p));
        }
    }
    match best {
        Some((text, fixed, p)) => (
            Candidate {
                text,
                char_confidences: r.char_confidences.clone(),
                confidence: r.confidence,
                pattern: Some(p.to_string()),
                fixed,
            },
            if fixed == 0 { 1.0 } else { FIXED_WEIGHT },
        ),
        None => (Candidate::as_read(r), UNMATCHED_WEIGHT),
    }
}

/// The text made to fit `pattern` by fixing confusable characters, and how many were fixed; `None`
/// when it cannot fit.
pub fn fit(pattern: &str, text: &str) -> Option<(String, u32)> {
    if pattern.chars().count() != text.chars().count() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut fixed = 0;
    for (p, c) in pattern.chars().zip(text.chars()) {
        let ok = match p {
            '@' if c.is_ascii_uppercase() => c,
            '@' => {
                fixed += 1;
                letter_for_digit(c)?
            }
            '#' if c.is_ascii_digit() => c,
            '#' => {
                fixed += 1;
                digit_for_letter(c)?
            }
            '*' => c,
            lit if lit == c => c,
            _ => return None,
        };
        out.push(ok);
    }
    Some((out, fixed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(text: &str, confidence: f32) -> Reading {
        Reading { text: text.into(), char_confidences: vec![0.9; text.len()], confidence }
    }

    #[test]
    fn fit_fixes_only_where_pattern_demands() {
        assert_eq!(fit("@@@####", "ABC1234"), Some(("ABC1234".into(), 0)));
        assert_eq!(fit("@@@####", "A8C12S4"), Some(("ABC1254".into(), 2)));
        // O/0 in a `*` slot stays as read.
        assert_eq!(fit("@@*####", "AB01234"), Some(("AB01234".into(), 0)));
        // X has no digit twin: no fit.
        assert_eq!(fit("@@@####", "ABC12X4"), None);
        assert_eq!(fit("@@@####", "ABC123"), None);
        assert_eq!(fit("7@@@###", "7ABC123"), Some(("7ABC123".into(), 0)));
        assert_eq!(fit("7@@@###", "8ABC123"), None);
    }

    #[test]
    fn matching_candidates_outrank_unmatched_ones_unless_far_less_likely() {
        let f = Formats::new(&[PlateFormat { region: "br".into(), patterns: vec!["@@@#@##".into()] }]);
        let c = f.apply("br", &[reading("ABC1D2", 0.5), reading("ABC1D23", 0.3)]);
        assert_eq!(c[0].text, "ABC1D23");
        assert_eq!(c[0].pattern.as_deref(), Some("@@@#@##"));
        assert_eq!(c[1].pattern, None);
        // A candidate that fits but is 10x less likely stays behind.
        let c = f.apply("br", &[reading("ABC1D2", 0.5), reading("ABC1D23", 0.05)]);
        assert_eq!(c[0].text, "ABC1D2");
    }

    #[test]
    fn fixed_candidates_merge_with_identical_ones() {
        let f = Formats::new(&[PlateFormat { region: "us".into(), patterns: vec!["@@@####".into()] }]);
        let c = f.apply("us-ca", &[reading("ABC1234", 0.4), reading("A8C1234", 0.3)]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].text, "ABC1234");
        assert!((c[0].confidence - 0.7).abs() < 1e-6);
    }

    #[test]
    fn other_regions_patterns_do_not_apply_and_no_formats_keeps_order() {
        let f = Formats::new(&[PlateFormat { region: "br".into(), patterns: vec!["@@@#@##".into()] }]);
        let c = f.apply("us", &[reading("ABC1D23", 0.3), reading("XYZ", 0.5)]);
        assert_eq!(c[0].text, "XYZ");
        assert!(c.iter().all(|c| c.pattern.is_none()));
        let none = Formats::default();
        assert_eq!(none.apply("", &[reading("B", 0.5), reading("A", 0.2)])[0].text, "B");
    }
}
