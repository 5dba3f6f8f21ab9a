//! `airgap-bundle man --out DIR`: the man pages.

use std::path::PathBuf;

use anyhow::Result;
use clap::CommandFactory;

/// Arguments of `man`.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  airgap-bundle man --out /usr/local/share/man/man1")]
pub struct Args {
    /// The folder (created if missing), such as /usr/local/share/man/man1.
    #[arg(long)]
    out: PathBuf,
}

/// Writes one page per command and prints each page's path.
pub fn run(args: Args) -> Result<()> {
    for page in airgap_cli::completions::write_man_pages(crate::Cli::command(), &args.out)? {
        println!("{}", page.display());
    }
    Ok(())
}
