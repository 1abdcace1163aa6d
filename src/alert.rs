//! Raising an alert: the vehicle read, the hotlist hit and the plate crop become one durable alert
//! record and one queued message, with `verification_required: true` (a hit must be confirmed before
//! anyone acts on it). An alert raised while the vehicle is still in view is `provisional`; when its
//! pass closes, [`update`] queues one more message under the same alert id (the next revision):
//! confirmed, changed or withdrawn. The alert record keeps the stage and revision in its `detail`.
//! A second hit for the same camera and entry within a short window (the same vehicle, a split track)
//! is folded by the frame path (`pipeline::recent`) into an [`update`] of the first alert.

use crate::store::{AlertRecord, ImageKind, Store, StoreError, StoredRead, Swap};

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
    serde_json::from_value(record.detail.clone())
        .map_err(|e| StoreError::InvalidAlert(format!("alert {}: {e}", record.id)))
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
    let record = AlertRecord {
        id,
        read_id: read.id,
        raised_at_ms: now.as_millisecond(),
        detail: detail(&hit, stage, 0)?,
        verification: None,
    };
    let bytes = serde_json::to_vec(&payload).map_err(|e| StoreError::InvalidAlert(e.to_string()))?;
    store.raise_alert(&record, "alerts", bytes)?;
    log::info!(alert = id.to_string().as_str(), read = read.id.to_string().as_str(), list = hit.list.as_str(), match_kind = hit.match_kind.as_str(), stage = stage.as_str();
        "hotlist alert raised (verification required)");
    Ok(record)
}

/// How many times [`update`] rebuilds on a record that changed under it before it gives up.
const UPDATE_TRIES: usize = 16;

/// The revision an alert record is at (0 for records from before revisions were kept).
pub fn revision_of(record: &AlertRecord) -> u32 {
    record.detail.get("revision").and_then(|r| r.as_u64()).map_or(0, |r| r.min(u32::MAX as u64) as u32)
}

/// The update of an alert when a pass of its vehicle closed (or a second track of the vehicle hit the
/// same entry): the record takes the new stage and the next revision, and one message goes out under the
/// same id with that revision, the stored read, the hit and the pass's vote. The record is replaced by
/// compare-and-swap ([`Store::swap_alert`]): a verification an operator makes between the read and the
/// write is kept (the update is rebuilt on the record as it is then). Durable on return.
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
    for _ in 0..UPDATE_TRIES {
        let (next, bytes) = revise(&record, site, device, read, stage, certainty.clone(), final_read.clone())?;
        match store.swap_alert(&record, &next, "alerts", bytes)? {
            Swap::Done(_) => {
                log::info!(alert = alert.to_string().as_str(), list = hit_of(&next)?.list.as_str(), stage = stage.as_str(), revision = revision_of(&next) as u64;
                    "hotlist alert updated");
                return Ok(next);
            }
            Swap::Changed(Some(now)) => record = *now,
            Swap::Changed(None) => return Err(StoreError::InvalidAlert(format!("alert {alert} not found"))),
        }
    }
    Err(StoreError::InvalidAlert(format!("alert {alert} kept changing; update not queued after {UPDATE_TRIES} tries")))
}

/// The next state of an alert record and its message: pure, so that [`update`] can rebuild it on the
/// record as stored whenever that changed. Everything but the stage and revision (the verification
/// above all) is kept.
fn revise(
    record: &AlertRecord,
    site: &str,
    device: &str,
    read: &StoredRead,
    stage: AlertStage,
    certainty: CertaintyV1,
    final_read: FinalReadV1,
) -> Result<(AlertRecord, Vec<u8>), StoreError> {
    let hit = hit_of(record)?;
    let revision = revision_of(record).saturating_add(1);
    let raised_at =
        jiff::Timestamp::from_millisecond(record.raised_at_ms).map(|t| format!("{t:.3}")).unwrap_or_default();
    let payload = AlertV1 {
        v: VERSION,
        kind: "alert".into(),
        id: record.id.to_string(),
        site: site.into(),
        device: device.into(),
        raised_at,
        verification_required: true,
        retroactive: false,
        read: ReadV1::from(read),
        hit: hit.clone(),
        crop_jpeg_base64: None,
        stage,
        revision,
        certainty,
        final_read: Some(final_read),
    };
    let mut next = record.clone();
    next.detail = detail(&hit, stage, revision)?;
    let bytes = serde_json::to_vec(&payload).map_err(|e| StoreError::InvalidAlert(e.to_string()))?;
    Ok((next, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Decision, NewRead, Plate, StoreOptions, Verification};

    #[test]
    fn an_update_keeps_an_operators_decision_made_between_its_read_and_its_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreOptions::at(dir.path().join("store"))).unwrap().0;
        let id = store
            .put_read(NewRead {
                camera_id: "c".into(),
                captured_at_ms: 1_790_000_000_000,
                plate: Plate::new("MUC4821").unwrap(),
                confidence: 0.7,
                char_confidences: vec![0.7; 7],
                candidates: vec![],
                bbox: [1, 2, 30, 10],
                region: None,
                frame_seq: 1,
                crop_jpeg: None,
                frame_jpeg: None,
            })
            .unwrap();
        let read = store.get_read(id).unwrap().unwrap();
        let hit = HitV1 {
            list: "hot".into(),
            entry: "MUC4821".into(),
            category: "stolen".into(),
            priority: 1,
            source: "t".into(),
            match_kind: "exact".into(),
            score: 1.0,
            matched_text: "MUC4821".into(),
        };
        let certainty = CertaintyV1::stored(&read);
        let alert =
            raise_as(&store, "s", "d", &read, hit, false, 1 << 20, AlertStage::Provisional, certainty.clone()).unwrap();
        let final_read = FinalReadV1 { plate: "MUC4821".into(), confidence: 0.8, frames: 9, candidates: vec![] };

        // The update has read the record and built its next state; the operator rejects the alert; then
        // the update writes. The stale write is refused and the decision stays.
        let (next, bytes) =
            revise(&alert, "s", "d", &read, AlertStage::Confirmed, certainty.clone(), final_read.clone()).unwrap();
        let decision = Verification {
            decision: Decision::Rejected,
            by: "op".into(),
            at_ms: 1_790_000_000_500,
            note: String::new(),
        };
        store.verify_alert(alert.id, decision.clone()).unwrap();
        assert!(matches!(store.swap_alert(&alert, &next, "alerts", bytes).unwrap(), Swap::Changed(Some(_))));
        assert_eq!(store.alert(alert.id).unwrap().unwrap().verification, Some(decision.clone()));
        assert_eq!(store.outbox_len(), 1, "nothing queued by the refused swap");

        // `update` rebuilds on the record as stored: new stage and revision, the decision kept.
        let updated =
            update(&store, "s", "d", alert.id, &read, AlertStage::Confirmed, certainty.clone(), final_read.clone())
                .unwrap();
        let stored = store.alert(alert.id).unwrap().unwrap();
        assert_eq!(stored, updated);
        assert_eq!(stored.verification, Some(decision.clone()));
        assert_eq!((stage_of(&stored), revision_of(&stored)), (AlertStage::Confirmed, 1));
        // A further update (a second track of the vehicle) takes the next revision.
        update(&store, "s", "d", alert.id, &read, AlertStage::Changed, certainty, final_read).unwrap();
        let stored = store.alert(alert.id).unwrap().unwrap();
        assert_eq!(
            (stage_of(&stored), revision_of(&stored), stored.verification),
            (AlertStage::Changed, 2, Some(decision))
        );
        let msgs = store.outbox_peek(None, 10).unwrap();
        let revisions: Vec<u64> = msgs
            .iter()
            .map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap()["revision"].as_u64().unwrap())
            .collect();
        assert_eq!(revisions, [0, 1, 2]);
    }
}
