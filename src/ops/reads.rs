//! Where a vehicle read enters the box: stored durably first, then matched against the hotlists, then
//! the uplink is woken. Camera ingest hands its reads here.

use super::hotlists::Hotlists;
use crate::store::{AlertRecord, NewRead, ReadId, Store, StoreError};
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
        let id = self.store.put_read(read)?;
        let stored = self.store.get_read(id)?.ok_or(StoreError::ReadNotFound(id))?;
        log::debug!(read = id.to_string().as_str(), camera = stored.camera_id.as_str(), plate = stored.plate.expose(); "vehicle read stored");
        let alerts = self.hotlists.check_read(&stored, false)?;
        if let Some(w) = &self.uplink {
            w.notify_one();
        }
        Ok((id, alerts))
    }
}
