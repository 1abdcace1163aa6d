//! `polewatch-dev bench recognize`: frames per second on one core for 1080p frames the project renders
//! (three vehicles with plates 90–200 px wide): detector alone, and detector plus OCR on every plate;
//! and OCR alone per plate.

use crate::bench::print_figures;
use crate::config::ModelSet;
use crate::recognize::View;
use crate::recognize::render::{self, PlateStyle};
use anyhow::Context;
use opencv::core::{Mat, Scalar};
use std::time::Instant;

/// A 1080p scene with three plated vehicles, and the plates' boxes.
pub fn scene_1080p(seed: u64) -> anyhow::Result<(Mat, Vec<crate::recognize::BoxF>)> {
    let mut scene = render::road(1920, 1080, seed)?;
    let mut boxes = Vec::new();
    for (i, (text, style, x, y, w)) in [
        ("7KQX214", PlateStyle::Us, 420, 620, 200),
        ("BAC4F21", PlateStyle::Br, 1000, 520, 150),
        ("MUC4821", PlateStyle::Eu, 1560, 760, 170),
    ]
    .iter()
    .enumerate()
    {
        let p = render::plate(text, *style, 80)?;
        let body = Scalar::new(40.0 + 50.0 * i as f64, 60.0, 120.0, 0.0);
        let r = render::put_vehicle(&mut scene, &p, *x, *y, *w, 2.0 - 2.0 * i as f64, body)?;
        boxes.push(crate::recognize::BoxF { x: r.x as f32, y: r.y as f32, w: r.width as f32, h: r.height as f32 });
    }
    Ok((render::blur_and_noise(&scene, 3, 3.0, seed)?, boxes))
}

pub fn run(models: &ModelSet, frames: usize, json: bool) -> anyhow::Result<()> {
    opencv::core::set_num_threads(1)?;
    let mut rec = crate::bench::accuracy::recognizer_for(models)?;
    let (scene, boxes) = scene_1080p(11)?;
    let view = View::default();
    let mut figures = Vec::new();
    let n = frames.max(1);
    if rec.has_detector() {
        rec.detect(&scene, &view)?; // warm-up: first forward allocates
        let t = Instant::now();
        let mut found = 0;
        for _ in 0..n {
            found += rec.detect(&scene, &view)?.len();
        }
        let s = t.elapsed().as_secs_f64();
        figures.push(("detector_only_fps_per_core".to_string(), n as f64 / s, "frames/s"));
        figures.push(("detector_only_ms_per_1080p_frame".to_string(), s * 1e3 / n as f64, "ms"));
        figures.push(("plates_found_per_frame".to_string(), found as f64 / n as f64, "(of 3)"));
        let t = Instant::now();
        let mut reads = 0;
        for _ in 0..n {
            reads += rec.recognize(&scene, &view)?.reads.len();
        }
        let s = t.elapsed().as_secs_f64();
        figures.push(("detect_and_ocr_fps_per_core".to_string(), n as f64 / s, "frames/s"));
        figures.push(("detect_and_ocr_ms_per_1080p_frame".to_string(), s * 1e3 / n as f64, "ms"));
        figures.push(("plates_read_per_frame".to_string(), reads as f64 / n as f64, "(of 3)"));
    }
    let t = Instant::now();
    let calls = n * boxes.len();
    for _ in 0..n {
        for b in &boxes {
            rec.read_box(&scene, *b, "").context("OCR")?;
        }
    }
    figures.push(("ocr_ms_per_plate".to_string(), t.elapsed().as_secs_f64() * 1e3 / calls as f64, "ms"));
    print_figures(&figures, json);
    Ok(())
}
