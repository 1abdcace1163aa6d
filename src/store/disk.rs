//! Disk watermarks (issue 16 §2, R-ST4) on the filesystem that holds the store, in steps:
//!
//! | step       | when (default)                          | what the store does                      |
//! |------------|-----------------------------------------|------------------------------------------|
//! | `ok`       | below `disk_high_watermark_pct` (85)     | keeps everything                         |
//! | `warn`     | ≥ `disk_high_watermark_pct`              | keeps everything, raises the warning     |
//! | `no_frames`| ≥ `disk_frames_watermark_pct` (90)       | stops keeping full frames                |
//! | `no_crops` | ≥ `disk_full_watermark_pct` (95)         | stops keeping plate crops too            |
//! | `full`     | free space < `disk_reserve_mb` (64 MiB)  | refuses new reads ([`StoreError::DiskFull`](super::StoreError)) |
//!
//! Read metadata and the audit log are kept to the last: the reserve is left for them (and for the database's
//! own bookkeeping), so a read is refused before the database could meet ENOSPC half-way through a write.
//! Nothing is ever purged to make room: retention alone deletes. A step down needs the use to fall
//! [`HYSTERESIS_PCT`] below the threshold, so a disk hovering at a threshold does not flap.

use std::path::{Path, PathBuf};

/// Points of disk use below a threshold needed to step down from it.
pub const HYSTERESIS_PCT: f64 = 1.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskLevel {
    Ok,
    Warn,
    NoFrames,
    NoCrops,
    Full,
}

impl DiskLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskLevel::Ok => "ok",
            DiskLevel::Warn => "warn",
            DiskLevel::NoFrames => "no_frames",
            DiskLevel::NoCrops => "no_crops",
            DiskLevel::Full => "full",
        }
    }

    pub fn keeps_frames(self) -> bool {
        self < DiskLevel::NoFrames
    }

    pub fn keeps_crops(self) -> bool {
        self < DiskLevel::NoCrops
    }

    pub fn accepts_reads(self) -> bool {
        self < DiskLevel::Full
    }

    fn describe(self) -> &'static str {
        match self {
            DiskLevel::Ok => "disk use is below the high watermark; everything is kept",
            DiskLevel::Warn => "disk use is above the high watermark; everything is still kept",
            DiskLevel::NoFrames => "disk use is above the frames watermark; full frames are no longer kept",
            DiskLevel::NoCrops => {
                "disk use is above the full watermark; plate crops and full frames are no longer kept, only read metadata"
            }
            DiskLevel::Full => {
                "the disk is full (free space below the reserve); new reads are refused, stored reads are kept"
            }
        }
    }
}

/// Space on a filesystem, as statvfs reports it to an unprivileged process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    pub total_bytes: u64,
    /// Free to this process (f_bavail).
    pub avail_bytes: u64,
    /// Free in all, with the blocks reserved for root (f_bfree).
    pub free_bytes: u64,
}

impl DiskSpace {
    /// Space where nothing is reserved for root (free = avail): tests and fake sources.
    pub fn unreserved(total_bytes: u64, avail_bytes: u64) -> DiskSpace {
        DiskSpace { total_bytes, avail_bytes, free_bytes: avail_bytes }
    }

    /// Used share as `df` prints it (Use%): used / (used + avail), used = total − free. Admins set the
    /// watermarks from df; (total − avail) / total counts root's reserved blocks (and on some hosts a
    /// quota) as used and read 85 % on a disk df showed at 59 %.
    pub fn used_pct(&self) -> f64 {
        let used = self.total_bytes.saturating_sub(self.free_bytes);
        let denom = used.saturating_add(self.avail_bytes);
        if denom == 0 {
            return 100.0;
        }
        used as f64 * 100.0 / denom as f64
    }
}

/// Where free space is read from: statvfs in the daemon; a test can supply its own.
pub trait SpaceSource: Send + Sync + std::fmt::Debug {
    fn space(&self, path: &Path) -> std::io::Result<DiskSpace>;
}

/// statvfs(3) on the store's path.
#[derive(Debug)]
pub struct Statvfs;

impl SpaceSource for Statvfs {
    fn space(&self, path: &Path) -> std::io::Result<DiskSpace> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: c is a valid NUL-terminated path and s a writable statvfs.
        if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let frsize = if s.f_frsize > 0 { s.f_frsize as u64 } else { s.f_bsize as u64 };
        Ok(DiskSpace {
            total_bytes: s.f_blocks as u64 * frsize,
            avail_bytes: s.f_bavail as u64 * frsize,
            free_bytes: s.f_bfree as u64 * frsize,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Watermarks {
    pub warn_pct: f64,
    pub frames_pct: f64,
    pub crops_pct: f64,
    pub reserve_bytes: u64,
}

impl Watermarks {
    fn threshold(&self, l: DiskLevel) -> f64 {
        match l {
            DiskLevel::Ok => f64::NEG_INFINITY,
            DiskLevel::Warn => self.warn_pct,
            DiskLevel::NoFrames => self.frames_pct,
            DiskLevel::NoCrops => self.crops_pct,
            DiskLevel::Full => f64::INFINITY,
        }
    }

    /// The step for `space`, coming from `prev` (pure; hysteresis on the way down).
    pub fn level(&self, space: DiskSpace, prev: DiskLevel) -> DiskLevel {
        let used = space.used_pct();
        let raw = if space.avail_bytes < self.reserve_bytes {
            DiskLevel::Full
        } else if used >= self.crops_pct {
            DiskLevel::NoCrops
        } else if used >= self.frames_pct {
            DiskLevel::NoFrames
        } else if used >= self.warn_pct {
            DiskLevel::Warn
        } else {
            DiskLevel::Ok
        };
        if raw >= prev {
            return raw;
        }
        // Stepping down: from Full once the reserve is free again; from a percentage step once use is
        // HYSTERESIS_PCT below its threshold (one step at a time is not needed: go straight to `raw`
        // when it is clear of every threshold in between).
        let mut l = prev;
        while l > raw {
            let clear = match l {
                DiskLevel::Full => space.avail_bytes >= self.reserve_bytes,
                _ => used < self.threshold(l) - HYSTERESIS_PCT,
            };
            if !clear {
                break;
            }
            l = match l {
                DiskLevel::Full => {
                    // Leaving Full lands on the step the percentage says (no hysteresis below it).
                    if used >= self.crops_pct { DiskLevel::NoCrops } else { DiskLevel::NoFrames }
                }
                DiskLevel::NoCrops => DiskLevel::NoFrames,
                DiskLevel::NoFrames => DiskLevel::Warn,
                DiskLevel::Warn | DiskLevel::Ok => DiskLevel::Ok,
            };
            if l < raw {
                l = raw;
            }
        }
        l
    }
}

/// The state a health view shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DiskState {
    pub level: DiskLevel,
    pub used_pct: f64,
    pub avail_bytes: u64,
    pub total_bytes: u64,
    /// Why the last reading failed, if it did (the level then stays where it was).
    pub error: Option<String>,
}

/// A change of step, for the log and the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: DiskLevel,
    pub to: DiskLevel,
    pub space: DiskSpace,
}

impl Transition {
    pub fn message(&self) -> String {
        format!(
            "disk watermark {} → {}: {} ({:.1}% used, {} MiB free of {} MiB)",
            self.from.as_str(),
            self.to.as_str(),
            self.to.describe(),
            self.space.used_pct(),
            self.space.avail_bytes / (1024 * 1024),
            self.space.total_bytes / (1024 * 1024)
        )
    }
}

/// Reads free space and keeps the current step; shared by every writer of the store.
pub struct DiskGuard {
    path: PathBuf,
    source: std::sync::Arc<dyn SpaceSource>,
    marks: Watermarks,
    state: std::sync::Mutex<DiskState>,
}

impl DiskGuard {
    pub fn new(path: PathBuf, source: std::sync::Arc<dyn SpaceSource>, marks: Watermarks) -> DiskGuard {
        DiskGuard {
            path,
            source,
            marks,
            state: std::sync::Mutex::new(DiskState {
                level: DiskLevel::Ok,
                used_pct: 0.0,
                avail_bytes: 0,
                total_bytes: 0,
                error: None,
            }),
        }
    }

    pub fn state(&self) -> DiskState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the space now; returns the step and, when it changed, the transition. A failed reading
    /// keeps the step (and is reported in the state): it neither stops nor frees writing.
    pub fn check(&self) -> (DiskLevel, Option<Transition>) {
        let reading = self.source.space(&self.path);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match reading {
            Err(e) => {
                st.error = Some(e.to_string());
                (st.level, None)
            }
            Ok(space) => {
                let prev = st.level;
                let level = self.marks.level(space, prev);
                *st = DiskState {
                    level,
                    used_pct: space.used_pct(),
                    avail_bytes: space.avail_bytes,
                    total_bytes: space.total_bytes,
                    error: None,
                };
                (level, (level != prev).then_some(Transition { from: prev, to: level, space }))
            }
        }
    }

    /// Forces the Full step after the disk refused a write (ENOSPC), until a reading says otherwise.
    pub fn mark_full(&self) -> Option<Transition> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let prev = st.level;
        st.level = DiskLevel::Full;
        (prev != DiskLevel::Full).then_some(Transition {
            from: prev,
            to: DiskLevel::Full,
            space: DiskSpace::unreserved(st.total_bytes, st.avail_bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn marks() -> Watermarks {
        Watermarks { warn_pct: 85.0, frames_pct: 90.0, crops_pct: 95.0, reserve_bytes: 64 * MIB }
    }

    fn at(pct: f64) -> DiskSpace {
        let total = 100_000 * MIB;
        DiskSpace::unreserved(total, (total as f64 * (100.0 - pct) / 100.0) as u64)
    }

    #[test]
    fn use_is_counted_as_df_counts_it() {
        // 258 GB disk, 54.7 GB used, 38.4 GB available to us: df says 59 %, not (total − avail)/total = 85 %.
        let s = DiskSpace { total_bytes: 258_019 * MIB, avail_bytes: 38_433 * MIB, free_bytes: 203_367 * MIB };
        assert!((s.used_pct() - 58.7).abs() < 0.1, "{}", s.used_pct());
        assert_eq!(marks().level(s, DiskLevel::Ok), DiskLevel::Ok);
    }

    #[test]
    fn steps_rise_with_use() {
        let m = marks();
        assert_eq!(m.level(at(50.0), DiskLevel::Ok), DiskLevel::Ok);
        assert_eq!(m.level(at(85.0), DiskLevel::Ok), DiskLevel::Warn);
        assert_eq!(m.level(at(92.0), DiskLevel::Ok), DiskLevel::NoFrames);
        assert_eq!(m.level(at(96.0), DiskLevel::Ok), DiskLevel::NoCrops);
        assert_eq!(m.level(DiskSpace::unreserved(100_000 * MIB, 63 * MIB), DiskLevel::Ok), DiskLevel::Full);
        assert_eq!(m.level(DiskSpace::unreserved(0, 0), DiskLevel::Ok), DiskLevel::Full);
    }

    #[test]
    fn steps_fall_with_hysteresis() {
        let m = marks();
        assert_eq!(m.level(at(84.5), DiskLevel::Warn), DiskLevel::Warn, "within hysteresis");
        assert_eq!(m.level(at(83.9), DiskLevel::Warn), DiskLevel::Ok);
        assert_eq!(m.level(at(89.5), DiskLevel::NoFrames), DiskLevel::NoFrames);
        assert_eq!(m.level(at(88.0), DiskLevel::NoFrames), DiskLevel::Warn);
        assert_eq!(m.level(at(10.0), DiskLevel::NoCrops), DiskLevel::Ok);
        // Out of Full as soon as the reserve is free, onto the step the percentage says.
        assert_eq!(m.level(at(96.0), DiskLevel::Full), DiskLevel::NoCrops);
        assert_eq!(m.level(at(50.0), DiskLevel::Full), DiskLevel::Ok);
    }

    #[test]
    fn level_gates() {
        assert!(DiskLevel::Warn.keeps_frames() && !DiskLevel::NoFrames.keeps_frames());
        assert!(DiskLevel::NoFrames.keeps_crops() && !DiskLevel::NoCrops.keeps_crops());
        assert!(DiskLevel::NoCrops.accepts_reads() && !DiskLevel::Full.accepts_reads());
    }

    #[test]
    fn statvfs_reads_a_real_filesystem() {
        let s = Statvfs.space(Path::new("/")).unwrap();
        assert!(s.total_bytes > 0 && s.avail_bytes <= s.total_bytes);
        assert!(Statvfs.space(Path::new("/no/such/dir/here")).is_err());
    }
}
