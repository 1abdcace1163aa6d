//! `polewatch bench outage`: a long broker outage at production rate, with a `kill -9` of the box in the
//! middle.
//!
//! The box is a child process (`polewatch debug produce`) running the daemon's own store, read sink,
//! hotlist matcher and MQTT uplink, fed synthetic reads at the set rate from N cameras (one read in
//! `alert_every` on a hotlisted plate) instead of from cameras and the recognizer. It reaches mosquitto
//! (TLS, client certificates) through a TCP proxy that the bench turns off for the outage: new
//! connections are refused and live ones cut, as when the broker or the link is down. The central
//! subscriber stays connected to mosquitto throughout and records every message.
//!
//! Reported: what was acknowledged (stored) and what arrived, by id (lost, duplicated), whether the
//! outage's alerts arrived before its reads, the backlog at reconnection (outbox, upload queue, store on
//! disk), the box's RSS over the outage, and the time from reconnection to the backlog drained.

use crate::bench::rig::{Broker, Pki, free_port, pki};
use tokio_util::sync::CancellationToken;

use crate::bench::{ScratchDir, print_figures, synthetic_read};
use crate::pipeline::hotlists::{AlertTarget, Hotlists};
use crate::pipeline::reads::ReadSink;
use crate::store::{Plate, Store, StoreOptions};
use crate::uplink::{CommandHandler, Settings, Topics, Uplink, tls};
use anyhow::{Context, Result, anyhow};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Options {
    pub cameras: usize,
    pub reads_per_s_per_camera: f64,
    pub alert_every: u64,
    /// Connected time before the outage.
    pub before: Duration,
    pub outage: Duration,
    pub json: bool,
}

struct NoCommands;

impl CommandHandler for NoCommands {
    fn handle(&self, _: &str, _: &crate::uplink::payload::CommandV1) -> Result<serde_json::Value, String> {
        Err("bench".into())
    }
}

fn hot_plate(n: u64) -> String {
    format!("HOT{:04}", n % 10_000)
}

/// The child: the daemon's store, sink, hotlists and uplink in `dir`, reads at `rate` per second from
/// `cameras` cameras, until killed. Prints `read <id>` and `alert <id>` once durable, and every second
/// `status <rss KiB> <outbox> <upload queue> <store bytes> <connected 0/1>`.
pub fn produce(dir: &Path, port: u16, rate: f64, cameras: usize, alert_every: u64, seq_start: u64) -> Result<()> {
    tls::install_crypto_provider();
    // The certificates the bench made (`pki(…, "outage", …)`).
    let pki_dir = dir.join("pki");
    let (ca, client_cert, client_key) =
        (pki_dir.join("outage-ca.pem"), pki_dir.join("outage-client.pem"), pki_dir.join("outage-client.key"));
    let settings = Settings {
        brokers: vec![("127.0.0.1".into(), port)],
        client_id: "outage-pole".into(),
        keepalive: Duration::from_secs(5),
        tls: Some(tls::client_config(&ca, Some((&client_cert, &client_key)))?),
        username: None,
        password: None,
        topics: Topics::new("polewatch", "bench", "pole"),
        site: "bench".into(),
        device: "pole".into(),
        reads_batch_max: 200,
        reads_batch_max_age: Duration::from_millis(500),
        max_packet_bytes: 1 << 20,
        max_inflight: 16,
        health_interval: Duration::from_secs(3600),
        backoff_min: Duration::from_millis(200),
        backoff_max: Duration::from_secs(5),
        max_command_bytes: 1 << 20,
        max_inbound_bytes: 16 << 20,
        healthy_after: Duration::from_secs(5),
        command_key: None,
    };
    let mut opts = StoreOptions::at(dir.join("store"));
    opts.queue_for_upload = true;
    let store = Arc::new(Store::open(&opts)?.0);
    let target = AlertTarget { site: "bench".into(), device: "pole".into(), max_packet_bytes: 1 << 20 };
    let hotlists = Arc::new(Hotlists::load(store.clone(), &[dir.join("hot.csv")], 0, target)?);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let uplink = Uplink::new(settings, store.clone(), Arc::new(NoCommands));
    let stats = uplink.stats();
    let sink = ReadSink { store: store.clone(), hotlists, uplink: Some(uplink.waker()) };
    let stop = CancellationToken::new();
    rt.spawn(uplink.run(stop.clone()));
    let out = Arc::new(Mutex::new(()));
    {
        let (store, out) = (store.clone(), out.clone());
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let _g = out.lock();
                println!(
                    "status {} {} {} {} {}",
                    super::rss_kib(),
                    store.outbox_len(),
                    store.upload_queue_len(),
                    store.size_on_disk().unwrap_or(0),
                    u8::from(stats.connected.load(Ordering::Relaxed))
                );
            }
        });
    }
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let base_ms = jiff::Timestamp::now().as_millisecond();
    let start = Instant::now();
    for (i, seq) in (seq_start..).enumerate() {
        // Paced against the start, so a slow write does not lower the rate.
        let due = start + period * i as u32;
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let mut r = synthetic_read(seq, base_ms + start.elapsed().as_millis() as i64, 3000);
        r.camera_id = format!("cam{}", seq % cameras.max(1) as u64);
        if seq % alert_every.max(1) == 0 {
            r.plate = Plate::new(&hot_plate(seq / alert_every.max(1)))?;
        }
        let (id, alerts) = sink.accept(r)?;
        let _g = out.lock();
        println!("read {id}");
        for a in alerts {
            println!("alert {}", a.id);
        }
    }
    Ok(())
}

/// A TCP proxy to `to` that can be turned off (refusing and cutting connections).
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(to: u16) -> Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let up = Arc::new(AtomicBool::new(true));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, live2) = (up.clone(), live.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                // Down: the connection is closed at once (the box sees its TLS handshake fail).
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else { continue };
                if let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) =
                    (client.try_clone(), server.try_clone(), client.try_clone(), server.try_clone())
                {
                    if let Ok(mut l) = live2.lock() {
                        l.push(c3);
                        l.push(s3);
                    }
                    pipe(client, server);
                    pipe(s2, c2);
                }
            }
        });
        Ok(Proxy { port, up, live })
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up && let Ok(mut l) = self.live.lock() {
            for s in l.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

#[derive(Default)]
struct Seen {
    reads: Vec<(String, Instant)>,
    alerts: Vec<(String, Instant)>,
    /// rss, outbox, upload queue, bytes, connected; with the time.
    status: Vec<([u64; 5], Instant)>,
}

struct Boxed {
    child: Child,
    reader: std::thread::JoinHandle<()>,
}

fn spawn_box(exe: &Path, dir: &Path, port: u16, o: &Options, seq_start: u64, seen: Arc<Mutex<Seen>>) -> Result<Boxed> {
    let mut child = Command::new(exe)
        .args(["debug", "produce", "--dir"])
        .arg(dir)
        .args(["--port", &port.to_string(), "--rate", &(o.reads_per_s_per_camera * o.cameras as f64).to_string()])
        .args([
            "--cameras",
            &o.cameras.to_string(),
            "--alert-every",
            &o.alert_every.to_string(),
            "--seq-start",
            &seq_start.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            let now = Instant::now();
            let p: Vec<&str> = line.split_whitespace().collect();
            let Ok(mut s) = seen.lock() else { return };
            match p.as_slice() {
                ["read", id] => s.reads.push((id.to_string(), now)),
                ["alert", id] => s.alerts.push((id.to_string(), now)),
                ["status", rest @ ..] if rest.len() == 5 => {
                    let v: Vec<u64> = rest.iter().map(|x| x.parse().unwrap_or(0)).collect();
                    s.status.push(([v[0], v[1], v[2], v[3], v[4]], now));
                }
                _ => {}
            }
        }
    });
    Ok(Boxed { child, reader })
}

fn kill(b: Boxed) -> Result<()> {
    let mut c = b.child;
    c.kill()?;
    c.wait()?;
    let _ = b.reader.join();
    Ok(())
}

type Inbox = Arc<Mutex<Vec<(String, Vec<u8>, Instant)>>>;

async fn subscriber(pki: &Pki, port: u16) -> Result<(rumqttc::AsyncClient, Inbox)> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, Transport};
    let mut o = MqttOptions::new(format!("central-{}", fastrand::u32(..)), "127.0.0.1", port);
    o.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls::client_config(
        &pki.ca,
        Some((&pki.client_cert, &pki.client_key)),
    )?)));
    o.set_max_packet_size(4 << 20, 4 << 20);
    o.set_clean_session(true);
    let (client, mut ev) = AsyncClient::new(o, 1000);
    client.subscribe("polewatch/#", QoS::AtLeastOnce).await?;
    let inbox: Inbox = Arc::default();
    let sink = inbox.clone();
    let (tx, mut subscribed) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = tx.send(()).await;
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if let Ok(mut i) = sink.lock() {
                        i.push((p.topic.clone(), p.payload.to_vec(), Instant::now()));
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed.recv()).await.context("subscribing")?;
    Ok((client, inbox))
}

/// An id with its arrival index and time.
type Arrival = (String, usize, Instant);
/// An acknowledged id with when it was acknowledged.
type Acked = (String, Instant);

/// Arrivals by id: reads (from every batch) and alerts, each with its arrival index and time.
fn arrivals(inbox: &Inbox) -> (Vec<Arrival>, Vec<Arrival>) {
    let (mut reads, mut alerts) = (Vec::new(), Vec::new());
    let Ok(msgs) = inbox.lock() else { return (reads, alerts) };
    for (i, (topic, payload, at)) in msgs.iter().enumerate() {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else { continue };
        if topic.ends_with("/reads") {
            for r in v["reads"].as_array().into_iter().flatten() {
                if let Some(id) = r["id"].as_str() {
                    reads.push((id.to_string(), i, *at));
                }
            }
        } else if topic.ends_with("/alerts")
            && let Some(id) = v["id"].as_str()
        {
            alerts.push((id.to_string(), i, *at));
        }
    }
    (reads, alerts)
}

pub fn run(o: &Options) -> Result<()> {
    tls::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run_async(o))
}

async fn run_async(o: &Options) -> Result<()> {
    let scratch = ScratchDir::new(None, "bench-outage")?;
    let dir: PathBuf = scratch.0.clone();
    let pki = pki(&dir.join("pki"), "outage", &["127.0.0.1"], false)?;
    super::write_hotlist(&dir.join("hot.csv"), (0..10_000).map(hot_plate))?;
    let broker = Broker::start(&pki, free_port()?)?;
    let proxy = Proxy::start(broker.port)?;
    let (_central, inbox) = subscriber(&pki, broker.port).await?;
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let t0 = Instant::now();
    let b = spawn_box(&exe, &dir, proxy.port, o, 0, seen.clone())?;
    tokio::time::sleep(o.before).await;
    // The outage.
    proxy.set_up(false);
    let down_at = Instant::now();
    let rss_before_outage = last_status(&seen).map_or(0, |s| s[0]);
    tokio::time::sleep(o.outage / 2).await;
    let status_before_kill = last_status(&seen).unwrap_or_default();
    kill(b)?;
    let b = spawn_box(&exe, &dir, proxy.port, o, 1_000_000_000, seen.clone())?;
    // The second box's first status (its RSS after restart), then the rest of the outage.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after_restart = last_status(&seen).map_or(0, |s| s[0]);
    tokio::time::sleep((o.outage / 2).saturating_sub(Duration::from_secs(3))).await;
    let at_reconnect = last_status(&seen).unwrap_or_default();
    let (acked_reads, acked_alerts): (Vec<Acked>, Vec<Acked>) = {
        let s = seen.lock().map_err(|_| anyhow!("poisoned"))?;
        (s.reads.clone(), s.alerts.clone())
    };
    proxy.set_up(true);
    let up_at = Instant::now();
    // Drained: every read and alert acknowledged before reconnection has arrived.
    let want_reads: HashSet<&str> = acked_reads.iter().map(|(id, _)| id.as_str()).collect();
    let want_alerts: HashSet<&str> = acked_alerts.iter().map(|(id, _)| id.as_str()).collect();
    let deadline = Instant::now() + o.outage.max(Duration::from_secs(120)) * 2;
    let drained_at = loop {
        let (r, a) = arrivals(&inbox);
        let got_r: HashSet<&str> = r.iter().map(|(id, _, _)| id.as_str()).collect();
        let got_a: HashSet<&str> = a.iter().map(|(id, _, _)| id.as_str()).collect();
        if want_reads.is_subset(&got_r) && want_alerts.is_subset(&got_a) {
            let last = r
                .iter()
                .filter(|(id, _, _)| want_reads.contains(id.as_str()))
                .chain(a.iter().filter(|(id, _, _)| want_alerts.contains(id.as_str())))
                .map(|(_, _, t)| *t)
                .max();
            break last;
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Production goes on a while after the drain; then everything acknowledged must have arrived.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let rss_after_drain = last_status(&seen).map_or(0, |s| s[0]);
    kill(b)?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (acked_reads, acked_alerts): (Vec<Acked>, Vec<Acked>) = {
        let s = seen.lock().map_err(|_| anyhow!("poisoned"))?;
        (s.reads.clone(), s.alerts.clone())
    };
    let (r, a) = arrivals(&inbox);
    let count = |v: &[(String, usize, Instant)]| -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for (id, _, _) in v {
            *m.entry(id.clone()).or_insert(0) += 1;
        }
        m
    };
    let (rc, ac) = (count(&r), count(&a));
    // Reads after the last ack seen before the final kill may have been cut with the box: only what was
    // acknowledged at least 5 s before the kill counts as due.
    let cutoff = Instant::now() - Duration::from_secs(7);
    let lost_reads = acked_reads.iter().filter(|(id, t)| *t < cutoff && !rc.contains_key(id)).count();
    let lost_alerts = acked_alerts.iter().filter(|(id, t)| *t < cutoff && !ac.contains_key(id)).count();
    let dup_reads: usize = rc.values().map(|n| n - 1).sum();
    let dup_alerts: usize = ac.values().map(|n| n - 1).sum();
    // Alerts first: every alert raised during the outage arrived before the first of the outage's reads.
    let outage_read_ids: HashSet<&str> =
        acked_reads.iter().filter(|(_, t)| *t >= down_at && *t < up_at).map(|(id, _)| id.as_str()).collect();
    let outage_alert_ids: HashSet<&str> =
        acked_alerts.iter().filter(|(_, t)| *t >= down_at && *t < up_at).map(|(id, _)| id.as_str()).collect();
    let first_outage_read =
        r.iter().filter(|(id, _, _)| outage_read_ids.contains(id.as_str())).map(|(_, i, _)| *i).min();
    let last_outage_alert =
        a.iter().filter(|(id, _, _)| outage_alert_ids.contains(id.as_str())).map(|(_, i, _)| *i).max();
    let alerts_first = match (last_outage_alert, first_outage_read) {
        (Some(la), Some(fr)) => la < fr,
        _ => false,
    };
    let figures: Vec<(String, f64, &str)> = vec![
        ("cameras".into(), o.cameras as f64, ""),
        ("reads_per_s".into(), o.reads_per_s_per_camera * o.cameras as f64, "reads/s"),
        ("outage_s".into(), o.outage.as_secs_f64(), "s"),
        ("reads_acknowledged".into(), acked_reads.len() as f64, ""),
        ("alerts_acknowledged".into(), acked_alerts.len() as f64, ""),
        ("reads_during_outage".into(), outage_read_ids.len() as f64, ""),
        ("alerts_during_outage".into(), outage_alert_ids.len() as f64, ""),
        ("reads_lost".into(), lost_reads as f64, ""),
        ("alerts_lost".into(), lost_alerts as f64, ""),
        ("reads_duplicated_downstream".into(), dup_reads as f64, ""),
        ("alerts_duplicated_downstream".into(), dup_alerts as f64, ""),
        ("outage_alerts_before_outage_reads".into(), f64::from(u8::from(alerts_first)), "1=yes"),
        ("backlog_outbox_at_reconnect".into(), at_reconnect[1] as f64, "msgs"),
        ("backlog_upload_queue_at_reconnect".into(), at_reconnect[2] as f64, "reads"),
        ("store_on_disk_at_reconnect_mib".into(), at_reconnect[3] as f64 / 1048576.0, "MiB"),
        ("backlog_upload_queue_before_kill".into(), status_before_kill[2] as f64, "reads"),
        ("drain_after_reconnect_s".into(), drained_at.map_or(f64::NAN, |t| t.duration_since(up_at).as_secs_f64()), "s"),
        ("rss_outage_start_mib".into(), rss_before_outage as f64 / 1024.0, "MiB"),
        ("rss_before_kill_mib".into(), status_before_kill[0] as f64 / 1024.0, "MiB"),
        ("rss_after_restart_mib".into(), rss_after_restart as f64 / 1024.0, "MiB"),
        ("rss_at_reconnect_mib".into(), at_reconnect[0] as f64 / 1024.0, "MiB"),
        ("rss_after_drain_mib".into(), rss_after_drain as f64 / 1024.0, "MiB"),
        ("elapsed_s".into(), t0.elapsed().as_secs_f64(), "s"),
    ];
    print_figures(&figures, o.json);
    drop(broker);
    Ok(())
}

fn last_status(seen: &Arc<Mutex<Seen>>) -> Option<[u64; 5]> {
    seen.lock().ok()?.status.last().map(|(s, _)| *s)
}
