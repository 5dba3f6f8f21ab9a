//! OCI image-layout directories (`oci-layout:PATH:REF`).

use std::path::{Path, PathBuf};

use airgap_format::bundle_json::REF_NAME_ANNOTATION;
use airgap_format::Digest;
use anyhow::{bail, Context, Result};

use super::{
    descriptor_top, select_platforms, split_reference, BlobData, BlobStore, PlatformFilter,
    ResolvedImage, MAX_METADATA_BYTES,
};

/// An OCI layout directory.
pub struct OciLayout {
    dir: PathBuf,
}

impl OciLayout {
    /// Opens a layout, checking its `oci-layout` marker.
    pub fn open(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{}: OCI layout directory not found", dir.display());
        }
        let marker = dir.join("oci-layout");
        let text = read_small(&marker)?;
        let v: serde_json::Value = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not JSON", marker.display()))?;
        if v.get("imageLayoutVersion")
            .and_then(|x| x.as_str())
            .is_none()
        {
            bail!("{}: no imageLayoutVersion", marker.display());
        }
        Ok(OciLayout {
            dir: dir.to_path_buf(),
        })
    }

    /// Resolves `reference` (an `org.opencontainers.image.ref.name`), or the
    /// only image when no reference is given.
    pub fn resolve(
        &self,
        reference: Option<&str>,
        platforms: Option<&[PlatformFilter]>,
    ) -> Result<Vec<ResolvedImage>> {
        let index_path = self.dir.join("index.json");
        let bytes = read_small(&index_path)?;
        let index: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not JSON", index_path.display()))?;
        let manifests = match index.get("manifests") {
            Some(serde_json::Value::Array(a)) => a.clone(),
            Some(serde_json::Value::Null) | None => Vec::new(),
            Some(_) => bail!("{}: manifests is not a list", index_path.display()),
        };
        let name_of = |m: &serde_json::Value| {
            m.get("annotations")
                .and_then(|a| a.get(REF_NAME_ANNOTATION))
                .and_then(|n| n.as_str())
                .map(str::to_string)
        };
        let chosen = match reference {
            Some(r) => {
                let found: Vec<&serde_json::Value> = manifests
                    .iter()
                    .filter(|m| name_of(m).as_deref() == Some(r))
                    .collect();
                match found.as_slice() {
                    [one] => *one,
                    [] => {
                        let names: Vec<String> = manifests.iter().filter_map(name_of).collect();
                        bail!(
                            "{}: no image named {r:?} (available: {})",
                            index_path.display(),
                            if names.is_empty() {
                                "none".into()
                            } else {
                                names.join(", ")
                            }
                        )
                    }
                    _ => bail!("{}: several images named {r:?}", index_path.display()),
                }
            }
            None => match manifests.as_slice() {
                [one] => one,
                _ => bail!(
                    "{}: {} images; name one with oci-layout:PATH:REF",
                    index_path.display(),
                    manifests.len()
                ),
            },
        };
        let (digest, size, media_type) = descriptor_top(self, chosen)?;
        let selected = select_platforms(self, digest, size, media_type.as_deref(), platforms)?;
        let default_name = reference
            .or(name_of(chosen).as_deref())
            .and_then(split_reference);
        Ok(ResolvedImage::from_selection(selected, default_name))
    }
}

impl BlobStore for OciLayout {
    fn describe(&self) -> String {
        format!("OCI layout {}", self.dir.display())
    }

    fn locate(&self, digest: &Digest, size: u64) -> Result<BlobData> {
        let path = self.dir.join("blobs/sha256").join(digest.hex());
        let meta = std::fs::metadata(&path)
            .with_context(|| format!("{}: blob {digest} is missing", self.describe()))?;
        if !meta.is_file() {
            bail!("{}: blob {digest} is not a regular file", self.describe());
        }
        if meta.len() != size {
            bail!(
                "{}: blob {digest} is {} bytes, its descriptor says {size}",
                self.describe(),
                meta.len()
            );
        }
        Ok(BlobData::File { path, offset: 0 })
    }
}

fn read_small(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut out = Vec::new();
    f.take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut out)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    if out.len() as u64 > MAX_METADATA_BYTES {
        bail!("{}: larger than {MAX_METADATA_BYTES} bytes", path.display());
    }
    Ok(out)
}
