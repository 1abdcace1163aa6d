//! Hotlist entries and the parsing of one hotlist CSV file: all of it or none of it.
//!
//! Columns (header row required, names case-insensitive, any order, no others): `plate`, `region`,
//! `category`, `priority`, `source`, `expiry`, `notes`. Fields are trimmed.
//! - `plate`: exact (`ABC1234`) or a pattern with `*` (any run) and `?` (one character); upper-cased,
//!   spaces and dashes removed, then only A-Z, 0-9, `*`, `?`. Not empty, not only wildcards.
//! - `region`: state or country (`CA`, `US-CA`: letters, digits, `-`); may be empty (any region).
//! - `category`, `source`: required free text.
//! - `priority`: 1 (highest) to 9.
//! - `expiry`: empty (none), an RFC 3339 timestamp with offset (`2026-05-01T18:00:00Z`) or a date
//!   (`2026-05-01`: to the end of that day UTC). An entry stops matching at its expiry.
//! - `notes`: free text, may be empty.
//!
//! Problem messages name line, column and field but never echo a field's value: plate text is
//! personal data and notes may hold more of it.

use super::{Hotlist, HotlistError};
use std::collections::HashMap;
use std::fmt;

/// Most letters, digits and `?` in a pattern: a plate is at most this long.
pub const MAX_PLATE_LEN: usize = crate::domain::Plate::MAX_LEN;
/// Highest accepted priority number (1 is the most urgent).
pub const LOWEST_PRIORITY: u8 = 9;

/// A hotlist plate, exact or with wildcards, normalised. Personal data like [`crate::store::Plate`]:
/// `Debug` and `Display` never show it; [`PlateGlob::expose`] is the way to the text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PlateGlob(Box<str>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    #[error("plate is empty")]
    Empty,
    #[error("plate has a character other than A-Z, 0-9, * and ? (spaces and dashes are removed)")]
    BadChar,
    #[error("plate has only wildcards, so it would match every plate")]
    OnlyWildcards,
    #[error("plate has more than {max} characters besides *")]
    TooLong { max: usize },
}

impl PlateGlob {
    /// Normalises (upper case; spaces, tabs and dashes removed; `**` folded to `*`) and checks.
    pub fn parse(s: &str) -> Result<PlateGlob, GlobError> {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                ' ' | '-' | '\t' => {}
                // `A**` means `A*`; one spelling keeps duplicates detectable.
                '*' if out.ends_with('*') => {}
                c if c.is_ascii_alphanumeric() || c == '*' || c == '?' => out.push(c.to_ascii_uppercase()),
                _ => return Err(GlobError::BadChar),
            }
        }
        if out.is_empty() {
            return Err(GlobError::Empty);
        }
        if !out.bytes().any(|b| b.is_ascii_alphanumeric()) {
            return Err(GlobError::OnlyWildcards);
        }
        if out.bytes().filter(|&b| b != b'*').count() > MAX_PLATE_LEN {
            return Err(GlobError::TooLong { max: MAX_PLATE_LEN });
        }
        Ok(PlateGlob(out.into_boxed_str()))
    }

    /// No wildcard: the entry names one plate.
    pub fn is_exact(&self) -> bool {
        !self.0.bytes().any(|b| b == b'*' || b == b'?')
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlateGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlateGlob(<redacted>)")
    }
}

impl fmt::Display for PlateGlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<plate redacted>")
    }
}

/// One line of a hotlist.
#[derive(Clone, PartialEq)]
pub struct Entry {
    pub pattern: PlateGlob,
    /// Upper case. None: the entry applies to reads from any region.
    pub region: Option<String>,
    pub category: String,
    /// 1 (highest) to [`LOWEST_PRIORITY`].
    pub priority: u8,
    pub source: String,
    /// Matches only while `now < expires_at_ms`; None: no expiry.
    pub expires_at_ms: Option<i64>,
    pub notes: String,
    /// Line of the list file the entry starts on, to point operators at it.
    pub line: u64,
}

impl Entry {
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_none_or(|e| now_ms < e)
    }

    /// An entry's region must agree with the read's (case-insensitive) when both have one. A read
    /// without a region matches regional entries: recognizers often cannot tell the state, and a
    /// missed stolen car costs more than an officer checking the region of an alert.
    pub fn region_allows(&self, read_region: Option<&str>) -> bool {
        match (&self.region, read_region.map(str::trim).filter(|r| !r.is_empty())) {
            (Some(e), Some(r)) => e.eq_ignore_ascii_case(r),
            _ => true,
        }
    }
}

/// Notes may hold personal data too: `Debug` shows only their length.
impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("pattern", &self.pattern)
            .field("region", &self.region)
            .field("category", &self.category)
            .field("priority", &self.priority)
            .field("source", &self.source)
            .field("expires_at_ms", &self.expires_at_ms)
            .field("notes", &format_args!("<{} chars>", self.notes.chars().count()))
            .field("line", &self.line)
            .finish()
    }
}

/// One thing wrong with a hotlist file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// 1-based line the record starts on (0 when the CSV reader could not tell).
    pub line: u64,
    /// 1-based column; None for problems of the whole row or file.
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for LineProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        if let Some(c) = self.column {
            write!(f, ", column {c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Plate,
    Region,
    Category,
    Priority,
    Source,
    Expiry,
    Notes,
}

const FIELDS: [(&str, Field); 7] = [
    ("plate", Field::Plate),
    ("region", Field::Region),
    ("category", Field::Category),
    ("priority", Field::Priority),
    ("source", Field::Source),
    ("expiry", Field::Expiry),
    ("notes", Field::Notes),
];

const COLUMN_NAMES: &str = "plate, region, category, priority, source, expiry, notes";

/// Parses a hotlist. Any problem rejects the whole list, so the caller keeps the list it has; every
/// problem found is reported. Problems in the header stop the parse (rows cannot be read without it).
pub fn parse_csv(name: &str, text: &str, loaded_at_ms: i64) -> Result<Hotlist, HotlistError> {
    let invalid = |problems| HotlistError::Invalid { list: name.to_string(), problems };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text); // spreadsheet exports start with a BOM
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true) // rows of the wrong length are reported here, with the others
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut lines = Lines { text: text.as_bytes(), pos: 0, line: 1 };
    let mut records = reader.records();
    let columns = match records.next() {
        None => {
            let message = format!("the list is empty; a header row naming the columns {COLUMN_NAMES} is required");
            return Err(invalid(vec![LineProblem { line: 1, column: None, message }]));
        }
        Some(Err(e)) => return Err(invalid(vec![csv_problem(&e, lines.of(e.position()))])),
        Some(Ok(h)) => header(&h, lines.of(h.position())).map_err(invalid)?,
    };

    let mut problems = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    let mut first_line: HashMap<(PlateGlob, Option<String>), u64> = HashMap::new();
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                problems.push(csv_problem(&e, lines.of(e.position())));
                // A bad row is skipped by the reader; anything else (I/O) ends the input.
                if matches!(e.kind(), csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. }) {
                    continue;
                }
                break;
            }
        };
        match row(&columns, &record, lines.of(record.position())) {
            Ok(entry) => {
                let key = (entry.pattern.clone(), entry.region.clone());
                if let Some(&first) = first_line.get(&key) {
                    let column = columns.iter().position(|&f| f == Field::Plate).map(|i| i + 1);
                    let message = format!("same plate and region as line {first}");
                    problems.push(LineProblem { line: entry.line, column, message });
                } else {
                    first_line.insert(key, entry.line);
                    entries.push(entry);
                }
            }
            Err(mut ps) => problems.append(&mut ps),
        }
    }
    if problems.is_empty() {
        Ok(Hotlist { name: name.to_string(), entries, loaded_at_ms })
    } else {
        Err(invalid(problems))
    }
}

/// Line numbers from the reader's byte offsets. The reader's own line number is where it began looking
/// for a record, before the blank lines it skips, so it runs short after a blank line.
struct Lines<'t> {
    text: &'t [u8],
    pos: usize,
    line: u64,
}

impl Lines<'_> {
    /// The line a record starts on; records come in order, so counting goes on from the last one.
    fn of(&mut self, p: Option<&csv::Position>) -> u64 {
        let Some(p) = p else { return 0 };
        let mut start = usize::try_from(p.byte()).unwrap_or(usize::MAX).min(self.text.len());
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start < self.pos {
            (self.pos, self.line) = (0, 1);
        }
        self.line += self.text[self.pos..start].iter().filter(|&&b| b == b'\n').count() as u64;
        self.pos = start;
        self.line
    }
}

fn csv_problem(e: &csv::Error, line: u64) -> LineProblem {
    let message = match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "the row is not valid UTF-8".to_string(),
        // The reader's own message for other kinds holds no field values.
        _ => format!("CSV error: {e}"),
    };
    LineProblem { line, column: None, message }
}

/// Which field each column holds.
fn header(h: &csv::StringRecord, line: u64) -> Result<Vec<Field>, Vec<LineProblem>> {
    let mut problems = Vec::new();
    let mut columns = Vec::with_capacity(h.len());
    for (i, cell) in h.iter().enumerate() {
        let column = Some(i + 1);
        match FIELDS.iter().find(|(n, _)| n.eq_ignore_ascii_case(cell)) {
            // The cell is not echoed: without a header row it would be a plate.
            None => problems.push(LineProblem {
                line,
                column,
                message: format!("header is not a known column name ({COLUMN_NAMES}); is the header row missing?"),
            }),
            Some((n, f)) if columns.contains(f) => {
                problems.push(LineProblem { line, column, message: format!("column `{n}` appears twice") })
            }
            Some((_, f)) => columns.push(*f),
        }
    }
    for (n, f) in FIELDS {
        if !columns.contains(&f) {
            problems.push(LineProblem { line, column: None, message: format!("column `{n}` is missing") });
        }
    }
    if problems.is_empty() { Ok(columns) } else { Err(problems) }
}

/// One data row as an entry, or everything wrong with it.
fn row(columns: &[Field], r: &csv::StringRecord, line: u64) -> Result<Entry, Vec<LineProblem>> {
    if r.len() != columns.len() {
        let fields = if r.len() == 1 { "field" } else { "fields" };
        let message = format!("row has {} {fields}, the header has {}", r.len(), columns.len());
        return Err(vec![LineProblem { line, column: None, message }]);
    }
    let mut problems = Vec::new();
    // The header has every field exactly once, so a row without problems has set every field.
    let mut entry = Entry {
        pattern: PlateGlob(Box::from("")),
        region: None,
        category: String::new(),
        priority: 0,
        source: String::new(),
        expires_at_ms: None,
        notes: String::new(),
        line,
    };
    for (i, (&field, value)) in columns.iter().zip(r.iter()).enumerate() {
        let result = match field {
            Field::Plate => PlateGlob::parse(value).map(|p| entry.pattern = p).map_err(FieldError::Plate),
            Field::Region => region(value).map(|r| entry.region = r),
            Field::Category => required("category", value).map(|v| entry.category = v),
            Field::Priority => priority(value).map(|p| entry.priority = p),
            Field::Source => required("source", value).map(|v| entry.source = v),
            Field::Expiry => expiry(value).map(|e| entry.expires_at_ms = e),
            Field::Notes => {
                entry.notes = value.to_string();
                Ok(())
            }
        };
        if let Err(e) = result {
            problems.push(LineProblem { line, column: Some(i + 1), message: e.to_string() });
        }
    }
    if problems.is_empty() { Ok(entry) } else { Err(problems) }
}

/// What is wrong with one field of a row; the text is the [`LineProblem`]'s message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum FieldError {
    #[error("{0}")]
    Plate(GlobError),
    #[error("region may hold only A-Z, 0-9 and - (at most 16), or be empty")]
    Region,
    #[error("{0} is empty")]
    Empty(&'static str),
    #[error("priority must be a whole number from 1 (highest) to {LOWEST_PRIORITY}")]
    Priority,
    #[error(
        "expiry must be empty, a date (2026-05-01, to the end of that day UTC) or an RFC 3339 time with offset (2026-05-01T18:00:00Z)"
    )]
    Expiry,
}

fn region(v: &str) -> Result<Option<String>, FieldError> {
    if v.is_empty() {
        return Ok(None);
    }
    if v.len() > 16 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(FieldError::Region);
    }
    Ok(Some(v.to_ascii_uppercase()))
}

fn required(name: &'static str, v: &str) -> Result<String, FieldError> {
    if v.is_empty() { Err(FieldError::Empty(name)) } else { Ok(v.to_string()) }
}

fn priority(v: &str) -> Result<u8, FieldError> {
    match v.parse::<u8>() {
        Ok(p) if (1..=LOWEST_PRIORITY).contains(&p) => Ok(p),
        _ => Err(FieldError::Priority),
    }
}

/// Empty: none. `YYYY-MM-DD`: the entry matches through that whole day UTC, so it expires at the next
/// midnight UTC. Otherwise an RFC 3339 timestamp, whose offset is required (a local time would mean a
/// different instant on every box).
fn expiry(v: &str) -> Result<Option<i64>, FieldError> {
    if v.is_empty() {
        return Ok(None);
    }
    let is_date = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    let ms = if is_date {
        v.parse::<jiff::civil::Date>()
            .and_then(|d| d.tomorrow())
            .and_then(|d| jiff::tz::TimeZone::UTC.to_timestamp(jiff::civil::DateTime::from(d)))
            .map(|t| t.as_millisecond())
    } else {
        v.parse::<jiff::Timestamp>().map(|t| t.as_millisecond())
    };
    ms.map(Some).map_err(|_| FieldError::Expiry)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "plate,region,category,priority,source,expiry,notes\n";

    fn problems(text: &str) -> Vec<(u64, Option<usize>, String)> {
        match parse_csv("t.csv", text, 0) {
            Err(HotlistError::Invalid { list, problems }) => {
                assert_eq!(list, "t.csv");
                problems.into_iter().map(|p| (p.line, p.column, p.message)).collect()
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn lines_cols(text: &str) -> Vec<(u64, Option<usize>)> {
        problems(text).into_iter().map(|(l, c, _)| (l, c)).collect()
    }

    #[test]
    fn parses_a_good_list() {
        let text = "\u{feff}Notes, EXPIRY ,Plate,region,category,priority,source\n\
                    ,,abc-1234,ca,stolen vehicle,1,NCIC\n\
                    \n\
                    \"two\nlines\",2026-05-01,7ab*,,amber alert,2,CA DOJ\n\
                    x,2026-05-01T18:00:00+02:00, ?bc 12 34 ,US-TX,felony,9,local\n";
        let list = parse_csv("stolen.csv", text, 42).unwrap();
        assert_eq!(list.name, "stolen.csv");
        assert_eq!(list.loaded_at_ms, 42);
        let e = &list.entries;
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].pattern.expose(), "ABC1234");
        assert!(e[0].pattern.is_exact());
        assert_eq!(e[0].region.as_deref(), Some("CA"));
        assert_eq!((e[0].category.as_str(), e[0].priority, e[0].source.as_str()), ("stolen vehicle", 1, "NCIC"));
        assert_eq!((e[0].expires_at_ms, e[0].line), (None, 2));
        assert_eq!(e[1].pattern.expose(), "7AB*");
        assert!(!e[1].pattern.is_exact());
        assert_eq!(e[1].region, None);
        assert_eq!(e[1].notes, "two\nlines");
        // 2026-05-02T00:00:00Z: through the whole of May 1st.
        assert_eq!(e[1].expires_at_ms, Some(1_777_680_000_000));
        assert_eq!(e[1].line, 4, "blank lines are skipped but counted; a record starts on its first line");
        assert_eq!(e[2].line, 6);
        assert_eq!(e[2].pattern.expose(), "?BC1234");
        assert_eq!(e[2].expires_at_ms, Some(1_777_651_200_000));
    }

    #[test]
    fn header_only_is_an_empty_list() {
        assert!(parse_csv("t", HEADER, 0).unwrap().entries.is_empty());
    }

    #[test]
    fn header_problems() {
        assert_eq!(lines_cols(""), vec![(1, None)]);
        let ps = problems("plate,region,category,priority,source,notes,colour,Plate\n");
        assert_eq!(
            ps.iter().map(|(l, c, _)| (*l, *c)).collect::<Vec<_>>(),
            vec![(1, Some(7)), (1, Some(8)), (1, None)]
        );
        assert!(ps[0].2.contains("header row missing"));
        assert!(ps[1].2.contains("`plate` appears twice"));
        assert!(ps[2].2.contains("`expiry` is missing"));
        // A list without a header: the first row's plate must not be echoed.
        let ps = problems("ABC1234,CA,stolen,1,NCIC,,\n");
        assert!(ps.iter().all(|(_, _, m)| !m.contains("ABC1234")));
    }

    #[test]
    fn every_row_problem_is_reported_with_line_and_column() {
        let text = format!(
            "{HEADER}\
             AB%1234,CA,stolen,1,NCIC,,\n\
             ,CA,stolen,1,NCIC,,\n\
             *,CA,stolen,1,NCIC,,\n\
             ??*,CA,stolen,1,NCIC,,\n\
             {long},CA,stolen,1,NCIC,,\n\
             ABC1234,C A,,0,,tomorrow,\n\
             ABC1234,CA,stolen,10,NCIC,2026-02-30,\n\
             ABC1234,CA,stolen,1,NCIC,2026-05-01T18:00:00,\n\
             ABC1234,CA,stolen,1\n\
             ABC1234,CA,stolen,1,NCIC,,\n\
             abc 1234,ca,amber,2,other,,\n\
             ABC1234,,amber,2,other,,\n",
            long = "A".repeat(17)
        );
        let got = problems(&text);
        let expected: Vec<(u64, Option<usize>)> = vec![
            (2, Some(1)),
            (3, Some(1)),
            (4, Some(1)),
            (5, Some(1)),
            (6, Some(1)),
            (7, Some(2)),
            (7, Some(3)),
            (7, Some(4)),
            (7, Some(5)),
            (7, Some(6)),
            (8, Some(4)),
            (8, Some(6)),
            (9, Some(6)),
            (10, None),
            (12, Some(1)),
        ];
        assert_eq!(got.iter().map(|(l, c, _)| (*l, *c)).collect::<Vec<_>>(), expected);
        let msg = |i: usize| got[i].2.as_str();
        assert!(msg(0).contains("other than A-Z"));
        assert!(msg(1).contains("empty"));
        assert!(msg(2).contains("only wildcards") && msg(3).contains("only wildcards"));
        assert!(msg(4).contains("more than 16"));
        assert!(msg(5).contains("region"));
        assert!(msg(6).contains("category is empty") && msg(8).contains("source is empty"));
        assert!(msg(7).contains("priority") && msg(10).contains("priority"));
        assert!(msg(9).contains("expiry") && msg(11).contains("expiry") && msg(12).contains("expiry"));
        assert!(msg(13).contains("4 fields, the header has 7"));
        assert_eq!(msg(14), "same plate and region as line 11");
        // Line 13 has the same plate but no region: a different entry, not a duplicate.
        for (_, _, m) in &got {
            assert!(!m.contains("ABC") && !m.contains("AB%"), "a message echoes plate text: {m}");
        }
    }

    #[test]
    fn line_numbers_survive_blank_lines_crlf_and_quoted_newlines() {
        let text = "\r\n\r\nplate,region,category,priority,source,expiry,notes\r\n\r\nAB%,,x,1,y,,\r\n\
                    \"A\nB\",,x,1,y,,\"n\nn\"\r\n\n\n,,x,1,y,,\r\n";
        assert_eq!(lines_cols(text), vec![(5, Some(1)), (6, Some(1)), (11, Some(1))]);
        assert_eq!(lines_cols("\n\nplate\n"), vec![(3, None), (3, None), (3, None), (3, None), (3, None), (3, None)]);
    }

    #[test]
    fn display_names_list_line_and_column_but_no_plate() {
        let err = parse_csv("hot/stolen.csv", &format!("{HEADER}ABC1234,CA,stolen,1,NCIC,,\nABC 1234,CA,x,2,y,,\n"), 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("hot/stolen.csv"), "{err}");
        assert!(err.contains("line 3, column 1: same plate and region as line 2"), "{err}");
        assert!(!err.contains("ABC"), "{err}");
    }

    #[test]
    fn globs_normalise_and_redact() {
        let g = PlateGlob::parse("7ab-**1 ?").unwrap();
        assert_eq!(g.expose(), "7AB*1?");
        assert!(!format!("{g} {g:?}").contains("7AB"));
        assert_eq!(PlateGlob::parse("Ä1"), Err(GlobError::BadChar));
        assert_eq!(PlateGlob::parse("?*?"), Err(GlobError::OnlyWildcards));
        assert_eq!(PlateGlob::parse(" -"), Err(GlobError::Empty));
        assert!(PlateGlob::parse(&format!("*{}*", "A".repeat(16))).is_ok());
        assert_eq!(PlateGlob::parse(&"?".repeat(17)), Err(GlobError::OnlyWildcards));
        assert_eq!(PlateGlob::parse(&format!("A{}", "?".repeat(16))), Err(GlobError::TooLong { max: 16 }));
    }

    #[test]
    fn entry_debug_hides_plate_and_notes() {
        let text = format!("{HEADER}ABC1234,CA,stolen,1,NCIC,,owner J. Doe\n");
        let list = parse_csv("t", &text, 0).unwrap();
        let d = format!("{:?}", list.entries[0]);
        assert!(!d.contains("ABC1234") && !d.contains("Doe"), "{d}");
        assert!(d.contains("<12 chars>"), "{d}");
    }

    #[test]
    fn expiry_and_region_rules() {
        let text = format!("{HEADER}ABC1234,ca,stolen,1,NCIC,1970-01-01,\nABC1235,,stolen,1,NCIC,,\n");
        let list = parse_csv("t", &text, 0).unwrap();
        let (a, b) = (&list.entries[0], &list.entries[1]);
        assert_eq!(a.expires_at_ms, Some(86_400_000));
        assert!(a.is_active(86_399_999));
        assert!(!a.is_active(86_400_000), "an entry with expiry <= now does not match");
        assert!(b.is_active(i64::MAX));
        assert!(a.region_allows(Some(" Ca ")));
        assert!(a.region_allows(None) && a.region_allows(Some("")));
        assert!(!a.region_allows(Some("NV")));
        assert!(b.region_allows(Some("NV")) && b.region_allows(None));
    }
}
