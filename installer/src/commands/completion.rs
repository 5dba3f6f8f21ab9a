//! `airgap-install completion`: the shell completion script.

use airgap_cli::completions::Shell;
use anyhow::Result;
use clap::CommandFactory;

use super::{print_text, Context};

/// The arguments of `completion`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  airgap-install completion bash > /etc/bash_completion.d/airgap-install"
)]
pub struct Args {
    /// The shell.
    shell: Shell,
}

/// Prints the script for the shell named.
pub fn run(args: Args, _ctx: &Context) -> Result<()> {
    let mut script = Vec::new();
    airgap_cli::completions::write_completions(crate::Cli::command(), args.shell, &mut script)?;
    print_text(&String::from_utf8(script)?)
        .map_err(|err| anyhow::anyhow!("cannot write the completion script: {err}"))
}
