//! The element's pure parts: a mapped video frame to packed BGR, and a read to the fields it carries.

use polewatch::recognize::PlateRead;

/// Raw formats the element takes (each converts to the packed BGR the recognizer reads).
pub const FORMATS: [&str; 4] = ["BGR", "BGRx", "BGRA", "RGB"];

#[derive(Debug, PartialEq, Eq)]
pub struct ShortFrame {
    pub want: usize,
    pub got: usize,
}

/// Packed BGR rows (no padding) from one plane of `format` with `stride` bytes per row.
pub fn packed_bgr(
    data: &[u8],
    format: &str,
    width: usize,
    height: usize,
    stride: usize,
) -> Result<Vec<u8>, ShortFrame> {
    let px = if format == "BGR" || format == "RGB" { 3 } else { 4 };
    let want = stride * height.saturating_sub(1) + width * px;
    if height == 0 || stride < width * px || data.len() < want {
        return Err(ShortFrame { want, got: data.len() });
    }
    let mut out = Vec::with_capacity(width * height * 3);
    for row in data.chunks(stride).take(height) {
        for p in row[..width * px].chunks_exact(px) {
            if format == "RGB" {
                out.extend_from_slice(&[p[2], p[1], p[0]]);
            } else {
                out.extend_from_slice(&p[..3]);
            }
        }
    }
    Ok(out)
}

/// The box of a read in whole pixels, clamped to the frame (x, y, w, h).
pub fn pixel_box(r: &PlateRead, width: u32, height: u32) -> (u32, u32, u32, u32) {
    let clamp = |v: f32, max: u32| (v.max(0.0).round() as u32).min(max);
    let x = clamp(r.bbox.x, width);
    let y = clamp(r.bbox.y, height);
    let x2 = clamp(r.bbox.x + r.bbox.w, width);
    let y2 = clamp(r.bbox.y + r.bbox.h, height);
    (x, y, x2.saturating_sub(x), y2.saturating_sub(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_lose_their_padding_and_channels_their_order() {
        // 2x2 BGRx with a stride of 12 (4 bytes of padding per row).
        let data = [1, 2, 3, 0, 4, 5, 6, 0, 9, 9, 9, 9, 7, 8, 9, 0, 10, 11, 12, 0, 9, 9, 9, 9];
        assert_eq!(packed_bgr(&data, "BGRx", 2, 2, 12).unwrap(), vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let rgb = [1, 2, 3, 4, 5, 6, 0, 0];
        assert_eq!(packed_bgr(&rgb, "RGB", 2, 1, 8).unwrap(), vec![3, 2, 1, 6, 5, 4]);
        assert_eq!(packed_bgr(&data[..20], "BGRx", 2, 2, 12).unwrap().len(), 12, "the last row needs no padding");
        assert!(packed_bgr(&data[..19], "BGRx", 2, 2, 12).is_err(), "a short buffer is refused");
        assert!(packed_bgr(&data, "BGRx", 4, 2, 12).is_err(), "a stride below the row is refused");
    }
}
