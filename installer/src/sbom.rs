//! `airgap-install sbom`: the SBOMs a bundle carries, for compliance teams.
//! The signature is checked first; only the entries asked for are read, and
//! each is checked against its signed digest before it is written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airgap_format::bundle_json::{SbomEntry, SbomFormat, SbomOrigin};
use airgap_format::display::escape;
use airgap_format::SignedBundle;
use anyhow::{bail, Result};
use serde::Serialize;

/// Largest SBOM read from a bundle.
const MAX_SBOM_BYTES: u64 = 256 << 20;

/// What to extract.
#[derive(Clone, Debug, Default)]
pub struct SbomSelection {
    /// Only this image (`name` or `name:tag`); the bundle SBOM is always included.
    pub image: Option<String>,
    /// Only this format.
    pub format: Option<SbomFormat>,
}

impl SbomSelection {
    /// Whether the selection includes `e` (the bundle SBOM always is).
    pub fn wants(&self, e: &SbomEntry) -> bool {
        let image_ok = match (&self.image, &e.image) {
            (None, _) | (_, None) => true,
            (Some(want), Some(have)) => {
                have == want || have.rsplit_once(':').is_some_and(|(n, _)| n == want)
            }
        };
        image_ok && self.format.is_none_or(|f| f == e.format)
    }
}

/// One SBOM written out.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Extracted {
    /// The `bundle.json` entry.
    #[serde(flatten)]
    pub entry: SbomEntry,
    /// Where it was written.
    pub path: PathBuf,
}

/// The file name an SBOM is written under.
pub fn file_name(e: &SbomEntry) -> String {
    let ext = match e.format {
        SbomFormat::Cyclonedx => "cdx.json",
        SbomFormat::Spdx => "spdx.json",
    };
    let origin = match e.origin {
        SbomOrigin::Generated => "",
        SbomOrigin::Vendor => ".vendor",
    };
    let base = match (&e.image, &e.platform) {
        (None, _) => "bundle".to_string(),
        (Some(i), p) => {
            // '+' and '@' appear in neither repository names nor tags, so
            // `a/b:c` and `a_b:c` cannot meet.
            let mut s = i.replace('/', "+").replace(':', "@");
            if let Some(p) = p {
                s.push('_');
                s.push_str(&p.replace('/', "-"));
            }
            s
        }
    };
    // Two vendor SBOMs of one image and format differ by digest.
    let tag = if e.origin == SbomOrigin::Vendor {
        format!(".{}", &e.digest.hex()[..12])
    } else {
        String::new()
    };
    format!("{base}{origin}{tag}.{ext}")
}

/// The SBOMs of a bundle, in `bundle.json` order.
pub fn list(bundle: &SignedBundle) -> &[SbomEntry] {
    &bundle.descriptor.sboms
}

/// Writes the selected SBOMs into `out`, each checked against its digest.
pub fn extract(
    bundle: &SignedBundle,
    out: &Path,
    selection: &SbomSelection,
) -> Result<Vec<Extracted>> {
    let d = &bundle.descriptor;
    if d.sboms.is_empty() {
        bail!(
            "{}: bundle {} {} carries no SBOMs (built with --skip-sbom, or by an older bundler)",
            bundle.path().display(),
            d.name,
            d.version
        );
    }
    let chosen: Vec<&SbomEntry> = d.sboms.iter().filter(|e| selection.wants(e)).collect();
    if let Some(img) = &selection.image {
        if !chosen.iter().any(|e| e.image.is_some()) {
            let names: Vec<&str> = d.images.iter().map(|i| i.reference.as_str()).collect();
            bail!(
                "no SBOM for image {img} (the bundle has {})",
                names.join(", ")
            );
        }
    }
    // Every document is read and checked before any is written.
    let mut checked = Vec::new();
    for e in chosen {
        let bytes = bundle.read_blob(&e.digest, MAX_SBOM_BYTES, "SBOM")?;
        checked.push((e, bytes));
    }
    let dir = crate::out_dir::OutDir::create(out)?;
    let mut written = Vec::new();
    for (e, bytes) in checked {
        let dest = dir.write(&file_name(e), &bytes, 0o644)?;
        written.push(Extracted {
            entry: e.clone(),
            path: dest,
        });
    }
    Ok(written)
}

/// Package counts of one image platform, by package URL type.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryRow {
    /// Image reference.
    pub image: String,
    /// Platform.
    pub platform: String,
    /// purl type (`deb`, `pypi`, …) → packages.
    pub counts: BTreeMap<String, usize>,
    /// All packages.
    pub total: usize,
}

/// Counts the packages of every generated per-image CycloneDX SBOM.
pub fn summary(bundle: &SignedBundle) -> Result<Vec<SummaryRow>> {
    let d = &bundle.descriptor;
    let mut rows = Vec::new();
    for e in d.sboms.iter().filter(|e| {
        e.format == SbomFormat::Cyclonedx && e.origin == SbomOrigin::Generated && e.image.is_some()
    }) {
        let bytes = bundle.read_blob(&e.digest, MAX_SBOM_BYTES, "SBOM")?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|err| anyhow::anyhow!("SBOM {}: not JSON ({err})", e.digest))?;
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for c in v["components"].as_array().into_iter().flatten() {
            if let Some(t) = c["purl"]
                .as_str()
                .and_then(|p| p.strip_prefix("pkg:"))
                .and_then(|p| p.split('/').next())
            {
                *counts.entry(t.to_string()).or_default() += 1;
            }
        }
        rows.push(SummaryRow {
            image: e.image.clone().unwrap_or_default(),
            platform: e.platform.clone().unwrap_or_default(),
            total: counts.values().sum(),
            counts,
        });
    }
    Ok(rows)
}

/// The summary as a table: one row per image platform, one column per ecosystem.
pub fn summary_table(rows: &[SummaryRow]) -> String {
    let mut kinds: Vec<&String> = rows.iter().flat_map(|r| r.counts.keys()).collect();
    kinds.sort();
    kinds.dedup();
    let mut out = format!("{:<40} {:<16}", "IMAGE", "PLATFORM");
    for k in &kinds {
        out.push_str(&format!(" {:>7}", escape(k)));
    }
    out.push_str(&format!(" {:>7}\n", "total"));
    for r in rows {
        out.push_str(&format!(
            "{:<40} {:<16}",
            escape(&r.image),
            escape(&r.platform)
        ));
        for k in &kinds {
            out.push_str(&format!(" {:>7}", r.counts.get(*k).copied().unwrap_or(0)));
        }
        out.push_str(&format!(" {:>7}\n", r.total));
    }
    out
}

/// The list as a table.
pub fn list_table(entries: &[&SbomEntry]) -> String {
    let mut out = format!(
        "{:<40} {:<16} {:<10} {:<10} {:>10}  {}\n",
        "IMAGE", "PLATFORM", "FORMAT", "ORIGIN", "BYTES", "DIGEST"
    );
    for e in entries {
        out.push_str(&format!(
            "{:<40} {:<16} {:<10} {:<10} {:>10}  {}\n",
            escape(e.image.as_deref().unwrap_or("(bundle)")),
            escape(e.platform.as_deref().unwrap_or("-")),
            e.format.as_str(),
            match e.origin {
                SbomOrigin::Generated => "generated",
                SbomOrigin::Vendor => "vendor",
            },
            e.size,
            e.digest
        ));
    }
    out
}
