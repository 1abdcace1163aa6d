//! The recognizer: find plates in a frame and read them, with honest confidences.
//!
//! `detect` (ONNX network or cascade) → `prepare` (crop, deskew, contrast, resize) → `ocr` (slots or
//! CTC network) → `decode` → `format` (region patterns rank candidates and fix confusions). Pure logic
//! (`geometry`, `decode`, `format`) is tested without OpenCV. `smoke` is the start-up check on an embedded
//! image; the renderer that drew it, labelled sets and accuracy counting are in the polewatch-dev crate.

pub mod backend;
pub mod codec;
pub mod decode;
pub mod detect;
pub mod format;
pub mod geometry;
pub mod model;
pub mod ocr;
pub mod prepare;
pub mod settings;
pub mod smoke;

pub use detect::{Detection, Detector};
pub use format::{Candidate, Formats};
pub use geometry::BoxF;
pub use model::ModelError;
pub use ocr::OcrNet;

use opencv::core::Mat;
use opencv::prelude::*;
use settings::{DetectorModel, DnnBackend, OcrModel};
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum RecognizeError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("the image is empty")]
    EmptyImage,
    #[error("the image has {0} channels; 1, 3 or 4 are supported")]
    Channels(i32),
    #[error("no OCR model is configured ([recognizer.ocr])")]
    NoOcr,
    #[error("OpenCV: {0}")]
    Cv(#[from] opencv::Error),
    #[error("image: {0}")]
    Image(String),
    #[error(transparent)]
    Backend(#[from] backend::CudaMissing),
}

/// One plate found and read in a frame.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PlateRead {
    /// Plate box in frame pixels.
    pub bbox: BoxF,
    pub detection_score: f32,
    /// Best reading (the first candidate).
    pub text: String,
    pub char_confidences: Vec<f32>,
    pub confidence: f32,
    /// The plate pattern the text fits, when formats are configured.
    pub pattern: Option<String>,
    /// Every reading kept, best first (the first is `text`).
    pub candidates: Vec<Candidate>,
}

/// What a frame gave, and how long each stage took.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FrameResult {
    pub reads: Vec<PlateRead>,
    /// Boxes the detector found that passed the region, size and score filters.
    pub detections: usize,
    /// Of those, the boxes whose reading was not plate-like (too few or too many characters): not plates.
    pub rejected: Vec<BoxF>,
    pub detect_ms: f64,
    pub ocr_ms: f64,
}

/// The per-camera part: where plates may be, how big, and which region's formats apply.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub roi: Vec<[u32; 2]>,
    pub min_plate_width_px: u32,
    /// 0: no upper bound.
    pub max_plate_width_px: u32,
    pub region: String,
    /// The frame is rotated by this (degrees, counter-clockwise) about its centre before detection, for
    /// a camera mounted at a roll; boxes are in the rotated frame's pixels.
    pub rotate_deg: f64,
}

impl View {
    /// Whether a detection counts for this camera: centre inside the region of interest, width
    /// within the bounds.
    pub fn admits(&self, b: &BoxF) -> bool {
        let (cx, cy) = b.center();
        geometry::in_polygon(&self.roi, cx, cy)
            && b.w >= self.min_plate_width_px as f32
            && (self.max_plate_width_px == 0 || b.w <= self.max_plate_width_px as f32)
    }
}

/// How likely, against the best reading, a plate-like alternative must be to stand in for a best reading
/// that is not plate-like (the formats' rule: a fitting reading wins unless four times less likely).
const STAND_IN: f32 = 0.25;

pub struct Recognizer {
    detector: Option<Box<dyn Detector>>,
    /// The ONNX detector's file, for the start-up check (none for a cascade).
    onnx_detector: Option<std::path::PathBuf>,
    ocr: OcrNet,
    formats: Formats,
    top_n: usize,
    /// Readings outside this many characters are not plates.
    plate_chars: std::ops::RangeInclusive<usize>,
}

impl Recognizer {
    /// The recognizer the `[recognizer]` section describes; each model is checked (checksum, load, a
    /// read of the built-in plate image when `smoke_test` is on) before it is accepted.
    pub fn from_config(r: &settings::Recognizer) -> Result<Recognizer, RecognizeError> {
        if r.threads > 0 {
            opencv::core::set_num_threads(r.threads as i32)?;
        }
        let ocr = r.ocr.as_ref().ok_or(RecognizeError::NoOcr)?;
        let rec = Recognizer::new(
            r.detector.as_ref(),
            ocr,
            r.backend,
            r.detect_confidence as f32,
            &r.formats,
            r.top_n as usize,
        )?;
        let rec = if r.smoke_test { rec.checked()? } else { rec };
        // After the check: its 7-character plate is the models' test, not the site's plate lengths.
        Ok(rec.with_plate_chars(r.min_plate_chars as usize, r.max_plate_chars as usize))
    }

    pub fn new(
        detector: Option<&DetectorModel>,
        ocr: &OcrModel,
        backend: DnnBackend,
        detect_confidence: f32,
        formats: &[settings::PlateFormat],
        top_n: usize,
    ) -> Result<Recognizer, RecognizeError> {
        // `auto` becomes CUDA or the CPU here, once per recognizer, with one log line.
        let backend = backend::resolve(backend)?;
        let onnx_detector = detector.filter(|d| d.kind == settings::DetectorKind::Onnx).map(|d| d.path.clone());
        let detector = detector.map(|d| detect::load(d, detect_confidence, backend)).transpose()?;
        let ocr = OcrNet::load(ocr, backend)?;
        let d = settings::Recognizer::default();
        let plate_chars = d.min_plate_chars as usize..=d.max_plate_chars as usize;
        Ok(Recognizer {
            detector,
            onnx_detector,
            ocr,
            formats: Formats::new(formats),
            top_n: top_n.max(1),
            plate_chars,
        })
    }

    /// How many characters a reading must have to be taken for a plate (default: `[recognizer]`'s).
    pub fn with_plate_chars(mut self, min: usize, max: usize) -> Recognizer {
        self.plate_chars = min.max(1)..=max.max(min.max(1));
        self
    }

    /// Runs the start-up check: OpenCV 4.6 can load a graph and compute garbage, so each model must
    /// read (OCR) or find (detector) the plate of a built-in image the project rendered.
    pub fn checked(mut self) -> Result<Recognizer, RecognizeError> {
        smoke::check(&mut self)?;
        Ok(self)
    }

    pub fn onnx_detector_path(&self) -> Option<std::path::PathBuf> {
        self.onnx_detector.clone()
    }

    pub fn has_detector(&self) -> bool {
        self.detector.is_some()
    }

    pub fn ocr(&mut self) -> &mut OcrNet {
        &mut self.ocr
    }

    /// Plates found by the detector alone, after the view's filters.
    pub fn detect(&mut self, frame: &Mat, view: &View) -> Result<Vec<Detection>, RecognizeError> {
        let owned = prepared(frame, view.rotate_deg)?;
        let frame = owned.as_ref().unwrap_or(frame);
        match &mut self.detector {
            Some(d) => Ok(d.detect(frame)?.into_iter().filter(|d| view.admits(&d.bbox)).collect()),
            None => Ok(vec![whole(frame)]),
        }
    }

    /// Finds and reads every plate in a frame (BGR, gray or BGRA). Without a detector the whole image
    /// is taken as one plate.
    pub fn recognize(&mut self, frame: &Mat, view: &View) -> Result<FrameResult, RecognizeError> {
        let owned = prepared(frame, view.rotate_deg)?;
        let frame = owned.as_ref().unwrap_or(frame);
        let t0 = Instant::now();
        let dets = match &mut self.detector {
            Some(d) => d.detect(frame)?.into_iter().filter(|d| view.admits(&d.bbox)).collect(),
            None => vec![whole(frame)],
        };
        let detect_ms = t0.elapsed().as_secs_f64() * 1e3;
        let t1 = Instant::now();
        let (mut reads, mut rejected) = (Vec::new(), Vec::new());
        for d in &dets {
            match self.read_at(frame, d, &view.region, true)? {
                Some(r) => reads.push(r),
                None => rejected.push(d.bbox),
            }
        }
        Ok(FrameResult { reads, detections: dets.len(), rejected, detect_ms, ocr_ms: t1.elapsed().as_secs_f64() * 1e3 })
    }

    /// Reads the plate in a known box (OCR only, as on a dataset's labelled boxes); `None` when no
    /// reading is plate-like.
    pub fn read_box(&mut self, frame: &Mat, bbox: BoxF, region: &str) -> Result<Option<PlateRead>, RecognizeError> {
        let owned = prepared(frame, 0.0)?;
        self.read_at(owned.as_ref().unwrap_or(frame), &Detection { bbox, score: 1.0 }, region, false)
    }

    /// `second_look`: a detector's box, which the model's second look may draw in (a labelled box is
    /// already tight).
    fn read_at(
        &mut self,
        frame: &Mat,
        d: &Detection,
        region: &str,
        second_look: bool,
    ) -> Result<Option<PlateRead>, RecognizeError> {
        let mut candidates = self.candidates(frame, d.bbox, region)?;
        let spec = self.ocr.spec();
        let below = spec.second_look_below as f32;
        let weak = candidates.first().is_none_or(|best| best.confidence < below);
        if second_look && weak && below > 0.0 {
            let inset = d.bbox.with_margin(-(spec.second_look_inset_x as f32), -(spec.second_look_inset_y as f32));
            let second = self.candidates(frame, inset, region)?;
            if second.first().map(|c| c.confidence) > candidates.first().map(|c| c.confidence) {
                candidates = second;
            }
        }
        let Some(best) = candidates.first().cloned() else {
            return Ok(None);
        };
        Ok(Some(PlateRead {
            bbox: d.bbox,
            detection_score: d.score,
            text: best.text,
            char_confidences: best.char_confidences,
            confidence: best.confidence,
            pattern: best.pattern,
            candidates: candidates.into_iter().take(self.top_n).collect(),
        }))
    }

    /// The plate-like readings of the box, best first, after the region's formats. When the best reading
    /// is not plate-like, an alternative stands in for it only if it is at least [`STAND_IN`] as likely:
    /// the beam's far-fetched alternatives (one more character at 1e-5) do not make a box a plate.
    fn candidates(&mut self, frame: &Mat, bbox: BoxF, region: &str) -> Result<Vec<Candidate>, RecognizeError> {
        let readings = self.ocr.read_box(frame, bbox, self.top_n)?;
        let mut candidates = self.formats.apply(region, &readings);
        let plate_like = |c: &Candidate| self.plate_chars.contains(&c.text.chars().count());
        let best = candidates.first().map(|c| (plate_like(c), c.confidence));
        candidates.retain(plate_like);
        if let Some((false, best)) = best {
            candidates.retain(|c| c.confidence >= STAND_IN * best);
        }
        Ok(candidates)
    }
}

/// The frame as 8-bit BGR rotated by `rotate_deg`, when either takes a new image; `None` when the frame
/// is already that (frames are megabytes: no copy for nothing).
fn prepared(frame: &Mat, rotate_deg: f64) -> Result<Option<Mat>, RecognizeError> {
    let converted = to_bgr(frame)?;
    if rotate_deg.abs() < 0.01 {
        return Ok(converted);
    }
    Ok(Some(rotated(converted.as_ref().unwrap_or(frame), rotate_deg)?))
}

/// The frame rotated about its centre (same size, counter-clockwise degrees).
pub fn rotated(frame: &Mat, deg: f64) -> Result<Mat, RecognizeError> {
    let c = opencv::core::Point2f::new(frame.cols() as f32 / 2.0, frame.rows() as f32 / 2.0);
    let m = opencv::imgproc::get_rotation_matrix_2d(c, deg, 1.0)?;
    let mut out = Mat::default();
    opencv::imgproc::warp_affine(
        frame,
        &mut out,
        &m,
        frame.size()?,
        opencv::imgproc::INTER_LINEAR,
        opencv::core::BORDER_CONSTANT,
        opencv::core::Scalar::all(0.0),
    )?;
    Ok(out)
}

fn whole(frame: &Mat) -> Detection {
    Detection { bbox: BoxF { x: 0.0, y: 0.0, w: frame.cols() as f32, h: frame.rows() as f32 }, score: 1.0 }
}

/// The frame converted to 8-bit BGR, or `None` when it already is; an empty image is an error, not an
/// empty result.
fn to_bgr(frame: &Mat) -> Result<Option<Mat>, RecognizeError> {
    if frame.empty() || frame.cols() < 2 || frame.rows() < 2 {
        return Err(RecognizeError::EmptyImage);
    }
    let code = match frame.channels() {
        3 => return Ok(None),
        1 => opencv::imgproc::COLOR_GRAY2BGR,
        4 => opencv::imgproc::COLOR_BGRA2BGR,
        n => return Err(RecognizeError::Channels(n)),
    };
    let mut out = Mat::default();
    opencv::imgproc::cvt_color(frame, &mut out, code, 0)?;
    Ok(Some(out))
}

/// Decodes a JPEG or PNG into BGR.
pub fn decode_image(bytes: &[u8]) -> Result<Mat, RecognizeError> {
    codec::decode(bytes)
}

/// JPEG of an image (crops for the store).
pub fn encode_jpeg(img: &Mat, quality: i32) -> Result<Vec<u8>, RecognizeError> {
    codec::encode_jpeg(img, quality)
}
