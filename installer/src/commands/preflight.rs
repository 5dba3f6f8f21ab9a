//! `airgap-install preflight`: everything an install will need, checked
//! before anything changes; every problem reported at once.

use std::path::PathBuf;

use airgap_format::display::count;
use airgap_format::Limits;
use airgap_install::{install, state, trust};
use anyhow::Result;

use super::{json_failure, registry_credentials, Context, UploadArgs};

/// The arguments of `preflight`.
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
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the checks and prints the report; fails when any check did.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let Args {
        file,
        site,
        trust: keys,
        upload,
        apply,
        allow_downgrade,
        cluster_uid,
        base,
        json,
    } = args;
    // A report with problems is itself the JSON answer (`"ok":
    // false`); only a failure before it is reported as such.
    let mut failed = 0;
    json_failure(json, Some(file.as_path()), &[], || {
        let trusted = trust::load_trusted(&keys, &ctx.config_dir)?;
        let site = airgap_install::site::SiteFile::load(&site)?;
        let access = install::access::RegistryAccess::for_site(
            &site,
            registry_credentials(
                &site.site.registry.host,
                upload.username,
                upload.password_stdin,
            )?,
        );
        let node = airgap_install::license::node_ids(cluster_uid.as_deref()).ok();
        let state = state::State::open_read_only(&ctx.state_dir);
        let bundle = airgap_format::SignedBundle::open(&file, &trusted, Limits::default())?;
        let report = airgap_install::preflight::preflight(
            &state,
            &airgap_install::preflight::PreflightOptions {
                bundle: &bundle,
                site: &site,
                trusted: &trusted,
                registry: &access,
                apply,
                allow_downgrade,
                node: node.as_ref(),
                base: base.as_deref(),
                on_existing_tag: upload.on_existing_tag,
                jobs: upload.jobs as usize,
                skip_version: false,
            },
        )?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print!("{}", report.to_table());
        }
        failed = report.failures().len();
        Ok(())
    })?;
    if failed > 0 {
        anyhow::bail!(
            "preflight found {}; nothing was changed",
            count(failed as u64, "problem")
        );
    }
    Ok(())
}
