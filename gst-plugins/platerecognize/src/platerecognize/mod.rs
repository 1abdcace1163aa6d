use gst::glib;
use gst::prelude::*;

mod imp;
pub mod plates;

pub use imp::{DEFAULT_MODEL_SET, MESSAGE_NAME, PARAM_NAME, ROI_TYPE};

glib::wrapper! {
    pub struct PlateRecognize(ObjectSubclass<imp::PlateRecognize>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "platerecognize", gst::Rank::NONE, PlateRecognize::static_type())
}
