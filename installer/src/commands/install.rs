//! `airgap-install install`: verify, activate the licence, push, render,
//! apply, check health, record.

use std::path::PathBuf;

use airgap_cli::args::OutputArgs;
use airgap_format::display::escape as e;
use airgap_install::{install, state};
use anyhow::Result;

use super::{show, with_trusted_keys, Context, SiteBundleArgs};

/// The arguments of `install`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  airgap-install install /media/usb/demo-1.1.0.bundle --site /etc/airgap-install/site.yaml --apply\n\nAn interrupted run is resumed by running the same command again."
)]
pub struct Args {
    #[command(flatten)]
    target: SiteBundleArgs,
    /// Run install-plan.sh through helm (backups first when upgrading), then the health checks.
    #[arg(long)]
    apply: bool,
    /// Install a bundle that is not newer than the installed one (written to the audit log).
    #[arg(long)]
    allow_downgrade: bool,
    /// Do not run the health checks after --apply.
    #[arg(long)]
    skip_health: bool,
    /// Seconds each health check may take.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    health_timeout: u64,
    /// The Kubernetes cluster's identity (kube-system namespace UID), when the licence is bound to it.
    #[arg(long)]
    cluster_uid: Option<String>,
    /// For a delta bundle: the base bundle it was built against, for the
    /// blobs the registry does not already have.
    #[arg(long, value_name = "BASE_BUNDLE")]
    base: Option<PathBuf>,
    /// Do not run the preflight checks first (recorded in the audit log).
    #[arg(long)]
    skip_preflight: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// Installs or upgrades, then prints what was done.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let json = args.output.json;
    with_trusted_keys(&args.target.bundle, json, ctx, |trusted| {
        // The install run opens the bundle again itself, journaled.
        let (_, site, registry) = args.target.open_site(trusted)?;
        // A licence in the bundle needs this node's identity; a node
        // without a machine id can still install a bundle without one.
        let node = airgap_install::license::node_ids(args.cluster_uid.as_deref());
        if let Err(e) = &node {
            tracing::debug!("no node identity: {e:#}");
        }
        let state = state::State::open(&ctx.state_dir)?;
        let options = install::InstallOptions {
            bundle: &args.target.bundle.file,
            site: &site,
            trusted,
            registry,
            jobs: args.target.upload.jobs.get(),
            apply: args.apply,
            allow_downgrade: args.allow_downgrade,
            skip_health: args.skip_health,
            health_timeout: args.health_timeout,
            node: node.ok(),
            progress: !json,
            base: args.base.as_deref(),
            on_existing_tag: args.target.upload.on_existing_tag,
            skip_preflight: args.skip_preflight,
        };
        let report = install::install(&state, &options)?;
        show(&report, json, |r| {
            format!(
                "{} {} {} ({}): {}\n",
                r.kind,
                e(&r.name),
                e(&r.version),
                r.bundle_digest,
                match &r.from_version {
                    Some(v) => format!("was {}", e(v)),
                    None => "new".into(),
                }
            )
        })
    })
}
