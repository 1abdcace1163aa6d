//! What the uplink still has to deliver, kept durably so nothing is lost across restarts and outages:
//! - `outbox`: lane byte ++ sequence (u64 BE) → payload. Alerts (lane 0) sort before anything else.
//! - `upload_queue`: sequence (u64 BE) → ReadId for stored reads not yet acknowledged by the broker;
//!   filled in the same transaction that stores the read, so a stored read is always on its way up. Keyed
//!   by arrival, not capture time, so a sender's cursor never skips a late-arriving older read.
//! - `alerts`: alert id → [`AlertRecord`] with its verification state.
//!
//! Entries leave only when the broker acknowledged them (PUBACK), matched by the caller.

use super::{ReadId, Result, Store, StoreError, StoredRead, decode, kv};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Lane {
    Alerts = 0,
    Other = 1,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxKey(pub [u8; 9]);

impl OutboxKey {
    fn new(lane: Lane, seq: u64) -> OutboxKey {
        let mut k = [0u8; 9];
        k[0] = lane as u8;
        k[1..].copy_from_slice(&seq.to_be_bytes());
        OutboxKey(k)
    }

    pub fn seq(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[1..]);
        u64::from_be_bytes(b)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub key: OutboxKey,
    /// Topic suffix under the device prefix, e.g. `alerts`.
    pub topic: String,
    pub payload: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    topic: String,
    #[serde(with = "b64")]
    payload: Vec<u8>,
}

mod b64 {
    use base64::Engine;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s: String = serde::Deserialize::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Verified,
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub decision: Decision,
    pub by: String,
    pub at_ms: i64,
    pub note: String,
}

/// A hotlist hit as the box keeps it. `detail` is the alert payload sent up (entry, list, match).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    pub id: uuid::Uuid,
    pub read_id: ReadId,
    pub raised_at_ms: i64,
    pub detail: serde_json::Value,
    pub verification: Option<Verification>,
}

/// What [`Store::swap_alert`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Swap {
    /// Replaced; the message is queued under this key.
    Done(OutboxKey),
    /// The record is no longer what the caller read (None: gone); nothing written.
    Changed(Option<Box<AlertRecord>>),
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| StoreError::Decode { key: "outbox".into(), reason: e.to_string() })
}

impl Store {
    /// Records an alert and queues its message in one transaction; durable on return.
    pub fn raise_alert(&self, alert: &AlertRecord, topic: &str, payload: Vec<u8>) -> Result<OutboxKey> {
        let key = OutboxKey::new(Lane::Alerts, self.trees.db.generate_id()?);
        let record = encode(alert)?;
        let msg = encode(&Stored { topic: topic.to_string(), payload })?;
        let t = &self.trees;
        t.db.transaction(|tx| {
            tx.insert(&t.alerts, alert.id.as_bytes(), &record)?;
            tx.insert(&t.outbox, key.0, &msg)?;
            Ok::<(), StoreError>(())
        })?;
        self.trees.durable()?;
        Ok(key)
    }

    /// Compare-and-swap of an alert record with its message: replaces the record and queues the message
    /// in one transaction only if the stored record is still `expected` (what the caller read and built
    /// `new` from); else nothing is written and [`Swap::Changed`] says what is stored now (an operator's
    /// verification landed in between, say), so the caller rebuilds on it. Durable on return.
    pub fn swap_alert(&self, expected: &AlertRecord, new: &AlertRecord, topic: &str, payload: Vec<u8>) -> Result<Swap> {
        let id = expected.id;
        let key = OutboxKey::new(Lane::Alerts, self.trees.db.generate_id()?);
        let record = encode(new)?;
        let msg = encode(&Stored { topic: topic.to_string(), payload })?;
        let t = &self.trees;
        let swap = t.db.transaction(|tx| {
            let current = match tx.get(&t.alerts, id.as_bytes())? {
                Some(raw) => Some(decode::<AlertRecord>(id.as_bytes(), &raw)?),
                None => None,
            };
            if current.as_ref() != Some(expected) {
                return Ok(Swap::Changed(current.map(Box::new)));
            }
            tx.insert(&t.alerts, id.as_bytes(), &record)?;
            tx.insert(&t.outbox, key.0, &msg)?;
            Ok::<Swap, StoreError>(Swap::Done(key.clone()))
        })?;
        if matches!(swap, Swap::Done(_)) {
            self.trees.durable()?;
        }
        Ok(swap)
    }

    /// Queues a message for the broker; durable on return.
    pub fn enqueue(&self, lane: Lane, topic: &str, payload: Vec<u8>) -> Result<OutboxKey> {
        let key = OutboxKey::new(lane, self.trees.db.generate_id()?);
        self.trees.outbox.insert(key.0, encode(&Stored { topic: topic.to_string(), payload })?)?;
        self.trees.durable()?;
        Ok(key)
    }

    /// Oldest queued messages, alerts first, starting after `after`.
    pub fn outbox_peek(&self, after: Option<&OutboxKey>, limit: usize) -> Result<Vec<OutboxMessage>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let start = after.map_or(Unbounded, |k| Excluded(k.0.to_vec()));
        let mut out = Vec::new();
        for e in self.trees.outbox.range((start, Unbounded)).take(limit) {
            let (k, v) = e?;
            let key: [u8; 9] = k
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Decode { key: super::hex(&k), reason: "outbox key is not 9 bytes".into() })?;
            let s: Stored = decode(&k, &v)?;
            out.push(OutboxMessage { key: OutboxKey(key), topic: s.topic, payload: s.payload });
        }
        Ok(out)
    }

    pub fn outbox_remove(&self, key: &OutboxKey) -> Result<()> {
        self.trees.outbox.remove(key.0)?;
        Ok(())
    }

    pub fn outbox_len(&self) -> usize {
        super::count(&self.trees.outbox)
    }

    /// Oldest reads waiting for upload, after `after` (a queue key from an earlier peek).
    pub fn upload_queue_peek(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, StoredRead)>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let start = after.map_or(Unbounded, |k| Excluded(k.to_be_bytes().to_vec()));
        let mut out = Vec::new();
        for e in self.trees.upload_queue.range((start, Unbounded)) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = e?;
            let (Ok(seq), Ok(id)) = (<[u8; 8]>::try_from(k.as_slice()), <[u8; 16]>::try_from(v.as_slice())) else {
                return Err(StoreError::Decode { key: super::hex(&k), reason: "malformed upload queue entry".into() });
            };
            match self.get_read(ReadId::from_bytes(id))? {
                Some(r) => out.push((u64::from_be_bytes(seq), r)),
                // Purged before it could be sent (an outage longer than retention): nothing left to send.
                None => {
                    self.trees.upload_queue.remove(&k)?;
                }
            }
        }
        Ok(out)
    }

    /// Queue entries the broker acknowledged; they leave the queue.
    pub fn upload_queue_remove(&self, seqs: &[u64]) -> Result<()> {
        let mut b = kv::Batch::default();
        for s in seqs {
            b.remove(&s.to_be_bytes()[..]);
        }
        self.trees.upload_queue.apply_batch(b)?;
        Ok(())
    }

    /// Upper bound of the reads waiting, in O(1): acknowledged entries leave mostly from the front.
    pub fn upload_queue_span(&self) -> Result<u64> {
        let seq = |k: &[u8]| <[u8; 8]>::try_from(k).map(u64::from_be_bytes).unwrap_or(0);
        match (self.trees.upload_queue.first()?, self.trees.upload_queue.last()?) {
            (Some((a, _)), Some((b, _))) => Ok(seq(&b).saturating_sub(seq(&a)) + 1),
            _ => Ok(0),
        }
    }

    pub fn upload_queue_len(&self) -> usize {
        super::count(&self.trees.upload_queue)
    }

    /// Drops the oldest `n` entries of the upload queue (the reads stay stored); returns how many went.
    pub fn upload_queue_drop_oldest(&self, n: usize) -> Result<usize> {
        let mut b = kv::Batch::default();
        let mut dropped = 0;
        for e in self.trees.upload_queue.iter().take(n) {
            b.remove(e?.0);
            dropped += 1;
        }
        self.trees.upload_queue.apply_batch(b)?;
        self.trees.durable()?;
        Ok(dropped)
    }

    /// The newest `limit` alerts, newest first (ids are UUIDv7: key order is time order).
    pub fn alerts(&self, limit: usize) -> Result<Vec<AlertRecord>> {
        let mut out = Vec::new();
        for e in self.trees.alerts.iter().rev().take(limit) {
            let (k, v) = e?;
            out.push(decode(&k, &v)?);
        }
        Ok(out)
    }

    /// Changes to the alerts (one raised or decided), for the console's live queue.
    pub fn watch_alerts(&self) -> kv::Watch {
        self.trees.db.watch(&self.trees.alerts)
    }

    pub fn alert(&self, id: uuid::Uuid) -> Result<Option<AlertRecord>> {
        match self.trees.alerts.get(id.as_bytes())? {
            Some(v) => Ok(Some(decode(id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    /// Records the verification of an alert (unverified → verified or rejected, once); durable on return.
    pub fn verify_alert(&self, id: uuid::Uuid, v: Verification) -> Result<AlertRecord> {
        if v.by.trim().is_empty() {
            return Err(StoreError::InvalidAlert("a verification needs the name of who made it".into()));
        }
        let t = &self.trees;
        let rec = t.db.transaction(|tx| {
            let Some(raw) = tx.get(&t.alerts, id.as_bytes())? else {
                return Err(StoreError::InvalidAlert(format!("alert {id} not found")));
            };
            let mut rec: AlertRecord = decode(id.as_bytes(), &raw)?;
            if rec.verification.is_some() {
                return Err(StoreError::InvalidAlert(format!("alert {id} was already decided")));
            }
            rec.verification = Some(v.clone());
            tx.insert(&t.alerts, id.as_bytes(), encode(&rec)?)?;
            Ok(rec)
        })?;
        self.trees.durable()?;
        Ok(rec)
    }
}
