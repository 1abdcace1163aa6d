//! Wall clock and its synchronisation state, behind a trait so retention can be tested on any clock.

pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch, UTC.
    fn now_ms(&self) -> i64;
    /// Whether the kernel believes the clock is disciplined by NTP/PTP; None when it cannot tell.
    fn synchronised(&self) -> Option<bool>;
    /// Milliseconds of a clock that only moves forward at a steady rate and that no one can set
    /// (CLOCK_MONOTONIC), counted from an arbitrary start. Retention's trusted time is built on it.
    fn monotonic_ms(&self) -> i64;
}

/// The wall clock now, in milliseconds since the Unix epoch, UTC: [`SystemClock`]'s reading, for code
/// that does not take a [`Clock`].
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        now_ms()
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

    fn monotonic_ms(&self) -> i64 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_millis() as i64
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

    /// A fixed clock is a right one: its monotonic time is its wall time.
    fn monotonic_ms(&self) -> i64 {
        self.now
    }
}

/// A clock whose wall time and monotonic time are set apart: for tests of a wall clock that jumps
/// while real time goes on.
#[derive(Debug, Clone, Copy)]
pub struct ManualClock {
    pub wall_ms: i64,
    pub mono_ms: i64,
    pub synced: Option<bool>,
}

impl ManualClock {
    /// Real time passes: both clocks move.
    pub fn pass(&mut self, ms: i64) {
        self.wall_ms += ms;
        self.mono_ms += ms;
    }

    /// Someone sets the wall clock: only it moves.
    pub fn set_wall(&mut self, wall_ms: i64) {
        self.wall_ms = wall_ms;
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.wall_ms
    }

    fn synchronised(&self) -> Option<bool> {
        self.synced
    }

    fn monotonic_ms(&self) -> i64 {
        self.mono_ms
    }
}
