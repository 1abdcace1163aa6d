//! Kill -9 harness: a child process stores reads and reports each one it was told is durable; the
//! parent kills it at a random moment, reopens the store and checks that every reported read is there,
//! intact and findable.

use crate::bench::{synthetic_crop, synthetic_read};
use crate::store::{ImageKind, OpenOutcome, PlatePattern, ReadId, Store, StoreOptions};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const CROP_BYTES: usize = 3000;

/// The child: writes reads from `threads` threads until killed, printing `stored <id> <seq>` once each
/// is acknowledged as durable.
pub fn write_forever(store_dir: &Path, threads: usize, seq_start: u64) -> anyhow::Result<()> {
    let (store, _) = Store::open(&StoreOptions::at(store_dir))?;
    let store = Arc::new(store);
    let next = Arc::new(AtomicU64::new(seq_start));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let base_ms = jiff::Timestamp::now().as_millisecond();
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (store, next, out) = (store.clone(), next.clone(), out.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    let id = store.put_read(synthetic_read(seq, base_ms + (seq % 100_000) as i64, CROP_BYTES))?;
                    let mut o = out.lock().map_err(|_| anyhow::anyhow!("stdout lock poisoned"))?;
                    writeln!(o, "stored {id} {seq}")?;
                    o.flush()?;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
    }
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct CrashReport {
    pub cycles: usize,
    pub acknowledged: usize,
    /// Distinct acknowledged reads found missing after any cycle.
    pub lost: usize,
    /// Distinct acknowledged reads found with wrong content or not indexed.
    pub damaged: usize,
    pub failed_opens: usize,
    pub corrupt_recoveries: usize,
    pub problems: Vec<String>,
}

/// Runs `cycles` kill -9 cycles of `exe debug write-reads` against a store in `dir`.
/// `max_delay` bounds the random time before each kill.
pub fn run_cycles(exe: &Path, dir: &Path, cycles: usize, max_delay: Duration) -> anyhow::Result<CrashReport> {
    let store_dir = dir.join("store");
    let mut acked: Vec<(ReadId, u64)> = Vec::new();
    let mut report = CrashReport { cycles, ..Default::default() };
    let mut checked_upto = 0;
    let mut findings = Findings::default();
    for cycle in 0..cycles {
        let mut child = Command::new(exe)
            .args(["debug", "write-reads", "--threads", "4", "--seq-start"])
            .arg(((cycle as u64) + 1).saturating_mul(10_000_000).to_string())
            .arg("--store")
            .arg(&store_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("child has no stdout"))?;
        let reader = std::thread::spawn(move || -> Vec<String> { BufReader::new(stdout).lines().map_while(|l| l.ok()).collect() });
        std::thread::sleep(Duration::from_micros(fastrand::u64(..max_delay.as_micros().max(1) as u64)));
        // SIGKILL: no destructor, no flush, as on power loss of the process.
        child.kill()?;
        child.wait()?;
        let lines = reader.join().map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
        for l in lines {
            let mut parts = l.split_whitespace();
            if let (Some("stored"), Some(id), Some(seq)) = (parts.next(), parts.next(), parts.next()) {
                acked.push((ReadId(id.parse()?), seq.parse()?));
            }
        }
        match Store::open(&StoreOptions::at(&store_dir)) {
            Ok((store, outcome)) => {
                if let OpenOutcome::RecoveredFromCorruption { cause, .. } = outcome {
                    report.corrupt_recoveries += 1;
                    report.problems.push(format!("cycle {cycle}: store was corrupt after kill: {cause}"));
                }
                // This cycle's reads all, earlier ones by a sample (all of them after the last cycle), so the
                // check stays linear in the number of cycles.
                let check: Vec<(ReadId, u64)> = if cycle + 1 == cycles {
                    acked.clone()
                } else {
                    let mut v = acked[checked_upto..].to_vec();
                    for _ in 0..checked_upto.min(500) {
                        v.push(acked[fastrand::usize(..checked_upto)]);
                    }
                    v
                };
                checked_upto = acked.len();
                verify(&store, &check, cycle, &mut report, &mut findings)?;
                store.close()?;
            }
            Err(e) => {
                report.failed_opens += 1;
                report.problems.push(format!("cycle {cycle}: store did not open: {e}"));
            }
        }
    }
    report.acknowledged = acked.len();
    Ok(report)
}

#[derive(Default)]
struct Findings {
    lost: HashSet<ReadId>,
    damaged: HashSet<ReadId>,
}

fn verify(store: &Store, acked: &[(ReadId, u64)], cycle: usize, report: &mut CrashReport, f: &mut Findings) -> anyhow::Result<()> {
    for (id, seq) in acked {
        match store.get_read(*id)? {
            None => {
                f.lost.insert(*id);
                if report.problems.len() < 20 {
                    report.problems.push(format!("cycle {cycle}: acknowledged read {id} (seq {seq}) is missing"));
                }
            }
            Some(r) => {
                let crop_ok = store.image(*id, ImageKind::Crop)?.is_some_and(|c| c == synthetic_crop(*seq, CROP_BYTES));
                let plate = format!("T{seq:07}");
                let indexed = store.search(&PlatePattern::parse(&plate)?, 10)?.iter().any(|x| x.id == *id);
                if r.plate.expose() != plate || r.frame_seq != *seq || !crop_ok || !indexed {
                    f.damaged.insert(*id);
                    if report.problems.len() < 20 {
                        report.problems.push(format!(
                            "cycle {cycle}: read {id} damaged (plate ok {}, crop ok {crop_ok}, indexed {indexed})",
                            r.plate.expose() == plate
                        ));
                    }
                }
            }
        }
    }
    report.lost = f.lost.len();
    report.damaged = f.damaged.len();
    Ok(())
}
