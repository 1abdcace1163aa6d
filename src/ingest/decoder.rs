//! Which elements decode a camera's stream (R-IN1): chosen from the codec the source negotiated and the
//! camera's `decoder` setting, so the choice is explicit, logged and testable (no decodebin ranking).
//!
//! `auto` takes the first hardware decoder whose element is installed, else the software one. MJPEG always
//! decodes in software (`jpegdec`): hardware JPEG decoders differ too much between boards to pick blindly.
//! A named element is used whatever the codec; one that cannot take the stream fails to link and the
//! camera reports `unsupported-codec`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    Jpeg,
}

impl Codec {
    /// From RTP caps (`encoding-name`, as rtspsrc announces each stream).
    pub fn from_rtp_encoding(name: &str) -> Option<Codec> {
        match name.to_ascii_uppercase().as_str() {
            "H264" => Some(Codec::H264),
            "H265" | "HEVC" => Some(Codec::H265),
            "JPEG" => Some(Codec::Jpeg),
            _ => None,
        }
    }

    /// From the caps name of an elementary stream (parsebin's pads for files and HTTP).
    pub fn from_caps_name(name: &str) -> Option<Codec> {
        match name {
            "video/x-h264" => Some(Codec::H264),
            "video/x-h265" => Some(Codec::H265),
            "image/jpeg" => Some(Codec::Jpeg),
            _ => None,
        }
    }

    fn depay(self) -> &'static str {
        match self {
            Codec::H264 => "rtph264depay",
            Codec::H265 => "rtph265depay",
            Codec::Jpeg => "rtpjpegdepay",
        }
    }

    fn parse(self) -> Option<&'static str> {
        match self {
            Codec::H264 => Some("h264parse"),
            Codec::H265 => Some("h265parse"),
            Codec::Jpeg => None,
        }
    }

    /// Hardware decoders in order of preference: Jetson (and DeepStream on a discrete GPU), NVDEC
    /// through gst-plugins-bad's `nvcodec` (a desktop or server NVIDIA GPU), stateless then stateful
    /// V4L2, VA, VA-API.
    fn hardware(self) -> &'static [&'static str] {
        match self {
            Codec::H264 => &["nvv4l2decoder", "nvh264dec", "v4l2slh264dec", "v4l2h264dec", "vah264dec", "vaapih264dec"],
            Codec::H265 => &["nvv4l2decoder", "nvh265dec", "v4l2slh265dec", "v4l2h265dec", "vah265dec", "vaapih265dec"],
            Codec::Jpeg => &[],
        }
    }

    fn software(self) -> &'static str {
        match self {
            Codec::H264 => "avdec_h264",
            Codec::H265 => "avdec_h265",
            Codec::Jpeg => "jpegdec",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::H264 => "H.264",
            Codec::H265 => "H.265",
            Codec::Jpeg => "MJPEG",
        })
    }
}

/// The elements between the source pad and the colour conversion, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub codec: Codec,
    pub depay: Option<&'static str>,
    pub parse: Option<&'static str>,
    pub decoder: String,
    /// Jetson's decoder outputs NVMM memory, which only `nvvidconv` copies to system memory.
    pub to_system_memory: Option<&'static str>,
    pub hardware: bool,
}

impl Chain {
    pub fn elements(&self) -> Vec<&str> {
        self.depay
            .iter()
            .copied()
            .chain(self.parse)
            .chain([self.decoder.as_str()])
            .chain(self.to_system_memory)
            .collect()
    }
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} via {} ({})",
            self.codec,
            self.elements().join(" ! "),
            if self.hardware { "hardware" } else { "software" }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("{codec} needs the GStreamer element `{element}`, which is not installed")]
    Missing { codec: Codec, element: String },
}

/// Which GStreamer element factories exist. [`GstRegistry`] asks GStreamer's registry; tests pass a
/// fake one (a closure over a list of names is one), so the choice is tested for a Jetson, a VA-API box
/// or a bare one without their plugins.
pub trait ElementRegistry {
    /// Is an element factory of this name installed?
    fn has(&self, factory: &str) -> bool;
}

impl<F: Fn(&str) -> bool> ElementRegistry for F {
    fn has(&self, factory: &str) -> bool {
        self(factory)
    }
}

/// The registry of this process's GStreamer (call `gstreamer::init` first).
pub struct GstRegistry;

impl ElementRegistry for GstRegistry {
    fn has(&self, factory: &str) -> bool {
        installed(factory)
    }
}

/// The element that copies `nvv4l2decoder`'s NVMM buffers to system memory: Jetson's `nvvidconv`, or
/// DeepStream's `nvvideoconvert` (a discrete GPU, or a Jetson with only DeepStream's plugins).
fn nvmm_converter(installed: &dyn ElementRegistry) -> Option<&'static str> {
    ["nvvidconv", "nvvideoconvert"].into_iter().find(|e| installed.has(e))
}

/// The chain for `codec` under the `decoder` setting. `rtp`: the stream arrives as RTP (needs a depayloader);
/// otherwise it is an elementary stream that parsebin already parsed. `installed` asks the registry.
///
/// Under `auto` a hardware decoder is taken only when everything its chain needs is installed (a Jetson
/// decoder without an NVMM converter is passed over), else the next one, else software.
pub fn choose(codec: Codec, setting: &str, rtp: bool, installed: &dyn ElementRegistry) -> Result<Chain, ChoiceError> {
    let depay = rtp.then(|| codec.depay());
    let parse = if rtp { codec.parse() } else { None };
    let chain_with = |decoder: &str, hardware: bool| {
        let to_system_memory =
            if decoder == "nvv4l2decoder" { Some(nvmm_converter(installed).unwrap_or("nvvidconv")) } else { None };
        Chain { codec, depay, parse, decoder: decoder.to_string(), to_system_memory, hardware }
    };
    let complete = |c: &Chain| c.elements().into_iter().all(|e| installed.has(e));
    let chain = match setting {
        "software" => chain_with(codec.software(), false),
        "auto" => codec
            .hardware()
            .iter()
            .map(|hw| chain_with(hw, true))
            .find(|c| complete(c))
            .unwrap_or_else(|| chain_with(codec.software(), false)),
        // Hardware only when it is one of the hardware decoders `auto` knows: `openh264dec` is software.
        named => chain_with(named, codec.hardware().contains(&named)),
    };
    if let Some(missing) = chain.elements().into_iter().find(|e| !installed.has(e)) {
        return Err(ChoiceError::Missing { codec, element: missing.to_string() });
    }
    Ok(chain)
}

/// Under `auto`, a hardware decoder that fails before its first frame (device busy, firmware, a profile it
/// cannot take) would fail the same way on every reconnect: the camera falls back to `software`.
pub fn fallback(setting: &str, chain: Option<&Chain>, ended: super::Failure, streamed: bool) -> Option<&'static str> {
    use super::Failure::{Other, UnsupportedCodec};
    let hw = chain.is_some_and(|c| c.hardware);
    (setting == "auto" && hw && !streamed && matches!(ended, UnsupportedCodec | Other)).then_some("software")
}

/// Whether `name` is an installed element that GStreamer classes as a decoder.
pub fn is_decoder_element(name: &str) -> Result<bool, gstreamer::glib::Error> {
    gstreamer::init()?;
    Ok(gstreamer::ElementFactory::find(name)
        .is_some_and(|f| f.metadata("klass").is_some_and(|k| k.contains("Decoder"))))
}

/// Why a camera's `decoder` setting is refused; the text is what the configuration check reports at the
/// key `cameras[N].decoder`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("`{0}` is not auto, software or a GStreamer element name")]
    BadName(String),
    #[error("`{0}` is not an installed GStreamer decoder element (see gst-inspect-1.0)")]
    NotADecoder(String),
    #[error("cannot check `{name}`: {reason}")]
    Unchecked { name: String, reason: String },
}

/// GStreamer element names: a letter, then letters, digits, `-` and `_` (at most 64).
fn element_name_ok(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The `decoder` setting's form, without GStreamer: `auto`, `software` or an element name.
pub fn check_setting(setting: &str) -> Result<(), SettingError> {
    // `auto` and `software` are element-name shaped too.
    if element_name_ok(setting) { Ok(()) } else { Err(SettingError::BadName(setting.to_string())) }
}

/// A named decoder (not `auto` or `software`) must be installed and classed as a decoder: asks
/// GStreamer's registry, so it runs only when a camera names an element. A malformed name passes here
/// ([`check_setting`] reports it).
pub fn check_installed(setting: &str) -> Result<(), SettingError> {
    if matches!(setting, "auto" | "software") || check_setting(setting).is_err() {
        return Ok(());
    }
    match is_decoder_element(setting) {
        Ok(true) => Ok(()),
        Ok(false) => Err(SettingError::NotADecoder(setting.to_string())),
        Err(e) => Err(SettingError::Unchecked { name: setting.to_string(), reason: e.to_string() }),
    }
}

/// Whether an element is installed (the registry answers from its cache).
pub fn installed(name: &str) -> bool {
    gstreamer::ElementFactory::find(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(present: &'static [&'static str]) -> impl Fn(&str) -> bool {
        move |e| present.contains(&e)
    }

    const SOFT: &[&str] = &[
        "rtph264depay",
        "rtph265depay",
        "rtpjpegdepay",
        "h264parse",
        "h265parse",
        "avdec_h264",
        "avdec_h265",
        "jpegdec",
    ];

    #[test]
    fn auto_prefers_installed_hardware_then_software() {
        let c = choose(Codec::H264, "auto", true, &only(SOFT)).unwrap();
        assert_eq!((c.elements(), c.hardware), (vec!["rtph264depay", "h264parse", "avdec_h264"], false));
        assert_eq!(c.to_string(), "H.264 via rtph264depay ! h264parse ! avdec_h264 (software)");

        let with_va: &[&str] = &["rtph265depay", "h265parse", "avdec_h265", "vaapih265dec", "v4l2slh265dec"];
        let c = choose(Codec::H265, "auto", true, &only(with_va)).unwrap();
        assert_eq!((c.decoder.as_str(), c.hardware), ("v4l2slh265dec", true));

        let jetson: &[&str] = &["rtph264depay", "h264parse", "nvv4l2decoder", "nvvidconv", "avdec_h264"];
        let c = choose(Codec::H264, "auto", true, &only(jetson)).unwrap();
        assert_eq!(c.elements(), ["rtph264depay", "h264parse", "nvv4l2decoder", "nvvidconv"]);
    }

    /// A fake GStreamer registry: the element factories a kind of box has installed.
    struct FakeRegistry(Vec<&'static str>);

    impl FakeRegistry {
        fn with(extra: &[&'static str]) -> FakeRegistry {
            FakeRegistry(SOFT.iter().chain(extra).copied().collect())
        }
    }

    impl ElementRegistry for FakeRegistry {
        fn has(&self, factory: &str) -> bool {
            self.0.contains(&factory)
        }
    }

    #[test]
    fn jetson_decoders_are_chosen_when_the_registry_has_them_software_otherwise() {
        // A Jetson with L4T's GStreamer plugins: NVDEC through V4L2, NVMM copied out by nvvidconv.
        let jetson = FakeRegistry::with(&["nvv4l2decoder", "nvvidconv", "nvvideoconvert"]);
        for (codec, depay, parse) in
            [(Codec::H264, "rtph264depay", "h264parse"), (Codec::H265, "rtph265depay", "h265parse")]
        {
            let c = choose(codec, "auto", true, &jetson).unwrap();
            assert_eq!((c.elements(), c.hardware), (vec![depay, parse, "nvv4l2decoder", "nvvidconv"], true));
        }
        // MJPEG stays in software even there.
        assert_eq!(choose(Codec::Jpeg, "auto", true, &jetson).unwrap().elements(), ["rtpjpegdepay", "jpegdec"]);
        // `software` is obeyed on a Jetson.
        assert_eq!(choose(Codec::H264, "software", true, &jetson).unwrap().decoder, "avdec_h264");

        // DeepStream without L4T's nvvidconv (a discrete GPU): its nvvideoconvert copies NVMM out.
        let deepstream = FakeRegistry::with(&["nvv4l2decoder", "nvvideoconvert"]);
        let c = choose(Codec::H264, "auto", true, &deepstream).unwrap();
        assert_eq!(c.to_system_memory, Some("nvvideoconvert"));

        // nvv4l2decoder alone cannot hand frames to system memory: auto passes it over for the next
        // hardware decoder, then for software; naming it fails on the missing converter.
        let half = FakeRegistry::with(&["nvv4l2decoder", "nvh264dec"]);
        let c = choose(Codec::H264, "auto", true, &half).unwrap();
        assert_eq!((c.decoder.as_str(), c.to_system_memory, c.hardware), ("nvh264dec", None, true));
        let half = FakeRegistry::with(&["nvv4l2decoder"]);
        let c = choose(Codec::H265, "auto", true, &half).unwrap();
        assert_eq!((c.decoder.as_str(), c.hardware), ("avdec_h265", false));
        let e = choose(Codec::H265, "nvv4l2decoder", true, &half).unwrap_err();
        assert_eq!(e, ChoiceError::Missing { codec: Codec::H265, element: "nvvidconv".into() });

        // A desktop NVIDIA GPU with gst-plugins-bad's nvcodec, and a box with no hardware decoder.
        let nvdec = FakeRegistry::with(&["nvh264dec", "nvh265dec", "vaapih264dec"]);
        assert_eq!(choose(Codec::H265, "auto", true, &nvdec).unwrap().decoder, "nvh265dec");
        let bare = FakeRegistry::with(&[]);
        let c = choose(Codec::H264, "auto", false, &bare).unwrap();
        assert_eq!((c.elements(), c.hardware), (vec!["avdec_h264"], false));
    }

    #[test]
    fn software_and_named_settings_are_obeyed() {
        let hw: &[&str] = &["rtph264depay", "h264parse", "avdec_h264", "vaapih264dec"];
        assert_eq!(choose(Codec::H264, "software", true, &only(hw)).unwrap().decoder, "avdec_h264");
        let c = choose(Codec::H264, "vaapih264dec", true, &only(hw)).unwrap();
        assert_eq!((c.decoder.as_str(), c.hardware), ("vaapih264dec", true));
        // A named software decoder other than libav's is logged as software.
        let c = choose(Codec::H264, "openh264dec", true, &only(&["rtph264depay", "h264parse", "openh264dec"])).unwrap();
        assert_eq!((c.decoder.as_str(), c.hardware), ("openh264dec", false));
        assert!(c.to_string().ends_with("(software)"), "{c}");
        // A file or HTTP stream comes out of parsebin already parsed: no depayloader, no parser.
        assert_eq!(choose(Codec::Jpeg, "auto", false, &only(SOFT)).unwrap().elements(), ["jpegdec"]);
    }

    #[test]
    fn a_missing_element_is_named() {
        let e = choose(Codec::H265, "auto", true, &only(&["rtph265depay", "h265parse"])).unwrap_err();
        assert_eq!(e, ChoiceError::Missing { codec: Codec::H265, element: "avdec_h265".into() });
        assert_eq!(e.to_string(), "H.265 needs the GStreamer element `avdec_h265`, which is not installed");
    }

    #[test]
    fn a_failing_hardware_decoder_falls_back_to_software_under_auto_only() {
        use crate::ingest::Failure;
        let all = |_: &str| true;
        let hw = choose(Codec::H264, "auto", true, &all).unwrap();
        assert!(hw.hardware);
        assert_eq!(fallback("auto", Some(&hw), Failure::Other, false), Some("software"));
        assert_eq!(fallback("auto", Some(&hw), Failure::UnsupportedCodec, false), Some("software"));
        // It decoded before, or the camera went away: not the decoder's fault.
        assert_eq!(fallback("auto", Some(&hw), Failure::Other, true), None);
        assert_eq!(fallback("auto", Some(&hw), Failure::Unreachable, false), None);
        // A decoder the operator named is kept; software has nothing to fall back to.
        assert_eq!(fallback("nvv4l2decoder", Some(&hw), Failure::Other, false), None);
        let sw = choose(Codec::H264, "software", true, &all).unwrap();
        assert_eq!(fallback("auto", Some(&sw), Failure::Other, false), None);
        assert_eq!(fallback("auto", None, Failure::Other, false), None);
    }

    #[test]
    fn codecs_from_caps() {
        assert_eq!(Codec::from_rtp_encoding("H265"), Some(Codec::H265));
        assert_eq!(Codec::from_rtp_encoding("jpeg"), Some(Codec::Jpeg));
        assert_eq!(Codec::from_rtp_encoding("MP4V-ES"), None);
        assert_eq!(Codec::from_caps_name("video/x-h264"), Some(Codec::H264));
        assert_eq!(Codec::from_caps_name("video/mpeg"), None);
    }
}
