//! `polewatch run`: start-up order, the supervisor loop (watchdog, status, retention sweeps), reload on
//! SIGHUP and clean shutdown on SIGTERM/SIGINT.

use crate::access::AuditSink;
use crate::access::audit::AuditLog;
use crate::clock::SystemClock;
use crate::config::{self, Config, Loaded};
use crate::ops::watchdog::{self, CameraSilence, Verdict};
use crate::ops::{logging, notify};
use crate::retention::Policy;
use crate::store::sweeper::{self, SweepOutcome, SweepReport, SweepSettings};
use crate::store::{OpenOutcome, Store, StoreOptions};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Longest the uplink may take on shutdown: its drain of the outbox (see `uplink::session`) plus the
/// goodbye.
const UPLINK_STOP: Duration = Duration::from_secs(6);

/// What the supervisor knows, for STATUS= and the status log line.
#[derive(Default)]
struct Health {
    store_note: Option<String>,
    last_sweep: Option<SweepReport>,
    sweep_error: Option<String>,
}

impl Health {
    fn summary(&self, cfg: &Config) -> String {
        let cams = cfg.cameras.iter().filter(|c| c.enabled).count();
        let sweep = match (&self.sweep_error, &self.last_sweep) {
            (Some(e), _) => format!("last purge failed: {e}"),
            (None, Some(r)) => match &r.outcome {
                SweepOutcome::Refused(why) => format!("purge refused: {why}"),
                SweepOutcome::AwaitingConfirmation { expired, stored, .. } => {
                    format!("ALERT: purge of {expired} of {stored} reads waits for confirm_purge or a day")
                }
                _ => format!("last purge: {} deleted, {} held", r.purged, r.held_kept),
            },
            (None, None) => "no purge yet".to_string(),
        };
        let store = self.store_note.clone().unwrap_or_else(|| "store ok".into());
        format!("{store}; {cams} camera(s) configured; {sweep}")
    }
}

struct Shared {
    config: Mutex<Config>,
    health: Mutex<Health>,
    /// Cancelled on SIGTERM/SIGINT: what takes requests or starts work stops (the HTTPS API, the metrics
    /// listener and health loop, the retention sweeper, mid-sweep). A child of [`Shutdown::last`].
    stop: CancellationToken,
    /// Cancelled at shutdown once every camera has stopped: the analysis thread then works through the
    /// frames already decoded, closes the open tracks and ends.
    cameras_stopped: CancellationToken,
    uplink: Mutex<Option<Arc<crate::uplink::Stats>>>,
    hotlists: Arc<crate::pipeline::hotlists::Hotlists>,
    cameras: Arc<crate::ingest::CameraSet>,
    analysis: Arc<crate::pipeline::analyse::AnalyseStats>,
    analysis_settings: crate::pipeline::analyse::SharedSettings,
}

/// Shutdown as one token tree and one task tracker, cancelled in the order the data flows: `stop` first
/// (SIGTERM), then, once the cameras have stopped and their frames are analysed, `last` (the uplink,
/// which sends the outbox before it leaves). `stop` is a child of `last`, so cancelling `last` ends all.
struct Shutdown {
    last: CancellationToken,
    stop: CancellationToken,
    /// The tasks `stop` ends (the HTTPS API, the retention sweeper), waited for before the final flush.
    tasks: TaskTracker,
}

impl Shutdown {
    fn new() -> Shutdown {
        let last = CancellationToken::new();
        Shutdown { stop: last.child_token(), last, tasks: TaskTracker::new() }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not take the supervisor down with a poisoned lock.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub async fn run(config_path: PathBuf, loaded: Loaded) -> anyhow::Result<()> {
    for w in &loaded.warnings {
        log::warn!("config: {w}");
    }
    let cfg = loaded.config;
    let shutdown = Shutdown::new();
    // With [store] encryption on, no key, an exposed key file or the wrong key stops start-up here.
    let mut opts = StoreOptions::for_config(&cfg.store).context("cannot load the store's encryption key")?;
    opts.queue_for_upload = cfg.mqtt.enabled;
    // Certificates are checked before anything starts: a bad one fails loudly, at once.
    let uplink_settings = if cfg.mqtt.enabled {
        crate::uplink::tls::install_crypto_provider();
        Some(crate::uplink::Settings::from_config(&cfg).context("cannot set up the MQTT uplink")?)
    } else {
        None
    };
    let (store, outcome) = tokio::task::spawn_blocking(move || Store::open(&opts))
        .await
        .context("store open task failed")?
        .with_context(|| format!("cannot open the store at {}", cfg.store.path.display()))?;
    let store = Arc::new(store);
    let mut health = Health::default();
    match &outcome {
        OpenOutcome::Created => log::info!(store = store.path().display().to_string().as_str(); "created a new store"),
        OpenOutcome::Opened => log::info!(store = store.path().display().to_string().as_str(); "store opened"),
        OpenOutcome::RecoveredFromCorruption { moved_to, cause } => {
            // Already logged at error level by the store; keep it visible in STATUS= until restart.
            health.store_note =
                Some(format!("ALERT: corrupt store moved to {} ({cause}); new store in use", moved_to.display()));
        }
    }
    // Before anything can touch reads: every purge (and later every access) is audited. The chain must
    // verify and continue the one the key was last used with; a new chain is an operator's decision.
    let (st, key_file) = (store.clone(), cfg.access.audit_key_file.clone());
    let audit = Arc::new(
        tokio::task::spawn_blocking(move || AuditLog::open_verified(st, &key_file))
            .await
            .context("audit log open task failed")?
            .context("cannot open the audit log")?,
    );
    // Disk watermark steps are audited from here on.
    store.set_audit_sink(audit.clone());
    // What the store holds, beside it: if it is ever lost, the operator is told what went with it.
    let st = store.clone();
    match tokio::task::spawn_blocking(move || st.write_census()).await {
        Ok(Ok(c)) => log::info!("store holds {c}"),
        Ok(Err(e)) => log::warn!("cannot write the store census: {e}"),
        Err(e) => log::warn!("store census task failed: {e}"),
    }
    let target = crate::pipeline::hotlists::AlertTarget {
        site: cfg.site.site_id.clone(),
        device: cfg.site.device_id.clone(),
        max_packet_bytes: cfg.mqtt.max_packet_kib as usize * 1024,
    };
    let (st, files, days, max_retro) =
        (store.clone(), cfg.hotlists.files.clone(), cfg.hotlists.retroactive_days, cfg.hotlists.max_retroactive_alerts);
    let hotlists = Arc::new(
        tokio::task::spawn_blocking(move || {
            crate::pipeline::hotlists::Hotlists::load(st, &files, days, target)
                .map(|h| h.with_max_retroactive_alerts(max_retro))
        })
        .await
        .context("hotlist load task failed")?
        .context("cannot load the hotlists")?,
    );
    // A model that is missing, altered or computes garbage stops start-up here, before READY.
    let recognizer = match cfg.recognizer.ocr.is_some() {
        true => {
            let rc = cfg.recognizer.clone();
            let r = tokio::task::spawn_blocking(move || crate::recognize::Recognizer::from_config(&rc))
                .await
                .context("recognizer load task failed")?
                .context("cannot start the recognizer")?;
            log::info!(detector = r.has_detector(); "recognizer loaded and checked");
            Some(r)
        }
        false => {
            if cfg.cameras.iter().any(|c| c.enabled) {
                log::warn!("no OCR model configured ([recognizer.ocr]): camera frames are not analysed");
            }
            None
        }
    };
    let analysis_settings = crate::pipeline::analyse::Settings::from_config(&cfg);
    let cameras = start_cameras(&cfg);
    let frames = cameras.queue().clone();
    let shared = Arc::new(Shared {
        config: Mutex::new(cfg),
        health: Mutex::new(health),
        stop: shutdown.stop.clone(),
        cameras_stopped: CancellationToken::new(),
        uplink: Mutex::new(None),
        hotlists: hotlists.clone(),
        cameras,
        analysis: Arc::default(),
        analysis_settings: Arc::new(Mutex::new(Arc::new(analysis_settings))),
    });
    let summary = lock(&shared.health).summary(&lock(&shared.config));
    notify::ready(&summary);
    log::info!("polewatch {} running: {summary}", env!("CARGO_PKG_VERSION"));

    let sweeper = shutdown.tasks.spawn(sweep_loop(store.clone(), audit.clone(), shared.clone()));
    let mut uplink_waker = None;
    // One evidence service behind both doors (the HTTPS API and the central server's commands).
    let evidence = {
        let c = lock(&shared.config);
        let limits = crate::access::release::Limits {
            allowed_jurisdictions: c.access.allowed_jurisdictions.clone(),
            max_range_days: i64::from(c.access.max_release_days),
        };
        Arc::new(crate::evidence::Evidence::new(store.clone(), audit.clone(), limits))
    };
    let uplink = uplink_settings.map(|settings| {
        let handler = Arc::new(crate::ops::commands::DaemonCommands {
            store: store.clone(),
            hotlists: hotlists.clone(),
            audit: audit.clone(),
            evidence: evidence.clone(),
        });
        crate::uplink::Uplink::new(settings, store.clone(), handler)
    });
    // Metrics, health and ALPR telemetry (issue 16 §1): the listener and the health the MQTT status carries.
    let cfg_now = lock(&shared.config).clone();
    let sources = Arc::new(crate::observe::metrics::Sources::new(
        shared.cameras.clone(),
        {
            let a = shared.analysis.clone();
            Box::new(move || crate::observe::metrics::AnalysisCounts {
                frames: a.frames.load(Ordering::Relaxed),
                frames_failed: a.frames_failed.load(Ordering::Relaxed),
                plates_read: a.plates_read.load(Ordering::Relaxed),
                store_errors: a.store_errors.load(Ordering::Relaxed),
            })
        },
        uplink.as_ref().map(|u| u.stats()),
        store.clone(),
        Duration::from_secs(cfg_now.metrics.uplink_outage_budget_s),
    ));
    let observer = crate::ops::observer::start(&cfg_now, sources, shutdown.stop.clone()).await?;
    let uplink = uplink.map(|u| {
        let every = Duration::from_secs(cfg_now.metrics.status_interval_s);
        let u = u.with_status(observer.status_source(), every, crate::observe::recorder().changed.clone());
        *lock(&shared.uplink) = Some(u.stats());
        uplink_waker = Some(u.waker());
        tokio::spawn(u.run(shutdown.last.clone()))
    });
    if uplink.is_some() {
        let cfg = lock(&shared.config).clone();
        let monthly = crate::ops::monthly_report::Monthly {
            store: store.clone(),
            audit_log: audit.clone(),
            config: cfg,
            uplink: uplink_waker.clone(),
        };
        tokio::spawn(monthly.run());
    }
    let sink = Arc::new(crate::pipeline::reads::ReadSink {
        store: store.clone(),
        hotlists: hotlists.clone(),
        uplink: uplink_waker,
    });
    let frame_drain = spawn_frame_analysis(recognizer, shared.analysis_settings.clone(), frames, sink, shared.clone());
    let api_handle = axum_server::Handle::<std::net::SocketAddr>::new();
    let parts = ApiParts {
        store: store.clone(),
        audit: audit.clone(),
        evidence,
        hotlists: hotlists.clone(),
        cameras: shared.cameras.clone(),
        snapshots: shared.analysis.snapshots.clone(),
    };
    let api = start_api(&cfg_now, parts, api_handle.clone(), &shutdown.tasks).await?;
    {
        // axum-server stops through its handle: the stop token drives it like everything else.
        let stop = shutdown.stop.clone();
        shutdown.tasks.spawn(async move {
            stop.cancelled().await;
            api_handle.graceful_shutdown(Some(Duration::from_secs(2)));
        });
    }
    let outcome =
        supervise(&config_path, &shared, &sweeper, uplink.as_ref(), &store, api.as_ref(), &audit, &frame_drain).await;
    shutdown.stop.cancel();
    observer.stop().await;

    // Shutdown in the order the data flows, so that nothing already seen is lost: cameras, then the
    // frames they decoded, then the open tracks (their reads and alerts stored, alerts in the outbox),
    // then the uplink sends what the outbox holds, then the store is flushed. What the uplink cannot send
    // in time (broker down) stays in the outbox and goes at the next start.
    notify::stopping();
    let stop_timeout = Duration::from_secs(lock(&shared.config).service.stop_timeout_s);
    let t0 = std::time::Instant::now();
    let cams = shared.cameras.clone();
    let stopping = tokio::task::spawn_blocking(move || cams.stop_all());
    if tokio::time::timeout(Duration::from_secs(10), stopping).await.is_err() {
        log::warn!("cameras did not stop within 10 s; abandoning them");
    }
    log::info!(ms = t0.elapsed().as_millis() as u64; "cameras stopped");
    shared.cameras_stopped.cancel();
    let drained = tokio::task::spawn_blocking(move || frame_drain.join());
    match tokio::time::timeout(stop_timeout, drained).await {
        Ok(_) => log::info!(ms = t0.elapsed().as_millis() as u64; "decoded frames analysed and open tracks closed"),
        Err(_) => log::warn!("frame analysis did not finish within {stop_timeout:?}; abandoning it"),
    }
    shutdown.last.cancel();
    if let Some(u) = uplink {
        // The uplink sends what waits in the outbox (alerts first) within its own deadline, then leaves.
        if tokio::time::timeout(UPLINK_STOP, u).await.is_err() {
            log::warn!(
                "MQTT uplink did not stop within {UPLINK_STOP:?}; abandoning it (unsent messages stay in the outbox)"
            );
        }
    }
    shutdown.tasks.close();
    if tokio::time::timeout(stop_timeout, shutdown.tasks.wait()).await.is_err() {
        log::warn!("the HTTPS API or the retention sweeper did not stop within {stop_timeout:?}; abandoning them");
    }
    let flushed = tokio::task::spawn_blocking(move || {
        if let Err(e) = store.write_census() {
            log::warn!("cannot write the store census: {e}");
        }
        store.flush()
    })
    .await;
    match flushed {
        Ok(Ok(())) => log::info!("store flushed; polewatch stopped"),
        Ok(Err(e)) => log::error!("final store flush failed: {e}"),
        Err(e) => log::error!("final store flush task failed: {e}"),
    }
    outcome
}

// The components whose liveness gates the watchdog, each passed as it is held (one more would be a struct).
#[allow(clippy::too_many_arguments)]
async fn supervise(
    config_path: &std::path::Path,
    shared: &Arc<Shared>,
    sweeper: &JoinHandle<()>,
    uplink: Option<&JoinHandle<()>>,
    store: &Arc<Store>,
    api: Option<&JoinHandle<()>>,
    audit: &Arc<AuditLog>,
    analysis: &std::thread::JoinHandle<()>,
) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot install SIGHUP handler")?;
    let wd_period = notify::watchdog_period().map(|p| p / 2).unwrap_or(Duration::from_secs(3600));
    let mut watchdog = tokio::time::interval(wd_period);
    // systemd's WatchdogSec: cameras all silent for longer than this withhold the ping (ops::watchdog).
    let wd_window = notify::watchdog_period().unwrap_or(wd_period * 2);
    let mut silence = CameraSilence::default();
    let mono = std::time::Instant::now();
    let status_every = lock(&shared.config).service.status_log_interval_s;
    let mut status_tick =
        tokio::time::interval(Duration::from_secs(if status_every == 0 { 86_400 } else { status_every }));
    status_tick.tick().await;
    loop {
        tokio::select! {
            _ = term.recv() => { log::info!("SIGTERM: shutting down"); return Ok(()); }
            _ = int.recv() => { log::info!("SIGINT: shutting down"); return Ok(()); }
            _ = hup.recv() => reload(config_path, shared, audit.as_ref()),
            _ = watchdog.tick() => {
                let st = store.clone();
                let reopen = tokio::task::spawn_blocking(move || st.needs_reopen()).await.unwrap_or(false);
                // Only a healthy supervisor pets the watchdog; a dead component lets systemd restart us.
                if sweeper.is_finished() {
                    log::error!("retention sweeper task has died; withholding watchdog ping");
                } else if uplink.is_some_and(|u| u.is_finished()) {
                    log::error!("MQTT uplink task has died; withholding watchdog ping");
                } else if api.is_some_and(|a| a.is_finished()) {
                    log::error!("HTTPS API task has died; withholding watchdog ping");
                } else if reopen {
                    // the store met ENOSPC and refuses writes until reopened; space is back: exit non-zero so
                    // systemd (Restart=) starts the daemon again, which reopens the store.
                    log::error!("the store met a full disk and must be reopened now that space is back: restarting");
                    return Err(anyhow::anyhow!("store write failed on a full disk; restart to reopen it"));
                } else {
                    let alive = !analysis.is_finished();
                    let silences = silence.observe(mono.elapsed().as_millis() as u64, &frames_decoded(&shared.cameras));
                    match watchdog::decide(alive, &silences, wd_window) {
                        Verdict::Pet => notify::watchdog(),
                        Verdict::AnalysisDead => {
                            log::error!("frame analysis thread has died; withholding watchdog ping");
                            continue;
                        }
                        Verdict::CamerasSilent { cameras, shortest } => log::error!(
                            "all {cameras} camera(s) silent for {shortest:?} or more (watchdog window {wd_window:?}); \
                             withholding watchdog ping"
                        ),
                    }
                    // Disk watermarks are read at every write of reads; here too, so a step (and its
                    // recovery) is seen while no reads come in.
                    let st = store.clone();
                    let _ = tokio::task::spawn_blocking(move || st.disk_level()).await;
                    let summary = format!("{}{}", status_line(shared), disk_note(store));
                    notify::status(&summary);
                }
            }
            _ = status_tick.tick() => {
                if status_every > 0 {
                    log::info!("status: {}{}", status_line(shared), disk_note(store));
                }
                if uplink.is_some() {
                    let max = lock(&shared.config).mqtt.max_queued_reads;
                    bound_upload_queue(store, max).await;
                }
            }
        }
    }
}

/// Starts the HTTPS API and console when `[api] enabled`.
/// What the daemon lends the HTTPS API.
struct ApiParts {
    store: Arc<Store>,
    audit: Arc<AuditLog>,
    evidence: Arc<crate::evidence::Evidence>,
    hotlists: Arc<crate::pipeline::hotlists::Hotlists>,
    cameras: Arc<crate::ingest::CameraSet>,
    snapshots: Arc<crate::pipeline::snapshot::Snapshots>,
}

async fn start_api(
    cfg: &Config,
    parts: ApiParts,
    handle: axum_server::Handle<std::net::SocketAddr>,
    tasks: &TaskTracker,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let ApiParts { store, audit, evidence, hotlists, cameras, snapshots } = parts;
    if !cfg.api.enabled {
        return Ok(None);
    }
    crate::uplink::tls::install_crypto_provider();
    let addr: std::net::SocketAddr = cfg.api.listen.parse().context("api.listen")?;
    let state_dir = cfg.store.path.parent().map(|p| p.to_path_buf()).unwrap_or_else(|| PathBuf::from("."));
    let (cert, key) = match (&cfg.api.tls_cert, &cfg.api.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => {
            let (c, k) = crate::api::tls::generated_paths(&state_dir);
            crate::api::tls::ensure_self_signed(&c, &k, &[addr.ip().to_string(), "localhost".into()])?;
            (c, k)
        }
    };
    let tls = crate::api::tls::server_config(&cert, &key)?;
    let policy = crate::access::users::AccessPolicy::from_config(&cfg.access, &cfg.api);
    let users = Arc::new(crate::access::service::UserService::new(store.clone(), policy, audit.clone()));
    let device_key = crate::access::export::DeviceKey::load_or_create(&cfg.access.device_key_file)?;
    let state = Arc::new(crate::api::ApiState {
        store: store.clone(),
        users,
        audit: audit.clone(),
        audit_log: audit.clone(),
        evidence,
        config: cfg.clone(),
        device_key,
        export_dir: state_dir.join("exports"),
        hotlists: Some(hotlists.clone()),
        cameras: Some(cameras.clone()),
        snapshots: Some(snapshots),
    });
    log::info!(listen = cfg.api.listen.as_str(); "HTTPS console listening");
    Ok(Some(tasks.spawn(async move {
        if let Err(e) = crate::api::serve(state, addr, tls, handle).await {
            log::error!("HTTPS API stopped: {e}");
        }
    })))
}

/// One pipeline per enabled camera, all feeding one bounded queue (four frames per camera, resized by
/// each reload). A camera whose credentials cannot be read is logged and left out; the others start.
fn start_cameras(cfg: &Config) -> Arc<crate::ingest::CameraSet> {
    let frames = Arc::new(crate::ingest::FrameQueue::new(crate::ingest::queue::FRAMES_PER_CAMERA));
    let set = Arc::new(crate::ingest::CameraSet::new(frames, crate::ingest::camera::Timing::default()));
    set.apply(&cfg.cameras);
    set
}

/// Each running camera's id and frames decoded so far, for the watchdog.
fn frames_decoded(cameras: &crate::ingest::CameraSet) -> Vec<(Arc<str>, u64)> {
    cameras
        .states()
        .into_iter()
        .filter_map(|(id, _)| cameras.with(&id, |c| c.stats().frames_decoded.load(Ordering::Relaxed)).map(|n| (id, n)))
        .collect()
}

/// Frames through the recognizer and tracker into the store; without an OCR model they are only
/// released so that the queue keeps its newest frames.
fn spawn_frame_analysis(
    recognizer: Option<crate::recognize::Recognizer>,
    settings: crate::pipeline::analyse::SharedSettings,
    frames: Arc<crate::ingest::FrameQueue>,
    sink: Arc<crate::pipeline::reads::ReadSink>,
    shared: Arc<Shared>,
) -> std::thread::JoinHandle<()> {
    let stats = shared.analysis.clone();
    // Ends once the cameras have stopped and the frames they decoded are analysed.
    let queue = frames.clone();
    let stopping = move || shared.cameras_stopped.is_cancelled() && queue.is_empty();
    std::thread::spawn(move || match recognizer {
        Some(rec) => crate::pipeline::analyse::run(rec, settings, frames, sink, stats, stopping),
        None => {
            while !stopping() {
                let _ = frames.pop(Duration::from_millis(200));
            }
        }
    })
}

/// The disk watermark step for the status line, when it is not `ok`.
fn disk_note(store: &Store) -> String {
    match store.disk_state() {
        Some(d) if d.level != crate::store::disk::DiskLevel::Ok => format!(
            "; {}disk {}: {:.1}% used, {} MiB free",
            if d.level >= crate::store::disk::DiskLevel::NoFrames { "ALERT: " } else { "" },
            d.level.as_str(),
            d.used_pct,
            d.avail_bytes / (1024 * 1024)
        ),
        _ => String::new(),
    }
}

fn status_line(shared: &Shared) -> String {
    let mut s = lock(&shared.health).summary(&lock(&shared.config));
    let cams = shared.cameras.states();
    if !cams.is_empty() {
        let states: Vec<String> = cams.iter().map(|(id, state)| format!("{id}={state}")).collect();
        s.push_str(&format!("; cameras: {}", states.join(", ")));
    }
    let a = &shared.analysis;
    let frames = a.frames.load(Ordering::Relaxed);
    if frames > 0 {
        s.push_str(&format!(
            "; {} frames analysed, {} vehicle reads stored{}",
            frames,
            a.vehicle_reads.load(Ordering::Relaxed),
            match a.store_errors.load(Ordering::Relaxed) {
                0 => String::new(),
                n => format!(", {n} NOT STORED"),
            }
        ));
    }
    if let Some(u) = lock(&shared.uplink).as_ref() {
        let connected = u.connected.load(Ordering::Relaxed);
        s.push_str(if connected { "; mqtt connected" } else { "; mqtt NOT connected" });
    }
    s
}

/// Keeps the upload queue within its bound: warns at 90%, then drops the oldest entries (the reads stay
/// stored on the box and can still be exported).
async fn bound_upload_queue(store: &Arc<Store>, max: u64) {
    let st = store.clone();
    let result = tokio::task::spawn_blocking(move || -> crate::store::Result<(u64, usize)> {
        // The O(1) span is an upper bound; count exactly only when it says we may be near the bound.
        if st.upload_queue_span()? < max * 9 / 10 {
            return Ok((0, 0));
        }
        let len = st.upload_queue_len() as u64;
        let dropped = if len > max { st.upload_queue_drop_oldest((len - max) as usize)? } else { 0 };
        Ok((len, dropped))
    })
    .await;
    match result {
        Ok(Ok((len, dropped))) if dropped > 0 => {
            log::error!(dropped = dropped as u64, waiting = len, max = max; "upload queue full: the oldest {dropped} reads will not be sent (they stay stored)")
        }
        Ok(Ok((len, _))) if len >= max * 9 / 10 => {
            log::warn!(waiting = len, max = max; "upload queue at {}% of its bound", len * 100 / max)
        }
        Ok(Ok(_)) => {}
        Ok(Err(e)) => log::error!("upload queue check failed: {e}"),
        Err(e) => log::error!("upload queue check task failed: {e}"),
    }
}

/// Re-reads the configuration; applies what can change at run time, keeps the old one on error.
fn reload(config_path: &std::path::Path, shared: &Shared, audit: &dyn crate::access::AuditSink) {
    notify::reloading();
    let loaded = config::load(config_path);
    let entry = crate::access::NewAuditEntry {
        user: "system".into(),
        source: "daemon".into(),
        action: Some(crate::access::Action::ConfigReloaded),
        object: config_path.display().to_string(),
        outcome: Some(if loaded.is_ok() { crate::access::Outcome::Ok } else { crate::access::Outcome::Error }),
        detail: loaded.as_ref().err().map(|e| e.to_string()).unwrap_or_default(),
        ..Default::default()
    };
    if let Err(e) = audit.record(entry) {
        log::error!("configuration reload refused: the audit log cannot record it: {e}");
        notify::ready(&status_line(shared));
        return;
    }
    match loaded {
        Ok(new) => {
            for w in &new.warnings {
                log::warn!("config: {w}");
            }
            let mut cur = lock(&shared.config);
            if new.config.store.path != cur.store.path
                || new.config.store.cache_capacity_mb != cur.store.cache_capacity_mb
            {
                log::warn!("store.path and store.cache_capacity_mb change only on restart; keeping the running values");
            }
            if new.config.mqtt != cur.mqtt {
                log::warn!("[mqtt] changes take effect on restart; keeping the running connection");
            }
            logging::set_level(new.config.logging.level);
            if let Err(e) = shared.hotlists.reload_files(&new.config.hotlists.files) {
                log::error!("hotlist reload failed, keeping the lists in force:\n{e}");
            }
            // Cameras stop and start on their own thread: a teardown must not hold up the watchdog.
            let (set, cams) = (shared.cameras.clone(), new.config.cameras.clone());
            let spawned = std::thread::Builder::new().name("cam-reload".into()).spawn(move || {
                let r = set.apply(&cams);
                log::info!(
                    "cameras reloaded: started {:?}, restarted {:?}, stopped {:?}, unchanged {:?}",
                    r.started,
                    r.restarted,
                    r.stopped,
                    r.kept
                );
            });
            if let Err(e) = spawned {
                log::error!("camera reload not started: {e}");
            }
            *lock(&shared.analysis_settings) = Arc::new(crate::pipeline::analyse::Settings::from_config(&new.config));
            crate::observe::recorder().configure_telemetry(
                new.config.telemetry.enabled.then(|| crate::ops::observer::telemetry_params(&new.config.telemetry)),
            );
            let mut next = new.config;
            next.store.path = cur.store.path.clone();
            next.store.cache_capacity_mb = cur.store.cache_capacity_mb;
            next.mqtt = cur.mqtt.clone();
            *cur = next;
            log::info!(files = new.files.len(); "configuration reloaded");
        }
        Err(e) => log::error!("configuration reload failed, keeping the running configuration:\n{e}"),
    }
    let summary = lock(&shared.health).summary(&lock(&shared.config));
    notify::ready(&summary);
}

/// Sweeps at start (a box that was off past a cutoff catches up at once), then every interval, until the
/// stop token; a sweep under way stops at its next batch.
async fn sweep_loop(store: Arc<Store>, audit: Arc<AuditLog>, shared: Arc<Shared>) {
    let mut wait = Duration::ZERO;
    loop {
        tokio::select! {
            _ = shared.stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let (policy, settings, interval) = {
            let c = lock(&shared.config);
            let r = &c.store.retention;
            (
                Policy::from(r),
                SweepSettings { batch_size: r.batch_size, batch_pause: Duration::from_millis(r.batch_pause_ms) },
                Duration::from_secs(r.sweep_interval_s),
            )
        };
        let (st, au, sh) = (store.clone(), audit.clone(), shared.clone());
        let result = tokio::task::spawn_blocking(move || {
            sweeper::sweep(&st, &policy, &SystemClock, settings, &sh.stop, Some(au.as_ref() as &dyn AuditSink))
        })
        .await;
        let mut h = lock(&shared.health);
        match result {
            Ok(Ok(report)) => {
                crate::observe::recorder().swept(jiff::Timestamp::now().as_millisecond(), report.purged);
                h.last_sweep = Some(report);
                h.sweep_error = None;
            }
            Ok(Err(e)) => {
                log::error!("retention sweep failed: {e}");
                h.sweep_error = Some(e.to_string());
            }
            Err(e) => {
                log::error!("retention sweep task failed: {e}");
                h.sweep_error = Some(e.to_string());
            }
        }
        let summary = h.summary(&lock(&shared.config));
        drop(h);
        notify::status(&summary);
        wait = interval;
    }
}
