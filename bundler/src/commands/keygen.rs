//! `airgap-bundle keygen`: a new signing key pair.

use std::path::PathBuf;

use airgap_bundle::sign::keygen;
use anyhow::Result;

/// Arguments of `keygen`.
#[derive(clap::Args)]
pub struct Args {
    /// Path prefix of the two files.
    #[arg(long)]
    out: PathBuf,
    /// Replace existing files.
    #[arg(long)]
    force: bool,
}

/// Writes PREFIX.key and PREFIX.pub and prints the key id and both paths.
pub fn run(args: Args) -> Result<()> {
    let (key, public, id) = keygen(&args.out, args.force)?;
    airgap_cli::report::print_text(&format!(
        "key id {id}\nsecret key: {}\npublic key: {}",
        key.display(),
        public.display()
    ))
}
