//! Motion gate (R-IN2): skips analysis of frames in which nothing moved inside the region of interest.
//!
//! Each frame is reduced to a coarse grey grid (64 cells along its longer side, each the mean of 16
//! sampled pixels, so the cost does not grow with the resolution and sensor noise averages out). A cell
//! has changed when its grey level moved by more than [`PIXEL_DELTA`] since the previous frame; the frame
//! has motion when at least `threshold` of the grid cells inside the region of interest changed. The first
//! frame, and the first after a change of size, always passes.
//!
//! The camera applies it before queueing (`motion_gate = true`), so the recognizer sees only frames worth
//! analysing; skipped frames are counted in `CameraStats::frames_gated`.

use super::{Frame, PixelFormat};
use crate::recognize::geometry::in_polygon;

/// Grey levels (0–255) a cell must move by to count as changed: above sensor noise and compression
/// flicker, below a plate or car entering the cell.
pub const PIXEL_DELTA: u8 = 12;
const GRID_LONG: u32 = 64;
const SAMPLES: u32 = 4;

pub struct MotionGate {
    threshold: f64,
    roi: Vec<[u32; 2]>,
    prev: Option<Grid>,
}

struct Grid {
    frame: (u32, u32),
    cols: u32,
    rows: u32,
    grey: Vec<u8>,
    /// Cells whose centre lies inside the region of interest.
    mask: Vec<bool>,
}

impl MotionGate {
    /// `threshold`: share of the region's cells that must change (0 < t <= 1); `roi`: polygon in frame
    /// pixels, empty for the whole frame.
    pub fn new(threshold: f64, roi: &[[u32; 2]]) -> MotionGate {
        MotionGate { threshold, roi: roi.to_vec(), prev: None }
    }

    /// Whether the frame is worth analysing (something moved since the previous frame).
    pub fn should_analyse(&mut self, f: &Frame) -> bool {
        let Some(mut grid) = Grid::of(f) else { return true };
        let motion = match &self.prev {
            Some(p) if p.frame == grid.frame => {
                let (changed, inside) = p
                    .grey
                    .iter()
                    .zip(&grid.grey)
                    .zip(&p.mask)
                    .filter(|&(_, &m)| m)
                    .fold((0u32, 0u32), |(c, n), ((a, b), _)| (c + u32::from(a.abs_diff(*b) > PIXEL_DELTA), n + 1));
                inside == 0 || f64::from(changed) >= self.threshold * f64::from(inside)
            }
            _ => {
                grid.mask = grid.mask_for(&self.roi);
                self.prev = None;
                true
            }
        };
        if let Some(p) = self.prev.take() {
            grid.mask = p.mask;
        }
        self.prev = Some(grid);
        motion
    }
}

impl Grid {
    fn of(f: &Frame) -> Option<Grid> {
        let (w, h) = (f.width, f.height);
        if w == 0 || h == 0 || f.data.len() < f.format.len(w, h) {
            return None;
        }
        let (cols, rows) = if w >= h {
            (GRID_LONG.min(w), (GRID_LONG * h / w).clamp(1, h))
        } else {
            ((GRID_LONG * w / h).clamp(1, w), GRID_LONG.min(h))
        };
        let mut grey = Vec::with_capacity((cols * rows) as usize);
        for r in 0..rows {
            for c in 0..cols {
                let mut sum = 0u32;
                for sy in 0..SAMPLES {
                    for sx in 0..SAMPLES {
                        // Sample points spread evenly inside the cell.
                        let x = ((c * SAMPLES + sx) * 2 + 1) * w / (cols * SAMPLES * 2);
                        let y = ((r * SAMPLES + sy) * 2 + 1) * h / (rows * SAMPLES * 2);
                        let i = y as usize * w as usize + x as usize;
                        sum += match f.format {
                            // The Y plane is the grey level already.
                            PixelFormat::I420 => u32::from(f.data[i]),
                            PixelFormat::Bgr => {
                                let (b, g, r) = (
                                    u32::from(f.data[3 * i]),
                                    u32::from(f.data[3 * i + 1]),
                                    u32::from(f.data[3 * i + 2]),
                                );
                                (29 * b + 150 * g + 77 * r) >> 8
                            }
                        };
                    }
                }
                grey.push((sum / (SAMPLES * SAMPLES)) as u8);
            }
        }
        Some(Grid { frame: (w, h), cols, rows, grey, mask: Vec::new() })
    }

    fn mask_for(&self, roi: &[[u32; 2]]) -> Vec<bool> {
        let (w, h) = (f64::from(self.frame.0), f64::from(self.frame.1));
        let mut mask = Vec::with_capacity(self.grey.len());
        for r in 0..self.rows {
            for c in 0..self.cols {
                let x = (f64::from(c) + 0.5) * w / f64::from(self.cols);
                let y = (f64::from(r) + 0.5) * h / f64::from(self.rows);
                mask.push(roi.len() < 3 || in_polygon(roi, x as f32, y as f32));
            }
        }
        // A region smaller than one cell would never see motion: gate on the whole frame instead.
        if !mask.iter().any(|&m| m) {
            mask.iter_mut().for_each(|m| *m = true);
        }
        mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A grey 320×240 frame with a white box at (x, y), 40×30 pixels.
    fn frame(boxed: Option<(u32, u32)>, noise: u8) -> Frame {
        let (w, h) = (320u32, 240u32);
        let mut data = vec![0u8; (w * h * 3) as usize];
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                let v = 100u8.wrapping_add(((x * 7 + y * 13) % 2) as u8 * noise);
                let v = match boxed {
                    Some((bx, by)) if (bx..bx + 40).contains(&x) && (by..by + 30).contains(&y) => 250,
                    _ => v,
                };
                data[i..i + 3].copy_from_slice(&[v, v, v]);
            }
        }
        Frame { camera: "c".into(), seq: 0, captured_at_ms: 0, width: w, height: h, format: PixelFormat::Bgr, data }
    }

    /// The same grey scene as the cameras hand it over: Y is the grey level, U and V neutral.
    fn as_i420(f: Frame) -> Frame {
        let mut data: Vec<u8> = f.data.iter().step_by(3).copied().collect();
        data.resize(PixelFormat::I420.len(f.width, f.height), 128);
        Frame { format: PixelFormat::I420, data, ..f }
    }

    #[test]
    fn an_i420_frame_is_gated_as_its_bgr_twin() {
        let scenes = [(None, 0), (None, 6), (Some((10, 10)), 0), (Some((10, 10)), 0), (Some((200, 150)), 0)];
        let mut bgr = MotionGate::new(0.01, &[]);
        let mut yuv = MotionGate::new(0.01, &[]);
        let a: Vec<bool> = scenes.iter().map(|&(b, n)| bgr.should_analyse(&frame(b, n))).collect();
        let b: Vec<bool> = scenes.iter().map(|&(b, n)| yuv.should_analyse(&as_i420(frame(b, n)))).collect();
        assert_eq!(a, vec![true, false, true, false, true]);
        assert_eq!(a, b);
    }

    #[test]
    fn still_frames_are_skipped_and_a_moving_box_passes() {
        let mut g = MotionGate::new(0.01, &[]);
        assert!(g.should_analyse(&frame(None, 0)), "the first frame always passes");
        assert!(!g.should_analyse(&frame(None, 6)), "noise below the pixel delta is no motion");
        assert!(g.should_analyse(&frame(Some((10, 10)), 0)));
        assert!(!g.should_analyse(&frame(Some((10, 10)), 0)), "a box that stays put is no motion");
        assert!(g.should_analyse(&frame(Some((200, 150)), 0)));
    }

    #[test]
    fn motion_outside_the_region_of_interest_is_ignored() {
        // Right half only.
        let mut g = MotionGate::new(0.01, &[[160, 0], [320, 0], [320, 240], [160, 240]]);
        assert!(g.should_analyse(&frame(None, 0)));
        assert!(!g.should_analyse(&frame(Some((10, 100)), 0)), "box in the left half");
        assert!(g.should_analyse(&frame(Some((250, 100)), 0)), "box in the right half");
    }

    #[test]
    fn the_threshold_sets_how_much_must_change() {
        // The 40×30 box covers 8×8 = 64 of 64×48 = 3072 cells (about 2%), changed twice (leaves and
        // arrives) when it moves: about 4% of cells.
        let mut strict = MotionGate::new(0.10, &[]);
        assert!(strict.should_analyse(&frame(Some((10, 10)), 0)));
        assert!(!strict.should_analyse(&frame(Some((200, 150)), 0)));
        let mut loose = MotionGate::new(0.03, &[]);
        assert!(loose.should_analyse(&frame(Some((10, 10)), 0)));
        assert!(loose.should_analyse(&frame(Some((200, 150)), 0)));
    }

    #[test]
    fn a_short_buffer_or_new_size_is_analysed() {
        let mut g = MotionGate::new(0.01, &[]);
        let mut f = frame(None, 0);
        assert!(g.should_analyse(&f));
        f.data.truncate(10);
        assert!(g.should_analyse(&f));
        let small = Frame { width: 16, height: 8, data: vec![0; 16 * 8 * 3], ..frame(None, 0) };
        assert!(g.should_analyse(&small));
        assert!(!g.should_analyse(&small));
    }
}
