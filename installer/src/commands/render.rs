//! `airgap-install render`: the site's configuration rendered from the
//! bundle's templates (values per release, install-plan.sh, plan.json).

use std::path::PathBuf;

use airgap_cli::args::{BundleArgs, OutputArgs};
use airgap_format::{Limits, SignedBundle};
use airgap_install::profile::load_site;
use airgap_install::relocation::RelocationMap;
use airgap_install::render::{render_bundle, RenderOptions};
use anyhow::Result;

use super::{show, with_trusted_keys, Context};

/// The arguments of `render`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  airgap-install render /media/usb/demo-1.0.0.bundle --site site.yaml --relocation relocation-map.json --out rendered/"
)]
pub struct Args {
    /// The site file (site.yaml).
    #[arg(long)]
    site: PathBuf,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// The relocation map written by push (charts then install from the internal registry).
    #[arg(long)]
    relocation: Option<PathBuf>,
    #[command(flatten)]
    bundle: BundleArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Renders into the output folder and prints the plan.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let json = args.output.json;
    with_trusted_keys(&args.bundle, json, ctx, |trusted| {
        let bundle = SignedBundle::open(&args.bundle.file, trusted, Limits::default())?;
        let site = load_site(&bundle, &args.site)?;
        let license = airgap_install::license::active_text(&ctx.state_dir)?;
        let map = args
            .relocation
            .as_deref()
            .map(|p| RelocationMap::read(p).map(|m| (m, p)))
            .transpose()?;
        let options = RenderOptions {
            site: &site,
            out: &args.out,
            relocation: map.as_ref().map(|(m, p)| (m, *p)),
            license: license.as_deref(),
        };
        let plan = render_bundle(&bundle, &options)?;
        show(&plan, json, |p| p.to_text(&args.out))
    })
}
