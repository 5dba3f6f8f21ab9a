//! `airgap-bundle inspect FILE`: a bundle's summary from its head.

use std::path::PathBuf;

use anyhow::Result;

/// Arguments of `inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle.
    file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Reads the bundle's head and prints its summary (no verification).
pub fn run(args: Args) -> Result<()> {
    print!(
        "{}",
        airgap_format::inspect::inspect(&args.file)?.to_output(args.json)
    );
    Ok(())
}
