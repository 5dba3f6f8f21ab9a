//! `airgap-install plan`: what installing a bundle would change against
//! what is installed.

use std::path::PathBuf;

use airgap_cli::args::{BundleArgs, OutputArgs};
use airgap_format::{Limits, SignedBundle};
use airgap_install::install::upgrade::{plan, PlanOptions};
use airgap_install::profile::load_site;
use airgap_install::state;
use anyhow::Result;

use super::{show, site_registry, with_trusted_keys, Context, UploadArgs};

/// The arguments of `plan`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    bundle: BundleArgs,
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
    #[command(flatten)]
    output: OutputArgs,
}

/// Computes the upgrade plan and prints it.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let json = args.output.json;
    with_trusted_keys(&args.bundle, json, ctx, |trusted| {
        let bundle = SignedBundle::open(&args.bundle.file, trusted, Limits::default())?;
        let site = args
            .site
            .as_deref()
            .map(|p| load_site(&bundle, p))
            .transpose()?;
        let registry = site
            .as_ref()
            .map(|site| site_registry(site, &args.upload.login))
            .transpose()?;
        let state = state::State::open(&ctx.state_dir)?;
        let plan = plan(
            &state,
            &PlanOptions {
                bundle: &bundle,
                trusted,
                site: site.as_ref(),
                registry,
                base: args.base.as_deref(),
                jobs: args.upload.jobs.get(),
                on_existing_tag: args.upload.on_existing_tag,
                full_diff: args.diff,
            },
        )?;
        show(&plan, json, |p| p.to_text())
    })
}
