//! Reading the main file and its `conf.d/*.toml` drop-ins into one document, remembering for every key
//! the file and line it came from, so that any later error can name them.

use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::Problem;

/// Where one key was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: usize,
    pub line: usize,
}

/// The merged document and the origin of each key path (`a.b[2].c`).
#[derive(Debug, Default)]
pub struct Merged {
    pub files: Vec<PathBuf>,
    pub root: Map<String, Value>,
    pub origins: HashMap<String, Origin>,
}

impl Merged {
    /// The file and line of `path`, or of its nearest ancestor that was written down
    /// (a missing key is reported at the table that should hold it).
    pub fn locate(&self, path: &str) -> (PathBuf, Option<usize>) {
        let mut p = path.to_string();
        loop {
            if let Some(o) = self.origins.get(&p) {
                return (self.files[o.file].clone(), Some(o.line));
            }
            match parent(&p) {
                Some(up) => p = up,
                None => break,
            }
        }
        (self.files.first().cloned().unwrap_or_default(), None)
    }

    pub fn problem(&self, path: &str, message: impl Into<String>) -> Problem {
        let (file, line) = self.locate(path);
        Problem { file, line, key: path.to_string(), message: message.into() }
    }

    /// Adds one file's text. Tables merge key by key, later files win for scalar values and arrays of
    /// scalars, and arrays of tables (`[[cameras]]`) are appended so a drop-in can add a camera.
    pub fn add(&mut self, file: &Path, text: &str) -> Result<(), Problem> {
        let doc: toml_edit::ImDocument<&str> = toml_edit::ImDocument::parse(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            let message = e.message().trim().to_string();
            Problem { file: file.to_path_buf(), line, key: String::new(), message: format!("TOML syntax: {message}") }
        })?;
        let idx = self.files.len();
        self.files.push(file.to_path_buf());
        let mut w = Walker { text, file: idx, origins: &mut self.origins, path_for_errors: file };
        w.merge_table(&mut self.root, doc.as_table(), "")
    }
}

struct Walker<'a> {
    text: &'a str,
    file: usize,
    origins: &'a mut HashMap<String, Origin>,
    path_for_errors: &'a Path,
}

impl Walker<'_> {
    fn note(&mut self, path: &str, span: Option<std::ops::Range<usize>>) {
        if let Some(s) = span {
            let line = line_of(self.text, s.start);
            self.origins.insert(path.to_string(), Origin { file: self.file, line });
        }
    }

    fn merge_table(&mut self, dst: &mut Map<String, Value>, src: &toml_edit::Table, path: &str) -> Result<(), Problem> {
        for (key, item) in src.iter() {
            let key_path = join(path, key);
            let key_span = src.key(key).and_then(|k| k.span());
            match item {
                toml_edit::Item::None => {}
                toml_edit::Item::Table(t) => {
                    self.note(&key_path, t.span().or(key_span));
                    let slot = dst.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
                    if !slot.is_object() {
                        *slot = Value::Object(Map::new());
                    }
                    if let Value::Object(m) = slot {
                        self.merge_table(m, t, &key_path)?;
                    }
                }
                toml_edit::Item::ArrayOfTables(aot) => {
                    self.note(&key_path, key_span.or_else(|| aot.iter().next().and_then(|t| t.span())));
                    let slot = dst.entry(key.to_string()).or_insert_with(|| Value::Array(Vec::new()));
                    if !slot.is_array() {
                        *slot = Value::Array(Vec::new());
                    }
                    if let Value::Array(arr) = slot {
                        for t in aot.iter() {
                            let elem_path = format!("{key_path}[{}]", arr.len());
                            self.note(&elem_path, t.span());
                            let mut m = Map::new();
                            self.merge_table(&mut m, t, &elem_path)?;
                            arr.push(Value::Object(m));
                        }
                    }
                }
                toml_edit::Item::Value(v) => {
                    self.note(&key_path, key_span.or_else(|| v.span()));
                    let appends = matches!(v, toml_edit::Value::Array(a) if a.iter().any(|e| e.is_inline_table()));
                    match (appends, dst.get_mut(key)) {
                        (true, Some(Value::Array(existing))) => {
                            let toml_edit::Value::Array(a) = v else { unreachable!("checked above") };
                            for e in a.iter() {
                                let elem_path = format!("{key_path}[{}]", existing.len());
                                let j = self.value(e, &elem_path)?;
                                existing.push(j);
                            }
                        }
                        _ => {
                            let j = self.value(v, &key_path)?;
                            dst.insert(key.to_string(), j);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn value(&mut self, v: &toml_edit::Value, path: &str) -> Result<Value, Problem> {
        self.note(path, v.span());
        Ok(match v {
            toml_edit::Value::String(s) => {
                let max = super::schema::max_string_bytes(&without_positions(path));
                if s.value().len() > max {
                    return Err(Problem {
                        file: self.path_for_errors.to_path_buf(),
                        line: v.span().map(|sp| line_of(self.text, sp.start)),
                        key: path.to_string(),
                        message: format!("{} bytes long; at most {max} are allowed here", s.value().len()),
                    });
                }
                Value::String(s.value().clone())
            }
            toml_edit::Value::Integer(i) => Value::Number(Number::from(*i.value())),
            toml_edit::Value::Float(f) => match Number::from_f64(*f.value()) {
                Some(n) => Value::Number(n),
                None => {
                    return Err(Problem {
                        file: self.path_for_errors.to_path_buf(),
                        line: v.span().map(|s| line_of(self.text, s.start)),
                        key: path.to_string(),
                        message: "nan and inf are not allowed".to_string(),
                    });
                }
            },
            toml_edit::Value::Boolean(b) => Value::Bool(*b.value()),
            toml_edit::Value::Datetime(d) => Value::String(d.value().to_string()),
            toml_edit::Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, e) in a.iter().enumerate() {
                    out.push(self.value(e, &format!("{path}[{i}]"))?);
                }
                Value::Array(out)
            }
            toml_edit::Value::InlineTable(t) => {
                let mut m = Map::new();
                for (k, e) in t.iter() {
                    let kp = join(path, k);
                    if let Some(span) = t.key(k).and_then(|key| key.span()) {
                        self.note(&kp, Some(span));
                    }
                    m.insert(k.to_string(), self.value(e, &kp)?);
                }
                Value::Object(m)
            }
        })
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

/// `cameras[2].name` → `cameras[].name`: the schema's name of a key.
fn without_positions(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// `a.b[2].c` → `a.b[2]` → `a.b` → `a`.
pub(crate) fn parent(path: &str) -> Option<String> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']')
        && let Some(i) = path.rfind('[')
    {
        return Some(path[..i].to_string());
    }
    match path.rfind('.') {
        Some(i) => Some(path[..i].to_string()),
        None => Some(String::new()),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_name_lines_and_drop_ins_append_tables() {
        let mut m = Merged::default();
        m.add(Path::new("/a.toml"), "[site]\nsite_id = \"s\"\n\n[[cameras]]\nid = \"c1\"\n").unwrap();
        m.add(Path::new("/b.toml"), "[[cameras]]\nid = \"c2\"\n[site]\nsite_id = \"t\"\n").unwrap();
        assert_eq!(m.root["cameras"].as_array().unwrap().len(), 2);
        assert_eq!(m.root["site"]["site_id"], "t");
        assert_eq!(m.locate("cameras[1].id"), (PathBuf::from("/b.toml"), Some(2)));
        assert_eq!(m.locate("cameras[0].id"), (PathBuf::from("/a.toml"), Some(5)));
        // a key that was never written is placed at its table
        assert_eq!(m.locate("cameras[0].latency_ms"), (PathBuf::from("/a.toml"), Some(4)));
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let mut m = Merged::default();
        let e = m.add(Path::new("/x.toml"), "[site]\nsite_id = \n").unwrap_err();
        assert_eq!(e.file, PathBuf::from("/x.toml"));
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn long_strings_are_refused_naming_file_line_and_key() {
        let mut m = Merged::default();
        let name = "x".repeat(257);
        let e = m
            .add(
                Path::new("/c.toml"),
                &format!("[site]\nsite_id = \"s\"\n\n[[cameras]]\nid = \"c1\"\nname = \"{name}\"\n"),
            )
            .unwrap_err();
        assert_eq!((e.file, e.line, e.key.as_str()), (PathBuf::from("/c.toml"), Some(6), "cameras[0].name"));
        assert!(e.message.contains("257 bytes long; at most 256"), "{}", e.message);
        let mut m = Merged::default();
        assert!(
            m.add(Path::new("/c.toml"), &format!("[[cameras]]\nid = \"c1\"\nname = \"{}\"\n", "x".repeat(256))).is_ok()
        );
        assert_eq!(without_positions("a.b[12].c[3]"), "a.b[].c[]");
    }

    #[test]
    fn parent_walks_up() {
        assert_eq!(parent("a.b[2].c").as_deref(), Some("a.b[2]"));
        assert_eq!(parent("a.b[2]").as_deref(), Some("a.b"));
        assert_eq!(parent("a").as_deref(), Some(""));
        assert_eq!(parent(""), None);
    }
}
