//! Which broker of `[mqtt] hosts` the uplink tries next, and whether it waits first; free of I/O.
//!
//! The list is tried in order. When a connection ends, or cannot be made, the next broker is tried at
//! once; only when every broker failed since the last healthy connection (one that stayed up
//! `healthy_after`) does the uplink wait, with the growing, jittered backoff. With one broker that is a
//! wait after every failure, as before the list. The uplink stays on a broker while it works (no
//! failing back to the first): the brokers of a list are peers, a cluster's nodes or a pair.

/// What to do before the next connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Try the next broker at once.
    NextBroker,
    /// Every broker failed this round: wait the next backoff delay.
    Backoff,
}

#[derive(Debug, Clone)]
pub struct Rotation {
    len: usize,
    current: usize,
    /// Failed attempts since the last healthy connection.
    failures: usize,
}

impl Rotation {
    /// A rotation over `len` brokers (at least one is assumed; 0 behaves as 1).
    pub fn new(len: usize) -> Rotation {
        Rotation { len: len.max(1), current: 0, failures: 0 }
    }

    /// The position in the list of the broker to try now.
    pub fn current(&self) -> usize {
        self.current
    }

    /// The attempt on the current broker ended (`healthy`: the connection had stayed up long enough
    /// to count as working). Moves on to the next broker and says whether to wait first.
    pub fn failed(&mut self, healthy: bool) -> Wait {
        if healthy {
            self.failures = 0;
        }
        self.failures += 1;
        self.current = (self.current + 1) % self.len;
        if self.failures.is_multiple_of(self.len) { Wait::Backoff } else { Wait::NextBroker }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_broker_waits_after_every_failure() {
        let mut r = Rotation::new(1);
        for healthy in [false, true, false] {
            assert_eq!(r.failed(healthy), Wait::Backoff);
            assert_eq!(r.current(), 0);
        }
    }

    #[test]
    fn a_list_fails_over_at_once_and_waits_only_after_a_full_round() {
        let mut r = Rotation::new(3);
        assert_eq!(r.current(), 0);
        // Connected to the first, then it died: the second at once, the third at once, then wait.
        assert_eq!(r.failed(true), Wait::NextBroker);
        assert_eq!(r.current(), 1);
        assert_eq!(r.failed(false), Wait::NextBroker);
        assert_eq!(r.current(), 2);
        assert_eq!(r.failed(false), Wait::Backoff);
        assert_eq!(r.current(), 0);
        // The next round goes the same way, waiting again after it.
        assert_eq!(r.failed(false), Wait::NextBroker);
        assert_eq!(r.failed(false), Wait::NextBroker);
        assert_eq!(r.failed(false), Wait::Backoff);
        // Working on the second, it dies: the third at once.
        assert_eq!(r.failed(false), Wait::NextBroker);
        assert_eq!(r.current(), 1);
        assert_eq!(r.failed(true), Wait::NextBroker);
        assert_eq!(r.current(), 2);
    }

    #[test]
    fn an_empty_list_behaves_as_one() {
        let mut r = Rotation::new(0);
        assert_eq!((r.current(), r.failed(false), r.current()), (0, Wait::Backoff, 0));
    }
}
