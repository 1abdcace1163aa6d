//! What the store holds: reads, their images, evidence holds.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Plate text: personal data. `Display` and `Debug` never show it, so it cannot leak through a log line
/// or an error by accident; [`Plate::expose`] is the one way to the text (debug logs, search results).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Plate(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlateError {
    #[error("plate text is empty")]
    Empty,
    #[error("plate text is longer than {max} characters")]
    TooLong { max: usize },
    #[error("plate text may hold only A-Z and 0-9 (spaces and dashes are removed)")]
    BadChar,
}

impl Plate {
    pub const MAX_LEN: usize = 16;

    /// Normalises (upper case, spaces and dashes removed) and checks the text.
    pub fn new(text: &str) -> Result<Plate, PlateError> {
        let s: String =
            text.chars().filter(|c| !matches!(c, ' ' | '-' | '\t')).flat_map(|c| c.to_uppercase()).collect();
        if s.is_empty() {
            return Err(PlateError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(PlateError::TooLong { max: Self::MAX_LEN });
        }
        if !s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) {
            return Err(PlateError::BadChar);
        }
        Ok(Plate(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Plate {
    type Error = PlateError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Plate::new(&s)
    }
}

impl From<Plate> for String {
    fn from(p: Plate) -> String {
        p.0
    }
}

impl fmt::Debug for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Plate(<redacted>)")
    }
}

impl fmt::Display for Plate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<plate redacted>")
    }
}

/// Id of a stored read: a UUIDv7 whose timestamp is the capture time, so keys sort by time and
/// retention deletes from the front of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReadId(pub Uuid);

impl ReadId {
    pub fn new(captured_at_ms: i64) -> ReadId {
        let ms = captured_at_ms.max(0) as u64;
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, ((ms % 1000) * 1_000_000) as u32);
        ReadId(Uuid::new_v7(ts))
    }

    pub fn from_bytes(b: [u8; 16]) -> ReadId {
        ReadId(Uuid::from_bytes(b))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }

    /// Capture time in ms since the epoch (the UUIDv7 time field).
    pub fn millis(&self) -> i64 {
        millis_of_key(self.0.as_bytes())
    }
}

impl fmt::Display for ReadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The 48-bit big-endian millisecond time at the start of a UUIDv7 key.
pub fn millis_of_key(key: &[u8]) -> i64 {
    let mut b = [0u8; 8];
    let n = key.len().min(6);
    b[2..2 + n].copy_from_slice(&key[..n]);
    i64::from_be_bytes(b)
}

/// The smallest read key at or after `ms`.
pub fn first_key_at(ms: i64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..6].copy_from_slice(&(ms.max(0) as u64).to_be_bytes()[2..]);
    k
}

/// Another text the recognizer considered for a read, with its confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(extend("additionalProperties" = false))]
pub struct Candidate {
    pub text: String,
    #[schemars(range(min = 0, max = 1))]
    pub confidence: f32,
}

/// A vehicle read as handed to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRead {
    pub camera_id: String,
    pub captured_at_ms: i64,
    pub plate: Plate,
    pub confidence: f32,
    pub char_confidences: Vec<f32>,
    pub candidates: Vec<Candidate>,
    /// x, y, width, height in frame pixels.
    pub bbox: [u32; 4],
    pub region: Option<String>,
    pub frame_seq: u64,
    pub crop_jpeg: Option<Vec<u8>>,
    pub frame_jpeg: Option<Vec<u8>>,
}

/// A read as kept in the store (images are fetched apart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRead {
    pub id: ReadId,
    pub camera_id: String,
    pub captured_at_ms: i64,
    pub plate: Plate,
    pub confidence: f32,
    #[serde(default)]
    pub char_confidences: Vec<f32>,
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    pub bbox: [u32; 4],
    #[serde(default)]
    pub region: Option<String>,
    pub frame_seq: u64,
    pub has_crop: bool,
    pub has_frame: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ImageKind {
    Crop = 0,
    Frame = 1,
}

/// Why and by whom a read is kept past retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRequest {
    pub placed_by: String,
    pub case_number: String,
    pub reason: String,
    /// None: held until released.
    pub expires_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub by: String,
    pub at_ms: i64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub id: Uuid,
    pub read_id: ReadId,
    pub placed_by: String,
    pub placed_at_ms: i64,
    pub case_number: String,
    pub reason: String,
    pub expires_at_ms: Option<i64>,
    pub released: Option<Release>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plate_normalises_and_never_displays() {
        let p = Plate::new("ab-12 3").unwrap();
        assert_eq!(p.expose(), "AB123");
        assert!(!format!("{p} {p:?}").contains("AB123"));
        assert_eq!(Plate::new(" - "), Err(PlateError::Empty));
        assert_eq!(Plate::new("AB_1"), Err(PlateError::BadChar));
        assert!(Plate::new("Ä1").is_err());
        assert_eq!(Plate::new(&"A".repeat(17)), Err(PlateError::TooLong { max: 16 }));
    }

    #[test]
    fn read_ids_sort_by_capture_time() {
        let a = ReadId::new(1_700_000_000_123);
        let b = ReadId::new(1_700_000_000_124);
        assert_eq!(a.millis(), 1_700_000_000_123);
        assert!(a.as_bytes() < b.as_bytes());
        assert!(first_key_at(1_700_000_000_124)[..] <= b.as_bytes()[..]);
        assert!(first_key_at(1_700_000_000_124)[..] > a.as_bytes()[..]);
    }
}
