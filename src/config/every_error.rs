//! Reading the merged document into [`Config`] while reporting every unknown key, wrong type and bad enum
//! value in one run (serde stops at the first): each error is recorded with its file, line and key, the
//! offending key is set aside (a missing required one gets a stand-in) and the document is read again.
//! The keys set aside are returned so that checks after this one do not judge their stand-ins.

use super::Problem;
use super::load::Merged;
use super::schema::Config;
use serde_json::Value;

/// No configuration has this many errors; a bound on the re-reads all the same.
const MAX_ERRORS: usize = 200;

pub enum Outcome {
    /// Read, perhaps after setting keys aside: `problems` lists what was wrong with them.
    Read { config: Box<Config>, problems: Vec<Problem>, touched: Vec<String> },
    /// Could not be read on (a stand-in of the wrong type, or too many errors): the problems so far.
    Stopped(Vec<Problem>),
}

pub fn deserialize(mut root: Value, merged: &Merged) -> Outcome {
    let mut problems = Vec::new();
    // Keys set aside (removed, or given a placeholder), and those given a placeholder.
    let mut touched: Vec<String> = Vec::new();
    let mut placeheld: Vec<String> = Vec::new();
    loop {
        if problems.len() >= MAX_ERRORS {
            return Outcome::Stopped(problems);
        }
        let err = match serde_path_to_error::deserialize::<_, Config>(root.clone()) {
            Ok(config) => return Outcome::Read { config: Box::new(config), problems, touched },
            Err(e) => e,
        };
        let (key, message) = super::describe_serde_error(&err.path().to_string(), &err.inner().to_string());
        if let Some(field) = message.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            // A required key is missing, reported at its table (unless we removed it for an error already
            // reported); a placeholder lets the rest be read.
            let path = if key.is_empty() { field.to_string() } else { format!("{key}.{field}") };
            if placeheld.contains(&path) || !insert_placeholder(&mut root, &key, field) {
                if !touched.contains(&path) {
                    problems.push(merged.problem(&key, message));
                }
                return Outcome::Stopped(problems);
            }
            if !touched.contains(&path) {
                problems.push(merged.problem(&key, message));
                touched.push(path.clone());
            }
            placeheld.push(path);
            continue;
        }
        let at = removable(&root, &key);
        let path = at.as_ref().map(|s| join(s)).unwrap_or_default();
        if placeheld.contains(&path) {
            // Our placeholder (a string) is not what the key takes: the missing key is reported already,
            // and nothing more can be read.
            return Outcome::Stopped(problems);
        }
        problems.push(merged.problem(&key, message));
        match at {
            Some(segs) if remove(&mut root, &segs) => touched.push(path),
            _ => return Outcome::Stopped(problems),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// `cameras[1].roi[0]` → Key(cameras), Index(1), Key(roi), Index(0).
fn segments(path: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(Seg::Key(rest[..i].to_string()));
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                if let Ok(n) = rest[1..end].parse() {
                    out.push(Seg::Index(n));
                }
                rest = &rest[end + 1..];
                if !rest.starts_with('[') {
                    break;
                }
            }
        } else {
            out.push(Seg::Key(rest.to_string()));
        }
    }
    out
}

fn join(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn walk_mut<'a>(root: &'a mut Value, segs: &[Seg]) -> Option<&'a mut Value> {
    let mut v = root;
    for seg in segs {
        v = match seg {
            Seg::Key(k) => v.as_object_mut()?.get_mut(k)?,
            Seg::Index(i) => v.as_array_mut()?.get_mut(*i)?,
        };
    }
    Some(v)
}

fn walk<'a>(root: &'a Value, segs: &[Seg]) -> Option<&'a Value> {
    let mut v = root;
    for seg in segs {
        v = match seg {
            Seg::Key(k) => v.as_object()?.get(k)?,
            Seg::Index(i) => v.as_array()?.get(*i)?,
        };
    }
    Some(v)
}

/// The key to set aside for an error at `key`: the key itself, or (inside an array, whose positions
/// name lines in later errors) the nearest table key holding it.
fn removable(root: &Value, key: &str) -> Option<Vec<Seg>> {
    let mut segs = segments(key);
    while let Some(Seg::Index(_)) = segs.last() {
        segs.pop();
    }
    if segs.is_empty() {
        return None;
    }
    walk(root, &segs).map(|_| segs)
}

fn remove(root: &mut Value, segs: &[Seg]) -> bool {
    let Some((Seg::Key(last), parent)) = segs.split_last() else { return false };
    match walk_mut(root, parent).and_then(Value::as_object_mut) {
        Some(table) => table.remove(last).is_some(),
        None => false,
    }
}

fn insert_placeholder(root: &mut Value, table: &str, field: &str) -> bool {
    match walk_mut(root, &segments(table)).and_then(Value::as_object_mut) {
        Some(t) => t.insert(field.to_string(), Value::String(String::new())).is_none(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_keys_and_positions() {
        assert_eq!(
            segments("cameras[1].roi[0][1]"),
            vec![Seg::Key("cameras".into()), Seg::Index(1), Seg::Key("roi".into()), Seg::Index(0), Seg::Index(1)]
        );
        assert_eq!(join(&segments("a.b[2].c")), "a.b[2].c");
        let mut v = serde_json::json!({"cameras": [{"id": "c", "roi": [[1, "x"]]}], "mqtt": {"port": "p"}});
        let at = removable(&v, "cameras[0].roi[0][1]").unwrap();
        assert_eq!(join(&at), "cameras[0].roi");
        assert!(remove(&mut v, &at));
        let port = removable(&v, "mqtt.port").unwrap();
        assert!(remove(&mut v, &port));
        assert_eq!(v, serde_json::json!({"cameras": [{"id": "c"}], "mqtt": {}}));
        assert!(insert_placeholder(&mut v, "cameras[0]", "url"));
        assert_eq!(v["cameras"][0]["url"], "");
        assert!(removable(&v, "").is_none());
    }
}
