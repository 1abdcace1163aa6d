//! One alert id per vehicle and hotlist entry, even when the tracker splits one car's pass into two
//! tracks (a missed gate, a misread that breaks the text match). Pure bookkeeping, no I/O: which alerts
//! were raised recently, on which camera, for which entry, and on which tracks; whether a new hit is a
//! second alert for the same vehicle (then it becomes an update of the first) or a new alert.
//!
//! **Rule.** A hit on camera C for list L, entry E folds into an earlier alert for the same C, L and E
//! when the earlier alert's track (or a track already folded into it) is still open, or was last seen at
//! most `window_ms` before the new track's time. The window is the tracker's closing gap (`gap_ms`: a
//! read that came that soon could have continued the track) plus the same again as margin (the second
//! track needs frames of its own before it reads, and the time it is dated by may be a later frame of
//! it): `2 × gap_ms`, 3 s at the defaults. A hit for another entry, another list or another camera is
//! never folded.

use crate::track::{TrackId, TrackerConfig};

/// An alert and the tracks of the vehicle it stands for.
#[derive(Debug, Clone, PartialEq)]
struct Kept {
    camera: String,
    list: String,
    entry: String,
    alert: uuid::Uuid,
    tracks: Vec<(TrackId, Seen)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Seen {
    /// Still open; seen at least until this capture time.
    Open(i64),
    /// Closed; its last frame was captured at this time.
    Closed(i64),
}

impl Seen {
    fn ms(self) -> i64 {
        match self {
            Seen::Open(t) | Seen::Closed(t) => t,
        }
    }
}

/// The alerts raised in the last window, per camera and entry.
#[derive(Debug, Clone)]
pub struct Recent {
    window_ms: i64,
    kept: Vec<Kept>,
}

impl Recent {
    /// The window from the tracker's settings: its closing gap plus the same as margin.
    pub fn new(tracker: &TrackerConfig) -> Recent {
        Recent { window_ms: tracker.gap_ms.saturating_mul(2), kept: Vec::new() }
    }

    pub fn window_ms(&self) -> i64 {
        self.window_ms
    }

    /// The earlier alert that a hit for `list`/`entry` on `camera`, from `track` dated `at_ms` (capture
    /// time), is a second alert of: the one to update instead of raising a new one.
    pub fn fold(&self, camera: &str, list: &str, entry: &str, track: TrackId, at_ms: i64) -> Option<uuid::Uuid> {
        self.kept
            .iter()
            .filter(|k| k.camera == camera && k.list == list && k.entry == entry)
            .find(|k| {
                k.tracks.iter().any(|&(t, seen)| {
                    t == track
                        || match seen {
                            Seen::Open(_) => true,
                            Seen::Closed(last) => at_ms.saturating_sub(last) <= self.window_ms,
                        }
                })
            })
            .map(|k| k.alert)
    }

    /// An alert raised (or a hit folded into it) on `track`, seen at `at_ms`, open or already closed.
    #[allow(clippy::too_many_arguments)]
    pub fn raised(
        &mut self,
        camera: &str,
        list: &str,
        entry: &str,
        alert: uuid::Uuid,
        track: TrackId,
        at_ms: i64,
        open: bool,
    ) {
        let seen = if open { Seen::Open(at_ms) } else { Seen::Closed(at_ms) };
        match self.kept.iter_mut().find(|k| k.alert == alert) {
            Some(k) => match k.tracks.iter_mut().find(|(t, _)| *t == track) {
                Some((_, s)) => *s = seen,
                None => k.tracks.push((track, seen)),
            },
            None => self.kept.push(Kept {
                camera: camera.into(),
                list: list.into(),
                entry: entry.into(),
                alert,
                tracks: vec![(track, seen)],
            }),
        }
    }

    /// A track closed (its pass reported) with its last frame at `last_seen_ms`.
    pub fn closed(&mut self, track: TrackId, last_seen_ms: i64) {
        for k in &mut self.kept {
            for (t, s) in &mut k.tracks {
                if *t == track {
                    *s = Seen::Closed(last_seen_ms);
                }
            }
        }
    }

    /// Forgets alerts that can no longer fold a hit dated `now_ms` or later (capture clock).
    pub fn forget(&mut self, now_ms: i64) {
        let w = self.window_ms;
        self.kept.retain(|k| {
            k.tracks.iter().any(|&(_, s)| matches!(s, Seen::Open(_)) || now_ms.saturating_sub(s.ms()) <= w)
        });
    }

    /// Alerts kept (for tests and status).
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    #[test]
    fn a_split_track_of_one_car_folds_into_the_first_alert_but_other_entries_and_cameras_do_not() {
        let cfg = TrackerConfig::default();
        let mut r = Recent::new(&cfg);
        assert_eq!(r.window_ms(), 2 * cfg.gap_ms);
        let t0 = 1_790_000_000_000;
        // Track 1 alerts entry MUC4821 of list "hot" on camera c1 while open.
        r.raised("c1", "hot", "MUC4821", id(1), TrackId(1), t0, true);
        // The car's track splits: track 2, same camera, same entry, while track 1 is still open.
        assert_eq!(r.fold("c1", "hot", "MUC4821", TrackId(2), t0 + 400), Some(id(1)));
        // Never folded: another entry, another list, another camera.
        assert_eq!(r.fold("c1", "hot", "KPW55*", TrackId(2), t0 + 400), None);
        assert_eq!(r.fold("c1", "other", "MUC4821", TrackId(2), t0 + 400), None);
        assert_eq!(r.fold("c2", "hot", "MUC4821", TrackId(2), t0 + 400), None);

        // Track 1 closes (last frame at t0 + 1000): within the closing gap plus margin it still folds ...
        r.closed(TrackId(1), t0 + 1000);
        assert_eq!(r.fold("c1", "hot", "MUC4821", TrackId(3), t0 + 1000 + 2 * cfg.gap_ms), Some(id(1)));
        // ... after it, a new pass gets a new alert.
        assert_eq!(r.fold("c1", "hot", "MUC4821", TrackId(3), t0 + 1001 + 2 * cfg.gap_ms), None);

        // A folded track extends the vehicle: while it is open, a third piece folds too.
        r.raised("c1", "hot", "MUC4821", id(1), TrackId(2), t0 + 1500, true);
        assert_eq!(r.fold("c1", "hot", "MUC4821", TrackId(4), t0 + 60_000), Some(id(1)));
        r.closed(TrackId(2), t0 + 2000);
        assert_eq!(r.fold("c1", "hot", "MUC4821", TrackId(4), t0 + 2000 + 2 * cfg.gap_ms), Some(id(1)));
        assert_eq!(r.fold("c1", "hot", "MUC4821", TrackId(4), t0 + 2001 + 2 * cfg.gap_ms), None);

        // The window follows the tracker's gap, and old alerts are forgotten.
        let mut short = Recent::new(&TrackerConfig { gap_ms: 100, ..cfg.clone() });
        short.raised("c1", "hot", "MUC4821", id(5), TrackId(9), t0, false);
        assert_eq!(short.fold("c1", "hot", "MUC4821", TrackId(10), t0 + 200), Some(id(5)));
        assert_eq!(short.fold("c1", "hot", "MUC4821", TrackId(10), t0 + 201), None);
        short.forget(t0 + 201);
        assert!(short.is_empty());
        assert_eq!(r.len(), 1);
    }
}
