//! Passwords: the rules a new password must meet (CJIS Security Policy IA-5(1), NIST SP 800-63B 5.1.1.2) and
//! argon2id hashing as PHC strings.
//!
//! Rules: 8 to 256 characters (Unicode scalar values, so `ä` counts once), not on the shipped banned
//! list (whole password, case-insensitive), not containing the username. No composition rules and no
//! forced periodic change: 800-63B says they make passwords weaker, not stronger.
//!
//! Nothing here ever puts a password into an error, a log line or a `Debug` output.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::OnceLock;

pub const MIN_CHARS: usize = 8;
pub const MAX_CHARS: usize = 256;

/// argon2id memory in KiB: 19 MiB, OWASP's minimum for argon2id with t = 2. Enough to make GPU
/// guessing costly, small enough for a 4 GB board serving a handful of logins at a time.
pub const ARGON2_M_KIB: u32 = 19 * 1024;
/// Passes over memory.
pub const ARGON2_T: u32 = 2;
/// Lanes: 1, since a 2-core box also runs ingest and the daemon should not stall on a login.
pub const ARGON2_P: u32 = 1;

const BANNED: &str = include_str!("banned_passwords.txt");

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("the password is too short: at least {MIN_CHARS} characters")]
    TooShort,
    #[error("the password is too long: at most {MAX_CHARS} characters")]
    TooLong,
    #[error("the password is on the list of common or easily guessed passwords")]
    Banned,
    #[error("the password contains the username")]
    ContainsUsername,
    #[error("the new password must differ from the current one")]
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("no randomness for a salt: {0}")]
    Random(String),
    #[error("argon2: {0}")]
    Argon2(String),
}

fn banned() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        BANNED.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_lowercase).collect()
    })
}

/// Why `password` may not be set for `username`, or None when it may.
pub fn password_problem(password: &str, username: &str) -> Option<PasswordProblem> {
    let chars = password.chars().count();
    if chars < MIN_CHARS {
        return Some(PasswordProblem::TooShort);
    }
    if chars > MAX_CHARS {
        return Some(PasswordProblem::TooLong);
    }
    let lower = password.to_lowercase();
    if banned().contains(&lower) {
        return Some(PasswordProblem::Banned);
    }
    let name = username.trim().to_lowercase();
    // A one- or two-letter username is inside too many good passwords to forbid it as a substring.
    let contains = if name.chars().count() >= 3 { lower.contains(&name) } else { !name.is_empty() && lower == name };
    if contains {
        return Some(PasswordProblem::ContainsUsername);
    }
    None
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The argon2id PHC string of `password` with a fresh 16-byte random salt.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| HashError::Random(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Argon2(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Argon2(e.to_string()))
}

/// Whether `password` matches the stored PHC string. The parameters come from the string, so hashes
/// made with other settings still verify; anything but argon2id, or a malformed string, is a mismatch.
/// The comparison is constant-time (the crate compares outputs with `subtle`).
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()
}

/// Spends the time of one verification without a stored hash, so an unknown username answers as slowly
/// as a wrong password and does not reveal which usernames exist.
pub fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<Option<String>> = OnceLock::new();
    if let Some(h) = DUMMY.get_or_init(|| hash_password("polewatch: no such user").ok()) {
        let _ = verify_password(password, h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(password_problem("", "jdoe"), Some(PasswordProblem::TooShort));
        assert_eq!(password_problem("tr0ub4d", "jdoe"), Some(PasswordProblem::TooShort));
        assert_eq!(password_problem("tr0ub4dx", "jdoe"), None, "8 characters is enough");
        // 7 characters, 14 bytes: too short although the bytes would pass.
        assert_eq!(password_problem("äöüßéèà", "jdoe"), Some(PasswordProblem::TooShort));
        assert_eq!(password_problem("äöüßéèàç", "jdoe"), None);
        assert_eq!(password_problem(&"ж".repeat(256), "jdoe"), None, "256 two-byte characters are allowed");
        assert_eq!(password_problem(&"ж".repeat(257), "jdoe"), Some(PasswordProblem::TooLong));
    }

    #[test]
    fn banned_list_is_case_insensitive_and_has_the_context_words() {
        for p in
            ["password1", "PASSWORD1", "Police123", "polewatch", "PoleWatch", "12345678", "qwertyuiop", "thinblueline"]
        {
            assert_eq!(password_problem(p, "jdoe"), Some(PasswordProblem::Banned), "{p}");
        }
        assert!(banned().len() > 300, "{}", banned().len());
        assert!(banned().iter().all(|w| w.chars().count() >= MIN_CHARS), "short entries are dead weight");
        assert_eq!(password_problem("a polewatch passphrase", "jdoe"), None, "whole-password match only");
    }

    #[test]
    fn username_inside_is_refused() {
        assert_eq!(password_problem("jdoe-rocks-2026", "jdoe"), Some(PasswordProblem::ContainsUsername));
        assert_eq!(password_problem("xxJDOExxyy", "jdoe"), Some(PasswordProblem::ContainsUsername));
        assert_eq!(password_problem("quite-bad-idea", "bad"), Some(PasswordProblem::ContainsUsername));
        // Two-letter usernames are only refused as the whole password (which is too short anyway).
        assert_eq!(password_problem("kj-mountain-river", "kj"), None);
    }

    #[test]
    fn no_composition_rules() {
        for p in ["correcthorsebatterystaple", "aaaaaaab", "        x", "🙂🙂🙂🙂🙂🙂🙂🙂"] {
            assert_eq!(password_problem(p, "jdoe"), None, "{p}");
        }
    }

    #[test]
    fn problems_never_echo_the_password() {
        for p in ["zq9#", "password1", "jdoe-secret-jdoe"] {
            let e = password_problem(p, "jdoe").unwrap();
            assert!(!e.to_string().contains(p) && !format!("{e:?}").contains(p));
        }
    }

    #[test]
    fn hash_is_argon2id_with_the_stated_parameters_and_verifies() {
        let h = hash_password("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_password("correct horse battery staple", &h));
        assert!(!verify_password("correct horse battery stapl", &h));
        assert!(!verify_password("correct horse battery staple", "not a phc string"));
        assert_ne!(h, hash_password("correct horse battery staple").unwrap(), "salted");
    }

    #[test]
    fn other_algorithms_are_refused() {
        let params = Params::new(1024, 1, 1, None).unwrap();
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"pw-pw-pw-pw", &salt)
            .unwrap()
            .to_string();
        assert!(!verify_password("pw-pw-pw-pw", &argon2i));
    }

    proptest! {
        #[test]
        fn length_rule_matches_char_count(s in "\\PC{0,300}") {
            let n = s.chars().count();
            let p = password_problem(&s, "someone");
            prop_assert_eq!(p == Some(PasswordProblem::TooShort), n < MIN_CHARS);
            prop_assert_eq!(p == Some(PasswordProblem::TooLong), n > MAX_CHARS);
        }
    }
}
