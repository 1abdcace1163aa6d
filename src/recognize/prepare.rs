//! From a detected box to the OCR network's input: crop with margin, optional deskew and contrast
//! normalisation, then stretch or letterbox to the input size in the channel order and layout the
//! network wants.

use super::geometry::BoxF;
use super::settings::{ColorOrder, OcrModel, ResizeMode, TensorLayout};
use opencv::core::{self, Mat, Point2f, Rect, Scalar, Size, Vector};
use opencv::prelude::*;
use opencv::{dnn, imgproc};

/// The box grown by the margins and clipped to the frame, as its own image. Rounding outwards (left and
/// top edges floored, right and bottom ceiled) is the training pipeline's contract too.
pub fn crop(frame: &Mat, bbox: BoxF, margin_x: f32, margin_y: f32) -> opencv::Result<Option<Mat>> {
    let Some(r) = crop_rect(bbox, margin_x, margin_y, frame.cols(), frame.rows()) else {
        return Ok(None);
    };
    Ok(Some(Mat::roi(frame, r)?.try_clone()?))
}

/// The pixel rectangle [`crop`] takes; `None` when less than 2 × 2 pixels of it are in the frame.
pub fn crop_rect(bbox: BoxF, margin_x: f32, margin_y: f32, cols: i32, rows: i32) -> Option<Rect> {
    let m = bbox.with_margin(margin_x, margin_y);
    let x0 = (m.x.floor() as i32).max(0);
    let y0 = (m.y.floor() as i32).max(0);
    let x1 = ((m.x + m.w).ceil() as i32).min(cols);
    let y1 = ((m.y + m.h).ceil() as i32).min(rows);
    (x1 - x0 >= 2 && y1 - y0 >= 2).then(|| Rect::new(x0, y0, x1 - x0, y1 - y0))
}

fn gray(img: &Mat) -> opencv::Result<Mat> {
    if img.channels() == 1 {
        return img.try_clone();
    }
    let mut g = Mat::default();
    imgproc::cvt_color(img, &mut g, imgproc::COLOR_BGR2GRAY, 0)?;
    Ok(g)
}

/// Angle (degrees) of the plate's long edges: the median of near-horizontal line segments found in
/// the crop's edges. `None` when there are too few to trust.
pub fn skew_degrees(crop: &Mat) -> opencv::Result<Option<f32>> {
    let g = gray(crop)?;
    let mut edges = Mat::default();
    imgproc::canny(&g, &mut edges, 60.0, 180.0, 3, false)?;
    let mut lines = Vector::<core::Vec4i>::new();
    let min_len = (crop.cols() as f64 * 0.4).max(8.0);
    imgproc::hough_lines_p(&edges, &mut lines, 1.0, std::f64::consts::PI / 180.0, 20, min_len, 4.0)?;
    let mut angles: Vec<f32> = lines
        .iter()
        .map(|l| ((l[3] - l[1]) as f32).atan2((l[2] - l[0]) as f32).to_degrees())
        .map(|a| {
            if a > 90.0 {
                a - 180.0
            } else if a < -90.0 {
                a + 180.0
            } else {
                a
            }
        })
        .filter(|a| a.abs() <= 25.0)
        .collect();
    if angles.len() < 2 {
        return Ok(None);
    }
    angles.sort_by(f32::total_cmp);
    Ok(Some(angles[angles.len() / 2]))
}

/// The crop rotated so that its long edges are level; unchanged when the skew is small or unknown.
pub fn deskew(crop: &Mat) -> opencv::Result<Mat> {
    match skew_degrees(crop)? {
        Some(a) if a.abs() >= 2.0 => {
            let c = Point2f::new(crop.cols() as f32 / 2.0, crop.rows() as f32 / 2.0);
            let m = imgproc::get_rotation_matrix_2d(c, a as f64, 1.0)?;
            let mut out = Mat::default();
            imgproc::warp_affine(
                crop,
                &mut out,
                &m,
                crop.size()?,
                imgproc::INTER_LINEAR,
                core::BORDER_REPLICATE,
                Scalar::default(),
            )?;
            Ok(out)
        }
        _ => crop.try_clone(),
    }
}

/// Contrast stretch of the luma: full range first (a dark, flat night or IR crop), then local (CLAHE)
/// so that glare on one side does not flatten the other.
fn stretch(luma: &Mat) -> opencv::Result<Mat> {
    let mut full = Mat::default();
    core::normalize(luma, &mut full, 0.0, 255.0, core::NORM_MINMAX, -1, &core::no_array())?;
    let mut clahe = imgproc::create_clahe(2.0, Size::new(4, 4))?;
    let mut out = Mat::default();
    clahe.apply(&full, &mut out)?;
    Ok(out)
}

pub fn normalize_contrast(crop: &Mat) -> opencv::Result<Mat> {
    if crop.channels() == 1 {
        return stretch(crop);
    }
    let mut ycc = Mat::default();
    imgproc::cvt_color(crop, &mut ycc, imgproc::COLOR_BGR2YCrCb, 0)?;
    let mut planes = Vector::<Mat>::new();
    core::split(&ycc, &mut planes)?;
    planes.set(0, stretch(&planes.get(0)?)?)?;
    let mut merged = Mat::default();
    core::merge(&planes, &mut merged)?;
    let mut out = Mat::default();
    imgproc::cvt_color(&merged, &mut out, imgproc::COLOR_YCrCb2BGR, 0)?;
    Ok(out)
}

/// The crop as the network's input tensor.
pub fn to_input(crop: &Mat, spec: &OcrModel) -> opencv::Result<Mat> {
    let (w, h) = (spec.input_width as i32, spec.input_height as i32);
    let mut img = if spec.deskew { deskew(crop)? } else { crop.try_clone()? };
    if spec.normalize_contrast {
        img = normalize_contrast(&img)?;
    }
    let colored = match spec.color {
        ColorOrder::Gray => gray(&img)?,
        ColorOrder::Rgb if img.channels() == 3 => {
            let mut c = Mat::default();
            imgproc::cvt_color(&img, &mut c, imgproc::COLOR_BGR2RGB, 0)?;
            c
        }
        _ if img.channels() == 1 => {
            let mut c = Mat::default();
            imgproc::cvt_color(&img, &mut c, imgproc::COLOR_GRAY2BGR, 0)?;
            c
        }
        _ => img,
    };
    let sized = match spec.resize {
        ResizeMode::Stretch => {
            let mut s = Mat::default();
            imgproc::resize(&colored, &mut s, Size::new(w, h), 0.0, 0.0, imgproc::INTER_LINEAR)?;
            s
        }
        ResizeMode::Letterbox => super::detect::letterbox(&colored, w as u32, h as u32)?.0,
    };
    match spec.layout {
        TensorLayout::Nchw => {
            dnn::blob_from_image(&sized, spec.scale, Size::new(w, h), Scalar::default(), false, false, core::CV_32F)
        }
        TensorLayout::Nhwc => {
            let mut f = Mat::default();
            sized.convert_to(&mut f, core::CV_32F, spec.scale, 0.0)?;
            let c = f.channels();
            f.reshape_nd(1, &[1, h, w, c])?.try_clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recognize::settings::{OcrKind, OcrModel};

    fn spec(color: ColorOrder, layout: TensorLayout, resize: ResizeMode) -> OcrModel {
        OcrModel {
            path: "x".into(),
            sha256: String::new(),
            kind: OcrKind::Ctc,
            input_width: 8,
            input_height: 4,
            color,
            layout,
            scale: 1.0,
            resize,
            margin_x: 0.0,
            margin_y: 0.0,
            alphabet: "AB".into(),
            blank: 0,
            pad_char: "_".into(),
            beam_width: 1,
            normalize_contrast: false,
            deskew: false,
            second_look_below: 0.0,
            second_look_inset_x: 0.0,
            second_look_inset_y: 0.0,
        }
    }

    fn dims(m: &Mat) -> Vec<i32> {
        m.mat_size().iter().copied().collect()
    }

    #[test]
    fn input_tensors_in_each_layout_and_channel_order() {
        // A 16x4 BGR image, blue on the left half, red on the right.
        let mut img = Mat::new_rows_cols_with_default(4, 16, core::CV_8UC3, Scalar::new(255.0, 0.0, 0.0, 0.0)).unwrap();
        imgproc::rectangle(&mut img, Rect::new(8, 0, 8, 4), Scalar::new(0.0, 0.0, 255.0, 0.0), -1, imgproc::LINE_8, 0)
            .unwrap();
        let nchw = to_input(&img, &spec(ColorOrder::Rgb, TensorLayout::Nchw, ResizeMode::Stretch)).unwrap();
        assert_eq!(dims(&nchw), vec![1, 3, 4, 8]);
        let d = nchw.data_typed::<f32>().unwrap();
        // Channel 0 is R: 0 on the left, 255 on the right.
        assert_eq!((d[0], d[7]), (0.0, 255.0));
        let nhwc = to_input(&img, &spec(ColorOrder::Rgb, TensorLayout::Nhwc, ResizeMode::Stretch)).unwrap();
        assert_eq!(dims(&nhwc), vec![1, 4, 8, 3]);
        let d = nhwc.data_typed::<f32>().unwrap();
        assert_eq!(&d[0..3], &[0.0, 0.0, 255.0]); // first pixel RGB = blue
        let gray = to_input(&img, &spec(ColorOrder::Gray, TensorLayout::Nchw, ResizeMode::Letterbox)).unwrap();
        assert_eq!(dims(&gray), vec![1, 1, 4, 8]);
        // 16x4 letterboxed into 8x4 is 8x2 with grey bars above and below.
        let g = gray.data_typed::<f32>().unwrap();
        assert_eq!((g[0], g[31]), (114.0, 114.0));
        assert!(g[8..24].iter().all(|&v| v != 114.0));
        let tall = Mat::new_rows_cols_with_default(8, 4, core::CV_8UC3, Scalar::all(0.0)).unwrap();
        let boxed = to_input(&tall, &spec(ColorOrder::Gray, TensorLayout::Nchw, ResizeMode::Letterbox)).unwrap();
        let v = boxed.data_typed::<f32>().unwrap();
        assert_eq!((v[0], v[3]), (114.0, 0.0), "grey bars left and right of a tall crop");
    }

    #[test]
    fn crop_rect_rounds_outwards_and_clamps() {
        let r = crop_rect(BoxF { x: 10.5, y: 20.0, w: 99.0, h: 49.0 }, 0.05, 0.10, 1000, 1000).unwrap();
        // x0 = floor(10.5 - 4.95) = 5, x1 = ceil(10.5 + 99 + 4.95) = 115; y0 = floor(15.1) = 15, y1 = ceil(73.9) = 74.
        assert_eq!(r, Rect::new(5, 15, 110, 59));
        assert_eq!(
            crop_rect(BoxF { x: -20.0, y: 0.0, w: 50.0, h: 10.0 }, 0.0, 0.0, 100, 100),
            Some(Rect::new(0, 0, 30, 10))
        );
        assert_eq!(crop_rect(BoxF { x: 99.5, y: 0.0, w: 5.0, h: 10.0 }, 0.0, 0.0, 100, 100), None);
    }
}
