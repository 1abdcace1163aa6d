use super::plates::{FORMATS, packed_bgr, pixel_box};
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use opencv::prelude::*;
use polewatch::config::DnnBackend;
use polewatch::recognize::{Recognizer, View};
use std::sync::{LazyLock, Mutex, MutexGuard};

/// Where the Debian package installs the shipped model set.
pub const DEFAULT_MODEL_SET: &str = "/usr/share/polewatch/models/polewatch.toml";
/// The `GstVideoRegionOfInterestMeta` type of each plate.
pub const ROI_TYPE: &str = "license-plate";
/// The structure added to each region's parameters, and the name of the element message per plate.
pub const PARAM_NAME: &str = "polewatch/plate";
pub const MESSAGE_NAME: &str = "polewatch-plate";

const DEFAULT_DETECT_CONFIDENCE: f64 = 0.35;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("platerecognize", gst::DebugColorFlags::empty(), Some("polewatch plate recognizer"))
});

#[derive(Debug, Clone)]
struct Settings {
    model_set: String,
    detect_confidence: f64,
    min_confidence: f64,
    smoke_test: bool,
    top_n: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model_set: DEFAULT_MODEL_SET.into(),
            detect_confidence: DEFAULT_DETECT_CONFIDENCE,
            min_confidence: 0.0,
            smoke_test: true,
            top_n: 5,
        }
    }
}

#[derive(Default)]
struct State {
    recognizer: Option<Recognizer>,
    info: Option<gst_video::VideoInfo>,
}

#[derive(Default)]
pub struct PlateRecognize {
    settings: Mutex<Settings>,
    state: Mutex<State>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[glib::object_subclass]
impl ObjectSubclass for PlateRecognize {
    const NAME: &'static str = "PolewatchPlateRecognize";
    type Type = super::PlateRecognize;
    type ParentType = gst_base::BaseTransform;
}

impl ObjectImpl for PlateRecognize {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("model-set")
                    .nick("Model set")
                    .blurb("Model set file ([detector], [ocr] with paths and sha256, as models/polewatch.toml)")
                    .default_value(Some(DEFAULT_MODEL_SET))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("detect-confidence")
                    .nick("Detection confidence")
                    .blurb("Lowest detector score kept")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_DETECT_CONFIDENCE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("min-confidence")
                    .nick("Minimum read confidence")
                    .blurb("Reads below this confidence are neither attached nor posted")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(0.0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("smoke-test")
                    .nick("Start-up check")
                    .blurb("Refuse models that misread the built-in plate image at start, as the daemon does")
                    .default_value(true)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("top-n")
                    .nick("Candidates")
                    .blurb("Readings kept per plate (best first)")
                    .minimum(1)
                    .maximum(20)
                    .default_value(5)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = lock(&self.settings);
        match pspec.name() {
            "model-set" => {
                s.model_set = value.get::<Option<String>>().ok().flatten().unwrap_or_else(|| DEFAULT_MODEL_SET.into())
            }
            "detect-confidence" => s.detect_confidence = value.get().unwrap_or(DEFAULT_DETECT_CONFIDENCE),
            "min-confidence" => s.min_confidence = value.get().unwrap_or(0.0),
            "smoke-test" => s.smoke_test = value.get().unwrap_or(true),
            "top-n" => s.top_n = value.get().unwrap_or(5),
            other => gst::warning!(CAT, imp = self, "no property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = lock(&self.settings);
        match pspec.name() {
            "model-set" => s.model_set.to_value(),
            "detect-confidence" => s.detect_confidence.to_value(),
            "min-confidence" => s.min_confidence.to_value(),
            "smoke-test" => s.smoke_test.to_value(),
            "top-n" => s.top_n.to_value(),
            _ => glib::Value::from_type(pspec.value_type()),
        }
    }
}

impl GstObjectImpl for PlateRecognize {}

impl ElementImpl for PlateRecognize {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Licence plate recognizer",
                "Filter/Analyzer/Video",
                "Reads licence plates with polewatch's detector and OCR; passes video through, attaches each plate as \
                 region-of-interest meta and posts a polewatch-plate element message per plate",
                "polewatch developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS.iter().map(|f| gst_video::VideoFormat::from_string(f)))
                .build();
            vec![
                gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &caps)
                    .expect("sink template"),
                gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &caps)
                    .expect("src template"),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for PlateRecognize {
    // In place on a writable buffer (the metas need one); the pixels are never changed.
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let s = lock(&self.settings).clone();
        let path = std::path::Path::new(&s.model_set);
        let set = polewatch::config::load_model_set(path)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ["model set {}: {}", path.display(), e]))?;
        let ocr = set.ocr.as_ref().ok_or_else(|| {
            gst::error_msg!(gst::LibraryError::Settings, ["model set {} has no [ocr] model", path.display()])
        })?;
        let rec = Recognizer::new(
            set.detector.as_ref(),
            ocr,
            DnnBackend::Cpu,
            s.detect_confidence as f32,
            &[],
            s.top_n as usize,
        )
        .and_then(|r| if s.smoke_test { r.checked() } else { Ok(r) })
        .map_err(|e| gst::error_msg!(gst::LibraryError::Init, ["recognizer from {}: {}", path.display(), e]))?;
        gst::info!(CAT, imp = self, "recognizer ready from {}", path.display());
        lock(&self.state).recognizer = Some(rec);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *lock(&self.state) = State::default();
        Ok(())
    }

    fn set_caps(&self, incaps: &gst::Caps, _outcaps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(incaps)
            .map_err(|_| gst::loggable_error!(CAT, "caps without video info: {incaps}"))?;
        lock(&self.state).info = Some(info);
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let min_confidence = lock(&self.settings).min_confidence as f32;
        let mut state = lock(&self.state);
        let State { recognizer, info } = &mut *state;
        let (Some(rec), Some(info)) = (recognizer.as_mut(), info.as_ref()) else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ["buffer before caps or start"]);
            return Err(gst::FlowError::NotNegotiated);
        };
        let (w, h) = (info.width(), info.height());
        let bgr = {
            let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
            let stride = info.stride()[0] as usize;
            let offset = info.offset()[0];
            let plane = map.as_slice().get(offset..).unwrap_or(&[]);
            packed_bgr(plane, info.format().to_str(), w as usize, h as usize, stride).map_err(|e| {
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    ["frame of {}x{} has {} bytes, {} needed", w, h, e.got, e.want]
                );
                gst::FlowError::Error
            })?
        };
        let mat = opencv::core::Mat::new_rows_cols_with_data(h as i32, (w * 3) as i32, &bgr[..])
            .and_then(|m| m.reshape(3, h as i32).and_then(|m| m.try_clone()))
            .map_err(|e| {
                gst::element_imp_error!(self, gst::LibraryError::Failed, ["OpenCV: {}", e]);
                gst::FlowError::Error
            })?;
        // One frame the recognizer fails on (as the daemon does) is a warning, not the end of the stream.
        let result = match rec.recognize(&mat, &View::default()) {
            Ok(r) => r,
            Err(e) => {
                gst::element_imp_warning!(self, gst::LibraryError::Failed, ["recognizer: {}", e]);
                return Ok(gst::FlowSuccess::Ok);
            }
        };
        drop(state);
        let pts = buf.pts();
        let mut messages = Vec::new();
        for r in result.reads.iter().filter(|r| r.confidence >= min_confidence) {
            let (x, y, bw, bh) = pixel_box(r, w, h);
            let fields = |b: gst::structure::Builder| {
                b.field("text", r.text.as_str())
                    .field("confidence", r.confidence as f64)
                    .field("detection-score", r.detection_score as f64)
                    .field("pattern", r.pattern.as_deref().unwrap_or(""))
                    .field("candidates", gst::Array::new(r.candidates.iter().map(|c| c.text.as_str())))
            };
            let mut meta = gst_video::VideoRegionOfInterestMeta::add(buf, ROI_TYPE, (x, y, bw, bh));
            meta.add_param(fields(gst::Structure::builder(PARAM_NAME)).build());
            gst::debug!(CAT, imp = self, "plate {} ({:.2}) at {x},{y} {bw}x{bh}", r.text, r.confidence);
            let s = fields(gst::Structure::builder(MESSAGE_NAME))
                .field("x", x)
                .field("y", y)
                .field("width", bw)
                .field("height", bh)
                .field("timestamp", pts.map(|t| t.nseconds()).unwrap_or(u64::MAX))
                .build();
            messages.push(gst::message::Element::builder(s).src(&*self.obj()).build());
        }
        for m in messages {
            let _ = self.obj().post_message(m);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
