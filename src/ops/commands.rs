//! Inbound commands from the central server (`…/cmd/<name>`), applied to the store. Each answer goes
//! back on `…/ack`; every command received is audited: applied ones under their action with the
//! outcome, refused ones (malformed, unknown, retained, unsigned, over the size limit, a repeat) as
//! `command_rejected` with why.

use crate::access::text::{for_audit, CaseNumber, Note, Reason};
use crate::access::{Action, NewAuditEntry, Outcome};
use crate::clock::now_ms;
use crate::store::{Decision, HoldRequest, ReadId, Store, Verification};
use crate::uplink::payload::CommandV1;
use crate::uplink::CommandHandler;
use serde::Deserialize;
use std::sync::Arc;

pub struct DaemonCommands {
    pub store: Arc<Store>,
    pub hotlists: Arc<crate::pipeline::hotlists::Hotlists>,
    pub audit: Arc<dyn crate::access::AuditSink>,
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

fn body<T: serde::de::DeserializeOwned>(cmd: &CommandV1) -> Result<T, String> {
    serde_json::from_value(cmd.body.clone()).map_err(|e| format!("invalid body: {e}"))
}

impl CommandHandler for DaemonCommands {
    fn handle(&self, name: &str, cmd: &CommandV1) -> Result<serde_json::Value, String> {
        if cmd.by.trim().is_empty() {
            let why = "`by` must name who sent the command".to_string();
            self.refused(name, Some(&cmd.id), None, &why)
                .map_err(|e| format!("{why}; and the audit log failed: {e}"))?;
            return Err(why);
        }
        let action = match name {
            "alert" => Action::AlertVerified,
            "hold" => Action::HoldPlaced,
            "release_hold" => Action::HoldReleased,
            "hotlist" => Action::HotlistChanged,
            "confirm_purge" => Action::PurgeConfirmed,
            other => {
                let why = format!("unknown command `{}`", printable(other));
                self.refused(name, Some(&cmd.id), Some(&cmd.by), &why)
                    .map_err(|e| format!("{why}; and the audit log failed: {e}"))?;
                return Err(why);
            }
        };
        let result = self.apply(name, cmd);
        // Recorded after the fact with its outcome; a command whose record cannot be written reports the
        // failure to the server (a repeat of the id gets the same answer and is not applied again).
        let entry = NewAuditEntry {
            user: format!("central:{}", cmd.by),
            source: "mqtt".into(),
            action: Some(if name == "alert" && cmd.body.get("decision").and_then(|d| d.as_str()) == Some("rejected") {
                Action::AlertRejected
            } else {
                action
            }),
            object: cmd.id.clone(),
            case_number: for_audit(cmd.body.get("case_number").and_then(|c| c.as_str()).unwrap_or_default()),
            outcome: Some(if result.is_ok() { Outcome::Ok } else { Outcome::Denied }),
            detail: result.as_ref().err().cloned().unwrap_or_default(),
            ..Default::default()
        };
        self.audit.record(entry).map_err(|e| format!("applied, but the audit log failed: {e}"))?;
        result
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
    fn apply(&self, name: &str, cmd: &CommandV1) -> Result<serde_json::Value, String> {
        match name {
            "alert" => {
                let b: AlertDecision = body(cmd)?;
                let v = Verification {
                    decision: b.decision,
                    by: cmd.by.clone(),
                    at_ms: now_ms(),
                    note: b.note.into_string(),
                };
                let rec = self.store.verify_alert(b.alert_id, v).map_err(|e| e.to_string())?;
                log::info!(alert = rec.id.to_string().as_str(), by = cmd.by.as_str(); "alert {:?} by command", b.decision);
                Ok(serde_json::json!({ "alert": rec.id, "decision": b.decision }))
            }
            "hold" => {
                let b: PlaceHold = body(cmd)?;
                let req = HoldRequest {
                    placed_by: cmd.by.clone(),
                    case_number: b.case_number.into_string(),
                    reason: b.reason.into_string(),
                    expires_at_ms: b.expires_at.map(|t| t.as_millisecond()),
                };
                let h = self.store.place_hold(ReadId(b.read_id), req, now_ms()).map_err(|e| e.to_string())?;
                log::info!(read = h.read_id.to_string().as_str(), case = h.case_number.as_str(), by = cmd.by.as_str(); "evidence hold placed by command");
                Ok(serde_json::json!({ "hold_id": h.id, "read_id": h.read_id }))
            }
            "release_hold" => {
                let b: ReleaseHold = body(cmd)?;
                let h = self
                    .store
                    .release_hold(ReadId(b.read_id), b.hold_id, &cmd.by, b.reason.as_str(), now_ms())
                    .map_err(|e| e.to_string())?;
                log::info!(read = h.read_id.to_string().as_str(), by = cmd.by.as_str(); "evidence hold released by command");
                Ok(serde_json::json!({ "hold_id": h.id, "released": true }))
            }
            "hotlist" => {
                let b: HotlistPush = body(cmd)?;
                match (b.remove, b.csv) {
                    (true, None) => {
                        let existed = self.hotlists.remove(&b.name).map_err(|e| e.to_string())?;
                        log::info!(list = b.name.as_str(), by = cmd.by.as_str(); "pushed hotlist removed by command");
                        Ok(serde_json::json!({ "list": b.name, "removed": existed }))
                    }
                    (false, Some(csv)) => {
                        let (entries, retro) = self.hotlists.push(&b.name, &csv, &cmd.by).map_err(|e| e.to_string())?;
                        log::info!(list = b.name.as_str(), entries = entries as u64, retroactive_alerts = retro as u64, by = cmd.by.as_str(); "hotlist pushed by command");
                        Ok(serde_json::json!({ "list": b.name, "entries": entries, "retroactive_alerts": retro }))
                    }
                    _ => Err("give either `csv` or `remove: true`".into()),
                }
            }
            "confirm_purge" => {
                let b: ConfirmPurge = body(cmd)?;
                if b.reason.trim().is_empty() {
                    return Err("a purge confirmation needs a reason".into());
                }
                self.store.confirm_purge(&format!("central:{} ({})", cmd.by, b.reason)).map_err(|e| e.to_string())?;
                log::warn!(by = cmd.by.as_str(); "the next retention sweep follows the wall clock and may purge a large share: confirmed by command");
                Ok(serde_json::json!({ "confirmed": true }))
            }
            other => Err(format!("unknown command `{}`", printable(other))),
        }
    }
}
