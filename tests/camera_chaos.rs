//! Camera chaos through the whole daemon (issue 15): two RTSP cameras on real gst-rtsp-server children;
//! camera `b`'s server is killed and restarted, stalled (SIGSTOP), replaced by a server that answers
//! garbage, and replaced by one whose stream changes resolution mid-stream. Throughout, the daemon must
//! stay up, report each change of `b` in its systemd STATUS, keep analysing camera `a` while `b` is down
//! (the daemon's count of analysed frames grows with `b` not streaming), come back to `b` and analyse it
//! after its resolution change with `a` gone, keep its threads and file descriptors bounded, and stop
//! cleanly. No assertion is
//! on time: every wait is for a state, with a generous limit.

mod support;

use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use std::io::{Read, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::rtsp::Killed;

const CHILD_ENV: &str = "POLEWATCH_TEST_CHAOS_RTSP";

/// Not a test: the RTSP server child. `port:file` serves the file on /cam; `port:first|second` serves the
/// two files one after the other in one stream (a resolution change mid-stream when they differ).
#[test]
#[ignore = "helper process for the camera chaos test, not a test"]
fn chaos_rtsp_server_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let (port, files) = spec.split_once(':').unwrap();
    gst::init().unwrap();
    let main_loop = gst::glib::MainLoop::new(None, false);
    let server = rtsp::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(port);
    let factory = rtsp::RTSPMediaFactory::new();
    let launch = match files.split_once('|') {
        None => format!(
            "( filesrc location=\"{files}\" ! qtdemux ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        ),
        Some((a, b)) => format!(
            "( concat name=c ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=-1 \
               filesrc location=\"{a}\" ! qtdemux ! h264parse ! c. filesrc location=\"{b}\" ! qtdemux ! h264parse ! c. )"
        ),
    };
    factory.set_launch(&launch);
    factory.set_shared(false);
    server.mount_points().unwrap().add_factory("/cam", factory);
    let _id = server.attach(None).unwrap();
    main_loop.run();
}

fn server(port: u16, files: &str) -> Killed {
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "chaos_rtsp_server_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{port}:{files}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "RTSP server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Killed(child)
}

/// A server on `port` that answers every connection with garbage and closes it.
fn garbage_server(port: u16) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let s = stop.clone();
    std::thread::spawn(move || {
        let mut n = 0u64;
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut c, _)) => {
                    n += 1;
                    let _ = c.set_read_timeout(Some(Duration::from_millis(200)));
                    let mut buf = [0u8; 2048];
                    let _ = c.read(&mut buf);
                    // Half the time a plausible status line with a broken body, else raw noise.
                    let junk: Vec<u8> = (0..4096).map(|_| fastrand::u8(..)).collect();
                    if n.is_multiple_of(2) {
                        let _ = c.write_all(b"RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 99999\r\nContent-Type: application/sdp\r\n\r\n");
                    }
                    let _ = c.write_all(&junk);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    stop
}

struct Notifications(UnixDatagram);

impl Notifications {
    /// The next STATUS that satisfies `f`, within `within`; panics with what was seen otherwise.
    fn wait(&self, what: &str, within: Duration, f: impl Fn(&Status) -> bool) -> Status {
        let deadline = Instant::now() + within;
        let mut buf = [0u8; 8192];
        let mut last = String::new();
        while Instant::now() < deadline {
            self.0.set_read_timeout(Some(deadline - Instant::now())).unwrap();
            if let Ok(n) = self.0.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).to_string();
                if let Some(s) = Status::parse(&msg) {
                    if f(&s) {
                        return s;
                    }
                    last = msg;
                }
            }
        }
        panic!("no STATUS with {what} within {within:?}; last: {last}");
    }
}

#[derive(Debug, Clone)]
struct Status {
    text: String,
    frames: u64,
}

impl Status {
    fn parse(msg: &str) -> Option<Status> {
        let text = msg.lines().find_map(|l| l.strip_prefix("STATUS="))?.to_string();
        // "…; 123 frames analysed, 4 vehicle reads stored"
        let frames = text
            .split("; ")
            .find_map(|p| p.split_once(" frames analysed").map(|(n, _)| n))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        Some(Status { text, frames })
    }

    /// `streaming`, `backoff(stalled, attempt 2)`… (a state may hold ", ", so cut at its closing ')').
    fn camera(&self, id: &str) -> &str {
        let cams = self.text.split("cameras: ").nth(1).unwrap_or("");
        let Some(at) = cams.find(&format!("{id}=")).filter(|&i| i == 0 || cams[..i].ends_with(", ")) else { return "" };
        let state = &cams[at + id.len() + 1..];
        let end = if state.starts_with("backoff(") {
            state.find(')').map_or(state.len(), |i| i + 1)
        } else {
            state.find([',', ';']).unwrap_or(state.len())
        };
        &state[..end]
    }

    fn streaming(&self, id: &str) -> bool {
        self.camera(id) == "streaming"
    }

    fn down(&self, id: &str) -> bool {
        self.camera(id).starts_with("backoff(")
    }
}

fn proc_count(pid: u32, what: &str) -> usize {
    match what {
        "fds" => std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0),
        _ => std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("Threads:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0),
    }
}

fn config(dir: &Path, a: u16, b: u16) -> PathBuf {
    let cam = |id: &str, port: u16| {
        format!(
            "[[cameras]]\nid = \"{id}\"\nurl = \"rtsp://127.0.0.1:{port}/cam\"\ntransport = \"tcp\"\nanalysis_fps = 2.0\nmotion_gate = false\n"
        )
    };
    let cfg = dir.join("polewatch.toml");
    std::fs::write(
        &cfg,
        format!(
            "[site]\nsite_id = \"t\"\ndevice_id = \"d\"\n[store]\npath = \"{}\"\n[store.retention]\nrequire_clock_sync = false\n\
             [access]\naudit_key_file = \"{}\"\n[logging]\nlevel = \"warn\"\ntarget = \"stderr\"\n{}\n{}{}",
            dir.join("store").display(),
            dir.join("audit.key").display(),
            support::recognizer_tables(),
            cam("a", a),
            cam("b", b)
        ),
    )
    .unwrap();
    cfg
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

fn alive(d: &mut Child) {
    assert!(d.try_wait().unwrap().is_none(), "the daemon exited");
}

#[test]
fn camera_b_killed_stalled_garbled_and_resized_while_camera_a_is_analysed() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.mp4");
    let short = dir.path().join("short.mp4");
    let small = dir.path().join("small.mp4");
    polewatch_dev::demo::write_video(&big, 640, 360, 10, 20.0).expect("video renders");
    // Camera a's stream must outlast the test: a 20 s clip ends (a live source's end-of-stream, then a
    // reconnect) while b's faults are played, and a status taken then shows a in back-off.
    let long = dir.path().join("long.mp4");
    polewatch_dev::demo::write_video(&long, 640, 360, 10, 150.0).expect("video renders");
    polewatch_dev::demo::write_video(&short, 640, 360, 10, 3.0).expect("video renders");
    polewatch_dev::demo::write_video(&small, 320, 240, 10, 60.0).expect("video renders");
    let (pa, pb) = (support::free_port(), support::free_port());
    let mut server_a = Some(server(pa, &long.display().to_string()));
    let mut server_b = Some(server(pb, &big.display().to_string()));

    let sock = dir.path().join("notify.sock");
    let notes = Notifications(UnixDatagram::bind(&sock).unwrap());
    let cfg = config(dir.path(), pa, pb);
    let log = dir.path().join("daemon.log");
    let mut d = Killed(
        // As systemd starts it (`exec` keeps the shell's pid for WATCHDOG_PID): STATUS= is sent at every
        // watchdog ping, here every 0.5 s.
        Command::new("sh")
            .arg("-c")
            .arg("WATCHDOG_PID=$$ exec \"$0\" run --config \"$1\"")
            .arg(env!("CARGO_BIN_EXE_polewatch"))
            .arg(&cfg)
            .env("NOTIFY_SOCKET", &sock)
            .env("WATCHDOG_USEC", "1000000")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let pid = d.0.id();
    let limit = Duration::from_secs(120);
    let both = notes.wait("both cameras streaming and frames analysed", limit, |s| {
        s.streaming("a") && s.streaming("b") && s.frames > 0
    });
    let (threads0, fds0) = (proc_count(pid, "threads"), proc_count(pid, "fds"));
    println!("start: {} threads, {} fds; {}", threads0, fds0, both.text);
    let mut states_of_b = Vec::new();

    // While b is down, a alone must move the count of analysed frames.
    let a_analysed_while_b = |what: &str, states: &mut Vec<String>| {
        let down = notes.wait(&format!("b down ({what})"), limit, |s| s.down("b"));
        states.push(down.camera("b").to_string());
        let more = notes.wait(&format!("frames analysed with b down ({what})"), limit, |s| {
            s.down("b") && s.frames >= down.frames + 10
        });
        assert!(more.streaming("a"), "a stopped streaming while b was down: {}", more.text);
    };

    for round in 0..3 {
        // 1. The server killed, then back.
        drop(server_b.take());
        a_analysed_while_b(&format!("killed, round {round}"), &mut states_of_b);
        server_b = Some(server(pb, &big.display().to_string()));
        notes.wait("b back after its server restarted", limit, |s| s.streaming("b"));
        alive(&mut d.0);
    }

    // 2. A stall: the server stops (SIGSTOP) with the session open; then it resumes.
    let stalled_pid = server_b.as_ref().unwrap().0.id();
    signal(stalled_pid, libc::SIGSTOP);
    a_analysed_while_b("stalled", &mut states_of_b);
    signal(stalled_pid, libc::SIGCONT);
    notes.wait("b back after the stall", limit, |s| s.streaming("b"));
    alive(&mut d.0);

    // 3. Garbage: a server that answers noise.
    drop(server_b.take());
    std::thread::sleep(Duration::from_millis(200));
    let stop_garbage = garbage_server(pb);
    a_analysed_while_b("garbage", &mut states_of_b);
    let again =
        notes.wait("b retried against the garbage", limit, |s| s.camera("b").contains("attempt ") && s.down("b"));
    states_of_b.push(again.camera("b").to_string());
    stop_garbage.store(true, std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    alive(&mut d.0);

    // 4. A resolution change mid-stream (640x360 for 3 s, then 320x240), with a gone: only b can move
    // the count of analysed frames, past the change.
    server_b = Some(server(pb, &format!("{}|{}", short.display(), small.display())));
    notes.wait("b streaming the changing stream", limit, |s| s.streaming("b"));
    drop(server_a.take());
    let a_down = notes.wait("a down", limit, |s| s.down("a"));
    // 2 fps: 10 frames is 5 s of b's stream, past its 3 s first part.
    let b_seen = std::cell::RefCell::new(Vec::<String>::new());
    let after = notes.wait("b analysed past its resolution change", limit, |s| {
        let mut seen = b_seen.borrow_mut();
        if seen.last().map(String::as_str) != Some(s.camera("b")) {
            seen.push(s.camera("b").to_string());
        }
        s.down("a") && s.frames >= a_down.frames + 10
    });
    // Seen on this machine: streaming, connecting (at the change), streaming, backoff(ended), then back;
    // the change is not taken in the stream (an open finding of issue 15: the camera reconnects, and the
    // frames of the reconnection are lost), but the camera comes back and is analysed again.
    println!("b during its resolution change: {:?}", b_seen.borrow());
    notes.wait("b streaming again after its resolution change", limit, |s| s.streaming("b"));
    let more = notes
        .wait("b analysed again after its resolution change", limit, |s| s.down("a") && s.frames >= after.frames + 6);
    assert!(more.down("a"), "{}", more.text);
    alive(&mut d.0);

    // Bounded: a thread or descriptor leaked per reconnect would show after these eight.
    let (threads1, fds1) = (proc_count(pid, "threads"), proc_count(pid, "fds"));
    println!("end: {threads1} threads, {fds1} fds; b went through {states_of_b:?}");
    assert!(threads1 <= threads0 + 8, "threads grew from {threads0} to {threads1}");
    assert!(fds1 <= fds0 + 16, "file descriptors grew from {fds0} to {fds1}");

    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = d.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "the daemon did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "the daemon's exit: {status}; log:\n{text}");
    assert!(!text.contains("panicked"), "a thread panicked:\n{text}");
    // The stall is reported as one (STATUS is sampled every 0.5 s and may show only the retry after it;
    // the warning is logged once per kind of failure).
    assert!(
        text.contains("camera not streaming (stalled)"),
        "the stall was not reported as such; b went through {states_of_b:?}; log:\n{text}"
    );
    drop(server_b);
}
