//! What sled's `flush` leaves out, so that "durable on return" holds through a power cut and not only a
//! `kill -9`.
//!
//! sled 0.34.7 on Linux makes its log "stable" with `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)`
//! (pagecache/iobuf.rs) and calls `fsync` only from its flusher thread (every `flush_every_ms`) and at
//! snapshots. `sync_file_range` writes no metadata (the size of a growing file included) and does not
//! flush the disk's write cache: its man page says there is no guarantee the data survives a crash.
//! Values over sled's inline limit (128 KiB with the default segment size: full frames) go to files in
//! `blobs/` that sled writes and never syncs at all. `polewatch bench powerloss` shows both: acknowledged
//! reads, holds, audit entries and queued messages lost, and stores that no longer open.
//!
//! [`Syncer::sync`], called after every sled flush the store acknowledges on, syncs the blob files sled
//! created since the last call (and their directory), then `fdatasync`s the log file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

pub(crate) struct Syncer {
    log: File,
    blobs: PathBuf,
    /// The blob directory's mtime at the last sync and the highest blob (sled names them by LSN) synced.
    seen: Mutex<(Option<SystemTime>, u64)>,
}

impl Syncer {
    pub fn open(store: &Path) -> std::io::Result<Syncer> {
        let log = File::open(store.join("db"))?;
        // sled writes its `conf` (segment size, format) once at creation and never syncs it: a power cut
        // in a new store's first minutes left a store sled calls corrupt (bench powerloss, 2 of 40 cuts).
        File::open(store.join("conf"))?.sync_all()?;
        log.sync_data()?;
        // The store directory's entries (db, conf, blobs/) are durable from the start.
        File::open(store)?.sync_all()?;
        Ok(Syncer { log, blobs: store.join("blobs"), seen: Mutex::new((None, 0)) })
    }

    pub fn sync(&self) -> std::io::Result<()> {
        self.sync_blobs()?;
        self.log.sync_data()
    }

    fn sync_blobs(&self) -> std::io::Result<()> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // One stat per flush when no blob was created or removed (the usual case).
        let mtime = match std::fs::metadata(&self.blobs) {
            Ok(m) => m.modified().ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if mtime.is_some() && mtime == seen.0 {
            return Ok(());
        }
        let mut newest = seen.1;
        for e in std::fs::read_dir(&self.blobs)? {
            let e = e?;
            let Some(lsn) = e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()) else { continue };
            if lsn > seen.1 {
                match File::open(e.path()) {
                    Ok(f) => f.sync_all()?,
                    // Removed by sled's blob GC in between: nothing to keep.
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err),
                }
                newest = newest.max(lsn);
            }
        }
        File::open(&self.blobs)?.sync_all()?;
        *seen = (mtime, newest);
        Ok(())
    }
}
