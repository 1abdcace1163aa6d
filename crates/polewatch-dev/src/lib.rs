//! polewatch-dev: the project's test rigs and development tools, out of the daemon binary and its Debian
//! package (issue 14): benchmarks ([`bench`]), the demo video ([`demo`]), the plate and road-scene renderer
//! ([`recognize::render`]), labelled plate sets ([`recognize::dataset`]) and accuracy counting
//! ([`recognize::metrics`]), the hotlist figures' synthetic lists ([`hotlist::bench`]), the MQTT/TLS rig
//! ([`bench::rig`]) and the kill -9 harness ([`bench::crash`]). The `polewatch-dev` binary runs them
//! (`polewatch-dev bench …`, `polewatch-dev demo-video`); the daemon's tests use them as a dev-dependency.
//!
//! The daemon library's modules are re-exported at this crate's root, and [`recognize`] and [`hotlist`]
//! extend the daemon's modules of the same name: code that moved here from the daemon's source tree kept
//! its `crate::…` paths, and `polewatch_dev::recognize::render` sits beside `polewatch_dev::recognize::Recognizer`.
//! Nothing in the daemon depends on this crate.

pub use polewatch::*;

pub mod bench;
pub mod demo;

/// The daemon's hotlists, and the synthetic lists and reads of the hotlist figures.
pub mod hotlist {
    pub use polewatch::hotlist::*;
    pub mod bench;
}

/// The daemon's recognizer, and what measures and feeds it: plate rendering, labelled sets, accuracy.
pub mod recognize {
    pub use polewatch::recognize::*;
    pub mod dataset;
    pub mod metrics;
    pub mod render;
}
