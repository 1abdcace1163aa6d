//! Camera ingest (R-IN1…R-IN3): one GStreamer pipeline per camera on its own thread, frames sampled at
//! the camera's analysis rate (and optionally motion-gated) into a bounded queue that drops the oldest
//! under load, and reconnection with backoff forever. The queue is the hand-over to the recognizer.
//!
//! - `camera`: the pipeline and its thread; `decoder`: which elements decode which codec;
//!   `sampler`: which decoded frames are analysed; `motion`: the motion gate; `state`: camera states and
//!   error classification; `backoff`: the reconnect schedule; `queue`: the frame queue;
//!   `set`: the running cameras and their reload.

pub mod backoff;
pub mod camera;
pub mod decoder;
pub mod motion;
pub mod queue;
pub mod sampler;
pub mod set;
pub mod settings;
pub mod state;
pub mod uri;

pub use camera::{Camera, CameraStats};
pub use motion::MotionGate;
pub use queue::FrameQueue;
pub use set::CameraSet;
pub use state::{CameraState, Failure};

/// How a [`Frame`]'s pixels are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Packed BGR, 3 bytes each, rows `width * 3` bytes apart (no padding), top row first:
    /// `data.len() == width * height * 3`. OpenCV's `CV_8UC3` layout.
    Bgr,
    /// Planar YUV 4:2:0 as the decoders give it, tightly packed: the Y plane (`width * height`), then U and
    /// V (`width/2 * height/2` each); width and height even. Half the bytes of BGR, and no full-size
    /// colour conversion in the camera's pipeline: the analysis converts one frame at a time into one
    /// reused image, and the motion gate reads the Y plane as it is.
    I420,
}

impl PixelFormat {
    /// Bytes of a `width` × `height` frame in this format.
    pub fn len(self, width: u32, height: u32) -> usize {
        let (w, h) = (width as usize, height as usize);
        match self {
            PixelFormat::Bgr => w * h * 3,
            PixelFormat::I420 => w * h + 2 * (w / 2) * (h / 2),
        }
    }
}

/// One analysed frame, as the camera's pipeline hands it over.
#[derive(Debug, Clone)]
pub struct Frame {
    pub camera: std::sync::Arc<str>,
    /// Frames decoded by this camera's pipeline before this one (gaps show what sampling and the motion
    /// gate skipped). Restarts at 0 when the camera reconnects.
    pub seq: u64,
    /// Wall-clock time (UTC, ms since the epoch) the frame reached the appsink.
    pub captured_at_ms: i64,
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    /// `format.len(width, height)` bytes.
    pub data: Vec<u8>,
}
