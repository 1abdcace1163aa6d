//! `polewatch-dev bench store --scale N[,N…]`: the store at a year's scale. For each size, a store holding N
//! reads spread evenly over 366 days (filled oldest first, as a box fills it) is timed for: the fill
//! (durable batches of 1000), durable inserts into the full store (8 writers, group commit), exact and
//! wildcard search p50/p99, and the daemon's retention sweep (its default policy, no pause between
//! batches) purging the one day past retention and then ten more days. Purge time per purged read
//! should not grow with N: the sweep walks only the expired front of the time-ordered `reads` tree.

use crate::bench::{ScratchDir, synthetic_read};
use crate::clock::FixedClock;
use crate::retention::{DAY_MS, Policy};
use crate::store::crypt::Keyring;
use crate::store::sweeper::{SweepOutcome, SweepReport, SweepSettings, sweep};
use crate::store::{PlatePattern, Store, StoreOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct ScaleOptions<'a> {
    pub sizes: &'a [usize],
    pub dir: Option<&'a Path>,
    pub keys: Option<Arc<Keyring>>,
    /// Bytes of crop stored with each read (0: metadata only).
    pub crop_bytes: usize,
    /// Time spent at most on each wildcard search series (at least 5 runs each).
    pub wildcard_budget: Duration,
}

type Figures = Vec<(String, f64, &'static str)>;

/// Days the synthetic reads span: one day more than the default retention, so one day expires.
const SPAN_DAYS: i64 = 366;

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Times `f` `runs` times (or until `budget` is spent, at least `min_runs`); sorted ms.
fn timings(
    runs: usize,
    min_runs: usize,
    budget: Duration,
    mut f: impl FnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<f64>> {
    let start = Instant::now();
    let mut t = Vec::with_capacity(runs);
    for i in 0..runs {
        if i >= min_runs && start.elapsed() > budget {
            break;
        }
        let s = Instant::now();
        f(i)?;
        t.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    t.sort_by(|a, b| a.total_cmp(b));
    Ok(t)
}

fn push_p(figures: &mut Figures, name: String, t: &[f64]) {
    figures.push((format!("{name}_p50_ms"), pct(t, 50.0), "ms"));
    figures.push((format!("{name}_p99_ms"), pct(t, 99.0), "ms"));
    figures.push((format!("{name}_runs"), t.len() as f64, "runs"));
}

/// Capture time of read `seq` of `size`, oldest first, spread over [`SPAN_DAYS`] ending at `now`.
fn captured_at(seq: usize, size: usize, now: i64) -> i64 {
    let span = SPAN_DAYS * DAY_MS;
    now - span + (seq as i128 * span as i128 / size as i128) as i64
}

pub fn run(o: &ScaleOptions, now: i64, figures: &mut Figures) -> anyhow::Result<()> {
    for &size in o.sizes {
        anyhow::ensure!(size >= 100_000, "--scale sizes start at 100000 reads");
        let scratch = ScratchDir::new(o.dir, "bench-scale")?;
        let mut so = StoreOptions::at(scratch.0.join("s"));
        so.keys = o.keys.clone();
        let (store, _) = Store::open(&so)?;

        // Fill, oldest first, in durable batches of 1000.
        let fill = Instant::now();
        let mut seq = 0usize;
        while seq < size {
            let n = 1000.min(size - seq);
            store.put_reads(
                (seq..seq + n).map(|s| synthetic_read(s as u64, captured_at(s, size, now), o.crop_bytes)).collect(),
            )?;
            seq += n;
        }
        let fill_s = fill.elapsed().as_secs_f64();
        figures.push((format!("scale_{size}_fill_batches_of_1000_reads_per_s"), size as f64 / fill_s, "reads/s"));
        figures.push((
            format!("scale_{size}_bytes_on_disk_per_read"),
            store.size_on_disk()? as f64 / size as f64,
            "bytes",
        ));

        // Durable inserts into the full store: 8 writers, each read acknowledged after its flush.
        let store = Arc::new(store);
        let (writers, each) = (8usize, 250usize);
        let t = Instant::now();
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let s = store.clone();
                let crop = o.crop_bytes;
                std::thread::spawn(move || -> anyhow::Result<()> {
                    for i in 0..each {
                        let seq = (size + w * each + i) as u64;
                        s.put_read(synthetic_read(seq, now - 60_000 + (w * each + i) as i64, crop))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        }
        figures.push((
            format!("scale_{size}_durable_inserts_per_s_8_writers"),
            (writers * each) as f64 / t.elapsed().as_secs_f64(),
            "reads/s",
        ));

        // Search. Plates are T + 7 digits, one read each; limit 100 as the console asks.
        let plate_of = |i: usize| format!("T{:07}", (i.wrapping_mul(7919) + 13) % size);
        let exact = timings(1001, 1001, Duration::MAX, |i| {
            let p = PlatePattern::parse(&plate_of(i))?;
            anyhow::ensure!(store.search(&p, 100)?.len() == 1, "exact search missed");
            Ok(())
        })?;
        push_p(figures, format!("scale_{size}_exact_search"), &exact);
        // Prefix: all but the last digit (10 hits). Suffix: the last five digits (size / 10^5 hits).
        let prefix = timings(201, 5, o.wildcard_budget, |i| {
            let p = PlatePattern::parse(&format!("{}*", &plate_of(i + 1)[..7]))?;
            anyhow::ensure!(!store.search(&p, 100)?.is_empty(), "prefix search missed");
            Ok(())
        })?;
        push_p(figures, format!("scale_{size}_prefix_wildcard_search"), &prefix);
        let suffix = timings(201, 5, o.wildcard_budget, |i| {
            let p = PlatePattern::parse(&format!("*{}", &plate_of(i + 1)[3..]))?;
            anyhow::ensure!(!store.search(&p, 100)?.is_empty(), "suffix search missed");
            Ok(())
        })?;
        push_p(figures, format!("scale_{size}_suffix_wildcard_search"), &suffix);

        // What the large-purge guard cost each sweep before it counted only up to its bound: a walk of
        // every stored read (the tree's `len`).
        let t = Instant::now();
        let walked = store.count_reads();
        figures.push((format!("scale_{size}_whole_store_count_ms"), t.elapsed().as_secs_f64() * 1000.0, "ms"));
        anyhow::ensure!(walked == size + writers * each, "the store holds {walked} reads");

        // A day's purge with the daemon's default policy (10% guard, 500 per batch), then ten days more.
        let policy = Policy::from(&crate::config::Retention::default());
        let settings =
            SweepSettings { batch_size: crate::config::Retention::default().batch_size, batch_pause: Duration::ZERO };
        let day = size.div_ceil(SPAN_DAYS as usize);
        for (label, at, days) in [("one_day", now, 1usize), ("ten_more_days", now + 10 * DAY_MS, 10)] {
            let t = Instant::now();
            let r: SweepReport = sweep(
                &store,
                &policy,
                &FixedClock { now: at, synced: Some(true) },
                settings,
                &tokio_util::sync::CancellationToken::new(),
                None,
            )?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            anyhow::ensure!(r.outcome == SweepOutcome::Completed, "sweep at {size}: {:?}", r.outcome);
            // Each day holds size/366 reads, give or take one at the edges.
            let want = day * days;
            anyhow::ensure!(
                r.purged as usize + 2 * days >= want && r.purged as usize <= want + 2 * days,
                "sweep at {size} purged {} instead of about {want}",
                r.purged
            );
            figures.push((format!("scale_{size}_purge_{label}_reads"), r.purged as f64, "reads"));
            figures.push((format!("scale_{size}_purge_{label}_ms"), ms, "ms"));
            figures.push((
                format!("scale_{size}_purge_{label}_us_per_purged_read"),
                ms * 1000.0 / r.purged.max(1) as f64,
                "us",
            ));
        }
        match Arc::try_unwrap(store) {
            Ok(s) => s.close()?,
            Err(_) => anyhow::bail!("store still shared after the writers ended"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let t: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(pct(&t, 50.0), 50.0);
        assert_eq!(pct(&t, 99.0), 99.0);
        assert_eq!(pct(&t[..5], 99.0), 5.0);
        assert_eq!(pct(&t[..1], 50.0), 1.0);
    }

    #[test]
    fn reads_span_the_year_and_one_day_oldest_first() {
        let now = 1_800_000_000_000;
        let size = 366_000;
        assert_eq!(captured_at(0, size, now), now - SPAN_DAYS * DAY_MS);
        assert!(captured_at(size - 1, size, now) < now);
        // The first day holds size/366 reads: read 999 is inside it, read 1000 is not.
        assert!(captured_at(999, size, now) < now - 365 * DAY_MS);
        assert_eq!(captured_at(1000, size, now), now - 365 * DAY_MS);
    }
}
