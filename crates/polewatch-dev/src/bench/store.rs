//! `polewatch-dev bench store`: durable insert rate, bytes on disk per read, purge time against store size;
//! with `--scale`, the year's-scale figures of [`super::store_scale`] instead.

use crate::bench::{ScratchDir, print_figures, synthetic_read};
use crate::clock::FixedClock;
use crate::retention::{DAY_MS, Policy};
use crate::store::crypt::{Key, Keyring};
use crate::store::sweeper::{SweepOutcome, SweepSettings, sweep};
use crate::store::{PlatePattern, Store, StoreOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Options {
    pub insert_reads: usize,
    pub purge_sizes: Vec<usize>,
    pub dir: Option<std::path::PathBuf>,
    pub json: bool,
    /// Every store of the insert, size and purge figures encrypted at rest (random key).
    pub encrypted: bool,
    /// Size of the stores (one clear, one encrypted) the search figures are taken on; 0: none.
    pub search_reads: usize,
    /// Store sizes for the year's-scale figures ([`super::store_scale`]); when given, only those run.
    pub scale: Vec<usize>,
    /// Crop bytes per read in the year's-scale stores (0: metadata only).
    pub scale_crop_bytes: usize,
}

fn random_key() -> anyhow::Result<Arc<Keyring>> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("no random key: {e}"))?;
    Ok(Arc::new(Keyring::single(Key::from_bytes(&b, "bench".into()))))
}

fn opts(path: &Path, keys: &Option<Arc<Keyring>>) -> StoreOptions {
    let mut o = StoreOptions::at(path);
    o.keys = keys.clone();
    o
}

/// Median of `f`'s time over `runs` calls, in ms.
fn median_ms(runs: usize, mut f: impl FnMut(usize) -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut t = Vec::with_capacity(runs);
    for i in 0..runs {
        let s = Instant::now();
        f(i)?;
        t.push(s.elapsed().as_secs_f64() * 1000.0);
    }
    t.sort_by(|a, b| a.total_cmp(b));
    Ok(t[t.len() / 2])
}

/// Search at `size` reads, clear and encrypted: exact, prefix and suffix wildcard, and the walk that
/// retroactive hotlist matching makes over every read.
fn search_figures(
    o: &Options,
    size: usize,
    now: i64,
    figures: &mut Vec<(String, f64, &'static str)>,
) -> anyhow::Result<()> {
    for (tag, keys) in [("clear", None), ("encrypted", Some(random_key()?))] {
        let scratch = ScratchDir::new(o.dir.as_deref(), "bench-search")?;
        let (store, _) = Store::open(&opts(&scratch.0.join("s"), &keys))?;
        let fill = Instant::now();
        let mut seq = 0usize;
        while seq < size {
            let n = 1000.min(size - seq);
            store.put_reads((seq..seq + n).map(|s| synthetic_read(s as u64, now - DAY_MS + s as i64, 0)).collect())?;
            seq += n;
        }
        figures.push((
            format!("search_{tag}_fill_{size}_reads_per_s"),
            size as f64 / fill.elapsed().as_secs_f64(),
            "reads/s",
        ));
        let plate_of = |i: usize| format!("T{:07}", (i * 7919) % size);
        let exact = median_ms(201, |i| {
            let p = PlatePattern::parse(&plate_of(i))?;
            anyhow::ensure!(store.search(&p, 100_000)?.len() == 1, "exact search missed");
            Ok(())
        })?;
        figures.push((format!("search_{tag}_exact_at_{size}_ms"), exact, "ms"));
        // 10 hits each (T0 + 5 digits + *; * + last 5 digits of a 7-digit number when size is 10^6).
        let prefix = median_ms(5, |i| {
            let p = PlatePattern::parse(&format!("{}*", &plate_of(i + 1)[..7]))?;
            anyhow::ensure!(!store.search(&p, 100_000)?.is_empty(), "prefix search missed");
            Ok(())
        })?;
        figures.push((format!("search_{tag}_prefix_wildcard_at_{size}_ms"), prefix, "ms"));
        let suffix = median_ms(5, |i| {
            let p = PlatePattern::parse(&format!("*{}", &plate_of(i + 1)[3..]))?;
            anyhow::ensure!(!store.search(&p, 100_000)?.is_empty(), "suffix search missed");
            Ok(())
        })?;
        figures.push((format!("search_{tag}_suffix_wildcard_at_{size}_ms"), suffix, "ms"));
        let walk = median_ms(3, |_| {
            let mut n = 0usize;
            store.for_each_read_since(0, |_| {
                n += 1;
                true
            })?;
            anyhow::ensure!(n == size, "walk saw {n} reads");
            Ok(())
        })?;
        figures.push((format!("search_{tag}_retroactive_walk_{size}_reads_ms"), walk, "ms"));
        store.close()?;
    }
    Ok(())
}

/// Bytes the files under `dir` occupy on disk (allocated blocks, not apparent length).
fn disk_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.blocks() * 512;
            }
        }
    }
    total
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    let mut figures: Vec<(String, f64, &str)> = Vec::new();
    let now = jiff::Timestamp::now().as_millisecond();
    let keys = if o.encrypted { Some(random_key()?) } else { None };
    figures.push(("encrypted".into(), o.encrypted as u8 as f64, "0/1"));
    if !o.scale.is_empty() {
        let so = super::store_scale::ScaleOptions {
            sizes: &o.scale,
            dir: o.dir.as_deref(),
            keys,
            crop_bytes: o.scale_crop_bytes,
            wildcard_budget: Duration::from_secs(60),
        };
        figures.push(("scale_crop_bytes".into(), o.scale_crop_bytes as f64, "bytes"));
        super::store_scale::run(&so, now, &mut figures)?;
        print_figures(&figures, o.json);
        return Ok(());
    }

    // 0. CPU cost of sealing one read (1 KB-ish record, 3 KB crop, index value and keyed hash), one core.
    {
        let k = random_key()?;
        let r = synthetic_read(1, now, 3000);
        let rec = serde_json::to_vec(
            &serde_json::json!({"camera": r.camera_id, "plate": r.plate.expose(), "c": r.char_confidences, "bbox": r.bbox}),
        )?;
        let crop = r.crop_jpeg.clone().unwrap_or_default();
        let rounds = 20_000;
        let t = Instant::now();
        for i in 0..rounds {
            let id = (i as u64).to_be_bytes();
            std::hint::black_box(k.seal(b"reads", &id, &rec)?);
            std::hint::black_box(k.seal(b"images", &id, &crop)?);
            std::hint::black_box(k.seal(b"plate_idx", &id, r.plate.expose().as_bytes())?);
            std::hint::black_box(k.current.plate_tag(r.plate.expose().as_bytes()));
        }
        figures.push(("seal_one_read_with_3kb_crop_us".into(), t.elapsed().as_secs_f64() * 1e6 / rounds as f64, "us"));
    }

    // 1. Durable inserts (each acknowledged only after its flush), reads with a 3 KB crop.
    let n = o.insert_reads.max(100);
    {
        let scratch = ScratchDir::new(o.dir.as_deref(), "bench-insert")?;
        let (store, _) = Store::open(&opts(&scratch.0.join("s"), &keys))?;
        let single = (n / 10).max(50);
        let t = Instant::now();
        for i in 0..single {
            store.put_read(synthetic_read(i as u64, now + i as i64, 3000))?;
        }
        figures.push(("durable_inserts_per_s_one_writer".into(), single as f64 / t.elapsed().as_secs_f64(), "reads/s"));

        let store = Arc::new(store);
        let writers = 8;
        let t = Instant::now();
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let s = store.clone();
                std::thread::spawn(move || -> anyhow::Result<()> {
                    for i in 0..n / writers {
                        let seq = (1_000_000 + w * n + i) as u64;
                        s.put_read(synthetic_read(seq, now + seq as i64, 3000))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        }
        figures.push((
            "durable_inserts_per_s_8_writers_group_commit".into(),
            (n / writers * writers) as f64 / t.elapsed().as_secs_f64(),
            "reads/s",
        ));

        let t = Instant::now();
        for b in 0..n / 100 {
            let reads = (0..100).map(|i| {
                let seq = (10_000_000 + b * 100 + i) as u64;
                synthetic_read(seq, now + seq as i64, 3000)
            });
            store.put_reads(reads.collect())?;
        }
        figures.push((
            "durable_inserts_per_s_batches_of_100".into(),
            (n / 100 * 100) as f64 / t.elapsed().as_secs_f64(),
            "reads/s",
        ));
    }

    // 2. Bytes on disk per read.
    for (label, crop) in
        [("bytes_on_disk_per_read_metadata_only", 0usize), ("bytes_on_disk_per_read_with_3kb_crop", 3000)]
    {
        let scratch = ScratchDir::new(o.dir.as_deref(), "bench-size")?;
        let path = scratch.0.join("s");
        let (store, _) = Store::open(&opts(&path, &keys))?;
        let empty = disk_bytes(&path);
        for b in 0..n / 1000 {
            let reads = (0..1000).map(|i| {
                let seq = (b * 1000 + i) as u64;
                synthetic_read(seq, now + seq as i64, crop)
            });
            store.put_reads(reads.collect())?;
        }
        store.close()?;
        // Reopen so everything is committed; then count what is allocated.
        let (store, _) = Store::open(&opts(&path, &keys))?;
        store.close()?;
        let used = disk_bytes(&path).saturating_sub(empty);
        figures.push((label.into(), used as f64 / (n / 1000 * 1000) as f64, "bytes"));
    }

    // 3. Purge 10% of stores of different sizes: time must follow what expires, not what is stored.
    let policy = Policy {
        min_days: 365,
        max_days: 365,
        max_clock_lead_ms: 30 * DAY_MS,
        max_clock_lag_ms: 300_000,
        require_clock_sync: true,
        max_purge_percent: 100,
        large_purge_min_reads: 0,
    };
    for &size in &o.purge_sizes {
        let scratch = ScratchDir::new(o.dir.as_deref(), "bench-purge")?;
        let (store, _) = Store::open(&opts(&scratch.0.join("s"), &keys))?;
        let expiring = size / 10;
        let fill = Instant::now();
        let mut seq = 0u64;
        while (seq as usize) < size {
            let batch: Vec<_> = (0..1000.min(size - seq as usize))
                .map(|_| {
                    let s = seq;
                    seq += 1;
                    // The first 10% lie past the cutoff (366–400 days old), the rest inside (0–364 days).
                    let age = if (s as usize) < expiring {
                        400 * DAY_MS - (s as i64 * 34 * DAY_MS / expiring.max(1) as i64)
                    } else {
                        364 * DAY_MS - ((s as i64 - expiring as i64) * 364 * DAY_MS / (size - expiring).max(1) as i64)
                    };
                    synthetic_read(s, now - age, 0)
                })
                .collect();
            store.put_reads(batch)?;
        }
        let fill_s = fill.elapsed().as_secs_f64();
        let t = Instant::now();
        let report = sweep(
            &store,
            &policy,
            &FixedClock { now, synced: Some(true) },
            SweepSettings { batch_size: 500, batch_pause: Duration::ZERO },
            &tokio_util::sync::CancellationToken::new(),
            None,
        )?;
        let purge_s = t.elapsed().as_secs_f64();
        if report.outcome != SweepOutcome::Completed || report.purged as usize != expiring {
            anyhow::bail!(
                "purge of {size} reads deleted {} instead of {expiring} ({:?})",
                report.purged,
                report.outcome
            );
        }
        let label = format!("purge_10pct_of_{size}_reads_ms");
        figures.push((label, purge_s * 1000.0, "ms"));
        figures.push((
            format!("purge_10pct_of_{size}_reads_us_per_purged_read"),
            purge_s * 1e6 / expiring.max(1) as f64,
            "us",
        ));
        figures.push((format!("fill_{size}_reads_per_s"), size as f64 / fill_s, "reads/s"));
    }
    if o.search_reads > 0 {
        search_figures(o, o.search_reads, now, &mut figures)?;
    }
    print_figures(&figures, o.json);
    Ok(())
}
