//! The daemon with its MQTT uplink: a backlog built during a broker outage survives a SIGKILL of the
//! daemon and is delivered, alerts first, once the broker is back; an alert is verified by command.

mod support;

use polewatch::store::{Decision, Store, StoreOptions};
use polewatch_dev::bench::synthetic_read;
use rumqttc::QoS;
use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::mqtt::{exact_hit, read_ids, subscriber, wait_until};
use support::{Broker, Pki, free_port, pki};

fn config(dir: &Path, pki: &Pki, port: u16) -> std::path::PathBuf {
    let cfg = dir.join("polewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nsite_id = \"site1\"\ndevice_id = \"pole-01\"\n\
             [store]\npath = \"{}\"\n[store.retention]\nrequire_clock_sync = false\n\
             [mqtt]\nenabled = true\nhost = \"127.0.0.1\"\nport = {port}\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"{}\"\n\
             reads_batch_max = 200\nreads_batch_max_age_ms = 200\nkeepalive_s = 5\n\
             [hotlists]\nretroactive_days = 3650\n[access]\naudit_key_file = \"{}\"\n[logging]\ntarget = \"stderr\"\n",
            dir.join("store").display(),
            pki.ca.display(),
            pki.client_cert.display(),
            pki.client_key.display(),
            dir.join("audit.key").display()
        ),
    )
    .unwrap();
    cfg
}

fn start(cfg: &Path, log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_polewatch"))
        .args(["run", "--config"])
        .arg(cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_survives_outage_and_sigkill_and_alerts_go_first() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "d", &["127.0.0.1"], false);
    let port = free_port();
    let cfg = config(dir.path(), &pki, port);

    // The backlog of an outage: 2,000 reads and 20 alerts stored while no broker answers.
    let mut reads = HashSet::new();
    let mut alerts = HashSet::new();
    {
        let mut o = StoreOptions::at(dir.path().join("store"));
        o.queue_for_upload = true;
        let (s, _) = Store::open(&o).unwrap();
        for c in 0..20u64 {
            let batch = (0..100).map(|i| synthetic_read(c * 100 + i, 1_790_000_000_000 + (c * 100 + i) as i64, 1500));
            let ids = s.put_reads(batch.collect()).unwrap();
            reads.extend(ids.iter().map(|id| id.to_string()));
            let read = s.get_read(ids[0]).unwrap().unwrap();
            alerts.insert(
                polewatch::alert::raise(&s, "site1", "pole-01", &read, exact_hit(read.plate.expose()), false, 1 << 20)
                    .unwrap()
                    .id
                    .to_string(),
            );
        }
        s.close().unwrap();
    }

    // The daemon starts with the broker down, and is killed.
    let mut d = start(&cfg, &dir.path().join("run1.log"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        d.try_wait().unwrap().is_none(),
        "daemon must keep running without a broker: {}",
        std::fs::read_to_string(dir.path().join("run1.log")).unwrap()
    );
    d.kill().unwrap();
    d.wait().unwrap();

    // The broker comes back, then the daemon.
    let _broker = Broker::start(&pki, port);
    let (central, inbox) = subscriber(&pki, port).await;
    let mut d = start(&cfg, &dir.path().join("run2.log"));
    let got_reads = || -> HashSet<String> { read_ids(&inbox).into_iter().collect() };
    wait_until("the whole backlog", Duration::from_secs(60), || reads.is_subset(&got_reads())).await;
    let msgs = inbox.lock().unwrap().clone();
    let got_alerts: HashSet<String> = msgs
        .iter()
        .filter(|(t, _, _)| t.ends_with("/alerts"))
        .map(|(_, p, _)| serde_json::from_slice::<serde_json::Value>(p).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got_alerts, alerts);
    let last_alert = msgs.iter().rposition(|(t, _, _)| t.ends_with("/alerts")).unwrap();
    let first_reads = msgs.iter().position(|(t, _, _)| t.ends_with("/reads")).unwrap();
    assert!(last_alert < first_reads, "alerts before the backlog of reads");

    // The central server verifies one alert.
    let alert_id = alerts.iter().next().unwrap().clone();
    let cmd = serde_json::json!({"v": 1, "id": "cmd-7", "by": "dispatcher 14", "body": {"alert_id": alert_id, "decision": "verified", "note": "confirmed with state system"}});
    central
        .publish("polewatch/site1/pole-01/cmd/alert", QoS::AtLeastOnce, false, serde_json::to_vec(&cmd).unwrap())
        .await
        .unwrap();
    wait_until("the ack", Duration::from_secs(10), || {
        inbox
            .lock()
            .unwrap()
            .iter()
            .any(|(t, p, _)| t.ends_with("/ack") && String::from_utf8_lossy(p).contains("cmd-7"))
    })
    .await;
    let ack = inbox.lock().unwrap().iter().find(|(t, _, _)| t.ends_with("/ack")).unwrap().1.clone();
    let ack: serde_json::Value = serde_json::from_slice(&ack).unwrap();
    assert_eq!(ack["ok"], true, "{ack}");

    // A pushed hotlist: a malformed one is refused whole, a good one finds a stored read retroactively.
    let bad = serde_json::json!({"v": 1, "id": "cmd-8", "by": "ops", "body": {"name": "state", "csv": "plate,region,category,priority,source,expiry,notes\nT0000042,,stolen,0,x,,\n"}});
    central
        .publish("polewatch/site1/pole-01/cmd/hotlist", QoS::AtLeastOnce, false, serde_json::to_vec(&bad).unwrap())
        .await
        .unwrap();
    let good = serde_json::json!({"v": 1, "id": "cmd-9", "by": "ops", "body": {"name": "state", "csv": "plate,region,category,priority,source,expiry,notes\nT0000042,,stolen,1,x,,\n"}});
    central
        .publish("polewatch/site1/pole-01/cmd/hotlist", QoS::AtLeastOnce, false, serde_json::to_vec(&good).unwrap())
        .await
        .unwrap();
    let ack_of = |id: &str| -> Option<serde_json::Value> {
        inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| t.ends_with("/ack"))
            .map(|(_, p, _)| serde_json::from_slice::<serde_json::Value>(p).unwrap())
            .find(|a| a["id"] == id)
    };
    wait_until("hotlist acks", Duration::from_secs(10), || ack_of("cmd-8").is_some() && ack_of("cmd-9").is_some())
        .await;
    let bad_ack = ack_of("cmd-8").unwrap();
    assert_eq!(bad_ack["ok"], false);
    assert!(bad_ack["error"].as_str().unwrap().contains("line 2"), "{bad_ack}");
    let good_ack = ack_of("cmd-9").unwrap();
    assert_eq!(good_ack["result"]["retroactive_alerts"], 1, "{good_ack}");
    wait_until("the retroactive alert", Duration::from_secs(10), || {
        inbox
            .lock()
            .unwrap()
            .iter()
            .any(|(t, p, _)| t.ends_with("/alerts") && String::from_utf8_lossy(p).contains(r#""retroactive":true"#))
    })
    .await;

    // Issue 15: every command received is audited, the refused ones with why, and none takes the
    // session down: malformed, unknown, no `by`, oversized, and a repeat of cmd-7. (Retained commands,
    // refused when the broker delivers them on subscribing, are in tests/uplink.rs: one published while
    // the box is subscribed reaches it with the retain flag cleared, as MQTT 3.1.1 forwards it.)
    let base = "polewatch/site1/pole-01/cmd";
    let rejects: Vec<(&str, Vec<u8>, bool)> = vec![
        ("alert", b"{not json".to_vec(), false),
        ("nosuch", br#"{"v":1,"id":"cmd-u","by":"ops","body":{}}"#.to_vec(), false),
        ("hold", br#"{"v":1,"id":"cmd-b","by":"","body":{}}"#.to_vec(), false),
        ("hotlist", serde_json::to_vec(&serde_json::json!({"v": 1, "id": "cmd-big", "by": "ops", "body": {"name": "x", "csv": "x".repeat(1_100_000)}})).unwrap(), false),
        ("alert", serde_json::to_vec(&cmd).unwrap(), false),
    ];
    let before = inbox.lock().unwrap().iter().filter(|(t, _, _)| t.ends_with("/ack")).count();
    for (name, payload, retain) in rejects {
        central.publish(format!("{base}/{name}"), QoS::AtLeastOnce, retain, payload).await.unwrap();
    }
    wait_until("five more acks", Duration::from_secs(20), || {
        inbox.lock().unwrap().iter().filter(|(t, _, _)| t.ends_with("/ack")).count() >= before + 5
    })
    .await;
    let dup = inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _, _)| t.ends_with("/ack"))
        .map(|(_, p, _)| serde_json::from_slice::<serde_json::Value>(p).unwrap())
        .filter(|a| a["id"] == "cmd-7")
        .count();
    assert_eq!(dup, 2, "the repeat of cmd-7 is answered");
    assert!(d.try_wait().unwrap().is_none(), "the daemon is still running");

    // SIGTERM: clean stop; the verification is in the store.
    unsafe { libc::kill(d.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while d.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "daemon did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, _) = Store::open(&StoreOptions::at(dir.path().join("store"))).unwrap();
    let rec = s.alert(alert_id.parse().unwrap()).unwrap().unwrap();
    let v = rec.verification.unwrap();
    assert_eq!(
        (v.decision, v.by.as_str(), v.note.as_str()),
        (Decision::Verified, "dispatcher 14", "confirmed with state system")
    );
    assert_eq!(s.outbox_len(), 0);
    assert_eq!(s.upload_queue_len(), 0);
    // The audit log holds every command: the applied ones, and the refused ones with why.
    let key = polewatch::access::audit::AuditKey::load(&dir.path().join("audit.key")).unwrap();
    let log = polewatch::access::audit::AuditLog::new(std::sync::Arc::new(s), key);
    let rejected = log.latest(100, None, Some("command_rejected")).unwrap();
    let details: Vec<String> = rejected.iter().map(|e| format!("{} | {} | {}", e.user, e.object, e.detail)).collect();
    assert_eq!(rejected.len(), 5, "{details:#?}");
    for want in
        ["malformed command", "unknown command `nosuch`", "`by` must name", "bytes refused", "repeat of command cmd-7"]
    {
        assert!(details.iter().any(|d| d.contains(want)), "no audit entry for {want}: {details:#?}");
    }
    assert_eq!(log.latest(100, None, Some("alert_verified")).unwrap().len(), 1, "cmd-7 applied once");
    log.verify(None).unwrap();
}

/// Issue 18 §3: the previous month's compliance report goes to the central server over MQTT once: on
/// `compliance_report_day` (1, at hour 0: due at any time this month, so at start) the daemon queues it,
/// the broker delivers it on `…/report` matching `config/schemas/report.v1.schema.json`, and a restart
/// the same month does not send it again (the audit log says it was queued).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_monthly_compliance_report_goes_to_the_central_server_once() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "d", &["127.0.0.1"], false);
    let port = free_port();
    let cfg = config(dir.path(), &pki, port);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("keepalive_s = 5\n", "keepalive_s = 5\ncompliance_report_day = 1\ncompliance_report_hour = 0\n");
    std::fs::write(&cfg, text).unwrap();
    let _broker = Broker::start(&pki, port);
    let (_central, inbox) = subscriber(&pki, port).await;
    let reports = || -> Vec<serde_json::Value> {
        inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| t == "polewatch/site1/pole-01/report")
            .map(|(_, p, _)| serde_json::from_slice(p).unwrap())
            .collect()
    };
    let stop = |mut d: Child| async move {
        unsafe { libc::kill(d.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while d.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "daemon did not stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let d = start(&cfg, &dir.path().join("run1.log"));
    wait_until("the monthly report", Duration::from_secs(60), || !reports().is_empty()).await;
    let r = reports().remove(0);
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/schemas/report.v1.schema.json")).unwrap(),
    )
    .unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = v.iter_errors(&r).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{r}");
    assert!(
        !v.is_valid(&serde_json::json!({"v": 1, "type": "compliance_report"})),
        "the schema refuses an empty report"
    );
    let now = jiff::ZonedDateTime::now().with_time_zone(jiff::tz::TimeZone::system());
    let month = now.date().first_of_month().checked_sub(jiff::Span::new().months(1)).unwrap();
    assert_eq!((r["site"].as_str(), r["device"].as_str()), (Some("site1"), Some("pole-01")));
    assert_eq!(r["period"], month.strftime("%Y-%m").to_string());
    assert_eq!(r["report"]["chain"]["ok"], true, "{}", r["report"]["chain"]);
    assert_eq!(r["summarised"], false);
    stop(d).await;

    // The same month again: started, connected (its retained status), and stopped without a second report.
    let before = inbox.lock().unwrap().len();
    let d = start(&cfg, &dir.path().join("run2.log"));
    wait_until("the second run's status", Duration::from_secs(30), || {
        inbox.lock().unwrap()[before..]
            .iter()
            .any(|(t, p, _)| t.ends_with("/status") && String::from_utf8_lossy(p).contains("online"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop(d).await;
    assert_eq!(reports().len(), 1, "one report a month");
    let (s, _) = Store::open(&StoreOptions::at(dir.path().join("store"))).unwrap();
    assert_eq!(s.outbox_len(), 0, "the report was acknowledged");
    let key = polewatch::access::audit::AuditKey::load(&dir.path().join("audit.key")).unwrap();
    let log = polewatch::access::audit::AuditLog::new(std::sync::Arc::new(s), key);
    let queued = log.latest(100, Some("system"), Some("audit_report")).unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(queued[0].object, format!("compliance report {} to MQTT", month.strftime("%Y-%m")));
    log.verify(None).unwrap();
}

fn status_schema() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/schemas/status.v1.schema.json");
    jsonschema::validator_for(&serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()).unwrap()
}

/// Issue 16 §1 and §6: the retained status carries the health summary, sent again every
/// `[metrics] status_interval_s` and valid against its JSON Schema; a clean stop leaves `offline` with
/// `clean_shutdown: true` as the retained status, and the last will (`clean_shutdown: false`) does not
/// replace it: the daemon ends its session with DISCONNECT, on which the broker drops the will.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_carries_health_and_a_clean_stop_is_not_replaced_by_the_will() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path(), "w", &["127.0.0.1"], false);
    let port = free_port();
    let cfg = config(dir.path(), &pki, port);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("[metrics]\nlisten = \"\"\nstatus_interval_s = 1\n");
    std::fs::write(&cfg, text).unwrap();
    let _broker = Broker::start(&pki, port);
    let (_central, inbox) = subscriber(&pki, port).await;
    let log = dir.path().join("run.log");
    let mut d = start(&cfg, &log);
    let statuses = |inbox: &support::mqtt::Inbox| -> Vec<(serde_json::Value, Vec<u8>, bool)> {
        inbox
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, _)| t == "polewatch/site1/pole-01/status")
            .map(|(_, p, r)| (serde_json::from_slice(p).unwrap(), p.clone(), *r))
            .collect()
    };
    wait_until("three statuses with health", Duration::from_secs(30), || {
        statuses(&inbox).iter().filter(|(s, _, _)| s["health"].is_object()).count() >= 3
    })
    .await;
    let schema = status_schema();
    for (s, raw, _) in statuses(&inbox) {
        let j: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let errors: Vec<String> = schema.iter_errors(&j).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{s}: {errors:?}");
        assert_eq!(s["state"], "online");
        assert_eq!(s["health"]["live"], true, "{s}");
        assert_eq!(s["health"]["ready"], true, "no camera, store open, uplink up: {s}");
        assert_eq!(s["health"]["reasons"], serde_json::json!([]), "{s}");
        assert_eq!(s["health"]["uplink"]["connected"], true, "{s}");
    }
    // The schema is not a blank cheque.
    let mut bad = statuses(&inbox)[0].0.clone();
    bad["health"]["ready"] = serde_json::json!("yes");
    assert!(!schema.is_valid(&bad));

    // A clean stop.
    let stop_at = jiff::Timestamp::now();
    unsafe { libc::kill(d.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while d.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "daemon did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for a will, were the broker to publish one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = statuses(&inbox);
    assert!(seen.iter().all(|(s, _, _)| s["clean_shutdown"] != false), "the will was published: {seen:?}");
    let last = &seen.last().unwrap().0;
    assert_eq!((last["state"].as_str(), last["clean_shutdown"].as_bool()), (Some("offline"), Some(true)), "{last}");

    // A server that subscribes now gets the clean stop as the retained status.
    let (_late, late_inbox) = subscriber(&pki, port).await;
    wait_until("the retained status", Duration::from_secs(10), || !statuses(&late_inbox).is_empty()).await;
    let (retained, raw, flag) = statuses(&late_inbox).remove(0);
    assert!(flag, "retained");
    assert_eq!(
        (retained["state"].as_str(), retained["clean_shutdown"].as_bool()),
        (Some("offline"), Some(true)),
        "{retained}"
    );
    let at: jiff::Timestamp = retained["at"].as_str().unwrap().parse().unwrap();
    assert!(
        at.as_millisecond() >= stop_at.as_millisecond() - 1000,
        "the retained status is the stop's ({at}), not the connection's"
    );
    let errors: Vec<String> =
        status_schema().iter_errors(&serde_json::from_slice(&raw).unwrap()).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");

    // And a link that breaks (SIGKILL) is told by the will: offline, clean_shutdown false.
    let mut d = start(&cfg, &dir.path().join("run2.log"));
    wait_until("online again", Duration::from_secs(30), || {
        statuses(&late_inbox).iter().any(|(s, _, _)| s["state"] == "online")
    })
    .await;
    d.kill().unwrap();
    d.wait().unwrap();
    wait_until("the will", Duration::from_secs(20), || {
        statuses(&late_inbox).iter().any(|(s, _, _)| s["clean_shutdown"] == false)
    })
    .await;
}
