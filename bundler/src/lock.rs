//! The lock file: every registry image and remote chart of a manifest
//! pinned to the digest it resolved to, so that rebuilding from the lock
//! gives the same bundle even after tags move.
//!
//! `airgap-bundle lock MANIFEST` writes it beside the manifest
//! (`NAME.lock.json` for `NAME.yaml`, see [`crate::lock_command`]);
//! `build` reads it when it exists. This module is only the file's type:
//! it knows nothing of manifests or of how sources are resolved.

use std::io::Read;
use std::path::{Path, PathBuf};

use airgap_format::Digest;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The lock format version written and read.
pub const LOCK_VERSION: u32 = 1;
/// Largest lock file read.
const MAX_LOCK_BYTES: u64 = 8 << 20;

/// The whole lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockFile {
    /// Always [`LOCK_VERSION`].
    pub lock_version: u32,
    /// Registry images, in manifest order.
    #[serde(default)]
    pub images: Vec<LockedImage>,
    /// Charts from OCI registries and Helm repositories, in manifest order.
    #[serde(default)]
    pub charts: Vec<LockedChart>,
}

/// One registry image source and what it resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedImage {
    /// The `source` exactly as written in the manifest.
    pub source: String,
    /// The normalised reference, pinned (`docker.io/library/nginx:1.25@sha256:…`).
    pub resolved: String,
    /// Digest of the top manifest or index.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
}

/// One remote chart and what it resolved to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedChart {
    /// The `source` exactly as written in the manifest.
    pub source: String,
    /// The chart name, for Helm repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// The chart version.
    pub version: String,
    /// For OCI charts the artifact manifest's digest; for Helm repositories
    /// the `.tgz` digest.
    pub digest: Digest,
    /// For Helm repositories, the `.tgz` URL the index named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Default for LockFile {
    fn default() -> Self {
        LockFile {
            lock_version: LOCK_VERSION,
            images: Vec::new(),
            charts: Vec::new(),
        }
    }
}

impl LockFile {
    /// The lock file that belongs to `manifest`: `NAME.lock.json` beside it.
    pub fn default_path(manifest: &Path) -> PathBuf {
        let stem = manifest
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "bundle".into());
        manifest.with_file_name(format!("{stem}.lock.json"))
    }

    /// Reads `path`; `None` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<LockFile>> {
        let f = match airgap_format::regular_file::open_regular(path) {
            Ok(f) => f,
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => return Ok(None),
            Err(e) => bail!("{e}"),
        };
        let mut bytes = Vec::new();
        f.take(MAX_LOCK_BYTES + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if bytes.len() as u64 > MAX_LOCK_BYTES {
            bail!("{}: larger than {MAX_LOCK_BYTES} bytes", path.display());
        }
        let lock: LockFile = serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}:{}: not a lock file: {e}",
                path.display(),
                e.line(),
                e.column()
            )
        })?;
        if lock.lock_version != LOCK_VERSION {
            bail!(
                "{}: lockVersion {} is not supported (expected {LOCK_VERSION})",
                path.display(),
                lock.lock_version
            );
        }
        Ok(Some(lock))
    }

    /// Writes the lock atomically, as indented JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        airgap_format::atomic_file::write_file_atomic(path, text.as_bytes(), 0o644)
            .with_context(|| format!("{}: cannot write the lock file", path.display()))
    }

    /// The entry pinning image source `source`.
    pub fn image(&self, source: &str) -> Option<&LockedImage> {
        self.images.iter().find(|i| i.source == source)
    }

    /// The entry pinning chart `source` (with `chart` and `version` for
    /// Helm repositories).
    pub fn chart(&self, source: &str, chart: Option<&str>, version: &str) -> Option<&LockedChart> {
        self.charts
            .iter()
            .find(|c| c.source == source && c.chart.as_deref() == chart && c.version == version)
    }

    /// Adds an image entry unless the source is pinned already.
    pub fn add_image(&mut self, entry: LockedImage) {
        if self.image(&entry.source).is_none() {
            self.images.push(entry);
        }
    }

    /// Adds a chart entry unless it is pinned already.
    pub fn add_chart(&mut self, entry: LockedChart) {
        if self
            .chart(&entry.source, entry.chart.as_deref(), &entry.version)
            .is_none()
        {
            self.charts.push(entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = LockFile::default_path(&dir.path().join("demo.yaml"));
        assert!(path.ends_with("demo.lock.json"));
        assert_eq!(LockFile::load(&path).unwrap(), None);
        let mut lock = LockFile::default();
        lock.add_image(LockedImage {
            source: "reg.example/app:1".into(),
            resolved: format!("reg.example/app:1@{}", Digest::of(b"x")),
            digest: Digest::of(b"x"),
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            size: 1,
        });
        lock.save(&path).unwrap();
        assert_eq!(LockFile::load(&path).unwrap(), Some(lock));
        std::fs::write(&path, "{\"lockVersion\": 1, \"imagez\": []}").unwrap();
        let e = LockFile::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("demo.lock.json:1:") && e.contains("imagez"),
            "{e}"
        );
        std::fs::write(&path, "{\"lockVersion\": 9}").unwrap();
        assert!(LockFile::load(&path)
            .unwrap_err()
            .to_string()
            .contains("lockVersion 9"));
    }
}
