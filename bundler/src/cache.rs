//! The local content cache: every blob pulled from a registry or chart
//! repository, stored by digest under `blobs/sha256/<hex>`, so a second build
//! pulls nothing. Entries are written to a temporary file, checked against
//! their digest and renamed into place, so the cache never holds a partial
//! or wrong blob under a final name (except by outside tampering, which the
//! build's own digest check still catches).

use std::io::Write;
use std::path::{Path, PathBuf};

use airgap_format::Digest;
use anyhow::{Context, Result};

/// Environment variable naming the cache folder.
pub const CACHE_ENV: &str = "AIRGAP_BUNDLE_CACHE";

/// A digest-keyed blob cache on disk.
#[derive(Clone, Debug)]
pub struct BlobCache {
    dir: PathBuf,
}

impl BlobCache {
    /// The default folder: `$AIRGAP_BUNDLE_CACHE`, else
    /// `$XDG_CACHE_HOME/airgap-bundle`, else `~/.cache/airgap-bundle`.
    pub fn default_dir() -> PathBuf {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(d) = env(CACHE_ENV) {
            return d;
        }
        if let Some(d) = env("XDG_CACHE_HOME") {
            return d.join("airgap-bundle");
        }
        match env("HOME") {
            Some(h) => h.join(".cache/airgap-bundle"),
            None => std::env::temp_dir().join("airgap-bundle-cache"),
        }
    }

    /// Opens (creating) the cache at `dir`.
    pub fn open(dir: &Path) -> Result<BlobCache> {
        for sub in ["blobs/sha256", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("{}: cannot create the cache folder", dir.display()))?;
        }
        Ok(BlobCache {
            dir: dir.to_path_buf(),
        })
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob `digest` is (or would be) stored.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.blob_path())
    }

    /// Whether the blob is cached with `size` bytes.
    pub fn has(&self, digest: &Digest, size: u64) -> bool {
        std::fs::metadata(self.path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Drops a cached blob found to be wrong.
    pub fn evict(&self, digest: &Digest) {
        let _ = std::fs::remove_file(self.path(digest));
    }

    /// A temporary file inside the cache, for a download in progress.
    pub fn temp_file(&self) -> Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(".download-")
            .tempfile_in(self.dir.join("tmp"))
            .with_context(|| format!("{}: cannot create a temporary file", self.dir.display()))
    }

    /// Moves a fully written and checked temporary file into place as `digest`.
    pub fn commit(&self, tmp: tempfile::NamedTempFile, digest: &Digest) -> Result<PathBuf> {
        use std::os::unix::fs::PermissionsExt;
        let dest = self.path(digest);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .context("setting cache file permissions")?;
        tmp.as_file().sync_data().context("syncing a cache file")?;
        tmp.persist(&dest)
            .map_err(|e| e.error)
            .with_context(|| format!("{}: cannot store in the cache", dest.display()))?;
        Ok(dest)
    }

    /// Stores small bytes already checked against `digest`.
    pub fn insert_bytes(&self, digest: &Digest, bytes: &[u8]) -> Result<PathBuf> {
        if self.has(digest, bytes.len() as u64) {
            return Ok(self.path(digest));
        }
        let mut tmp = self.temp_file()?;
        tmp.write_all(bytes).context("writing a cache file")?;
        self.commit(tmp, digest)
    }
}
