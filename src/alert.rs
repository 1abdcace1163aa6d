//! Raising an alert: the vehicle read, the hotlist hit and the plate crop become one durable alert
//! record and one queued message, with `verification_required: true` (a hit must be confirmed before
//! anyone acts on it).

use crate::store::{AlertRecord, ImageKind, Store, StoreError, StoredRead};
use crate::uplink::payload::{AlertV1, HitV1, ReadV1, VERSION};
use base64::Engine;

/// Room left in an MQTT packet for everything but the crop.
const ENVELOPE_BYTES: usize = 16 * 1024;

pub fn raise(
    store: &Store,
    site: &str,
    device: &str,
    read: &StoredRead,
    hit: HitV1,
    retroactive: bool,
    max_packet_bytes: usize,
) -> Result<AlertRecord, StoreError> {
    let now = jiff::Timestamp::now();
    let id = uuid::Uuid::now_v7();
    let crop = if read.has_crop { store.image(read.id, ImageKind::Crop)? } else { None };
    // base64 grows the crop by 4/3; an alert too large for the broker would never leave, so it goes
    // without its crop (which stays stored) rather than not at all.
    let crop = crop.filter(|c| c.len() * 4 / 3 + ENVELOPE_BYTES <= max_packet_bytes);
    let payload = AlertV1 {
        v: VERSION,
        kind: "alert".into(),
        id: id.to_string(),
        site: site.into(),
        device: device.into(),
        raised_at: format!("{now:.3}"),
        verification_required: true,
        retroactive,
        read: ReadV1::from(read),
        hit: hit.clone(),
        crop_jpeg_base64: crop.map(|c| base64::engine::general_purpose::STANDARD.encode(c)),
    };
    let record = AlertRecord {
        id,
        read_id: read.id,
        raised_at_ms: now.as_millisecond(),
        detail: serde_json::to_value(&hit).map_err(|e| StoreError::InvalidAlert(e.to_string()))?,
        verification: None,
    };
    let bytes = serde_json::to_vec(&payload).map_err(|e| StoreError::InvalidAlert(e.to_string()))?;
    store.raise_alert(&record, "alerts", bytes)?;
    log::info!(alert = id.to_string().as_str(), read = read.id.to_string().as_str(), list = hit.list.as_str(), match_kind = hit.match_kind.as_str(); "hotlist alert raised (verification required)");
    Ok(record)
}
