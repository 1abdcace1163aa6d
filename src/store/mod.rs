//! The embedded store (sled 0.34). All sled use in the project stays inside this module.
//!
//! Trees:
//! - `reads`: ReadId (UUIDv7, time-ordered) → JSON [`StoredRead`]
//! - `images`: ReadId ++ kind byte → JPEG bytes
//! - `plate_idx`: plate ++ 0x00 ++ ReadId → () (exact and prefix search)
//! - `plate_rev_idx`: reversed plate ++ 0x00 ++ ReadId → () (suffix search: `*1234`, `?BC1234`)
//! - `holds`: ReadId → JSON list of the read's [`Hold`]s (one key per read, so holds and purges conflict)
//! - `meta`: schema version and creation time, audit chain head pointer, trusted-time high-water mark
//!   and the state of a large purge waiting for confirmation (`sweeper`)
//! - `users`: username → JSON [`crate::access::users::User`] (`users.rs`)
//! - `audit`: sequence number → audit entry, append-only ([`audit`]; never touched by retention)
//! - `commands`: inbound command id → the answer given ([`commands`]; a repeat is not applied again)
//!
//! A read is written to all trees in one transaction and acknowledged only after a flush (group
//! commit in [`commit`]), so a crash never leaves a half-written read and never loses an
//! acknowledged one.

pub mod audit;
pub mod census;
pub mod commands;
mod commit;
pub mod model;
mod open;
pub mod outbox;
pub mod pattern;
mod pushed;
mod releases;
pub mod sweeper;
mod users;

pub use audit::AuditRecord;
pub use census::{read_census, Census};
pub use model::*;
pub use open::OpenOutcome;
pub use outbox::{AlertRecord, Decision, Lane, OutboxKey, OutboxMessage, Swap, Verification};
pub use pattern::{PatternError, PlatePattern};
pub use pushed::PushedList;

use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use std::path::{Path, PathBuf};

/// Newest layout this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {} is in use by another process (only one may open it)", path.display())]
    Locked { path: PathBuf },
    #[error("store {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("store database error: {0}")]
    Db(#[from] sled::Error),
    #[error("store {} has schema version {found}; this polewatch understands up to {supported}", path.display())]
    NewerSchema { path: PathBuf, found: u32, supported: u32 },
    #[error("stored record {key} cannot be decoded: {reason}")]
    Decode { key: String, reason: String },
    #[error("invalid read: {0}")]
    InvalidRead(String),
    #[error("read {0} not found")]
    ReadNotFound(ReadId),
    #[error("invalid hold: {0}")]
    InvalidHold(String),
    #[error("hold {hold} on read {read} not found")]
    HoldNotFound { read: ReadId, hold: uuid::Uuid },
    #[error("invalid alert: {0}")]
    InvalidAlert(String),
    #[error("hold {0} was already released")]
    HoldAlreadyReleased(uuid::Uuid),
    #[error(
        "store {} is corrupt ({cause}); it was left as it is. Keep a copy; `polewatch audit restart-chain` moves it aside and starts a new store and audit chain",
        path.display()
    )]
    Corrupt { path: PathBuf, cause: String },
    #[error("no store at {}", path.display())]
    Missing { path: PathBuf },
    #[error("commit failed, nothing of this batch is acknowledged: {0}")]
    Commit(String),
    #[error("the store is shut down")]
    Closed,
    /// The audit log could not be written: damaged (head missing, entry in the way) or not recorded.
    #[error("audit log: {0}")]
    Audit(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub path: PathBuf,
    pub cache_capacity_bytes: u64,
    pub commit_batch: usize,
    /// Queue every stored read for the uplink (in the read's own transaction).
    pub queue_for_upload: bool,
    /// What to do with a store sled reports corrupt.
    pub on_corrupt: OnCorrupt,
    /// Create the store when there is none; false for tools that only look at one.
    pub create: bool,
}

/// What opening does with a store sled reports corrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnCorrupt {
    /// Fail with [`StoreError::Corrupt`]; nothing is moved, written or deleted. The daemon and every
    /// checking tool open this way: a new store would start a new audit chain over the lost one.
    #[default]
    Refuse,
    /// Move the store aside byte for byte and start a new one: only on an operator's explicit action
    /// (`polewatch audit restart-chain`).
    MoveAside,
}

impl StoreOptions {
    pub fn from_config(c: &crate::config::Store) -> StoreOptions {
        StoreOptions {
            path: c.path.clone(),
            cache_capacity_bytes: c.cache_capacity_mb * 1024 * 1024,
            commit_batch: c.commit_batch,
            queue_for_upload: false,
            on_corrupt: OnCorrupt::Refuse,
            create: true,
        }
    }

    pub fn at(path: impl Into<PathBuf>) -> StoreOptions {
        StoreOptions {
            path: path.into(),
            cache_capacity_bytes: 64 * 1024 * 1024,
            commit_batch: 256,
            queue_for_upload: false,
            on_corrupt: OnCorrupt::Refuse,
            create: true,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Trees {
    pub db: sled::Db,
    pub reads: sled::Tree,
    pub images: sled::Tree,
    pub plate_idx: sled::Tree,
    pub plate_rev_idx: sled::Tree,
    pub holds: sled::Tree,
    pub meta: sled::Tree,
    pub outbox: sled::Tree,
    pub upload_queue: sled::Tree,
    pub alerts: sled::Tree,
    pub hotlists: sled::Tree,
    /// Append-only audit log (access::audit); never touched by retention.
    pub audit: sled::Tree,
    /// Users (access::users).
    pub users: sled::Tree,
    /// Release requests (access::release).
    pub releases: sled::Tree,
    /// Inbound commands already answered, by id (`commands`).
    pub commands: sled::Tree,
}

pub struct Store {
    path: PathBuf,
    queue_for_upload: bool,
    trees: Trees,
    committer: commit::Committer,
    /// Trusted time of this process (see `retention::TrustAnchor`); set by the first sweep.
    trust: std::sync::Mutex<Option<crate::retention::TrustAnchor>>,
    /// Monotonic time at the last sweep that found a large purge waiting, in this process (`sweeper`).
    purge_wait: std::sync::Mutex<Option<i64>>,
}

fn index_key(plate: &[u8], id: &ReadId) -> Vec<u8> {
    let mut k = Vec::with_capacity(plate.len() + 17);
    k.extend_from_slice(plate);
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

fn reversed(plate: &[u8]) -> Vec<u8> {
    plate.iter().rev().copied().collect()
}

fn image_key(id: &ReadId, kind: ImageKind) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[..16].copy_from_slice(id.as_bytes());
    k[16] = kind as u8;
    k
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], v: &[u8]) -> Result<T> {
    serde_json::from_slice(v).map_err(|e| StoreError::Decode { key: hex(key), reason: e.to_string() })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn tx_err(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Db(e),
    }
}

/// A read ready to be written: encoded once, outside the commit thread.
pub(crate) struct Prepared {
    id: ReadId,
    record: Vec<u8>,
    plate: Vec<u8>,
    crop: Option<Vec<u8>>,
    frame: Option<Vec<u8>>,
    /// Upload queue position, when reads are queued for the uplink.
    queue_seq: Option<u64>,
}

impl Store {
    /// Opens (or creates) the store. A store sled reports corrupt is moved aside and a new one made;
    /// the outcome says so, and the caller must raise it as an alert.
    pub fn open(opts: &StoreOptions) -> Result<(Store, OpenOutcome)> {
        let (trees, outcome) = open::open(opts)?;
        let committer = commit::Committer::start(trees.clone(), opts.commit_batch.max(1));
        Ok((Store { path: opts.path.clone(), queue_for_upload: opts.queue_for_upload, trees, committer, trust: Default::default(), purge_wait: Default::default() }, outcome))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn prepare(&self, r: NewRead) -> Result<Prepared> {
        if r.camera_id.is_empty() {
            return Err(StoreError::InvalidRead("camera_id is empty".into()));
        }
        if r.captured_at_ms < 0 || r.captured_at_ms >= 1 << 47 {
            return Err(StoreError::InvalidRead(format!("capture time {} ms is out of range", r.captured_at_ms)));
        }
        let id = ReadId::new(r.captured_at_ms);
        let stored = StoredRead {
            id,
            camera_id: r.camera_id,
            captured_at_ms: r.captured_at_ms,
            plate: r.plate,
            confidence: r.confidence,
            char_confidences: r.char_confidences,
            candidates: r.candidates,
            bbox: r.bbox,
            region: r.region,
            frame_seq: r.frame_seq,
            has_crop: r.crop_jpeg.is_some(),
            has_frame: r.frame_jpeg.is_some(),
        };
        let record = serde_json::to_vec(&stored).map_err(|e| StoreError::InvalidRead(e.to_string()))?;
        let queue_seq = if self.queue_for_upload { Some(self.trees.db.generate_id()?) } else { None };
        Ok(Prepared { id, record, plate: stored.plate.expose().as_bytes().to_vec(), crop: r.crop_jpeg, frame: r.frame_jpeg, queue_seq })
    }

    /// Stores one read; returns once it is durable on disk.
    pub fn put_read(&self, r: NewRead) -> Result<ReadId> {
        let p = self.prepare(r)?;
        let id = p.id;
        self.committer.commit(vec![p])?;
        Ok(id)
    }

    /// Stores reads atomically as one batch; returns once all are durable.
    pub fn put_reads(&self, reads: Vec<NewRead>) -> Result<Vec<ReadId>> {
        let prepared = reads.into_iter().map(|r| self.prepare(r)).collect::<Result<Vec<_>>>()?;
        let ids = prepared.iter().map(|p| p.id).collect();
        self.committer.commit(prepared)?;
        Ok(ids)
    }

    pub(crate) fn write_prepared(t: &Trees, batch: &[Prepared]) -> Result<()> {
        (&t.reads, &t.images, &t.plate_idx, &t.plate_rev_idx, &t.upload_queue)
            .transaction(|(reads, images, idx, rev, queue)| {
                for p in batch {
                    reads.insert(&p.id.as_bytes()[..], p.record.as_slice())?;
                    if let Some(c) = &p.crop {
                        images.insert(&image_key(&p.id, ImageKind::Crop)[..], c.as_slice())?;
                    }
                    if let Some(f) = &p.frame {
                        images.insert(&image_key(&p.id, ImageKind::Frame)[..], f.as_slice())?;
                    }
                    idx.insert(index_key(&p.plate, &p.id), &[][..])?;
                    rev.insert(index_key(&reversed(&p.plate), &p.id), &[][..])?;
                    if let Some(seq) = p.queue_seq {
                        queue.insert(&seq.to_be_bytes()[..], &p.id.as_bytes()[..])?;
                    }
                }
                Ok::<(), ConflictableTransactionError<StoreError>>(())
            })
            .map_err(tx_err)
    }

    pub fn get_read(&self, id: ReadId) -> Result<Option<StoredRead>> {
        match self.trees.reads.get(id.as_bytes())? {
            Some(v) => Ok(Some(decode(id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    pub fn image(&self, id: ReadId, kind: ImageKind) -> Result<Option<Vec<u8>>> {
        Ok(self.trees.images.get(image_key(&id, kind))?.map(|v| v.to_vec()))
    }

    /// Reads whose plate matches `pattern`, newest first, at most `limit`.
    pub fn search(&self, pattern: &PlatePattern, limit: usize) -> Result<Vec<StoredRead>> {
        use pattern::Scan;
        let (tree, prefix, rev) = match pattern.scan() {
            Scan::Exact(mut p) => {
                p.push(0);
                (&self.trees.plate_idx, p, false)
            }
            Scan::Prefix(p) => (&self.trees.plate_idx, p, false),
            Scan::ReversedPrefix(p) => (&self.trees.plate_rev_idx, p, true),
            Scan::All => (&self.trees.plate_idx, Vec::new(), false),
        };
        let mut ids = Vec::new();
        for entry in tree.scan_prefix(&prefix) {
            let (k, _) = entry?;
            if k.len() < 17 || k[k.len() - 17] != 0 {
                return Err(StoreError::Decode { key: hex(&k), reason: "malformed plate index key".into() });
            }
            let (plate, id) = k.split_at(k.len() - 17);
            let plate = if rev { reversed(plate) } else { plate.to_vec() };
            if pattern.matches(&plate) {
                let mut b = [0u8; 16];
                b.copy_from_slice(&id[1..]);
                ids.push(ReadId::from_bytes(b));
            }
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut out = Vec::with_capacity(ids.len().min(limit));
        for id in ids {
            if out.len() >= limit {
                break;
            }
            if let Some(r) = self.get_read(id)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Capture time of the newest stored read.
    pub fn newest_read_ms(&self) -> Result<Option<i64>> {
        Ok(self.trees.reads.last()?.map(|(k, _)| millis_of_key(&k)))
    }

    /// Capture time of the oldest stored read.
    pub fn oldest_read_ms(&self) -> Result<Option<i64>> {
        Ok(self.trees.reads.first()?.map(|(k, _)| millis_of_key(&k)))
    }

    /// Counts reads by walking the tree: O(n), for tools and tests, not for hot paths.
    pub fn count_reads(&self) -> usize {
        self.trees.reads.len()
    }

    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.trees.db.size_on_disk()?)
    }

    /// Places an evidence hold on a read; durable on return.
    pub fn place_hold(&self, read: ReadId, req: HoldRequest, now_ms: i64) -> Result<Hold> {
        if req.placed_by.trim().is_empty() || req.case_number.trim().is_empty() || req.reason.trim().is_empty() {
            return Err(StoreError::InvalidHold("a hold needs who placed it, a case number and a reason".into()));
        }
        if req.expires_at_ms.is_some_and(|e| e <= now_ms) {
            return Err(StoreError::InvalidHold("a hold's expiry must be in the future".into()));
        }
        let hold = Hold {
            id: uuid::Uuid::now_v7(),
            read_id: read,
            placed_by: req.placed_by,
            placed_at_ms: now_ms,
            case_number: req.case_number,
            reason: req.reason,
            expires_at_ms: req.expires_at_ms,
            released: None,
        };
        // All holds of a read live under the read's key, so this transaction and a purge of the read
        // touch the same keys and sled serialises them: a hold never lands on a read being purged.
        (&self.trees.reads, &self.trees.holds)
            .transaction(|(reads, holds)| {
                if reads.get(read.as_bytes())?.is_none() {
                    return Err(ConflictableTransactionError::Abort(StoreError::ReadNotFound(read)));
                }
                let mut list = holds_tx(holds, &read)?;
                list.push(hold.clone());
                holds.insert(&read.as_bytes()[..], encode(&list)?)?;
                Ok(())
            })
            .map_err(tx_err)?;
        self.trees.db.flush()?;
        Ok(hold)
    }

    /// Releases a hold (the record stays, marked released); durable on return.
    pub fn release_hold(&self, read: ReadId, hold: uuid::Uuid, by: &str, reason: &str, now_ms: i64) -> Result<Hold> {
        let released = self
            .trees
            .holds
            .transaction(|holds| {
                let mut list = holds_tx(holds, &read)?;
                let Some(h) = list.iter_mut().find(|h| h.id == hold) else {
                    return Err(ConflictableTransactionError::Abort(StoreError::HoldNotFound { read, hold }));
                };
                if h.released.is_some() {
                    return Err(ConflictableTransactionError::Abort(StoreError::HoldAlreadyReleased(hold)));
                }
                h.released = Some(Release { by: by.to_string(), at_ms: now_ms, reason: reason.to_string() });
                let out = h.clone();
                holds.insert(&read.as_bytes()[..], encode(&list)?)?;
                Ok(out)
            })
            .map_err(tx_err)?;
        self.trees.db.flush()?;
        Ok(released)
    }

    pub fn holds_for(&self, read: ReadId) -> Result<Vec<Hold>> {
        match self.trees.holds.get(read.as_bytes())? {
            Some(v) => decode(read.as_bytes(), &v),
            None => Ok(Vec::new()),
        }
    }

    /// Every hold record, released ones included, oldest read first.
    pub fn all_holds(&self) -> Result<Vec<Hold>> {
        let mut out = Vec::new();
        for e in self.trees.holds.iter() {
            let (k, v) = e?;
            out.extend(decode::<Vec<Hold>>(&k, &v)?);
        }
        Ok(out)
    }

    /// Makes everything written so far durable.
    pub fn flush(&self) -> Result<()> {
        self.trees.db.flush()?;
        Ok(())
    }

    /// Stops the commit thread after the queued commits and flushes.
    pub fn close(self) -> Result<()> {
        self.committer.stop();
        self.trees.db.flush()?;
        Ok(())
    }
}

type TxResult<T> = std::result::Result<T, ConflictableTransactionError<StoreError>>;

fn encode<T: serde::Serialize>(v: &T) -> TxResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| ConflictableTransactionError::Abort(StoreError::Decode { key: "hold".into(), reason: e.to_string() }))
}

/// The holds of one read, inside a transaction.
pub(crate) fn holds_tx(holds: &sled::transaction::TransactionalTree, read: &ReadId) -> TxResult<Vec<Hold>> {
    match holds.get(read.as_bytes())? {
        Some(v) => decode(read.as_bytes(), &v).map_err(ConflictableTransactionError::Abort),
        None => Ok(Vec::new()),
    }
}
