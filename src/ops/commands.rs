//! Inbound commands from the central server (`…/cmd/<name>`), applied to the store. Each answer goes
//! back on `…/ack`; every command is logged (and audited once the audit log exists).

use crate::store::{Decision, HoldRequest, ReadId, Store, Verification};
use crate::uplink::payload::CommandV1;
use crate::uplink::CommandHandler;
use crate::access::text::{for_audit, CaseNumber, Note, Reason};
use crate::access::{Action, NewAuditEntry, Outcome};
use serde::Deserialize;
use std::sync::Arc;

pub struct DaemonCommands {
    pub store: Arc<Store>,
    pub hotlists: Arc<crate::ops::hotlists::Hotlists>,
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

fn body<T: serde::de::DeserializeOwned>(cmd: &CommandV1) -> Result<T, String> {
    serde_json::from_value(cmd.body.clone()).map_err(|e| format!("invalid body: {e}"))
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl CommandHandler for DaemonCommands {
    fn handle(&self, name: &str, cmd: &CommandV1) -> Result<serde_json::Value, String> {
        if cmd.by.trim().is_empty() {
            return Err("`by` must name who sent the command".into());
        }
        let action = match name {
            "alert" => Action::AlertVerified,
            "hold" => Action::HoldPlaced,
            "release_hold" => Action::HoldReleased,
            "hotlist" => Action::HotlistChanged,
            other => return Err(format!("unknown command `{other}`")),
        };
        let result = self.apply(name, cmd);
        // Recorded after the fact with its outcome; a command whose record cannot be written reports the
        // failure to the server, which sends it again.
        let entry = NewAuditEntry {
            user: format!("central:{}", cmd.by),
            source: "mqtt".into(),
            action: Some(if name == "alert" && cmd.body.get("decision").and_then(|d| d.as_str()) == Some("rejected") { Action::AlertRejected } else { action }),
            object: cmd.id.clone(),
            case_number: for_audit(cmd.body.get("case_number").and_then(|c| c.as_str()).unwrap_or_default()),
            outcome: Some(if result.is_ok() { Outcome::Ok } else { Outcome::Denied }),
            detail: result.as_ref().err().cloned().unwrap_or_default(),
            ..Default::default()
        };
        self.audit.record(entry).map_err(|e| format!("applied, but the audit log failed: {e}"))?;
        result
    }
}

impl DaemonCommands {
    fn apply(&self, name: &str, cmd: &CommandV1) -> Result<serde_json::Value, String> {
        match name {
            "alert" => {
                let b: AlertDecision = body(cmd)?;
                let v = Verification { decision: b.decision, by: cmd.by.clone(), at_ms: now_ms(), note: b.note.into_string() };
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
                let h = self.store.release_hold(ReadId(b.read_id), b.hold_id, &cmd.by, b.reason.as_str(), now_ms()).map_err(|e| e.to_string())?;
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
            other => Err(format!("unknown command `{other}`")),
        }
    }
}
