//! The login gate. argon2id holds 19 MiB for each password it checks; 128 logins at once took the
//! daemon from 340 MB to 2.49 GB, kept until restart. So, before any hashing:
//!
//! 1. a rate limit per source address ([`PER_SOURCE_BURST`] attempts, then [`PER_SOURCE_PER_MINUTE`] a
//!    minute; `governor`'s keyed limiter): past it, 429 and no hashing at all;
//! 2. at most [`MAX_CONCURRENT`] verifications at once (a tokio semaphore): past it, 503 at once, so a
//!    flood from many addresses queues nothing and holds no memory.
//!
//! When the last verification ends, the freed argon2 blocks go back to the system (`malloc_trim`:
//! glibc otherwise keeps them in its per-thread arenas).

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use governor::clock::DefaultClock;
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Password verifications running at once (the box has 2 cores; each holds 19 MiB).
pub const MAX_CONCURRENT: usize = 2;
/// Attempts one source address may make at once before the per-minute rate applies.
pub const PER_SOURCE_BURST: u32 = 20;
/// Sustained attempts per source address and minute.
pub const PER_SOURCE_PER_MINUTE: u32 = 10;

type Limiter = RateLimiter<IpAddr, HashMapStateStore<IpAddr>, DefaultClock>;

pub struct LoginGate {
    verifying: Arc<Semaphore>,
    per_source: Limiter,
    admitted: AtomicU64,
}

/// Why an attempt was not even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// 429: this address tried too often.
    TooOften,
    /// 503: the verifications in flight are at the bound.
    Busy,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let (status, retry, msg) = match self {
            Refused::TooOften => {
                (StatusCode::TOO_MANY_REQUESTS, "60", "too many login attempts from this address; wait a minute")
            }
            Refused::Busy => (StatusCode::SERVICE_UNAVAILABLE, "2", "too many logins at once; try again in a moment"),
        };
        (status, [(header::RETRY_AFTER, retry)], Json(serde_json::json!({ "error": msg }))).into_response()
    }
}

impl Default for LoginGate {
    fn default() -> Self {
        LoginGate::new()
    }
}

impl LoginGate {
    pub fn new() -> LoginGate {
        let burst = NonZeroU32::new(PER_SOURCE_BURST).unwrap_or(NonZeroU32::MIN);
        let rate = NonZeroU32::new(PER_SOURCE_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        LoginGate {
            verifying: Arc::new(Semaphore::new(MAX_CONCURRENT)),
            per_source: RateLimiter::hashmap(Quota::per_minute(rate).allow_burst(burst)),
            admitted: AtomicU64::new(0),
        }
    }

    /// A permit to verify one password for `source`, or why not. Hold it until the verification ends.
    pub fn admit(&self, source: IpAddr) -> Result<OwnedSemaphorePermit, Refused> {
        if self.admitted.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            // Forget addresses whose allowance is full again, so the map stays small.
            self.per_source.retain_recent();
        }
        if self.per_source.check_key(&source).is_err() {
            log::warn!(source = source.to_string().as_str(); "login attempts from one address over the rate limit: refused before hashing");
            return Err(Refused::TooOften);
        }
        self.verifying.clone().try_acquire_owned().map_err(|_| Refused::Busy)
    }

    /// Ends a verification; the last one out returns the freed memory to the system.
    pub fn done(&self, permit: OwnedSemaphorePermit) {
        drop(permit);
        if self.verifying.available_permits() == MAX_CONCURRENT {
            release_free_memory();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own arenas and returns free pages; no pointer is involved.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_over_its_burst_is_refused_before_any_permit_is_taken() {
        let g = LoginGate::new();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..PER_SOURCE_BURST {
            let p = g.admit(a).unwrap();
            g.done(p);
        }
        assert_eq!(g.admit(a).err(), Some(Refused::TooOften));
        assert_eq!(g.verifying.available_permits(), MAX_CONCURRENT, "a refusal holds no permit");
        assert!(g.admit(b).is_ok(), "another address has its own allowance");
    }

    #[test]
    fn verifications_past_the_bound_are_refused_not_queued() {
        let g = LoginGate::new();
        let held: Vec<_> = (0..MAX_CONCURRENT).map(|i| g.admit(IpAddr::from([10, 0, 1, i as u8])).unwrap()).collect();
        assert_eq!(g.admit("10.0.2.1".parse().unwrap()).err(), Some(Refused::Busy));
        for p in held {
            g.done(p);
        }
        assert!(g.admit("10.0.2.1".parse().unwrap()).is_ok());
    }
}
