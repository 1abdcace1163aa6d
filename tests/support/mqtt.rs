//! The central server's side in tests: a subscriber on `polewatch/#` with its own client certificate.

use polewatch::uplink::tls;
use polewatch_dev::bench::rig::Pki;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, Transport};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages received: topic, payload, retain flag.
pub type Inbox = Arc<Mutex<Vec<(String, Vec<u8>, bool)>>>;

pub async fn subscriber(pki: &Pki, port: u16) -> (AsyncClient, Inbox) {
    tls::install_crypto_provider();
    let mut o = MqttOptions::new(format!("central-{}", fastrand::u32(..)), "127.0.0.1", port);
    o.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
        tls::client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key))).expect("client TLS"),
    )));
    o.set_max_packet_size(4 << 20, 4 << 20);
    o.set_clean_session(true);
    let (client, mut ev) = AsyncClient::new(o, 100);
    client.subscribe("polewatch/#", QoS::AtLeastOnce).await.expect("subscribe");
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
                    sink.lock().unwrap().push((p.topic.clone(), p.payload.to_vec(), p.retain))
                }
                Ok(_) => {}
                Err(_) => {
                    // rumqttc reads packets in bunches: those read with the end of a connection wait in
                    // its state and would only come out after a reconnect to the same broker, which may
                    // never come (a broker that was killed). Take them now.
                    while let Some(e) = ev.state.events.pop_front() {
                        if let Event::Incoming(Packet::Publish(p)) = e {
                            sink.lock().unwrap().push((p.topic.clone(), p.payload.to_vec(), p.retain));
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(10), subscribed.recv()).await.expect("subscribed");
    (client, inbox)
}

pub async fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ids of every read received in `reads` batches.
pub fn read_ids(inbox: &Inbox) -> Vec<String> {
    inbox
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _, _)| t.ends_with("/reads"))
        .flat_map(|(_, p, _)| {
            let v: serde_json::Value = serde_json::from_slice(p).unwrap();
            v["reads"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect::<Vec<_>>()
        })
        .collect()
}

/// An exact hit on a read's own plate, for alerts in tests.
pub fn exact_hit(plate: &str) -> polewatch::uplink::payload::HitV1 {
    polewatch::uplink::payload::HitV1 {
        list: "stolen".into(),
        entry: plate.into(),
        category: "stolen vehicle".into(),
        priority: 1,
        source: "test".into(),
        match_kind: "exact".into(),
        score: 1.0,
        matched_text: plate.into(),
    }
}
