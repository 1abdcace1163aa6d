//! `polewatch-dev bench uplink`: vehicle read → alert PUBACK latency through a local mosquitto with TLS,
//! and how fast a backlog drains after an outage.

use crate::bench::rig::{Broker, free_port, pki};
use crate::bench::{ScratchDir, print_figures, synthetic_read};
use crate::pipeline::hotlists::{AlertTarget, Hotlists};
use crate::pipeline::reads::ReadSink;
use crate::store::{Lane, Plate, Store, StoreOptions};
use crate::uplink::{CommandHandler, Settings, Topics, Uplink, tls};
use anyhow::{Result, anyhow};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

pub struct Options {
    pub alerts: usize,
    pub backlog: usize,
    pub json: bool,
}

struct NoCommands;

impl CommandHandler for NoCommands {
    fn handle(&self, _: &str, _: &crate::uplink::payload::CommandV1) -> Result<serde_json::Value, String> {
        Err("bench".into())
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn wait(what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + within;
    while !f() {
        if Instant::now() > deadline {
            return Err(anyhow!("timed out waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    Ok(())
}

pub fn run(o: &Options) -> Result<()> {
    tls::install_crypto_provider();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(run_async(o))
}

async fn run_async(o: &Options) -> Result<()> {
    let scratch = ScratchDir::new(None, "bench-uplink")?;
    let pki = pki(&scratch.0.join("pki"), "bench", &["127.0.0.1"], false)?;
    let broker = Broker::start(&pki, free_port()?)?;
    let settings = Settings {
        brokers: vec![("127.0.0.1".into(), broker.port)],
        client_id: "bench-pole".into(),
        keepalive: Duration::from_secs(30),
        tls: Some(tls::client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)))?),
        username: None,
        password: None,
        topics: Topics::new("polewatch", "bench", "pole"),
        site: "bench".into(),
        device: "pole".into(),
        reads_batch_max: 100,
        reads_batch_max_age: Duration::from_millis(500),
        max_packet_bytes: 1 << 20,
        max_inflight: 16,
        health_interval: Duration::from_secs(3600),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_secs(1),
        max_command_bytes: 1 << 20,
        max_inbound_bytes: 16 << 20,
        healthy_after: Duration::from_secs(2),
        command_key: None,
    };
    let mut opts = StoreOptions::at(scratch.0.join("store"));
    opts.queue_for_upload = true;
    let store = Arc::new(Store::open(&opts)?.0);
    let list = scratch.0.join("hot.csv");
    super::write_hotlist(&list, ["HOT1234"])?;
    let target = AlertTarget { site: "bench".into(), device: "pole".into(), max_packet_bytes: 1 << 20 };
    let hotlists = Arc::new(Hotlists::load(store.clone(), &[list], 14, target)?);
    let mut figures: Vec<(String, f64, &str)> = Vec::new();

    // 1. Latency: one hit at a time, from handing the read to the sink to the broker's PUBACK.
    {
        let uplink = Uplink::new(settings.clone(), store.clone(), Arc::new(NoCommands));
        let stats = uplink.stats();
        let sink =
            Arc::new(ReadSink { store: store.clone(), hotlists: hotlists.clone(), uplink: Some(uplink.waker()) });
        let stop = CancellationToken::new();
        let task = tokio::spawn(uplink.run(stop.clone()));
        wait("connection", Duration::from_secs(10), || stats.connected.load(Ordering::Relaxed)).await?;
        let mut lat = Vec::with_capacity(o.alerts);
        for i in 0..o.alerts {
            let mut r = synthetic_read(i as u64, jiff::Timestamp::now().as_millisecond(), 3000);
            r.plate = Plate::new("HOT1234")?;
            let before = stats.outbox_acked.load(Ordering::Relaxed);
            let t = Instant::now();
            let sink = sink.clone();
            tokio::task::spawn_blocking(move || sink.accept(r)).await??;
            wait("PUBACK", Duration::from_secs(10), || stats.outbox_acked.load(Ordering::Relaxed) > before).await?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        lat.sort_by(f64::total_cmp);
        figures.push(("alert_read_to_puback_p50_ms".into(), percentile(&lat, 0.5), "ms"));
        figures.push(("alert_read_to_puback_p99_ms".into(), percentile(&lat, 0.99), "ms"));
        stop.cancel();
        let _ = task.await;
    }

    // 2. Backlog: messages and reads queued during an "outage" (no uplink running), then drained.
    {
        let payload = vec![b'x'; 1024];
        for _ in 0..o.backlog {
            store.enqueue(Lane::Other, "bench", payload.clone())?;
        }
        let reads: Vec<_> =
            (0..o.backlog).map(|i| synthetic_read(1_000_000 + i as u64, 1_790_000_000_000 + i as i64, 0)).collect();
        for chunk in reads.chunks(1000) {
            store.put_reads(chunk.to_vec())?;
        }
        let uplink = Uplink::new(settings.clone(), store.clone(), Arc::new(NoCommands));
        let stats = uplink.stats();
        let stop = CancellationToken::new();
        let t = Instant::now();
        let task = tokio::spawn(uplink.run(stop.clone()));
        let target = o.backlog as u64;
        wait("message backlog", Duration::from_secs(300), || stats.outbox_acked.load(Ordering::Relaxed) >= target)
            .await?;
        let msg_s = t.elapsed().as_secs_f64();
        wait("read backlog", Duration::from_secs(300), || store.upload_queue_len() == 0).await?;
        let all_s = t.elapsed().as_secs_f64();
        figures.push((format!("outbox_drain_{}_messages_1kib_per_s", o.backlog), o.backlog as f64 / msg_s, "msg/s"));
        figures.push((
            format!("read_backlog_drain_{}_reads_per_s", o.backlog),
            o.backlog as f64 / (all_s - msg_s).max(1e-6),
            "reads/s",
        ));
        stop.cancel();
        let _ = task.await;
    }
    print_figures(&figures, o.json);
    Ok(())
}
