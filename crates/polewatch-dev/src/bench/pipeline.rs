//! `polewatch-dev bench pipeline`: N cameras, each pulling its own rendered 1080p H.264 clip (different
//! traffic; every fourth from the second on at night) from a real RTSP server on 127.0.0.1, through decode,
//! sampling, the recognizer, the tracker, the store and the hotlists (every second pass of each clip
//! listed, with alerts on the first confident read). With `--against SET` the same cameras run again with that model
//! set (the reference detector and OCR) in the same run, so the two are compared on the same frames.
//!
//! Per pipeline and N: decoded and analysed frames per second, analysed frames per core-second, dropped
//! frames, the passes of the clips stored with their exact text (and reads that match no pass), frame →
//! stored read for the passes not listed (capture of a pass's best frame to the durable read when the
//! pass closed, so it includes the rest of the pass and the tracker's closing gap) and frame → alert
//! raised for the listed ones (capture of the alerted read's frame to the alert in the store), CPU, RSS,
//! threads and fds. First, the decode-only rate of the 1080p clip on this
//! machine, the limit any pipeline works under.

use crate::bench::{ScratchDir, print_figures};
use crate::config::ModelSet;
use crate::demo::{Clip, Pass};
use crate::ingest::camera::Timing;
use crate::ingest::{Camera, FrameQueue};
use crate::pipeline::analyse::{self, AnalyseStats, Settings};
use crate::pipeline::hotlists::{AlertTarget, Hotlists};
use crate::pipeline::reads::ReadSink;
use crate::store::{Store, StoreOptions};
use anyhow::Context;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct Options {
    pub models: ModelSet,
    /// A second model set run on the same cameras and clips (the reference pipeline).
    pub against: Option<ModelSet>,
    pub cameras: Vec<usize>,
    /// The clips' frame rate.
    pub source_fps: i32,
    pub seconds: u64,
    pub analysis_fps: f64,
    pub json: bool,
}

/// An RTSP server on its own GLib main loop thread, serving file i on /cam{i} (each client from the start).
struct RtspServer {
    main_loop: gst::glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
}

impl RtspServer {
    fn start(files: &[PathBuf]) -> anyhow::Result<RtspServer> {
        gst::init()?;
        let port = crate::bench::rig::free_port()?;
        let ctx = gst::glib::MainContext::new();
        let main_loop = gst::glib::MainLoop::new(Some(&ctx), false);
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let mounts = server.mount_points().context("RTSP mount points")?;
        for (i, file) in files.iter().enumerate() {
            let factory = rtsp::RTSPMediaFactory::new();
            factory.set_launch(&format!(
                "( filesrc location=\"{}\" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )",
                file.display()
            ));
            mounts.add_factory(&format!("/cam{i}"), factory);
        }
        let id = server.attach(Some(&ctx)).context("RTSP server attach")?;
        let ml = main_loop.clone();
        let thread = std::thread::spawn(move || {
            let _keep = (server, id);
            ml.run();
        });
        Ok(RtspServer { main_loop, thread: Some(thread), port })
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn cpu_s() -> f64 {
    // SAFETY: getrusage fills the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64
}

/// The clip of camera `i`: its own traffic; every fourth camera from the second on at night.
fn clip(i: usize, seconds: f64) -> Clip {
    Clip { passes: crate::demo::traffic(1000 + i as u64, seconds), light: if i % 4 == 1 { 0.45 } else { 1.0 } }
}

/// Renders camera `i`'s clip once and keeps it in the system's temporary folder, since 1080p clips take
/// a while to render and every run of the bench plays the same ones.
fn clip_file(i: usize, c: &Clip, fps: i32, seconds: f64) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join("polewatch-bench-clips");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("clip{i}-v1-1080p{fps}-{}s-light{}.mp4", seconds as u64, (c.light * 100.0) as u32));
    if !path.exists() {
        eprintln!("rendering camera {i}'s clip ({} s of 1080p at {fps} fps, {} passes)…", seconds, c.passes.len());
        let tmp = path.with_extension("part");
        crate::demo::write_clip(c, &tmp, 1920, 1080, fps, seconds)?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(path)
}

/// Frames per second that decoding the clip alone reaches on this machine (libav with its own threads,
/// no sink clock): the limit any pipeline works under.
fn decode_only_fps(file: &Path) -> anyhow::Result<f64> {
    gst::init()?;
    let pipeline = gst::parse::launch(&format!(
        "filesrc location=\"{}\" ! qtdemux ! h264parse ! avdec_h264 ! fakesink name=sink sync=false",
        file.display()
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sink = pipeline.by_name("sink").context("no fakesink")?;
    sink.set_property("signal-handoffs", true);
    let f = frames.clone();
    sink.connect("handoff", false, move |_| {
        f.fetch_add(1, Ordering::Relaxed);
        None
    });
    let t = Instant::now();
    pipeline.set_state(gst::State::Playing)?;
    let bus = pipeline.bus().context("no bus")?;
    let msg =
        bus.timed_pop_filtered(gst::ClockTime::from_seconds(300), &[gst::MessageType::Eos, gst::MessageType::Error]);
    let secs = t.elapsed().as_secs_f64();
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => Ok(frames.load(Ordering::Relaxed) as f64 / secs),
        Some(gst::MessageView::Error(e)) => anyhow::bail!("decoding the clip: {}", e.error()),
        _ => anyhow::bail!("decoding the clip did not finish within 300 s"),
    }
}

/// One pipeline on N cameras, measured.
struct Row {
    label: String,
    cameras: usize,
    decoded_fps: f64,
    analysed_fps: f64,
    analysed_per_core_s: f64,
    dropped: u64,
    passes: usize,
    exact: usize,
    unmatched_reads: usize,
    read_p50: f64,
    read_p99: f64,
    gone_p50: f64,
    gone_p99: f64,
    alert_p50: f64,
    alert_p99: f64,
    alerts: usize,
    cpu_pct: f64,
    rss_mib: f64,
    rss_per_camera_mib: f64,
    threads: u64,
    fds: u64,
}

pub fn run(o: Options) -> anyhow::Result<()> {
    let scratch = ScratchDir::new(None, "bench-pipeline")?;
    let max_n = o.cameras.iter().copied().max().unwrap_or(1);
    // Long enough that no clip ends (and its camera reconnects) while it is measured.
    let clip_s = (o.seconds + 15) as f64;
    let clips: Vec<Clip> = (0..max_n).map(|i| clip(i, clip_s)).collect();
    let files: Vec<PathBuf> =
        clips.iter().enumerate().map(|(i, c)| clip_file(i, c, o.source_fps, clip_s)).collect::<Result<_, _>>()?;
    let decode_fps = decode_only_fps(&files[0])?;
    eprintln!("decode only, 1080p H.264: {decode_fps:.0} frames/s");
    let server = RtspServer::start(&files)?;
    // What the process holds before any camera or model: per-camera RSS is measured against it.
    let rss_base = super::rss_kib();
    let mut sets: Vec<(String, &ModelSet)> = vec![(label_of(&o.models, "ours"), &o.models)];
    if let Some(theirs) = &o.against {
        sets.push((label_of(theirs, "against"), theirs));
    }
    let mut rows = Vec::new();
    for &n in &o.cameras {
        for (label, models) in &sets {
            let row = run_one(&o, label, models, n, &clips, server.port, &scratch.0, rss_base)?;
            eprintln!(
                "{label}, {n} camera(s): {:.2} analysed fps per camera, {} of {} passes exact",
                row.analysed_fps, row.exact, row.passes
            );
            rows.push(row);
        }
    }
    drop(server);
    let mut figures: Vec<(String, f64, &str)> = vec![("decode_only_1080p_fps".into(), decode_fps, "frames/s")];
    for r in &rows {
        let k = |name: &str| format!("{}_{}cam_{name}", r.label, r.cameras);
        figures.push((k("decoded_fps_per_camera"), r.decoded_fps, "frames/s"));
        figures.push((k("analysed_fps_per_camera"), r.analysed_fps, "frames/s"));
        figures.push((k("analysed_frames_per_core_s"), r.analysed_per_core_s, "frames"));
        figures.push((k("dropped_frames"), r.dropped as f64, "frames"));
        figures.push((k("passes"), r.passes as f64, "passes"));
        figures.push((k("passes_exact_pct"), pct(r.exact, r.passes), "%"));
        figures.push((k("reads_matching_no_pass"), r.unmatched_reads as f64, "reads"));
        figures.push((k("frame_to_stored_read_p50_ms"), r.read_p50, "ms"));
        figures.push((k("frame_to_stored_read_p99_ms"), r.read_p99, "ms"));
        figures.push((k("last_sight_to_stored_read_p50_ms"), r.gone_p50, "ms"));
        figures.push((k("last_sight_to_stored_read_p99_ms"), r.gone_p99, "ms"));
        figures.push((k("alerts"), r.alerts as f64, "alerts"));
        figures.push((k("frame_to_alert_p50_ms"), r.alert_p50, "ms"));
        figures.push((k("frame_to_alert_p99_ms"), r.alert_p99, "ms"));
        figures.push((k("cpu_pct_of_core"), r.cpu_pct, "%"));
        figures.push((k("rss_process_mib"), r.rss_mib, "MiB"));
        // Includes the one recognizer all cameras share (models, OpenCV buffers) and the store's cache.
        figures.push((k("rss_per_camera_mib"), r.rss_per_camera_mib, "MiB"));
        figures.push((k("threads"), r.threads as f64, "threads"));
        figures.push((k("fds"), r.fds as f64, "fds"));
    }
    if !o.json {
        print_table(&rows, decode_fps, &o);
    }
    print_figures(&figures, o.json);
    Ok(())
}

fn label_of(m: &ModelSet, fallback: &str) -> String {
    if m.name.is_empty() { fallback.to_string() } else { m.name.replace(|c: char| !c.is_ascii_alphanumeric(), "-") }
}

fn pct(a: usize, b: usize) -> f64 {
    if b == 0 { f64::NAN } else { 100.0 * a as f64 / b as f64 }
}

#[allow(clippy::too_many_arguments)]
fn run_one(
    o: &Options,
    label: &str,
    models: &ModelSet,
    n: usize,
    clips: &[Clip],
    port: u16,
    dir: &Path,
    rss_base: u64,
) -> anyhow::Result<Row> {
    let store_dir = dir.join(format!("store-{label}-{n}"));
    let store = Arc::new(Store::open(&StoreOptions::at(store_dir.clone()))?.0);
    // Every second pass of each clip on a hotlist (alerts on the first confident read, the read stored
    // then); the others are stored when their pass closes.
    let hot = dir.join(format!("hot-{label}-{n}.csv"));
    super::write_hotlist(&hot, clips[..n].iter().flat_map(|c| c.passes.iter().skip(1).step_by(2)).map(|p| &p.text))?;
    let target = AlertTarget { site: "bench".into(), device: "pole".into(), max_packet_bytes: 1 << 20 };
    let hotlists = Arc::new(Hotlists::load(store.clone(), &[hot], 14, target)?);
    let sink = Arc::new(ReadSink { store: store.clone(), hotlists, uplink: None });
    let rec = crate::bench::accuracy::recognizer_for(models)?;
    let queue = Arc::new(FrameQueue::new(crate::ingest::queue::FRAMES_PER_CAMERA));
    queue.size_for_cameras(n);
    let mut cfg = crate::config::Config {
        site: crate::config::Site { site_id: "bench".into(), device_id: "pole".into(), organisation: String::new() },
        cameras: Vec::new(),
        recognizer: Default::default(),
        store: Default::default(),
        hotlists: Default::default(),
        mqtt: Default::default(),
        api: Default::default(),
        access: Default::default(),
        logging: Default::default(),
        service: Default::default(),
        tracker: Default::default(),
        metrics: Default::default(),
        telemetry: Default::default(),
    };
    for i in 0..n {
        let cam: crate::config::Camera = serde_json::from_value(serde_json::json!({
            "id": format!("cam{i}"), "url": format!("rtsp://127.0.0.1:{port}/cam{i}"), "analysis_fps": o.analysis_fps,
        }))?;
        cfg.cameras.push(cam);
    }
    cfg.hotlists.alert_on_first_confident_read = true;
    let settings = Arc::new(std::sync::Mutex::new(Arc::new(Settings::from_config(&cfg))));
    let stats = Arc::new(AnalyseStats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (a_stats, a_stop, a_queue, a_sink) = (stats.clone(), stop.clone(), queue.clone(), sink.clone());
    let analyser = std::thread::spawn(move || {
        analyse::run(rec, settings, a_queue, a_sink, a_stats, move || a_stop.load(Ordering::Relaxed))
    });
    let started = Instant::now();
    let cams: Vec<Camera> =
        cfg.cameras.iter().map(|c| Camera::spawn(c, queue.clone(), Timing::default())).collect::<Result<_, _>>()?;
    // Measure after the first frames arrive, so connection set-up is not counted.
    let t0 = Instant::now();
    while stats.frames.load(Ordering::Relaxed) == 0 && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let decoded0: u64 = cams.iter().map(|c| c.stats().frames_decoded.load(Ordering::Relaxed)).sum();
    let (frames0, dropped0, cpu0, t) = (stats.frames.load(Ordering::Relaxed), queue.dropped(), cpu_s(), Instant::now());
    std::thread::sleep(Duration::from_secs(o.seconds));
    let secs = t.elapsed().as_secs_f64();
    let decoded: u64 = cams.iter().map(|c| c.stats().frames_decoded.load(Ordering::Relaxed)).sum::<u64>() - decoded0;
    let analysed = stats.frames.load(Ordering::Relaxed) - frames0;
    let dropped = queue.dropped() - dropped0;
    let cpu = cpu_s() - cpu0;
    let rss = super::rss_kib();
    let (threads, fds, _) = super::proc_stats("self").unwrap_or_default();
    // The clips have played this long at most when the cameras stop.
    let played_s = started.elapsed().as_secs_f64();
    for c in cams {
        c.stop();
    }
    stop.store(true, Ordering::Relaxed);
    let _ = analyser.join();
    let mut lat: Vec<u32> = stats.latencies_ms.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
    lat.sort_unstable();
    let mut gone: Vec<u32> =
        stats.gone_latencies_ms.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
    gone.sort_unstable();

    // Passes that had left the picture a second before the cameras stopped, against what was stored.
    let mut reads: Vec<(String, String)> = Vec::new();
    store.for_each_read_since(0, |r| {
        reads.push((r.camera_id.clone(), r.plate.expose().to_string()));
        true
    })?;
    let (mut passes, mut exact, mut unmatched) = (0, 0, 0);
    for (i, c) in clips[..n].iter().enumerate() {
        let cam = format!("cam{i}");
        let done = |p: &Pass| p.start_s + p.duration_s + 1.0 <= played_s;
        for p in c.passes.iter().filter(|p| done(p)) {
            passes += 1;
            exact += usize::from(reads.iter().any(|(rc, t)| *rc == cam && *t == p.text));
        }
        unmatched += reads.iter().filter(|(rc, t)| *rc == cam && !c.passes.iter().any(|p| p.text == *t)).count();
    }
    let mut alert_lat: Vec<u32> = Vec::new();
    let alerts = store.alerts(usize::MAX)?;
    for a in &alerts {
        if let Some(r) = store.get_read(a.read_id)? {
            alert_lat.push(a.raised_at_ms.saturating_sub(r.captured_at_ms).max(0) as u32);
        }
    }
    alert_lat.sort_unstable();
    drop(store);
    let _ = std::fs::remove_dir_all(&store_dir);
    Ok(Row {
        label: label.to_string(),
        cameras: n,
        decoded_fps: decoded as f64 / secs / n as f64,
        analysed_fps: analysed as f64 / secs / n as f64,
        analysed_per_core_s: if cpu > 0.0 { analysed as f64 / cpu } else { 0.0 },
        dropped,
        passes,
        exact,
        unmatched_reads: unmatched,
        read_p50: percentile(&lat, 0.5),
        read_p99: percentile(&lat, 0.99),
        gone_p50: percentile(&gone, 0.5),
        gone_p99: percentile(&gone, 0.99),
        alert_p50: percentile(&alert_lat, 0.5),
        alert_p99: percentile(&alert_lat, 0.99),
        alerts: alerts.len(),
        cpu_pct: cpu / secs * 100.0,
        rss_mib: rss as f64 / 1024.0,
        rss_per_camera_mib: rss.saturating_sub(rss_base) as f64 / 1024.0 / n as f64,
        threads,
        fds,
    })
}

fn print_table(rows: &[Row], decode_fps: f64, o: &Options) {
    println!(
        "1080p H.264 at {} fps, analysis_fps {}, {} s measured per row; decode only on this machine: {decode_fps:.0} \
         frames/s",
        o.source_fps, o.analysis_fps, o.seconds
    );
    println!(
        "| pipeline | cameras | analysed fps per camera (decoded) | analysed frames per core-s | dropped | passes exact | \
         reads matching no pass | frame → read p50 / p99 ms | last sight → read p50 / p99 ms | frame → alert p50 / p99 ms (alerts) | CPU % of a core | \
         RSS MiB (per camera) | threads / fds |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {:.2} ({:.1}) | {:.1} | {} | {} / {} ({:.0} %) | {} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} ({}) | {:.0} | {:.0} \
             ({:.0}) | {} / {} |",
            r.label,
            r.cameras,
            r.analysed_fps,
            r.decoded_fps,
            r.analysed_per_core_s,
            r.dropped,
            r.exact,
            r.passes,
            pct(r.exact, r.passes),
            r.unmatched_reads,
            r.read_p50,
            r.read_p99,
            r.gone_p50,
            r.gone_p99,
            r.alert_p50,
            r.alert_p99,
            r.alerts,
            r.cpu_pct,
            r.rss_mib,
            r.rss_per_camera_mib,
            r.threads,
            r.fds
        );
    }
}
