//! The relocation map: where each image of a bundle landed in the site's
//! registry, pinned by digest. Later steps (configuration rendering) read it.

use std::path::Path;

use airgap_format::BundleDescriptor;
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::target::Target;

/// Largest relocation map read.
pub const MAX_MAP_BYTES: u64 = 16 << 20;

/// The whole map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelocationMap {
    /// `host[:port]` of the registry.
    pub registry: String,
    /// Repository prefix (may be empty).
    pub prefix: String,
    /// Bundle name.
    pub bundle: String,
    /// Bundle version.
    pub version: String,
    /// Digest of the bundle's `bundle.json`.
    pub bundle_digest: String,
    /// One entry per image, in bundle order.
    pub images: Vec<RelocatedImage>,
    /// One entry per Helm chart, in bundle order: `repository` is what
    /// `helm pull oci://REPOSITORY --version VERSION` takes.
    #[serde(default)]
    pub charts: Vec<RelocatedImage>,
}

/// One image's place in the site registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RelocatedImage {
    /// `name:tag` in the bundle.
    pub source: String,
    /// Repository name in the bundle.
    pub name: String,
    /// Tag.
    pub tag: String,
    /// `registry/prefix/name`.
    pub repository: String,
    /// `registry/prefix/name:tag`.
    pub reference: String,
    /// Manifest or index digest, unchanged from the bundle.
    pub digest: String,
    /// `registry/prefix/name@digest`: what deployments should use.
    pub pinned: String,
    /// `pushed`, `unchanged` (already there) or `tag-kept` (another image
    /// holds the tag and `--on-existing-tag skip` left it).
    pub status: String,
}

impl RelocatedImage {
    /// Where `push` puts image (or chart artifact) `name:tag` with manifest
    /// `digest` under `target`.
    pub fn at(target: &Target, name: &str, tag: &str, digest: &str, status: &str) -> Self {
        let repository = format!("{}/{}", target.host, target.repository(name));
        RelocatedImage {
            source: format!("{name}:{tag}"),
            name: name.to_string(),
            tag: tag.to_string(),
            reference: format!("{repository}:{tag}"),
            pinned: format!("{repository}@{digest}"),
            repository,
            digest: digest.to_string(),
            status: status.to_string(),
        }
    }
}

/// The repository name and tag a chart is pushed as (Helm's layout: `helm
/// push x.tgz oci://REG/PREFIX/charts` stores chart NAME at
/// PREFIX/charts/NAME, tagged with its version, `+` written as `_`).
pub fn chart_name_tag(name: &str, version: &str) -> (String, String) {
    (format!("charts/{name}"), version.replace('+', "_"))
}

impl RelocationMap {
    /// The map a push of bundle `d` (bundle digest `bundle_digest`) to
    /// `target` writes, every image and chart marked `status`: what `plan`
    /// renders with before anything is pushed.
    pub fn expected(
        d: &BundleDescriptor,
        bundle_digest: &str,
        target: &Target,
        status: &str,
    ) -> Self {
        RelocationMap {
            registry: target.host.clone(),
            prefix: target.prefix.clone(),
            bundle: d.name.clone(),
            version: d.version.clone(),
            bundle_digest: bundle_digest.to_string(),
            images: d
                .images
                .iter()
                .map(|i| RelocatedImage::at(target, &i.name, &i.tag, &i.digest.to_string(), status))
                .collect(),
            charts: d
                .charts
                .iter()
                .map(|c| {
                    let (name, tag) = chart_name_tag(&c.name, &c.version);
                    RelocatedImage::at(target, &name, &tag, &c.manifest.to_string(), status)
                })
                .collect(),
        }
    }

    /// Reads a map `push` wrote (at most [`MAX_MAP_BYTES`]).
    pub fn read(path: &Path) -> Result<RelocationMap> {
        let bytes =
            airgap_format::regular_file::read_regular(path, MAX_MAP_BYTES, "a relocation map")?;
        serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a relocation map: {e}", path.display()))
    }

    /// Writes the map as pretty JSON, atomically, readable by others (0644).
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        airgap_format::atomic_file::write_file_atomic(path, &bytes, 0o644)
            .with_context(|| format!("writing the relocation map {}", path.display()))
    }
}
