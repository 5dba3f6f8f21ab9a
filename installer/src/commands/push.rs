//! `airgap-install push`: the bundle's images put into the site's registry
//! (signature checked first), and the relocation map written.

use std::path::PathBuf;

use airgap_cli::args::{BundleArgs, OutputArgs};
use airgap_cli::progress::{error_line, UsageError};
use airgap_format::display::escape as e;
use airgap_format::Limits;
use airgap_install::push::{push, PushOptions};
use airgap_install::target::Target;
use airgap_install::{state, trust};
use airgap_registry::client::Fixes;
use airgap_registry::Transport;
use anyhow::Result;

use super::{json_failure, registry_credentials, show, user_agent, Context, UploadArgs};

/// The arguments of `push`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  airgap-install push /media/usb/demo-1.0.0.bundle --registry registry.internal.example:5000/platform \\\n      --ca-file internal-ca.pem --relocation-map relocation-map.json"
)]
pub struct Args {
    #[command(flatten)]
    bundle: BundleArgs,
    /// Target registry: HOST[:PORT][/PREFIX].
    #[arg(long)]
    registry: String,
    /// Extra CA certificates (PEM) to trust for the registry.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    /// Use plain HTTP (no TLS) for this registry.
    #[arg(long)]
    plain_http: bool,
    #[command(flatten)]
    upload: UploadArgs,
    /// For a delta bundle: the base bundle it was built against, for the
    /// blobs the registry does not already have.
    #[arg(long, value_name = "BASE_BUNDLE")]
    base: Option<PathBuf>,
    /// Where to write the relocation map (JSON) that later steps read.
    #[arg(long, default_value = "relocation-map.json")]
    relocation_map: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

/// Pushes, writes the relocation map, prints where each image went.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let json = args.output.json;
    let file = &args.bundle.file;
    json_failure(json, Some(file), &[], || {
        // The address is checked before anything else.
        let target =
            Target::parse(&args.registry).map_err(|err| UsageError(error_line(err.as_ref())))?;
        let trusted = trust::load_trusted(&args.bundle.trust, &ctx.config_dir)?;
        // Before the push: the map is written after it.
        airgap_format::atomic_file::check_output_folder(&args.relocation_map)
            .map_err(|e| anyhow::anyhow!("--relocation-map: {e}"))?;
        let credentials = registry_credentials(&target.host, &args.upload.login)?;
        // Blobs a delta leaves to its base may be in the registry under
        // the repositories an installed release used.
        let records = state::State::open_read_only(&ctx.state_dir).install_records()?;
        let options = PushOptions {
            known: airgap_install::survey::known_images(&records, &target),
            target,
            transport: Transport {
                ca_files: args.ca_file.iter().cloned().collect(),
                plain_http: args.plain_http,
                user_agent: Some(user_agent()),
                fixes: Fixes {
                    use_https: "drop --plain-http".into(),
                    use_plain_http:
                        "pass --plain-http if the registry is meant to speak plain HTTP".into(),
                    trust_ca: "pass the CA certificate (PEM) that issued it with --ca-file".into(),
                },
            },
            credentials,
            jobs: args.upload.jobs.get(),
            on_existing_tag: args.upload.on_existing_tag,
            progress: !json,
            base: args.base.clone(),
        };
        let bundle = airgap_format::SignedBundle::open(file, &trusted, Limits::default())?;
        let report = push(&bundle, &trusted, &options)?;
        report.relocation.write(&args.relocation_map)?;
        show(&report, json, |r| {
            let mut text = String::new();
            for i in r.relocation.images.iter().chain(&r.relocation.charts) {
                text += &format!(
                    "{:<32} -> {}  {}\n",
                    e(&i.source),
                    e(&i.pinned),
                    e(&i.status)
                );
            }
            text += &format!(
                "{} blobs uploaded ({} bytes), {} mounted, {} already present; relocation map: {}\n",
                r.blobs_uploaded,
                r.bytes_uploaded,
                r.blobs_mounted,
                r.blobs_present,
                e(&args.relocation_map.display().to_string())
            );
            text
        })
    })
}
