//! The TOML configuration (main file): loads, or fails with problems that name the file and stay short.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let p = Path::new("/etc/polewatch/polewatch.toml");
    if let Err(e) = polewatch::config::load_texts(&[(p, text)]) {
        for problem in e.problems() {
            assert_eq!(problem.file.as_path(), p);
            assert!(problem.to_string().len() < 4000, "an error carries a long value back");
        }
    }
});
