//! `airgap-install plan`: what installing a bundle would change against
//! what is installed.

use std::path::PathBuf;

use airgap_install::{install, state, trust};
use anyhow::Result;

use super::{json_failure, registry_credentials, Context, UploadArgs};

/// The arguments of `plan`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle.
    file: PathBuf,
    /// A trusted public key (minisign format); repeatable.
    #[arg(long)]
    trust: Vec<PathBuf>,
    /// The site file: ask its registry what the push would send, and
    /// compare the rendered configuration.
    #[arg(long)]
    site: Option<PathBuf>,
    #[command(flatten)]
    upload: UploadArgs,
    /// For a delta bundle: the base bundle it was built against.
    #[arg(long, value_name = "BASE_BUNDLE")]
    base: Option<PathBuf>,
    /// Show every rendered file in full (a first install otherwise
    /// lists its files with their line counts).
    #[arg(long)]
    diff: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Computes the upgrade plan and prints it.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let Args {
        file,
        trust: keys,
        site,
        upload,
        base,
        diff,
        json,
    } = args;
    json_failure(json, Some(file.as_path()), &[], || {
        let trusted = trust::load_trusted(&keys, &ctx.config_dir)?;
        let site = site
            .map(|s| airgap_install::site::SiteFile::load(&s))
            .transpose()?;
        let registry = match &site {
            Some(site) => Some(install::access::RegistryAccess::for_site(
                site,
                registry_credentials(
                    &site.site.registry.host,
                    upload.username,
                    upload.password_stdin,
                )?,
            )),
            None => None,
        };
        let state = state::State::open(&ctx.state_dir)?;
        let plan = install::upgrade::plan(
            &state,
            &install::upgrade::PlanOptions {
                bundle: &file,
                trusted: &trusted,
                site: site.as_ref(),
                registry,
                base: base.as_deref(),
                jobs: upload.jobs as usize,
                on_existing_tag: upload.on_existing_tag,
                full_diff: diff,
            },
        )?;
        if json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            print!("{}", plan.to_text());
        }
        Ok(())
    })
}
