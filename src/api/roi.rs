//! A region of interest drawn on the Cameras page's snapshot, as the TOML line to paste into the camera's
//! `[[cameras]]` table (`roi = [[x, y], …]`, frame pixels; the recognizer keeps plates whose centre is
//! inside and the motion gate looks only there). The console never writes the configuration. Pure: the
//! polygon is checked (3 to [`MAX_POINTS`] points, inside the frame, edges that do not cross, at least
//! [`MIN_AREA_SHARE`] of the frame) so that what the installer pastes does what the drawing showed.

/// Most points a drawn region may have.
pub const MAX_POINTS: usize = 32;
/// Smallest region, as a share of the frame's area.
pub const MIN_AREA_SHARE: f64 = 0.01;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoiError {
    #[error("a region needs 3 to {MAX_POINTS} points, not {0}")]
    Points(usize),
    #[error("point {index} ({x:.0}, {y:.0}) is outside the {width} × {height} frame")]
    Outside { index: usize, x: f64, y: f64, width: u32, height: u32 },
    #[error("edges {0} and {1} cross: draw the outline once around, without a figure of eight")]
    Crossing(usize, usize),
    #[error("the region covers {0:.2} % of the frame: too small to hold a passing plate")]
    TooSmall(f64),
}

/// Twice the signed area (shoelace); positive when the points turn counter-clockwise in y-up axes.
fn twice_area(p: &[[f64; 2]]) -> f64 {
    (0..p.len())
        .map(|i| {
            let (a, b) = (p[i], p[(i + 1) % p.len()]);
            a[0] * b[1] - b[0] * a[1]
        })
        .sum()
}

/// The polygon's area in square pixels.
pub fn area(p: &[[u32; 2]]) -> f64 {
    let f: Vec<[f64; 2]> = p.iter().map(|q| [q[0] as f64, q[1] as f64]).collect();
    twice_area(&f).abs() / 2.0
}

/// The drawn points (frame pixels, as the page measured them) as the region to configure: rounded to
/// whole pixels, repeated points dropped, checked.
pub fn check(points: &[[f64; 2]], width: u32, height: u32) -> Result<Vec<[u32; 2]>, RoiError> {
    if points.len() < 3 || points.len() > MAX_POINTS {
        return Err(RoiError::Points(points.len()));
    }
    let mut out: Vec<[u32; 2]> = Vec::with_capacity(points.len());
    for (index, &[x, y]) in points.iter().enumerate() {
        if !(x.is_finite() && y.is_finite())
            || x < -0.5
            || y < -0.5
            || x > width as f64 + 0.5
            || y > height as f64 + 0.5
        {
            return Err(RoiError::Outside { index, x, y, width, height });
        }
        let q = [(x.round().max(0.0) as u32).min(width), (y.round().max(0.0) as u32).min(height)];
        if out.last() != Some(&q) {
            out.push(q);
        }
    }
    while out.len() > 1 && out.first() == out.last() {
        out.pop();
    }
    if out.len() < 3 {
        return Err(RoiError::Points(out.len()));
    }
    let f: Vec<[f64; 2]> = out.iter().map(|q| [q[0] as f64, q[1] as f64]).collect();
    if let Some((i, j)) = crate::recognize::geometry::crossing(&f) {
        return Err(RoiError::Crossing(i + 1, j + 1));
    }
    let share = area(&out) / (width as f64 * height as f64).max(1.0);
    if share < MIN_AREA_SHARE {
        return Err(RoiError::TooSmall(share * 100.0));
    }
    Ok(out)
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The lines to paste into the camera's `[[cameras]]` table.
pub fn snippet(camera_id: &str, roi: &[[u32; 2]], width: u32, height: u32) -> String {
    let points: Vec<String> = roi.iter().map(|[x, y]| format!("[{x}, {y}]")).collect();
    format!(
        "# Paste into the [[cameras]] table with id = {} (replacing its roi line, if any).\n\
         # Frame pixels of the {width} × {height} frame the recognizer analyses; the motion gate uses the same region.\n\
         roi = [{}]\n",
        toml_string(camera_id),
        points.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recognize::geometry::segments_meet;

    #[test]
    fn a_drawn_outline_becomes_whole_pixels_inside_the_frame() {
        let r = check(&[[100.4, 200.6], [1200.0, 210.0], [1279.8, 719.9], [100.0, 700.0], [100.0, 700.2]], 1280, 720)
            .unwrap();
        assert_eq!(r, vec![[100, 201], [1200, 210], [1280, 720], [100, 700]], "rounded, the repeated point dropped");
        assert_eq!(area(&[[0, 0], [10, 0], [10, 10], [0, 10]]), 100.0);
        assert_eq!(area(&[[0, 0], [0, 10], [10, 10], [10, 0]]), 100.0, "either direction");
    }

    #[test]
    fn bad_outlines_are_refused_with_the_reason() {
        assert_eq!(check(&[[0.0, 0.0], [10.0, 0.0]], 100, 100), Err(RoiError::Points(2)));
        assert_eq!(check(&vec![[1.0, 1.0]; 33], 100, 100), Err(RoiError::Points(33)));
        assert!(matches!(
            check(&[[0.0, 0.0], [150.0, 0.0], [0.0, 50.0]], 100, 100),
            Err(RoiError::Outside { index: 1, .. })
        ));
        assert!(matches!(
            check(&[[0.0, 0.0], [f64::NAN, 0.0], [0.0, 50.0]], 100, 100),
            Err(RoiError::Outside { index: 1, .. })
        ));
        // A figure of eight: edge 1 (0,0)-(100,100) crosses edge 3 (100,0)-(0,100).
        assert_eq!(
            check(&[[0.0, 0.0], [100.0, 100.0], [100.0, 0.0], [0.0, 100.0]], 100, 100),
            Err(RoiError::Crossing(1, 3))
        );
        // Points that collapse to a line after rounding.
        assert_eq!(check(&[[5.0, 5.0], [5.2, 5.1], [4.9, 5.0]], 100, 100), Err(RoiError::Points(1)));
        assert!(matches!(check(&[[0.0, 0.0], [5.0, 0.0], [5.0, 5.0]], 100, 100), Err(RoiError::TooSmall(_))));
        // An edge that runs back over another is a crossing too.
        assert!(matches!(
            check(&[[0.0, 0.0], [80.0, 0.0], [80.0, 80.0], [40.0, 0.0], [0.0, 80.0]], 100, 100),
            Err(RoiError::Crossing(..))
        ));
    }

    #[test]
    fn segments() {
        assert!(segments_meet([0.0, 0.0], [2.0, 2.0], [0.0, 2.0], [2.0, 0.0]));
        assert!(!segments_meet([0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]));
        assert!(segments_meet([0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [3.0, 0.0]), "collinear overlap");
        assert!(!segments_meet([0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]), "collinear apart");
    }

    #[test]
    fn the_snippet_is_toml_that_loads_as_the_same_region() {
        let roi = [[100, 201], [1200, 210], [1280, 720], [100, 700]];
        let s = snippet("lane \"1\"", &roi, 1280, 720);
        assert!(s.contains("id = \"lane \\\"1\\\"\""), "{s}");
        // Pasted into a camera's table, the daemon's own loader reads the same region.
        let text = format!(
            "[site]\nsite_id = \"s\"\ndevice_id = \"d\"\n[[cameras]]\nid = \"lane1\"\nurl = \"file:///v.mp4\"\n{}",
            snippet("lane1", &roi, 1280, 720)
        );
        let loaded = crate::config::load_texts(&[(std::path::Path::new("p.toml"), text.as_str())]).unwrap();
        let t = &loaded.config.cameras[0];
        assert_eq!(t.roi, roi);
        // And the recognizer's own test agrees on what is inside.
        assert!(crate::recognize::geometry::in_polygon(&t.roi, 640.0, 450.0));
        assert!(!crate::recognize::geometry::in_polygon(&t.roi, 50.0, 450.0));
    }
}
