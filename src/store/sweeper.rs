//! The retention sweeper: deletes reads past retention in small batches, skipping held ones, and
//! refusing to run on an untrusted clock. The rules are in [`crate::retention`].
//!
//! Time: a purge is judged at the earlier of the wall clock and trusted time (the high-water mark kept
//! in `meta/trusted_time_ms` plus monotonic time since the process took it; see
//! [`crate::retention::TrustAnchor`]), so a wall clock set years ahead purges nothing early, and a read
//! stored under that clock does not vouch for it. A sweep that would delete more than
//! `max_purge_percent` of the store waits a day of trusted time or an operator's confirmation
//! ([`Store::confirm_purge`]).
//!
//! Cost: `reads` is keyed by [`ReadId`], a UUIDv7 whose leading 48 bits are the capture time, so the
//! tree is itself the time-ordered index: a sweep range-scans from the front up to the cutoff and
//! touches only expired reads (and their images, index entries and holds, by key). The large-purge guard
//! counts the expired reads and at most a bounded number past the cutoff. Nothing in a sweep walks the
//! whole store (`polewatch bench store --scale`).

use super::{ImageKind, ReadId, Result, Store, StoreError, StoredRead, holds_tx, image_key};
use crate::clock::Clock;
use crate::domain::{Action, AuditSink, NewAuditEntry, Outcome};
use crate::retention::{
    ClockDistrust, DAY_MS, Policy, TrustAnchor, check_clock, hold_binds, purge_cutoff_ms, purge_now_ms,
    unexpired_reads_for_small_purge,
};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepOutcome {
    Completed,
    /// Nothing was deleted: the clock is not trusted.
    Refused(ClockDistrust),
    /// Nothing was deleted: the sweep would delete `expired` of `stored` reads, more than the policy's
    /// share; it waits for an operator's confirmation, or `left_ms` more of the daemon's running time
    /// (monotonic: setting the clock does not shorten the wait).
    AwaitingConfirmation {
        expired: u64,
        stored: u64,
        left_ms: i64,
    },
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
    /// The wall clock and trusted time when the sweep was judged.
    pub wall_ms: i64,
    pub trusted_ms: i64,
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

const TRUSTED_KEY: &[u8] = b"trusted_time_ms";
/// How long answered inbound command ids are remembered (`store::commands`).
const COMMAND_IDS_KEPT_DAYS: i64 = 30;

/// Monotonic time a large purge has waited so far (i64 BE), while one waits.
const PENDING_KEY: &[u8] = b"large_purge_waited_ms";
const CONFIRM_KEY: &[u8] = b"purge_confirmed_by";

impl Store {
    fn meta_i64(&self, key: &[u8]) -> Result<Option<i64>> {
        match self.trees.meta.get(key)? {
            None => Ok(None),
            Some(v) => {
                <[u8; 8]>::try_from(v.as_ref()).map(|b| Some(i64::from_be_bytes(b))).map_err(|_| StoreError::Decode {
                    key: format!("meta/{}", String::from_utf8_lossy(key)),
                    reason: "not 8 bytes".into(),
                })
            }
        }
    }

    /// Trusted time now: the process's anchor (taken from the persisted high-water mark at the first
    /// call) advanced to `clock`'s readings; the mark is raised when trusted time passes it.
    /// `confirmed`: an operator vouched for the wall clock, which is then followed whatever its step.
    pub fn trusted_time(&self, clock: &dyn crate::clock::Clock, p: &Policy, confirmed: bool) -> Result<i64> {
        let (wall, mono) = (clock.now_ms(), clock.monotonic_ms());
        let mut g = self.trust.lock().unwrap_or_else(|e| e.into_inner());
        let persisted = self.meta_i64(TRUSTED_KEY)?;
        let anchor = match *g {
            Some(a) => a,
            None => TrustAnchor::start(persisted, self.newest_read_ms()?, wall, mono),
        };
        let anchor = anchor.advance(wall, mono, confirmed, p);
        *g = Some(anchor);
        if persisted.is_none_or(|m| anchor.trusted_ms > m) {
            self.trees.meta.insert(TRUSTED_KEY, anchor.trusted_ms.to_be_bytes())?;
        }
        Ok(anchor.trusted_ms)
    }

    /// An operator confirms that the wall clock is right and that the large purge it implies may go
    /// ahead: the next sweep follows the wall clock and purges, once. Durable on return.
    pub fn confirm_purge(&self, by: &str) -> Result<()> {
        if by.trim().is_empty() {
            return Err(StoreError::InvalidHold("a purge confirmation needs who gave it".into()));
        }
        self.trees.meta.insert(CONFIRM_KEY, by.as_bytes())?;
        self.trees.durable()?;
        Ok(())
    }

    /// Who confirmed a purge that has not run yet.
    pub fn purge_confirmation(&self) -> Result<Option<String>> {
        Ok(self.trees.meta.get(CONFIRM_KEY)?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Stored reads captured before `cutoff_ms`.
    fn count_before(&self, cutoff_ms: i64) -> Result<u64> {
        let end = super::model::first_key_at(cutoff_ms).to_vec();
        let mut n = 0u64;
        for k in self.trees.reads.range(..end).keys() {
            k?;
            n += 1;
        }
        Ok(n)
    }

    /// Stored reads captured at or after `cutoff_ms`, counted up to `limit` (the count stops there).
    fn count_from(&self, cutoff_ms: i64, limit: u64) -> Result<u64> {
        let start = super::model::first_key_at(cutoff_ms).to_vec();
        let mut n = 0u64;
        for k in self.trees.reads.range(start..).keys() {
            if n >= limit {
                break;
            }
            k?;
            n += 1;
        }
        Ok(n)
    }

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
            let b: [u8; 16] = k
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Decode { key: super::hex(&k), reason: "read key is not 16 bytes".into() })?;
            last = Some(b);
            candidates.push((ReadId::from_bytes(b), k));
        }
        let t = &self.trees;
        let (purged, held) = t.db.transaction(|tx| {
            let (mut purged, mut held) = (0u64, 0u64);
            for (id, key) in &candidates {
                // Holds are read inside the transaction: one placed after the scan wins.
                if holds_tx(tx, &t.holds, id)?.iter().any(|h| hold_binds(h, now_ms)) {
                    held += 1;
                    continue;
                }
                let Some(v) = tx.get(&t.reads, key)? else { continue };
                let read: StoredRead = self.decode_read(key, &v)?;
                tx.remove(&t.reads, key)?;
                tx.remove(&t.images, image_key(id, ImageKind::Crop))?;
                tx.remove(&t.images, image_key(id, ImageKind::Frame))?;
                let (fwd, rev_key) = self.all_index_keys(read.plate.expose().as_bytes(), id);
                for k in fwd {
                    tx.remove(&t.plate_idx, k)?;
                }
                tx.remove(&t.plate_rev_idx, rev_key)?;
                tx.remove(&t.holds, key)?;
                purged += 1;
            }
            Ok::<_, StoreError>((purged, held))
        })?;
        self.trees.durable()?;
        let next = if candidates.len() >= max { last } else { None };
        Ok(Batch { purged, held, next })
    }
}

/// Runs one sweep to the end of the expired range (or until `stop`). Trusted time and the clock are
/// checked before every batch, so a clock that jumps during a sweep stops it.
///
/// The sweep, completed, stopped, waiting or refused, is recorded in `audit` at its end; if that fails
/// the sweep returns the error (what was purged stays purged: deletion past retention is required, not
/// an access to refuse, but it must not pass unnoticed).
pub fn sweep(
    store: &Store,
    policy: &Policy,
    clock: &dyn Clock,
    s: SweepSettings,
    stop: &CancellationToken,
    audit: Option<&dyn AuditSink>,
) -> Result<SweepReport> {
    let started = Instant::now();
    let confirmed_by = store.purge_confirmation()?;
    let trusted = store.trusted_time(clock, policy, confirmed_by.is_some())?;
    let wall = clock.now_ms();
    let mut report = SweepReport {
        outcome: SweepOutcome::Completed,
        cutoff_ms: purge_cutoff_ms(purge_now_ms(wall, trusted), policy),
        purged: 0,
        held_kept: 0,
        batches: 0,
        elapsed: Duration::ZERO,
        wall_ms: wall,
        trusted_ms: trusted,
    };
    if let Err(why) = check_clock(wall, trusted, clock.synchronised(), policy) {
        report.outcome = SweepOutcome::Refused(why);
    } else if let Some(waiting) =
        large_purge_gate(store, policy, report.cutoff_ms, clock.monotonic_ms(), confirmed_by.is_some())?
    {
        report.outcome = waiting;
    } else {
        if wall < trusted - policy.max_clock_lag_ms {
            log::warn!(behind_ms = trusted - wall; "the wall clock is behind trusted time; purging by the wall clock, which keeps reads longer");
        }
        let mut after = None;
        loop {
            if stop.is_cancelled() {
                report.outcome = SweepOutcome::Stopped;
                break;
            }
            let trusted = store.trusted_time(clock, policy, false)?;
            let wall = clock.now_ms();
            if let Err(why) = check_clock(wall, trusted, clock.synchronised(), policy) {
                report.outcome = SweepOutcome::Refused(why);
                break;
            }
            let now = purge_now_ms(wall, trusted);
            (report.wall_ms, report.trusted_ms) = (wall, trusted);
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
    }
    if report.outcome == SweepOutcome::Completed {
        // Command ids are kept so a repeat is not applied twice; a server retries within minutes.
        let kept_from = purge_now_ms(report.wall_ms, report.trusted_ms) - COMMAND_IDS_KEPT_DAYS * DAY_MS;
        match store.prune_commands(kept_from) {
            Ok(0) => {}
            Ok(n) => {
                log::info!(forgotten = n as u64; "answered command ids older than {COMMAND_IDS_KEPT_DAYS} days forgotten")
            }
            Err(e) => log::warn!("cannot prune answered command ids: {e}"),
        }
    }
    if let Some(by) = &confirmed_by {
        // A confirmation is good for one sweep.
        store.trees.meta.remove(CONFIRM_KEY)?;
        log::warn!(by = by.as_str(); "retention sweep ran on an operator's confirmation of the clock and of a large purge");
    }
    store.trees.durable()?;
    report.elapsed = started.elapsed();
    record_purge(&report, confirmed_by.as_deref(), audit)?;
    Ok(report)
}

/// Holds back a purge of more than the policy's share of the store: Some(outcome) while it must wait.
/// The wait is counted in monotonic time between sweeps that find it waiting (kept in `meta`, so a
/// restart keeps what was waited, though not the time the daemon was down), and ends after a day, or at
/// once on an operator's confirmation.
fn large_purge_gate(
    store: &Store,
    p: &Policy,
    cutoff_ms: i64,
    mono_ms: i64,
    confirmed: bool,
) -> Result<Option<SweepOutcome>> {
    let expired = if p.max_purge_percent >= 100 { 0 } else { store.count_before(cutoff_ms)? };
    // The reads past the cutoff are counted only as far as it takes to show the purge is small (a
    // bounded walk from the cutoff, ≤ expired·(100 − pct)/pct keys), never the whole store: a day's
    // purge costs the same in a store of a month or of a year. When the purge is large the count is
    // complete, so `stored` is exact where it is reported.
    let (large, stored) = match unexpired_reads_for_small_purge(expired, p) {
        None => (false, 0),
        Some(bound) => {
            let rest = store.count_from(cutoff_ms, bound)?;
            (rest < bound, expired + rest)
        }
    };
    let mut last = store.purge_wait.lock().unwrap_or_else(|e| e.into_inner());
    if !large || confirmed {
        *last = None;
        store.trees.meta.remove(PENDING_KEY)?;
        return Ok(None);
    }
    let waited =
        store.meta_i64(PENDING_KEY)?.unwrap_or(0).max(0) + last.map_or(0, |m| mono_ms.saturating_sub(m).max(0));
    if waited >= DAY_MS {
        *last = None;
        store.trees.meta.remove(PENDING_KEY)?;
        return Ok(None);
    }
    *last = Some(mono_ms);
    store.trees.meta.insert(PENDING_KEY, waited.to_be_bytes())?;
    Ok(Some(SweepOutcome::AwaitingConfirmation { expired, stored, left_ms: DAY_MS - waited }))
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| t.to_string()).unwrap_or_default()
}

/// The one place a purge is reported: the log, and the audit log.
fn record_purge(r: &SweepReport, confirmed_by: Option<&str>, audit: Option<&dyn AuditSink>) -> Result<()> {
    let cutoff = rfc3339(r.cutoff_ms);
    match &r.outcome {
        SweepOutcome::Refused(why) => {
            log::warn!(purged = r.purged, held_kept = r.held_kept; "retention purge refused: {why}; nothing past this point was deleted")
        }
        SweepOutcome::AwaitingConfirmation { expired, stored, left_ms } => log::warn!(
            expired = *expired, stored = *stored;
            "retention purge held back: it would delete {expired} of {stored} stored reads at once; it waits for the central server's confirm_purge or {} more minutes of running time",
            left_ms / 60_000
        ),
        _ => log::info!(
            purged = r.purged, held_kept = r.held_kept, batches = r.batches, cutoff = cutoff.as_str(),
            elapsed_ms = r.elapsed.as_millis() as u64;
            "retention purge {}: {} read(s) deleted, {} kept under evidence hold",
            if r.outcome == SweepOutcome::Stopped { "stopped early" } else { "finished" }, r.purged, r.held_kept
        ),
    }
    match audit {
        Some(sink) => sink
            .record(purge_entry(r, &cutoff, confirmed_by))
            .map(|_| ())
            .map_err(|e| StoreError::Audit(format!("the purge was not recorded: {e}"))),
        None => Ok(()),
    }
}

fn purge_entry(r: &SweepReport, cutoff: &str, confirmed_by: Option<&str>) -> NewAuditEntry {
    let mut counts = format!(
        "{} deleted, {} kept under evidence hold, {} batch(es), cutoff {cutoff}; wall clock {}, trusted time {}",
        r.purged,
        r.held_kept,
        r.batches,
        rfc3339(r.wall_ms),
        rfc3339(r.trusted_ms)
    );
    if let Some(by) = confirmed_by {
        counts.push_str(&format!("; clock and large purge confirmed by {by}"));
    }
    let (outcome, detail) = match &r.outcome {
        SweepOutcome::AwaitingConfirmation { expired, stored, left_ms } => (
            Outcome::Denied,
            format!(
                "waiting: would delete {expired} of {stored} reads at once; confirm_purge, or it goes ahead after {} more minutes of running time; {counts}",
                left_ms / 60_000
            ),
        ),
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
