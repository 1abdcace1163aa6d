//! Multi-frame tracking (R-RC4) on simulated passes: cars drive across the image, the "recognizer" misreads
//! some frames, and the tracker must give one vehicle read per pass with the right text. Times are
//! simulated; nothing here measures speed.

use polewatch::domain::confusion::GROUPS;
use polewatch::store::Plate;
use polewatch::track::text::similarity;
use polewatch::track::{Direction, FrameRead, TrackEvent, Tracker, TrackerConfig, VehicleRead};
use proptest::prelude::*;

/// Crop handle: which car, which frame. Lets a test check that the best crop is the right car's.
type Crop = (u32, u64);

/// One car's way across the image, in frame pixels, per analysed frame.
#[derive(Debug, Clone)]
struct Pass {
    car: u32,
    plate: String,
    x0: f32,
    y0: f32,
    vx: f32,
    vy: f32,
    w0: f32,
    growth: f32,
}

impl Pass {
    fn bbox(&self, i: u32) -> [u32; 4] {
        let w = self.w0 * self.growth.powi(i as i32);
        let h = w / 4.0;
        let (cx, cy) = (self.x0 + self.vx * i as f32, self.y0 + self.vy * i as f32);
        [(cx - w / 2.0).round() as u32, (cy - h / 2.0).round() as u32, w.round() as u32, h.round() as u32]
    }

    fn read(&self, i: u32, seq: u64, at: i64, text: &str, conf: f32) -> FrameRead<Crop> {
        FrameRead {
            camera_id: "cam-1".into(),
            frame_seq: seq,
            captured_at_ms: at,
            bbox: self.bbox(i),
            plate: Plate::new(text).unwrap(),
            char_confidences: vec![conf; text.len()],
            confidence: conf,
            candidates: vec![],
            region: None,
            crop: (self.car, seq),
        }
    }
}

fn approaching(car: u32, plate: &str, x0: f32) -> Pass {
    Pass { car, plate: plate.into(), x0, y0: 200.0, vx: 2.0, vy: 18.0, w0: 70.0, growth: 1.03 }
}

fn vehicles(evs: &[TrackEvent<Crop>]) -> Vec<&VehicleRead<Crop>> {
    evs.iter()
        .filter_map(|e| match e {
            TrackEvent::Vehicle(v) => Some(v),
            _ => None,
        })
        .collect()
}

/// Pushes frames `0..n` of `pass` at 10 fps from `t0` (`text(i)` is what frame i reads), then lets the
/// track close; returns every event.
fn drive(
    tr: &mut Tracker<Crop>,
    pass: &Pass,
    t0: i64,
    n: u32,
    text: impl Fn(u32) -> (String, f32),
) -> Vec<TrackEvent<Crop>> {
    let mut evs = Vec::new();
    for i in 0..n {
        let at = t0 + i as i64 * 100;
        let (t, c) = text(i);
        evs.extend(tr.push(pass.read(i, 10_000 + i as u64, at, &t, c), at));
    }
    evs.extend(tr.tick(t0 + n as i64 * 100 + 5_000));
    evs
}

#[test]
fn ocr_flicker_gives_one_vehicle_read_with_the_right_text() {
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let pass = approaching(1, "7ABC123", 600.0);
    let evs = drive(&mut tr, &pass, 1_000, 20, |i| match i {
        3 | 8 => ("7A8C123".into(), 0.8),
        5 => ("7ABC12".into(), 0.6),
        11 | 15 => ("TABC123".into(), 0.7),
        9 => ("7ABC123".into(), 0.88),
        _ => ("7ABC123".into(), 0.75 + (i % 3) as f32 * 0.02),
    });
    let v = vehicles(&evs);
    assert_eq!(v.len(), 1, "one pass, one vehicle read");
    let v = v[0];
    assert_eq!(v.reading.plate.expose(), "7ABC123");
    assert_eq!(v.frames, 20);
    assert_eq!((v.first_seen_ms, v.last_seen_ms), (1_000, 2_900));
    assert_eq!(v.direction, Direction::Approaching);
    // The best crop: the most confident frame that read exactly the voted text.
    assert_eq!(v.reading.best.crop, (1, 10_009));
    let texts: Vec<&str> = v.reading.candidates.iter().map(|c| c.plate.expose()).collect();
    assert_eq!(texts[0], "7ABC123");
    for misread in ["7A8C123", "TABC123", "7ABC12"] {
        assert!(texts.contains(&misread), "candidate {misread} missing");
    }
    assert!(v.reading.candidates.iter().all(|c| (0.0..=1.0).contains(&c.confidence)));
    assert!(v.reading.confidence >= 0.5);
    assert_eq!(tr.stats().tracks_opened, 1);
}

/// Two cars side by side, plates one character apart, each misread as the other now and then.
fn parallel(one_by_one: bool) {
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let a = approaching(1, "7ABC123", 500.0);
    let b = approaching(2, "7ABC128", 900.0);
    let mut evs = Vec::new();
    for i in 0..16u32 {
        let at = i as i64 * 100;
        let seq = i as u64;
        let ta = if i == 4 {
            "7ABC128"
        } else if i == 9 {
            "7A8C123"
        } else {
            "7ABC123"
        };
        let tb = if i == 6 {
            "7ABC123"
        } else if i == 10 {
            "7ABC12B"
        } else {
            "7ABC128"
        };
        // The cross-misreads are the most confident frames: on the wrong track they would be its best crop.
        let conf = |t: &str, own: &str| if t == own { 0.8 } else { 0.95 };
        let mut reads = vec![a.read(i, seq, at, ta, conf(ta, "7ABC123")), b.read(i, seq, at, tb, conf(tb, "7ABC128"))];
        if i % 2 == 1 {
            reads.reverse();
        }
        if one_by_one {
            for r in reads {
                evs.extend(tr.push(r, at));
            }
        } else {
            evs.extend(tr.push_frame(reads, at));
        }
    }
    evs.extend(tr.tick(10_000));
    let mut v = vehicles(&evs);
    assert_eq!(v.len(), 2);
    v.sort_by_key(|v| v.reading.best.crop);
    assert_eq!((v[0].reading.plate.expose(), v[0].reading.best.crop.0, v[0].frames), ("7ABC123", 1, 16));
    assert_eq!((v[1].reading.plate.expose(), v[1].reading.best.crop.0, v[1].frames), ("7ABC128", 2, 16));
    assert_ne!(v[0].track_id, v[1].track_id);
}

#[test]
fn parallel_cars_with_similar_plates_stay_two_tracks() {
    parallel(false);
}

#[test]
fn parallel_cars_stay_apart_when_their_reads_come_one_by_one() {
    parallel(true);
}

#[test]
fn a_car_passing_then_another_in_the_same_spot_gives_two_reads() {
    let cfg = TrackerConfig::default();
    for pause_ms in [300, 5_000, 60_000] {
        let mut tr = Tracker::new(cfg.clone()).unwrap();
        let first = approaching(1, "7ABC123", 600.0);
        let second = approaching(2, "KXM4490", 600.0);
        let mut evs = Vec::new();
        for i in 0..15u32 {
            let at = i as i64 * 100;
            evs.extend(tr.push(first.read(i, i as u64, at, "7ABC123", 0.8), at));
        }
        let t1 = 1_400 + pause_ms;
        for i in 0..15u32 {
            let at = t1 + i as i64 * 100;
            evs.extend(tr.push(second.read(i, 100 + i as u64, at, "KXM4490", 0.8), at));
        }
        evs.extend(tr.tick(t1 + 10_000));
        let v = vehicles(&evs);
        assert_eq!(v.len(), 2, "pause {pause_ms} ms");
        assert_eq!(v[0].reading.plate.expose(), "7ABC123");
        assert_eq!(v[1].reading.plate.expose(), "KXM4490");
        assert_ne!(v[0].track_id, v[1].track_id);
    }
    // The same car back the same way a minute later is another pass too.
    let mut tr = Tracker::new(cfg).unwrap();
    let pass = approaching(1, "7ABC123", 600.0);
    let mut evs = drive(&mut tr, &pass, 0, 15, |_| ("7ABC123".into(), 0.8));
    evs.extend(drive(&mut tr, &pass, 60_000, 15, |_| ("7ABC123".into(), 0.8)));
    assert_eq!(vehicles(&evs).len(), 2);
}

#[test]
fn an_early_read_goes_out_once_and_the_vehicle_read_carries_its_track_id() {
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let pass = approaching(1, "7ABC123", 600.0);
    let evs = drive(&mut tr, &pass, 0, 20, |i| (if i == 7 { "7A8C123" } else { "7ABC123" }.into(), 0.95));
    let early: Vec<usize> = (0..evs.len()).filter(|&k| matches!(evs[k], TrackEvent::Early(_))).collect();
    let vehicle: Vec<usize> = (0..evs.len()).filter(|&k| matches!(evs[k], TrackEvent::Vehicle(_))).collect();
    assert_eq!((early.len(), vehicle.len()), (1, 1));
    assert!(early[0] < vehicle[0]);
    assert_eq!(evs[early[0]].track_id(), evs[vehicle[0]].track_id());
    let TrackEvent::Early(e) = &evs[early[0]] else { unreachable!() };
    // Every frame agrees: the early read goes out at the earlier of the confident and agreement bars.
    let d = TrackerConfig::default();
    assert_eq!(e.frames, d.early_min_frames.min(d.early_agree_frames));
    assert_eq!(e.reading.plate.expose(), "7ABC123");
    // The early read converts to a store record like the vehicle read.
    let n = e.clone().into_new_read(None);
    assert_eq!((n.plate.expose(), n.camera_id.as_str()), ("7ABC123", "cam-1"));
}

#[test]
fn a_track_with_one_low_confidence_frame_is_dropped() {
    let mut tr = Tracker::new(TrackerConfig::default()).unwrap();
    let pass = approaching(1, "7ABC123", 600.0);
    let evs = drive(&mut tr, &pass, 0, 1, |_| ("7ABC123".into(), 0.3));
    assert!(evs.is_empty());
    assert_eq!(tr.stats().dropped_few_frames, 1);
    // Enough frames, all unsure: dropped too, for its confidence.
    let evs = drive(&mut tr, &pass, 60_000, 6, |_| ("7ABC123".into(), 0.3));
    assert!(evs.is_empty());
    assert_eq!(tr.stats().dropped_low_confidence, 1);
    assert_eq!(tr.stats().vehicle_reads, 0);
}

/// A car drives in for 3 s and stops; `frames_at(t)` says whether ingest analyses a frame at time t.
fn park(cfg: &TrackerConfig, stay_ms: i64, frames_at: impl Fn(i64) -> bool) -> (Vec<TrackEvent<Crop>>, Tracker<Crop>) {
    let mut tr = Tracker::new(cfg.clone()).unwrap();
    let pass = approaching(1, "7ABC123", 600.0);
    let mut evs = Vec::new();
    let stopped = pass.bbox(30);
    let end = 3_000 + stay_ms;
    let mut seq = 0u64;
    for t in (0..end).step_by(100) {
        seq += 1;
        if t % 1000 == 0 {
            evs.extend(tr.tick(t));
        }
        let r = if t < 3_000 {
            pass.read((t / 100) as u32, seq, t, "7ABC123", 0.8)
        } else if frames_at(t) {
            // Parked: the box jitters by a pixel or two, the text now and then misread.
            let mut r = pass.read(30, seq, t, if seq.is_multiple_of(7) { "7A8C123" } else { "7ABC123" }, 0.8);
            r.bbox = [stopped[0] + (seq % 3) as u32, stopped[1] + (seq % 2) as u32, stopped[2], stopped[3]];
            r
        } else {
            continue;
        };
        evs.extend(tr.push(r, t));
    }
    evs.extend(tr.flush());
    (evs, tr)
}

fn check_parked_reports(v: &[&VehicleRead<Crop>], cfg: &TrackerConfig) {
    assert!(v.iter().all(|r| r.track_id == v[0].track_id), "one car, one track id");
    assert!(v.iter().all(|r| r.reading.plate.expose() == "7ABC123"));
    for (k, r) in v.iter().enumerate() {
        assert_eq!(r.report, k as u32);
    }
    for w in v.windows(2) {
        assert!(
            w[1].last_seen_ms - w[0].last_seen_ms >= cfg.parked_repeat_ms,
            "repeats too soon: {} then {}",
            w[0].last_seen_ms,
            w[1].last_seen_ms
        );
        assert!(w[1].first_seen_ms > w[0].last_seen_ms, "each report votes over the frames since the last");
    }
}

#[test]
fn a_parked_car_is_reported_once_then_once_per_repeat_interval() {
    let cfg = TrackerConfig::default();
    let stay = 20 * 60_000;
    let (evs, tr) = park(&cfg, stay, |_| true);
    let v = vehicles(&evs);
    check_parked_reports(&v, &cfg);
    // Parked from 3 s: first report once still for parked_after_ms, then every parked_repeat_ms.
    let first = 3_000 + cfg.parked_after_ms;
    assert_eq!(v.len() as i64, 1 + (3_000 + stay - first) / cfg.parked_repeat_ms);
    assert!(v[0].parked && v[0].last_seen_ms < first + 200);
    assert_eq!(v[0].direction, Direction::Approaching);
    assert!(v[1..].iter().all(|r| r.parked && r.direction == Direction::Stationary));
    assert_eq!(tr.stats().repeat_reads, v.len() as u64 - 1);
    assert_eq!(tr.stats().tracks_opened, 1);
}

#[test]
fn a_motion_gated_parked_car_is_not_reported_after_every_gap() {
    // Ingest analyses frames only when something moves: three frames every 45 s once the car stands.
    let cfg = TrackerConfig::default();
    let stay = 20 * 60_000;
    let (evs, tr) = park(&cfg, stay, |t| t < 4_000 || (t - 3_000) % 45_000 < 300);
    let v = vehicles(&evs);
    check_parked_reports(&v, &cfg);
    assert!(!v[0].parked, "the arrival closes before the car counts as parked");
    assert!(v.len() >= 2 && v.len() as i64 <= 1 + stay / cfg.parked_repeat_ms, "{} reports", v.len());
    assert!(tr.stats().tracks_resumed >= 20);
    assert_eq!(tr.stats().tracks_opened, 1);
}

// --- property: random passes with OCR noise ---

/// A copy of `plate` with one character swapped for another of its confusion group, if it has one.
fn confuse(plate: &str, rng: &mut fastrand::Rng) -> String {
    let b = plate.as_bytes();
    let spots: Vec<usize> = (0..b.len()).filter(|&i| GROUPS.iter().any(|g| g.as_bytes().contains(&b[i]))).collect();
    if spots.is_empty() {
        return plate.to_string();
    }
    let i = spots[rng.usize(..spots.len())];
    let group = GROUPS.iter().find(|g| g.as_bytes().contains(&b[i])).unwrap().as_bytes();
    let others: Vec<u8> = group.iter().copied().filter(|&c| c != b[i]).collect();
    let mut out = b.to_vec();
    out[i] = others[rng.usize(..others.len())];
    String::from_utf8(out).unwrap()
}

#[derive(Debug, Clone)]
struct SimPass {
    pass: Pass,
    frames: u32,
    fps: u32,
    pause_ms: i64,
    seed: u64,
}

fn arb_pass() -> impl Strategy<Value = SimPass> {
    (
        "[A-Z0-9]{5,8}",
        (8_000f32..12_000.0, 8_000f32..12_000.0, 50f32..150.0, -1.2f32..1.2, -1.2f32..1.2, 0.97f32..1.05),
        4u32..30,
        8u32..=15,
        2_000i64..10_000,
        any::<u64>(),
    )
        .prop_map(|(plate, (x0, y0, w0, vx, vy, growth), frames, fps, pause_ms, seed)| SimPass {
            pass: Pass { car: 0, plate, x0, y0, vx: vx * w0, vy: vy * w0, w0, growth },
            frames,
            fps,
            pause_ms,
            seed,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// One to three cars one after the other; in each pass at most 30% of frames carry one confusable
    /// substitution and at most 20% are missed (never two in a row); every pass gives exactly one read, with the true text.
    #[test]
    fn random_passes_with_ocr_noise_give_one_right_read_each(
        passes in proptest::collection::vec(arb_pass(), 1..=3)
            .prop_filter("plates tell the cars apart", |ps| ps.iter().enumerate().all(|(i, a)| ps[..i].iter().all(|b| similarity(a.pass.plate.as_bytes(), b.pass.plate.as_bytes(), 0.25) < 0.5)))
    ) {
        let cfg = TrackerConfig::default();
        let mut tr = Tracker::new(cfg.clone()).unwrap();
        let mut evs = Vec::new();
        let mut t = 1_000_000i64;
        let mut seq = 0u64;
        for (car, sp) in passes.iter().enumerate() {
            let mut rng = fastrand::Rng::with_seed(sp.seed);
            let mut noisy = vec![false; sp.frames as usize];
            for _ in 0..(sp.frames * 3 / 10) {
                noisy[rng.usize(..sp.frames as usize)] = true;
            }
            let mut missed = vec![false; sp.frames as usize];
            // Missed detections: single frames, after the first two (a track needs two frames for a velocity).
            let mut budget = sp.frames / 5;
            for i in 2..sp.frames as usize {
                if budget > 0 && !missed[i - 1] && rng.f32() < 0.2 {
                    missed[i] = true;
                    budget -= 1;
                }
            }
            let pass = Pass { car: car as u32, ..sp.pass.clone() };
            let step = 1000 / sp.fps as i64;
            for i in 0..sp.frames {
                seq += 1;
                t += step;
                if missed[i as usize] {
                    continue;
                }
                let text = if noisy[i as usize] { confuse(&pass.plate, &mut rng) } else { pass.plate.clone() };
                let mut r = pass.read(i, seq, t, &text, 0.8);
                r.char_confidences = (0..text.len()).map(|_| 0.65 + 0.33 * rng.f32()).collect();
                r.confidence = 0.65 + 0.33 * rng.f32();
                evs.extend(tr.push(r, t));
            }
            t += sp.pause_ms;
            evs.extend(tr.tick(t));
        }
        evs.extend(tr.flush());
        let v = vehicles(&evs);
        prop_assert_eq!(v.len(), passes.len(), "stats: {:?}", tr.stats());
        for (car, (r, sp)) in v.iter().zip(&passes).enumerate() {
            prop_assert_eq!(r.reading.plate.expose(), sp.pass.plate.as_str());
            prop_assert_eq!(r.reading.best.crop.0, car as u32);
        }
        prop_assert_eq!(tr.stats().tracks_opened, passes.len() as u64);
    }
}
