//! `airgap-install uninstall`: an installed bundle's Helm releases removed
//! (reverse install order) and its record marked.

use std::path::PathBuf;

use airgap_format::display::escape as e;
use airgap_install::{install, state};
use anyhow::Result;

use super::{json_failure, registry_credentials, Context, LoginArgs};

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
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Uninstalls and prints what was done and what was not deleted.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let Args {
        name,
        purge_images,
        site,
        login,
        json,
    } = args;
    json_failure(json, None, &[], || {
        let registry = match &site {
            Some(path) => {
                let site = airgap_install::site::SiteFile::load(path)?;
                let creds = registry_credentials(
                    &site.site.registry.host,
                    login.username,
                    login.password_stdin,
                )?;
                Some(install::access::RegistryAccess::for_site(&site, creds))
            }
            None => None,
        };
        let state = state::State::open(&ctx.state_dir)?;
        let report = airgap_install::uninstall::uninstall(
            &state,
            &airgap_install::uninstall::UninstallOptions {
                name: &name,
                purge_images,
                registry,
                progress: !json,
            },
        );
        let report = report?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!("uninstalled {} {}", e(&report.name), e(&report.version));
            for n in &report.not_deleted {
                println!("  not deleted: {}", e(n));
            }
        }
        Ok(())
    })
}
