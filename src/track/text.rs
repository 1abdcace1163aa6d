//! How alike two readings of a plate are, forgiving the characters OCR confuses
//! ([`crate::domain::confusion`]): one car whose text flickers between misreads must stay one track.

use crate::domain::confusion::canonical_char;

/// Edit distance (Levenshtein) where substituting a character of the same confusion group costs
/// `confusable_cost` and any other substitution, insertion or deletion costs 1. A metric for
/// `confusable_cost` in 0..=1 (the groups are an equivalence), which the tracker's gates rely on.
pub fn distance(a: &[u8], b: &[u8], confusable_cost: f32) -> f32 {
    // Two rows of the DP table; plates are at most 16 characters.
    let mut prev: Vec<f32> = (0..=b.len()).map(|j| j as f32).collect();
    let mut cur = vec![0.0f32; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = (i + 1) as f32;
        for (j, &cb) in b.iter().enumerate() {
            let sub = if ca == cb {
                0.0
            } else if canonical_char(ca) == canonical_char(cb) {
                confusable_cost
            } else {
                1.0
            };
            cur[j + 1] = (prev[j] + sub).min(prev[j + 1] + 1.0).min(cur[j] + 1.0);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// 1 − distance / longer length, in 0..=1: 1 for equal texts, 0 for texts with nothing in common.
pub fn similarity(a: &[u8], b: &[u8], confusable_cost: f32) -> f32 {
    let n = a.len().max(b.len());
    if n == 0 {
        return 1.0;
    }
    (1.0 - distance(a, b, confusable_cost) / n as f32).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const C: f32 = 0.25;

    #[test]
    fn confusions_are_cheap_other_errors_are_not() {
        assert_eq!(distance(b"7ABC123", b"7ABC123", C), 0.0);
        assert_eq!(distance(b"7ABC123", b"7A8C123", C), 0.25);
        assert_eq!(distance(b"7ABC123", b"TABC123", C), 1.0);
        assert_eq!(distance(b"7ABC123", b"7ABC12", C), 1.0);
        assert_eq!(distance(b"7ABC123", b"17ABC123", C), 1.0);
        assert_eq!(distance(b"0OD", b"ODQ", C), 0.75);
        assert_eq!(distance(b"", b"ABC", C), 3.0);
        assert!((similarity(b"7ABC123", b"7A8C123", C) - (1.0 - 0.25 / 7.0)).abs() < 1e-6);
        assert_eq!(similarity(b"", b"", C), 1.0);
        assert_eq!(similarity(b"ABC", b"XYZ", C), 0.0);
        // Two cars a lane apart with plates one digit apart: text alone cannot tell them apart.
        assert!(similarity(b"7ABC123", b"7ABC128", C) > 0.8);
        assert!(similarity(b"7ABC123", b"KXM4490", C) < 0.3);
    }

    proptest! {
        #[test]
        fn distance_is_a_metric(a in "[0OD18BAX]{0,7}", b in "[0OD18BAX]{0,7}", c in "[0OD18BAX]{0,7}", cost in 0.0f32..=1.0) {
            let (a, b, c) = (a.as_bytes(), b.as_bytes(), c.as_bytes());
            prop_assert_eq!(distance(a, a, cost), 0.0);
            prop_assert!((distance(a, b, cost) - distance(b, a, cost)).abs() < 1e-4);
            prop_assert!(distance(a, c, cost) <= distance(a, b, cost) + distance(b, c, cost) + 1e-4);
            let s = similarity(a, b, cost);
            prop_assert!((0.0..=1.0).contains(&s));
        }
    }
}
