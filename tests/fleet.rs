//! Issue 17 part 4: a fleet of boxes on a 3-node `nats-server` cluster (Debian's 2.9, MQTT on
//! JetStream replicated on all three nodes). Many simulated boxes run in this one process (the uplink
//! and the durable outbox only: each its own store, MQTT client id and TLS client certificate,
//! mapped by the cluster to a user that may publish only under its own topics), at a production rate,
//! with a backlog as after an outage of the central link. In the middle one node is killed (SIGKILL).
//! The central side: a durable MQTT consumer (persistent session, QoS 1) that dedupes by id, and NATS
//! queue-group workers that share the reads among themselves. The test fails on any read or alert
//! lost; it prints the figures the README quotes (messages/s, copies removed by id, failover time,
//! the queue group's split).
//!
//! Not in `make test` (it needs nats-server and takes minutes): `make test-fleet`. Knobs (environment):
//! FLEET_BOXES (100), FLEET_SECONDS (60), FLEET_READS_PER_S per box (5), FLEET_BACKLOG reads per box
//! queued before the start (300).

mod support;

use polewatch::store::{Store, StoreOptions};
use polewatch::uplink::payload::{AlertV1, CommandV1};
use polewatch::uplink::{CommandHandler, Settings, Stats, Topics, Uplink, tls};
use polewatch_dev::bench::synthetic_read;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, Transport};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::nats::{Cluster, User, copies, queue_worker};
use tokio_util::sync::CancellationToken;

struct NoCommands;

impl CommandHandler for NoCommands {
    fn handle(&self, name: &str, _cmd: &CommandV1) -> Result<serde_json::Value, String> {
        Err(format!("unknown command `{name}`"))
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
    pem: PathBuf,
}

impl Ca {
    fn new(dir: &Path) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, "polewatch fleet test CA");
        let issuer = CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap();
        let pem = dir.join("ca.pem");
        std::fs::write(&pem, issuer.pem()).unwrap();
        Ca { issuer, dir: dir.to_path_buf(), pem }
    }

    /// A leaf certificate with this common name (and these subject alternative names): its files.
    fn leaf(&self, cn: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, cn);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        let (c, k) = (self.dir.join(format!("{cn}.pem")), self.dir.join(format!("{cn}.key")));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }
}

struct Boxed {
    id: String,
    store: Arc<Store>,
    stats: Arc<Stats>,
    /// Read ids stored (alert reads included) and alert ids raised.
    reads: HashSet<String>,
    alerts: HashSet<String>,
    next: u64,
    wake: Arc<tokio::sync::Notify>,
}

fn settings(ca: &Path, cert: &Path, key: &Path, device: &str, brokers: Vec<(String, u16)>) -> Settings {
    Settings {
        brokers,
        client_id: device.to_string(),
        keepalive: Duration::from_secs(10),
        tls: Some(tls::client_config(ca, Some((cert, key))).unwrap()),
        username: None,
        password: None,
        topics: Topics::new("polewatch", "fleet", device),
        site: "fleet".into(),
        device: device.into(),
        reads_batch_max: 100,
        reads_batch_max_age: Duration::from_millis(1000),
        max_packet_bytes: 1 << 20,
        max_inflight: 16,
        health_interval: Duration::from_secs(3600),
        backoff_min: Duration::from_millis(500),
        backoff_max: Duration::from_secs(10),
        max_command_bytes: 64 << 10,
        max_inbound_bytes: 1 << 20,
        healthy_after: Duration::from_secs(10),
        command_key: None,
    }
}

/// What the durable central consumer received: (arrival, topic, payload).
type Inbox = Arc<Mutex<Vec<(Instant, String, Vec<u8>)>>>;

/// The central archive: an MQTT client with a persistent session and a QoS 1 subscription on every
/// box's reads and alerts (rumqttc's PUBACK only after the message is kept here). Like a box it has the
/// list of nodes and moves to the next when its node dies; its session, in JetStream, moves with it.
/// Returns once subscribed; the count of connections it made is the second value.
async fn central(ca: &Path, cert: &Path, key: &Path, ports: Vec<u16>) -> (Inbox, Arc<std::sync::atomic::AtomicUsize>) {
    let tls = tls::client_config(ca, Some((cert, key))).unwrap();
    let inbox: Inbox = Arc::default();
    let connects: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
    let (sink, count) = (inbox.clone(), connects.clone());
    let (tx, mut subscribed) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let mut k = 0;
        loop {
            let mut o = MqttOptions::new("central-archive", "127.0.0.1", ports[k % ports.len()]);
            o.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls.clone())));
            o.set_max_packet_size(4 << 20, 4 << 20);
            o.set_clean_session(false);
            o.set_keep_alive(Duration::from_secs(10));
            let (client, mut ev) = AsyncClient::new(o, 1000);
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        if !ack.session_present {
                            let _ = client.try_subscribe("polewatch/+/+/reads", QoS::AtLeastOnce);
                            let _ = client.try_subscribe("polewatch/+/+/alerts", QoS::AtLeastOnce);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = tx.try_send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        sink.lock().unwrap().push((Instant::now(), p.topic.clone(), p.payload.to_vec()))
                    }
                    Ok(_) => {}
                    Err(e) => {
                        // Packets read with the end of the connection wait in rumqttc's state: keep them.
                        while let Some(e) = ev.state.events.pop_front() {
                            if let Event::Incoming(Packet::Publish(p)) = e {
                                sink.lock().unwrap().push((Instant::now(), p.topic.clone(), p.payload.to_vec()));
                            }
                        }
                        eprintln!("central consumer: {e}");
                        break;
                    }
                }
            }
            k += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(30), subscribed.recv()).await.expect("central subscribed");
    }
    (inbox, connects)
}

fn read_ids_of(payload: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(payload).unwrap();
    v["reads"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs nats-server from Debian and minutes: make test-fleet"]
async fn a_fleet_on_a_three_node_nats_cluster_loses_nothing_when_a_node_dies() {
    let boxes_n = env("FLEET_BOXES", 100) as usize;
    let seconds = env("FLEET_SECONDS", 60);
    let rate = env("FLEET_READS_PER_S", 5);
    let backlog = env("FLEET_BACKLOG", 300);
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let ca = Ca::new(&pki_dir);
    let (server_cert, server_key) = ca.leaf("broker", &["127.0.0.1"]);
    let (central_cert, central_key) = ca.leaf("central-archive", &[]);
    let ids: Vec<String> = (0..boxes_n).map(|i| format!("pole-{i:03}")).collect();
    // Per-box ACLs: a box publishes only under its own topics and reads only its own commands.
    let mut users: Vec<User> = ids
        .iter()
        .map(|d| User {
            cn: d.clone(),
            publish: vec![format!("polewatch.fleet.{d}.>")],
            // `cmd/#` is `cmd` and `cmd.>` in NATS; QoS 1 subscriptions are JetStream consumers that
            // deliver on `$MQTT.sub.<id>`, which the client must be allowed to subscribe to.
            subscribe: vec![
                format!("polewatch.fleet.{d}.cmd"),
                format!("polewatch.fleet.{d}.cmd.>"),
                "$MQTT.sub.>".into(),
            ],
        })
        .collect();
    users.push(User {
        cn: "central-archive".into(),
        publish: vec!["polewatch.*.*.cmd.>".into()],
        subscribe: vec!["polewatch.>".into(), "$MQTT.sub.>".into()],
    });
    users.push(User { cn: "intruder".into(), publish: vec!["polewatch.fleet.pole-000.>".into()], subscribe: vec![] });
    let mut cluster = Cluster::start(&dir.path().join("nats"), &ca.pem, &server_cert, &server_key, &users);
    let nodes: Vec<(String, u16)> = cluster.nodes.iter().map(|n| ("127.0.0.1".to_string(), n.ports.mqtt)).collect();
    // The central archive starts on n1, with the other nodes to go to.
    let (inbox, central_connects) =
        central(&ca.pem, &central_cert, &central_key, nodes.iter().map(|n| n.1).collect()).await;
    let mut workers = Vec::new();
    // One worker on each node: the one on the node that dies goes with it, the others take its share.
    for (i, node) in [0usize, 1, 2].iter().enumerate() {
        workers.push(
            queue_worker(cluster.nodes[*node].ports.client, "polewatch.*.*.reads", "readers", &format!("worker-{i}"))
                .await,
        );
    }

    // Kill the leader of the stream that holds the QoS 1 messages for the archive: the hardest node to
    // lose (the archive's own node, as it happens, since its subscription created the stream).
    let killed = cluster.stream_leader("$MQTT_msgs").unwrap_or(0);
    let killed_name = format!("127.0.0.1:{}", nodes[killed].1);
    let leaders: Vec<String> = ["$MQTT_msgs", "$MQTT_sess", "$MQTT_rmsgs"]
        .iter()
        .map(|s| {
            format!("{s}: {}", cluster.stream_leader(s).map_or("?".to_string(), |i| cluster.nodes[i].name.clone()))
        })
        .collect();
    eprintln!("fleet: stream leaders {leaders:?}; the node to kill: {}", cluster.nodes[killed].name);

    // The boxes: each lists the nodes starting at a different one, as a fleet's configuration would.
    let mut boxes = Vec::new();
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    let setup = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        let (cert, key) = ca.leaf(id, &[]);
        let mut o = StoreOptions::at(dir.path().join("boxes").join(id));
        o.queue_for_upload = true;
        o.cache_capacity_bytes = 4 << 20;
        let store = Arc::new(Store::open(&o).unwrap().0);
        let mut b = Boxed {
            id: id.clone(),
            store,
            stats: Arc::default(),
            reads: HashSet::new(),
            alerts: HashSet::new(),
            next: 0,
            wake: Arc::default(),
        };
        // The backlog of an outage of the central link, queued before the uplink starts.
        if backlog > 0 {
            let reads =
                (0..backlog).map(|n| synthetic_read(i as u64 * 10_000_000 + n, 1_790_000_000_000 + n as i64, 200));
            b.reads.extend(b.store.put_reads(reads.collect()).unwrap().iter().map(|r| r.to_string()));
            b.next = backlog;
        }
        let brokers: Vec<(String, u16)> = (0..3).map(|k| nodes[(i + k) % 3].clone()).collect();
        let uplink = Uplink::new(settings(&ca.pem, &cert, &key, id, brokers), b.store.clone(), Arc::new(NoCommands));
        b.stats = uplink.stats();
        b.wake = uplink.waker();
        tasks.push(tokio::spawn(uplink.run(stop.clone())));
        boxes.push(b);
    }
    eprintln!("fleet: {boxes_n} boxes set up in {:.1?}", setup.elapsed());
    support::mqtt::wait_until("every box connected", Duration::from_secs(120), || {
        boxes.iter().all(|b| b.stats.connected.load(Ordering::Relaxed))
    })
    .await;
    let started = Instant::now();
    eprintln!("fleet: all connected after {:.1?}", setup.elapsed());

    // The ACL holds: a certificate allowed only pole-000's topics cannot publish as pole-001.
    {
        let (ic, ik) = ca.leaf("intruder", &[]);
        let mut o = MqttOptions::new("intruder", "127.0.0.1", nodes[2].1);
        o.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
            tls::client_config(&ca.pem, Some((&ic, &ik))).unwrap(),
        )));
        let (client, mut ev) = AsyncClient::new(o, 10);
        client
            .publish("polewatch/fleet/pole-001/alerts", QoS::AtLeastOnce, false, b"{\"forged\":true}".to_vec())
            .await
            .unwrap();
        let refused = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap_or(false);
        assert!(refused, "the intruder's publish is answered or its connection closed");
        // The forged message must not reach the archive (checked at the end).
    }

    // Production: every box stores `rate` reads a second (one in 50 an alert) for `seconds`; the node
    // the first third of the fleet is on dies half way.
    let tick = Duration::from_millis(200);
    let per_tick = (rate as f64 * tick.as_secs_f64()).max(1.0) as u64;
    let mut killed_at = None;
    let on_killed: Vec<usize> = (0..boxes_n).filter(|i| i % 3 == killed).collect();
    let mut in_flight_at_kill = 0;
    let mut failover: HashMap<usize, Duration> = HashMap::new();
    let mut t = tokio::time::interval(tick);
    while started.elapsed() < Duration::from_secs(seconds) {
        t.tick().await;
        for (i, b) in boxes.iter_mut().enumerate() {
            let reads = (0..per_tick).map(|n| {
                synthetic_read(i as u64 * 10_000_000 + b.next + n, 1_790_000_000_000 + (b.next + n) as i64, 200)
            });
            b.reads.extend(b.store.put_reads(reads.collect()).unwrap().iter().map(|r| r.to_string()));
            b.next += per_tick;
            if b.next % 50 < per_tick {
                let rid = b
                    .store
                    .put_read(synthetic_read(i as u64 * 10_000_000 + 5_000_000 + b.next, 1_790_000_000_000, 500))
                    .unwrap();
                b.reads.insert(rid.to_string());
                let read = b.store.get_read(rid).unwrap().unwrap();
                let hit = support::mqtt::exact_hit(read.plate.expose());
                let a = polewatch::alert::raise(&b.store, "fleet", &b.id, &read, hit, false, 1 << 20).unwrap();
                b.alerts.insert(a.id.to_string());
                // As the daemon does: an alert goes out at once, not at the next batch tick.
                b.wake.notify_one();
            }
        }
        if killed_at.is_none() && started.elapsed() >= Duration::from_secs(seconds / 2) {
            assert!(
                on_killed.iter().all(|i| *boxes[*i].stats.broker.lock().unwrap() == killed_name),
                "a third of the fleet is on the node to be killed"
            );
            // What the boxes on it have sent and not seen acknowledged: the copies to expect.
            in_flight_at_kill = on_killed
                .iter()
                .map(|i| boxes[*i].store.outbox_len() + boxes[*i].store.upload_queue_len())
                .sum::<usize>();
            cluster.nodes[killed].kill();
            killed_at = Some(Instant::now());
            eprintln!("fleet: killed {} at {:.1?}", cluster.nodes[killed].name, started.elapsed());
        }
        if let Some(k) = killed_at {
            for i in &on_killed {
                let s = &boxes[*i].stats;
                if !failover.contains_key(i)
                    && s.connected.load(Ordering::Relaxed)
                    && *s.broker.lock().unwrap() != killed_name
                {
                    failover.insert(*i, k.elapsed());
                }
            }
        }
    }
    let produced_for = started.elapsed();
    let killed_at = killed_at.expect("the node was killed");
    support::mqtt::wait_until("every box of the killed node reconnected elsewhere", Duration::from_secs(60), || {
        on_killed.iter().all(|i| {
            boxes[*i].stats.connected.load(Ordering::Relaxed) && *boxes[*i].stats.broker.lock().unwrap() != killed_name
        })
    })
    .await;
    for i in &on_killed {
        failover.entry(*i).or_insert_with(|| killed_at.elapsed());
    }
    support::mqtt::wait_until("every box's outbox and upload queue drained", Duration::from_secs(180), || {
        boxes.iter().all(|b| b.store.outbox_len() == 0 && b.store.upload_queue_len() == 0)
    })
    .await;
    let drained = started.elapsed();
    let want_reads: usize = boxes.iter().map(|b| b.reads.len()).sum();
    let want_alerts: usize = boxes.iter().map(|b| b.alerts.len()).sum();
    let received = |inbox: &Inbox| -> (HashSet<String>, HashSet<String>) {
        let msgs = inbox.lock().unwrap();
        let reads =
            msgs.iter().filter(|(_, t, _)| t.ends_with("/reads")).flat_map(|(_, _, p)| read_ids_of(p)).collect();
        let alerts = msgs
            .iter()
            .filter(|(_, t, _)| t.ends_with("/alerts"))
            .filter_map(|(_, _, p)| serde_json::from_slice::<AlertV1>(p).ok())
            .map(|a| a.id)
            .collect();
        (reads, alerts)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (r, a) = received(&inbox);
        if (r.len() >= want_reads && a.len() >= want_alerts) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.cancel();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
    }

    // Dedupe by id, as the central side does, and count what was lost.
    let msgs = inbox.lock().unwrap().clone();
    let all_reads: Vec<String> =
        msgs.iter().filter(|(_, t, _)| t.ends_with("/reads")).flat_map(|(_, _, p)| read_ids_of(p)).collect();
    let forged = msgs.iter().filter(|(_, _, p)| p.windows(8).any(|w| w == b"\"forged\"")).count();
    let all_alerts: Vec<String> = msgs
        .iter()
        .filter(|(_, t, _)| t.ends_with("/alerts"))
        .filter_map(|(_, _, p)| serde_json::from_slice::<AlertV1>(p).ok())
        .map(|a| a.id)
        .collect();
    let read_copies = copies(all_reads.iter().map(String::as_str));
    let alert_copies = copies(all_alerts.iter().map(String::as_str));
    let mut lost_reads = 0;
    let mut lost_alerts = 0;
    let mut lost_on: HashMap<&str, usize> = HashMap::new();
    for b in &boxes {
        for r in &b.reads {
            if !read_copies.contains_key(r.as_str()) {
                lost_reads += 1;
                *lost_on.entry(b.id.as_str()).or_default() += 1;
            }
        }
        lost_alerts += b.alerts.iter().filter(|a| !alert_copies.contains_key(a.as_str())).count();
    }
    let extra_reads = all_reads.len() - read_copies.len();
    let extra_alerts = all_alerts.len() - alert_copies.len();
    let unknown = read_copies.keys().filter(|id| !boxes.iter().any(|b| b.reads.contains(**id))).count();

    let messages = msgs.len();
    let first = msgs.first().map(|m| m.0).unwrap_or(started);
    let last = msgs.last().map(|m| m.0).unwrap_or(started);
    let span = last.duration_since(first).as_secs_f64().max(0.001);
    // Steady state: the second after the backlog was through to the kill, per second.
    let per_second = |from: Instant, to: Instant| -> f64 {
        let n = msgs.iter().filter(|m| m.0 >= from && m.0 < to).count();
        n as f64 / to.duration_since(from).as_secs_f64().max(0.001)
    };
    let peak = {
        let mut buckets: HashMap<u64, usize> = HashMap::new();
        for m in &msgs {
            *buckets.entry(m.0.duration_since(first).as_secs()).or_default() += 1;
        }
        buckets.values().copied().max().unwrap_or(0)
    };
    let mut fo: Vec<Duration> = failover.values().copied().collect();
    fo.sort();
    let per_worker: Vec<usize> = workers.iter().map(|w| w.lock().unwrap().len()).collect();
    let worker_ids: Vec<String> = workers
        .iter()
        .flat_map(|w| w.lock().unwrap().iter().flat_map(|(_, p)| read_ids_of(p)).collect::<Vec<_>>())
        .collect();
    let worker_unique: HashSet<&String> = worker_ids.iter().collect();
    let batches_at_archive = msgs.iter().filter(|(_, t, _)| t.ends_with("/reads")).count();

    eprintln!(
        "fleet figures ({boxes_n} boxes, {rate} reads/s each, 1 in 50 an alert, backlog {backlog} reads each, {seconds} s, node {} killed at {:.1?}):",
        cluster.nodes[killed].name,
        killed_at.duration_since(started)
    );
    eprintln!(
        "  produced: {want_reads} reads, {want_alerts} alerts in {produced_for:.1?}; all boxes drained at {drained:.1?}"
    );
    eprintln!(
        "  central archive (MQTT QoS 1, persistent): {messages} messages ({batches_at_archive} read batches), {:.0} msg/s average over {span:.1} s, peak {peak} msg/s; {:.0} reads/s average",
        messages as f64 / span,
        all_reads.len() as f64 / span
    );
    eprintln!(
        "  steady state before the kill: {:.0} msg/s",
        per_second(first + Duration::from_secs(5).min(killed_at.duration_since(first) / 2), killed_at)
    );
    eprintln!(
        "  lost: {lost_reads} reads, {lost_alerts} alerts; copies removed by id: {extra_reads} reads, {extra_alerts} alerts; unknown ids: {unknown}"
    );
    eprintln!(
        "  waiting in the outboxes and upload queues of the killed node's boxes at the kill: {in_flight_at_kill} (alerts + reads, sent or not)"
    );
    eprintln!(
        "  failover of the {} boxes on the killed node: p50 {:.2?}, max {:.2?}",
        fo.len(),
        percentile(&fo, 0.5),
        percentile(&fo, 1.0)
    );
    eprintln!(
        "  the central archive connected {} times (it moves to the next node as the boxes do)",
        central_connects.load(Ordering::Relaxed)
    );
    eprintln!(
        "  queue group `readers` (3 NATS workers, one per node, core NATS, at most once): {per_worker:?} batches, {} read ids, {} distinct",
        worker_ids.len(),
        worker_unique.len()
    );
    if !lost_on.is_empty() {
        eprintln!("  lost per box: {lost_on:?}");
    }

    // Every permission violation the nodes logged is the intruder's.
    let violations: Vec<String> = cluster
        .nodes
        .iter()
        .flat_map(|n| n.log_text().lines().filter(|l| l.contains("Violation")).map(str::to_string).collect::<Vec<_>>())
        .collect();
    eprintln!("  permission violations logged: {} (the intruder's forged publish)", violations.len());
    assert!(!violations.is_empty() && violations.iter().all(|l| l.contains("CN=intruder")), "{violations:#?}");
    assert_eq!(forged, 0, "a certificate allowed only pole-000's topics published as pole-001");
    assert_eq!(unknown, 0, "ids nobody stored arrived");
    assert_eq!((lost_reads, lost_alerts), (0, 0), "reads and alerts lost");
    assert_eq!(fo.len(), on_killed.len());
    // Every box of the killed node found another: the list is tried at once, not after a backoff round.
    assert!(percentile(&fo, 1.0) < Duration::from_secs(30), "failover took up to {:?}", percentile(&fo, 1.0));
    // The queue group shares the work: each worker got some (the killed node's until it died).
    assert!(per_worker.iter().all(|n| *n > 0), "every queue-group worker got a share: {per_worker:?}");
    assert!(worker_unique.len() <= want_reads);
}
