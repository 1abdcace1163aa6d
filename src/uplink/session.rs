//! The MQTT session: drains the durable outbox (alerts first, then batched reads), deletes entries only
//! on their PUBACK, answers inbound commands, and reconnects with backoff and jitter, going through the
//! configured brokers in order ([`super::brokers`]).
//!
//! rumqttc's `publish()` returns when queued, and a broker that lost the session drops unacknowledged
//! publishes; so each connection gets a fresh client and fresh bookkeeping ([`super::delivery`]: packet
//! ids paired with our FIFO of requests, the cursors over the outbox and the upload queue), and whatever
//! was not acknowledged when a connection ends is sent again from the store on the next. PUBACKs already
//! read when a connection fails are still applied, so what was acknowledged is not sent again.
//!
//! Inbound commands: a persistent session (clean session off, the stable client id) so QoS 1 commands
//! sent while the box is offline arrive; each is acknowledged to the broker only once answered and
//! recorded, answered once per id (a repeat gets the first answer, `duplicate: true`), and refused with
//! its reason (and audited through the handler) when over the size limit, retained, malformed or, with
//! a configured key, not signed. Backoff starts over only after a connection stayed up `healthy_after`.

use super::brokers::{Rotation, Wait};
use super::delivery::{Delivery, Pending};
use super::payload::{AckV1, CommandV1, HealthV1, ReadsBatchV1, StatusV1, command_signing_bytes};
use super::topics::Topics;
use crate::clock::now_ms;
use crate::store::Store;
use crate::store::commands::{CommandDone, MAX_COMMAND_ID_BYTES};
use backon::BackoffBuilder;
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS, Transport};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Settings {
    /// The brokers, host and port, tried in this order (see [`Rotation`]); at least one.
    pub brokers: Vec<(String, u16)>,
    pub client_id: String,
    pub keepalive: Duration,
    /// None only when the configuration explicitly asks for plaintext (lab use).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub topics: Topics,
    pub site: String,
    pub device: String,
    pub reads_batch_max: usize,
    pub reads_batch_max_age: Duration,
    pub max_packet_bytes: usize,
    pub max_inflight: usize,
    pub health_interval: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Inbound commands larger than this are refused (answered with an error; the session stays up).
    pub max_command_bytes: usize,
    /// The largest packet read from the broker at all (a bigger one ends the connection).
    pub max_inbound_bytes: usize,
    /// Backoff starts over only after a connection stayed up this long.
    pub healthy_after: Duration,
    /// When set, commands must be signed by this key (see [`command_signing_bytes`]).
    pub command_key: Option<ed25519_dalek::VerifyingKey>,
}

/// Handles an inbound command (`…/cmd/<name>`); the result goes back on `…/ack`.
pub trait CommandHandler: Send + Sync + 'static {
    fn handle(&self, name: &str, cmd: &CommandV1) -> Result<serde_json::Value, String>;

    /// A command received and not applied (over the size limit, retained, malformed, unsigned, a
    /// repeat): record it with why. `id` and `by` when the command could be read. Err: not recorded.
    fn refused(&self, name: &str, id: Option<&str>, by: Option<&str>, why: &str) -> Result<(), String> {
        let _ = (name, id, by, why);
        Ok(())
    }
}

/// Counters for status, health and metrics.
#[derive(Default)]
pub struct Stats {
    pub connected: AtomicBool,
    pub connects: AtomicU64,
    pub outbox_acked: AtomicU64,
    pub reads_acked: AtomicU64,
    /// Outbox messages (alerts first) and reads published, acknowledged or not.
    pub published_outbox: AtomicU64,
    pub published_reads: AtomicU64,
    pub commands: AtomicU64,
    pub commands_refused: AtomicU64,
    pub dropped_oversized: AtomicU64,
    /// `host:port` of the broker connected to, or last tried.
    pub broker: Mutex<String>,
    pub last_error: Mutex<Option<String>>,
}

/// Hands a message to the client and records it in the connection's bookkeeping.
fn publish(
    client: &AsyncClient,
    d: &mut Delivery,
    topic: String,
    qos: QoS,
    retain: bool,
    payload: Vec<u8>,
    p: Pending,
) -> Result<(), ConnError> {
    client.try_publish(topic, qos, retain, payload).map_err(|e| ConnError::Mqtt(e.to_string()))?;
    d.queued(p);
    Ok(())
}

pub struct Uplink {
    settings: Settings,
    store: Arc<Store>,
    wake: Arc<Notify>,
    stats: Arc<Stats>,
    handler: Arc<dyn CommandHandler>,
    /// Commands are answered one at a time, so a repeat delivered meanwhile finds the first answer.
    commands: Arc<Mutex<()>>,
    /// The health summary the retained status carries, how often it is sent again, and what wakes it early.
    status: Option<(StatusSource, Duration, Arc<Notify>)>,
}

/// The health summary for the status topic (`observe::health::Summary` as JSON).
pub type StatusSource = Arc<dyn Fn() -> Option<serde_json::Value> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("{0}")]
    Mqtt(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl Uplink {
    pub fn new(settings: Settings, store: Arc<Store>, handler: Arc<dyn CommandHandler>) -> Uplink {
        Uplink {
            settings,
            store,
            wake: Arc::new(Notify::new()),
            stats: Arc::new(Stats::default()),
            handler,
            commands: Arc::default(),
            status: None,
        }
    }

    /// The retained `online` status carries `source`'s health summary, sent again every `every` (zero: only
    /// at connect) and at once when `changed` is notified.
    pub fn with_status(mut self, source: StatusSource, every: Duration, changed: Arc<Notify>) -> Uplink {
        self.status = Some((source, every, changed));
        self
    }

    fn status_payload(&self, state: &str, clean_shutdown: Option<bool>) -> Vec<u8> {
        let s = &self.settings;
        let mut status = StatusV1::new(&s.site, &s.device, state, now_ms());
        status.clean_shutdown = clean_shutdown;
        if state == "online" {
            status.health = self.status.as_ref().and_then(|(source, _, _)| source());
        }
        serde_json::to_vec(&status).unwrap_or_default()
    }

    /// Notify after queueing something so it goes out at once.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    fn options(&self, host: &str, port: u16) -> MqttOptions {
        let s = &self.settings;
        let mut o = MqttOptions::new(s.client_id.clone(), host, port);
        o.set_keep_alive(s.keepalive)
            // Persistent: QoS 1 commands sent while we are away wait for us at the broker.
            .set_clean_session(false)
            // Inbound commands are acknowledged once answered and recorded, not on receipt.
            .set_manual_acks(true)
            .set_max_packet_size(s.max_inbound_bytes.max(s.max_command_bytes), s.max_packet_bytes)
            .set_inflight((s.max_inflight * 2).clamp(10, u16::MAX as usize) as u16);
        // The broker publishes the will only when the link breaks: `clean_shutdown: false`. A clean stop says
        // `true` and ends with DISCONNECT, on which the broker discards the will (MQTT 3.1.1, 3.14.4).
        let offline = self.status_payload("offline", Some(false));
        o.set_last_will(LastWill::new(s.topics.status(), offline, QoS::AtLeastOnce, true));
        if let Some(tls) = &s.tls {
            o.set_transport(Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls.clone())));
        }
        if let Some(u) = &s.username {
            o.set_credentials(u.clone(), s.password.clone().unwrap_or_default());
        }
        o
    }

    /// Runs until `shutdown` is cancelled, then sends what the outbox holds (within [`SHUTDOWN_DRAIN`]).
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = self.backoff();
        let mut brokers = Rotation::new(self.settings.brokers.len());
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            let Some((host, port)) = self.settings.brokers.get(brokers.current()).cloned() else {
                log::error!("no MQTT broker configured; the uplink stops");
                return;
            };
            let broker = format!("{host}:{port}");
            if let Ok(mut b) = self.stats.broker.lock() {
                b.clone_from(&broker);
            }
            let (client, eventloop) = AsyncClient::new(self.options(&host, port), self.settings.max_inflight * 4 + 16);
            let mut connected_at = None;
            let result = self.connection(&client, eventloop, &shutdown, &mut connected_at, &broker).await;
            self.stats.connected.store(false, Ordering::Relaxed);
            match result {
                Ok(()) => {
                    let _ = client.try_disconnect();
                    return;
                }
                Err(e) => {
                    let msg = e.to_string();
                    log::warn!(broker = broker.as_str(); "MQTT connection lost or refused: {msg}");
                    if let Ok(mut l) = self.stats.last_error.lock() {
                        *l = Some(format!("{broker}: {msg}"));
                    }
                }
            }
            // A connection that fails at once (a broker that drops us on every connect) must not reset
            // the backoff, or the box reconnects every second for as long as the cause stays.
            let healthy = connected_at.is_some_and(|t: Instant| t.elapsed() >= self.settings.healthy_after);
            if healthy {
                backoff = self.backoff();
            }
            let delay = match brokers.failed(healthy) {
                Wait::Backoff => backoff.next().unwrap_or(self.settings.backoff_max),
                // The next broker of the list, at once: failing over is what the list is for.
                Wait::NextBroker => Duration::ZERO,
            };
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> + use<> {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.settings.backoff_min)
            .with_max_delay(self.settings.backoff_max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .build()
    }

    async fn connection(
        &self,
        client: &AsyncClient,
        mut ev: EventLoop,
        shutdown: &CancellationToken,
        connected_at: &mut Option<Instant>,
        broker: &str,
    ) -> Result<(), ConnError> {
        let mut conn = Delivery::new();
        let mut online = false;
        let (ack_tx, mut ack_rx) = mpsc::channel::<(String, AckV1, rumqttc::Publish)>(64);
        let mut health = tokio::time::interval(self.settings.health_interval);
        let mut batch_timer = tokio::time::interval(Duration::from_millis(100).min(self.settings.reads_batch_max_age));
        let status_every = self.status.as_ref().map(|(_, every, _)| *every).filter(|e| !e.is_zero());
        let mut status_tick = tokio::time::interval(status_every.unwrap_or(Duration::from_secs(3600)));
        status_tick.tick().await;
        let status_changed = self.status.as_ref().map(|(_, _, n)| n.clone()).unwrap_or_default();
        loop {
            tokio::select! {
                event = ev.poll() => {
                    let event = match event {
                        Ok(e) => e,
                        Err(e) => {
                            self.salvage(&mut ev, &mut conn);
                            return Err(ConnError::Mqtt(e.to_string()));
                        }
                    };
                    match event {
                        Event::Incoming(Packet::ConnAck(ack)) => {
                            online = true;
                            *connected_at = Some(Instant::now());
                            self.stats.connected.store(true, Ordering::Relaxed);
                            self.stats.connects.fetch_add(1, Ordering::Relaxed);
                            log::info!(broker; "MQTT connected");
                            let s = &self.settings;
                            let status = self.status_payload("online", None);
                            publish(client, &mut conn, s.topics.status(), QoS::AtLeastOnce, true, status, Pending::Untracked)?;
                            // The broker kept our subscription with the session; subscribing again would
                            // make it send retained commands again.
                            if !ack.session_present {
                                client.try_subscribe(s.topics.commands(), QoS::AtLeastOnce).map_err(|e| ConnError::Mqtt(e.to_string()))?;
                            }
                            self.fill(client, &mut conn)?;
                        }
                        Event::Outgoing(Outgoing::Publish(pkid)) => {
                            conn.sent(pkid);
                        }
                        Event::Incoming(Packet::PubAck(ack)) => {
                            if let Some(p) = conn.acked(ack.pkid) {
                                self.acknowledged(p)?;
                            }
                            self.fill(client, &mut conn)?;
                        }
                        Event::Incoming(Packet::Publish(p)) => self.inbound(p, client, &ack_tx),
                        _ => {}
                    }
                }
                Some((cmd, ack, command)) = ack_rx.recv() => {
                    let payload = serde_json::to_vec(&ack).unwrap_or_default();
                    log::info!(command = cmd.as_str(), ok = ack.ok, duplicate = ack.duplicate; "command answered");
                    publish(client, &mut conn, self.settings.topics.ack(), QoS::AtLeastOnce, false, payload, Pending::Untracked)?;
                    // Answered (and, when applied, recorded): the broker may forget it now.
                    client.try_ack(&command).map_err(|e| ConnError::Mqtt(e.to_string()))?;
                }
                _ = self.wake.notified(), if online => self.fill(client, &mut conn)?,
                _ = batch_timer.tick(), if online => self.fill(client, &mut conn)?,
                _ = status_tick.tick(), if online && status_every.is_some() => {
                    let status = self.status_payload("online", None);
                    publish(client, &mut conn, self.settings.topics.status(), QoS::AtLeastOnce, true, status, Pending::Untracked)?;
                }
                _ = status_changed.notified(), if online && self.status.is_some() => {
                    let status = self.status_payload("online", None);
                    publish(client, &mut conn, self.settings.topics.status(), QoS::AtLeastOnce, true, status, Pending::Untracked)?;
                }
                _ = health.tick(), if online => {
                    let payload = serde_json::to_vec(&self.health()).unwrap_or_default();
                    publish(client, &mut conn, self.settings.topics.health(), QoS::AtMostOnce, false, payload, Pending::Untracked)?;
                }
                _ = shutdown.cancelled() => {
                    if online {
                        self.drain_on_shutdown(client, &mut ev, &mut conn).await;
                    }
                    return Ok(());
                }
            }
        }
    }

    /// On shutdown: send what the outbox holds (the daemon stops the uplink last, after the open tracks
    /// closed, so an alert raised during shutdown is in it) and wait for the PUBACKs, within
    /// [`SHUTDOWN_DRAIN`], so a clean stop neither strands an alert nor leaves delivered messages to be
    /// sent twice; then tell the server we leave (the retained status replaces the last will). Whatever is
    /// not acknowledged by then stays in the outbox for the next start.
    async fn drain_on_shutdown(&self, client: &AsyncClient, ev: &mut EventLoop, conn: &mut Delivery) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_DRAIN;
        if let Err(e) = self.fill(client, conn) {
            log::warn!("cannot send the outbox while stopping: {e}");
        }
        while conn.in_flight() > 0 {
            match tokio::time::timeout_at(deadline, ev.poll()).await {
                Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                    conn.sent(pkid);
                }
                Ok(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                    if let Some(p) = conn.acked(ack.pkid)
                        && let Err(e) = self.acknowledged(p)
                    {
                        log::warn!("cannot record an acknowledgement while stopping: {e}");
                        break;
                    }
                    if let Err(e) = self.fill(client, conn) {
                        log::warn!("cannot send the outbox while stopping: {e}");
                        break;
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        // The clean stop, retained, then DISCONNECT so that the broker drops the will instead of publishing it
        // over this status (the event loop must send it: dropping the connection would fire the will).
        let status = self.status_payload("offline", Some(true));
        if client.try_publish(self.settings.topics.status(), QoS::AtLeastOnce, true, status).is_ok()
            && client.try_disconnect().is_ok()
        {
            let _ = tokio::time::timeout(Duration::from_millis(1000), async {
                while let Ok(e) = ev.poll().await {
                    if matches!(e, Event::Outgoing(Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        }
    }

    fn acknowledged(&self, p: Pending) -> Result<(), ConnError> {
        match p {
            Pending::Outbox(key) => {
                self.store.outbox_remove(&key)?;
                self.stats.outbox_acked.fetch_add(1, Ordering::Relaxed);
            }
            Pending::Reads(seqs) => {
                self.store.upload_queue_remove(&seqs)?;
                self.stats.reads_acked.fetch_add(seqs.len() as u64, Ordering::Relaxed);
            }
            Pending::Untracked => {}
        }
        Ok(())
    }

    /// The next outbox message this connection has not published: an alert first, even one queued after a
    /// message of another lane went out; then the other lanes in order.
    fn next_outbox(&self, conn: &Delivery) -> Result<Option<crate::store::OutboxMessage>, ConnError> {
        if let Some(m) = self.store.outbox_peek(conn.alerts_cursor(), 1)?.into_iter().next()
            && m.key.0[0] == crate::store::Lane::Alerts as u8
        {
            return Ok(Some(m));
        }
        // Past every alert key: the other lanes start after lane 0's largest possible key.
        let past_alerts =
            crate::store::OutboxKey([crate::store::Lane::Alerts as u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        Ok(self.store.outbox_peek(Some(conn.outbox_cursor().unwrap_or(&past_alerts)), 1)?.into_iter().next())
    }

    /// Publishes what is waiting, alerts and other outbox messages before reads, up to the in-flight window.
    fn fill(&self, client: &AsyncClient, conn: &mut Delivery) -> Result<(), ConnError> {
        let s = &self.settings;
        while conn.has_room(s.max_inflight) {
            if let Some(m) = self.next_outbox(conn)? {
                if m.payload.len() + m.topic.len() + 64 > s.max_packet_bytes {
                    // It can never be sent and would block everything behind it.
                    log::error!(seq = m.key.seq(), bytes = m.payload.len(); "outbox message larger than mqtt.max_packet_kib; dropped");
                    self.stats.dropped_oversized.fetch_add(1, Ordering::Relaxed);
                    self.store.outbox_remove(&m.key)?;
                    conn.skipped(m.key);
                    continue;
                }
                publish(
                    client,
                    conn,
                    s.topics.topic(&m.topic),
                    QoS::AtLeastOnce,
                    false,
                    m.payload,
                    Pending::Outbox(m.key),
                )?;
                self.stats.published_outbox.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let batch = self.store.upload_queue_peek(conn.reads_cursor(), s.reads_batch_max)?;
            if !conn.batch_due(batch.len(), s.reads_batch_max, s.reads_batch_max_age, Instant::now()) {
                break;
            }
            let mut take = batch.len();
            let payload = loop {
                let reads: Vec<_> = batch[..take].iter().map(|(_, r)| r.clone()).collect();
                let p =
                    serde_json::to_vec(&ReadsBatchV1::new(&s.site, &s.device, now_ms(), &reads)).unwrap_or_default();
                if p.len() + 256 <= s.max_packet_bytes || take == 1 {
                    break p;
                }
                take = take.div_ceil(2);
            };
            let seqs: Vec<u64> = batch[..take].iter().map(|(q, _)| *q).collect();
            let n = seqs.len() as u64;
            publish(client, conn, s.topics.reads(), QoS::AtLeastOnce, false, payload, Pending::Reads(seqs))?;
            self.stats.published_reads.fetch_add(n, Ordering::Relaxed);
        }
        Ok(())
    }

    /// After a connection failed: PUBACKs read before the failure are still waiting in the event
    /// loop; apply them so acknowledged messages are not sent again on the next connection.
    fn salvage(&self, ev: &mut EventLoop, conn: &mut Delivery) {
        while let Some(e) = ev.state.events.pop_front() {
            match e {
                Event::Outgoing(Outgoing::Publish(pkid)) => {
                    conn.sent(pkid);
                }
                Event::Incoming(Packet::PubAck(ack)) => {
                    if let Some(p) = conn.acked(ack.pkid)
                        && let Err(e) = self.acknowledged(p)
                    {
                        log::warn!("cannot record an acknowledgement after a failed connection: {e}");
                    }
                }
                _ => {}
            }
        }
    }

    fn inbound(
        &self,
        p: rumqttc::Publish,
        client: &AsyncClient,
        acks: &mpsc::Sender<(String, AckV1, rumqttc::Publish)>,
    ) {
        let Some(name) = self.settings.topics.command_of(&p.topic) else {
            // Not a command: nothing to answer, but the broker must not keep sending it.
            let _ = client.try_ack(&p);
            return;
        };
        let name = name.to_string();
        self.stats.commands.fetch_add(1, Ordering::Relaxed);
        log::info!(command = name.as_str(), bytes = p.payload.len(), retained = p.retain; "command received");
        let inbound = Inbound {
            handler: self.handler.clone(),
            store: self.store.clone(),
            stats: self.stats.clone(),
            max_bytes: self.settings.max_command_bytes,
            key: self.settings.command_key,
            lock: self.commands.clone(),
        };
        let acks = acks.clone();
        // Handlers touch the store and may scan reads: keep them off the event loop.
        tokio::task::spawn_blocking(move || {
            let ack = inbound.answer(&name, &p);
            let _ = acks.blocking_send((name, ack, p));
        });
    }

    fn health(&self) -> HealthV1 {
        let s = &self.settings;
        HealthV1 {
            v: super::payload::VERSION,
            kind: "health".into(),
            site: s.site.clone(),
            device: s.device.clone(),
            at: jiff::Timestamp::from_millisecond(now_ms()).map(|t| format!("{t:.3}")).unwrap_or_default(),
            outbox_messages: self.store.outbox_len() as u64,
            reads_waiting: self.store.upload_queue_len() as u64,
            store_bytes: self.store.size_on_disk().unwrap_or(0),
            summary: format!(
                "{} outbox messages and {} reads acknowledged since start",
                self.stats.outbox_acked.load(Ordering::Relaxed),
                self.stats.reads_acked.load(Ordering::Relaxed)
            ),
        }
    }
}

/// Longest the uplink spends sending the outbox on shutdown.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

/// What answering one inbound command needs, off the event loop.
struct Inbound {
    handler: Arc<dyn CommandHandler>,
    store: Arc<Store>,
    stats: Arc<Stats>,
    max_bytes: usize,
    key: Option<ed25519_dalek::VerifyingKey>,
    lock: Arc<Mutex<()>>,
}

impl Inbound {
    fn refuse(&self, name: &str, id: Option<&str>, by: Option<&str>, why: String) -> AckV1 {
        self.stats.commands_refused.fetch_add(1, Ordering::Relaxed);
        log::warn!(command = name; "command refused: {why}");
        let why = match self.handler.refused(name, id, by, &why) {
            Ok(()) => why,
            Err(e) => format!("{why} (and the refusal could not be recorded: {e})"),
        };
        AckV1::new(name, id.map(str::to_string), Err(why))
    }

    /// Checks, answers and records one command; the answer to send back.
    fn answer(&self, name: &str, p: &rumqttc::Publish) -> AckV1 {
        let _one_at_a_time = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let cmd = match check_command(&p.topic, &p.payload, p.retain, self.max_bytes, self.key.as_ref()) {
            Ok(c) => c,
            Err(r) => return self.refuse(name, r.id.as_deref(), r.by.as_deref(), r.why),
        };
        let (id, by) = (Some(cmd.id.as_str()), Some(cmd.by.as_str()));
        match self.store.command_done(&cmd.id) {
            Ok(Some(done)) => {
                let at = jiff::Timestamp::from_millisecond(done.at_ms).map(|t| t.to_string()).unwrap_or_default();
                let why = format!("repeat of command {} ({}) answered at {at}; not applied again", cmd.id, done.name);
                log::info!(command = name; "{why}");
                if let Err(e) = self.handler.refused(name, id, by, &why) {
                    log::error!(command = name; "a repeated command could not be recorded: {e}");
                }
                let mut ack = AckV1::new(name, Some(cmd.id.clone()), done.result);
                ack.duplicate = true;
                return ack;
            }
            Ok(None) => {}
            Err(e) => {
                return self.refuse(name, id, by, format!("cannot tell whether this command was already applied: {e}"));
            }
        }
        let result = self.handler.handle(name, &cmd);
        if let Err(e) = &result {
            log::warn!(command = name; "command failed: {e}");
        }
        let done = CommandDone { name: name.to_string(), at_ms: now_ms(), result: result.clone() };
        if let Err(e) = self.store.record_command(&cmd.id, &done) {
            log::error!(command = name; "the answer to a command could not be recorded; a repeat would be applied again: {e}");
        }
        AckV1::new(name, Some(cmd.id), result)
    }
}

/// Why an inbound command was refused, with its id and sender as far as they could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub id: Option<String>,
    pub by: Option<String>,
    pub why: String,
}

/// The checks every inbound command passes before it is looked up or applied, free of I/O: size, JSON
/// shape, version, id, `by`, the retain flag and, with a key, the signature.
pub fn check_command(
    topic: &str,
    payload: &[u8],
    retain: bool,
    max_bytes: usize,
    key: Option<&ed25519_dalek::VerifyingKey>,
) -> Result<CommandV1, Refusal> {
    let refuse = |id: Option<&str>, by: Option<&str>, why: String| Refusal {
        id: id.map(str::to_string),
        by: by.map(str::to_string),
        why,
    };
    if payload.len() > max_bytes {
        return Err(refuse(
            None,
            None,
            format!("command of {} bytes refused: the limit is {max_bytes} bytes", payload.len()),
        ));
    }
    // serde quotes what it could not take: keep the reason (sent back and audited) to one short line.
    let cmd: CommandV1 = serde_json::from_slice(payload).map_err(|e| {
        refuse(None, None, format!("malformed command: {}", e.to_string().chars().take(200).collect::<String>()))
    })?;
    if cmd.by.len() > MAX_COMMAND_ID_BYTES {
        return Err(refuse(None, None, format!("`by` must be at most {MAX_COMMAND_ID_BYTES} bytes")));
    }
    let (id, by) = (Some(cmd.id.as_str()), Some(cmd.by.as_str()));
    if cmd.id.is_empty() || cmd.id.len() > MAX_COMMAND_ID_BYTES {
        return Err(refuse(None, by, format!("a command id must be 1 to {MAX_COMMAND_ID_BYTES} bytes")));
    }
    if cmd.v != 1 {
        return Err(refuse(id, by, format!("unsupported command version {}", cmd.v)));
    }
    if cmd.by.trim().is_empty() {
        return Err(refuse(id, None, "`by` must name who sent the command".into()));
    }
    if retain {
        return Err(refuse(
            id,
            by,
            "retained command refused: a command is applied once when sent, not again on every connect".into(),
        ));
    }
    if let Some(key) = key {
        verify_signature(key, topic, &cmd).map_err(|why| refuse(id, by, why))?;
    }
    Ok(cmd)
}

fn has_fraction(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Number(n) => !(n.is_i64() || n.is_u64()),
        serde_json::Value::Array(a) => a.iter().any(has_fraction),
        serde_json::Value::Object(m) => m.values().any(has_fraction),
        _ => false,
    }
}

fn verify_signature(key: &ed25519_dalek::VerifyingKey, topic: &str, cmd: &CommandV1) -> Result<(), String> {
    use base64::Engine;
    let Some(sig) = &cmd.sig else {
        return Err("unsigned command refused: this box accepts only commands signed with the configured key".into());
    };
    if has_fraction(&cmd.body) {
        // Signatures cover the body as canonical JSON, which only integers survive exactly.
        return Err("a signed command's body may carry integers only, no fractional numbers".into());
    }
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(sig).map_err(|_| "signature is not base64".to_string())?;
    let sig = ed25519_dalek::Signature::from_slice(&bytes).map_err(|_| "signature is not 64 bytes".to_string())?;
    key.verify_strict(&command_signing_bytes(topic, cmd), &sig)
        .map_err(|_| "bad signature: the command was not signed by the configured key, or was changed".to_string())
}
