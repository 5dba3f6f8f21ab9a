//! `airgap-install man`: the man pages, one per command.

use std::path::PathBuf;

use anyhow::Result;
use clap::CommandFactory;

use super::Context;

/// The arguments of `man`.
#[derive(clap::Args)]
pub struct Args {
    /// The folder (created if missing), such as /usr/local/share/man/man1.
    #[arg(long)]
    out: PathBuf,
}

/// Writes the pages and lists the files written.
pub fn run(args: Args, _ctx: &Context) -> Result<()> {
    for page in airgap_cli::completions::write_man_pages(crate::Cli::command(), &args.out)? {
        println!("{}", page.display());
    }
    Ok(())
}
