//! One camera: its pipeline on its own thread, sampling, stall detection, teardown with a deadline and
//! reconnection with backoff. A stalled or misconfigured camera blocks only its own thread.

use super::backoff::delay;
use super::state::{classify, CameraState, Failure};
use super::{Frame, FrameQueue};
use crate::config::{self, Transport};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters for status and metrics.
#[derive(Default)]
pub struct CameraStats {
    pub frames_decoded: AtomicU64,
    pub frames_sampled: AtomicU64,
    pub connects: AtomicU64,
    /// Monotonic ms (since the camera started) of the last buffer; 0 = none in this connection.
    last_buffer_ms: AtomicI64,
}

/// Timeouts; the defaults follow R-IN3.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// No buffer for this long while streaming: the camera is stalled.
    pub stall: Duration,
    /// No first buffer within this long after starting: unreachable or stalled.
    pub connect: Duration,
    /// Longest wait for a pipeline to reach NULL before it is abandoned.
    pub teardown: Duration,
    /// Multiplies the backoff schedule (tests shorten it).
    pub backoff_scale: f64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing { stall: Duration::from_secs(5), connect: Duration::from_secs(15), teardown: Duration::from_secs(5), backoff_scale: 1.0 }
    }
}

pub struct Camera {
    pub id: Arc<str>,
    state: Arc<Mutex<CameraState>>,
    stats: Arc<CameraStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("GStreamer is not usable: {0}")]
    Init(String),
    #[error("camera {camera}: credentials file {path}: {reason}")]
    Credentials { camera: String, path: String, reason: String },
}

/// The credentials of a camera: inline, or `user:password` on the first line of its credentials file.
fn credentials(c: &config::Camera) -> Result<Option<(String, String)>, IngestError> {
    if let Some(p) = &c.credentials_file {
        let err = |reason: String| IngestError::Credentials { camera: c.id.clone(), path: p.display().to_string(), reason };
        let text = std::fs::read_to_string(p).map_err(|e| err(e.to_string()))?;
        let line = text.lines().next().unwrap_or_default();
        let (u, pw) = line.split_once(':').ok_or_else(|| err("expected `user:password` on the first line".into()))?;
        return Ok(Some((u.to_string(), pw.to_string())));
    }
    Ok(c.username.clone().map(|u| (u, c.password.clone().unwrap_or_default())))
}

/// The pipeline of a camera. Decoding is left to decodebin, which picks the highest-ranked decoder present
/// (hardware ones rank above libav where their plugins install them); the appsink takes the decoder's own
/// raw format, so nothing is converted for frames that are not analysed.
fn build(c: &config::Camera, creds: &Option<(String, String)>) -> Result<gst::Pipeline, String> {
    let file = c.url.starts_with("file://");
    let desc = if file {
        "uridecodebin name=src ! queue max-size-buffers=2 ! appsink name=sink max-buffers=1 drop=true sync=true caps=video/x-raw".to_string()
    } else {
        "rtspsrc name=src ! decodebin ! queue max-size-buffers=2 leaky=downstream ! appsink name=sink max-buffers=1 drop=true sync=false caps=video/x-raw"
            .to_string()
    };
    let pipeline = gst::parse::launch(&desc).map_err(|e| e.to_string())?.downcast::<gst::Pipeline>().map_err(|_| "not a pipeline".to_string())?;
    let src = pipeline.by_name("src").ok_or("no source element")?;
    if file {
        src.set_property("uri", &c.url);
    } else {
        src.set_property("location", &c.url);
        src.set_property("latency", c.latency_ms);
        let protocols = match c.transport {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Auto => "tcp+udp+udp-mcast",
        };
        src.set_property_from_str("protocols", protocols);
        if let Some((u, p)) = creds {
            src.set_property("user-id", u);
            src.set_property("user-pw", p);
        }
    }
    Ok(pipeline)
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Camera {
    /// Starts the camera's thread; it streams into `queue` until [`Camera::stop`].
    pub fn spawn(c: &config::Camera, queue: Arc<FrameQueue>, timing: Timing) -> Result<Camera, IngestError> {
        gst::init().map_err(|e| IngestError::Init(e.to_string()))?;
        let creds = credentials(c)?;
        let id: Arc<str> = c.id.as_str().into();
        let state = Arc::new(Mutex::new(if c.enabled { CameraState::Connecting } else { CameraState::Disabled }));
        let stats = Arc::new(CameraStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = if c.enabled {
            let (cfg, id2, st, stats2, stop2) = (c.clone(), id.clone(), state.clone(), stats.clone(), stop.clone());
            Some(
                std::thread::Builder::new()
                    .name(format!("cam-{}", c.id))
                    .spawn(move || run(cfg, creds, id2, queue, st, stats2, stop2, timing))
                    .map_err(|e| IngestError::Init(e.to_string()))?,
            )
        } else {
            None
        };
        Ok(Camera { id, state, stats, stop, thread })
    }

    pub fn state(&self) -> CameraState {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn stats(&self) -> &CameraStats {
        &self.stats
    }

    /// Stops the thread (within the teardown deadline plus one backoff step).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn set(state: &Mutex<CameraState>, s: CameraState) {
    *state.lock().unwrap_or_else(|p| p.into_inner()) = s;
}

#[allow(clippy::too_many_arguments)]
fn run(
    cfg: config::Camera,
    creds: Option<(String, String)>,
    id: Arc<str>,
    queue: Arc<FrameQueue>,
    state: Arc<Mutex<CameraState>>,
    stats: Arc<CameraStats>,
    stop: Arc<AtomicBool>,
    timing: Timing,
) {
    let started = Instant::now();
    let mono_ms = move || started.elapsed().as_millis() as i64;
    let every = Duration::from_secs_f64(1.0 / cfg.analysis_fps.max(0.01));
    let mut attempt = 0u32;
    // One line per kind of failure per minute: a camera down for a week must not flood the journal.
    let mut last_logged: HashMap<Failure, Instant> = HashMap::new();
    while !stop.load(Ordering::Relaxed) {
        set(&state, CameraState::Connecting);
        stats.last_buffer_ms.store(0, Ordering::Relaxed);
        let failure = match build(&cfg, &creds) {
            Ok(pipeline) => {
                let f = stream(&pipeline, &id, &queue, &state, &stats, &stop, timing, every, &mono_ms, &mut attempt);
                teardown(pipeline, timing.teardown, &id);
                f
            }
            Err(e) => {
                log::error!(camera = id.as_ref(); "cannot build the pipeline: {e}");
                Some(Failure::UnsupportedCodec)
            }
        };
        let Some(reason) = failure else { break };
        set(&state, CameraState::Backoff { attempt, reason });
        if last_logged.get(&reason).is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            log::warn!(camera = id.as_ref(), state = reason.to_string().as_str(), attempt = attempt; "camera not streaming ({reason}); retrying in {:?}", delay(attempt));
            last_logged.insert(reason, Instant::now());
        }
        let wait = delay(attempt).mul_f64(timing.backoff_scale);
        attempt = attempt.saturating_add(1);
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20).min(wait));
        }
    }
}

/// Plays the pipeline until it fails or `stop`; returns why it ended (None: asked to stop).
#[allow(clippy::too_many_arguments)]
fn stream(
    pipeline: &gst::Pipeline,
    id: &Arc<str>,
    queue: &Arc<FrameQueue>,
    state: &Mutex<CameraState>,
    stats: &Arc<CameraStats>,
    stop: &AtomicBool,
    timing: Timing,
    every: Duration,
    mono_ms: &dyn Fn() -> i64,
    attempt: &mut u32,
) -> Option<Failure> {
    let Some(sink) = pipeline.by_name("sink").and_then(|e| e.downcast::<gst_app::AppSink>().ok()) else {
        return Some(Failure::Other);
    };
    let (id2, q, st) = (id.clone(), queue.clone(), stats.clone());
    let mono0 = mono_ms();
    let start = Instant::now();
    let last_sampled: Arc<Mutex<Option<Instant>>> = Arc::default();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let seq = st.frames_decoded.fetch_add(1, Ordering::Relaxed);
                st.last_buffer_ms.store(mono0 + start.elapsed().as_millis() as i64 + 1, Ordering::Relaxed);
                let mut last = last_sampled.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_some_and(|t| t.elapsed() < every) {
                    return Ok(gst::FlowSuccess::Ok);
                }
                *last = Some(Instant::now());
                let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else { return Ok(gst::FlowSuccess::Ok) };
                let Some(s0) = caps.structure(0) else { return Ok(gst::FlowSuccess::Ok) };
                let (Ok(w), Ok(h)) = (s0.get::<i32>("width"), s0.get::<i32>("height")) else { return Ok(gst::FlowSuccess::Ok) };
                let format = s0.get::<&str>("format").unwrap_or("unknown").to_string();
                let Ok(map) = buffer.map_readable() else { return Ok(gst::FlowSuccess::Ok) };
                q.push(Frame { camera: id2.clone(), seq, captured_at_ms: now_ms(), width: w as u32, height: h as u32, format, data: map.as_slice().to_vec() });
                st.frames_sampled.fetch_add(1, Ordering::Relaxed);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let Some(bus) = pipeline.bus() else { return Some(Failure::Other) };
    if pipeline.set_state(gst::State::Playing).is_err() {
        // A source that fails to start (missing file, bad device) posts why on the bus.
        return Some(match bus.timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error]).as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Error(e)) => classify(&e.error().to_string(), &e.debug().map(|d| d.to_string()).unwrap_or_default()),
            _ => Failure::Other,
        });
    }
    let started = Instant::now();
    let mut streaming = false;
    while !stop.load(Ordering::Relaxed) {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            match msg.view() {
                gst::MessageView::Error(e) => {
                    let message = e.error().to_string();
                    let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
                    log::debug!(camera = id.as_ref(); "pipeline error: {message} ({debug})");
                    return Some(classify(&message, &debug));
                }
                gst::MessageView::Eos(_) => return Some(Failure::EndOfStream),
                _ => {}
            }
        }
        let last = stats.last_buffer_ms.load(Ordering::Relaxed);
        if last > 0 && !streaming {
            streaming = true;
            *attempt = 0;
            stats.connects.fetch_add(1, Ordering::Relaxed);
            set(state, CameraState::Streaming);
            log::info!(camera = id.as_ref(); "camera streaming");
        }
        if streaming && mono_ms() - last > timing.stall.as_millis() as i64 {
            return Some(Failure::Stalled);
        }
        if !streaming && started.elapsed() > timing.connect {
            return Some(Failure::Unreachable);
        }
    }
    None
}

/// Sets the pipeline to NULL on its own thread; a pipeline stuck in teardown is abandoned after the
/// deadline rather than blocking the camera (or anything else) forever.
fn teardown(pipeline: gst::Pipeline, deadline: Duration, id: &Arc<str>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new().name("cam-teardown".into()).spawn(move || {
        let _ = pipeline.set_state(gst::State::Null);
        let _ = tx.send(());
    });
    if spawned.is_ok() && rx.recv_timeout(deadline).is_err() {
        log::error!(camera = id.as_ref(); "pipeline did not stop within {deadline:?}; abandoned");
    }
}
