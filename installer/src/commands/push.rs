//! `airgap-install push`: the bundle's images put into the site's registry
//! (signature checked first), and the relocation map written.

use std::path::PathBuf;

use airgap_cli::progress::{error_line, UsageError};
use airgap_format::display::escape as e;
use airgap_format::Limits;
use airgap_install::push::{push, PushOptions};
use airgap_install::target::Target;
use airgap_install::{state, trust};
use airgap_registry::client::Fixes;
use airgap_registry::Transport;
use anyhow::Result;

use super::{json_failure, registry_credentials, user_agent, Context, UploadArgs};

/// The arguments of `push`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle.
    file: PathBuf,
    /// A trusted public key (minisign format); repeatable.
    #[arg(long)]
    trust: Vec<PathBuf>,
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
    /// Print the result as JSON and draw no progress bar.
    #[arg(long)]
    json: bool,
}

/// Pushes, writes the relocation map, prints where each image went.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let Args {
        file,
        trust: keys,
        registry,
        ca_file,
        plain_http,
        upload,
        base,
        relocation_map,
        json,
    } = args;
    json_failure(json, Some(file.as_path()), &[], || {
        let target =
            Target::parse(&registry).map_err(|err| UsageError(error_line(err.as_ref())))?;
        let trusted = trust::load_trusted(&keys, &ctx.config_dir)?;
        // Before the push: the map is written after it.
        airgap_format::atomic_file::check_output_folder(&relocation_map)
            .map_err(|e| anyhow::anyhow!("--relocation-map: {e}"))?;
        let credentials =
            registry_credentials(&target.host, upload.username, upload.password_stdin)?;
        // Blobs a delta leaves to its base may be in the registry under
        // the repositories an installed release used.
        let records = state::State::open_read_only(&ctx.state_dir).install_records()?;
        let options = PushOptions {
            known: airgap_install::survey::known_images(&records, &target),
            target,
            transport: Transport {
                ca_files: ca_file.into_iter().collect(),
                plain_http,
                user_agent: Some(user_agent()),
                fixes: Fixes {
                    use_https: "drop --plain-http".into(),
                    use_plain_http:
                        "pass --plain-http if the registry is meant to speak plain HTTP".into(),
                    trust_ca: "pass the CA certificate (PEM) that issued it with --ca-file".into(),
                },
            },
            credentials,
            jobs: upload.jobs as usize,
            on_existing_tag: upload.on_existing_tag,
            progress: !json,
            base,
        };
        let bundle = airgap_format::SignedBundle::open(&file, &trusted, Limits::default())?;
        let report = push(&bundle, &trusted, &options)?;
        report.relocation.write(&relocation_map)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            for i in report
                .relocation
                .images
                .iter()
                .chain(&report.relocation.charts)
            {
                println!("{:<32} -> {}  {}", e(&i.source), e(&i.pinned), e(&i.status));
            }
            println!(
                "{} blobs uploaded ({} bytes), {} mounted, {} already present; relocation map: {}",
                report.blobs_uploaded,
                report.bytes_uploaded,
                report.blobs_mounted,
                report.blobs_present,
                e(&relocation_map.display().to_string())
            );
        }
        Ok(())
    })
}
