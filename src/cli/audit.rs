//! `polewatch audit …`: verify, show and checkpoint the audit log, offline on the store.

use crate::access::audit::{
    AuditEntry, AuditKey, AuditLog, Checkpoint, Filter, VerifyError, decode_record, format_ms, parse_action,
};
use crate::access::{Action, AuditSink, NewAuditEntry, Outcome};
use crate::store::{OnCorrupt, OpenOutcome, Store, StoreOptions};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;

const OFFLINE: &str = "`show`, `checkpoint` and `verify` without --online are offline tools: they open the store at store.path, \
which only one process may do, so stop the daemon first (systemctl stop polewatch). They never create, move or repair a \
store: a missing or corrupt one is reported and left as it is. `verify --online` and `report` ask the running daemon's API \
instead, logged in as an auditor, and stop nothing. `show`, `checkpoint`, online verifies and reports are themselves \
recorded in the audit log.";

#[derive(Debug, clap::Args)]
#[command(after_help = OFFLINE)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Check every entry's chain link, hash and MAC; exit non-zero naming the first bad entry.
    #[command(after_help = OFFLINE)]
    Verify {
        /// A checkpoint from `polewatch audit checkpoint`: also fail when its entry is missing or differs
        /// (the only way to catch a log cut short together with its head pointer).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// Through the running daemon's API (same checks; nothing is stopped).
        #[arg(long)]
        online: bool,
        #[command(flatten)]
        conn: super::online::OnlineArgs,
    },
    /// The compliance report for a period, from the running daemon's API: searches per user, exports and
    /// their approved requests, holds, retention sweeps, failed logins and lockouts, training lapses, the
    /// chain's verification, and the flags (search without case number, bursts, unusual hours, export
    /// without an approved request). JSON by default.
    #[command(after_help = OFFLINE)]
    Report {
        /// First day (YYYY-MM-DD, from its start) or an RFC 3339 time.
        #[arg(long)]
        from: String,
        /// Last day (YYYY-MM-DD, through its end) or an RFC 3339 time (exclusive).
        #[arg(long)]
        to: String,
        /// A printable HTML page instead of JSON.
        #[arg(long)]
        html: bool,
        /// A burst is this many searches by one user… (default 20)
        #[arg(long)]
        burst_count: Option<usize>,
        /// …within this many minutes (default 10).
        #[arg(long)]
        burst_minutes: Option<u32>,
        /// Usual hours start (0–24, default 6)…
        #[arg(long)]
        day_start: Option<u8>,
        /// …and end (default 22).
        #[arg(long)]
        day_end: Option<u8>,
        /// IANA time zone for days and hours (default: the daemon's).
        #[arg(long)]
        tz: Option<String>,
        #[command(flatten)]
        conn: super::online::OnlineArgs,
    },
    /// Print entries as JSON lines, oldest first. Viewing is recorded (action `audit_viewed`).
    #[command(after_help = OFFLINE)]
    Show {
        /// Exact user name.
        #[arg(long)]
        user: Option<String>,
        /// Action name, e.g. `search`, `retention_purge`.
        #[arg(long, value_parser = parse_action)]
        action: Option<Action>,
        /// Entries at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
        #[arg(long, value_parser = parse_time)]
        since: Option<i64>,
        /// Entries before this time (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        until: Option<i64>,
        /// Plate or part of one searched (substring of the query terms, case ignored).
        #[arg(long)]
        query: Option<String>,
        /// At most this many entries (the first ones matching; online: the latest ones, up to 10000).
        #[arg(long)]
        limit: Option<usize>,
        /// Through the running daemon's API (filters: --user, --action, --limit).
        #[arg(long)]
        online: bool,
        #[command(flatten)]
        conn: super::online::OnlineArgs,
    },
    /// Record a checkpoint entry and print the chain head as JSON {seq, hash, mac, at}. Keep it off the box
    /// and give it to `verify --checkpoint` later.
    #[command(after_help = OFFLINE)]
    Checkpoint,
    /// After a store was lost (corrupt or gone): move a corrupt store aside (kept byte for byte), report
    /// what it held, and start a new store and audit chain whose first entry records all that. The
    /// daemon refuses to start a new chain by itself.
    #[command(name = "restart-chain")]
    RestartChain {
        /// Why, for the record (the incident, the ticket).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("not an RFC 3339 time: {0}")]
struct NotATime(jiff::Error);

fn parse_time(s: &str) -> Result<i64, NotATime> {
    s.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).map_err(NotATime)
}

/// Who runs the tool: the sudo caller if any, else the login user.
pub(crate) fn operator() -> String {
    ["SUDO_USER", "USER"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.trim().is_empty())
        // SAFETY: getuid cannot fail.
        .unwrap_or_else(|| format!("uid:{}", unsafe { libc::getuid() }))
}

fn open_store(cfg: &crate::config::Config) -> anyhow::Result<Arc<Store>> {
    let path = &cfg.store.path;
    // Never create a store just to look at it, and never move or replace a corrupt one.
    let mut opts = StoreOptions::for_config(&cfg.store)?;
    opts.create = false;
    opts.on_corrupt = OnCorrupt::Refuse;
    let (store, _) = Store::open(&opts).with_context(|| format!("cannot open the store at {}", path.display()))?;
    Ok(Arc::new(store))
}

fn read_checkpoint(p: &std::path::Path) -> anyhow::Result<(String, Checkpoint)> {
    let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
    let cp = Checkpoint::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    Ok((text, cp))
}

fn verify_online(
    cfg: &crate::config::Config,
    checkpoint: Option<PathBuf>,
    conn: &super::online::OnlineArgs,
) -> anyhow::Result<()> {
    let text = checkpoint.as_deref().map(read_checkpoint).transpose()?.map(|(t, _)| t);
    let client = super::online::Client::login(cfg, conn)?;
    let (status, body) = client.post("/api/audit/verify", serde_json::json!({ "checkpoint": text }))?;
    if status != 200 {
        return Err(super::online::refusal(status, &body));
    }
    let v: serde_json::Value = serde_json::from_str(&body).context("the daemon's answer is not JSON")?;
    let msg = v["message"].as_str().unwrap_or_default();
    if v["ok"] == true {
        println!("{msg}");
        Ok(())
    } else {
        anyhow::bail!("{msg}")
    }
}

pub fn run(cfg: &crate::config::Config, args: AuditArgs) -> anyhow::Result<()> {
    if let AuditCmd::RestartChain { reason } = &args.command {
        return restart_chain(cfg, reason);
    }
    match args.command {
        AuditCmd::Verify { checkpoint, online: true, conn } => return verify_online(cfg, checkpoint, &conn),
        AuditCmd::Show { user, action, since, until, query, limit, online: true, conn } => {
            if since.is_some() || until.is_some() || query.is_some() {
                anyhow::bail!(
                    "--since, --until and --query work offline only; online, filter by --user, --action and --limit"
                );
            }
            let mut q = vec![format!("limit={}", limit.unwrap_or(1000).min(10_000))];
            if let Some(a) = action {
                q.push(format!("action={}", crate::access::audit::action_name(a)));
            }
            if let Some(u) = &user {
                q.push(format!("user={}", encode_query(u)));
            }
            let client = super::online::Client::login(cfg, &conn)?;
            let (status, body) = client.get(&format!("/api/audit?{}", q.join("&")))?;
            if status != 200 {
                return Err(super::online::refusal(status, &body));
            }
            #[derive(serde::Deserialize)]
            struct Answer {
                entries: Vec<AuditEntry>,
            }
            // From the text (the hashes decode from borrowed strings).
            let mut entries =
                serde_json::from_str::<Answer>(&body).context("the daemon's entries do not decode")?.entries;
            entries.reverse();
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for e in &entries {
                serde_json::to_writer(&mut out, &Line { at: format_ms(e.at_ms), entry: e })?;
                std::io::Write::write_all(&mut out, b"\n")?;
            }
            std::io::Write::flush(&mut out)?;
            return Ok(());
        }
        AuditCmd::Report { from, to, html, burst_count, burst_minutes, day_start, day_end, tz, conn } => {
            let mut q = vec![("from", from), ("to", to), ("format", if html { "html" } else { "json" }.to_string())];
            for (k, v) in [
                ("burst_count", burst_count.map(|v| v.to_string())),
                ("burst_minutes", burst_minutes.map(|v| v.to_string())),
                ("day_start", day_start.map(|v| v.to_string())),
                ("day_end", day_end.map(|v| v.to_string())),
                ("tz", tz),
            ] {
                if let Some(v) = v {
                    q.push((k, v));
                }
            }
            let query: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", encode_query(v))).collect();
            let client = super::online::Client::login(cfg, &conn)?;
            let (status, body) = client.get(&format!("/api/audit/report?{}", query.join("&")))?;
            if status != 200 {
                return Err(super::online::refusal(status, &body));
            }
            println!("{body}");
            return Ok(());
        }
        _ => {}
    }
    let store = open_store(cfg)?;
    let key_file = &cfg.access.audit_key_file;
    match args.command {
        AuditCmd::Verify { checkpoint, .. } => {
            let cp = checkpoint.as_deref().map(read_checkpoint).transpose()?.map(|(_, c)| c);
            // Verifying never creates a key: a missing one is an error.
            let key = AuditKey::load(key_file)?;
            let log = AuditLog::with_key_file(store, key, key_file);
            verify(&log, cp)?;
            // ... and the log must still hold the entry the key last wrote.
            log.check_continues()?;
            Ok(())
        }
        AuditCmd::RestartChain { .. } => unreachable!("handled above"),
        AuditCmd::Show { user, action, since, until, query, limit, .. } => {
            let filter = Filter { user, action, since_ms: since, until_ms: until, query };
            show(&open_log(store, key_file)?, cfg, &filter, limit)
        }
        AuditCmd::Checkpoint => checkpoint(&open_log(store, key_file)?, cfg),
        AuditCmd::Report { .. } => anyhow::bail!("reports come from the running daemon"),
    }
}

/// `audit restart-chain`: the explicit operator action the daemon waits for after a store is lost.
fn restart_chain(cfg: &crate::config::Config, reason: &str) -> anyhow::Result<()> {
    if reason.trim().is_empty() {
        anyhow::bail!("--reason must say why the chain is restarted");
    }
    let path = &cfg.store.path;
    let census = crate::store::read_census(path);
    let mut opts = StoreOptions::for_config(&cfg.store)?;
    opts.on_corrupt = OnCorrupt::MoveAside;
    let (store, outcome) =
        Store::open(&opts).with_context(|| format!("cannot open the store at {}", path.display()))?;
    let store = Arc::new(store);
    let key_file = &cfg.access.audit_key_file;
    let lost_store = match &outcome {
        OpenOutcome::RecoveredFromCorruption { moved_to, cause } => {
            eprintln!("the store was corrupt ({cause}); it was moved, byte for byte, to {}", moved_to.display());
            format!("the store at {} was corrupt ({cause}) and is kept at {}", path.display(), moved_to.display())
        }
        OpenOutcome::Created => format!("there was no store at {}", path.display()),
        OpenOutcome::Opened => format!("the store at {} had no audit log", path.display()),
    };
    let held = match &census {
        Some(c) => format!("it held, {c}"),
        None => "what it held is not known (no census was written)".into(),
    };
    let empty = store.audit_is_empty()?;
    let key = AuditKey::load_or_create(key_file, empty)?;
    let log = AuditLog::with_key_file(store.clone(), key, key_file);
    if !empty {
        match log.check_continues() {
            Ok(()) => anyhow::bail!(
                "the audit log at {} is there and continues the key's chain: nothing to restart",
                path.display()
            ),
            Err(e) => anyhow::bail!(
                "{e}\nthe log is not empty: this is not a lost store but a damaged or replaced log; keep a copy and investigate (no new chain is started over entries)"
            ),
        }
    }
    let seq = log.restart_chain(&operator(), reason, &format!("{lost_store}; {held}"))?;
    println!("new audit chain started at entry {seq}: {lost_store}; {held}");
    store.write_census()?;
    Ok(())
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
fn encode_query(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn open_log(store: Arc<Store>, key_file: &std::path::Path) -> anyhow::Result<AuditLog> {
    let existed = key_file.exists();
    let log = AuditLog::open(store, key_file)?;
    if !existed {
        eprintln!("created a new audit key at {}; back it up off the box", key_file.display());
    }
    Ok(log)
}

fn verify(log: &AuditLog, cp: Option<Checkpoint>) -> anyhow::Result<()> {
    match log.verify(cp) {
        Ok(r) => {
            println!("{}", crate::access::audit::verify_summary(&r));
            Ok(())
        }
        Err(VerifyError::Broken(b)) => anyhow::bail!("{b}"),
        Err(e @ VerifyError::Store(_)) => Err(e.into()),
    }
}

fn entry(cfg: &crate::config::Config, action: Action) -> NewAuditEntry {
    NewAuditEntry {
        user: operator(),
        organisation: cfg.site.organisation.clone(),
        source: "cli".into(),
        action: Some(action),
        object: "audit log".into(),
        outcome: Some(Outcome::Ok),
        ..NewAuditEntry::default()
    }
}

/// One printed line: the entry with its time spelled out.
#[derive(serde::Serialize)]
struct Line<'a> {
    at: String,
    #[serde(flatten)]
    entry: &'a AuditEntry,
}

fn show(log: &AuditLog, cfg: &crate::config::Config, filter: &Filter, limit: Option<usize>) -> anyhow::Result<()> {
    let store = log.store();
    // First find what will be shown, then record the viewing, then show: nothing is seen unrecorded.
    let mut seqs = Vec::new();
    let mut unreadable = 0u64;
    for r in store.audit_records() {
        if limit.is_some_and(|l| seqs.len() >= l) {
            break;
        }
        match decode_record(&r?) {
            Ok(e) if filter.matches(&e) => seqs.push(e.seq),
            Ok(_) => {}
            Err(_) => unreadable += 1,
        }
    }
    let mut viewed = entry(cfg, Action::AuditViewed);
    viewed.query = filter.query.clone().unwrap_or_default();
    viewed.detail = match limit {
        Some(l) => format!("{}; limit {l}", filter.describe()),
        None => filter.describe(),
    };
    viewed.result_count = Some(seqs.len() as u64);
    log.record(viewed)?;

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for seq in seqs {
        let Some(bytes) = store.audit_record(seq)? else { continue };
        if let Ok(e) = decode_record(&crate::store::AuditRecord { key_seq: Some(seq), bytes }) {
            serde_json::to_writer(&mut out, &Line { at: format_ms(e.at_ms), entry: &e })?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
    }
    std::io::Write::flush(&mut out)?;
    if unreadable > 0 {
        eprintln!(
            "warning: {unreadable} stored record(s) could not be read and are not shown; run `polewatch audit verify`"
        );
    }
    Ok(())
}

fn checkpoint(log: &AuditLog, cfg: &crate::config::Config) -> anyhow::Result<()> {
    // A checkpoint vouches for everything before it: never take one of a broken log.
    match log.verify(None) {
        Ok(_) => {}
        Err(VerifyError::Broken(b)) => anyhow::bail!("{b}; no checkpoint taken"),
        Err(e) => return Err(e.into()),
    }
    let mut e = entry(cfg, Action::AuditCheckpoint);
    let head = log.store().audit_head_seq()?;
    e.detail = format!("checkpoint of entries 1..={} and this one", head);
    let seq = log.record(e)?;
    let bytes = log.store().audit_record(seq)?.context("the checkpoint entry just written is missing")?;
    let entry = decode_record(&crate::store::AuditRecord { key_seq: Some(seq), bytes })
        .map_err(|u| anyhow::anyhow!("{}", u.0))?;
    println!("{}", serde_json::to_string(&Checkpoint::of(&entry))?);
    Ok(())
}
