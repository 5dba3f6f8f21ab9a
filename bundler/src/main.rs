//! `airgap-bundle`: the release engineer's command line.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod commands;

/// Builds signed, content-addressed air-gap bundles.
#[derive(Parser)]
#[command(name = "airgap-bundle", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// One subcommand each; its arguments and body are in commands/<name>.rs.
#[derive(Subcommand)]
enum Command {
    /// Create a signing key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (minisign format).
    Keygen(commands::keygen::Args),
    /// Sign a file (such as a release's SHA256SUMS) with minisign's format: FILE.minisig.
    Sign(commands::sign::Args),
    /// Build a bundle from a manifest.
    Build(commands::build::Args),
    /// Resolve every registry image and remote chart to a digest and write the lock file.
    Lock(commands::lock::Args),
    /// Summarise a bundle from its head (no verification).
    Inspect(commands::inspect::Args),
    /// Node-locked licences (vendor side).
    License(commands::license::Args),
    /// Print the shell completion script for bash, zsh or fish.
    Completion(commands::completion::Args),
    /// Write the man pages, one per command, into a folder.
    Man(commands::man::Args),
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keygen(args) => commands::keygen::run(args),
        Command::Sign(args) => commands::sign::run(args),
        Command::Build(args) => commands::build::run(args),
        Command::Lock(args) => commands::lock::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::License(args) => commands::license::run(args),
        Command::Completion(args) => commands::completion::run(args),
        Command::Man(args) => commands::man::run(args),
    }
}

fn main() -> ExitCode {
    airgap_cli::progress::run_main(|| run(Cli::parse()))
}
