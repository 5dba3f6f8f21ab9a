//! `airgap-bundle lock MANIFEST`: resolves a manifest's registry images
//! and remote charts as they are now and pins them in its lock file.
//! A command over the layers below it: the manifest ([`crate::manifest`]),
//! the lock file's type ([`crate::lock`]) and resolution
//! ([`crate::plan`]).

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::lock::LockFile;

/// Resolves every registry image and remote chart of the manifest at
/// `manifest_path` as it is now, and writes the pins to `out` (default:
/// [`LockFile::default_path`]). Manifests and configs are fetched to check
/// the sources (and platforms) exist; image layers are not downloaded.
pub fn lock_manifest(
    manifest_path: &Path,
    out: Option<&Path>,
    mut pull: crate::pull::PullOptions,
) -> Result<(PathBuf, LockFile)> {
    let manifest = crate::manifest::Manifest::load(manifest_path)?;
    let out = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| LockFile::default_path(manifest_path));
    // Before anything is pulled.
    airgap_format::atomic_file::check_output_folder(&out)?;
    pull.hosts.extend(manifest.host_settings());
    let puller = crate::pull::Puller::new(pull)?;
    let mut remote = crate::plan::Remote {
        puller: &puller,
        lock: None,
        lock_path: out.clone(),
        locked: false,
        resolved: LockFile::default(),
    };
    crate::plan::resolve(&manifest, 0, Some(&mut remote))?;
    remote.resolved.save(&out)?;
    Ok((out, remote.resolved))
}
