//! Hotlists in the daemon's read path: a stored read is matched and alerted; a pushed list is rejected
//! whole or stored, put in force and checked against recent reads; everything survives a reopen.

use polewatch::pipeline::hotlists::{AlertTarget, Hotlists};
use polewatch::pipeline::reads::ReadSink;
use polewatch::store::{Candidate, Plate, Store, StoreOptions};
use polewatch_dev::bench::synthetic_read;
use std::path::Path;
use std::sync::Arc;

const HEADER: &str = "plate,region,category,priority,source,expiry,notes\n";

fn target() -> AlertTarget {
    AlertTarget { site: "s".into(), device: "d".into(), max_packet_bytes: 1 << 20 }
}

fn open(dir: &Path) -> Arc<Store> {
    let mut o = StoreOptions::at(dir.join("store"));
    o.queue_for_upload = true;
    Arc::new(Store::open(&o).unwrap().0)
}

fn now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn alerts_in_outbox(store: &Store) -> Vec<serde_json::Value> {
    store
        .outbox_peek(None, 1000)
        .unwrap()
        .into_iter()
        .filter(|m| m.topic == "alerts")
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect()
}

#[test]
fn a_read_that_hits_raises_one_alert_per_entry_with_how_it_matched() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stolen.csv");
    std::fs::write(&file, format!("{HEADER}ABC1234,,stolen vehicle,1,NCIC,,\n7AB*,,felony,2,BOLO,,\n")).unwrap();
    let store = open(dir.path());
    let hot = Arc::new(Hotlists::load(store.clone(), &[file], 14, target()).unwrap());
    let sink = ReadSink { store: store.clone(), hotlists: hot, uplink: None };

    let mut r = synthetic_read(1, now(), 800);
    r.plate = Plate::new("ABC1234").unwrap();
    let (id, alerts) = sink.accept(r).unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].read_id, id);
    assert!(store.get_read(id).unwrap().is_some(), "stored before it is matched");

    let mut r = synthetic_read(2, now(), 0);
    r.plate = Plate::new("7AB9999").unwrap();
    r.candidates = vec![
        Candidate { text: "7AB9999".into(), confidence: 0.8 },
        Candidate { text: "A8C1234".into(), confidence: 0.1 },
    ];
    let (_, alerts) = sink.accept(r).unwrap();
    assert_eq!(alerts.len(), 2, "wildcard on the best text, confusion on a candidate");

    let mut r = synthetic_read(3, now(), 0);
    r.plate = Plate::new("XYZ999").unwrap();
    assert!(sink.accept(r).unwrap().1.is_empty());

    let sent = alerts_in_outbox(&store);
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|a| a["verification_required"] == true && a["retroactive"] == false));
    assert_eq!(sent[0]["hit"]["match_kind"], "exact");
    assert_eq!(sent[0]["hit"]["score"], 1.0);
    assert!(sent[0]["crop_jpeg_base64"].is_string());
    let kinds: Vec<&str> = sent[1..].iter().map(|a| a["hit"]["match_kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"wildcard") && kinds.contains(&"confusion"), "{kinds:?}");
}

#[test]
fn pushed_lists_are_rejected_whole_or_applied_retroactively_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let hot = Hotlists::load(store.clone(), &[], 14, target()).unwrap();
    let mut old = synthetic_read(1, now() - 3 * 86_400_000, 0);
    old.plate = Plate::new("RETRO1").unwrap();
    store.put_read(old).unwrap();
    let mut ancient = synthetic_read(2, now() - 30 * 86_400_000, 0);
    ancient.plate = Plate::new("RETRO1").unwrap();
    store.put_read(ancient).unwrap();

    let bad = format!("{HEADER}GOOD1,,stolen,1,x,,\nBAD%,,stolen,1,x,,\nOK2,,stolen,12,x,,\n");
    let err = hot.push("state", &bad, "ops").unwrap_err().to_string();
    assert!(err.contains("line 3") && err.contains("line 4"), "{err}");
    assert!(!err.contains("BAD%"), "plate text must not be echoed: {err}");
    assert_eq!(hot.matcher().len(), 0, "nothing of a rejected list is in force");

    let (entries, retro) = hot.push("state", &format!("{HEADER}RETRO1,,stolen,1,x,,\n"), "ops").unwrap();
    assert_eq!((entries, retro), (1, 1), "only the read inside retroactive_days is alerted");
    let sent = alerts_in_outbox(&store);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["retroactive"], true);
    assert_eq!(sent[0]["hit"]["list"], "mqtt:state");

    // The same list again: no entry is new, no second retroactive alert.
    assert_eq!(hot.push("state", &format!("{HEADER}RETRO1,,stolen,1,x,,\n"), "ops").unwrap(), (1, 0));
    assert!(hot.push("../etc", "", "ops").is_err());
    drop(hot);

    let hot = Hotlists::load(store.clone(), &[], 14, target()).unwrap();
    assert_eq!(hot.matcher().len(), 1, "pushed lists survive a restart");
    assert!(hot.remove("state").unwrap());
    assert_eq!(hot.matcher().len(), 0);
}

#[test]
fn reload_keeps_the_lists_in_force_when_a_file_is_bad() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("l.csv");
    std::fs::write(&file, format!("{HEADER}AAA111,,stolen,1,x,,\n")).unwrap();
    let store = open(dir.path());
    let hot = Hotlists::load(store, std::slice::from_ref(&file), 14, target()).unwrap();
    std::fs::write(&file, format!("{HEADER}AAA111,,stolen,1,x,,\nBBB222,,stolen,one,x,,\n")).unwrap();
    let err = hot.reload_files(std::slice::from_ref(&file)).unwrap_err().to_string();
    assert!(err.contains("line 3"), "{err}");
    assert_eq!(hot.matcher().len(), 1);
    std::fs::write(&file, format!("{HEADER}AAA111,,stolen,1,x,,\nBBB222,,stolen,2,x,,\n")).unwrap();
    hot.reload_files(&[file]).unwrap();
    assert_eq!(hot.matcher().len(), 2);
}

#[test]
fn check_config_rejects_a_bad_hotlist_file() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("l.csv");
    std::fs::write(&list, format!("{HEADER}AAA111,,stolen,1,x,not-a-date,\n")).unwrap();
    let cfg = dir.path().join("p.toml");
    std::fs::write(
        &cfg,
        format!("[site]\nsite_id = \"s\"\ndevice_id = \"d\"\n[hotlists]\nfiles = [\"{}\"]\n", list.display()),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_polewatch"))
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 2"), "{err}");
}

/// Issue 15: a `7*`-like push raised 28 retroactive alerts at once. Now at most
/// `max_retroactive_alerts` go out, and one summary message counts the rest.
#[test]
fn a_broad_push_raises_at_most_the_limit_and_one_summary_for_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put_reads((0..40).map(|i| synthetic_read(i, now() - 60_000 + i as i64, 0)).collect()).unwrap();
    let hot = Hotlists::load(store.clone(), &[], 14, target()).unwrap().with_max_retroactive_alerts(10);
    let (entries, retro) = hot.push("broad", &format!("{HEADER}T*,,felony,1,BOLO,,\n"), "ops").unwrap();
    assert_eq!((entries, retro), (1, 10));
    let sent = alerts_in_outbox(&store);
    assert_eq!(sent.len(), 10);
    assert!(sent.iter().all(|a| a["retroactive"] == true));
    let summaries: Vec<serde_json::Value> = store
        .outbox_peek(None, 1000)
        .unwrap()
        .into_iter()
        .filter(|m| m.topic == "alerts/summary")
        .map(|m| serde_json::from_slice(&m.payload).unwrap())
        .collect();
    assert_eq!(summaries.len(), 1);
    let s = &summaries[0];
    assert_eq!(
        (s["type"].as_str(), s["alerts_sent"].as_u64(), s["hits_not_sent"].as_u64(), s["reads_not_sent"].as_u64()),
        (Some("retroactive_summary"), Some(10), Some(30), Some(30))
    );
    assert!(!s.to_string().contains("T0000"), "the summary carries no plates");
    // Within the limit there is no summary.
    let (_, retro) = hot.push("narrow", &format!("{HEADER}T0000003,,felony,1,BOLO,,\n"), "ops").unwrap();
    assert_eq!(retro, 1);
    assert_eq!(store.outbox_peek(None, 1000).unwrap().iter().filter(|m| m.topic == "alerts/summary").count(), 1);
}
