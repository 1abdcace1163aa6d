//! The element with the shipped models: through `gst_check::Harness` on frames of the demo scene, and in a
//! `gst-launch-1.0` pipeline that decodes a video the test renders, loading the plugin from GST_PLUGIN_PATH.

use gst::prelude::*;
use gstplaterecognize::platerecognize::{MESSAGE_NAME, PARAM_NAME, ROI_TYPE};
use std::path::{Path, PathBuf};
use std::process::Command;

fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().unwrap();
        gstplaterecognize::plugin_register_static().expect("plugin registers");
    });
}

fn model_set() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/polewatch.toml")
}

/// The demo scene at `t` seconds: the first car (plate 7KQX214) is in view from 0.5 s to 4 s.
fn demo_frame(t: f64, w: i32, h: i32) -> Vec<u8> {
    use opencv::prelude::*;
    let road = polewatch_dev::recognize::render::road(w, h, 42).unwrap();
    let plates: Vec<opencv::core::Mat> = polewatch_dev::demo::passes()
        .iter()
        .map(|p| polewatch_dev::recognize::render::plate(&p.text, p.style, 120).unwrap())
        .collect();
    let img = polewatch_dev::demo::frame(&road, &plates, t, 7).unwrap();
    assert_eq!((img.cols(), img.rows(), img.channels()), (w, h, 3));
    img.data_bytes().unwrap().to_vec()
}

#[test]
fn harness_passes_frames_through_and_attaches_and_posts_each_plate() {
    init();
    let (w, h) = (1280, 720);
    let element = gst::ElementFactory::make("platerecognize")
        .property("model-set", model_set().to_str().unwrap())
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut harness = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    harness.set_src_caps_str(&format!("video/x-raw,format=BGR,width={w},height={h},framerate=10/1"));

    let empty = polewatch_dev::recognize::render::road(w, h, 42).unwrap();
    let frames = [
        (0.0, {
            use opencv::prelude::*;
            empty.data_bytes().unwrap().to_vec()
        }),
        (2.5, demo_frame(2.5, w, h)),
    ];
    let mut outs = Vec::new();
    for (i, (t, bytes)) in frames.iter().enumerate() {
        let mut buf = gst::Buffer::from_slice(bytes.clone());
        buf.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds((t * 1000.0) as u64));
        let out = harness.push_and_pull(buf).unwrap_or_else(|e| panic!("frame {i}: {e:?}"));
        assert_eq!(out.map_readable().unwrap().as_slice(), &bytes[..], "frame {i} passes through unchanged");
        outs.push(out);
    }

    assert_eq!(outs[0].iter_meta::<gst_video::VideoRegionOfInterestMeta>().count(), 0, "an empty road has no plate");
    let metas: Vec<_> = outs[1].iter_meta::<gst_video::VideoRegionOfInterestMeta>().collect();
    assert_eq!(metas.len(), 1, "one car in view");
    let m = &metas[0];
    assert_eq!(m.roi_type(), ROI_TYPE);
    let (x, y, bw, bh) = m.rect();
    assert!(bw > 40 && bh > 10 && x + bw <= w as u32 && y + bh <= h as u32, "{:?}", m.rect());
    let p = m.param(PARAM_NAME).expect("plate parameters");
    assert_eq!(p.get::<&str>("text").unwrap(), "7KQX214");
    assert!(p.get::<f64>("confidence").unwrap() > 0.5);

    let msgs: Vec<_> = std::iter::from_fn(|| bus.pop_filtered(&[gst::MessageType::Element])).collect();
    assert_eq!(msgs.len(), 1, "one message per plate");
    let s = msgs[0].structure().unwrap();
    assert_eq!(s.name(), MESSAGE_NAME);
    assert_eq!(s.get::<&str>("text").unwrap(), "7KQX214");
    assert_eq!((s.get::<u32>("x").unwrap(), s.get::<u32>("width").unwrap()), (x, bw));
    assert_eq!(s.get::<u64>("timestamp").unwrap(), 2_500_000_000);
}

#[test]
fn a_missing_model_set_is_an_error_at_start() {
    init();
    let element =
        gst::ElementFactory::make("platerecognize").property("model-set", "/nonexistent/models.toml").build().unwrap();
    assert!(element.set_state(gst::State::Paused).is_err());
    let _ = element.set_state(gst::State::Null);
}

/// A folder holding only the built plugin (`libgstplaterecognize.so`, beside this test binary in `deps/`), for
/// GST_PLUGIN_PATH: `deps/` itself is full of other shared objects the registry would scan.
fn plugin_dir(tmp: &Path) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let so = [deps.join("libgstplaterecognize.so"), deps.parent().unwrap().join("libgstplaterecognize.so")]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("plugin not built beside {}", exe.display()));
    let dir = tmp.join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&so, dir.join("libgstplaterecognize.so")).unwrap();
    dir
}

fn gst_tool(tool: &str, plugins: &Path, registry: &Path) -> Command {
    let mut c = Command::new(tool);
    c.env("GST_PLUGIN_PATH", plugins).env("GST_REGISTRY", registry);
    c
}

#[test]
fn gst_launch_reads_the_plates_of_a_rendered_video() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("demo.mp4");
    polewatch_dev::demo::write_video(&video, 1280, 720, 4, 4.0).unwrap();
    let registry = dir.path().join("registry.bin");
    let plugins = plugin_dir(dir.path());

    let inspect = gst_tool("gst-inspect-1.0", &plugins, &registry).arg("platerecognize").output().unwrap();
    let text = String::from_utf8_lossy(&inspect.stdout);
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    assert!(text.contains("model-set") && text.contains("Filter/Analyzer/Video"), "{text}");

    let out = gst_tool("gst-launch-1.0", &plugins, &registry)
        .arg("-m")
        .args(["filesrc", &format!("location={}", video.display()), "!", "decodebin", "!", "videoconvert", "!"])
        .args(["platerecognize", &format!("model-set={}", model_set().display()), "!", "fakesink"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}\n{}", String::from_utf8_lossy(&out.stderr));
    let plates: Vec<&str> = log.lines().filter(|l| l.contains(MESSAGE_NAME)).collect();
    assert!(plates.len() >= 3, "the car is in view for 3.5 s at 4 fps: {log}");
    assert!(plates.iter().filter(|l| l.contains("7KQX214")).count() >= plates.len() / 2, "{plates:#?}");

    // Without the plugin on the path the same line fails: the test is of our element, not another.
    let none = Command::new("gst-launch-1.0")
        .env("GST_PLUGIN_PATH", dir.path())
        .env("GST_REGISTRY", dir.path().join("bare.bin"))
        .args(["videotestsrc", "num-buffers=1", "!", "platerecognize", "!", "fakesink"])
        .output()
        .unwrap();
    assert!(!none.status.success());
}
