//! `polewatch-dev bench audit`: durable audit appends (one writer, four writers) and the time to verify a
//! large log.

use crate::access::audit::{AuditKey, AuditLog};
use crate::access::{Action, AuditSink, NewAuditEntry, Outcome};
use crate::store::{Store, StoreOptions};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Options {
    /// Size of the log whose verification is timed.
    pub entries: usize,
    /// Durable appends timed, one at a time (the four-writer figure uses as many).
    pub appends: usize,
    pub dir: Option<PathBuf>,
    pub json: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { entries: 1_000_000, appends: 2_000, dir: None, json: false }
    }
}

/// A search as the console will record it: about the size of a real entry.
fn search(i: usize) -> NewAuditEntry {
    NewAuditEntry {
        user: format!("officer{:03}", i % 50),
        organisation: "Auburn Police Department".into(),
        source: format!("10.20.0.{}:{}", i % 250, 40_000 + i % 20_000),
        action: Some(Action::Search),
        object: "reads".into(),
        query: format!("7AB{:04}", i % 10_000),
        purpose: "stolen vehicle".into(),
        case_number: format!("C-2026-{:05}", i % 100_000),
        result_count: Some((i % 17) as u64),
        outcome: Some(Outcome::Ok),
        detail: String::new(),
    }
}

pub fn run(o: &Options) -> anyhow::Result<()> {
    let scratch = super::ScratchDir::new(o.dir.as_deref(), "bench-audit")?;
    let (store, _) =
        Store::open(&StoreOptions::at(scratch.0.join("store"))).context("cannot open the scratch store")?;
    let (key, _) = AuditKey::generate()?;
    let log = Arc::new(AuditLog::new(Arc::new(store), key));

    let t = Instant::now();
    for i in 0..o.appends {
        log.record(search(i))?;
    }
    let one = o.appends as f64 / t.elapsed().as_secs_f64();

    let per_thread = (o.appends / 4).max(1);
    let t = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let log = log.clone();
                s.spawn(move || -> anyhow::Result<()> {
                    for i in 0..per_thread {
                        log.record(search(w * per_thread + i))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("a writer thread panicked"))??;
        }
        Ok(())
    })?;
    let four = (4 * per_thread) as f64 / t.elapsed().as_secs_f64();

    // The rest in batches (one transaction and flush each): the durable path is timed above.
    let written = o.appends + 4 * per_thread;
    let t = Instant::now();
    let mut n = written;
    while n < o.entries {
        let batch: Vec<NewAuditEntry> = (n..(n + 1000).min(o.entries)).map(search).collect();
        n += batch.len();
        log.record_all(&batch)?;
    }
    let fill_s = t.elapsed().as_secs_f64();
    let total = n.max(written);

    let t = Instant::now();
    let report = log.verify(None)?;
    let verify_s = t.elapsed().as_secs_f64();
    anyhow::ensure!(report.entries == total as u64, "verified {} entries, wrote {total}", report.entries);
    let bytes = log.store().size_on_disk()?;

    super::print_figures(
        &[
            ("audit_appends_per_s_one_writer".into(), one, "entries/s"),
            ("audit_appends_per_s_four_writers".into(), four, "entries/s"),
            ("audit_fill_batches_of_1000_s".into(), fill_s, "s"),
            ("audit_entries_verified".into(), total as f64, ""),
            ("audit_verify_s".into(), verify_s, "s"),
            ("audit_verify_us_per_entry".into(), verify_s * 1e6 / total as f64, "µs"),
            ("audit_bytes_on_disk_per_entry".into(), bytes as f64 / total as f64, "B"),
        ],
        o.json,
    );
    Ok(())
}
