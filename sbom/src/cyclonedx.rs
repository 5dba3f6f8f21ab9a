//! CycloneDX 1.6 JSON documents: one per image and platform
//! ([`image_sbom`]) and one for the whole bundle ([`bundle_sbom`]).
//!
//! # Why our own serde structs, and why 1.6
//!
//! The issue left the choice between `cyclonedx-bom` (the official Rust
//! library), `serde-cyclonedx` / `serde-spdx` (types generated from the
//! JSON schemas) and writing the JSON ourselves. We write it ourselves,
//! with a few `#[derive(Serialize)]` structs holding exactly the fields we
//! emit, and check the result against the official schemas in tests:
//!
//! - **Deterministic bytes are ours to control.** Every field is written
//!   in declaration order, empty lists are left out by rule, and nothing
//!   is random or timed: the serial number is a UUID derived from a
//!   SHA-256 of the document itself, the timestamp is the bundle's.
//!   `cyclonedx-bom` generates random (v4) serial numbers unless told
//!   otherwise and models much that we never write.
//! - **Spec version.** `cyclonedx-bom` 0.8 writes at most CycloneDX 1.5;
//!   we write 1.6 (the current release, which every mainstream consumer
//!   reads): its tool-as-component metadata is the non-deprecated form,
//!   and `serde-cyclonedx`'s 1.6 types would have been the only
//!   off-the-shelf route to it.
//! - **Build cost and dependencies.** `serde-cyclonedx` and `serde-spdx`
//!   run a schema-to-Rust generator (`schemafy`, `syn`, `prettyplease`) in
//!   their build scripts and pull in `derive_builder` and a second major
//!   version of `thiserror`; `cyclonedx-bom` brings `xml-rs`, `regex`,
//!   `fluent-uri`, `indexmap`, `strum`, `uuid` and `time`. Our structs
//!   need only `serde`, `serde_json` and `sha2`, which the workspace
//!   already builds, plus the small `spdx` crate (the SPDX license list)
//!   for license identifiers — on a two-core builder that matters.
//! - **Generated types do not make a document valid.** Schema-generated
//!   structs are mostly `Option`s and `serde_json::Value`s (for `oneOf`
//!   choices such as licenses); they enforce neither patterns nor the
//!   license-or-expression rule. Validity is shown the only reliable way:
//!   the tests validate every kind of document we write against the
//!   vendored official schemas (`sbom/schemas/`, with their provenance in
//!   `sbom/schemas/README.md`).
//!
//! The cost is that a new CycloneDX field means a new struct field here,
//! and a new spec version a review of this file against its schema.
//!
//! # What the documents say
//!
//! An image SBOM has the image (one platform) as `metadata.component`
//! (type `container`, `pkg:oci` purl, SHA-256 of the manifest), the
//! bundler as `metadata.tools`, the bundle's creation time as
//! `metadata.timestamp`, the distribution (when known) as an
//! `operating-system` component, and every package found as a component
//! with its purl, version, licenses (SPDX ids, names, or one SPDX
//! expression; see "Licenses" below) and properties:
//! `airgap:ecosystem`, `airgap:location` (the file it was read from),
//! `airgap:layer` (the layer digest) and every parser property as
//! `airgap:NAME` (`airgap:arch`, `airgap:source`, …). Scan warnings are
//! `airgap:scan:warning` properties of the document. A package's
//! `bom-ref` is its purl and location (`PURL|/var/lib/dpkg/status`), so
//! the same package found in two places gets two; a repeat of both gets
//! `#2`, `#3`…. The dependency graph
//! has one node: the image depends on every component. What packages
//! need among themselves is not known, and is not claimed.
//!
//! The bundle SBOM has the bundle as `metadata.component` and every image
//! (by index or manifest digest), chart, file and template as a component
//! with its SHA-256; each image lists the SBOMs the bundle carries for it,
//! generated and vendor-supplied alike, as `externalReferences` of type
//! `bom` with the blob's SHA-256 and, when the SBOM is a CycloneDX BOM
//! with a serial number, its BOM-Link (`urn:cdx:SERIAL/VERSION`) as URL;
//! otherwise the URL is the blob's path in the bundle (`blobs/sha256/…`).
//!
//! # Licenses
//!
//! Each declared license string is read as an SPDX license expression
//! against the SPDX License List 3.29.0 (the list the schema enumerates):
//! identifiers match case-insensitively, operators in any case, `/` reads
//! as `OR`, a GNU `-only` id with `+` is its `-or-later` id; nothing else
//! is guessed (`GPLv2+` stays a name). A package
//! whose strings are all identifiers or names gets a list of
//! `license.id` / `license.name` entries; a single expression is written
//! as `expression`; several valid strings including an expression become
//! one conjunction (`AND`, the conservative reading), since CycloneDX
//! allows a list or one expression, not both; with names among them the
//! expressions are listed as names instead.

use serde::Serialize;

use crate::document::{
    blob_path, content_uuid, digest_hash, oci_purl, sbom_title, BundleArtifact, BundleImage,
    BundleSubject, ImageSubject, SbomFormat, SbomRef, UniqueIds, TOOL_NAME,
};
use crate::image::{ImageScan, LAYER_PROPERTY};
use crate::license::{cyclonedx_licenses, CdxLicense, CdxLicenses};
use crate::{Distro, Ecosystem, Package};

/// The CycloneDX specification version written.
pub const SPEC_VERSION: &str = "1.6";
/// The `$schema` written, the schema's own `$id`.
pub const SCHEMA_URL: &str = "http://cyclonedx.org/schema/bom-1.6.schema.json";

/// Property: the package's ecosystem (`deb`, `python`, … as
/// [`Ecosystem::as_str`]).
pub const ECOSYSTEM_PROPERTY: &str = "airgap:ecosystem";
/// Property: the file inside the image a package was read from.
pub const LOCATION_PROPERTY: &str = "airgap:location";
/// Document property: one scan warning.
pub const WARNING_PROPERTY: &str = "airgap:scan:warning";

#[derive(Serialize)]
struct Bom {
    #[serde(rename = "$schema")]
    schema: &'static str,
    #[serde(rename = "bomFormat")]
    bom_format: &'static str,
    #[serde(rename = "specVersion")]
    spec_version: &'static str,
    #[serde(rename = "serialNumber", skip_serializing_if = "Option::is_none")]
    serial_number: Option<String>,
    version: u32,
    metadata: Metadata,
    components: Vec<Component>,
    dependencies: Vec<Dependency>,
}

/// One node of the dependency graph. Only the described component's is
/// written: it depends on every component (the image ships them, the
/// bundle carries them); what the packages need among themselves is not
/// known, so their own nodes are left out rather than declared empty.
#[derive(Serialize)]
struct Dependency {
    #[serde(rename = "ref")]
    bom_ref: String,
    #[serde(rename = "dependsOn")]
    depends_on: Vec<String>,
}

fn root_dependencies(root: &Component, components: &[Component]) -> Vec<Dependency> {
    let Some(root) = root.bom_ref.clone() else {
        return Vec::new();
    };
    vec![Dependency {
        bom_ref: root,
        depends_on: components
            .iter()
            .filter_map(|c| c.bom_ref.clone())
            .collect(),
    }]
}

#[derive(Serialize)]
struct Metadata {
    timestamp: String,
    tools: Tools,
    component: Component,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Component>,
}

#[derive(Serialize, Default)]
struct Component {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    bom_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<String>,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<LicenseChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<String>,
    #[serde(rename = "externalReferences", skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<ExternalReference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    properties: Vec<Property>,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum LicenseChoice {
    License { license: License },
    Expression { expression: String },
}

#[derive(Serialize)]
struct License {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

#[derive(Serialize)]
struct ExternalReference {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
    comment: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
}

#[derive(Serialize)]
struct Property {
    name: String,
    value: String,
}

fn property(name: &str, value: &str) -> Property {
    Property {
        name: name.to_string(),
        value: value.to_string(),
    }
}

fn hashes(digest: &str) -> Vec<Hash> {
    digest_hash(digest)
        .map(|h| Hash {
            alg: h.cyclonedx_alg,
            content: h.hex,
        })
        .into_iter()
        .collect()
}

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn tool(tool_version: &str) -> Tools {
    Tools {
        components: vec![Component {
            kind: "application",
            name: TOOL_NAME.to_string(),
            version: some(tool_version),
            ..Default::default()
        }],
    }
}

/// Serializes with the serial number derived from the document's content
/// (written without one first).
fn finish(mut bom: Bom) -> Vec<u8> {
    bom.serial_number = None;
    let unsigned = serde_json::to_vec(&bom).expect("serializable");
    bom.serial_number = Some(format!("urn:uuid:{}", content_uuid(&unsigned)));
    let mut out = serde_json::to_vec_pretty(&bom).expect("serializable");
    out.push(b'\n');
    out
}

/// The CycloneDX 1.6 JSON SBOM of one image and platform: `subject` as the
/// described container, `scan`'s distribution and packages as
/// components, `created` (RFC 3339, the bundle's creation time) as the
/// timestamp, `airgap-bundle` `tool_version` as the tool. The same input
/// always gives the same bytes.
pub fn image_sbom(
    subject: &ImageSubject,
    scan: &ImageScan,
    created: &str,
    tool_version: &str,
) -> Vec<u8> {
    let image_purl = oci_purl(
        &subject.name,
        &subject.manifest_digest,
        &subject.tag,
        Some(&subject.platform),
    );
    let mut ids = UniqueIds::default();
    let image_ref = ids.unique(&image_purl, "#");

    let mut image_props = vec![
        property("airgap:image:reference", &subject.reference),
        property("airgap:image:platform", &subject.platform),
        property("airgap:image:manifest-digest", &subject.manifest_digest),
    ];
    if let Some(index) = &subject.index_digest {
        image_props.push(property("airgap:image:index-digest", index));
    }
    for (i, layer) in subject.layers.iter().enumerate() {
        image_props.push(property(&format!("airgap:image:layer:{i}"), layer));
    }
    let image = Component {
        kind: "container",
        bom_ref: Some(image_ref),
        name: subject.name.clone(),
        version: some(&subject.tag),
        hashes: hashes(&subject.manifest_digest),
        purl: Some(image_purl),
        properties: image_props,
        ..Default::default()
    };

    let mut components = Vec::with_capacity(scan.packages.len() + 1);
    if let Some(distro) = scan.distro.as_ref().filter(|d| !d.id.is_empty()) {
        components.push(os_component(distro, &mut ids));
    }
    for p in &scan.packages {
        components.push(package_component(p, &mut ids));
    }

    let dependencies = root_dependencies(&image, &components);
    let bom = Bom {
        schema: SCHEMA_URL,
        bom_format: "CycloneDX",
        spec_version: SPEC_VERSION,
        serial_number: None,
        version: 1,
        metadata: Metadata {
            timestamp: created.to_string(),
            tools: tool(tool_version),
            component: image,
            properties: scan
                .warnings
                .iter()
                .map(|w| property(WARNING_PROPERTY, w))
                .collect(),
        },
        components,
        dependencies,
    };
    finish(bom)
}

fn os_component(distro: &Distro, ids: &mut UniqueIds) -> Component {
    let version = distro.version_id.clone().filter(|v| !v.is_empty());
    let base = match &version {
        Some(v) => format!("os:{}@{v}", distro.id),
        None => format!("os:{}", distro.id),
    };
    Component {
        kind: "operating-system",
        bom_ref: Some(ids.unique(&base, "#")),
        name: distro.id.clone(),
        version,
        description: Some("The distribution, from os-release".to_string()),
        ..Default::default()
    }
}

/// `library`, or `application` for the main module of a Go binary and
/// the root crate of a Rust one.
fn package_type(p: &Package) -> &'static str {
    let flag = match p.ecosystem {
        Ecosystem::Golang => crate::props::GO_MAIN,
        Ecosystem::Cargo => crate::props::CARGO_ROOT,
        _ => return "library",
    };
    if p.properties.get(flag).map(String::as_str) == Some("true") {
        "application"
    } else {
        "library"
    }
}

/// Group and name as CycloneDX splits them: Maven `groupId:artifactId`
/// and npm `@scope/name`; others whole.
fn group_and_name(p: &Package) -> (Option<String>, String) {
    let split = match p.ecosystem {
        Ecosystem::Maven => p.name.split_once(':'),
        Ecosystem::Npm if p.name.starts_with('@') => p.name.split_once('/'),
        _ => None,
    };
    match split {
        Some((g, n)) if !g.is_empty() && !n.is_empty() => (Some(g.to_string()), n.to_string()),
        _ => (None, p.name.clone()),
    }
}

fn package_component(p: &Package, ids: &mut UniqueIds) -> Component {
    let ident = if p.purl.is_empty() {
        format!("{}:{}@{}", p.ecosystem, p.name, p.version)
    } else {
        p.purl.clone()
    };
    let bom_ref = ids.unique(&format!("{ident}|{}", p.location), "#");
    let (group, name) = group_and_name(p);
    let mut properties = vec![
        property(ECOSYSTEM_PROPERTY, p.ecosystem.as_str()),
        property(LOCATION_PROPERTY, &p.location),
    ];
    if let Some(layer) = p.properties.get(LAYER_PROPERTY) {
        properties.push(property(LAYER_PROPERTY, layer));
    }
    for (k, v) in &p.properties {
        if k == LAYER_PROPERTY {
            continue;
        }
        let name = if k.starts_with("airgap:") {
            k.clone()
        } else {
            format!("airgap:{k}")
        };
        properties.push(Property {
            name,
            value: v.clone(),
        });
    }
    Component {
        kind: package_type(p),
        bom_ref: Some(bom_ref),
        group,
        name,
        version: some(&p.version),
        licenses: licenses(&p.licenses),
        purl: some(&p.purl),
        properties,
        ..Default::default()
    }
}

fn licenses(declared: &[String]) -> Vec<LicenseChoice> {
    match cyclonedx_licenses(declared) {
        CdxLicenses::Expression(expression) => vec![LicenseChoice::Expression { expression }],
        CdxLicenses::List(list) => list
            .into_iter()
            .map(|l| LicenseChoice::License {
                license: match l {
                    CdxLicense::Id(id) => License {
                        id: Some(id),
                        name: None,
                    },
                    CdxLicense::Name(name) => License {
                        id: None,
                        name: Some(name),
                    },
                },
            })
            .collect(),
    }
}

/// The CycloneDX 1.6 JSON SBOM of a whole bundle: the bundle as the
/// described component, its images, charts, files and templates as
/// components with their SHA-256, and the image SBOMs it carries as
/// `bom` references of their images. The timestamp is
/// [`BundleSubject::created`]. The same input always gives the same
/// bytes.
pub fn bundle_sbom(subject: &BundleSubject, tool_version: &str) -> Vec<u8> {
    let mut ids = UniqueIds::default();
    let bundle = Component {
        kind: "application",
        bom_ref: Some(ids.unique(&format!("bundle:{}", subject.name), "#")),
        name: subject.name.clone(),
        version: some(&subject.version),
        description: Some("An air-gap bundle: images, charts, files and templates".to_string()),
        properties: vec![property("airgap:kind", "bundle")],
        ..Default::default()
    };
    let mut components = Vec::new();
    for image in &subject.images {
        components.push(image_component(image, &subject.image_sboms, &mut ids));
    }
    for (kind, list) in [
        ("chart", &subject.charts),
        ("file", &subject.files),
        ("template", &subject.templates),
    ] {
        for a in list {
            components.push(artifact_component(kind, a, &mut ids));
        }
    }
    // SBOMs naming no image of the bundle are still listed, as files.
    for s in &subject.image_sboms {
        if !subject
            .images
            .iter()
            .any(|i| i.reference == s.image_reference)
        {
            components.push(Component {
                kind: "file",
                bom_ref: Some(ids.unique(&format!("sbom:{}", s.digest), "#")),
                name: sbom_title(s),
                hashes: hashes(&s.digest),
                external_references: vec![sbom_reference(s)],
                properties: vec![property("airgap:kind", "sbom")],
                ..Default::default()
            });
        }
    }
    let dependencies = root_dependencies(&bundle, &components);
    let bom = Bom {
        schema: SCHEMA_URL,
        bom_format: "CycloneDX",
        spec_version: SPEC_VERSION,
        serial_number: None,
        version: 1,
        metadata: Metadata {
            timestamp: subject.created.clone(),
            tools: tool(tool_version),
            component: bundle,
            properties: Vec::new(),
        },
        components,
        dependencies,
    };
    finish(bom)
}

fn image_component(image: &BundleImage, sboms: &[SbomRef], ids: &mut UniqueIds) -> Component {
    let purl = oci_purl(&image.name, &image.digest, &image.tag, None);
    let mut properties = vec![
        property("airgap:kind", "image"),
        property("airgap:image:reference", &image.reference),
        property("airgap:image:media-type", &image.media_type),
    ];
    for p in &image.platforms {
        properties.push(property("airgap:image:platform", p));
    }
    Component {
        kind: "container",
        bom_ref: Some(ids.unique(&purl, "#")),
        name: image.name.clone(),
        version: some(&image.tag),
        hashes: hashes(&image.digest),
        purl: Some(purl),
        external_references: sboms
            .iter()
            .filter(|s| s.image_reference == image.reference)
            .map(sbom_reference)
            .collect(),
        properties,
        ..Default::default()
    }
}

fn artifact_component(kind: &str, a: &BundleArtifact, ids: &mut UniqueIds) -> Component {
    let base = match &a.version {
        Some(v) => format!("{kind}:{}@{v}", a.name),
        None => format!("{kind}:{}", a.name),
    };
    Component {
        kind: if kind == "chart" {
            "application"
        } else {
            "file"
        },
        bom_ref: Some(ids.unique(&base, "#")),
        name: a.name.clone(),
        version: a.version.clone().filter(|v| !v.is_empty()),
        hashes: hashes(&a.digest),
        properties: vec![
            property("airgap:kind", kind),
            property("airgap:size", &a.size.to_string()),
        ],
        ..Default::default()
    }
}

fn sbom_reference(s: &SbomRef) -> ExternalReference {
    let bom_link = s
        .document_id
        .as_ref()
        .filter(|id| s.format == SbomFormat::CycloneDx && id.starts_with("urn:cdx:"));
    let url = match bom_link {
        Some(link) => link.clone(),
        None => blob_path(&s.digest),
    };
    ExternalReference {
        kind: "bom",
        url,
        comment: format!(
            "{}; in the bundle at {}",
            sbom_title(s),
            blob_path(&s.digest)
        ),
        hashes: hashes(&s.digest),
    }
}
