//! `polewatch-dev bench pipeline`: N cameras pulling 1080p H.264 of the project's demo scene from a real
//! RTSP server on 127.0.0.1, through decode, sampling, the recognizer, the tracker and the store.
//! Prints per N: decoded and analysed frames per second, dropped frames, CPU and RSS per camera, and
//! frame-to-stored-read latency (capture of a pass's best frame to the durable read; it includes the
//! rest of the pass and the tracker's closing gap).

use crate::bench::{ScratchDir, print_figures};
use crate::config::ModelSet;
use crate::ingest::camera::Timing;
use crate::ingest::{Camera, FrameQueue};
use crate::pipeline::analyse::{self, AnalyseStats, Settings};
use crate::pipeline::hotlists::{AlertTarget, Hotlists};
use crate::pipeline::reads::ReadSink;
use crate::store::{Store, StoreOptions};
use anyhow::Context;
use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct Options {
    pub models: ModelSet,
    pub cameras: Vec<usize>,
    pub seconds: u64,
    pub analysis_fps: f64,
    pub json: bool,
}

/// An RTSP server on its own GLib main loop thread, serving `file` on /cam (each client from the start).
struct RtspServer {
    main_loop: gst::glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
    port: u16,
}

impl RtspServer {
    fn start(file: &std::path::Path) -> anyhow::Result<RtspServer> {
        gst::init()?;
        let port = crate::bench::rig::free_port()?;
        let ctx = gst::glib::MainContext::new();
        let main_loop = gst::glib::MainLoop::new(Some(&ctx), false);
        let server = rtsp::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(&format!(
            "( filesrc location=\"{}\" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )",
            file.display()
        ));
        server.mount_points().context("RTSP mount points")?.add_factory("/cam", factory);
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

pub fn run(o: Options) -> anyhow::Result<()> {
    let scratch = ScratchDir::new(None, "bench-pipeline")?;
    let video = scratch.0.join("demo-1080p.mp4");
    let fps = 15;
    eprintln!("rendering {} s of 1080p demo video…", o.seconds + 5);
    crate::demo::write_video(&video, 1920, 1080, fps, (o.seconds + 5) as f64)?;
    let server = RtspServer::start(&video)?;
    // What the process holds before any camera or model: per-camera RSS is measured against it.
    let rss_base = super::rss_kib();
    let mut figures: Vec<(String, f64, &str)> = Vec::new();
    for &n in &o.cameras {
        let store = Arc::new(Store::open(&StoreOptions::at(scratch.0.join(format!("store-{n}"))))?.0);
        let target = AlertTarget { site: "bench".into(), device: "pole".into(), max_packet_bytes: 1 << 20 };
        let hotlists = Arc::new(Hotlists::load(store.clone(), &[], 14, target)?);
        let sink = Arc::new(ReadSink { store: store.clone(), hotlists, uplink: None });
        let rec = crate::bench::accuracy::recognizer_for(&o.models)?;
        let queue = Arc::new(FrameQueue::new(crate::ingest::queue::FRAMES_PER_CAMERA));
        queue.size_for_cameras(n);
        let mut cfg = crate::config::Config {
            site: crate::config::Site {
                site_id: "bench".into(),
                device_id: "pole".into(),
                organisation: String::new(),
            },
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
                "id": format!("cam{i}"), "url": format!("rtsp://127.0.0.1:{}/cam", server.port), "analysis_fps": o.analysis_fps,
            }))?;
            cfg.cameras.push(cam);
        }
        cfg.hotlists.alert_on_first_confident_read = false;
        let settings = Arc::new(std::sync::Mutex::new(Arc::new(Settings::from_config(&cfg))));
        let stats = Arc::new(AnalyseStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (a_stats, a_stop, a_queue, a_sink) = (stats.clone(), stop.clone(), queue.clone(), sink.clone());
        let analyser = std::thread::spawn(move || {
            analyse::run(rec, settings, a_queue, a_sink, a_stats, move || a_stop.load(Ordering::Relaxed))
        });
        let cams: Vec<Camera> =
            cfg.cameras.iter().map(|c| Camera::spawn(c, queue.clone(), Timing::default())).collect::<Result<_, _>>()?;
        // Measure after the first frames arrive, so connection set-up is not counted.
        let t0 = Instant::now();
        while stats.frames.load(Ordering::Relaxed) == 0 && t0.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let decoded0: u64 = cams.iter().map(|c| c.stats().frames_decoded.load(Ordering::Relaxed)).sum();
        let (frames0, dropped0, cpu0, t) =
            (stats.frames.load(Ordering::Relaxed), queue.dropped(), cpu_s(), Instant::now());
        std::thread::sleep(Duration::from_secs(o.seconds));
        let secs = t.elapsed().as_secs_f64();
        let decoded: u64 =
            cams.iter().map(|c| c.stats().frames_decoded.load(Ordering::Relaxed)).sum::<u64>() - decoded0;
        let analysed = stats.frames.load(Ordering::Relaxed) - frames0;
        let dropped = queue.dropped() - dropped0;
        let cpu = cpu_s() - cpu0;
        let rss = super::rss_kib();
        for c in cams {
            c.stop();
        }
        stop.store(true, Ordering::Relaxed);
        let _ = analyser.join();
        let mut lat: Vec<u32> = stats.latencies_ms.lock().unwrap_or_else(|p| p.into_inner()).iter().copied().collect();
        lat.sort_unstable();
        let k = |name: &str| format!("{n}cam_{name}");
        figures.push((k("decoded_fps_per_camera"), decoded as f64 / secs / n as f64, "frames/s"));
        figures.push((k("analysed_fps_per_camera"), analysed as f64 / secs / n as f64, "frames/s"));
        figures.push((k("dropped_frames"), dropped as f64, "frames"));
        figures.push((k("cpu_per_camera_pct_of_core"), cpu / secs / n as f64 * 100.0, "%"));
        figures.push((k("rss_process_mib"), rss as f64 / 1024.0, "MiB"));
        // Includes the one recognizer all cameras share (models, OpenCV buffers) and the store's cache.
        figures.push((k("rss_per_camera_mib"), rss.saturating_sub(rss_base) as f64 / 1024.0 / n as f64, "MiB"));
        figures.push((k("vehicle_reads"), stats.vehicle_reads.load(Ordering::Relaxed) as f64, "reads"));
        figures.push((k("frame_to_stored_read_p50_ms"), percentile(&lat, 0.5), "ms"));
        figures.push((k("frame_to_stored_read_p99_ms"), percentile(&lat, 0.99), "ms"));
    }
    drop(server);
    print_figures(&figures, o.json);
    Ok(())
}
