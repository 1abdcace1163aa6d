//! The recognizer on plates and scenes the project renders, on real labelled images when a folder of them
//! is passed in `POLEWATCH_TEST_DATA`, and its error paths. The shipped models are described by `models/polewatch.toml`.

use opencv::core::{Mat, Rect, Scalar, Size};
use opencv::prelude::*;
use polewatch::config::{self, DetectorKind, DetectorModel, ModelSet};
use polewatch::recognize::{BoxF, ModelError, RecognizeError, Recognizer, View};
use polewatch_dev::recognize::render::{self, PlateStyle};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> ModelSet {
    config::load_model_set(&repo().join("models/polewatch.toml"))
        .expect("models/polewatch.toml describes the shipped models")
}

fn recognizer(set: &ModelSet) -> Recognizer {
    Recognizer::new(
        set.detector.as_ref(),
        set.ocr.as_ref().expect("an OCR model"),
        config::DnnBackend::Cpu,
        0.35,
        &[],
        5,
    )
    .expect("shipped models load")
    .checked()
    .expect("shipped models pass the start-up check")
}

fn sha256(p: &Path) -> String {
    use sha2::Digest;
    polewatch::recognize::model::hex(&sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// A plate of `text` on a plain background with room around it, and the plate's box.
fn plate_on_card(text: &str, style: PlateStyle, height: i32) -> (Mat, BoxF) {
    card(&render::plate(text, style, height).unwrap(), 20, 15, 70.0)
}

/// `plate` on a card of grey `background`, `px` and `py` pixels from its sides; and the plate's box.
fn card(plate: &Mat, px: i32, py: i32, background: f64) -> (Mat, BoxF) {
    let (w, h) = (plate.cols() + 2 * px, plate.rows() + 2 * py);
    let mut card = Mat::new_rows_cols_with_default(h, w, opencv::core::CV_8UC3, Scalar::all(background)).unwrap();
    plate.copy_to(&mut Mat::roi_mut(&mut card, Rect::new(px, py, plate.cols(), plate.rows())).unwrap()).unwrap();
    (card, BoxF { x: px as f32, y: py as f32, w: plate.cols() as f32, h: plate.rows() as f32 })
}

/// At most one character wrong: the pipeline is wired right (a wrong layout, size or alphabet reads
/// garbage); how often the model is exactly right is `polewatch bench accuracy`'s job.
fn near(read: &str, truth: &str) -> bool {
    polewatch_dev::recognize::metrics::levenshtein(read.as_bytes(), truth.as_bytes()) <= 1
}

/// Share of the truth's characters read right (1 − edit distance / length).
fn char_accuracy(read: &str, truth: &str) -> f32 {
    1.0 - polewatch_dev::recognize::metrics::levenshtein(read.as_bytes(), truth.as_bytes()) as f32 / truth.len() as f32
}

/// US plates (the shipped OCR's strongest kind and the demo's) must be read within one character. The
/// renderer's EU and Brazilian styles are further from what the model learnt and it misreads several
/// (models/MODELS.md, the closing note of issue 4): for them only the totals are asserted.
fn assert_read(read: &str, truth: &str, style: PlateStyle) {
    if style == PlateStyle::Us {
        assert!(near(read, truth), "{truth} read as {read}");
    }
}

#[test]
fn shipped_ocr_reads_rendered_plates_of_each_style() {
    let mut rec = recognizer(&shipped());
    let plates = [
        ("7KQX214", PlateStyle::Us, 90),
        ("4TRM882", PlateStyle::Us, 48),
        ("8PWT417", PlateStyle::Us, 64),
        ("2HNB705", PlateStyle::Us, 72),
        ("MUC4821", PlateStyle::Eu, 64),
        ("KAR3170", PlateStyle::Eu, 64),
        ("BAC4F21", PlateStyle::Br, 64),
        ("RIO2A18", PlateStyle::Br, 80),
    ];
    let (mut exact, mut chars) = (0, 0.0);
    for (text, style, h) in plates {
        let (img, b) = plate_on_card(text, style, h);
        let read = rec.read_box(&img, b, "").unwrap().expect("a reading");
        eprintln!("{text} ({style:?}, {h} px) read as {} ({:.2})", read.text, read.confidence);
        assert_read(&read.text, text, style);
        exact += usize::from(read.text == text && style == PlateStyle::Us);
        chars += char_accuracy(&read.text, text);
        assert_eq!(read.char_confidences.len(), read.text.len());
        assert!(read.confidence > 0.0 && read.confidence <= 1.0);
        assert_eq!(read.candidates[0].text, read.text);
    }
    // Most US plates exactly (the EU and Brazilian renderings: see assert_read).
    assert!(exact >= 3, "only {exact} of the 4 rendered US plates read exactly");
    // A miswired model (layout, size, alphabet) reads next to nothing right.
    assert!(chars / plates.len() as f32 >= 0.7, "character accuracy {}", chars / plates.len() as f32);
    // Alternatives: a US plate's truth, when not first, is among the candidates the hotlist matcher checks.
    let (img, b) = plate_on_card("4TRM882", PlateStyle::Us, 48);
    let read = rec.read_box(&img, b, "").unwrap().unwrap();
    assert!(read.candidates.len() > 1 && read.candidates.iter().any(|c| c.text == "4TRM882"), "{:?}", read.candidates);
}

#[test]
fn shipped_detector_finds_and_reads_plates_in_a_rendered_1080p_scene() {
    let mut rec = recognizer(&shipped());
    let (scene, boxes) = polewatch_dev::bench::recognize::scene_1080p(5).unwrap();
    let r = rec.recognize(&scene, &View::default()).unwrap();
    for ((b, text), style) in
        boxes.iter().zip(["7KQX214", "BAC4F21", "MUC4821"]).zip([PlateStyle::Us, PlateStyle::Br, PlateStyle::Eu])
    {
        let hit = r.reads.iter().find(|p| p.bbox.iou(b) >= 0.5);
        let hit = hit.unwrap_or_else(|| {
            panic!("no box on plate {text} at {b:?}; found {:?}", r.reads.iter().map(|p| p.bbox).collect::<Vec<_>>())
        });
        assert_read(&hit.text, text, style);
    }
    // A 4K frame of the same scene: the letterbox takes any size.
    let mut big = Mat::default();
    opencv::imgproc::resize(&scene, &mut big, Size::new(3840, 2160), 0.0, 0.0, opencv::imgproc::INTER_LINEAR).unwrap();
    let r4k = rec.recognize(&big, &View::default()).unwrap();
    let us = BoxF { x: boxes[0].x * 2.0, y: boxes[0].y * 2.0, w: boxes[0].w * 2.0, h: boxes[0].h * 2.0 };
    assert!(
        r4k.reads.iter().any(|p| p.bbox.iou(&us) >= 0.5 && near(&p.text, "7KQX214")),
        "4K: {:?}",
        r4k.reads.iter().map(|p| (&p.text, p.bbox)).collect::<Vec<_>>()
    );
    // A camera mounted at a 12° roll: the view's rotation levels the frame before detection.
    let rolled = polewatch::recognize::rotated(&scene, 12.0).unwrap();
    let level = View { rotate_deg: -12.0, ..View::default() };
    let texts: Vec<String> = rec.recognize(&rolled, &level).unwrap().reads.into_iter().map(|r| r.text).collect();
    assert!(texts.iter().any(|t| near(t, "7KQX214")), "{texts:?}");
    // The camera's view filters: a region of interest away from the plates, and a minimum width.
    let left_only = View { roi: vec![[0, 0], [300, 0], [300, 1080], [0, 1080]], ..View::default() };
    assert!(rec.recognize(&scene, &left_only).unwrap().reads.is_empty());
    let wide_only = View { min_plate_width_px: 400, ..View::default() };
    assert!(rec.recognize(&scene, &wide_only).unwrap().reads.is_empty());
}

#[test]
fn grey_black_and_tiny_plate_frames_give_no_false_reads() {
    let mut rec = recognizer(&shipped());
    for v in [0.0, 128.0, 255.0] {
        let f = Mat::new_rows_cols_with_default(1080, 1920, opencv::core::CV_8UC3, Scalar::all(v)).unwrap();
        assert!(rec.recognize(&f, &View::default()).unwrap().reads.is_empty(), "uniform {v}");
    }
    // A plate 24 px wide in a 1080p road scene: below the camera's minimum width, never read.
    let mut scene = render::road(1920, 1080, 3).unwrap();
    let p = render::plate("8TINY21", PlateStyle::Us, 64).unwrap();
    render::put_vehicle(&mut scene, &p, 900, 700, 24, 0.0, Scalar::new(60.0, 60.0, 60.0, 0.0)).unwrap();
    let view = View { min_plate_width_px: 60, ..View::default() };
    assert!(rec.recognize(&scene, &view).unwrap().reads.is_empty());
}

#[test]
fn empty_image_and_undecodable_bytes_are_errors() {
    let mut rec = recognizer(&shipped());
    assert!(matches!(rec.recognize(&Mat::default(), &View::default()), Err(RecognizeError::EmptyImage)));
    assert!(polewatch::recognize::decode_image(b"definitely not a JPEG").is_err());
    assert!(polewatch::recognize::decode_image(b"").is_err());
}

#[test]
fn wrong_checksum_missing_file_and_unreadable_model_are_clear_errors() {
    let set = shipped();
    let ocr = set.ocr.clone().unwrap();
    let bad = config::OcrModel { sha256: "0".repeat(64), ..ocr.clone() };
    let e = Recognizer::new(None, &bad, config::DnnBackend::Cpu, 0.3, &[], 1).err().expect("refused");
    assert!(matches!(e, RecognizeError::Model(ModelError::Checksum { .. })), "{e}");
    assert!(e.to_string().contains("plate-ocr.onnx") && e.to_string().contains(&ocr.sha256), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let missing = config::OcrModel { path: dir.path().join("gone.onnx"), ..ocr.clone() };
    let e = Recognizer::new(None, &missing, config::DnnBackend::Cpu, 0.3, &[], 1).err().expect("refused");
    assert!(matches!(e, RecognizeError::Model(ModelError::Read { .. })) && e.to_string().contains("gone.onnx"), "{e}");

    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, vec![0x08u8; 4096]).unwrap();
    let unreadable = config::OcrModel { path: junk.clone(), sha256: sha256(&junk), ..ocr.clone() };
    let e = Recognizer::new(None, &unreadable, config::DnnBackend::Cpu, 0.3, &[], 1).err().expect("refused");
    assert!(matches!(e, RecognizeError::Model(ModelError::Load { .. })), "{e}");

    // A detector network used as the OCR loads but cannot read: the start-up check refuses it.
    let det = set.detector.clone().unwrap();
    let wrong = config::OcrModel { path: det.path.clone(), sha256: det.sha256.clone(), ..ocr };
    let e = match Recognizer::new(None, &wrong, config::DnnBackend::Cpu, 0.3, &[], 1) {
        Ok(r) => r.checked().err().expect("start-up check refuses a detector as OCR"),
        Err(e) => e,
    };
    assert!(
        matches!(
            e,
            RecognizeError::Model(ModelError::Smoke { .. } | ModelError::Shape { .. } | ModelError::Run { .. })
        ),
        "{e}"
    );
}

#[test]
fn cascade_detector_from_opencv_data_finds_a_plate_of_its_shape() {
    let xml = Path::new("/usr/share/opencv4/haarcascades/haarcascade_russian_plate_number.xml");
    assert!(xml.is_file(), "opencv-data is installed by scripts/install-deps");
    let mut set = shipped();
    set.detector = Some(DetectorModel {
        path: xml.to_path_buf(),
        sha256: sha256(xml),
        kind: DetectorKind::Cascade,
        ..set.detector.clone().unwrap()
    });
    let mut rec = recognizer(&set);
    // The cascade was trained on long one-row (Russian) plates: the EU-style plate of the scene is its shape.
    let (scene, boxes) = polewatch_dev::bench::recognize::scene_1080p(5).unwrap();
    let found = rec.detect(&scene, &View::default()).unwrap();
    assert!(
        found.iter().any(|d| d.bbox.iou(&boxes[2]) >= 0.5),
        "EU plate at {:?}; cascade found {:?}",
        boxes[2],
        found.iter().map(|d| d.bbox).collect::<Vec<_>>()
    );
}

#[test]
fn config_with_the_shipped_models_starts_and_reads() {
    let text = std::fs::read_to_string(repo().join("config/polewatch.toml")).unwrap();
    let loaded = config::load_texts(&[(Path::new("polewatch.toml"), &text)]);
    // The default config points at the installed paths; here the repo's models stand in for them.
    let mut r = match loaded {
        Ok(l) => l.config.recognizer,
        Err(e) => {
            // Only the missing installed model files may be wrong here.
            assert!(
                e.problems().iter().all(|p| p.key.starts_with("recognizer.") && p.message.contains("does not exist")),
                "{e}"
            );
            config::Recognizer::default()
        }
    };
    let set = shipped();
    r.detector = set.detector;
    r.ocr = set.ocr;
    let mut rec = Recognizer::from_config(&r).expect("the configured recognizer starts");
    let (img, b) = plate_on_card("7KQX214", PlateStyle::Us, 80);
    let read = rec.read_box(&img, b, "").unwrap().unwrap();
    assert!(near(&read.text, "7KQX214"), "{}", read.text);
    // A site whose plates have at most 6 characters: the start-up check (a 7-character plate) still
    // passes, and then 7-character readings are not plates.
    r.max_plate_chars = 6;
    let mut short = Recognizer::from_config(&r).expect("starts with max_plate_chars below the check plate's length");
    assert_eq!(short.read_box(&img, b, "").unwrap(), None);
}

/// Real labelled crops (MIT-licensed US set) read in place from the folder of labelled plate sets that
/// `POLEWATCH_TEST_DATA` names (`make test` passes one when it is there); skipped without it.
#[test]
fn shipped_ocr_reads_real_virginia_plates() {
    let Some(data) = std::env::var_os("POLEWATCH_TEST_DATA").filter(|d| !d.is_empty()) else {
        eprintln!("skipped: POLEWATCH_TEST_DATA names no folder of labelled plate sets");
        return;
    };
    let dir = Path::new(&data).join("us_virginia_mit");
    if !dir.is_dir() {
        eprintln!("skipped: {} is not here", dir.display());
        return;
    }
    let mut rec = recognizer(&shipped());
    let (mut right, mut total) = (0, 0);
    for li in polewatch_dev::recognize::dataset::read(&dir).unwrap() {
        let img = opencv::imgcodecs::imread(&li.path, opencv::imgcodecs::IMREAD_COLOR).unwrap();
        for p in li.plates.iter().filter(|p| p.text.is_some()) {
            total += 1;
            let read = rec.read_box(&img, p.bbox, "").unwrap();
            right += usize::from(read.map(|r| r.text) == p.text);
        }
    }
    assert!(total >= 5);
    assert!(right * 10 >= total * 7, "read {right} of {total} real plates exactly");
}

#[test]
fn recognize_cli_prints_one_json_object_per_image_and_fails_on_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let (img, _) = plate_on_card("7KQX214", PlateStyle::Us, 80);
    let scene_path = dir.path().join("scene.jpg");
    let (scene, _) = polewatch_dev::bench::recognize::scene_1080p(9).unwrap();
    opencv::imgcodecs::imwrite(&scene_path, &scene, &opencv::core::Vector::new()).unwrap();
    let card = dir.path().join("card.png");
    opencv::imgcodecs::imwrite(&card, &img, &opencv::core::Vector::new()).unwrap();
    let junk = dir.path().join("junk.jpg");
    std::fs::write(&junk, b"no image").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_polewatch"))
        .args(["recognize", "--models"])
        .arg(repo().join("models/polewatch.toml"))
        .arg(&scene_path)
        .arg(&card)
        .arg(&junk)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad image makes the exit status non-zero");
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    // The PNG (written by OpenCV here, read by the daemon's own codec) is a frame like any other.
    assert_eq!(lines[1]["height"].as_u64(), Some(img.rows() as u64), "{}", lines[1]);
    assert!(lines[1]["error"].is_null(), "{}", lines[1]);
    let texts: Vec<&str> = lines[0]["reads"].as_array().unwrap().iter().map(|r| r["text"].as_str().unwrap()).collect();
    assert!(texts.iter().any(|t| near(t, "7KQX214")), "{texts:?}");
    assert!(lines[0]["reads"][0]["bbox"]["w"].as_f64().unwrap() > 0.0);
    assert!(lines[0]["detect_ms"].as_f64().is_some() && lines[0]["reads"][0]["candidates"].is_array());
    assert!(lines[2]["error"].as_str().unwrap().contains("not a JPEG or PNG"), "{}", lines[2]);
}

#[test]
fn readings_outside_the_plate_length_are_not_plates() {
    let set = shipped();
    let (card, bbox) = plate_on_card("7KQX214", PlateStyle::Us, 120);
    // The default (4..=10 characters) keeps a 7-character plate.
    let mut rec = recognizer(&set);
    let read = rec.read_box(&card, bbox, "").unwrap().expect("a plate-like reading");
    assert!(near(&read.text, "7KQX214"), "{}", read.text);
    // A camera told that plates have 8 to 10 characters drops it, in a frame as on a labelled box.
    let mut strict = recognizer(&set).with_plate_chars(8, 10);
    assert_eq!(strict.read_box(&card, bbox, "").unwrap(), None);
    let (scene, _) = polewatch_dev::bench::recognize::scene_1080p(5).unwrap();
    let r = strict.recognize(&scene, &View::default()).unwrap();
    assert!(r.reads.iter().all(|p| (8..=10).contains(&p.text.len())), "{:?}", r.reads);
    assert!(
        r.detections >= 3 && r.rejected.len() + r.reads.len() == r.detections,
        "{} found, {} rejected",
        r.detections,
        r.rejected.len()
    );
}

/// A plate in a box far looser than a labelled one: `pad` of its width left and right, twice that of its
/// height above and below, the whole card dimmed to `light` (dusk).
fn loose_card(text: &str, style: PlateStyle, height: i32, pad: f32, light: f64) -> Mat {
    let p = render::plate(text, style, height).unwrap();
    let (px, py) = ((p.cols() as f32 * pad) as i32, (p.rows() as f32 * pad * 2.0) as i32);
    let mut dim = Mat::default();
    card(&p, px, py, 90.0).0.convert_to(&mut dim, -1, light, 0.0).unwrap();
    dim
}

#[test]
fn a_weak_read_of_a_loose_box_gets_a_second_look_on_a_tighter_one() {
    let set = shipped();
    let ocr = set.ocr.clone().expect("an OCR model");
    assert!(ocr.second_look_below > 0.0, "the shipped OCR takes a second look");
    // No detector: the whole card is the box, as a loose detection would be.
    let one = ModelSet {
        detector: None,
        ocr: Some(config::OcrModel { second_look_below: 0.0, ..ocr.clone() }),
        ..set.clone()
    };
    let two = ModelSet { detector: None, ocr: Some(ocr), ..set };
    let (mut one, mut two) = (recognizer(&one), recognizer(&two));
    let (mut weak, mut helped) = (0, 0);
    for (text, style) in [
        ("MUC4821", PlateStyle::Eu),
        ("KAR3170", PlateStyle::Eu),
        ("7KQX214", PlateStyle::Us),
        ("4TRM882", PlateStyle::Us),
        ("BAC4F21", PlateStyle::Br),
    ] {
        for (pad, light) in [(0.15, 0.6), (0.25, 0.6), (0.25, 1.0)] {
            let card = loose_card(text, style, 40, pad, light);
            let best = |r: &mut Recognizer| {
                r.recognize(&card, &View::default()).unwrap().reads.first().map(|p| (p.text.clone(), p.confidence))
            };
            let (a, b) = (best(&mut one), best(&mut two));
            let (ca, cb) = (a.as_ref().map_or(0.0, |r| r.1), b.as_ref().map_or(0.0, |r| r.1));
            assert!(cb >= ca, "{text} pad {pad} light {light}: one look {a:?}, two {b:?}");
            if ca < 0.9 {
                weak += 1;
                helped += usize::from(cb > ca);
            }
            if ca >= 0.9 {
                assert_eq!(a, b, "a confident first read is not read again");
            }
        }
    }
    eprintln!("{weak} weak first reads, {helped} read more surely on the second look");
    assert!(weak > 0 && helped > 0, "{weak} weak first reads, {helped} helped");
}
