//! Liveness and readiness from a snapshot of the box (pure: the caller gathers the snapshot).
//!
//! - **live**: the daemon can go on as it is. Not live when the store met a full disk and must be reopened
//!   (the supervisor restarts the daemon for it).
//! - **ready**: doing its job: every enabled camera streaming, the store open and taking reads, and the MQTT
//!   link connected or down for less than its outage budget.
//!
//! The summary carries reasons, never plate data. It is what `/healthz` and `/readyz` answer and what goes
//! out on the MQTT status topic.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub struct CameraInput {
    pub id: String,
    /// As the status line shows it (`streaming`, `backoff(unreachable, attempt 3)`…).
    pub state: String,
    pub streaming: bool,
    pub last_frame_age_s: Option<f64>,
    /// `camera_degraded` reasons in force: (kind, detail).
    pub degraded: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UplinkInput {
    pub connected: bool,
    /// Seconds since the link was last up (or since start, when it never was).
    pub down_for_s: f64,
    pub outage_budget_s: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    pub cameras: Vec<CameraInput>,
    /// The store met a full disk and waits for a restart to reopen.
    pub store_needs_reopen: bool,
    /// The disk watermark step (`ok`, `warn`, `no_frames`, `no_crops`, `full`), when watched.
    pub disk_level: Option<String>,
    pub accepts_reads: bool,
    /// None: MQTT is not enabled.
    pub uplink: Option<UplinkInput>,
    pub uptime_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraSummary {
    pub id: String,
    pub state: String,
    pub streaming: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_frame_age_s: Option<f64>,
    /// `camera_degraded`: the kinds in force (`read_rate`, `plate_height`) with why.
    pub degraded: Vec<DegradedSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DegradedSummary {
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreSummary {
    pub open: bool,
    pub accepts_reads: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_level: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UplinkSummary {
    pub connected: bool,
    pub down_for_s: u64,
    pub outage_budget_s: u64,
}

/// The health summary (`/healthz`, `/readyz`, MQTT status `health`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub live: bool,
    pub ready: bool,
    /// Why the box is not live or not ready; empty when it is both.
    pub reasons: Vec<String>,
    /// Cameras degraded while streaming (`camera_degraded`); they do not make the box unready.
    pub degraded_cameras: Vec<String>,
    pub cameras: Vec<CameraSummary>,
    pub store: StoreSummary,
    /// Absent when MQTT is not enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uplink: Option<UplinkSummary>,
    pub uptime_s: u64,
}

pub fn evaluate(i: &Input) -> Summary {
    let mut reasons = Vec::new();
    let live = !i.store_needs_reopen;
    if !live {
        reasons.push("the store met a full disk and must be reopened: the daemon restarts".to_string());
    }
    let mut ready = live;
    for c in &i.cameras {
        if !c.streaming {
            ready = false;
            reasons.push(format!("camera {} is not streaming: {}", c.id, c.state));
        }
    }
    if !i.accepts_reads {
        ready = false;
        reasons.push(format!("the store refuses new reads: disk {}", i.disk_level.as_deref().unwrap_or("full")));
    }
    if let Some(u) = &i.uplink
        && !u.connected
        && u.down_for_s >= u.outage_budget_s
    {
        ready = false;
        reasons.push(format!(
            "MQTT uplink down for {:.0} s, over its outage budget of {:.0} s",
            u.down_for_s, u.outage_budget_s
        ));
    }
    let cameras: Vec<CameraSummary> = i
        .cameras
        .iter()
        .map(|c| CameraSummary {
            id: c.id.clone(),
            state: c.state.clone(),
            streaming: c.streaming,
            last_frame_age_s: c.last_frame_age_s.map(|a| (a * 10.0).round() / 10.0),
            degraded: c.degraded.iter().map(|(k, d)| DegradedSummary { kind: k.clone(), detail: d.clone() }).collect(),
        })
        .collect();
    Summary {
        live,
        ready,
        reasons,
        degraded_cameras: cameras.iter().filter(|c| !c.degraded.is_empty()).map(|c| c.id.clone()).collect(),
        cameras,
        store: StoreSummary {
            open: !i.store_needs_reopen,
            accepts_reads: i.accepts_reads,
            disk_level: i.disk_level.clone(),
        },
        uplink: i.uplink.as_ref().map(|u| UplinkSummary {
            connected: u.connected,
            down_for_s: if u.connected { 0 } else { u.down_for_s as u64 },
            outage_budget_s: u.outage_budget_s as u64,
        }),
        uptime_s: i.uptime_s as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(id: &str, streaming: bool) -> CameraInput {
        CameraInput {
            id: id.into(),
            state: if streaming { "streaming".into() } else { "backoff(unreachable, attempt 2)".into() },
            streaming,
            last_frame_age_s: streaming.then_some(0.04),
            degraded: Vec::new(),
        }
    }

    fn healthy() -> Input {
        Input {
            cameras: vec![cam("lane1", true), cam("lane2", true)],
            store_needs_reopen: false,
            disk_level: Some("ok".into()),
            accepts_reads: true,
            uplink: Some(UplinkInput { connected: true, down_for_s: 0.0, outage_budget_s: 900.0 }),
            uptime_s: 12.0,
        }
    }

    #[test]
    fn a_healthy_box_is_live_and_ready_with_no_reasons() {
        let s = evaluate(&healthy());
        assert!(s.live && s.ready && s.reasons.is_empty(), "{s:?}");
        assert_eq!(s.cameras[0].last_frame_age_s, Some(0.0));
    }

    #[test]
    fn each_cause_makes_the_box_unready_and_says_why() {
        let mut i = healthy();
        i.cameras[1] = cam("lane2", false);
        let s = evaluate(&i);
        assert!(s.live && !s.ready);
        assert_eq!(s.reasons, vec!["camera lane2 is not streaming: backoff(unreachable, attempt 2)"]);

        // The uplink within its budget is fine; past it is not.
        let mut i = healthy();
        i.uplink = Some(UplinkInput { connected: false, down_for_s: 899.0, outage_budget_s: 900.0 });
        assert!(evaluate(&i).ready);
        i.uplink = Some(UplinkInput { connected: false, down_for_s: 901.0, outage_budget_s: 900.0 });
        let s = evaluate(&i);
        assert!(!s.ready && s.reasons[0].contains("MQTT uplink down for 901 s"), "{s:?}");
        assert_eq!(s.uplink.unwrap().down_for_s, 901);
        // No MQTT configured: nothing to wait for.
        i.uplink = None;
        assert!(evaluate(&i).ready);

        let mut i = healthy();
        i.accepts_reads = false;
        i.disk_level = Some("full".into());
        let s = evaluate(&i);
        assert!(s.live && !s.ready && s.reasons[0].contains("disk full"), "{s:?}");
        i.store_needs_reopen = true;
        let s = evaluate(&i);
        assert!(!s.live && !s.ready && s.reasons.len() == 2, "{s:?}");
    }

    #[test]
    fn a_degraded_camera_is_named_but_the_box_stays_ready() {
        let mut i = healthy();
        i.cameras[0].degraded =
            vec![("plate_height".into(), "plates are 9 px high (median), below the band's 14 px".into())];
        let s = evaluate(&i);
        assert!(s.ready);
        assert_eq!(s.degraded_cameras, vec!["lane1"]);
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["cameras"][0]["degraded"][0]["kind"], "plate_height");
    }
}
