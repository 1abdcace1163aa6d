//! `[metrics]` (the plain-HTTP listener of `/metrics`, `/healthz`, `/readyz`, and the health summary on the
//! MQTT status topic) and `[telemetry]` (ALPR telemetry: read-rate baseline and plate-height band per camera).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Address of the plain-HTTP listener for `/metrics`, `/healthz` and `/readyz` (no login, no plate data).
    /// Loopback by default, for node_exporter-style scraping on the box; `""` or `"off"` turns it off.
    #[serde(default = "default_metrics_listen")]
    pub listen: String,
    /// Seconds between health summaries on the MQTT status topic (retained); 0: only at connect.
    #[serde(default = "default_status_interval_s")]
    pub status_interval_s: u64,
    /// Seconds the MQTT link may be down before `/readyz` reports the box not ready.
    #[serde(default = "default_outage_budget_s")]
    pub uplink_outage_budget_s: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            listen: default_metrics_listen(),
            status_interval_s: default_status_interval_s(),
            uplink_outage_budget_s: default_outage_budget_s(),
        }
    }
}

impl Metrics {
    /// The listener's address, or None when turned off.
    pub fn listen_addr(&self) -> Option<Result<std::net::SocketAddr, String>> {
        match self.listen.trim() {
            "" | "off" => None,
            s => Some(s.parse().map_err(|e| format!("`{s}` is not an address:port ({e})"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    /// Learn each camera's baseline and watch for degraded cameras.
    pub enabled: bool,
    /// The band plate heights (pixels, the median of the last `height_window` plates) must stay in.
    pub min_plate_height_px: f64,
    pub max_plate_height_px: f64,
    /// Plates whose median height is judged (and the fewest before any judgement).
    pub height_window: usize,
    /// An hour with fewer reads than this share of its baseline is degraded.
    pub rate_drop_ratio: f64,
    /// Hours of the week whose baseline is below this many reads are not judged (a quiet night road).
    pub min_expected_reads_per_hour: f64,
    /// Weeks an hour of the week must have been seen before its baseline is trusted.
    pub learn_weeks: u32,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            enabled: true,
            min_plate_height_px: 14.0,
            max_plate_height_px: 240.0,
            height_window: 50,
            rate_drop_ratio: 0.3,
            min_expected_reads_per_hour: 6.0,
            learn_weeks: 1,
        }
    }
}

fn default_metrics_listen() -> String {
    "127.0.0.1:9899".into()
}
fn default_status_interval_s() -> u64 {
    60
}
fn default_outage_budget_s() -> u64 {
    900
}

/// Range and form checks of both tables: (key path, message).
pub fn check(m: &Metrics, t: &Telemetry) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(Err(e)) = m.listen_addr() {
        out.push(("metrics.listen".into(), e));
    }
    if m.status_interval_s > 86_400 {
        out.push(("metrics.status_interval_s".into(), format!("{} is out of range 0..=86400", m.status_interval_s)));
    }
    if !(t.min_plate_height_px >= 1.0
        && t.min_plate_height_px < t.max_plate_height_px
        && t.max_plate_height_px <= 4320.0)
    {
        out.push((
            "telemetry.max_plate_height_px".into(),
            format!(
                "the band {}..{} px must have 1 <= min < max <= 4320",
                t.min_plate_height_px, t.max_plate_height_px
            ),
        ));
    }
    if !(1..=10_000).contains(&t.height_window) {
        out.push(("telemetry.height_window".into(), format!("{} is out of range 1..=10000", t.height_window)));
    }
    if !(t.rate_drop_ratio > 0.0 && t.rate_drop_ratio < 1.0) {
        out.push((
            "telemetry.rate_drop_ratio".into(),
            format!("{} must be between 0 and 1 (exclusive)", t.rate_drop_ratio),
        ));
    }
    if !(0.0..=1e6).contains(&t.min_expected_reads_per_hour) {
        out.push((
            "telemetry.min_expected_reads_per_hour".into(),
            format!("{} is out of range 0..=1000000", t.min_expected_reads_per_hour),
        ));
    }
    if !(1..=52).contains(&t.learn_weeks) {
        out.push(("telemetry.learn_weeks".into(), format!("{} is out of range 1..=52", t.learn_weeks)));
    }
    out
}
