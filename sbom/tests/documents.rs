//! The SBOM documents against the official schemas vendored in
//! `sbom/schemas/` (CycloneDX 1.6 with its SPDX-license and JSF
//! sub-schemas, SPDX 2.3), offline: schema references resolve to the
//! vendored files and nothing else. Beyond the schemas: determinism,
//! unique bom-refs and SPDXIDs, relationships that resolve, license
//! expressions that parse, purls that round-trip through an independent
//! parser.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::OnceLock;

use airgap_sbom::document::{
    document_id, BundleArtifact, BundleImage, BundleSubject, ImageSubject, SbomFormat, SbomRef,
};
use airgap_sbom::image::{scan_image, ImageScan, LayerInput, LAYER_PROPERTY};
use airgap_sbom::layers::Compression;
use airgap_sbom::{cyclonedx, spdx, Distro, Ecosystem, Package, PackageUrl};
use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;

const CREATED: &str = "2024-05-06T07:08:09Z";
const TOOL: &str = "0.1.0";

fn schema_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(name)
}

fn load(name: &str) -> Value {
    let bytes = std::fs::read(schema_path(name)).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Resolves the CycloneDX schema's references to the vendored files, by
/// the URIs they resolve to against the schema's `$id` (the files come
/// from a package that names them `*.SNAPSHOT.schema.json`, see
/// `schemas/README.md`) and by the files' own `$id`s. Anything else is an
/// error: no network.
struct Vendored;

impl Retrieve for Vendored {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let file = match uri.as_str() {
            "http://cyclonedx.org/schema/spdx.SNAPSHOT.schema.json"
            | "http://cyclonedx.org/schema/spdx.schema.json" => "spdx.schema.json",
            "http://cyclonedx.org/schema/jsf-0.82.SNAPSHOT.schema.json"
            | "http://cyclonedx.org/schema/jsf-0.82.schema.json" => "jsf-0.82.schema.json",
            other => return Err(format!("not vendored: {other}").into()),
        };
        Ok(load(file))
    }
}

fn cyclonedx_validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        jsonschema::options()
            .with_retriever(Vendored)
            .should_validate_formats(true)
            .build(&load("bom-1.6.schema.json"))
            .expect("the CycloneDX schema compiles")
    })
}

fn spdx_validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| {
        jsonschema::options()
            .with_retriever(Vendored)
            .should_validate_formats(true)
            .build(&load("spdx-schema.json"))
            .expect("the SPDX schema compiles")
    })
}

fn errors(validator: &Validator, doc: &Value) -> Vec<String> {
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

/// Checks a CycloneDX document against the schema and what the schema
/// leaves out; returns it parsed.
fn check_cyclonedx(bytes: &[u8]) -> Value {
    let doc = json(bytes);
    let errs = errors(cyclonedx_validator(), &doc);
    assert!(
        errs.is_empty(),
        "schema errors:\n{}\n{}",
        errs.join("\n"),
        String::from_utf8_lossy(bytes)
    );
    assert_eq!(doc["specVersion"], "1.6");
    assert_eq!(doc["metadata"]["timestamp"], CREATED);
    let tools = &doc["metadata"]["tools"]["components"][0];
    assert_eq!(tools["name"], "airgap-bundle");
    assert_eq!(tools["version"], TOOL);
    // bom-refs unique across the document.
    let mut refs = BTreeSet::new();
    let mut all = vec![&doc["metadata"]["component"]];
    all.extend(doc["components"].as_array().unwrap());
    for c in all {
        let r = c["bom-ref"]
            .as_str()
            .expect("every component has a bom-ref");
        assert!(refs.insert(r.to_string()), "duplicate bom-ref {r}");
        if let Some(purl) = c["purl"].as_str() {
            assert_round_trip(purl);
        }
    }
    // One dependency node: the described component, depending on every
    // component.
    let deps = doc["dependencies"].as_array().unwrap();
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0]["ref"], doc["metadata"]["component"]["bom-ref"]);
    let children: BTreeSet<String> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap().to_string())
        .collect();
    let depends_on: BTreeSet<String> = deps[0]["dependsOn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(depends_on, children);
    doc
}

/// Checks an SPDX document against the schema and the rules the schema
/// leaves to prose; returns it parsed.
fn check_spdx(bytes: &[u8]) -> Value {
    let doc = json(bytes);
    let errs = errors(spdx_validator(), &doc);
    assert!(
        errs.is_empty(),
        "schema errors:\n{}\n{}",
        errs.join("\n"),
        String::from_utf8_lossy(bytes)
    );
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
    assert_eq!(doc["creationInfo"]["created"], CREATED);
    assert_eq!(
        doc["creationInfo"]["creators"],
        serde_json::json!([format!("Tool: airgap-bundle-{TOOL}")])
    );
    assert_eq!(doc["creationInfo"]["licenseListVersion"], "3.29");
    let ns = doc["documentNamespace"].as_str().unwrap();
    assert!(
        ns.starts_with("https://") && !ns.contains('#') && !ns.contains(' '),
        "{ns}"
    );

    let idstring = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    let mut ids = BTreeSet::from(["SPDXRef-DOCUMENT".to_string()]);
    for p in doc["packages"].as_array().unwrap() {
        let id = p["SPDXID"].as_str().unwrap();
        let rest = id.strip_prefix("SPDXRef-").expect("SPDXRef- prefix");
        assert!(idstring(rest), "bad SPDXID {id}");
        assert!(ids.insert(id.to_string()), "duplicate SPDXID {id}");
        assert_eq!(p["downloadLocation"], "NOASSERTION");
        assert_eq!(p["filesAnalyzed"], false);
        for r in p["externalRefs"].as_array().into_iter().flatten() {
            if r["referenceType"] == "purl" {
                assert_eq!(r["referenceCategory"], "PACKAGE-MANAGER");
                assert_round_trip(r["referenceLocator"].as_str().unwrap());
            }
        }
    }
    let mut doc_refs = BTreeSet::new();
    for r in doc["externalDocumentRefs"].as_array().into_iter().flatten() {
        let id = r["externalDocumentId"].as_str().unwrap();
        let rest = id.strip_prefix("DocumentRef-").unwrap();
        assert!(idstring(&rest.replace('+', "")), "{id}");
        assert!(doc_refs.insert(id.to_string()), "duplicate {id}");
    }
    // Relationships name elements of this document or of a declared
    // external document.
    let resolves = |e: &str| match e.split_once(':') {
        Some((doc_ref, id)) => doc_refs.contains(doc_ref) && id.starts_with("SPDXRef-"),
        None => ids.contains(e),
    };
    let rels = doc["relationships"].as_array().unwrap();
    for r in rels {
        for k in ["spdxElementId", "relatedSpdxElement"] {
            let e = r[k].as_str().unwrap();
            assert!(resolves(e), "relationship names unknown element {e}");
        }
    }
    let describes: Vec<_> = rels
        .iter()
        .filter(|r| r["relationshipType"] == "DESCRIBES")
        .collect();
    assert_eq!(describes.len(), 1);
    assert_eq!(describes[0]["spdxElementId"], "SPDXRef-DOCUMENT");
    // Every package but the described one is contained in something.
    let root = describes[0]["relatedSpdxElement"].as_str().unwrap();
    for id in &ids {
        if id != root && id != "SPDXRef-DOCUMENT" {
            assert!(
                rels.iter().any(|r| r["relationshipType"] == "CONTAINS"
                    && r["relatedSpdxElement"] == id.as_str()),
                "{id} is not contained"
            );
        }
    }
    // Declared licenses parse as strict SPDX expressions (deprecated ids
    // allowed), and every LicenseRef used is defined, and every one
    // defined is used.
    let defined: BTreeSet<String> = doc["hasExtractedLicensingInfos"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            assert!(!e["extractedText"].as_str().unwrap().is_empty());
            e["licenseId"].as_str().unwrap().to_string()
        })
        .collect();
    let mut used = BTreeSet::new();
    let mode = ::spdx::ParseMode {
        allow_deprecated: true,
        allow_postfix_plus_on_gpl: true,
        ..::spdx::ParseMode::STRICT
    };
    for p in doc["packages"].as_array().unwrap() {
        for field in ["licenseDeclared", "licenseConcluded"] {
            let l = p[field].as_str().unwrap();
            if l == "NOASSERTION" {
                continue;
            }
            let e = ::spdx::Expression::parse_mode(l, mode)
                .unwrap_or_else(|err| panic!("{field} {l:?} is not SPDX: {err}"));
            for req in e.requirements() {
                if let ::spdx::LicenseItem::Other(r) = &req.req.license {
                    used.insert(format!("LicenseRef-{}", r.lic_ref));
                }
            }
        }
    }
    assert_eq!(used, defined, "LicenseRefs used vs defined");
    doc
}

/// Parses `purl` with the `packageurl` crate and prints it again with
/// ours: the same string must come back.
fn assert_round_trip(purl: &str) {
    let parsed: packageurl::PackageUrl<'_> = purl
        .parse()
        .unwrap_or_else(|e| panic!("{purl}: not a purl: {e}"));
    let mut ours = PackageUrl::new(parsed.ty(), parsed.name());
    if let Some(ns) = parsed.namespace() {
        ours = ours.with_namespace(ns);
    }
    if let Some(v) = parsed.version() {
        ours = ours.with_version(v);
    }
    for (k, v) in parsed.qualifiers() {
        ours = ours.with_qualifier(k, v);
    }
    if let Some(sub) = parsed.subpath() {
        ours.subpath = sub.split('/').map(str::to_string).collect();
    }
    assert_eq!(ours.to_string(), purl, "purl does not round-trip");
}

fn package(
    ecosystem: Ecosystem,
    name: &str,
    version: &str,
    purl: &str,
    licenses: &[&str],
    location: &str,
    props: &[(&str, &str)],
) -> Package {
    let mut properties: BTreeMap<String, String> = props
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    properties.insert(LAYER_PROPERTY.to_string(), digest('1'));
    Package {
        ecosystem,
        name: name.to_string(),
        version: version.to_string(),
        purl: purl.to_string(),
        licenses: licenses.iter().map(|l| l.to_string()).collect(),
        location: location.to_string(),
        properties,
    }
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn subject() -> ImageSubject {
    ImageSubject {
        reference: "vendor/app:1.0".into(),
        name: "vendor/app".into(),
        tag: "1.0".into(),
        manifest_digest: digest('a'),
        index_digest: Some(digest('b')),
        platform: "linux/arm64/v8".into(),
        layers: vec![digest('0'), digest('1')],
    }
}

/// Packages of every ecosystem, with licenses of every shape.
fn full_scan() -> ImageScan {
    use Ecosystem::*;
    let dpkg = "/var/lib/dpkg/status";
    let packages = vec![
        package(
            Deb,
            "bash",
            "5.2.15-2+b2",
            "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=arm64&distro=debian-12",
            &["GPL-3.0-or-later"],
            dpkg,
            &[
                ("arch", "arm64"),
                ("source", "bash"),
                ("maintainer", "Matthias Klose <doko@debian.org>"),
            ],
        ),
        // Names that are not SPDX, and a deprecated identifier.
        package(
            Deb,
            "libc6",
            "2.36-9+deb12u4",
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=arm64&distro=debian-12",
            &["GPL-2+", "LGPL-2.1", "public-domain"],
            dpkg,
            &[("arch", "arm64")],
        ),
        package(
            Deb,
            "base-files",
            "12.4+deb12u5",
            "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=arm64&distro=debian-12",
            &[],
            "/var/lib/dpkg/status.d/base-files",
            &[],
        ),
        package(
            Apk,
            "musl",
            "1.2.4-r2",
            "pkg:apk/alpine/musl@1.2.4-r2?arch=aarch64&distro=alpine-3.19",
            &["MIT"],
            "/lib/apk/db/installed",
            &[("arch", "aarch64"), ("apk_commit", "abc")],
        ),
        package(
            Rpm,
            "openssl-libs",
            "3.2.1-2.fc40",
            "pkg:rpm/fedora/openssl-libs@3.2.1-2.fc40?arch=aarch64&distro=fedora-40&epoch=1",
            &["Apache-2.0 AND (BSD-3-Clause OR GPL-2.0-or-later)"],
            "/var/lib/rpm/rpmdb.sqlite",
            &[
                ("epoch", "1"),
                ("source_rpm", "openssl-3.2.1-2.fc40.src.rpm"),
            ],
        ),
        package(
            Python,
            "six",
            "1.16.0",
            "pkg:pypi/six@1.16.0",
            &["mit"],
            "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            &[],
        ),
        package(
            Python,
            "Django",
            "5.0",
            "pkg:pypi/django@5.0",
            &["BSD License"],
            "/usr/lib/python3/site-packages/Django-5.0.dist-info/METADATA",
            &[],
        ),
        package(
            Npm,
            "@angular/core",
            "16.0.0",
            "pkg:npm/%40angular/core@16.0.0",
            &["(MIT OR Apache-2.0)"],
            "/app/node_modules/@angular/core/package.json",
            &[],
        ),
        package(
            Npm,
            "both",
            "1.0.0",
            "pkg:npm/both@1.0.0",
            &["MIT", "Apache-2.0 OR ISC"],
            "/app/node_modules/both/package.json",
            &[],
        ),
        package(
            Npm,
            "mixed",
            "1.0.0",
            "pkg:npm/mixed@1.0.0",
            &["Custom", "Apache-2.0 OR ISC"],
            "/app/node_modules/mixed/package.json",
            &[],
        ),
        // The same package in two places, and twice in one place.
        package(
            Npm,
            "lodash",
            "4.17.21",
            "pkg:npm/lodash@4.17.21",
            &["MIT"],
            "/app/node_modules/lodash/package.json",
            &[],
        ),
        package(
            Npm,
            "lodash",
            "4.17.21",
            "pkg:npm/lodash@4.17.21",
            &["MIT"],
            "/app/node_modules/x/node_modules/lodash/package.json",
            &[],
        ),
        package(
            Npm,
            "lodash",
            "4.17.21",
            "pkg:npm/lodash@4.17.21",
            &["MIT"],
            "/app/node_modules/lodash/package.json",
            &[],
        ),
        package(
            Npm,
            "ünïcode name",
            "1.0.0-β",
            "pkg:npm/%C3%BCn%C3%AFcode%20name@1.0.0-%CE%B2",
            &["LicenseRef-Proprietary"],
            "/app/node_modules/ünïcode name/package.json",
            &[],
        ),
        package(
            Golang,
            "example.com/app",
            "(devel)",
            "pkg:golang/example.com/app@%28devel%29",
            &[],
            "/usr/local/bin/app",
            &[
                ("go_main", "true"),
                ("go_toolchain", "go1.22.1"),
                ("go_build:GOOS", "linux"),
            ],
        ),
        package(
            Golang,
            "github.com/gorilla/context",
            "v1.1.1+incompatible",
            "pkg:golang/github.com/gorilla/context@v1.1.1%2Bincompatible",
            &[],
            "/usr/local/bin/app",
            &[("go_sum", "h1:abc=")],
        ),
        package(
            Cargo,
            "tool",
            "0.3.0",
            "pkg:cargo/tool@0.3.0",
            &["Apache-2.0+"],
            "/usr/bin/tool",
            &[("cargo_root", "true"), ("cargo_source", "local")],
        ),
        package(
            Cargo,
            "serde",
            "1.0.200",
            "pkg:cargo/serde@1.0.200",
            &["MIT/Apache-2.0"],
            "/usr/bin/tool",
            &[("cargo_source", "crates.io")],
        ),
        package(
            Maven,
            "org.openjdk:jdk-lib",
            "21",
            "pkg:maven/org.openjdk/jdk-lib@21",
            &["GPL-2.0-only WITH Classpath-exception-2.0"],
            "/opt/app/app.jar",
            &[
                ("maven_group_id", "org.openjdk"),
                ("maven_artifact_id", "jdk-lib"),
                (
                    "pom_properties",
                    "META-INF/maven/org.openjdk/jdk-lib/pom.properties",
                ),
            ],
        ),
        package(
            Maven,
            "org.apache.commons:commons-lang3",
            "3.12.0",
            "pkg:maven/org.apache.commons/commons-lang3@3.12.0",
            &["Apache License, Version 2.0"],
            "/opt/app/app.jar",
            &[("nested_archive", "BOOT-INF/lib/commons-lang3-3.12.0.jar")],
        ),
    ];
    assert!(Ecosystem::ALL
        .iter()
        .all(|e| packages.iter().any(|p| p.ecosystem == *e)));
    ImageScan {
        distro: Some(Distro::new("debian", Some("12"))),
        packages,
        warnings: vec![format!(
            "layer {}: var/lib/rpm/rpmdb.sqlite: not a database",
            digest('0')
        )],
        ..ImageScan::default()
    }
}

fn component<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no component {name}"))
}

fn spdx_package<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no package {name}"))
}

fn prop<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    c["properties"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
}

#[test]
fn image_cyclonedx_is_valid_and_complete() {
    let scan = full_scan();
    let bytes = cyclonedx::image_sbom(&subject(), &scan, CREATED, TOOL);
    let doc = check_cyclonedx(&bytes);

    let image = &doc["metadata"]["component"];
    assert_eq!(image["type"], "container");
    assert_eq!(image["name"], "vendor/app");
    assert_eq!(image["version"], "1.0");
    assert_eq!(
        image["purl"],
        format!(
            "pkg:oci/app@{}?arch=arm64&repository_url=vendor%2Fapp&tag=1.0",
            digest('a')
        )
    );
    assert_eq!(image["hashes"][0]["alg"], "SHA-256");
    assert_eq!(image["hashes"][0]["content"], "a".repeat(64));
    assert_eq!(
        prop(image, "airgap:image:index-digest"),
        Some(digest('b').as_str())
    );
    assert_eq!(
        prop(image, "airgap:image:layer:1"),
        Some(digest('1').as_str())
    );
    assert_eq!(
        prop(&doc["metadata"], "airgap:scan:warning").map(|w| w.contains("rpmdb")),
        Some(true)
    );

    // The distribution, then every package.
    let comps = doc["components"].as_array().unwrap();
    assert_eq!(comps.len(), 1 + scan.packages.len());
    assert_eq!(comps[0]["type"], "operating-system");
    assert_eq!(comps[0]["name"], "debian");
    assert_eq!(comps[0]["version"], "12");
    for (c, p) in comps[1..].iter().zip(&scan.packages) {
        assert_eq!(c["purl"], p.purl.as_str());
        assert_eq!(c["version"], p.version.as_str());
        assert_eq!(prop(c, "airgap:layer"), Some(digest('1').as_str()));
        assert_eq!(prop(c, "airgap:location"), Some(p.location.as_str()));
        assert_eq!(prop(c, "airgap:ecosystem"), Some(p.ecosystem.as_str()));
    }

    // Every shape of license.
    let lic = |name: &str| component(&doc, name)["licenses"].clone();
    use serde_json::json;
    assert_eq!(
        lic("bash"),
        json!([{"license": {"id": "GPL-3.0-or-later"}}])
    );
    assert_eq!(
        lic("libc6"),
        json!([{"license": {"name": "GPL-2+"}}, {"license": {"id": "LGPL-2.1"}},
               {"license": {"name": "public-domain"}}])
    );
    assert_eq!(lic("base-files"), Value::Null);
    assert_eq!(lic("six"), json!([{"license": {"id": "MIT"}}]));
    assert_eq!(lic("Django"), json!([{"license": {"name": "BSD License"}}]));
    assert_eq!(
        lic("openssl-libs"),
        json!([{"expression": "Apache-2.0 AND (BSD-3-Clause OR GPL-2.0-or-later)"}])
    );
    assert_eq!(lic("core"), json!([{"expression": "MIT OR Apache-2.0"}]));
    assert_eq!(
        lic("both"),
        json!([{"expression": "MIT AND (Apache-2.0 OR ISC)"}])
    );
    assert_eq!(
        lic("mixed"),
        json!([{"license": {"name": "Custom"}}, {"license": {"name": "Apache-2.0 OR ISC"}}])
    );
    assert_eq!(lic("serde"), json!([{"expression": "MIT OR Apache-2.0"}]));
    assert_eq!(lic("tool"), json!([{"expression": "Apache-2.0+"}]));
    assert_eq!(
        lic("jdk-lib"),
        json!([{"expression": "GPL-2.0-only WITH Classpath-exception-2.0"}])
    );
    assert_eq!(
        lic("ünïcode name"),
        json!([{"expression": "LicenseRef-Proprietary"}])
    );

    // Types, groups, properties.
    assert_eq!(component(&doc, "example.com/app")["type"], "application");
    assert_eq!(
        component(&doc, "github.com/gorilla/context")["type"],
        "library"
    );
    assert_eq!(component(&doc, "tool")["type"], "application");
    assert_eq!(component(&doc, "bash")["type"], "library");
    assert_eq!(component(&doc, "core")["group"], "@angular");
    assert_eq!(
        component(&doc, "commons-lang3")["group"],
        "org.apache.commons"
    );
    assert_eq!(prop(component(&doc, "bash"), "airgap:arch"), Some("arm64"));
    assert_eq!(
        prop(component(&doc, "example.com/app"), "airgap:go_build:GOOS"),
        Some("linux")
    );
    let serial = doc["serialNumber"].as_str().unwrap();
    assert_eq!(&serial[..9], "urn:uuid:");
    assert_eq!(&serial[23..24], "8", "a version 8 (hash-derived) UUID");
}

#[test]
fn image_spdx_is_valid_and_complete() {
    let scan = full_scan();
    let bytes = spdx::image_sbom(&subject(), &scan, CREATED, TOOL);
    let doc = check_spdx(&bytes);

    let image = &doc["packages"][0];
    assert_eq!(image["SPDXID"], "SPDXRef-Image");
    assert_eq!(image["primaryPackagePurpose"], "CONTAINER");
    assert_eq!(image["versionInfo"], "1.0");
    assert_eq!(image["checksums"][0]["algorithm"], "SHA256");
    assert_eq!(image["checksums"][0]["checksumValue"], "a".repeat(64));
    assert!(image["externalRefs"][0]["referenceLocator"]
        .as_str()
        .unwrap()
        .starts_with("pkg:oci/app@sha256:"));
    assert_eq!(
        doc["packages"][1]["primaryPackagePurpose"],
        "OPERATING_SYSTEM"
    );
    assert_eq!(
        doc["packages"].as_array().unwrap().len(),
        2 + scan.packages.len()
    );
    assert!(doc["comment"].as_str().unwrap().contains("rpmdb"));

    let declared = |name: &str| spdx_package(&doc, name)["licenseDeclared"].clone();
    assert_eq!(declared("bash"), "GPL-3.0-or-later");
    assert_eq!(
        declared("libc6"),
        "LicenseRef-GPL-2-plus AND LGPL-2.1 AND LicenseRef-public-domain"
    );
    assert_eq!(declared("base-files"), "NOASSERTION");
    assert_eq!(declared("six"), "MIT");
    assert_eq!(declared("Django"), "LicenseRef-BSD-License");
    assert_eq!(declared("both"), "MIT AND (Apache-2.0 OR ISC)");
    assert_eq!(
        declared("mixed"),
        "LicenseRef-Custom AND (Apache-2.0 OR ISC)"
    );
    assert_eq!(declared("tool"), "Apache-2.0+");
    assert_eq!(declared("ünïcode name"), "LicenseRef-Proprietary");
    assert_eq!(
        declared("org.apache.commons:commons-lang3"),
        "LicenseRef-Apache-License-Version-2.0"
    );
    let extracted = doc["hasExtractedLicensingInfos"].as_array().unwrap();
    let bsd = extracted
        .iter()
        .find(|e| e["licenseId"] == "LicenseRef-BSD-License")
        .unwrap();
    assert_eq!(bsd["extractedText"], "BSD License");

    let bash = spdx_package(&doc, "bash");
    assert_eq!(bash["SPDXID"], "SPDXRef-Package-deb-bash-5.2.15-2-b2");
    assert_eq!(bash["primaryPackagePurpose"], "LIBRARY");
    assert_eq!(
        bash["sourceInfo"],
        format!("read from /var/lib/dpkg/status in layer {}", digest('1'))
    );
    assert!(bash["comment"].as_str().unwrap().contains("arch=arm64"));
    assert_eq!(
        spdx_package(&doc, "example.com/app")["primaryPackagePurpose"],
        "APPLICATION"
    );
    // Three lodash packages, three SPDXIDs.
    let lodash: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "lodash")
        .map(|p| p["SPDXID"].as_str().unwrap())
        .collect();
    assert_eq!(
        lodash,
        [
            "SPDXRef-Package-npm-lodash-4.17.21",
            "SPDXRef-Package-npm-lodash-4.17.21-2",
            "SPDXRef-Package-npm-lodash-4.17.21-3"
        ]
    );
}

#[test]
fn empty_scans_give_valid_documents() {
    let bare = ImageSubject {
        reference: "app:latest".into(),
        name: "app".into(),
        tag: "latest".into(),
        manifest_digest: digest('c'),
        index_digest: None,
        platform: "linux/amd64".into(),
        layers: vec![],
    };
    let scan = ImageScan::default();
    let doc = check_cyclonedx(&cyclonedx::image_sbom(&bare, &scan, CREATED, TOOL));
    assert_eq!(doc["components"], serde_json::json!([]));
    let doc = check_spdx(&spdx::image_sbom(&bare, &scan, CREATED, TOOL));
    assert_eq!(doc["packages"].as_array().unwrap().len(), 1);
    assert!(doc.get("hasExtractedLicensingInfos").is_none());

    let bundle = BundleSubject {
        name: "empty".into(),
        version: "0.0.1".into(),
        created: CREATED.into(),
        ..Default::default()
    };
    check_cyclonedx(&cyclonedx::bundle_sbom(&bundle, TOOL));
    check_spdx(&spdx::bundle_sbom(&bundle, TOOL));
}

#[test]
fn documents_are_deterministic_and_identified_by_content() {
    let scan = full_scan();
    let s = subject();
    let a = cyclonedx::image_sbom(&s, &scan, CREATED, TOOL);
    assert_eq!(a, cyclonedx::image_sbom(&s, &scan, CREATED, TOOL));
    let b = spdx::image_sbom(&s, &scan, CREATED, TOOL);
    assert_eq!(b, spdx::image_sbom(&s, &scan, CREATED, TOOL));
    let bundle = bundle_subject(&a, &b);
    assert_eq!(
        cyclonedx::bundle_sbom(&bundle, TOOL),
        cyclonedx::bundle_sbom(&bundle, TOOL)
    );
    assert_eq!(
        spdx::bundle_sbom(&bundle, TOOL),
        spdx::bundle_sbom(&bundle, TOOL)
    );

    // Another input, another identity.
    let mut other = scan.clone();
    other.packages.pop();
    let a2 = cyclonedx::image_sbom(&s, &other, CREATED, TOOL);
    let b2 = spdx::image_sbom(&s, &other, CREATED, TOOL);
    assert_ne!(json(&a)["serialNumber"], json(&a2)["serialNumber"]);
    assert_ne!(
        json(&b)["documentNamespace"],
        json(&b2)["documentNamespace"]
    );
    let later = cyclonedx::image_sbom(&s, &scan, "2025-01-01T00:00:00Z", TOOL);
    assert_ne!(json(&a)["serialNumber"], json(&later)["serialNumber"]);
}

fn bundle_subject(image_cdx: &[u8], image_spdx: &[u8]) -> BundleSubject {
    let sha = |bytes: &[u8]| {
        use sha2::{Digest, Sha256};
        let h = Sha256::digest(bytes);
        format!(
            "sha256:{}",
            h.iter().map(|b| format!("{b:02x}")).collect::<String>()
        )
    };
    let vendor_cdx = br#"{"bomFormat":"CycloneDX","specVersion":"1.4","components":[]}"#;
    let vendor_spdx =
        br#"{"spdxVersion":"SPDX-2.3","documentNamespace":"https://vendor.example/sbom/app-1.0"}"#;
    BundleSubject {
        name: "platform".into(),
        version: "1.4.0".into(),
        created: CREATED.into(),
        images: vec![
            BundleImage {
                reference: "vendor/app:1.0".into(),
                name: "vendor/app".into(),
                tag: "1.0".into(),
                digest: digest('b'),
                media_type: "application/vnd.oci.image.index.v1+json".into(),
                platforms: vec!["linux/amd64".into(), "linux/arm64/v8".into()],
            },
            BundleImage {
                reference: "vendor/worker:2".into(),
                name: "vendor/worker".into(),
                tag: "2".into(),
                digest: digest('d'),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                platforms: vec!["linux/amd64".into()],
            },
            // The same image under a second name.
            BundleImage {
                reference: "vendor/worker:latest".into(),
                name: "vendor/worker".into(),
                tag: "latest".into(),
                digest: digest('d'),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                platforms: vec!["linux/amd64".into()],
            },
        ],
        charts: vec![BundleArtifact {
            name: "hello".into(),
            version: Some("0.1.0".into()),
            digest: digest('e'),
            size: 1234,
        }],
        files: vec![
            BundleArtifact {
                name: "docs/README.md".into(),
                version: None,
                digest: digest('f'),
                size: 10,
            },
            BundleArtifact {
                name: "reports/security report (2024).json".into(),
                version: None,
                digest: digest('9'),
                size: 20,
            },
        ],
        templates: vec![BundleArtifact {
            name: "hello.values.yaml.hbs".into(),
            version: None,
            digest: digest('8'),
            size: 30,
        }],
        image_sboms: vec![
            SbomRef {
                image_reference: "vendor/app:1.0".into(),
                platform: Some("linux/arm64/v8".into()),
                format: SbomFormat::CycloneDx,
                digest: sha(image_cdx),
                vendor: false,
                document_id: document_id(SbomFormat::CycloneDx, image_cdx),
            },
            SbomRef {
                image_reference: "vendor/app:1.0".into(),
                platform: Some("linux/arm64/v8".into()),
                format: SbomFormat::Spdx,
                digest: sha(image_spdx),
                vendor: false,
                document_id: document_id(SbomFormat::Spdx, image_spdx),
            },
            SbomRef {
                image_reference: "vendor/app:1.0".into(),
                platform: None,
                format: SbomFormat::CycloneDx,
                digest: sha(vendor_cdx),
                vendor: true,
                document_id: document_id(SbomFormat::CycloneDx, vendor_cdx),
            },
            SbomRef {
                image_reference: "vendor/app:1.0".into(),
                platform: None,
                format: SbomFormat::Spdx,
                digest: sha(vendor_spdx),
                vendor: true,
                document_id: document_id(SbomFormat::Spdx, vendor_spdx),
            },
            // An SBOM for an image the bundle does not list.
            SbomRef {
                image_reference: "vendor/gone:1".into(),
                platform: Some("linux/amd64".into()),
                format: SbomFormat::Spdx,
                digest: digest('7'),
                vendor: false,
                document_id: None,
            },
        ],
    }
}

#[test]
fn bundle_cyclonedx_lists_everything_and_links_image_sboms() {
    let s = subject();
    let scan = full_scan();
    let image_cdx = cyclonedx::image_sbom(&s, &scan, CREATED, TOOL);
    let image_spdx = spdx::image_sbom(&s, &scan, CREATED, TOOL);
    let bundle = bundle_subject(&image_cdx, &image_spdx);
    let doc = check_cyclonedx(&cyclonedx::bundle_sbom(&bundle, TOOL));

    let root = &doc["metadata"]["component"];
    assert_eq!(root["name"], "platform");
    assert_eq!(root["version"], "1.4.0");
    let comps = doc["components"].as_array().unwrap();
    // 3 images, 1 chart, 2 files, 1 template, 1 SBOM of an unlisted image.
    assert_eq!(comps.len(), 8);
    for c in comps {
        assert_eq!(c["hashes"][0]["alg"], "SHA-256", "{c}");
    }
    let app = &comps[0];
    assert_eq!(app["type"], "container");
    assert_eq!(app["hashes"][0]["content"], "b".repeat(64));
    assert_eq!(
        app["purl"],
        format!(
            "pkg:oci/app@{}?repository_url=vendor%2Fapp&tag=1.0",
            digest('b')
        )
    );
    let refs = app["externalReferences"].as_array().unwrap();
    assert_eq!(refs.len(), 4);
    assert!(refs.iter().all(|r| r["type"] == "bom"));
    // The generated CycloneDX SBOM by BOM-Link, the others by blob path.
    let serial = json(&image_cdx)["serialNumber"]
        .as_str()
        .unwrap()
        .strip_prefix("urn:uuid:")
        .unwrap()
        .to_string();
    assert_eq!(refs[0]["url"], format!("urn:cdx:{serial}/1"));
    assert!(refs[1]["url"]
        .as_str()
        .unwrap()
        .starts_with("blobs/sha256/"));
    assert!(refs[2]["comment"]
        .as_str()
        .unwrap()
        .contains("supplied by the vendor"));
    assert_eq!(
        refs[0]["hashes"][0]["content"],
        bundle.image_sboms[0]
            .digest
            .strip_prefix("sha256:")
            .unwrap()
    );
    // The same image twice: two components, distinct bom-refs.
    assert_eq!(comps[1]["hashes"], comps[2]["hashes"]);
    assert_ne!(comps[1]["bom-ref"], comps[2]["bom-ref"]);
    assert_eq!(comps[3]["type"], "application");
    assert_eq!(comps[3]["version"], "0.1.0");
    assert_eq!(prop(&comps[4], "airgap:kind"), Some("file"));
    assert_eq!(prop(&comps[6], "airgap:kind"), Some("template"));
    assert_eq!(prop(&comps[7], "airgap:kind"), Some("sbom"));
}

#[test]
fn bundle_spdx_lists_everything_and_references_image_sboms() {
    let s = subject();
    let scan = full_scan();
    let image_cdx = cyclonedx::image_sbom(&s, &scan, CREATED, TOOL);
    let image_spdx = spdx::image_sbom(&s, &scan, CREATED, TOOL);
    let bundle = bundle_subject(&image_cdx, &image_spdx);
    let doc = check_spdx(&spdx::bundle_sbom(&bundle, TOOL));

    let packages = doc["packages"].as_array().unwrap();
    // Bundle, 3 images, 1 chart, 2 files, 1 template, 5 SBOMs.
    assert_eq!(packages.len(), 13);
    assert_eq!(packages[0]["SPDXID"], "SPDXRef-Bundle");
    for p in &packages[1..] {
        assert_eq!(p["checksums"][0]["algorithm"], "SHA256", "{p}");
    }
    let purposes: Vec<&str> = packages
        .iter()
        .map(|p| p["primaryPackagePurpose"].as_str().unwrap())
        .collect();
    assert_eq!(
        purposes,
        [
            "ARCHIVE",
            "CONTAINER",
            "CONTAINER",
            "CONTAINER",
            "INSTALL",
            "FILE",
            "FILE",
            "FILE",
            "FILE",
            "FILE",
            "FILE",
            "FILE",
            "FILE"
        ]
    );
    // Both SPDX image SBOMs (generated and vendor) as external documents,
    // with their namespaces and checksums.
    let ext = doc["externalDocumentRefs"].as_array().unwrap();
    assert_eq!(ext.len(), 2);
    assert_eq!(
        ext[0]["spdxDocument"],
        json(&image_spdx)["documentNamespace"]
    );
    assert_eq!(ext[0]["checksum"]["algorithm"], "SHA256");
    assert_eq!(
        ext[0]["checksum"]["checksumValue"],
        bundle.image_sboms[1]
            .digest
            .strip_prefix("sha256:")
            .unwrap()
    );
    assert_eq!(
        ext[1]["spdxDocument"],
        "https://vendor.example/sbom/app-1.0"
    );
    let rels = doc["relationships"].as_array().unwrap();
    let described_by: Vec<&str> = rels
        .iter()
        .filter(|r| r["relationshipType"] == "DESCRIBED_BY")
        .map(|r| r["relatedSpdxElement"].as_str().unwrap())
        .collect();
    // Four SBOM files of vendor/app:1.0 plus its two SPDX documents.
    assert_eq!(described_by.len(), 6);
    assert!(described_by
        .iter()
        .any(|e| e.ends_with(":SPDXRef-DOCUMENT")));
    let vendor = packages
        .iter()
        .filter(|p| {
            p["name"]
                .as_str()
                .unwrap()
                .contains("supplied by the vendor")
        })
        .count();
    assert_eq!(vendor, 2);
}

#[test]
fn real_scan_end_to_end() {
    fn layer(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }
    let l0 = layer(&[
        (
            "var/lib/dpkg/status",
            b"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n",
        ),
        (
            "usr/share/doc/bash/copyright",
            b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: x\nLicense: GPL-3+\n",
        ),
        (
            "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n",
        ),
        ("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n"),
        ("lib/apk/db/installed", b"garbage\x00\xff"),
    ]);
    let input = LayerInput {
        digest: digest('0'),
        compression: Compression::None,
        reader: Box::new(std::io::Cursor::new(l0)),
    };
    let scan = scan_image(vec![input]).unwrap();
    assert_eq!(scan.packages.len(), 2);
    let s = ImageSubject {
        layers: vec![digest('0')],
        ..subject()
    };
    let doc = check_cyclonedx(&cyclonedx::image_sbom(&s, &scan, CREATED, TOOL));
    let bash = component(&doc, "bash");
    assert_eq!(prop(bash, "airgap:layer"), Some(digest('0').as_str()));
    let doc = check_spdx(&spdx::image_sbom(&s, &scan, CREATED, TOOL));
    assert_eq!(spdx_package(&doc, "six")["licenseDeclared"], "MIT");
}

#[test]
fn the_validators_reject_broken_documents() {
    // The checks are not vacuous: broken documents fail them.
    let scan = full_scan();
    let good = json(&cyclonedx::image_sbom(&subject(), &scan, CREATED, TOOL));
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut d = good.clone();
        f(&mut d);
        errors(cyclonedx_validator(), &d)
    };
    assert!(!broken(&|d| d["components"][1]["licenses"] =
        serde_json::json!([{"license": {"id": "Not-A-License"}}]))
    .is_empty());
    assert!(
        !broken(&|d| d["components"][1]["licenses"] = serde_json::json!([
            {"expression": "MIT"}, {"license": {"id": "MIT"}}
        ]))
        .is_empty()
    );
    assert!(!broken(&|d| d["metadata"]["timestamp"] = "yesterday".into()).is_empty());
    assert!(!broken(&|d| d["serialNumber"] = "urn:uuid:x".into()).is_empty());
    assert!(!broken(&|d| d["components"][1]["type"] = "package".into()).is_empty());

    let good = json(&spdx::image_sbom(&subject(), &scan, CREATED, TOOL));
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut d = good.clone();
        f(&mut d);
        errors(spdx_validator(), &d)
    };
    assert!(!broken(&|d| {
        d["packages"][1].as_object_mut().unwrap().remove("SPDXID");
    })
    .is_empty());
    assert!(!broken(&|d| d["creationInfo"]["creators"] = serde_json::json!([])).is_empty());
    assert!(!broken(&|d| d["packages"][0]["primaryPackagePurpose"] = "IMAGE".into()).is_empty());
}

#[test]
fn vendored_schemas_are_the_recorded_files() {
    // The hashes recorded in schemas/README.md, with where each file came from.
    use sha2::{Digest, Sha256};
    for (file, sha256) in [
        (
            "bom-1.6.schema.json",
            "83821ba49aa366ad1f1d16c34837d05edd010f036f652e310db1c77d57b37c58",
        ),
        (
            "spdx.schema.json",
            "4b345e2329f209f34e960ae2a8e7cb46a166907e6a45e94978565925dc47b359",
        ),
        (
            "jsf-0.82.schema.json",
            "8bae002c25e723db7ee1f26afde680ae1a2b1a8f6b4b4b0fd65dc3becb090aae",
        ),
        (
            "spdx-schema.json",
            "239208b7ac287b3cf5d9a9af23f9d69863971102a5e1587a27a398b43490b89b",
        ),
    ] {
        let bytes = std::fs::read(schema_path(file)).unwrap();
        let got: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, sha256, "{file} differs from schemas/README.md");
    }
}
