//! The whole path: the project's demo video (rendered plates on vehicles) served over RTSP by a real
//! gst-rtsp-server on 127.0.0.1, pulled by `polewatch run`, read by the shipped models, grouped by the
//! tracker, and stored: one vehicle read per pass, with the right text and a crop.

use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use polewatch::store::{ImageKind, PlatePattern, Store, StoreOptions};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "POLEWATCH_TEST_E2E_RTSP";

/// Not a test: the RTSP server child (`--ignored --exact`), serving the file named in the environment
/// on /demo (port:path), each client from the start.
#[test]
#[ignore = "helper process for the end-to-end test, not a test"]
fn e2e_rtsp_server_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (port, file) = spec.split_once(':').unwrap();
    gst::init().unwrap();
    let main_loop = gst::glib::MainLoop::new(None, false);
    let server = rtsp::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(port);
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(&format!("( filesrc location=\"{file}\" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )"));
    server.mount_points().unwrap().add_factory("/demo", factory);
    let _id = server.attach(None).unwrap();
    main_loop.run();
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped model set's tables as `[recognizer.*]` tables with absolute paths.
fn recognizer_tables() -> String {
    let text = std::fs::read_to_string(repo().join("models/polewatch.toml")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with("name"))
        .map(|l| match l {
            "[detector]" => "[recognizer.detector]".to_string(),
            "[ocr]" => "[recognizer.ocr]".to_string(),
            l if l.starts_with("path = \"") => l.replacen("path = \"", &format!("path = \"{}/models/", repo().display()), 1),
            l => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn demo_video_over_rtsp_gives_one_correct_read_per_vehicle() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("demo.mp4");
    polewatch::demo::write_video(&video, 1280, 720, 10, 16.0).expect("demo video renders");
    let port = free_port();
    let server = Killed(
        Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "e2e_rtsp_server_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, format!("{port}:{}", video.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "RTSP server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    let models = recognizer_tables();
    let cfg = dir.path().join("polewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nsite_id = \"t\"\ndevice_id = \"d\"\n\
             [[cameras]]\nid = \"lane1\"\nurl = \"rtsp://127.0.0.1:{port}/demo\"\nanalysis_fps = 10\nstore_full_frames = true\n\
             [recognizer]\nthreads = 1\n{models}\n\
             [hotlists]\nalert_on_first_confident_read = false\n\
             [store]\npath = \"{}\"\n[store.retention]\nrequire_clock_sync = false\n\
             [access]\naudit_key_file = \"{}\"\n[logging]\nlevel = \"info\"\ntarget = \"stderr\"\n",
            dir.path().join("store").display(),
            dir.path().join("keys/audit.key").display()
        ),
    )
    .unwrap();
    let mut daemon = Killed(
        Command::new(env!("CARGO_BIN_EXE_polewatch"))
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Count stored reads from the log (it never names the plate), then stop before the video replays.
    let stderr = daemon.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut stored, mut log) = (0, Vec::new());
    while stored < 5 && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            assert!(!["7KQX214", "BAC4F21", "MUC4821", "4TRM882", "KPW5513"].iter().any(|p| line.contains(p)), "plate text at info: {line}");
            stored += usize::from(line.contains("vehicle read stored"));
            log.push(line);
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.0.id() as libc::pid_t, libc::SIGTERM) };
    let t = Instant::now();
    while daemon.0.try_wait().unwrap().is_none() {
        assert!(t.elapsed() < Duration::from_secs(20), "daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
    assert!(stored >= 5, "only {stored} vehicle reads stored within 90 s; log:\n{}", log.join("\n"));

    let (store, _) = Store::open(&StoreOptions::at(dir.path().join("store"))).unwrap();
    let mut reads = store.search(&PlatePattern::parse("*").unwrap(), 1000).unwrap();
    reads.sort_by_key(|r| r.captured_at_ms);
    let first = reads[0].captured_at_ms;
    // One play of the video is 16 s; anything later is the replay after the stream's end.
    let first_play: Vec<_> = reads.iter().filter(|r| r.captured_at_ms < first + 15_500).collect();
    let mut texts: Vec<&str> = first_play.iter().map(|r| r.plate.expose()).collect();
    texts.sort();
    assert_eq!(texts, vec!["4TRM882", "7KQX214", "BAC4F21", "KPW5513", "MUC4821"], "one read per pass");
    for r in &first_play {
        assert_eq!(r.camera_id, "lane1");
        assert!(r.has_crop);
        let crop = store.image(r.id, ImageKind::Crop).unwrap().unwrap();
        assert!(crop.starts_with(&[0xFF, 0xD8]), "crop is a JPEG");
        // The camera keeps full frames: the best frame's JPEG, 1280x720, much larger than the crop.
        let frame = store.image(r.id, ImageKind::Frame).unwrap().expect("full frame stored");
        let decoded = polewatch::recognize::decode_image(&frame).unwrap();
        assert_eq!((opencv::prelude::MatTraitConst::cols(&decoded), opencv::prelude::MatTraitConst::rows(&decoded)), (1280, 720));
        assert!(r.confidence >= 0.5 && r.bbox[2] > 40);
    }
}
