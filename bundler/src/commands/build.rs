//! `airgap-bundle build MANIFEST`: builds and signs a bundle.

use std::io::{self, Write};
use std::path::PathBuf;

use airgap_bundle::build::{build, BuildOptions, BuildOutput};
use airgap_bundle::sign::SecretKey;
use airgap_cli::args::OutputArgs;
use airgap_cli::progress::UsageError;
use airgap_cli::report::{emit, Report};
use airgap_format::display::count;
use anyhow::Result;
use serde::Serialize;

use super::pull_args::PullArgs;

/// Arguments of `build`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  airgap-bundle build manifests/demo.yaml --key vendor.key --out demo-1.0.0.bundle\n  airgap-bundle build release.yaml --key vendor.key --out release.bundle --locked --split 4GiB"
)]
pub struct Args {
    /// The bundle manifest (YAML).
    manifest: PathBuf,
    /// Secret key to sign with.
    #[arg(long)]
    key: PathBuf,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// Lock file to build from (default: NAME.lock.json beside the manifest).
    #[arg(long)]
    lock: Option<PathBuf>,
    /// Refuse registry images and remote charts the lock file does not pin.
    #[arg(long)]
    locked: bool,
    /// Make no SBOMs (quick local builds); vendor SBOMs are still carried.
    #[arg(long)]
    skip_sbom: bool,
    /// Read every layer for the SBOMs, neither using nor storing the
    /// layer scans kept in the cache folder's scans/.
    #[arg(long)]
    no_scan_cache: bool,
    /// Build a delta: leave out the image and chart blobs this older
    /// bundle of the same product stores (it must be signed by --key).
    #[arg(long, value_name = "OLD_BUNDLE")]
    base: Option<PathBuf>,
    /// Write media parts OUT.part-001, OUT.part-002, … of at most this
    /// size (4GiB for FAT32, 4.7GB for a DVD) instead of one file.
    #[arg(long, value_name = "SIZE")]
    split: Option<String>,
    #[command(flatten)]
    pull: PullArgs,
    /// zstd level for compressible entries (1-19).
    #[arg(long, default_value_t = airgap_format::writer::DEFAULT_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
    level: i32,
    #[command(flatten)]
    output: OutputArgs,
}

/// What a build produced, as [`BuildOutput`]'s JSON or a few lines of text.
#[derive(Serialize)]
#[serde(transparent)]
struct Built(BuildOutput);

impl Report for Built {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let result = &self.0;
        if result.parts.is_empty() {
            writeln!(
                out,
                "wrote {} ({} bytes, {}, signed by {})",
                result.path.display(),
                result.archive_size,
                count(result.blobs as u64, "blob"),
                result.key_id,
            )?;
        } else {
            writeln!(
                out,
                "wrote {} as {} ({} bytes, {}, signed by {}):",
                result.path.display(),
                count(result.parts.len() as u64, "part"),
                result.archive_size,
                count(result.blobs as u64, "blob"),
                result.key_id,
            )?;
            for p in &result.parts {
                writeln!(out, "    {}", p.display())?;
            }
        }
        writeln!(out, "bundle digest {}", result.bundle_digest)?;
        if let Some(b) = &result.base {
            writeln!(
                out,
                "delta against {} {} ({}): {} blobs ({} bytes) left to the base",
                b.name, b.version, b.digest, result.blobs_left_to_base, result.bytes_left_to_base
            )?;
        }
        if let Some(s) = &result.sbom {
            writeln!(
                out,
                "SBOMs: {} scanned, {}, {}, {} ({:.2} s)",
                count(s.images_scanned as u64, "image platform"),
                count(s.packages as u64, "package"),
                count(s.vendor_sboms as u64, "vendor SBOM"),
                count(s.warnings.len() as u64, "warning"),
                s.seconds
            )?;
            // Every build that scanned says where its layer scans came from.
            if s.layers_read + s.layers_cached > 0 {
                writeln!(
                    out,
                    "layer scans: {} read, {} from the scan cache",
                    s.layers_read, s.layers_cached
                )?;
            }
        }
        if let Some(p) = &result.pull {
            writeln!(
                out,
                "pulled {} blobs ({} bytes); {} from the cache",
                p.blobs_downloaded, p.bytes_downloaded, p.cache_hits
            )?;
        }
        Ok(())
    }
}

/// Builds the bundle and prints what was written.
pub fn run(args: Args) -> Result<()> {
    // Option values first: a malformed one is a usage error (exit 2),
    // whatever the files hold.
    let split = args
        .split
        .as_deref()
        .map(|s| {
            airgap_bundle::output::PartSize::parse(s).map_err(|e| UsageError(format!("{e:#}")))
        })
        .transpose()?;
    let key = SecretKey::from_file(&args.key)?;
    let json = args.output.json;
    let mut options = BuildOptions::from_env()?;
    options.level = args.level;
    options.progress = !json;
    options.pull = args.pull.options()?;
    options.lock_path = args.lock;
    options.locked = args.locked;
    options.skip_sbom = args.skip_sbom;
    options.scan_cache = !args.no_scan_cache;
    options.base = args.base;
    options.split = split;
    let result = build(&args.manifest, &key, &args.out, &options)?;
    emit(&Built(result), json)
}
