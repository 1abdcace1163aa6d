//! Camera ingest (R-IN1…R-IN3): one GStreamer pipeline per camera on its own thread, frames sampled at
//! the camera's analysis rate into a bounded queue that drops the oldest under load, and reconnection
//! with backoff forever. Not yet connected to the recognizer (its own issue): the queue is the hand-over.

pub mod backoff;
pub mod camera;
pub mod queue;
pub mod state;
pub mod uri;

pub use camera::{Camera, CameraStats};
pub use queue::FrameQueue;
pub use state::{CameraState, Failure};

/// One analysed frame as the decoder produced it; colour conversion happens only for these.
#[derive(Debug, Clone)]
pub struct Frame {
    pub camera: std::sync::Arc<str>,
    /// Frames decoded by this camera's pipeline before this one (gaps show what sampling skipped).
    pub seq: u64,
    pub captured_at_ms: i64,
    pub width: u32,
    pub height: u32,
    /// GStreamer raw video format name (`I420`, `NV12`, `BGR`, …).
    pub format: String,
    pub data: Vec<u8>,
}
