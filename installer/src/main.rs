//! `airgap-install`: the operator's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use airgap_format::progress::{error_line, Progress};
use airgap_format::{verify_archive, Limits};
use airgap_install::trust;
use anyhow::Result;
use clap::{Parser, Subcommand};

/// Verifies and installs air-gap bundles.
#[derive(Parser)]
#[command(name = "airgap-install", version, about)]
struct Cli {
    /// Configuration folder (holds trusted-keys/); default $AIRGAP_INSTALL_CONFIG_DIR or /etc/airgap-install.
    #[arg(long, global = true)]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a bundle's signature, then every entry against it.
    Verify {
        /// The bundle.
        file: PathBuf,
        /// A trusted public key (minisign format); repeatable.
        #[arg(long)]
        trust: Vec<PathBuf>,
        /// Print the result as JSON and draw no progress bar.
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

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifyReport {
    ok: bool,
    file: String,
    name: String,
    version: String,
    bundle_digest: String,
    signer_key_id: String,
    images: usize,
    charts: usize,
    files: usize,
    blobs: usize,
    total_size: u64,
    archive_size: u64,
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Verify {
            file,
            trust: keys,
            json,
        } => {
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let progress = Progress::bytes(size, "verify", !json);
            let result = trust::load_trusted(&keys, &trust::config_dir(cli.config_dir.as_deref()))
                .and_then(|trusted| {
                    Ok(verify_archive(&file, &trusted, Limits::default(), &|n| {
                        progress.inc(n)
                    })?)
                });
            progress.finish();
            let v = match result {
                Ok(v) => v,
                Err(e) => {
                    if json {
                        let failure = serde_json::json!({
                            "ok": false,
                            "file": file.display().to_string(),
                            "error": error_line(e.as_ref()),
                        });
                        println!("{}", serde_json::to_string_pretty(&failure)?);
                    }
                    return Err(e);
                }
            };
            let d = &v.descriptor;
            let report = VerifyReport {
                ok: true,
                file: file.display().to_string(),
                name: d.name.clone(),
                version: d.version.clone(),
                bundle_digest: v.bundle_digest.to_string(),
                signer_key_id: v.signer.to_string(),
                images: d.images.len(),
                charts: d.charts.len(),
                files: d.files.len(),
                blobs: d.blobs.len(),
                total_size: d.total_size,
                archive_size: v.archive_size,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "OK {} {} {}: signed by {}, {} images, {} charts, {} files, {} blobs verified",
                    report.file,
                    report.name,
                    report.version,
                    report.signer_key_id,
                    report.images,
                    report.charts,
                    report.files,
                    report.blobs
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
