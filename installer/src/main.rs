//! `airgap-install`: the operator's command line. Each subcommand's
//! arguments and body are in `commands/<name>.rs`; this file parses the
//! command line and calls the one named.

use std::path::PathBuf;
use std::process::ExitCode;

use airgap_install::{state, trust};
use anyhow::Result;
use clap::{Parser, Subcommand};

mod commands;

use commands::Context;

/// Verifies and installs air-gap bundles.
#[derive(Parser)]
#[command(name = "airgap-install", version, about)]
struct Cli {
    /// Configuration folder (holds trusted-keys/); default $AIRGAP_INSTALL_CONFIG_DIR or /etc/airgap-install.
    #[arg(long, global = true)]
    config_dir: Option<PathBuf>,
    /// State folder (installed bundles, licence, audit log); default $AIRGAP_INSTALL_STATE_DIR or /var/lib/airgap-install.
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install or upgrade: verify, activate the licence, push, render, apply, check health, record.
    Install(commands::install::Args),
    /// Check everything an install will need, before anything changes; report every problem at once.
    Preflight(commands::preflight::Args),
    /// Go back to an earlier installed version: its recorded configuration, applied again with the images still in the registry.
    Rollback(commands::rollback::Args),
    /// Remove an installed bundle's Helm releases (reverse install order) and mark its record.
    Uninstall(commands::uninstall::Args),
    /// Show what installing a bundle would change against what is installed.
    Plan(commands::plan::Args),
    /// Show what is installed, and the unfinished install runs.
    Status(commands::status::Args),
    /// Give up an unfinished install run: record it in the audit log and remove its journal.
    Abandon(commands::abandon::Args),
    /// Show the audit log.
    History(commands::history::Args),
    /// Node-locked licences: request, activate, status.
    License(commands::license::Args),
    /// Check a bundle's signature, then every entry against it.
    Verify(commands::verify::Args),
    /// Put the bundle's images into the site's registry (signature checked first).
    Push(commands::push::Args),
    /// Summarise a bundle from its head (no verification).
    Inspect(commands::inspect::Args),
    /// Render the site's configuration from the bundle's templates: values per release, install-plan.sh, plan.json.
    Render(commands::render::Args),
    /// List or extract the bundle's SBOMs (signature and digests checked).
    Sbom(commands::sbom::Args),
    /// Run the health checks the product's profile names, as rendered for the site.
    Health(commands::health::Args),
    /// Site files against the bundle's product profile: check one, or write a starting one (init).
    Site(commands::site::Args),
    /// Print the shell completion script for bash, zsh or fish.
    Completion(commands::completion::Args),
    /// Write the man pages, one per command, into a folder.
    Man(commands::man::Args),
    /// Print this program's version; with --verbose, its commit, target, compiler and build date.
    Version(commands::version::Args),
    /// Check this program's own file against the release's signed SHA256SUMS beside it.
    SelfCheck(commands::self_check::Args),
}

fn run(cli: Cli) -> Result<()> {
    run_command(cli).map_err(state::explain_full_disk)
}

fn run_command(cli: Cli) -> Result<()> {
    let ctx = Context {
        state_dir: state::state_dir(cli.state_dir.as_deref()),
        config_dir: trust::config_dir(cli.config_dir.as_deref()),
    };
    use commands as c;
    match cli.command {
        Command::Install(args) => c::install::run(args, &ctx),
        Command::Preflight(args) => c::preflight::run(args, &ctx),
        Command::Rollback(args) => c::rollback::run(args, &ctx),
        Command::Uninstall(args) => c::uninstall::run(args, &ctx),
        Command::Plan(args) => c::plan::run(args, &ctx),
        Command::Status(args) => c::status::run(args, &ctx),
        Command::Abandon(args) => c::abandon::run(args, &ctx),
        Command::History(args) => c::history::run(args, &ctx),
        Command::License(args) => c::license::run(args, &ctx),
        Command::Verify(args) => c::verify::run(args, &ctx),
        Command::Push(args) => c::push::run(args, &ctx),
        Command::Inspect(args) => c::inspect::run(args, &ctx),
        Command::Render(args) => c::render::run(args, &ctx),
        Command::Sbom(args) => c::sbom::run(args, &ctx),
        Command::Health(args) => c::health::run(args, &ctx),
        Command::Site(args) => c::site::run(args, &ctx),
        Command::Completion(args) => c::completion::run(args, &ctx),
        Command::Man(args) => c::man::run(args, &ctx),
        Command::Version(args) => c::version::run(args, &ctx),
        Command::SelfCheck(args) => c::self_check::run(args, &ctx),
    }
}

fn main() -> ExitCode {
    airgap_cli::progress::run_main(|| run(Cli::parse()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_shared_flag_groups_parse_in_their_commands() {
        let cli = Cli::try_parse_from([
            "airgap-install",
            "install",
            "b.bundle",
            "--site",
            "site.yaml",
            "--trust",
            "k.pub",
            "--username",
            "registry.example:5000=deploy",
            "--password-stdin",
            "--jobs",
            "64",
            "--json",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::Install(_)));
        for bad in [
            &["install", "b", "--site", "s", "--jobs", "65"][..],
            &["install", "b", "--site", "s", "--username", "u"],
            &["push", "b", "--registry", "r", "--password-stdin"],
            &["status", "--json", "--json"],
        ] {
            let args = std::iter::once("airgap-install").chain(bad.iter().copied());
            assert!(Cli::try_parse_from(args).is_err(), "{bad:?}");
        }
    }
}
