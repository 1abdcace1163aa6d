//! The running cameras, and their reload (SIGHUP): a camera whose settings or credentials changed is
//! restarted, a new or newly enabled one started, a removed or disabled one stopped; the others keep
//! streaming untouched. Stopping happens outside the lock, so status reads never wait on a teardown.

use super::camera::{Camera, Timing};
use super::settings;
use super::{CameraState, FrameQueue};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct CameraSet {
    cameras: Mutex<Vec<Camera>>,
    /// One reload at a time (two quick SIGHUPs).
    reloading: Mutex<()>,
    /// Set by [`CameraSet::stop_all`]: a reload still under way at shutdown starts nothing.
    closed: AtomicBool,
    queue: Arc<FrameQueue>,
    timing: Timing,
}

/// What a reload did, by camera id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    pub started: Vec<String>,
    pub restarted: Vec<String>,
    pub stopped: Vec<String>,
    pub kept: Vec<String>,
    /// Cameras that could not start (credentials unreadable), with why.
    pub failed: Vec<(String, String)>,
}

impl CameraSet {
    pub fn new(queue: Arc<FrameQueue>, timing: Timing) -> CameraSet {
        CameraSet {
            cameras: Mutex::new(Vec::new()),
            reloading: Mutex::new(()),
            closed: AtomicBool::new(false),
            queue,
            timing,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Camera>> {
        self.cameras.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn queue(&self) -> &Arc<FrameQueue> {
        &self.queue
    }

    /// Brings the running cameras in line with `wanted` (the enabled ones run). Blocks while changed
    /// cameras stop (each within its teardown deadline, all at once), so call it off the supervisor loop.
    pub fn apply(&self, wanted: &[settings::Camera]) -> ReloadReport {
        let _one = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let wanted: Vec<&settings::Camera> = wanted.iter().filter(|c| c.enabled).collect();
        self.queue.size_for_cameras(wanted.len());
        let mut report = ReloadReport::default();
        let leaving: Vec<Camera> = {
            let mut cams = self.lock();
            let (keep, leave): (Vec<Camera>, Vec<Camera>) =
                std::mem::take(&mut *cams).into_iter().partition(|cam| wanted.iter().any(|w| cam.runs(w)));
            *cams = keep;
            report.kept = cams.iter().map(|c| c.id.to_string()).collect();
            leave
        };
        for cam in &leaving {
            cam.request_stop();
            if wanted.iter().any(|w| w.id == cam.id.as_ref()) {
                report.restarted.push(cam.id.to_string());
            } else {
                report.stopped.push(cam.id.to_string());
            }
        }
        // Old pipelines go before new ones connect: a camera may allow only a few RTSP sessions.
        let stoppers: Vec<_> = leaving.into_iter().map(|c| std::thread::spawn(move || c.stop())).collect();
        for s in stoppers {
            let _ = s.join();
        }
        let mut cams = self.lock();
        if self.closed.load(Ordering::SeqCst) {
            return report;
        }
        for w in wanted {
            if cams.iter().any(|c| c.id.as_ref() == w.id) {
                continue;
            }
            match Camera::spawn(w, self.queue.clone(), self.timing) {
                Ok(cam) => {
                    if !report.restarted.contains(&w.id) {
                        report.started.push(w.id.clone());
                    }
                    cams.push(cam);
                }
                Err(e) => {
                    log::error!(camera = w.id.as_str(); "camera not started: {e}");
                    report.restarted.retain(|id| id != &w.id);
                    report.failed.push((w.id.clone(), e.to_string()));
                }
            }
        }
        report
    }

    /// Each camera's id and state, in start order.
    pub fn states(&self) -> Vec<(Arc<str>, CameraState)> {
        self.lock().iter().map(|c| (c.id.clone(), c.state())).collect()
    }

    /// Runs `f` on the camera with this id.
    pub fn with<R>(&self, id: &str, f: impl FnOnce(&Camera) -> R) -> Option<R> {
        self.lock().iter().find(|c| c.id.as_ref() == id).map(f)
    }

    /// Stops every camera, all at once; later reloads start none.
    pub fn stop_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let cams = std::mem::take(&mut *self.lock());
        cams.iter().for_each(Camera::request_stop);
        let stoppers: Vec<_> = cams.into_iter().map(|c| std::thread::spawn(move || c.stop())).collect();
        for s in stoppers {
            let _ = s.join();
        }
    }
}
