//! `airgap-bundle lock MANIFEST`: pins registry images and remote charts.

use std::path::PathBuf;

use airgap_bundle::lock_command::lock_manifest;
use airgap_cli::args::OutputArgs;
use anyhow::Result;

use super::pull_args::PullArgs;

/// Arguments of `lock`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle manifest (YAML).
    manifest: PathBuf,
    /// Lock file to write (default: NAME.lock.json beside the manifest).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    pull: PullArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// Resolves the manifest's sources, writes the lock file and prints it.
pub fn run(args: Args) -> Result<()> {
    let (path, lock) = lock_manifest(&args.manifest, args.out.as_deref(), args.pull.options()?)?;
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&lock)?);
    } else {
        for i in &lock.images {
            println!("{}\n    {}", i.source, i.resolved);
        }
        for c in &lock.charts {
            let name = c
                .chart
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            println!("{}{name} {}\n    {}", c.source, c.version, c.digest);
        }
        println!(
            "wrote {} ({}, {} pinned)",
            path.display(),
            airgap_format::display::count(lock.images.len() as u64, "image"),
            airgap_format::display::count(lock.charts.len() as u64, "chart")
        );
    }
    Ok(())
}
