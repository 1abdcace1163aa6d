//! The monthly compliance report to the central server (issue 18 §3): once a month, on
//! `[mqtt] compliance_report_day` at `compliance_report_hour` (the box's time zone), the report for the
//! previous calendar month is queued in the outbox for `<prefix>/<site>/<device>/report` (QoS 1, sent
//! like every outbox message, kept across restarts and outages until the broker acknowledges it). A box
//! that was off at that hour sends it when it next runs that month. Each report queued leaves an audit
//! entry (`audit_report` by `system`, object `compliance report YYYY-MM to MQTT`), which is also how a
//! restart knows the month is done. Payload: `config/schemas/report.v1.schema.json`.
//!
//! [`compliance`] gathers a report's inputs from the store and the audit log; the HTTPS API uses it too.

use crate::access::audit::AuditLog;
use crate::access::report::{self, Report, Rules};
use crate::access::{Action, AuditSink, NewAuditEntry, Outcome};
use crate::store::{Lane, Store};
use anyhow::Context;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// The outbox topic (under the device's prefix).
pub const TOPIC: &str = "report";
/// How often the task looks at the calendar.
const CHECK_EVERY: Duration = Duration::from_secs(3600);

/// The report for `from_ms`..`to_ms` (exclusive), with the whole chain verified ([`report::gather`]).
pub fn compliance(
    store: &Store,
    audit_log: &AuditLog,
    retention: &crate::config::Retention,
    from_ms: i64,
    to_ms: i64,
    rules: &Rules,
) -> Result<Report, report::ReportError> {
    report::gather(
        store,
        audit_log,
        retention.max_days.max(retention.min_days),
        retention.sweep_interval_s,
        from_ms,
        to_ms,
        rules,
    )
}

/// The month whose report is due at `now`: the previous calendar month, once this month's
/// `day` at `hour` has passed. `None` when `day` is 0 (turned off) or the time has not come.
pub fn due_month(now: &jiff::ZonedDateTime, day: u8, hour: u8) -> Option<Date> {
    if day == 0 {
        return None;
    }
    let first = now.date().first_of_month();
    let send = first.checked_add(jiff::Span::new().days(i64::from(day) - 1)).ok()?.at(hour as i8, 0, 0, 0);
    (now.datetime() >= send).then(|| first.checked_sub(jiff::Span::new().months(1)).ok()).flatten()
}

/// `YYYY-MM` of a month.
pub fn label(month: Date) -> String {
    month.strftime("%Y-%m").to_string()
}

/// The audit entry's object for a month's report.
pub fn audit_object(month: Date) -> String {
    format!("compliance report {} to MQTT", label(month))
}

/// The payload (`report.v1`).
#[derive(Debug, Clone, Serialize)]
pub struct ReportV1 {
    pub v: u8,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub site: String,
    pub device: String,
    /// `YYYY-MM`.
    pub period: String,
    pub from: String,
    pub to: String,
    /// True when the lists of entries were left out to fit the broker's packet size (counts and flags'
    /// totals stay; the whole report is in the console and `polewatch audit report`).
    pub summarised: bool,
    pub report: Report,
}

/// The payload for `month`, within `max_bytes` (lists of cited entries dropped first when too big).
pub fn payload(
    site: &str,
    device: &str,
    month: Date,
    mut r: Report,
    max_bytes: usize,
) -> Result<Vec<u8>, serde_json::Error> {
    let (from, to) = (r.from.clone(), r.to.clone());
    let mut msg = ReportV1 {
        v: 1,
        kind: "compliance_report",
        site: site.into(),
        device: device.into(),
        period: label(month),
        from,
        to,
        summarised: false,
        report: r.clone(),
    };
    let full = serde_json::to_vec(&msg)?;
    if full.len() <= max_bytes {
        return Ok(full);
    }
    r.searches.without_later_hold_or_release.clear();
    r.holds.placed.clear();
    r.holds.released.clear();
    r.retention.sweeps_refused.clear();
    r.logins.lockouts.clear();
    r.flags.search_without_case.clear();
    r.flags.unusual_hours.clear();
    r.exports.lines.retain(|l| !l.problem.is_empty());
    msg.report = r;
    msg.summarised = true;
    serde_json::to_vec(&msg)
}

/// What the task needs.
pub struct Monthly {
    pub store: Arc<Store>,
    pub audit_log: Arc<AuditLog>,
    pub config: crate::config::Config,
    pub uplink: Option<Arc<tokio::sync::Notify>>,
}

impl Monthly {
    /// Queues the month's report unless the audit log shows it queued already. Returns whether it queued.
    pub fn send_if_due(&self, now: &jiff::ZonedDateTime) -> anyhow::Result<Option<Date>> {
        let m = &self.config.mqtt;
        let Some(month) = due_month(now, m.compliance_report_day, m.compliance_report_hour) else { return Ok(None) };
        let object = audit_object(month);
        let done = self
            .audit_log
            .latest(usize::MAX, Some("system"), Some("audit_report"))
            .context("cannot read the audit log for reports already queued")?;
        if done.iter().any(|e| e.object == object && e.outcome == Outcome::Ok) {
            return Ok(None);
        }
        let tz = now.time_zone().clone();
        let start = |d: Date| d.to_zoned_datetime(tz.clone()).map(|z| z.timestamp().as_millisecond());
        let next = month.checked_add(jiff::Span::new().months(1))?;
        let rules = Rules { tz: tz.clone(), ..Rules::default() };
        let r =
            compliance(&self.store, &self.audit_log, &self.config.store.retention, start(month)?, start(next)?, &rules)
                .context("cannot gather the report")?;
        let flags = r.flags.total;
        let body = payload(
            &self.config.site.site_id,
            &self.config.site.device_id,
            month,
            r,
            (m.max_packet_kib as usize * 1024).saturating_sub(512),
        )
        .context("cannot build the report's payload")?;
        let entry = NewAuditEntry {
            user: "system".into(),
            source: "daemon".into(),
            action: Some(Action::AuditReport),
            object,
            result_count: Some(flags),
            outcome: Some(Outcome::Ok),
            detail: format!("monthly report queued for the central server ({} bytes, {flags} flags)", body.len()),
            ..Default::default()
        };
        // Recorded first: a report the log does not show was never sent.
        self.audit_log.record(entry).context("cannot record the report in the audit log")?;
        self.store.enqueue(Lane::Other, TOPIC, body).context("cannot queue the report")?;
        if let Some(w) = &self.uplink {
            w.notify_one();
        }
        Ok(Some(month))
    }

    /// Looks at the calendar now and every hour, until the process ends.
    pub async fn run(self) {
        let me = Arc::new(self);
        loop {
            let m = me.clone();
            let res = tokio::task::spawn_blocking(move || {
                m.send_if_due(&jiff::ZonedDateTime::now().with_time_zone(TimeZone::system()))
            })
            .await;
            match res {
                Ok(Ok(Some(month))) => {
                    log::info!(period = label(month).as_str(); "monthly compliance report queued for the central server")
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => log::error!("monthly compliance report not sent: {e:#}"),
                Err(e) => log::error!("monthly compliance report task failed: {e}"),
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::report::{ChainResult, Inputs};

    fn at(s: &str) -> jiff::ZonedDateTime {
        s.parse::<jiff::civil::DateTime>().unwrap().to_zoned_datetime(TimeZone::UTC).unwrap()
    }

    #[test]
    fn the_previous_month_is_due_once_the_day_and_hour_have_come() {
        assert_eq!(due_month(&at("2026-12-01T02:59"), 1, 3), None, "before the hour");
        assert_eq!(due_month(&at("2026-12-01T03:00"), 1, 3), Some(Date::constant(2026, 11, 1)));
        assert_eq!(
            due_month(&at("2026-12-31T23:00"), 1, 3),
            Some(Date::constant(2026, 11, 1)),
            "a box that was off sends it later"
        );
        assert_eq!(due_month(&at("2027-01-05T00:00"), 5, 0), Some(Date::constant(2026, 12, 1)), "across the year");
        assert_eq!(due_month(&at("2027-01-04T23:59"), 5, 0), None);
        assert_eq!(due_month(&at("2027-01-20T00:00"), 0, 0), None, "day 0: off");
        assert_eq!(label(Date::constant(2026, 11, 1)), "2026-11");
        assert_eq!(audit_object(Date::constant(2026, 11, 1)), "compliance report 2026-11 to MQTT");
    }

    #[test]
    fn a_report_too_big_for_the_broker_is_summarised() {
        let rules = Rules { tz: TimeZone::UTC, ..Rules::default() };
        let chain = ChainResult { ok: true, entries: 0, head_seq: None, problem: None };
        let i = Inputs {
            from_ms: 0,
            to_ms: 1,
            now_ms: 2,
            entries: &[],
            releases: &[],
            holds: &[],
            users: &[],
            oldest_read_ms: None,
            retention_days: 365,
            sweep_interval_s: 60,
            chain,
            rules: &rules,
        };
        let r = report::build(&i);
        let full = payload("s", "d", Date::constant(2026, 11, 1), r.clone(), 1 << 20).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&full).unwrap();
        assert_eq!(
            (v["period"].as_str(), v["summarised"].as_bool(), v["type"].as_str()),
            (Some("2026-11"), Some(false), Some("compliance_report"))
        );
        let small = payload("s", "d", Date::constant(2026, 11, 1), r, 10).unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&small).unwrap()["summarised"], true);
    }
}
