//! The OCR's crop preparation (`polewatch::recognize::prepare`) on a rendered plate: deskew levels a tilted
//! plate and contrast stretching widens a dim plate's range. Moved out of the daemon's unit tests with the
//! renderer (issue 14); the assertions are unchanged.

use opencv::core::{self, Mat, Point2f, Rect, Scalar};
use opencv::imgproc;
use opencv::prelude::*;
use polewatch::recognize::prepare::{deskew, normalize_contrast, skew_degrees};
use polewatch_dev::recognize::render::{self, PlateStyle};

#[test]
fn deskew_levels_a_tilted_plate_and_contrast_stretch_widens_the_range() {
    let plate = render::plate("7KQX214", PlateStyle::Us, 100).unwrap();
    let mut canvas = Mat::new_rows_cols_with_default(200, 300, core::CV_8UC3, Scalar::all(60.0)).unwrap();
    plate.copy_to(&mut Mat::roi_mut(&mut canvas, Rect::new(50, 50, 200, 100)).unwrap()).unwrap();
    let m = imgproc::get_rotation_matrix_2d(Point2f::new(150.0, 100.0), 8.0, 1.0).unwrap();
    let mut tilted = Mat::default();
    imgproc::warp_affine(
        &canvas,
        &mut tilted,
        &m,
        canvas.size().unwrap(),
        imgproc::INTER_LINEAR,
        core::BORDER_REPLICATE,
        Scalar::default(),
    )
    .unwrap();
    let a = skew_degrees(&tilted).unwrap().expect("edges found");
    assert!((a.abs() - 8.0).abs() < 2.0, "estimated {a}");
    let level = skew_degrees(&deskew(&tilted).unwrap()).unwrap().unwrap_or(0.0);
    assert!(level.abs() < 2.0, "after deskew {level}");

    let mut dim = Mat::default();
    plate.convert_to(&mut dim, -1, 0.25, 20.0).unwrap();
    let spread = |m: &Mat| {
        // The daemon's private `gray`: a copy of a one-channel image, BGR to grey otherwise.
        let mut g = Mat::default();
        if m.channels() == 1 {
            g = m.try_clone().unwrap();
        } else {
            imgproc::cvt_color(m, &mut g, imgproc::COLOR_BGR2GRAY, 0).unwrap();
        }
        let (mut lo, mut hi) = (0.0, 0.0);
        core::min_max_loc(&g, Some(&mut lo), Some(&mut hi), None, None, &core::no_array()).unwrap();
        hi - lo
    };
    let (before, after) = (spread(&dim), spread(&normalize_contrast(&dim).unwrap()));
    assert!(after >= 200.0 && after > before * 2.0, "range {before} -> {after}");
}
