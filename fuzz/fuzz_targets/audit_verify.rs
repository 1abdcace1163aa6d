//! `polewatch audit verify` input: stored audit records (bytes as read from the store, split on 0xFF) run
//! through the chain verifier, and the `--checkpoint` text. A damaged log is reported, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use polewatch::access::audit::{decode_record, AuditKey, Checkpoint, Verifier};
use polewatch::store::AuditRecord;

fuzz_target!(|data: &[u8]| {
    let key = AuditKey::from_bytes(&[9; 32]).expect("a 32-byte key");
    let text = String::from_utf8_lossy(data);
    let checkpoint = Checkpoint::parse(&text).ok();
    let mut v = Verifier::new(&key, checkpoint);
    for (i, rec) in data.split(|b| *b == 0xFF).enumerate() {
        let r = AuditRecord { key_seq: Some(i as u64 + 1), bytes: rec.to_vec() };
        if v.push(decode_record(&r)).is_err() {
            break;
        }
    }
    let _ = decode_record(&AuditRecord { key_seq: None, bytes: data.to_vec() });
});
