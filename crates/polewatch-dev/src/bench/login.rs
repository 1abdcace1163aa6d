//! `polewatch-dev bench login`: the time of one argon2id password hash and one login verification with
//! the daemon's parameters ([`crate::access::password`]).

use crate::access::password::{ARGON2_M_KIB, ARGON2_P, ARGON2_T, hash_password, verify_password};

/// Figures: the parameters in use, then one hash and one verification in ms (a release build).
pub fn bench(rounds: usize) -> Vec<(String, f64, &'static str)> {
    let rounds = rounds.max(1);
    let t = std::time::Instant::now();
    let mut h = String::new();
    for _ in 0..rounds {
        h = hash_password("correct horse battery staple").unwrap_or_default();
    }
    let hash_ms = t.elapsed().as_secs_f64() * 1000.0 / rounds as f64;
    let t = std::time::Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(verify_password("correct horse battery staple", &h));
    }
    let verify_ms = t.elapsed().as_secs_f64() * 1000.0 / rounds as f64;
    vec![
        ("argon2id_m_kib".into(), ARGON2_M_KIB as f64, "KiB"),
        ("argon2id_t".into(), ARGON2_T as f64, ""),
        ("argon2id_p".into(), ARGON2_P as f64, ""),
        ("password_hash_ms".into(), hash_ms, "ms"),
        ("login_verify_ms".into(), verify_ms, "ms"),
    ]
}
