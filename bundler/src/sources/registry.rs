//! Images from a registry: the top manifest is resolved (from the lock file
//! when it pins one, else by asking the registry for the tag), manifests and
//! configs are fetched while the image is walked, and layers are queued for
//! the parallel download that follows.

use airgap_format::Digest;
use anyhow::{bail, Result};

use super::reference::ImageReference;
use super::{select_platforms, BlobData, BlobStore, Metadata, PlatformFilter, ResolvedImage};
use crate::pull::Puller;

/// One repository of one registry, seen through the puller's cache.
pub struct RegistryStore<'p> {
    puller: &'p Puller,
    host: String,
    repository: String,
    shown: String,
}

impl<'p> RegistryStore<'p> {
    /// The store for `reference`'s repository.
    pub fn new(puller: &'p Puller, reference: &ImageReference) -> Self {
        RegistryStore {
            puller,
            host: reference.api_host().to_string(),
            repository: reference.repository.clone(),
            shown: format!("{}/{}", reference.registry, reference.repository),
        }
    }
}

impl BlobStore for RegistryStore<'_> {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn locate(&self, digest: &Digest, size: u64) -> Result<BlobData> {
        let path = self
            .puller
            .want_blob(&self.host, &self.repository, digest, size, &self.shown);
        Ok(BlobData::File { path, offset: 0 })
    }

    fn read_metadata(&self, digest: &Digest, size: u64, kind: Metadata) -> Result<Vec<u8>> {
        match kind {
            Metadata::Manifest => {
                let m = self.puller.fetch_manifest(
                    &self.host,
                    &self.repository,
                    &digest.to_string(),
                )?;
                if m.bytes.len() as u64 != size {
                    bail!(
                        "{}: manifest {digest} is {} bytes, but is referenced with size {size}",
                        self.shown,
                        m.bytes.len()
                    );
                }
                Ok(m.bytes)
            }
            Metadata::Config => self.puller.fetch_small_blob(
                &self.host,
                &self.repository,
                digest,
                size,
                &format!("{}: config", self.shown),
            ),
        }
    }
}

/// The top manifest of a registry image: what a lock file pins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Top {
    /// Digest of the manifest or index.
    pub digest: Digest,
    /// Its media type.
    pub media_type: String,
    /// Its size.
    pub size: u64,
}

/// Resolves `reference` (to `locked` when a lock file pins it) and walks
/// the image with `platforms` selected; layers are queued on the puller.
pub fn resolve(
    puller: &Puller,
    reference: &ImageReference,
    locked: Option<Digest>,
    platforms: Option<&[PlatformFilter]>,
) -> Result<(Top, Vec<ResolvedImage>)> {
    let store = RegistryStore::new(puller, reference);
    let wanted = locked
        .or(reference.digest)
        .map(|d| d.to_string())
        .unwrap_or_else(|| reference.manifest_reference());
    let top = puller.fetch_manifest(reference.api_host(), &reference.repository, &wanted)?;
    if let Some(pinned) = reference.digest {
        if top.digest != pinned {
            bail!("{reference}: the registry returned manifest {}", top.digest);
        }
    }
    let top = Top {
        digest: top.digest,
        media_type: top.media_type,
        size: top.bytes.len() as u64,
    };
    let selected = select_platforms(
        &store,
        top.digest,
        top.size,
        Some(&top.media_type),
        platforms,
    )?;
    let default_name = reference
        .tag
        .clone()
        .map(|t| (reference.repository.clone(), t));
    Ok((top, ResolvedImage::from_selection(selected, default_name)))
}
