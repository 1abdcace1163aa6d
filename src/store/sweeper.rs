//! The retention sweeper: deletes reads past retention in small batches, skipping held ones, and
//! refusing to run on an untrusted clock. The rules are in [`crate::retention`].

use super::{holds_tx, image_key, index_key, reversed, ImageKind, ReadId, Result, Store, StoreError, StoredRead};
use crate::access::{Action, AuditSink, NewAuditEntry, Outcome};
use crate::clock::Clock;
use crate::retention::{check_clock, hold_binds, purge_cutoff_ms, ClockDistrust, Policy};
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepOutcome {
    Completed,
    /// Nothing was deleted: the clock is not trusted.
    Refused(ClockDistrust),
    /// Stopped early (shutdown); what was purged so far is durable.
    Stopped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub outcome: SweepOutcome,
    pub cutoff_ms: i64,
    pub purged: u64,
    pub held_kept: u64,
    pub batches: u32,
    pub elapsed: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct SweepSettings {
    pub batch_size: usize,
    pub batch_pause: Duration,
}

struct Batch {
    purged: u64,
    held: u64,
    /// Key to continue after; None when the expired range is exhausted.
    next: Option<[u8; 16]>,
}

impl Store {
    /// Examines at most `max` reads captured before `cutoff_ms`, starting after `after`, and deletes
    /// those no hold binds, with their images, index entries and spent holds, in one transaction.
    fn purge_batch(&self, after: Option<[u8; 16]>, cutoff_ms: i64, now_ms: i64, max: usize) -> Result<Batch> {
        use std::ops::Bound::{Excluded, Unbounded};
        let end = super::model::first_key_at(cutoff_ms).to_vec();
        let start = after.map_or(Unbounded, |a| Excluded(a.to_vec()));
        let mut candidates: Vec<(ReadId, Vec<u8>)> = Vec::new();
        let mut last = None;
        for entry in self.trees.reads.range((start, Excluded(end))).take(max) {
            let (k, _) = entry?;
            let b: [u8; 16] = k.as_ref().try_into().map_err(|_| StoreError::Decode { key: super::hex(&k), reason: "read key is not 16 bytes".into() })?;
            last = Some(b);
            candidates.push((ReadId::from_bytes(b), k.to_vec()));
        }
        let t = &self.trees;
        let (purged, held) = (&t.reads, &t.images, &t.plate_idx, &t.plate_rev_idx, &t.holds)
            .transaction(|(reads, images, idx, rev, holds)| {
                let (mut purged, mut held) = (0u64, 0u64);
                for (id, key) in &candidates {
                    // Holds are read inside the transaction: one placed after the scan wins.
                    if holds_tx(holds, id)?.iter().any(|h| hold_binds(h, now_ms)) {
                        held += 1;
                        continue;
                    }
                    let Some(v) = reads.get(key)? else { continue };
                    let read: StoredRead = super::decode(key, &v).map_err(ConflictableTransactionError::Abort)?;
                    reads.remove(key.as_slice())?;
                    images.remove(&image_key(id, ImageKind::Crop)[..])?;
                    images.remove(&image_key(id, ImageKind::Frame)[..])?;
                    let plate = read.plate.expose().as_bytes();
                    idx.remove(index_key(plate, id))?;
                    rev.remove(index_key(&reversed(plate), id))?;
                    holds.remove(key.as_slice())?;
                    purged += 1;
                }
                Ok((purged, held))
            })
            .map_err(super::tx_err)?;
        self.trees.db.flush()?;
        let next = if candidates.len() >= max { last } else { None };
        Ok(Batch { purged, held, next })
    }
}

/// Runs one sweep to the end of the expired range (or until `stop`). The clock is checked before every
/// batch against the newest read at the start, so a clock that jumps during a sweep stops it.
///
/// The sweep, completed, stopped or refused, is recorded in `audit` at its end; if that fails the sweep
/// returns the error (what was purged stays purged: deletion past retention is required, not an access
/// to refuse, but it must not pass unnoticed).
pub fn sweep(
    store: &Store,
    policy: &Policy,
    clock: &dyn Clock,
    s: SweepSettings,
    stop: &AtomicBool,
    audit: Option<&dyn AuditSink>,
) -> Result<SweepReport> {
    let started = Instant::now();
    let mut report = SweepReport {
        outcome: SweepOutcome::Completed,
        cutoff_ms: purge_cutoff_ms(clock.now_ms(), policy),
        purged: 0,
        held_kept: 0,
        batches: 0,
        elapsed: Duration::ZERO,
    };
    let mut after = None;
    // The newest read as the sweep starts is the reference: purging may remove it, which must not make
    // the clock look wrong half-way through.
    let newest = store.newest_read_ms()?;
    loop {
        if stop.load(Ordering::Relaxed) {
            report.outcome = SweepOutcome::Stopped;
            break;
        }
        let now = clock.now_ms();
        if let Err(why) = check_clock(now, newest, clock.synchronised(), policy) {
            report.outcome = SweepOutcome::Refused(why);
            break;
        }
        report.cutoff_ms = purge_cutoff_ms(now, policy);
        let b = store.purge_batch(after, report.cutoff_ms, now, s.batch_size.max(1))?;
        report.batches += 1;
        report.purged += b.purged;
        report.held_kept += b.held;
        match b.next {
            Some(n) => after = Some(n),
            None => break,
        }
        if !s.batch_pause.is_zero() {
            std::thread::sleep(s.batch_pause);
        }
    }
    report.elapsed = started.elapsed();
    record_purge(&report, audit)?;
    Ok(report)
}

/// The one place a purge is reported: the log, and the audit log.
fn record_purge(r: &SweepReport, audit: Option<&dyn AuditSink>) -> Result<()> {
    let cutoff = jiff::Timestamp::from_millisecond(r.cutoff_ms).map(|t| t.to_string()).unwrap_or_default();
    match &r.outcome {
        SweepOutcome::Refused(why) => {
            log::warn!(purged = r.purged, held_kept = r.held_kept; "retention purge refused: {why}; nothing past this point was deleted")
        }
        _ => log::info!(
            purged = r.purged, held_kept = r.held_kept, batches = r.batches, cutoff = cutoff.as_str(),
            elapsed_ms = r.elapsed.as_millis() as u64;
            "retention purge {}: {} read(s) deleted, {} kept under evidence hold",
            if r.outcome == SweepOutcome::Stopped { "stopped early" } else { "finished" }, r.purged, r.held_kept
        ),
    }
    match audit {
        Some(sink) => sink.record(purge_entry(r, &cutoff)).map(|_| ()).map_err(|e| StoreError::Audit(format!("the purge was not recorded: {e}"))),
        None => Ok(()),
    }
}

fn purge_entry(r: &SweepReport, cutoff: &str) -> NewAuditEntry {
    let counts = format!("{} deleted, {} kept under evidence hold, {} batch(es), cutoff {cutoff}", r.purged, r.held_kept, r.batches);
    let (outcome, detail) = match &r.outcome {
        SweepOutcome::Completed => (Outcome::Ok, format!("completed: {counts}")),
        SweepOutcome::Stopped => (Outcome::Ok, format!("stopped early (shutdown): {counts}")),
        SweepOutcome::Refused(why) => (Outcome::Denied, format!("refused: {why}; {counts}")),
    };
    NewAuditEntry {
        user: "system".into(),
        source: "daemon".into(),
        action: Some(Action::RetentionPurge),
        object: "reads".into(),
        result_count: Some(r.purged),
        outcome: Some(outcome),
        detail,
        ..NewAuditEntry::default()
    }
}
