//! The compliance report for a period (policy 471.6(c): "ALPR system audits should be conducted on a
//! regular basis"): pure, built from the audit log, the stored release requests, holds and users, and the
//! chain's verification result. [`build`] computes it, [`html`] prints it.
//!
//! What an auditor looks for is flagged:
//! - a search or view of a read without a case number (the API refuses them; a refused attempt is still
//!   listed, with its outcome);
//! - a burst: at least `burst_count` searches by one user within `burst_minutes`;
//! - searches at unusual hours: outside `day_start_hour`..`day_end_hour` in the report's time zone;
//! - an export without an approved request. The API cannot do one, and the report proves it: every `ok`
//!   export entry is matched to its stored request, which must be approved, by someone other than who
//!   entered it, before the export, and the approval must itself be in the audit log before the export.

use super::audit::AuditEntry;
use super::release::Request;
use super::users::User;
use super::{Action, Outcome};
use crate::store::Hold;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Thresholds of the flags.
#[derive(Debug, Clone)]
pub struct Rules {
    pub burst_count: usize,
    pub burst_minutes: u32,
    /// Searches at or after this hour and before `day_end_hour` are at usual hours (0..=24).
    pub day_start_hour: u8,
    pub day_end_hour: u8,
    /// The zone the hours are read in (the box's own by default).
    pub tz: jiff::tz::TimeZone,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            burst_count: 20,
            burst_minutes: 10,
            day_start_hour: 6,
            day_end_hour: 22,
            tz: jiff::tz::TimeZone::system(),
        }
    }
}

/// The chain's verification, as the report states it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainResult {
    pub ok: bool,
    pub entries: u64,
    pub head_seq: Option<u64>,
    /// Why it is broken (`audit log broken at seq N: …`), or why it could not be read.
    pub problem: Option<String>,
}

/// What the report is built from.
pub struct Inputs<'a> {
    pub from_ms: i64,
    /// Exclusive.
    pub to_ms: i64,
    pub now_ms: i64,
    /// The whole log, oldest first (later entries decide whether a search led to a hold or release).
    pub entries: &'a [AuditEntry],
    pub releases: &'a [Request],
    pub holds: &'a [Hold],
    pub users: &'a [User],
    pub oldest_read_ms: Option<i64>,
    /// `max(max_days, min_days)` of `[store.retention]`.
    pub retention_days: u32,
    pub sweep_interval_s: u64,
    pub chain: ChainResult,
    pub rules: &'a Rules,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: String,
    pub to: String,
    pub generated: String,
    pub time_zone: String,
    pub rules: RulesOut,
    pub chain: ChainResult,
    pub last_checkpoint: Option<Mark>,
    pub searches: Searches,
    pub exports: Exports,
    pub holds: Holds,
    pub retention: Retention,
    pub logins: Logins,
    pub flags: Flags,
}

#[derive(Debug, Clone, Serialize)]
pub struct RulesOut {
    pub burst_count: usize,
    pub burst_minutes: u32,
    pub day_start_hour: u8,
    pub day_end_hour: u8,
}

/// One audit entry as the report cites it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mark {
    pub seq: u64,
    pub at: String,
    pub user: String,
    pub outcome: Outcome,
    pub case_number: String,
    pub purpose: String,
    pub object: String,
    pub detail: String,
}

impl Mark {
    fn of(e: &AuditEntry, tz: &jiff::tz::TimeZone) -> Mark {
        Mark {
            seq: e.seq,
            at: local(e.at_ms, tz),
            user: e.user.clone(),
            outcome: e.outcome,
            case_number: e.case_number.clone(),
            purpose: e.purpose.clone(),
            object: e.object.clone(),
            detail: e.detail.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct UserSearches {
    pub user: String,
    pub searches: u64,
    pub refused: u64,
    pub views: u64,
    pub purposes: BTreeMap<String, u64>,
    pub case_numbers: BTreeSet<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Searches {
    pub total: u64,
    pub per_user: Vec<UserSearches>,
    /// Searches done (`ok`) whose case number never appears on a later hold or release request.
    pub without_later_hold_or_release: Vec<Mark>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExportLine {
    pub export: Mark,
    pub request: Option<String>,
    pub entered_by: Option<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    /// Seq of the `release_decided` entry that approved it.
    pub approval_entry: Option<u64>,
    /// Empty when the export is backed by an approved request; else why not.
    pub problem: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Exports {
    pub total: u64,
    pub refused: u64,
    pub lines: Vec<ExportLine>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Holds {
    pub placed: Vec<Mark>,
    pub released: Vec<Mark>,
    /// Holds whose expiry fell in the period, unreleased before it.
    pub expired: Vec<ExpiredHold>,
    pub in_force_now: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ExpiredHold {
    pub hold_id: String,
    pub case_number: String,
    pub placed_by: String,
    pub expired: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Retention {
    pub sweeps_completed: u64,
    pub sweeps_refused: Vec<Mark>,
    pub sweep_interval_s: u64,
    /// Stretches of the period longer than twice the sweep interval without a sweep entry.
    pub gaps: Vec<Gap>,
    pub every_sweep_ran: bool,
    pub oldest_read_age_days: Option<f64>,
    pub retention_days: u32,
    /// The oldest read is past the retention period (it may be under an evidence hold: see holds).
    pub oldest_read_past_retention: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub from: String,
    pub to: String,
    pub hours: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Logins {
    pub failed: u64,
    pub failed_per_user: BTreeMap<String, u64>,
    pub lockouts: Vec<Mark>,
    pub training_lapses: Vec<Lapse>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Lapse {
    pub user: String,
    pub course: String,
    pub expired: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Burst {
    pub user: String,
    pub count: u64,
    pub from: String,
    pub to: String,
    pub first_seq: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Flags {
    pub search_without_case: Vec<Mark>,
    pub bursts: Vec<Burst>,
    pub unusual_hours: Vec<Mark>,
    pub export_without_approved_request: Vec<ExportLine>,
    /// Number of `ok` exports checked against their requests (all of the period's).
    pub exports_checked: u64,
    /// How many flags in all; 0 and a chain that verifies is a clean period.
    pub total: u64,
}

fn local(ms: i64, tz: &jiff::tz::TimeZone) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.to_zoned_datetime(tz.clone()).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        Err(_) => ms.to_string(),
    }
}

fn hour(ms: i64, tz: &jiff::tz::TimeZone) -> Option<u8> {
    jiff::Timestamp::from_millisecond(ms).ok().map(|t| t.to_zoned_datetime(tz.clone()).hour() as u8)
}

/// Whether `h` falls outside `start..end` (a range that wraps midnight when `start > end`).
pub fn unusual_hour(h: u8, start: u8, end: u8) -> bool {
    if start <= end { h < start || h >= end } else { h < start && h >= end }
}

/// Bursts of at least `count` times (sorted) within `window_ms`; overlapping windows merge into one.
pub fn bursts(times: &[(i64, u64)], count: usize, window_ms: i64) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    if count == 0 {
        return out;
    }
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi].0 - times[lo].0 > window_ms {
            lo += 1;
        }
        if hi + 1 - lo >= count {
            match out.last_mut() {
                Some(last) if lo <= last.1 => last.1 = hi,
                _ => out.push((lo, hi)),
            }
        }
    }
    out
}

fn is_search_like(a: Action) -> bool {
    matches!(a, Action::Search | Action::ViewRead | Action::ViewImage)
}

pub fn build(i: &Inputs) -> Report {
    let tz = &i.rules.tz;
    let in_period = |e: &&AuditEntry| e.at_ms >= i.from_ms && e.at_ms < i.to_ms;
    let period: Vec<&AuditEntry> = i.entries.iter().filter(in_period).collect();

    // Searches per user.
    let mut per_user: BTreeMap<String, UserSearches> = BTreeMap::new();
    let mut total = 0;
    for e in period.iter().filter(|e| is_search_like(e.action)) {
        let u = per_user
            .entry(e.user.clone())
            .or_insert_with(|| UserSearches { user: e.user.clone(), ..Default::default() });
        match (e.action, e.outcome) {
            (Action::Search, Outcome::Ok) => {
                total += 1;
                u.searches += 1;
                *u.purposes.entry(e.purpose.clone()).or_default() += 1;
                u.case_numbers.insert(e.case_number.clone());
            }
            (Action::Search, _) => u.refused += 1,
            (_, Outcome::Ok) => u.views += 1,
            _ => {}
        }
    }
    // The last hold or release request per case, so each search is checked in O(1), not against the log.
    let mut last_use: BTreeMap<&str, u64> = BTreeMap::new();
    for e in i
        .entries
        .iter()
        .filter(|e| e.outcome == Outcome::Ok && matches!(e.action, Action::HoldPlaced | Action::ReleaseRequested))
    {
        let seq = last_use.entry(e.case_number.as_str()).or_insert(0);
        *seq = (*seq).max(e.seq);
    }
    let led_on = |s: &AuditEntry| last_use.get(s.case_number.as_str()).is_some_and(|seq| *seq > s.seq);
    let ok_searches: Vec<&&AuditEntry> =
        period.iter().filter(|e| e.action == Action::Search && e.outcome == Outcome::Ok).collect();
    let without_later = ok_searches.iter().filter(|s| !led_on(s)).map(|s| Mark::of(s, tz)).collect();

    // Exports and the request behind each.
    let mut lines = Vec::new();
    let mut refused = 0;
    for e in period.iter().filter(|e| e.action == Action::Export) {
        if e.outcome != Outcome::Ok {
            refused += 1;
            continue;
        }
        lines.push(export_line(e, i, tz));
    }
    let problems: Vec<ExportLine> = lines.iter().filter(|l| !l.problem.is_empty()).cloned().collect();

    // Holds.
    let marks = |a: Action| {
        period.iter().filter(|e| e.action == a && e.outcome == Outcome::Ok).map(|e| Mark::of(e, tz)).collect::<Vec<_>>()
    };
    let expired = i
        .holds
        .iter()
        .filter_map(|h| {
            let x = h.expires_at_ms?;
            let released_before = h.released.as_ref().is_some_and(|r| r.at_ms <= x);
            (x >= i.from_ms && x < i.to_ms.min(i.now_ms) && !released_before).then(|| ExpiredHold {
                hold_id: h.id.to_string(),
                case_number: h.case_number.clone(),
                placed_by: h.placed_by.clone(),
                expired: local(x, tz),
            })
        })
        .collect();
    let in_force_now = i.holds.iter().filter(|h| crate::retention::hold_binds(h, i.now_ms)).count() as u64;

    // Retention.
    let sweeps: Vec<&&AuditEntry> = period.iter().filter(|e| e.action == Action::RetentionPurge).collect();
    let sweeps_completed = sweeps.iter().filter(|e| e.outcome == Outcome::Ok).count() as u64;
    let sweeps_refused = sweeps.iter().filter(|e| e.outcome != Outcome::Ok).map(|e| Mark::of(e, tz)).collect();
    let mut gaps = Vec::new();
    let limit_ms = 2 * i.sweep_interval_s as i64 * 1000;
    let end = i.to_ms.min(i.now_ms);
    let mut last = i.from_ms;
    for t in sweeps.iter().map(|e| e.at_ms).chain(std::iter::once(end)) {
        if t - last > limit_ms {
            gaps.push(Gap {
                from: local(last, tz),
                to: local(t, tz),
                hours: ((t - last) as f64 / 3_600_000.0 * 10.0).round() / 10.0,
            });
        }
        last = last.max(t);
    }
    let age = i.oldest_read_ms.map(|o| (i.now_ms - o) as f64 / 86_400_000.0);
    let retention = Retention {
        sweeps_completed,
        sweeps_refused,
        sweep_interval_s: i.sweep_interval_s,
        every_sweep_ran: gaps.is_empty(),
        gaps,
        oldest_read_age_days: age.map(|a| (a * 10.0).round() / 10.0),
        retention_days: i.retention_days,
        oldest_read_past_retention: age.is_some_and(|a| a > f64::from(i.retention_days) + 1.0),
    };

    // Logins.
    let failed: Vec<&&AuditEntry> = period.iter().filter(|e| e.action == Action::LoginFailed).collect();
    let mut failed_per_user = BTreeMap::new();
    for e in &failed {
        *failed_per_user.entry(e.user.clone()).or_insert(0) += 1;
    }
    let lockouts = period
        .iter()
        .filter(|e| {
            (e.action == Action::UserLocked && e.outcome == Outcome::Ok)
                || (e.action == Action::LoginFailed && e.detail.contains("account locked:"))
        })
        .map(|e| Mark::of(e, tz))
        .collect();
    let mut training_lapses = Vec::new();
    for u in i.users {
        for t in &u.training {
            let renewed = u
                .training
                .iter()
                .any(|o| o.course == t.course && o.expires_ms > t.expires_ms && o.completed_ms <= t.expires_ms);
            if t.expires_ms >= i.from_ms && t.expires_ms < end && !renewed {
                training_lapses.push(Lapse {
                    user: u.username.clone(),
                    course: t.course.clone(),
                    expired: local(t.expires_ms, tz),
                });
            }
        }
    }

    // Flags.
    let search_without_case: Vec<Mark> = period
        .iter()
        .filter(|e| is_search_like(e.action) && e.case_number.trim().is_empty())
        .map(|e| Mark::of(e, tz))
        .collect();
    let mut by_user: BTreeMap<&str, Vec<(i64, u64)>> = BTreeMap::new();
    for e in period.iter().filter(|e| e.action == Action::Search) {
        by_user.entry(e.user.as_str()).or_default().push((e.at_ms, e.seq));
    }
    let mut burst_list = Vec::new();
    for (user, times) in &by_user {
        for (lo, hi) in bursts(times, i.rules.burst_count, i64::from(i.rules.burst_minutes) * 60_000) {
            burst_list.push(Burst {
                user: user.to_string(),
                count: (hi + 1 - lo) as u64,
                from: local(times[lo].0, tz),
                to: local(times[hi].0, tz),
                first_seq: times[lo].1,
            });
        }
    }
    let unusual: Vec<Mark> = period
        .iter()
        .filter(|e| {
            e.action == Action::Search
                && hour(e.at_ms, tz).is_some_and(|h| unusual_hour(h, i.rules.day_start_hour, i.rules.day_end_hour))
        })
        .map(|e| Mark::of(e, tz))
        .collect();
    let total_flags = (search_without_case.len() + burst_list.len() + unusual.len() + problems.len()) as u64;
    let last_checkpoint = i
        .entries
        .iter()
        .rev()
        .find(|e| e.action == Action::AuditCheckpoint && e.outcome == Outcome::Ok)
        .map(|e| Mark::of(e, tz));

    Report {
        from: local(i.from_ms, tz),
        to: local(i.to_ms, tz),
        generated: local(i.now_ms, tz),
        time_zone: tz.iana_name().unwrap_or("UTC offset as shown").to_string(),
        rules: RulesOut {
            burst_count: i.rules.burst_count,
            burst_minutes: i.rules.burst_minutes,
            day_start_hour: i.rules.day_start_hour,
            day_end_hour: i.rules.day_end_hour,
        },
        chain: i.chain.clone(),
        last_checkpoint,
        searches: Searches {
            total,
            per_user: per_user.into_values().collect(),
            without_later_hold_or_release: without_later,
        },
        exports: Exports { total: lines.len() as u64, refused, lines: lines.clone() },
        holds: Holds {
            placed: marks(Action::HoldPlaced),
            released: marks(Action::HoldReleased),
            expired,
            in_force_now,
        },
        retention,
        logins: Logins { failed: failed.len() as u64, failed_per_user, lockouts, training_lapses },
        flags: Flags {
            search_without_case,
            bursts: burst_list,
            unusual_hours: unusual,
            exports_checked: lines.len() as u64,
            export_without_approved_request: problems,
            total: total_flags,
        },
    }
}

fn export_line(e: &AuditEntry, i: &Inputs, tz: &jiff::tz::TimeZone) -> ExportLine {
    let mut line = ExportLine {
        export: Mark::of(e, tz),
        request: None,
        entered_by: None,
        approved_by: None,
        approved_at: None,
        approval_entry: None,
        problem: String::new(),
    };
    let Some(r) = i.releases.iter().find(|r| r.id.to_string() == e.object) else {
        line.problem = format!("no stored release request `{}`", e.object);
        return line;
    };
    line.request = Some(r.id.to_string());
    line.entered_by = Some(r.entered_by.clone());
    let approval = i.entries.iter().find(|a| {
        a.seq < e.seq
            && a.action == Action::ReleaseDecided
            && a.outcome == Outcome::Ok
            && a.object == e.object
            && a.detail.starts_with("approved")
    });
    line.approval_entry = approval.map(|a| a.seq);
    line.problem = match &r.decision {
        None => "the request was never decided".into(),
        Some(d) if !d.approved => "the request was refused".into(),
        Some(d) => {
            line.approved_by = Some(d.reviewer.clone());
            line.approved_at = Some(local(d.at_ms, tz));
            if d.reviewer == r.entered_by {
                "approved by the person who entered it".into()
            } else if d.at_ms > e.at_ms {
                "approved only after the export".into()
            } else if approval.is_none() {
                "the approval is not in the audit log before the export".into()
            } else {
                String::new()
            }
        }
    };
    line
}

/// The report page's one style sheet, inline so the saved page prints off the box; the API's
/// Content-Security-Policy allows it by its hash.
pub const HTML_STYLE: &str = "body{font:14px sans-serif;margin:1.5em}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #999;padding:2px 6px;text-align:left}.flag{color:#a00;font-weight:bold}";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn marks_table(out: &mut String, title: &str, marks: &[Mark]) {
    out.push_str(&format!("<h3>{} ({})</h3>\n", esc(title), marks.len()));
    if marks.is_empty() {
        out.push_str("<p>None.</p>\n");
        return;
    }
    out.push_str("<table><tr><th>#</th><th>time</th><th>user</th><th>outcome</th><th>case</th><th>purpose</th><th>detail</th></tr>\n");
    for m in marks {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            m.seq,
            esc(&m.at),
            esc(&m.user),
            m.outcome,
            esc(&m.case_number),
            esc(&m.purpose),
            esc(&m.detail)
        ));
    }
    out.push_str("</table>\n");
}

/// A standalone, printable page (no script; its one style sheet inline, for printing off the box).
pub fn html(r: &Report) -> String {
    let mut o = String::new();
    o.push_str(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>polewatch compliance report</title>",
    );
    o.push_str(&format!("<style>{HTML_STYLE}</style></head><body>\n"));
    o.push_str(&format!(
        "<h1>Compliance report</h1>\n<p>Period {} to {} (time zone {}); generated {}.</p>\n",
        esc(&r.from),
        esc(&r.to),
        esc(&r.time_zone),
        esc(&r.generated)
    ));
    let chain = if r.chain.ok {
        format!(
            "verified: {} entries, head seq {}",
            r.chain.entries,
            r.chain.head_seq.map(|s| s.to_string()).unwrap_or_else(|| "none".into())
        )
    } else {
        format!("<span class=\"flag\">BROKEN</span>: {}", esc(r.chain.problem.as_deref().unwrap_or("")))
    };
    o.push_str(&format!("<h2>Audit chain</h2>\n<p>{chain}</p>\n"));
    match &r.last_checkpoint {
        Some(c) => o.push_str(&format!(
            "<p>Last off-box checkpoint: entry {} at {} by {}.</p>\n",
            c.seq,
            esc(&c.at),
            esc(&c.user)
        )),
        None => o.push_str("<p class=\"flag\">No checkpoint was ever taken.</p>\n"),
    }
    let f = &r.flags;
    o.push_str(&format!("<h2>Flags ({})</h2>\n", f.total));
    o.push_str(&format!(
        "<p>Exports checked against their approved requests: {}; without an approved request: <span class=\"{}\">{}</span>.</p>\n",
        f.exports_checked,
        if f.export_without_approved_request.is_empty() { "" } else { "flag" },
        f.export_without_approved_request.len()
    ));
    marks_table(&mut o, "Searches or views without a case number", &f.search_without_case);
    o.push_str(&format!(
        "<h3>Bursts: {} or more searches by one user within {} minutes ({})</h3>\n",
        r.rules.burst_count,
        r.rules.burst_minutes,
        f.bursts.len()
    ));
    for b in &f.bursts {
        o.push_str(&format!(
            "<p class=\"flag\">{}: {} searches from {} to {} (first entry {})</p>\n",
            esc(&b.user),
            b.count,
            esc(&b.from),
            esc(&b.to),
            b.first_seq
        ));
    }
    marks_table(
        &mut o,
        &format!("Searches at unusual hours (outside {:02}:00–{:02}:00)", r.rules.day_start_hour, r.rules.day_end_hour),
        &f.unusual_hours,
    );
    o.push_str(&format!("<h2>Searches ({})</h2>\n<table><tr><th>user</th><th>searches</th><th>refused</th><th>views</th><th>purposes</th><th>case numbers</th></tr>\n", r.searches.total));
    for u in &r.searches.per_user {
        let purposes: Vec<String> = u.purposes.iter().map(|(p, n)| format!("{p} ({n})")).collect();
        let cases: Vec<&str> = u.case_numbers.iter().map(String::as_str).collect();
        o.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&u.user),
            u.searches,
            u.refused,
            u.views,
            esc(&purposes.join(", ")),
            esc(&cases.join(", "))
        ));
    }
    o.push_str("</table>\n");
    marks_table(
        &mut o,
        "Searches that match no later hold or release request",
        &r.searches.without_later_hold_or_release,
    );
    o.push_str(&format!("<h2>Exports ({}, {} refused)</h2>\n<table><tr><th>#</th><th>time</th><th>by</th><th>request</th><th>entered by</th><th>approved by</th><th>approval entry</th><th>problem</th></tr>\n", r.exports.total, r.exports.refused));
    for l in &r.exports.lines {
        o.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"flag\">{}</td></tr>\n",
            l.export.seq,
            esc(&l.export.at),
            esc(&l.export.user),
            esc(l.request.as_deref().unwrap_or("")),
            esc(l.entered_by.as_deref().unwrap_or("")),
            esc(l.approved_by.as_deref().unwrap_or("")),
            l.approval_entry.map(|s| s.to_string()).unwrap_or_default(),
            esc(&l.problem)
        ));
    }
    o.push_str("</table>\n<h2>Holds</h2>\n");
    marks_table(&mut o, "Placed", &r.holds.placed);
    marks_table(&mut o, "Released", &r.holds.released);
    o.push_str(&format!("<h3>Expired ({})</h3>\n", r.holds.expired.len()));
    for h in &r.holds.expired {
        o.push_str(&format!(
            "<p>case {} placed by {}: expired {}</p>\n",
            esc(&h.case_number),
            esc(&h.placed_by),
            esc(&h.expired)
        ));
    }
    o.push_str(&format!("<p>Holds in force now: {}.</p>\n", r.holds.in_force_now));
    let rt = &r.retention;
    o.push_str(&format!(
        "<h2>Retention</h2>\n<p>{} sweep(s) completed, {} refused; sweep interval {} s; every sweep ran: {}.</p>\n",
        rt.sweeps_completed,
        rt.sweeps_refused.len(),
        rt.sweep_interval_s,
        if rt.every_sweep_ran {
            "yes".to_string()
        } else {
            format!("<span class=\"flag\">no, {} gap(s)</span>", rt.gaps.len())
        }
    ));
    for g in &rt.gaps {
        o.push_str(&format!(
            "<p class=\"flag\">no sweep from {} to {} ({} h)</p>\n",
            esc(&g.from),
            esc(&g.to),
            g.hours
        ));
    }
    o.push_str(&format!(
        "<p>Oldest read: {} days old against a retention of {} days{}.</p>\n",
        rt.oldest_read_age_days.map(|a| a.to_string()).unwrap_or_else(|| "none stored,".into()),
        rt.retention_days,
        if rt.oldest_read_past_retention {
            " <span class=\"flag\">(past retention: held as evidence, or a sweep missed it)</span>"
        } else {
            ""
        }
    ));
    marks_table(&mut o, "Refused sweeps", &rt.sweeps_refused);
    o.push_str(&format!("<h2>Logins</h2>\n<p>{} failed login(s).</p>\n", r.logins.failed));
    for (u, n) in &r.logins.failed_per_user {
        o.push_str(&format!("<p>{}: {n}</p>\n", esc(u)));
    }
    marks_table(&mut o, "Lockouts", &r.logins.lockouts);
    o.push_str(&format!("<h3>Training lapses ({})</h3>\n", r.logins.training_lapses.len()));
    for l in &r.logins.training_lapses {
        o.push_str(&format!("<p>{}: {} expired {}</p>\n", esc(&l.user), esc(&l.course), esc(&l.expired)));
    }
    o.push_str("</body></html>\n");
    o
}

/// Why a report could not be gathered (a broken chain is not one: the report says so).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read the audit log: {0}")]
    Audit(#[from] super::AuditError),
    #[error("cannot read the store: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Gathers what [`build`] needs from the store and the audit log (the whole chain verified) and builds the
/// report for `from_ms`..`to_ms` (exclusive). Shared by the console's report and the monthly one over MQTT.
pub fn gather(
    store: &crate::store::Store,
    audit_log: &super::audit::AuditLog,
    retention_days: u32,
    sweep_interval_s: u64,
    from_ms: i64,
    to_ms: i64,
    rules: &Rules,
) -> Result<Report, ReportError> {
    let chain = match audit_log.verify(None) {
        Ok(r) => ChainResult { ok: true, entries: r.entries, head_seq: r.head.map(|h| h.seq), problem: None },
        Err(e) => ChainResult { ok: false, entries: 0, head_seq: None, problem: Some(e.to_string()) },
    };
    let entries = audit_log.entries()?;
    let releases = store.releases()?;
    let holds = store.all_holds()?;
    let users = store.list_users()?;
    Ok(build(&Inputs {
        from_ms,
        to_ms,
        now_ms: jiff::Timestamp::now().as_millisecond(),
        entries: &entries,
        releases: &releases,
        holds: &holds,
        users: &users,
        oldest_read_ms: store.oldest_read_ms()?,
        retention_days,
        sweep_interval_s,
        chain,
        rules,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::NewAuditEntry;
    use super::super::audit::{AuditKey, GENESIS, seal};
    use super::super::release::{Decision, NewRequest, Scope};
    use super::*;

    const MIN: i64 = 60_000;

    struct Log(Vec<AuditEntry>);

    impl Log {
        #[allow(clippy::too_many_arguments)]
        fn add(
            &mut self,
            at_ms: i64,
            user: &str,
            action: Action,
            outcome: Outcome,
            case: &str,
            object: &str,
            detail: &str,
        ) -> u64 {
            let seq = self.0.len() as u64 + 1;
            let n = NewAuditEntry {
                user: user.into(),
                action: Some(action),
                outcome: Some(outcome),
                case_number: case.into(),
                purpose: "stolen vehicle".into(),
                object: object.into(),
                detail: detail.into(),
                ..Default::default()
            };
            self.0.push(seal(&n, seq, at_ms, GENESIS, &AuditKey::from_bytes(&[1; 32]).unwrap()).unwrap());
            seq
        }
    }

    fn rules() -> Rules {
        Rules { burst_count: 3, burst_minutes: 10, day_start_hour: 6, day_end_hour: 22, tz: jiff::tz::TimeZone::UTC }
    }

    fn request(id: uuid::Uuid, decision: Option<Decision>) -> Request {
        Request {
            id,
            request: NewRequest {
                agency: "A".into(),
                jurisdiction: "CA".into(),
                requester_name: "R".into(),
                purpose: "p".into(),
                case_number: "C-1".into(),
                scope: Scope::HeldForCase { case_number: "C-1".into() },
            },
            entered_by: "olive".into(),
            entered_at_ms: 0,
            decision,
            exports: vec![],
        }
    }

    fn report(log: &Log, releases: &[Request], r: &Rules, from: i64, to: i64) -> Report {
        build(&Inputs {
            from_ms: from,
            to_ms: to,
            now_ms: to,
            entries: &log.0,
            releases,
            holds: &[],
            users: &[],
            oldest_read_ms: None,
            retention_days: 365,
            sweep_interval_s: 3600,
            chain: ChainResult {
                ok: true,
                entries: log.0.len() as u64,
                head_seq: Some(log.0.len() as u64),
                problem: None,
            },
            rules: r,
        })
    }

    // 2026-01-05T12:00:00Z, a usual hour.
    const NOON: i64 = 1_767_614_400_000;

    #[test]
    fn bursts_need_the_count_within_the_window_and_merge_when_they_overlap() {
        let t = |m: &[i64]| m.iter().enumerate().map(|(i, m)| (m * MIN, i as u64)).collect::<Vec<_>>();
        assert_eq!(bursts(&t(&[0, 5, 10]), 3, 10 * MIN), vec![(0, 2)]);
        assert!(bursts(&t(&[0, 5, 11]), 3, 10 * MIN).is_empty(), "11 minutes is outside the window");
        assert_eq!(bursts(&t(&[0, 1, 2, 3, 4, 30, 31, 32]), 3, 10 * MIN), vec![(0, 4), (5, 7)]);
        assert!(bursts(&t(&[0, 1]), 3, 10 * MIN).is_empty());
    }

    #[test]
    fn unusual_hours_wrap_midnight() {
        assert!(
            unusual_hour(3, 6, 22) && unusual_hour(22, 6, 22) && !unusual_hour(6, 6, 22) && !unusual_hour(21, 6, 22)
        );
        assert!(!unusual_hour(23, 22, 6) && !unusual_hour(2, 22, 6) && unusual_hour(12, 22, 6));
        assert!(unusual_hour(12, 0, 0), "an empty day makes every hour unusual");
    }

    #[test]
    fn an_export_is_clean_only_with_an_audited_approval_by_another_person_before_it() {
        let (good, refused, selfish, unknown) =
            (uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let approve =
            |by: &str| Some(Decision { reviewer: by.into(), approved: true, at_ms: NOON, note: String::new() });
        let releases = vec![
            request(good, approve("sam")),
            request(
                refused,
                Some(Decision { reviewer: "sam".into(), approved: false, at_ms: NOON, note: String::new() }),
            ),
            request(selfish, approve("olive")),
        ];
        let mut log = Log(vec![]);
        log.add(NOON, "sam", Action::ReleaseDecided, Outcome::Ok, "C-1", &good.to_string(), "approved");
        log.add(NOON + MIN, "sam", Action::Export, Outcome::Ok, "C-1", &good.to_string(), "");
        log.add(NOON + MIN, "sam", Action::Export, Outcome::Ok, "C-1", &refused.to_string(), "");
        log.add(NOON + MIN, "sam", Action::Export, Outcome::Ok, "C-1", &selfish.to_string(), "");
        log.add(NOON + MIN, "sam", Action::Export, Outcome::Ok, "C-1", &unknown.to_string(), "");
        log.add(NOON + MIN, "sam", Action::Export, Outcome::Denied, "C-1", &refused.to_string(), "no approved request");
        let r = report(&log, &releases, &rules(), NOON - MIN, NOON + 60 * MIN);
        assert_eq!((r.exports.total, r.exports.refused, r.flags.exports_checked), (4, 1, 4));
        let problems: Vec<&str> = r.flags.export_without_approved_request.iter().map(|l| l.problem.as_str()).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems[0].contains("refused")
                && problems[1].contains("approved by the person who entered it")
                && problems[2].contains("no stored release request"),
            "{problems:?}"
        );
        assert_eq!(r.exports.lines[0].approval_entry, Some(1));
        assert!(r.exports.lines[0].problem.is_empty());
        // An approval stored but never audited is flagged too.
        let mut bare = Log(vec![]);
        bare.add(NOON + MIN, "sam", Action::Export, Outcome::Ok, "C-1", &good.to_string(), "");
        let r = report(&bare, &releases, &rules(), NOON - MIN, NOON + 60 * MIN);
        assert!(r.flags.export_without_approved_request[0].problem.contains("not in the audit log"));
    }

    #[test]
    fn searches_are_flagged_without_case_in_bursts_and_at_night_and_followed_to_holds() {
        let mut log = Log(vec![]);
        for m in 0..3 {
            log.add(NOON + m * MIN, "olive", Action::Search, Outcome::Ok, "C-1", "", "");
        }
        log.add(NOON + 5 * MIN, "olive", Action::HoldPlaced, Outcome::Ok, "C-1", "r1", "");
        log.add(NOON + 6 * MIN, "sam", Action::Search, Outcome::Ok, "C-2", "", "");
        log.add(
            NOON + 7 * MIN,
            "sam",
            Action::Search,
            Outcome::Denied,
            "",
            "",
            "a case or incident number is required",
        );
        let night = NOON + 14 * 3_600_000; // 02:00 UTC
        log.add(night, "sam", Action::Search, Outcome::Ok, "C-3", "", "");
        log.add(night + MIN, "sam", Action::ReleaseRequested, Outcome::Ok, "C-3", "x", "");
        log.add(NOON - 10 * 3_600_000, "sam", Action::Search, Outcome::Ok, "", "", "before the period");
        let r = report(&log, &[], &rules(), NOON - MIN, night + 60 * MIN);
        assert_eq!(r.searches.total, 5);
        assert_eq!(r.flags.bursts.len(), 1);
        assert_eq!((r.flags.bursts[0].user.as_str(), r.flags.bursts[0].count), ("olive", 3));
        assert_eq!(
            r.flags.search_without_case.len(),
            1,
            "the refused one in the period; the one before it is not in the period"
        );
        assert_eq!(r.flags.search_without_case[0].outcome, Outcome::Denied);
        assert_eq!(r.flags.unusual_hours.iter().map(|m| m.case_number.as_str()).collect::<Vec<_>>(), vec!["C-3"]);
        let without: Vec<&str> =
            r.searches.without_later_hold_or_release.iter().map(|m| m.case_number.as_str()).collect();
        assert_eq!(without, vec!["C-2"], "C-1 led to a hold, C-3 to a release request");
        let sam = r.searches.per_user.iter().find(|u| u.user == "sam").unwrap();
        assert_eq!((sam.searches, sam.refused), (2, 1));
        assert_eq!(r.flags.total, 3);
        let page = html(&r);
        assert!(page.contains("Compliance report") && page.contains("Bursts") && !page.contains("<script"), "{page}");
    }

    #[test]
    fn a_period_without_sweeps_shows_the_gap_and_refusals_are_listed() {
        let mut log = Log(vec![]);
        log.add(NOON, "system", Action::RetentionPurge, Outcome::Ok, "", "reads", "completed");
        log.add(
            NOON + 3_600_000,
            "system",
            Action::RetentionPurge,
            Outcome::Denied,
            "",
            "reads",
            "refused: the clock is not synchronised",
        );
        let r = report(&log, &[], &rules(), NOON - MIN, NOON + 10 * 3_600_000);
        assert_eq!(r.retention.sweeps_completed, 1);
        assert_eq!(r.retention.sweeps_refused.len(), 1);
        assert!(!r.retention.every_sweep_ran);
        assert_eq!(r.retention.gaps.len(), 1, "{:?}", r.retention.gaps);
        assert_eq!(r.retention.gaps[0].hours, 9.0);
        let r = report(&log, &[], &rules(), NOON - MIN, NOON + 2 * 3_600_000);
        assert!(r.retention.every_sweep_ran, "{:?}", r.retention.gaps);
    }
}
