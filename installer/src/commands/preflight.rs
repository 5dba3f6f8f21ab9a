//! `airgap-install preflight`: everything an install will need, checked
//! before anything changes; every problem reported at once.

use std::path::PathBuf;

use airgap_cli::args::OutputArgs;
use airgap_format::display::count;
use airgap_install::preflight::{preflight, PreflightOptions};
use airgap_install::state;
use anyhow::Result;

use super::{show, with_trusted_keys, Context, SiteBundleArgs};

/// The arguments of `preflight`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    target: SiteBundleArgs,
    /// Also check what `install --apply` needs: helm, kubectl, the cluster.
    #[arg(long)]
    apply: bool,
    /// A downgrade would be accepted.
    #[arg(long)]
    allow_downgrade: bool,
    /// The Kubernetes cluster's identity, when the licence is bound to it.
    #[arg(long)]
    cluster_uid: Option<String>,
    /// For a delta bundle: the base bundle it was built against.
    #[arg(long, value_name = "BASE_BUNDLE")]
    base: Option<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

/// Runs the checks and prints the report; fails when any check did.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let json = args.output.json;
    // A report with problems is itself the JSON answer (`"ok":
    // false`); only a failure before it is reported as such.
    let mut failed = 0;
    with_trusted_keys(&args.target.bundle, json, ctx, |trusted| {
        let (bundle, site, access) = args.target.open_site(trusted)?;
        let node = airgap_install::license::node_ids(args.cluster_uid.as_deref()).ok();
        let state = state::State::open_read_only(&ctx.state_dir);
        let report = preflight(
            &state,
            &PreflightOptions {
                bundle: &bundle,
                site: &site,
                trusted,
                registry: &access,
                apply: args.apply,
                allow_downgrade: args.allow_downgrade,
                node: node.as_ref(),
                base: args.base.as_deref(),
                on_existing_tag: args.target.upload.on_existing_tag,
                jobs: args.target.upload.jobs.get(),
                skip_version: false,
            },
        )?;
        failed = report.failures().len();
        show(&report, json, |r| r.to_table())
    })?;
    if failed > 0 {
        anyhow::bail!(
            "preflight found {}; nothing was changed",
            count(failed as u64, "problem")
        );
    }
    Ok(())
}
