//! The MQTT uplink against a real mosquitto with TLS on 127.0.0.1: mTLS, certificate failures,
//! alerts before batched reads, large alerts, outage and restart without loss, inbound commands.

mod support;

use polewatch::store::{Lane, Store, StoreOptions};
use polewatch::uplink::payload::{AlertV1, CommandV1};
use polewatch::uplink::{CommandHandler, Settings, Topics, Uplink, tls};
use polewatch_dev::bench::synthetic_read;
use rumqttc::QoS;
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::mqtt::{exact_hit, read_ids, subscriber, wait_until};
use support::{Broker, Pki, free_port, pki};
use tokio_util::sync::CancellationToken;

struct Echo;

impl CommandHandler for Echo {
    fn handle(&self, name: &str, cmd: &CommandV1) -> Result<serde_json::Value, String> {
        match name {
            "echo" => Ok(serde_json::json!({ "by": cmd.by, "body": cmd.body })),
            other => Err(format!("unknown command `{other}`")),
        }
    }
}

fn settings(pki: &Pki, host: &str, port: u16) -> Settings {
    tls::install_crypto_provider();
    Settings {
        brokers: vec![(host.into(), port)],
        client_id: format!("pole-{}", fastrand::u32(..)),
        keepalive: Duration::from_secs(5),
        tls: Some(tls::client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key))).unwrap()),
        username: None,
        password: None,
        topics: Topics::new("polewatch", "site1", "pole-01"),
        site: "site1".into(),
        device: "pole-01".into(),
        reads_batch_max: 100,
        reads_batch_max_age: Duration::from_millis(200),
        max_packet_bytes: 1024 * 1024,
        max_inflight: 8,
        health_interval: Duration::from_secs(3600),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(500),
        max_command_bytes: 1 << 20,
        max_inbound_bytes: 16 << 20,
        healthy_after: Duration::from_secs(2),
        command_key: None,
    }
}

fn open_store(dir: &Path) -> Arc<Store> {
    let mut o = StoreOptions::at(dir.join("store"));
    o.queue_for_upload = true;
    Arc::new(Store::open(&o).unwrap().0)
}

fn alert(store: &Store, n: u64, crop_len: usize) -> uuid::Uuid {
    let read_id = store.put_read(synthetic_read(900_000 + n, 1_790_000_000_000 + n as i64, crop_len)).unwrap();
    let read = store.get_read(read_id).unwrap().unwrap();
    polewatch::alert::raise(store, "site1", "pole-01", &read, exact_hit(read.plate.expose()), false, 1 << 20)
        .unwrap()
        .id
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("config/schemas/{name}.v1.schema.json"));
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    jsonschema::validator_for(&s).unwrap()
}

fn assert_valid(v: &jsonschema::Validator, doc: &[u8]) {
    let j: serde_json::Value = serde_json::from_slice(doc).unwrap();
    let errors: Vec<String> = v.iter_errors(&j).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// The committed schemas are the ones the payload types derive (regenerate with `polewatch-dev schemas`, or
/// run this test with `POLEWATCH_WRITE_SCHEMAS=1`).
#[test]
fn committed_schemas_equal_the_derived_ones() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/schemas");
    let write = std::env::var_os("POLEWATCH_WRITE_SCHEMAS").is_some();
    let generated = polewatch::uplink::schemas::generated();
    assert_eq!(generated.len(), 5);
    for (name, text) in generated {
        if write {
            std::fs::write(root.join(name), &text).unwrap();
        }
        let committed = std::fs::read_to_string(root.join(name)).unwrap();
        assert!(
            committed == text,
            "config/schemas/{name} differs from what the payload types derive: run `cargo run -p polewatch-dev -- schemas`"
        );
    }
}

#[test]
fn published_schemas_accept_their_examples_and_our_types() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/schemas");
    for name in ["reads", "alert", "status", "health", "ack", "command"] {
        let example = std::fs::read(root.join(format!("examples/{name}.v1.json"))).unwrap();
        assert_valid(&schema(name), &example);
        // The example is what our types read and write.
        let roundtrip = match name {
            "reads" => serde_json::to_vec(
                &serde_json::from_slice::<polewatch::uplink::payload::ReadsBatchV1>(&example).unwrap(),
            ),
            "alert" => serde_json::to_vec(&serde_json::from_slice::<AlertV1>(&example).unwrap()),
            "status" => {
                serde_json::to_vec(&serde_json::from_slice::<polewatch::uplink::payload::StatusV1>(&example).unwrap())
            }
            "health" => {
                serde_json::to_vec(&serde_json::from_slice::<polewatch::uplink::payload::HealthV1>(&example).unwrap())
            }
            "ack" => {
                serde_json::to_vec(&serde_json::from_slice::<polewatch::uplink::payload::AckV1>(&example).unwrap())
            }
            _ => serde_json::to_vec(&serde_json::from_slice::<CommandV1>(&example).unwrap()),
        }
        .unwrap();
        assert_valid(&schema(name), &roundtrip);
    }
    // A schema that accepts anything would make the checks above worthless.
    assert!(!schema("alert").is_valid(&serde_json::json!({"v": 1, "type": "alert", "verification_required": false})));
}

/// A provisional alert and its update when the pass closes, as the box queues them, are valid alert
/// payloads: same id, revision 0 then 1, the stage and how sure; the first message is complete alone.
#[test]
fn provisional_alerts_and_their_updates_match_the_schema() {
    use polewatch::uplink::payload::{AlertStage, CertaintyV1, FinalReadV1};
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let read_id = store.put_read(synthetic_read(7, 1_790_000_000_000, 3000)).unwrap();
    let read = store.get_read(read_id).unwrap().unwrap();
    let sure = CertaintyV1 { basis: "agreement".into(), frames: 4, agreeing_frames: 3, confidence: 0.62 };
    let alert = polewatch::alert::raise_as(
        &store,
        "site1",
        "pole-01",
        &read,
        exact_hit(read.plate.expose()),
        false,
        1 << 20,
        AlertStage::Provisional,
        sure,
    )
    .unwrap();
    let closed = CertaintyV1 { basis: "pass".into(), frames: 11, agreeing_frames: 5, confidence: 0.41 };
    let vote = FinalReadV1 { plate: "T0000001".into(), confidence: 0.41, frames: 11, candidates: vec![] };
    polewatch::alert::update(&store, "site1", "pole-01", alert.id, &read, AlertStage::Withdrawn, closed, vote).unwrap();
    let msgs = store.outbox_peek(None, 10).unwrap();
    assert_eq!(msgs.len(), 2);
    let v = schema("alert");
    for m in &msgs {
        assert_valid(&v, &m.payload);
    }
    let first: AlertV1 = serde_json::from_slice(&msgs[0].payload).unwrap();
    let second: AlertV1 = serde_json::from_slice(&msgs[1].payload).unwrap();
    assert_eq!(
        (first.id.as_str(), first.revision, first.stage),
        (alert.id.to_string().as_str(), 0, AlertStage::Provisional)
    );
    assert!(first.crop_jpeg_base64.is_some() && first.final_read.is_none());
    assert_eq!((first.certainty.basis.as_str(), first.certainty.agreeing_frames), ("agreement", 3));
    assert_eq!((second.id, second.revision, second.stage), (first.id.clone(), 1, AlertStage::Withdrawn));
    assert_eq!(second.read.id, first.read.id, "the update names the same stored read");
    assert_eq!(second.final_read.unwrap().plate, "T0000001");
    // The record keeps the stage; a stage the schema does not know is refused.
    assert_eq!(polewatch::alert::stage_of(&store.alert(alert.id).unwrap().unwrap()), AlertStage::Withdrawn);
    let mut bad: serde_json::Value = serde_json::from_slice(&msgs[0].payload).unwrap();
    bad["stage"] = "maybe".into();
    assert!(!v.is_valid(&bad));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_delivers_alerts_first_then_batched_reads_and_removes_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "a", &["127.0.0.1"], false);
    let broker = Broker::start(&pki, free_port());
    let (_sub, inbox) = subscriber(&pki, broker.port).await;
    let store = open_store(dir.path());
    let reads: Vec<_> = (0..250).map(|i| synthetic_read(i, 1_790_000_000_000 + i as i64, 3000)).collect();
    let stored: HashSet<String> = store.put_reads(reads).unwrap().iter().map(|id| id.to_string()).collect();
    let big_alert = alert(&store, 1, 20_000);

    let uplink = Uplink::new(settings(&pki, "127.0.0.1", broker.port), store.clone(), Arc::new(Echo));
    let stats = uplink.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(uplink.run(stop.clone()));

    wait_until("all reads", Duration::from_secs(20), || read_ids(&inbox).len() >= 251).await;
    wait_until("queues drained", Duration::from_secs(10), || store.outbox_len() == 0 && store.upload_queue_len() == 0)
        .await;
    let msgs = inbox.lock().unwrap().clone();
    let topics: Vec<&str> = msgs.iter().map(|(t, _, _)| t.rsplit('/').next().unwrap()).collect();
    let first_alert = topics.iter().position(|t| *t == "alerts").expect("alert delivered");
    let first_reads = topics.iter().position(|t| *t == "reads").unwrap();
    assert!(first_alert < first_reads, "alerts go before reads: {topics:?}");
    let alert_msg = &msgs[first_alert].1;
    assert!(alert_msg.len() > 10 * 1024, "alert with its crop is {} bytes", alert_msg.len());
    assert_valid(&schema("alert"), alert_msg);
    let a: AlertV1 = serde_json::from_slice(alert_msg).unwrap();
    assert_eq!(a.id, big_alert.to_string());
    assert!(a.verification_required);

    let batches: Vec<&Vec<u8>> = msgs.iter().filter(|(t, _, _)| t.ends_with("/reads")).map(|(_, p, _)| p).collect();
    for b in &batches {
        assert_valid(&schema("reads"), b);
    }
    assert_eq!(batches.len(), 3, "250 reads + 1 alert read in batches of at most 100");
    let got: HashSet<String> = read_ids(&inbox).into_iter().collect();
    assert!(stored.is_subset(&got));
    let status = msgs.iter().find(|(t, _, _)| t.ends_with("/status")).expect("status published");
    assert!(String::from_utf8_lossy(&status.1).contains(r#""state":"online""#));
    assert_valid(&schema("status"), &status.1);
    assert_eq!(stats.reads_acked.load(Ordering::Relaxed), 251);
    assert_eq!(stats.outbox_acked.load(Ordering::Relaxed), 1);

    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

async fn refused(settings: Settings, store: Arc<Store>) -> String {
    let uplink = Uplink::new(settings, store, Arc::new(Echo));
    let stats = uplink.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(uplink.run(stop.clone()));
    wait_until("a connection error", Duration::from_secs(10), || stats.last_error.lock().unwrap().is_some()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stats.connects.load(Ordering::Relaxed), 0, "must never connect");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();

    stats.last_error.lock().unwrap().clone().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_fail_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let good = pki(&dir.path().join("good"), "good", &["127.0.0.1"], false);
    let other = pki(&dir.path().join("other"), "other", &["127.0.0.1"], false);
    let store = open_store(dir.path());
    let broker = Broker::start(&good, free_port());

    // A broker whose certificate comes from a CA we do not trust.
    let mut s = settings(&good, "127.0.0.1", broker.port);
    s.tls = Some(tls::client_config(&other.ca, Some((&good.client_cert, &good.client_key))).unwrap());
    let e = refused(s, store.clone()).await;
    assert!(e.contains("UnknownIssuer") || e.contains("unknown issuer"), "{e}");

    // The right CA, but the certificate names 127.0.0.1 and we connect to localhost.
    let e = refused(settings(&good, "localhost", broker.port), store.clone()).await;
    assert!(e.contains("NotValidForName") || e.contains("not valid for name"), "{e}");

    // An expired server certificate.
    let expired = pki(&dir.path().join("expired"), "expired", &["127.0.0.1"], true);
    let old_broker = Broker::start(&expired, free_port());
    let e = refused(settings(&expired, "127.0.0.1", old_broker.port), store.clone()).await;
    assert!(e.contains("Expired") || e.contains("expired"), "{e}");

    // Without a client certificate the broker refuses us (mTLS required).
    let mut s = settings(&good, "127.0.0.1", broker.port);
    s.tls = Some(tls::client_config(&good.ca, None).unwrap());
    let e = refused(s, store).await;
    assert!(!e.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn username_and_password_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "p", &["127.0.0.1"], false);
    let broker = Broker::start_with_password(&pki, free_port(), "pole-01", "correct horse battery");
    let store = open_store(dir.path());
    let mut s = settings(&pki, "127.0.0.1", broker.port);
    s.tls = Some(tls::client_config(&pki.ca, None).unwrap());
    s.username = Some("pole-01".into());
    s.password = Some("wrong".into());
    let e = refused(s.clone(), store.clone()).await;
    assert!(
        e.to_lowercase().contains("refused") || e.contains("NotAuthorized") || e.contains("BadUserNamePassword"),
        "{e}"
    );

    s.password = Some("correct horse battery".into());
    let uplink = Uplink::new(s, store, Arc::new(Echo));
    let stats = uplink.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(uplink.run(stop.clone()));
    wait_until("connected with the password", Duration::from_secs(10), || stats.connected.load(Ordering::Relaxed))
        .await;
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_and_restart_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "o", &["127.0.0.1"], false);
    let port = free_port();
    let mut broker = Broker::start(&pki, port);
    let (_sub, inbox) = subscriber(&pki, port).await;
    let mut expected: HashSet<String> = HashSet::new();
    let mut alerts: HashSet<String> = HashSet::new();
    {
        let store = open_store(dir.path());
        let uplink = Uplink::new(settings(&pki, "127.0.0.1", port), store.clone(), Arc::new(Echo));
        let stop = CancellationToken::new();
        let task = tokio::spawn(uplink.run(stop.clone()));
        for id in
            store.put_reads((0..50).map(|i| synthetic_read(i, 1_790_000_000_000 + i as i64, 100)).collect()).unwrap()
        {
            expected.insert(id.to_string());
        }
        wait_until("first reads", Duration::from_secs(20), || read_ids(&inbox).len() >= 50).await;

        broker.stop();
        for chunk in 0..20u64 {
            let reads = (0..100)
                .map(|i| synthetic_read(1000 + chunk * 100 + i, 1_790_000_100_000 + (chunk * 100 + i) as i64, 100));
            for id in store.put_reads(reads.collect()).unwrap() {
                expected.insert(id.to_string());
            }
            alerts.insert(alert(&store, chunk, 500).to_string());
        }
        // The process goes away during the outage, as in a power cut of the uplink's state.
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
    }
    // Alert reads are reads too.
    let store = open_store(dir.path());
    assert_eq!(store.outbox_len(), 20);
    for (_, r) in store.upload_queue_peek(None, 10_000).unwrap() {
        expected.insert(r.id.to_string());
    }
    let (_sub2, inbox2) = {
        broker.restart();
        subscriber(&pki, port).await
    };
    let uplink = Uplink::new(settings(&pki, "127.0.0.1", port), store.clone(), Arc::new(Echo));
    let stop = CancellationToken::new();
    let task = tokio::spawn(uplink.run(stop.clone()));
    wait_until("backlog drained", Duration::from_secs(60), || store.outbox_len() == 0 && store.upload_queue_len() == 0)
        .await;
    wait_until("backlog received", Duration::from_secs(10), || {
        let got: HashSet<String> = read_ids(&inbox).into_iter().chain(read_ids(&inbox2)).collect();
        expected.is_subset(&got)
    })
    .await;
    let msgs = inbox2.lock().unwrap().clone();
    let got_alerts: HashSet<String> = msgs
        .iter()
        .filter(|(t, _, _)| t.ends_with("/alerts"))
        .map(|(_, p, _)| serde_json::from_slice::<AlertV1>(p).unwrap().id)
        .collect();
    assert_eq!(got_alerts, alerts, "every alert arrives after the outage");
    let last_alert = msgs.iter().rposition(|(t, _, _)| t.ends_with("/alerts")).unwrap();
    let first_reads = msgs.iter().position(|(t, _, _)| t.ends_with("/reads")).unwrap();
    assert!(last_alert < first_reads, "the alerts go before the backlog of reads");
    assert_eq!(expected.len(), 2070);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_answered_on_the_ack_topic() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "c", &["127.0.0.1"], false);
    let broker = Broker::start(&pki, free_port());
    let (sub, inbox) = subscriber(&pki, broker.port).await;
    let store = open_store(dir.path());
    let uplink = Uplink::new(settings(&pki, "127.0.0.1", broker.port), store, Arc::new(Echo));
    let stats = uplink.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(uplink.run(stop.clone()));
    wait_until("connected", Duration::from_secs(10), || stats.connected.load(Ordering::Relaxed)).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the uplink's subscription
    let base = "polewatch/site1/pole-01/cmd";
    sub.publish(format!("{base}/echo"), QoS::AtLeastOnce, false, r#"{"v":1,"id":"c-1","by":"ops","body":{"x":1}}"#)
        .await
        .unwrap();
    sub.publish(format!("{base}/echo"), QoS::AtLeastOnce, false, "not json").await.unwrap();
    sub.publish(format!("{base}/nosuch"), QoS::AtLeastOnce, false, r#"{"v":1,"id":"c-3","by":"ops","body":{}}"#)
        .await
        .unwrap();
    wait_until("three acks", Duration::from_secs(10), || {
        inbox.lock().unwrap().iter().filter(|(t, _, _)| t.ends_with("/ack")).count() >= 3
    })
    .await;
    let acks: Vec<serde_json::Value> = inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _, _)| t.ends_with("/ack"))
        .map(|(_, p, _)| serde_json::from_slice(p).unwrap())
        .collect();
    for a in &acks {
        assert_valid(&schema("ack"), &serde_json::to_vec(a).unwrap());
    }
    let by_id = |id: Option<&str>| {
        acks.iter().find(|a| a["id"].as_str() == id).unwrap_or_else(|| panic!("no ack for {id:?}: {acks:?}"))
    };
    assert_eq!(by_id(Some("c-1"))["ok"], true);
    assert_eq!(by_id(Some("c-1"))["result"]["body"]["x"], 1);
    assert_eq!(by_id(None)["ok"], false);
    assert!(by_id(None)["error"].as_str().unwrap().contains("malformed command"));
    assert_eq!(by_id(Some("c-3"))["error"], "unknown command `nosuch`");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

#[test]
fn store_queues_each_read_for_upload_in_its_own_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(dir.path());
    let ids = store.put_reads((0..5).map(|i| synthetic_read(i, 1_790_000_000_000 + i as i64, 0)).collect()).unwrap();
    let queued = store.upload_queue_peek(None, 100).unwrap();
    assert_eq!(queued.iter().map(|(_, r)| r.id).collect::<Vec<_>>(), ids);
    let after = store.upload_queue_peek(Some(queued[1].0), 100).unwrap();
    assert_eq!(after.len(), 3);
    store.upload_queue_remove(&[queued[0].0]).unwrap();
    assert_eq!(store.upload_queue_len(), 4);
    let key = store.enqueue(Lane::Other, "health", b"{}".to_vec()).unwrap();
    let a = alert(&store, 1, 10);
    assert!(store.alert(a).unwrap().is_some());
    let peek = store.outbox_peek(None, 10).unwrap();
    assert_eq!(peek.len(), 2);
    assert_eq!(peek[0].topic, "alerts", "alerts sort before other messages");
    assert_eq!(peek[1].key, key);
}

// --- issue 15: inbound commands that must not take the uplink down, and that arrive once ------------

/// A handler that counts what it applied and keeps what it refused, as the daemon's audits them.
#[derive(Default)]
struct Recorder {
    applied: std::sync::Mutex<Vec<String>>,
    refused: std::sync::Mutex<Vec<(String, Option<String>, String)>>,
}

impl CommandHandler for Recorder {
    fn handle(&self, name: &str, cmd: &CommandV1) -> Result<serde_json::Value, String> {
        self.applied.lock().unwrap().push(cmd.id.clone());
        Ok(serde_json::json!({ "applied": name, "n": self.applied.lock().unwrap().len() }))
    }

    fn refused(&self, name: &str, id: Option<&str>, _by: Option<&str>, why: &str) -> Result<(), String> {
        self.refused.lock().unwrap().push((name.to_string(), id.map(str::to_string), why.to_string()));
        Ok(())
    }
}

fn acks(inbox: &support::mqtt::Inbox) -> Vec<serde_json::Value> {
    inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _, _)| t.ends_with("/ack"))
        .map(|(_, p, _)| serde_json::from_slice(p).unwrap())
        .collect()
}

fn cmd(id: &str, body: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"v": 1, "id": id, "by": "ops", "body": body})).unwrap()
}

/// The issue's finding: a 1.1 MB retained message on cmd/hotlist made rumqttc drop the connection, and
/// the uplink reconnected every 1.5 s, re-sending alerts each time. Now it is refused and answered,
/// the session stays up, and every alert goes out once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_oversized_command_is_refused_and_the_session_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "big", &["127.0.0.1"], false);
    let broker = Broker::start(&pki, free_port());
    let (sub, inbox) = subscriber(&pki, broker.port).await;
    let base = "polewatch/site1/pole-01/cmd";
    let big = cmd("huge-1", serde_json::json!({ "name": "state", "csv": "x".repeat(1_100_000) }));
    sub.publish(format!("{base}/hotlist"), QoS::AtLeastOnce, true, big).await.unwrap();
    sub.publish(format!("{base}/echo"), QoS::AtLeastOnce, true, cmd("ret-1", serde_json::json!({}))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let store = open_store(dir.path());
    let alert_ids: HashSet<String> = (0..5).map(|n| alert(&store, n, 2000).to_string()).collect();
    store.put_reads((0..100).map(|i| synthetic_read(i, 1_790_000_000_000 + i as i64, 100)).collect()).unwrap();
    let rec = Arc::new(Recorder::default());
    let mut s = settings(&pki, "127.0.0.1", broker.port);
    s.max_packet_bytes = 1024 * 1024;
    s.max_command_bytes = 1024 * 1024;
    let uplink = Uplink::new(s, store.clone(), rec.clone());
    let stats = uplink.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(uplink.run(stop.clone()));

    wait_until("both refusals answered", Duration::from_secs(20), || acks(&inbox).len() >= 2).await;
    wait_until("queues drained", Duration::from_secs(20), || store.outbox_len() == 0 && store.upload_queue_len() == 0)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        stats.connects.load(Ordering::Relaxed),
        1,
        "one connection, never dropped: {:?}",
        stats.last_error.lock().unwrap()
    );
    let a = acks(&inbox);
    let huge = a.iter().find(|x| x["command"] == "hotlist").expect("the oversized command is answered");
    assert_eq!(huge["ok"], false);
    assert!(huge["error"].as_str().unwrap().contains("bytes refused: the limit is 1048576 bytes"), "{huge}");
    let ret = a.iter().find(|x| x["id"] == "ret-1").expect("the retained command is answered");
    assert!(ret["error"].as_str().unwrap().contains("retained command refused"), "{ret}");
    assert!(rec.applied.lock().unwrap().is_empty(), "nothing applied");
    let refused = rec.refused.lock().unwrap().clone();
    assert_eq!(refused.len(), 2, "each refusal is recorded: {refused:?}");
    // Every alert went out exactly once.
    let msgs = inbox.lock().unwrap().clone();
    let sent: Vec<String> = msgs
        .iter()
        .filter(|(t, _, _)| t.ends_with("/alerts"))
        .map(|(_, p, _)| serde_json::from_slice::<AlertV1>(p).unwrap().id)
        .collect();
    assert_eq!(sent.len(), 5, "no alert re-sent");
    assert_eq!(sent.into_iter().collect::<HashSet<_>>(), alert_ids);
    assert_eq!(read_ids(&inbox).len(), 105);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

/// A broker that drops us right after every connect (here: a retained message over even the read
/// limit) must not make the uplink reconnect at the minimum backoff forever: the backoff starts over
/// only after a connection stayed up `healthy_after`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_grows_while_connections_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "bo", &["127.0.0.1"], false);
    let broker = Broker::start(&pki, free_port());
    let (sub, _inbox) = subscriber(&pki, broker.port).await;
    sub.publish("polewatch/site1/pole-01/cmd/hotlist", QoS::AtLeastOnce, true, vec![b'x'; 200_000]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let store = open_store(dir.path());
    let mut s = settings(&pki, "127.0.0.1", broker.port);
    s.max_packet_bytes = 64 * 1024;
    s.max_command_bytes = 32 * 1024;
    s.max_inbound_bytes = 64 * 1024;
    s.backoff_min = Duration::from_millis(200);
    s.backoff_max = Duration::from_secs(5);
    s.healthy_after = Duration::from_secs(10);
    let uplink = Uplink::new(s, store, Arc::new(Recorder::default()));
    let stats = uplink.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(uplink.run(stop.clone()));
    tokio::time::sleep(Duration::from_secs(6)).await;
    let connects = stats.connects.load(Ordering::Relaxed);
    // Reset after every connect (the old behaviour) reconnects every 200-400 ms: 15 or more in 6 s.
    // Growing 200 ms, 400, 800, 1600, 3200 (each up to twice that with jitter) allows at most 6.
    assert!((2..=7).contains(&connects), "{connects} connects in 6 s");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

/// Issue 15: a command sent while the box was offline was lost (clean session), and a repeated one
/// was applied again. Now the session persists, each id is applied once, and repeats are answered
/// with the first answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_sent_while_offline_arrive_and_each_id_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "off", &["127.0.0.1"], false);
    let broker = Broker::start(&pki, free_port());
    let (sub, inbox) = subscriber(&pki, broker.port).await;
    let store = open_store(dir.path());
    let s = settings(&pki, "127.0.0.1", broker.port);
    let rec = Arc::new(Recorder::default());
    let run = |store: Arc<Store>| {
        let uplink = Uplink::new(s.clone(), store, rec.clone());
        let stats = uplink.stats();
        let stop = CancellationToken::new();
        let task = tokio::spawn(uplink.run(stop.clone()));
        (stats, stop, task)
    };
    let (stats, stop, task) = run(store.clone());
    wait_until("connected", Duration::from_secs(10), || stats.connected.load(Ordering::Relaxed)).await;
    tokio::time::sleep(Duration::from_millis(500)).await; // the subscription
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();

    // Offline: the server sends a command.
    let base = "polewatch/site1/pole-01/cmd";
    sub.publish(format!("{base}/echo"), QoS::AtLeastOnce, false, cmd("off-1", serde_json::json!({"x": 1})))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (stats, stop, task) = run(store.clone());
    wait_until("the offline command's answer", Duration::from_secs(10), || {
        acks(&inbox).iter().any(|a| a["id"] == "off-1")
    })
    .await;
    assert_eq!(*rec.applied.lock().unwrap(), ["off-1"]);

    // The same id again (a server's retry): answered with the first answer, not applied again.
    sub.publish(format!("{base}/echo"), QoS::AtLeastOnce, false, cmd("off-1", serde_json::json!({"x": 1})))
        .await
        .unwrap();
    // Malformed and versionless commands are refused with why, and recorded.
    sub.publish(format!("{base}/echo"), QoS::AtLeastOnce, false, "{not json").await.unwrap();
    sub.publish(format!("{base}/echo"), QoS::AtLeastOnce, false, r#"{"v":2,"id":"v2","by":"ops","body":{}}"#)
        .await
        .unwrap();
    sub.publish(format!("{base}/echo"), QoS::AtLeastOnce, false, r#"{"v":1,"id":"nob","by":" ","body":{}}"#)
        .await
        .unwrap();
    wait_until("four more answers", Duration::from_secs(10), || acks(&inbox).len() >= 5).await;
    let a = acks(&inbox);
    for x in &a {
        assert_valid(&schema("ack"), &serde_json::to_vec(x).unwrap());
    }
    let repeats: Vec<&serde_json::Value> = a.iter().filter(|x| x["id"] == "off-1").collect();
    assert_eq!(repeats.len(), 2);
    assert_eq!(repeats[0]["result"], repeats[1]["result"], "the first answer again");
    assert_eq!(repeats[1]["duplicate"], true);
    assert_eq!(*rec.applied.lock().unwrap(), ["off-1"], "applied once");
    let refused: Vec<String> = rec.refused.lock().unwrap().iter().map(|(_, _, why)| why.clone()).collect();
    assert_eq!(refused.len(), 4, "{refused:?}");
    assert!(refused.iter().any(|w| w.contains("repeat of command off-1")));
    assert!(refused.iter().any(|w| w.contains("malformed command")));
    assert!(refused.iter().any(|w| w.contains("unsupported command version 2")));
    assert!(refused.iter().any(|w| w.contains("`by` must name")));
    // The answers survive a restart of the uplink: the id is still known.
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
    assert_eq!(stats.connects.load(Ordering::Relaxed), 1);
    let (_, stop, task) = run(store.clone());
    sub.publish(format!("{base}/echo"), QoS::AtLeastOnce, false, cmd("off-1", serde_json::json!({"x": 1})))
        .await
        .unwrap();
    wait_until("the third answer to off-1", Duration::from_secs(10), || {
        acks(&inbox).iter().filter(|x| x["id"] == "off-1").count() >= 3
    })
    .await;
    assert_eq!(rec.applied.lock().unwrap().len(), 1);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

/// With the server's ed25519 key configured, only commands it signed for this box and this command
/// are applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_configured_only_signed_commands_are_applied() {
    use base64::Engine;
    use ed25519_dalek::Signer;
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "sig", &["127.0.0.1"], false);
    let broker = Broker::start(&pki, free_port());
    let (sub, inbox) = subscriber(&pki, broker.port).await;
    let server = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let intruder = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
    let mut s = settings(&pki, "127.0.0.1", broker.port);
    s.command_key = Some(
        polewatch::config::parse_command_key(
            &server.verifying_key().to_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>(),
        )
        .unwrap(),
    );
    let rec = Arc::new(Recorder::default());
    let uplink = Uplink::new(s, open_store(dir.path()), rec.clone());
    let stats = uplink.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(uplink.run(stop.clone()));
    wait_until("connected", Duration::from_secs(10), || stats.connected.load(Ordering::Relaxed)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let topic = "polewatch/site1/pole-01/cmd/echo";
    let signed =
        |key: &ed25519_dalek::SigningKey, signed_topic: &str, id: &str, body: serde_json::Value| -> CommandV1 {
            let mut c = CommandV1 { v: 1, id: id.into(), by: "ops".into(), body, sig: None };
            let sig = key.sign(&polewatch::uplink::payload::command_signing_bytes(signed_topic, &c));
            c.sig = Some(base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()));
            c
        };
    let send = |c: &CommandV1| serde_json::to_vec(c).unwrap();
    sub.publish(
        topic,
        QoS::AtLeastOnce,
        false,
        send(&signed(&server, topic, "s-1", serde_json::json!({"b": 2, "a": [1, {"z": 1, "y": 2}]}))),
    )
    .await
    .unwrap();
    sub.publish(topic, QoS::AtLeastOnce, false, cmd("s-2", serde_json::json!({}))).await.unwrap();
    sub.publish(topic, QoS::AtLeastOnce, false, send(&signed(&intruder, topic, "s-3", serde_json::json!({}))))
        .await
        .unwrap();
    let mut changed = signed(&server, topic, "s-4", serde_json::json!({"hold": "C-1"}));
    changed.body = serde_json::json!({"hold": "C-2"});
    sub.publish(topic, QoS::AtLeastOnce, false, send(&changed)).await.unwrap();
    let other_box = signed(&server, "polewatch/site1/pole-02/cmd/echo", "s-5", serde_json::json!({}));
    sub.publish(topic, QoS::AtLeastOnce, false, send(&other_box)).await.unwrap();
    wait_until("five answers", Duration::from_secs(10), || acks(&inbox).len() >= 5).await;
    let a = acks(&inbox);
    let err = |id: &str| a.iter().find(|x| x["id"] == id).unwrap()["error"].as_str().unwrap_or_default().to_string();
    assert_eq!(*rec.applied.lock().unwrap(), ["s-1"]);
    assert!(err("s-2").contains("unsigned command refused"), "{}", err("s-2"));
    for id in ["s-3", "s-4", "s-5"] {
        assert!(err(id).contains("bad signature"), "{id}: {}", err(id));
    }
    assert_eq!(rec.refused.lock().unwrap().len(), 4);
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
}

/// Issue 17 part 4: `[mqtt] hosts` lists two brokers. The box sends to the first; it is killed
/// (SIGKILL) while reads and alerts keep coming; the box fails over to the second at once (no backoff
/// round) and a subscriber on each broker sees, together, every read and alert id. Copies only of what
/// was in flight when the first died, which the central side removes by id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connected_broker_dies_and_the_box_fails_over_to_the_next_with_nothing_lost() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "fo", &["127.0.0.1"], false);
    let mut first = Broker::start(&pki, free_port());
    let second = Broker::start(&pki, free_port());
    let (_sub_a, inbox_a) = subscriber(&pki, first.port).await;
    let (_sub_b, inbox_b) = subscriber(&pki, second.port).await;
    let store = open_store(dir.path());
    let mut s = settings(&pki, "127.0.0.1", first.port);
    s.brokers.push(("127.0.0.1".into(), second.port));
    // A backoff round would show as a wait of seconds before the second broker is tried.
    s.backoff_min = Duration::from_secs(5);
    s.backoff_max = Duration::from_secs(10);
    let (window, batch) = (s.max_inflight, s.reads_batch_max);
    let uplink = Uplink::new(s, store.clone(), Arc::new(Echo));
    let stats = uplink.stats();
    let stop = CancellationToken::new();
    let task = tokio::spawn(uplink.run(stop.clone()));

    let mut reads: HashSet<String> = HashSet::new();
    let mut alerts: HashSet<String> = HashSet::new();
    let first_name = format!("127.0.0.1:{}", first.port);
    let second_name = format!("127.0.0.1:{}", second.port);
    let mut killed_at = None;
    let mut failed_over = None;
    // 60 rounds of 20 reads every 25 ms (800 reads/s), an alert every fifth round; the first broker
    // dies after round 20.
    for round in 0..60u64 {
        let batch_reads =
            (0..20).map(|i| synthetic_read(round * 20 + i, 1_790_000_000_000 + (round * 20 + i) as i64, 100));
        reads.extend(store.put_reads(batch_reads.collect()).unwrap().iter().map(|id| id.to_string()));
        if round % 5 == 0 {
            let read_id =
                store.put_read(synthetic_read(900_000 + round, 1_790_000_000_000 + round as i64, 500)).unwrap();
            reads.insert(read_id.to_string());
            let read = store.get_read(read_id).unwrap().unwrap();
            let hit = exact_hit(read.plate.expose());
            alerts.insert(
                polewatch::alert::raise(&store, "site1", "pole-01", &read, hit, false, 1 << 20).unwrap().id.to_string(),
            );
        }
        if round == 20 {
            wait_until("reads at the first broker", Duration::from_secs(20), || !read_ids(&inbox_a).is_empty()).await;
            assert_eq!(*stats.broker.lock().unwrap(), first_name, "the first broker of the list is tried first");
            first.stop();
            killed_at = Some(std::time::Instant::now());
        }
        if killed_at.is_some()
            && failed_over.is_none()
            && stats.connected.load(Ordering::Relaxed)
            && *stats.broker.lock().unwrap() == second_name
        {
            failed_over = killed_at.map(|t| t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    wait_until("connected to the second broker", Duration::from_secs(10), || {
        stats.connected.load(Ordering::Relaxed) && *stats.broker.lock().unwrap() == second_name
    })
    .await;
    let failover = failed_over.unwrap_or_else(|| killed_at.unwrap().elapsed());
    wait_until("backlog drained", Duration::from_secs(30), || store.outbox_len() == 0 && store.upload_queue_len() == 0)
        .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got: HashSet<String> = read_ids(&inbox_a).into_iter().chain(read_ids(&inbox_b)).collect();
        let missing = reads.difference(&got).count();
        if missing == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{missing} of {} reads at neither broker (first: {}, second: {})",
            reads.len(),
            read_ids(&inbox_a).len(),
            read_ids(&inbox_b).len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all: Vec<String> = read_ids(&inbox_a).into_iter().chain(read_ids(&inbox_b)).collect();
    let unique: HashSet<&String> = all.iter().collect();
    let alert_ids: Vec<String> = [&inbox_a, &inbox_b]
        .iter()
        .flat_map(|i| i.lock().unwrap().clone())
        .filter(|(t, _, _)| t.ends_with("/alerts"))
        .map(|(_, p, _)| serde_json::from_slice::<AlertV1>(&p).unwrap().id)
        .collect();
    assert_eq!(
        alert_ids.iter().cloned().collect::<HashSet<_>>(),
        alerts,
        "every alert arrives, at one broker or the other"
    );
    // Nothing arrives that the box did not store: the rest are copies, removable by id.
    let copies = all.len() - unique.len();
    assert_eq!(unique.into_iter().cloned().collect::<HashSet<String>>(), reads);
    let alert_copies = alert_ids.len() - alerts.len();
    assert!(
        copies <= window * batch,
        "{copies} read copies; at most the window of {window} batches of {batch} was in flight"
    );
    assert!(alert_copies <= window, "{alert_copies} alert copies; at most the window was in flight");
    assert!(stats.connects.load(Ordering::Relaxed) >= 2);
    // Straight to the next broker: well under the 5 s a backoff round would take.
    assert!(failover < Duration::from_secs(4), "failover took {failover:?}");
    eprintln!(
        "failover: {failover:?}; {} reads and {} alerts, {copies} read and {alert_copies} alert copies removed by id",
        reads.len(),
        alerts.len()
    );
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), task).await.unwrap().unwrap();
}
