//! What the SBOM documents ([`crate::cyclonedx`], [`crate::spdx`]) are made
//! from: plain structs the bundler fills from what it already knows (the
//! image it pulled, the bundle it is writing), plus helpers both formats
//! share.
//!
//! The documents are deterministic: the same input gives the same bytes.
//! Nothing reads the clock or a random source; the time written is the
//! bundle's `created`, and the identifiers a document must have (the
//! CycloneDX `serialNumber`, the SPDX `documentNamespace`) are derived
//! from a SHA-256 of the document's own content: the first 128 bits,
//! marked as an RFC 9562 version 8 (custom, hash-based) UUID.

use sha2::{Digest as _, Sha256};

use crate::purl::PackageUrl;

/// The name the documents give their author: `metadata.tools` in
/// CycloneDX, `Tool: airgap-bundle-VERSION` among the SPDX creators.
pub const TOOL_NAME: &str = "airgap-bundle";

/// One image, one platform: the subject of a per-image SBOM.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageSubject {
    /// `name:tag` as the bundle publishes it (`vendor/app:1.0`).
    pub reference: String,
    /// Repository path the bundle publishes the image under
    /// (`vendor/app`). Its last segment, lowercased, is the name of the
    /// image's `pkg:oci` purl and the whole path its `repository_url`.
    pub name: String,
    /// Tag (`1.0`); the component version and the purl's `tag`.
    pub tag: String,
    /// `sha256:…` of the platform's image manifest: the image's identity
    /// (purl version, SHA-256 hash).
    pub manifest_digest: String,
    /// `sha256:…` of the image index the manifest was chosen from, when the
    /// image is an index (multi-platform).
    pub index_digest: Option<String>,
    /// The platform, `os/arch[/variant]` (`linux/amd64`); its architecture
    /// is the purl's `arch`.
    pub platform: String,
    /// Layer digests (`sha256:…`), base first.
    pub layers: Vec<String>,
}

/// A bundle: the subject of the bundle-level SBOM. Mirrors what
/// `bundle.json` lists.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BundleSubject {
    /// Bundle (product) name.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// The bundle's creation time, RFC 3339 in UTC with whole seconds
    /// (`2024-01-02T03:04:05Z`); the documents' timestamp.
    pub created: String,
    /// Every image, in bundle order.
    pub images: Vec<BundleImage>,
    /// Helm chart archives (`version` set).
    pub charts: Vec<BundleArtifact>,
    /// Plain files (`version` usually `None`).
    pub files: Vec<BundleArtifact>,
    /// Configuration templates (`version` usually `None`).
    pub templates: Vec<BundleArtifact>,
    /// The SBOMs the bundle carries for its images, generated and
    /// vendor-supplied, in either format.
    pub image_sboms: Vec<SbomRef>,
}

/// One image of a bundle, as a whole (all its platforms).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BundleImage {
    /// `name:tag` (`vendor/app:1.0`); what [`SbomRef::image_reference`] names.
    pub reference: String,
    /// Repository path (`vendor/app`).
    pub name: String,
    /// Tag (`1.0`).
    pub tag: String,
    /// `sha256:…` of the top manifest or index.
    pub digest: String,
    /// Media type of the top manifest or index.
    pub media_type: String,
    /// Platforms (`os/arch[/variant]`) the image provides.
    pub platforms: Vec<String>,
}

/// A chart, file or template of a bundle.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BundleArtifact {
    /// Chart name, or the relative path a file or template is known by.
    pub name: String,
    /// Chart version; `None` for files and templates.
    pub version: Option<String>,
    /// `sha256:…` of the content.
    pub digest: String,
    /// Size of the content in bytes.
    pub size: u64,
}

/// The two SBOM formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SbomFormat {
    /// CycloneDX JSON.
    CycloneDx,
    /// SPDX 2.3 JSON.
    Spdx,
}

impl SbomFormat {
    /// `cyclonedx` or `spdx`, as `bundle.json` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "cyclonedx",
            SbomFormat::Spdx => "spdx",
        }
    }

    /// `CycloneDX` or `SPDX`, for people.
    pub fn display_name(self) -> &'static str {
        match self {
            SbomFormat::CycloneDx => "CycloneDX",
            SbomFormat::Spdx => "SPDX",
        }
    }
}

/// An image SBOM stored in the bundle, for the bundle SBOM to reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SbomRef {
    /// The [`BundleImage::reference`] of the image it describes.
    pub image_reference: String,
    /// The platform it describes; `None` for a vendor SBOM that covers
    /// the whole image.
    pub platform: Option<String>,
    /// Its format.
    pub format: SbomFormat,
    /// `sha256:…` of the document's bytes (its blob in the bundle).
    pub digest: String,
    /// Supplied by the vendor (`true`) or generated by the bundler.
    pub vendor: bool,
    /// The identity the document gives itself, from [`document_id`]: the
    /// BOM-Link `urn:cdx:SERIAL/VERSION` of a CycloneDX BOM or the
    /// `documentNamespace` of an SPDX document. With it the CycloneDX
    /// bundle SBOM links the BOM by BOM-Link and the SPDX one lists the
    /// document in `externalDocumentRefs`; without it the SBOM is still
    /// listed, by its blob path and digest.
    pub document_id: Option<String>,
}

/// `CycloneDX SBOM of vendor/app:1.0 (linux/amd64), generated by airgap-bundle`.
pub(crate) fn sbom_title(s: &SbomRef) -> String {
    let platform = s
        .platform
        .as_deref()
        .map(|p| format!(" ({p})"))
        .unwrap_or_default();
    let origin = if s.vendor {
        "supplied by the vendor".to_string()
    } else {
        format!("generated by {TOOL_NAME}")
    };
    format!(
        "{} SBOM of {}{platform}, {origin}",
        s.format.display_name(),
        s.image_reference
    )
}

/// The identity a document gives itself: for CycloneDX the BOM-Link
/// `urn:cdx:UUID/VERSION` of its `serialNumber` (lowercased) and `version`
/// (1 when absent), for SPDX its `documentNamespace`. `None` when the
/// bytes are not JSON of that format or carry no usable identity (a
/// CycloneDX BOM without a serial number is allowed).
pub fn document_id(format: SbomFormat, bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Cdx {
        #[serde(rename = "serialNumber")]
        serial_number: Option<String>,
        version: Option<u64>,
    }
    #[derive(serde::Deserialize)]
    struct Spdx {
        #[serde(rename = "documentNamespace")]
        document_namespace: Option<String>,
    }
    match format {
        SbomFormat::CycloneDx => {
            let doc: Cdx = serde_json::from_slice(bytes).ok()?;
            let serial = doc.serial_number?.to_ascii_lowercase();
            let uuid = serial.strip_prefix("urn:uuid:")?;
            let version = doc.version.unwrap_or(1);
            (is_uuid(uuid) && version >= 1).then(|| format!("urn:cdx:{uuid}/{version}"))
        }
        SbomFormat::Spdx => {
            let doc: Spdx = serde_json::from_slice(bytes).ok()?;
            let ns = doc.document_namespace?;
            let ok = ns.contains(':') && !ns.contains('#') && !ns.chars().any(char::is_whitespace);
            ok.then_some(ns)
        }
    }
}

/// `8-4-4-4-12` lowercase hex digits.
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// A UUID derived from content: the first 128 bits of its SHA-256, with
/// the version and variant bits of an RFC 9562 version 8 (custom) UUID,
/// the form RFC 9562 gives for SHA-256 name-based UUIDs. Lowercase,
/// `8-4-4-4-12`.
pub(crate) fn content_uuid(content: &[u8]) -> String {
    let hash = Sha256::digest(content);
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex_lower(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A digest (`sha256:HEX`) as a hash the documents can state: the
/// algorithm's CycloneDX name, its SPDX name and the lowercase hex.
/// `None` for algorithms neither format names or malformed digests.
pub(crate) struct DigestHash {
    /// `SHA-256`, `SHA-384`, `SHA-512`.
    pub cyclonedx_alg: &'static str,
    /// `SHA256`, `SHA384`, `SHA512`.
    pub spdx_alg: &'static str,
    /// Lowercase hex.
    pub hex: String,
}

pub(crate) fn digest_hash(digest: &str) -> Option<DigestHash> {
    let (alg, hex) = digest.split_once(':')?;
    let (cyclonedx_alg, spdx_alg, len) = match alg {
        "sha256" => ("SHA-256", "SHA256", 64),
        "sha384" => ("SHA-384", "SHA384", 96),
        "sha512" => ("SHA-512", "SHA512", 128),
        _ => return None,
    };
    (hex.len() == len && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| DigestHash {
        cyclonedx_alg,
        spdx_alg,
        hex: hex.to_ascii_lowercase(),
    })
}

/// The path of a blob inside the bundle (`blobs/sha256/HEX`), where a
/// document the bundle SBOM references can be found; a relative IRI.
pub(crate) fn blob_path(digest: &str) -> String {
    match digest.split_once(':') {
        Some((alg, hex)) => format!("blobs/{alg}/{hex}"),
        None => format!("blobs/{digest}"),
    }
}

/// The `pkg:oci` purl of an image, per the purl specification's `oci`
/// type: the name is the last segment of the repository path,
/// lowercased; the version the digest; qualifiers `repository_url` (the
/// repository path), `tag` and, for one platform, `arch` (the
/// architecture alone: the specification has no qualifier for a variant).
pub(crate) fn oci_purl(name: &str, digest: &str, tag: &str, platform: Option<&str>) -> String {
    let last = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
    let mut p = PackageUrl::new("oci", &last)
        .with_version(digest)
        .with_qualifier("repository_url", name)
        .with_qualifier("tag", tag);
    if let Some(arch) = platform.and_then(platform_arch) {
        p = p.with_qualifier("arch", arch);
    }
    p.to_string()
}

/// The architecture of `os/arch[/variant]`.
pub(crate) fn platform_arch(platform: &str) -> Option<&str> {
    platform.split('/').nth(1).filter(|a| !a.is_empty())
}

/// `s` made an SPDX `idstring` (letters, digits, `.` and `-`): other
/// characters become `-`, runs of `-` collapse, leading and trailing `-`
/// go, at most `max` characters are kept; `fallback` when nothing is left.
pub(crate) fn idstring(s: &str, max: usize, fallback: &str) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        if out.len() == max {
            break;
        }
        out.push(c);
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        fallback.to_string()
    } else {
        out
    }
}

/// Hands out identifiers unique within a document: the first request for
/// a base gets it as is, later ones `BASE-2`, `BASE-3`… (with `sep`).
#[derive(Default)]
pub(crate) struct UniqueIds {
    used: std::collections::BTreeSet<String>,
}

impl UniqueIds {
    /// Reserves `id` as is (it must not be handed out later).
    pub fn reserve(&mut self, id: &str) {
        self.used.insert(id.to_string());
    }

    /// `base`, or `base{sep}N` for the smallest N ≥ 2 not yet used.
    pub fn unique(&mut self, base: &str, sep: &str) -> String {
        if self.used.insert(base.to_string()) {
            return base.to_string();
        }
        (2..)
            .map(|n| format!("{base}{sep}{n}"))
            .find(|id| self.used.insert(id.clone()))
            .expect("an unused suffix")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_uuids_are_version_8_and_stable() {
        let a = content_uuid(b"abc");
        assert_eq!(a, content_uuid(b"abc"));
        assert_ne!(a, content_uuid(b"abd"));
        assert!(is_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "8");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        // SHA-256("abc") = ba7816bf 8f01 cfea 4141 40de5dae2223…
        assert_eq!(a, "ba7816bf-8f01-8fea-8141-40de5dae2223");
    }

    #[test]
    fn document_ids() {
        let cdx = br#"{"bomFormat":"CycloneDX","serialNumber":"urn:uuid:3E671687-395B-41F5-A30F-A58921A69B79","version":3}"#;
        assert_eq!(
            document_id(SbomFormat::CycloneDx, cdx).as_deref(),
            Some("urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/3")
        );
        let no_version = br#"{"serialNumber":"urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"}"#;
        assert_eq!(
            document_id(SbomFormat::CycloneDx, no_version).as_deref(),
            Some("urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1")
        );
        assert_eq!(document_id(SbomFormat::CycloneDx, b"{}"), None);
        assert_eq!(
            document_id(SbomFormat::CycloneDx, br#"{"serialNumber":"x"}"#),
            None
        );
        assert_eq!(document_id(SbomFormat::CycloneDx, b"not json"), None);
        let spdx = br#"{"spdxVersion":"SPDX-2.3","documentNamespace":"https://example.com/x-1"}"#;
        assert_eq!(
            document_id(SbomFormat::Spdx, spdx).as_deref(),
            Some("https://example.com/x-1")
        );
        assert_eq!(
            document_id(SbomFormat::Spdx, br#"{"documentNamespace":"a b"}"#),
            None
        );
    }

    #[test]
    fn digests_and_purls() {
        let d = format!("sha256:{}", "AB".repeat(32));
        let h = digest_hash(&d).unwrap();
        assert_eq!((h.cyclonedx_alg, h.spdx_alg), ("SHA-256", "SHA256"));
        assert_eq!(h.hex, "ab".repeat(32));
        assert!(digest_hash("sha256:abc").is_none());
        assert!(digest_hash("md5:0123").is_none());
        assert_eq!(blob_path("sha256:00ff"), "blobs/sha256/00ff");
        assert_eq!(
            oci_purl("Vendor/App", "sha256:00ff", "1.0", Some("linux/arm64/v8")),
            "pkg:oci/app@sha256:00ff?arch=arm64&repository_url=Vendor%2FApp&tag=1.0"
        );
        assert_eq!(
            oci_purl("app", "sha256:00ff", "", None),
            "pkg:oci/app@sha256:00ff?repository_url=app"
        );
    }

    #[test]
    fn idstrings_and_unique_ids() {
        assert_eq!(idstring("vendor/app:1.0", 64, "x"), "vendor-app-1.0");
        assert_eq!(idstring("--a__b--", 64, "x"), "a-b");
        assert_eq!(idstring("é", 64, "x"), "x");
        assert_eq!(idstring("abcdef", 3, "x"), "abc");
        let mut ids = UniqueIds::default();
        ids.reserve("a");
        assert_eq!(ids.unique("a", "-"), "a-2");
        assert_eq!(ids.unique("b", "-"), "b");
        assert_eq!(ids.unique("a", "-"), "a-3");
    }
}
