//! The relocation map: where each image of a bundle landed in the site's
//! registry, pinned by digest. Later steps (configuration rendering) read it.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

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

impl RelocationMap {
    /// Writes the map as pretty JSON, atomically, readable by others (0644).
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        airgap_format::atomic_file::write_file_atomic(path, &bytes, 0o644)
            .with_context(|| format!("writing the relocation map {}", path.display()))
    }
}
