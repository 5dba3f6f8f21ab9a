//! `airgap-install inspect`: a bundle summarised from its head, with no
//! verification.

use std::path::PathBuf;

use airgap_cli::args::OutputArgs;
use anyhow::Result;

use super::{show, Context};

/// The arguments of `inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle.
    file: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

/// Prints the summary.
pub fn run(args: Args, _ctx: &Context) -> Result<()> {
    let report = airgap_format::inspect::inspect(&args.file)?;
    show(&report, args.output.json, |r| r.render_text())
}
