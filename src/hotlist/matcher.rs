//! The index over hotlists and the matching of one vehicle read against it.
//!
//! A read has a best text and top-N candidate texts with confidences. Every text is normalised like a
//! [`Plate`] (texts that are not valid plates are skipped) and looked up; for each entry only its
//! strongest hit is reported, in this order of [`MatchKind`]:
//!
//! 1. `Exact`: the best text equals an exact entry.
//! 2. `Wildcard`: the best text matches a wildcard entry (`7AB*`, `?BC1234`).
//! 3. `Candidate`: a candidate text (not the best) matches exactly or by wildcard.
//! 4. `Confusion`: the best or a candidate text matches only once confusable characters
//!    (see [`crate::domain::confusion`]) are taken as equal.
//!
//! Hits are sorted by kind, then score (highest first), then priority (1 first).
//!
//! **Score** in 0..=1, with `c` the text's confidence (1 for the best text; a candidate's clamped to
//! 0..=1, NaN as 0), `s` the entry's specificity (1 for an exact entry; for a wildcard entry its
//! letters and digits divided by the length of the text matched, so `?BC1234` scores above `7AB*`) and
//! `k` the confusion substitutions the hit needed (at least 1):
//!
//! | kind | score | range |
//! |---|---|---|
//! | Exact | 1 | 1 |
//! | Wildcard | 0.75 + 0.2·s | (0.75, 0.95] |
//! | Candidate | 0.5 + 0.25·c·s | [0.5, 0.75] |
//! | Confusion | 0.45·c·s·0.7^(k−1) | [0, 0.45] |
//!
//! The ranges do not overlap, so a consumer that thresholds or sorts on the score alone never puts a
//! weaker kind above a stronger one.
//!
//! **Index.** Every key is in the confusion-canonical form, so one lookup finds literal and confused
//! matches alike and the kind is decided per entry afterwards (a literal match is a canonical match
//! with zero substitutions, so an exact hit cannot be missed or reported as a weaker kind). Exact
//! entries are keyed by their whole text; wildcard entries by their longer literal end (prefix or
//! suffix) and, when they hold no `*`, by the one text length they can match; entries with no literal
//! end and no `*`-free length (`?AB?`, by length) are keyed by length alone. A text of length n looks
//! up its own prefixes and suffixes, only the lengths some pattern uses. Only patterns with `*` and no
//! literal at either end (`*AB*`, `?A*`) are checked against every read.

use super::entry::MAX_PLATE_LEN;
use super::{Entry, Hotlist};
use crate::domain::Plate;
use crate::domain::confusion::{canonical_char, substitutions};
use std::collections::HashMap;
use std::fmt;

/// An entry: `lists()[list].entries[index]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId {
    pub list: usize,
    pub index: usize,
}

/// How a hit was made. Declared strongest first, so `Ord` sorts strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchKind {
    Exact,
    Wildcard,
    Candidate,
    Confusion,
}

/// Which text of the read made the hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MatchedText {
    Best,
    /// Index into the `candidates` given to [`Matcher::match_read`].
    Candidate(usize),
}

#[derive(Debug, Clone)]
pub struct Hit<'a> {
    pub id: EntryId,
    /// The name of the entry's list.
    pub list: &'a str,
    pub entry: &'a Entry,
    pub kind: MatchKind,
    pub score: f32,
    pub matched: MatchedText,
    /// Confusion substitutions the hit needed (0 unless `kind` is `Confusion`).
    pub substitutions: u32,
}

/// The score of a hit (see the module docs); `confidence` and `specificity` in 0..=1.
pub fn score(kind: MatchKind, confidence: f32, specificity: f32, substitutions: u32) -> f32 {
    let (c, s) = (confidence.clamp(0.0, 1.0), specificity.clamp(0.0, 1.0));
    match kind {
        MatchKind::Exact => 1.0,
        MatchKind::Wildcard => 0.75 + 0.2 * s,
        MatchKind::Candidate => 0.5 + 0.25 * c * s,
        MatchKind::Confusion => 0.45 * c * s * 0.7f32.powi(substitutions.clamp(1, 64) as i32 - 1),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Anchor {
    Whole,
    Prefix,
    Suffix,
    Length,
}

/// Index key: the anchor's canonical literal text, zero-padded (plate characters are never 0), and
/// for patterns without `*` the one text length they can match (0: any length). No `Debug`: it holds
/// plate text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    anchor: Anchor,
    len: u8,
    text: [u8; MAX_PLATE_LEN],
}

impl Key {
    /// None when `text` is too long to be a key; entries never are (at most 16 letters, digits, `?`).
    fn new(anchor: Anchor, len: usize, text: &[u8]) -> Option<Key> {
        if text.len() > MAX_PLATE_LEN || len > MAX_PLATE_LEN {
            return None;
        }
        let mut k = Key { anchor, len: len as u8, text: [0; MAX_PLATE_LEN] };
        k.text[..text.len()].copy_from_slice(text);
        Some(k)
    }
}

/// One text of a read being matched.
struct Text<'r> {
    literal: &'r [u8],
    source: MatchedText,
    confidence: f32,
    region: Option<&'r str>,
    now_ms: i64,
}

/// Hotlists and their index, built once per (re)load; matching takes `&self` and allocates only the
/// result.
pub struct Matcher {
    lists: Vec<Hotlist>,
    index: HashMap<Key, Vec<EntryId>>,
    /// Bit k: some wildcard entry is keyed by a literal prefix of length k (other lengths are not
    /// looked up).
    prefix_lens: u32,
    suffix_lens: u32,
    /// `*` and no literal at either end: checked against every text.
    unanchored: Vec<EntryId>,
    entries: usize,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("lists", &self.lists.iter().map(|l| l.name.as_str()).collect::<Vec<_>>())
            .field("entries", &self.entries)
            .field("keys", &self.index.len())
            .field("unanchored", &self.unanchored.len())
            .finish()
    }
}

impl Matcher {
    pub fn new(lists: Vec<Hotlist>) -> Matcher {
        let entries = lists.iter().map(|l| l.entries.len()).sum();
        let mut m = Matcher {
            lists: Vec::new(),
            index: HashMap::with_capacity(entries),
            prefix_lens: 0,
            suffix_lens: 0,
            unanchored: Vec::new(),
            entries,
        };
        for (list, l) in lists.iter().enumerate() {
            for (index, e) in l.entries.iter().enumerate() {
                m.insert(EntryId { list, index }, e.pattern.expose().as_bytes());
            }
        }
        m.lists = lists;
        m
    }

    fn insert(&mut self, id: EntryId, pattern: &[u8]) {
        let c: Vec<u8> = pattern.iter().map(|&b| canonical_char(b)).collect();
        let wild = |b: &&u8| **b == b'*' || **b == b'?';
        let prefix = c.iter().take_while(|b| !wild(b)).count();
        let key = if prefix == c.len() {
            Key::new(Anchor::Whole, 0, &c)
        } else {
            let suffix = c.iter().rev().take_while(|b| !wild(b)).count();
            let len = if c.contains(&b'*') { 0 } else { c.len() };
            if prefix == 0 && suffix == 0 {
                if len == 0 { None } else { Key::new(Anchor::Length, len, &[]) }
            } else if suffix > prefix {
                self.suffix_lens |= 1 << suffix.min(31);
                Key::new(Anchor::Suffix, len, &c[c.len() - suffix..])
            } else {
                self.prefix_lens |= 1 << prefix.min(31);
                Key::new(Anchor::Prefix, len, &c[..prefix])
            }
        };
        match key {
            Some(k) => self.index.entry(k).or_default().push(id),
            None => self.unanchored.push(id),
        }
    }

    pub fn lists(&self) -> &[Hotlist] {
        &self.lists
    }

    /// The lists back, to replace one and build a new matcher.
    pub fn into_lists(self) -> Vec<Hotlist> {
        self.lists
    }

    pub fn entry(&self, id: EntryId) -> Option<&Entry> {
        self.lists.get(id.list)?.entries.get(id.index)
    }

    /// Entries in all lists, expired ones included.
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The active entries that `best` or one of `candidates` (text, confidence) matches, each once with
    /// its strongest kind, strongest first (see the module docs). `region`: the read's region, if the
    /// recognizer told it; see [`Entry::region_allows`]. Entries with expiry <= `now_ms` never match.
    pub fn match_read(
        &self,
        best: &str,
        candidates: &[(String, f32)],
        region: Option<&str>,
        now_ms: i64,
    ) -> Vec<Hit<'_>> {
        let mut hits = Vec::new();
        let best = Plate::new(best).ok();
        let best_text = best.as_ref().map(|p| p.expose());
        if let Some(t) = best_text {
            let text = Text { literal: t.as_bytes(), source: MatchedText::Best, confidence: 1.0, region, now_ms };
            self.match_text(&text, &mut hits);
        }
        for (i, (candidate, confidence)) in candidates.iter().enumerate() {
            let Ok(p) = Plate::new(candidate) else { continue };
            // A candidate equal to the best text finds the same entries, each with a stronger kind.
            if Some(p.expose()) == best_text {
                continue;
            }
            let confidence = if confidence.is_nan() { 0.0 } else { confidence.clamp(0.0, 1.0) };
            let text =
                Text { literal: p.expose().as_bytes(), source: MatchedText::Candidate(i), confidence, region, now_ms };
            self.match_text(&text, &mut hits);
        }
        // Per entry, keep its strongest hit: kind, then score, then the best text before candidates.
        hits.sort_by(|a, b| {
            a.id.cmp(&b.id).then(a.kind.cmp(&b.kind)).then(b.score.total_cmp(&a.score)).then(a.matched.cmp(&b.matched))
        });
        hits.dedup_by_key(|h| h.id);
        hits.sort_by(|a, b| {
            a.kind
                .cmp(&b.kind)
                .then(b.score.total_cmp(&a.score))
                .then(a.entry.priority.cmp(&b.entry.priority))
                .then(a.id.cmp(&b.id))
        });
        hits
    }

    fn match_text<'a>(&'a self, t: &Text<'_>, out: &mut Vec<Hit<'a>>) {
        let n = t.literal.len();
        if n == 0 || n > MAX_PLATE_LEN {
            return; // not a plate; `Plate::new` already refuses these
        }
        let mut c = [0u8; MAX_PLATE_LEN];
        for (d, &b) in c.iter_mut().zip(t.literal) {
            *d = canonical_char(b);
        }
        let c = &c[..n];
        let mut lookup = |anchor, len, key_text: &[u8]| {
            if let Some(ids) = Key::new(anchor, len, key_text).and_then(|k| self.index.get(&k)) {
                for &id in ids {
                    self.check(id, t, out);
                }
            }
        };
        lookup(Anchor::Whole, 0, c);
        for k in 1..=n {
            if self.prefix_lens & (1 << k) != 0 {
                lookup(Anchor::Prefix, n, &c[..k]);
                lookup(Anchor::Prefix, 0, &c[..k]);
            }
            if self.suffix_lens & (1 << k) != 0 {
                lookup(Anchor::Suffix, n, &c[n - k..]);
                lookup(Anchor::Suffix, 0, &c[n - k..]);
            }
        }
        lookup(Anchor::Length, n, &[]);
        for &id in &self.unanchored {
            self.check(id, t, out);
        }
    }

    /// Decides whether and how one entry matches one text.
    fn check<'a>(&'a self, id: EntryId, t: &Text<'_>, out: &mut Vec<Hit<'a>>) {
        let Some(list) = self.lists.get(id.list) else { return };
        let Some(entry) = list.entries.get(id.index) else { return };
        if !entry.is_active(t.now_ms) || !entry.region_allows(t.region) {
            return;
        }
        let pattern = entry.pattern.expose().as_bytes();
        let Some(subs) = substitutions(pattern, t.literal) else { return };
        let exact = entry.pattern.is_exact();
        let kind = match (subs, t.source) {
            (0, MatchedText::Best) if exact => MatchKind::Exact,
            (0, MatchedText::Best) => MatchKind::Wildcard,
            (0, MatchedText::Candidate(_)) => MatchKind::Candidate,
            _ => MatchKind::Confusion,
        };
        let specificity = if exact {
            1.0
        } else {
            let literals = pattern.iter().filter(|&&b| b != b'*' && b != b'?').count();
            literals as f32 / t.literal.len() as f32
        };
        out.push(Hit {
            id,
            list: &list.name,
            entry,
            kind,
            score: score(kind, t.confidence, specificity, subs),
            matched: t.source,
            substitutions: subs,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hotlist::parse_csv;

    const NOW: i64 = 1_800_000_000_000;

    /// One list from `plate,region,priority,expiry` rows.
    fn matcher(rows: &[(&str, &str, u8, &str)]) -> Matcher {
        let mut text = String::from("plate,region,category,priority,source,expiry,notes\n");
        for (plate, region, priority, expiry) in rows {
            text.push_str(&format!("{plate},{region},stolen,{priority},test,{expiry},\n"));
        }
        Matcher::new(vec![parse_csv("t", &text, 0).unwrap()])
    }

    /// `PATTERN:Kind` per hit, in order.
    fn kinds(m: &Matcher, best: &str, cands: &[(&str, f32)], region: Option<&str>) -> Vec<String> {
        let cands: Vec<(String, f32)> = cands.iter().map(|(t, c)| (t.to_string(), *c)).collect();
        m.match_read(best, &cands, region, NOW)
            .iter()
            .map(|h| format!("{}:{:?}", h.entry.pattern.expose(), h.kind))
            .collect()
    }

    #[test]
    fn each_kind() {
        let m = matcher(&[("ABC1234", "", 1, ""), ("7AB*", "", 1, ""), ("XYZ99", "", 1, ""), ("80D5", "", 1, "")]);
        assert_eq!(kinds(&m, "abc-1234", &[], None), vec!["ABC1234:Exact"]);
        assert_eq!(kinds(&m, "7AB12", &[], None), vec!["7AB*:Wildcard"]);
        assert_eq!(kinds(&m, "QQQ", &[("XYZ99", 0.4)], None), vec!["XYZ99:Candidate"]);
        assert_eq!(kinds(&m, "A8C1234", &[], None), vec!["ABC1234:Confusion"]);
        assert_eq!(kinds(&m, "QQQ", &[("1AB12", 0.4)], None), vec!["7AB*:Confusion"]);
        assert_eq!(kinds(&m, "BOOS", &[], None), vec!["80D5:Confusion"]);
        assert!(kinds(&m, "ABC1235", &[("XYZ98", 0.9)], None).is_empty());
        // Texts that are not plates are skipped: a `*` in a read is not a wildcard.
        assert!(kinds(&m, "7AB*", &[("ABC?234", 0.9)], None).is_empty());
    }

    #[test]
    fn one_hit_per_entry_with_its_strongest_kind_and_strongest_first() {
        let m =
            matcher(&[("ABC1234", "", 9, ""), ("A8C1234", "", 1, ""), ("ABC12??", "", 1, ""), ("?BC1234", "", 1, "")]);
        let cands: Vec<(String, f32)> = vec![("ABC1234".into(), 0.9), ("A8C1234".into(), 0.3)];
        let hits = m.match_read("ABC1234", &cands, None, NOW);
        let got: Vec<(&str, MatchKind, MatchedText)> =
            hits.iter().map(|h| (h.entry.pattern.expose(), h.kind, h.matched)).collect();
        assert_eq!(
            got,
            vec![
                ("ABC1234", MatchKind::Exact, MatchedText::Best),
                ("?BC1234", MatchKind::Wildcard, MatchedText::Best),
                ("ABC12??", MatchKind::Wildcard, MatchedText::Best),
                ("A8C1234", MatchKind::Candidate, MatchedText::Candidate(1)),
            ]
        );
        assert_eq!(hits[0].score, 1.0);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "score bands follow the kinds");
        assert!((hits[1].score - (0.75 + 0.2 * 6.0 / 7.0)).abs() < 1e-6);
        assert!((hits[3].score - (0.5 + 0.25 * 0.3)).abs() < 1e-6);
    }

    #[test]
    fn priority_breaks_ties() {
        let m = matcher(&[("ABC1234", "CA", 5, ""), ("ABC1234", "", 2, "")]);
        let hits = m.match_read("ABC1234", &[], Some("ca"), NOW);
        assert_eq!(hits.iter().map(|h| h.entry.priority).collect::<Vec<_>>(), vec![2, 5]);
    }

    #[test]
    fn confusion_score_falls_with_substitutions_and_confidence() {
        let m = matcher(&[("ABC1234", "", 1, "")]);
        let one = m.match_read("A8C1234", &[], None, NOW)[0].score;
        let two = m.match_read("A8CI234", &[], None, NOW)[0].score;
        let cand = m.match_read("QQQ", &[("A8C1234".into(), 0.5)], None, NOW)[0].score;
        assert!((one - 0.45).abs() < 1e-6 && (two - 0.45 * 0.7).abs() < 1e-6 && (cand - 0.225).abs() < 1e-6);
        assert_eq!(m.match_read("A8CI234", &[], None, NOW)[0].substitutions, 2);
        let nan = m.match_read("QQQ", &[("A8C1234".into(), f32::NAN)], None, NOW)[0].score;
        assert_eq!(nan, 0.0);
    }

    #[test]
    fn expired_entries_do_not_match() {
        // 2027-01-15 is after NOW (2027-01-15T08:00Z), so that one is still active at NOW.
        let m =
            matcher(&[("ABC1234", "", 1, "2020-01-01"), ("7AB*", "", 1, "2027-01-15"), ("XYZ1", "", 1, "2027-01-14")]);
        assert!(kinds(&m, "ABC1234", &[], None).is_empty());
        assert_eq!(kinds(&m, "7AB1", &[], None), vec!["7AB*:Wildcard"]);
        assert!(kinds(&m, "XYZ1", &[], None).is_empty());
        let at_expiry = m.match_read("7AB1", &[], None, 1_800_057_600_000); // 2027-01-16T00:00Z
        assert!(at_expiry.is_empty(), "expiry <= now does not match");
    }

    #[test]
    fn region_must_agree_when_both_have_one() {
        let m = matcher(&[("ABC1234", "CA", 1, ""), ("ABC1235", "", 1, "")]);
        assert_eq!(kinds(&m, "ABC1234", &[], Some("ca")).len(), 1);
        assert_eq!(kinds(&m, "ABC1234", &[], None).len(), 1);
        assert!(kinds(&m, "ABC1234", &[], Some("NV")).is_empty());
        assert_eq!(kinds(&m, "ABC1235", &[], Some("NV")).len(), 1);
    }

    #[test]
    fn every_index_shape_is_found() {
        let m = matcher(&[
            ("ABC1234", "", 1, ""),
            ("7AB*", "", 1, ""),
            ("*1234", "", 1, ""),
            ("A?C1?34", "", 1, ""),
            ("?BC12?4", "", 1, ""),
            ("??C12??", "", 1, ""),
            ("*C12*", "", 1, ""),
            ("?*4", "", 1, ""),
            ("AB*34", "", 1, ""),
        ]);
        let got = kinds(&m, "ABC1234", &[], None);
        assert_eq!(got.len(), 8, "{got:?}");
        assert_eq!(got[0], "ABC1234:Exact");
        assert!(got.iter().all(|h| !h.starts_with("7AB*")) && got[1..].iter().all(|h| h.ends_with(":Wildcard")));
        assert_eq!(kinds(&m, "7AB", &[], None), vec!["7AB*:Wildcard"]);
    }

    #[test]
    fn matcher_can_be_shared_between_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Matcher>();
    }

    #[test]
    fn debug_shows_no_plate_text() {
        let m = matcher(&[("ABC1234", "", 1, "")]);
        let hits = m.match_read("ABC1234", &[], None, NOW);
        let d = format!("{m:?} {hits:?}");
        assert!(!d.contains("ABC1234"), "{d}");
    }
}
