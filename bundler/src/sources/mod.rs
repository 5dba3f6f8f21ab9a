//! Where images come from: OCI image layouts, `docker save` tarballs and
//! registries. Each source resolves a reference to a top manifest (or index)
//! and lists every blob it needs, with the place its bytes can be read from.

pub mod docker_archive;
pub mod oci_layout;
pub mod reference;
pub mod registry;
pub mod remote_chart;
pub mod tar_index;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use airgap_format::Digest;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};

/// Largest manifest, index or config read into memory.
pub const MAX_METADATA_BYTES: u64 = 16 << 20;
pub use airgap_registry::media_types::{
    DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
use airgap_registry::walk::{Node, Walked};

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
    /// A registry reference, `[docker://]host[:port]/repo[:tag][@digest]`.
    Registry(reference::ImageReference),
}

/// skopeo transports that are not sources here (so that `oci:x` is not
/// taken for the Docker Hub image `library/oci` with tag `x`).
const OTHER_TRANSPORTS: &[&str] = &[
    "oci",
    "oci-archive",
    "dir",
    "docker-daemon",
    "containers-storage",
    "sif",
    "ostree",
];

impl ImageSource {
    /// Parses `TRANSPORT:PATH[:REF]` (like skopeo, PATH ends at the first
    /// ':') or a registry reference, optionally prefixed `docker://`.
    pub fn parse(s: &str) -> Result<ImageSource, String> {
        if let Some(r) = s.strip_prefix("docker://") {
            return reference::ImageReference::parse(r).map(ImageSource::Registry);
        }
        let Some((transport, rest)) = s.split_once(':').filter(|(t, _)| {
            ["oci-layout", "docker-archive"].contains(t) || OTHER_TRANSPORTS.contains(t)
        }) else {
            return reference::ImageReference::parse(s)
                .map(ImageSource::Registry)
                .map_err(|e| format!("{e}; expected oci-layout:PATH[:REF], docker-archive:PATH[:REF] or a registry reference such as registry.example/vendor/app:1.0"));
        };
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
                "image transport {other:?} is not supported: expected oci-layout:PATH[:REF], docker-archive:PATH[:REF] or a registry reference"
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
    /// Appended to the tag (`-linux-amd64`) when one source gave several
    /// images, one per platform selected.
    pub tag_suffix: Option<String>,
}

impl ResolvedImage {
    /// Images made from a platform selection, all with `default_name`.
    pub fn from_selection(
        selected: Vec<Selected>,
        default_name: Option<(String, String)>,
    ) -> Vec<ResolvedImage> {
        selected
            .into_iter()
            .map(|s| ResolvedImage {
                top: s.image.0,
                blobs: s.image.1,
                platforms: s.image.2,
                default_name: default_name.clone(),
                tag_suffix: s.tag_suffix,
            })
            .collect()
    }

    /// Checks a single image (from a source without platform selection)
    /// against the platforms asked for.
    pub fn check_platforms(&self, wanted: Option<&[PlatformFilter]>, what: &str) -> Result<()> {
        let Some(wanted) = wanted.filter(|w| !w.is_empty()) else {
            return Ok(());
        };
        let fits = wanted.len() == 1
            && (self.top.media_type == OCI_MANIFEST || self.top.media_type == DOCKER_MANIFEST)
            && self.platforms.iter().any(|h| {
                PlatformFilter::parse(h)
                    .is_ok_and(|p| wanted[0].matches(&p.os, &p.arch, p.variant.as_deref()))
            });
        if !fits {
            let want: Vec<String> = wanted.iter().map(|w| w.to_string()).collect();
            bail!(
                "{what}: platforms {want:?} asked for, but it provides {:?} and platform selection works on registry and OCI layout indexes only",
                self.platforms
            );
        }
        Ok(())
    }
}

/// Access to the blobs of a source by digest.
pub trait BlobStore {
    /// Human name of the source, for errors.
    fn describe(&self) -> String;
    /// Where the blob's bytes are, checking that it exists with `size` bytes.
    fn locate(&self, digest: &Digest, size: u64) -> Result<BlobData>;
    /// The bytes of a (small) manifest, index or config, checked against
    /// `digest`. Registries serve manifests and configs from different
    /// endpoints, hence `kind`.
    fn read_metadata(&self, digest: &Digest, size: u64, kind: Metadata) -> Result<Vec<u8>> {
        read_verified(self, digest, size, kind.as_str())
    }
}

/// What a metadata read is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metadata {
    /// An image manifest or index.
    Manifest,
    /// An image configuration.
    Config,
}

impl Metadata {
    /// `manifest` or `config`, for messages.
    pub fn as_str(&self) -> &'static str {
        match self {
            Metadata::Manifest => "manifest",
            Metadata::Config => "config",
        }
    }
}

/// Reads a whole (small) blob and checks its digest.
pub fn read_verified<S: BlobStore + ?Sized>(
    store: &S,
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
/// platforms, with [`airgap_registry::walk`]. Manifests and indexes are
/// read and checked against their digest, each once however many parents
/// list it; blobs come a parent before its children, each once.
///
/// A manifest's platform is the one each index listing it gives, else the
/// one its config names (the config read once).
pub fn walk_image(
    store: &dyn BlobStore,
    top_digest: Digest,
    top_size: u64,
    top_media_type: Option<&str>,
) -> Result<(SourceBlob, Vec<SourceBlob>, Vec<String>)> {
    let top = store.read_metadata(&top_digest, top_size, Metadata::Manifest)?;
    let mut read = |d: &Digest, size: u64| -> Result<Option<Vec<u8>>> {
        store.read_metadata(d, size, Metadata::Manifest).map(Some)
    };
    let walked = airgap_registry::walk::walk((top_digest, top_media_type, top), &mut read)
        .with_context(|| store.describe())?;
    for (digest, mt, _) in &walked.manifests {
        if !matches!(
            mt.as_str(),
            OCI_INDEX | DOCKER_LIST | OCI_MANIFEST | DOCKER_MANIFEST
        ) {
            bail!(
                "{}: {digest} has media type {mt}, expected an image manifest or index",
                store.describe()
            );
        }
    }
    for (digest, node) in &walked.parsed {
        let Node::Manifest(m) = node else { continue };
        for b in std::iter::once(m.config()).chain(m.layers()) {
            if b.urls().as_ref().is_some_and(|u| !u.is_empty()) {
                bail!(
                    "{}: manifest {digest}: blob {} is a foreign (non-distributable) layer, which bundles cannot carry",
                    store.describe(),
                    b.digest()
                );
            }
        }
    }
    let mut blobs = Vec::with_capacity(walked.preorder.len());
    for digest in &walked.preorder {
        let (size, media_type) = walked
            .describe(digest)
            .expect("the walk describes what it met");
        blobs.push(SourceBlob {
            digest: *digest,
            size,
            media_type: media_type.to_string(),
            data: store.locate(digest, size)?,
        });
    }
    let platforms = platforms(store, &walked, top_digest)?;
    Ok((blobs[0].clone(), blobs, platforms))
}

/// The platforms of a walked image: each index's listing of a manifest
/// gives one, or, where a listing gives none (or the manifest is the top),
/// the manifest's config does. Attestation manifests in buildx indexes
/// declare `unknown/unknown` and are left out.
fn platforms(store: &dyn BlobStore, walked: &Walked, top: Digest) -> Result<Vec<String>> {
    let mut out = BTreeSet::new();
    let mut from_config: BTreeMap<Digest, Option<String>> = BTreeMap::new();
    let mut listings: Vec<(Digest, Option<String>)> = vec![(top, None)];
    for node in walked.parsed.values() {
        let Node::Index(index) = node else { continue };
        for child in index.manifests() {
            let Ok(d) = airgap_registry::walk::digest_of(child) else {
                continue;
            };
            let plat = child.platform().as_ref().map(|p| {
                platform_string(
                    &p.os().to_string(),
                    &p.architecture().to_string(),
                    p.variant().as_deref(),
                )
            });
            listings.push((d, plat));
        }
    }
    for (digest, plat) in listings {
        let Some(Node::Manifest(m)) = walked.parsed.get(&digest) else {
            continue;
        };
        let plat = match plat {
            Some(p) => Some(p),
            None => match from_config.get(&digest) {
                Some(cached) => cached.clone(),
                None => {
                    let p = config_platform(store, m)?;
                    from_config.insert(digest, p.clone());
                    p
                }
            },
        };
        if let Some(p) = plat.filter(|p| !p.starts_with("unknown/")) {
            out.insert(p);
        }
    }
    Ok(out.into_iter().collect())
}

/// The platform an image manifest's config names, when the config is an
/// image configuration (an artifact's is not).
fn config_platform(store: &dyn BlobStore, m: &ImageManifest) -> Result<Option<String>> {
    let config = m.config();
    let mt = config.media_type().to_string();
    if mt != OCI_CONFIG && mt != "application/vnd.docker.container.image.v1+json" {
        return Ok(None);
    }
    let digest = airgap_registry::walk::digest_of(config)
        .with_context(|| format!("{}: config", store.describe()))?;
    let bytes = store.read_metadata(&digest, config.size(), Metadata::Config)?;
    let cfg: ImageConfiguration = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}: config {digest} is not a valid image configuration",
            store.describe()
        )
    })?;
    Ok(Some(platform_string(
        &cfg.os().to_string(),
        &cfg.architecture().to_string(),
        cfg.variant().as_deref(),
    )))
}

/// A platform wanted from a multi-platform image: `os/arch[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformFilter {
    os: String,
    arch: String,
    variant: Option<String>,
}

impl PlatformFilter {
    /// Parses `os/arch[/variant]`.
    pub fn parse(s: &str) -> Result<PlatformFilter, String> {
        if !airgap_format::fields::is_valid_platform(s) {
            return Err(format!(
                "{} is not a platform: expected os/arch[/variant] such as linux/amd64 or linux/arm/v7 ({})",
                airgap_format::display::quote(s),
                airgap_format::fields::PLATFORM_RULE
            ));
        }
        let parts: Vec<&str> = s.split('/').collect();
        Ok(PlatformFilter {
            os: parts[0].into(),
            arch: parts[1].into(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    fn matches(&self, os: &str, arch: &str, variant: Option<&str>) -> bool {
        self.os == os
            && self.arch == arch
            && match (&self.variant, variant) {
                (None, _) => true,
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
            }
    }
}

impl fmt::Display for PlatformFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        platform_string(&self.os, &self.arch, self.variant.as_deref()).fmt(f)
    }
}

/// One image chosen from a source: the whole image, or one platform of it.
#[derive(Clone, Debug)]
pub struct Selected {
    /// The platform (`linux-amd64`) to append to the tag when a source gave
    /// several images; `None` when it gave one.
    pub tag_suffix: Option<String>,
    /// The top manifest or index, its blobs and platforms.
    pub image: (SourceBlob, Vec<SourceBlob>, Vec<String>),
}

/// Resolves an image, keeping only `platforms` when given.
///
/// Without a filter the image is kept whole, index and every platform. With
/// one platform, the image *is* that platform's manifest, exactly as the
/// source's index lists it: its digest is the one `docker pull --platform`
/// would run. With several, each becomes an image of its own, tagged
/// `TAG-os-arch[-variant]`. No index is ever made up, so every digest that
/// reaches a site is a digest the vendor published.
pub fn select_platforms(
    store: &dyn BlobStore,
    top_digest: Digest,
    top_size: u64,
    top_media_type: Option<&str>,
    platforms: Option<&[PlatformFilter]>,
) -> Result<Vec<Selected>> {
    let Some(wanted) = platforms.filter(|p| !p.is_empty()) else {
        return Ok(vec![Selected {
            tag_suffix: None,
            image: walk_image(store, top_digest, top_size, top_media_type)?,
        }]);
    };
    let bytes = store.read_metadata(&top_digest, top_size, Metadata::Manifest)?;
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: manifest {top_digest} is not JSON", store.describe()))?;
    let is_index = match top_media_type.or(json.get("mediaType").and_then(|m| m.as_str())) {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(_) => false,
        None => json.get("manifests").is_some(),
    };
    if !is_index {
        let image = walk_image(store, top_digest, top_size, top_media_type)?;
        let have = image.2.clone();
        let fits = wanted.len() == 1
            && have.iter().any(|h| {
                let p = PlatformFilter::parse(h).ok();
                p.is_some_and(|p| wanted[0].matches(&p.os, &p.arch, p.variant.as_deref()))
            });
        if !fits {
            let want: Vec<String> = wanted.iter().map(|w| w.to_string()).collect();
            bail!(
                "{}: platforms {want:?} asked for, but the image is a single-platform image for {have:?}",
                store.describe()
            );
        }
        return Ok(vec![Selected {
            tag_suffix: None,
            image,
        }]);
    }
    let index: ImageIndex = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{}: index {top_digest} is not a valid image index",
            store.describe()
        )
    })?;
    let available: Vec<(String, &oci_spec::image::Descriptor)> = index
        .manifests()
        .iter()
        .filter_map(|d| {
            d.platform().as_ref().map(|p| {
                (
                    platform_string(
                        &p.os().to_string(),
                        &p.architecture().to_string(),
                        p.variant().as_deref(),
                    ),
                    d,
                )
            })
        })
        .filter(|(p, _)| !p.starts_with("unknown/"))
        .collect();
    let names: Vec<&str> = available.iter().map(|(p, _)| p.as_str()).collect();
    let mut out = Vec::new();
    for want in wanted {
        let hits: Vec<&(String, &oci_spec::image::Descriptor)> = available
            .iter()
            .filter(|(_, d)| {
                let p = d.platform().as_ref().expect("filtered");
                want.matches(
                    &p.os().to_string(),
                    &p.architecture().to_string(),
                    p.variant().as_deref(),
                )
            })
            .collect();
        let (name, child) = match hits.as_slice() {
            [one] => *one,
            [] => bail!(
                "{}: platform {want} is not in index {top_digest} (it has {names:?})",
                store.describe()
            ),
            many => {
                let m: Vec<&str> = many.iter().map(|(p, _)| p.as_str()).collect();
                bail!(
                    "{}: platform {want} matches {m:?} in index {top_digest}: name the variant",
                    store.describe()
                )
            }
        };
        let digest: Digest = child
            .digest()
            .to_string()
            .parse()
            .map_err(|e| anyhow!("{}: index {top_digest}: {e}", store.describe()))?;
        let media_type = child.media_type().to_string();
        if media_type == OCI_INDEX || media_type == DOCKER_LIST {
            bail!(
                "{}: platform {want} of index {top_digest} is itself an index, which platform selection does not follow",
                store.describe()
            );
        }
        let image = walk_image(store, digest, child.size(), Some(&media_type))?;
        let suffix = name.replace('/', "-");
        if out.iter().any(|s: &Selected| s.image.0.digest == digest) {
            continue;
        }
        out.push(Selected {
            tag_suffix: Some(suffix),
            image,
        });
    }
    if out.len() == 1 {
        out[0].tag_suffix = None;
    }
    Ok(out)
}

/// Walks the image an `index.json` descriptor (as JSON) points at: reads its
/// digest, size and media type, then [`walk_image`].
pub fn walk_descriptor(
    store: &dyn BlobStore,
    descriptor: &serde_json::Value,
) -> Result<(SourceBlob, Vec<SourceBlob>, Vec<String>)> {
    let (digest, size, media_type) = descriptor_top(store, descriptor)?;
    walk_image(store, digest, size, media_type.as_deref())
}

/// The digest, size and media type an `index.json` descriptor (as JSON) names.
pub fn descriptor_top(
    store: &dyn BlobStore,
    descriptor: &serde_json::Value,
) -> Result<(Digest, u64, Option<String>)> {
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
    let media_type = descriptor
        .get("mediaType")
        .and_then(|m| m.as_str())
        .map(str::to_string);
    Ok((digest, size, media_type))
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
        assert!(matches!(
            ImageSource::parse("docker://x").unwrap(),
            ImageSource::Registry(_)
        ));
        assert!(matches!(
            ImageSource::parse("127.0.0.1:5000/vendor/app:1.0").unwrap(),
            ImageSource::Registry(r) if r.registry == "127.0.0.1:5000" && r.repository == "vendor/app"
        ));
        assert!(ImageSource::parse("oci:images/web").is_err());
        assert!(ImageSource::parse("http://x").is_err());
        assert!(ImageSource::parse("oci-layout:").is_err());
    }

    #[test]
    fn platform_filters() {
        let f = PlatformFilter::parse("linux/arm64").unwrap();
        assert!(f.matches("linux", "arm64", Some("v8")));
        assert!(f.matches("linux", "arm64", None));
        assert!(!f.matches("linux", "amd64", None));
        let v7 = PlatformFilter::parse("linux/arm/v7").unwrap();
        assert!(!v7.matches("linux", "arm", Some("v6")));
        assert!(!v7.matches("linux", "arm", None));
        assert_eq!(v7.to_string(), "linux/arm/v7");
        for bad in ["linux", "Linux/amd64", "linux//x", "a/b/c/d"] {
            assert!(PlatformFilter::parse(bad).is_err(), "{bad}");
        }
    }

    /// Blobs in memory, counting metadata reads.
    struct MemStore {
        blobs: std::collections::HashMap<Digest, Vec<u8>>,
        reads: std::cell::Cell<usize>,
    }

    impl MemStore {
        /// Stores `json` and returns its descriptor fields.
        fn add(&mut self, json: serde_json::Value) -> (Digest, u64) {
            let bytes = serde_json::to_vec(&json).unwrap();
            let d = Digest::of(&bytes);
            let n = bytes.len() as u64;
            self.blobs.insert(d, bytes);
            (d, n)
        }
    }

    impl BlobStore for MemStore {
        fn describe(&self) -> String {
            "memory".into()
        }
        fn locate(&self, digest: &Digest, size: u64) -> Result<BlobData> {
            match self.blobs.get(digest) {
                Some(b) if b.len() as u64 == size => Ok(BlobData::Memory(Arc::new(b.clone()))),
                _ => bail!("no blob {digest} of {size} bytes"),
            }
        }
        fn read_metadata(&self, digest: &Digest, size: u64, kind: Metadata) -> Result<Vec<u8>> {
            self.reads.set(self.reads.get() + 1);
            read_verified(self, digest, size, kind.as_str())
        }
    }

    #[test]
    fn shared_descriptors_are_walked_once() {
        // Four levels of indexes (the depth limit), each listing the level
        // below 20 times: walking every path read the manifest 20^4 =
        // 160000 times (an index of indexes costs exponential time in its
        // depth).
        let mut store = MemStore {
            blobs: Default::default(),
            reads: Default::default(),
        };
        let (config, config_size) = store.add(serde_json::json!({
            "architecture": "arm64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []}
        }));
        let (manifest, manifest_size) = store.add(serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.to_string(), "size": config_size},
            "layers": []
        }));
        let index_of = |digest: Digest, size: u64, media_type: &str| {
            let child = serde_json::json!({"mediaType": media_type,
                "digest": digest.to_string(), "size": size,
                "platform": {"os": "linux", "architecture": "amd64"}});
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
                "manifests": vec![child; 20]})
        };
        let mut top = store.add(index_of(manifest, manifest_size, OCI_MANIFEST));
        for _ in 0..2 {
            top = store.add(index_of(top.0, top.1, OCI_INDEX));
        }
        // And the manifest once more without a platform: its config's.
        let mut last = index_of(top.0, top.1, OCI_INDEX);
        last["manifests"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
            "mediaType": OCI_MANIFEST, "digest": manifest.to_string(), "size": manifest_size}));
        let top = store.add(last);
        let (image, blobs, platforms) = walk_image(&store, top.0, top.1, None).unwrap();
        assert_eq!(image.digest, top.0);
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
        // Four indexes, the manifest and its config, each once.
        assert_eq!(blobs.len(), 6);
        assert_eq!(
            store.reads.get(),
            6,
            "one read per manifest, index and config"
        );
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
