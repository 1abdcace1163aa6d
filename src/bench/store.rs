//! `polewatch bench store`: durable insert rate, bytes on disk per read, purge time against store size.

use crate::bench::{print_figures, synthetic_read, ScratchDir};
use crate::clock::FixedClock;
use crate::retention::{Policy, DAY_MS};
use crate::store::sweeper::{sweep, SweepOutcome, SweepSettings};
use crate::store::{Store, StoreOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Options {
    pub insert_reads: usize,
    pub purge_sizes: Vec<usize>,
    pub dir: Option<std::path::PathBuf>,
    pub json: bool,
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

    // 1. Durable inserts (each acknowledged only after its flush), reads with a 3 KB crop.
    let n = o.insert_reads.max(100);
    {
        let scratch = ScratchDir::new(o.dir.as_deref(), "bench-insert")?;
        let (store, _) = Store::open(&StoreOptions::at(scratch.0.join("s")))?;
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
        figures.push(("durable_inserts_per_s_8_writers_group_commit".into(), (n / writers * writers) as f64 / t.elapsed().as_secs_f64(), "reads/s"));

        let t = Instant::now();
        for b in 0..n / 100 {
            let reads = (0..100).map(|i| {
                let seq = (10_000_000 + b * 100 + i) as u64;
                synthetic_read(seq, now + seq as i64, 3000)
            });
            store.put_reads(reads.collect())?;
        }
        figures.push(("durable_inserts_per_s_batches_of_100".into(), (n / 100 * 100) as f64 / t.elapsed().as_secs_f64(), "reads/s"));
    }

    // 2. Bytes on disk per read.
    for (label, crop) in [("bytes_on_disk_per_read_metadata_only", 0usize), ("bytes_on_disk_per_read_with_3kb_crop", 3000)] {
        let scratch = ScratchDir::new(o.dir.as_deref(), "bench-size")?;
        let path = scratch.0.join("s");
        let (store, _) = Store::open(&StoreOptions::at(&path))?;
        let empty = disk_bytes(&path);
        for b in 0..n / 1000 {
            let reads = (0..1000).map(|i| {
                let seq = (b * 1000 + i) as u64;
                synthetic_read(seq, now + seq as i64, crop)
            });
            store.put_reads(reads.collect())?;
        }
        store.close()?;
        // Reopen so sled has written its snapshot; then count what is allocated.
        let (store, _) = Store::open(&StoreOptions::at(&path))?;
        store.close()?;
        let used = disk_bytes(&path).saturating_sub(empty);
        figures.push((label.into(), used as f64 / (n / 1000 * 1000) as f64, "bytes"));
    }

    // 3. Purge 10% of stores of different sizes: time must follow what expires, not what is stored.
    let policy = Policy { min_days: 365, max_days: 365, max_clock_lead_ms: 30 * DAY_MS, max_clock_lag_ms: 300_000, require_clock_sync: true, max_purge_percent: 100, large_purge_min_reads: 0 };
    for &size in &o.purge_sizes {
        let scratch = ScratchDir::new(o.dir.as_deref(), "bench-purge")?;
        let (store, _) = Store::open(&StoreOptions::at(scratch.0.join("s")))?;
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
        let report = sweep(&store, &policy, &FixedClock { now, synced: Some(true) }, SweepSettings { batch_size: 500, batch_pause: Duration::ZERO }, &AtomicBool::new(false), None)?;
        let purge_s = t.elapsed().as_secs_f64();
        if report.outcome != SweepOutcome::Completed || report.purged as usize != expiring {
            anyhow::bail!("purge of {size} reads deleted {} instead of {expiring} ({:?})", report.purged, report.outcome);
        }
        let label = format!("purge_10pct_of_{size}_reads_ms");
        figures.push((label, purge_s * 1000.0, "ms"));
        figures.push((format!("purge_10pct_of_{size}_reads_us_per_purged_read"), purge_s * 1e6 / expiring.max(1) as f64, "us"));
        figures.push((format!("fill_{size}_reads_per_s"), size as f64 / fill_s, "reads/s"));
    }
    print_figures(&figures, o.json);
    Ok(())
}
