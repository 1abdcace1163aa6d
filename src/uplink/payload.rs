//! Versioned JSON payloads sent to and received from the central server. Each has a JSON Schema in
//! `config/schemas/` with an example; tests check both against these types.

use crate::store::{Candidate, StoredRead};
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| format!("{t:.3}")).unwrap_or_default()
}

/// One read as sent up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadV1 {
    /// Stable id (the store's); the server drops duplicates by it.
    pub id: String,
    pub camera_id: String,
    pub captured_at: String,
    pub plate: String,
    pub confidence: f32,
    pub char_confidences: Vec<f32>,
    pub candidates: Vec<Candidate>,
    pub bbox: [u32; 4],
    pub region: Option<String>,
    pub frame_seq: u64,
}

impl From<&StoredRead> for ReadV1 {
    fn from(r: &StoredRead) -> ReadV1 {
        ReadV1 {
            id: r.id.to_string(),
            camera_id: r.camera_id.clone(),
            captured_at: rfc3339(r.captured_at_ms),
            plate: r.plate.expose().to_string(),
            confidence: r.confidence,
            char_confidences: r.char_confidences.clone(),
            candidates: r.candidates.clone(),
            bbox: r.bbox,
            region: r.region.clone(),
            frame_seq: r.frame_seq,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadsBatchV1 {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub site: String,
    pub device: String,
    pub sent_at: String,
    pub reads: Vec<ReadV1>,
}

impl ReadsBatchV1 {
    pub fn new(site: &str, device: &str, now_ms: i64, reads: &[StoredRead]) -> ReadsBatchV1 {
        ReadsBatchV1 {
            v: VERSION,
            kind: "reads".into(),
            site: site.into(),
            device: device.into(),
            sent_at: rfc3339(now_ms),
            reads: reads.iter().map(ReadV1::from).collect(),
        }
    }
}

/// The hotlist entry that was hit, as far as the alert needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HitV1 {
    pub list: String,
    pub entry: String,
    pub category: String,
    pub priority: u8,
    pub source: String,
    /// exact | wildcard | candidate | confusion
    pub match_kind: String,
    pub score: f32,
    pub matched_text: String,
}

/// Where an alert stands. The first message of an alert is `provisional` (raised while the vehicle is
/// still in view, before its pass is voted) or `confirmed` (raised on the pass's vote, or on stored
/// reads); a provisional alert gets one update under the same id when the pass closes: `confirmed` (the
/// vote is the text alerted on), `changed` (another text that still hits the entry) or `withdrawn` (the
/// vote no longer hits the entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStage {
    Provisional,
    Confirmed,
    Changed,
    Withdrawn,
}

impl AlertStage {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertStage::Provisional => "provisional",
            AlertStage::Confirmed => "confirmed",
            AlertStage::Changed => "changed",
            AlertStage::Withdrawn => "withdrawn",
        }
    }
}

/// How sure the box is of the read an alert (or its update) rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertaintyV1 {
    /// confident (the vote over the first frames was sure) | agreement (several frames read the same
    /// text, none sure) | pass (the vote over the whole pass) | stored (a stored read, retroactively)
    pub basis: String,
    /// Frames the read votes over (1 for a stored read).
    pub frames: u32,
    /// Of those, frames that read exactly the text.
    pub agreeing_frames: u32,
    /// The vote's confidence, 0..=1.
    pub confidence: f32,
}

impl CertaintyV1 {
    /// A stored read's own confidence (retroactive checks, reads from elsewhere).
    pub fn stored(read: &StoredRead) -> CertaintyV1 {
        CertaintyV1 { basis: "stored".into(), frames: 1, agreeing_frames: 1, confidence: read.confidence }
    }
}

/// On an update: the pass's vote when it closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinalReadV1 {
    pub plate: String,
    pub confidence: f32,
    pub frames: u32,
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertV1 {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    /// Stable id; the server drops duplicates by it.
    pub id: String,
    pub site: String,
    pub device: String,
    pub raised_at: String,
    /// A hit must be confirmed (e.g. against the state system) before anyone acts on it.
    pub verification_required: bool,
    pub retroactive: bool,
    pub read: ReadV1,
    pub hit: HitV1,
    /// Plate crop, JPEG, base64 (on the first message; null on updates).
    pub crop_jpeg_base64: Option<String>,
    /// provisional | confirmed on the first message; confirmed | changed | withdrawn on the update.
    pub stage: AlertStage,
    /// 0 on the first message, then 1, 2, … on each update; the server drops duplicates by (id, revision).
    pub revision: u32,
    /// How sure the read behind this message is.
    pub certainty: CertaintyV1,
    /// On an update: the pass's closing vote (null on the first message). `read` stays the stored read
    /// the alert was raised on.
    pub final_read: Option<FinalReadV1>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusV1 {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub site: String,
    pub device: String,
    /// online | offline
    pub state: String,
    pub at: String,
    pub version: String,
    /// On `offline`: true when the daemon stopped cleanly (retained, and the broker drops the will); false in
    /// the last will, which the broker publishes only when the link broke (its `at` is when the link was made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_shutdown: Option<bool>,
    /// On `online`: the health summary of `/readyz` (see `observe::health`), sent again every
    /// `[metrics] status_interval_s` and when a camera's `camera_degraded` state changes. No plate data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<serde_json::Value>,
}

impl StatusV1 {
    pub fn new(site: &str, device: &str, state: &str, now_ms: i64) -> StatusV1 {
        StatusV1 {
            v: VERSION,
            kind: "status".into(),
            site: site.into(),
            device: device.into(),
            state: state.into(),
            at: rfc3339(now_ms),
            version: env!("CARGO_PKG_VERSION").into(),
            clean_shutdown: None,
            health: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthV1 {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub site: String,
    pub device: String,
    pub at: String,
    pub outbox_messages: u64,
    pub reads_waiting: u64,
    pub store_bytes: u64,
    pub summary: String,
}

/// Inbound command envelope on `…/cmd/<name>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandV1 {
    pub v: u32,
    /// Echoed in the ack so the server can pair them.
    pub id: String,
    /// Who on the server side sent it (operator or system), for the audit log.
    pub by: String,
    pub body: serde_json::Value,
    /// ed25519 signature (base64) over [`command_signing_bytes`]; required when the box is configured
    /// with the server's public key (`mqtt.command_public_key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

/// What a command's signature covers: a fixed label, the full topic (so a command cannot be replayed to
/// another box or as another command), the id (so a repeat is a duplicate, not a new command), who sent
/// it and the body as canonical JSON (object keys sorted, no whitespace), each line ended by `\n`.
/// Signed bodies carry integers only: a fractional number need not survive parsing and printing.
pub fn command_signing_bytes(topic: &str, cmd: &CommandV1) -> Vec<u8> {
    let mut out = format!("polewatch-command-v1\n{topic}\n{}\n{}\n", cmd.id, cmd.by).into_bytes();
    canonical_json(&cmd.body, &mut out);
    out.push(b'\n');
    out
}

fn canonical_json(v: &serde_json::Value, out: &mut Vec<u8>) {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(serde_json::Value::String((*k).clone()).to_string().as_bytes());
                out.push(b':');
                canonical_json(&m[*k], out);
            }
            out.push(b'}');
        }
        serde_json::Value::Array(a) => {
            out.push(b'[');
            for (i, e) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(e, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckV1 {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub command: String,
    pub id: Option<String>,
    pub ok: bool,
    pub error: Option<String>,
    pub result: Option<serde_json::Value>,
    /// A repeat of a command already answered: this is the first answer again, nothing was applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
}

impl AckV1 {
    pub fn new(command: &str, id: Option<String>, result: Result<serde_json::Value, String>) -> AckV1 {
        let (ok, error, result) = match result {
            Ok(v) => (true, None, Some(v)),
            Err(e) => (false, Some(e), None),
        };
        AckV1 { v: VERSION, kind: "ack".into(), command: command.into(), id, ok, error, result, duplicate: false }
    }
}
