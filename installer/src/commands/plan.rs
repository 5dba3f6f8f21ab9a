//! `airgap-install plan`: what installing a bundle would change against
//! what is installed.

use std::path::PathBuf;

use airgap_cli::args::{BundleArgs, OutputArgs};
use airgap_format::{Limits, SignedBundle};
use airgap_install::install::upgrade::{plan, PlanOptions};
use airgap_install::profile::{assess_site, load_site};
use airgap_install::site::SiteFile;
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
        let state = state::State::open(&ctx.state_dir)?;
        // What the new version asks of the site file; when it asks for
        // changes, only the installer's own fields are read (to ask the
        // registry), and nothing is rendered.
        let site_changes = args
            .site
            .as_deref()
            .map(|p| assess_site(&state, &bundle, p))
            .transpose()?
            .flatten();
        let site = match (&args.site, &site_changes) {
            (Some(p), Some(a)) if !a.problems.is_empty() => Some(SiteFile::load(p, None)?),
            (Some(p), _) => Some(load_site(&bundle, p)?),
            (None, _) => None,
        };
        let registry = site
            .as_ref()
            .map(|site| site_registry(site, &args.upload.login))
            .transpose()?;
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
                site_changes,
            },
        )?;
        show(&plan, json, |p| p.to_text())
    })
}
