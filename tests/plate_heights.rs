//! Issue 18 §1: how well the shipped models read a plate by its height in pixels, measured with the
//! project's own renderer (a road scene with one car whose US-style plate is drawn `h` pixels high, mild
//! motion blur and sensor noise), through the whole recognizer (detector, then OCR). The curve sets the
//! Cameras page's recommended plate-height band (`polewatch::api::aim::default_band`) and is written
//! into models/MODELS.md.
//!
//! `cargo test --test plate_heights -- --nocapture` prints the tables; `POLEWATCH_HEIGHT_TRIALS=24` (default
//! 10) renders more plates per height and `POLEWATCH_HEIGHT_FULL=1` measures more heights and tilts, for the
//! figures in MODELS.md.

use opencv::core::{Mat, Scalar};
use polewatch::api::aim::{self, CurvePoint, DEFAULT_MAX_TILT_DEG};
use polewatch::config::{self, ModelSet};
use polewatch::recognize::{BoxF, Recognizer, View};
use polewatch_dev::recognize::render::{self, PlateStyle};
use std::path::PathBuf;

fn shipped() -> ModelSet {
    config::load_model_set(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/polewatch.toml"))
        .expect("models/polewatch.toml")
}

fn recognizer() -> Recognizer {
    let set = shipped();
    let d = config::Recognizer::default();
    Recognizer::new(
        set.detector.as_ref(),
        set.ocr.as_ref().expect("an OCR model"),
        config::DnnBackend::Cpu,
        d.detect_confidence as f32,
        &[],
        d.top_n as usize,
    )
    .expect("shipped models load")
    .with_plate_chars(d.min_plate_chars as usize, d.max_plate_chars as usize)
}

/// A plate text for trial `i`: digit, three letters, three digits (the demo's US pattern), varied.
fn text(i: u64) -> String {
    let mut x = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = |n: u64| {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (x >> 33) % n
    };
    let letters = b"ABCDEFGHJKLMNPRSTUVWXYZ";
    let mut s = String::new();
    s.push((b'1' + next(9) as u8) as char);
    for _ in 0..3 {
        s.push(letters[next(letters.len() as u64) as usize] as char);
    }
    for _ in 0..3 {
        s.push((b'0' + next(10) as u8) as char);
    }
    s
}

/// One trial: the scene (`fw` × `fh`) with the plate `height` px high tilted `tilt` degrees, read whole.
/// Returns (detected, read exactly).
fn trial(rec: &mut Recognizer, fw: i32, fh: i32, height: i32, tilt: f64, i: u64) -> (bool, bool) {
    let truth = text(i);
    let mut scene = render::road(fw, fh, i).unwrap();
    let plate = render::plate(&truth, PlateStyle::Us, 128).unwrap();
    // Across the frame's middle third, so that the detector's letterbox sees plates at different offsets.
    let cx = fw / 3 + (i as i32 * 97) % (fw / 3);
    let r = render::put_vehicle(
        &mut scene,
        &plate,
        cx,
        fh * 6 / 10,
        height * 2,
        tilt,
        Scalar::new(60.0 + (i % 5) as f64 * 30.0, 50.0, 40.0, 0.0),
    )
    .unwrap();
    let img: Mat = render::blur_and_noise(&scene, 2, 3.0, i).unwrap();
    let view =
        View { roi: Vec::new(), min_plate_width_px: 8, max_plate_width_px: 0, region: String::new(), rotate_deg: 0.0 };
    let res = rec.recognize(&img, &view).unwrap();
    let truth_box = BoxF { x: r.x as f32, y: r.y as f32, w: r.width as f32, h: r.height as f32 };
    let found: Vec<_> = res.reads.iter().filter(|p| p.bbox.iou(&truth_box) >= 0.3).collect();
    let detected = !found.is_empty() || res.rejected.iter().any(|b| b.iou(&truth_box) >= 0.3);
    (detected, found.iter().any(|p| p.text == truth))
}

fn trials() -> u64 {
    std::env::var("POLEWATCH_HEIGHT_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(10)
}

fn curve(rec: &mut Recognizer, fw: i32, fh: i32, heights: &[u32], tilt: f64) -> Vec<CurvePoint> {
    let n = trials();
    heights
        .iter()
        .map(|&h| {
            let (mut det, mut ok) = (0, 0);
            for i in 0..n {
                let (d, o) = trial(rec, fw, fh, h as i32, tilt, 1000 * h as u64 + i);
                det += d as u32;
                ok += o as u32;
            }
            CurvePoint { height_px: h, trials: n as u32, detected: det, read: ok }
        })
        .collect()
}

fn print(title: &str, c: &[CurvePoint]) {
    println!("\n{title}\n| plate height (px) | trials | detected | read exactly |\n|---:|---:|---:|---:|");
    for p in c {
        println!(
            "| {} | {} | {:.0} % | {:.0} % |",
            p.height_px,
            p.trials,
            100.0 * p.detected as f64 / p.trials as f64,
            100.0 * p.accuracy()
        );
    }
}

fn full() -> bool {
    std::env::var_os("POLEWATCH_HEIGHT_FULL").is_some()
}

/// The band the Cameras page recommends holds up against a fresh measurement, at 1080p and at 720p (the
/// band scales with the frame's width): inside it (its ends and its middle) the recognizer reads at least
/// 70 % of plates exactly (about 94 % measured at the ends: 70 % leaves room for 10 plates' chance); at half
/// its lower end it reads less than 80 %. Within the tilt the page accepts, a mid-band plate reads at
/// least 60 % exactly (about 90 % measured).
#[test]
fn the_recommended_plate_height_band_is_where_the_recognizer_reads() {
    let mut rec = recognizer();
    let heights: Vec<u32> = if full() {
        vec![8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 36, 40, 48, 64, 80, 100, 130, 160, 200, 240]
    } else {
        vec![12, 16, 20, 24, 28, 32, 48, 80, 130, 200]
    };
    let mut curves = Vec::new();
    for (fw, fh) in [(1920, 1080), (1280, 720)] {
        let c = curve(&mut rec, fw, fh, &heights, 0.0);
        print(&format!("{fw} × {fh}, plate level"), &c);
        let measured = aim::band_from_curve(&c, aim::BAND_ACCURACY);
        let band = aim::default_band(fw as u32, Some(640));
        println!(
            "band measured at {:.0} % exact reads: {measured:?}; recommended {band:?}",
            aim::BAND_ACCURACY * 100.0
        );
        curves.push((fw, band, c));
    }
    let tilts: Vec<f64> =
        if full() { vec![0.0, 3.0, 5.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0] } else { vec![0.0, 5.0, 10.0, 15.0] };
    let n = trials();
    let mid = 64;
    println!("\n1920 × 1080, plate {mid} px high, tilted\n| tilt (°) | read exactly |\n|---:|---:|");
    let mut tilt_ok = Vec::new();
    for &t in &tilts {
        let ok = (0..n).filter(|&i| trial(&mut rec, 1920, 1080, mid, t, 7000 + i + (t as u64) * 100).1).count();
        println!("| {t:.0} | {:.0} % |", 100.0 * ok as f64 / n as f64);
        tilt_ok.push((t, ok as f64 / n as f64));
    }

    let at = |c: &[CurvePoint], h: u32| {
        c.iter().filter(|p| p.height_px >= h).map(|p| (p.height_px, p.accuracy())).next().unwrap()
    };
    for (fw, [lo, hi], c) in &curves {
        for h in [*lo, (lo + hi) / 2, *hi] {
            let (m, a) = at(c, h);
            assert!(a >= 0.7, "{fw} wide: {h} px is in the band but {m} px reads {:.0} %", 100.0 * a);
        }
        let (m, a) = at(c, lo / 2);
        assert!(
            a < 0.8,
            "{fw} wide: {m} px, half the band's lower end, still reads {:.0} %: the band is too cautious",
            100.0 * a
        );
    }
    for (t, a) in tilt_ok {
        if t <= DEFAULT_MAX_TILT_DEG as f64 {
            assert!(a >= 0.6, "tilt {t}° (accepted) reads only {:.0} %", a * 100.0);
        }
    }
}
