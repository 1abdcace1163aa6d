//! Property-based fuzzing of two inputs that come from outside the box: inbound MQTT commands (the
//! checks every command passes before it is applied) and the TOML configuration loader. Short by
//! default (part of `make test`); at scale: `PROPTEST_CASES=200000 cargo test --release --test fuzz`.
//! The properties: nothing panics, nothing malformed, retained, oversized or unsigned is accepted, an
//! accepted signed command is exactly what was signed, and every config problem names its file.

use base64::Engine;
use ed25519_dalek::Signer;
use polewatch::uplink::check_command;
use polewatch::uplink::payload::{CommandV1, command_signing_bytes};
use proptest::prelude::*;
use std::path::Path;

const TOPIC: &str = "polewatch/site1/pole-01/cmd/hold";
const MAX: usize = 4096;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn server() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32])
}

fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ]
}

/// What a signed command's body may hold: no fractional numbers.
fn integral_leaf() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        ".{0,40}".prop_map(serde_json::Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    tree(json_leaf().boxed())
}

fn tree(leaf: BoxedStrategy<serde_json::Value>) -> impl Strategy<Value = serde_json::Value> {
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Command-shaped objects: the right fields most of the time, wrong types, extra fields and odd values
/// some of the time.
fn command_like() -> impl Strategy<Value = serde_json::Value> {
    (
        prop_oneof![4 => Just(serde_json::json!(1)), 1 => json_leaf()],
        prop_oneof![4 => "[a-z0-9-]{1,20}".prop_map(serde_json::Value::from), 1 => ".{0,200}".prop_map(serde_json::Value::from), 1 => json_leaf()],
        prop_oneof![4 => "[a-z ]{0,12}".prop_map(serde_json::Value::from), 1 => json_leaf()],
        json_value(),
        prop::option::of(prop_oneof![".{0,100}".prop_map(serde_json::Value::from), json_leaf()]),
        prop::option::of((".{1,8}", json_leaf())),
    )
        .prop_map(|(v, id, by, body, sig, extra)| {
            let mut m = serde_json::Map::new();
            m.insert("v".into(), v);
            m.insert("id".into(), id);
            m.insert("by".into(), by);
            m.insert("body".into(), body);
            if let Some(s) = sig {
                m.insert("sig".into(), s);
            }
            if let Some((k, e)) = extra {
                m.insert(k, e);
            }
            serde_json::Value::Object(m)
        })
}

fn accepted_is_well_formed(c: &CommandV1, payload: &[u8], retain: bool) -> Result<(), TestCaseError> {
    prop_assert!(payload.len() <= MAX);
    prop_assert!(!retain);
    prop_assert_eq!(c.v, 1);
    prop_assert!(!c.id.is_empty() && c.id.len() <= 128);
    prop_assert!(!c.by.trim().is_empty() && c.by.len() <= 128);
    Ok(())
}

fn sign(mut c: CommandV1) -> CommandV1 {
    c.sig = None;
    let s = server().sign(&command_signing_bytes(TOPIC, &c));
    c.sig = Some(base64::engine::general_purpose::STANDARD.encode(s.to_bytes()));
    c
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_bytes_are_checked_without_panic(payload in prop::collection::vec(any::<u8>(), 0..MAX + 64), retain in any::<bool>()) {
        if let Ok(c) = check_command(TOPIC, &payload, retain, MAX, None) {
            accepted_is_well_formed(&c, &payload, retain)?;
        }
        // With a key configured, random bytes never pass.
        prop_assert!(check_command(TOPIC, &payload, retain, MAX, Some(&server().verifying_key())).is_err());
    }

    #[test]
    fn command_shaped_input_is_accepted_only_when_well_formed(v in command_like(), retain in any::<bool>(), pad in 0usize..64) {
        let mut payload = serde_json::to_vec(&v).unwrap();
        payload.extend(std::iter::repeat_n(b' ', pad));
        match check_command(TOPIC, &payload, retain, MAX, None) {
            Ok(c) => accepted_is_well_formed(&c, &payload, retain)?,
            Err(r) => prop_assert!(!r.why.is_empty() && r.why.len() < 400, "{}", r.why),
        }
        let key = server().verifying_key();
        if let Ok(c) = check_command(TOPIC, &payload, retain, MAX, Some(&key)) {
            // Only a real signature by the server passes: the fuzzer cannot forge one.
            prop_assert!(key.verify_strict(&command_signing_bytes(TOPIC, &c), &ed25519_dalek::Signature::from_slice(
                &base64::engine::general_purpose::STANDARD.decode(c.sig.as_deref().unwrap_or_default()).unwrap()).unwrap()).is_ok());
        }
    }

    #[test]
    fn a_signed_command_changed_anywhere_is_refused_or_means_the_same(
        id in "[a-z0-9-]{1,20}", by in "[a-z]{1,12}", body in tree(integral_leaf().boxed()), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let signed = sign(CommandV1 { v: 1, id, by, body: serde_json::json!({ "x": body }), sig: None });
        let original = command_signing_bytes(TOPIC, &signed);
        let mut payload = serde_json::to_vec(&signed).unwrap();
        let key = server().verifying_key();
        prop_assert!(check_command(TOPIC, &payload, false, 1 << 20, Some(&key)).is_ok(), "the signed command itself passes");
        for (at, byte) in flips {
            let i = at.index(payload.len());
            payload[i] = byte;
        }
        if let Ok(c) = check_command(TOPIC, &payload, false, 1 << 20, Some(&key)) {
            prop_assert_eq!(command_signing_bytes(TOPIC, &c), original, "an accepted command is what was signed");
        }
        // A fractional number in a signed body is refused, never misread.
        let fractional = sign(CommandV1 { v: 1, id: "f".into(), by: "b".into(), body: serde_json::json!({ "x": 0.1 }), sig: None });
        prop_assert!(check_command(TOPIC, &serde_json::to_vec(&fractional).unwrap(), false, 1 << 20, Some(&key)).is_err());
        // Signed for this topic, it is refused on another.
        prop_assert!(check_command("polewatch/site1/pole-02/cmd/hold", &serde_json::to_vec(&signed).unwrap(), false, 1 << 20, Some(&key)).is_err());
    }

    #[test]
    fn any_config_text_loads_or_names_its_file(text in "(?s).{0,600}") {
        let p = Path::new("/etc/polewatch/polewatch.toml");
        if let Err(e) = polewatch::config::load_texts(&[(p, text.as_str())]) {
            for problem in e.problems() {
                prop_assert_eq!(problem.file.as_path(), p);
            }
        }
    }

    #[test]
    fn config_shaped_text_loads_or_names_file_line_and_key(
        lines in prop::collection::vec((
            prop::sample::select(vec!["site", "cameras", "store", "store.retention", "mqtt", "api", "access", "hotlists", "tracker", "logging", "service", "recognizer"]),
            prop::sample::select(vec!["site_id", "device_id", "id", "name", "url", "path", "min_days", "max_days", "host", "port", "enabled", "max_purge_percent", "max_command_kib", "command_public_key", "latency_ms", "organisation", "level", "nosuch"]),
            prop_oneof![
                "[a-z0-9]{0,10}".prop_map(|s| format!("\"{s}\"")),
                (0usize..6000).prop_map(|n| format!("\"{}\"", "n".repeat(n))),
                any::<i64>().prop_map(|n| n.to_string()),
                any::<bool>().prop_map(|b| b.to_string()),
                Just("[1, 2]".to_string()),
                Just("\"rtsp://192.0.2.1/s\"".to_string()),
            ],
            any::<bool>(),
        ), 0..12),
    ) {
        let mut text = String::from("[site]\nsite_id = \"s1\"\ndevice_id = \"d1\"\n");
        for (table, key, value, array) in &lines {
            if *array && *table == "cameras" {
                text.push_str(&format!("[[cameras]]\nid = \"c\"\nurl = \"rtsp://192.0.2.1/s\"\n{key} = {value}\n"));
            } else {
                text.push_str(&format!("[{table}]\n{key} = {value}\n"));
            }
        }
        let p = Path::new("/etc/polewatch/polewatch.toml");
        if let Err(e) = polewatch::config::load_texts(&[(p, text.as_str())]) {
            for problem in e.problems() {
                prop_assert_eq!(problem.file.as_path(), p);
                prop_assert!(problem.to_string().len() < 2000, "an error never carries a long value back: {}", problem);
            }
        }
    }

    // Issue 15, the other inputs from outside the box (the same properties are cargo fuzz targets in
    // fuzz/, which need a nightly build of the whole tree).

    #[test]
    fn any_hotlist_text_parses_or_names_its_lines(text in "(?s).{0,800}") {
        if let Err(polewatch::hotlist::HotlistError::Invalid { problems, .. }) = polewatch::hotlist::parse_csv("fuzz", &text, 1_700_000_000_000) {
            prop_assert!(!problems.is_empty());
            for p in &problems {
                prop_assert!(p.message.len() < 2000, "a problem quotes a long value back: {}", p.message);
            }
        }
    }

    #[test]
    fn hotlist_shaped_csv_parses_or_names_its_lines(
        rows in prop::collection::vec((
            "[A-Z0-9*?]{0,12}|.{0,12}", "[a-z-]{0,6}", "[a-z ]{0,12}", "[0-9]{0,2}|x", "[a-z]{0,6}", "(2027-01-01)?|.{0,10}", ".{0,20}",
        ), 0..20),
        bom in any::<bool>(),
    ) {
        let mut text = String::from(if bom { "\u{feff}plate,region,category,priority,source,expiry,notes\n" } else { "plate,region,category,priority,source,expiry,notes\n" });
        for (plate, region, cat, prio, src, exp, notes) in &rows {
            text.push_str(&format!("{plate},{region},{cat},{prio},{src},{exp},{notes}\n"));
        }
        match polewatch::hotlist::parse_csv("fuzz", &text, 1_700_000_000_000) {
            Ok(list) => prop_assert!(list.entries.len() <= rows.len()),
            Err(polewatch::hotlist::HotlistError::Invalid { problems, .. }) => {
                prop_assert!(problems.iter().all(|p| p.line <= rows.len() as u64 + 2), "{problems:?}");
            }
            Err(e) => prop_assert!(false, "{e}"),
        }
    }

    #[test]
    fn audit_verify_takes_any_stored_bytes_without_panic(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 0..8),
        checkpoint in "(?s).{0,200}",
    ) {
        use polewatch::access::audit::{decode_record, AuditKey, Checkpoint, Verifier};
        let key = AuditKey::from_bytes(&[9; 32]).unwrap();
        let mut v = Verifier::new(&key, Checkpoint::parse(&checkpoint).ok());
        if let Some(bytes) = records.first() {
            // Random bytes are never a valid first entry under this key.
            let first = polewatch::store::AuditRecord { key_seq: Some(1), bytes: bytes.clone() };
            prop_assert!(v.push(decode_record(&first)).is_err(), "random bytes passed as entry 1");
        }
        // Any record, any key: decoded or refused, never a panic.
        for (i, bytes) in records.iter().enumerate() {
            let _ = decode_record(&polewatch::store::AuditRecord { key_seq: (i % 2 == 0).then_some(i as u64), bytes: bytes.clone() });
        }
    }

    #[test]
    fn api_search_patterns_and_globs_parse_without_panic(text in "(?s).{0,40}", plate in "[A-Z0-9]{0,16}") {
        if let Ok(p) = polewatch::store::PlatePattern::parse(&text) {
            let _ = p.matches(plate.as_bytes());
        }
        let _ = polewatch::hotlist::PlateGlob::parse(&text);
        let body = serde_json::json!({ "plate": text, "purpose": "x", "case_number": "y" });
        prop_assert!(serde_json::to_vec(&body).is_ok());
    }
}
