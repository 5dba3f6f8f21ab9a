//! `airgap-bundle inspect FILE`: a bundle's summary from its head.

use std::path::PathBuf;

use airgap_cli::args::OutputArgs;
use anyhow::Result;

/// Arguments of `inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle.
    file: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

/// Reads the bundle's head and prints its summary (no verification).
pub fn run(args: Args) -> Result<()> {
    print!(
        "{}",
        airgap_format::inspect::inspect(&args.file)?.to_output(args.output.json)
    );
    Ok(())
}
