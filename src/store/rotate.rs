//! Key rotation (`polewatch store rotate-key`): re-seals every read, image and index entry under a new
//! key, or encrypts a store that was in clear text.
//!
//! Resumable: the store is opened with the new key as current and the old one (if any) beside it
//! ([`StoreOptions::rotating`](super::StoreOptions)); opening writes `meta/enc_rotation_to`, and until
//! the rotation finishes the daemon refuses to start. Each batch of reads is re-sealed with its images
//! and index entries in one transaction, so an interruption at any point leaves every value readable
//! under one of the two keys (each value names its key id); running the command again skips what is
//! already under the new key. At the end `meta/enc_key_id` names the new key and the marker goes.

use super::crypt::{KEY_ID_LEN, key_id_of};
use super::open::{KEY_ID_KEY, ROTATION_KEY};
use super::{ImageKind, ReadId, Result, Store, StoreError, TREE_IMAGES, TREE_READS, image_key};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RotateReport {
    pub reads: u64,
    pub images: u64,
    /// Stale index entries removed (clear-text or old-key ones).
    pub index_removed: u64,
    pub batches: u32,
    /// False when stopped by `max_batches` (to be resumed).
    pub finished: bool,
}

impl Store {
    fn is_current(&self, v: &[u8], current: &[u8; KEY_ID_LEN]) -> bool {
        key_id_of(v).is_some_and(|id| id == *current)
    }

    /// Re-seals everything not under the current key, `batch` reads per transaction. Stops after
    /// `max_batches` batches when given (the report then says `finished: false`); the store stays
    /// consistent and the next call goes on where this one stopped.
    pub fn rotate_keys(&self, batch: usize, max_batches: Option<u32>) -> Result<RotateReport> {
        let keys = self
            .keys
            .clone()
            .ok_or_else(|| StoreError::Encryption { path: self.path.clone(), reason: "no key to rotate to".into() })?;
        let current = keys.current.id();
        let mut rep = RotateReport::default();
        let out_of_batches = |rep: &RotateReport| max_batches.is_some_and(|m| rep.batches >= m);
        let batch = batch.max(1);

        // 1. Reads, with their images and index entries.
        let mut after: Option<Vec<u8>> = None;
        loop {
            if out_of_batches(&rep) {
                return Ok(rep);
            }
            let range = match &after {
                None => self.trees.reads.iter(),
                Some(a) => self.trees.reads.range((std::ops::Bound::Excluded(a.clone()), std::ops::Bound::Unbounded)),
            };
            let mut todo: Vec<Vec<u8>> = Vec::new();
            let mut last = None;
            for e in range {
                let (k, v) = e?;
                last = Some(k.clone());
                if !self.is_current(&v, &current) {
                    todo.push(k);
                    if todo.len() >= batch {
                        break;
                    }
                }
            }
            if todo.is_empty() {
                break;
            }
            after = last;
            let t = &self.trees;
            let (reads_n, images_n) = t.db.transaction(|tx| {
                let (mut rn, mut inn) = (0u64, 0u64);
                for key in &todo {
                    let Some(v) = tx.get(&t.reads, key)? else { continue };
                    if self.is_current(&v, &current) {
                        continue;
                    }
                    let id = ReadId::from_bytes(key.as_slice().try_into().map_err(|_| StoreError::Decode {
                        key: super::hex(key),
                        reason: "read key is not 16 bytes".into(),
                    })?);
                    let read = self.decode_read(key, &v)?;
                    let plain = self.unseal(TREE_READS, key, &v)?;
                    tx.insert(&t.reads, key, self.seal(TREE_READS, key, plain.into_owned())?)?;
                    rn += 1;
                    for kind in [ImageKind::Crop, ImageKind::Frame] {
                        let ik = image_key(&id, kind);
                        if let Some(iv) = tx.get(&t.images, ik)?
                            && !self.is_current(&iv, &current)
                        {
                            let plain = self.unseal(TREE_IMAGES, &ik, &iv)?;
                            tx.insert(&t.images, ik, self.seal(TREE_IMAGES, &ik, plain.into_owned())?)?;
                            inn += 1;
                        }
                    }
                    let plate = read.plate.expose().as_bytes();
                    let (old_fwd, old_rev) = self.all_index_keys(plate, &id);
                    for k in old_fwd {
                        tx.remove(&t.plate_idx, k)?;
                    }
                    tx.remove(&t.plate_rev_idx, old_rev)?;
                    let ((k, v), _) = self.index_entries(plate, &id)?;
                    tx.insert(&t.plate_idx, k, v)?;
                }
                Ok::<_, StoreError>((rn, inn))
            })?;
            self.trees.durable()?;
            rep.reads += reads_n;
            rep.images += images_n;
            rep.batches += 1;
        }

        // 2. Images whose read is gone or that were missed (none in a consistent store).
        let stale_images: Vec<(Vec<u8>, Vec<u8>)> =
            self.trees.images.iter().filter_map(|e| e.ok()).filter(|(_, v)| !self.is_current(v, &current)).collect();
        for (k, v) in stale_images {
            let plain = self.unseal(TREE_IMAGES, &k, &v)?;
            self.trees.images.insert(&k, self.seal(TREE_IMAGES, &k, plain.into_owned())?)?;
            rep.images += 1;
        }
        // 3. Index entries not under the current key: every live read got its new entry in 1.
        let stale_idx: Vec<Vec<u8>> = self
            .trees
            .plate_idx
            .iter()
            .filter_map(|e| e.ok())
            .filter(|(_, v)| !self.is_current(v, &current))
            .map(|(k, _)| k)
            .collect();
        for k in stale_idx {
            self.trees.plate_idx.remove(k)?;
            rep.index_removed += 1;
        }
        let rev: Vec<Vec<u8>> = self.trees.plate_rev_idx.iter().keys().filter_map(|k| k.ok()).collect();
        for k in rev {
            self.trees.plate_rev_idx.remove(k)?;
            rep.index_removed += 1;
        }
        self.trees.meta.insert(KEY_ID_KEY, &current[..])?;
        self.trees.meta.remove(ROTATION_KEY)?;
        self.trees.durable()?;
        rep.finished = true;
        Ok(rep)
    }
}
