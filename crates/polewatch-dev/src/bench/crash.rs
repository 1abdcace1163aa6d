//! Kill -9 and power-cut harness: a child process writes everything the daemon makes durable (reads with
//! crops and some with full frames, evidence holds, audit entries, outbox messages and their removal on a
//! broker's ack) and reports each one it was told is durable; the parent cuts it at a random moment,
//! reopens the store and checks that every reported item is there, intact and findable, and that the audit
//! log opens and verifies as the daemon opens it.
//!
//! The cut is a `kill -9` ([`Cut::Kill9`]: the page cache survives) or a simulated power cut
//! ([`Cut::PowerLoss`]: only what was synced survives, see [`super::powercut`]).

use super::powercut::{self, Fate, Model, SyncFileRange};
use crate::access::audit::AuditLog;
use crate::access::{Action, NewAuditEntry, Outcome};
use crate::bench::{synthetic_crop, synthetic_read};
use crate::store::{HoldRequest, ImageKind, Lane, OpenOutcome, PlatePattern, ReadId, Store, StoreOptions};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const CROP_BYTES: usize = 3000;
/// Every FRAME_EVERY-th read also stores a full frame of FRAME_BYTES: a value spanning many pages (sled,
/// before redb, wrote values over 128 KiB to separate blob files that it never synced).
pub const FRAME_EVERY: u64 = 16;
pub const FRAME_BYTES: usize = 160_000;
const OUTBOX_TOPIC: &str = "crash/outbox";

fn frame_of(seq: u64) -> Option<Vec<u8>> {
    seq.is_multiple_of(FRAME_EVERY).then(|| synthetic_crop(seq ^ 0x5A5A_5A5A, FRAME_BYTES))
}

/// The audit key beside the store (`<store>/../audit.key`), as a deployment keeps it.
pub fn key_file(store_dir: &Path) -> PathBuf {
    store_dir.parent().unwrap_or(Path::new(".")).join("audit.key")
}

fn entry(n: u64) -> NewAuditEntry {
    NewAuditEntry {
        user: format!("officer{:03}", n % 50),
        organisation: "Crash Bench PD".into(),
        source: "127.0.0.1:1".into(),
        action: Some(Action::Search),
        object: "reads".into(),
        query: format!("T{:04}", n % 10_000),
        purpose: "kill -9 bench".into(),
        case_number: format!("C-{n}"),
        result_count: Some(n % 7),
        outcome: Some(Outcome::Ok),
        detail: String::new(),
    }
}

type Out = Arc<Mutex<std::io::Stdout>>;

fn say(out: &Out, line: std::fmt::Arguments) -> anyhow::Result<()> {
    let mut o = out.lock().map_err(|_| anyhow::anyhow!("stdout lock poisoned"))?;
    o.write_fmt(line)?;
    o.write_all(b"\n")?;
    o.flush()?;
    Ok(())
}

/// The child: writes until killed, from `threads` read writers and one writer each of holds, audit entries
/// and outbox messages, printing one line per item once it is acknowledged as durable:
/// `stored <id> <seq>`, `hold <read> <hold>`, `audit <seq>`, `queued <outbox seq> <n>`, and
/// `removing <outbox seq>` *before* an acked message is removed (so it may or may not be there after).
pub fn write_forever(store_dir: &Path, threads: usize, seq_start: u64, frames: bool) -> anyhow::Result<()> {
    let (store, _) = Store::open(&StoreOptions::at(store_dir))?;
    let store = Arc::new(store);
    // A log the daemon would refuse is reported by the parent; the other writers go on without it.
    let audit = AuditLog::open(store.clone(), &key_file(store_dir)).ok().map(Arc::new);
    let next = Arc::new(AtomicU64::new(seq_start));
    let recent: Arc<Mutex<Vec<ReadId>>> = Arc::default();
    let out: Out = Arc::new(Mutex::new(std::io::stdout()));
    let base_ms = jiff::Timestamp::now().as_millisecond();
    say(&out, format_args!("ready"))?;
    let mut workers: Vec<std::thread::JoinHandle<anyhow::Result<()>>> = (0..threads.max(1))
        .map(|_| {
            let (store, next, out, recent) = (store.clone(), next.clone(), out.clone(), recent.clone());
            std::thread::spawn(move || -> anyhow::Result<()> {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    let mut r = synthetic_read(seq, base_ms + (seq % 100_000) as i64, CROP_BYTES);
                    r.frame_jpeg = if frames { frame_of(seq) } else { None };
                    let id = store.put_read(r)?;
                    say(&out, format_args!("stored {id} {seq}"))?;
                    let mut v = recent.lock().map_err(|_| anyhow::anyhow!("lock poisoned"))?;
                    if v.len() >= 256 {
                        v.remove(0);
                    }
                    v.push(id);
                }
            })
        })
        .collect();
    {
        let (store, out, recent) = (store.clone(), out.clone(), recent.clone());
        workers.push(std::thread::spawn(move || -> anyhow::Result<()> {
            for n in 0.. {
                let pick = {
                    let v = recent.lock().map_err(|_| anyhow::anyhow!("lock poisoned"))?;
                    (!v.is_empty()).then(|| v[fastrand::usize(..v.len())])
                };
                let Some(read) = pick else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let req = HoldRequest {
                    placed_by: "bench".into(),
                    case_number: format!("C-{n}"),
                    reason: "crash bench".into(),
                    expires_at_ms: None,
                };
                let hold = store.place_hold(read, req, jiff::Timestamp::now().as_millisecond())?;
                say(&out, format_args!("hold {read} {}", hold.id))?;
                std::thread::sleep(Duration::from_millis(3));
            }
            Ok(())
        }));
    }
    if let Some(audit) = audit {
        let out = out.clone();
        workers.push(std::thread::spawn(move || -> anyhow::Result<()> {
            for n in 0.. {
                let seq = audit.record_all(&[entry(n)])?;
                say(&out, format_args!("audit {seq}"))?;
                std::thread::sleep(Duration::from_millis(3));
            }
            Ok(())
        }));
    }
    {
        let (store, out) = (store.clone(), out.clone());
        workers.push(std::thread::spawn(move || -> anyhow::Result<()> {
            for n in 0u64.. {
                let lane = if n.is_multiple_of(4) { Lane::Alerts } else { Lane::Other };
                let key = store.enqueue(lane, OUTBOX_TOPIC, format!("msg {n}").into_bytes())?;
                say(&out, format_args!("queued {} {n}", key.seq()))?;
                // A broker acks the oldest two of every three messages, as the uplink removes them.
                if n % 3 == 2 {
                    for m in store.outbox_peek(None, 2)? {
                        say(&out, format_args!("removing {}", m.key.seq()))?;
                        store.outbox_remove(&m.key)?;
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        }));
    }
    for w in workers {
        w.join().map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
    }
    Ok(())
}

/// How the child is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    Kill9,
    /// SIGKILL under the journalling shim, then the directory rebuilt as a power cut leaves it.
    PowerLoss(SyncFileRange),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub cycles: usize,
    /// Longest wait before each cut.
    pub max_delay: Duration,
    pub cut: Cut,
    /// Full audit verification every this many cycles (and after the last); the other cycles open the
    /// log as the daemon does (continuity with the key's recorded head, head entry readable).
    pub verify_every: usize,
    /// Every FRAME_EVERY-th read with a full frame (a large value).
    pub frames: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { cycles: 200, max_delay: Duration::from_millis(600), cut: Cut::Kill9, verify_every: 25, frames: true }
    }
}

#[derive(Debug, Default, Clone)]
pub struct CrashReport {
    pub cycles: usize,
    pub acknowledged: usize,
    pub acknowledged_holds: usize,
    pub acknowledged_audit: usize,
    pub acknowledged_outbox: usize,
    /// Distinct acknowledged reads found missing after any cycle.
    pub lost: usize,
    /// Distinct acknowledged reads found with wrong content or not indexed.
    pub damaged: usize,
    pub lost_holds: usize,
    /// Acknowledged audit entries beyond the log's head after a cut.
    pub lost_audit: usize,
    /// Cycles after which the audit log did not open or verify.
    pub audit_failures: usize,
    pub lost_outbox: usize,
    /// Cycles after which the store did not open (each then starts again on a new store).
    pub failed_opens: usize,
    /// Acknowledged items (reads, holds, audit entries, queued messages) in the stores that did not open.
    pub lost_with_store: usize,
    pub corrupt_recoveries: usize,
    /// Power cut only: writes the simulation dropped or tore (summed over cycles).
    pub dropped_writes: usize,
    pub torn_writes: usize,
    pub problems: Vec<String>,
}

impl CrashReport {
    pub fn violations(&self) -> usize {
        self.lost
            + self.damaged
            + self.lost_holds
            + self.lost_audit
            + self.audit_failures
            + self.lost_outbox
            + self.failed_opens
            + self.corrupt_recoveries
    }

    fn problem(&mut self, p: String) {
        if self.problems.len() < 40 {
            self.problems.push(p);
        }
    }
}

/// Runs `cycles` kill -9 cycles of `exe debug write-reads` against a store in `dir`.
/// `max_delay` bounds the random time before each kill.
pub fn run_cycles(exe: &Path, dir: &Path, cycles: usize, max_delay: Duration) -> anyhow::Result<CrashReport> {
    run(exe, dir, &Options { cycles, max_delay, ..Default::default() })
}

#[derive(Default)]
struct Acked {
    reads: Vec<(ReadId, u64)>,
    holds: Vec<(ReadId, String)>,
    audit_head: u64,
    audit: usize,
    /// Outbox seq -> n, for messages not (being) removed.
    outbox: HashMap<u64, u64>,
    outbox_total: usize,
}

#[derive(Default)]
struct Findings {
    lost: HashSet<ReadId>,
    damaged: HashSet<ReadId>,
    lost_holds: HashSet<String>,
    lost_outbox: HashSet<u64>,
}

pub fn run(exe: &Path, dir: &Path, opts: &Options) -> anyhow::Result<CrashReport> {
    let state = dir.join("state");
    let store_dir = state.join("store");
    std::fs::create_dir_all(&state)?;
    let journal = dir.join("journal");
    let shim = match opts.cut {
        Cut::PowerLoss(_) => Some(powercut::build_shim(dir)?),
        Cut::Kill9 => None,
    };
    let mut acked = Acked::default();
    let mut report = CrashReport { cycles: opts.cycles, ..Default::default() };
    let (mut reads_checked, mut holds_checked) = (0, 0);
    let mut f = Findings::default();
    for cycle in 0..opts.cycles {
        let before = match opts.cut {
            Cut::PowerLoss(_) => Some(Model::load(&state)?),
            Cut::Kill9 => None,
        };
        let mut cmd = Command::new(exe);
        cmd.args(["debug", "write-reads", "--threads", "4", "--seq-start"])
            .arg(((cycle as u64) + 1).saturating_mul(10_000_000).to_string())
            .arg("--store")
            .arg(&store_dir)
            .args(if opts.frames { &[][..] } else { &["--no-frames"][..] })
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(lib) = &shim {
            let _ = std::fs::remove_file(&journal);
            cmd.env("LD_PRELOAD", lib).env("POWERCUT_ROOT", &state).env("POWERCUT_LOG", &journal);
        }
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("child has no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        // The random moment counts from when the child has opened the store (on a loaded machine its
        // start alone can outlast the longest delay), except in one cycle in ten, which may cut the
        // start itself (store recovery, audit log checks).
        let mut lines = Vec::new();
        if fastrand::u8(..10) != 0 {
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while let Ok(l) = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
                let ready = l == "ready";
                lines.push(l);
                if ready {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(fastrand::u64(..opts.max_delay.as_micros().max(1) as u64)));
        // SIGKILL: no destructor, no flush.
        child.kill()?;
        child.wait()?;
        reader.join().map_err(|_| anyhow::anyhow!("reader thread panicked"))?;
        lines.extend(rx.try_iter());
        for l in lines {
            let p: Vec<&str> = l.split_whitespace().collect();
            match p.as_slice() {
                ["stored", id, seq] => acked.reads.push((ReadId(id.parse()?), seq.parse()?)),
                ["hold", read, hold] => acked.holds.push((ReadId(read.parse()?), hold.to_string())),
                ["audit", seq] => {
                    acked.audit += 1;
                    acked.audit_head = acked.audit_head.max(seq.parse()?);
                }
                ["queued", key, n] => {
                    acked.outbox.insert(key.parse()?, n.parse()?);
                    acked.outbox_total += 1;
                }
                ["removing", key] => {
                    acked.outbox.remove(&key.parse()?);
                }
                _ => {}
            }
        }
        if let (Some(mut model), Cut::PowerLoss(srange)) = (before, opts.cut) {
            let ops = powercut::parse_journal(&std::fs::read(&journal).unwrap_or_default());
            model.replay(&ops, srange);
            let fate = if fastrand::u8(..10) < 4 { Fate::LoseAll } else { Fate::Random };
            model.materialize(&state, fate)?;
            report.dropped_writes += model.last_dropped_writes;
            report.torn_writes += model.last_torn_writes;
        }
        let last = cycle + 1 == opts.cycles;
        match Store::open(&StoreOptions::at(&store_dir)) {
            Ok((store, outcome)) => {
                if let OpenOutcome::RecoveredFromCorruption { cause, .. } = outcome {
                    report.corrupt_recoveries += 1;
                    report.problem(format!("cycle {cycle}: store was corrupt after the cut: {cause}"));
                }
                // This cycle's items all, earlier ones by a sample (all of them after the last cycle), so
                // the check stays linear in the number of cycles.
                let reads = sample(&acked.reads, reads_checked, last);
                reads_checked = acked.reads.len();
                let holds = sample(&acked.holds, holds_checked, last);
                holds_checked = acked.holds.len();
                verify_reads(&store, &reads, opts.frames, cycle, &mut report, &mut f)?;
                verify_holds(&store, &holds, cycle, &mut report, &mut f)?;
                verify_outbox(&store, &acked.outbox, cycle, &mut report, &mut f)?;
                let store = Arc::new(store);
                let full = last || (cycle + 1) % opts.verify_every.max(1) == 0;
                if let Some(head) = verify_audit(&store, &store_dir, acked.audit_head, cycle, full, &mut report) {
                    // Lost entries are counted once; the next cycles continue from what is there.
                    acked.audit_head = acked.audit_head.min(head);
                }
                match Arc::try_unwrap(store) {
                    Ok(s) => s.close()?,
                    Err(_) => anyhow::bail!("the store is still shared after the checks"),
                }
            }
            Err(e) => {
                report.failed_opens += 1;
                report.lost_with_store += acked.reads.len() + acked.holds.len() + acked.audit + acked.outbox.len();
                report.problem(format!("cycle {cycle}: store did not open: {e}"));
                // Nothing further can be checked on this store: the next cycles start on a new one (and
                // count how often a cut leaves a store that does not open).
                std::fs::remove_dir_all(&state)?;
                std::fs::create_dir_all(&state)?;
                count_acked(&mut report, &acked);
                acked = Acked::default();
                reads_checked = 0;
                holds_checked = 0;
            }
        }
    }
    count_acked(&mut report, &acked);
    Ok(report)
}

/// Adds one store's acknowledged items to the totals (a store that did not open is replaced by a new one).
fn count_acked(report: &mut CrashReport, acked: &Acked) {
    report.acknowledged += acked.reads.len();
    report.acknowledged_holds += acked.holds.len();
    report.acknowledged_audit += acked.audit;
    report.acknowledged_outbox += acked.outbox_total;
}

fn sample<T: Clone>(all: &[T], checked: usize, everything: bool) -> Vec<T> {
    if everything {
        return all.to_vec();
    }
    let mut v = all[checked..].to_vec();
    for _ in 0..checked.min(500) {
        v.push(all[fastrand::usize(..checked)].clone());
    }
    v
}

fn verify_reads(
    store: &Store,
    acked: &[(ReadId, u64)],
    frames: bool,
    cycle: usize,
    report: &mut CrashReport,
    f: &mut Findings,
) -> anyhow::Result<()> {
    for (id, seq) in acked {
        let read = match store.get_read(*id) {
            Ok(r) => r,
            Err(e) => {
                if f.damaged.insert(*id) {
                    report.problem(format!("cycle {cycle}: acknowledged read {id} (seq {seq}) cannot be read: {e}"));
                }
                continue;
            }
        };
        match read {
            None => {
                if f.lost.insert(*id) {
                    report.problem(format!("cycle {cycle}: acknowledged read {id} (seq {seq}) is missing"));
                }
            }
            Some(r) => {
                // A store error (a value it cannot read) is damage, not the end of the bench.
                let crop_ok = store
                    .image(*id, ImageKind::Crop)
                    .is_ok_and(|c| c.is_some_and(|c| c == synthetic_crop(*seq, CROP_BYTES)));
                let frame_ok =
                    store.image(*id, ImageKind::Frame).is_ok_and(|c| c == if frames { frame_of(*seq) } else { None });
                let plate = format!("T{seq:07}");
                let indexed =
                    store.search(&PlatePattern::parse(&plate)?, 10).is_ok_and(|v| v.iter().any(|x| x.id == *id));
                if (r.plate.expose() != plate || r.frame_seq != *seq || !crop_ok || !frame_ok || !indexed)
                    && f.damaged.insert(*id)
                {
                    report.problem(format!(
                        "cycle {cycle}: read {id} damaged (plate ok {}, crop ok {crop_ok}, frame ok {frame_ok}, indexed {indexed})",
                        r.plate.expose() == plate
                    ));
                }
            }
        }
    }
    report.lost = f.lost.len();
    report.damaged = f.damaged.len();
    Ok(())
}

fn verify_holds(
    store: &Store,
    acked: &[(ReadId, String)],
    cycle: usize,
    report: &mut CrashReport,
    f: &mut Findings,
) -> anyhow::Result<()> {
    for (read, hold) in acked {
        if !store.holds_for(*read).is_ok_and(|v| v.iter().any(|h| h.id.to_string() == *hold && h.released.is_none()))
            && f.lost_holds.insert(hold.clone())
        {
            report.problem(format!("cycle {cycle}: acknowledged hold {hold} on read {read} is missing"));
        }
    }
    report.lost_holds = f.lost_holds.len();
    Ok(())
}

fn verify_outbox(
    store: &Store,
    acked: &HashMap<u64, u64>,
    cycle: usize,
    report: &mut CrashReport,
    f: &mut Findings,
) -> anyhow::Result<()> {
    let queued: HashMap<u64, Vec<u8>> = match store.outbox_peek(None, usize::MAX) {
        Ok(v) => v.into_iter().map(|m| (m.key.seq(), m.payload)).collect(),
        Err(e) => {
            report.problem(format!("cycle {cycle}: the outbox cannot be read: {e}"));
            HashMap::new()
        }
    };
    for (seq, n) in acked {
        let ok = queued.get(seq).is_some_and(|p| *p == format!("msg {n}").into_bytes());
        if !ok && f.lost_outbox.insert(*seq) {
            report.problem(format!("cycle {cycle}: acknowledged outbox message {seq} (msg {n}) is missing or changed"));
        }
    }
    report.lost_outbox = f.lost_outbox.len();
    Ok(())
}

/// Returns the log's head after the checks.
fn verify_audit(
    store: &Arc<Store>,
    store_dir: &Path,
    acked_head: u64,
    cycle: usize,
    full: bool,
    report: &mut CrashReport,
) -> Option<u64> {
    let key = key_file(store_dir);
    if acked_head == 0 && !key.exists() {
        return None;
    }
    let opened = if full { AuditLog::open_verified(store.clone(), &key) } else { AuditLog::open(store.clone(), &key) };
    if let Err(e) = opened {
        report.audit_failures += 1;
        report.problem(format!("cycle {cycle}: the audit log did not open as the daemon opens it: {e}"));
        // Bench only: record the log's real head beside the key so the next cycles measure again
        // (an operator would have to run `polewatch audit restart-chain` or restore a backup).
        if let Err(e) = repoint_head(store, &key) {
            report.problem(format!("cycle {cycle}: cannot re-record the chain head: {e}"));
        }
    }
    match store.audit_head_seq() {
        Ok(head) => {
            if head < acked_head {
                report.lost_audit += (acked_head - head) as usize;
                report.problem(format!(
                    "cycle {cycle}: audit entries {}..={acked_head} were acknowledged but the log ends at {head}",
                    head + 1
                ));
            }
            Some(head)
        }
        Err(e) => {
            report.audit_failures += 1;
            report.problem(format!("cycle {cycle}: audit head unreadable: {e}"));
            None
        }
    }
}

fn repoint_head(store: &Store, key: &Path) -> anyhow::Result<()> {
    use crate::access::audit::{ChainHead, decode_record, head_path};
    let head = store.audit_head_seq()?;
    let Some(bytes) = store.audit_record(head)? else {
        let _ = std::fs::remove_file(head_path(key));
        return Ok(());
    };
    let e = decode_record(&crate::store::AuditRecord { key_seq: Some(head), bytes })
        .map_err(|u| anyhow::anyhow!("{}", u.0))?;
    ChainHead { seq: head, hash: e.hash.iter().map(|b| format!("{b:02x}")).collect::<String>(), at_ms: e.at_ms }
        .save(key)?;
    Ok(())
}
