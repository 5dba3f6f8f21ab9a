//! `airgap-install health`: the health checks the product's profile names,
//! as `render` filled them in for the site (`plan.json`): those of a
//! rendered folder (`--plan`), or of every installed bundle (`--site`).

use std::path::PathBuf;

use airgap_cli::args::OutputArgs;
use airgap_install::health::{self, Target};
use airgap_install::site::SiteFile;
use airgap_install::state::State;
use anyhow::{bail, Result};

use super::{show, Context};

/// The arguments of `health`: `--site`, `--plan`, or both.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("checks").required(true).multiple(true).args(["site", "plan"])))]
pub struct Args {
    /// The site file (site.yaml): its internalCa is trusted, and without --plan the checks of every installed bundle's configuration are run.
    #[arg(long)]
    site: Option<PathBuf>,
    /// A folder render wrote: the checks its plan.json lists, trusting its ca.pem unless --site is given.
    #[arg(long)]
    plan: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
    /// Seconds each check may take (connection, TLS, response and body).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout: u64,
}

/// Prints the table or JSON, then fails when any check did.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let site = args
        .site
        .as_deref()
        .map(|p| SiteFile::load(p, None))
        .transpose()?;
    let ca = match (&site, &args.plan) {
        (Some(site), _) => site.internal_ca(),
        (None, Some(dir)) => Some(dir.join("ca.pem")).filter(|p| p.is_file()),
        (None, None) => None,
    };
    // The trust first: an unreadable CA is the error, whatever is checked.
    let checker = health::Checker::new(ca.as_deref(), std::time::Duration::from_secs(args.timeout))
        .map_err(|e| match &args.site {
            Some(p) => anyhow::anyhow!("{}: {e:#}", p.display()),
            None => e,
        })?;
    let targets = match &args.plan {
        Some(dir) => health::planned_targets(dir)?,
        None => installed_targets(ctx)?,
    };
    let report = health::Report::new(checker.check_all(&targets));
    show(&report, args.output.json, |r| r.to_table())?;
    let failed = report.checks.len() - report.passed();
    if failed > 0 {
        bail!("{failed} of {} health checks failed", report.checks.len());
    }
    Ok(())
}

/// The checks of every bundle installed (and not uninstalled), from the
/// configuration rendered for its current version.
fn installed_targets(ctx: &Context) -> Result<Vec<Target>> {
    let state = State::open_read_only(&ctx.state_dir);
    let mut targets = Vec::new();
    let records = state.install_records()?;
    let current: Vec<_> = records
        .iter()
        .filter(|r| r.uninstalled_at.is_none())
        .collect();
    if current.is_empty() {
        bail!(
            "nothing is installed in {}, so there are no health checks to run: give --plan OUT (the folder render wrote) to check a rendered configuration",
            ctx.state_dir.display()
        );
    }
    for r in current {
        targets.extend(health::planned_targets(std::path::Path::new(
            &r.config_dir,
        ))?);
    }
    Ok(targets)
}
