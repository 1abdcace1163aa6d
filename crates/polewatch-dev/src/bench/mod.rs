//! Benchmarks and the kill -9 harness; figures are printed by `polewatch-dev bench …`, never asserted on
//! time in unit tests.

pub mod accuracy;
pub mod alerts;
pub mod audit;
pub mod crash;
pub mod login;
pub mod outage;
pub mod pipeline;
pub mod powercut;
pub mod recognize;
pub mod rig;
pub mod store;
pub mod store_scale;
pub mod uplink;

use crate::store::{Candidate, NewRead, Plate};

/// A synthetic read whose content follows from `seq`, so a checker can tell a damaged copy.
pub fn synthetic_read(seq: u64, captured_at_ms: i64, crop_bytes: usize) -> NewRead {
    // `T` and the sequence number stays within a plate's 16 characters for any seq below 10^15.
    let plate = Plate::new(&format!("T{:07}", seq % 1_000_000_000_000_000)).expect("T + digits is a valid plate");
    NewRead {
        camera_id: format!("cam{}", seq % 4),
        captured_at_ms,
        plate,
        confidence: 0.9,
        char_confidences: vec![0.9; 8],
        candidates: vec![Candidate { text: format!("T{seq:07}"), confidence: 0.9 }],
        bbox: [100, 200, 180, 45],
        region: Some("us".into()),
        frame_seq: seq,
        crop_jpeg: (crop_bytes > 0).then(|| synthetic_crop(seq, crop_bytes)),
        frame_jpeg: None,
    }
}

/// Deterministic bytes standing in for a JPEG crop.
pub fn synthetic_crop(seq: u64, len: usize) -> Vec<u8> {
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Prints the figures, and with `json` a last line holding them as one JSON object.
pub fn print_figures(figures: &[(String, f64, &str)], json: bool) {
    for (name, value, unit) in figures {
        println!("{name:<44} {value:>14.2} {unit}");
    }
    if json {
        let obj: serde_json::Map<String, serde_json::Value> =
            figures.iter().map(|(n, v, _)| (n.clone(), serde_json::json!((v * 100.0).round() / 100.0))).collect();
        println!("{}", serde_json::Value::Object(obj));
    }
}

/// A process's threads, open file descriptors and resident memory (KiB), from `/proc/<pid>` (`"self"`
/// for this one).
pub fn proc_stats(pid: &str) -> Option<(u64, u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((field("Threads:")?, fds, field("VmRSS:")?))
}

/// This process's resident memory in KiB (0 where /proc cannot tell).
pub fn rss_kib() -> u64 {
    proc_stats("self").map_or(0, |s| s.2)
}

/// A hotlist file (the daemon's CSV) listing `plates` as stolen vehicles.
pub fn write_hotlist<T: std::fmt::Display>(
    path: &std::path::Path,
    plates: impl IntoIterator<Item = T>,
) -> std::io::Result<()> {
    let mut csv = String::from("plate,region,category,priority,source,expiry,notes\n");
    for p in plates {
        csv.push_str(&format!("{p},,stolen vehicle,1,bench,,\n"));
    }
    std::fs::write(path, csv)
}

/// The daemon binary the benchmarks start (`polewatch run`): `$POLEWATCH_BIN`, else the `polewatch` beside
/// this executable (cargo puts both in `target/<profile>/`).
pub fn daemon_exe() -> anyhow::Result<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("POLEWATCH_BIN") {
        return Ok(p.into());
    }
    let me = std::env::current_exe().map_err(|e| anyhow::anyhow!("cannot find my own executable: {e}"))?;
    let exe = me.with_file_name("polewatch");
    if !exe.is_file() {
        anyhow::bail!(
            "no daemon binary at {} (build it: cargo build --release -p polewatch, or set POLEWATCH_BIN)",
            exe.display()
        );
    }
    Ok(exe)
}

/// A scratch directory removed on drop.
pub struct ScratchDir(pub std::path::PathBuf);

impl ScratchDir {
    pub fn new(under: Option<&std::path::Path>, tag: &str) -> std::io::Result<ScratchDir> {
        let base = under.map(|p| p.to_path_buf()).unwrap_or_else(std::env::temp_dir);
        let p = base.join(format!("polewatch-{tag}-{}-{}", std::process::id(), fastrand::u64(..)));
        std::fs::create_dir_all(&p)?;
        Ok(ScratchDir(p))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
