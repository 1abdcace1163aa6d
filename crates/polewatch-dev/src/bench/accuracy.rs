//! `polewatch-dev bench accuracy`: a model set (and optionally a second one, `--against`) on a labelled
//! set: detection recall/precision at IoU 0.5, OCR-only exact match on the labelled boxes, end-to-end
//! exact match, character accuracy and milliseconds per stage, per group and overall.

use crate::config::ModelSet;
use crate::recognize::dataset::{self, LabelledImage};
use crate::recognize::metrics::{Figures, Tally};
use crate::recognize::{Recognizer, View};
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

pub struct Options<'a> {
    pub dataset: &'a Path,
    pub models: &'a ModelSet,
    pub against: Option<&'a ModelSet>,
    /// OpenCV threads (1 gives per-core figures).
    pub threads: u32,
    /// Plate formats for both sets; each image's group name is its region (`us`, `eu`, `br`, …).
    pub formats: Vec<crate::config::PlateFormat>,
    /// Each image's region is its group and the letters its file name starts with (`us/ca123.jpg`:
    /// `us-ca`), for sets named by state or country, so that a state's formats apply to its plates.
    pub region_from_name: bool,
    /// Reads below this are dropped before detection and end-to-end counting, as the daemon drops them.
    pub min_read_confidence: f32,
    pub limit: Option<usize>,
    pub json: bool,
}

/// A model set's tallies per group and overall.
pub struct Report {
    pub name: String,
    pub groups: BTreeMap<String, Tally>,
    pub has_detector: bool,
}

impl Report {
    pub fn overall(&self) -> Tally {
        let mut t = Tally::default();
        for g in self.groups.values() {
            t.add(g);
        }
        t
    }

    fn json(&self) -> serde_json::Value {
        let mut groups = serde_json::Map::new();
        for (g, t) in &self.groups {
            groups.insert(g.clone(), figures_json(&t.figures(), self.has_detector));
        }
        serde_json::json!({ "name": self.name, "overall": figures_json(&self.overall().figures(), self.has_detector), "groups": groups })
    }
}

fn figures_json(f: &Figures, det: bool) -> serde_json::Value {
    let r = |v: f64| (v * 10_000.0).round() / 10_000.0;
    let mut v = serde_json::json!({
        "images": f.images, "plates": f.plates,
        "ocr_exact": r(f.ocr_exact), "char_accuracy": r(f.char_accuracy), "ms_ocr": r(f.ms_ocr),
    });
    if det {
        v["det_recall"] = serde_json::json!(r(f.det_recall));
        v["det_precision"] = serde_json::json!(r(f.det_precision));
        v["raw_det_precision"] = serde_json::json!(r(f.raw_det_precision));
        v["e2e_exact"] = serde_json::json!(r(f.e2e_exact));
        v["ms_detect"] = serde_json::json!(r(f.ms_detect));
    }
    v
}

pub fn recognizer_for(set: &ModelSet) -> anyhow::Result<Recognizer> {
    recognizer_with_formats(set, &[])
}

pub fn recognizer_with_formats(set: &ModelSet, formats: &[crate::config::PlateFormat]) -> anyhow::Result<Recognizer> {
    let ocr = set.ocr.as_ref().with_context(|| format!("model set {} has no [ocr] model", set.name))?;
    // Formats rank among several readings: keep a few when they are in use.
    let top_n = if formats.is_empty() { 1 } else { 5 };
    let rec = Recognizer::new(set.detector.as_ref(), ocr, crate::config::DnnBackend::Cpu, 0.25, formats, top_n)
        .with_context(|| format!("loading model set {}", set.name))?;
    rec.checked().with_context(|| format!("start-up check of model set {}", set.name))
}

/// `group-xx` from an image `group/xx….jpg` whose name starts with letters; the group alone otherwise.
fn region_from(li: &LabelledImage) -> String {
    let stem = li.path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let letters: String = stem.chars().take_while(char::is_ascii_alphabetic).collect();
    if letters.is_empty() { li.group.clone() } else { format!("{}-{}", li.group, letters.to_ascii_lowercase()) }
}

/// Runs one model set over the labelled images.
pub fn evaluate(
    rec: &mut Recognizer,
    name: &str,
    images: &[LabelledImage],
    min_read_confidence: f32,
    region_from_name: bool,
) -> anyhow::Result<Report> {
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    for li in images {
        let region = if region_from_name { region_from(li) } else { li.group.clone() };
        let view = View { region: region.clone(), ..View::default() };
        let t = groups.entry(li.group.clone()).or_default();
        let frame = opencv::imgcodecs::imread(&li.path, opencv::imgcodecs::IMREAD_COLOR)
            .with_context(|| format!("reading {}", li.path.display()))?;
        if opencv::prelude::MatTraitConst::empty(&frame) {
            anyhow::bail!("{} is not an image OpenCV can read", li.path.display());
        }
        t.images += 1;
        t.plates += li.plates.len() as u64;
        for p in &li.plates {
            let Some(truth) = &p.text else { continue };
            t.texts += 1;
            let t0 = Instant::now();
            let read =
                rec.read_box(&frame, p.bbox, &region).with_context(|| format!("OCR on {}", li.path.display()))?;
            t.ocr_ms += t0.elapsed().as_secs_f64() * 1e3;
            t.ocr_calls += 1;
            t.ocr(truth, read.as_ref().map(|r| r.text.as_str()));
        }
        if rec.has_detector() {
            let mut result =
                rec.recognize(&frame, &view).with_context(|| format!("recognizing {}", li.path.display()))?;
            t.detect_ms += result.detect_ms;
            let truth: Vec<_> = li.plates.iter().map(|p| p.bbox).collect();
            // The detector alone: every box it reported, read or rejected.
            let raw: Vec<_> = result.reads.iter().map(|r| r.bbox).chain(result.rejected.iter().copied()).collect();
            t.raw_detections(&raw, &truth, 0.5);
            // The recognizer's verdict counts: a box whose reading is not plate-like is not reported.
            result.reads.retain(|r| r.confidence >= min_read_confidence);
            let pred: Vec<_> = result.reads.iter().map(|r| r.bbox).collect();
            let m = t.detections(&pred, &truth, 0.5);
            for (i, p) in li.plates.iter().enumerate() {
                if let (Some(text), Some(k)) = (&p.text, m[i]) {
                    t.e2e_exact += u64::from(&result.reads[k].text == text);
                }
            }
        }
    }
    Ok(Report { name: name.to_string(), groups, has_detector: rec.has_detector() })
}

fn pct(v: f64) -> String {
    format!("{:.1}", v * 100.0)
}

fn print_table(r: &Report, other: Option<&Report>) {
    let mut rows: Vec<(String, Figures, Option<Figures>)> = r
        .groups
        .iter()
        .map(|(g, t)| (g.clone(), t.figures(), other.and_then(|o| o.groups.get(g)).map(|t| t.figures())))
        .collect();
    rows.push(("overall".into(), r.overall().figures(), other.map(|o| o.overall().figures())));
    println!("model set: {}{}", r.name, other.map(|o| format!("   against: {}", o.name)).unwrap_or_default());
    // (header, figure, shown as a percentage)
    type Column = (&'static str, fn(&Figures) -> f64, bool);
    let cols: [Column; 8] = [
        ("det_recall%", |f| f.det_recall, true),
        ("det_prec%", |f| f.det_precision, true),
        ("raw_prec%", |f| f.raw_det_precision, true),
        ("ocr_exact%", |f| f.ocr_exact, false),
        ("e2e_exact%", |f| f.e2e_exact, true),
        ("char_acc%", |f| f.char_accuracy, false),
        ("ms_detect", |f| f.ms_detect, true),
        ("ms_ocr", |f| f.ms_ocr, false),
    ];
    // Detector columns only when some model set has a detector.
    let any_det = r.has_detector || other.is_some_and(|o| o.has_detector);
    let cols: Vec<_> = cols.into_iter().filter(|(_, _, det)| any_det || !det).collect();
    print!("{:<10} {:>6} {:>6}", "group", "images", "plates");
    for (n, _, _) in &cols {
        print!(" {n:>12}");
        if other.is_some() {
            print!(" {:>12} {:>6}", "against", "ratio");
        }
    }
    println!();
    for (g, f, o) in rows {
        print!("{g:<10} {:>6} {:>6}", f.images, f.plates);
        for (n, get, det) in &cols {
            let ms = n.starts_with("ms_");
            let show = |f: &Figures, has_det: bool| {
                if *det && !has_det {
                    "-".to_string()
                } else if ms {
                    format!("{:.2}", get(f))
                } else {
                    pct(get(f))
                }
            };
            print!(" {:>12}", show(&f, r.has_detector));
            if let (Some(o), Some(or)) = (&o, other) {
                let ratio = if get(o) > 0.0 { format!("{:.3}", get(&f) / get(o)) } else { "-".into() };
                print!(" {:>12} {:>6}", show(o, or.has_detector), ratio);
            }
        }
        println!();
    }
}

pub fn run(o: Options) -> anyhow::Result<()> {
    if o.threads > 0 {
        opencv::core::set_num_threads(o.threads as i32)?;
    }
    let mut images = dataset::read(o.dataset)?;
    if let Some(n) = o.limit {
        images.truncate(n);
    }
    let mut ours = recognizer_with_formats(o.models, &o.formats)?;
    let mut theirs = o.against.map(|s| recognizer_with_formats(s, &o.formats)).transpose()?;
    let a = evaluate(&mut ours, &o.models.name, &images, o.min_read_confidence, o.region_from_name)?;
    let b = match (&mut theirs, o.against) {
        (Some(r), Some(set)) => Some(evaluate(r, &set.name, &images, o.min_read_confidence, o.region_from_name)?),
        _ => None,
    };
    print_table(&a, b.as_ref());
    if o.json {
        let mut v = a.json();
        if let Some(b) = &b {
            v["against"] = b.json();
        }
        println!("{v}");
    }
    Ok(())
}
