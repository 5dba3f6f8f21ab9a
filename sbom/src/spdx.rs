//! SPDX 2.3 JSON documents: one per image and platform ([`image_sbom`])
//! and one for the whole bundle ([`bundle_sbom`]).
//!
//! # Why our own serde structs
//!
//! The same reasons as for CycloneDX (see [`crate::cyclonedx`]): the
//! choice was `serde-spdx` (types generated from the SPDX 2.3 schema by a
//! build script running `schemafy`) or writing the JSON ourselves. We
//! write it with a few `#[derive(Serialize)]` structs covering exactly
//! the fields we emit, so that the bytes are deterministic by
//! construction (declaration order, no clock, no randomness: the document
//! namespace ends in a UUID derived from a SHA-256 of the document), the
//! build adds no code generator, and validity is established where it
//! can be: the tests validate every kind of document against the official
//! SPDX 2.3 JSON schema vendored in `sbom/schemas/`, and check what the
//! schema leaves to prose (SPDXID syntax and uniqueness, relationships
//! naming existing elements, license expressions parsing, every
//! `LicenseRef-` defined). `serde-spdx`'s generated types would check
//! none of that either.
//!
//! # What the documents say
//!
//! An image SBOM describes (`DESCRIBES`) the image for one platform as a
//! package with `primaryPackagePurpose` `CONTAINER`, its manifest's
//! SHA-256 and its `pkg:oci` purl. The image `CONTAINS` the distribution
//! (`OPERATING_SYSTEM`, when known) and every package found, each with a
//! unique sanitized SPDXID (`SPDXRef-Package-deb-bash-5.2.15-2-b2`),
//! `versionInfo`, `downloadLocation` `NOASSERTION`, `filesAnalyzed`
//! false, its purl as a `PACKAGE-MANAGER` external reference,
//! `licenseDeclared` (a valid SPDX expression: several declared strings
//! are joined with `AND`, names that are not SPDX become `LicenseRef-`s
//! defined in `hasExtractedLicensingInfos`, nothing declared is
//! `NOASSERTION`), the file and layer it was read from as `sourceInfo`,
//! and the parser's other facts as its `comment`. `creationInfo` has the
//! bundle's creation time and the creator `Tool: airgap-bundle-VERSION`.
//! Scan warnings are the document's `comment`.
//!
//! License expressions are read as for CycloneDX (see
//! [`crate::cyclonedx`]). A non-GNU license with the `+` operator
//! (`Apache-2.0+`) is written as SPDX 2.3 Annex D allows it; SPDX's Python
//! tools (`pyspdxtools`, through the `license-expression` library) do not
//! yet accept that form (aboutcode-org/license-expression#110). Apart from
//! that, the test documents (every ecosystem and license shape, image and
//! bundle) pass `pyspdxtools`' validation as well as the schema.
//!
//! A bundle SBOM describes the bundle (`ARCHIVE`), which `CONTAINS` its
//! images (`CONTAINER`, by digest), charts (`INSTALL`), files and
//! templates (`FILE`), all with SHA-256 checksums, and the SBOM documents
//! it carries for its images (`FILE`, generated and vendor-supplied side
//! by side), each image `DESCRIBED_BY` its SBOMs. An SPDX image SBOM
//! whose namespace is known is also listed in `externalDocumentRefs` with
//! its SHA-256, and the image is `DESCRIBED_BY` that document's
//! `SPDXRef-DOCUMENT`.

use serde::Serialize;

use crate::document::{
    blob_path, content_uuid, digest_hash, idstring, oci_purl, sbom_title, BundleArtifact,
    BundleSubject, ImageSubject, SbomFormat, UniqueIds, TOOL_NAME,
};
use crate::image::{ImageScan, LAYER_PROPERTY};
use crate::license::{license_list_version, SpdxLicenses};
use crate::{Ecosystem, Package};

/// The SPDX version written.
pub const SPDX_VERSION: &str = "SPDX-2.3";
/// Where document namespaces start; each ends in the document's name and
/// a UUID derived from its content. SPDX's own documents and examples use
/// this prefix for namespaces that are identifiers, not locations.
pub const NAMESPACE_PREFIX: &str = "https://spdx.org/spdxdocs/airgap-bundle";

const NOASSERTION: &str = "NOASSERTION";
const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";

#[derive(Serialize)]
struct Document {
    #[serde(rename = "spdxVersion")]
    spdx_version: &'static str,
    #[serde(rename = "dataLicense")]
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    #[serde(rename = "documentNamespace")]
    document_namespace: String,
    #[serde(rename = "creationInfo")]
    creation_info: CreationInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(rename = "externalDocumentRefs", skip_serializing_if = "Vec::is_empty")]
    external_document_refs: Vec<ExternalDocumentRef>,
    packages: Vec<SpdxPackage>,
    #[serde(
        rename = "hasExtractedLicensingInfos",
        skip_serializing_if = "Vec::is_empty"
    )]
    extracted: Vec<ExtractedLicensingInfo>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
    #[serde(rename = "licenseListVersion")]
    license_list_version: &'static str,
}

#[derive(Serialize)]
struct ExternalDocumentRef {
    #[serde(rename = "externalDocumentId")]
    external_document_id: String,
    #[serde(rename = "spdxDocument")]
    spdx_document: String,
    checksum: Checksum,
}

#[derive(Serialize)]
struct SpdxPackage {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: String,
    #[serde(rename = "versionInfo", skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    #[serde(rename = "downloadLocation")]
    download_location: &'static str,
    #[serde(rename = "filesAnalyzed")]
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    #[serde(rename = "sourceInfo", skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(rename = "licenseConcluded")]
    license_concluded: &'static str,
    #[serde(rename = "licenseDeclared")]
    license_declared: String,
    #[serde(rename = "copyrightText")]
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(rename = "externalRefs", skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    #[serde(rename = "primaryPackagePurpose")]
    primary_package_purpose: &'static str,
}

impl SpdxPackage {
    fn new(spdx_id: String, name: &str, purpose: &'static str) -> Self {
        SpdxPackage {
            spdx_id,
            name: name.to_string(),
            version_info: None,
            download_location: NOASSERTION,
            files_analyzed: false,
            checksums: Vec::new(),
            source_info: None,
            license_concluded: NOASSERTION,
            license_declared: NOASSERTION.to_string(),
            copyright_text: NOASSERTION,
            comment: None,
            external_refs: Vec::new(),
            primary_package_purpose: purpose,
        }
    }
}

#[derive(Serialize)]
struct Checksum {
    algorithm: &'static str,
    #[serde(rename = "checksumValue")]
    checksum_value: String,
}

#[derive(Serialize)]
struct ExternalRef {
    #[serde(rename = "referenceCategory")]
    reference_category: &'static str,
    #[serde(rename = "referenceType")]
    reference_type: &'static str,
    #[serde(rename = "referenceLocator")]
    reference_locator: String,
}

#[derive(Serialize)]
struct ExtractedLicensingInfo {
    #[serde(rename = "licenseId")]
    license_id: String,
    #[serde(rename = "extractedText")]
    extracted_text: String,
    name: String,
    comment: &'static str,
}

#[derive(Serialize)]
struct Relationship {
    #[serde(rename = "spdxElementId")]
    spdx_element_id: String,
    #[serde(rename = "relationshipType")]
    relationship_type: &'static str,
    #[serde(rename = "relatedSpdxElement")]
    related_spdx_element: String,
}

fn relationship(from: &str, kind: &'static str, to: &str) -> Relationship {
    Relationship {
        spdx_element_id: from.to_string(),
        relationship_type: kind,
        related_spdx_element: to.to_string(),
    }
}

fn checksums(digest: &str) -> Vec<Checksum> {
    digest_hash(digest)
        .map(|h| Checksum {
            algorithm: h.spdx_alg,
            checksum_value: h.hex,
        })
        .into_iter()
        .collect()
}

fn purl_ref(purl: String) -> ExternalRef {
    ExternalRef {
        reference_category: "PACKAGE-MANAGER",
        reference_type: "purl",
        reference_locator: purl,
    }
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn creation_info(created: &str, tool_version: &str) -> CreationInfo {
    let tool = if tool_version.is_empty() {
        TOOL_NAME.to_string()
    } else {
        format!("{TOOL_NAME}-{tool_version}")
    };
    CreationInfo {
        created: created.to_string(),
        creators: vec![format!("Tool: {tool}")],
        license_list_version: license_list_version(),
    }
}

/// Serializes with the namespace `NAMESPACE_PREFIX/KIND/NAME-UUID`, the
/// UUID derived from the document's content written without it.
fn finish(mut doc: Document, kind: &str) -> Vec<u8> {
    doc.document_namespace = String::new();
    let unnamed = serde_json::to_vec(&doc).expect("serializable");
    doc.document_namespace = format!(
        "{NAMESPACE_PREFIX}/{kind}/{}-{}",
        idstring(&doc.name, 64, "document"),
        content_uuid(&unnamed)
    );
    let mut out = serde_json::to_vec_pretty(&doc).expect("serializable");
    out.push(b'\n');
    out
}

/// The SPDX 2.3 JSON SBOM of one image and platform: `subject` as the
/// described container package, `scan`'s distribution and packages as
/// packages it contains, `created` (RFC 3339 UTC, the bundle's creation
/// time) as the creation time, `airgap-bundle-TOOL_VERSION` as the
/// creator. The same input always gives the same bytes.
pub fn image_sbom(
    subject: &ImageSubject,
    scan: &ImageScan,
    created: &str,
    tool_version: &str,
) -> Vec<u8> {
    let mut ids = UniqueIds::default();
    ids.reserve(DOCUMENT_ID);
    let image_id = ids.unique("SPDXRef-Image", "-");

    let mut image = SpdxPackage::new(image_id.clone(), &subject.name, "CONTAINER");
    image.version_info = some(&subject.tag);
    image.checksums = checksums(&subject.manifest_digest);
    image.external_refs = vec![purl_ref(oci_purl(
        &subject.name,
        &subject.manifest_digest,
        &subject.tag,
        Some(&subject.platform),
    ))];
    let mut comment = format!(
        "Image {} for {}, manifest {}",
        subject.reference, subject.platform, subject.manifest_digest
    );
    if let Some(index) = &subject.index_digest {
        comment.push_str(&format!(", from index {index}"));
    }
    if !subject.layers.is_empty() {
        comment.push_str(&format!(
            "; layers, base first: {}",
            subject.layers.join(", ")
        ));
    }
    image.comment = Some(comment);

    let mut packages = vec![image];
    let mut relationships = vec![relationship(DOCUMENT_ID, "DESCRIBES", &image_id)];

    if let Some(distro) = scan.distro.as_ref().filter(|d| !d.id.is_empty()) {
        let id = ids.unique("SPDXRef-OperatingSystem", "-");
        let mut os = SpdxPackage::new(id.clone(), &distro.id, "OPERATING_SYSTEM");
        os.version_info = distro.version_id.clone().filter(|v| !v.is_empty());
        os.comment = Some("The distribution, from os-release".to_string());
        relationships.push(relationship(&image_id, "CONTAINS", &id));
        packages.push(os);
    }

    let mut licenses = SpdxLicenses::new(
        scan.packages
            .iter()
            .flat_map(|p| p.licenses.iter().map(String::as_str)),
    );
    for p in &scan.packages {
        let pkg = package(p, &mut ids, &mut licenses);
        relationships.push(relationship(&image_id, "CONTAINS", &pkg.spdx_id));
        packages.push(pkg);
    }

    let doc = Document {
        spdx_version: SPDX_VERSION,
        data_license: "CC0-1.0",
        spdx_id: DOCUMENT_ID,
        name: format!("{} ({})", subject.reference, subject.platform),
        document_namespace: String::new(),
        creation_info: creation_info(created, tool_version),
        comment: (!scan.warnings.is_empty())
            .then(|| format!("Scan warnings:\n{}", scan.warnings.join("\n"))),
        external_document_refs: Vec::new(),
        packages,
        extracted: extracted(licenses),
        relationships,
    };
    finish(doc, "image")
}

fn extracted(licenses: SpdxLicenses) -> Vec<ExtractedLicensingInfo> {
    licenses
        .extracted()
        .into_iter()
        .map(|e| ExtractedLicensingInfo {
            name: e.text.clone(),
            license_id: e.id,
            extracted_text: e.text,
            comment: e.comment,
        })
        .collect()
}

/// `APPLICATION` for the main module of a Go binary and the root crate
/// of a Rust one, `LIBRARY` otherwise.
fn purpose(p: &Package) -> &'static str {
    let flag = match p.ecosystem {
        Ecosystem::Golang => crate::props::GO_MAIN,
        Ecosystem::Cargo => crate::props::CARGO_ROOT,
        _ => return "LIBRARY",
    };
    if p.properties.get(flag).map(String::as_str) == Some("true") {
        "APPLICATION"
    } else {
        "LIBRARY"
    }
}

fn package(p: &Package, ids: &mut UniqueIds, licenses: &mut SpdxLicenses) -> SpdxPackage {
    let mut base = format!(
        "SPDXRef-Package-{}-{}",
        p.ecosystem.purl_type(),
        idstring(&p.name, 80, "unnamed")
    );
    if !p.version.is_empty() {
        base.push('-');
        base.push_str(&idstring(&p.version, 48, "0"));
    }
    let mut pkg = SpdxPackage::new(ids.unique(&base, "-"), &p.name, purpose(p));
    pkg.version_info = some(&p.version);
    pkg.license_declared = licenses.declared(&p.licenses);
    pkg.source_info = Some(match p.properties.get(LAYER_PROPERTY) {
        Some(layer) => format!("read from {} in layer {layer}", p.location),
        None => format!("read from {}", p.location),
    });
    let facts: Vec<String> = p
        .properties
        .iter()
        .filter(|(k, _)| k.as_str() != LAYER_PROPERTY)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    pkg.comment = Some(format!(
        "ecosystem={}{}{}",
        p.ecosystem.as_str(),
        if facts.is_empty() { "" } else { "; " },
        facts.join("; ")
    ));
    if !p.purl.is_empty() {
        pkg.external_refs = vec![purl_ref(p.purl.clone())];
    }
    pkg
}

/// The SPDX 2.3 JSON SBOM of a whole bundle: the bundle as the described
/// package containing its images, charts, files, templates and image
/// SBOMs, with SHA-256 checksums; SPDX image SBOMs with a known namespace
/// also as external document references. The creation time is
/// [`BundleSubject::created`]. The same input always gives the same
/// bytes.
pub fn bundle_sbom(subject: &BundleSubject, tool_version: &str) -> Vec<u8> {
    let mut ids = UniqueIds::default();
    ids.reserve(DOCUMENT_ID);
    let bundle_id = ids.unique("SPDXRef-Bundle", "-");
    let mut bundle = SpdxPackage::new(bundle_id.clone(), &subject.name, "ARCHIVE");
    bundle.version_info = some(&subject.version);
    bundle.comment = Some("An air-gap bundle: images, charts, files and templates".to_string());
    let mut packages = vec![bundle];
    let mut relationships = vec![relationship(DOCUMENT_ID, "DESCRIBES", &bundle_id)];
    let mut image_ids: Vec<(&str, String)> = Vec::new();

    for image in &subject.images {
        let id = ids.unique(
            &format!("SPDXRef-Image-{}", idstring(&image.reference, 96, "image")),
            "-",
        );
        let mut pkg = SpdxPackage::new(id.clone(), &image.name, "CONTAINER");
        pkg.version_info = some(&image.tag);
        pkg.checksums = checksums(&image.digest);
        pkg.external_refs = vec![purl_ref(oci_purl(
            &image.name,
            &image.digest,
            &image.tag,
            None,
        ))];
        pkg.comment = Some(format!(
            "Image {} ({}), platforms: {}",
            image.reference,
            image.media_type,
            image.platforms.join(", ")
        ));
        relationships.push(relationship(&bundle_id, "CONTAINS", &id));
        image_ids.push((&image.reference, id));
        packages.push(pkg);
    }
    for (kind, purpose, list) in [
        ("Chart", "INSTALL", &subject.charts),
        ("File", "FILE", &subject.files),
        ("Template", "FILE", &subject.templates),
    ] {
        for a in list {
            let pkg = artifact(kind, purpose, a, &mut ids);
            relationships.push(relationship(&bundle_id, "CONTAINS", &pkg.spdx_id));
            packages.push(pkg);
        }
    }

    let mut doc_refs = Vec::new();
    let mut doc_ref_ids = UniqueIds::default();
    for s in &subject.image_sboms {
        let label = format!(
            "{}-{}-{}-{}",
            s.image_reference,
            s.platform.as_deref().unwrap_or("all"),
            s.format.as_str(),
            if s.vendor { "vendor" } else { "generated" }
        );
        let id = ids.unique(
            &format!("SPDXRef-SBOM-{}", idstring(&label, 128, "sbom")),
            "-",
        );
        let mut pkg = SpdxPackage::new(id.clone(), &sbom_title(s), "FILE");
        pkg.checksums = checksums(&s.digest);
        let mut comment = format!("In the bundle at {}", blob_path(&s.digest));
        if let Some(doc_id) = &s.document_id {
            comment.push_str(&format!("; document {doc_id}"));
        }
        pkg.comment = Some(comment);
        relationships.push(relationship(&bundle_id, "CONTAINS", &id));
        let image_id = image_ids
            .iter()
            .find(|(r, _)| *r == s.image_reference)
            .map(|(_, id)| id.clone());
        if let Some(image_id) = &image_id {
            relationships.push(relationship(image_id, "DESCRIBED_BY", &id));
        }
        packages.push(pkg);

        let namespace = s
            .document_id
            .as_ref()
            .filter(|_| s.format == SbomFormat::Spdx);
        if let (Some(namespace), Some(hash)) = (namespace, digest_hash(&s.digest)) {
            let doc_ref = doc_ref_ids.unique(
                &format!("DocumentRef-{}", idstring(&label, 128, "sbom")),
                "-",
            );
            if let Some(image_id) = &image_id {
                relationships.push(relationship(
                    image_id,
                    "DESCRIBED_BY",
                    &format!("{doc_ref}:{DOCUMENT_ID}"),
                ));
            }
            doc_refs.push(ExternalDocumentRef {
                external_document_id: doc_ref,
                spdx_document: namespace.clone(),
                checksum: Checksum {
                    algorithm: hash.spdx_alg,
                    checksum_value: hash.hex,
                },
            });
        }
    }

    let doc = Document {
        spdx_version: SPDX_VERSION,
        data_license: "CC0-1.0",
        spdx_id: DOCUMENT_ID,
        name: format!("{} {}", subject.name, subject.version),
        document_namespace: String::new(),
        creation_info: creation_info(&subject.created, tool_version),
        comment: None,
        external_document_refs: doc_refs,
        packages,
        extracted: Vec::new(),
        relationships,
    };
    finish(doc, "bundle")
}

fn artifact(
    kind: &str,
    purpose: &'static str,
    a: &BundleArtifact,
    ids: &mut UniqueIds,
) -> SpdxPackage {
    let mut base = format!("SPDXRef-{kind}-{}", idstring(&a.name, 96, "unnamed"));
    if let Some(v) = a.version.as_deref().filter(|v| !v.is_empty()) {
        base.push('-');
        base.push_str(&idstring(v, 48, "0"));
    }
    let mut pkg = SpdxPackage::new(ids.unique(&base, "-"), &a.name, purpose);
    pkg.version_info = a.version.clone().filter(|v| !v.is_empty());
    pkg.checksums = checksums(&a.digest);
    pkg.comment = Some(format!("{kind}, {} bytes", a.size));
    pkg
}
