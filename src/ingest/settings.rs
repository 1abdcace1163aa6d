//! Ingest's settings: the `[[cameras]]` table, deserialised as it is inside the configuration schema
//! (`config` re-exports it). Every struct denies unknown keys.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Tcp,
    Udp,
    Auto,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// `rtsp://…`, `rtsps://…` or `file://…`.
    pub url: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub transport: Transport,
    /// rtspsrc's jitter buffer. Unset: none over TCP (interleaved RTP arrives in order and complete, so
    /// the buffer would only hold every frame back), [`UDP_LATENCY_MS`] over UDP or `auto`.
    #[serde(default)]
    pub latency_ms: Option<u32>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// File holding `username:password` on one line (preferred over inline secrets).
    #[serde(default)]
    pub credentials_file: Option<PathBuf>,
    /// `auto` (a hardware decoder whose element exists, else libav/jpegdec), `software`, or the name of
    /// a GStreamer decoder element (`nvv4l2decoder`, `vaapih265dec`, …) used whatever the codec.
    #[serde(default = "default_decoder")]
    pub decoder: String,
    /// Frames analysed per second (eFPS), independent of the camera's frame rate.
    #[serde(default = "default_analysis_fps")]
    pub analysis_fps: f64,
    /// Skip frames with no motion in the region of interest (see `ingest::motion`).
    #[serde(default)]
    pub motion_gate: bool,
    /// Share of the region's cells (a coarse grey grid) that must change for a frame to count as motion.
    #[serde(default = "default_motion_threshold")]
    pub motion_threshold: f64,
    /// Region of interest polygon in frame pixels, `[[x, y], …]`; empty means the whole frame.
    #[serde(default)]
    pub roi: Vec<[u32; 2]>,
    #[serde(default = "default_min_plate_px")]
    pub min_plate_width_px: u32,
    #[serde(default = "default_max_plate_px")]
    pub max_plate_width_px: u32,
    #[serde(default)]
    pub rotate_deg: f64,
    /// Plate region hint for format rules (`us-ca`, `eu-de`, `br`, …); empty means any.
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub store_full_frames: Option<bool>,
}

fn default_analysis_fps() -> f64 {
    8.0
}
fn default_decoder() -> String {
    "auto".to_string()
}
/// The jitter buffer over UDP when `latency_ms` is unset: room to reorder packets on a LAN.
pub const UDP_LATENCY_MS: u32 = 200;

impl Camera {
    /// The jitter buffer rtspsrc gets: `latency_ms`, or by transport when unset (see the field).
    pub fn jitter_latency_ms(&self) -> u32 {
        self.latency_ms.unwrap_or(match self.transport {
            Transport::Tcp => 0,
            Transport::Udp | Transport::Auto => UDP_LATENCY_MS,
        })
    }
}
fn default_max_plate_px() -> u32 {
    600
}
fn default_min_plate_px() -> u32 {
    60
}
fn default_motion_threshold() -> f64 {
    0.01
}
fn yes() -> bool {
    true
}
