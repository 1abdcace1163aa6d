//! Configuration: the shipped files are valid, and every kind of error names file, line and key.

use polewatch::config::{self, ConfigError, Problem};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const MINIMAL: &str = "[site]\nsite_id = \"s1\"\ndevice_id = \"d1\"\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn problems(dir: &Path, text: &str) -> Vec<Problem> {
    let p = write(dir, "polewatch.toml", text);
    match config::load(&p) {
        Err(ConfigError::Invalid(ps)) => ps,
        other => panic!("expected invalid config, got {other:?}"),
    }
}

fn one(dir: &Path, text: &str) -> Problem {
    let ps = problems(dir, text);
    assert_eq!(ps.len(), 1, "{ps:?}");
    ps.into_iter().next().unwrap()
}

#[test]
fn shipped_configs_are_valid_and_complete() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The sample names the models where the package installs them; here the checkout's copies stand in.
    let text = std::fs::read_to_string(root.join("config/polewatch.toml")).unwrap();
    let installed = "/usr/share/polewatch/models/";
    assert!(text.contains(installed));
    let local = text.replace(installed, &format!("{}/models/", root.display()));
    let d = tempfile::tempdir().unwrap();
    let full = config::load(&write(d.path(), "polewatch.toml", &local)).expect("config/polewatch.toml is valid");
    // ... and with the shipped model set's files and checksums.
    let set = config::load_model_set(&root.join("models/polewatch.toml")).unwrap();
    assert_eq!(full.config.recognizer.detector, set.detector);
    assert_eq!(full.config.recognizer.ocr, set.ocr);
    assert_eq!(full.config.site.site_id, "main-st-north");
    assert_eq!(full.config.cameras.len(), 1);
    assert_eq!(
        (full.config.cameras[0].latency_ms, full.config.cameras[0].jitter_latency_ms()),
        (None, 0),
        "no jitter buffer over TCP unless set"
    );
    assert_eq!(full.config.store.retention.min_days, 365);
    // The [tracker] values written out in the sample are the defaults.
    assert_eq!(full.config.tracker, polewatch::track::TrackerConfig::default());
    assert_eq!(full.config.cameras[0].decoder, "auto");
    // The plate formats the sample ships are the ones `bench accuracy --formats` is given.
    let formats =
        config::load_formats(&root.join("config/plate-formats.toml")).expect("config/plate-formats.toml is valid");
    assert_eq!(full.config.recognizer.formats, formats);
    assert!(formats.iter().any(|f| f.region == "br"));
    assert_eq!((full.config.recognizer.min_plate_chars, full.config.recognizer.max_plate_chars), (4, 10));
    let demo = config::load(&root.join("config/demo.toml")).expect("config/demo.toml is valid");
    // The demo names the shipped set by file: the same models, checksums and contracts.
    assert_eq!(demo.config.recognizer.ocr.as_ref().map(|o| &o.sha256), set.ocr.as_ref().map(|o| &o.sha256));
    assert_eq!(demo.config.recognizer.detector.as_ref().map(|d| &d.sha256), set.detector.as_ref().map(|d| &d.sha256));
    assert!(!demo.config.store.retention.require_clock_sync);
}

#[test]
fn a_model_set_file_or_model_tables_but_not_both() {
    let d = tempfile::tempdir().unwrap();
    let set = write(d.path(), "set.toml", "[ocr]\npath = \"ocr.onnx\"\nsha256 = \"{}\"\nkind = \"ctc\"\ninput_width = 128\ninput_height = 32\nalphabet = \"AB\"\n".replace("{}", &"a".repeat(64)).as_str());
    std::fs::write(d.path().join("ocr.onnx"), b"x").unwrap();
    let ok = config::load(&write(
        d.path(),
        "a.toml",
        &format!("{MINIMAL}[recognizer]\nmodel_set = \"{}\"\n", set.display()),
    ))
    .unwrap();
    assert_eq!(ok.config.recognizer.ocr.unwrap().path, d.path().join("ocr.onnx"), "paths are relative to the set file");
    let both = format!(
        "{MINIMAL}[recognizer]\nmodel_set = \"{}\"\n[recognizer.ocr]\npath = \"{}\"\nsha256 = \"{}\"\nkind = \"ctc\"\ninput_width = 128\ninput_height = 32\nalphabet = \"AB\"\n",
        set.display(),
        d.path().join("ocr.onnx").display(),
        "b".repeat(64)
    );
    let p = one(d.path(), &both);
    assert_eq!(p.key, "recognizer.model_set");
    assert_eq!(p.line, Some(MINIMAL.lines().count() + 2));
    let bad = write(
        d.path(),
        "bad.toml",
        "[ocr]\npath = \"o\"\nsha256 = \"short\"\nkind = \"ctc\"\ninput_width = 128\ninput_height = 32\nalphabet = \"AB\"\n",
    );
    let p = one(d.path(), &format!("{MINIMAL}[recognizer]\nmodel_set = \"{}\"\n", bad.display()));
    assert!(p.message.contains("bad.toml:3: ocr.sha256: must be 64 hex digits"), "{p}");
}

#[test]
fn a_formats_file_for_bench_accuracy_loads_and_bad_patterns_name_the_line() {
    let d = tempfile::tempdir().unwrap();
    let ok = write(d.path(), "f.toml", "[[formats]]\nregion = \"br\"\npatterns = [\"@@@####\", \"@@@#@##\"]\n");
    let f = config::load_formats(&ok).unwrap();
    assert_eq!((f[0].region.as_str(), f[0].patterns.len()), ("br", 2));
    let bad = write(d.path(), "g.toml", "[[formats]]\nregion = \"br\"\npatterns = [\"@@@-###\"]\n");
    let e = config::load_formats(&bad).unwrap_err();
    let p = &e.problems()[0];
    assert_eq!((p.key.as_str(), p.line), ("formats[0].patterns[0]", Some(3)), "{e}");
}

#[test]
fn defaults_fill_a_minimal_file() {
    let d = tempfile::tempdir().unwrap();
    let c = config::load(&write(d.path(), "polewatch.toml", MINIMAL)).unwrap().config;
    assert_eq!(c.store.path, PathBuf::from("/var/lib/polewatch/store"));
    assert_eq!(c.store.cache_capacity_mb, 64);
    assert_eq!(c.store.retention.min_days, 365);
    assert!(c.store.retention.max_days >= c.store.retention.min_days);
    assert!(c.store.retention.require_clock_sync);
    assert_eq!(c.mqtt.port, 8883);
    assert!(!c.mqtt.insecure_plaintext);
    assert_eq!(c.api.session_idle_minutes, 30);
    assert!(c.cameras.is_empty());
}

#[test]
fn unknown_key_names_file_line_and_path() {
    let d = tempfile::tempdir().unwrap();
    let p = one(d.path(), &format!("{MINIMAL}\n[store]\npath = \"/x\"\ncache_mb = 5\n"));
    assert_eq!(p.file, d.path().join("polewatch.toml"));
    assert_eq!(p.line, Some(7));
    assert_eq!(p.key, "store.cache_mb");
    assert!(p.message.contains("unknown key `cache_mb`"), "{}", p.message);
    assert!(p.to_string().starts_with(&format!("{}:7: store.cache_mb: ", d.path().join("polewatch.toml").display())));
}

#[test]
fn unknown_top_level_table_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let p = one(d.path(), &format!("{MINIMAL}[stroe]\npath = \"/x\"\n"));
    assert_eq!((p.key.as_str(), p.line), ("stroe", Some(4)));
}

#[test]
fn wrong_type_names_key_and_line() {
    let d = tempfile::tempdir().unwrap();
    let p = one(d.path(), &format!("{MINIMAL}[[cameras]]\nid = \"c\"\nurl = \"rtsp://h/s\"\nlatency_ms = \"fast\"\n"));
    assert_eq!((p.key.as_str(), p.line), ("cameras[0].latency_ms", Some(7)));
    assert!(p.message.contains("invalid type"), "{}", p.message);
}

#[test]
fn bad_enum_value_names_key() {
    let d = tempfile::tempdir().unwrap();
    let p = one(d.path(), &format!("{MINIMAL}[logging]\nlevel = \"loud\"\n"));
    assert_eq!((p.key.as_str(), p.line), ("logging.level", Some(5)));
    assert!(p.message.contains("unknown variant"), "{}", p.message);
}

#[test]
fn recognizer_backend_is_auto_by_default_and_a_bad_one_names_file_line_and_key() {
    let d = tempfile::tempdir().unwrap();
    let c = config::load(&write(d.path(), "polewatch.toml", MINIMAL)).unwrap().config;
    assert_eq!(c.recognizer.backend, config::DnnBackend::Auto);
    for (text, want) in
        [("auto", config::DnnBackend::Auto), ("cpu", config::DnnBackend::Cpu), ("cuda", config::DnnBackend::Cuda)]
    {
        let f = write(d.path(), "polewatch.toml", &format!("{MINIMAL}[recognizer]\nbackend = \"{text}\"\n"));
        assert_eq!(config::load(&f).unwrap().config.recognizer.backend, want);
    }
    let p = one(d.path(), &format!("{MINIMAL}[recognizer]\nthreads = 1\nbackend = \"gpu\"\n"));
    assert_eq!((p.key.as_str(), p.line), ("recognizer.backend", Some(6)));
    assert!(p.message.contains("unknown variant `gpu`") && p.message.contains("`auto`"), "{}", p.message);
    assert!(p.file.ends_with("polewatch.toml"), "{:?}", p.file);
}

#[test]
fn missing_required_key_points_at_its_table() {
    let d = tempfile::tempdir().unwrap();
    let p = one(d.path(), "# comment\n[site]\nsite_id = \"s\"\n");
    assert_eq!((p.key.as_str(), p.line), ("site", Some(2)));
    assert!(p.message.contains("missing field `device_id`"), "{}", p.message);
}

#[test]
fn out_of_range_values_are_all_reported() {
    let d = tempfile::tempdir().unwrap();
    let ps = problems(
        d.path(),
        &format!(
            "{MINIMAL}[store]\ncache_capacity_mb = 2\n[store.retention]\nmin_days = 365\nmax_days = 30\n[api]\nsession_idle_minutes = 90\n"
        ),
    );
    let keys: Vec<(&str, Option<usize>)> = ps.iter().map(|p| (p.key.as_str(), p.line)).collect();
    assert_eq!(
        keys,
        vec![
            ("store.cache_capacity_mb", Some(5)),
            ("store.retention.max_days", Some(8)),
            ("api.session_idle_minutes", Some(10))
        ]
    );
}

/// A region of interest that crosses itself (a figure of eight) is refused at load with the crossing edges,
/// as the console's Aim page refuses it: the recognizer would keep plates in the wrong part of the frame.
#[test]
fn a_region_of_interest_that_crosses_itself_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let cam = "[[cameras]]\nid = \"c\"\nurl = \"rtsp://h/s\"\n";
    let p = one(d.path(), &format!("{MINIMAL}{cam}roi = [[0, 0], [100, 100], [100, 0], [0, 100]]\n"));
    assert_eq!((p.key.as_str(), p.line), ("cameras[0].roi", Some(7)));
    assert!(p.message.contains("edges 1 and 3 cross"), "{}", p.message);
    let ok = write(d.path(), "ok.toml", &format!("{MINIMAL}{cam}roi = [[0, 0], [100, 0], [100, 100], [0, 100]]\n"));
    assert_eq!(config::load(&ok).unwrap().config.cameras[0].roi.len(), 4);
}

#[test]
fn syntax_error_names_line() {
    let d = tempfile::tempdir().unwrap();
    let p = one(d.path(), &format!("{MINIMAL}[store\npath = 1\n"));
    assert_eq!(p.line, Some(4));
    assert!(p.message.starts_with("TOML syntax"), "{}", p.message);
}

#[test]
fn mqtt_needs_tls_unless_explicitly_insecure() {
    let d = tempfile::tempdir().unwrap();
    let p = one(d.path(), &format!("{MINIMAL}[mqtt]\nenabled = true\nhost = \"broker\"\n"));
    assert_eq!((p.key.as_str(), p.line), ("mqtt.ca_file", Some(4)));
    let p = one(
        d.path(),
        &format!("{MINIMAL}[mqtt]\nenabled = true\nhost = \"b\"\ninsecure_plaintext = true\npassword = \"x\"\n"),
    );
    assert_eq!(p.key, "mqtt.insecure_plaintext");
}

/// Issue 17: `[mqtt] hosts` lists brokers tried in order; `host`/`port` stay a list of one. A bad entry
/// is named by its position and line; `host` and `hosts` together are refused.
#[test]
fn mqtt_hosts_list_brokers_in_order_and_bad_entries_name_their_line() {
    let d = tempfile::tempdir().unwrap();
    let head = format!("{MINIMAL}[mqtt]\nenabled = true\ninsecure_plaintext = true\n");
    let c = config::load(&write(
        d.path(),
        "polewatch.toml",
        &format!("{head}port = 1884\nhosts = [\"n1.example\", \"10.0.0.2:8883\", \"[::1]:1885\", \"[fe80::1]\"]\n"),
    ))
    .unwrap()
    .config;
    let want =
        [("n1.example", 1884), ("10.0.0.2", 8883), ("::1", 1885), ("fe80::1", 1884)].map(|(h, p)| (h.to_string(), p));
    assert_eq!(config::mqtt_brokers(&c.mqtt), want);
    let c = config::load(&write(d.path(), "polewatch.toml", &format!("{head}host = \"broker\"\nport = 8884\n")))
        .unwrap()
        .config;
    assert_eq!(config::mqtt_brokers(&c.mqtt), vec![("broker".to_string(), 8884)]);

    let p = one(d.path(), &format!("{head}hosts = [\n  \"a:8883\",\n  \"b:99999\",\n]\n"));
    assert_eq!((p.key.as_str(), p.line), ("mqtt.hosts[1]", Some(9)));
    assert!(p.message.contains("99999"), "{}", p.message);
    for (bad, why) in [
        ("", "host name"),
        ("a:b:c", "brackets"),
        ("[::1", "close"),
        ("[::1]x", ":port"),
        ("h:0", "port"),
        ("a b", "host name"),
    ] {
        let p = one(d.path(), &format!("{head}hosts = [\"{bad}\"]\n"));
        assert_eq!((p.key.as_str(), p.line), ("mqtt.hosts[0]", Some(7)), "{bad}");
        assert!(p.message.contains(why), "{bad}: {}", p.message);
    }
    let p = one(d.path(), &format!("{head}hosts = [\"a\", \"b\", \"a:8883\"]\n"));
    assert_eq!(p.key, "mqtt.hosts[2]");
    assert!(p.message.contains("twice"), "{}", p.message);
    let p = one(d.path(), &format!("{head}host = \"a\"\nhosts = [\"b\"]\n"));
    assert_eq!((p.key.as_str(), p.line), ("mqtt.hosts", Some(8)));
    let p = one(d.path(), &format!("{head}hosts = []\n"));
    assert_eq!(p.key, "mqtt.host");
}

#[test]
fn drop_ins_merge_append_cameras_and_errors_name_the_drop_in() {
    let d = tempfile::tempdir().unwrap();
    let main = write(
        d.path(),
        "polewatch.toml",
        &format!("{MINIMAL}[[cameras]]\nid = \"a\"\nurl = \"file:///v.mp4\"\n[store]\npath = \"/s\"\n"),
    );
    write(
        d.path(),
        "conf.d/20-b.toml",
        "[[cameras]]\nid = \"b\"\nurl = \"rtsp://h/b\"\n\n[store]\ncache_capacity_mb = 16\n",
    );
    write(d.path(), "conf.d/10-a.toml", "[logging]\nlevel = \"debug\"\n");
    write(d.path(), "conf.d/ignored.txt", "not toml");
    let l = config::load(&main).unwrap();
    assert_eq!(l.files, vec![main.clone(), d.path().join("conf.d/10-a.toml"), d.path().join("conf.d/20-b.toml")]);
    let ids: Vec<&str> = l.config.cameras.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(l.config.store.path, PathBuf::from("/s"));
    assert_eq!(l.config.store.cache_capacity_mb, 16);

    write(d.path(), "conf.d/30-dup.toml", "[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/c\"\n");
    let ps = match config::load(&main) {
        Err(ConfigError::Invalid(ps)) => ps,
        other => panic!("{other:?}"),
    };
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0].file, d.path().join("conf.d/30-dup.toml"));
    assert_eq!((ps[0].key.as_str(), ps[0].line), ("cameras[2].id", Some(2)));
}

#[test]
fn files_the_config_uses_must_exist() {
    let d = tempfile::tempdir().unwrap();
    let ca = write(d.path(), "ca.pem", "-----BEGIN CERTIFICATE-----");
    let p = one(
        d.path(),
        &format!(
            "{MINIMAL}[mqtt]\nenabled = true\nhost = \"b\"\nca_file = \"{}\"\nclient_cert = \"{}\"\nclient_key = \"/nonexistent/k\"\n",
            ca.display(),
            ca.display()
        ),
    );
    assert_eq!((p.key.as_str(), p.line), ("mqtt.client_key", Some(9)));
    assert!(p.message.contains("/nonexistent/k does not exist"), "{}", p.message);
    // Not in use: not checked.
    let p = write(
        d.path(),
        "polewatch.toml",
        &format!("{MINIMAL}[mqtt]\nenabled = false\nca_file = \"/nonexistent/ca\"\n"),
    );
    assert!(config::load(&p).is_ok());
}

#[test]
fn readable_secrets_draw_warnings() {
    let d = tempfile::tempdir().unwrap();
    let p = write(d.path(), "polewatch.toml", &format!("{MINIMAL}[mqtt]\nusername = \"u\"\npassword = \"pw\"\n"));
    assert!(config::load(&p).unwrap().warnings.is_empty(), "0600 file holding a secret is fine");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    let w = config::load(&p).unwrap().warnings;
    assert_eq!(w.len(), 1);
    assert_eq!((w[0].key.as_str(), w[0].line), ("mqtt.password", Some(6)));

    let key = write(d.path(), "store.key", "k");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let p = write(d.path(), "polewatch.toml", &format!("{MINIMAL}[store]\nkey_file = \"{}\"\n", key.display()));
    let w = config::load(&p).unwrap().warnings;
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].key, "store.key_file");
    assert!(w[0].message.contains("640"), "{}", w[0].message);
}

#[test]
fn check_config_command_exit_codes() {
    let d = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_polewatch");
    let good = write(d.path(), "good/polewatch.toml", MINIMAL);
    let out = Command::new(exe).args(["check-config", "--config"]).arg(&good).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bad = write(d.path(), "bad/polewatch.toml", &format!("{MINIMAL}[service]\nstop_timeout_s = 0\n"));
    let out = Command::new(exe).args(["check-config", "--config"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:5: service.stop_timeout_s: 0 is out of range", bad.display())), "{err}");
    let out = Command::new(exe).args(["check-config", "--config"]).arg(d.path().join("none.toml")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn camera_decoder_must_be_an_installed_decoder_element() {
    let d = tempfile::tempdir().unwrap();
    let cam = |decoder: &str| {
        format!("{MINIMAL}[[cameras]]\nid = \"a\"\nurl = \"rtsp://192.0.2.1/s\"\ndecoder = \"{decoder}\"\n")
    };
    for ok in ["auto", "software", "avdec_h264", "jpegdec"] {
        config::load(&write(d.path(), "polewatch.toml", &cam(ok))).unwrap_or_else(|e| panic!("decoder {ok}: {e}"));
    }
    let p = one(d.path(), &cam("nosuchdec"));
    assert_eq!((p.line, p.key.as_str()), (Some(7), "cameras[0].decoder"));
    assert!(p.message.contains("`nosuchdec` is not an installed GStreamer decoder element"), "{p}");
    // An element that exists but does not decode.
    assert_eq!(one(d.path(), &cam("videoconvert")).key, "cameras[0].decoder");
    assert!(one(d.path(), &cam("avdec h264!")).message.contains("not auto, software or a GStreamer element name"));
}

#[test]
fn tracker_table_maps_onto_the_tracker_and_bad_values_name_the_key() {
    let d = tempfile::tempdir().unwrap();
    let c = config::load(&write(
        d.path(),
        "polewatch.toml",
        &format!("{MINIMAL}[tracker]\ngap_ms = 2000\nmin_frames = 3\n"),
    ))
    .unwrap()
    .config;
    let t = c.tracker;
    assert_eq!((t.gap_ms, t.min_frames), (2000, 3));
    assert_eq!(t.max_gate_widths, polewatch::track::TrackerConfig::default().max_gate_widths);
    let p = one(d.path(), &format!("{MINIMAL}[tracker]\ngap_ms = 1500\nmin_text_similarity = 1.5\n"));
    assert_eq!((p.line, p.key.as_str()), (Some(6), "tracker.min_text_similarity"));
    let p = one(d.path(), &format!("{MINIMAL}[tracker]\nmax_gate_widths = 0.5\n"));
    assert_eq!((p.line, p.key.as_str()), (Some(5), "tracker.max_gate_widths"));
    assert_eq!(one(d.path(), &format!("{MINIMAL}[tracker]\ngap = 1\n")).key, "tracker.gap");
    let p =
        one(d.path(), &format!("{MINIMAL}[[cameras]]\nid = \"a\"\nurl = \"file:///v.mkv\"\nmotion_threshold = 0\n"));
    assert_eq!((p.line, p.key.as_str()), (Some(7), "cameras[0].motion_threshold"));
}

#[test]
fn plate_length_bounds_are_checked() {
    let d = tempfile::tempdir().unwrap();
    let p = one(d.path(), &format!("{MINIMAL}[recognizer]\nmin_plate_chars = 6\nmax_plate_chars = 5\n"));
    assert_eq!(p.key, "recognizer.max_plate_chars");
    assert_eq!(p.line, Some(MINIMAL.lines().count() + 3));
    let p = one(d.path(), &format!("{MINIMAL}[recognizer]\nmin_plate_chars = 0\n"));
    assert_eq!(p.key, "recognizer.min_plate_chars");
}

/// Issue 15: `check-config` accepted a 5 MB camera name. String lengths are bounded by the schema and
/// the error names file, line and key (and does not echo the 5 MB back).
#[test]
fn check_config_refuses_a_five_megabyte_camera_name() {
    let d = tempfile::tempdir().unwrap();
    let exe = env!("CARGO_BIN_EXE_polewatch");
    let name = "N".repeat(5 * 1024 * 1024);
    let text = format!("{MINIMAL}\n[[cameras]]\nid = \"a\"\nurl = \"rtsp://192.0.2.1/s\"\nname = \"{name}\"\n");
    let p = write(d.path(), "big/polewatch.toml", &text);
    let out = Command::new(exe).args(["check-config", "--config"]).arg(&p).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:8: cameras[0].name: 5242880 bytes long; at most 256", p.display())),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(err.len() < 10_000, "the error must not carry the value back");
    // Every other string has a bound too: a 5 MB URL is refused the same way.
    let url = format!("rtsp://192.0.2.1/{}", "u".repeat(5 * 1024 * 1024));
    let q = one(d.path(), &format!("{MINIMAL}[[cameras]]\nid = \"a\"\nurl = \"{url}\"\n"));
    assert_eq!((q.line, q.key.as_str()), (Some(6), "cameras[0].url"));
    // The longest names allowed still load.
    config::load(&write(
        d.path(),
        "ok/polewatch.toml",
        &format!(
            "{MINIMAL}[[cameras]]\nid = \"{}\"\nurl = \"rtsp://192.0.2.1/s\"\nname = \"{}\"\n",
            "i".repeat(64),
            "n".repeat(256)
        ),
    ))
    .expect("names at the bound load");
}

/// Issue 16 §6: `check-config` stopped at the first unknown key, type or enum error. Every error of a file
/// comes out in one run, each with file:line: key, the checks serde cannot make included, and a required
/// key left out is named once (not again as an empty value).
#[test]
fn check_config_reports_every_error_in_one_run() {
    let d = tempfile::tempdir().unwrap();
    let text = format!(
        "{MINIMAL}colour = \"red\"\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://h/s\"\nlatency_ms = \"fast\"\ntransport = \"pigeon\"\n\
         [[cameras]]\nname = \"no id\"\nurl = \"rtsp://h/t\"\n[mqtt]\nport = \"x\"\n[logging]\nlevel = \"loud\"\n\
         [store.retention]\nmin_days = 365\nmax_days = 30\n[metrics]\nlisten = \"nowhere\"\n"
    );
    let ps = problems(d.path(), &text);
    let mut got: Vec<(String, Option<usize>)> = ps.iter().map(|p| (p.key.clone(), p.line)).collect();
    got.sort();
    let mut want: Vec<(String, Option<usize>)> = [
        ("site.colour", 4),
        ("cameras[0].latency_ms", 8),
        ("cameras[0].transport", 9),
        ("cameras[1]", 10),
        ("mqtt.port", 14),
        ("logging.level", 16),
        ("store.retention.max_days", 19),
        ("metrics.listen", 21),
    ]
    .iter()
    .map(|(k, l)| (k.to_string(), Some(*l)))
    .collect();
    want.sort();
    assert_eq!(got, want, "{ps:#?}");
    assert!(ps.iter().any(|p| p.key == "cameras[1]" && p.message.contains("missing field `id`")), "{ps:#?}");
    assert!(ps.iter().any(|p| p.key == "cameras[0].transport" && p.message.contains("unknown variant")), "{ps:#?}");

    let exe = env!("CARGO_BIN_EXE_polewatch");
    let f = d.path().join("polewatch.toml");
    let out = Command::new(exe).args(["check-config", "--config"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for (key, line) in &want {
        assert!(err.contains(&format!("{}:{}: {key}: ", f.display(), line.unwrap())), "{key} missing from:\n{err}");
    }
}
