//! The JSON Schemas in `config/schemas/` that are derived from the payload types (`schemars`), so that the
//! published files cannot drift from what the daemon sends. `polewatch-dev schemas --out config/schemas`
//! writes them; `tests/uplink.rs` checks the committed files equal [`generated`]. The status and report
//! schemas stay hand-written (their payloads carry JSON built elsewhere, not typed structs).

use super::payload::{AckV1, AlertV1, CommandV1, HealthV1, ReadsBatchV1};

/// File name in `config/schemas/` and its text (pretty JSON, newline-terminated), for every derived schema.
pub fn generated() -> Vec<(&'static str, String)> {
    let schemas = [
        ("reads.v1.schema.json", schemars::schema_for!(ReadsBatchV1)),
        ("alert.v1.schema.json", schemars::schema_for!(AlertV1)),
        ("health.v1.schema.json", schemars::schema_for!(HealthV1)),
        ("command.v1.schema.json", schemars::schema_for!(CommandV1)),
        ("ack.v1.schema.json", schemars::schema_for!(AckV1)),
    ];
    schemas
        .into_iter()
        .map(|(name, schema)| {
            // A `Schema` is a JSON value; printing one cannot fail.
            let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
            text.push('\n');
            (name, text)
        })
        .collect()
}
