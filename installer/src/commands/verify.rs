//! `airgap-install verify`: a bundle's signature, then every entry against
//! it; optionally its digest against the one the vendor published.

use std::io::{self, Write};
use std::path::Path;

use airgap_cli::args::{BundleArgs, OutputArgs};
use airgap_cli::progress::{Progress, UsageError};
use airgap_cli::report::{emit, Report};
use airgap_format::display::{count, escape as e};
use airgap_format::{verify_archive, Digest, Limits};
use airgap_install::trust;
use anyhow::Result;

use super::{json_failure, Context};

/// The arguments of `verify`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  airgap-install verify /media/usb/demo-1.0.0.bundle --trust vendor.pub \\\n      --expect-digest sha256:6643c7c002edf162be63565a09bfc8d95211a534f5c08251b19f7ab0a3c78b4f"
)]
pub struct Args {
    #[command(flatten)]
    bundle: BundleArgs,
    /// The bundle digest the vendor published (sha256:…): fail unless the bundle has it.
    #[arg(long, value_name = "DIGEST")]
    expect_digest: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

/// What `verify` found: printed as text, or as JSON with `--json`.
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
    /// For a delta: the base it needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<airgap_format::bundle_json::BaseEntry>,
    /// Blobs left to the base.
    base_blobs: usize,
    /// Media parts checked, when split.
    parts: usize,
    /// The digest given with --expect-digest (the bundle has it).
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_digest: Option<String>,
}

/// Checks `--expect-digest`'s form, then verifies.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let expected = args
        .expect_digest
        .as_deref()
        .map(|d| {
            d.parse::<Digest>().map_err(|err| {
                UsageError(format!(
                    "--expect-digest: {err}; give the bundle digest as the vendor published it (sha256: and 64 hex characters)"
                ))
            })
        })
        .transpose()?;
    let json = args.output.json;
    json_failure(
        json,
        Some(&args.bundle.file),
        &[("expectedDigest", args.expect_digest.as_deref())],
        || verify(&args.bundle, &ctx.config_dir, expected, json),
    )
}

/// Checks the bundle, compares its digest with `expected`, prints the
/// report.
fn verify(
    bundle: &BundleArgs,
    config_dir: &Path,
    expected: Option<Digest>,
    json: bool,
) -> Result<()> {
    let BundleArgs { file, trust: keys } = bundle;
    let size = airgap_format::parts::Source::open(file)
        .and_then(|s| s.len())
        .unwrap_or(0);
    let progress = Progress::bytes(size, "verify", !json);
    let result = trust::load_trusted(keys, config_dir).and_then(|trusted| {
        Ok(verify_archive(file, &trusted, Limits::default(), &|n| {
            progress.inc(n)
        })?)
    });
    progress.finish();
    let v = result?;
    if let Some(want) = expected {
        if v.bundle_digest != want {
            anyhow::bail!(
                "{}: the bundle digest is {}, not {} as given with --expect-digest: this is not the bundle the vendor published; do not use it, get it again and check the digest with the vendor",
                e(&file.display().to_string()),
                v.bundle_digest,
                want
            );
        }
    }
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
        base: d.base.clone(),
        base_blobs: d.base_blobs.len(),
        parts: d.split.as_ref().map_or(0, |s| s.parts.len()),
        expected_digest: expected.map(|d| d.to_string()),
    };
    emit(&report, json)
}

impl Report for VerifyReport {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "OK {} {} {}: signed by {}, {}, {}, {}, {} verified",
            e(&self.file),
            e(&self.name),
            e(&self.version),
            self.signer_key_id,
            count(self.images as u64, "image"),
            count(self.charts as u64, "chart"),
            count(self.files as u64, "file"),
            count(self.blobs as u64, "blob")
        )?;
        writeln!(
            out,
            "   bundle digest: {}{}",
            self.bundle_digest,
            if self.expected_digest.is_some() {
                " (as expected)"
            } else {
                ""
            }
        )?;
        if self.parts > 0 {
            writeln!(
                out,
                "   media parts: {}, each checked on its own",
                self.parts
            )?;
        }
        if let Some(b) = &self.base {
            writeln!(
                out,
                "   delta bundle: {} blobs are left to its base {} {} ({}); install needs them in the registry or --base",
                self.base_blobs,
                e(&b.name),
                e(&b.version),
                b.digest
            )?;
        }
        Ok(())
    }
}
