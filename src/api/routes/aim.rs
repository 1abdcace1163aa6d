//! The Cameras page's aiming routes (issue 18 §1): one camera's live snapshot with its boxes, plate
//! heights, OCR text and verdict, as server-sent events; and the TOML line for a region of interest drawn
//! on it. Both need `view_cameras` (installer or admin) and are audited: the stream once when opened
//! (it shows plate text, which is personal data), the region each time.

use super::*;
use crate::api::aim::{self, Evidence};

/// How often the snapshot is sent.
const EVERY: std::time::Duration = std::time::Duration::from_millis(1500);

/// What the page needs of the camera's configuration.
#[derive(Clone)]
struct Aiming {
    /// The camera's own band; None: [`aim::default_band`] for the frame's width.
    band: Option<[u32; 2]>,
    detector_width: Option<u32>,
    roi: Vec<[u32; 2]>,
    rotate_deg: f64,
}

/// The camera as it runs (a reload's settings), or as configured when this process runs no cameras.
fn aiming(s: &ApiState, id: &str) -> Option<Aiming> {
    let detector_width = s.config.recognizer.detector.as_ref().map(|d| d.input_width);
    let of = |c: &crate::config::Camera| Aiming {
        band: c.plate_height_band_px,
        detector_width,
        roi: c.roi.clone(),
        rotate_deg: c.rotate_deg,
    };
    match s.cameras.as_ref() {
        Some(set) => set.with(id, |c| of(c.config())),
        None => s.config.cameras.iter().find(|c| c.id == id).map(of),
    }
}

/// One snapshot event's data.
fn snapshot_json(snaps: &crate::pipeline::snapshot::Snapshots, id: &str, a: &Aiming) -> Value {
    use base64::Engine;
    let now = now_ms();
    snaps.watch(now);
    let view = snaps.view(id, now);
    // Without a frame yet, the band of a 1080p camera (the verdict then waits for a frame anyway).
    let width = view.shot.as_ref().map_or(1920, |shot| shot.frame.width);
    let band = a.band.unwrap_or_else(|| aim::default_band(width, a.detector_width));
    let pic = view.shot.as_ref().map(|shot| super::super::snapshot::picture(shot, band, aim::DEFAULT_MAX_TILT_DEG));
    let (plates, brightness, image, size, at) = match &pic {
        Some(Ok(p)) => (
            p.plates.clone(),
            Some(p.brightness),
            Some(format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(&p.jpeg))),
            Some([p.width, p.height]),
            Some(p.captured_at_ms),
        ),
        Some(Err(e)) => {
            log::warn!(camera = id; "snapshot not drawn: {e}");
            (Vec::new(), None, None, None, None)
        }
        None => (Vec::new(), None, None, None, None),
    };
    let verdict = aim::verdict(&Evidence {
        plates: &plates,
        recent_heights: &view.recent_heights,
        watched_ms: view.watched_ms,
        brightness,
        band,
        max_tilt_deg: aim::DEFAULT_MAX_TILT_DEG,
        rotate_deg: a.rotate_deg,
    });
    json!({
        "camera": id, "image": image, "size": size, "captured_at_ms": at, "age_s": at.map(|t| ((now - t) as f64 / 100.0).round() / 10.0),
        "plates": plates, "brightness": brightness.map(|b| b.round()), "band": band, "max_tilt_deg": aim::DEFAULT_MAX_TILT_DEG,
        "recent_plates": view.recent_heights.len(), "roi": a.roi, "verdict": verdict,
    })
}

/// One camera's live snapshot every 1.5 s as server-sent events (`event: snapshot`): the picture with its
/// boxes drawn, each plate's height, tilt, text and fit, and the verdict. Recorded once when opened; it
/// ends with the session and after [`STREAM_MAX`]. While it runs the analysis keeps the frames it sees
/// (moved, not copied), and only then.
pub(super) async fn snapshot_stream(State(s): St, Path(id): Path<String>, c: Caller) -> Res<Response> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let object = format!("camera {} snapshot", for_audit(&id));
    require(&s, &c, Permission::ViewCameras, Action::CamerasViewed, &object)?;
    let base = NewAuditEntry { object: object.clone(), ..c.entry(Action::CamerasViewed) };
    let Some(snaps) = s.snapshots.clone() else {
        return refuse(
            &s,
            base,
            Outcome::Error,
            StatusCode::SERVICE_UNAVAILABLE,
            "no frame analysis runs in this process".into(),
        );
    };
    let Some(a) = aiming(&s, &id) else {
        return refuse(&s, base, Outcome::Denied, StatusCode::NOT_FOUND, format!("no camera `{}`", for_audit(&id)));
    };
    let token = c.token.clone();
    audit(
        &s,
        NewAuditEntry {
            outcome: Some(Outcome::Ok),
            detail: "live snapshot with boxes and plate text opened (aiming)".into(),
            ..base
        },
    )?;
    snaps.watch(now_ms());
    let until = tokio::time::Instant::now() + STREAM_MAX;
    let start = (s.clone(), token, true);
    let events = futures_util::stream::unfold(start, move |(st, token, first)| {
        let (snaps, id, a) = (snaps.clone(), id.clone(), a.clone());
        async move {
            if !first {
                tokio::time::sleep(EVERY).await;
            }
            if tokio::time::Instant::now() >= until || !st.users.sessions().alive(&token, now_ms()) {
                return None;
            }
            // The camera's current settings (a reload may change its band, region or rotation).
            let a = aiming(&st, &id).unwrap_or(a);
            let data = tokio::task::spawn_blocking(move || snapshot_json(&snaps, &id, &a).to_string())
                .await
                .unwrap_or_else(|_| "{}".into());
            Some((
                Ok::<Event, std::convert::Infallible>(Event::default().event("snapshot").data(data)),
                (st, token, false),
            ))
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RoiBody {
    /// The drawn outline, in frame pixels.
    points: Vec<[f64; 2]>,
    /// The frame's size the points were measured on.
    width: u32,
    height: u32,
}

/// The TOML line for a region of interest drawn on the snapshot, checked (the console never writes the
/// configuration). Recorded with the camera and the number of points.
pub(super) async fn roi_snippet(
    State(s): St,
    Path(id): Path<String>,
    c: Caller,
    Json(b): Json<RoiBody>,
) -> Res<Json<Value>> {
    let object = format!("camera {} roi", for_audit(&id));
    require(&s, &c, Permission::ViewCameras, Action::CamerasViewed, &object)?;
    let base = NewAuditEntry { object, result_count: Some(b.points.len() as u64), ..c.entry(Action::CamerasViewed) };
    if aiming(&s, &id).is_none() {
        return refuse(&s, base, Outcome::Denied, StatusCode::NOT_FOUND, format!("no camera `{}`", for_audit(&id)));
    }
    match crate::api::roi::check(&b.points, b.width, b.height) {
        Ok(roi) => {
            audit(
                &s,
                NewAuditEntry {
                    outcome: Some(Outcome::Ok),
                    detail: "region of interest drawn; TOML given".into(),
                    ..base
                },
            )?;
            Ok(Json(json!({ "roi": roi, "toml": crate::api::roi::snippet(&id, &roi, b.width, b.height) })))
        }
        Err(e) => refuse(&s, base, Outcome::Denied, StatusCode::BAD_REQUEST, e.to_string()),
    }
}
