//! `airgap-install self-check`: this program's own file checked against
//! the release's signed SHA256SUMS beside it.

use std::path::PathBuf;

use airgap_cli::args::OutputArgs;
use airgap_format::display::escape as e;
use airgap_install::trust;
use anyhow::Result;

use super::{json_failure, show, Context};

/// The arguments of `self-check`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  /media/release/x86_64/airgap-install self-check --trust /media/release/release.pub"
)]
pub struct Args {
    /// The release's public key (minisign format); repeatable.
    #[arg(long)]
    trust: Vec<PathBuf>,
    #[command(flatten)]
    output: OutputArgs,
}

/// Checks and prints the file, its digest and the signer.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let json = args.output.json;
    let exe = std::env::current_exe()
        .map_err(|err| anyhow::anyhow!("cannot find this program's own file: {err}"))?;
    json_failure(json, Some(exe.as_path()), &[], || {
        let trusted = trust::load_trusted(&args.trust, &ctx.config_dir)?;
        let r = airgap_install::self_check::self_check(&exe, &trusted)?;
        show(&r, json, |r| {
            format!(
                "OK {}: {} is listed in {}, signed by {}\n",
                e(&r.file),
                r.digest,
                e(&r.sums),
                r.signer
            )
        })
    })
}
