//! The key-value layer under the store: named trees of byte keys and values in one redb file.
//!
//! Why redb: `polewatch bench powerloss` showed sled 0.34 losing acknowledged reads, holds, audit entries
//! and queued messages in 6 of 300 simulated power cuts, even with its log and blob files synced by hand.
//! redb commits copy-on-write B-trees behind a checksummed, double-buffered header, and a durable commit
//! returns only after `fsync`: what it acknowledged is what a power cut leaves.
//!
//! The surface is what the store used of sled, so the store's code reads the same:
//! - a single write ([`Tree::insert`], [`Tree::remove`], [`Tree::apply_batch`]) and a [`Db::transaction`]
//!   are visible at once but not yet durable (redb's `Durability::None`);
//! - [`Db::durable`] makes everything written before it durable with one synced commit; the store calls
//!   it before it acknowledges anything, so a group of writes shares one sync (group commit);
//! - iterators hold their own read snapshot, so a long scan never blocks writers.
//!
//! redb runs one write transaction at a time: a transaction's closure must never call back into a
//! [`Tree`]'s own writes or [`Db::durable`] (it would wait for itself).

use redb::{Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition, TableHandle};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;
type Watchers = Vec<(&'static str, tokio::sync::broadcast::Sender<Vec<u8>>)>;
type Guarded = (redb::OwnedAccessGuard<&'static [u8]>, redb::OwnedAccessGuard<&'static [u8]>);
pub(crate) type Entry = (Vec<u8>, Vec<u8>);

/// A redb failure, whatever call it came from.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct KvError(#[from] pub redb::Error);

impl KvError {
    /// The OS error under it, when it was one (ENOSPC and the like).
    pub fn io(&self) -> Option<&std::io::Error> {
        match &self.0 {
            redb::Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for KvError {
            fn from(e: $t) -> KvError {
                KvError(e.into())
            }
        }
        impl From<$t> for super::StoreError {
            fn from(e: $t) -> super::StoreError {
                super::StoreError::Db(KvError(e.into()))
            }
        }
    )*};
}
from_redb!(redb::StorageError, redb::TransactionError, redb::TableError, redb::CommitError, redb::SetDurabilityError);

type KvResult<T> = std::result::Result<T, KvError>;

/// The file inside the store directory.
pub(crate) const FILE_NAME: &str = "store.redb";

/// The table where the id counter's reservation is kept.
const IDS_TABLE: Def = TableDefinition::new("kv_ids");
/// Ids are reserved this many at a time: one small write per block, not per id.
const ID_BLOCK: u64 = 4096;

pub(crate) struct Inner {
    db: redb::Database,
    path: PathBuf,
    /// Next id to hand out and the end of the reserved block.
    ids: std::sync::Mutex<(u64, u64)>,
    /// Writers of watched trees (the console's live alert queue): keys changed, after their commit.
    watch: std::sync::Mutex<Watchers>,
}

/// The database: cheap to clone.
#[derive(Clone)]
pub(crate) struct Db(Arc<Inner>);

/// How opening went wrong.
pub(crate) enum OpenError {
    /// Another process (or handle) has it open.
    Locked,
    /// The file is not a redb file we can read, or redb found it damaged.
    Corrupt(String),
    Io(std::io::Error),
}

impl OpenError {
    /// The store's error for the store at `path`.
    pub fn store_error(self, path: &Path) -> super::StoreError {
        let path = path.to_path_buf();
        match self {
            OpenError::Locked => super::StoreError::Locked { path },
            OpenError::Corrupt(cause) => super::StoreError::Corrupt { path, cause },
            OpenError::Io(source) => super::StoreError::Io { path, source },
        }
    }
}

impl Db {
    /// Opens or creates `<dir>/store.redb`. After an unclean stop redb repairs on open (quick repair:
    /// the allocator state is saved with each durable commit).
    pub fn open(dir: &Path, cache_bytes: u64) -> std::result::Result<Db, OpenError> {
        let path = dir.join(FILE_NAME);
        let mut b = redb::Builder::new();
        b.set_cache_size(usize::try_from(cache_bytes).unwrap_or(usize::MAX));
        let db = match b.create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(OpenError::Locked),
            Err(redb::DatabaseError::Storage(redb::StorageError::Io(e))) => {
                return match e.kind() {
                    std::io::ErrorKind::WouldBlock => Err(OpenError::Locked),
                    std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
                        Err(OpenError::Corrupt(e.to_string()))
                    }
                    _ => Err(OpenError::Io(e)),
                };
            }
            Err(e) => return Err(OpenError::Corrupt(e.to_string())),
        };
        let inner = Inner { db, path, ids: std::sync::Mutex::new((0, 0)), watch: std::sync::Mutex::new(Vec::new()) };
        Ok(Db(Arc::new(inner)))
    }

    /// A named tree; created (empty) by the first write, or by [`Db::create_trees`].
    pub fn tree(&self, name: &'static str) -> Tree {
        Tree { db: self.clone(), def: TableDefinition::new(name), name }
    }

    /// Creates every tree that does not exist yet, in one durable commit, so reads never meet a
    /// missing table.
    pub fn create_trees(&self, trees: &[&Tree]) -> KvResult<()> {
        let tx = self.0.db.begin_write()?;
        for t in trees {
            tx.open_table(t.def)?;
        }
        tx.open_table(IDS_TABLE)?;
        tx.commit()?;
        Ok(())
    }

    /// The first of `trees` that does not exist, without writing anything.
    pub fn missing_trees(&self, trees: &[&Tree]) -> KvResult<Option<&'static str>> {
        let r = self.0.db.begin_read()?;
        let have: Vec<String> = r.list_tables()?.map(|h| redb::TableHandle::name(&h).to_string()).collect();
        Ok(trees.iter().map(|t| t.name()).find(|n| !have.iter().any(|h| h == n)))
    }

    /// Runs `f` in one write transaction: all of its writes land together or (on `Err`) none do.
    /// Visible at once, durable with the next [`Db::durable`].
    pub fn transaction<T, E: From<KvError>>(
        &self,
        f: impl FnOnce(&Tx) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut w = self.0.db.begin_write().map_err(|e| E::from(e.into()))?;
        w.set_durability(Durability::None).map_err(|e| E::from(e.into()))?;
        let tx = Tx { w, changed: std::cell::RefCell::new(Vec::new()), watched: self.watched() };
        let out = f(&tx)?;
        let Tx { w, changed, .. } = tx;
        w.commit().map_err(|e| E::from(e.into()))?;
        self.notify(changed.into_inner());
        Ok(out)
    }

    /// Makes every write before it durable: one commit synced to disk (and the allocator state saved,
    /// so that opening after a power cut does not walk the whole file).
    pub fn durable(&self) -> KvResult<()> {
        let mut w = self.0.db.begin_write()?;
        w.set_durability(Durability::Immediate)?;
        w.set_quick_repair(true);
        w.commit()?;
        Ok(())
    }

    /// A number never handed out before in this store (monotonic across restarts; gaps allowed).
    pub fn generate_id(&self) -> KvResult<u64> {
        let mut ids = self.0.ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.0 >= ids.1 {
            // The reservation is written before any id of the block is used: a write that carries one
            // of its ids is a later commit, so it cannot be durable without the reservation.
            let next = self.transaction(|tx| {
                let from = tx.next_id()?;
                let to = from.saturating_add(ID_BLOCK);
                tx.insert_def(IDS_TABLE, b"next", &to.to_be_bytes())?;
                Ok::<_, KvError>((from, to))
            })?;
            *ids = next;
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    /// Hands out ids from `next` on (a migrated store's counter); never moves the counter back.
    pub fn continue_ids_from(&self, next: u64) -> KvResult<()> {
        self.transaction(|tx| {
            let at = tx.next_id()?;
            tx.insert_def(IDS_TABLE, b"next", &at.max(next).to_be_bytes())?;
            Ok::<_, KvError>(())
        })?;
        *self.0.ids.lock().unwrap_or_else(|e| e.into_inner()) = (0, 0);
        Ok(())
    }

    /// Size of the database file.
    pub fn size_on_disk(&self) -> std::io::Result<u64> {
        Ok(std::fs::metadata(&self.0.path)?.len())
    }

    /// Keys written or removed in `tree` from now on, each after its commit.
    pub fn watch(&self, tree: &Tree) -> Watch {
        let name = tree.name;
        let mut w = self.0.watch.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, tx)) = w.iter().find(|(n, _)| *n == name) {
            return Watch(tx.subscribe());
        }
        let (tx, rx) = tokio::sync::broadcast::channel(256);
        w.push((name, tx));
        Watch(rx)
    }

    fn watched(&self) -> Vec<&'static str> {
        let w = self.0.watch.lock().unwrap_or_else(|e| e.into_inner());
        w.iter().filter(|(_, tx)| tx.receiver_count() > 0).map(|(n, _)| *n).collect()
    }

    fn notify(&self, changed: Vec<(&'static str, Vec<u8>)>) {
        if changed.is_empty() {
            return;
        }
        let w = self.0.watch.lock().unwrap_or_else(|e| e.into_inner());
        for (name, key) in changed {
            if let Some((_, tx)) = w.iter().find(|(n, _)| *n == name) {
                let _ = tx.send(key);
            }
        }
    }
}

/// Keys changed in a watched tree.
pub struct Watch(tokio::sync::broadcast::Receiver<Vec<u8>>);

impl Watch {
    /// The next changed key; None once the store is gone. A watcher that fell behind skips ahead.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        loop {
            match self.0.recv().await {
                Ok(k) => return Some(k),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// One write transaction (see [`Db::transaction`]).
pub(crate) struct Tx {
    w: redb::WriteTransaction,
    changed: std::cell::RefCell<Vec<(&'static str, Vec<u8>)>>,
    watched: Vec<&'static str>,
}

impl Tx {
    fn note(&self, def: Def, key: &[u8]) {
        if let Some(n) = self.watched.iter().find(|n| **n == def.name()) {
            self.changed.borrow_mut().push((n, key.to_vec()));
        }
    }

    /// The first id not yet reserved (0 in a new store).
    fn next_id(&self) -> KvResult<u64> {
        Ok(self
            .get_def(IDS_TABLE, b"next")?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_be_bytes))
    }

    fn get_def(&self, def: Def, key: &[u8]) -> KvResult<Option<Vec<u8>>> {
        let t = self.w.open_table(def)?;
        Ok(t.get(key)?.map(|v| v.value().to_vec()))
    }

    fn insert_def(&self, def: Def, key: &[u8], value: &[u8]) -> KvResult<Option<Vec<u8>>> {
        let mut t = self.w.open_table(def)?;
        let old = t.insert(key, value)?.map(|v| v.value().to_vec());
        self.note(def, key);
        Ok(old)
    }

    pub fn get(&self, tree: &Tree, key: impl AsRef<[u8]>) -> KvResult<Option<Vec<u8>>> {
        self.get_def(tree.def, key.as_ref())
    }

    /// Writes `value` at `key`; the value it replaced, if any.
    pub fn insert(&self, tree: &Tree, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> KvResult<Option<Vec<u8>>> {
        self.insert_def(tree.def, key.as_ref(), value.as_ref())
    }

    /// Removes `key`; the value it held, if any.
    pub fn remove(&self, tree: &Tree, key: impl AsRef<[u8]>) -> KvResult<Option<Vec<u8>>> {
        let key = key.as_ref();
        let mut t = self.w.open_table(tree.def)?;
        let old = t.remove(key)?.map(|v| v.value().to_vec());
        if old.is_some() {
            self.note(tree.def, key);
        }
        Ok(old)
    }
}

/// Removals applied together by [`Tree::apply_batch`].
#[derive(Default)]
pub(crate) struct Batch(Vec<Vec<u8>>);

impl Batch {
    pub fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.0.push(key.as_ref().to_vec());
    }
}

/// A named tree: byte keys in order, byte values.
#[derive(Clone)]
pub(crate) struct Tree {
    db: Db,
    def: Def,
    name: &'static str,
}

impl Tree {
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn read(&self) -> KvResult<redb::ReadOnlyTable<&'static [u8], &'static [u8]>> {
        Ok(self.db.0.db.begin_read()?.open_table(self.def)?)
    }

    pub fn get(&self, key: impl AsRef<[u8]>) -> KvResult<Option<Vec<u8>>> {
        Ok(self.read()?.get(key.as_ref())?.map(|v| v.value().to_vec()))
    }

    /// Writes `value` at `key` in a transaction of its own; the value it replaced, if any.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> KvResult<Option<Vec<u8>>> {
        self.db.transaction(|tx| tx.insert(self, key, value))
    }

    pub fn remove(&self, key: impl AsRef<[u8]>) -> KvResult<Option<Vec<u8>>> {
        self.db.transaction(|tx| tx.remove(self, key))
    }

    pub fn apply_batch(&self, batch: Batch) -> KvResult<()> {
        if batch.0.is_empty() {
            return Ok(());
        }
        self.db.transaction(|tx| {
            for k in &batch.0 {
                tx.remove(self, k)?;
            }
            Ok(())
        })
    }

    /// Number of entries (redb keeps the count: O(1)).
    pub fn len(&self) -> KvResult<u64> {
        Ok(self.read()?.len()?)
    }

    pub fn is_empty(&self) -> KvResult<bool> {
        Ok(self.len()? == 0)
    }

    pub fn first(&self) -> KvResult<Option<Entry>> {
        Ok(self.read()?.first()?.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
    }

    pub fn last(&self) -> KvResult<Option<Entry>> {
        Ok(self.read()?.last()?.map(|(k, v)| (k.value().to_vec(), v.value().to_vec())))
    }

    /// Every entry in key order (reversible), from a snapshot taken now.
    pub fn iter(&self) -> Iter {
        self.range::<&[u8], _>(..)
    }

    /// Entries whose key is in `r`, in key order (reversible).
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, r: R) -> Iter {
        let own = |b: Bound<&K>| match b {
            Bound::Included(k) => Bound::Included(k.as_ref().to_vec()),
            Bound::Excluded(k) => Bound::Excluded(k.as_ref().to_vec()),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.bounded(own(r.start_bound()), own(r.end_bound()))
    }

    /// Entries whose key starts with `prefix`.
    pub fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let p = prefix.as_ref();
        self.bounded(Bound::Included(p.to_vec()), successor(p).map_or(Bound::Unbounded, Bound::Excluded))
    }

    fn bounded(&self, lo: Bound<Vec<u8>>, hi: Bound<Vec<u8>>) -> Iter {
        let range = self.read().and_then(|t| Ok(t.range_owned((borrow(&lo), borrow(&hi)))?));
        match range {
            Ok(r) => Iter { range: Some(r), error: None },
            Err(e) => Iter { range: None, error: Some(e) },
        }
    }
}

fn borrow(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The smallest key greater than every key starting with `p` (None: there is none).
fn successor(p: &[u8]) -> Option<Vec<u8>> {
    let mut s = p.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xFF {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

/// Entries of a snapshot; an error opening it comes out as the first item.
pub(crate) struct Iter {
    range: Option<redb::OwnedRange<&'static [u8], &'static [u8]>>,
    error: Option<KvError>,
}

impl Iter {
    pub fn keys(self) -> impl DoubleEndedIterator<Item = KvResult<Vec<u8>>> {
        self.map(|e| e.map(|(k, _)| k))
    }

    fn item(e: std::result::Result<Guarded, redb::StorageError>) -> KvResult<Entry> {
        let (k, v) = e?;
        Ok((k.value().to_vec(), v.value().to_vec()))
    }
}

impl Iterator for Iter {
    type Item = KvResult<Entry>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        self.range.as_mut()?.next().map(Iter::item)
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        self.range.as_mut()?.next_back().map(Iter::item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Db) {
        let d = tempfile::tempdir().unwrap();
        let db = Db::open(d.path(), 1 << 20).ok().unwrap();
        (d, db)
    }

    #[test]
    fn prefix_scan_stops_at_the_prefix_and_handles_ff() {
        let (_d, db) = db();
        let t = db.tree("t");
        db.create_trees(&[&t]).unwrap();
        for k in [&b"ab"[..], b"ab\x00", b"ab\xff", b"ac", b"a\xff\xff", b"b"] {
            t.insert(k, b"").unwrap();
        }
        let keys = |it: Iter| it.keys().map(|k| k.unwrap()).collect::<Vec<_>>();
        assert_eq!(keys(t.scan_prefix(b"ab")), vec![b"ab".to_vec(), b"ab\x00".to_vec(), b"ab\xff".to_vec()]);
        assert_eq!(keys(t.scan_prefix(b"a\xff")), vec![b"a\xff\xff".to_vec()]);
        assert_eq!(keys(t.scan_prefix(b"")).len(), 6);
        assert_eq!(keys(t.range(b"ac".to_vec()..)).len(), 3, "ac, b and the ff key sort after");
        assert_eq!(t.iter().next_back().unwrap().unwrap().0, b"b".to_vec());
    }

    #[test]
    fn a_failed_transaction_writes_nothing_and_ids_never_repeat() {
        let d = tempfile::tempdir().unwrap();
        let first;
        {
            let db = Db::open(d.path(), 1 << 20).ok().unwrap();
            let t = db.tree("t");
            db.create_trees(&[&t]).unwrap();
            let r: Result<(), KvError> = db.transaction(|tx| {
                tx.insert(&t, b"k", b"v")?;
                Err(KvError(redb::Error::ValueTooLarge(0)))
            });
            assert!(r.is_err());
            assert_eq!(t.get(b"k").unwrap(), None);
            first = db.generate_id().unwrap();
            assert_eq!(db.generate_id().unwrap(), first + 1);
            db.durable().unwrap();
        }
        let db = Db::open(d.path(), 1 << 20).ok().unwrap();
        assert!(db.generate_id().unwrap() > first + 1, "ids go on past what was reserved before");
    }
}
