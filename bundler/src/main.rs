//! `airgap-bundle`: the release engineer's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use airgap_bundle::build::{build, BuildOptions};
use airgap_bundle::sign::{keygen, SecretKey};
use anyhow::Result;
use clap::{Parser, Subcommand};

/// Builds signed, content-addressed air-gap bundles.
#[derive(Parser)]
#[command(name = "airgap-bundle", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a signing key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (minisign format).
    Keygen {
        /// Path prefix of the two files.
        #[arg(long)]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Build a bundle from a manifest.
    Build {
        /// The bundle manifest (YAML).
        manifest: PathBuf,
        /// Secret key to sign with.
        #[arg(long)]
        key: PathBuf,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// zstd level for compressible entries (1-19).
        #[arg(long, default_value_t = airgap_format::writer::DEFAULT_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
        level: i32,
        /// Print the result as JSON and draw no progress bars.
        #[arg(long)]
        json: bool,
    },
    /// Summarise a bundle from its head (no verification).
    Inspect {
        /// The bundle.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keygen { out, force } => {
            let (key, public, id) = keygen(&out, force)?;
            println!(
                "key id {id}\nsecret key: {}\npublic key: {}",
                key.display(),
                public.display()
            );
        }
        Command::Build {
            manifest,
            key,
            out,
            level,
            json,
        } => {
            let key = SecretKey::from_file(&key)?;
            let mut options = BuildOptions::from_env()?;
            options.level = level;
            options.progress = !json;
            let result = build(&manifest, &key, &out, &options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                println!(
                    "wrote {} ({} bytes, {} blobs, signed by {})\nbundle digest {}",
                    result.path.display(),
                    result.archive_size,
                    result.blobs,
                    result.key_id,
                    result.bundle_digest
                );
            }
        }
        Command::Inspect { file, json } => {
            print!(
                "{}",
                airgap_format::inspect::inspect(&file)?.to_output(json)
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    airgap_format::progress::run_main(|| run(Cli::parse()))
}
