//! Aiming a camera (issue 18 §1): the plates of a live snapshot (and of the last ten minutes) against the
//! recommended plate-height band, and what the installer should do, in plain words. Pure: the snapshot
//! itself is `pipeline::snapshot`, its drawing `api::snapshot`.
//!
//! The band is where the shipped models read at least [`BAND_ACCURACY`] of plates exactly, measured by
//! `tests/plate_heights.rs` with the project's own renderer (models/MODELS.md, "Accuracy by plate
//! height"); it scales with the frame's width, because the detector sees the frame scaled to its input.
//! A camera may set its own (`plate_height_band_px`).

use serde::Serialize;

/// Below this height the OCR misreads, whatever the frame size (measured at 1280 × 720, where the
/// detector still finds smaller plates: 20–26 px read 62–94 %, from 28 px 94–100 %).
pub const OCR_MIN_PX: u32 = 28;
/// Below this height at the detector's input (the frame scaled to its input width) the detector misses
/// plates: 32 px in a 1920-wide frame (scaled by 640 / 1920) is 10.7 px there, 28 px (9.3) is missed
/// now and then.
pub const DETECTOR_MIN_PX: f64 = 10.5;
/// The tallest plate measured, which still reads; taller is untested, and a car that close crosses the
/// frame in too few analysed frames to vote on.
pub const MAX_PX: u32 = 200;
/// The detector input width the measurement used (models/polewatch.toml).
pub const MEASURED_DETECTOR_WIDTH: u32 = 640;

/// The recommended band for a frame `frame_width` pixels wide and a detector whose input is
/// `detector_width` wide: `[max(OCR_MIN_PX, DETECTOR_MIN_PX × frame_width / detector_width), MAX_PX]`.
pub fn default_band(frame_width: u32, detector_width: Option<u32>) -> [u32; 2] {
    let det = detector_width.unwrap_or(MEASURED_DETECTOR_WIDTH).max(1) as f64;
    let lo = (DETECTOR_MIN_PX * frame_width as f64 / det).ceil().max(OCR_MIN_PX as f64) as u32;
    [lo.min(MAX_PX - 1), MAX_PX]
}
/// Plates tilted more than this (the angle of their long edges) are "too oblique" (a mid-band plate at
/// 1080p: 10° reads 94 %, 12° 88 %, 15° 44 %, 20° none).
pub const DEFAULT_MAX_TILT_DEG: f32 = 10.0;
/// The share of plates read exactly that makes a height "recommended".
pub const BAND_ACCURACY: f64 = 0.9;
/// Mean brightness (0–255) below which frames are too dark, above which too bright.
pub const DARK: f64 = 40.0;
pub const BRIGHT: f64 = 225.0;
/// How far back the page looks for plates.
pub const RECENT_MS: i64 = crate::pipeline::snapshot::RECENT_MS;

/// One height of the accuracy curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    pub height_px: u32,
    pub trials: u32,
    /// Plates the detector found.
    pub detected: u32,
    /// Plates read exactly.
    pub read: u32,
}

impl CurvePoint {
    pub fn accuracy(&self) -> f64 {
        if self.trials == 0 { 0.0 } else { self.read as f64 / self.trials as f64 }
    }
}

/// The longest run of consecutive measured heights (sorted by height) all reading at least `min_accuracy`:
/// its lowest and highest height. `None` when no height does.
pub fn band_from_curve(curve: &[CurvePoint], min_accuracy: f64) -> Option<(u32, u32)> {
    let mut pts: Vec<&CurvePoint> = curve.iter().collect();
    pts.sort_by_key(|p| p.height_px);
    let (mut best, mut run): (Option<(usize, usize)>, Option<usize>) = (None, None);
    for (i, p) in pts.iter().enumerate() {
        if p.accuracy() >= min_accuracy {
            let start = *run.get_or_insert(i);
            if best.is_none_or(|(a, b)| i - start > b - a) {
                best = Some((start, i));
            }
        } else {
            run = None;
        }
    }
    best.map(|(a, b)| (pts[a].height_px, pts[b].height_px))
}

/// A plate (or a box the detector found that did not read as a plate) on the snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeenPlate {
    /// x, y, w, h in frame pixels.
    pub bbox: [f32; 4],
    pub height_px: f32,
    /// Angle of the plate's long edges, degrees (positive: clockwise in the image); None when unknown.
    pub tilt_deg: Option<f32>,
    /// The OCR text; None for a box that did not read as a plate.
    pub text: Option<String>,
    pub confidence: f32,
    /// `ok`, `too small`, `too large`, `too oblique`, or `not read`.
    pub fit: &'static str,
}

/// How one plate fits the band.
pub fn fit(height_px: f32, tilt_deg: Option<f32>, read: bool, band: [u32; 2], max_tilt: f32) -> &'static str {
    if height_px < band[0] as f32 {
        "too small"
    } else if height_px > band[1] as f32 {
        "too large"
    } else if tilt_deg.is_some_and(|t| t.abs() > max_tilt) {
        "too oblique"
    } else if !read {
        "not read"
    } else {
        "ok"
    }
}

/// What the page knows when it judges the aim.
#[derive(Debug, Clone, Default)]
pub struct Evidence<'a> {
    /// The snapshot's plates (boxes that read, and boxes that did not).
    pub plates: &'a [SeenPlate],
    /// Heights of the plates read in the last [`RECENT_MS`], oldest first.
    pub recent_heights: &'a [f32],
    /// Milliseconds the analysis has been watching this camera (since the daemon started).
    pub watched_ms: i64,
    /// Mean brightness of the snapshot, 0–255 (None: no snapshot yet).
    pub brightness: Option<f64>,
    pub band: [u32; 2],
    pub max_tilt_deg: f32,
    /// The camera's `rotate_deg` (the snapshot is already turned by it).
    pub rotate_deg: f64,
}

/// The verdict: `level` is `ok` or `fix`, `text` says what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aim {
    pub level: &'static str,
    pub text: String,
}

fn median(v: &[f32]) -> Option<f32> {
    let mut v: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    Some(v[v.len() / 2])
}

/// The installer's verdict, most pressing first: lighting, then no plates, then size, then tilt.
pub fn verdict(e: &Evidence) -> Aim {
    let fix = |text: String| Aim { level: "fix", text };
    let [lo, hi] = e.band;
    match e.brightness {
        None => {
            return fix(
                "no snapshot yet: waiting for an analysed frame (with the motion gate on, for something to move)"
                    .into(),
            );
        }
        Some(b) if b < DARK => {
            return fix(format!(
                "frames too dark (mean brightness {b:.0} of 255): add infrared or light, open the iris or lengthen the exposure"
            ));
        }
        Some(b) if b > BRIGHT => {
            return fix(format!(
                "frames too bright (mean brightness {b:.0} of 255): glare or overexposure; shorten the exposure or turn the camera from the sun"
            ));
        }
        _ => {}
    }
    let read: Vec<f32> = e.plates.iter().filter(|p| p.text.is_some()).map(|p| p.height_px).collect();
    let heights = if read.is_empty() { e.recent_heights.to_vec() } else { read };
    let Some(h) = median(&heights) else {
        if e.plates.is_empty() {
            return fix(if e.watched_ms >= RECENT_MS {
                "no plates in the last 10 minutes: check the aim, the focus and the region of interest".to_string()
            } else {
                format!(
                    "no plates yet (watching for {} s): wait for a car, or check the aim and focus",
                    e.watched_ms / 1000
                )
            });
        }
        let h = median(&e.plates.iter().map(|p| p.height_px).collect::<Vec<_>>()).unwrap_or(0.0);
        return fix(format!(
            "plates found ({h:.0} px high) but none reads: check the focus and motion blur (shorter exposure)"
        ));
    };
    let from = if e.plates.iter().any(|p| p.text.is_some()) { "" } else { " (last 10 minutes)" };
    if h < lo as f32 {
        return fix(format!(
            "plates {h:.0} px high{from}, too small: zoom in or move closer (recommended {lo}–{hi} px)"
        ));
    }
    if h > hi as f32 {
        return fix(format!(
            "plates {h:.0} px high{from}, too large: zoom out or move back (recommended {lo}–{hi} px)"
        ));
    }
    let tilts: Vec<f32> = e.plates.iter().filter_map(|p| p.tilt_deg).collect();
    if let Some(t) = median(&tilts).filter(|t| t.abs() > e.max_tilt_deg) {
        return fix(format!(
            "plates {h:.0} px high but tilted {t:.0}°, too oblique: level the camera, or set rotate_deg = {:.0} in its [[cameras]] table",
            e.rotate_deg + t as f64
        ));
    }
    Aim { level: "ok", text: format!("plates {h:.0} px high{from}: within the recommended {lo}–{hi} px; aimed well") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(h: u32, read: u32) -> CurvePoint {
        CurvePoint { height_px: h, trials: 10, detected: 10, read }
    }

    fn plate(h: f32, tilt: Option<f32>, text: Option<&str>) -> SeenPlate {
        SeenPlate {
            bbox: [0.0, 0.0, 2.0 * h, h],
            height_px: h,
            tilt_deg: tilt,
            text: text.map(String::from),
            confidence: 0.9,
            fit: "ok",
        }
    }

    fn ev<'a>(plates: &'a [SeenPlate], recent: &'a [f32]) -> Evidence<'a> {
        Evidence {
            plates,
            recent_heights: recent,
            watched_ms: 20 * 60_000,
            brightness: Some(120.0),
            band: [24, 130],
            max_tilt_deg: 15.0,
            rotate_deg: 0.0,
        }
    }

    #[test]
    fn the_band_is_the_longest_run_of_heights_that_read() {
        let c =
            [pt(40, 10), pt(10, 0), pt(16, 6), pt(20, 9), pt(24, 10), pt(32, 9), pt(64, 10), pt(200, 7), pt(300, 10)];
        assert_eq!(band_from_curve(&c, 0.9), Some((20, 64)));
        assert_eq!(band_from_curve(&c, 1.0), Some((40, 64)));
        assert_eq!(band_from_curve(&[pt(10, 1)], 0.9), None);
        assert_eq!(pt(1, 0).accuracy(), 0.0);
    }

    #[test]
    fn the_band_scales_with_what_the_detector_sees() {
        assert_eq!(default_band(1920, Some(640)), [32, 200]);
        assert_eq!(default_band(1280, Some(640)), [28, 200], "the OCR's own limit");
        assert_eq!(default_band(3840, None), [63, 200]);
        assert_eq!(default_band(1920, Some(1280)), [28, 200]);
        assert_eq!(default_band(100_000, Some(640)), [199, 200]);
    }

    #[test]
    fn each_plate_fits_or_says_why_not() {
        let b = [24, 130];
        assert_eq!(fit(18.0, Some(0.0), true, b, 15.0), "too small");
        assert_eq!(fit(140.0, None, true, b, 15.0), "too large");
        assert_eq!(fit(40.0, Some(-20.0), true, b, 15.0), "too oblique");
        assert_eq!(fit(40.0, Some(3.0), false, b, 15.0), "not read");
        assert_eq!(fit(40.0, None, true, b, 15.0), "ok");
    }

    #[test]
    fn verdicts_in_plain_words() {
        let small = [plate(18.0, Some(1.0), Some("7ABC123"))];
        assert_eq!(
            verdict(&ev(&small, &[])).text,
            "plates 18 px high, too small: zoom in or move closer (recommended 24–130 px)"
        );
        let large = [plate(150.0, None, Some("7ABC123"))];
        assert!(verdict(&ev(&large, &[])).text.contains("too large: zoom out"));
        let tilted = [plate(40.0, Some(22.0), Some("7ABC123"))];
        let v = verdict(&ev(&tilted, &[]));
        assert!(v.text.contains("too oblique") && v.text.contains("rotate_deg = 22"), "{}", v.text);
        let good = [plate(40.0, Some(2.0), Some("7ABC123")), plate(44.0, None, Some("8XYZ999"))];
        assert_eq!(
            verdict(&ev(&good, &[])),
            Aim { level: "ok", text: "plates 44 px high: within the recommended 24–130 px; aimed well".into() }
        );
        // No plate on the snapshot: the last ten minutes speak.
        assert!(
            verdict(&ev(&[], &[16.0, 17.0, 15.0])).text.starts_with("plates 16 px high (last 10 minutes), too small")
        );
        assert_eq!(
            verdict(&ev(&[], &[])).text,
            "no plates in the last 10 minutes: check the aim, the focus and the region of interest"
        );
        let mut young = ev(&[], &[]);
        young.watched_ms = 30_000;
        assert!(verdict(&young).text.starts_with("no plates yet (watching for 30 s)"));
        let unread = [plate(40.0, None, None)];
        assert!(verdict(&ev(&unread, &[])).text.contains("none reads"));
        let mut dark = ev(&good, &[]);
        dark.brightness = Some(20.0);
        assert!(verdict(&dark).text.starts_with("frames too dark"));
        dark.brightness = Some(240.0);
        assert!(verdict(&dark).text.starts_with("frames too bright"));
        dark.brightness = None;
        assert!(verdict(&dark).text.starts_with("no snapshot yet"));
    }
}
