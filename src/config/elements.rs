//! GStreamer elements the configuration names: a camera's `decoder` must be an installed decoder.
//! Asks GStreamer's registry, so it runs only when a camera names an element.

use super::load::Merged;
use super::schema::Config;
use super::Problem;

pub fn unknown_decoders(c: &Config, merged: &Merged) -> Vec<Problem> {
    let mut out = Vec::new();
    for (i, cam) in c.cameras.iter().enumerate() {
        // A malformed name is already reported by validate.
        if matches!(cam.decoder.as_str(), "auto" | "software") || !super::validate::decoder_name_ok(&cam.decoder) {
            continue;
        }
        let key = format!("cameras[{i}].decoder");
        match crate::ingest::decoder::is_decoder_element(&cam.decoder) {
            Ok(true) => {}
            Ok(false) => out.push(merged.problem(&key, format!("`{}` is not an installed GStreamer decoder element (see gst-inspect-1.0)", cam.decoder))),
            Err(e) => out.push(merged.problem(&key, format!("cannot check `{}`: {e}", cam.decoder))),
        }
    }
    out
}
