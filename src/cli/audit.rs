//! `polewatch audit …` (filled in by the audit log work).

#[derive(Debug, clap::Args)]
pub struct AuditArgs {}

pub fn run(_cfg: &crate::config::Config, _args: AuditArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
