//! Hotlist matching figures (for `polewatch-dev bench`): index build time and time per read against a large
//! synthetic list. Figures only; tests never assert on time. The synthetic list and reads are public so
//! that tests can check the matcher on the same data.

use super::{Entry, Hotlist, Matcher, PlateGlob};
use crate::retention::DAY_MS;
use std::collections::HashSet;
use std::time::Instant;

/// Characters of synthetic plates: confusable ones are frequent so that confusion hits occur.
const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const REGIONS: [&str; 4] = ["CA", "NV", "AZ", "OR"];
/// Pairs a recognizer confuses (see `confusion::GROUPS`), for mutating reads.
const CONFUSED: [(u8, u8); 8] =
    [(b'0', b'O'), (b'D', b'0'), (b'1', b'I'), (b'7', b'1'), (b'8', b'B'), (b'5', b'S'), (b'2', b'Z'), (b'6', b'G')];

/// A vehicle read as the recognizer would hand it over.
#[derive(Debug, Clone)]
pub struct SyntheticRead {
    pub best: String,
    pub candidates: Vec<(String, f32)>,
    pub region: Option<String>,
}

fn plate(rng: &mut fastrand::Rng) -> Vec<u8> {
    let len = rng.usize(5..=8);
    (0..len).map(|_| CHARS[rng.usize(..CHARS.len())]).collect()
}

/// Mostly exact entries, then wildcard shapes as partial-plate policies produce them; about one in
/// 10^4 has no literal end (`*AB*`). A tenth are expired at `now_ms`, a third regional.
pub fn synthetic_list(seed: u64, entries: usize, now_ms: i64) -> Hotlist {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries);
    while out.len() < entries {
        let p = plate(&mut rng);
        let n = p.len();
        let text: Vec<u8> = match rng.u32(..10_000) {
            0..8_500 => p,
            8_500..9_000 => [&p[..rng.usize(2..=4)], &b"*"[..]].concat(),
            9_000..9_400 => [&b"*"[..], &p[n - rng.usize(3..=4)..]].concat(),
            9_400..9_700 => {
                let mut q = p;
                for _ in 0..rng.usize(1..=2) {
                    q[rng.usize(..n)] = b'?';
                }
                q
            }
            9_700..9_999 => [&p[..2], &b"*"[..], &p[n - 2..]].concat(),
            _ => [&b"*"[..], &p[1..3], &b"*"[..]].concat(),
        };
        let Ok(pattern) = PlateGlob::parse(&String::from_utf8_lossy(&text)) else { continue };
        let region = (rng.u32(..3) == 0).then(|| REGIONS[rng.usize(..REGIONS.len())].to_string());
        if !seen.insert((pattern.clone(), region.clone())) {
            continue;
        }
        let expires_at_ms = match rng.u32(..10) {
            0 => Some(now_ms - rng.i64(0..30 * DAY_MS)),
            1 | 2 => Some(now_ms + rng.i64(1..30 * DAY_MS)),
            _ => None,
        };
        out.push(Entry {
            pattern,
            region,
            category: "stolen vehicle".into(),
            priority: rng.u8(1..=9),
            source: "synthetic".into(),
            expires_at_ms,
            notes: String::new(),
            line: out.len() as u64 + 2,
        });
    }
    Hotlist { name: format!("synthetic-{seed}"), entries: out, loaded_at_ms: now_ms }
}

/// Reads of which about 60% come from a list entry (wildcards filled in, sometimes with one confused
/// character) and the rest are random plates; each with 0 to 4 candidates, variants of the best text.
pub fn synthetic_reads(seed: u64, list: &Hotlist, reads: usize) -> Vec<SyntheticRead> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..reads)
        .map(|_| {
            let mut best = match list.entries.get(rng.usize(..list.entries.len().max(1))) {
                Some(e) if rng.u32(..10) < 6 => instantiate(&mut rng, e.pattern.expose().as_bytes()),
                _ => plate(&mut rng),
            };
            if rng.u32(..10) < 3 {
                confuse(&mut rng, &mut best);
            }
            let candidates = (0..rng.usize(0..=4))
                .map(|_| {
                    let mut c = best.clone();
                    if rng.bool() {
                        confuse(&mut rng, &mut c);
                    } else if !c.is_empty() {
                        let i = rng.usize(..c.len());
                        c[i] = CHARS[rng.usize(..CHARS.len())];
                    }
                    (String::from_utf8_lossy(&c).into_owned(), rng.f32() * 0.9)
                })
                .collect();
            let region = rng.bool().then(|| REGIONS[rng.usize(..REGIONS.len())].to_string());
            SyntheticRead { best: String::from_utf8_lossy(&best).into_owned(), candidates, region }
        })
        .collect()
}

/// A plate the pattern matches.
fn instantiate(rng: &mut fastrand::Rng, pattern: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pattern.len() + 3);
    for &b in pattern {
        match b {
            b'?' => out.push(CHARS[rng.usize(..CHARS.len())]),
            b'*' => out.extend((0..rng.usize(0..=3)).map(|_| CHARS[rng.usize(..CHARS.len())])),
            _ => out.push(b),
        }
    }
    out
}

/// Swaps one character for one it is confused with, if the text has any.
fn confuse(rng: &mut fastrand::Rng, text: &mut [u8]) {
    let spots: Vec<(usize, u8)> = text
        .iter()
        .enumerate()
        .flat_map(|(i, &b)| CONFUSED.iter().filter(move |(x, _)| *x == b).map(move |&(_, y)| (i, y)))
        .collect();
    if !spots.is_empty() {
        let (i, y) = spots[rng.usize(..spots.len())];
        text[i] = y;
    }
}

/// Index build time and time per read (p50, p99, mean) for `entries` synthetic entries and `reads`
/// synthetic reads, plus the mean hits per read.
pub fn bench(entries: usize, reads: usize) -> Vec<(String, f64, &'static str)> {
    let now_ms = 1_800_000_000_000;
    let list = synthetic_list(1, entries, now_ms);
    let reads = synthetic_reads(2, &list, reads.max(1));
    let start = Instant::now();
    let matcher = Matcher::new(vec![list]);
    let build_ms = start.elapsed().as_secs_f64() * 1e3;

    let mut micros = Vec::with_capacity(reads.len());
    let mut hits = 0usize;
    for r in &reads {
        let start = Instant::now();
        let found = matcher.match_read(&r.best, &r.candidates, r.region.as_deref(), now_ms);
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        hits += std::hint::black_box(found).len();
    }
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    vec![
        (format!("hotlist_index_build_{entries}_entries_ms"), build_ms, "ms"),
        (format!("hotlist_match_{entries}_entries_p50_us"), at(0.5), "µs"),
        (format!("hotlist_match_{entries}_entries_p99_us"), at(0.99), "µs"),
        (format!("hotlist_match_{entries}_entries_mean_us"), mean, "µs"),
        ("hotlist_hits_per_read_mean".to_string(), hits as f64 / reads.len() as f64, "hits"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_data_has_every_shape_and_reads_that_hit() {
        let list = synthetic_list(3, 20_000, 0);
        assert_eq!(list.entries.len(), 20_000);
        let has = |f: &dyn Fn(&str) -> bool| list.entries.iter().any(|e| f(e.pattern.expose()));
        assert!(has(&|p| !p.contains(['*', '?'])));
        assert!(has(&|p| p.ends_with('*') && !p.starts_with('*')));
        assert!(has(&|p| p.starts_with('*') && !p.ends_with('*')));
        assert!(has(&|p| p.contains('?')));
        assert!(has(&|p| p.starts_with('*') && p.ends_with('*')));
        let m = Matcher::new(vec![list]);
        let reads = synthetic_reads(4, &m.lists()[0], 200);
        let hits: usize =
            reads.iter().map(|r| m.match_read(&r.best, &r.candidates, r.region.as_deref(), 0).len()).sum();
        assert!(hits > 50, "{hits}");
    }

    #[test]
    fn bench_reports_figures() {
        let f = bench(1_000, 50);
        assert_eq!(f.len(), 5);
        assert!(f.iter().all(|(_, v, _)| v.is_finite() && *v >= 0.0));
    }
}
