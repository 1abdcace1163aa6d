//! GStreamer plugin `platerecognize`: one element of the same name that runs polewatch's recognizer on raw
//! video, passes every buffer on unchanged, attaches each plate it reads to the buffer as a
//! `GstVideoRegionOfInterestMeta` (type `license-plate`, parameter structure `polewatch/plate`) and posts an
//! element message `polewatch-plate` per plate on the bus.
//!
//! Plate text is personal data: the element never logs it above the `DEBUG` level of its debug category.

use gst::glib;

pub mod platerecognize;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    platerecognize::register(plugin)
}

gst::plugin_define!(
    platerecognize,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    env!("CARGO_PKG_VERSION"),
    // Dual Apache-2.0/MIT; GStreamer's list of licences knows MIT.
    "MIT/X11",
    "polewatch",
    "polewatch",
    env!("CARGO_PKG_REPOSITORY")
);
