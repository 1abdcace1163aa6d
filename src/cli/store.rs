//! `polewatch store …`: the encryption key and the layout of the store, offline (the daemon must be stopped).

use crate::access::audit::AuditLog;
use crate::access::{Action, AuditSink, NewAuditEntry, Outcome};
use crate::store::crypt::{Key, Keyring};
use crate::store::{OnCorrupt, Store, StoreOptions};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum StoreCmd {
    /// Write a new random 256-bit store key (64 hex digits, mode 0600); never overwrites a file.
    #[command(name = "gen-key")]
    GenKey { file: PathBuf },
    /// Re-encrypt every read, crop, frame and index entry under a new key (or encrypt a store that was in
    /// clear text). Resumable: run it again after an interruption. Audited at start and end. Afterwards,
    /// point store.key_file (or the systemd credential) at the new key and set `encryption = true`.
    #[command(name = "rotate-key")]
    RotateKey {
        /// The new key (32 bytes raw or 64 hex digits, mode 0600).
        #[arg(long, value_name = "FILE")]
        new_key: PathBuf,
        /// Reads re-encrypted per transaction.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Stop after this many batches (to be resumed later; for maintenance windows and tests).
        #[arg(long, hide = true)]
        max_batches: Option<u32>,
    },
    /// Convert a store written by polewatch before the move to redb (sled's `conf` and `db` files) into
    /// the current layout. Every entry is copied and counted again; the sled store is kept beside it as
    /// `<store>.sled-<time>`. Audited in the store's own log once it is converted.
    #[command(name = "migrate-sled")]
    MigrateSled,
}

pub fn run(cfg: &crate::config::Config, args: StoreArgs) -> anyhow::Result<()> {
    match args.command {
        StoreCmd::GenKey { file } => gen_key(&file),
        StoreCmd::RotateKey { new_key, batch, max_batches } => rotate(cfg, &new_key, batch, max_batches),
        StoreCmd::MigrateSled => migrate(cfg),
    }
}

fn migrate(cfg: &crate::config::Config) -> anyhow::Result<()> {
    let path = &cfg.store.path;
    let m = crate::store::migrate::migrate_sled(path)
        .with_context(|| format!("cannot migrate the sled store at {}", path.display()))?;
    let per_tree: Vec<String> = m.trees.iter().filter(|(_, n)| *n > 0).map(|(t, n)| format!("{t} {n}")).collect();
    let detail = format!(
        "store converted from sled to redb: {} entries copied and counted again ({}); the sled store is kept at {}",
        m.entries(),
        per_tree.join(", "),
        m.sled_kept_at.display()
    );
    // The chain was copied with everything else: the conversion is its next entry.
    let mut opts = StoreOptions::from_config(&cfg.store);
    opts.create = false;
    opts.disk = None;
    let (store, _) =
        Store::open(&opts).with_context(|| format!("cannot open the converted store at {}", path.display()))?;
    let store = Arc::new(store);
    let audit =
        AuditLog::open_verified(store.clone(), &cfg.access.audit_key_file).context("cannot open the audit log")?;
    audit.record(NewAuditEntry {
        user: super::audit::operator(),
        source: "cli".into(),
        action: Some(Action::StoreMigrated),
        object: "store".into(),
        outcome: Some(Outcome::Ok),
        detail: detail.clone(),
        ..NewAuditEntry::default()
    })?;
    drop(audit);
    match Arc::try_unwrap(store) {
        Ok(s) => s.close()?,
        Err(s) => s.flush()?,
    }
    println!("{detail}");
    Ok(())
}

pub fn gen_key(file: &std::path::Path) -> anyhow::Result<()> {
    Key::generate_file(file)?;
    println!("wrote a new store key to {} (mode 0600)", file.display());
    Ok(())
}

fn rotate(
    cfg: &crate::config::Config,
    new_key: &std::path::Path,
    batch: usize,
    max_batches: Option<u32>,
) -> anyhow::Result<()> {
    let new = Key::load_file(new_key)?;
    let mut old = Vec::new();
    // The configured key, when encryption is on; a store in clear text needs none.
    let mut c = cfg.store.clone();
    c.encryption = true;
    match Key::from_config(&c) {
        Ok(Some(k)) if k.id() != new.id() => old.push(k),
        Ok(_) => {}
        Err(crate::store::crypt::KeyError::Missing) if !cfg.store.encryption => {}
        Err(e) => return Err(e).context("cannot load the current store key"),
    }
    let (from, to) = (old.first().map(|k| k.id_hex()).unwrap_or_else(|| "none (clear text)".into()), new.id_hex());
    let mut opts = StoreOptions::from_config(&cfg.store);
    opts.create = false;
    opts.on_corrupt = OnCorrupt::Refuse;
    opts.disk = None;
    opts.rotating = true;
    opts.keys = Some(Arc::new(Keyring { current: new, old, accept_plain: true }));
    let (store, _) =
        Store::open(&opts).with_context(|| format!("cannot open the store at {}", cfg.store.path.display()))?;
    let store = Arc::new(store);
    let audit =
        AuditLog::open_verified(store.clone(), &cfg.access.audit_key_file).context("cannot open the audit log")?;
    let entry = |outcome, detail: String| NewAuditEntry {
        user: super::audit::operator(),
        source: "cli".into(),
        action: Some(Action::StoreKeyRotated),
        object: "store".into(),
        outcome: Some(outcome),
        detail,
        ..NewAuditEntry::default()
    };
    audit
        .record(entry(Outcome::Ok, format!("key rotation from key id {from} to {to} started (or resumed)")))
        .context("the rotation was not recorded in the audit log; nothing was changed")?;
    let rep = store.rotate_keys(batch, max_batches);
    let rep = match rep {
        Ok(r) => r,
        Err(e) => {
            let _ = audit.record(entry(
                Outcome::Denied,
                format!("key rotation to key id {to} stopped by an error: {e}; run it again to resume"),
            ));
            return Err(e).context("key rotation stopped; run the command again to resume");
        }
    };
    let counts = format!(
        "{} reads and {} images re-encrypted, {} stale index entries removed, {} batch(es)",
        rep.reads, rep.images, rep.index_removed, rep.batches
    );
    if rep.finished {
        audit.record(entry(Outcome::Ok, format!("key rotation from key id {from} to {to} completed: {counts}")))?;
        println!(
            "store re-encrypted under key id {to}: {counts}. Point store.key_file (or the credential) at {} now.",
            new_key.display()
        );
    } else {
        audit.record(entry(
            Outcome::Ok,
            format!("key rotation to key id {to} paused: {counts}; run it again to resume"),
        ))?;
        println!(
            "key rotation paused after {counts}; run the command again to finish (the daemon refuses to start until then)"
        );
    }
    drop(audit);
    match Arc::try_unwrap(store) {
        Ok(s) => s.close()?,
        Err(s) => s.flush()?,
    }
    Ok(())
}
