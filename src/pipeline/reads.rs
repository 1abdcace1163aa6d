//! Where a vehicle read enters the box: stored durably first, then matched against the hotlists, then
//! the uplink is woken. Camera ingest hands its reads here.

use super::hotlists::Hotlists;
use crate::store::{AlertRecord, NewRead, ReadId, Store, StoreError, StoredRead};
use crate::uplink::payload::{AlertStage, CertaintyV1};
use std::sync::Arc;
use tokio::sync::Notify;

pub struct ReadSink {
    pub store: Arc<Store>,
    pub hotlists: Arc<Hotlists>,
    pub uplink: Option<Arc<Notify>>,
}

impl ReadSink {
    /// Stores the read (durable on return), raises its alerts, wakes the uplink.
    pub fn accept(&self, read: NewRead) -> Result<(ReadId, Vec<AlertRecord>), StoreError> {
        let (stored, alerts) = self.accept_as(read, None)?;
        Ok((stored.id, alerts))
    }

    /// As [`ReadSink::accept`], with the stage and certainty its alerts carry (None: `confirmed`, on the
    /// read's own confidence). Returns the stored read.
    pub fn accept_as(
        &self,
        read: NewRead,
        stage: Option<(AlertStage, &CertaintyV1)>,
    ) -> Result<(StoredRead, Vec<AlertRecord>), StoreError> {
        let id = self.store.put_read(read)?;
        let stored = self.store.get_read(id)?.ok_or(StoreError::ReadNotFound(id))?;
        crate::observe::recorder().read_stored(&stored.camera_id, jiff::Timestamp::now().as_millisecond());
        log::debug!(read = id.to_string().as_str(), camera = stored.camera_id.as_str(), plate = stored.plate.expose(); "vehicle read stored");
        let alerts = match stage {
            Some((stage, certainty)) => self.hotlists.check_read_as(&stored, stage, certainty)?,
            None => self.hotlists.check_read(&stored, false)?,
        };
        self.wake();
        Ok((stored, alerts))
    }

    /// Stores the read (durable on return) without matching it: its hits are raised, or folded into an
    /// earlier alert of the same vehicle, by the caller. Wakes the uplink.
    pub fn store_only(&self, read: NewRead) -> Result<StoredRead, StoreError> {
        let id = self.store.put_read(read)?;
        let stored = self.store.get_read(id)?.ok_or(StoreError::ReadNotFound(id))?;
        crate::observe::recorder().read_stored(&stored.camera_id, jiff::Timestamp::now().as_millisecond());
        self.wake();
        Ok(stored)
    }

    /// Wakes the uplink: something waits in the outbox.
    pub fn wake(&self) {
        if let Some(w) = &self.uplink {
            w.notify_one();
        }
    }
}
