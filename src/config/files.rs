//! Files the configuration points at: errors for those missing where the setting is in use, warnings
//! for secrets others on the box could read (inline passwords in a group/world-readable config file,
//! key or credential files that are not 0600).

use super::Problem;
use super::load::Merged;
use super::schema::Config;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn exposed(path: &Path) -> Option<u32> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then_some(mode & 0o777)
}

/// Referenced files that do not exist, for the parts of the configuration that are in use.
pub fn missing(c: &Config, merged: &Merged) -> Vec<Problem> {
    let mut refs: Vec<(String, &Path)> = Vec::new();
    for (i, cam) in c.cameras.iter().enumerate().filter(|(_, cam)| cam.enabled) {
        if let Some(p) = &cam.credentials_file {
            refs.push((format!("cameras[{i}].credentials_file"), p));
        }
    }
    if let Some(m) = &c.recognizer.detector {
        refs.push(("recognizer.detector.path".into(), &m.path));
    }
    if let Some(m) = &c.recognizer.ocr {
        refs.push(("recognizer.ocr.path".into(), &m.path));
    }
    if let Some(p) = &c.store.key_file {
        refs.push(("store.key_file".into(), p));
    }
    for (i, p) in c.hotlists.files.iter().enumerate() {
        refs.push((format!("hotlists.files[{i}]"), p));
    }
    if c.mqtt.enabled {
        for (k, p) in [
            ("mqtt.ca_file", &c.mqtt.ca_file),
            ("mqtt.client_cert", &c.mqtt.client_cert),
            ("mqtt.client_key", &c.mqtt.client_key),
            ("mqtt.password_file", &c.mqtt.password_file),
        ] {
            if let Some(p) = p {
                refs.push((k.into(), p));
            }
        }
    }
    if c.api.enabled {
        for (k, p) in [("api.tls_cert", &c.api.tls_cert), ("api.tls_key", &c.api.tls_key)] {
            if let Some(p) = p {
                refs.push((k.into(), p));
            }
        }
    }
    refs.into_iter()
        .filter(|(_, p)| !p.is_file())
        .map(|(k, p)| merged.problem(&k, format!("file {} does not exist or is not a regular file", p.display())))
        .collect()
}

/// With `store.encryption` on, the key must be there and usable before anything starts: a missing,
/// malformed or group/world-readable key file is an error (not a warning), named by file, line and key.
/// The systemd credential `store.key` takes the place of `key_file` when the service has one.
pub fn store_key(c: &Config, merged: &Merged) -> Vec<Problem> {
    if !c.store.encryption {
        return Vec::new();
    }
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY")
        && Path::new(&dir).join(crate::store::crypt::CREDENTIAL_NAME).is_file()
    {
        return Vec::new();
    }
    match &c.store.key_file {
        None => vec![merged.problem(
            "store.encryption",
            format!("encryption is on but there is no key: set store.key_file (create one with `polewatch store gen-key FILE`) or give the systemd credential {}", crate::store::crypt::CREDENTIAL_NAME),
        )],
        // A missing file is reported by `missing`.
        Some(p) if !p.is_file() => Vec::new(),
        Some(p) => match crate::store::crypt::Key::load_file(p) {
            Ok(_) => Vec::new(),
            Err(e) => vec![merged.problem("store.key_file", e.to_string())],
        },
    }
}

pub fn secrets(c: &Config, merged: &Merged) -> Vec<Problem> {
    let mut out = Vec::new();
    // Inline secrets: warn against the file that holds them.
    let mut inline: Vec<String> = Vec::new();
    if c.mqtt.password.is_some() {
        inline.push("mqtt.password".into());
    }
    for (i, cam) in c.cameras.iter().enumerate() {
        if cam.password.is_some() {
            inline.push(format!("cameras[{i}].password"));
        }
    }
    for key in inline {
        let (file, line) = merged.locate(&key);
        if let Some(mode) = exposed(&file) {
            out.push(Problem {
                file,
                line,
                key,
                message: format!(
                    "secret in a file with mode {mode:o} that others can read; chmod 600 it or use a credentials file"
                ),
            });
        }
    }
    // Files that hold secrets.
    let mut files: Vec<(String, &Path)> = Vec::new();
    for (i, cam) in c.cameras.iter().enumerate() {
        if let Some(p) = &cam.credentials_file {
            files.push((format!("cameras[{i}].credentials_file"), p));
        }
    }
    for (k, p) in [
        ("mqtt.client_key", &c.mqtt.client_key),
        ("mqtt.password_file", &c.mqtt.password_file),
        ("api.tls_key", &c.api.tls_key),
        ("store.key_file", &c.store.key_file),
    ] {
        if let Some(p) = p {
            files.push((k.to_string(), p));
        }
    }
    // Whoever can read the audit key can re-chain an edited audit log.
    files.push(("access.audit_key_file".into(), &c.access.audit_key_file));
    for (key, p) in files {
        if let Some(mode) = exposed(p) {
            let mut pr = merged
                .problem(&key, format!("{} has mode {mode:o}; others can read this secret, chmod 600 it", p.display()));
            pr.key = key;
            out.push(pr);
        }
    }
    out
}
