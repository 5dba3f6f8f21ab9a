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
    let pages = airgap_cli::completions::write_man_pages(crate::Cli::command(), &args.out)?;
    let list: Vec<String> = pages.iter().map(|p| p.display().to_string()).collect();
    airgap_cli::report::print_text(&list.join("\n"))
}
