//! JPEG and PNG in and out of OpenCV images, in Rust (jpeg-encoder, zune-jpeg, png) rather than through
//! OpenCV's imgcodecs: on Debian that module loads GDAL, GDCM, OpenEXR and some 110 further libraries, 40 MiB
//! of the daemon's resident memory for two codecs (issue 17, the daemon's memory).

use super::RecognizeError;
use opencv::core::{CV_8UC1, CV_8UC3, CV_8UC4, Mat};
use opencv::prelude::*;

/// Decodes a JPEG or PNG into a BGR image.
pub fn decode(bytes: &[u8]) -> Result<Mat, RecognizeError> {
    if bytes.is_empty() {
        return Err(RecognizeError::EmptyImage);
    }
    let (w, h, bgr) = if bytes.starts_with(&[0xFF, 0xD8]) {
        decode_jpeg(bytes)?
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(bytes)?
    } else {
        return Err(RecognizeError::Image("not a JPEG or PNG".into()));
    };
    if w == 0 || h == 0 {
        return Err(RecognizeError::EmptyImage);
    }
    let rows = i32::try_from(h).map_err(|_| RecognizeError::Image("too tall".into()))?;
    let m = Mat::new_rows_cols_with_data(rows, (w * 3) as i32, &bgr)?;
    Ok(m.reshape(3, rows)?.try_clone()?)
}

fn decode_jpeg(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), RecognizeError> {
    use zune_jpeg::zune_core::{colorspace::ColorSpace, options::DecoderOptions};
    let opts = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::BGR);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(std::io::Cursor::new(bytes), opts);
    let px = d.decode().map_err(|e| RecognizeError::Image(format!("JPEG: {e:?}")))?;
    let info = d.info().ok_or_else(|| RecognizeError::Image("JPEG: no header".into()))?;
    let (w, h) = (info.width as usize, info.height as usize);
    if px.len() != w * h * 3 {
        return Err(RecognizeError::Image(format!("JPEG: {} bytes for {w}x{h}", px.len())));
    }
    Ok((w, h, px))
}

fn decode_png(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>), RecognizeError> {
    let mut d = png::Decoder::new(std::io::Cursor::new(bytes));
    d.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut r = d.read_info().map_err(|e| RecognizeError::Image(format!("PNG: {e}")))?;
    let size = r.output_buffer_size().ok_or_else(|| RecognizeError::Image("PNG: too large".into()))?;
    let mut buf = vec![0; size];
    let info = r.next_frame(&mut buf).map_err(|e| RecognizeError::Image(format!("PNG: {e}")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let buf = &buf[..info.buffer_size()];
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(RecognizeError::Image("PNG: palette not expanded".into())),
    };
    // Rows may carry padding: take each row's first w pixels.
    let stride = info.line_size;
    let mut bgr = Vec::with_capacity(w * h * 3);
    for row in buf.chunks(stride).take(h) {
        for px in row.chunks(channels).take(w) {
            match channels {
                1 | 2 => bgr.extend_from_slice(&[px[0], px[0], px[0]]),
                _ => bgr.extend_from_slice(&[px[2], px[1], px[0]]),
            }
        }
    }
    if bgr.len() != w * h * 3 {
        return Err(RecognizeError::Image("PNG: truncated".into()));
    }
    Ok((w, h, bgr))
}

/// JPEG of an 8-bit grey, BGR or BGRA image at `quality` (1–100, the IJG scale OpenCV uses too).
pub fn encode_jpeg(img: &Mat, quality: i32) -> Result<Vec<u8>, RecognizeError> {
    let color = match img.typ() {
        t if t == CV_8UC1 => jpeg_encoder::ColorType::Luma,
        t if t == CV_8UC3 => jpeg_encoder::ColorType::Bgr,
        t if t == CV_8UC4 => jpeg_encoder::ColorType::Bgra,
        _ => return Err(RecognizeError::Channels(img.channels())),
    };
    let (w, h) = (img.cols(), img.rows());
    if w <= 0 || h <= 0 {
        return Err(RecognizeError::EmptyImage);
    }
    let too_big = || RecognizeError::Image(format!("{w}x{h} is over JPEG's 65535 pixels a side"));
    let (w16, h16) = (u16::try_from(w).map_err(|_| too_big())?, u16::try_from(h).map_err(|_| too_big())?);
    // A crop is a view into its frame: its rows are not one block.
    let owned;
    let img = if img.is_continuous() {
        img
    } else {
        owned = img.try_clone()?;
        &owned
    };
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality.clamp(1, 100) as u8)
        .encode(img.data_bytes()?, w16, h16, color)
        .map_err(|e| RecognizeError::Image(format!("JPEG: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opencv::core::{Rect, Scalar};

    fn pattern(w: i32, h: i32) -> Mat {
        let mut m = Mat::new_rows_cols_with_default(h, w, CV_8UC3, Scalar::all(0.0)).unwrap();
        for y in 0..h {
            for x in 0..w {
                let p = m.at_2d_mut::<opencv::core::Vec3b>(y, x).unwrap();
                *p = opencv::core::Vec3b::from([(x * 4) as u8, (y * 4) as u8, 200]);
            }
        }
        m
    }

    fn mean_abs_diff(a: &Mat, b: &Mat) -> f64 {
        let mut d = Mat::default();
        opencv::core::absdiff(a, b, &mut d).unwrap();
        let m = opencv::core::mean(&d, &opencv::core::no_array()).unwrap();
        (m[0] + m[1] + m[2]) / 3.0
    }

    #[test]
    fn a_bgr_image_and_a_crop_of_it_survive_jpeg() {
        let img = pattern(60, 40);
        let back = decode(&encode_jpeg(&img, 95).unwrap()).unwrap();
        assert_eq!((back.cols(), back.rows(), back.typ()), (60, 40, CV_8UC3));
        // Channel order kept: blue is the x ramp, red is constant.
        assert!(mean_abs_diff(&img, &back) < 3.0, "{}", mean_abs_diff(&img, &back));
        // A 30x20 view into the 60-wide image: rows 180 bytes apart, not one block.
        let start = (5 * 60 + 10) * 3;
        let bytes = img.data_bytes().unwrap();
        // SAFETY: the view reads only inside `img`'s bytes, which outlive it; it is only read.
        let crop = unsafe {
            Mat::new_rows_cols_with_data_unsafe(20, 30, CV_8UC3, bytes[start..].as_ptr().cast_mut().cast(), 180)
        }
        .unwrap();
        assert!(!crop.is_continuous());
        let back = decode(&encode_jpeg(&crop, 95).unwrap()).unwrap();
        let want = Mat::roi(&img, Rect::new(10, 5, 30, 20)).unwrap().try_clone().unwrap();
        assert!(mean_abs_diff(&want, &back) < 3.0);
        // Lower quality, smaller file.
        assert!(encode_jpeg(&img, 30).unwrap().len() < encode_jpeg(&img, 95).unwrap().len());
    }

    #[test]
    fn png_of_every_colour_type_decodes_to_bgr() {
        let (w, h) = (5u32, 3u32);
        for (ct, ch) in [
            (png::ColorType::Grayscale, 1),
            (png::ColorType::GrayscaleAlpha, 2),
            (png::ColorType::Rgb, 3),
            (png::ColorType::Rgba, 4),
        ] {
            let mut bytes = Vec::new();
            {
                let mut e = png::Encoder::new(&mut bytes, w, h);
                e.set_color(ct);
                e.set_depth(png::BitDepth::Eight);
                let mut wr = e.write_header().unwrap();
                let data: Vec<u8> = (0..w * h * ch).map(|i| (i * 7 % 251) as u8).collect();
                wr.write_image_data(&data).unwrap();
            }
            let m = decode(&bytes).unwrap();
            assert_eq!((m.cols(), m.rows(), m.typ()), (5, 3, CV_8UC3), "{ct:?}");
            let p = *m.at_2d::<opencv::core::Vec3b>(0, 1).unwrap();
            if ch >= 3 {
                // RGB in the file, BGR in the image.
                let i = ch as usize;
                assert_eq!(p.0, [((i + 2) * 7 % 251) as u8, ((i + 1) * 7 % 251) as u8, (i * 7 % 251) as u8]);
            } else {
                assert_eq!(p.0[0], p.0[2]);
            }
        }
    }

    #[test]
    fn other_bytes_are_errors() {
        assert!(matches!(decode(b""), Err(RecognizeError::EmptyImage)));
        assert!(decode(b"definitely not a JPEG").is_err());
        assert!(decode(&[0xFF, 0xD8, 0xFF, 0x00]).is_err());
        assert!(decode(b"\x89PNG\r\n\x1a\n garbage").is_err());
        let gray = Mat::new_rows_cols_with_default(4, 4, opencv::core::CV_16UC1, Scalar::all(0.0)).unwrap();
        assert!(encode_jpeg(&gray, 80).is_err());
    }
}
