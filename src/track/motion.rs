//! Plate boxes in motion: where a track's next box should be, whether it has stayed put, and which way
//! it went.

use std::collections::VecDeque;

/// A box by its centre and size, in frame pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub cx: f32,
    pub cy: f32,
    pub w: f32,
    pub h: f32,
}

impl Rect {
    /// From `[x, y, w, h]`; an empty box counts as 1 px so that distances in widths stay finite.
    pub fn from_bbox(b: [u32; 4]) -> Rect {
        let (w, h) = (b[2].max(1) as f32, b[3].max(1) as f32);
        Rect { cx: b[0] as f32 + w / 2.0, cy: b[1] as f32 + h / 2.0, w, h }
    }

    pub fn centre_distance(&self, o: &Rect) -> f32 {
        (self.cx - o.cx).hypot(self.cy - o.cy)
    }

    fn mean(rs: &[Rect]) -> Rect {
        let n = rs.len().max(1) as f32;
        let s = rs.iter().fold([0.0f32; 4], |a, r| [a[0] + r.cx, a[1] + r.cy, a[2] + r.w, a[3] + r.h]);
        Rect { cx: s[0] / n, cy: s[1] / n, w: s[2] / n, h: s[3] / n }
    }
}

/// A track's last box and velocity, and since when it has stayed put.
#[derive(Debug, Clone)]
pub(crate) struct Motion {
    pub last: Rect,
    pub last_ms: i64,
    /// Change of centre and size per ms; none until two frames with time between them.
    velocity: Option<[f32; 4]>,
    /// Where the box was when it last moved more than the stillness tolerance.
    anchor: Rect,
    still_since_ms: i64,
}

impl Motion {
    pub fn new(r: Rect, at_ms: i64) -> Motion {
        Motion { last: r, last_ms: at_ms, velocity: None, anchor: r, still_since_ms: at_ms }
    }

    /// `still_widths`: how far (in widths) the centre may wander from where it stopped and still count
    /// as staying put.
    pub fn observe(&mut self, r: Rect, at_ms: i64, still_widths: f32) {
        let dt = at_ms.saturating_sub(self.last_ms) as f32;
        if dt > 0.0 {
            let v = [
                (r.cx - self.last.cx) / dt,
                (r.cy - self.last.cy) / dt,
                (r.w - self.last.w) / dt,
                (r.h - self.last.h) / dt,
            ];
            // Half old, half new: boxes jitter by a few pixels between frames 70 ms apart.
            self.velocity = Some(match self.velocity {
                Some(o) => [0.5 * (o[0] + v[0]), 0.5 * (o[1] + v[1]), 0.5 * (o[2] + v[2]), 0.5 * (o[3] + v[3])],
                None => v,
            });
        }
        if r.centre_distance(&self.anchor) > still_widths * r.w.max(self.anchor.w) {
            self.anchor = r;
            self.still_since_ms = at_ms;
        }
        self.last = r;
        self.last_ms = self.last_ms.max(at_ms);
    }

    pub fn has_velocity(&self) -> bool {
        self.velocity.is_some()
    }

    /// The box expected at `at_ms`, moving at the last velocity for at most `horizon_ms` (a velocity
    /// measured over 70 ms says little about where the car is seconds later).
    pub fn predict(&self, at_ms: i64, horizon_ms: i64) -> Rect {
        let dt = at_ms.saturating_sub(self.last_ms).clamp(0, horizon_ms.max(0)) as f32;
        match self.velocity {
            None => self.last,
            Some(v) => Rect {
                cx: self.last.cx + v[0] * dt,
                cy: self.last.cy + v[1] * dt,
                w: (self.last.w + v[2] * dt).max(1.0),
                h: (self.last.h + v[3] * dt).max(1.0),
            },
        }
    }

    /// How long, up to its last frame, the box has stayed put.
    pub fn still_ms(&self) -> i64 {
        self.last_ms.saturating_sub(self.still_since_ms)
    }
}

/// Direction of travel in image terms (the tracker knows nothing of compass or road): a box that grows
/// is approaching the camera, one that shrinks is receding; otherwise the centre's larger movement
/// decides left/right/up/down. Growth wins over sideways movement because a pole-mounted ALPR camera
/// looks along the road, where towards/away is the question asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Approaching,
    Receding,
    Left,
    Right,
    Up,
    Down,
    /// Neither grew nor moved past the thresholds (a parked car, a stop).
    Stationary,
    /// One frame: no movement to judge.
    Unknown,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Approaching => "approaching",
            Direction::Receding => "receding",
            Direction::Left => "left",
            Direction::Right => "right",
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Stationary => "stationary",
            Direction::Unknown => "unknown",
        }
    }
}

/// The first and last few boxes of a report's frames: enough for the direction, bounded however long a
/// car stays.
#[derive(Debug, Clone, Default)]
pub(crate) struct Path {
    head: Vec<Rect>,
    tail: VecDeque<Rect>,
    frames: u32,
}

/// Boxes averaged at each end, so that one jittery box does not decide the direction.
const ENDS: usize = 3;

impl Path {
    pub fn push(&mut self, r: Rect) {
        if self.head.len() < ENDS {
            self.head.push(r);
        }
        if self.tail.len() == ENDS {
            self.tail.pop_front();
        }
        self.tail.push_back(r);
        self.frames = self.frames.saturating_add(1);
    }

    /// `approach_growth`: fractional growth (or shrinkage) of the width that counts as approaching
    /// (receding); `min_travel_widths`: centre movement, in mean widths, that counts as moving.
    pub fn direction(&self, approach_growth: f32, min_travel_widths: f32) -> Direction {
        if self.frames < 2 {
            return Direction::Unknown;
        }
        // Ends that do not overlap: with 2..5 frames fewer than three boxes at each end.
        let k = ENDS.min(self.frames as usize / 2);
        let first = Rect::mean(&self.head[..k]);
        let tail: Vec<Rect> = self.tail.iter().copied().collect();
        let last = Rect::mean(&tail[tail.len() - k..]);
        let growth = last.w / first.w;
        if growth >= 1.0 + approach_growth {
            return Direction::Approaching;
        }
        if growth <= 1.0 / (1.0 + approach_growth) {
            return Direction::Receding;
        }
        let unit = 0.5 * (first.w + last.w);
        let (dx, dy) = ((last.cx - first.cx) / unit, (last.cy - first.cy) / unit);
        if dx.hypot(dy) < min_travel_widths {
            Direction::Stationary
        } else if dx.abs() >= dy.abs() {
            if dx > 0.0 { Direction::Right } else { Direction::Left }
        } else if dy > 0.0 {
            Direction::Down
        } else {
            Direction::Up
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(cx: f32, cy: f32, w: f32) -> Rect {
        Rect { cx, cy, w, h: w / 4.0 }
    }

    fn path(rs: &[Rect]) -> Path {
        let mut p = Path::default();
        for &x in rs {
            p.push(x);
        }
        p
    }

    #[test]
    fn prediction_follows_the_last_velocity_within_the_horizon() {
        let mut m = Motion::new(r(100.0, 100.0, 80.0), 0);
        assert_eq!(m.predict(100, 1500), r(100.0, 100.0, 80.0));
        assert!(!m.has_velocity());
        m.observe(r(110.0, 120.0, 84.0), 100, 0.5);
        assert!(m.has_velocity());
        let p = m.predict(200, 1500);
        assert!((p.cx - 120.0).abs() < 1e-3 && (p.cy - 140.0).abs() < 1e-3 && (p.w - 88.0).abs() < 1e-3);
        // Far in the future the velocity applies only up to the horizon.
        let far = m.predict(100 + 60_000, 1000);
        assert!((far.cx - 210.0).abs() < 1e-2);
        // Smoothing: half the old velocity, half the new.
        m.observe(r(110.0, 120.0, 84.0), 200, 0.5);
        assert!((m.predict(300, 1500).cx - 115.0).abs() < 1e-3);
        // A frame out of order moves nothing backwards in time.
        m.observe(r(110.0, 120.0, 84.0), 150, 0.5);
        assert_eq!(m.last_ms, 200);
    }

    #[test]
    fn stillness_restarts_whenever_the_box_moves_past_the_tolerance() {
        let mut m = Motion::new(r(100.0, 100.0, 80.0), 0);
        m.observe(r(130.0, 100.0, 80.0), 1000, 0.5); // 30 px < 40 px: still
        assert_eq!(m.still_ms(), 1000);
        m.observe(r(100.0, 110.0, 80.0), 2000, 0.5); // jitter back
        assert_eq!(m.still_ms(), 2000);
        m.observe(r(150.0, 100.0, 80.0), 3000, 0.5); // 50 px from where it stopped: moved
        assert_eq!(m.still_ms(), 0);
        m.observe(r(160.0, 100.0, 80.0), 9000, 0.5);
        assert_eq!(m.still_ms(), 6000);
    }

    #[test]
    fn direction_from_growth_then_from_centre_movement() {
        let approach: Vec<Rect> = (0..10).map(|i| r(500.0, 300.0 + 20.0 * i as f32, 60.0 + 5.0 * i as f32)).collect();
        assert_eq!(path(&approach).direction(0.15, 0.75), Direction::Approaching);
        let recede: Vec<Rect> = approach.iter().rev().copied().collect();
        assert_eq!(path(&recede).direction(0.15, 0.75), Direction::Receding);
        let right: Vec<Rect> = (0..6).map(|i| r(100.0 + 30.0 * i as f32, 300.0, 80.0)).collect();
        assert_eq!(path(&right).direction(0.15, 0.75), Direction::Right);
        let left: Vec<Rect> = right.iter().rev().copied().collect();
        assert_eq!(path(&left).direction(0.15, 0.75), Direction::Left);
        let up: Vec<Rect> = (0..6).map(|i| r(100.0 + 5.0 * i as f32, 300.0 - 40.0 * i as f32, 80.0)).collect();
        assert_eq!(path(&up).direction(0.15, 0.75), Direction::Up);
        let down: Vec<Rect> = up.iter().rev().copied().collect();
        assert_eq!(path(&down).direction(0.15, 0.75), Direction::Down);
        let parked: Vec<Rect> = (0..500).map(|i| r(100.0 + (i % 3) as f32, 300.0, 80.0 + (i % 2) as f32)).collect();
        assert_eq!(path(&parked).direction(0.15, 0.75), Direction::Stationary);
        assert_eq!(path(&parked[..1]).direction(0.15, 0.75), Direction::Unknown);
        // Two frames: first against last.
        assert_eq!(path(&[r(100.0, 300.0, 80.0), r(200.0, 300.0, 80.0)]).direction(0.15, 0.75), Direction::Right);
        assert_eq!(Direction::Approaching.as_str(), "approaching");
    }
}
