//! `airgap-bundle completion SHELL`: the shell completion script.

use airgap_cli::completions::Shell;
use anyhow::Result;
use clap::CommandFactory;

/// Arguments of `completion`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  airgap-bundle completion bash > /etc/bash_completion.d/airgap-bundle"
)]
pub struct Args {
    /// The shell.
    shell: Shell,
}

/// Prints the completion script for the whole command line.
pub fn run(args: Args) -> Result<()> {
    airgap_cli::completions::write_completions(
        crate::Cli::command(),
        args.shell,
        &mut std::io::stdout(),
    )
    .map_err(|err| anyhow::anyhow!("cannot write the completion script: {err}"))
}
