//! The library's MQTT rig with test-style error handling.
#![allow(dead_code)]

pub mod mqtt;
pub mod nats;
pub mod rtsp;
pub mod webdriver;

pub use polewatch_dev::bench::rig::{Broker as RigBroker, Pki};
use std::path::Path;

pub fn pki(dir: &Path, tag: &str, server_names: &[&str], server_expired: bool) -> Pki {
    polewatch_dev::bench::rig::pki(dir, tag, server_names, server_expired).expect("test PKI")
}

/// Every file under `dir` with its bytes, sorted by path: what a store holds on disk, to show it was left
/// exactly as it was, or to search it.
pub fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

pub fn free_port() -> u16 {
    polewatch_dev::bench::rig::free_port().expect("free port")
}

pub struct Broker(pub RigBroker);

impl Broker {
    pub fn start(pki: &Pki, port: u16) -> Broker {
        Broker(RigBroker::start(pki, port).expect("mosquitto starts"))
    }
    pub fn start_with_password(pki: &Pki, port: u16, user: &str, password: &str) -> Broker {
        Broker(RigBroker::start_with_password(pki, port, user, password).expect("mosquitto starts"))
    }
    pub fn restart(&mut self) {
        self.0.restart().expect("mosquitto restarts")
    }
    pub fn stop(&mut self) {
        self.0.stop()
    }
}

impl std::ops::Deref for Broker {
    type Target = RigBroker;
    fn deref(&self) -> &RigBroker {
        &self.0
    }
}

/// The shipped model set's tables as `[recognizer.*]` tables with absolute paths, for a daemon
/// configuration written by a test.
pub fn recognizer_tables() -> String {
    let repo = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(repo.join("models/polewatch.toml")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with("name"))
        .map(|l| match l {
            "[detector]" => "[recognizer.detector]".to_string(),
            "[ocr]" => "[recognizer.ocr]".to_string(),
            l if l.starts_with("path = \"") => {
                l.replacen("path = \"", &format!("path = \"{}/models/", repo.display()), 1)
            }
            l => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Adds an officer of Auburn PD with `role` and password `pw` (as the test administrator `admin`);
/// `trained`: with an ALPR course that is current at `now_ms`.
pub fn add_officer(
    users: &polewatch::access::service::UserService,
    admin: &polewatch::access::service::Actor,
    name: &str,
    role: polewatch::access::roles::Role,
    pw: &str,
    trained: bool,
    now_ms: i64,
) {
    use polewatch::access::users::{NewUser, Training};
    const DAY: i64 = 86_400_000;
    let nu = NewUser {
        username: name.into(),
        display_name: name.into(),
        organisation: "Auburn PD".into(),
        job_title: "Officer".into(),
        roles: vec![role],
    };
    users.add_user(admin, nu, pw, now_ms).unwrap();
    if trained {
        let course =
            Training { course: "ALPR operator".into(), completed_ms: now_ms - DAY, expires_ms: now_ms + 365 * DAY };
        users.record_training(admin, name, course, now_ms).unwrap();
    }
}

/// A one-camera site of Auburn PD whose store and keys live under `dir` (the API tests' configuration).
pub fn site_config(dir: &Path) -> polewatch::config::Config {
    let text = format!(
        "[site]\nsite_id = \"s1\"\ndevice_id = \"pole-01\"\norganisation = \"Auburn PD\"\n[store]\npath = \"{}\"\n[access]\naudit_key_file = \"{}\"\ndevice_key_file = \"{}\"\ncustodian = \"Records\"\n\
         [[cameras]]\nid = \"lane1\"\nurl = \"file:///nonexistent.mp4\"\n",
        dir.join("store").display(),
        dir.join("keys/audit.key").display(),
        dir.join("keys/device.key").display()
    );
    polewatch::config::load_texts(&[(Path::new("t.toml"), text.as_str())]).unwrap().config
}
