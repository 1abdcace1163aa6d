//! Plates and road scenes drawn by the project itself, with fonts from Debian packages: test fixtures,
//! the start-up check image and the demo video. Nothing here comes from a real vehicle.

use opencv::core::{self, Mat, Point, Point2f, Rect, Scalar, Size, Vector};
use opencv::prelude::*;
use opencv::{freetype, imgproc};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlateStyle {
    /// US: light plate, dark highway lettering, state name above.
    Us,
    /// EU: white plate, blue band on the left, DIN lettering.
    Eu,
    /// Brazil (Mercosur): white plate, blue band across the top.
    Br,
}

/// Fonts the renderer uses, from Debian packages (fonts-roadgeek, fonts-opendin, fonts-liberation).
const US_FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/roadgeek/RG2014D.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
];
const DIN_FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/opendin/OSP-DIN.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSansNarrow-Bold.ttf",
];
const LABEL_FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("no plate font found; install fonts-roadgeek, fonts-opendin or fonts-liberation (tried {0})")]
    NoFont(String),
    #[error("OpenCV: {0}")]
    Cv(#[from] opencv::Error),
}

fn first_font(candidates: &[&str]) -> Result<PathBuf, RenderError> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file()).ok_or_else(|| RenderError::NoFont(candidates.join(", ")))
}

fn font(path: &Path) -> Result<core::Ptr<freetype::FreeType2>, RenderError> {
    let mut ft = freetype::create_free_type2()?;
    ft.load_font_data(path, 0)?;
    Ok(ft)
}

/// Text centred in `area`, at most `height` pixels tall and never wider than the area.
fn centred_text(
    img: &mut Mat,
    ft: &mut core::Ptr<freetype::FreeType2>,
    text: &str,
    area: Rect,
    height: i32,
    color: Scalar,
) -> Result<(), RenderError> {
    let mut h = height;
    let mut base = 0;
    let mut size = ft.get_text_size(text, h, -1, &mut base)?;
    if size.width > area.width {
        h = (h as f32 * area.width as f32 / size.width as f32) as i32;
        size = ft.get_text_size(text, h, -1, &mut base)?;
    }
    let org = Point::new(area.x + (area.width - size.width) / 2, area.y + (area.height + size.height) / 2);
    ft.put_text(img, text, org, h, color, -1, imgproc::LINE_AA, true)?;
    Ok(())
}

/// A plate image (BGR, 4:1 wide for one-row EU plates, 2:1 for US and BR) whose characters are
/// `text` (A–Z, 0–9; a space draws a gap). `height` is the plate's height in pixels.
pub fn plate(text: &str, style: PlateStyle, height: i32) -> Result<Mat, RenderError> {
    let h = height.max(16);
    let w = match style {
        PlateStyle::Us => h * 2,
        PlateStyle::Br => (h as f32 * 3.07) as i32,
        PlateStyle::Eu => (h as f32 * 4.7) as i32,
    };
    let white = Scalar::new(245.0, 245.0, 245.0, 0.0);
    let mut img = Mat::new_rows_cols_with_default(h, w, core::CV_8UC3, white)?;
    let black = Scalar::new(20.0, 20.0, 20.0, 0.0);
    let blue = Scalar::new(160.0, 60.0, 0.0, 0.0);
    let border = (h / 30).max(1);
    imgproc::rectangle(&mut img, Rect::new(0, 0, w, h), black, border, imgproc::LINE_8, 0)?;
    match style {
        PlateStyle::Us => {
            let mut label = font(&first_font(&LABEL_FONTS)?)?;
            let mut main = font(&first_font(&US_FONTS)?)?;
            let red = Scalar::new(40.0, 30.0, 180.0, 0.0);
            centred_text(&mut img, &mut label, "POLEWATCH", Rect::new(0, border, w, h / 5), h / 6, red)?;
            centred_text(
                &mut img,
                &mut main,
                text,
                Rect::new(w / 20, h / 5, w - w / 10, h * 3 / 5),
                h * 52 / 100,
                Scalar::new(90.0, 30.0, 10.0, 0.0),
            )?;
            centred_text(&mut img, &mut label, "DEMO STATE", Rect::new(0, h * 4 / 5, w, h / 5 - border), h / 8, red)?;
        }
        PlateStyle::Eu => {
            let mut main = font(&first_font(&DIN_FONTS)?)?;
            let band = w / 12;
            imgproc::rectangle(
                &mut img,
                Rect::new(border, border, band, h - 2 * border),
                blue,
                -1,
                imgproc::LINE_8,
                0,
            )?;
            let mut label = font(&first_font(&LABEL_FONTS)?)?;
            centred_text(&mut img, &mut label, "D", Rect::new(border, h / 2, band, h / 2 - border), h / 3, white)?;
            centred_text(
                &mut img,
                &mut main,
                text,
                Rect::new(band + w / 30, border, w - band - w / 15, h - 2 * border),
                h * 72 / 100,
                black,
            )?;
        }
        PlateStyle::Br => {
            let mut main = font(&first_font(&DIN_FONTS)?)?;
            let band = h / 4;
            imgproc::rectangle(
                &mut img,
                Rect::new(border, border, w - 2 * border, band),
                blue,
                -1,
                imgproc::LINE_8,
                0,
            )?;
            let mut label = font(&first_font(&LABEL_FONTS)?)?;
            centred_text(&mut img, &mut label, "BRASIL", Rect::new(0, border, w, band), band * 7 / 10, white)?;
            centred_text(
                &mut img,
                &mut main,
                text,
                Rect::new(w / 20, band + border, w - w / 10, h - band - 2 * border),
                h * 60 / 100,
                black,
            )?;
        }
    }
    Ok(img)
}

/// A road scene `w` × `h`: asphalt with lane marks and texture, deterministic for a seed.
pub fn road(w: i32, h: i32, seed: u64) -> Result<Mat, RenderError> {
    let mut img = Mat::new_rows_cols_with_default(h, w, core::CV_8UC3, Scalar::all(90.0))?;
    // Sky/buildings band at the top, asphalt below.
    imgproc::rectangle(
        &mut img,
        Rect::new(0, 0, w, h / 4),
        Scalar::new(150.0, 130.0, 110.0, 0.0),
        -1,
        imgproc::LINE_8,
        0,
    )?;
    for i in 0..6 {
        let x = w * i / 6 + w / 40;
        imgproc::rectangle(
            &mut img,
            Rect::new(x, h / 12, w / 9, h / 6),
            Scalar::new(70.0 + 10.0 * i as f64, 80.0, 95.0, 0.0),
            -1,
            imgproc::LINE_8,
            0,
        )?;
    }
    for lane in 1..4 {
        let x = w * lane / 4;
        for k in 0..8 {
            let y = h / 4 + k * h / 9;
            imgproc::line(
                &mut img,
                Point::new(x, y),
                Point::new(x + w / 200, y + h / 20),
                Scalar::all(220.0),
                (w / 300).max(2),
                imgproc::LINE_AA,
                0,
            )?;
        }
    }
    let mut noise = Mat::new_rows_cols_with_default(h, w, core::CV_8UC3, Scalar::all(0.0))?;
    core::set_rng_seed(seed as i32)?;
    core::randn(&mut noise, &Scalar::all(0.0), &Scalar::all(6.0))?;
    let mut out = Mat::default();
    core::add(&img, &noise, &mut out, &core::no_array(), -1)?;
    Ok(out)
}

/// Draws a vehicle (dark body, lighter window) with `plate` on its back at centre (`cx`, `cy`), the plate
/// `plate_w` pixels wide, tilted by `angle_deg`. Returns the plate's box in the scene.
pub fn put_vehicle(
    scene: &mut Mat,
    plate: &Mat,
    cx: i32,
    cy: i32,
    plate_w: i32,
    angle_deg: f64,
    body: Scalar,
) -> Result<Rect, RenderError> {
    let pw = plate_w.max(8);
    let ph = (pw as f32 * plate.rows() as f32 / plate.cols() as f32).round().max(4.0) as i32;
    let (bw, bh) = (pw * 4, pw * 3);
    let body_rect = Rect::new(cx - bw / 2, cy - bh * 2 / 3, bw, bh);
    imgproc::rectangle(scene, body_rect, body, -1, imgproc::LINE_AA, 0)?;
    let window = Rect::new(cx - bw * 2 / 5, cy - bh * 3 / 5, bw * 4 / 5, bh / 3);
    imgproc::rectangle(scene, window, Scalar::new(60.0, 50.0, 45.0, 0.0), -1, imgproc::LINE_AA, 0)?;
    for dx in [-bw * 2 / 5, bw * 2 / 5 - bw / 8] {
        imgproc::rectangle(
            scene,
            Rect::new(cx + dx, cy - bh / 8, bw / 8, bh / 14),
            Scalar::new(30.0, 30.0, 200.0, 0.0),
            -1,
            imgproc::LINE_AA,
            0,
        )?;
    }
    let mut small = Mat::default();
    imgproc::resize(plate, &mut small, Size::new(pw, ph), 0.0, 0.0, imgproc::INTER_AREA)?;
    // Rotate the plate about its centre into the scene through a mask, so corners stay sharp.
    let src = Vector::<Point2f>::from_slice(&[
        Point2f::new(0.0, 0.0),
        Point2f::new(pw as f32, 0.0),
        Point2f::new(0.0, ph as f32),
    ]);
    let (s, c) = angle_deg.to_radians().sin_cos();
    let rot = |x: f32, y: f32| {
        let (dx, dy) = (x - pw as f32 / 2.0, y - ph as f32 / 2.0);
        Point2f::new(cx as f32 + dx * c as f32 - dy * s as f32, cy as f32 + dx * s as f32 + dy * c as f32)
    };
    let dst = Vector::<Point2f>::from_slice(&[rot(0.0, 0.0), rot(pw as f32, 0.0), rot(0.0, ph as f32)]);
    let m = imgproc::get_affine_transform(&src, &dst)?;
    let size = scene.size()?;
    let mut warped = Mat::default();
    imgproc::warp_affine(
        &small,
        &mut warped,
        &m,
        size,
        imgproc::INTER_LINEAR,
        core::BORDER_CONSTANT,
        Scalar::all(0.0),
    )?;
    let ones = Mat::new_rows_cols_with_default(ph, pw, core::CV_8UC1, Scalar::all(255.0))?;
    let mut mask = Mat::default();
    imgproc::warp_affine(&ones, &mut mask, &m, size, imgproc::INTER_NEAREST, core::BORDER_CONSTANT, Scalar::all(0.0))?;
    warped.copy_to_masked(scene, &mask)?;
    let corners = [rot(0.0, 0.0), rot(pw as f32, 0.0), rot(0.0, ph as f32), rot(pw as f32, ph as f32)];
    let x0 = corners.iter().map(|p| p.x).fold(f32::MAX, f32::min);
    let y0 = corners.iter().map(|p| p.y).fold(f32::MAX, f32::min);
    let x1 = corners.iter().map(|p| p.x).fold(f32::MIN, f32::max);
    let y1 = corners.iter().map(|p| p.y).fold(f32::MIN, f32::max);
    Ok(Rect::new(x0.floor() as i32, y0.floor() as i32, (x1 - x0).ceil() as i32, (y1 - y0).ceil() as i32))
}

/// Motion blur along x over `len` pixels and gaussian noise: what a pole camera sees of a moving car.
pub fn blur_and_noise(img: &Mat, len: i32, noise_sigma: f64, seed: u64) -> Result<Mat, RenderError> {
    let mut out = img.try_clone()?;
    if len > 1 {
        let k = Mat::new_rows_cols_with_default(1, len, core::CV_32F, Scalar::all(1.0 / len as f64))?;
        let mut b = Mat::default();
        imgproc::filter_2d(&out, &mut b, -1, &k, Point::new(-1, -1), 0.0, core::BORDER_REPLICATE)?;
        out = b;
    }
    if noise_sigma > 0.0 {
        let mut n = Mat::new_rows_cols_with_default(out.rows(), out.cols(), core::CV_16SC3, Scalar::all(0.0))?;
        core::set_rng_seed(seed as i32)?;
        core::randn(&mut n, &Scalar::all(0.0), &Scalar::all(noise_sigma))?;
        let mut wide = Mat::default();
        out.convert_to(&mut wide, core::CV_16SC3, 1.0, 0.0)?;
        let mut sum = Mat::default();
        core::add(&wide, &n, &mut sum, &core::no_array(), -1)?;
        sum.convert_to(&mut out, core::CV_8UC3, 1.0, 0.0)?;
    }
    Ok(out)
}

/// The start-up check scene: its plate text and box (x, y, w, h).
/// (The daemon's constants: it embeds the scene, not this code.)
pub use super::smoke::{BOX as SMOKE_BOX, TEXT as SMOKE_TEXT};
/// A plainly readable size: the check is for models that compute garbage, not for hard plates.
const SMOKE_PLATE_W: i32 = 150;

/// The scene embedded for the start-up check: one car with a US-style plate [`SMOKE_PLATE_W`] px wide in a
/// 640 × 360 road scene. Returns the scene and the plate's box.
pub fn smoke_scene() -> Result<(Mat, Rect), RenderError> {
    let mut scene = road(640, 360, 7)?;
    let p = plate(SMOKE_TEXT, PlateStyle::Us, 64)?;
    let r = put_vehicle(&mut scene, &p, 330, 250, SMOKE_PLATE_W, 0.0, Scalar::new(40.0, 40.0, 150.0, 0.0))?;
    Ok((blur_and_noise(&scene, 1, 2.0, 3)?, r))
}
