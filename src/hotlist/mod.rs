//! Hotlists (R-HL1, R-HL2): lists of wanted plates loaded from CSV files, and OCR-aware matching of
//! vehicle reads against them.
//!
//! - [`entry`]: entries and the CSV format; a list with any problem is rejected whole, with every
//!   problem's line and column, so the caller keeps the list it already has.
//! - `crate::domain::confusion`: characters OCR mixes up (`0 O D Q`, `1 I 7`, `8 B`, `5 S`, `2 Z`, `6 G`).
//! - [`matcher`]: the index over one or more lists and [`Matcher::match_read`], which reports for each
//!   entry its strongest kind of hit: `Exact` > `Wildcard` > `Candidate` > `Confusion`.
//!
//! Pure logic except [`load_file`], which only reads a file's bytes.

pub mod entry;
pub mod matcher;

pub use entry::{Entry, GlobError, LineProblem, PlateGlob, parse_csv};
pub use matcher::{EntryId, Hit, MatchKind, MatchedText, Matcher};

use std::path::{Path, PathBuf};

/// A parsed hotlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Hotlist {
    /// Where it came from (the file path for [`load_file`]); alerts and errors name it.
    pub name: String,
    pub entries: Vec<Entry>,
    pub loaded_at_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum HotlistError {
    #[error("cannot read hotlist {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("hotlist {list} rejected whole, {} problem(s):{}", problems.len(), list_problems(problems))]
    Invalid { list: String, problems: Vec<LineProblem> },
}

fn list_problems(ps: &[LineProblem]) -> String {
    ps.iter().map(|p| format!("\n  {p}")).collect()
}

impl HotlistError {
    pub fn problems(&self) -> &[LineProblem] {
        match self {
            HotlistError::Invalid { problems, .. } => problems,
            HotlistError::Read { .. } => &[],
        }
    }
}

/// Reads and parses one hotlist file; the list is named by its path.
pub fn load_file(path: &Path, loaded_at_ms: i64) -> Result<Hotlist, HotlistError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| HotlistError::Read { path: path.to_path_buf(), source })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse_csv(&name, &text, loaded_at_ms),
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = 1 + good.iter().filter(|&&b| b == b'\n').count() as u64;
            let message = "the file is not UTF-8 text (export the list as UTF-8 CSV)".to_string();
            Err(HotlistError::Invalid { list: name, problems: vec![LineProblem { line, column: None, message }] })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_file_reads_and_names_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("stolen.csv");
        std::fs::write(&good, "plate,region,category,priority,source,expiry,notes\nABC1234,,stolen,1,NCIC,,\n")
            .unwrap();
        let list = load_file(&good, 5).unwrap();
        assert_eq!((list.name.as_str(), list.entries.len(), list.loaded_at_ms), (good.to_str().unwrap(), 1, 5));

        let bad = dir.path().join("latin1.csv");
        std::fs::write(&bad, b"plate,region,category,priority,source,expiry,notes\nABC1234,,stolen,1,NCIC,,caf\xe9\n")
            .unwrap();
        let err = load_file(&bad, 0).unwrap_err();
        assert_eq!(err.problems().len(), 1);
        assert_eq!(err.problems()[0].line, 2);

        let missing = dir.path().join("none.csv");
        assert!(matches!(load_file(&missing, 0), Err(HotlistError::Read { .. })));
    }
}
