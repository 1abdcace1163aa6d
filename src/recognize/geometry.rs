//! Boxes, overlap and the letterbox that maps a frame into a network input and back. Pure arithmetic.

/// An axis-aligned box in pixels: top-left corner, width and height.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct BoxF {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl BoxF {
    pub fn from_center(cx: f32, cy: f32, w: f32, h: f32) -> BoxF {
        BoxF { x: cx - w / 2.0, y: cy - h / 2.0, w, h }
    }

    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    pub fn center(&self) -> (f32, f32) {
        (self.x + self.w / 2.0, self.y + self.h / 2.0)
    }

    pub fn iou(&self, o: &BoxF) -> f32 {
        let x0 = self.x.max(o.x);
        let y0 = self.y.max(o.y);
        let x1 = (self.x + self.w).min(o.x + o.w);
        let y1 = (self.y + self.h).min(o.y + o.h);
        let inter = (x1 - x0).max(0.0) * (y1 - y0).max(0.0);
        let union = self.area() + o.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// The part inside a `width` × `height` image; `None` when nothing is left.
    pub fn clip(&self, width: f32, height: f32) -> Option<BoxF> {
        let x0 = self.x.max(0.0);
        let y0 = self.y.max(0.0);
        let x1 = (self.x + self.w).min(width);
        let y1 = (self.y + self.h).min(height);
        (x1 - x0 >= 1.0 && y1 - y0 >= 1.0).then_some(BoxF { x: x0, y: y0, w: x1 - x0, h: y1 - y0 })
    }

    /// Grown by `mx` of its width on the left and right and `my` of its height above and below.
    pub fn with_margin(&self, mx: f32, my: f32) -> BoxF {
        BoxF {
            x: self.x - self.w * mx,
            y: self.y - self.h * my,
            w: self.w * (1.0 + 2.0 * mx),
            h: self.h * (1.0 + 2.0 * my),
        }
    }

    /// Integer pixel box as `[x, y, w, h]`.
    pub fn to_pixels(&self) -> [u32; 4] {
        [
            self.x.max(0.0).round() as u32,
            self.y.max(0.0).round() as u32,
            self.w.max(0.0).round() as u32,
            self.h.max(0.0).round() as u32,
        ]
    }
}

/// Indices of the boxes kept by greedy non-maximum suppression, strongest first.
pub fn nms(boxes: &[BoxF], scores: &[f32], iou_threshold: f32) -> Vec<usize> {
    let mut order: Vec<usize> = (0..boxes.len().min(scores.len())).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut keep: Vec<usize> = Vec::new();
    for i in order {
        if keep.iter().all(|&k| boxes[k].iou(&boxes[i]) <= iou_threshold) {
            keep.push(i);
        }
    }
    keep
}

/// Scale-and-pad that puts a `src_w` × `src_h` image centred into `dst_w` × `dst_h`, aspect kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub scale: f32,
    pub pad_x: f32,
    pub pad_y: f32,
    /// Size of the scaled image inside the canvas.
    pub inner_w: u32,
    pub inner_h: u32,
}

impl Letterbox {
    pub fn new(src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> Letterbox {
        let scale = (dst_w as f32 / src_w.max(1) as f32).min(dst_h as f32 / src_h.max(1) as f32);
        let inner_w = ((src_w as f32 * scale).round() as u32).clamp(1, dst_w);
        let inner_h = ((src_h as f32 * scale).round() as u32).clamp(1, dst_h);
        let pad_x = ((dst_w - inner_w) / 2) as f32;
        let pad_y = ((dst_h - inner_h) / 2) as f32;
        Letterbox { scale, pad_x, pad_y, inner_w, inner_h }
    }

    /// A box in canvas pixels back in source pixels.
    pub fn to_source(&self, b: BoxF) -> BoxF {
        BoxF {
            x: (b.x - self.pad_x) / self.scale,
            y: (b.y - self.pad_y) / self.scale,
            w: b.w / self.scale,
            h: b.h / self.scale,
        }
    }
}

/// Whether a point lies inside a polygon (even-odd rule); an empty polygon holds every point.
pub fn in_polygon(poly: &[[u32; 2]], x: f32, y: f32) -> bool {
    if poly.len() < 3 {
        return true;
    }
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let (xi, yi) = (poly[i][0] as f32, poly[i][1] as f32);
        let (xj, yj) = (poly[j][0] as f32, poly[j][1] as f32);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

fn orient(a: [f64; 2], b: [f64; 2], c: [f64; 2]) -> f64 {
    (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
}

fn on_segment(a: [f64; 2], b: [f64; 2], p: [f64; 2]) -> bool {
    p[0] >= a[0].min(b[0]) && p[0] <= a[0].max(b[0]) && p[1] >= a[1].min(b[1]) && p[1] <= a[1].max(b[1])
}

/// Whether segments `ab` and `cd` meet (crossing, touching or overlapping).
pub fn segments_meet(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let (o1, o2, o3, o4) = (orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b));
    if o1 * o2 < 0.0 && o3 * o4 < 0.0 {
        return true;
    }
    (o1 == 0.0 && on_segment(a, b, c))
        || (o2 == 0.0 && on_segment(a, b, d))
        || (o3 == 0.0 && on_segment(c, d, a))
        || (o4 == 0.0 && on_segment(c, d, b))
}

/// The first pair of non-adjacent edges of a closed polygon that meet: a figure of eight, whose inside
/// is not what was drawn (edge i runs from point i to point i + 1).
pub fn crossing(p: &[[f64; 2]]) -> Option<(usize, usize)> {
    let n = p.len();
    for i in 0..n {
        for j in i + 1..n {
            let adjacent = j == i + 1 || (i == 0 && j == n - 1);
            if !adjacent && segments_meet(p[i], p[(i + 1) % n], p[j], p[(j + 1) % n]) {
                return Some((i, j));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_of_same_disjoint_and_half() {
        let a = BoxF { x: 0.0, y: 0.0, w: 10.0, h: 10.0 };
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&BoxF { x: 20.0, y: 0.0, w: 10.0, h: 10.0 }), 0.0);
        let b = BoxF { x: 5.0, y: 0.0, w: 10.0, h: 10.0 };
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
    }

    #[test]
    fn nms_keeps_strongest_of_overlapping_and_separate_boxes() {
        let boxes = [
            BoxF { x: 0.0, y: 0.0, w: 10.0, h: 10.0 },
            BoxF { x: 1.0, y: 0.0, w: 10.0, h: 10.0 },
            BoxF { x: 50.0, y: 50.0, w: 10.0, h: 10.0 },
        ];
        assert_eq!(nms(&boxes, &[0.5, 0.9, 0.3], 0.45), vec![1, 2]);
    }

    #[test]
    fn letterbox_round_trip_of_a_1080p_frame() {
        let lb = Letterbox::new(1920, 1080, 640, 640);
        assert!((lb.scale - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!((lb.inner_w, lb.inner_h), (640, 360));
        assert_eq!(lb.pad_y, 140.0);
        let canvas = BoxF { x: 100.0, y: 240.0, w: 40.0, h: 20.0 };
        let src = lb.to_source(canvas);
        assert!((src.x - 300.0).abs() < 1e-3 && (src.y - 300.0).abs() < 1e-3 && (src.w - 120.0).abs() < 1e-3);
    }

    #[test]
    fn clip_and_margin() {
        let b = BoxF { x: -5.0, y: 10.0, w: 20.0, h: 10.0 };
        assert_eq!(b.clip(100.0, 100.0), Some(BoxF { x: 0.0, y: 10.0, w: 15.0, h: 10.0 }));
        assert_eq!(BoxF { x: 200.0, y: 0.0, w: 5.0, h: 5.0 }.clip(100.0, 100.0), None);
        let m = BoxF { x: 100.0, y: 100.0, w: 100.0, h: 50.0 }.with_margin(0.05, 0.1);
        assert!(
            (m.x - 95.0).abs() < 1e-3
                && (m.y - 95.0).abs() < 1e-3
                && (m.w - 110.0).abs() < 1e-3
                && (m.h - 60.0).abs() < 1e-3
        );
    }

    #[test]
    fn polygon_membership() {
        let sq = [[0, 0], [100, 0], [100, 100], [0, 100]];
        assert!(in_polygon(&sq, 50.0, 50.0));
        assert!(!in_polygon(&sq, 150.0, 50.0));
        assert!(in_polygon(&[], 1e6, 1e6));
    }
}
