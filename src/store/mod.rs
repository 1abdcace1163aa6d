//! The embedded store: one redb file (`store.redb`) in the store directory, reached only through this
//! module ([`kv`] says why redb and what it guarantees).
//!
//! Trees:
//! - `reads`: ReadId (UUIDv7, time-ordered) → JSON [`StoredRead`]
//! - `images`: ReadId ++ kind byte → JPEG bytes
//! - `plate_idx`: plate ++ 0x00 ++ ReadId → () (exact and prefix search); encrypted:
//!   HMAC(index key, plate)[..16] ++ 0x00 ++ ReadId → sealed plate ([`crypt`])
//! - `plate_rev_idx`: reversed plate ++ 0x00 ++ ReadId → () (suffix search: `*1234`, `?BC1234`); empty
//!   when encrypted
//!
//! With `[store] encryption` on, every value of `reads` and `images` is sealed with AES-256-GCM
//! ([`crypt`]); free space is watched in steps ([`disk`]).
//! - `holds`: ReadId → JSON list of the read's [`Hold`]s (one key per read, so holds and purges conflict)
//! - `meta`: schema version and creation time, audit chain head pointer, trusted-time high-water mark
//!   and the state of a large purge waiting for confirmation (`sweeper`)
//! - `users`: username → JSON [`crate::domain::user::User`] (`users.rs`)
//! - `releases`: request id → JSON [`crate::domain::release::Request`] (`releases.rs`)
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
pub mod crypt;
pub mod disk;
pub(crate) mod kv;
pub mod migrate;
mod open;
pub mod outbox;
pub mod pattern;
mod pushed;
mod releases;
pub mod rotate;
pub mod sweeper;
mod users;

pub use audit::AuditRecord;
pub use census::{Census, read_census};
// The read records are ground-floor types; `store::model` stays their name here.
pub use crate::domain::read as model;
pub use crate::domain::read::*;
pub use open::OpenOutcome;
pub use outbox::{AlertRecord, Decision, Lane, OutboxKey, OutboxMessage, Swap, Verification};
pub use pattern::{PatternError, PlatePattern};
pub use pushed::PushedList;

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
    Db(#[from] kv::KvError),
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
    /// A store written by polewatch before the move to redb (sled's `conf` and `db` files).
    #[error(
        "store {} is in the sled format of earlier polewatch versions; convert it with `polewatch store migrate-sled` (the daemon stopped) before starting",
        path.display()
    )]
    SledFormat { path: PathBuf },
    #[error("store {} is already in the redb layout: nothing to migrate", path.display())]
    NotSled { path: PathBuf },
    #[error("no store at {}", path.display())]
    Missing { path: PathBuf },
    #[error("commit failed, nothing of this batch is acknowledged: {0}")]
    Commit(String),
    #[error("the store is shut down")]
    Closed,
    /// The audit log could not be written: damaged (head missing, entry in the way) or not recorded.
    #[error("audit log: {0}")]
    Audit(String),
    /// The filesystem holding the store is full (free space below `disk_reserve_mb`, or ENOSPC): the
    /// read was refused and nothing of it was written; what was stored before is intact.
    #[error("disk full: the store at {} refuses new reads until space is freed ({detail}); stored reads are intact", path.display())]
    DiskFull { path: PathBuf, detail: String },
    #[error("store key: {0}")]
    Key(#[from] crypt::KeyError),
    /// The store and the key given do not go together (wrong key, encrypted store without a key, …).
    #[error("store {}: {reason}", path.display())]
    Encryption { path: PathBuf, reason: String },
    /// A sealed value did not open.
    #[error("stored record {key} cannot be decrypted: {reason}")]
    Crypt { key: String, reason: crypt::CryptError },
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Encryption at rest: the keys (None: values in clear, as before).
    pub keys: Option<std::sync::Arc<crypt::Keyring>>,
    /// Open for `rotate-key`: values under an older key of `keys` (or in clear) are accepted.
    pub rotating: bool,
    /// Disk watermarks and where free space is read; None: not watched (tools, benches).
    pub disk: Option<(disk::Watermarks, std::sync::Arc<dyn disk::SpaceSource>)>,
    pub path: PathBuf,
    pub cache_capacity_bytes: u64,
    pub commit_batch: usize,
    /// Queue every stored read for the uplink (in the read's own transaction).
    pub queue_for_upload: bool,
    /// What to do with a store that cannot be opened as it is damaged.
    pub on_corrupt: OnCorrupt,
    /// Create the store when there is none; false for tools that only look at one.
    pub create: bool,
}

/// What opening does with a damaged store.
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
    pub fn at(path: impl Into<PathBuf>) -> StoreOptions {
        StoreOptions {
            keys: None,
            rotating: false,
            disk: None,
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
    pub db: kv::Db,
    pub reads: kv::Tree,
    pub images: kv::Tree,
    pub plate_idx: kv::Tree,
    pub plate_rev_idx: kv::Tree,
    pub holds: kv::Tree,
    pub meta: kv::Tree,
    pub outbox: kv::Tree,
    pub upload_queue: kv::Tree,
    pub alerts: kv::Tree,
    pub hotlists: kv::Tree,
    /// Append-only audit log (access::audit); never touched by retention.
    pub audit: kv::Tree,
    /// Users (access::users).
    pub users: kv::Tree,
    /// Release requests (access::release).
    pub releases: kv::Tree,
    /// Inbound commands already answered, by id (`commands`).
    pub commands: kv::Tree,
}

impl Trees {
    pub fn new(db: kv::Db) -> Trees {
        Trees {
            reads: db.tree("reads"),
            images: db.tree("images"),
            plate_idx: db.tree("plate_idx"),
            plate_rev_idx: db.tree("plate_rev_idx"),
            holds: db.tree("holds"),
            meta: db.tree("meta"),
            outbox: db.tree("outbox"),
            upload_queue: db.tree("upload_queue"),
            alerts: db.tree("alerts"),
            hotlists: db.tree("hotlists"),
            audit: db.tree("audit"),
            users: db.tree("users"),
            releases: db.tree("releases"),
            commands: db.tree("commands"),
            db,
        }
    }

    pub fn all(&self) -> [&kv::Tree; 14] {
        [
            &self.reads,
            &self.images,
            &self.plate_idx,
            &self.plate_rev_idx,
            &self.holds,
            &self.meta,
            &self.outbox,
            &self.upload_queue,
            &self.alerts,
            &self.hotlists,
            &self.audit,
            &self.users,
            &self.releases,
            &self.commands,
        ]
    }

    /// Makes every write so far durable (one synced commit). Every write the store acknowledges as
    /// durable goes through here.
    pub fn durable(&self) -> Result<()> {
        Ok(self.db.durable()?)
    }
}

/// An entry count for tools and status; a database error is logged and counts as none.
fn count(tree: &kv::Tree) -> usize {
    tree.len().map(|n| n as usize).unwrap_or_else(|e| {
        log::error!("store: cannot count entries: {e}");
        0
    })
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
    /// Encryption at rest (None: clear).
    keys: Option<std::sync::Arc<crypt::Keyring>>,
    /// Disk watermarks (None: not watched).
    disk: Option<disk::DiskGuard>,
    /// The disk refused a write (ENOSPC): redb refuses every write from then on, until the store is
    /// opened again.
    enospc: std::sync::atomic::AtomicBool,
    /// Where watermark changes are audited (set by the daemon once the audit log is open).
    audit_sink: std::sync::Mutex<Option<std::sync::Arc<dyn crate::domain::AuditSink>>>,
}

const TREE_READS: &[u8] = b"reads";
const TREE_IMAGES: &[u8] = b"images";
const TREE_PLATE_IDX: &[u8] = b"plate_idx";

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
    ::hex::encode(b)
}

/// Forward index (key, value) and the reversed index key, when one is kept.
type IndexEntries = ((Vec<u8>, Vec<u8>), Option<Vec<u8>>);

/// A read ready to be written: encoded (and sealed) once, outside the commit thread.
pub(crate) struct Prepared {
    id: ReadId,
    record: Vec<u8>,
    /// Forward index key and value.
    idx: (Vec<u8>, Vec<u8>),
    /// Reversed index key (none when encrypted).
    rev: Option<Vec<u8>>,
    crop: Option<Vec<u8>>,
    frame: Option<Vec<u8>>,
    /// Upload queue position, when reads are queued for the uplink.
    queue_seq: Option<u64>,
}

impl Store {
    /// Opens (or creates) the store. A damaged store is refused, or (on an operator's action) moved aside and a new one made;
    /// the outcome says so, and the caller must raise it as an alert.
    pub fn open(opts: &StoreOptions) -> Result<(Store, OpenOutcome)> {
        let (trees, outcome) = open::open(opts)?;
        let committer = commit::Committer::start(trees.clone(), opts.commit_batch.max(1));
        let disk =
            opts.disk.as_ref().map(|(marks, source)| disk::DiskGuard::new(opts.path.clone(), source.clone(), *marks));
        let store = Store {
            path: opts.path.clone(),
            queue_for_upload: opts.queue_for_upload,
            trees,
            committer,
            trust: Default::default(),
            purge_wait: Default::default(),
            keys: opts.keys.clone(),
            disk,
            enospc: Default::default(),
            audit_sink: Default::default(),
        };
        // The first reading: a box that starts on a full disk says so at once.
        store.disk_level();
        Ok((store, outcome))
    }

    /// Is the store encrypted at rest?
    pub fn encrypted(&self) -> bool {
        self.keys.is_some()
    }

    /// Where disk watermark changes are audited from now on (the daemon's audit log).
    pub fn set_audit_sink(&self, sink: std::sync::Arc<dyn crate::domain::AuditSink>) {
        *self.audit_sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
        // A box that started above a watermark: the step it found is recorded too.
        if let Some(st) = self.disk_state().filter(|s| s.level != disk::DiskLevel::Ok) {
            let space = disk::DiskSpace::unreserved(st.total_bytes, st.avail_bytes);
            self.report_disk(&disk::Transition { from: disk::DiskLevel::Ok, to: st.level, space });
        }
    }

    /// The disk watermark state for health views; None when not watched.
    pub fn disk_state(&self) -> Option<disk::DiskState> {
        self.disk.as_ref().map(|d| d.state())
    }

    /// Reads free space now and returns the step; a change is logged and audited.
    pub fn disk_level(&self) -> disk::DiskLevel {
        let Some(guard) = &self.disk else { return disk::DiskLevel::Ok };
        let (level, change) = guard.check();
        if let Some(t) = change {
            self.report_disk(&t);
        }
        level
    }

    fn report_disk(&self, t: &disk::Transition) {
        let msg = t.message();
        match t.to {
            disk::DiskLevel::Ok => log::info!(disk_level = t.to.as_str(); "{msg}"),
            disk::DiskLevel::Warn if t.from < t.to => log::warn!(disk_level = t.to.as_str(); "{msg}"),
            _ if t.from > t.to => log::warn!(disk_level = t.to.as_str(); "{msg}"),
            _ => log::error!(disk_level = t.to.as_str(); "{msg}"),
        }
        let sink = self.audit_sink.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(sink) = sink {
            let entry = crate::domain::NewAuditEntry {
                user: "system".into(),
                source: "daemon".into(),
                action: Some(crate::domain::Action::DiskWatermark),
                object: "store".into(),
                outcome: Some(if t.to > t.from { crate::domain::Outcome::Denied } else { crate::domain::Outcome::Ok }),
                detail: msg,
                ..crate::domain::NewAuditEntry::default()
            };
            if let Err(e) = sink.record(entry) {
                log::error!("disk watermark change not recorded in the audit log: {e}");
            }
        }
    }

    /// True once a write met ENOSPC (redb then refuses every write until reopened) and the disk has room
    /// again: the daemon restarts to reopen the store. False while the disk is still full.
    pub fn needs_reopen(&self) -> bool {
        self.enospc.load(std::sync::atomic::Ordering::SeqCst) && self.disk_level().accepts_reads()
    }

    fn disk_full_error(&self, detail: impl Into<String>) -> StoreError {
        StoreError::DiskFull { path: self.path.clone(), detail: detail.into() }
    }

    /// Opens a sealed value of `tree` at `key` (or passes a clear one through when not encrypted).
    pub(crate) fn unseal<'a>(&self, tree: &[u8], key: &[u8], v: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>> {
        match &self.keys {
            None => Ok(std::borrow::Cow::Borrowed(v)),
            Some(k) => k
                .open(tree, key, v)
                .map(std::borrow::Cow::Owned)
                .map_err(|reason| StoreError::Crypt { key: hex(key), reason }),
        }
    }

    fn seal(&self, tree: &[u8], key: &[u8], v: Vec<u8>) -> Result<Vec<u8>> {
        match &self.keys {
            None => Ok(v),
            Some(k) => k.seal(tree, key, &v).map_err(|reason| StoreError::Crypt { key: hex(key), reason }),
        }
    }

    pub(crate) fn decode_read(&self, key: &[u8], v: &[u8]) -> Result<StoredRead> {
        decode(key, &self.unseal(TREE_READS, key, v)?)
    }

    /// Index key and value of a plate (keyed hash and sealed plate when encrypted), and the reversed
    /// index key when one is kept.
    fn index_entries(&self, plate: &[u8], id: &ReadId) -> Result<IndexEntries> {
        match &self.keys {
            None => Ok(((index_key(plate, id), Vec::new()), Some(index_key(&reversed(plate), id)))),
            Some(k) => {
                let key = index_key(&k.current.plate_tag(plate), id);
                let v = k
                    .seal(TREE_PLATE_IDX, id.as_bytes(), plate)
                    .map_err(|reason| StoreError::Crypt { key: hex(&key), reason })?;
                Ok(((key, v), None))
            }
        }
    }

    /// Every index key a read with `plate` may have (clear forward and reversed, keyed under each key
    /// loaded): what a purge or a rotation removes.
    pub(crate) fn all_index_keys(&self, plate: &[u8], id: &ReadId) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut fwd = vec![index_key(plate, id)];
        if let Some(k) = &self.keys {
            fwd.extend(k.all().map(|k| index_key(&k.plate_tag(plate), id)));
        }
        (fwd, index_key(&reversed(plate), id))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn prepare(&self, mut r: NewRead, level: disk::DiskLevel) -> Result<Prepared> {
        if !level.keeps_frames() {
            r.frame_jpeg = None;
        }
        if !level.keeps_crops() {
            r.crop_jpeg = None;
        }
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
        let record = self.seal(
            TREE_READS,
            id.as_bytes(),
            serde_json::to_vec(&stored).map_err(|e| StoreError::InvalidRead(e.to_string()))?,
        )?;
        let (idx, rev) = self.index_entries(stored.plate.expose().as_bytes(), &id)?;
        let crop = r.crop_jpeg.map(|c| self.seal(TREE_IMAGES, &image_key(&id, ImageKind::Crop), c)).transpose()?;
        let frame = r.frame_jpeg.map(|f| self.seal(TREE_IMAGES, &image_key(&id, ImageKind::Frame), f)).transpose()?;
        let queue_seq = if self.queue_for_upload { Some(self.trees.db.generate_id()?) } else { None };
        Ok(Prepared { id, record, idx, rev, crop, frame, queue_seq })
    }

    /// The watermark step for a new read; refuses it when the disk is full.
    fn admit(&self) -> Result<disk::DiskLevel> {
        let level = self.disk_level();
        if !level.accepts_reads() {
            let st =
                self.disk_state().map(|s| format!("{} MiB free", s.avail_bytes / (1024 * 1024))).unwrap_or_default();
            return Err(self.disk_full_error(format!("free space is below the reserve: {st}")));
        }
        Ok(level)
    }

    fn commit(&self, prepared: Vec<Prepared>) -> Result<()> {
        match self.committer.commit(prepared) {
            Err(StoreError::DiskFull { detail, .. }) => {
                self.enospc.store(true, std::sync::atomic::Ordering::SeqCst);
                // The disk refused the write (ENOSPC): nothing of the batch is acknowledged; hold the
                // Full step until a reading shows room again.
                if let Some(t) = self.disk.as_ref().and_then(|d| d.mark_full()) {
                    self.report_disk(&t);
                }
                Err(self.disk_full_error(detail))
            }
            other => other,
        }
    }

    /// Stores one read; returns once it is durable on disk.
    pub fn put_read(&self, r: NewRead) -> Result<ReadId> {
        let level = self.admit()?;
        let p = self.prepare(r, level)?;
        let id = p.id;
        self.commit(vec![p])?;
        Ok(id)
    }

    /// Stores reads atomically as one batch; returns once all are durable.
    pub fn put_reads(&self, reads: Vec<NewRead>) -> Result<Vec<ReadId>> {
        let level = self.admit()?;
        let prepared = reads.into_iter().map(|r| self.prepare(r, level)).collect::<Result<Vec<_>>>()?;
        let ids = prepared.iter().map(|p| p.id).collect();
        self.commit(prepared)?;
        Ok(ids)
    }

    pub(crate) fn write_prepared(t: &Trees, batch: &[Prepared]) -> Result<()> {
        t.db.transaction(|tx| {
            for p in batch {
                tx.insert(&t.reads, p.id.as_bytes(), &p.record)?;
                if let Some(c) = &p.crop {
                    tx.insert(&t.images, image_key(&p.id, ImageKind::Crop), c)?;
                }
                if let Some(f) = &p.frame {
                    tx.insert(&t.images, image_key(&p.id, ImageKind::Frame), f)?;
                }
                tx.insert(&t.plate_idx, &p.idx.0, &p.idx.1)?;
                if let Some(r) = &p.rev {
                    tx.insert(&t.plate_rev_idx, r, [])?;
                }
                if let Some(seq) = p.queue_seq {
                    tx.insert(&t.upload_queue, seq.to_be_bytes(), p.id.as_bytes())?;
                }
            }
            Ok(())
        })
    }

    pub fn get_read(&self, id: ReadId) -> Result<Option<StoredRead>> {
        match self.trees.reads.get(id.as_bytes())? {
            Some(v) => Ok(Some(self.decode_read(id.as_bytes(), &v)?)),
            None => Ok(None),
        }
    }

    pub fn image(&self, id: ReadId, kind: ImageKind) -> Result<Option<Vec<u8>>> {
        let k = image_key(&id, kind);
        match self.trees.images.get(k)? {
            Some(v) => Ok(Some(self.unseal(TREE_IMAGES, &k, &v)?.into_owned())),
            None => Ok(None),
        }
    }

    /// Ids of reads whose plate matches, encrypted store: an exact plate is one prefix scan of its keyed
    /// hash; a wildcard pattern decrypts the plate of every index entry (no clear text to scan by).
    fn search_ids_encrypted(&self, keys: &crypt::Keyring, pattern: &PlatePattern) -> Result<Vec<ReadId>> {
        let mut ids = Vec::new();
        let mut check = |k: &[u8], v: &[u8]| -> Result<()> {
            if k.len() != crypt::TAG_LEN + 17 || k[crypt::TAG_LEN] != 0 {
                return Err(StoreError::Decode { key: hex(k), reason: "malformed plate index key".into() });
            }
            let id = &k[crypt::TAG_LEN + 1..];
            let plate = keys.open(TREE_PLATE_IDX, id, v).map_err(|reason| StoreError::Crypt { key: hex(k), reason })?;
            if pattern.matches(&plate) {
                ids.push(ReadId::from_bytes(id.try_into().expect("16 bytes")));
            }
            Ok(())
        };
        if pattern.is_exact() {
            let text = match pattern.scan() {
                pattern::Scan::Exact(t) => t,
                _ => unreachable!("an exact pattern scans exactly"),
            };
            for k in keys.all() {
                let mut prefix = k.plate_tag(&text).to_vec();
                prefix.push(0);
                for e in self.trees.plate_idx.scan_prefix(&prefix) {
                    let (key, v) = e?;
                    check(&key, &v)?;
                }
            }
        } else {
            for e in self.trees.plate_idx.iter() {
                let (key, v) = e?;
                check(&key, &v)?;
            }
        }
        Ok(ids)
    }

    /// Reads whose plate matches `pattern`, newest first, at most `limit`.
    pub fn search(&self, pattern: &PlatePattern, limit: usize) -> Result<Vec<StoredRead>> {
        let mut ids = match &self.keys {
            Some(k) => self.search_ids_encrypted(k, pattern)?,
            None => self.search_ids_clear(pattern)?,
        };
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

    fn search_ids_clear(&self, pattern: &PlatePattern) -> Result<Vec<ReadId>> {
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
        Ok(ids)
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
        count(&self.trees.reads)
    }

    pub fn size_on_disk(&self) -> Result<u64> {
        self.trees.db.size_on_disk().map_err(|source| StoreError::Io { path: self.path.clone(), source })
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
        // Existence and the new hold are checked and written in one write transaction; redb runs one
        // at a time, so a hold never lands on a read being purged.
        let t = &self.trees;
        t.db.transaction(|tx| {
            if tx.get(&t.reads, read.as_bytes())?.is_none() {
                return Err(StoreError::ReadNotFound(read));
            }
            let mut list = holds_tx(tx, &t.holds, &read)?;
            list.push(hold.clone());
            tx.insert(&t.holds, read.as_bytes(), encode(&list)?)?;
            Ok(())
        })?;
        self.trees.durable()?;
        Ok(hold)
    }

    /// Releases a hold (the record stays, marked released); durable on return.
    pub fn release_hold(&self, read: ReadId, hold: uuid::Uuid, by: &str, reason: &str, now_ms: i64) -> Result<Hold> {
        let t = &self.trees;
        let released = t.db.transaction(|tx| {
            let mut list = holds_tx(tx, &t.holds, &read)?;
            let Some(h) = list.iter_mut().find(|h| h.id == hold) else {
                return Err(StoreError::HoldNotFound { read, hold });
            };
            if h.released.is_some() {
                return Err(StoreError::HoldAlreadyReleased(hold));
            }
            h.released = Some(Release { by: by.to_string(), at_ms: now_ms, reason: reason.to_string() });
            let out = h.clone();
            tx.insert(&t.holds, read.as_bytes(), encode(&list)?)?;
            Ok(out)
        })?;
        self.trees.durable()?;
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
        self.trees.durable()?;
        Ok(())
    }

    /// Stops the commit thread after the queued commits and flushes.
    pub fn close(self) -> Result<()> {
        self.committer.stop();
        self.trees.durable()?;
        Ok(())
    }
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| StoreError::Decode { key: "hold".into(), reason: e.to_string() })
}

/// The holds of one read, inside a transaction.
pub(crate) fn holds_tx(tx: &kv::Tx, holds: &kv::Tree, read: &ReadId) -> Result<Vec<Hold>> {
    match tx.get(holds, read.as_bytes())? {
        Some(v) => decode(read.as_bytes(), &v),
        None => Ok(Vec::new()),
    }
}
