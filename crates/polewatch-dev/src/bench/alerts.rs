//! `polewatch-dev bench alerts`: the daemon's real alert path, timed from the camera's side. A rendered clip
//! of the demo scene (1080p, 15 fps; one plate at dusk) is served over RTSP on loopback by a child
//! process (so it can be killed -9), pulled by a `polewatch run` child ([`super::daemon_exe`]) with the shipped recognizer, the
//! tracker, the store and the MQTT uplink to a loopback mosquitto with TLS, and a hotlist holding three
//! of the five plates. A subscriber takes the alerts as a central server would.
//!
//! - frame → alert: from the moment the server sends the first frame in which a hotlisted plate is in
//!   view (the clip's timeline from the server's PLAY) to the alert reaching the subscriber.
//! - hotlisted / alerted / false alerts: hotlisted passes played whole; those with an alert (revision
//!   0) whose read was captured while the plate was in view; alerts that match no such pass, and second
//!   alerts for the same pass and entry.
//! - analysed fps: frames through the recognizer per second (the daemon's status lines, over windows
//!   inside one play, so reconnections do not count), against the configured analysis rate.
//! - reconnect: `--kills N` kills the RTSP server (SIGKILL) at the end of a play N times, restarts it a
//!   second later, and times the restart to the daemon's "camera streaming" line.

use crate::bench::ScratchDir;
use crate::bench::rig::{Broker, free_port, pki};
use anyhow::{Context, Result, anyhow};
use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Options {
    /// Model set file for the daemon's recognizer.
    pub models: PathBuf,
    pub kills: usize,
    pub analysis_fps: f64,
    /// Write the daemon's per-frame reads (its debug lines: plate text) to this file.
    pub frame_reads: Option<PathBuf>,
}

/// The clip: the demo scene at this size and rate.
const WIDTH: i32 = 1920;
const HEIGHT: i32 = 1080;
const FPS: i32 = 15;
const CLIP_S: f64 = 16.0;
/// Plates on the hotlist (of the demo's five): a US plate alone, the dusk EU plate, and one of the two
/// cars side by side.
const HOTLISTED: [&str; 3] = ["7KQX214", "MUC4821", "KPW5513"];
/// The server is killed this far into a play (after the last pass, before the clip's end).
const KILL_AT_S: f64 = 15.6;
/// And comes back after this long.
const DOWN: Duration = Duration::from_secs(1);

fn wall_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The RTSP server (the child): `file` on /cam, each client from the start; prints `START <wall ms>`
/// whenever a client's media starts playing, so the parent knows when each frame left.
pub fn serve_rtsp(port: u16, file: &Path) -> Result<()> {
    gst::init()?;
    let main_loop = gst::glib::MainLoop::new(None, false);
    let server = rtsp::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(&format!(
        "( filesrc location=\"{}\" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )",
        file.display()
    ));
    factory.connect_media_configure(|_, media| {
        media.connect_new_state(|_, state| {
            if state == gst::State::Playing as i32 {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "START {}", wall_ms());
                let _ = out.flush();
            }
        });
    });
    server.mount_points().context("RTSP mount points")?.add_factory("/cam", factory);
    let _id = server.attach(None).context("RTSP server attach")?;
    main_loop.run();
    Ok(())
}

/// A child process, killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines a child prints, each with the wall time it was read.
type Lines = Arc<Mutex<Vec<(i64, String)>>>;

fn collect(r: impl std::io::Read + Send + 'static, lines: Lines) {
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines().map_while(Result::ok) {
            lines.lock().unwrap_or_else(|p| p.into_inner()).push((wall_ms(), l));
        }
    });
}

struct Server {
    exe: PathBuf,
    port: u16,
    file: PathBuf,
    child: Option<Proc>,
    starts: Lines,
}

impl Server {
    fn start(&mut self) -> Result<i64> {
        let mut child = Command::new(&self.exe)
            .args(["debug", "rtsp-serve", "--port", &self.port.to_string(), "--file"])
            .arg(&self.file)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the RTSP server child")?;
        collect(child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?, self.starts.clone());
        self.child = Some(Proc(child));
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                return Err(anyhow!("the RTSP server did not start listening"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(wall_ms())
    }

    fn kill(&mut self) {
        self.child = None;
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn config(dir: &Path, o: &Options, pki: &crate::bench::rig::Pki, mqtt_port: u16, rtsp_port: u16) -> Result<PathBuf> {
    let hot = dir.join("hot.csv");
    super::write_hotlist(&hot, HOTLISTED)?;
    let models = o.models.canonicalize().with_context(|| format!("model set {}", o.models.display()))?;
    let cfg = dir.join("polewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nsite_id = \"bench\"\ndevice_id = \"pole\"\n\
             [[cameras]]\nid = \"lane1\"\nurl = \"rtsp://127.0.0.1:{rtsp_port}/cam\"\nanalysis_fps = {}\n\
             [recognizer]\nmodel_set = \"{}\"\n\
             [hotlists]\nfiles = [\"{}\"]\n\
             [mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {mqtt_port}\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n\
             [store]\npath = \"{}\"\n[store.retention]\nrequire_clock_sync = false\n\
             [access]\naudit_key_file = \"{}\"\n[logging]\nlevel = \"{}\"\ntarget = \"stderr\"\n\
             [service]\nstatus_log_interval_s = 2\n",
            o.analysis_fps,
            models.display(),
            hot.display(),
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display(),
            dir.join("store").display(),
            dir.join("audit.key").display(),
            if o.frame_reads.is_some() { "debug" } else { "info" },
        ),
    )?;
    Ok(cfg)
}

/// One alert message as received.
struct Received {
    at_ms: i64,
    revision: u64,
    entry: String,
    captured_ms: i64,
}

fn received(at_ms: i64, payload: &[u8]) -> Option<Received> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let captured = v["read"]["captured_at"].as_str()?.parse::<jiff::Timestamp>().ok()?.as_millisecond();
    Some(Received {
        at_ms,
        revision: v["revision"].as_u64().unwrap_or(0),
        entry: v["hit"]["entry"].as_str()?.to_string(),
        captured_ms: captured,
    })
}

/// The frames analysed so far, from a status line (`…; N frames analysed, …`).
fn analysed(line: &str) -> Option<u64> {
    let i = line.find(" frames analysed")?;
    line[..i].rsplit(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

pub fn run(o: &Options) -> Result<()> {
    crate::uplink::tls::install_crypto_provider();
    let scratch = ScratchDir::new(None, "bench-alerts")?;
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let video = scratch.0.join("clip.mp4");
    eprintln!("rendering {CLIP_S} s of {WIDTH}x{HEIGHT} demo video at {FPS} fps…");
    crate::demo::write_video(&video, WIDTH, HEIGHT, FPS, CLIP_S)?;
    let passes = crate::demo::passes();

    let pki = pki(&scratch.0.join("pki"), "bench", &["127.0.0.1"], false)?;
    let broker = Broker::start(&pki, free_port()?)?;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let inbox: Lines = Arc::default();
    let alerts: Arc<Mutex<Vec<Received>>> = Arc::default();
    {
        let mut mo = rumqttc::MqttOptions::new("bench-central", "127.0.0.1", broker.port);
        mo.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
            crate::uplink::tls::client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)))?,
        )));
        mo.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut ev) = rumqttc::AsyncClient::new(mo, 100);
        let sink = alerts.clone();
        let subscribed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sub = subscribed.clone();
        rt.spawn(async move {
            let _keep = client.clone();
            let _ = client.subscribe("polewatch/#", rumqttc::QoS::AtLeastOnce).await;
            loop {
                match ev.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        sub.store(true, std::sync::atomic::Ordering::Relaxed)
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) if p.topic.ends_with("/alerts") => {
                        if let Some(r) = received(wall_ms(), &p.payload) {
                            sink.lock().unwrap_or_else(|p| p.into_inner()).push(r);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while !subscribed.load(std::sync::atomic::Ordering::Relaxed) {
            if Instant::now() > deadline {
                return Err(anyhow!("the subscriber did not subscribe"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    let mut server =
        Server { exe: exe.clone(), port: free_port()?, file: video.clone(), child: None, starts: Arc::default() };
    server.start()?;
    let cfg = config(&scratch.0, o, &pki, broker.port, server.port)?;
    let mut daemon = Command::new(super::daemon_exe()?)
        .args(["run", "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the daemon")?;
    collect(daemon.stderr.take().ok_or_else(|| anyhow!("no stderr"))?, inbox.clone());
    let daemon = Proc(daemon);

    let start_lines = server.starts.clone();
    let starts =
        |n: usize| -> Option<i64> { start_lines.lock().unwrap_or_else(|p| p.into_inner()).get(n).map(|s| s.0) };
    let line_after = |needle: &str, after: i64| -> Option<i64> {
        inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(t, l)| *t >= after && l.contains(needle))
            .map(|(t, _)| *t)
    };
    let wait_for = |what: &str, within: Duration, f: &dyn Fn() -> bool| -> Result<()> {
        let deadline = Instant::now() + within;
        while !f() {
            if Instant::now() > deadline {
                let log: Vec<String> = inbox
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .rev()
                    .take(30)
                    .map(|(_, l)| l.clone())
                    .collect();
                return Err(anyhow!(
                    "timed out waiting for {what}; last daemon lines:\n{}",
                    log.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    };

    // Plays: each from its START to its end (a kill, or the clip's end for the last).
    let mut plays: Vec<(i64, i64)> = Vec::new();
    let mut reconnect_ms: Vec<f64> = Vec::new();
    let pid = daemon.0.id();
    let mut samples: Vec<(u64, u64, u64)> = Vec::new();
    for k in 0..=o.kills {
        wait_for("the clip to start playing", Duration::from_secs(120), &|| starts(k).is_some())?;
        let start = starts(k).unwrap_or_default();
        let end = start + (KILL_AT_S * 1000.0) as i64;
        let wait = end - wall_ms();
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait as u64));
        }
        samples.extend(super::proc_stats(&pid.to_string()));
        server.kill();
        plays.push((start, wall_ms()));
        if k == o.kills {
            // The last play: no restart; let the tracks close and the alerts arrive.
            std::thread::sleep(Duration::from_secs(3));
            break;
        }
        std::thread::sleep(DOWN);
        let back = server.start()?;
        wait_for("the camera to stream again", Duration::from_secs(120), &|| {
            line_after("camera streaming", back).is_some()
        })?;
        if let Some(t) = line_after("camera streaming", back) {
            reconnect_ms.push((t - back) as f64);
        }
        eprintln!("kill {}: back in {} ms", k + 1, reconnect_ms.last().copied().unwrap_or(f64::NAN));
    }

    // Stop the daemon (SIGTERM), so its shutdown is part of the run.
    // SAFETY: signalling our own child.
    unsafe { libc::kill(daemon.0.id() as libc::pid_t, libc::SIGTERM) };
    let mut daemon = daemon;
    let t = Instant::now();
    while matches!(daemon.0.try_wait(), Ok(None)) && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stop_ms = t.elapsed().as_millis();
    drop(daemon);
    server.kill();
    drop(broker);

    // Every pass of every whole play stored once: the reads of the daemon's store by plate and time.
    let (mut pass_count, mut stored_once, mut stored_more, mut not_exact) = (0usize, 0usize, 0usize, 0usize);
    {
        let mut opts = polewatch::store::StoreOptions::at(scratch.0.join("store"));
        opts.create = false;
        let (store, _) = polewatch::store::Store::open(&opts).context("opening the daemon's store after it stopped")?;
        let mut reads: Vec<(String, i64)> = Vec::new();
        store.for_each_read_since(0, |r| {
            reads.push((r.plate.expose().to_string(), r.captured_at_ms));
            true
        })?;
        for &(start, end) in &plays {
            for p in &passes {
                let appear = start + (p.start_s * 1000.0) as i64;
                let leave = start + ((p.start_s + p.duration_s) * 1000.0) as i64;
                if leave > end {
                    continue;
                }
                pass_count += 1;
                match reads.iter().filter(|(t, at)| *t == p.text && (appear..=leave + 500).contains(at)).count() {
                    0 => not_exact += 1,
                    1 => stored_once += 1,
                    _ => stored_more += 1,
                }
            }
        }
    }
    let span = |f: fn(&(u64, u64, u64)) -> u64| match (samples.first(), samples.iter().map(f).max()) {
        (Some(first), Some(max)) => format!("{} → {} (max {max})", f(first), samples.last().map(f).unwrap_or_default()),
        _ => "–".into(),
    };

    // Score the alerts against the passes of each play.
    let alerts = std::mem::take(&mut *alerts.lock().unwrap_or_else(|p| p.into_inner()));
    let mut latencies: Vec<f64> = Vec::new();
    // The split of frame → alert: from the plate's first frame to the frame the alert's read was taken
    // from (the plate becoming readable, the reads the tracker waits for, the transport and decode), and
    // from that frame's arrival at the daemon (the read's captured_at) to the subscriber.
    let (mut to_read, mut read_to_alert): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let (mut hotlisted, mut alerted, mut false_alerts, mut updates) = (0usize, 0usize, 0usize, 0usize);
    let mut used = vec![false; alerts.len()];
    for &(start, end) in &plays {
        for p in passes.iter().filter(|p| HOTLISTED.contains(&p.text.as_str())) {
            let appear = start + (p.start_s * 1000.0) as i64;
            let leave = start + ((p.start_s + p.duration_s) * 1000.0) as i64;
            if leave > end {
                continue;
            }
            hotlisted += 1;
            let mine: Vec<usize> = (0..alerts.len())
                .filter(|&i| {
                    !used[i]
                        && alerts[i].revision == 0
                        && alerts[i].entry == p.text
                        && alerts[i].captured_ms >= appear - 500
                        && alerts[i].captured_ms <= leave + 500
                })
                .collect();
            if let Some(&first) = mine.first() {
                alerted += 1;
                latencies.push((alerts[first].at_ms - appear) as f64);
                to_read.push((alerts[first].captured_ms - appear) as f64);
                read_to_alert.push((alerts[first].at_ms - alerts[first].captured_ms) as f64);
                eprintln!("play at {start}: {} alerted {} ms after it appeared", p.text, alerts[first].at_ms - appear);
            } else {
                eprintln!("play at {start}: {} NOT alerted", p.text);
            }
            // A second alert for the same pass and entry is one too many.
            false_alerts += mine.len().saturating_sub(1);
            for i in mine {
                used[i] = true;
            }
        }
    }
    for (i, a) in alerts.iter().enumerate() {
        if a.revision > 0 {
            updates += 1;
        } else if !used[i] {
            false_alerts += 1;
            let play = plays.iter().rev().find(|(s, _)| *s <= a.captured_ms).map(|(s, _)| *s).unwrap_or_default();
            eprintln!(
                "false alert: entry {}, read captured {} ms into the play at {play}",
                a.entry,
                a.captured_ms - play
            );
        }
    }
    if let Some(path) = &o.frame_reads {
        let lines = inbox.lock().unwrap_or_else(|p| p.into_inner());
        let all: Vec<String> = lines.iter().map(|(at, l)| format!("{at} {l}")).collect();
        std::fs::write(path, all.join("\n") + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("the daemon's {} lines (debug: frame reads) written to {}", all.len(), path.display());
    }
    // Hits the daemon took for a second track of a vehicle already alerted on (updates, not alerts).
    let folded: Vec<i64> = inbox
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter(|(_, l)| l.contains("second track of an alerted vehicle") || l.contains("folded into its alerts"))
        .map(|(t, _)| *t)
        .collect();
    for t in &folded {
        let play = plays.iter().rev().find(|(s, _)| s <= t).map(|(s, _)| *s).unwrap_or_default();
        eprintln!("second track folded into an earlier alert, logged {} ms into the play at {play}", t - play);
    }
    latencies.sort_by(f64::total_cmp);
    to_read.sort_by(f64::total_cmp);
    read_to_alert.sort_by(f64::total_cmp);
    reconnect_ms.sort_by(f64::total_cmp);

    // Analysed frames per second over status windows inside one play.
    let status: Vec<(i64, u64)> = inbox
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(|(t, l)| analysed(l).map(|n| (*t, n)))
        .collect();
    let (mut frames, mut secs) = (0u64, 0.0f64);
    for w in status.windows(2) {
        let ((t0, n0), (t1, n1)) = (w[0], w[1]);
        if plays.iter().any(|&(s, e)| t0 >= s + 1000 && t1 <= e.min(s + (KILL_AT_S * 1000.0) as i64)) && n1 >= n0 {
            frames += n1 - n0;
            secs += (t1 - t0) as f64 / 1000.0;
        }
    }
    let analysed_fps = if secs > 0.0 { frames as f64 / secs } else { f64::NAN };

    let p50 = percentile(&latencies, 0.5);
    let p99 = percentile(&latencies, 0.99);
    let (r50, rmax) = (percentile(&reconnect_ms, 0.5), reconnect_ms.last().copied().unwrap_or(f64::NAN));
    let rows: Vec<(&str, String)> = vec![
        (
            "clip",
            format!(
                "{WIDTH}x{HEIGHT} H.264 {FPS} fps, {CLIP_S} s, 5 passes (1 at dusk), {} hotlisted",
                HOTLISTED.len()
            ),
        ),
        ("plays", plays.len().to_string()),
        ("frame → alert p50", format!("{p50:.0} ms")),
        ("frame → alert p99", format!("{p99:.0} ms")),
        ("frame → alert max", format!("{:.0} ms", latencies.last().copied().unwrap_or(f64::NAN))),
        (
            "… plate's first frame → alert's read frame p50 / p99",
            format!("{:.0} / {:.0} ms", percentile(&to_read, 0.5), percentile(&to_read, 0.99)),
        ),
        (
            "… read frame (at the daemon) → alert p50 / p99",
            format!("{:.0} / {:.0} ms", percentile(&read_to_alert, 0.5), percentile(&read_to_alert, 0.99)),
        ),
        ("hotlisted passes", hotlisted.to_string()),
        ("alerted", alerted.to_string()),
        ("false alerts", false_alerts.to_string()),
        ("alert updates (revision ≥ 1)", updates.to_string()),
        ("second tracks folded into an earlier alert", folded.len().to_string()),
        ("analysed fps (target)", format!("{analysed_fps:.2} ({})", o.analysis_fps)),
        ("RTSP server kills", o.kills.to_string()),
        ("back after restart p50", format!("{r50:.0} ms")),
        ("back after restart max", format!("{rmax:.0} ms")),
        ("daemon exit after SIGTERM", format!("{stop_ms} ms")),
        ("passes of whole plays (all 5 plates)", pass_count.to_string()),
        (
            "… stored once with the exact text / more than once / not with the exact text",
            format!("{stored_once} / {stored_more} / {not_exact}"),
        ),
        ("daemon threads, first play → last (max)", span(|s| s.0)),
        ("daemon open fds, first play → last (max)", span(|s| s.1)),
        ("daemon RSS MiB, first play → last (max)", span(|s| s.2 / 1024)),
    ];
    println!("| figure | value |\n|---|---|");
    for (k, v) in &rows {
        println!("| {k} | {v} |");
    }
    let round =
        |x: f64| if x.is_finite() { serde_json::json!((x * 100.0).round() / 100.0) } else { serde_json::Value::Null };
    let obj = serde_json::json!({
        "frame_to_alert_ms": {"p50": round(p50), "p99": round(p99)},
        "read_frame_to_alert_ms": {"p50": round(percentile(&read_to_alert, 0.5)), "p99": round(percentile(&read_to_alert, 0.99))},
        "hotlisted": hotlisted,
        "alerted": alerted,
        "false_alerts": false_alerts,
        "analysed_fps": round(analysed_fps),
        "target_fps": o.analysis_fps,
        "reconnect_ms": {"p50": round(r50), "max": round(rmax)},
        "kills": o.kills,
        "passes": {"total": pass_count, "stored_once": stored_once, "stored_more": stored_more, "not_exact": not_exact},
        "threads": samples.iter().map(|s| s.0).collect::<Vec<_>>(),
        "fds": samples.iter().map(|s| s.1).collect::<Vec<_>>(),
        "rss_mib": samples.iter().map(|s| s.2 / 1024).collect::<Vec<_>>(),
    });
    println!("{obj}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_give_the_frames_analysed() {
        assert_eq!(
            analysed("status: store ok; cameras: lane1=streaming; 1234 frames analysed, 5 vehicle reads stored"),
            Some(1234)
        );
        assert_eq!(analysed("status: store ok; no frames"), None);
    }
}
