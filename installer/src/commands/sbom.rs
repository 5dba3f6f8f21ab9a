//! `airgap-install sbom`: the bundle's SBOMs listed, summarised or
//! extracted (signature and digests checked).

use std::path::PathBuf;

use airgap_cli::args::{BundleArgs, OutputArgs};
use airgap_format::bundle_json::SbomFormat;
use airgap_format::display::escape as e;
use airgap_format::Limits;
use airgap_install::sbom;
use anyhow::Result;

use super::{show, with_trusted_keys, Context};

/// The arguments of `sbom`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    bundle: BundleArgs,
    /// List the SBOMs the bundle carries.
    #[arg(long, conflicts_with_all = ["out", "summary"])]
    list: bool,
    /// Package counts by ecosystem per image and platform.
    #[arg(long, conflicts_with = "out")]
    summary: bool,
    /// Write the SBOMs into this folder (the bundle SBOM and the per-image ones).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Only this image (NAME or NAME:TAG).
    #[arg(long)]
    image: Option<String>,
    /// Only this format.
    #[arg(long, value_parser = ["cyclonedx", "spdx"])]
    format: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

/// Lists (the default, also `--list`), summarises or extracts the SBOMs
/// selected.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let json = args.output.json;
    let file = &args.bundle.file;
    with_trusted_keys(&args.bundle, json, ctx, |trusted| {
        let bundle = airgap_format::SignedBundle::open(file, trusted, Limits::default())?;
        let selection = sbom::SbomSelection {
            image: args.image.clone(),
            format: args.format.as_deref().map(|f| {
                if f == "spdx" {
                    SbomFormat::Spdx
                } else {
                    SbomFormat::Cyclonedx
                }
            }),
        };
        if args.summary {
            let rows: Vec<_> = sbom::summary(&bundle)?
                .into_iter()
                .filter(|r| {
                    args.image.as_deref().is_none_or(|i| {
                        r.image == i || r.image.rsplit_once(':').is_some_and(|(n, _)| n == i)
                    })
                })
                .collect();
            show(&rows, json, |rows| {
                if rows.is_empty() {
                    format!(
                        "{}: no generated image SBOMs to summarise\n",
                        e(&file.display().to_string())
                    )
                } else {
                    sbom::summary_table(rows)
                }
            })
        } else if let Some(out) = &args.out {
            let written = sbom::extract(&bundle, out, &selection)?;
            show(&written, json, |written| {
                let mut text = String::new();
                for w in written {
                    text += &format!("{}\n", e(&w.path.display().to_string()));
                }
                text
            })
        } else {
            // Listing is the default; --list only says so.
            let _ = args.list;
            let d = &bundle.descriptor;
            let entries: Vec<_> = sbom::list(&bundle)
                .iter()
                .filter(|e| selection.wants(e))
                .collect();
            show(&entries, json, |entries| {
                if entries.is_empty() {
                    format!(
                        "{}: bundle {} {} carries no SBOMs (built with --skip-sbom, or by an older bundler)\n",
                        e(&file.display().to_string()),
                        e(&d.name),
                        e(&d.version)
                    )
                } else {
                    sbom::list_table(entries)
                }
            })
        }
    })
}
