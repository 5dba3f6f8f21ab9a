//! `airgap-install install`: verify, activate the licence, push, render,
//! apply, check health, record.

use std::path::PathBuf;

use airgap_format::display::escape as e;
use airgap_install::{install, state, trust};
use anyhow::Result;

use super::{json_failure, registry_credentials, Context, UploadArgs};

/// The arguments of `install`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle.
    file: PathBuf,
    /// The site file (site.yaml).
    #[arg(long)]
    site: PathBuf,
    /// A trusted public key (minisign format); repeatable.
    #[arg(long)]
    trust: Vec<PathBuf>,
    #[command(flatten)]
    upload: UploadArgs,
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
    /// Print the result as JSON and draw no progress bars.
    #[arg(long)]
    json: bool,
}

/// Installs or upgrades, then prints what was done.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let Args {
        file,
        site,
        trust: keys,
        upload,
        apply,
        allow_downgrade,
        skip_health,
        health_timeout,
        cluster_uid,
        base,
        skip_preflight,
        json,
    } = args;
    json_failure(json, Some(file.as_path()), &[], || {
        let trusted = trust::load_trusted(&keys, &ctx.config_dir)?;
        let site = airgap_install::site::SiteFile::load(&site)?;
        let credentials = registry_credentials(
            &site.site.registry.host,
            upload.username,
            upload.password_stdin,
        )?;
        // A licence in the bundle needs this node's identity; a node
        // without a machine id can still install a bundle without one.
        let node = airgap_install::license::node_ids(cluster_uid.as_deref());
        if let Err(e) = &node {
            tracing::debug!("no node identity: {e:#}");
        }
        let state = state::State::open(&ctx.state_dir)?;
        let options = install::InstallOptions {
            bundle: &file,
            site: &site,
            trusted: &trusted,
            registry: install::access::RegistryAccess::for_site(&site, credentials),
            jobs: upload.jobs as usize,
            apply,
            allow_downgrade,
            skip_health,
            health_timeout,
            node: node.ok(),
            progress: !json,
            base: base.as_deref(),
            on_existing_tag: upload.on_existing_tag,
            skip_preflight,
        };
        let report = install::install(&state, &options)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            println!(
                "{} {} {} ({}): {}",
                report.kind,
                e(&report.name),
                e(&report.version),
                report.bundle_digest,
                match &report.from_version {
                    Some(v) => format!("was {}", e(v)),
                    None => "new".into(),
                }
            );
        }
        Ok(())
    })
}
