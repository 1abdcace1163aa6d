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

/// One analysed frame: the only frames that are colour-converted.
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
    /// Pixels as packed BGR, 3 bytes each, rows `width * 3` bytes apart (no padding), top row first:
    /// `data.len() == width * height * 3`. OpenCV's `CV_8UC3` layout.
    pub data: Vec<u8>,
}
