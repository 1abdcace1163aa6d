//! Group commit: one thread writes queued batches in a transaction and makes them durable with a single
//! flush, then acknowledges every caller in the group. Reads that arrive while a flush runs share the
//! next one, so throughput grows with concurrency while each caller still waits for its own flush.

use super::{Prepared, Result, Store, StoreError, Trees};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Why a group was not committed (cloned to every caller of the group).
#[derive(Debug, Clone)]
enum Failure {
    /// The disk refused the write (ENOSPC).
    DiskFull(String),
    Other(String),
}

struct Job {
    reads: Vec<Prepared>,
    ack: SyncSender<std::result::Result<(), Failure>>,
}

pub(crate) struct Committer {
    tx: Mutex<Option<SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    pub fn start(trees: Trees, max_batch: usize) -> Committer {
        // Bounded: a stalled disk pushes back on writers instead of queueing without limit.
        let (tx, rx) = mpsc::sync_channel::<Job>(max_batch * 4);
        let thread =
            std::thread::Builder::new().name("store-commit".into()).spawn(move || run(trees, rx, max_batch)).ok();
        Committer { tx: Mutex::new(Some(tx)), thread: Mutex::new(thread) }
    }

    pub fn commit(&self, reads: Vec<Prepared>) -> Result<()> {
        let sender = self.tx.lock().map_err(|_| StoreError::Closed)?.clone().ok_or(StoreError::Closed)?;
        let (ack, done) = mpsc::sync_channel(1);
        sender.send(Job { reads, ack }).map_err(|_| StoreError::Closed)?;
        match done.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(Failure::Other(msg))) => Err(StoreError::Commit(msg)),
            Ok(Err(Failure::DiskFull(detail))) => Err(StoreError::DiskFull { path: std::path::PathBuf::new(), detail }),
            Err(_) => Err(StoreError::Closed),
        }
    }

    pub fn stop(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(trees: Trees, rx: Receiver<Job>, max_batch: usize) {
    while let Ok(first) = rx.recv() {
        let mut n = first.reads.len();
        let mut jobs = vec![first];
        while n < max_batch {
            match rx.try_recv() {
                Ok(j) => {
                    n += j.reads.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let result = write_group(&trees, &jobs).map_err(|e| match is_enospc(&e) {
            true => Failure::DiskFull(format!("the disk refused the write: {e}")),
            false => Failure::Other(e.to_string()),
        });
        if let Err(e) = &result {
            log::error!(reads = n; "store commit failed, nothing of it acknowledged: {e:?}");
        }
        for j in jobs {
            let _ = j.ack.send(result.clone());
        }
    }
}

fn is_enospc(e: &StoreError) -> bool {
    let io = match e {
        StoreError::Db(e) => e.io(),
        StoreError::Io { source, .. } => Some(source),
        _ => None,
    };
    io.is_some_and(|io| io.raw_os_error() == Some(libc::ENOSPC) || io.kind() == std::io::ErrorKind::StorageFull)
}

fn write_group(trees: &Trees, jobs: &[Job]) -> Result<()> {
    for j in jobs {
        Store::write_prepared(trees, &j.reads)?;
    }
    trees.durable()?;
    Ok(())
}
