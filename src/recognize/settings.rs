//! The recognizer's settings: the `[recognizer]` table and its models, deserialised as they are inside the
//! configuration schema (`config` re-exports them). Every struct denies unknown keys.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A plate detector: an ONNX network run by OpenCV DNN, or an OpenCV cascade (LBP/Haar XML).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorModel {
    pub path: PathBuf,
    /// Hex sha256 of the file; a mismatch is a start-up error.
    pub sha256: String,
    #[serde(default)]
    pub kind: DetectorKind,
    /// Network input; the frame is letterboxed (aspect kept, centred, grey 114) into it.
    #[serde(default = "default_det_input")]
    pub input_width: u32,
    #[serde(default = "default_det_input")]
    pub input_height: u32,
    #[serde(default)]
    pub output: DetectorOutput,
    /// Pixel values 0..255 are multiplied by this before the network (1/255 for inputs in 0..1).
    #[serde(default = "default_det_scale")]
    pub scale: f64,
    /// Channel order the network wants (OpenCV frames are BGR).
    #[serde(default)]
    pub color: ColorOrder,
    /// Non-maximum suppression: boxes overlapping a stronger one by more than this IoU are dropped.
    #[serde(default = "default_nms_iou")]
    pub nms_iou: f64,
    /// The score threshold this model was calibrated for; when set it overrides
    /// `recognizer.detect_confidence`.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// Cascade only: image pyramid step and neighbours needed for a detection.
    #[serde(default = "default_cascade_scale")]
    pub cascade_scale_factor: f64,
    #[serde(default = "default_cascade_neighbors")]
    pub cascade_min_neighbors: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    #[default]
    Onnx,
    Cascade,
}

/// How the detector's output tensor is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DetectorOutput {
    /// `[1, 4 + classes, N]`: cx, cy, w, h, class scores (YOLOv8 and later).
    #[default]
    AnchorFree,
    /// `[1, N, 5 + classes]`: cx, cy, w, h, objectness, class scores, anchors already decoded (YOLOv5).
    Yolo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ColorOrder {
    #[default]
    Rgb,
    Bgr,
    Gray,
}

/// A plate OCR network run by OpenCV DNN.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OcrModel {
    pub path: PathBuf,
    /// Hex sha256 of the file; a mismatch is a start-up error.
    pub sha256: String,
    pub kind: OcrKind,
    pub input_width: u32,
    pub input_height: u32,
    #[serde(default)]
    pub color: ColorOrder,
    #[serde(default)]
    pub layout: TensorLayout,
    /// Pixel values 0..255 are multiplied by this before the network.
    #[serde(default = "one")]
    pub scale: f64,
    #[serde(default)]
    pub resize: ResizeMode,
    /// Margin added around the detected box before the crop, as a fraction of its width / height.
    #[serde(default = "default_margin_x")]
    pub margin_x: f64,
    #[serde(default = "default_margin_y")]
    pub margin_y: f64,
    /// Characters of the output classes in order. Slots: includes the pad character. CTC: without the blank.
    pub alphabet: String,
    /// CTC: index of the blank class (the alphabet fills the other indices in order).
    #[serde(default)]
    pub blank: u32,
    /// Slots: the character that marks an empty slot.
    #[serde(default = "default_pad_char")]
    pub pad_char: String,
    /// CTC: beam width; 1 decodes greedily.
    #[serde(default = "default_beam")]
    pub beam_width: u32,
    /// Stretch the crop's contrast (CLAHE on the luma) before the network: helps night and IR frames.
    #[serde(default)]
    pub normalize_contrast: bool,
    /// Straighten the crop by the angle of the plate's edges before the network.
    #[serde(default)]
    pub deskew: bool,
    /// A plate read with less confidence than this is read once more on the detector's box drawn in by
    /// `second_look_inset_x` / `_y` (a share of its width / height, each side), and the more confident
    /// of the two readings is kept. Detector boxes are looser than the crops an OCR learns from (the
    /// whole plate with an EU band or a frame, at dusk), and a tighter crop often reads what the loose one
    /// could not. 0 (the default): one look. Costs one more OCR pass for each such plate only.
    #[serde(default)]
    pub second_look_below: f64,
    #[serde(default = "default_second_look_inset_x")]
    pub second_look_inset_x: f64,
    #[serde(default = "default_second_look_inset_y")]
    pub second_look_inset_y: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OcrKind {
    /// `[1, slots, classes]`: one softmax per character position.
    Slots,
    /// `[1, steps, classes]`: CTC over time steps.
    Ctc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TensorLayout {
    #[default]
    Nchw,
    Nhwc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Aspect kept, centred on grey 114.
    #[default]
    Letterbox,
    Stretch,
}

/// A detector and an OCR described on their own, as in `polewatch-dev bench accuracy --against FILE`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelSet {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub detector: Option<DetectorModel>,
    #[serde(default)]
    pub ocr: Option<OcrModel>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DnnBackend {
    /// OpenCV DNN's CUDA backend when this OpenCV build has it and sees a device, else the CPU
    /// (`recognize::backend`).
    #[default]
    Auto,
    Cpu,
    Cuda,
    Openvino,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlateFormat {
    pub region: String,
    /// `@` a letter, `#` a digit, `*` either; e.g. `@@@####`.
    pub patterns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Recognizer {
    #[serde(default)]
    pub detector: Option<DetectorModel>,
    #[serde(default)]
    pub ocr: Option<OcrModel>,
    /// A model set file (`[detector]`, `[ocr]`, as `models/polewatch.toml`) instead of the two tables here.
    #[serde(default)]
    pub model_set: Option<PathBuf>,
    /// Run each loaded model once at start on a built-in plate image and refuse it when it misreads.
    #[serde(default = "yes")]
    pub smoke_test: bool,
    /// OpenCV worker threads; 0 lets OpenCV decide.
    #[serde(default)]
    pub threads: u32,
    #[serde(default)]
    pub backend: DnnBackend,
    #[serde(default = "default_detect_confidence")]
    pub detect_confidence: f64,
    #[serde(default = "default_min_read_confidence")]
    pub min_read_confidence: f64,
    #[serde(default = "default_top_n")]
    pub top_n: u32,
    /// A reading with fewer or more characters than these is not a plate (a sticker, badge or sign the
    /// detector took for one) and is dropped; OpenALPR's defaults, 4 and 8, widened to 10 for long EU plates.
    #[serde(default = "default_min_plate_chars")]
    pub min_plate_chars: u32,
    #[serde(default = "default_max_plate_chars")]
    pub max_plate_chars: u32,
    #[serde(default)]
    pub formats: Vec<PlateFormat>,
}

impl Default for Recognizer {
    fn default() -> Self {
        Recognizer {
            detector: None,
            ocr: None,
            model_set: None,
            smoke_test: true,
            threads: 0,
            backend: DnnBackend::Auto,
            detect_confidence: default_detect_confidence(),
            min_read_confidence: default_min_read_confidence(),
            top_n: default_top_n(),
            min_plate_chars: default_min_plate_chars(),
            max_plate_chars: default_max_plate_chars(),
            formats: Vec::new(),
        }
    }
}

fn default_beam() -> u32 {
    1
}
fn default_cascade_neighbors() -> u32 {
    3
}
fn default_cascade_scale() -> f64 {
    1.1
}
fn default_det_input() -> u32 {
    640
}
fn default_det_scale() -> f64 {
    1.0 / 255.0
}
fn default_detect_confidence() -> f64 {
    0.35
}
fn default_margin_x() -> f64 {
    0.05
}
fn default_margin_y() -> f64 {
    0.10
}
fn default_second_look_inset_x() -> f64 {
    0.08
}
fn default_second_look_inset_y() -> f64 {
    0.06
}
fn default_max_plate_chars() -> u32 {
    10
}
fn default_min_plate_chars() -> u32 {
    4
}
fn default_min_read_confidence() -> f64 {
    0.2
}
fn default_nms_iou() -> f64 {
    0.45
}
fn default_pad_char() -> String {
    "_".into()
}
fn default_top_n() -> u32 {
    5
}
fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
