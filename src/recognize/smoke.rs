//! The start-up check: a scene the project rendered (`polewatch-dev debug render-smoke` made it with
//! polewatch-dev's `recognize::render::smoke_scene`), embedded in the binary so that the check needs no font or file on
//! the box. OpenCV 4.6 can load a graph and compute garbage; a model that cannot read this plate is
//! refused.

use super::model::ModelError;
use super::{RecognizeError, Recognizer, View, decode_image, geometry::BoxF};

pub const SCENE_JPG: &[u8] = include_bytes!("smoke/scene.jpg");
/// The plate text of the embedded scene.
pub const TEXT: &str = "8PWT417";
/// The plate's box in the embedded scene (x, y, w, h), as `polewatch-dev debug render-smoke` prints it.
pub const BOX: [u32; 4] = [255, 212, 150, 75];

/// The plate's box in the embedded scene.
pub fn plate_box() -> BoxF {
    let [x, y, w, h] = BOX;
    BoxF { x: x as f32, y: y as f32, w: w as f32, h: h as f32 }
}

pub fn check(r: &mut Recognizer) -> Result<(), RecognizeError> {
    let scene = decode_image(SCENE_JPG)?;
    let truth = plate_box();
    let ocr_path = r.ocr.spec().path.clone();
    let read = r.read_box(&scene, truth, "")?;
    let got =
        read.as_ref().map(|p| p.candidates.iter().map(|c| c.text.as_str()).collect::<Vec<_>>()).unwrap_or_default();
    // A model computing garbage (wrong layout, size, alphabet, axis) reads nothing like the plate; a
    // working one reads it, or misses one character and still has it among its candidates. Plate text here
    // is synthetic, so naming it is harmless.
    let close = got.first().is_some_and(|t| levenshtein(t.as_bytes(), TEXT.as_bytes()) <= 1);
    if !close || !got.contains(&TEXT) {
        return Err(ModelError::Smoke {
            path: ocr_path,
            message: format!(
                "it read the built-in test plate {TEXT} as {got:?}: wrong input layout, size or alphabet?"
            ),
        }
        .into());
    }
    // A cascade either loads or not; the graph-computes-garbage failure is the DNN module's. Cascades are
    // also trained for one plate shape, which the built-in US-style plate need not have.
    if let Some(det_path) = r.onnx_detector_path() {
        let dets = r.detect(&scene, &View::default())?;
        if !dets.iter().any(|d| d.bbox.iou(&truth) >= 0.5) {
            return Err(ModelError::Smoke {
                path: det_path,
                message: format!(
                    "it did not find the plate of the built-in test scene ({} boxes, none on the plate)",
                    dets.len()
                ),
            }
            .into());
        }
    }
    Ok(())
}

/// Edit distance (insertions, deletions, substitutions, each 1) between two byte strings; also the
/// character-accuracy count of polewatch-dev's accuracy figures.
pub fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
