//! `airgap-install health`: the control plane and every workspace asked
//! for GET <url>/health.

use std::path::PathBuf;

use airgap_cli::args::OutputArgs;
use airgap_install::health;
use anyhow::Result;

use super::{show, Context};

/// The arguments of `health`.
#[derive(clap::Args)]
pub struct Args {
    /// The site file (site.yaml).
    #[arg(long)]
    site: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
    /// Seconds each check may take (connection, TLS, response and body).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout: u64,
}

/// Prints the table or JSON, then fails when any check did.
pub fn run(args: Args, _ctx: &Context) -> Result<()> {
    let site = airgap_install::site::SiteFile::load(&args.site)?;
    let report = health::check_site(&site, std::time::Duration::from_secs(args.timeout))?;
    show(&report, args.output.json, |r| r.to_table())?;
    let failed = report.checks.len() - report.passed();
    if failed > 0 {
        anyhow::bail!("{failed} of {} health checks failed", report.checks.len());
    }
    Ok(())
}
