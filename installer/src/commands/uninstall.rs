//! `airgap-install uninstall`: an installed bundle's Helm releases removed
//! (reverse install order) and its record marked.

use std::path::PathBuf;

use airgap_cli::args::{LoginArgs, OutputArgs};
use airgap_format::display::escape as e;
use airgap_install::site::SiteFile;
use airgap_install::state;
use airgap_install::uninstall::{uninstall, UninstallOptions};
use anyhow::Result;

use super::{json_failure, show, site_registry, Context};

/// The arguments of `uninstall`.
#[derive(clap::Args)]
pub struct Args {
    /// The installed bundle's name.
    name: String,
    /// Also delete its images and charts from the registry, by digest, where the registry allows deletes.
    #[arg(long, requires = "site")]
    purge_images: bool,
    /// The site file (the registry's address and TLS settings, for --purge-images).
    #[arg(long)]
    site: Option<PathBuf>,
    #[command(flatten)]
    login: LoginArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Uninstalls and prints what was done and what was not deleted.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let json = args.output.json;
    json_failure(json, None, &[], || {
        let registry = match &args.site {
            Some(path) => Some(site_registry(&SiteFile::load(path, None)?, &args.login)?),
            None => None,
        };
        let state = state::State::open(&ctx.state_dir)?;
        let report = uninstall(
            &state,
            &UninstallOptions {
                name: &args.name,
                purge_images: args.purge_images,
                registry,
                progress: !json,
            },
        )?;
        show(&report, json, |r| {
            let mut text = format!("uninstalled {} {}\n", e(&r.name), e(&r.version));
            for n in &r.not_deleted {
                text += &format!("  not deleted: {}\n", e(n));
            }
            text
        })
    })
}
