//! `airgap-install man`: the man pages, one per command.

use std::path::PathBuf;

use anyhow::Result;
use clap::CommandFactory;

use super::{print_text, Context};

/// The arguments of `man`.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  airgap-install man --out /usr/local/share/man/man1")]
pub struct Args {
    /// The folder (created if missing), such as /usr/local/share/man/man1.
    #[arg(long)]
    out: PathBuf,
}

/// Writes the pages and lists the files written.
pub fn run(args: Args, _ctx: &Context) -> Result<()> {
    let mut listing = String::new();
    for page in airgap_cli::completions::write_man_pages(crate::Cli::command(), &args.out)? {
        listing += &format!("{}\n", page.display());
    }
    print_text(&listing)
}
