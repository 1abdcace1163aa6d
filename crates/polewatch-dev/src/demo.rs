//! The demo video `make run` plays: vehicles with rendered plates driving towards a pole camera down a
//! road, with the motion blur, tilt, noise and dusk light such a camera sees; H.264 in MP4, encoded by
//! GStreamer. Made by the project's own code, so the demo needs no camera and ships no footage.

use crate::recognize::render::{self, PlateStyle, RenderError};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use opencv::core::{Mat, Scalar};
use opencv::prelude::*;
use std::path::Path;

/// One vehicle's pass through the picture.
#[derive(Debug, Clone)]
pub struct Pass {
    pub text: String,
    pub style: PlateStyle,
    pub start_s: f64,
    pub duration_s: f64,
    /// Lane centre as a fraction of the width.
    pub lane: f64,
    pub tilt_deg: f64,
    /// 1.0 daylight, lower for dusk.
    pub light: f64,
    pub body: [f64; 3],
}

/// The demo's passes: one after another, different styles, one at dusk, two side by side.
pub fn passes() -> Vec<Pass> {
    vec![
        Pass {
            text: "7KQX214".into(),
            style: PlateStyle::Us,
            start_s: 0.5,
            duration_s: 3.5,
            lane: 0.38,
            tilt_deg: 0.0,
            light: 1.0,
            body: [150.0, 60.0, 40.0],
        },
        Pass {
            text: "BAC4F21".into(),
            style: PlateStyle::Br,
            start_s: 4.5,
            duration_s: 3.0,
            lane: 0.62,
            tilt_deg: 3.0,
            light: 1.0,
            body: [40.0, 40.0, 40.0],
        },
        Pass {
            text: "MUC4821".into(),
            style: PlateStyle::Eu,
            start_s: 8.0,
            duration_s: 3.5,
            lane: 0.40,
            tilt_deg: -2.0,
            light: 0.6,
            body: [200.0, 200.0, 200.0],
        },
        Pass {
            text: "4TRM882".into(),
            style: PlateStyle::Us,
            start_s: 12.0,
            duration_s: 3.0,
            lane: 0.30,
            tilt_deg: 1.5,
            light: 1.0,
            body: [40.0, 30.0, 160.0],
        },
        Pass {
            text: "KPW5513".into(),
            style: PlateStyle::Us,
            start_s: 12.2,
            duration_s: 3.2,
            lane: 0.72,
            tilt_deg: -1.0,
            light: 1.0,
            body: [90.0, 120.0, 60.0],
        },
    ]
}

/// Where a pass's plate is at time `t` (centre x, centre y, plate width), if the car is in view.
pub fn plate_at(p: &Pass, t: f64, w: i32, h: i32) -> Option<(i32, i32, i32)> {
    let u = (t - p.start_s) / p.duration_s;
    if !(0.0..=1.0).contains(&u) {
        return None;
    }
    // Far (small, high in the picture) to near (large, low); perspective pulls the lane to the centre.
    let y = h as f64 * (0.30 + 0.55 * u);
    let x = w as f64 * (0.5 + (p.lane - 0.5) * (0.6 + 0.4 * u));
    let plate_w = w as f64 * (0.065 + 0.07 * u);
    Some((x as i32, y as i32, plate_w as i32))
}

/// Other traffic for benchmarks that need several cameras, each with its own clip: passes every 2–4 s
/// (now and then two side by side) over `seconds`, US, EU and Brazilian plates with random texts in
/// their issued shapes, lanes, tilts and colours from `seed`. The clip is lit by [`Clip::light`].
pub fn traffic(seed: u64, seconds: f64) -> Vec<Pass> {
    let mut rng = fastrand::Rng::with_seed(seed);
    // Letters as US and EU series issue them: no I, O or Q.
    const LETTERS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ";
    let letter = |rng: &mut fastrand::Rng| LETTERS[rng.usize(..LETTERS.len())] as char;
    let digit = |rng: &mut fastrand::Rng| char::from(b'0' + rng.u8(0..10));
    let (mut out, mut start) = (Vec::new(), 0.5);
    // The lane of the car the next one drives beside, if it does.
    let mut beside: Option<f64> = None;
    while start + 2.5 < seconds {
        let style = [PlateStyle::Us, PlateStyle::Us, PlateStyle::Eu, PlateStyle::Br][rng.usize(..4)];
        // `@` a letter, `#` a digit: 7KQX214, MUC4821, BAC4F21.
        let shape = match style {
            PlateStyle::Us => "#@@@###",
            PlateStyle::Eu => "@@@####",
            _ => "@@@#@##",
        };
        let text = shape.bytes().map(|c| if c == b'@' { letter(&mut rng) } else { digit(&mut rng) }).collect();
        let lane = [0.30, 0.40, 0.62, 0.72][rng.usize(..4)];
        // Beside another car: in the other half of the road.
        let lane = beside.map_or(lane, |other| if other < 0.5 { 0.66 } else { 0.34 });
        out.push(Pass {
            text,
            style,
            start_s: start,
            duration_s: 2.5 + rng.f64() * 1.5,
            lane,
            tilt_deg: rng.f64() * 6.0 - 3.0,
            light: 1.0,
            body: [rng.f64() * 220.0, rng.f64() * 220.0, rng.f64() * 220.0],
        });
        // Now and then a second car 0.2 s after the first.
        let next_beside = rng.u8(0..5) == 0 && out.len() % 2 == 1;
        beside = next_beside.then_some(lane);
        start += if next_beside { 0.2 } else { 2.0 + rng.f64() * 2.0 };
    }
    out
}

/// What a clip shows: its passes, and the light over the whole scene (1.0 day, lower at night).
#[derive(Debug, Clone)]
pub struct Clip {
    pub passes: Vec<Pass>,
    pub light: f64,
}

impl Clip {
    /// The demo's own passes in daylight (one of them at dusk).
    pub fn demo() -> Clip {
        Clip { passes: passes(), light: 1.0 }
    }
}

/// Frame at time `t` of the demo, `w` × `h`, on a pre-rendered `road`.
pub fn frame(road: &Mat, plates: &[Mat], t: f64, seed: u64) -> Result<Mat, RenderError> {
    frame_of(&Clip::demo(), road, plates, t, seed)
}

/// Frame at time `t` of `clip`; `plates` are its passes' rendered plates, in order.
pub fn frame_of(clip: &Clip, road: &Mat, plates: &[Mat], t: f64, seed: u64) -> Result<Mat, RenderError> {
    let (w, h) = (road.cols(), road.rows());
    let mut img = road.try_clone()?;
    let mut light = clip.light;
    let passes = &clip.passes;
    // Farther cars first, so nearer ones cover them.
    let mut visible: Vec<(usize, (i32, i32, i32))> =
        passes.iter().enumerate().filter_map(|(i, p)| plate_at(p, t, w, h).map(|at| (i, at))).collect();
    visible.sort_by_key(|(_, (_, y, _))| *y);
    for (i, (x, y, pw)) in visible {
        let p = &passes[i];
        render::put_vehicle(
            &mut img,
            &plates[i],
            x,
            y,
            pw,
            p.tilt_deg,
            Scalar::new(p.body[0], p.body[1], p.body[2], 0.0),
        )?;
        light = f64::min(light, p.light);
    }
    if light < 1.0 {
        let mut dark = Mat::default();
        img.convert_to(&mut dark, -1, light, 0.0)?;
        img = dark;
    }
    render::blur_and_noise(&img, 3, 3.0, seed)
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("OpenCV: {0}")]
    Cv(#[from] opencv::Error),
    #[error("GStreamer: {0}")]
    Gst(String),
}

fn gst_err(e: impl std::fmt::Display) -> DemoError {
    DemoError::Gst(e.to_string())
}

/// Renders the demo and encodes it to `out` (H.264 in MP4). Returns the number of frames.
pub fn write_video(out: &Path, width: i32, height: i32, fps: i32, seconds: f64) -> Result<u64, DemoError> {
    write_clip(&Clip::demo(), out, width, height, fps, seconds)
}

/// Renders `clip` and encodes it to `out` (H.264 in MP4). Returns the number of frames.
pub fn write_clip(clip: &Clip, out: &Path, width: i32, height: i32, fps: i32, seconds: f64) -> Result<u64, DemoError> {
    gst::init().map_err(gst_err)?;
    let road = render::road(width, height, 42)?;
    let plates: Vec<Mat> =
        clip.passes.iter().map(|p| render::plate(&p.text, p.style, 120)).collect::<Result<_, _>>()?;
    let desc = format!(
        "appsrc name=src format=time caps=video/x-raw,format=BGR,width={width},height={height},framerate={fps}/1 \
         ! videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset=veryfast key-int-max={fps} bitrate=3000 \
         ! h264parse ! mp4mux ! filesink location=\"{}\"",
        out.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .map_err(gst_err)?
        .downcast::<gst::Pipeline>()
        .map_err(|_| DemoError::Gst("not a pipeline".into()))?;
    let src = pipeline
        .by_name("src")
        .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        .ok_or_else(|| DemoError::Gst("no appsrc".into()))?;
    pipeline.set_state(gst::State::Playing).map_err(gst_err)?;
    let frames = (seconds * fps as f64).round() as u64;
    for i in 0..frames {
        let t = i as f64 / fps as f64;
        let img = frame_of(clip, &road, &plates, t, i)?;
        let bytes = img.data_bytes()?.to_vec();
        let mut buf = gst::Buffer::from_mut_slice(bytes);
        {
            let b = buf.get_mut().ok_or_else(|| DemoError::Gst("buffer not writable".into()))?;
            b.set_pts(gst::ClockTime::from_nseconds(i * 1_000_000_000 / fps as u64));
            b.set_duration(gst::ClockTime::from_nseconds(1_000_000_000 / fps as u64));
        }
        src.push_buffer(buf).map_err(gst_err)?;
    }
    src.end_of_stream().map_err(gst_err)?;
    let bus = pipeline.bus().ok_or_else(|| DemoError::Gst("no bus".into()))?;
    let result = match bus
        .timed_pop_filtered(gst::ClockTime::from_seconds(120), &[gst::MessageType::Eos, gst::MessageType::Error])
    {
        Some(m) => match m.view() {
            gst::MessageView::Eos(_) => Ok(frames),
            gst::MessageView::Error(e) => Err(DemoError::Gst(e.error().to_string())),
            _ => Ok(frames),
        },
        None => Err(DemoError::Gst("encoder did not finish within 120 s".into())),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_grow_and_descend_and_end() {
        let p = &passes()[0];
        let a = plate_at(p, p.start_s + 0.1, 1280, 720).unwrap();
        let b = plate_at(p, p.start_s + p.duration_s - 0.1, 1280, 720).unwrap();
        assert!(b.1 > a.1 && b.2 > a.2);
        assert!(a.2 >= 80, "plates start readable: {} px", a.2);
        assert_eq!(plate_at(p, p.start_s + p.duration_s + 0.5, 1280, 720), None);
    }
}
