//! A POSIX ustar archive of a few regular files in memory: the export bundle downloaded as one file.
//! (Hand-written because no tar crate is in this project's offline crate mirror; regular files only, the
//! format's 512-byte header with a checksum, two zero blocks at the end. GNU tar and bsdtar read it.)

/// Why a file cannot go in the archive.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TarError {
    #[error("path `{0}` is too long for a ustar header")]
    NameTooLong(String),
    #[error("file `{0}` is over 8 GiB")]
    TooLarge(String),
}

fn octal(field: &mut [u8], value: u64) {
    // Digits, then NUL: field.len() - 1 octal digits, zero-padded.
    let n = field.len() - 1;
    let s = format!("{:0width$o}", value, width = n);
    field[..n].copy_from_slice(s.as_bytes());
    field[n] = 0;
}

/// The 512-byte header of a regular file.
fn header(path: &str, size: u64, mtime: u64) -> Result<[u8; 512], TarError> {
    if size >= 8 << 30 {
        return Err(TarError::TooLarge(path.into()));
    }
    let mut h = [0u8; 512];
    let (prefix, name) = if path.len() <= 100 {
        ("", path)
    } else {
        // Split at a '/' so the name fits 100 bytes and the prefix 155.
        let cut = path
            .char_indices()
            .filter(|(i, c)| *c == '/' && *i <= 155 && path.len() - i - 1 <= 100)
            .map(|(i, _)| i)
            .next();
        match cut {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => return Err(TarError::NameTooLong(path.into())),
        }
    };
    h[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    // The checksum is computed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    Ok(h)
}

/// The archive of `files` (path inside the archive, contents), in that order.
pub fn archive(files: &[(String, Vec<u8>)], mtime: u64) -> Result<Vec<u8>, TarError> {
    let mut out = Vec::new();
    for (path, data) in files {
        out.extend_from_slice(&header(path, data.len() as u64, mtime)?);
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    Ok(out)
}

/// Every regular file under `dir`, as (path relative to `dir`'s parent, contents), sorted by path.
pub fn read_dir_files(dir: &std::path::Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let base = dir.parent().unwrap_or(dir);
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let t = e.file_type()?;
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                let rel = e.path().strip_prefix(base).map(|p| p.to_string_lossy().into_owned()).unwrap_or_default();
                out.push((rel, std::fs::read(e.path())?));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_tar_lists_and_extracts_what_was_archived() {
        let long = format!("{}/manifest.json", "d".repeat(120));
        let files = vec![("b/request.json".to_string(), b"{\"a\":1}".to_vec()), (long.clone(), vec![7u8; 1000])];
        let bytes = archive(&files, 1_700_000_000).unwrap();
        assert_eq!(bytes.len() % 512, 0);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.tar");
        std::fs::write(&file, &bytes).unwrap();
        let Ok(out) = std::process::Command::new("tar").arg("-xf").arg(&file).arg("-C").arg(dir.path()).output() else {
            eprintln!("SKIPPED: no tar on this machine");
            return;
        };
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read(dir.path().join("b/request.json")).unwrap(), b"{\"a\":1}");
        assert_eq!(std::fs::read(dir.path().join(&long)).unwrap(), vec![7u8; 1000]);
    }

    #[test]
    fn a_name_that_cannot_be_split_is_refused() {
        assert!(matches!(archive(&[("x".repeat(101), vec![])], 0), Err(TarError::NameTooLong(_))));
    }
}
