//! `GET /metrics`: the OpenMetrics/Prometheus text of the running daemon, encoded by `prometheus-client`.
//!
//! Two kinds of series: those the pipeline records as it works (histograms, counters of the
//! [`Recorder`](super::recorder::Recorder)), registered once; and those read at each scrape from what the
//! daemon already counts (camera states and counters, the uplink's, the store's, the process's), written by
//! the [`Collector`] below. Labels carry camera ids, classes and reasons, never plate text.

use super::health::{self, CameraInput, UplinkInput};
use super::recorder::{CameraLabel, recorder};
use crate::ingest::{CameraSet, CameraState};
use crate::store::Store;
use crate::store::census::Census;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Counting the store walks its trees: done at most this often, the scrapes between reuse the count.
const CENSUS_MAX_AGE: Duration = Duration::from_secs(10);

/// The analysis thread's totals: frames analysed, frames failed, plate readings, reads or alerts not stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnalysisCounts {
    pub frames: u64,
    pub frames_failed: u64,
    pub plates_read: u64,
    pub store_errors: u64,
}

pub type AnalysisSource = Box<dyn Fn() -> AnalysisCounts + Send + Sync>;

/// What the daemon already holds, read at each scrape and health check.
pub struct Sources {
    pub cameras: Arc<CameraSet>,
    pub analysis: AnalysisSource,
    pub uplink: Option<Arc<crate::uplink::Stats>>,
    pub store: Arc<Store>,
    pub started: Instant,
    pub outage_budget: Duration,
    /// When the uplink was last seen down after being up (or the start), for the outage budget.
    uplink_down_since: Mutex<Option<Instant>>,
    census: Mutex<Option<(Instant, Census)>>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sources").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn state_name(s: &CameraState) -> &'static str {
    match s {
        CameraState::Connecting => "connecting",
        CameraState::Streaming => "streaming",
        CameraState::Backoff { .. } => "backoff",
        CameraState::Disabled => "disabled",
    }
}

impl Sources {
    pub fn new(
        cameras: Arc<CameraSet>,
        analysis: AnalysisSource,
        uplink: Option<Arc<crate::uplink::Stats>>,
        store: Arc<Store>,
        outage_budget: Duration,
    ) -> Sources {
        let started = Instant::now();
        Sources {
            cameras,
            analysis,
            uplink,
            store,
            started,
            outage_budget,
            uplink_down_since: Mutex::new(Some(started)),
            census: Mutex::new(None),
        }
    }

    /// Seconds the uplink has been down (0 while up); call often (the health loop does, every second).
    pub fn uplink_down_for(&self) -> Option<(bool, Duration)> {
        let u = self.uplink.as_ref()?;
        let connected = u.connected.load(Ordering::Relaxed);
        let mut since = lock(&self.uplink_down_since);
        if connected {
            *since = None;
            return Some((true, Duration::ZERO));
        }
        let t = *since.get_or_insert_with(Instant::now);
        Some((false, t.elapsed()))
    }

    /// The store counted, at most [`CENSUS_MAX_AGE`] old. Blocking (reads the store's tree counts).
    pub fn census(&self) -> Option<Census> {
        let mut c = lock(&self.census);
        if let Some((at, census)) = c.as_ref()
            && at.elapsed() < CENSUS_MAX_AGE
        {
            return Some(census.clone());
        }
        match self.store.census() {
            Ok(census) => {
                *c = Some((Instant::now(), census.clone()));
                Some(census)
            }
            Err(e) => {
                log::warn!("metrics: cannot count the store: {e}");
                c.as_ref().map(|(_, census)| census.clone())
            }
        }
    }

    /// The health summary now.
    pub fn health(&self) -> health::Summary {
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let cameras = self
            .cameras
            .states()
            .into_iter()
            .filter(|(_, s)| *s != CameraState::Disabled)
            .map(|(id, state)| {
                let age = self
                    .cameras
                    .with(&id, |c| c.stats().last_frame_wall_ms.load(Ordering::Relaxed))
                    .filter(|ms| *ms > 0)
                    .map(|ms| (now_ms - ms).max(0) as f64 / 1e3);
                CameraInput {
                    streaming: state == CameraState::Streaming,
                    state: state.to_string(),
                    last_frame_age_s: age,
                    degraded: recorder().degraded(&id).into_iter().map(|d| (d.kind.to_string(), d.detail)).collect(),
                    id: id.to_string(),
                }
            })
            .collect();
        let disk = self.store.disk_state();
        let input = health::Input {
            cameras,
            store_needs_reopen: self.store.needs_reopen(),
            disk_level: disk.as_ref().map(|d| d.level.as_str().to_string()),
            accepts_reads: disk.as_ref().is_none_or(|d| d.level.accepts_reads()),
            uplink: self.uplink_down_for().map(|(connected, down)| UplinkInput {
                connected,
                down_for_s: down.as_secs_f64(),
                outage_budget_s: self.outage_budget.as_secs_f64(),
            }),
            uptime_s: self.started.elapsed().as_secs_f64(),
        };
        health::evaluate(&input)
    }
}

/// The registry of one daemon: the recorder's series and the scrape-time collector.
pub fn registry(sources: Arc<Sources>) -> Registry {
    let r = recorder();
    let mut reg = Registry::default();
    reg.register("polewatch_detector_seconds", "Plate detector latency per analysed frame", r.detector_seconds.clone());
    reg.register("polewatch_ocr_seconds", "OCR latency per detected plate", r.ocr_seconds.clone());
    reg.register("polewatch_plates_per_frame", "Plates read per analysed frame", r.plates_per_frame.clone());
    reg.register(
        "polewatch_plate_height_pixels",
        "Height in pixels of each plate read (ALPR telemetry)",
        r.plate_height_pixels.clone(),
    );
    reg.register("polewatch_camera_frames_analysed", "Frames through the recognizer", r.frames_analysed.clone());
    reg.register("polewatch_reads_stored", "Vehicle reads stored", r.reads_stored.clone());
    reg.register(
        "polewatch_camera_degraded_events",
        "camera_degraded events raised (ALPR telemetry), by kind",
        r.degraded_events.clone(),
    );
    reg.register_collector(Box::new(Scrape(sources)));
    reg
}

/// Encodes the registry as the body of `GET /metrics` (blocking: counts the store when its count is old).
pub fn encode(reg: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, reg)?;
    Ok(out)
}

/// The scrape-time series.
#[derive(Debug)]
struct Scrape(Arc<Sources>);

type Labels = Vec<(&'static str, String)>;

fn labelled<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    t: MetricType,
    rows: Vec<(Labels, M)>,
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, t)?;
    for (labels, v) in rows {
        v.encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauges(enc: &mut DescriptorEncoder, name: &str, help: &str, rows: Vec<(Labels, f64)>) -> std::fmt::Result {
    labelled(enc, name, help, MetricType::Gauge, rows.into_iter().map(|(l, v)| (l, ConstGauge::new(v))).collect())
}

fn counters(enc: &mut DescriptorEncoder, name: &str, help: &str, rows: Vec<(Labels, u64)>) -> std::fmt::Result {
    labelled(enc, name, help, MetricType::Counter, rows.into_iter().map(|(l, v)| (l, ConstCounter::new(v))).collect())
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    ConstGauge::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    ConstCounter::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn cam(id: &str) -> CameraLabel {
    vec![("camera", id.to_string())]
}

/// Age in seconds of an outbox message, from the time its payload names (`raised_at`, `sent_at`, `at`).
fn payload_age_s(payload: &[u8], now_ms: i64) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let at = ["raised_at", "sent_at", "at"].iter().find_map(|k| v.get(*k).and_then(|t| t.as_str()))?;
    let t: jiff::Timestamp = at.parse().ok()?;
    Some(((now_ms - t.as_millisecond()).max(0)) as f64 / 1e3)
}

impl Collector for Scrape {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let now_ms = jiff::Timestamp::now().as_millisecond();
        let e = &mut enc;
        gauges(
            e,
            "polewatch_build_info",
            "Version of the running daemon",
            vec![(vec![("version", env!("CARGO_PKG_VERSION").to_string())], 1.0)],
        )?;
        let health = s.health();
        gauge(e, "polewatch_live", "1 when the daemon is live (/healthz)", f64::from(u8::from(health.live)))?;
        gauge(
            e,
            "polewatch_ready",
            "1 when every camera streams, the store takes reads and the uplink is within its outage budget (/readyz)",
            f64::from(u8::from(health.ready)),
        )?;

        // Cameras.
        let cams = s.cameras.states();
        let mut state_rows = Vec::new();
        let (mut decoded, mut sampled, mut dropped, mut reconnects, mut age) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (id, state) in &cams {
            for name in ["connecting", "streaming", "backoff", "disabled"] {
                let mut l = cam(id);
                l.push(("state", name.to_string()));
                state_rows.push((l, f64::from(u8::from(state_name(state) == name))));
            }
            let stats = s.cameras.with(id, |c| {
                let st = c.stats();
                (
                    st.frames_decoded.load(Ordering::Relaxed),
                    st.frames_sampled.load(Ordering::Relaxed),
                    st.frames_gated.load(Ordering::Relaxed),
                    st.connects.load(Ordering::Relaxed),
                    st.last_frame_wall_ms.load(Ordering::Relaxed),
                )
            });
            let Some((dec, smp, gated, connects, last_ms)) = stats else { continue };
            decoded.push((cam(id), dec));
            sampled.push((cam(id), smp.saturating_sub(gated)));
            let mut not_sampled = cam(id);
            not_sampled.push(("reason", "not_sampled".into()));
            dropped.push((not_sampled, dec.saturating_sub(smp)));
            let mut motion = cam(id);
            motion.push(("reason", "no_motion".into()));
            dropped.push((motion, gated));
            reconnects.push((cam(id), connects.saturating_sub(1)));
            if last_ms > 0 {
                age.push((cam(id), (now_ms - last_ms).max(0) as f64 / 1e3));
            }
        }
        let mut lost: Vec<(Labels, u64)> = s
            .cameras
            .queue()
            .dropped_by_camera()
            .into_iter()
            .map(|(id, n)| (vec![("camera", id.to_string()), ("reason", "queue_full".to_string())], n))
            .collect();
        lost.extend(recorder().analysis_errors());
        counters(
            e,
            "polewatch_camera_frames_lost",
            "Sampled frames not analysed, by reason (queue_full: the recognizer fell behind; analysis_error)",
            lost,
        )?;
        gauges(e, "polewatch_camera_state", "1 for the state each camera is in", state_rows)?;
        counters(
            e,
            "polewatch_camera_frames_decoded",
            "Frames decoded per camera (rate() gives the decoded fps)",
            decoded,
        )?;
        counters(
            e,
            "polewatch_camera_frames_queued",
            "Frames sampled and queued for analysis per camera (rate() gives the analysis fps asked for)",
            sampled,
        )?;
        counters(
            e,
            "polewatch_camera_frames_skipped",
            "Decoded frames not analysed, by reason (not_sampled: above analysis_fps; no_motion: the motion gate)",
            dropped,
        )?;
        counters(e, "polewatch_camera_reconnects", "Reconnections after the first connection per camera", reconnects)?;
        gauges(e, "polewatch_camera_last_frame_age_seconds", "Seconds since each camera's last decoded frame", age)?;
        let telemetry = recorder().telemetry_view();
        let mut degraded = Vec::new();
        let (mut this_hour, mut expected) = (Vec::new(), Vec::new());
        for (id, kinds, reads, exp) in &telemetry {
            for kind in [super::telemetry::Kind::ReadRate, super::telemetry::Kind::PlateHeight] {
                let mut l = cam(id);
                l.push(("kind", kind.as_str().to_string()));
                degraded.push((l, f64::from(u8::from(kinds.contains(&kind)))));
            }
            this_hour.push((cam(id), *reads as f64));
            if let Some(x) = exp {
                expected.push((cam(id), *x));
            }
        }
        gauges(
            e,
            "polewatch_camera_degraded",
            "1 while a camera is degraded (camera_degraded), by kind (read_rate, plate_height)",
            degraded,
        )?;
        gauges(
            e,
            "polewatch_camera_reads_this_hour",
            "Vehicle reads stored in the current hour (ALPR telemetry)",
            this_hour,
        )?;
        gauges(
            e,
            "polewatch_camera_expected_reads_per_hour",
            "The learnt baseline of reads for the current hour of week",
            expected,
        )?;

        // Recognizer and analysis.
        let a = (s.analysis)();
        counter(e, "polewatch_frames_analysed", "Frames through the recognizer, all cameras", a.frames)?;
        counter(e, "polewatch_frames_failed", "Frames the recognizer could not analyse", a.frames_failed)?;
        counter(e, "polewatch_plates_read", "Plate readings (one per plate per frame)", a.plates_read)?;
        counter(e, "polewatch_read_store_errors", "Vehicle reads or alerts that could not be stored", a.store_errors)?;

        // Uplink.
        if let Some(u) = &s.uplink {
            gauge(
                e,
                "polewatch_mqtt_connected",
                "1 while the MQTT link is up",
                f64::from(u8::from(u.connected.load(Ordering::Relaxed))),
            )?;
            counter(e, "polewatch_mqtt_connects", "MQTT connections made", u.connects.load(Ordering::Relaxed))?;
            counters(
                e,
                "polewatch_mqtt_published",
                "Messages published from the outbox (alerts: alerts and other outbox messages; reads: reads in batches)",
                vec![
                    (vec![("class", "alerts".into())], u.published_outbox.load(Ordering::Relaxed)),
                    (vec![("class", "reads".into())], u.published_reads.load(Ordering::Relaxed)),
                ],
            )?;
            counters(
                e,
                "polewatch_mqtt_acked",
                "Messages acknowledged by the broker (alerts: outbox messages; reads: reads)",
                vec![
                    (vec![("class", "alerts".into())], u.outbox_acked.load(Ordering::Relaxed)),
                    (vec![("class", "reads".into())], u.reads_acked.load(Ordering::Relaxed)),
                ],
            )?;
            counter(e, "polewatch_mqtt_commands", "Commands received", u.commands.load(Ordering::Relaxed))?;
            counter(
                e,
                "polewatch_mqtt_commands_refused",
                "Commands refused",
                u.commands_refused.load(Ordering::Relaxed),
            )?;
        }

        // Outbox and store.
        let census = s.census();
        let alerts_age = s
            .store
            .outbox_peek(None, 1)
            .ok()
            .and_then(|m| m.into_iter().next())
            .and_then(|m| payload_age_s(&m.payload, now_ms))
            .unwrap_or(0.0);
        let reads_age = s
            .store
            .upload_queue_peek(None, 1)
            .ok()
            .and_then(|m| m.into_iter().next())
            .map(|(_, r)| (now_ms - r.captured_at_ms).max(0) as f64 / 1e3)
            .unwrap_or(0.0);
        if let Some(c) = &census {
            gauges(
                e,
                "polewatch_outbox_depth",
                "Messages waiting to be sent, by class",
                vec![
                    (vec![("class", "alerts".into())], c.outbox_messages as f64),
                    (vec![("class", "reads".into())], c.reads_waiting_upload as f64),
                ],
            )?;
        }
        gauges(
            e,
            "polewatch_outbox_oldest_age_seconds",
            "Age of the oldest message waiting, by class (0: none waits)",
            vec![(vec![("class", "alerts".into())], alerts_age), (vec![("class", "reads".into())], reads_age)],
        )?;
        if let Ok(b) = s.store.size_on_disk() {
            gauge(e, "polewatch_store_bytes", "Bytes the store takes on disk", b as f64)?;
        }
        if let Some(c) = &census {
            gauge(e, "polewatch_store_reads", "Reads in the store", c.reads as f64)?;
            gauge(e, "polewatch_store_held_reads", "Reads with evidence hold records", c.reads_with_holds as f64)?;
            gauge(e, "polewatch_audit_seq", "Sequence number of the newest audit entry", c.audit_head as f64)?;
        }
        if let Some(d) = s.store.disk_state() {
            gauge(
                e,
                "polewatch_disk_headroom_bytes",
                "Bytes free for the store on its filesystem",
                d.avail_bytes as f64,
            )?;
            gauge(e, "polewatch_disk_used_ratio", "Share of the store's filesystem in use", d.used_pct / 100.0)?;
            let levels = ["ok", "warn", "no_frames", "no_crops", "full"];
            gauges(
                e,
                "polewatch_disk_watermark",
                "1 for the disk watermark step in force",
                levels
                    .iter()
                    .map(|l| (vec![("level", l.to_string())], f64::from(u8::from(d.level.as_str() == *l))))
                    .collect(),
            )?;
        }
        let sweep = recorder().last_sweep();
        gauge(
            e,
            "polewatch_retention_last_sweep_timestamp_seconds",
            "When the last retention sweep ended (0: none yet)",
            sweep.map(|s| s.at_ms as f64 / 1e3).unwrap_or(0.0),
        )?;
        gauge(
            e,
            "polewatch_retention_last_sweep_purged",
            "Reads the last retention sweep purged",
            sweep.map(|s| s.purged as f64).unwrap_or(0.0),
        )?;

        // The process.
        if let Some(p) = super::process::sample() {
            gauge(e, "process_resident_memory_bytes", "Resident memory size in bytes", p.resident_memory_bytes as f64)?;
            gauge(e, "process_virtual_memory_bytes", "Virtual memory size in bytes", p.virtual_memory_bytes as f64)?;
            gauge(e, "process_threads", "Number of OS threads", p.threads as f64)?;
            gauge(e, "process_open_fds", "Number of open file descriptors", p.open_fds as f64)?;
            if let Some(m) = p.max_fds {
                gauge(e, "process_max_fds", "Maximum number of open file descriptors", m as f64)?;
            }
            // A float counter: ConstCounter<f64>.
            ConstCounter::new(p.cpu_seconds).encode(e.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                MetricType::Counter,
            )?)?;
            gauge(
                e,
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                p.start_time_seconds,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_ages_come_from_the_time_the_payload_names() {
        let now = jiff::Timestamp::from_second(1_790_000_100).unwrap().as_millisecond();
        assert_eq!(payload_age_s(br#"{"raised_at":"2026-09-21T14:13:20Z"}"#, now), Some(100.0));
        assert_eq!(payload_age_s(br#"{"at":"2026-09-21T14:15:00Z"}"#, now), Some(0.0));
        assert_eq!(payload_age_s(b"not json", now), None);
    }
}
