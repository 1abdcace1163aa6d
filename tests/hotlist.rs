//! Hotlist matching against a naive reference: every entry of every list checked against every text
//! of the read with a plain recursive glob, literally and in confusion-canonical form. The indexed
//! matcher must report exactly the same (entry, kind) pairs, and exact entries first.

use polewatch::domain::confusion::canonical;
use polewatch::hotlist::{Entry, EntryId, Hotlist, MatchKind, Matcher, PlateGlob};
use polewatch::store::Plate;
use polewatch_dev::hotlist::bench::{synthetic_list, synthetic_reads};
use proptest::prelude::*;
use std::collections::BTreeSet;

const NOW: i64 = 1_800_000_000_000;

/// Obviously right and slow.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

/// Every entry with its canonical pattern, computed once.
struct Reference<'a> {
    entries: Vec<(EntryId, &'a Entry, Vec<u8>)>,
}

impl<'a> Reference<'a> {
    fn new(lists: &'a [Hotlist]) -> Reference<'a> {
        let entries = lists
            .iter()
            .enumerate()
            .flat_map(|(list, l)| {
                l.entries
                    .iter()
                    .enumerate()
                    .map(move |(index, e)| (EntryId { list, index }, e, canonical(e.pattern.expose().as_bytes())))
            })
            .collect();
        Reference { entries }
    }

    /// Each entry's strongest kind, by checking every entry against every text.
    fn find(
        &self,
        best: &str,
        cands: &[(String, f32)],
        region: Option<&str>,
        now: i64,
    ) -> BTreeSet<(EntryId, MatchKind)> {
        let mut texts: Vec<(bool, Vec<u8>, Vec<u8>)> = Vec::new();
        let plates = std::iter::once((true, best)).chain(cands.iter().map(|(c, _)| (false, c.as_str())));
        for (is_best, text) in plates {
            if let Ok(p) = Plate::new(text) {
                let t = p.expose().as_bytes();
                texts.push((is_best, t.to_vec(), canonical(t)));
            }
        }
        let mut out = BTreeSet::new();
        for (id, e, canon) in &self.entries {
            if e.expires_at_ms.is_some_and(|x| x <= now) {
                continue;
            }
            if let (Some(er), Some(rr)) = (&e.region, region)
                && !er.eq_ignore_ascii_case(rr)
            {
                continue;
            }
            let p = e.pattern.expose().as_bytes();
            let exact = !p.contains(&b'*') && !p.contains(&b'?');
            let kind = texts
                .iter()
                .filter_map(|(is_best, t, ct)| {
                    if glob(p, t) {
                        Some(match (is_best, exact) {
                            (true, true) => MatchKind::Exact,
                            (true, false) => MatchKind::Wildcard,
                            _ => MatchKind::Candidate,
                        })
                    } else if glob(canon, ct) {
                        Some(MatchKind::Confusion)
                    } else {
                        None
                    }
                })
                .min();
            if let Some(k) = kind {
                out.insert((*id, k));
            }
        }
        out
    }
}

fn indexed(
    m: &Matcher,
    best: &str,
    cands: &[(String, f32)],
    region: Option<&str>,
    now: i64,
) -> BTreeSet<(EntryId, MatchKind)> {
    let hits = m.match_read(best, cands, region, now);
    let set: BTreeSet<_> = hits.iter().map(|h| (h.id, h.kind)).collect();
    assert_eq!(set.len(), hits.len(), "an entry was reported twice");
    set
}

fn entry(pattern: &str, region: Option<&str>, priority: u8, expires_at_ms: Option<i64>) -> Option<Entry> {
    Some(Entry {
        pattern: PlateGlob::parse(pattern).ok()?,
        region: region.map(str::to_string),
        category: "stolen vehicle".into(),
        priority,
        source: "test".into(),
        expires_at_ms,
        notes: String::new(),
        line: 0,
    })
}

fn list(name: &str, entries: Vec<Entry>) -> Hotlist {
    Hotlist { name: name.into(), entries, loaded_at_ms: 0 }
}

/// Small alphabets with confusable characters make literal, wildcard and confusion hits frequent.
const TEXT: &str = "[AB018OIS]{1,6}";
const PATTERN: &str = "[AB018OIS*?]{1,7}";

fn region() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), Just(Some("CA".to_string())), Just(Some("NV".to_string()))]
}

fn expiry() -> impl Strategy<Value = Option<i64>> {
    prop_oneof![3 => Just(None), 1 => (-5i64..5).prop_map(|d| Some(NOW + d))]
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec((PATTERN, region(), 1u8..=9, expiry()), 0..30)
        .prop_map(|v| v.into_iter().filter_map(|(p, r, prio, exp)| entry(&p, r.as_deref(), prio, exp)).collect())
}

fn candidates() -> impl Strategy<Value = Vec<(String, f32)>> {
    prop::collection::vec((TEXT, 0.0f32..=1.0), 0..4)
}

proptest! {
    /// (1) The best text equal to an exact entry: that entry is reported as `Exact`, ahead of every
    /// weaker hit, whatever else the lists hold.
    #[test]
    fn exact_entry_is_reported_exact_and_first(
        best in "[AB018OIS]{2,7}",
        prio in 1u8..=9,
        extra in entries(),
        cands in candidates(),
        read_region in region(),
    ) {
        let mut extra = extra;
        extra.retain(|e| e.pattern.expose() != best.as_str());
        let Some(wanted) = entry(&best, None, prio, None) else { return Ok(()) };
        let mut entries = extra.clone();
        let at = entries.len() / 2;
        entries.insert(at, wanted);
        let m = Matcher::new(vec![list("extra", extra), list("wanted", entries)]);
        let hits = m.match_read(&best, &cands, read_region.as_deref(), NOW);
        let pos = hits.iter().position(|h| h.id == EntryId { list: 1, index: at });
        let pos = pos.expect("the exact entry is reported");
        prop_assert_eq!(hits[pos].kind, MatchKind::Exact);
        prop_assert_eq!(hits[pos].score, 1.0);
        prop_assert!(hits[..pos].iter().all(|h| h.kind == MatchKind::Exact), "a weaker hit comes before the exact one");
    }

    /// (2) The index finds exactly what checking every entry finds, with the same kinds.
    #[test]
    fn index_agrees_with_linear_reference(
        lists in prop::collection::vec(entries(), 1..4),
        best in TEXT,
        cands in candidates(),
        read_region in region(),
        now in (NOW - 3)..(NOW + 3),
    ) {
        let lists: Vec<Hotlist> = lists.into_iter().enumerate().map(|(i, e)| list(&format!("l{i}"), e)).collect();
        let want = Reference::new(&lists).find(&best, &cands, read_region.as_deref(), now);
        let m = Matcher::new(lists);
        prop_assert_eq!(indexed(&m, &best, &cands, read_region.as_deref(), now), want);
    }

    /// (3) An expired entry never matches, even read exactly; the same entry without expiry does.
    #[test]
    fn expired_entries_never_match(
        plate in "[AB018OIS]{2,7}",
        expired_by in 0i64..1_000_000,
        cands in candidates(),
        others in entries(),
    ) {
        let mut others = others;
        others.retain(|e| e.pattern.expose() != plate.as_str());
        let Some(mut e) = entry(&plate, None, 1, Some(NOW - expired_by)) else { return Ok(()) };
        let mut with = others.clone();
        with.push(e.clone());
        let m = Matcher::new(vec![list("l", with)]);
        let id = EntryId { list: 0, index: others.len() };
        let mut all_cands = cands.clone();
        all_cands.push((plate.clone(), 1.0));
        let hits = m.match_read(&plate, &all_cands, None, NOW);
        prop_assert!(hits.iter().all(|h| h.id != id));
        prop_assert!(hits.iter().all(|h| h.entry.expires_at_ms.is_none_or(|x| x > NOW)));

        e.expires_at_ms = None;
        let m = Matcher::new(vec![list("l", vec![e])]);
        prop_assert_eq!(m.match_read(&plate, &cands, None, NOW).len(), 1);
    }
}

/// 10^5 synthetic entries (exact, prefix, suffix, `?`, inner `*`, a few unanchored; some expired,
/// some regional) and a few hundred reads built to hit them: index and reference agree.
#[test]
fn large_list_agrees_with_reference() {
    let lists = vec![synthetic_list(11, 100_000, NOW)];
    let reads = synthetic_reads(12, &lists[0], 200);
    let mut hits = 0;
    let mut kinds = BTreeSet::new();
    let m = Matcher::new(lists.clone());
    let reference = Reference::new(&lists);
    for r in &reads {
        let want = reference.find(&r.best, &r.candidates, r.region.as_deref(), NOW);
        let got = indexed(&m, &r.best, &r.candidates, r.region.as_deref(), NOW);
        assert_eq!(got, want, "read {r:?}");
        hits += got.len();
        kinds.extend(got.iter().map(|(_, k)| *k));
    }
    // The reads must exercise the matcher, not agree on empty results.
    assert!(hits > 100, "{hits} hits");
    assert_eq!(kinds.len(), 4, "every kind occurs: {kinds:?}");
}

/// Figures, not a check: `cargo test --release --test hotlist -- --ignored --nocapture`.
#[test]
#[ignore]
fn bench_figures() {
    for (name, value, unit) in polewatch_dev::hotlist::bench::bench(100_000, 20_000) {
        println!("{name:<50} {value:>12.2} {unit}");
    }
}
