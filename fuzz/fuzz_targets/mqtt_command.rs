//! Inbound MQTT commands (cmd/<name>): the checks every payload passes before anything is applied. The
//! first byte picks retain and whether a signing key is configured; nothing unsigned passes with a key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use polewatch::uplink::session::check_command;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, payload)) = data.split_first() else { return };
    let retain = flags & 1 == 1;
    let topic = ["polewatch/s1/d1/cmd/hold", "polewatch/s1/d1/cmd/hotlist", "polewatch/s1/d1/cmd/unknown"][usize::from(flags >> 1) % 3];
    match check_command(topic, payload, retain, 4096, None) {
        Ok(c) => {
            assert!(!retain, "a retained command was accepted");
            assert!(payload.len() <= 4096);
            assert!(!c.id.is_empty());
        }
        Err(r) => assert!(!r.why.is_empty() && r.why.len() < 400, "{}", r.why),
    }
    let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    if let Ok(c) = check_command(topic, payload, retain, 4096, Some(&key)) {
        assert!(c.sig.is_some(), "an unsigned command passed with a key configured");
    }
});
