//! Console sessions, in memory: a restart logs everyone out, which is the safe direction.
//!
//! A session ends after `idle_ms` without a request or `absolute_ms` after login, whichever comes
//! first (CJIS 5.5.5 session lock; config `api.session_idle_minutes`, `api.session_absolute_hours`).
//! Whether the user may still act (locked, training lapsed) is checked per request with
//! [`super::users::may_act`]; a session says only who logged in and when.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

/// 32 random bytes, hex: 256 bits, unguessable and safe in a cookie or header.
pub const TOKEN_BYTES: usize = 32;

/// Most sessions one user holds at once (CJIS AC-10, concurrent session control). A login beyond it ends
/// the user's oldest session: a forgotten browser tab cannot lock its owner out, and a stolen token
/// does not outlive three newer logins.
pub const MAX_SESSIONS_PER_USER: usize = 3;

#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub token: String,
    pub username: String,
    pub created_ms: i64,
    pub last_seen_ms: i64,
}

impl fmt::Debug for Session {
    // The token is a bearer secret: it stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("token", &"<redacted>")
            .field("username", &self.username)
            .field("created_ms", &self.created_ms)
            .field("last_seen_ms", &self.last_seen_ms)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionEnded {
    #[error("the session ended after inactivity; log in again")]
    Idle,
    #[error("the session reached its maximum length; log in again")]
    Absolute,
    #[error("no such session; log in")]
    Unknown,
}

#[derive(Debug, thiserror::Error)]
#[error("no randomness for a session token: {0}")]
pub struct TokenError(String);

pub struct Sessions {
    idle_ms: i64,
    absolute_ms: i64,
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(idle_ms: i64, absolute_ms: i64) -> Sessions {
        Sessions { idle_ms, absolute_ms, map: Mutex::new(HashMap::new()) }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // A panic elsewhere while holding the lock leaves the map consistent (single inserts/removes).
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn create(&self, username: &str, now_ms: i64) -> Result<Session, TokenError> {
        let mut b = [0u8; TOKEN_BYTES];
        getrandom::getrandom(&mut b).map_err(|e| TokenError(e.to_string()))?;
        let token = hex::encode(b);
        let s =
            Session { token: token.clone(), username: username.to_string(), created_ms: now_ms, last_seen_ms: now_ms };
        let mut map = self.map();
        map.retain(|_, s| self.ended(s, now_ms).is_none());
        let mut mine: Vec<(i64, String)> =
            map.values().filter(|x| x.username == username).map(|x| (x.created_ms, x.token.clone())).collect();
        mine.sort();
        let over = (mine.len() + 1).saturating_sub(MAX_SESSIONS_PER_USER);
        for (_, t) in mine.into_iter().take(over) {
            map.remove(&t);
        }
        map.insert(token, s.clone());
        Ok(s)
    }

    /// Live sessions of one user.
    pub fn count_for(&self, username: &str, now_ms: i64) -> usize {
        self.map().values().filter(|s| s.username == username && self.ended(s, now_ms).is_none()).count()
    }

    fn ended(&self, s: &Session, now_ms: i64) -> Option<SessionEnded> {
        if now_ms - s.created_ms >= self.absolute_ms {
            Some(SessionEnded::Absolute)
        } else if now_ms - s.last_seen_ms >= self.idle_ms {
            Some(SessionEnded::Idle)
        } else {
            None
        }
    }

    /// The session behind `token`, its idle timer restarted; an expired one is removed.
    pub fn touch(&self, token: &str, now_ms: i64) -> Result<Session, SessionEnded> {
        let mut map = self.map();
        let s = map.get_mut(token).ok_or(SessionEnded::Unknown)?;
        if let Some(why) = self.ended(s, now_ms) {
            map.remove(token);
            return Err(why);
        }
        s.last_seen_ms = s.last_seen_ms.max(now_ms);
        Ok(s.clone())
    }

    /// Whether the session behind `token` is still open, without restarting its idle timer (a live
    /// stream checks this: watching is not activity).
    pub fn alive(&self, token: &str, now_ms: i64) -> bool {
        self.map().get(token).is_some_and(|s| self.ended(s, now_ms).is_none())
    }

    pub fn end(&self, token: &str) -> Option<Session> {
        self.map().remove(token)
    }

    /// Ends every session of a user (locked, password changed); returns how many.
    pub fn end_user(&self, username: &str) -> usize {
        let mut map = self.map();
        let before = map.len();
        map.retain(|_, s| s.username != username);
        before - map.len()
    }

    /// Sessions not yet expired at `now_ms`.
    pub fn active(&self, now_ms: i64) -> usize {
        self.map().values().filter(|s| self.ended(s, now_ms).is_none()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    fn sessions() -> Sessions {
        Sessions::new(30 * MIN, 12 * HOUR)
    }

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let s = sessions();
        let a = s.create("jdoe", 0).unwrap();
        let b = s.create("jdoe", 0).unwrap();
        assert_eq!(a.token.len(), 64);
        assert!(a.token.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.token, b.token);
        assert!(!format!("{a:?}").contains(&a.token));
    }

    #[test]
    fn idle_expiry() {
        let s = sessions();
        let t = s.create("jdoe", 0).unwrap().token;
        assert!(s.touch(&t, 29 * MIN).is_ok());
        // Each request restarts the idle timer.
        assert!(s.touch(&t, 58 * MIN).is_ok());
        assert_eq!(s.touch(&t, 88 * MIN), Err(SessionEnded::Idle));
        assert_eq!(s.touch(&t, 88 * MIN), Err(SessionEnded::Unknown), "an ended session is gone");
    }

    #[test]
    fn absolute_expiry_even_when_busy() {
        let s = sessions();
        let t = s.create("jdoe", 0).unwrap().token;
        let mut now = 0;
        while now + 10 * MIN < 12 * HOUR {
            now += 10 * MIN;
            assert!(s.touch(&t, now).is_ok(), "{now}");
        }
        assert_eq!(s.touch(&t, 12 * HOUR), Err(SessionEnded::Absolute));
    }

    #[test]
    fn end_and_end_user() {
        let s = sessions();
        let a = s.create("jdoe", 0).unwrap().token;
        let b = s.create("jdoe", 0).unwrap().token;
        let c = s.create("asmith", 0).unwrap().token;
        assert!(s.end(&a).is_some());
        assert_eq!(s.touch(&a, 1), Err(SessionEnded::Unknown));
        assert_eq!(s.end_user("jdoe"), 1);
        assert_eq!(s.touch(&b, 1), Err(SessionEnded::Unknown));
        assert!(s.touch(&c, 1).is_ok());
        assert_eq!(s.touch("nope", 1), Err(SessionEnded::Unknown));
    }

    #[test]
    fn a_user_holds_at_most_three_sessions_and_the_oldest_goes() {
        let s = sessions();
        let t: Vec<String> = (0..5).map(|i| s.create("jdoe", i).unwrap().token).collect();
        let other = s.create("asmith", 0).unwrap().token;
        assert_eq!(s.count_for("jdoe", 5), MAX_SESSIONS_PER_USER);
        assert_eq!(s.touch(&t[0], 5), Err(SessionEnded::Unknown));
        assert_eq!(s.touch(&t[1], 5), Err(SessionEnded::Unknown));
        for live in &t[2..] {
            assert!(s.touch(live, 5).is_ok());
        }
        assert!(s.touch(&other, 5).is_ok(), "another user's session is untouched");
    }

    #[test]
    fn expired_sessions_are_dropped_on_create() {
        let s = sessions();
        s.create("a", 0).unwrap();
        s.create("b", 0).unwrap();
        assert_eq!(s.active(0), 2);
        s.create("c", 31 * MIN).unwrap();
        assert_eq!(s.map().len(), 1);
    }
}
