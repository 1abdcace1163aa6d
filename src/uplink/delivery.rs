//! The uplink's delivery bookkeeping for one connection, free of I/O (as rumqttc keeps `MqttState`
//! apart from its `EventLoop`): what was handed to the MQTT client and not yet acknowledged, how far
//! the outbox and the reads' upload queue were read, and when a partial batch of reads is due.
//!
//! The durable side stays in the store: an entry leaves the outbox or the upload queue only when
//! [`Delivery::acked`] returns it. Each connection starts with a fresh `Delivery` whose cursors are
//! at the start, so whatever was not acknowledged on the last connection is read and sent again
//! (at least once; the central side drops repeats by their stable ids), and nothing acknowledged is,
//! since it is no longer stored.
//!
//! rumqttc's `publish()` returns when queued and numbers packets as it sends them, in request order:
//! so the requests wait in a FIFO ([`Delivery::queued`]) until `Outgoing::Publish(pkid)` names their
//! packet id ([`Delivery::sent`]), and the broker's PUBACK for that id gives them back
//! ([`Delivery::acked`]).

use crate::store::OutboxKey;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// What one publish carries, for the store to forget once it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// An outbox message (alerts and other lane messages).
    Outbox(OutboxKey),
    /// A batch of reads: their upload-queue sequence numbers.
    Reads(Vec<u64>),
    /// Status and health: nothing to remove when acknowledged, and not counted in the window.
    Untracked,
}

impl Pending {
    fn tracked(&self) -> bool {
        !matches!(self, Pending::Untracked)
    }
}

/// Per-connection delivery state. See the module documentation.
#[derive(Debug, Default)]
pub struct Delivery {
    /// Handed to the client, packet id not known yet (oldest first).
    queued: VecDeque<Pending>,
    /// Sent with a packet id, PUBACK not yet read.
    by_pkid: HashMap<u16, Pending>,
    /// Alerts have their own cursor: an alert queued after a message of another lane went out sorts
    /// before that message's key, and one cursor would pass it by until the next connection.
    alerts_cursor: Option<OutboxKey>,
    outbox_cursor: Option<OutboxKey>,
    reads_cursor: Option<u64>,
    /// Tracked messages queued or sent and not yet acknowledged.
    tracked: usize,
    partial_batch_since: Option<Instant>,
}

impl Delivery {
    pub fn new() -> Delivery {
        Delivery::default()
    }

    /// Tracked messages on their way (queued or sent, not acknowledged).
    pub fn in_flight(&self) -> usize {
        self.tracked
    }

    /// Whether another tracked message may go out under a window of `max_inflight`.
    pub fn has_room(&self, max_inflight: usize) -> bool {
        self.tracked < max_inflight
    }

    /// The last outbox entry of a lane other than alerts read on this connection: the next read starts
    /// after it.
    pub fn outbox_cursor(&self) -> Option<&OutboxKey> {
        self.outbox_cursor.as_ref()
    }

    /// The last alert read on this connection.
    pub fn alerts_cursor(&self) -> Option<&OutboxKey> {
        self.alerts_cursor.as_ref()
    }

    fn read_past(&mut self, key: OutboxKey) {
        if key.0[0] == crate::store::Lane::Alerts as u8 {
            self.alerts_cursor = Some(key);
        } else {
            self.outbox_cursor = Some(key);
        }
    }

    /// The last upload-queue sequence read on this connection.
    pub fn reads_cursor(&self) -> Option<u64> {
        self.reads_cursor
    }

    /// A message was handed to the client; the cursor of its lane moves past it.
    pub fn queued(&mut self, p: Pending) {
        match &p {
            Pending::Outbox(key) => self.read_past(key.clone()),
            Pending::Reads(seqs) => {
                if let Some(last) = seqs.iter().max() {
                    self.reads_cursor = Some(self.reads_cursor.map_or(*last, |c| c.max(*last)));
                }
            }
            Pending::Untracked => {}
        }
        if p.tracked() {
            self.tracked += 1;
        }
        self.queued.push_back(p);
    }

    /// An outbox entry that will not be sent (too large to ever fit a packet): read past it.
    pub fn skipped(&mut self, key: OutboxKey) {
        self.read_past(key);
    }

    /// rumqttc sent the oldest request it was given with this packet id (0: QoS 0, nothing to wait for).
    pub fn sent(&mut self, pkid: u16) {
        if let Some(p) = self.queued.pop_front() {
            if pkid != 0 {
                self.by_pkid.insert(pkid, p);
            } else if p.tracked() {
                // A tracked message always goes at QoS 1; at QoS 0 no PUBACK will free its place.
                self.tracked -= 1;
            }
        }
    }

    /// The broker's PUBACK for this packet id: the message it acknowledges, for the store to remove
    /// (None: not one of ours, or already acknowledged).
    pub fn acked(&mut self, pkid: u16) -> Option<Pending> {
        let p = self.by_pkid.remove(&pkid)?;
        if p.tracked() {
            self.tracked -= 1;
        }
        Some(p)
    }

    /// Whether `waiting` reads (at most `max` were asked for) make a batch to send now: a full one at
    /// once, a partial one once it has waited `max_age` since first seen. `waiting == 0` resets the wait.
    pub fn batch_due(&mut self, waiting: usize, max: usize, max_age: Duration, now: Instant) -> bool {
        if waiting == 0 {
            self.partial_batch_since = None;
            return false;
        }
        if waiting < max {
            let since = *self.partial_batch_since.get_or_insert(now);
            if now.saturating_duration_since(since) < max_age {
                return false;
            }
        }
        self.partial_batch_since = None;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet, HashSet};

    /// A key of the outbox's second lane (not alerts).
    fn key(seq: u64) -> OutboxKey {
        let mut k = [1u8; 9];
        k[1..].copy_from_slice(&seq.to_be_bytes());
        OutboxKey(k)
    }

    #[test]
    fn an_alert_queued_after_another_lanes_message_has_its_own_cursor() {
        let mut d = Delivery::new();
        d.queued(Pending::Outbox(key(5)));
        let mut a = [0u8; 9];
        a[1..].copy_from_slice(&7u64.to_be_bytes());
        d.queued(Pending::Outbox(OutboxKey(a)));
        assert_eq!((d.outbox_cursor(), d.alerts_cursor()), (Some(&key(5)), Some(&OutboxKey(a))));
        assert!(OutboxKey(a).0 < key(5).0, "the alert sorts before the other lane's message: one cursor would pass it");
    }

    #[test]
    fn packet_ids_pair_with_requests_in_order_and_untracked_do_not_count() {
        let mut d = Delivery::new();
        d.queued(Pending::Untracked);
        d.queued(Pending::Outbox(key(1)));
        d.queued(Pending::Reads(vec![4, 5]));
        assert_eq!(d.in_flight(), 2);
        assert!(!d.has_room(2) && d.has_room(3));
        d.sent(1);
        d.sent(2);
        d.sent(3);
        assert_eq!(d.acked(3), Some(Pending::Reads(vec![4, 5])));
        assert_eq!(d.acked(3), None, "a repeated PUBACK frees nothing twice");
        assert_eq!(d.acked(1), Some(Pending::Untracked));
        assert_eq!(d.in_flight(), 1);
        assert_eq!(d.acked(2), Some(Pending::Outbox(key(1))));
        assert_eq!(d.in_flight(), 0);
        assert_eq!((d.outbox_cursor(), d.reads_cursor()), (Some(&key(1)), Some(5)));
    }

    #[test]
    fn qos0_publishes_and_unknown_acks_free_nothing_they_should_not() {
        let mut d = Delivery::new();
        d.queued(Pending::Untracked);
        d.sent(0);
        assert_eq!(d.acked(0), None);
        d.queued(Pending::Outbox(key(9)));
        d.sent(7);
        assert_eq!(d.acked(8), None);
        assert_eq!(d.in_flight(), 1);
        d.skipped(key(10));
        assert_eq!(d.outbox_cursor(), Some(&key(10)));
    }

    #[test]
    fn a_partial_batch_waits_its_age_and_a_full_one_goes_at_once() {
        let mut d = Delivery::new();
        let t0 = Instant::now();
        let age = Duration::from_millis(500);
        assert!(d.batch_due(100, 100, age, t0));
        assert!(!d.batch_due(3, 100, age, t0));
        assert!(!d.batch_due(5, 100, age, t0 + Duration::from_millis(499)));
        assert!(d.batch_due(5, 100, age, t0 + Duration::from_millis(500)));
        // After a batch went, the next partial one waits again from when it is first seen.
        assert!(!d.batch_due(1, 100, age, t0 + Duration::from_millis(600)));
        assert!(!d.batch_due(0, 100, age, t0 + Duration::from_millis(2000)));
        assert!(!d.batch_due(1, 100, age, t0 + Duration::from_millis(2100)));
        assert!(d.batch_due(1, 100, age, t0 + Duration::from_millis(2600)));
    }

    /// One step of the world around the bookkeeping.
    #[derive(Debug, Clone)]
    enum Op {
        /// The box queues an alert (true) or stores a read (false).
        Produce(bool),
        /// The uplink fills the window from the store.
        Fill,
        /// rumqttc sends its oldest request.
        Send,
        /// The broker's PUBACK for the n-th (mod len) publish it holds unacknowledged.
        Ack(usize),
        /// The connection drops: PUBACKs already read are applied, the rest are lost.
        Drop,
        /// A status or health message (untracked).
        Status,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => any::<bool>().prop_map(Op::Produce),
            3 => Just(Op::Fill),
            4 => Just(Op::Send),
            3 => (0usize..16).prop_map(Op::Ack),
            1 => Just(Op::Drop),
            1 => Just(Op::Status),
        ]
    }

    /// The store, rumqttc and the broker as far as delivery needs them, driving a [`Delivery`] the way
    /// the session does.
    #[derive(Default)]
    struct World {
        outbox: BTreeMap<u64, ()>,
        reads: BTreeMap<u64, ()>,
        next_seq: u64,
        delivery: Delivery,
        /// Requests rumqttc holds, in order: the message ids (None: untracked).
        requests: VecDeque<Option<Vec<String>>>,
        /// What the broker holds with its packet id, PUBACK not yet sent back.
        unacked: Vec<u16>,
        /// Packet ids in use on this connection.
        pkids: HashSet<u16>,
        /// Message ids as the broker received them (every copy).
        downstream: Vec<String>,
        /// Message ids acknowledged and removed from the store.
        removed: HashSet<String>,
        /// Message ids sent on the current connection.
        sent_now: HashSet<String>,
        /// Per message id: connections that dropped while it was sent and not acknowledged.
        dropped_in_flight: HashMap<String, usize>,
        produced: BTreeSet<String>,
    }

    const WINDOW: usize = 4;
    const BATCH: usize = 3;

    fn id_of_outbox(seq: u64) -> String {
        format!("o{seq}")
    }
    fn id_of_read(seq: u64) -> String {
        format!("r{seq}")
    }

    impl World {
        fn produce(&mut self, alert: bool) {
            self.next_seq += 1;
            let s = self.next_seq;
            if alert {
                self.outbox.insert(s, ());
                self.produced.insert(id_of_outbox(s));
            } else {
                self.reads.insert(s, ());
                self.produced.insert(id_of_read(s));
            }
        }

        /// As `Uplink::fill`: outbox messages before reads, up to the window.
        fn fill(&mut self) {
            while self.delivery.has_room(WINDOW) {
                let after = self.delivery.outbox_cursor().map(|k| k.seq());
                let next = self.outbox.range(after.map_or(0, |a| a + 1)..).next().map(|(s, _)| *s);
                if let Some(s) = next {
                    self.delivery.queued(Pending::Outbox(key(s)));
                    self.requests.push_back(Some(vec![id_of_outbox(s)]));
                    continue;
                }
                let after = self.delivery.reads_cursor();
                let batch: Vec<u64> =
                    self.reads.range(after.map_or(0, |a| a + 1)..).take(BATCH).map(|(s, _)| *s).collect();
                // A zero age: a partial batch goes at the second look.
                let now = Instant::now();
                if !self.delivery.batch_due(batch.len(), BATCH, Duration::ZERO, now) {
                    break;
                }
                self.requests.push_back(Some(batch.iter().map(|s| id_of_read(*s)).collect()));
                self.delivery.queued(Pending::Reads(batch));
            }
        }

        fn status(&mut self) {
            self.delivery.queued(Pending::Untracked);
            self.requests.push_back(None);
        }

        /// rumqttc sends the oldest request with the lowest free packet id (no free id: it waits).
        fn send(&mut self) {
            let Some(pkid) = (1..=(2 * WINDOW as u16 + 2)).find(|p| !self.pkids.contains(p)) else { return };
            let Some(req) = self.requests.pop_front() else { return };
            if let Some(ids) = &req {
                for id in ids {
                    assert!(!self.removed.contains(id), "{id} was acknowledged and is published again");
                    assert!(self.sent_now.insert(id.clone()), "{id} published twice on one connection");
                    self.downstream.push(id.clone());
                }
            }
            self.pkids.insert(pkid);
            self.unacked.push(pkid);
            self.delivery.sent(pkid);
        }

        /// The PUBACK arrives and the session applies it, as `Uplink::acknowledged` does.
        fn ack(&mut self, n: usize) {
            if self.unacked.is_empty() {
                return;
            }
            let pkid = self.unacked.remove(n % self.unacked.len());
            self.pkids.remove(&pkid);
            match self.delivery.acked(pkid) {
                Some(Pending::Outbox(k)) => {
                    assert!(self.outbox.remove(&k.seq()).is_some(), "acknowledged twice: outbox {}", k.seq());
                    self.removed.insert(id_of_outbox(k.seq()));
                }
                Some(Pending::Reads(seqs)) => {
                    for s in seqs {
                        assert!(self.reads.remove(&s).is_some(), "acknowledged twice: read {s}");
                        self.removed.insert(id_of_read(s));
                    }
                }
                Some(Pending::Untracked) => {}
                None => panic!("PUBACK {pkid} for a publish the bookkeeping does not know"),
            }
        }

        /// The connection ends; a new one starts with a fresh client and fresh bookkeeping.
        fn drop_connection(&mut self) {
            for id in &self.sent_now {
                if !self.removed.contains(id) {
                    *self.dropped_in_flight.entry(id.clone()).or_default() += 1;
                }
            }
            self.requests.clear();
            self.unacked.clear();
            self.pkids.clear();
            self.sent_now.clear();
            self.delivery = Delivery::new();
        }

        fn check(&self) {
            // Nothing leaves the store unless the broker got it.
            let got: HashSet<&String> = self.downstream.iter().collect();
            for id in &self.removed {
                assert!(got.contains(id), "{id} removed from the store and never delivered");
            }
            // Everything produced is either still stored or was acknowledged.
            for id in &self.produced {
                let stored = match id.split_at(1) {
                    ("o", n) => self.outbox.contains_key(&n.parse::<u64>().unwrap()),
                    (_, n) => self.reads.contains_key(&n.parse::<u64>().unwrap()),
                };
                assert!(
                    stored != self.removed.contains(id),
                    "{id}: stored {stored}, acknowledged {}",
                    self.removed.contains(id)
                );
            }
            let tracked_requests = self.requests.iter().filter(|r| r.is_some()).count();
            assert!(self.delivery.in_flight() >= tracked_requests && self.delivery.in_flight() <= WINDOW);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Under any order of produce, send, acknowledge and connection drops: nothing acknowledged is
        /// published again or lost, each message goes at most once per connection, and after a last
        /// connection that stays up everything produced has arrived and the store is empty; a message
        /// arrives once more for each connection that dropped while it was sent and not acknowledged,
        /// and never more.
        #[test]
        fn nothing_acknowledged_is_lost_or_published_again(ops in proptest::collection::vec(op(), 0..200)) {
            let mut w = World::default();
            for op in ops {
                match op {
                    Op::Produce(alert) => w.produce(alert),
                    Op::Fill => w.fill(),
                    Op::Send => w.send(),
                    Op::Ack(n) => w.ack(n),
                    Op::Drop => w.drop_connection(),
                    Op::Status => w.status(),
                }
                w.check();
            }
            // A last connection that stays up until everything is through.
            w.drop_connection();
            for _ in 0..10_000 {
                w.fill();
                w.fill();
                while !w.requests.is_empty() || !w.unacked.is_empty() {
                    w.send();
                    w.ack(0);
                }
                if w.outbox.is_empty() && w.reads.is_empty() {
                    break;
                }
            }
            w.check();
            prop_assert!(w.outbox.is_empty() && w.reads.is_empty(), "left in the store: {:?} {:?}", w.outbox, w.reads);
            let got: BTreeSet<String> = w.downstream.iter().cloned().collect();
            prop_assert_eq!(&got, &w.produced);
            let mut copies: HashMap<&String, usize> = HashMap::new();
            for id in &w.downstream {
                *copies.entry(id).or_default() += 1;
            }
            for (id, n) in copies {
                let dropped = w.dropped_in_flight.get(id).copied().unwrap_or(0);
                prop_assert_eq!(n, 1 + dropped, "{} arrived {} times, {} connections dropped while it was on its way", id, n, dropped);
            }
        }
    }
}
