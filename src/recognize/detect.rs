//! Plate detectors behind one trait: an ONNX network through OpenCV DNN (letterboxed input, YOLO-style
//! or anchor-free output, threshold, NMS) and an OpenCV cascade (LBP/Haar XML).

use super::geometry::{BoxF, Letterbox, nms};
use super::model::{self, ModelError, ShapeError};
use super::settings::{ColorOrder, DetectorKind, DetectorModel, DetectorOutput, DnnBackend};
use opencv::core::{self, Mat, Rect, Scalar, Size, Vector};
use opencv::prelude::*;
use opencv::{dnn, imgproc, objdetect};
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Detection {
    pub bbox: BoxF,
    pub score: f32,
}

pub trait Detector: Send {
    /// Plates in a BGR frame, in frame pixels, strongest first.
    fn detect(&mut self, frame: &Mat) -> Result<Vec<Detection>, ModelError>;
}

/// The detector the model description asks for.
pub fn load(spec: &DetectorModel, confidence: f32, backend: DnnBackend) -> Result<Box<dyn Detector>, ModelError> {
    let bytes = model::read_verified(&spec.path, &spec.sha256)?;
    Ok(match spec.kind {
        DetectorKind::Onnx => Box::new(OnnxDetector {
            net: model::load_onnx(&spec.path, &bytes, backend)?,
            spec: spec.clone(),
            confidence: spec.threshold.map_or(confidence, |t| t as f32),
        }),
        DetectorKind::Cascade => {
            let path = spec.path.to_string_lossy().into_owned();
            let load_err = |message: String| ModelError::Load { path: spec.path.clone(), message };
            let c = objdetect::CascadeClassifier::new(&path).map_err(|e| load_err(e.message.clone()))?;
            if c.empty().unwrap_or(true) {
                return Err(load_err("not a cascade classifier OpenCV can read".into()));
            }
            Box::new(CascadeDetector { cascade: c, spec: spec.clone() })
        }
    })
}

pub struct OnnxDetector {
    net: dnn::Net,
    spec: DetectorModel,
    confidence: f32,
}

// The network is only used from the thread that owns the detector.
unsafe impl Send for OnnxDetector {}

fn cv(path: &Path) -> impl Fn(opencv::Error) -> ModelError + '_ {
    move |e| ModelError::Run { path: path.to_path_buf(), message: e.message }
}

/// `frame` letterboxed into a `w` × `h` canvas of grey 114, and the mapping back.
pub fn letterbox(frame: &Mat, w: u32, h: u32) -> opencv::Result<(Mat, Letterbox)> {
    let lb = Letterbox::new(frame.cols() as u32, frame.rows() as u32, w, h);
    let mut resized = Mat::default();
    imgproc::resize(
        frame,
        &mut resized,
        Size::new(lb.inner_w as i32, lb.inner_h as i32),
        0.0,
        0.0,
        imgproc::INTER_LINEAR,
    )?;
    let (top, left) = (lb.pad_y as i32, lb.pad_x as i32);
    let bottom = h as i32 - lb.inner_h as i32 - top;
    let right = w as i32 - lb.inner_w as i32 - left;
    let mut canvas = Mat::default();
    core::copy_make_border(&resized, &mut canvas, top, bottom, left, right, core::BORDER_CONSTANT, Scalar::all(114.0))?;
    Ok((canvas, lb))
}

impl Detector for OnnxDetector {
    fn detect(&mut self, frame: &Mat) -> Result<Vec<Detection>, ModelError> {
        let path = self.spec.path.clone();
        let err = cv(&path);
        let (w, h) = (self.spec.input_width, self.spec.input_height);
        let (canvas, lb) = letterbox(frame, w, h).map_err(&err)?;
        let input = if self.spec.color == ColorOrder::Gray {
            let mut g = Mat::default();
            imgproc::cvt_color(&canvas, &mut g, imgproc::COLOR_BGR2GRAY, 0).map_err(&err)?;
            g
        } else {
            canvas
        };
        let blob = dnn::blob_from_image(
            &input,
            self.spec.scale,
            Size::new(w as i32, h as i32),
            Scalar::default(),
            self.spec.color == ColorOrder::Rgb,
            false,
            core::CV_32F,
        )
        .map_err(&err)?;
        let (data, shape) = model::forward(&mut self.net, &path, &blob)?;
        let raw = match self.spec.output {
            DetectorOutput::AnchorFree => decode_anchor_free(&data, &shape, self.confidence),
            DetectorOutput::Yolo => decode_yolo(&data, &shape, self.confidence),
        }
        .map_err(|source| ModelError::Shape { path: path.clone(), source })?;
        let (fw, fh) = (frame.cols() as f32, frame.rows() as f32);
        let mapped: Vec<Detection> = raw
            .into_iter()
            .filter_map(|d| lb.to_source(d.bbox).clip(fw, fh).map(|bbox| Detection { bbox, score: d.score }))
            .collect();
        let boxes: Vec<BoxF> = mapped.iter().map(|d| d.bbox).collect();
        let scores: Vec<f32> = mapped.iter().map(|d| d.score).collect();
        Ok(nms(&boxes, &scores, self.spec.nms_iou as f32).into_iter().map(|i| mapped[i]).collect())
    }
}

/// `[1, 4 + classes, N]` (or its transpose `[1, N, 4 + classes]`): centre, size, class scores.
pub fn decode_anchor_free(data: &[f32], shape: &[usize], threshold: f32) -> Result<Vec<Detection>, ShapeError> {
    let (rows, cols) = match shape {
        [1, a, b] | [a, b] => (*a, *b),
        _ => return Err(ShapeError::NotAnchorFree(shape.to_vec())),
    };
    // The feature axis is the short one (4 + a few classes); anchors number in the thousands.
    let (features, anchors, transposed) = if rows <= cols { (rows, cols, false) } else { (cols, rows, true) };
    if features < 5 || data.len() < features * anchors {
        return Err(ShapeError::NoClassScores(shape.to_vec()));
    }
    let at = |f: usize, a: usize| if transposed { data[a * features + f] } else { data[f * anchors + a] };
    let mut out = Vec::new();
    for a in 0..anchors {
        let score = (4..features).map(|f| at(f, a)).fold(f32::MIN, f32::max);
        if score >= threshold {
            out.push(Detection { bbox: BoxF::from_center(at(0, a), at(1, a), at(2, a), at(3, a)), score });
        }
    }
    Ok(out)
}

/// `[1, N, 5 + classes]`: centre, size, objectness, class scores (anchors decoded in the graph).
pub fn decode_yolo(data: &[f32], shape: &[usize], threshold: f32) -> Result<Vec<Detection>, ShapeError> {
    let (anchors, features) = match shape {
        [1, n, f] | [n, f] => (*n, *f),
        _ => return Err(ShapeError::NotYolo(shape.to_vec())),
    };
    if features < 5 || data.len() < features * anchors {
        return Err(ShapeError::TooSmallForYolo(shape.to_vec()));
    }
    let mut out = Vec::new();
    for row in data.chunks_exact(features).take(anchors) {
        let class = if features > 5 { row[5..].iter().copied().fold(f32::MIN, f32::max) } else { 1.0 };
        let score = row[4] * class;
        if score >= threshold {
            out.push(Detection { bbox: BoxF::from_center(row[0], row[1], row[2], row[3]), score });
        }
    }
    Ok(out)
}

pub struct CascadeDetector {
    cascade: objdetect::CascadeClassifier,
    spec: DetectorModel,
}

unsafe impl Send for CascadeDetector {}

impl Detector for CascadeDetector {
    fn detect(&mut self, frame: &Mat) -> Result<Vec<Detection>, ModelError> {
        let path = self.spec.path.clone();
        let err = cv(&path);
        let mut gray = Mat::default();
        if frame.channels() == 1 {
            gray = frame.try_clone().map_err(&err)?;
        } else {
            imgproc::cvt_color(frame, &mut gray, imgproc::COLOR_BGR2GRAY, 0).map_err(&err)?;
        }
        let mut eq = Mat::default();
        imgproc::equalize_hist(&gray, &mut eq).map_err(&err)?;
        let mut rects = Vector::<Rect>::new();
        self.cascade
            .detect_multi_scale(
                &eq,
                &mut rects,
                self.spec.cascade_scale_factor,
                self.spec.cascade_min_neighbors as i32,
                0,
                Size::new(0, 0),
                Size::new(0, 0),
            )
            .map_err(&err)?;
        Ok(rects
            .iter()
            .map(|r| Detection {
                bbox: BoxF { x: r.x as f32, y: r.y as f32, w: r.width as f32, h: r.height as f32 },
                score: 1.0,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_free_rows_and_transpose_decode_the_same() {
        // 3 anchors, features cx cy w h score.
        let mut feats = vec![[10.0, 20.0, 4.0, 2.0, 0.9], [50.0, 50.0, 8.0, 4.0, 0.1], [30.0, 30.0, 6.0, 3.0, 0.6]];
        feats.extend(std::iter::repeat_n([0.0, 0.0, 1.0, 1.0, 0.0], 5));
        let mut rows = Vec::new();
        for f in 0..5 {
            for a in &feats {
                rows.push(a[f]);
            }
        }
        let cols: Vec<f32> = feats.iter().flatten().copied().collect();
        let a = decode_anchor_free(&rows, &[1, 5, 8], 0.5).unwrap();
        let b = decode_anchor_free(&cols, &[1, 8, 5], 0.5).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].bbox, BoxF { x: 8.0, y: 19.0, w: 4.0, h: 2.0 });
        assert!((b[1].score - 0.6).abs() < 1e-6);
        let mut big = vec![0.0f32; 5 * 100];
        big[4 * 100 + 7] = 0.8;
        big[7] = 33.0;
        let d = decode_anchor_free(&big, &[1, 5, 100], 0.5).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].bbox.center().0, 33.0);
    }

    #[test]
    fn anchor_free_without_scores_is_an_error() {
        assert!(decode_anchor_free(&[0.0; 400], &[1, 4, 100], 0.5).is_err());
        assert!(decode_anchor_free(&[0.0; 400], &[4, 10, 10], 0.5).is_err());
    }

    #[test]
    fn yolo_multiplies_objectness_and_class() {
        let data = [10.0, 10.0, 4.0, 2.0, 0.9, 0.9, /* */ 20.0, 20.0, 4.0, 2.0, 0.9, 0.3];
        let d = decode_yolo(&data, &[1, 2, 6], 0.5).unwrap();
        assert_eq!(d.len(), 1);
        assert!((d[0].score - 0.81).abs() < 1e-6);
    }
}
