//! Bounded free text: the one place that says how long a case number, a reason or a note may be and
//! which characters it may hold. The API's request bodies and the MQTT commands both deserialise into
//! these types, so an oversized or control-laden field is refused before anything is stored or audited.
//!
//! - [`CaseNumber`]: 1 to [`CASE_NUMBER_MAX`] printable characters (no control characters, no line
//!   breaks), trimmed.
//! - [`Reason`]: 1 to [`NOTE_MAX_BYTES`] bytes of UTF-8 without control characters, trimmed (hold reasons,
//!   release reasons).
//! - [`Note`]: like [`Reason`] but may be empty (decision notes).
//! - [`Label`]: 1 to [`LABEL_MAX`] characters without control characters (agency, jurisdiction, requester,
//!   purpose).
//!
//! [`for_audit`] cuts a refused value down so a refusal's audit entry cannot be used to fill the log.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest case or incident number, in characters.
pub const CASE_NUMBER_MAX: usize = 64;
/// Longest reason or note, in bytes (2 KiB).
pub const NOTE_MAX_BYTES: usize = 2048;
/// Longest agency, jurisdiction, requester name or purpose, in characters.
pub const LABEL_MAX: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{what} is longer than {max}")]
    TooLong { what: &'static str, max: &'static str },
    #[error("{0} must not hold control characters")]
    Control(&'static str),
}

fn check(what: &'static str, s: &str, empty_ok: bool, too_long: bool, max: &'static str) -> Result<String, TextError> {
    let t = s.trim();
    if t.is_empty() && !empty_ok {
        return Err(TextError::Empty(what));
    }
    if too_long {
        return Err(TextError::TooLong { what, max });
    }
    if t.chars().any(char::is_control) {
        return Err(TextError::Control(what));
    }
    Ok(t.to_string())
}

macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident, $what:literal, $empty_ok:expr, $too_long:expr, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn parse(s: &str) -> Result<$name, TextError> {
                let too_long: fn(&str) -> bool = $too_long;
                check($what, s, $empty_ok, too_long(s.trim()), $max).map($name)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(s: String) -> Result<$name, TextError> {
                $name::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
    };
}

bounded!(
    /// A case or incident number: 1 to 64 printable characters.
    CaseNumber, "the case number", false, |s| s.chars().count() > CASE_NUMBER_MAX, "64 characters"
);
bounded!(
    /// A required reason: 1 byte to 2 KiB, no control characters.
    Reason, "the reason", false, |s| s.len() > NOTE_MAX_BYTES, "2048 bytes"
);
bounded!(
    /// An optional note: up to 2 KiB, no control characters.
    Note, "the note", true, |s| s.len() > NOTE_MAX_BYTES, "2048 bytes"
);
bounded!(
    /// A short required label: 1 to 200 characters, no control characters.
    Label, "the field", false, |s| s.chars().count() > LABEL_MAX, "200 characters"
);

/// A value as a refusal's audit entry may hold it: at most [`CASE_NUMBER_MAX`] characters, control
/// characters shown as `?`, and `…` when it was cut.
pub fn for_audit(s: &str) -> String {
    let mut out: String = s.chars().take(CASE_NUMBER_MAX).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().nth(CASE_NUMBER_MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_numbers_are_short_printable_and_required() {
        assert_eq!(CaseNumber::parse(" C-26-1182 ").unwrap().as_str(), "C-26-1182");
        assert_eq!(CaseNumber::parse(&"9".repeat(64)).unwrap().as_str().len(), 64);
        // Characters, not bytes: 64 × `é` is 128 bytes and still fits.
        assert!(CaseNumber::parse(&"é".repeat(64)).is_ok());
        assert_eq!(
            CaseNumber::parse(&"9".repeat(65)),
            Err(TextError::TooLong { what: "the case number", max: "64 characters" })
        );
        assert_eq!(CaseNumber::parse("  "), Err(TextError::Empty("the case number")));
        assert_eq!(CaseNumber::parse(""), Err(TextError::Empty("the case number")));
        for bad in ["C-1\0", "C\n1", "C\t1", "C\u{7f}1", "C\u{85}1"] {
            assert_eq!(CaseNumber::parse(bad), Err(TextError::Control("the case number")), "{bad:?}");
        }
    }

    #[test]
    fn reasons_and_notes_are_bounded_at_2_kib() {
        assert!(Reason::parse(&"x".repeat(2048)).is_ok());
        assert!(matches!(Reason::parse(&"x".repeat(2049)), Err(TextError::TooLong { .. })));
        // Bytes, not characters: 1025 × `é` is 2050 bytes.
        assert!(matches!(Reason::parse(&"é".repeat(1025)), Err(TextError::TooLong { .. })));
        assert_eq!(Reason::parse(""), Err(TextError::Empty("the reason")));
        assert_eq!(Note::parse("").unwrap().as_str(), "");
        assert!(matches!(Note::parse(&"x".repeat(1 << 20)), Err(TextError::TooLong { .. })));
        assert_eq!(Note::parse("line\nbreak"), Err(TextError::Control("the note")));
        assert!(Label::parse(&"a".repeat(200)).is_ok());
        assert!(Label::parse(&"a".repeat(201)).is_err());
    }

    #[test]
    fn serde_refuses_what_parse_refuses() {
        #[derive(Deserialize, Serialize)]
        struct Body {
            case_number: CaseNumber,
            #[serde(default)]
            note: Note,
        }
        let ok: Body = serde_json::from_str(r#"{"case_number":" C-1 "}"#).unwrap();
        assert_eq!(ok.case_number.as_str(), "C-1");
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"case_number":"C-1","note":""}"#);
        assert!(serde_json::from_str::<Body>(r#"{"case_number":"C\u0000"}"#).is_err());
        assert!(serde_json::from_str::<Body>(r#"{"case_number":""}"#).is_err());
        let long = format!(r#"{{"case_number":"C","note":"{}"}}"#, "n".repeat(3000));
        assert!(serde_json::from_str::<Body>(&long).is_err());
    }

    #[test]
    fn audit_copies_are_cut_and_cleaned() {
        assert_eq!(for_audit("C-1"), "C-1");
        assert_eq!(for_audit("a\0b"), "a?b");
        let cut = for_audit(&"x".repeat(1 << 20));
        assert_eq!(cut.chars().count(), 65);
        assert!(cut.ends_with('…'));
    }
}
