//! `polewatch run` as systemd runs it: notify socket, READY/STATUS/WATCHDOG, a retention sweep at
//! start, reload on SIGHUP (bad config keeps the old one), clean stop on SIGTERM.

use polewatch::access::Action;
use polewatch::access::audit::{AuditLog, decode_record};
use polewatch::retention::DAY_MS;
use polewatch::store::{AuditRecord, HoldRequest, Store, StoreOptions};
use polewatch_dev::bench::synthetic_read;
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Notifications(UnixDatagram);

impl Notifications {
    /// Waits for a datagram containing `needle`; returns it.
    fn wait_for(&self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            self.0.set_read_timeout(Some(deadline - Instant::now())).unwrap();
            match self.0.recv(&mut buf) {
                Ok(n) => {
                    let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                    if msg.contains(needle) {
                        return msg;
                    }
                    seen.push(msg);
                }
                Err(_) => break,
            }
        }
        panic!("no notification with {needle:?} within {within:?}; saw {seen:?}");
    }

    /// Every datagram that comes within `within`, with when it came.
    fn collect(&self, within: Duration) -> Vec<(Instant, String)> {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 4096];
        let mut got = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            self.0.set_read_timeout(Some(left)).unwrap();
            match self.0.recv(&mut buf) {
                Ok(n) => got.push((Instant::now(), String::from_utf8_lossy(&buf[..n]).to_string())),
                Err(_) => break,
            }
        }
        got
    }
}

fn config(dir: &Path, level: &str) -> String {
    format!(
        "[site]\nsite_id = \"t\"\ndevice_id = \"d\"\n[store]\npath = \"{}\"\n[store.retention]\nmin_days = 365\nmax_days = 365\nrequire_clock_sync = false\n[access]\naudit_key_file = \"{}\"\n[logging]\nlevel = \"{level}\"\ntarget = \"stderr\"\n",
        dir.join("store").display(),
        dir.join("keys/audit.key").display()
    )
}

/// Starts `polewatch run` as systemd would: notify socket, a watchdog, and `WATCHDOG_PID` naming the
/// daemon (`exec` keeps the shell's pid for polewatch).
fn spawn_daemon(cfg: &std::path::Path, sock: &std::path::Path, stderr: Stdio) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg("WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\"")
        .arg(env!("CARGO_BIN_EXE_polewatch"))
        .arg(cfg)
        .env("NOTIFY_SOCKET", sock)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: sending a signal to our own child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

#[test]
fn runs_under_a_notify_socket_sweeps_reloads_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now().as_millisecond();
    let (expired, held, fresh) = {
        let (s, _) = Store::open(&StoreOptions::at(dir.path().join("store"))).unwrap();
        let expired = s.put_read(synthetic_read(1, now - 400 * DAY_MS, 100)).unwrap();
        let held = s.put_read(synthetic_read(2, now - 400 * DAY_MS + 1, 100)).unwrap();
        let req = HoldRequest {
            placed_by: "det. a".into(),
            case_number: "C-1".into(),
            reason: "evidence".into(),
            expires_at_ms: None,
        };
        s.place_hold(held, req, now).unwrap();
        let fresh = s.put_read(synthetic_read(3, now - 1000, 100)).unwrap();
        s.close().unwrap();
        (expired, held, fresh)
    };
    let cfg = dir.path().join("polewatch.toml");
    std::fs::write(&cfg, config(dir.path(), "info")).unwrap();
    let sock_path = dir.path().join("notify.sock");
    let notes = Notifications(UnixDatagram::bind(&sock_path).unwrap());

    let mut child = spawn_daemon(&cfg, &sock_path, Stdio::piped());
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let log_w = log.clone();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            log_w.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });

    let ready = notes.wait_for("READY=1", Duration::from_secs(20));
    assert!(ready.contains("STATUS="), "{ready}");
    notes.wait_for("WATCHDOG=1", Duration::from_secs(5));
    let status = notes.wait_for("last purge: 1 deleted, 1 held", Duration::from_secs(20));
    assert!(status.contains("STATUS=store ok"), "{status}");

    // A reload with a broken file keeps the daemon up on the old configuration.
    std::fs::write(&cfg, "[site]\nsite_id = \"t\"\n").unwrap();
    signal(child.id(), libc::SIGHUP);
    notes.wait_for("RELOADING=1", Duration::from_secs(5));
    notes.wait_for("READY=1", Duration::from_secs(5));
    std::fs::write(&cfg, config(dir.path(), "debug")).unwrap();
    signal(child.id(), libc::SIGHUP);
    // systemd ≥ 253 stops a service whose RELOADING=1 comes without the monotonic time.
    let reloading = notes.wait_for("RELOADING=1", Duration::from_secs(5));
    assert!(
        reloading
            .lines()
            .any(|l| l.strip_prefix("MONOTONIC_USEC=").is_some_and(|v| v.parse::<u64>().is_ok_and(|us| us > 0))),
        "{reloading}"
    );
    notes.wait_for("READY=1", Duration::from_secs(5));
    notes.wait_for("WATCHDOG=1", Duration::from_secs(5));

    signal(child.id(), libc::SIGTERM);
    notes.wait_for("STOPPING=1", Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "daemon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("reload failed, keeping the running configuration"), "{log}");
    assert!(log.contains("missing field `device_id`"), "{log}");
    assert!(log.contains("configuration reloaded"), "{log}");
    // The level from the reload applies on stderr at once (a debug line after it, none before).
    assert!(log.contains("log level set to debug"), "{log}");
    assert!(log.contains("store flushed; polewatch stopped"), "{log}");
    assert!(!log.contains("T0000001") && !log.contains("T0000002"), "plate text must not reach the log at info level");

    let (s, _) = Store::open(&StoreOptions::at(dir.path().join("store"))).unwrap();
    assert!(s.get_read(expired).unwrap().is_none(), "expired read was not purged");
    assert!(s.get_read(held).unwrap().is_some(), "held read was purged");
    assert!(s.get_read(fresh).unwrap().is_some(), "fresh read was purged");

    // The purge is in the audit log, chained under the key the daemon created.
    let log = AuditLog::open(Arc::new(s), &dir.path().join("keys/audit.key")).unwrap();
    assert!(log.verify(None).unwrap().entries >= 1);
    // (A disk above the high watermark on the test machine puts a disk_watermark entry first.)
    let n = log.verify(None).unwrap().entries;
    let purge = (1..=n)
        .map(|seq| {
            decode_record(&AuditRecord { key_seq: Some(seq), bytes: log.store().audit_record(seq).unwrap().unwrap() })
                .unwrap()
        })
        .find(|e| e.action == Action::RetentionPurge)
        .expect("a retention_purge entry");
    assert_eq!((purge.result_count, purge.user.as_str()), (Some(1), "system"));
}

#[test]
fn run_refuses_an_invalid_config_before_touching_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("polewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}[store.retention]\nmax_days = 1\n",
            config(dir.path(), "info")
                .replace("[store.retention]\nmin_days = 365\nmax_days = 365\nrequire_clock_sync = false\n", "")
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_polewatch")).args(["run", "--config"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("store.retention.max_days: must be at least min_days"), "{err}");
    assert!(!dir.path().join("store").exists());
}

#[test]
fn camera_states_show_in_the_systemd_status() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("polewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "{}[[cameras]]\nid = \"gate\"\nurl = \"file://{}\"\n",
            config(dir.path(), "info"),
            dir.path().join("missing.mkv").display()
        ),
    )
    .unwrap();
    let sock_path = dir.path().join("notify.sock");
    let notes = Notifications(UnixDatagram::bind(&sock_path).unwrap());
    let mut child = spawn_daemon(&cfg, &sock_path, Stdio::null());
    let status = notes.wait_for("cameras: gate=backoff(not-found", Duration::from_secs(20));
    assert!(status.contains("STATUS="), "{status}");
    // SIGHUP: an added camera starts, the unchanged one keeps running (its attempt count goes on, where a
    // restart would begin again at 0); then a removed one goes.
    notes.wait_for("cameras: gate=backoff(not-found, attempt 3)", Duration::from_secs(20));
    let cam = |id: &str, file: &str| {
        format!("[[cameras]]\nid = \"{id}\"\nurl = \"file://{}\"\n", dir.path().join(file).display())
    };
    let base = config(dir.path(), "info");
    std::fs::write(&cfg, format!("{base}{}{}", cam("gate", "missing.mkv"), cam("lane2", "lane2.mkv"))).unwrap();
    signal(child.id(), libc::SIGHUP);
    let status = notes.wait_for(", lane2=backoff(not-found", Duration::from_secs(20));
    let gate_attempt: u32 = status
        .split("gate=backoff(not-found, attempt ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .expect(&status);
    assert!(gate_attempt >= 3, "gate was restarted: {status}");
    std::fs::write(&cfg, format!("{base}{}", cam("lane2", "lane2.mkv"))).unwrap();
    signal(child.id(), libc::SIGHUP);
    notes.wait_for("cameras: lane2=backoff(not-found", Duration::from_secs(20));
    signal(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The watchdog (ops::watchdog) is withheld while every camera is silent: the only camera's file is
/// missing, so it never decodes a frame, and after the watchdog window (400 ms here) WATCHDOG=1 stops
/// while STATUS= goes on every tick (the supervisor loop is alive) and the log says why. With no camera
/// at all (the first test) the daemon pets.
#[test]
fn the_watchdog_is_withheld_while_every_camera_is_silent() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("polewatch.toml");
    let camera = format!("[[cameras]]\nid = \"gate\"\nurl = \"file://{}\"\n", dir.path().join("missing.mkv").display());
    std::fs::write(&cfg, format!("{}{camera}", config(dir.path(), "info"))).unwrap();
    let sock_path = dir.path().join("notify.sock");
    let notes = Notifications(UnixDatagram::bind(&sock_path).unwrap());
    let mut child = spawn_daemon(&cfg, &sock_path, Stdio::piped());
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    });
    notes.wait_for("READY=1", Duration::from_secs(20));
    let ready_at = Instant::now();
    let got = notes.collect(Duration::from_secs(5));
    // Well past the window (ticks every 200 ms; silence counts from the first tick after READY).
    let late: Vec<&String> =
        got.iter().filter(|(at, _)| *at > ready_at + Duration::from_millis(2500)).map(|(_, m)| m).collect();
    assert!(late.iter().all(|m| !m.contains("WATCHDOG=1")), "watchdog petted with every camera silent: {late:?}");
    assert!(late.iter().filter(|m| m.contains("STATUS=")).count() >= 3, "the supervisor loop stopped ticking: {got:?}");
    assert!(late.iter().any(|m| m.contains("cameras: gate=")), "{late:?}");
    signal(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = reader.join().unwrap();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("all 1 camera(s) silent for") && log.contains("withholding watchdog ping"), "{log}");
}
