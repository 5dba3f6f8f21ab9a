//! `airgap-install rollback`: an earlier installed version's recorded
//! configuration, applied again with the images still in the registry.

use std::path::PathBuf;

use airgap_cli::args::{LoginArgs, OutputArgs};
use airgap_format::display::escape as e;
use airgap_install::rollback::{rollback, RollbackOptions};
use airgap_install::site::SiteFile;
use airgap_install::state;
use anyhow::Result;

use super::{json_failure, show, site_registry, Context};

/// The arguments of `rollback`.
#[derive(clap::Args)]
pub struct Args {
    /// The installed bundle's name (may be left out when only one is installed).
    name: Option<String>,
    /// The version to go back to (default: the one installed before the current).
    #[arg(long, value_name = "VERSION")]
    to: Option<String>,
    /// The site file (the registry's TLS settings, the health checks).
    #[arg(long)]
    site: PathBuf,
    #[command(flatten)]
    login: LoginArgs,
    /// Do not run the health checks after applying.
    #[arg(long)]
    skip_health: bool,
    /// Seconds each health check may take.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    health_timeout: u64,
    #[command(flatten)]
    output: OutputArgs,
}

/// Rolls back and prints what was done.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let json = args.output.json;
    json_failure(json, None, &[], || {
        let site = SiteFile::load(&args.site, None)?;
        let registry = site_registry(&site, &args.login)?;
        let state = state::State::open(&ctx.state_dir)?;
        let report = rollback(
            &state,
            &RollbackOptions {
                name: args.name.as_deref(),
                to: args.to.as_deref(),
                site: &site,
                registry,
                skip_health: args.skip_health,
                health_timeout: args.health_timeout,
                progress: !json,
            },
        )?;
        show(&report, json, |r| {
            format!(
                "rollback {} {} -> {} ({})\n",
                e(&r.name),
                e(r.from_version.as_deref().unwrap_or("")),
                e(&r.version),
                r.bundle_digest
            )
        })
    })
}
