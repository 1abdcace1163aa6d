//! One camera: its pipeline on its own thread, the decoder chain linked once the source announces its
//! codec, sampling, stall detection, teardown with a deadline and reconnection with backoff. A stalled or
//! misconfigured camera blocks only its own thread.
//!
//! ```text
//! rtsp://   rtspsrc ─(pad-added: RTP caps)─► depay ! parse ! decoder ┐
//! other     urisourcebin ! parsebin ─(pad-added: elementary caps)─► decoder ┤
//!             sampler (probe on the decoder's output: unsampled frames dropped here) ◄┘
//!             ─► queue (leaky, 1 frame) ! videoconvert ! video/x-raw,format=I420 ! appsink (max-buffers=1, drop)
//!             ─► motion gate (optional) ─► FrameQueue
//! ```

use super::backoff::delay;
use super::decoder::{self, Chain, Codec};
use super::motion::MotionGate;
use super::sampler::Sampler;
use super::settings::{self, Transport};
use super::state::{CameraState, Failure, LogLimit, classify_error};
use super::{Frame, FrameQueue, PixelFormat};
use crate::clock::now_ms;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Counters for status and metrics (since the camera started, across reconnections).
#[derive(Default)]
pub struct CameraStats {
    pub frames_decoded: AtomicU64,
    /// Frames the sampler took (the analysis rate).
    pub frames_sampled: AtomicU64,
    /// Of the sampled frames, those the motion gate skipped; the rest went to the queue.
    pub frames_gated: AtomicU64,
    pub connects: AtomicU64,
    /// Monotonic ms (since the camera started) of the last decoded frame; 0 = none in this connection.
    last_buffer_ms: AtomicI64,
    /// Wall-clock ms of the last decoded frame (0: none yet), for metrics and health.
    pub last_frame_wall_ms: AtomicI64,
}

/// Timeouts; the defaults follow R-IN3.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// No buffer for this long while streaming: the camera is stalled.
    pub stall: Duration,
    /// No first buffer within this long after starting: unreachable (no answer) or stalled (the camera
    /// answered but sent no frame). Also rtspsrc's TCP timeout, so no attempt sits longer in "connecting".
    pub connect: Duration,
    /// Longest wait for a pipeline to reach NULL before it is abandoned.
    pub teardown: Duration,
    /// Multiplies the backoff schedule (tests shorten it).
    pub backoff_scale: f64,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            stall: Duration::from_secs(5),
            connect: Duration::from_secs(5),
            teardown: Duration::from_secs(5),
            backoff_scale: 1.0,
        }
    }
}

pub struct Camera {
    pub id: Arc<str>,
    config: settings::Camera,
    creds: Option<(String, String)>,
    state: Arc<Mutex<CameraState>>,
    stats: Arc<CameraStats>,
    chain: Arc<Mutex<Option<Chain>>>,
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

/// The credentials of a camera: inline, or `user:password` on the first line of its credentials file
/// (read at each start, so a reload picks up a changed file).
pub fn credentials(c: &settings::Camera) -> Result<Option<(String, String)>, IngestError> {
    if let Some(p) = &c.credentials_file {
        let err =
            |reason: String| IngestError::Credentials { camera: c.id.clone(), path: p.display().to_string(), reason };
        let text = std::fs::read_to_string(p).map_err(|e| err(e.to_string()))?;
        let line = text.lines().next().unwrap_or_default();
        let (u, pw) = line.split_once(':').ok_or_else(|| err("expected `user:password` on the first line".into()))?;
        return Ok(Some((u.to_string(), pw.to_string())));
    }
    Ok(c.username.clone().map(|u| (u, c.password.clone().unwrap_or_default())))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Camera {
    /// Starts the camera's thread; it streams into `queue` until [`Camera::stop`].
    pub fn spawn(c: &settings::Camera, queue: Arc<FrameQueue>, timing: Timing) -> Result<Camera, IngestError> {
        gst::init().map_err(|e| IngestError::Init(e.to_string()))?;
        let creds = credentials(c)?;
        let id: Arc<str> = c.id.as_str().into();
        let state = Arc::new(Mutex::new(if c.enabled { CameraState::Connecting } else { CameraState::Disabled }));
        let stats = Arc::new(CameraStats::default());
        let chain = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = if c.enabled {
            let ctx = Ctx {
                cfg: c.clone(),
                creds: creds.clone(),
                id: id.clone(),
                queue,
                state: state.clone(),
                stats: stats.clone(),
                chain: chain.clone(),
                stop: stop.clone(),
                timing,
            };
            Some(
                std::thread::Builder::new()
                    .name(format!("cam-{}", c.id))
                    .spawn(move || run(ctx))
                    .map_err(|e| IngestError::Init(e.to_string()))?,
            )
        } else {
            None
        };
        Ok(Camera { id, config: c.clone(), creds, state, stats, chain, stop, thread })
    }

    pub fn state(&self) -> CameraState {
        lock(&self.state).clone()
    }

    pub fn stats(&self) -> &CameraStats {
        &self.stats
    }

    /// The settings this camera runs with.
    pub fn config(&self) -> &settings::Camera {
        &self.config
    }

    /// The decoder chain of the current connection, once the source announced its stream.
    pub fn decoder(&self) -> Option<Chain> {
        lock(&self.chain).clone()
    }

    /// Whether this camera runs `c` as it stands now (same settings, same credentials): a reload leaves
    /// such a camera streaming.
    pub fn runs(&self, c: &settings::Camera) -> bool {
        self.config == *c && credentials(c).ok().as_ref() == Some(&self.creds)
    }

    /// Asks the thread to stop without waiting (see [`Camera::stop`]).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
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

/// (timestamp, seq) of sampled frames on their way to the appsink, which has only the timestamp.
type InFlight = Arc<Mutex<VecDeque<(Option<u64>, u64)>>>;

/// Why a connection ended, and the detail for the log line (an error message; never plate text).
type Ended = (Failure, String);

/// What the camera thread works with.
struct Ctx {
    cfg: settings::Camera,
    creds: Option<(String, String)>,
    id: Arc<str>,
    queue: Arc<FrameQueue>,
    state: Arc<Mutex<CameraState>>,
    stats: Arc<CameraStats>,
    chain: Arc<Mutex<Option<Chain>>>,
    stop: Arc<AtomicBool>,
    timing: Timing,
}

fn set(state: &Mutex<CameraState>, s: CameraState) {
    *lock(state) = s;
}

fn run(ctx: Ctx) {
    let started = Instant::now();
    let mut attempt = 0u32;
    // One line per kind of failure per minute: a camera down for a week must not flood the journal.
    let mut limit = LogLimit::new(Duration::from_secs(60));
    let mut setting = ctx.cfg.decoder.clone();
    let file = ctx.cfg.url.starts_with("file:");
    while !ctx.stop.load(Ordering::Relaxed) {
        set(&ctx.state, CameraState::Connecting);
        ctx.stats.last_buffer_ms.store(0, Ordering::Relaxed);
        let connects = ctx.stats.connects.load(Ordering::Relaxed);
        *lock(&ctx.chain) = None;
        let link_failure: Arc<Mutex<Option<Ended>>> = Arc::default();
        let ended = match build(&ctx, &setting, started, &link_failure) {
            Ok(pipeline) => {
                let f = stream(&pipeline, &ctx, started, &link_failure, &mut attempt);
                teardown(pipeline, ctx.timing.teardown, &ctx.id);
                f
            }
            Err(e) => Some((Failure::Other, format!("cannot build the pipeline: {e}"))),
        };
        let Some((reason, detail)) = ended else { break };
        let streamed = ctx.stats.connects.load(Ordering::Relaxed) > connects;
        if let Some(next) = decoder::fallback(&setting, lock(&ctx.chain).as_ref(), reason, streamed) {
            log::warn!(camera = ctx.id.as_ref(); "the hardware decoder failed before the first frame ({detail}); using the {next} decoder until restart");
            setting = next.to_string();
        }
        set(&ctx.state, CameraState::Backoff { attempt, reason });
        let wait = delay(attempt, fastrand::f64()).mul_f64(ctx.timing.backoff_scale);
        if file && reason == Failure::EndOfStream {
            // A file (the demo) ends; that is no camera fault. It plays again from the start.
            log::info!(camera = ctx.id.as_ref(); "end of the file; playing it again in {wait:?}");
        } else if limit.allow(reason, Instant::now()) {
            log::warn!(camera = ctx.id.as_ref(), state = reason.to_string().as_str(), attempt = attempt;
                "camera not streaming ({reason}): {} [{detail}]; retrying in {wait:?}", reason.advice());
        } else {
            log::debug!(camera = ctx.id.as_ref(); "camera not streaming ({reason}): {detail}");
        }
        attempt = attempt.saturating_add(1);
        let until = Instant::now() + wait;
        while Instant::now() < until && !ctx.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20).min(wait));
        }
    }
}

/// Why a camera's pipeline, or the decoder chain in it, could not be put together (the text goes into
/// the camera's failure reason).
#[derive(Debug, thiserror::Error)]
enum PipelineError {
    #[error("{0}")]
    Launch(gst::glib::Error),
    #[error("not a pipeline")]
    NotAPipeline,
    /// An element, pad or queue the pipeline should have.
    #[error("{0}")]
    Missing(&'static str),
    #[error("working directory: {0}")]
    WorkingDir(std::io::Error),
    #[error("{name}: {source}")]
    Element { name: String, source: gst::glib::BoolError },
    #[error("{0}")]
    Make(gst::glib::BoolError),
    #[error("{0}")]
    Add(gst::glib::BoolError),
    #[error("{0} cannot link")]
    Link(String),
    #[error("empty chain")]
    EmptyChain,
    #[error("{0}")]
    State(gst::glib::BoolError),
    #[error("{0:?}")]
    PadLink(gst::PadLinkError),
}

/// The pipeline up to the source and from the colour conversion on; the decoder chain between them is
/// linked when the source announces its stream (see [`Link::pad_added`]).
fn build(
    ctx: &Ctx,
    setting: &str,
    started: Instant,
    link_failure: &Arc<Mutex<Option<Ended>>>,
) -> Result<gst::Pipeline, PipelineError> {
    let c = &ctx.cfg;
    let rtp = c.url.starts_with("rtsp");
    let file = c.url.starts_with("file:");
    // A file plays at its own speed (sync) and waits for the converter; a live source never waits: the
    // queue drops the oldest frame when conversion falls behind.
    let leaky = if file { "no" } else { "downstream" };
    let tail = format!(
        "queue name=tail max-size-buffers=1 leaky={leaky} ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink max-buffers=1 drop={} sync={file}",
        !file
    );
    let desc = if rtp {
        format!("rtspsrc name=src {tail}")
    } else {
        format!("urisourcebin name=uri ! parsebin name=src {tail}")
    };
    let pipeline = gst::parse::launch(&desc)
        .map_err(PipelineError::Launch)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| PipelineError::NotAPipeline)?;
    let src = pipeline.by_name("src").ok_or(PipelineError::Missing("no source element"))?;
    if rtp {
        src.set_property("location", &c.url);
        src.set_property("latency", c.jitter_latency_ms());
        // A server that accepts the connection and then says nothing (stopped, hung) fails the attempt
        // within the connect timeout rather than rtspsrc's default of 20 s.
        src.set_property("tcp-timeout", ctx.timing.connect.as_micros().min(u64::MAX as u128) as u64);
        let protocols = match c.transport {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Auto => "tcp+udp+udp-mcast",
        };
        src.set_property_from_str("protocols", protocols);
        if let Some((u, p)) = &ctx.creds {
            src.set_property("user-id", u);
            src.set_property("user-pw", p);
        }
    } else {
        let cwd = std::env::current_dir().map_err(PipelineError::WorkingDir)?;
        pipeline
            .by_name("uri")
            .ok_or(PipelineError::Missing("no uri source"))?
            .set_property("uri", super::uri::resolve(&c.url, &cwd));
    }
    let link = Link {
        pipeline: pipeline.downgrade(),
        id: ctx.id.clone(),
        setting: setting.to_string(),
        rtp,
        chain: ctx.chain.clone(),
        linked: Arc::new(AtomicBool::new(false)),
        failure: link_failure.clone(),
        stats: ctx.stats.clone(),
        sampler: Arc::new(Mutex::new(Sampler::new(c.analysis_fps))),
        sampled: Arc::default(),
        started,
    };
    if rtp {
        // The SDP names each stream's codec before any media flows: set up video streams only, and stop
        // at once on a codec we cannot decode rather than wait for frames that will never come.
        let (failure, id) = (link_failure.clone(), ctx.id.clone());
        src.connect("select-stream", false, move |args| {
            let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
            let s = caps.as_ref().and_then(|c| c.structure(0));
            let video = s.is_some_and(|s| s.get::<&str>("media").is_ok_and(|m| m == "video"));
            let enc = s.and_then(|s| s.get::<&str>("encoding-name").ok()).unwrap_or("?").to_string();
            if video && Codec::from_rtp_encoding(&enc).is_none() {
                let mut f = lock(&failure);
                f.get_or_insert((
                    Failure::UnsupportedCodec,
                    format!("the camera sends {enc}; polewatch decodes H.264, H.265 and MJPEG"),
                ));
            }
            log::debug!(camera = id.as_ref(); "SDP stream: {enc} (video: {video})");
            Some(video.to_value())
        });
    }
    let sampled = link.sampled.clone();
    src.connect_pad_added(move |_, pad| link.pad_added(pad));
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or(PipelineError::Missing("no appsink"))?;
    let gate = c.motion_gate.then(|| MotionGate::new(c.motion_threshold, &c.roi));
    sink.set_callbacks(appsink_callbacks(ctx.id.clone(), ctx.queue.clone(), ctx.stats.clone(), sampled, gate));
    Ok(pipeline)
}

/// Links a stream the source announced; runs on the source's streaming thread.
struct Link {
    pipeline: gst::glib::WeakRef<gst::Pipeline>,
    id: Arc<str>,
    setting: String,
    rtp: bool,
    chain: Arc<Mutex<Option<Chain>>>,
    /// One video stream per camera: later ones go to a fakesink.
    linked: Arc<AtomicBool>,
    failure: Arc<Mutex<Option<Ended>>>,
    stats: Arc<CameraStats>,
    sampler: Arc<Mutex<Sampler>>,
    sampled: InFlight,
    started: Instant,
}

impl Link {
    fn pad_added(&self, pad: &gst::Pad) {
        let Some(pipeline) = self.pipeline.upgrade() else { return };
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let Some(s) = caps.structure(0) else { return };
        let (video, codec, what) = if self.rtp {
            let enc = s.get::<&str>("encoding-name").unwrap_or("?").to_string();
            (s.get::<&str>("media").is_ok_and(|m| m == "video"), Codec::from_rtp_encoding(&enc), enc)
        } else {
            let name = s.name().to_string();
            (name.starts_with("video/") || name == "image/jpeg", Codec::from_caps_name(&name), name)
        };
        if !video || self.linked.swap(true, Ordering::SeqCst) {
            // Audio, metadata or a second video stream: consumed and ignored, so it cannot stall the source.
            if let Err(e) = discard(&pipeline, pad) {
                log::debug!(camera = self.id.as_ref(); "cannot discard a {what} stream: {e}");
            }
            return;
        }
        // Failures here are logged by the camera thread, rate-limited.
        let Some(codec) = codec else {
            *lock(&self.failure) = Some((
                Failure::UnsupportedCodec,
                format!("the camera sends {what}; polewatch decodes H.264, H.265 and MJPEG"),
            ));
            return;
        };
        let chain = match decoder::choose(codec, &self.setting, self.rtp, &decoder::installed) {
            Ok(c) => c,
            Err(e) => {
                *lock(&self.failure) = Some((Failure::UnsupportedCodec, e.to_string()));
                return;
            }
        };
        match self.link_chain(&pipeline, pad, &chain) {
            Ok(()) => {
                log::info!(camera = self.id.as_ref(), decoder = chain.decoder.as_str(); "decoding {chain}");
                *lock(&self.chain) = Some(chain);
            }
            Err(e) => *lock(&self.failure) = Some((Failure::UnsupportedCodec, format!("cannot decode {chain}: {e}"))),
        }
    }

    fn link_chain(&self, pipeline: &gst::Pipeline, pad: &gst::Pad, chain: &Chain) -> Result<(), PipelineError> {
        let mut elements = Vec::new();
        for name in chain.elements() {
            // libav's decoders keep their own thread count (one per core): with one thread, a camera's
            // decoding fell behind real time on the loaded 2-core machine (the stream piled up in the
            // socket and the camera noticed its server's death 11 s late), and decoding cannot drop frames.
            elements.push(
                gst::ElementFactory::make(name)
                    .build()
                    .map_err(|source| PipelineError::Element { name: name.to_string(), source })?,
            );
        }
        let tail = pipeline.by_name("tail").ok_or(PipelineError::Missing("no tail queue"))?;
        pipeline.add_many(&elements).map_err(PipelineError::Add)?;
        let mut all = elements.clone();
        all.push(tail);
        gst::Element::link_many(&all).map_err(|_| PipelineError::Link(chain.elements().join(" ! ")))?;
        let (Some(first), Some(last)) = (elements.first(), elements.last()) else {
            return Err(PipelineError::EmptyChain);
        };
        let out = last.static_pad("src").ok_or(PipelineError::Missing("decoder without a src pad"))?;
        let (stats, sampler, sampled, started) =
            (self.stats.clone(), self.sampler.clone(), self.sampled.clone(), self.started);
        out.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let pts = info.buffer().and_then(|b| b.pts()).map(|t| t.nseconds());
            let seq = stats.frames_decoded.fetch_add(1, Ordering::Relaxed);
            let mono = started.elapsed();
            stats.last_buffer_ms.store(mono.as_millis() as i64 + 1, Ordering::Relaxed);
            stats.last_frame_wall_ms.store(now_ms(), Ordering::Relaxed);
            if lock(&sampler).take(pts.unwrap_or(mono.as_nanos() as u64)) {
                let mut s = lock(&sampled);
                if s.len() >= 8 {
                    s.pop_front();
                }
                s.push_back((pts, seq));
                gst::PadProbeReturn::Ok
            } else {
                // Not analysed: dropped before any conversion.
                gst::PadProbeReturn::Drop
            }
        });
        for e in &elements {
            e.sync_state_with_parent().map_err(PipelineError::State)?;
        }
        let sink = first.static_pad("sink").ok_or(PipelineError::Missing("no sink pad"))?;
        pad.link(&sink).map_err(PipelineError::PadLink)?;
        Ok(())
    }
}

fn discard(pipeline: &gst::Pipeline, pad: &gst::Pad) -> Result<(), PipelineError> {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .property("async", false)
        .build()
        .map_err(PipelineError::Make)?;
    pipeline.add(&sink).map_err(PipelineError::Add)?;
    sink.sync_state_with_parent().map_err(PipelineError::State)?;
    let sp = sink.static_pad("sink").ok_or(PipelineError::Missing("no sink pad"))?;
    pad.link(&sp).map(|_| ()).map_err(PipelineError::PadLink)
}

/// Decoded frames to [`Frame`]s (tightly packed I420), through the motion gate, into the queue.
fn appsink_callbacks(
    id: Arc<str>,
    q: Arc<FrameQueue>,
    st: Arc<CameraStats>,
    sampled: InFlight,
    mut gate: Option<MotionGate>,
) -> gst_app::AppSinkCallbacks {
    gst_app::AppSinkCallbacks::builder()
        .new_sample(move |s| {
            let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
            let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else { return Ok(gst::FlowSuccess::Ok) };
            let pts = buffer.pts().map(|t| t.nseconds());
            let seq = {
                let mut s = lock(&sampled);
                let at = s.iter().position(|(p, _)| *p == pts);
                at.and_then(|i| s.drain(..=i).next_back()).map(|(_, seq)| seq).unwrap_or_else(|| st.frames_decoded.load(Ordering::Relaxed))
            };
            let Some(s0) = caps.structure(0) else { return Ok(gst::FlowSuccess::Ok) };
            let (Ok(w), Ok(h)) = (s0.get::<i32>("width"), s0.get::<i32>("height")) else { return Ok(gst::FlowSuccess::Ok) };
            let (w, h) = (w.max(0) as usize, h.max(0) as usize);
            let Ok(map) = buffer.map_readable() else { return Ok(gst::FlowSuccess::Ok) };
            let Some((data, w, h)) = tight_i420(map.as_slice(), w, h) else {
                log::debug!(camera = id.as_ref(); "frame of {} bytes is too short for {w}x{h} I420; skipped", map.size());
                return Ok(gst::FlowSuccess::Ok);
            };
            st.frames_sampled.fetch_add(1, Ordering::Relaxed);
            let frame = Frame {
                camera: id.clone(),
                seq,
                captured_at_ms: now_ms(),
                width: w as u32,
                height: h as u32,
                format: PixelFormat::I420,
                data,
            };
            if gate.as_mut().is_some_and(|g| !g.should_analyse(&frame)) {
                st.frames_gated.fetch_add(1, Ordering::Relaxed);
                return Ok(gst::FlowSuccess::Ok);
            }
            q.push(frame);
            Ok(gst::FlowSuccess::Ok)
        })
        .build()
}

/// GStreamer's I420 layout (no video meta is negotiated, so the default one: each plane's rows padded to
/// 4 bytes, chroma planes of the rounded-up half size) to the frame's tight one, cut to even width and
/// height (the last column or row of an odd-sized picture is dropped, so the chroma planes stay whole).
fn tight_i420(src: &[u8], w: usize, h: usize) -> Option<(Vec<u8>, usize, usize)> {
    let round4 = |n: usize| (n + 3) & !3;
    let (y_stride, c_stride) = (round4(w), round4(w.div_ceil(2)));
    let (c_rows, u_at) = (h.div_ceil(2), round4(w) * h.div_ceil(2) * 2);
    let v_at = u_at + c_stride * c_rows;
    let (ow, oh) = (w & !1, h & !1);
    if ow == 0 || oh == 0 || src.len() < v_at + c_stride * (c_rows - 1) + ow / 2 {
        return None;
    }
    let mut out = Vec::with_capacity(PixelFormat::I420.len(ow as u32, oh as u32));
    for y in 0..oh {
        out.extend_from_slice(&src[y * y_stride..y * y_stride + ow]);
    }
    for at in [u_at, v_at] {
        for y in 0..oh / 2 {
            out.extend_from_slice(&src[at + y * c_stride..at + y * c_stride + ow / 2]);
        }
    }
    Some((out, ow, oh))
}

/// Plays the pipeline until it fails or `stop`; returns why it ended (None: asked to stop).
fn stream(
    pipeline: &gst::Pipeline,
    ctx: &Ctx,
    started: Instant,
    link_failure: &Mutex<Option<Ended>>,
    attempt: &mut u32,
) -> Option<Ended> {
    let mono_ms = || started.elapsed().as_millis() as i64;
    let Some(bus) = pipeline.bus() else { return Some((Failure::Other, "pipeline without a bus".into())) };
    let error = |m: &gst::Message| match m.view() {
        gst::MessageView::Error(e) => {
            let debug = e.debug().map(|d| d.to_string()).unwrap_or_default();
            log::debug!(camera = ctx.id.as_ref(); "pipeline error: {} ({debug})", e.error());
            Some((classify_error(&e.error(), &debug), e.error().to_string()))
        }
        _ => None,
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        // A source that fails to start (missing file, bad device) posts why on the bus.
        let why =
            bus.timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error]).and_then(|m| error(&m));
        return Some(why.unwrap_or((Failure::Other, "the pipeline would not start".into())));
    }
    let t0 = Instant::now();
    let mut streaming = false;
    while !ctx.stop.load(Ordering::Relaxed) {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            if let Some(f) = error(&msg) {
                // An error after an unusable stream was announced is a consequence of it.
                return Some(lock(link_failure).take().unwrap_or(f));
            }
            if let gst::MessageView::Eos(_) = msg.view() {
                let what =
                    if streaming { "end-of-stream while streaming" } else { "end-of-stream before the first frame" };
                return Some((Failure::EndOfStream, what.into()));
            }
        }
        if let Some(f) = lock(link_failure).take() {
            return Some(f);
        }
        let last = ctx.stats.last_buffer_ms.load(Ordering::Relaxed);
        if last > 0 && !streaming {
            streaming = true;
            *attempt = 0;
            ctx.stats.connects.fetch_add(1, Ordering::Relaxed);
            set(&ctx.state, CameraState::Streaming);
            log::info!(camera = ctx.id.as_ref(); "camera streaming");
        }
        if streaming && mono_ms() - last > ctx.timing.stall.as_millis() as i64 {
            return Some((Failure::Stalled, format!("no frame for {:?}", ctx.timing.stall)));
        }
        if !streaming && t0.elapsed() > ctx.timing.connect {
            // The source announced its stream (the camera answered): connected, but no frame. Else it
            // never answered: unreachable, whether the connection was refused, dropped or left hanging.
            return Some(if lock(&ctx.chain).is_some() {
                (Failure::Stalled, format!("connected, but no frame within {:?}", ctx.timing.connect))
            } else {
                (Failure::Unreachable, format!("no answer within {:?} of connecting", ctx.timing.connect))
            });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_i420_planes_are_packed_and_odd_sizes_cut_to_even() {
        // 2×2: Y rows of 2 padded to 4, U and V one row of 1 padded to 4; the planes start at 8 and 12.
        let src = [1, 2, 0, 0, 3, 4, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0];
        assert_eq!(tight_i420(&src, 2, 2), Some((vec![1, 2, 3, 4, 5, 6], 2, 2)));
        assert_eq!(tight_i420(&src[..12], 2, 2), None);
        // 3×3: Y rows of 3 padded to 4 (4 rows: the height rounds up to even), chroma 2×2 rows padded to 4;
        // the frame keeps the top-left 2×2.
        let mut odd = vec![0u8; 4 * 4 + 4 * 2 * 2];
        odd[..12].copy_from_slice(&[1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0]);
        odd[16] = 10; // U (0, 0)
        odd[24] = 11; // V (0, 0)
        assert_eq!(tight_i420(&odd, 3, 3), Some((vec![1, 2, 4, 5, 10, 11], 2, 2)));
        assert_eq!(tight_i420(&[9; 6], 2, 1), None);
    }
}
