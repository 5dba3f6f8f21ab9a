//! `bundle.json`: the signed description of everything in a bundle.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::canonical_json;
use crate::digest::Digest;
use crate::display::quote;
use crate::fields;

/// The newest format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 6;
/// The oldest format version this crate reads. Writers use the lowest
/// version that can express a bundle: version 1 for bundles without
/// templates, so that older installers keep reading them.
pub const MIN_FORMAT_VERSION: u32 = 1;
/// The first format version with `templates`.
pub const TEMPLATES_FORMAT_VERSION: u32 = 2;
/// The first format version with `sboms`.
pub const SBOMS_FORMAT_VERSION: u32 = 3;
/// The first format version with `license`.
pub const LICENSE_FORMAT_VERSION: u32 = 4;
/// The first format version with `base` and `baseBlobs` (delta bundles) and
/// `split` (a bundle written as media parts).
pub const DELTA_FORMAT_VERSION: u32 = 5;
/// The first format version that stores SBOM blobs after every other blob
/// ([`BundleDescriptor::expected_entries`]), so that a writer can generate
/// them while it writes the rest.
pub const SBOMS_LAST_FORMAT_VERSION: u32 = 6;
/// Most parts a split bundle may have (names carry three digits).
pub const MAX_PARTS: usize = 999;
/// Smallest part size a split bundle may use.
pub const MIN_PART_SIZE: u64 = 64 << 10;
/// Media type of a licence file blob (armored text, see docs/licenses.md).
pub const LICENSE_MEDIA_TYPE: &str = "application/vnd.airgap.license.v1";
/// Media type of CycloneDX JSON SBOM blobs.
pub const CYCLONEDX_MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";
/// Media type of SPDX JSON SBOM blobs.
pub const SPDX_MEDIA_TYPE: &str = "application/spdx+json";
/// Archive path of the bundle description.
pub const BUNDLE_JSON: &str = "bundle.json";
/// Archive path of its minisign signature.
pub const BUNDLE_SIG: &str = "bundle.json.minisig";
/// Archive path of the seal: the last entries, covering the compressed frames.
pub const BUNDLE_SEAL: &str = "bundle.seal";
/// Archive path of the seal's minisign signature.
pub const BUNDLE_SEAL_SIG: &str = "bundle.seal.minisig";
/// Largest seal or seal signature accepted.
pub const MAX_SEAL_BYTES: u64 = 4096;
/// Archive path of the OCI layout marker.
pub const OCI_LAYOUT: &str = "oci-layout";
/// Archive path of the OCI image index.
pub const INDEX_JSON: &str = "index.json";
/// Latest `created` time, in seconds since 1970: 8^11 − 1, the largest tar
/// `mtime` that 11 octal digits hold (2242-03-16T12:56:31Z). Every tar
/// header's `mtime` is `created`, written in octal, never in base-256.
pub const MAX_CREATED_UNIX: u64 = 0o777_7777_7777;
/// Media type recorded for Helm chart archives.
pub const CHART_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// Media type of the config blob of a chart stored as an OCI artifact.
pub const HELM_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// OCI annotation naming an image in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// The whole of `bundle.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BundleDescriptor {
    /// [`MIN_FORMAT_VERSION`] to [`FORMAT_VERSION`] for bundles this crate reads.
    pub format_version: u32,
    /// Bundle (product) name.
    pub name: String,
    /// Semantic version of the bundle.
    pub version: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Creation time, RFC 3339 in UTC with whole seconds (`2024-01-02T03:04:05Z`).
    pub created: String,
    /// The program that wrote the bundle.
    pub generator: String,
    /// Images, in manifest order.
    pub images: Vec<ImageEntry>,
    /// Helm charts, in manifest order.
    pub charts: Vec<ChartEntry>,
    /// Other files, in manifest order.
    pub files: Vec<FileEntry>,
    /// Configuration templates the installer renders for a site, sorted by
    /// name (format version 2 and later; absent when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<TemplateEntry>,
    /// SBOMs: generated per image and platform, supplied by the vendor, and
    /// one for the whole bundle (format version 3 and later; absent when
    /// empty). Sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sboms: Vec<SbomEntry>,
    /// A node-locked licence for the site, activated by `airgap-install
    /// install` (format version 4 and later; absent when there is none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<LicenseEntry>,
    /// For a delta bundle: the bundle it was built against (format version
    /// 5 and later). Its `baseBlobs` are not stored here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseEntry>,
    /// For a bundle written as media parts: the part size and each part's
    /// digest (format version 5 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitEntry>,
    /// The OCI layout files (`oci-layout`, `index.json`).
    pub layout: Vec<LayoutEntry>,
    /// Every blob stored under `blobs/sha256/`, sorted by digest.
    pub blobs: Vec<BlobEntry>,
    /// Image and chart blobs (configs, layers, chart archives) this bundle's
    /// images and charts need but does not store, because its `base` stores
    /// them (delta bundles only). Sorted by digest, none also in `blobs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_blobs: Vec<BlobEntry>,
    /// Sum of the sizes of the blobs stored (`blobs`).
    pub total_size: u64,
}

/// The base bundle a delta bundle was built against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BaseEntry {
    /// The base's name (the same product).
    pub name: String,
    /// The base's version.
    pub version: String,
    /// Digest of the base's `bundle.json`: the bundle it must be.
    pub digest: Digest,
}

/// How a bundle is cut into media parts `FILE.part-001`, `FILE.part-002`, …
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SplitEntry {
    /// Size of every part but the last.
    pub part_size: u64,
    /// The parts in order.
    pub parts: Vec<PartEntry>,
}

/// One media part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PartEntry {
    /// Size of the part file.
    pub size: u64,
    /// SHA-256 of the part's bytes that lie in the body region of the whole
    /// file (after the head, before the seal); see docs/format.md.
    pub digest: Digest,
}

impl SplitEntry {
    /// Size of the whole bundle (the parts joined). A validated `split`
    /// fits in 64 bits; one that does not gives `u64::MAX`.
    pub fn total_size(&self) -> u64 {
        self.parts
            .iter()
            .try_fold(0u64, |t, p| t.checked_add(p.size))
            .unwrap_or(u64::MAX)
    }
}

/// One image: a manifest or an index stored in the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageEntry {
    /// Repository path the image is published under (`vendor/control-plane`).
    pub name: String,
    /// Tag (`1.4.0`).
    pub tag: String,
    /// `name:tag`, also the `org.opencontainers.image.ref.name` in `index.json`.
    pub reference: String,
    /// Digest of the top manifest or index, exactly as in the source.
    pub digest: Digest,
    /// Media type of the top manifest or index.
    pub media_type: String,
    /// Size of the top manifest or index.
    pub size: u64,
    /// Sum of the sizes of all distinct blobs the image references (itself included).
    pub total_size: u64,
    /// Platforms (`os/arch[/variant]`) the image provides.
    pub platforms: Vec<String>,
}

/// One Helm chart archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartEntry {
    /// Chart name from `Chart.yaml`.
    pub name: String,
    /// Chart version from `Chart.yaml`.
    pub version: String,
    /// `appVersion` from `Chart.yaml`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Digest of the `.tgz`.
    pub digest: Digest,
    /// Size of the `.tgz`.
    pub size: u64,
    /// Digest of the chart's OCI artifact manifest (Helm's layout: a config
    /// blob of type [`HELM_CONFIG_MEDIA_TYPE`] and the `.tgz` as its one
    /// layer), stored as a blob so the chart can be pushed to a registry.
    pub manifest: Digest,
}

/// What a file is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileKind {
    /// Manuals and guides.
    Documentation,
    /// Scan results and other security reports.
    SecurityReport,
    /// Release notes.
    ReleaseNotes,
    /// Anything else.
    Other,
}

impl FileKind {
    /// The name used in manifests and `bundle.json`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FileKind::Documentation => "documentation",
            FileKind::SecurityReport => "security-report",
            FileKind::ReleaseNotes => "release-notes",
            FileKind::Other => "other",
        }
    }
}

/// One plain file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileEntry {
    /// Relative path the file is known by (`docs/install.pdf`).
    pub name: String,
    /// What the file is for.
    pub kind: FileKind,
    /// Media type.
    pub media_type: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size of the content.
    pub size: u64,
}

/// One configuration template (format version 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateEntry {
    /// Relative path the template is known by (`control-plane.values.yaml.hbs`).
    pub name: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size of the content.
    pub size: u64,
}

/// The licence file a bundle carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicenseEntry {
    /// Digest of the licence file.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// SBOM document formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SbomFormat {
    /// CycloneDX JSON.
    Cyclonedx,
    /// SPDX 2.3 JSON.
    Spdx,
}

impl SbomFormat {
    /// `cyclonedx` or `spdx`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SbomFormat::Cyclonedx => "cyclonedx",
            SbomFormat::Spdx => "spdx",
        }
    }

    /// The blob media type.
    pub fn media_type(&self) -> &'static str {
        match self {
            SbomFormat::Cyclonedx => CYCLONEDX_MEDIA_TYPE,
            SbomFormat::Spdx => SPDX_MEDIA_TYPE,
        }
    }
}

/// Where an SBOM came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SbomOrigin {
    /// Generated by the bundler from the image's layers (or, for the bundle
    /// SBOM, from `bundle.json`'s content).
    Generated,
    /// Supplied by the vendor and carried verbatim.
    Vendor,
}

/// One SBOM document stored as a blob (format version 3).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SbomEntry {
    /// The image (`reference` of an image) it describes; absent for the
    /// bundle-level SBOM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The platform (`os/arch[/variant]`) of the image it describes, when
    /// it describes one platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// The document format.
    pub format: SbomFormat,
    /// Generated or supplied by the vendor.
    pub origin: SbomOrigin,
    /// Digest of the document.
    pub digest: Digest,
    /// Size of the document.
    pub size: u64,
}

/// One OCI layout file at the archive root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LayoutEntry {
    /// `oci-layout` or `index.json`.
    pub path: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size of the content.
    pub size: u64,
}

/// One content-addressed blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlobEntry {
    /// Digest, which also names the entry `blobs/sha256/<hex>`.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Media type of the first reference to the blob.
    pub media_type: String,
}

/// `bundle.seal`: written after every blob, signed by the bundle's key. It
/// pins the bytes of every frame that is not a canonical stored frame, so
/// that no byte of the file can change unnoticed, even where different
/// compressed bytes would decode to the same content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seal {
    /// Digest of `bundle.json`, tying the seal to this bundle.
    pub bundle_digest: Digest,
    /// Number of frames before the seal that are not canonical stored frames.
    pub compressed_frames: u64,
    /// SHA-256 of those frames' bytes, concatenated in file order.
    pub compressed_frames_digest: Digest,
    /// Number of frames (of any kind) before the seal's first frame.
    pub frames: u64,
    /// SHA-256 of those frames' seek-table entries, fixing every boundary.
    pub frame_table_digest: Digest,
}

/// One archive entry a valid bundle must contain, after the signed head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedEntry {
    /// Path in the archive.
    pub path: String,
    /// Digest of the content.
    pub digest: Digest,
    /// Size of the content.
    pub size: u64,
}

/// Why a `bundle.json` is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// Not valid JSON for the schema.
    #[error("bundle.json: {0}")]
    Json(#[from] serde_json::Error),
    /// Valid JSON, but inconsistent.
    #[error("bundle.json: {0}")]
    Invalid(String),
}

impl Seal {
    /// Parses `bundle.seal` bytes under the JSON rules of
    /// [`crate::strict_json`] (no duplicate key, integers only, no `null`).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        crate::strict_json::from_slice(bytes)
    }
}

impl BundleDescriptor {
    /// Parses and validates `bundle.json` bytes: first the JSON rules of
    /// [`crate::strict_json`] (no duplicate key, integers only, no `null`,
    /// bounded nesting), then the schema, then [`Self::validate`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DescriptorError> {
        let d: BundleDescriptor = crate::strict_json::from_slice(bytes)?;
        d.validate()?;
        Ok(d)
    }

    /// The creation time in seconds since 1970 (0 if unparsable; `validate` refuses that).
    pub fn created_unix(&self) -> u64 {
        time::OffsetDateTime::parse(
            &self.created,
            &time::format_description::well_known::Rfc3339,
        )
        .map(|t| t.unix_timestamp().max(0) as u64)
        .unwrap_or(0)
    }

    /// The canonical bytes of this description.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        canonical_json::to_canonical_vec(self)
    }

    /// Checks internal consistency: versions, names, sorted unique blobs,
    /// every referenced digest stored, sizes that add up.
    pub fn validate(&self) -> Result<(), DescriptorError> {
        let bad = |m: String| Err(DescriptorError::Invalid(m));
        if !(MIN_FORMAT_VERSION..=FORMAT_VERSION).contains(&self.format_version) {
            return bad(format!(
                "formatVersion {} is not supported (this reader knows {MIN_FORMAT_VERSION} to {FORMAT_VERSION})",
                self.format_version
            ));
        }
        if !self.sboms.is_empty() && self.format_version < SBOMS_FORMAT_VERSION {
            return bad(format!(
                "sboms need formatVersion {SBOMS_FORMAT_VERSION} or later (found {})",
                self.format_version
            ));
        }
        if self.license.is_some() && self.format_version < LICENSE_FORMAT_VERSION {
            return bad(format!(
                "license needs formatVersion {LICENSE_FORMAT_VERSION} or later (found {})",
                self.format_version
            ));
        }
        if (self.base.is_some() || self.split.is_some() || !self.base_blobs.is_empty())
            && self.format_version < DELTA_FORMAT_VERSION
        {
            return bad(format!(
                "base, baseBlobs and split need formatVersion {DELTA_FORMAT_VERSION} or later (found {})",
                self.format_version
            ));
        }
        if !self.base_blobs.is_empty() && self.base.is_none() {
            return bad("baseBlobs without a base".into());
        }
        if let Some(b) = &self.base {
            if b.name != self.name {
                return bad(format!(
                    "base: a delta of {} cannot be built against {}",
                    self.name, b.name
                ));
            }
            if let Err(e) = fields::parse_version(&b.version) {
                return bad(format!(
                    "base: version {} is not a semantic version ({e}; expected {})",
                    quote(&b.version),
                    fields::VERSION_RULE
                ));
            }
        }
        if let Some(split) = &self.split {
            validate_split(split).map_err(DescriptorError::Invalid)?;
        }
        if !self.templates.is_empty() && self.format_version < TEMPLATES_FORMAT_VERSION {
            return bad(format!(
                "templates need formatVersion {TEMPLATES_FORMAT_VERSION} or later (found {})",
                self.format_version
            ));
        }
        if !is_valid_name(&self.name) {
            return bad(format!("name {:?} is not a valid bundle name", self.name));
        }
        if let Err(e) = fields::parse_version(&self.version) {
            return bad(format!(
                "version {} is not a semantic version ({e}; expected {})",
                quote(&self.version),
                fields::VERSION_RULE
            ));
        }
        match time::OffsetDateTime::parse(
            &self.created,
            &time::format_description::well_known::Rfc3339,
        ) {
            Ok(t) if t.offset().is_utc() && t.nanosecond() == 0 && t.unix_timestamp() >= 0 => {
                if t.unix_timestamp() as u64 > MAX_CREATED_UNIX {
                    return bad(format!(
                        "created {} is after 2242-03-16T12:56:31Z, the last time a tar header's 11 octal mtime digits can hold",
                        quote(&self.created)
                    ));
                }
            }
            _ => {
                return bad(format!(
                    "created {} is not an RFC 3339 UTC time in whole seconds after 1970",
                    quote(&self.created)
                ))
            }
        }
        if !fields::is_valid_description(&self.description) {
            return bad(format!(
                "description {} is not valid ({})",
                quote(&self.description),
                fields::DESCRIPTION_RULE
            ));
        }
        if !fields::is_valid_generator(&self.generator) {
            return bad(format!(
                "generator {} is not valid ({})",
                quote(&self.generator),
                fields::GENERATOR_RULE
            ));
        }
        let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
        let mut total = 0u64;
        let check_media_type = |what: String, media_type: &str| -> Result<(), DescriptorError> {
            if fields::is_valid_media_type(media_type) {
                return Ok(());
            }
            Err(DescriptorError::Invalid(format!(
                "{what}: mediaType {} is not a media type ({})",
                quote(media_type),
                fields::MEDIA_TYPE_RULE
            )))
        };
        for (i, b) in self.blobs.iter().enumerate() {
            check_media_type(format!("blobs[{i}]"), &b.media_type)?;
            if let Some(prev) = i.checked_sub(1).map(|p| &self.blobs[p]) {
                if prev.digest >= b.digest {
                    return bad(format!(
                        "blobs[{i}] ({}) is out of order or duplicated",
                        b.digest
                    ));
                }
            }
            blobs.insert(b.digest, b.size);
            total = total
                .checked_add(b.size)
                .ok_or_else(|| DescriptorError::Invalid("totalSize overflows".into()))?;
        }
        if total != self.total_size {
            return bad(format!(
                "totalSize {} is not the sum of blob sizes {total}",
                self.total_size
            ));
        }
        let mut in_base: BTreeMap<Digest, u64> = BTreeMap::new();
        let mut base_total = 0u64;
        for (i, b) in self.base_blobs.iter().enumerate() {
            check_media_type(format!("baseBlobs[{i}]"), &b.media_type)?;
            if i > 0 && self.base_blobs[i - 1].digest >= b.digest {
                return bad(format!(
                    "baseBlobs[{i}] ({}) is out of order or duplicated",
                    b.digest
                ));
            }
            if blobs.contains_key(&b.digest) {
                return bad(format!(
                    "baseBlobs[{i}] ({}) is also stored in blobs",
                    b.digest
                ));
            }
            if is_manifest_media_type(&b.media_type) {
                return bad(format!(
                    "baseBlobs[{i}] ({}) is a manifest; delta bundles store every manifest",
                    b.digest
                ));
            }
            in_base.insert(b.digest, b.size);
            base_total = base_total.checked_add(b.size).ok_or_else(|| {
                DescriptorError::Invalid(format!(
                    "baseBlobs[{i}]: the sizes of baseBlobs add up to more than 2^64 bytes"
                ))
            })?;
        }
        let check_image_blob =
            |what: String, digest: &Digest, size: u64| -> Result<(), DescriptorError> {
                match in_base.get(digest) {
                    Some(&s) if s == size => Ok(()),
                    Some(&s) => Err(DescriptorError::Invalid(format!(
                        "{what}: size {size} differs from base blob {digest} size {s}"
                    ))),
                    None => check_stored(&blobs, what, digest, size),
                }
            };
        let check_blob =
            |what: String, digest: &Digest, size: u64| check_stored(&blobs, what, digest, size);
        // Images by reference, for the SBOMs below: a lookup per SBOM, not
        // a scan of every image (sboms × images is quadratic).
        let mut refs: BTreeMap<&str, &ImageEntry> = BTreeMap::new();
        for (i, img) in self.images.iter().enumerate() {
            if img.reference != format!("{}:{}", img.name, img.tag) {
                return bad(format!("images[{i}]: reference is not name:tag"));
            }
            if !is_valid_repository(&img.name) || !is_valid_tag(&img.tag) {
                return bad(format!(
                    "images[{i}]: invalid reference {:?}",
                    img.reference
                ));
            }
            if refs.insert(img.reference.as_str(), img).is_some() {
                return bad(format!(
                    "images[{i}]: duplicate reference {}",
                    img.reference
                ));
            }
            check_media_type(format!("images[{i}]"), &img.media_type)?;
            for (j, p) in img.platforms.iter().enumerate() {
                if !fields::is_valid_platform(p) {
                    return bad(format!(
                        "images[{i}].platforms[{j}]: {} is not a platform ({})",
                        quote(p),
                        fields::PLATFORM_RULE
                    ));
                }
                if j > 0 && img.platforms[j - 1] >= *p {
                    return bad(format!(
                        "images[{i}].platforms[{j}]: {p} is out of order or duplicated (platforms are sorted, each once)"
                    ));
                }
            }
            check_blob(format!("images[{i}]"), &img.digest, img.size)?;
        }
        for (i, c) in self.charts.iter().enumerate() {
            if !fields::is_valid_chart_name(&c.name) {
                return bad(format!(
                    "charts[{i}]: name {} is not a chart name ({})",
                    quote(&c.name),
                    fields::CHART_NAME_RULE
                ));
            }
            if let Err(e) = fields::parse_version(&c.version) {
                return bad(format!(
                    "charts[{i}]: version {} is not a semantic version ({e}; expected {})",
                    quote(&c.version),
                    fields::VERSION_RULE
                ));
            }
            if let Some(app) = c
                .app_version
                .as_deref()
                .filter(|a| !fields::is_valid_app_version(a))
            {
                return bad(format!(
                    "charts[{i}]: appVersion {} is not valid ({})",
                    quote(app),
                    fields::APP_VERSION_RULE
                ));
            }
            check_image_blob(format!("charts[{i}]"), &c.digest, c.size)?;
            if !blobs.contains_key(&c.manifest) {
                return bad(format!(
                    "charts[{i}]: manifest {} is not listed in blobs",
                    c.manifest
                ));
            }
        }
        let mut names = BTreeSet::new();
        for (i, f) in self.files.iter().enumerate() {
            if !is_safe_relative_path(&f.name) {
                return bad(format!(
                    "files[{i}]: name {:?} is not a safe relative path",
                    f.name
                ));
            }
            if !names.insert(f.name.as_str()) {
                return bad(format!("files[{i}]: duplicate name {}", f.name));
            }
            check_media_type(format!("files[{i}]"), &f.media_type)?;
            check_blob(format!("files[{i}]"), &f.digest, f.size)?;
        }
        for (i, t) in self.templates.iter().enumerate() {
            if !is_safe_relative_path(&t.name) {
                return bad(format!(
                    "templates[{i}]: name {:?} is not a safe relative path",
                    t.name
                ));
            }
            if i > 0 && self.templates[i - 1].name >= t.name {
                return bad(format!(
                    "templates[{i}]: {} is out of order or duplicated",
                    t.name
                ));
            }
            check_blob(format!("templates[{i}]"), &t.digest, t.size)?;
        }
        for (i, e) in self.sboms.iter().enumerate() {
            if i > 0 && self.sboms[i - 1] >= *e {
                return bad(format!("sboms[{i}] is out of order or duplicated"));
            }
            if let Some(img) = &e.image {
                let Some(image) = refs.get(img.as_str()) else {
                    return bad(format!("sboms[{i}]: image {img} is not in images"));
                };
                if let Some(p) = &e.platform {
                    if !fields::is_valid_platform(p) {
                        return bad(format!(
                            "sboms[{i}]: platform {} is not a platform ({})",
                            quote(p),
                            fields::PLATFORM_RULE
                        ));
                    }
                    // Sorted and unique (checked above): a binary search.
                    if image.platforms.binary_search(p).is_err() {
                        return bad(format!(
                            "sboms[{i}]: platform {p} is not a platform of image {img}"
                        ));
                    }
                }
            } else if e.platform.is_some() {
                return bad(format!("sboms[{i}]: a platform without an image"));
            }
            check_blob(format!("sboms[{i}]"), &e.digest, e.size)?;
        }
        if let Some(l) = &self.license {
            check_blob("license".to_string(), &l.digest, l.size)?;
        }
        let layout_paths: Vec<&str> = self.layout.iter().map(|l| l.path.as_str()).collect();
        if layout_paths != [OCI_LAYOUT, INDEX_JSON] {
            return bad(format!(
                "layout must list exactly {OCI_LAYOUT} and {INDEX_JSON}, in that order (found {layout_paths:?})"
            ));
        }
        Ok(())
    }

    /// Every entry the archive holds after `bundle.json` and its signature,
    /// in the order the writer stores them.
    pub fn expected_entries(&self) -> Vec<ExpectedEntry> {
        let layout = self.layout.iter().map(|l| ExpectedEntry {
            path: l.path.clone(),
            digest: l.digest,
            size: l.size,
        });
        let entry = |b: &BlobEntry| ExpectedEntry {
            path: b.digest.blob_path(),
            digest: b.digest,
            size: b.size,
        };
        if self.format_version < SBOMS_LAST_FORMAT_VERSION {
            return layout.chain(self.blobs.iter().map(entry)).collect();
        }
        // Version 6: blobs whose media type is an SBOM's (their first use
        // is an SBOM, so nothing else uses them) come last.
        let (sboms, others): (Vec<&BlobEntry>, Vec<&BlobEntry>) = self
            .blobs
            .iter()
            .partition(|b| is_sbom_media_type(&b.media_type));
        layout
            .chain(others.into_iter().map(entry))
            .chain(sboms.into_iter().map(entry))
            .collect()
    }

    /// The template named `name`, if any.
    pub fn template(&self, name: &str) -> Option<&TemplateEntry> {
        self.templates
            .binary_search_by(|t| t.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.templates[i])
    }

    /// The blob entry for `digest`, if stored.
    pub fn blob(&self, digest: &Digest) -> Option<&BlobEntry> {
        self.blobs
            .binary_search_by(|b| b.digest.cmp(digest))
            .ok()
            .map(|i| &self.blobs[i])
    }

    /// The entry for `digest` among the blobs a delta bundle leaves to its base.
    pub fn base_blob(&self, digest: &Digest) -> Option<&BlobEntry> {
        self.base_blobs
            .binary_search_by(|b| b.digest.cmp(digest))
            .ok()
            .map(|i| &self.base_blobs[i])
    }

    /// The entry for `digest`, stored here or left to the base.
    pub fn any_blob(&self, digest: &Digest) -> Option<&BlobEntry> {
        self.blob(digest).or_else(|| self.base_blob(digest))
    }
}

/// True for the media types of SBOM blobs (CycloneDX and SPDX JSON). In
/// format version 6 and later, blobs of these types are stored last.
pub fn is_sbom_media_type(media_type: &str) -> bool {
    media_type == CYCLONEDX_MEDIA_TYPE || media_type == SPDX_MEDIA_TYPE
}

/// True for the media types of image manifests and indexes (OCI and Docker).
pub fn is_manifest_media_type(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.manifest.v1+json"
            | "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.v2+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json"
            | "application/vnd.docker.distribution.manifest.v1+json"
            | "application/vnd.docker.distribution.manifest.v1+prettyjws"
    )
}

fn check_stored(
    blobs: &BTreeMap<Digest, u64>,
    what: String,
    digest: &Digest,
    size: u64,
) -> Result<(), DescriptorError> {
    match blobs.get(digest) {
        Some(&s) if s == size => Ok(()),
        Some(&s) => Err(DescriptorError::Invalid(format!(
            "{what}: size {size} differs from blob {digest} size {s}"
        ))),
        None => Err(DescriptorError::Invalid(format!(
            "{what}: blob {digest} is not listed in blobs"
        ))),
    }
}

fn validate_split(split: &SplitEntry) -> Result<(), String> {
    let n = split.parts.len();
    if split.part_size < MIN_PART_SIZE {
        return Err(format!(
            "split: partSize {} is below the {MIN_PART_SIZE}-byte minimum",
            split.part_size
        ));
    }
    if n == 0 || n > MAX_PARTS {
        return Err(format!("split: {n} parts (1 to {MAX_PARTS} allowed)"));
    }
    let mut total = 0u64;
    for (i, p) in split.parts.iter().enumerate() {
        total = total.checked_add(p.size).ok_or_else(|| {
            format!(
                "split: {n} parts of {} bytes add up to more than 2^64 bytes",
                split.part_size
            )
        })?;
        let last = i + 1 == n;
        if (!last && p.size != split.part_size)
            || (last && (p.size == 0 || p.size > split.part_size))
        {
            return Err(format!(
                "split: parts[{i}] is {} bytes; every part but the last is partSize ({}) and the last 1 to partSize",
                p.size, split.part_size
            ));
        }
    }
    Ok(())
}

/// Bundle names: lowercase letters, digits, `.`, `_`, `-`; 1 to 128 characters.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && s.as_bytes()[0].is_ascii_alphanumeric()
}

/// OCI distribution repository names: `component(/component)*`, each
/// component `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, 255 characters at most.
pub fn is_valid_repository(s: &str) -> bool {
    if s.is_empty() || s.len() > 255 {
        return false;
    }
    s.split('/').all(|c| {
        let b = c.as_bytes();
        if b.is_empty() || !is_alnum_lower(b[0]) || !is_alnum_lower(b[b.len() - 1]) {
            return false;
        }
        let mut i = 0;
        while i < b.len() {
            if is_alnum_lower(b[i]) {
                i += 1;
                continue;
            }
            // A separator: ".", "_", "__" or one or more "-".
            let start = i;
            while i < b.len() && !is_alnum_lower(b[i]) {
                i += 1;
            }
            let sep = &c[start..i];
            if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
                return false;
            }
        }
        true
    })
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// OCI tags: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn is_valid_tag(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
}

/// A relative path of plain components: no empty, `.` or `..` component, no
/// leading `/`, no backslash, no control character and no bidirectional
/// formatting character ([`crate::display::is_unsafe_char`]), 255 bytes at
/// most.
pub fn is_safe_relative_path(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('/')
        && !s
            .chars()
            .any(|c| c == '\\' || crate::display::is_unsafe_char(c))
        && s.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["a", "vendor/control-plane", "a__b/c.d", "x--y"] {
            assert!(is_valid_repository(ok), "{ok}");
        }
        for bad in ["", "A", "a/", "/a", "a..b", "a_-b", "-a", "a/../b"] {
            assert!(!is_valid_repository(bad), "{bad}");
        }
    }

    fn digest(n: u8) -> String {
        format!("sha256:{}", hex::encode([n; 32]))
    }

    /// A minimal valid version 5 delta with one image and one layer left
    /// to the base, split into two parts.
    fn delta() -> serde_json::Value {
        serde_json::json!({
            "formatVersion": 5,
            "name": "p",
            "version": "1.1.0",
            "created": "2023-11-14T22:13:20Z",
            "generator": "test",
            "images": [{"name": "a/b", "tag": "1", "reference": "a/b:1", "digest": digest(1),
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 10,
                "totalSize": 110, "platforms": []}],
            "charts": [],
            "files": [],
            "base": {"name": "p", "version": "1.0.0", "digest": digest(9)},
            "split": {"partSize": 65536, "parts": [
                {"size": 65536, "digest": digest(7)}, {"size": 10, "digest": digest(8)}]},
            "layout": [
                {"path": "oci-layout", "digest": digest(2), "size": 30},
                {"path": "index.json", "digest": digest(3), "size": 40}],
            "blobs": [{"digest": digest(1), "size": 10,
                "mediaType": "application/vnd.oci.image.manifest.v1+json"}],
            "baseBlobs": [{"digest": digest(4), "size": 100,
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}],
            "totalSize": 10
        })
    }

    fn check(v: &serde_json::Value) -> Result<BundleDescriptor, String> {
        BundleDescriptor::from_slice(&serde_json::to_vec(v).unwrap()).map_err(|e| e.to_string())
    }

    #[test]
    fn version_6_stores_sbom_blobs_last() {
        let mut v = delta();
        v["blobs"] = serde_json::json!([
            {"digest": digest(1), "size": 10,
                "mediaType": "application/vnd.oci.image.manifest.v1+json"},
            {"digest": digest(5), "size": 3, "mediaType": CYCLONEDX_MEDIA_TYPE},
            {"digest": digest(6), "size": 4, "mediaType": "text/plain"},
            {"digest": digest(0xa0), "size": 5, "mediaType": SPDX_MEDIA_TYPE}]);
        v["totalSize"] = 22.into();
        let paths = |v: &serde_json::Value| -> Vec<String> {
            check(v)
                .unwrap()
                .expected_entries()
                .into_iter()
                .map(|e| e.path)
                .collect()
        };
        let blob = |n: u8| format!("blobs/sha256/{}", hex::encode([n; 32]));
        let head = vec!["oci-layout".to_string(), "index.json".to_string()];
        let mut sorted = head.clone();
        sorted.extend([blob(1), blob(5), blob(6), blob(0xa0)]);
        assert_eq!(paths(&v), sorted, "version 5: ascending digest order");
        v["formatVersion"] = 6.into();
        let mut last = head;
        last.extend([blob(1), blob(6), blob(5), blob(0xa0)]);
        assert_eq!(paths(&v), last, "version 6: SBOM blobs last");
    }

    #[test]
    fn version_5_delta_and_split_rules() {
        let d = check(&delta()).unwrap();
        assert!(d.blob(&d.base_blobs[0].digest).is_none());
        assert_eq!(d.any_blob(&d.base_blobs[0].digest).unwrap().size, 100);
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let cases: Vec<(&str, Edit, &str)> = vec![
            (
                "v4",
                Box::new(|v| v["formatVersion"] = 4.into()),
                "need formatVersion 5",
            ),
            (
                "v7",
                Box::new(|v| v["formatVersion"] = 7.into()),
                "knows 1 to 6",
            ),
            (
                "no base",
                Box::new(|v| {
                    v.as_object_mut().unwrap().remove("base");
                }),
                "baseBlobs without a base",
            ),
            (
                "other product",
                Box::new(|v| v["base"]["name"] = "q".into()),
                "cannot be built against q",
            ),
            (
                "base version",
                Box::new(|v| v["base"]["version"] = "one".into()),
                "not a semantic version",
            ),
            (
                "stored too",
                Box::new(|v| v["baseBlobs"][0]["digest"] = digest(1).into()),
                "also stored in blobs",
            ),
            (
                "manifest",
                Box::new(|v| {
                    v["baseBlobs"][0]["mediaType"] =
                        "application/vnd.oci.image.index.v1+json".into()
                }),
                "is a manifest",
            ),
            (
                "image in base",
                Box::new(|v| {
                    v["images"][0]["digest"] = digest(4).into();
                    v["images"][0]["size"] = 100.into();
                }),
                "is not listed in blobs",
            ),
            (
                "small parts",
                Box::new(|v| v["split"]["partSize"] = 1000.into()),
                "below the 65536-byte minimum",
            ),
            (
                "uneven part",
                Box::new(|v| v["split"]["parts"][0]["size"] = 100.into()),
                "parts[0] is 100 bytes",
            ),
            (
                "empty last",
                Box::new(|v| v["split"]["parts"][1]["size"] = 0.into()),
                "parts[1] is 0 bytes",
            ),
            (
                "no parts",
                Box::new(|v| v["split"]["parts"] = serde_json::json!([])),
                "0 parts",
            ),
            (
                "unknown key",
                Box::new(|v| v["split"]["extra"] = 1.into()),
                "unknown field",
            ),
            (
                // The verifier summed the part sizes of a signed
                // bundle.json, and the sum overflowed (a panic).
                "parts past 2^64",
                Box::new(|v| {
                    let half = serde_json::Value::from(1u64 << 63);
                    v["split"]["partSize"] = half.clone();
                    v["split"]["parts"][0]["size"] = half.clone();
                    v["split"]["parts"][1]["size"] = half;
                }),
                "split: 2 parts of 9223372036854775808 bytes add up to more than 2^64 bytes",
            ),
            (
                // `inspect` summed the sizes of baseBlobs, and the sum
                // overflowed (a panic).
                "base blobs past 2^64",
                Box::new(|v| {
                    let mut second = v["baseBlobs"][0].clone();
                    second["digest"] = digest(5).into();
                    v["baseBlobs"][0]["size"] = (1u64 << 63).into();
                    second["size"] = (1u64 << 63).into();
                    v["baseBlobs"].as_array_mut().unwrap().push(second);
                }),
                "baseBlobs[1]: the sizes of baseBlobs add up to more than 2^64 bytes",
            ),
        ];
        for (name, edit, want) in cases {
            let mut v = delta();
            edit(&mut v);
            let err = check(&v).expect_err(name);
            assert!(err.contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn safe_paths() {
        assert!(is_safe_relative_path("docs/guide.md"));
        assert!(is_safe_relative_path("docs/Zürich 研究.md"));
        assert!(is_safe_relative_path(&"a".repeat(255)));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/./b",
            "a\\b",
            "a\u{1b}b",
            "a\nb",
            "a\u{7f}",
            "a\u{9b}",
            "evil\u{202e}fdp.exe",
            "x\u{2066}y",
            "x\u{200f}",
            "x\u{61c}",
            &"a".repeat(256),
        ] {
            assert!(!is_safe_relative_path(bad), "{bad:?}");
        }
    }

    /// A valid version 6 bundle with one of everything the string rules
    /// apply to.
    fn full() -> serde_json::Value {
        let manifest = "application/vnd.oci.image.manifest.v1+json";
        serde_json::json!({
            "formatVersion": 6,
            "name": "p",
            "version": "1.0.0",
            "description": "Line one.\nLine two, Zürich 研究.\n",
            "created": "2023-11-14T22:13:20Z",
            "generator": "airgap-bundle 0.1.0",
            "images": [{"name": "a/b", "tag": "1", "reference": "a/b:1", "digest": digest(1),
                "mediaType": manifest, "size": 10, "totalSize": 10,
                "platforms": ["linux/amd64", "linux/arm/v7"]}],
            "charts": [{"name": "hello", "version": "0.1.0", "appVersion": "1.0.0",
                "digest": digest(2), "size": 20, "manifest": digest(3)}],
            "files": [{"name": "docs/a.md", "kind": "documentation", "mediaType": "text/markdown",
                "digest": digest(4), "size": 40}],
            "templates": [{"name": "a.hbs", "digest": digest(5), "size": 50}],
            "sboms": [{"image": "a/b:1", "platform": "linux/amd64", "format": "spdx",
                "origin": "generated", "digest": digest(6), "size": 60}],
            "layout": [
                {"path": "oci-layout", "digest": digest(8), "size": 30},
                {"path": "index.json", "digest": digest(9), "size": 40}],
            "blobs": [
                {"digest": digest(1), "size": 10, "mediaType": manifest},
                {"digest": digest(2), "size": 20, "mediaType": CHART_MEDIA_TYPE},
                {"digest": digest(3), "size": 30, "mediaType": manifest},
                {"digest": digest(4), "size": 40, "mediaType": "text/markdown"},
                {"digest": digest(5), "size": 50, "mediaType": "text/x-handlebars-template"},
                {"digest": digest(6), "size": 60, "mediaType": SPDX_MEDIA_TYPE}],
            "totalSize": 210
        })
    }

    #[test]
    fn sbom_images_and_platforms_are_looked_up_not_scanned() {
        // 30000 images and one with 30000 platforms, an SBOM for each
        // platform: finding each SBOM's image and platform by scanning
        // took 1.8e9 comparisons (over ten seconds; a bundle.json of a few
        // MiB could hold the validator for hours).
        let mut d = check(&full()).unwrap();
        let n = 30_000;
        let mut image = d.images[0].clone();
        image.platforms.clear();
        let mut images: Vec<ImageEntry> = (0..n)
            .map(|i| ImageEntry {
                name: format!("a/c{i}"),
                reference: format!("a/c{i}:1"),
                ..image.clone()
            })
            .collect();
        image.platforms = (0..n).map(|i| format!("linux/a{i:05}")).collect();
        images.push(image.clone());
        d.images = images;
        let sbom = d.sboms[0].clone();
        d.sboms = image
            .platforms
            .iter()
            .map(|p| SbomEntry {
                platform: Some(p.clone()),
                ..sbom.clone()
            })
            .collect();
        let started = std::time::Instant::now();
        d.validate().unwrap();
        let took = started.elapsed();
        assert!(took < std::time::Duration::from_secs(3), "{took:?}");
    }

    type Edit = Box<dyn Fn(&mut serde_json::Value)>;

    fn set(pointer: &'static str, value: serde_json::Value) -> Edit {
        Box::new(move |v| *v.pointer_mut(pointer).expect(pointer) = value.clone())
    }

    fn refused(cases: Vec<(&str, Edit, &str)>) {
        for (name, edit, want) in cases {
            let mut v = full();
            edit(&mut v);
            let err = check(&v).expect_err(name);
            assert!(err.contains(want), "{name}: {err}");
            assert!(
                !err.contains('\n') && !err.contains('\u{1b}'),
                "{name}: {err:?}"
            );
        }
    }

    #[test]
    fn string_rules_accept_the_valid_forms() {
        let d = check(&full()).unwrap();
        assert!(d.description.contains('\n'));
        for (name, edit) in [
            ("empty appVersion", set("/charts/0/appVersion", "".into())),
            (
                "last created",
                set("/created", "2242-03-16T12:56:31Z".into()),
            ),
            (
                "long version",
                set(
                    "/charts/0/version",
                    format!("1.0.0-{}", "a".repeat(122)).into(),
                ),
            ),
            (
                "long chart name",
                set("/charts/0/name", "a".repeat(63).into()),
            ),
            (
                "long description",
                set("/description", "d".repeat(4096).into()),
            ),
            (
                "big numbers",
                set(
                    "/version",
                    "18446744073709551615.0.0-18446744073709551615".into(),
                ),
            ),
        ] {
            let mut v = full();
            edit(&mut v);
            check(&v).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn chart_names_and_versions_follow_helm() {
        refused(vec![
            (
                "path",
                set("/charts/0/name", "../../tmp/x".into()),
                "charts[0]: name \"../../tmp/x\" is not a chart name (1 to 63",
            ),
            (
                "upper",
                set("/charts/0/name", "Hello".into()),
                "is not a chart name",
            ),
            (
                "underscore",
                set("/charts/0/name", "a_b".into()),
                "is not a chart name",
            ),
            (
                "newline",
                set("/charts/0/name", "a\nrm -rf /".into()),
                "name \"a\\nrm -rf /\" is not a chart name",
            ),
            (
                "long",
                set("/charts/0/name", "a".repeat(64).into()),
                "is not a chart name",
            ),
            (
                "not semver",
                set("/charts/0/version", "1.0".into()),
                "charts[0]: version \"1.0\" is not a semantic version",
            ),
            (
                "v prefix",
                set("/charts/0/version", "v1.0.0".into()),
                "is not a semantic version",
            ),
            (
                "major",
                set("/charts/0/version", "18446744073709551616.0.0".into()),
                "exceeds u64::MAX",
            ),
            (
                "pre-release",
                set("/charts/0/version", "1.0.0-18446744073709551616".into()),
                "pre-release identifier 18446744073709551616 exceeds",
            ),
            (
                "long",
                set(
                    "/charts/0/version",
                    format!("1.0.0-{}", "a".repeat(123)).into(),
                ),
                "129 bytes, above 128",
            ),
            (
                "bundle version",
                set("/version", "1.0.0-99999999999999999999".into()),
                "version \"1.0.0-99999999999999999999\" is not a semantic version",
            ),
            (
                "appVersion escape",
                set("/charts/0/appVersion", "1\u{1b}]0;x\u{7}".into()),
                "charts[0]: appVersion \"1\\u{1b}]0;x\\u{7}\" is not valid",
            ),
            (
                "appVersion bidi",
                set("/charts/0/appVersion", "1\u{202e}".into()),
                "appVersion",
            ),
            (
                "appVersion newline",
                set("/charts/0/appVersion", "1\n2".into()),
                "appVersion",
            ),
            (
                "appVersion long",
                set("/charts/0/appVersion", "1".repeat(129).into()),
                "appVersion",
            ),
        ]);
    }

    #[test]
    fn free_text_fields_are_refused_outside_their_rules() {
        refused(vec![
            ("description escape", set("/description", "a\u{1b}[2J".into()), "description \"a\\u{1b}[2J\" is not valid (at most 4096 bytes"),
            ("description CR", set("/description", "a\rb".into()), "description"),
            ("description tab", set("/description", "a\tb".into()), "description"),
            ("description C1", set("/description", "a\u{9b}31m".into()), "description"),
            ("description bidi", set("/description", "a\u{2067}b".into()), "description"),
            ("description long", set("/description", "d".repeat(4097).into()), "description"),
            ("generator empty", set("/generator", "".into()), "generator \"\" is not valid (1 to 128 printable ASCII"),
            ("generator tab", set("/generator", "a\tb".into()), "generator"),
            ("generator unicode", set("/generator", "bündler".into()), "generator"),
            ("generator long", set("/generator", "g".repeat(129).into()), "generator"),
            ("blob type", set("/blobs/3/mediaType", "text/markdown; charset=utf-8".into()), "blobs[3]: mediaType \"text/markdown; charset=utf-8\" is not a media type (TYPE/SUBTYPE"),
            ("image type", set("/images/0/mediaType", "manifest".into()), "images[0]: mediaType"),
            ("file type", set("/files/0/mediaType", "text/\u{1b}".into()), "files[0]: mediaType"),
            ("platform", set("/images/0/platforms/1", "linux/arm/v7\u{1b}".into()), "images[0].platforms[1]: \"linux/arm/v7\\u{1b}\" is not a platform"),
            ("platform parts", set("/images/0/platforms/1", "linux".into()), "is not a platform"),
            ("platform case", set("/images/0/platforms/1", "linux/ARM64".into()), "is not a platform"),
            ("platform order", set("/images/0/platforms", serde_json::json!(["linux/arm/v7", "linux/amd64"])), "images[0].platforms[1]: linux/amd64 is out of order or duplicated"),
            ("platform twice", set("/images/0/platforms", serde_json::json!(["linux/amd64", "linux/amd64"])), "out of order or duplicated"),
            ("sbom platform", set("/sboms/0/platform", "linux/amd64/\u{202e}".into()), "sboms[0]: platform \"linux/amd64/\\u{202e}\" is not a platform"),
            ("sbom other platform", set("/sboms/0/platform", "linux/s390x".into()), "sboms[0]: platform linux/s390x is not a platform of image a/b:1"),
            ("file bidi", set("/files/0/name", "docs/\u{202e}dm.exe".into()), "files[0]: name"),
            ("template bidi", set("/templates/0/name", "\u{2066}a.hbs".into()), "templates[0]: name"),
            ("file control", set("/files/0/name", "docs/a\u{85}.md".into()), "not a safe relative path"),
            ("created 2242", set("/created", "2242-03-16T12:56:32Z".into()), "created \"2242-03-16T12:56:32Z\" is after 2242-03-16T12:56:31Z"),
            ("created 9999", set("/created", "9999-12-31T23:59:59Z".into()), "is after 2242-03-16T12:56:31Z"),
        ]);
    }

    /// Replaces the canonical text `from` in `full()` by `to`, for the
    /// JSON rules a `serde_json::Value` cannot express.
    fn raw(from: &str, to: &str) -> Result<BundleDescriptor, String> {
        let text = String::from_utf8(canonical_json::to_canonical_vec(&full()).unwrap()).unwrap();
        assert!(text.contains(from), "{from}");
        BundleDescriptor::from_slice(text.replacen(from, to, 1).as_bytes())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn json_rules_are_refused() {
        for (name, from, to, want) in [
            (
                "duplicate key",
                r#""name":"p","#,
                r#""name":"p","name":"q","#,
                "bundle.json: name: duplicate key",
            ),
            (
                "duplicate nested",
                r#""origin":"generated","#,
                r#""origin":"generated","origin":"vendor","#,
                "sboms[0].origin: duplicate key",
            ),
            (
                "fraction",
                r#""totalSize":210"#,
                r#""totalSize":210.0"#,
                "totalSize: a number that is not an integer from 0 to 18446744073709551615",
            ),
            (
                "exponent",
                r#""totalSize":210"#,
                r#""totalSize":2.1e2"#,
                "totalSize: a number that is not an integer",
            ),
            (
                "negative",
                r#""size":10,"tag""#,
                r#""size":-10,"tag""#,
                "images[0].size: a number that is not an integer",
            ),
            (
                "beyond u64",
                r#""totalSize":210"#,
                r#""totalSize":18446744073709551616"#,
                "totalSize: a number that is not an integer",
            ),
            (
                "null optional",
                r#""appVersion":"1.0.0","#,
                r#""appVersion":null,"#,
                "charts[0].appVersion: null is not allowed (leave an optional key out instead)",
            ),
            (
                "null description",
                r#""description":"#,
                r#""license":null,"description":"#,
                "license: null is not allowed",
            ),
            (
                "null sbom image",
                r#""image":"a/b:1","#,
                r#""image":null,"#,
                "sboms[0].image: null is not allowed",
            ),
            (
                "null required",
                r#""generator":"airgap-bundle 0.1.0""#,
                r#""generator":null"#,
                "generator: null is not allowed",
            ),
            (
                "deep",
                r#""description":"#,
                &format!(
                    r#""x":{}0{},"description":"#,
                    "[".repeat(40),
                    "]".repeat(40)
                ),
                "nested deeper than 32 levels",
            ),
            ("bom", r#"{"blobs""#, "\u{feff}{\"blobs\"", "expected value"),
        ] {
            let err = raw(from, to).expect_err(name);
            assert!(err.contains(want), "{name}: {err}");
        }
        // Trailing white space (a padded head) is JSON.
        assert!(raw(r#""version":"1.0.0"}"#, "\"version\":\"1.0.0\"}   ").is_ok());
    }

    fn remove(pointer: &'static str, key: &'static str) -> Edit {
        Box::new(move |v| {
            v.pointer_mut(pointer)
                .and_then(|o| o.as_object_mut())
                .expect(pointer)
                .remove(key);
        })
    }

    #[test]
    fn schema_rules_are_refused() {
        let license = serde_json::json!({"digest": digest(4), "size": 40});
        refused(vec![
            ("version 0", set("/formatVersion", 0.into()), "formatVersion 0 is not supported (this reader knows 1 to 6)"),
            ("templates in 1", Box::new(|v| { v["formatVersion"] = 1.into(); v.as_object_mut().unwrap().remove("sboms"); }), "templates need formatVersion 2 or later (found 1)"),
            ("sboms in 2", set("/formatVersion", 2.into()), "sboms need formatVersion 3 or later (found 2)"),
            ("license in 3", Box::new(move |v| { v["formatVersion"] = 3.into(); v["license"] = license.clone(); }), "license needs formatVersion 4 or later (found 3)"),
            ("base in 4", Box::new(|v| { v["formatVersion"] = 4.into(); v["split"] = serde_json::json!({"partSize": 65536, "parts": [{"size": 1, "digest": digest(7)}]}); }), "base, baseBlobs and split need formatVersion 5 or later (found 4)"),
            ("name", set("/name", "Demo".into()), "name \"Demo\" is not a valid bundle name"),
            ("name length", set("/name", "a".repeat(129).into()), "is not a valid bundle name"),
            ("name start", set("/name", "-a".into()), "is not a valid bundle name"),
            ("created offset", set("/created", "2023-11-14T23:13:20+01:00".into()), "is not an RFC 3339 UTC time in whole seconds after 1970"),
            ("created fraction", set("/created", "2023-11-14T22:13:20.5Z".into()), "is not an RFC 3339 UTC time"),
            ("created 1969", set("/created", "1969-12-31T23:59:59Z".into()), "is not an RFC 3339 UTC time"),
            ("created text", set("/created", "yesterday".into()), "is not an RFC 3339 UTC time"),
            ("blob order", Box::new(|v| v["blobs"].as_array_mut().unwrap().swap(0, 1)), "blobs[1] (sha256:0101"),
            ("blob twice", Box::new(|v| { let b = v["blobs"][0].clone(); v["blobs"].as_array_mut().unwrap().insert(0, b); v["totalSize"] = 220.into(); }), "blobs[1] (sha256:0101010101010101010101010101010101010101010101010101010101010101) is out of order or duplicated"),
            ("total", set("/totalSize", 211.into()), "totalSize 211 is not the sum of blob sizes 210"),
            ("reference", set("/images/0/reference", "a/b:2".into()), "images[0]: reference is not name:tag"),
            ("repository", Box::new(|v| { v["images"][0]["name"] = "A/b".into(); v["images"][0]["reference"] = "A/b:1".into(); }), "images[0]: invalid reference \"A/b:1\""),
            ("tag", Box::new(|v| { v["images"][0]["tag"] = ".1".into(); v["images"][0]["reference"] = "a/b:.1".into(); }), "images[0]: invalid reference"),
            ("image twice", Box::new(|v| { let i = v["images"][0].clone(); v["images"].as_array_mut().unwrap().push(i); }), "images[1]: duplicate reference a/b:1"),
            ("image blob", set("/images/0/digest", digest(0xee).into()), "images[0]: blob sha256:eeee"),
            ("image size", set("/images/0/size", 11.into()), "images[0]: size 11 differs from blob sha256:0101"),
            ("chart blob", set("/charts/0/digest", digest(0xee).into()), "charts[0]: blob sha256:eeee"),
            ("chart manifest", set("/charts/0/manifest", digest(0xee).into()), "charts[0]: manifest sha256:eeee"),
            ("file twice", Box::new(|v| { let f = v["files"][0].clone(); v["files"].as_array_mut().unwrap().push(f); }), "files[1]: duplicate name docs/a.md"),
            ("file path", set("/files/0/name", "../a.md".into()), "files[0]: name \"../a.md\" is not a safe relative path"),
            ("file kind", set("/files/0/kind", "manual".into()), "unknown variant `manual`"),
            ("file blob", set("/files/0/size", 41.into()), "files[0]: size 41 differs"),
            ("template blob", set("/templates/0/digest", digest(0xee).into()), "templates[0]: blob"),
            ("template order", Box::new(|v| { v["templates"] = serde_json::json!([{"name": "b.hbs", "digest": digest(5), "size": 50}, {"name": "a.hbs", "digest": digest(5), "size": 50}]); }), "templates[1]: a.hbs is out of order or duplicated"),
            ("sbom order", Box::new(|v| { let s = v["sboms"][0].clone(); v["sboms"].as_array_mut().unwrap().insert(0, s); }), "sboms[1] is out of order or duplicated"),
            ("sbom image", set("/sboms/0/image", "a/c:1".into()), "sboms[0]: image a/c:1 is not in images"),
            ("sbom platform alone", remove("/sboms/0", "image"), "sboms[0]: a platform without an image"),
            ("sbom format", set("/sboms/0/format", "swid".into()), "unknown variant `swid`, expected `cyclonedx` or `spdx`"),
            ("sbom origin", set("/sboms/0/origin", "found".into()), "unknown variant `found`, expected `generated` or `vendor`"),
            ("sbom blob", set("/sboms/0/size", 61.into()), "sboms[0]: size 61 differs"),
            ("license blob", Box::new(|v| v["license"] = serde_json::json!({"digest": digest(0xee), "size": 1})), "license: blob sha256:eeee"),
            ("layout", Box::new(|v| v["layout"].as_array_mut().unwrap().swap(0, 1)), "layout must list exactly oci-layout and index.json, in that order"),
            ("layout count", Box::new(|v| { v["layout"].as_array_mut().unwrap().pop(); }), "layout must list exactly"),
            ("digest algorithm", set("/images/0/digest", format!("sha512:{}", "1".repeat(64)).into()), "only sha256 digests are supported"),
            ("digest case", set("/images/0/digest", format!("sha256:{}", "A".repeat(64)).into()), "expected lowercase hex"),
            ("digest length", set("/images/0/digest", "sha256:abc".into()), "expected 64 hex characters"),
            ("unknown key", Box::new(|v| v["images"][0]["extra"] = 1.into()), "unknown field `extra`"),
            ("missing key", remove("", "generator"), "missing field `generator`"),
            ("wrong type", set("/blobs/0/size", "10".into()), "invalid type: string \"10\", expected u64"),
        ]);
    }
}
