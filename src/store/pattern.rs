//! Plate search patterns (`ABC1234`, `7AB*`, `?BC1234`, `*123`) and how to scan the plate indexes for
//! them: by the longest literal prefix (forward index) or suffix (reversed index), never a full scan
//! unless the pattern has no literal end at all.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("empty search pattern")]
    Empty,
    #[error("search pattern may hold only A-Z, 0-9, * (any run) and ? (one character)")]
    BadChar,
    #[error("search pattern is longer than 32 characters")]
    TooLong,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatePattern {
    text: Vec<u8>,
}

/// Which index to walk and with which key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// No wildcard: the index entries of exactly this plate.
    Exact(Vec<u8>),
    /// Forward index entries starting with these bytes.
    Prefix(Vec<u8>),
    /// Reversed index entries starting with these bytes (the literal suffix, reversed).
    ReversedPrefix(Vec<u8>),
    /// Every entry of the forward index.
    All,
}

impl PlatePattern {
    pub fn parse(s: &str) -> Result<PlatePattern, PatternError> {
        let text: Vec<u8> = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .flat_map(|c| c.to_uppercase())
            .map(|c| if c.is_ascii() { c as u8 } else { 0 })
            .collect();
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.len() > 32 {
            return Err(PatternError::TooLong);
        }
        if !text.iter().all(|&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'*' || b == b'?') {
            return Err(PatternError::BadChar);
        }
        Ok(PlatePattern { text })
    }

    pub fn is_exact(&self) -> bool {
        !self.text.iter().any(|&b| b == b'*' || b == b'?')
    }

    pub fn scan(&self) -> Scan {
        if self.is_exact() {
            return Scan::Exact(self.text.clone());
        }
        let wild = |b: &u8| *b == b'*' || *b == b'?';
        let prefix: Vec<u8> = self.text.iter().take_while(|b| !wild(b)).copied().collect();
        let suffix: Vec<u8> = self.text.iter().rev().take_while(|b| !wild(b)).copied().collect();
        if prefix.is_empty() && suffix.is_empty() {
            Scan::All
        } else if suffix.len() > prefix.len() {
            Scan::ReversedPrefix(suffix)
        } else {
            Scan::Prefix(prefix)
        }
    }

    /// Glob match of a whole plate.
    pub fn matches(&self, plate: &[u8]) -> bool {
        glob(&self.text, plate)
    }
}

/// Iterative glob with backtracking to the last `*`: linear in practice, no recursion.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(p: &str, s: &str) -> bool {
        PlatePattern::parse(p).unwrap().matches(s.as_bytes())
    }

    #[test]
    fn wildcards() {
        assert!(m("7AB*", "7AB1234"));
        assert!(m("7AB*", "7AB"));
        assert!(!m("7AB*", "17AB"));
        assert!(m("?BC1234", "ABC1234"));
        assert!(!m("?BC1234", "BC1234"));
        assert!(m("ABC12??", "ABC1299"));
        assert!(!m("ABC12??", "ABC129"));
        assert!(m("*12*3", "X12Y3"));
        assert!(m("abc-123", "ABC123"));
        assert!(!m("ABC123", "ABC1234"));
    }

    #[test]
    fn scan_uses_the_longest_literal_end() {
        let s = |p: &str| PlatePattern::parse(p).unwrap().scan();
        assert_eq!(s("ABC123"), Scan::Exact(b"ABC123".to_vec()));
        assert_eq!(s("7AB*"), Scan::Prefix(b"7AB".to_vec()));
        assert_eq!(s("?BC1234"), Scan::ReversedPrefix(b"4321CB".to_vec()));
        assert_eq!(s("A*1234"), Scan::ReversedPrefix(b"4321".to_vec()));
        assert_eq!(s("*"), Scan::All);
        assert_eq!(s("?*?"), Scan::All);
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(PlatePattern::parse(""), Err(PatternError::Empty));
        assert_eq!(PlatePattern::parse("AB%"), Err(PatternError::BadChar));
        assert_eq!(PlatePattern::parse("ÄB"), Err(PatternError::BadChar));
        assert_eq!(PlatePattern::parse(&"A".repeat(33)), Err(PatternError::TooLong));
    }

    /// Reference: a regex-free recursive matcher, obviously right and slow.
    fn naive(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => naive(&p[1..], s) || (!s.is_empty() && naive(p, &s[1..])),
            (Some(b'?'), Some(_)) => naive(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => naive(&p[1..], &s[1..]),
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn glob_agrees_with_reference(p in "[AB1*?]{1,8}", s in "[AB1]{0,8}") {
            prop_assert_eq!(glob(p.as_bytes(), s.as_bytes()), naive(p.as_bytes(), s.as_bytes()));
        }

        #[test]
        fn scan_prefix_is_a_necessary_condition(p in "[AB1*?]{1,8}", s in "[AB1]{1,8}") {
            let pat = PlatePattern::parse(&p).unwrap();
            if pat.matches(s.as_bytes()) {
                let ok = match pat.scan() {
                    Scan::Exact(e) => e == s.as_bytes(),
                    Scan::Prefix(pre) => s.as_bytes().starts_with(&pre),
                    Scan::ReversedPrefix(suf) => s.bytes().rev().collect::<Vec<_>>().starts_with(&suf),
                    Scan::All => true,
                };
                prop_assert!(ok);
            }
        }
    }
}
