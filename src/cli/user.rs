//! `polewatch user …` (filled in by the users work).

#[derive(Debug, clap::Args)]
pub struct UserArgs {}

pub fn run(_cfg: &crate::config::Config, _args: UserArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
