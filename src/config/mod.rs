//! Configuration: one TOML schema (`schema`), read from the main file plus `conf.d/*.toml` (`load`),
//! checked for values serde cannot judge (`validate`), for files it names that are missing and for
//! exposed secrets (`files`).
//! Every error names the file, line and key path.

mod assemble;
mod every_error;
mod files;
mod load;
mod observe;
pub mod policy;
mod schema;
mod validate;

pub use observe::{Metrics, Telemetry};
pub use schema::*;
pub use validate::{BrokerAddrError, mqtt_brokers, parse_broker};
pub use validate::{CommandKeyError, parse_command_key};

use std::fmt;
use std::path::{Path, PathBuf};

pub const DEFAULT_PATH: &str = "/etc/polewatch/polewatch.toml";

/// One thing wrong (or worth a warning) in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// Key path such as `cameras[1].latency_ms`; empty for file-level problems.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}", list(.0))]
    Invalid(Vec<Problem>),
}

fn list(ps: &[Problem]) -> String {
    ps.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")
}

impl ConfigError {
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Invalid(ps) => ps,
            ConfigError::Read { .. } => &[],
        }
    }
}

/// A configuration that parsed and validated, with what was read and what deserves a warning.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub files: Vec<PathBuf>,
    pub warnings: Vec<Problem>,
}

/// The drop-in files that belong to a main config file: `<dir>/conf.d/*.toml`, in name order.
pub fn drop_ins(main: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let dir = main.parent().unwrap_or(Path::new(".")).join("conf.d");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ConfigError::Read { path: dir, source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::Read { path: dir.clone(), source })?;
        let p = entry.path();
        if p.extension().is_some_and(|x| x == "toml") && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Loads `main` and its drop-ins.
pub fn load(main: &Path) -> Result<Loaded, ConfigError> {
    let mut files = vec![main.to_path_buf()];
    files.extend(drop_ins(main)?);
    let mut texts = Vec::with_capacity(files.len());
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|source| ConfigError::Read { path: f.clone(), source })?;
        texts.push((f.clone(), text));
    }
    let refs: Vec<(&Path, &str)> = texts.iter().map(|(p, t)| (p.as_path(), t.as_str())).collect();
    load_texts(&refs)
}

/// Loads configuration from texts already read (in order: main file first).
pub fn load_texts(texts: &[(&Path, &str)]) -> Result<Loaded, ConfigError> {
    let mut merged = load::Merged::default();
    let mut problems = Vec::new();
    for (path, text) in texts {
        if let Err(p) = merged.add(path, text) {
            problems.push(p);
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    let root = serde_json::Value::Object(std::mem::take(&mut merged.root));
    // Every unknown key, type and enum error in one run: each is reported, set aside, and the rest read on.
    let (config, mut problems, touched) = match every_error::deserialize(root, &merged) {
        every_error::Outcome::Read { config, problems, touched } => (config, problems, touched),
        every_error::Outcome::Stopped(problems) => return Err(ConfigError::Invalid(problems)),
    };
    let mut config = *config;
    // A key set aside above is already reported; its stand-in (default or placeholder) is not judged again.
    let unjudged = |key: &str| {
        touched.iter().any(|t| key == t || key.starts_with(&format!("{t}.")) || key.starts_with(&format!("{t}[")))
    };
    problems.extend(
        validate::validate(&config)
            .into_iter()
            .filter(|(key, _)| !unjudged(key))
            .map(|(key, msg)| merged.problem(&key, msg)),
    );
    problems.extend(
        observe::check(&config.metrics, &config.telemetry)
            .into_iter()
            .filter(|(key, _)| !unjudged(key))
            .map(|(key, msg)| merged.problem(&key, msg)),
    );
    if let Some(set) = config.recognizer.model_set.clone() {
        if config.recognizer.detector.is_some() || config.recognizer.ocr.is_some() {
            problems.push(merged.problem(
                "recognizer.model_set",
                "give either model_set or [recognizer.detector]/[recognizer.ocr], not both",
            ));
        } else {
            match load_model_set(&set) {
                Ok(m) => {
                    config.recognizer.detector = m.detector;
                    config.recognizer.ocr = m.ocr;
                }
                Err(e) => {
                    problems.push(merged.problem("recognizer.model_set", format!("model set {}: {e}", set.display())))
                }
            }
        }
    }
    problems.extend(files::missing(&config, &merged).into_iter().filter(|p| !unjudged(&p.key)));
    problems.extend(files::store_key(&config, &merged).into_iter().filter(|p| !unjudged(&p.key)));
    // A named decoder must be installed: ingest's rule (it asks GStreamer's registry), reported here with
    // file and line.
    for (i, cam) in config.cameras.iter().enumerate() {
        let key = format!("cameras[{i}].decoder");
        if unjudged(&key) {
            continue;
        }
        if let Err(e) = crate::ingest::decoder::check_installed(&cam.decoder) {
            problems.push(merged.problem(&key, e.to_string()));
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    let warnings = files::secrets(&config, &merged);
    Ok(Loaded { config, files: merged.files, warnings })
}

/// Loads a model set file (a `[detector]` and/or an `[ocr]` table, as under `[recognizer]`). Relative
/// model paths are taken from the file's own directory, so a set and its models can move together.
pub fn load_model_set(path: &Path) -> Result<ModelSet, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let mut merged = load::Merged::default();
    merged.add(path, &text).map_err(|p| ConfigError::Invalid(vec![p]))?;
    let root = serde_json::Value::Object(std::mem::take(&mut merged.root));
    let mut set: ModelSet = serde_path_to_error::deserialize(root).map_err(|e| {
        let (key, message) = describe_serde_error(&e.path().to_string(), &e.inner().to_string());
        ConfigError::Invalid(vec![merged.problem(&key, message)])
    })?;
    let problems: Vec<Problem> =
        validate::model_set(&set).into_iter().map(|(key, msg)| merged.problem(&key, msg)).collect();
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    let base = path.parent().unwrap_or(Path::new("."));
    if let Some(d) = &mut set.detector {
        d.path = base.join(&d.path);
    }
    if let Some(o) = &mut set.ocr {
        o.path = base.join(&o.path);
    }
    if set.name.is_empty() {
        set.name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    }
    Ok(set)
}

/// Loads a file of `[[formats]]` tables (region, patterns), as `bench accuracy --formats` takes them; the
/// patterns follow the `[[recognizer.formats]]` rules.
pub fn load_formats(path: &Path) -> Result<Vec<PlateFormat>, ConfigError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        formats: Vec<PlateFormat>,
    }
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let mut merged = load::Merged::default();
    merged.add(path, &text).map_err(|p| ConfigError::Invalid(vec![p]))?;
    let root = serde_json::Value::Object(std::mem::take(&mut merged.root));
    let file: File = serde_path_to_error::deserialize(root).map_err(|e| {
        let (key, message) = describe_serde_error(&e.path().to_string(), &e.inner().to_string());
        ConfigError::Invalid(vec![merged.problem(&key, message)])
    })?;
    let r = Recognizer { formats: file.formats, ..Recognizer::default() };
    let problems: Vec<Problem> = validate::validate_recognizer(&r)
        .into_iter()
        .map(|(key, msg)| merged.problem(&key.replacen("recognizer.", "", 1), msg))
        .collect();
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    Ok(r.formats)
}

/// serde_path_to_error stops at the table holding an unknown key; put the key itself into the path
/// so that the line is the key's own.
fn describe_serde_error(path: &str, message: &str) -> (String, String) {
    let path = if path == "." { String::new() } else { path.to_string() };
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some(end) = rest.find('`')
    {
        let field = &rest[..end];
        let key = if path.is_empty() {
            field.to_string()
        } else if path.ends_with(field) {
            path.clone()
        } else {
            format!("{path}.{field}")
        };
        return (key, format!("unknown key `{field}`{}", &rest[end + 1..]));
    }
    (path, shortened(message))
}

/// serde quotes the value it could not take; a long one is cut so an error stays one readable line.
fn shortened(message: &str) -> String {
    const MAX: usize = 300;
    if message.len() <= MAX {
        return message.to_string();
    }
    let mut end = MAX;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &message[..end], message.len())
}
