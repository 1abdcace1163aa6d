//! Characters a plate recognizer mistakes for one another, and matching that forgives them.
//!
//! Groups (each character stands for the others of its group): `0 O D Q`, `1 I 7`, `8 B`, `5 S`,
//! `2 Z`, `6 G`. The canonical form replaces each character by its group's first member, so two texts
//! that differ only by confusions have the same canonical form; the matcher's index is keyed by it.

/// The confusion groups; the first member of each is the canonical one (a digit), the second the letter
/// a pattern's letter slot turns that digit into ([`letter_for_digit`]). This is the one confusion table:
/// the hotlist matcher, the tracker's text distance and the recognizer's plate formats all read it.
pub const GROUPS: [&str; 6] = ["0ODQ", "1I7", "8B", "5S", "2Z", "6G"];

/// `CANONICAL[b]`: the canonical member of `b`'s group, built from [`GROUPS`] at compile time.
const CANONICAL: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = b as u8;
        b += 1;
    }
    let mut g = 0;
    while g < GROUPS.len() {
        let members = GROUPS[g].as_bytes();
        let mut i = 1;
        while i < members.len() {
            t[members[i] as usize] = members[0];
            i += 1;
        }
        g += 1;
    }
    t
};

/// The canonical member of `b`'s group, or `b` itself (wildcards and other characters stay).
pub const fn canonical_char(b: u8) -> u8 {
    CANONICAL[b as usize]
}

/// The letter a digit is read as where a plate format demands a letter (`0`→`O`, `1`→`I`, `8`→`B`,
/// `5`→`S`, `2`→`Z`, `6`→`G`): its group's second member.
pub fn letter_for_digit(c: char) -> Option<char> {
    GROUPS.iter().map(|g| g.as_bytes()).find(|g| char::from(g[0]) == c).map(|g| char::from(g[1]))
}

/// The digit a letter is read as where a plate format demands a digit: the inverse of
/// [`letter_for_digit`] (only a group's second member has one; `D`, `Q` and `7` stay as read).
pub fn digit_for_letter(c: char) -> Option<char> {
    GROUPS.iter().map(|g| g.as_bytes()).find(|g| char::from(g[1]) == c).map(|g| char::from(g[0]))
}

/// Canonical form of a normalised plate or pattern (upper case ASCII).
pub fn canonical(text: &[u8]) -> Vec<u8> {
    text.iter().map(|&b| canonical_char(b)).collect()
}

/// The fewest confusion substitutions that make `pattern` (`*` any run, `?` one character) match the
/// whole of `text`: `Some(0)` is a literal match, `None` no match even with confusions.
///
/// Dynamic programming over pattern × text (rows of `text.len() + 1` costs), because with `*` the
/// alignment that needs the fewest substitutions is not the first one a backtracking glob finds.
pub fn substitutions(pattern: &[u8], text: &[u8]) -> Option<u32> {
    const NO: u32 = u32::MAX;
    let n = text.len();
    // Plates are at most 16 characters: two rows fit on the stack; longer text goes to the heap.
    let mut stack = [NO; 2 * 33];
    let mut heap = Vec::new();
    let buf: &mut [u32] = if n <= 32 {
        &mut stack[..2 * (n + 1)]
    } else {
        heap.resize(2 * (n + 1), NO);
        &mut heap
    };
    let (mut row, mut next) = buf.split_at_mut(n + 1);
    // row[j]: cost of matching the pattern read so far against text[..j].
    row[0] = 0;
    for &p in pattern {
        if p == b'*' {
            let mut best = NO;
            for j in 0..=n {
                best = best.min(row[j]);
                next[j] = best;
            }
        } else {
            next[0] = NO;
            for j in 1..=n {
                let (prev, t) = (row[j - 1], text[j - 1]);
                next[j] = if prev == NO {
                    NO
                } else if p == b'?' || p == t {
                    prev
                } else if canonical_char(p) == canonical_char(t) {
                    prev + 1
                } else {
                    NO
                };
            }
        }
        std::mem::swap(&mut row, &mut next);
    }
    (row[n] != NO).then_some(row[n])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_group_member_maps_to_the_first() {
        for g in GROUPS {
            let first = g.as_bytes()[0];
            for &b in g.as_bytes() {
                assert_eq!(canonical_char(b), first);
            }
        }
        assert_eq!(canonical(b"OBD-7SZG?*Q"), b"080-1526?*0".to_vec());
        assert_eq!(canonical(b"AXY"), b"AXY".to_vec());
    }

    #[test]
    fn digit_and_letter_twins_are_each_groups_first_two() {
        let pairs: Vec<(char, char)> =
            "0123456789".chars().filter_map(|d| letter_for_digit(d).map(|l| (d, l))).collect();
        assert_eq!(pairs, vec![('0', 'O'), ('1', 'I'), ('2', 'Z'), ('5', 'S'), ('6', 'G'), ('8', 'B')]);
        for (d, l) in pairs {
            assert_eq!(digit_for_letter(l), Some(d));
        }
        assert_eq!(digit_for_letter('D'), None);
        assert_eq!(digit_for_letter('7'), None);
        assert_eq!(letter_for_digit('7'), None);
        assert_eq!(letter_for_digit('X'), None);
    }

    #[test]
    fn substitutions_count_the_confusions() {
        assert_eq!(substitutions(b"ABC1234", b"ABC1234"), Some(0));
        assert_eq!(substitutions(b"ABC1234", b"A8C1234"), Some(1));
        assert_eq!(substitutions(b"ABC1234", b"A8CI234"), Some(2));
        assert_eq!(substitutions(b"ABC1234", b"ABC1235"), None);
        assert_eq!(substitutions(b"ABC1234", b"ABC123"), None);
        assert_eq!(substitutions(b"7AB*", b"TAB12"), None);
        assert_eq!(substitutions(b"7AB*", b"1A812"), Some(2));
        assert_eq!(substitutions(b"?BC1234", b"Z8C1234"), Some(1));
        // `*` lets the pattern's literal land on the text's `0` rather than its `O`.
        assert_eq!(substitutions(b"*0", b"0O0"), Some(0));
        assert_eq!(substitutions(b"A*0*", b"AOX0"), Some(0));
        assert_eq!(substitutions(b"A*0", b"AO"), Some(1));
        assert_eq!(substitutions(b"AB", &[b'A'; 40]), None);
        assert_eq!(substitutions(b"*B", &[b'8'; 40]), Some(1));
    }

    /// Reference: try every alignment recursively.
    fn naive(p: &[u8], s: &[u8]) -> Option<u32> {
        match (p.first(), s.first()) {
            (None, None) => Some(0),
            (Some(b'*'), _) => {
                let skip = naive(&p[1..], s);
                let eat = if s.is_empty() { None } else { naive(p, &s[1..]) };
                match (skip, eat) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            (Some(b'?'), Some(_)) => naive(&p[1..], &s[1..]),
            (Some(&a), Some(&b)) if a == b => naive(&p[1..], &s[1..]),
            (Some(&a), Some(&b)) if canonical_char(a) == canonical_char(b) => naive(&p[1..], &s[1..]).map(|c| c + 1),
            _ => None,
        }
    }

    proptest! {
        #[test]
        fn substitutions_agree_with_reference(p in "[0OD18B*?]{1,8}", s in "[0OD18B]{0,8}") {
            prop_assert_eq!(substitutions(p.as_bytes(), s.as_bytes()), naive(p.as_bytes(), s.as_bytes()));
        }

        #[test]
        fn equal_canonical_forms_are_the_confusion_matches(a in "[0OD18BX]{1,8}", b in "[0OD18BX]{1,8}") {
            prop_assert_eq!(canonical(a.as_bytes()) == canonical(b.as_bytes()), substitutions(a.as_bytes(), b.as_bytes()).is_some());
        }
    }
}
