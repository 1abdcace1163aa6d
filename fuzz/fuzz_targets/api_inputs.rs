//! What the console API's JSON bodies carry into the daemon: a plate search pattern (search), a plate glob
//! (local hotlist entries), read and alert ids. A pattern that parses matches without a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        if let Some(q) = v.get("plate").and_then(|p| p.as_str()) {
            if let Ok(p) = polewatch::store::PlatePattern::parse(q) {
                let _ = p.matches(q.as_bytes());
            }
        }
    }
    if let Ok(p) = polewatch::store::PlatePattern::parse(text) {
        let _ = p.matches(text.as_bytes());
        let _ = p.matches(b"ABC1234");
    }
    let _ = polewatch::hotlist::PlateGlob::parse(text);
});
