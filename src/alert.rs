//! Raising an alert: the vehicle read, the hotlist hit and the plate crop become one durable alert
//! record and one queued message, with `verification_required: true` (a hit must be confirmed before
//! anyone acts on it). An alert raised while the vehicle is still in view is `provisional`; when its
//! pass closes, [`update`] queues one more message under the same alert id (revision 1): confirmed,
//! changed or withdrawn. The alert record keeps the stage in its `detail`.

use crate::store::{AlertRecord, ImageKind, Store, StoreError, StoredRead};
use crate::uplink::payload::{AlertStage, AlertV1, CertaintyV1, FinalReadV1, HitV1, ReadV1, VERSION};
use base64::Engine;

/// Room left in an MQTT packet for everything but the crop.
const ENVELOPE_BYTES: usize = 16 * 1024;

/// A final alert on a stored read (the pass's vote, a retroactive check): `confirmed`, with the read's
/// own confidence as its certainty.
pub fn raise(
    store: &Store,
    site: &str,
    device: &str,
    read: &StoredRead,
    hit: HitV1,
    retroactive: bool,
    max_packet_bytes: usize,
) -> Result<AlertRecord, StoreError> {
    let certainty = CertaintyV1::stored(read);
    raise_as(store, site, device, read, hit, retroactive, max_packet_bytes, AlertStage::Confirmed, certainty)
}

/// The alert record's `detail`: the hit, with the stage and revision it is at.
fn detail(hit: &HitV1, stage: AlertStage, revision: u32) -> Result<serde_json::Value, StoreError> {
    let mut d = serde_json::to_value(hit).map_err(|e| StoreError::InvalidAlert(e.to_string()))?;
    if let Some(o) = d.as_object_mut() {
        o.insert("stage".into(), stage.as_str().into());
        o.insert("revision".into(), revision.into());
    }
    Ok(d)
}

/// The stage an alert record is at (`confirmed` for records from before stages existed).
pub fn stage_of(record: &AlertRecord) -> AlertStage {
    record.detail.get("stage").and_then(|s| serde_json::from_value(s.clone()).ok()).unwrap_or(AlertStage::Confirmed)
}

/// The hit an alert record was raised for.
pub fn hit_of(record: &AlertRecord) -> Result<HitV1, StoreError> {
    serde_json::from_value(record.detail.clone()).map_err(|e| StoreError::InvalidAlert(format!("alert {}: {e}", record.id)))
}

#[allow(clippy::too_many_arguments)]
pub fn raise_as(
    store: &Store,
    site: &str,
    device: &str,
    read: &StoredRead,
    hit: HitV1,
    retroactive: bool,
    max_packet_bytes: usize,
    stage: AlertStage,
    certainty: CertaintyV1,
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
        stage,
        revision: 0,
        certainty,
        final_read: None,
    };
    let record = AlertRecord { id, read_id: read.id, raised_at_ms: now.as_millisecond(), detail: detail(&hit, stage, 0)?, verification: None };
    let bytes = serde_json::to_vec(&payload).map_err(|e| StoreError::InvalidAlert(e.to_string()))?;
    store.raise_alert(&record, "alerts", bytes)?;
    log::info!(alert = id.to_string().as_str(), read = read.id.to_string().as_str(), list = hit.list.as_str(), match_kind = hit.match_kind.as_str(), stage = stage.as_str();
        "hotlist alert raised (verification required)");
    Ok(record)
}

/// The update of a provisional alert when its pass closed: the record takes the new stage (its
/// verification, if one was made meanwhile, stays) and one message goes out under the same id with
/// revision 1, the stored read, the hit and the pass's vote. Durable on return.
#[allow(clippy::too_many_arguments)]
pub fn update(
    store: &Store,
    site: &str,
    device: &str,
    alert: uuid::Uuid,
    read: &StoredRead,
    stage: AlertStage,
    certainty: CertaintyV1,
    final_read: FinalReadV1,
) -> Result<AlertRecord, StoreError> {
    let mut record = store.alert(alert)?.ok_or_else(|| StoreError::InvalidAlert(format!("alert {alert} not found")))?;
    let hit = hit_of(&record)?;
    let raised_at = jiff::Timestamp::from_millisecond(record.raised_at_ms).map(|t| format!("{t:.3}")).unwrap_or_default();
    let payload = AlertV1 {
        v: VERSION,
        kind: "alert".into(),
        id: alert.to_string(),
        site: site.into(),
        device: device.into(),
        raised_at,
        verification_required: true,
        retroactive: false,
        read: ReadV1::from(read),
        hit: hit.clone(),
        crop_jpeg_base64: None,
        stage,
        revision: 1,
        certainty,
        final_read: Some(final_read),
    };
    record.detail = detail(&hit, stage, 1)?;
    let bytes = serde_json::to_vec(&payload).map_err(|e| StoreError::InvalidAlert(e.to_string()))?;
    store.raise_alert(&record, "alerts", bytes)?;
    log::info!(alert = alert.to_string().as_str(), list = hit.list.as_str(), stage = stage.as_str(); "hotlist alert updated as the pass closed");
    Ok(record)
}
