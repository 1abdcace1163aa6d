//! The Cameras page's snapshot picture (issue 18 §1): the analysed frame as the recognizer saw it (rotated
//! by the camera's `rotate_deg`), scaled to at most [`MAX_WIDTH`] pixels wide, with every box the detector
//! kept drawn on it: its height in pixels, and for a plate that read, the OCR text. Green: within the
//! recommended band; orange: too small, too large or too oblique; grey: did not read as a plate. Also the
//! facts the verdict needs: each plate's height and tilt, and the frame's mean brightness.

use super::aim::{self, SeenPlate};
use crate::pipeline::snapshot::Shot;
use opencv::core::{self, Mat, Point, Rect, Scalar, Size};
use opencv::imgproc;
use opencv::prelude::*;

/// Pictures wider than this are scaled down for the page (coordinates stay in frame pixels).
pub const MAX_WIDTH: i32 = 1280;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("frame: {0}")]
    Frame(#[from] crate::pipeline::analyse::FrameError),
    #[error("OpenCV: {0}")]
    Cv(#[from] opencv::Error),
    #[error(transparent)]
    Recognize(#[from] crate::recognize::RecognizeError),
}

#[derive(Debug, Clone)]
pub struct Picture {
    pub jpeg: Vec<u8>,
    /// The analysed frame's size (what ROI points and boxes are measured in).
    pub width: u32,
    pub height: u32,
    pub plates: Vec<SeenPlate>,
    pub brightness: f64,
    pub captured_at_ms: i64,
}

fn color(fit: &str) -> Scalar {
    match fit {
        "ok" => Scalar::new(60.0, 200.0, 40.0, 0.0),
        "not read" => Scalar::new(170.0, 170.0, 170.0, 0.0),
        _ => Scalar::new(0.0, 150.0, 255.0, 0.0),
    }
}

/// The picture of a shot, judged against `band` and `max_tilt_deg`.
pub fn picture(shot: &Shot, band: [u32; 2], max_tilt_deg: f32) -> Result<Picture, SnapshotError> {
    let img = crate::pipeline::analyse::frame_to_bgr(&shot.frame)?;
    let img = if shot.rotate_deg.abs() >= 0.01 { crate::recognize::rotated(&img, shot.rotate_deg)? } else { img };
    let mut gray = Mat::default();
    imgproc::cvt_color(&img, &mut gray, imgproc::COLOR_BGR2GRAY, 0)?;
    let brightness = core::mean(&gray, &core::no_array())?[0];
    let plates: Vec<SeenPlate> = shot
        .boxes
        .iter()
        .map(|b| {
            let tilt = crate::recognize::prepare::crop(&img, b.bbox, 0.05, 0.1)
                .ok()
                .flatten()
                .and_then(|c| crate::recognize::prepare::skew_degrees(&c).ok().flatten());
            SeenPlate {
                bbox: [b.bbox.x, b.bbox.y, b.bbox.w, b.bbox.h],
                height_px: b.bbox.h,
                tilt_deg: tilt.map(|t| (t * 10.0).round() / 10.0),
                text: b.text.clone(),
                confidence: b.confidence,
                fit: aim::fit(b.bbox.h, tilt, b.text.is_some(), band, max_tilt_deg),
            }
        })
        .collect();
    let scale = (MAX_WIDTH as f64 / img.cols() as f64).min(1.0);
    let mut out = if scale < 1.0 {
        let mut small = Mat::default();
        let size = Size::new((img.cols() as f64 * scale).round() as i32, (img.rows() as f64 * scale).round() as i32);
        imgproc::resize(&img, &mut small, size, 0.0, 0.0, imgproc::INTER_AREA)?;
        small
    } else {
        img.clone()
    };
    let thick = ((out.cols() as f64 / 640.0).round() as i32).max(1);
    for p in &plates {
        let s = |v: f32| (v as f64 * scale).round() as i32;
        let r = Rect::new(s(p.bbox[0]), s(p.bbox[1]), s(p.bbox[2]).max(1), s(p.bbox[3]).max(1));
        imgproc::rectangle(&mut out, r, color(p.fit), thick + 1, imgproc::LINE_8, 0)?;
        let label = match &p.text {
            Some(t) => format!("{t}  {:.0} px", p.height_px),
            None => format!("{:.0} px", p.height_px),
        };
        let font_scale = 0.5 * thick as f64;
        let mut base = 0;
        let ts = imgproc::get_text_size(&label, imgproc::FONT_HERSHEY_SIMPLEX, font_scale, thick, &mut base)?;
        let y = if r.y - ts.height - 8 >= 0 { r.y - 4 } else { r.y + r.height + ts.height + 4 };
        let bg = Rect::new(r.x - 1, y - ts.height - 4, ts.width + 6, ts.height + base + 6);
        imgproc::rectangle(&mut out, bg, Scalar::all(20.0), -1, imgproc::LINE_8, 0)?;
        imgproc::put_text(
            &mut out,
            &label,
            Point::new(r.x + 2, y),
            imgproc::FONT_HERSHEY_SIMPLEX,
            font_scale,
            color(p.fit),
            thick,
            imgproc::LINE_AA,
            false,
        )?;
    }
    let jpeg = crate::recognize::encode_jpeg(&out, 80)?;
    Ok(Picture {
        jpeg,
        width: img.cols() as u32,
        height: img.rows() as u32,
        plates,
        brightness,
        captured_at_ms: shot.frame.captured_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Frame;
    use crate::pipeline::snapshot::ShotBox;
    use crate::recognize::BoxF;

    /// The start-up check's rendered scene with its plate: the picture measures its height and finds it level, the page's
    /// JPEG is scaled to the page, and a box that did not read is marked so.
    #[test]
    fn the_picture_measures_each_box_and_draws_it() {
        let scene = crate::recognize::decode_image(crate::recognize::smoke::SCENE_JPG).unwrap();
        let (w, h) = (scene.cols() as u32, scene.rows() as u32);
        let data = scene.data_bytes().unwrap().to_vec();
        let frame = Frame {
            camera: "c".into(),
            seq: 1,
            captured_at_ms: 5,
            width: w,
            height: h,
            format: crate::ingest::PixelFormat::Bgr,
            data,
        };
        let plate = crate::recognize::smoke::plate_box();
        let other = BoxF { x: 10.0, y: 10.0, w: 30.0, h: 12.0 };
        let shot = Shot {
            frame,
            rotate_deg: 0.0,
            boxes: vec![
                ShotBox { bbox: plate, text: Some("8PWT417".into()), confidence: 0.9 },
                ShotBox { bbox: other, text: None, confidence: 0.0 },
            ],
        };
        let p = picture(&shot, [24, 130], 15.0).unwrap();
        assert_eq!((p.width, p.height, p.captured_at_ms), (w, h, 5));
        assert_eq!(p.plates[0].height_px, plate.h);
        assert_eq!(p.plates[0].fit, "ok");
        assert!(p.plates[0].tilt_deg.is_none_or(|t| t.abs() < 3.0), "{:?}", p.plates[0].tilt_deg);
        assert_eq!(p.plates[1].fit, "too small");
        assert!(p.brightness > 40.0 && p.brightness < 225.0, "{}", p.brightness);
        let back = crate::recognize::decode_image(&p.jpeg).unwrap();
        assert_eq!((back.cols() as u32, back.rows() as u32), (w, h), "640 wide: not scaled");
    }
}
