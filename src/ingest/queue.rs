//! A bounded frame queue that drops the oldest frame when full: under load the recognizer works on the
//! newest frames, and a slow recognizer never blocks a camera's streaming thread.

use super::Frame;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub struct FrameQueue {
    frames: Mutex<VecDeque<Frame>>,
    ready: Condvar,
    capacity: AtomicUsize,
    dropped: AtomicU64,
    /// The same drops by the camera of the frame dropped, for metrics.
    dropped_by_camera: Mutex<std::collections::BTreeMap<std::sync::Arc<str>, u64>>,
}

/// Frames held per running camera: enough to ride out one slow recognizer call, few enough to stay fresh
/// (each 1080p frame is 6 MiB of BGR; 4 per camera held 25 MiB per camera whenever the recognizer lagged).
pub const FRAMES_PER_CAMERA: usize = 2;

impl FrameQueue {
    pub fn new(capacity: usize) -> FrameQueue {
        FrameQueue {
            frames: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            capacity: AtomicUsize::new(capacity.max(1)),
            dropped: AtomicU64::new(0),
            dropped_by_camera: Mutex::new(std::collections::BTreeMap::new()),
        }
    }

    /// Sizes the queue for `cameras` running cameras (a reload adds or removes some); a smaller queue
    /// sheds its oldest frames on the next push.
    pub fn size_for_cameras(&self, cameras: usize) {
        self.capacity.store((cameras * FRAMES_PER_CAMERA).max(FRAMES_PER_CAMERA), Ordering::Relaxed);
    }

    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    pub fn push(&self, f: Frame) {
        let mut q = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        let capacity = self.capacity();
        while q.len() >= capacity {
            if let Some(old) = q.pop_front() {
                *self.dropped_by_camera.lock().unwrap_or_else(|p| p.into_inner()).entry(old.camera).or_default() += 1;
            }
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        q.push_back(f);
        self.ready.notify_one();
    }

    /// The oldest frame, waiting up to `timeout`.
    pub fn pop(&self, timeout: Duration) -> Option<Frame> {
        let q = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        let (mut q, _) = self.ready.wait_timeout_while(q, timeout, |q| q.is_empty()).unwrap_or_else(|p| p.into_inner());
        q.pop_front()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Frames dropped, by camera.
    pub fn dropped_by_camera(&self) -> Vec<(std::sync::Arc<str>, u64)> {
        self.dropped_by_camera.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(c, n)| (c.clone(), *n)).collect()
    }

    pub fn len(&self) -> usize {
        self.frames.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> Frame {
        Frame {
            camera: "c".into(),
            seq,
            captured_at_ms: 0,
            width: 1,
            height: 1,
            format: crate::ingest::PixelFormat::Bgr,
            data: vec![0; 3],
        }
    }

    #[test]
    fn drops_the_oldest_and_counts() {
        let q = FrameQueue::new(2);
        for s in 0..5 {
            q.push(frame(s));
        }
        assert_eq!(q.dropped(), 3);
        assert_eq!(q.dropped_by_camera(), vec![("c".into(), 3)]);
        assert_eq!(q.pop(Duration::ZERO).map(|f| f.seq), Some(3));
        assert_eq!(q.pop(Duration::ZERO).map(|f| f.seq), Some(4));
        assert!(q.pop(Duration::from_millis(10)).is_none());
    }

    #[test]
    fn resizing_for_fewer_cameras_sheds_the_oldest_frames() {
        let q = FrameQueue::new(1);
        q.size_for_cameras(3);
        assert_eq!(q.capacity(), 3 * FRAMES_PER_CAMERA);
        let full = 3 * FRAMES_PER_CAMERA as u64;
        for s in 0..full {
            q.push(frame(s));
        }
        assert_eq!((q.len() as u64, q.dropped()), (full, 0));
        q.size_for_cameras(0);
        assert_eq!(q.capacity(), FRAMES_PER_CAMERA);
        q.push(frame(full));
        assert_eq!((q.len(), q.dropped()), (FRAMES_PER_CAMERA, full + 1 - FRAMES_PER_CAMERA as u64));
        assert_eq!(q.pop(Duration::ZERO).map(|f| f.seq), Some(full + 1 - FRAMES_PER_CAMERA as u64));
    }
}
