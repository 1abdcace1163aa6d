//! Checking a chain: every entry in order against its predecessor, its content and the key, optionally
//! against a checkpoint and the store's head pointer. Stops at, and reports, the first bad entry.

use super::{AuditEntry, AuditKey, Digest, GENESIS, entry_hash, format_ms, hex32};
use crate::store::AuditRecord;
use serde::{Deserialize, Serialize};

/// The chain head exported for keeping off the box; `at` is that entry's time (informational).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: u64,
    #[serde(with = "hex32")]
    pub hash: Digest,
    #[serde(with = "hex32")]
    pub mac: Digest,
    pub at: String,
}

impl Checkpoint {
    pub fn of(e: &AuditEntry) -> Checkpoint {
        Checkpoint { seq: e.seq, hash: e.hash, mac: e.mac, at: format_ms(e.at_ms) }
    }

    pub fn parse(text: &str) -> Result<Checkpoint, CheckpointError> {
        let cp: Checkpoint = serde_json::from_str(text.trim()).map_err(CheckpointError::Json)?;
        if cp.seq == 0 {
            return Err(CheckpointError::SeqZero);
        }
        Ok(cp)
    }
}

/// Why a checkpoint's text is refused.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a checkpoint: {0}")]
    Json(serde_json::Error),
    #[error("not a checkpoint: seq must be at least 1")]
    SeqZero,
}

/// A stored record that is not a well-formed entry in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

/// Decodes a stored record, checking that it is the entry its key says.
pub fn decode_record(r: &AuditRecord) -> Result<AuditEntry, Unreadable> {
    let Some(key) = r.key_seq else {
        return Err(Unreadable("a key that is not a sequence number".into()));
    };
    // serde_json's message can quote field values (plate text): give only the kind and position.
    let e: AuditEntry = serde_json::from_slice(&r.bytes).map_err(|e| {
        Unreadable(format!("entry {key} does not decode ({:?} error at column {})", e.classify(), e.column()))
    })?;
    if e.seq != key {
        return Err(Unreadable(format!("key {key} holds entry {} (moved or reordered)", e.seq)));
    }
    Ok(e)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokenReason {
    #[error("{0}")]
    Unreadable(String),
    #[error("entry missing or out of order (entry {found} found in its place)")]
    OutOfSequence { found: u64 },
    #[error(
        "does not follow the previous entry's hash (an entry before it was deleted, inserted, reordered or edited)"
    )]
    ChainBroken,
    #[error("content does not match its hash (edited)")]
    Edited,
    #[error("MAC does not match the audit key (chain rebuilt with another key, or the wrong key file)")]
    KeyMismatch,
    #[error("differs from the checkpoint")]
    CheckpointDiffers,
    #[error("missing: the checkpoint covers entries up to {checkpoint_seq} (log truncated)")]
    MissingBeforeCheckpoint { checkpoint_seq: u64 },
    #[error("missing: the store's head pointer says the log ends at {head} (log truncated)")]
    MissingBeforeHead { head: u64 },
    #[error("entry past the store's head pointer {head} (not appended by polewatch)")]
    PastHead { head: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit log broken at seq {first_bad_seq}: {reason}")]
pub struct Broken {
    pub first_bad_seq: u64,
    pub reason: BrokenReason,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub entries: u64,
    /// The last entry; None for an empty log.
    pub head: Option<Checkpoint>,
    /// The checkpoint matched, when one was given.
    pub checkpoint_seq: Option<u64>,
}

/// Checks entries one at a time, so a caller can tell store errors from a broken chain.
pub struct Verifier<'k> {
    key: &'k AuditKey,
    checkpoint: Option<Checkpoint>,
    next_seq: u64,
    prev_hash: Digest,
    head: Option<Checkpoint>,
}

impl<'k> Verifier<'k> {
    pub fn new(key: &'k AuditKey, checkpoint: Option<Checkpoint>) -> Verifier<'k> {
        Verifier { key, checkpoint, next_seq: 1, prev_hash: GENESIS, head: None }
    }

    pub fn push(&mut self, item: Result<AuditEntry, Unreadable>) -> Result<(), Broken> {
        let seq = self.next_seq;
        let bad = |reason| Err(Broken { first_bad_seq: seq, reason });
        let e = match item {
            Ok(e) => e,
            Err(Unreadable(why)) => return bad(BrokenReason::Unreadable(why)),
        };
        if e.seq != seq {
            return bad(BrokenReason::OutOfSequence { found: e.seq });
        }
        if e.prev_hash != self.prev_hash {
            return bad(BrokenReason::ChainBroken);
        }
        if entry_hash(&e) != e.hash {
            return bad(BrokenReason::Edited);
        }
        if !self.key.verify_mac(&e.hash, &e.mac) {
            return bad(BrokenReason::KeyMismatch);
        }
        if let Some(cp) = &self.checkpoint
            && cp.seq == seq
            && (cp.hash != e.hash || cp.mac != e.mac)
        {
            return bad(BrokenReason::CheckpointDiffers);
        }
        self.prev_hash = e.hash;
        self.next_seq += 1;
        self.head = Some(Checkpoint::of(&e));
        Ok(())
    }

    /// The last good sequence number so far (0: none).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Ends the walk; `head_pointer` is the store's record of the last sequence number written.
    pub fn finish(self, head_pointer: Option<u64>) -> Result<VerifyReport, Broken> {
        let last = self.next_seq - 1;
        if let Some(cp) = &self.checkpoint
            && cp.seq > last
        {
            return Err(Broken {
                first_bad_seq: last + 1,
                reason: BrokenReason::MissingBeforeCheckpoint { checkpoint_seq: cp.seq },
            });
        }
        match head_pointer {
            Some(head) if head > last => {
                return Err(Broken { first_bad_seq: last + 1, reason: BrokenReason::MissingBeforeHead { head } });
            }
            Some(head) if head < last => {
                return Err(Broken { first_bad_seq: head + 1, reason: BrokenReason::PastHead { head } });
            }
            _ => {}
        }
        Ok(VerifyReport { entries: last, head: self.head, checkpoint_seq: self.checkpoint.map(|c| c.seq) })
    }
}

/// Verifies a whole chain given in sequence order.
pub fn verify(
    entries: impl IntoIterator<Item = Result<AuditEntry, Unreadable>>,
    key: &AuditKey,
    checkpoint: Option<Checkpoint>,
) -> Result<VerifyReport, Broken> {
    let mut v = Verifier::new(key, checkpoint);
    for e in entries {
        v.push(e)?;
    }
    v.finish(None)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::super::{encode, seal};
    use super::*;
    use proptest::prelude::*;

    fn key(b: u8) -> AuditKey {
        AuditKey::from_bytes(&[b; 32]).unwrap()
    }

    fn chain(n: u64, k: &AuditKey) -> Vec<AuditEntry> {
        let mut out: Vec<AuditEntry> = Vec::new();
        for i in 1..=n {
            let prev = out.last().map_or(GENESIS, |e| e.hash);
            out.push(seal(&sample(i), i, 1_700_000_000_000 + i as i64, prev, k).unwrap());
        }
        out
    }

    fn records(entries: &[AuditEntry]) -> Vec<AuditRecord> {
        entries.iter().map(|e| AuditRecord { key_seq: Some(e.seq), bytes: encode(e) }).collect()
    }

    fn check(recs: &[AuditRecord], k: &AuditKey, cp: Option<Checkpoint>) -> Result<VerifyReport, Broken> {
        verify(recs.iter().map(decode_record), k, cp)
    }

    fn first_bad(r: Result<VerifyReport, Broken>) -> u64 {
        r.expect_err("should be broken").first_bad_seq
    }

    #[test]
    fn a_clean_chain_verifies() {
        let k = key(1);
        let c = chain(20, &k);
        let r = check(&records(&c), &k, None).unwrap();
        assert_eq!(r.entries, 20);
        assert_eq!(r.head, Some(Checkpoint::of(&c[19])));
        assert_eq!(check(&[], &k, None).unwrap(), VerifyReport { entries: 0, head: None, checkpoint_seq: None });
    }

    #[test]
    fn edits_deletions_reorders_and_rekeying_are_caught_where_they_are() {
        let k = key(1);
        let c = chain(10, &k);

        let mut edited = c.clone();
        edited[4].user = "someone else".into();
        let r = verify(edited.into_iter().map(Ok), &k, None).unwrap_err();
        assert_eq!((r.first_bad_seq, r.reason), (5, BrokenReason::Edited));

        let mut deleted = records(&c);
        deleted.remove(6);
        let r = check(&deleted, &k, None).unwrap_err();
        assert_eq!((r.first_bad_seq, r.reason), (7, BrokenReason::OutOfSequence { found: 8 }));

        // Values swapped between keys 3 and 4.
        let mut swapped = records(&c);
        let (a, b) = (swapped[2].bytes.clone(), swapped[3].bytes.clone());
        swapped[2].bytes = b;
        swapped[3].bytes = a;
        let r = check(&swapped, &k, None).unwrap_err();
        assert_eq!(r.first_bad_seq, 3);
        assert!(matches!(r.reason, BrokenReason::Unreadable(ref s) if s.contains("key 3 holds entry 4")), "{r}");

        // Renumbered after a deletion: the chain link gives it away.
        let mut renumbered: Vec<AuditEntry> = c.clone();
        renumbered.remove(2);
        for (i, e) in renumbered.iter_mut().enumerate().skip(2) {
            e.seq = i as u64 + 1;
        }
        assert_eq!(first_bad(verify(renumbered.into_iter().map(Ok), &k, None)), 3);

        // Rebuilt with another key: every hash is right, no MAC is.
        let r = check(&records(&chain(10, &key(2))), &k, None).unwrap_err();
        assert_eq!((r.first_bad_seq, r.reason), (1, BrokenReason::KeyMismatch));
    }

    #[test]
    fn a_truncated_tail_is_caught_by_a_checkpoint_or_the_head_pointer() {
        let k = key(1);
        let c = chain(10, &k);
        let cp = Checkpoint::of(&c[9]);
        let short = &records(&c)[..7];
        assert_eq!(check(short, &k, None).unwrap().entries, 7, "a shorter chain is still a chain");
        let r = check(short, &k, Some(cp.clone())).unwrap_err();
        assert_eq!((r.first_bad_seq, r.reason), (8, BrokenReason::MissingBeforeCheckpoint { checkpoint_seq: 10 }));
        assert_eq!(check(&records(&c), &k, Some(cp)).unwrap().checkpoint_seq, Some(10));

        let mut v = Verifier::new(&k, None);
        for r in short {
            v.push(decode_record(r)).unwrap();
        }
        assert_eq!(v.finish(Some(10)).unwrap_err().first_bad_seq, 8);
        let mut v = Verifier::new(&k, None);
        for r in &records(&c) {
            v.push(decode_record(r)).unwrap();
        }
        assert_eq!(
            v.finish(Some(9)).unwrap_err(),
            Broken { first_bad_seq: 10, reason: BrokenReason::PastHead { head: 9 } }
        );
    }

    #[test]
    fn a_checkpoint_from_another_chain_is_caught_at_its_seq() {
        let k = key(1);
        let c = chain(10, &k);
        let mut other = chain(10, &k);
        other[5].detail = "x".into();
        let mut cp = Checkpoint::of(&c[5]);
        cp.hash = entry_hash(&other[5]);
        let r = check(&records(&c), &k, Some(cp)).unwrap_err();
        assert_eq!((r.first_bad_seq, r.reason), (6, BrokenReason::CheckpointDiffers));
    }

    #[test]
    fn checkpoints_round_trip_as_json() {
        let c = chain(3, &key(1));
        let cp = Checkpoint::of(&c[2]);
        let text = serde_json::to_string(&cp).unwrap();
        assert!(text.starts_with(r#"{"seq":3,"hash":""#), "{text}");
        assert_eq!(Checkpoint::parse(&text).unwrap(), cp);
        assert!(Checkpoint::parse(&text.replace("\"seq\":3", "\"seq\":0")).is_err());
        assert!(Checkpoint::parse("{}").is_err());
    }

    #[test]
    fn undecodable_records_do_not_echo_their_content() {
        let k = key(1);
        let c = chain(2, &k);
        let mut recs = records(&c);
        let text = String::from_utf8(recs[1].bytes.clone())
            .unwrap()
            .replace("\"result_count\":2", "\"result_count\":\"7AB123\"");
        recs[1].bytes = text.into_bytes();
        let r = check(&recs, &k, None).unwrap_err();
        assert_eq!(r.first_bad_seq, 2);
        assert!(!r.to_string().contains("7AB123"), "{r}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Any one changed byte in any stored entry is reported at that entry.
        #[test]
        fn any_changed_byte_is_found_at_its_entry(n in 2u64..12, pick in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(), to in any::<u8>()) {
            let k = key(9);
            let mut recs = records(&chain(n, &k));
            let i = pick.index(recs.len());
            let j = at.index(recs[i].bytes.len());
            prop_assume!(recs[i].bytes[j] != to);
            recs[i].bytes[j] = to;
            prop_assert_eq!(first_bad(check(&recs, &k, None)), i as u64 + 1);
        }

        /// Removing or swapping entries is reported at the first position that changed.
        #[test]
        fn removals_and_swaps_are_found_at_the_first_changed_position(n in 3u64..15, a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>(), remove in any::<bool>()) {
            let k = key(3);
            let mut recs = records(&chain(n, &k));
            let (a, b) = (a.index(recs.len()), b.index(recs.len()));
            if remove {
                prop_assume!(a + 1 < recs.len());
                recs.remove(a);
            } else {
                prop_assume!(a != b);
                let (x, y) = (recs[a].bytes.clone(), recs[b].bytes.clone());
                recs[a].bytes = y;
                recs[b].bytes = x;
            }
            let expected = if remove { a } else { a.min(b) } as u64 + 1;
            prop_assert_eq!(first_bad(check(&recs, &k, None)), expected);
        }
    }
}
