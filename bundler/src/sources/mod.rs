//! Where images come from: OCI image layouts and `docker save` tarballs.
//! Each source resolves a reference to a top manifest (or index) and lists
//! every blob it needs, with the place its bytes can be read from.

pub mod docker_archive;
pub mod oci_layout;
pub mod tar_index;

use std::collections::BTreeSet;
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use airgap_format::Digest;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

/// Largest manifest, index or config read into memory.
pub const MAX_METADATA_BYTES: u64 = 16 << 20;
/// Deepest nesting of indexes followed.
const MAX_DEPTH: usize = 4;

/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker manifest list media type.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A parsed image source string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// `oci-layout:PATH[:REF]`
    OciLayout {
        /// Layout directory.
        path: String,
        /// `org.opencontainers.image.ref.name` to select.
        reference: Option<String>,
    },
    /// `docker-archive:PATH[:REF]`
    DockerArchive {
        /// Tarball.
        path: String,
        /// Image name (`name:tag`) to select.
        reference: Option<String>,
    },
}

impl ImageSource {
    /// Parses `TRANSPORT:PATH[:REF]`. Like skopeo, PATH ends at the first ':'.
    pub fn parse(s: &str) -> Result<ImageSource, String> {
        let (transport, rest) = s.split_once(':').ok_or_else(|| {
            format!("{s:?}: expected oci-layout:PATH[:REF] or docker-archive:PATH[:REF]")
        })?;
        let (path, reference) = match rest.split_once(':') {
            Some((p, r)) => (p.to_string(), Some(r.to_string())),
            None => (rest.to_string(), None),
        };
        if path.is_empty() {
            return Err(format!("{s:?}: empty path"));
        }
        if reference.as_deref() == Some("") {
            return Err(format!("{s:?}: empty reference after ':'"));
        }
        match transport {
            "oci-layout" => Ok(ImageSource::OciLayout { path, reference }),
            "docker-archive" => Ok(ImageSource::DockerArchive { path, reference }),
            other => Err(format!(
                "unknown image transport {other:?}: expected one of oci-layout, docker-archive (registry references come later)"
            )),
        }
    }
}

/// Where a blob's bytes are.
#[derive(Clone, Debug)]
pub enum BlobData {
    /// `len` bytes at `offset` in a file.
    File {
        /// The file.
        path: PathBuf,
        /// Offset of the first byte.
        offset: u64,
    },
    /// Bytes produced by the bundler (a synthesised manifest).
    Memory(Arc<Vec<u8>>),
}

impl BlobData {
    /// Opens a reader over exactly `len` bytes.
    pub fn open(&self, len: u64) -> Result<Box<dyn Read + Send>> {
        match self {
            BlobData::File { path, offset } => {
                let mut f = std::fs::File::open(path)
                    .with_context(|| format!("{}: cannot open", path.display()))?;
                f.seek(SeekFrom::Start(*offset))
                    .with_context(|| format!("{}: cannot seek", path.display()))?;
                Ok(Box::new(f.take(len)))
            }
            BlobData::Memory(b) => Ok(Box::new(std::io::Cursor::new(b.clone().to_vec()))),
        }
    }
}

impl fmt::Display for BlobData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobData::File { path, offset: 0 } => write!(f, "{}", path.display()),
            BlobData::File { path, offset } => write!(f, "{} at offset {offset}", path.display()),
            BlobData::Memory(_) => write!(f, "generated manifest"),
        }
    }
}

/// A blob an image needs.
#[derive(Clone, Debug)]
pub struct SourceBlob {
    /// Digest (checked when the bytes are copied).
    pub digest: Digest,
    /// Size.
    pub size: u64,
    /// Media type of the reference.
    pub media_type: String,
    /// Where the bytes are.
    pub data: BlobData,
}

/// An image resolved from a source.
#[derive(Clone, Debug)]
pub struct ResolvedImage {
    /// The top manifest or index.
    pub top: SourceBlob,
    /// Every blob, the top one first, each once.
    pub blobs: Vec<SourceBlob>,
    /// Platforms provided (`os/arch[/variant]`), sorted.
    pub platforms: Vec<String>,
    /// Repository and tag implied by the source reference, when it names them.
    pub default_name: Option<(String, String)>,
}

/// Access to the blobs of a source by digest.
pub trait BlobStore {
    /// Human name of the source, for errors.
    fn describe(&self) -> String;
    /// Where the blob's bytes are, checking that it exists with `size` bytes.
    fn locate(&self, digest: &Digest, size: u64) -> Result<BlobData>;
}

/// Reads a whole (small) blob and checks its digest.
pub fn read_verified(
    store: &dyn BlobStore,
    digest: &Digest,
    size: u64,
    what: &str,
) -> Result<Vec<u8>> {
    if size > MAX_METADATA_BYTES {
        bail!(
            "{}: {what} {digest} is {size} bytes, above the {MAX_METADATA_BYTES}-byte limit",
            store.describe()
        );
    }
    let data = store.locate(digest, size)?;
    let mut bytes = Vec::with_capacity(size as usize);
    data.open(size)?
        .read_to_end(&mut bytes)
        .with_context(|| format!("{}: reading {what} {digest}", store.describe()))?;
    if bytes.len() as u64 != size || Digest::of(&bytes) != *digest {
        bail!(
            "{}: {what} {digest}: content does not match its digest",
            store.describe()
        );
    }
    Ok(bytes)
}

/// Formats a platform as `os/arch[/variant]`.
fn platform_string(os: &str, arch: &str, variant: Option<&str>) -> String {
    match variant {
        Some(v) if !v.is_empty() => format!("{os}/{arch}/{v}"),
        _ => format!("{os}/{arch}"),
    }
}

/// Walks an image from its top descriptor, collecting every blob and the
/// platforms. Manifests and indexes are read and checked against their digest.
pub fn walk_image(
    store: &dyn BlobStore,
    top_digest: Digest,
    top_size: u64,
    top_media_type: Option<&str>,
) -> Result<(SourceBlob, Vec<SourceBlob>, Vec<String>)> {
    let mut blobs = Vec::new();
    let mut seen = BTreeSet::new();
    let mut platforms = BTreeSet::new();
    let top = walk(
        store,
        top_digest,
        top_size,
        top_media_type,
        None,
        0,
        &mut blobs,
        &mut seen,
        &mut platforms,
    )?;
    Ok((top, blobs, platforms.into_iter().collect()))
}

#[allow(clippy::too_many_arguments)]
fn walk(
    store: &dyn BlobStore,
    digest: Digest,
    size: u64,
    media_type: Option<&str>,
    platform: Option<String>,
    depth: usize,
    blobs: &mut Vec<SourceBlob>,
    seen: &mut BTreeSet<Digest>,
    platforms: &mut BTreeSet<String>,
) -> Result<SourceBlob> {
    if depth > MAX_DEPTH {
        bail!(
            "{}: indexes nested deeper than {MAX_DEPTH}",
            store.describe()
        );
    }
    let bytes = read_verified(store, &digest, size, "manifest")?;
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: manifest {digest} is not JSON", store.describe()))?;
    let declared = json.get("mediaType").and_then(|m| m.as_str());
    let mt = media_type
        .or(declared)
        .map(str::to_string)
        .unwrap_or_else(|| {
            if json.get("manifests").is_some() {
                OCI_INDEX.to_string()
            } else {
                OCI_MANIFEST.to_string()
            }
        });
    let me = SourceBlob {
        digest,
        size,
        media_type: mt.clone(),
        data: store.locate(&digest, size)?,
    };
    if seen.insert(digest) {
        blobs.push(me.clone());
    }
    match mt.as_str() {
        OCI_INDEX | DOCKER_LIST => {
            let index: ImageIndex = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{}: index {digest} is not a valid image index",
                    store.describe()
                )
            })?;
            for child in index.manifests() {
                let child_digest: Digest = child
                    .digest()
                    .to_string()
                    .parse()
                    .map_err(|e| anyhow!("{}: index {digest}: {e}", store.describe()))?;
                let plat = child.platform().as_ref().map(|p| {
                    platform_string(
                        &p.os().to_string(),
                        &p.architecture().to_string(),
                        p.variant().as_deref(),
                    )
                });
                walk(
                    store,
                    child_digest,
                    child.size(),
                    Some(child.media_type().as_ref()),
                    plat,
                    depth + 1,
                    blobs,
                    seen,
                    platforms,
                )?;
            }
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let manifest: ImageManifest = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{}: manifest {digest} is not a valid image manifest",
                    store.describe()
                )
            })?;
            let config = manifest.config();
            let config_digest: Digest = config
                .digest()
                .to_string()
                .parse()
                .map_err(|e| anyhow!("{}: manifest {digest} config: {e}", store.describe()))?;
            let config_mt = config.media_type().to_string();
            let mut children = vec![(
                config_digest,
                config.size(),
                config_mt.clone(),
                config.urls().as_ref().is_some_and(|u| !u.is_empty()),
            )];
            for layer in manifest.layers() {
                let d: Digest =
                    layer.digest().to_string().parse().map_err(|e| {
                        anyhow!("{}: manifest {digest} layer: {e}", store.describe())
                    })?;
                let foreign = layer.urls().as_ref().is_some_and(|u| !u.is_empty());
                children.push((d, layer.size(), layer.media_type().to_string(), foreign));
            }
            for (d, s, m, foreign) in children {
                if foreign {
                    bail!("{}: manifest {digest}: blob {d} is a foreign (non-distributable) layer, which bundles cannot carry", store.describe());
                }
                let data = store.locate(&d, s)?;
                if seen.insert(d) {
                    blobs.push(SourceBlob {
                        digest: d,
                        size: s,
                        media_type: m,
                        data,
                    });
                }
            }
            let plat = match platform {
                Some(p) => Some(p),
                None if config_mt == OCI_CONFIG
                    || config_mt == "application/vnd.docker.container.image.v1+json" =>
                {
                    let cbytes = read_verified(store, &config_digest, config.size(), "config")?;
                    let cfg: ImageConfiguration =
                        serde_json::from_slice(&cbytes).with_context(|| {
                            format!(
                                "{}: config {config_digest} is not a valid image configuration",
                                store.describe()
                            )
                        })?;
                    Some(platform_string(
                        &cfg.os().to_string(),
                        &cfg.architecture().to_string(),
                        cfg.variant().as_deref(),
                    ))
                }
                None => None,
            };
            // Attestation manifests in buildx indexes declare unknown/unknown.
            if let Some(p) = plat.filter(|p| !p.starts_with("unknown/")) {
                platforms.insert(p);
            }
        }
        other => bail!(
            "{}: {digest} has media type {other}, expected an image manifest or index",
            store.describe()
        ),
    }
    Ok(me)
}

/// Walks the image an `index.json` descriptor (as JSON) points at: reads its
/// digest, size and media type, then [`walk_image`].
pub fn walk_descriptor(
    store: &dyn BlobStore,
    descriptor: &serde_json::Value,
) -> Result<(SourceBlob, Vec<SourceBlob>, Vec<String>)> {
    let digest: Digest = descriptor
        .get("digest")
        .and_then(|d| d.as_str())
        .unwrap_or_default()
        .parse()
        .with_context(|| format!("{}: index.json descriptor digest", store.describe()))?;
    let size = descriptor
        .get("size")
        .and_then(|s| s.as_u64())
        .with_context(|| format!("{}: descriptor {digest} has no size", store.describe()))?;
    let media_type = descriptor.get("mediaType").and_then(|m| m.as_str());
    walk_image(store, digest, size, media_type)
}

/// Splits `repo:tag` (the tag is after the last ':' that follows the last '/').
pub fn split_reference(r: &str) -> Option<(String, String)> {
    let slash = r.rfind('/').map(|i| i + 1).unwrap_or(0);
    let colon = r[slash..].rfind(':')? + slash;
    Some((r[..colon].to_string(), r[colon + 1..].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sources() {
        assert_eq!(
            ImageSource::parse("oci-layout:images/web:demo/web:1.0").unwrap(),
            ImageSource::OciLayout {
                path: "images/web".into(),
                reference: Some("demo/web:1.0".into())
            }
        );
        assert_eq!(
            ImageSource::parse("docker-archive:w.tar").unwrap(),
            ImageSource::DockerArchive {
                path: "w.tar".into(),
                reference: None
            }
        );
        assert!(ImageSource::parse("docker://x").is_err());
        assert!(ImageSource::parse("oci-layout:").is_err());
    }

    #[test]
    fn splits_references() {
        assert_eq!(
            split_reference("demo/web:1.0"),
            Some(("demo/web".into(), "1.0".into()))
        );
        assert_eq!(
            split_reference("host:5000/web:1.0"),
            Some(("host:5000/web".into(), "1.0".into()))
        );
        assert_eq!(split_reference("host:5000/web"), None);
        assert_eq!(split_reference("latest"), None);
    }
}
