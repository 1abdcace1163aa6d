//! What the Debian package ships, checked here: a man page per subcommand (`polewatch man`), the unit as
//! `systemd-analyze` sees it (verify, and the security score), the broker recipe (`make broker`), and a
//! built .deb (`make deb`) through scripts/check-deb.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn man_pages(dir: &Path) -> PathBuf {
    let man1 = dir.join("man1");
    let out = Command::new(env!("CARGO_BIN_EXE_polewatch")).args(["man", "--out"]).arg(&man1).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    man1
}

#[test]
fn a_man_page_for_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let man1 = man_pages(dir.path());
    let mut names: Vec<String> =
        std::fs::read_dir(&man1).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    for want in [
        "polewatch.1",
        "polewatch-run.1",
        "polewatch-check-config.1",
        "polewatch-user.1",
        "polewatch-user-add.1",
        "polewatch-audit-verify.1",
        "polewatch-export-verify.1",
        "polewatch-recognize.1",
        "polewatch-man.1",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing from {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains("debug") || n.ends_with("-help.1")),
        "hidden commands have no page: {names:?}"
    );
    // The benchmarks, the demo video and the test helpers are polewatch-dev's, not the daemon's (issue 14).
    assert!(!names.iter().any(|n| n.contains("bench") || n.contains("demo")), "dev tools in the daemon: {names:?}");
    let page = std::fs::read_to_string(man1.join("polewatch-export-verify.1")).unwrap();
    assert!(page.starts_with(".ie") || page.contains(".TH polewatch-export-verify"), "{page}");
    assert!(page.contains("PUBKEY") && page.contains("SHA256SUMS"), "{page}");
    // The top page lists the subcommands, as man(1) shows them.
    let top = std::fs::read_to_string(man1.join("polewatch.1")).unwrap();
    assert!(top.contains("polewatch\\-export(1)") && top.contains("polewatch\\-run(1)"), "{top}");
    if have("man") {
        let out =
            Command::new("man").env("MANPATH", dir.path()).args(["-w", "polewatch-export-verify"]).output().unwrap();
        assert!(out.status.success(), "man cannot find the page: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// The unit with the built binary in place of /usr/bin/polewatch, beside the generated man pages.
fn unit_copy(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string(root().join("systemd/polewatch.service")).unwrap();
    let p = dir.join("polewatch.service");
    std::fs::write(&p, unit.replace("/usr/bin/polewatch", env!("CARGO_BIN_EXE_polewatch"))).unwrap();
    p
}

#[test]
fn the_unit_verifies_and_scores_at_most_2_in_systemd_analyze_security() {
    if !have("systemd-analyze") {
        eprintln!("SKIPPED: no systemd-analyze on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    man_pages(dir.path());
    let unit = unit_copy(dir.path());
    // Documentation=man:… must name pages that exist: verify runs man(1) on each.
    let out = Command::new("systemd-analyze").env("MANPATH", dir.path()).arg("verify").arg(&unit).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "systemd-analyze verify:\n{err}");

    let out =
        Command::new("systemd-analyze").args(["security", "--offline=true", "--no-pager"]).arg(&unit).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for polewatch.service: ").nth(1))
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in:\n{text}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
    // (@privileged and @clock stay marked: adjtimex, read-only without CAP_SYS_TIME, is allowed back.)
    for must in [
        "SystemCallFilter=~@mount",
        "SystemCallFilter=~@raw-io",
        "SystemCallArchitectures=",
        "ProtectProc=",
        "RemoveIPC=",
    ] {
        let line = text.lines().find(|l| l.contains(must)).unwrap_or_else(|| panic!("{must} not rated"));
        assert!(line.starts_with('✓'), "{line}");
    }
    let ip = text.lines().find(|l| l.contains("IPAddressDeny=")).unwrap();
    assert!(ip.contains("allow list with non-localhost entries"), "IPAddressDeny=any with a LAN allow list: {ip}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn the_broker_recipe_keeps_each_box_to_its_own_topics() {
    if !have("mosquitto") || !have("mosquitto_pub") {
        eprintln!("SKIPPED: mosquitto or mosquitto-clients missing (scripts/install-deps installs them)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("broker");
    let port = free_port();
    let mut broker = Command::new(root().join("scripts/broker"))
        .arg(&state)
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "broker did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    let tls = |who: &str| -> Vec<String> {
        ["--cafile", "ca.pem", "--cert", &format!("{who}.pem"), "--key", &format!("{who}.key")]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    let sub = Command::new("mosquitto_sub")
        .current_dir(&state)
        .args(["-h", "localhost", "-p", &port.to_string(), "-t", "polewatch/#", "-v", "-W", "6"])
        .args(tls("central"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let publish = |args: &[String], topic: &str, msg: &str| {
        Command::new("mosquitto_pub")
            .current_dir(&state)
            .args(["-h", "localhost", "-p", &port.to_string(), "-t", topic, "-m", msg])
            .args(args)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(publish(&tls("site-a-pole-01"), "polewatch/site-a/pole-01/status", "own"));
    publish(&tls("site-a-pole-01"), "polewatch/site-a/pole-02/status", "forged");
    assert!(
        !publish(&["--cafile".into(), "ca.pem".into()], "polewatch/site-a/pole-01/status", "anonymous"),
        "no certificate, no connection"
    );
    let got = sub.wait_with_output().unwrap();
    let _ = broker.kill();
    let _ = broker.wait();
    let got = String::from_utf8_lossy(&got.stdout);
    assert!(got.contains("polewatch/site-a/pole-01/status own"), "{got}");
    assert!(!got.contains("forged") && !got.contains("anonymous"), "the ACL let through: {got}");
}

/// After `make deb`: the newest package in target/debian through scripts/check-deb (paths, modes,
/// conffiles, stripped binary, -dbgsym, man pages).
#[test]
fn a_built_package_passes_check_deb() {
    let debs = root().join("target/debian");
    let newest = std::fs::read_dir(&debs).ok().and_then(|d| {
        d.flatten()
            .filter(|e| {
                e.file_name().to_string_lossy().starts_with("polewatch_")
                    && e.file_name().to_string_lossy().ends_with(".deb")
            })
            .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
    });
    let Some(deb) = newest else {
        eprintln!("SKIPPED: no package in {} (make deb builds one)", debs.display());
        return;
    };
    let out = Command::new(root().join("scripts/check-deb")).arg(deb.path()).output().unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// Issue 16 §3/§6: encryption at rest is on in the package. `debian/postinst`, run in a throw-away root (its
/// paths moved under a temporary folder; adduser, getent, install, chown and chgrp stubbed), makes a 0600
/// store key and the drop-in that turns encryption on, once; the shipped configuration with that drop-in
/// loads with encryption on and that key. A box upgraded with a store written in clear is left as it is
/// and told how to encrypt it.
#[test]
fn postinst_turns_encryption_at_rest_on_with_a_0600_key() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let t = d.path();
    let stubs = t.join("stubs");
    std::fs::create_dir_all(&stubs).unwrap();
    for tool in ["adduser", "getent", "install", "chown", "chgrp"] {
        let p = stubs.join(tool);
        std::fs::write(&p, "#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let box_root = |name: &str| -> (PathBuf, PathBuf) {
        let r = t.join(name);
        let etc = r.join("etc/polewatch");
        std::fs::create_dir_all(etc.join("conf.d")).unwrap();
        std::fs::create_dir_all(r.join("var/lib/polewatch")).unwrap();
        let shipped = std::fs::read_to_string(root().join("config/polewatch.toml")).unwrap();
        let local = shipped
            .replace("/usr/share/polewatch/models/", &format!("{}/models/", root().display()))
            .replace("/etc/polewatch", &etc.display().to_string())
            .replace("/var/lib/polewatch", &r.join("var/lib/polewatch").display().to_string());
        std::fs::write(etc.join("polewatch.toml"), local).unwrap();
        let script = std::fs::read_to_string(root().join("debian/postinst"))
            .unwrap()
            .replace("/etc/polewatch", &etc.display().to_string())
            .replace("/var/lib/polewatch", &r.join("var/lib/polewatch").display().to_string());
        let s = r.join("postinst");
        std::fs::write(&s, script).unwrap();
        (etc, s)
    };
    let run = |script: &Path| -> String {
        let path = format!("{}:{}", stubs.display(), std::env::var("PATH").unwrap_or_default());
        let out = Command::new("sh").arg(script).arg("configure").env("PATH", path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    // A new box.
    let (etc, script) = box_root("new");
    run(&script);
    let key = etc.join("store.key");
    let meta = std::fs::metadata(&key).expect("postinst makes the store key");
    assert_eq!((meta.len(), meta.permissions().mode() & 0o777), (32, 0o600));
    let drop_in = etc.join("conf.d/50-encryption.toml");
    assert_eq!(std::fs::metadata(&drop_in).unwrap().permissions().mode() & 0o777, 0o640);
    let first = std::fs::read(&key).unwrap();
    run(&script);
    assert_eq!(std::fs::read(&key).unwrap(), first, "a second configure keeps the key");
    let loaded = polewatch::config::load(&etc.join("polewatch.toml"))
        .expect("the shipped configuration with the drop-in is valid");
    assert!(loaded.config.store.encryption, "encryption on");
    assert_eq!(loaded.config.store.key_file.as_deref(), Some(key.as_path()));

    // An upgraded box whose store is in clear: no key, no drop-in, a message.
    let (etc, script) = box_root("old");
    std::fs::create_dir_all(etc.parent().unwrap().parent().unwrap().join("var/lib/polewatch/store")).unwrap();
    let said = run(&script);
    assert!(!etc.join("store.key").exists() && !etc.join("conf.d/50-encryption.toml").exists());
    assert!(said.contains("not encrypted at rest") && said.contains("rotate-key"), "{said}");
    assert!(!polewatch::config::load(&etc.join("polewatch.toml")).unwrap().config.store.encryption);
}
