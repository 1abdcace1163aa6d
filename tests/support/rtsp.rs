//! A real gst-rtsp-server on loopback serving a video file on /demo, run as a child process of the test
//! binary (a test marked `#[ignore]` that calls [`serve_file_from_env`]), and a child killed on drop.

use gstreamer as gst;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child's body: serves the file named in `env_var` (`port:path`) on /demo, each client from the
/// start, until killed. Returns at once when the variable is not set (a plain `--ignored` run).
pub fn serve_file_from_env(env_var: &str) {
    let Ok(spec) = std::env::var(env_var) else { return };
    let (port, file) = spec.split_once(':').unwrap();
    gst::init().unwrap();
    let main_loop = gst::glib::MainLoop::new(None, false);
    let server = rtsp::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(port);
    let factory = rtsp::RTSPMediaFactory::new();
    factory.set_launch(&format!("( filesrc location=\"{file}\" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )"));
    server.mount_points().unwrap().add_factory("/demo", factory);
    let _id = server.attach(None).unwrap();
    main_loop.run();
}

/// Starts this test binary's child test `child_test` serving `video` on a free port; returns once the port
/// answers.
pub fn spawn_file_server(child_test: &str, env_var: &str, video: &Path) -> (Killed, u16) {
    let port = super::free_port();
    let server = Killed(
        Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", child_test, "--nocapture", "--test-threads=1"])
            .env(env_var, format!("{port}:{}", video.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "RTSP server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port)
}
