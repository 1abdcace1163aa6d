//! Labelled plate image sets in the layout `<set>/<group>/<image>.jpg|png` (or flat `<set>/<image>`)
//! with `<image-stem>.txt` beside each image: one plate per line, `file\tx\ty\tw\th\tPLATE`, `?` where
//! the text is unknown.

use super::geometry::BoxF;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq)]
pub struct LabelledPlate {
    pub bbox: BoxF,
    /// Upper-case A–Z0–9; `None` when the label is `?`.
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LabelledImage {
    pub path: PathBuf,
    /// The sub-folder the image is in; `all` for a flat set.
    pub group: String,
    pub plates: Vec<LabelledPlate>,
}

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("dataset {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}: {message}", path.display())]
    Label { path: PathBuf, line: usize, message: String },
    #[error("dataset {}: no labelled images found (expected <group>/<image>.jpg with <image>.txt beside it)", .0.display())]
    Empty(PathBuf),
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let rd = std::fs::read_dir(dir).map_err(|source| DatasetError::Read { path: dir.to_path_buf(), source })?;
    let mut v = Vec::new();
    for e in rd {
        v.push(e.map_err(|source| DatasetError::Read { path: dir.to_path_buf(), source })?.path());
    }
    v.sort();
    Ok(v)
}

/// Every labelled image of the set, groups in name order. Images without a label file are skipped.
pub fn read(dir: &Path) -> Result<Vec<LabelledImage>, DatasetError> {
    let mut out = Vec::new();
    let entries = sorted_entries(dir)?;
    for p in entries.iter().filter(|p| p.is_dir()) {
        let group = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        for img in sorted_entries(p)?.into_iter().filter(|f| is_image(f)) {
            if let Some(l) = labelled(&img, &group)? {
                out.push(l);
            }
        }
    }
    for img in entries.into_iter().filter(|f| f.is_file() && is_image(f)) {
        if let Some(l) = labelled(&img, "all")? {
            out.push(l);
        }
    }
    if out.is_empty() {
        return Err(DatasetError::Empty(dir.to_path_buf()));
    }
    Ok(out)
}

fn labelled(img: &Path, group: &str) -> Result<Option<LabelledImage>, DatasetError> {
    let txt = img.with_extension("txt");
    let text = match std::fs::read_to_string(&txt) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(DatasetError::Read { path: txt, source }),
    };
    let plates =
        parse_labels(&text).map_err(|(line, message)| DatasetError::Label { path: txt.clone(), line, message })?;
    Ok(Some(LabelledImage { path: img.to_path_buf(), group: group.to_string(), plates }))
}

/// The plates of one label file; errors carry the 1-based line.
pub fn parse_labels(text: &str) -> Result<Vec<LabelledPlate>, (usize, String)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 5 {
            return Err((
                i + 1,
                format!("expected file, x, y, w, h and plate separated by tabs, found {} fields", f.len()),
            ));
        }
        let num =
            |k: usize, name: &str| f[k].trim().parse::<f32>().map_err(|_| (i + 1, format!("{name} is not a number")));
        let bbox = BoxF { x: num(1, "x")?, y: num(2, "y")?, w: num(3, "w")?, h: num(4, "h")? };
        if bbox.w <= 0.0 || bbox.h <= 0.0 {
            return Err((i + 1, "the box has no area".into()));
        }
        let raw: String = f
            .get(5)
            .map(|s| s.chars().filter(|c| *c != ' ' && *c != '-').collect::<String>().to_ascii_uppercase())
            .unwrap_or_default();
        let text = (!raw.is_empty() && raw.chars().all(|c| c.is_ascii_alphanumeric())).then_some(raw);
        out.push(LabelledPlate { bbox, text });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_with_unknown_text_and_errors_name_the_line() {
        let p = parse_labels("a.jpg\t1\t2\t30\t10\tab-12 3\nb.jpg\t1\t2\t30\t10\t?\n\n").unwrap();
        assert_eq!(p[0].text.as_deref(), Some("AB123"));
        assert_eq!(p[0].bbox, BoxF { x: 1.0, y: 2.0, w: 30.0, h: 10.0 });
        assert_eq!(p[1].text, None);
        assert_eq!(parse_labels("ok\t1\t2\t3\t4\tA\nbad\t1\tx\t3\t4\tA").unwrap_err().0, 2);
        assert_eq!(parse_labels("a\t1\t2\t0\t4\tA").unwrap_err().0, 1);
    }

    #[test]
    fn grouped_and_flat_layouts() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("us")).unwrap();
        std::fs::write(d.path().join("us/a.jpg"), b"x").unwrap();
        std::fs::write(d.path().join("us/a.txt"), "a.jpg\t1\t1\t10\t5\tABC123\n").unwrap();
        std::fs::write(d.path().join("us/unlabelled.jpg"), b"x").unwrap();
        std::fs::write(d.path().join("b.png"), b"x").unwrap();
        std::fs::write(d.path().join("b.txt"), "b.png\t1\t1\t10\t5\t?\n").unwrap();
        let set = read(d.path()).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!((set[0].group.as_str(), set[1].group.as_str()), ("us", "all"));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(read(empty.path()), Err(DatasetError::Empty(_))));
    }
}
