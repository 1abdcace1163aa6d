//! Wall clock and its synchronisation state, behind a trait so retention can be tested on any clock.

pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch, UTC.
    fn now_ms(&self) -> i64;
    /// Whether the kernel believes the clock is disciplined by NTP/PTP; None when it cannot tell.
    fn synchronised(&self) -> Option<bool>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        jiff::Timestamp::now().as_millisecond()
    }

    fn synchronised(&self) -> Option<bool> {
        // adjtimex with modes = 0 only reads the kernel's NTP state; TIME_ERROR / STA_UNSYNC mean no sync.
        // SAFETY: timex is plain old data; a zeroed value is a valid read-only request.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        let state = unsafe { libc::adjtimex(&mut tx) };
        if state < 0 {
            return None;
        }
        Some(state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0)
    }
}

/// A clock that says what it is told: for benchmarks and tests of time-dependent rules.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock {
    pub now: i64,
    pub synced: Option<bool>,
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.now
    }

    fn synchronised(&self) -> Option<bool> {
        self.synced
    }
}
