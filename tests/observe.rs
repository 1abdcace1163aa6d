//! Issue 16 §1: a running daemon (the demo video as a camera, the shipped models, a real broker) answers
//! `GET /metrics` on its plain-HTTP listener with every metric the issue lists, in a text format a
//! Prometheus parser reads line by line; `/healthz` and `/readyz` answer JSON with reasons; a plate-height
//! band the demo's plates miss raises `camera_degraded` (metric, health, log); no plate text leaves.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::rtsp::Killed;
use support::{Broker, free_port, pki};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A plain HTTP/1.1 GET on loopback: (status, body).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn wait_for<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Parses the exposition with the `prometheus-parse` crate. Every line must be one the parser reads as a
/// sample, a HELP or a TYPE (the OpenMetrics `# EOF` and `# UNIT` aside): a line it would skip is an error.
fn parse(body: &str) -> prometheus_parse::Scrape {
    for line in body.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let info = prometheus_parse::LineInfo::parse(line);
        assert!(
            !matches!(info, prometheus_parse::LineInfo::Ignored | prometheus_parse::LineInfo::Empty),
            "not Prometheus text: {line:?}"
        );
    }
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("the exposition parses")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples.iter().find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v))).and_then(
        |x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(*v),
            prometheus_parse::Value::Histogram(h) => h.last().map(|b| b.count),
            prometheus_parse::Value::Summary(_) => None,
        },
    )
}

fn config(dir: &Path, pki: &support::Pki, mqtt: u16, metrics: u16, video: &Path) -> PathBuf {
    let cfg = dir.join("polewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nsite_id = \"site1\"\ndevice_id = \"pole-01\"\n\
             [[cameras]]\nid = \"lane1\"\nurl = \"file:{}\"\nanalysis_fps = 5\n\
             [[cameras]]\nid = \"lane2\"\nurl = \"file:{}\"\n\
             [recognizer]\nthreads = 1\nmodel_set = \"{}\"\n\
             [store]\npath = \"{}\"\n[store.retention]\nrequire_clock_sync = false\n\
             [mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {mqtt}\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n\
             reads_batch_max_age_ms = 200\n\
             [metrics]\nlisten = \"127.0.0.1:{metrics}\"\nstatus_interval_s = 1\n\
             [telemetry]\nheight_window = 5\nmin_plate_height_px = 300\nmax_plate_height_px = 600\n\
             [access]\naudit_key_file = \"{}\"\n[logging]\nlevel = \"info\"\ntarget = \"stderr\"\n",
            video.display(),
            dir.join("no-such-video.mp4").display(),
            repo().join("models/polewatch.toml").display(),
            dir.join("store").display(),
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display(),
            dir.join("audit.key").display(),
        ),
    )
    .unwrap();
    cfg
}

#[test]
fn a_running_daemon_serves_metrics_health_and_readiness_without_plate_data() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("demo.mp4");
    polewatch_dev::demo::write_video(&video, 1280, 720, 10, 16.0).expect("demo video renders");
    let pki = pki(dir.path(), "o", &["127.0.0.1"], false);
    let (mqtt_port, metrics_port) = (free_port(), free_port());
    let _broker = Broker::start(&pki, mqtt_port);
    let cfg = config(dir.path(), &pki, mqtt_port, metrics_port, &video);
    let log = dir.path().join("daemon.log");
    let mut daemon = Killed(
        Command::new(env!("CARGO_BIN_EXE_polewatch"))
            .args(["run", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();

    // Liveness answers at once, with no login.
    let (code, body) = wait_for("/healthz", Duration::from_secs(60), || {
        assert!(daemon.0.try_wait().unwrap().is_none(), "daemon exited: {}", log_text());
        get(metrics_port, "/healthz")
    });
    assert_eq!(code, 200, "{body}");
    let live: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(live["live"], true);

    // The demo's plates are read and stored and go up; the band (300..600 px) is missed: camera_degraded.
    let (scrape, text) =
        wait_for("reads stored, published and acknowledged, and camera_degraded", Duration::from_secs(120), || {
            let (code, body) = get(metrics_port, "/metrics")?;
            assert_eq!(code, 200);
            let s = parse(&body);
            let ok = value(&s, "polewatch_reads_stored_total", &[("camera", "lane1")]).unwrap_or(0.0) >= 1.0
            && value(&s, "polewatch_mqtt_acked_total", &[("class", "reads")]).unwrap_or(0.0) >= 1.0
            && value(&s, "polewatch_camera_degraded", &[("camera", "lane1"), ("kind", "plate_height")]) == Some(1.0)
            // The store's count is at most 10 s old.
            && value(&s, "polewatch_store_reads", &[]).unwrap_or(0.0) >= 1.0;
            ok.then_some((s, body))
        });

    // Every metric the issue lists.
    let lane1 = [("camera", "lane1")];
    let per_camera = [
        "polewatch_camera_frames_decoded_total",
        "polewatch_camera_frames_queued_total",
        "polewatch_camera_frames_analysed_total",
        "polewatch_camera_reconnects_total",
        "polewatch_camera_last_frame_age_seconds",
        "polewatch_plates_per_frame",
        "polewatch_plate_height_pixels",
        "polewatch_reads_stored_total",
        "polewatch_camera_reads_this_hour",
    ];
    for name in per_camera {
        assert!(value(&scrape, name, &lane1).is_some(), "no {name}{{camera=\"lane1\"}} in\n{text}");
    }
    let states: f64 = ["connecting", "streaming", "backoff", "disabled"]
        .iter()
        .map(|st| value(&scrape, "polewatch_camera_state", &[("camera", "lane1"), ("state", st)]).unwrap())
        .sum();
    assert_eq!(states, 1.0, "one state at a time");
    assert_eq!(value(&scrape, "polewatch_camera_state", &[("camera", "lane2"), ("state", "streaming")]), Some(0.0));
    assert!(value(&scrape, "polewatch_camera_frames_decoded_total", &lane1).unwrap() > 0.0);
    assert!(value(&scrape, "polewatch_camera_frames_analysed_total", &lane1).unwrap() > 0.0);
    assert!(value(&scrape, "polewatch_camera_last_frame_age_seconds", &lane1).unwrap() < 30.0);
    for reason in ["not_sampled", "no_motion"] {
        assert!(
            value(&scrape, "polewatch_camera_frames_skipped_total", &[("camera", "lane1"), ("reason", reason)])
                .is_some(),
            "drops by {reason}"
        );
    }
    // Frames decoded at 10 fps, analysed at 5: half are skipped as not sampled.
    assert!(
        value(&scrape, "polewatch_camera_frames_skipped_total", &[("camera", "lane1"), ("reason", "not_sampled")])
            .unwrap()
            > 0.0
    );
    for h in ["polewatch_detector_seconds", "polewatch_ocr_seconds"] {
        assert!(value(&scrape, h, &[]).unwrap_or(0.0) > 0.0, "{h} observed");
        assert!(
            scrape.samples.iter().any(|x| x.metric == h && matches!(x.value, prometheus_parse::Value::Histogram(_))),
            "{h} is a histogram"
        );
    }
    for (name, class) in [
        ("polewatch_outbox_depth", "alerts"),
        ("polewatch_outbox_depth", "reads"),
        ("polewatch_outbox_oldest_age_seconds", "alerts"),
        ("polewatch_outbox_oldest_age_seconds", "reads"),
    ] {
        assert!(value(&scrape, name, &[("class", class)]).is_some(), "{name}{{class={class}}}");
    }
    assert_eq!(value(&scrape, "polewatch_mqtt_connected", &[]), Some(1.0));
    assert!(value(&scrape, "polewatch_mqtt_published_total", &[("class", "reads")]).unwrap() >= 1.0);
    for name in [
        "polewatch_store_bytes",
        "polewatch_store_reads",
        "polewatch_store_held_reads",
        "polewatch_disk_headroom_bytes",
        "polewatch_retention_last_sweep_timestamp_seconds",
        "polewatch_retention_last_sweep_purged",
        "polewatch_audit_seq",
        "process_resident_memory_bytes",
        "process_threads",
        "process_open_fds",
        "process_cpu_seconds_total",
    ] {
        assert!(value(&scrape, name, &[]).is_some(), "no {name} in\n{text}");
    }
    assert!(value(&scrape, "polewatch_store_reads", &[]).unwrap() >= 1.0);
    assert!(
        value(&scrape, "polewatch_retention_last_sweep_timestamp_seconds", &[]).unwrap() > 1.7e9,
        "the start-up sweep is recorded"
    );
    assert!(value(&scrape, "polewatch_audit_seq", &[]).unwrap() >= 1.0);
    assert!(value(&scrape, "process_resident_memory_bytes", &[]).unwrap() > 10e6);
    assert!(value(&scrape, "process_threads", &[]).unwrap() > 2.0);
    assert!(
        value(&scrape, "polewatch_camera_degraded_events_total", &[("camera", "lane1"), ("kind", "plate_height")])
            .unwrap()
            >= 1.0
    );

    // Readiness: lane2's file does not exist, so the box is not ready, and says why; the rest is fine.
    let (code, body) = get(metrics_port, "/readyz").unwrap();
    assert_eq!(code, 503, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready["ready"], false);
    let reasons: Vec<&str> = ready["reasons"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    // (lane1's file replays when it ends: for a moment it may be between plays too.)
    assert!(reasons.iter().any(|r| r.starts_with("camera lane2 is not streaming")), "{reasons:?}");
    assert!(reasons.iter().all(|r| r.starts_with("camera lane")), "only the cameras keep the box unready: {reasons:?}");
    assert_eq!(ready["uplink"]["connected"], true);
    assert_eq!(ready["store"]["accepts_reads"], true);
    assert_eq!(ready["degraded_cameras"], serde_json::json!(["lane1"]));
    assert_eq!(ready["cameras"][0]["degraded"][0]["kind"], "plate_height");
    assert!(
        log_text().contains("camera_degraded") || log_text().contains("camera lane1 degraded"),
        "the event is logged"
    );
    assert_eq!(get(metrics_port, "/nothing").unwrap().0, 404);

    // No plate text in anything served, nor in the log lines about telemetry.
    let served = format!("{text}\n{body}\n{}", get(metrics_port, "/healthz").unwrap().1);
    for pass in polewatch_dev::demo::passes() {
        assert!(!served.contains(&pass.text), "plate {} leaked into metrics or health", pass.text);
    }

    unsafe { libc::kill(daemon.0.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while daemon.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "daemon did not stop: {}", log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    // The learnt baselines are kept for the next start.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("telemetry.json")).unwrap()).unwrap();
    assert!(saved["baselines"]["lane1"]["mean"].as_array().unwrap().len() == 168);
}

#[test]
fn the_listener_can_be_turned_off_and_a_bad_address_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let base = format!(
        "[site]\nsite_id = \"s\"\ndevice_id = \"d\"\n[store]\npath = \"{}\"\n[access]\naudit_key_file = \"{}\"\n",
        dir.path().join("store").display(),
        dir.path().join("audit.key").display()
    );
    let p = dir.path().join("a.toml");
    std::fs::write(&p, format!("{base}[metrics]\nlisten = \"off\"\n")).unwrap();
    let c = polewatch::config::load(&p).unwrap().config;
    assert!(c.metrics.listen_addr().is_none());
    std::fs::write(&p, format!("{base}[metrics]\nlisten = \"\"\n")).unwrap();
    assert!(polewatch::config::load(&p).unwrap().config.metrics.listen_addr().is_none());
    std::fs::write(&p, &base).unwrap();
    let c = polewatch::config::load(&p).unwrap().config;
    assert_eq!(c.metrics.listen, "127.0.0.1:9899", "on by default, loopback only");
    std::fs::write(&p, format!("{base}[metrics]\nlisten = \"localhost\"\n[telemetry]\nrate_drop_ratio = 1.5\n"))
        .unwrap();
    let e = polewatch::config::load(&p).unwrap_err();
    let keys: Vec<&str> = e.problems().iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["metrics.listen", "telemetry.rate_drop_ratio"], "{e}");
    assert!(e.problems()[0].line == Some(9), "{e}");
}
