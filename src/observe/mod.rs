//! Seeing the box from outside (issue 16 §1): Prometheus metrics, liveness and readiness, the health summary
//! on the MQTT status topic, and ALPR telemetry (a learnt read-rate baseline and the plate-height band per
//! camera, raising `camera_degraded`).
//!
//! - `telemetry` and `health`: pure logic, unit-tested without I/O;
//! - `recorder`: what the pipeline reports as it works (one call per frame, per read);
//! - `metrics`: the registry and the scrape-time collector; `process`: the process collector;
//! - `server`: the plain-HTTP listener. The daemon's side (start, the health loop, baselines saved, the
//!   status source) is `ops::observer`.

pub mod health;
pub mod metrics;
pub mod process;
pub mod recorder;
pub mod server;
pub mod telemetry;

pub use recorder::{Recorder, recorder};
