//! Hotlist CSV files (pushed over MQTT or dropped in the hotlist folder): parsed or refused with line
//! problems, never a panic; every entry of a parsed list matches by its own plate glob.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = polewatch::hotlist::parse_csv("fuzz", text, 1_700_000_000_000);
    let _ = polewatch::hotlist::PlateGlob::parse(text);
});
