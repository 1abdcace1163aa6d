//! `polewatch export …`: check an export bundle against the device's public key, and print that key.

use crate::access::export::{DeviceKey, verify_bundle};
use anyhow::Context;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(subcommand)]
    pub command: ExportCmd,
}

#[derive(Debug, clap::Subcommand)]
pub enum ExportCmd {
    /// Check a bundle: the manifest's signature against KEY, every file's SHA-256, no file missing or
    /// extra, and SHA256SUMS. Exit non-zero naming the first problem.
    Verify {
        /// The bundle's folder (polewatch-export-<request>-<time>).
        dir: PathBuf,
        /// The device's public key: 64 hex digits, or a file holding them (from `polewatch export key` on
        /// the box, obtained apart from the bundle). The key the manifest names is never trusted.
        #[arg(long, value_name = "PUBKEY")]
        key: String,
    },
    /// Print the device's export public key (hex), from access.device_key_file; never creates a key.
    Key,
}

/// The key as given: hex digits, or else a file holding them.
fn key_arg(key: &str) -> anyhow::Result<String> {
    let t = key.trim();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(t.to_string());
    }
    let text = std::fs::read_to_string(key)
        .with_context(|| format!("--key {key}: neither 64 hex digits nor a readable file"))?;
    Ok(text.trim().to_string())
}

/// `verify` needs no configuration; `key` reads access.device_key_file from it.
pub fn run(config: Option<&crate::config::Config>, args: ExportArgs) -> anyhow::Result<()> {
    match args.command {
        ExportCmd::Verify { dir, key } => {
            let key = key_arg(&key)?;
            let m = verify_bundle(&dir, Some(&key)).with_context(|| format!("{}", dir.display()))?;
            println!(
                "bundle OK: {} ({} reads, {} files, request {}, case {}, signed by {key})",
                dir.display(),
                m.reads,
                m.files.len(),
                m.request_id,
                m.case_number
            );
            Ok(())
        }
        ExportCmd::Key => {
            let c = config.context("a configuration is needed for access.device_key_file")?;
            let k = DeviceKey::load(&c.access.device_key_file)?;
            println!("{}", k.public_hex());
            Ok(())
        }
    }
}
