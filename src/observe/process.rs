//! The process collector: resident memory, threads, open file descriptors and their limit, CPU time and
//! start time, under the names every Prometheus client library uses (`process_*`). Read from /proc/self by
//! the maintained `procfs` crate.

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    pub resident_memory_bytes: u64,
    pub virtual_memory_bytes: u64,
    pub threads: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub cpu_seconds: f64,
    pub start_time_seconds: f64,
}

/// This process now; None where /proc cannot be read (a box without procfs).
pub fn sample() -> Option<ProcessSample> {
    let me = procfs::process::Process::myself().ok()?;
    let stat = me.stat().ok()?;
    let ticks = procfs::ticks_per_second() as f64;
    let boot = procfs::boot_time_secs().ok().map(|b| b as f64).unwrap_or(0.0);
    let max_fds = me.limits().ok().and_then(|l| match l.max_open_files.soft_limit {
        procfs::process::LimitValue::Value(v) => Some(v),
        procfs::process::LimitValue::Unlimited => None,
    });
    Some(ProcessSample {
        resident_memory_bytes: stat.rss * procfs::page_size(),
        virtual_memory_bytes: stat.vsize,
        threads: stat.num_threads.max(0) as u64,
        open_fds: me.fd_count().map(|n| n as u64).unwrap_or(0),
        max_fds,
        cpu_seconds: (stat.utime + stat.stime) as f64 / ticks,
        start_time_seconds: boot + stat.starttime as f64 / ticks,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_is_sampled() {
        let s = super::sample().expect("/proc/self is readable on Linux");
        assert!(s.resident_memory_bytes > 1 << 20, "{s:?}");
        assert!(s.threads >= 1 && s.open_fds >= 3, "{s:?}");
        let now = jiff::Timestamp::now().as_second() as f64;
        assert!(s.start_time_seconds > now - 86_400.0 && s.start_time_seconds <= now + 1.0, "{s:?}");
    }
}
