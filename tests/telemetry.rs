//! Issue 16 §1, ALPR telemetry: frames the shipped recognizer reads well, then the same frames blurred
//! (defocus, a wet or iced lens), darkened (a dead IR illuminator, a blinded camera) and shifted (a camera
//! re-aimed or zoomed away). The recognizer-level signals move (fewer reads, smaller plates) and the
//! telemetry, fed as the daemon feeds it, raises `camera_degraded` for each, on its read-rate baseline or
//! its plate-height band.

use opencv::core::{Mat, Rect, Scalar, Size};
use opencv::prelude::*;
use polewatch::config;
use polewatch::observe::telemetry::{Camera, Change, Kind, Params, Reason};
use polewatch::recognize::{Recognizer, View};
use std::path::PathBuf;

/// Monday 2026-11-30 00:00 UTC, and an hour and a week in ms.
const MONDAY: i64 = 1_795_996_800_000;
const HOUR: i64 = 3_600_000;
const WEEK: i64 = 7 * 24 * HOUR;

fn recognizer() -> Recognizer {
    let set = config::load_model_set(&PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/polewatch.toml")).unwrap();
    Recognizer::new(set.detector.as_ref(), set.ocr.as_ref().unwrap(), config::DnnBackend::Cpu, 0.35, &[], 5).unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Condition {
    Clear,
    Blurred,
    Darkened,
    Shifted,
}

fn apply(scene: &Mat, c: Condition) -> Mat {
    let mut out = Mat::default();
    match c {
        Condition::Clear => out = scene.clone(),
        Condition::Blurred => opencv::imgproc::gaussian_blur_def(scene, &mut out, Size::new(41, 41), 14.0).unwrap(),
        // Night without the illuminator: 3 % of the light, and the sensor's noise at full gain.
        Condition::Darkened => {
            let mut dark = Mat::default();
            scene.convert_to(&mut dark, -1, 0.03, 0.0).unwrap();
            out = polewatch_dev::recognize::render::blur_and_noise(&dark, 1, 3.0, 7).unwrap();
        }
        Condition::Shifted => {
            // Re-aimed and zoomed out: the scene at half its size in a corner of the frame.
            let mut small = Mat::default();
            opencv::imgproc::resize(
                scene,
                &mut small,
                Size::new(scene.cols() / 2, scene.rows() / 2),
                0.0,
                0.0,
                opencv::imgproc::INTER_AREA,
            )
            .unwrap();
            out = Mat::new_rows_cols_with_default(scene.rows(), scene.cols(), scene.typ(), Scalar::all(90.0)).unwrap();
            small
                .copy_to(
                    &mut Mat::roi_mut(&mut out, Rect::new(scene.cols() - small.cols(), 0, small.cols(), small.rows()))
                        .unwrap(),
                )
                .unwrap();
        }
    }
    out
}

/// Confident plate reads and their heights, over the scenes under one condition.
fn signal(rec: &mut Recognizer, scenes: &[Mat], c: Condition) -> (u64, Vec<f32>) {
    let (mut reads, mut heights) = (0, Vec::new());
    for s in scenes {
        let r = rec.recognize(&apply(s, c), &View::default()).unwrap();
        for p in r.reads.iter().filter(|p| p.confidence >= 0.5) {
            reads += 1;
            heights.push(p.bbox.h);
        }
    }
    (reads, heights)
}

/// A 1080p road with three cars and US plates (one camera sees one kind of plate at about one distance; the
/// bench's scene mixes three plate shapes, whose heights differ by the shape alone).
fn scene(seed: u64) -> Mat {
    use polewatch_dev::recognize::render::{self, PlateStyle};
    let mut scene = render::road(1920, 1080, seed).unwrap();
    let cars = [("7KQX214", 420, 620, 200), ("4TRM882", 1000, 560, 190), ("8PWT417", 1540, 720, 210)];
    for (i, (text, x, y, w)) in cars.into_iter().enumerate() {
        let p = render::plate(text, PlateStyle::Us, 80).unwrap();
        render::put_vehicle(
            &mut scene,
            &p,
            x,
            y,
            w,
            1.5 - 1.5 * i as f64,
            Scalar::new(40.0 + 50.0 * i as f64, 60.0, 120.0, 0.0),
        )
        .unwrap();
    }
    render::blur_and_noise(&scene, 3, 3.0, seed).unwrap()
}

fn median(v: &[f32]) -> f32 {
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

/// One hour of a camera as the daemon reports it: a frame every 30 s, `reads` reads, and the plates'
/// heights. Returns the changes raised within the hour and when it ends.
fn hour(cam: &mut Camera, start: i64, reads: u64, heights: &[f32], p: &Params) -> Vec<Change> {
    let mut out = Vec::new();
    for s in 0..120 {
        out.extend(cam.frame(start + s * 30_000, p));
    }
    for r in 0..reads {
        out.extend(cam.read(start + 1 + (r as i64 * HOUR) / reads as i64, p));
    }
    // Each pass is seen in several frames.
    for _ in 0..3 {
        for h in heights {
            out.extend(cam.plate(*h, p));
        }
    }
    out.extend(cam.tick(start + HOUR, p));
    out
}

#[test]
fn blurred_darkened_and_shifted_frames_move_the_signals_and_raise_camera_degraded() {
    let mut rec = recognizer();
    let scenes: Vec<Mat> = (1..=4).map(scene).collect();

    let (clear_reads, clear_h) = signal(&mut rec, &scenes, Condition::Clear);
    let mut seen = vec![(Condition::Clear, clear_reads, median(&clear_h))];
    assert!(clear_reads >= 8, "the clear scenes are read: {clear_reads} of 12 plates");
    // The band an installer sets from the clear view.
    let band = (median(&clear_h) as f64 * 0.6, median(&clear_h) as f64 * 1.8);
    let p = Params {
        min_plate_height_px: band.0,
        max_plate_height_px: band.1,
        height_window: 5,
        rate_drop_ratio: 0.5,
        min_expected_reads_per_hour: 4.0,
        learn_weeks: 2,
    };

    // Two weeks of Monday 08:00 in the clear: learnt, nothing raised.
    let mut cam = Camera::default();
    for w in 0..2 {
        let ch = hour(&mut cam, MONDAY + w * WEEK + 8 * HOUR, clear_reads, &clear_h, &p);
        assert!(ch.is_empty(), "clear heights {clear_h:?}, band {band:?}: {ch:?}");
    }
    assert_eq!(cam.baseline.expected(8, &p), Some(clear_reads as f64));

    for (i, c) in [Condition::Blurred, Condition::Darkened, Condition::Shifted].into_iter().enumerate() {
        let (reads, heights) = signal(&mut rec, &scenes, c);
        seen.push((c, reads, median(&heights)));
        let mut bad = cam.clone();
        let changes = hour(&mut bad, MONDAY + (2 + i as i64) * WEEK + 8 * HOUR, reads, &heights, &p);
        let kinds: Vec<Kind> = changes
            .iter()
            .filter_map(|ch| match ch {
                Change::Degraded(r) => Some(r.kind()),
                Change::Recovered(_) => None,
            })
            .collect();
        eprintln!(
            "{c:?}: {reads} reads (clear {clear_reads}), median height {:.0} px (clear {:.0}): {changes:?}",
            median(&heights),
            median(&clear_h)
        );
        match c {
            Condition::Blurred | Condition::Darkened => {
                assert!(reads * 2 < clear_reads, "{c:?}: the recognizer's reads drop ({reads} of {clear_reads})");
                assert!(kinds.contains(&Kind::ReadRate), "{c:?}: camera_degraded on the read rate: {changes:?}");
                assert!(
                    changes
                        .iter()
                        .any(|ch| matches!(ch, Change::Degraded(Reason::ReadRateLow { reads: r, .. }) if *r == reads))
                );
            }
            Condition::Shifted => {
                assert!(!heights.is_empty(), "some plates are still read after the shift");
                assert!(
                    (median(&heights) as f64) < band.0,
                    "plates shrink out of the band: {} px from {} px",
                    median(&heights),
                    median(&clear_h)
                );
                assert!(kinds.contains(&Kind::PlateHeight), "camera_degraded on the plate height: {changes:?}");
            }
            Condition::Clear => unreachable!(),
        }
        // The clear view back: the camera recovers, on each kind raised.
        let back = hour(&mut bad, MONDAY + (2 + i as i64) * WEEK + 9 * HOUR + WEEK, 0, &clear_h, &p);
        assert!(
            back.iter().any(|ch| matches!(ch, Change::Recovered(Kind::PlateHeight)))
                || !kinds.contains(&Kind::PlateHeight),
            "{back:?}"
        );
        let rate_back = hour(&mut bad, MONDAY + (3 + i as i64) * WEEK + 8 * HOUR + WEEK, clear_reads, &clear_h, &p);
        assert!(
            rate_back.iter().any(|ch| matches!(ch, Change::Recovered(Kind::ReadRate)))
                || !kinds.contains(&Kind::ReadRate),
            "{rate_back:?}"
        );
        assert!(bad.degraded().is_empty(), "{:?}", bad.degraded());
    }
    eprintln!("condition, confident reads of 12 plates, median plate height px: {seen:?}");
}
