//! The daemon's side: the listener, the health loop (uplink outage clock, telemetry hours, baselines saved
//! hourly and at stop) and the health summary the MQTT status carries.

use crate::config::Config;
use crate::observe::metrics::Sources;
use crate::observe::recorder;
use crate::observe::telemetry::{Params, Saved};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How often the health loop runs.
const TICK: Duration = Duration::from_secs(1);
/// How often the learnt baselines are written out.
const SAVE_EVERY: Duration = Duration::from_secs(3600);

pub struct Observer {
    pub sources: Arc<Sources>,
    server: Option<JoinHandle<()>>,
    health_loop: JoinHandle<()>,
    stop: CancellationToken,
    baselines: PathBuf,
}

/// `<state dir>/telemetry.json`: the learnt baselines (counts per hour of week, no plate data).
pub fn baselines_path(cfg: &Config) -> PathBuf {
    cfg.store.path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(".")).join("telemetry.json")
}

fn save(path: &Path) {
    let Some(saved) = recorder().saved_baselines() else { return };
    let tmp = path.with_extension("json.tmp");
    let result = serde_json::to_vec(&saved)
        .map_err(std::io::Error::other)
        .and_then(|b| std::fs::write(&tmp, b))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        log::warn!("cannot save the telemetry baselines to {}: {e}", path.display());
    }
}

fn restore(path: &Path) {
    match std::fs::read(path) {
        Ok(b) => match serde_json::from_slice::<Saved>(&b) {
            Ok(saved) => {
                log::info!(cameras = saved.baselines.len() as u64; "telemetry baselines restored from {}", path.display());
                recorder().restore_baselines(saved);
            }
            Err(e) => log::warn!("telemetry baselines in {} not used (learning anew): {e}", path.display()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => log::warn!("cannot read the telemetry baselines {}: {e}", path.display()),
    }
}

/// The thresholds of `[telemetry]`.
pub fn telemetry_params(t: &crate::config::Telemetry) -> Params {
    Params {
        min_plate_height_px: t.min_plate_height_px,
        max_plate_height_px: t.max_plate_height_px,
        height_window: t.height_window.max(1),
        rate_drop_ratio: t.rate_drop_ratio,
        min_expected_reads_per_hour: t.min_expected_reads_per_hour,
        learn_weeks: t.learn_weeks.max(1),
    }
}

/// Starts the listener (when `[metrics] listen` is set) and the health loop; both end when `stop` is
/// cancelled.
pub async fn start(cfg: &Config, sources: Arc<Sources>, stop: CancellationToken) -> anyhow::Result<Observer> {
    recorder().configure_telemetry(cfg.telemetry.enabled.then(|| telemetry_params(&cfg.telemetry)));
    let baselines = baselines_path(cfg);
    if cfg.telemetry.enabled {
        restore(&baselines);
    }
    let server = match cfg.metrics.listen_addr() {
        None => None,
        Some(addr) => {
            let addr = addr.map_err(anyhow::Error::msg).context("metrics.listen")?;
            let stopped = stop.clone().cancelled_owned();
            // A taken port must not keep the box from reading plates: said loudly, and the daemon runs on.
            match crate::observe::server::serve(addr, sources.clone(), stopped).await {
                Ok(h) => {
                    log::info!(listen = addr.to_string().as_str(); "metrics, healthz and readyz listening (plain HTTP)");
                    Some(h)
                }
                Err(e) => {
                    log::error!(listen = addr.to_string().as_str(); "cannot listen for metrics on {addr} (metrics.listen): {e}; running without /metrics, /healthz and /readyz");
                    None
                }
            }
        }
    };
    let (src, path, stopping) = (sources.clone(), baselines.clone(), stop.clone());
    let health_loop = tokio::spawn(async move {
        let mut tick = tokio::time::interval(TICK);
        let mut last_save = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.cancelled() => return,
            }
            // Keeps the outage clock running between health checks.
            let _ = src.uplink_down_for();
            recorder().tick(jiff::Timestamp::now().as_millisecond());
            if last_save.elapsed() >= SAVE_EVERY {
                last_save = tokio::time::Instant::now();
                let p = path.clone();
                let _ = tokio::task::spawn_blocking(move || save(&p)).await;
            }
        }
    });
    Ok(Observer { sources, server, health_loop, stop, baselines })
}

impl Observer {
    /// The health summary as the MQTT status carries it.
    pub fn status_source(&self) -> crate::uplink::StatusSource {
        let s = self.sources.clone();
        Arc::new(move || serde_json::to_value(s.health()).ok())
    }

    /// Waits for the listener and the loop to end (after `stop` is cancelled); saves the baselines.
    pub async fn stop(self) {
        self.stop.cancel();
        if let Some(h) = self.server {
            let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), self.health_loop).await;
        let p = self.baselines;
        let _ = tokio::task::spawn_blocking(move || save(&p)).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_telemetry_defaults_are_the_config_defaults() {
        assert_eq!(
            super::telemetry_params(&crate::config::Telemetry::default()),
            crate::observe::telemetry::Params::default()
        );
    }
}
