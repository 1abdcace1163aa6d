//! Camera URLs as GStreamer takes them. `file:relative/path` (no `//`) names a file relative to the
//! daemon's working directory, so the demo configuration can point at a video in the checkout.

use std::path::Path;

/// The URL with a relative `file:` path made absolute against `cwd`; any other URL unchanged.
pub fn resolve(url: &str, cwd: &Path) -> String {
    match url.strip_prefix("file:") {
        Some(rest) if !rest.starts_with("//") => format!("file://{}", cwd.join(rest).display()),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_file_urls_become_absolute_and_others_stay() {
        let cwd = Path::new("/srv/pw");
        assert_eq!(resolve("file:demo-state/demo.mp4", cwd), "file:///srv/pw/demo-state/demo.mp4");
        assert_eq!(resolve("file:///data/x.mkv", cwd), "file:///data/x.mkv");
        assert_eq!(resolve("rtsp://10.0.0.5/stream1", cwd), "rtsp://10.0.0.5/stream1");
    }
}
