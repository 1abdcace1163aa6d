//! Versioned JSON payloads sent to and received from the central server. Each has a JSON Schema in
//! `config/schemas/` with an example; tests check both against these types. The schemas of the reads,
//! alert, health, command and ack payloads are derived from these types (`schemars`; the doc comments are
//! their descriptions) by [`crate::uplink::schemas`]; a test keeps the committed files equal to them.

use crate::store::{Candidate, StoredRead};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const VERSION: u32 = 1;

/// Schema transform: these `Option` fields are always sent (as null when empty), so the schema requires them
/// (schemars leaves an `Option` field out of `required`).
fn required_too(names: &'static [&'static str]) -> impl FnMut(&mut schemars::Schema) {
    move |schema: &mut schemars::Schema| {
        if let Some(serde_json::Value::Array(required)) = schema.get_mut("required") {
            required.extend(names.iter().map(|n| serde_json::Value::from(*n)));
        }
    }
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map(|t| format!("{t:.3}")).unwrap_or_default()
}

/// One read as sent up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
#[schemars(transform = required_too(&["region"]))]
pub struct ReadV1 {
    /// Stable read id (UUIDv7 of the capture time); drop duplicates by it.
    #[schemars(extend("format" = "uuid"))]
    pub id: String,
    #[schemars(length(min = 1))]
    pub camera_id: String,
    /// UTC, millisecond precision.
    #[schemars(extend("format" = "date-time"))]
    pub captured_at: String,
    #[schemars(regex(pattern = r"^[A-Z0-9]{1,16}$"))]
    pub plate: String,
    #[schemars(range(min = 0, max = 1))]
    pub confidence: f32,
    #[schemars(inner(range(min = 0, max = 1)))]
    pub char_confidences: Vec<f32>,
    pub candidates: Vec<Candidate>,
    /// x, y, width, height in frame pixels
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

/// Topic <prefix>/<site>/<device>/reads, QoS 1. A read may arrive more than once (at-least-once delivery):
/// drop duplicates by read id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
#[schemars(title = "Batch of vehicle reads", extend("$id" = "https://polewatch.invalid/schemas/reads.v1.json"))]
pub struct ReadsBatchV1 {
    #[schemars(extend("const" = 1))]
    pub v: u32,
    #[serde(rename = "type")]
    #[schemars(extend("const" = "reads"))]
    pub kind: String,
    pub site: String,
    pub device: String,
    #[schemars(extend("format" = "date-time"))]
    pub sent_at: String,
    #[schemars(length(min = 1))]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct HitV1 {
    pub list: String,
    pub entry: String,
    pub category: String,
    pub priority: u8,
    pub source: String,
    /// exact | wildcard | candidate | confusion
    #[schemars(extend("enum" = ["exact", "wildcard", "candidate", "confusion"]))]
    pub match_kind: String,
    #[schemars(range(min = 0, max = 1))]
    pub score: f32,
    pub matched_text: String,
}

/// Where an alert stands. The first message of an alert is `provisional` (raised while the vehicle is
/// still in view, before its pass is voted) or `confirmed` (raised on the pass's vote, or on stored
/// reads); a provisional alert gets one update under the same id when the pass closes: `confirmed` (the
/// vote is the text alerted on), `changed` (another text that still hits the entry) or `withdrawn` (the
/// vote no longer hits the entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct CertaintyV1 {
    /// confident: the vote over the first frames was sure; confident-frame: one frame read a hotlisted plate
    /// with the early confidence and the vote so far is that plate; agreement: several frames, most of the
    /// pass so far, read the same text though none was sure; vote: the per-position vote over several
    /// frames is a hotlisted plate though no frame need have read it exactly; pass: the vote over the
    /// whole pass; stored: a stored read (retroactive checks).
    #[schemars(extend("enum" = ["confident", "confident-frame", "agreement", "vote", "pass", "stored"]))]
    pub basis: String,
    /// Frames the read votes over (1 for a stored read).
    pub frames: u32,
    /// Of those, frames that read exactly the text.
    pub agreeing_frames: u32,
    /// The vote's confidence, 0..=1.
    #[schemars(range(min = 0, max = 1))]
    pub confidence: f32,
}

impl CertaintyV1 {
    /// A stored read's own confidence (retroactive checks, reads from elsewhere).
    pub fn stored(read: &StoredRead) -> CertaintyV1 {
        CertaintyV1 { basis: "stored".into(), frames: 1, agreeing_frames: 1, confidence: read.confidence }
    }
}

/// On an update: the pass's vote when it closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct FinalReadV1 {
    #[schemars(regex(pattern = r"^[A-Z0-9]{1,16}$"))]
    pub plate: String,
    #[schemars(range(min = 0, max = 1))]
    pub confidence: f32,
    #[schemars(range(min = 1))]
    pub frames: u32,
    pub candidates: Vec<Candidate>,
}

/// Topic <prefix>/<site>/<device>/alerts, QoS 1, sent at once. verification_required is always true:
/// confirm the hit before acting on it. An alert raised while the vehicle is still in view is 'provisional'
/// and is followed, when the vehicle's pass closes, by one update with the same id and revision 1:
/// 'confirmed', 'changed' or 'withdrawn'. Drop duplicates by (id, revision). A reader that takes only the
/// first message of an id still gets a complete alert (read, hit, crop).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
#[schemars(title = "Hotlist alert", extend("$id" = "https://polewatch.invalid/schemas/alert.v1.json"))]
#[schemars(transform = required_too(&["crop_jpeg_base64", "final_read"]))]
pub struct AlertV1 {
    #[schemars(extend("const" = 1))]
    pub v: u32,
    #[serde(rename = "type")]
    #[schemars(extend("const" = "alert"))]
    pub kind: String,
    /// Stable alert id; drop duplicates by it.
    #[schemars(extend("format" = "uuid"))]
    pub id: String,
    pub site: String,
    pub device: String,
    #[schemars(extend("format" = "date-time"))]
    pub raised_at: String,
    /// Always true: a hit must be confirmed (e.g. against the state system) before anyone acts on it.
    #[schemars(extend("const" = true))]
    pub verification_required: bool,
    /// true when found by checking stored reads after a hotlist entry was added
    pub retroactive: bool,
    pub read: ReadV1,
    pub hit: HitV1,
    /// Plate crop, JPEG, base64 (on the first message; null on updates).
    #[schemars(extend("contentEncoding" = "base64", "contentMediaType" = "image/jpeg"))]
    pub crop_jpeg_base64: Option<String>,
    /// provisional | confirmed on revision 0; confirmed (the pass's vote is the text alerted on), changed
    /// (another text that still hits the entry) or withdrawn (the vote no longer hits the entry) on revision 1
    /// and later.
    pub stage: AlertStage,
    /// 0: the alert; 1, 2, ...: its updates, one when the vehicle's pass closed and one more for each further
    /// track of the same vehicle (a split pass) that hit the same entry on the same camera. The server drops
    /// duplicates by (id, revision).
    pub revision: u32,
    /// How sure the read behind this message is.
    pub certainty: CertaintyV1,
    /// On revision 1: the pass's closing vote; read stays the stored read the alert was raised on. null on
    /// revision 0.
    pub final_read: Option<FinalReadV1>,
}

// Its schema (config/schemas/status.v1.schema.json) stays hand-written: `health` is a `serde_json::Value`
// here, built by `observe::health`, and the file spells out its fields.
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

/// Topic <prefix>/<site>/<device>/health, QoS 0, every minute while connected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
#[schemars(title = "Device health", extend("$id" = "https://polewatch.invalid/schemas/health.v1.json"))]
pub struct HealthV1 {
    #[schemars(extend("const" = 1))]
    pub v: u32,
    #[serde(rename = "type")]
    #[schemars(extend("const" = "health"))]
    pub kind: String,
    pub site: String,
    pub device: String,
    #[schemars(extend("format" = "date-time"))]
    pub at: String,
    pub outbox_messages: u64,
    pub reads_waiting: u64,
    pub store_bytes: u64,
    pub summary: String,
}

/// Topic <prefix>/<site>/<device>/cmd/<name>, QoS 1. Answered on …/ack with the same id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "Inbound command", extend("$id" = "https://polewatch.invalid/schemas/command.v1.json"))]
#[serde(deny_unknown_fields)]
pub struct CommandV1 {
    #[schemars(extend("const" = 1))]
    pub v: u32,
    /// Echoed in the ack so the server can pair them.
    #[schemars(length(min = 1, max = 128))]
    pub id: String,
    /// Who on the server side sent it (operator or system), for the audit log.
    #[schemars(length(min = 1))]
    pub by: String,
    /// The command's arguments (an object; what it holds depends on the command).
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub body: serde_json::Value,
    /// ed25519 signature, base64, over polewatch-command-v1\n<topic>\n<id>\n<by>\n<body as canonical JSON>\n
    /// (see `command_signing_bytes`); required when the box has `mqtt.command_public_key`.
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

/// Topic <prefix>/<site>/<device>/ack, QoS 1: the answer to each inbound command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
#[schemars(title = "Command acknowledgement", extend("$id" = "https://polewatch.invalid/schemas/ack.v1.json"))]
#[schemars(transform = required_too(&["id", "error", "result"]))]
pub struct AckV1 {
    #[schemars(extend("const" = 1))]
    pub v: u32,
    #[serde(rename = "type")]
    #[schemars(extend("const" = "ack"))]
    pub kind: String,
    pub command: String,
    pub id: Option<String>,
    pub ok: bool,
    pub error: Option<String>,
    /// What the command returned (any JSON; null when it failed).
    pub result: Option<serde_json::Value>,
    /// true when this answers a repeat of a command already applied: this is the first answer again, nothing
    /// was applied again.
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
