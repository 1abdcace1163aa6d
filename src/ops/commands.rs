//! Inbound commands from the central server (`…/cmd/<name>`). Each answer goes back on `…/ack`; every
//! command received is audited. Holds and alert decisions go through the evidence service, as the
//! console's do: permission, checks, the audit entry, then the change. Hotlist pushes and purge
//! confirmations keep the same order here ([`act_on`]). Commands that cannot be read (malformed,
//! unknown, retained, unsigned, over the size limit, a repeat) are recorded as `command_rejected`.

use crate::access::text::{CaseNumber, Note, Reason};
use crate::access::{Action, NewAuditEntry, Outcome};
use crate::clock::now_ms;
use crate::evidence::{Actor, Authority, Evidence, HoldAsk, act_on};
use crate::store::{Decision, Store};
use crate::uplink::CommandHandler;
use crate::uplink::payload::CommandV1;
use serde::Deserialize;
use std::sync::Arc;

pub struct DaemonCommands {
    pub store: Arc<Store>,
    pub hotlists: Arc<crate::pipeline::hotlists::Hotlists>,
    pub audit: Arc<dyn crate::access::AuditSink>,
    pub evidence: Arc<Evidence>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HotlistPush {
    name: String,
    /// The whole list as CSV (header plate,region,category,priority,source,expiry,notes).
    #[serde(default)]
    csv: Option<String>,
    /// Remove the pushed list of this name instead.
    #[serde(default)]
    remove: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertDecision {
    alert_id: uuid::Uuid,
    decision: Decision,
    #[serde(default)]
    note: Note,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlaceHold {
    read_id: uuid::Uuid,
    case_number: CaseNumber,
    reason: Reason,
    /// RFC 3339; absent: until released.
    #[serde(default)]
    expires_at: Option<jiff::Timestamp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseHold {
    read_id: uuid::Uuid,
    hold_id: uuid::Uuid,
    reason: Reason,
}

/// The operator vouches for the box's wall clock and for the large purge it implies (once).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfirmPurge {
    reason: String,
}

impl CommandHandler for DaemonCommands {
    fn handle(&self, name: &str, cmd: &CommandV1) -> Result<serde_json::Value, String> {
        if cmd.by.trim().is_empty() {
            let why = "`by` must name who sent the command".to_string();
            self.refused(name, Some(&cmd.id), None, &why)
                .map_err(|e| format!("{why}; and the audit log failed: {e}"))?;
            return Err(why);
        }
        let who = Actor {
            name: cmd.by.clone(),
            organisation: String::new(),
            source: format!("mqtt {}", printable(&cmd.id)),
            authority: Authority::Central,
        };
        let now = now_ms();
        match name {
            "alert" => {
                let rejected = cmd.body.get("decision").and_then(|d| d.as_str()) == Some("rejected");
                let action = if rejected { Action::AlertRejected } else { Action::AlertVerified };
                let b: AlertDecision = self.body(&who, action, cmd)?;
                let rec =
                    self.evidence.decide_alert(&who, b.alert_id, b.decision, b.note, now).map_err(|e| e.to_string())?;
                log::info!(alert = rec.id.to_string().as_str(), by = cmd.by.as_str(); "alert {:?} by command", b.decision);
                Ok(serde_json::json!({ "alert": rec.id, "decision": b.decision }))
            }
            "hold" => {
                let b: PlaceHold = self.body(&who, Action::HoldPlaced, cmd)?;
                let ask = HoldAsk {
                    read_id: b.read_id.to_string(),
                    case_number: b.case_number,
                    reason: b.reason,
                    expires_at_ms: b.expires_at.map(|t| t.as_millisecond()),
                };
                let h = self.evidence.place_hold(&who, ask, now).map_err(|e| e.to_string())?;
                log::info!(read = h.read_id.to_string().as_str(), case = h.case_number.as_str(), by = cmd.by.as_str(); "evidence hold placed by command");
                Ok(serde_json::json!({ "hold_id": h.id, "read_id": h.read_id }))
            }
            "release_hold" => {
                let b: ReleaseHold = self.body(&who, Action::HoldReleased, cmd)?;
                let h = self
                    .evidence
                    .release_hold(&who, &b.read_id.to_string(), b.hold_id, b.reason, now)
                    .map_err(|e| e.to_string())?;
                log::info!(read = h.read_id.to_string().as_str(), by = cmd.by.as_str(); "evidence hold released by command");
                Ok(serde_json::json!({ "hold_id": h.id, "released": true }))
            }
            "hotlist" => {
                let b: HotlistPush = self.body(&who, Action::HotlistChanged, cmd)?;
                let entry = NewAuditEntry { object: printable(&b.name), ..who.entry(Action::HotlistChanged) };
                match (b.remove, b.csv) {
                    (true, None) => {
                        let entry = NewAuditEntry { detail: "pushed list removed".into(), ..entry };
                        let existed = act_on(self.audit.as_ref(), entry, || self.hotlists.remove(&b.name))
                            .map_err(|e| e.to_string())?;
                        log::info!(list = b.name.as_str(), by = cmd.by.as_str(); "pushed hotlist removed by command");
                        Ok(serde_json::json!({ "list": b.name, "removed": existed }))
                    }
                    (false, Some(csv)) => {
                        let entry = NewAuditEntry { detail: "list pushed whole".into(), ..entry };
                        let (entries, retro) =
                            act_on(self.audit.as_ref(), entry, || self.hotlists.push(&b.name, &csv, &cmd.by))
                                .map_err(|e| e.to_string())?;
                        log::info!(list = b.name.as_str(), entries = entries as u64, retroactive_alerts = retro as u64, by = cmd.by.as_str(); "hotlist pushed by command");
                        Ok(serde_json::json!({ "list": b.name, "entries": entries, "retroactive_alerts": retro }))
                    }
                    _ => self.denied(entry, "give either `csv` or `remove: true`".into()),
                }
            }
            "confirm_purge" => {
                let b: ConfirmPurge = self.body(&who, Action::PurgeConfirmed, cmd)?;
                let entry = NewAuditEntry {
                    object: "retention".into(),
                    detail: printable(&b.reason),
                    ..who.entry(Action::PurgeConfirmed)
                };
                if b.reason.trim().is_empty() {
                    return self.denied(entry, "a purge confirmation needs a reason".into());
                }
                let by = format!("central:{} ({})", cmd.by, b.reason);
                act_on(self.audit.as_ref(), entry, || self.store.confirm_purge(&by)).map_err(|e| e.to_string())?;
                log::warn!(by = cmd.by.as_str(); "the next retention sweep follows the wall clock and may purge a large share: confirmed by command");
                Ok(serde_json::json!({ "confirmed": true }))
            }
            other => {
                let why = format!("unknown command `{}`", printable(other));
                self.refused(name, Some(&cmd.id), Some(&cmd.by), &why)
                    .map_err(|e| format!("{why}; and the audit log failed: {e}"))?;
                Err(why)
            }
        }
    }

    fn refused(&self, name: &str, id: Option<&str>, by: Option<&str>, why: &str) -> Result<(), String> {
        let entry = NewAuditEntry {
            user: format!(
                "central:{}",
                by.filter(|b| !b.trim().is_empty()).map(printable).unwrap_or_else(|| "unknown".into())
            ),
            source: "mqtt".into(),
            action: Some(Action::CommandRejected),
            object: format!("cmd/{} {}", printable(name), id.map(printable).unwrap_or_else(|| "(no id)".into())),
            outcome: Some(Outcome::Denied),
            detail: why.to_string(),
            ..Default::default()
        };
        self.audit.record(entry).map(|_| ()).map_err(|e| e.to_string())
    }
}

/// A name from the network, cut short and stripped of control characters for the log and the audit.
pub(crate) fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

impl DaemonCommands {
    /// The command's body as `T`; one that does not fit is refused and audited under `action`.
    fn body<T: serde::de::DeserializeOwned>(&self, who: &Actor, action: Action, cmd: &CommandV1) -> Result<T, String> {
        serde_json::from_value(cmd.body.clone()).or_else(|e| {
            let entry = NewAuditEntry { object: printable(&cmd.id), ..who.entry(action) };
            self.denied(entry, format!("invalid body: {e}"))
        })
    }

    /// Records `entry` as denied with why, and answers with why.
    fn denied<T>(&self, entry: NewAuditEntry, why: String) -> Result<T, String> {
        let entry = NewAuditEntry { outcome: Some(Outcome::Denied), detail: why.clone(), ..entry };
        match self.audit.record(entry) {
            Ok(_) => Err(why),
            Err(e) => Err(format!("{why}; and the audit log failed: {e}")),
        }
    }
}
