//! SBOMs end to end (issue 5), with the real binaries: `airgap-bundle build`
//! generates them from a fixture image's layers and carries a vendor's,
//! `airgap-install sbom` lists, summarises and extracts them, checking the
//! signature first and every SBOM against its signed digest.
//!
//! The fixture (see [`Fixture`]): an OCI layout with two images.
//!
//! - `fixture/app:1.0`, an index of two platforms sharing an upper layer
//!   that whites out `app/node_modules/left-pad` and adds the npm package
//!   `right-pad`:
//!   - linux/amd64 on a Debian 12 base (gzip layer): `etc/os-release`, a
//!     dpkg status of three installed packages (and one removed with its
//!     config files left, which is not installed), Python `six` and npm
//!     `left-pad`;
//!   - linux/arm64 on an Alpine base: an apk database of two packages,
//!     Python `six` and npm `left-pad`;
//!
//!   plus a vendor CycloneDX SBOM for linux/amd64, from the manifest.
//! - `fixture/tools:2.0`, one platform, Python `requests` only.
//!
//! The malformed-database image and the demo manifest cover warnings and
//! `--skip-sbom`.

use airgap_e2e::craft::{read_entries, write_archive};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use airgap_e2e::harness::*;
use airgap_e2e::{layer_tar, write_oci_layout, ImageSpec, LayerBlob, PlatformImage};
use airgap_format::bundle_json::{BundleDescriptor, SbomEntry, SbomFormat, SbomOrigin};
use airgap_format::{ArchiveReader, Digest, Limits};
use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;

const APP: &str = "fixture/app:1.0";
const TOOLS: &str = "fixture/tools:2.0";
const AMD64: &str = "linux/amd64";
const ARM64: &str = "linux/arm64";
/// What `build_cmd`'s SOURCE_DATE_EPOCH (1700000000) gives as the creation time.
const CREATED: &str = "2023-11-14T22:13:20Z";

const DEBIAN_OS_RELEASE: &[u8] = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
const ALPINE_OS_RELEASE: &[u8] =
    b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n";
const DPKG_STATUS: &[u8] = b"\
Package: base-files
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12.4+deb12u5

Package: bash
Status: install ok installed
Priority: required
Architecture: amd64
Version: 5.2.15-2+b2

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 0.9-1

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
";
const APK_INSTALLED: &[u8] = b"\
C:Q1pCbEhsU6NNuz4V6k5WhB4NZwDqg=
P:musl
V:1.2.4_git20230717-r4
A:aarch64
L:MIT
o:musl

C:Q1xo8H7xqJ2sJbm2Tpn2ZTtYgLB3g=
P:busybox
V:1.36.1-r15
A:aarch64
L:GPL-2.0-only
o:busybox
";
const SIX_METADATA: &[u8] =
    b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nSummary: Python 2 and 3 compatibility utilities\nLicense: MIT\n";
const REQUESTS_METADATA: &[u8] =
    b"Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache-2.0\n";
const LEFT_PAD: &[u8] = br#"{"name":"left-pad","version":"1.3.0","license":"WTFPL"}"#;
const RIGHT_PAD: &[u8] = br#"{"name":"right-pad","version":"1.0.1","license":"MIT"}"#;
/// A small valid CycloneDX 1.6 document, carried verbatim (odd spacing kept).
const VENDOR_CDX: &str = r#"{
  "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
  "bomFormat": "CycloneDX",
  "specVersion": "1.6",
  "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
  "version": 1,
  "metadata": {
    "timestamp": "2024-01-02T03:04:05Z",
    "component": { "type": "container", "bom-ref": "app", "name": "fixture/app", "version": "1.0" }
  },
  "components": [
    {   "type": "library", "bom-ref": "vendor-lib", "name": "vendor-lib", "version": "2.3.4",
        "purl": "pkg:generic/vendor-lib@2.3.4",
        "licenses": [ { "license": { "id": "Apache-2.0" } } ] }
  ]
}
"#;

// ---------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------

/// The fixture images written into `dir/images/oci`, a vendor SBOM and a
/// file beside them, and the manifest `dir/sbom.yaml` naming them.
struct Fixture {
    manifest: PathBuf,
    vendor: PathBuf,
    /// Layer digests: the Debian base, the Alpine base, the shared upper
    /// layer, the tools layer.
    debian: String,
    alpine: String,
    upper: String,
    tools: String,
}

fn write_fixture(dir: &Path) -> Fixture {
    let debian = LayerBlob::gzipped(layer_tar(&[
        ("etc/os-release", DEBIAN_OS_RELEASE, 0o644),
        ("var/lib/dpkg/status", DPKG_STATUS, 0o644),
        (
            "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            SIX_METADATA,
            0o644,
        ),
        ("app/node_modules/left-pad/package.json", LEFT_PAD, 0o644),
        (
            "app/node_modules/left-pad/index.js",
            b"module.exports = 1;\n",
            0o644,
        ),
        ("bin/sh", b"#!/bin/true\n", 0o755),
    ]));
    let alpine = LayerBlob::uncompressed(layer_tar(&[
        ("etc/os-release", ALPINE_OS_RELEASE, 0o644),
        ("lib/apk/db/installed", APK_INSTALLED, 0o644),
        (
            "usr/lib/python3.11/site-packages/six-1.16.0.dist-info/METADATA",
            SIX_METADATA,
            0o644,
        ),
        ("app/node_modules/left-pad/package.json", LEFT_PAD, 0o644),
    ]));
    // The upper layer both platforms share: deletes left-pad, adds right-pad.
    let upper = LayerBlob::uncompressed(layer_tar(&[
        ("app/node_modules/.wh.left-pad", b"", 0o644),
        ("app/node_modules/right-pad/package.json", RIGHT_PAD, 0o644),
    ]));
    let tools = LayerBlob::gzipped(layer_tar(&[(
        "opt/tools/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA",
        REQUESTS_METADATA,
        0o644,
    )]));
    let images = [
        ImageSpec {
            ref_name: APP.into(),
            platforms: vec![
                PlatformImage::linux("amd64", vec![debian.clone(), upper.clone()], &["/bin/sh"]),
                PlatformImage::linux("arm64", vec![alpine.clone(), upper.clone()], &["/bin/sh"]),
            ],
        },
        ImageSpec {
            ref_name: TOOLS.into(),
            platforms: vec![PlatformImage::linux(
                "amd64",
                vec![tools.clone()],
                &["/bin/sh"],
            )],
        },
    ];
    write_oci_layout(&dir.join("images/oci"), &images).unwrap();
    let vendor = dir.join("vendor/app.cdx.json");
    std::fs::create_dir_all(vendor.parent().unwrap()).unwrap();
    std::fs::write(&vendor, VENDOR_CDX).unwrap();
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(dir.join("files/NOTICE.txt"), "fixture notice\n").unwrap();
    let manifest = dir.join("sbom.yaml");
    std::fs::write(
        &manifest,
        format!(
            "name: sbomtest\nversion: 2.0.0\nimages:\n  - source: oci-layout:images/oci:{APP}\n    sboms:\n      - source: vendor/app.cdx.json\n        format: cyclonedx\n        platform: {AMD64}\n  - source: oci-layout:images/oci:{TOOLS}\nfiles:\n  - source: files/NOTICE.txt\n    name: docs/NOTICE.txt\n    kind: documentation\n"
        ),
    )
    .unwrap();
    Fixture {
        manifest,
        vendor,
        debian: debian.digest(),
        alpine: alpine.digest(),
        upper: upper.digest(),
        tools: tools.digest(),
    }
}

/// A fixture bundle in a temporary folder.
struct Built {
    tmp: tempfile::TempDir,
    fixture: Fixture,
    bundle: PathBuf,
    key: PathBuf,
    public: PathBuf,
}

fn build_fixture() -> Built {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = write_fixture(tmp.path());
    let (key, public) = keygen(tmp.path(), "vendor");
    let bundle = tmp.path().join("sbom.bundle");
    ok(&mut build_cmd(&fixture.manifest, &key, &bundle));
    Built {
        tmp,
        fixture,
        bundle,
        key,
        public,
    }
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// `airgap-install sbom FILE --trust PUB ARGS…`, no site configuration.
fn sbom_cmd(bundle: &Path, public: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin("airgap-install"));
    c.arg("sbom")
        .arg(bundle)
        .arg("--trust")
        .arg(public)
        .args(args)
        .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config");
    c
}

fn descriptor(bundle: &Path) -> BundleDescriptor {
    let r = ArchiveReader::open(bundle, Limits::default()).unwrap();
    r.read_descriptor_unverified().unwrap().1
}

/// The bytes of blob `digest`, read straight from the archive.
fn blob(bundle: &Path, digest: &Digest) -> Vec<u8> {
    let r = ArchiveReader::open(bundle, Limits::default()).unwrap();
    let e = r
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.path == digest.blob_path())
        .unwrap_or_else(|| panic!("{digest} is not in {}", bundle.display()));
    r.read_at(e.data_offset, e.size as usize).unwrap()
}

/// The one SBOM entry of (image, platform, format, origin).
fn entry<'a>(
    d: &'a BundleDescriptor,
    image: Option<&str>,
    platform: Option<&str>,
    format: SbomFormat,
    origin: SbomOrigin,
) -> &'a SbomEntry {
    let found: Vec<&SbomEntry> = d
        .sboms
        .iter()
        .filter(|e| {
            e.image.as_deref() == image
                && e.platform.as_deref() == platform
                && e.format == format
                && e.origin == origin
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "SBOMs of {image:?} {platform:?} {format:?} {origin:?}: {:#?}",
        d.sboms
    );
    found[0]
}

/// File names in `dir`, sorted.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The file name `airgap-install sbom --out` gives an entry (documented in
/// installer/src/sbom.rs: image and platform with `/` and `:` made `_` and
/// `-`, `.vendor.` and twelve digest digits for vendor SBOMs).
fn file_name(e: &SbomEntry) -> String {
    let ext = match e.format {
        SbomFormat::Cyclonedx => "cdx.json",
        SbomFormat::Spdx => "spdx.json",
    };
    let base = match (&e.image, &e.platform) {
        (None, _) => "bundle".to_string(),
        (Some(i), None) => i.replace('/', "+").replace(':', "@"),
        (Some(i), Some(p)) => format!(
            "{}_{}",
            i.replace('/', "+").replace(':', "@"),
            p.replace('/', "-")
        ),
    };
    match e.origin {
        SbomOrigin::Generated => format!("{base}.{ext}"),
        SbomOrigin::Vendor => format!("{base}.vendor.{}.{ext}", &e.digest.hex()[..12]),
    }
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(400)])
        )
    })
}

// ---------------------------------------------------------------------------
// The vendored schemas (as sbom/tests/documents.rs loads them)
// ---------------------------------------------------------------------------

fn load_schema(name: &str) -> Value {
    let path = repo_root().join("sbom/schemas").join(name);
    json(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Resolves the CycloneDX schema's references to the vendored files, under
/// the two names each has (sbom/schemas/README.md); anything else is an
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
        Ok(load_schema(file))
    }
}

fn validator(schema: &str) -> Validator {
    jsonschema::options()
        .with_retriever(Vendored)
        .should_validate_formats(true)
        .build(&load_schema(schema))
        .unwrap_or_else(|e| panic!("{schema} compiles: {e}"))
}

fn cyclonedx_validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| validator("bom-1.6.schema.json"))
}

fn spdx_validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(|| validator("spdx-schema.json"))
}

/// Validates an SBOM against its format's schema; returns it parsed.
fn validate(format: SbomFormat, bytes: &[u8], what: &str) -> Value {
    let doc = json(bytes);
    let v = match format {
        SbomFormat::Cyclonedx => cyclonedx_validator(),
        SbomFormat::Spdx => spdx_validator(),
    };
    let errs: Vec<String> = v
        .iter_errors(&doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errs.is_empty(),
        "{what}: schema errors:\n{}",
        errs.join("\n")
    );
    doc
}

// ---------------------------------------------------------------------------
// Document contents
// ---------------------------------------------------------------------------

fn prop<'a>(c: &'a Value, name: &str) -> Option<&'a str> {
    c["properties"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
}

/// CycloneDX components with a purl: name → (purl, layer).
fn cdx_packages(doc: &Value) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for c in doc["components"].as_array().unwrap() {
        let Some(purl) = c["purl"].as_str() else {
            continue;
        };
        let layer = prop(c, "airgap:layer")
            .unwrap_or_else(|| panic!("{purl} has no airgap:layer"))
            .to_string();
        let name = c["name"].as_str().unwrap().to_string();
        assert!(
            out.insert(name.clone(), (purl.to_string(), layer))
                .is_none(),
            "{name} listed twice"
        );
    }
    out
}

/// SPDX packages other than the image and the OS: name → (purl, sourceInfo).
fn spdx_packages(doc: &Value) -> BTreeMap<String, (String, String)> {
    let mut out = BTreeMap::new();
    for p in doc["packages"].as_array().unwrap() {
        let purpose = p["primaryPackagePurpose"].as_str().unwrap_or("");
        if purpose == "CONTAINER" || purpose == "OPERATING_SYSTEM" {
            continue;
        }
        let purl = p["externalRefs"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["referenceType"] == "purl")
            .and_then(|r| r["referenceLocator"].as_str())
            .unwrap_or_else(|| panic!("{p} has no purl"));
        let name = p["name"].as_str().unwrap().to_string();
        let source = p["sourceInfo"].as_str().unwrap_or("").to_string();
        assert!(
            out.insert(name.clone(), (purl.to_string(), source))
                .is_none(),
            "{name} listed twice"
        );
    }
    out
}

/// What each generated image SBOM must list: name → (purl, layer digest).
fn expected_packages(
    f: &Fixture,
    image: &str,
    platform: &str,
) -> BTreeMap<String, (String, String)> {
    let e = |purl: &str, layer: &str| (purl.to_string(), layer.to_string());
    let mut m = BTreeMap::new();
    match (image, platform) {
        (APP, AMD64) => {
            m.insert(
                "base-files".into(),
                e(
                    "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64&distro=debian-12",
                    &f.debian,
                ),
            );
            m.insert(
                "bash".into(),
                e(
                    "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12",
                    &f.debian,
                ),
            );
            m.insert(
                "libc6".into(),
                e(
                    "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
                    &f.debian,
                ),
            );
            m.insert("six".into(), e("pkg:pypi/six@1.16.0", &f.debian));
            m.insert("right-pad".into(), e("pkg:npm/right-pad@1.0.1", &f.upper));
        }
        (APP, ARM64) => {
            m.insert(
                "musl".into(),
                e(
                    "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=aarch64&distro=alpine-3.19.1",
                    &f.alpine,
                ),
            );
            m.insert(
                "busybox".into(),
                e(
                    "pkg:apk/alpine/busybox@1.36.1-r15?arch=aarch64&distro=alpine-3.19.1",
                    &f.alpine,
                ),
            );
            m.insert("six".into(), e("pkg:pypi/six@1.16.0", &f.alpine));
            m.insert("right-pad".into(), e("pkg:npm/right-pad@1.0.1", &f.upper));
        }
        (TOOLS, AMD64) => {
            m.insert("requests".into(), e("pkg:pypi/requests@2.31.0", &f.tools));
        }
        other => panic!("unexpected image platform {other:?}"),
    }
    m
}

/// Checks one extracted generated image SBOM: schema, whited-out package
/// absent, every other package present with its purl and layer.
fn check_image_sbom(f: &Fixture, e: &SbomEntry, bytes: &[u8]) {
    let image = e.image.as_deref().unwrap();
    let platform = e.platform.as_deref().unwrap();
    let what = format!("{image} {platform} {}", e.format.as_str());
    let doc = validate(e.format, bytes, &what);
    let want = expected_packages(f, image, platform);
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.contains("left-pad") && !text.contains("oldpkg"),
        "{what}: a whited-out or removed package is reported:\n{text}"
    );
    match e.format {
        SbomFormat::Cyclonedx => {
            assert_eq!(doc["specVersion"], "1.6", "{what}");
            assert_eq!(doc["metadata"]["timestamp"], CREATED, "{what}");
            let meta = &doc["metadata"]["component"];
            assert_eq!(meta["type"], "container", "{what}");
            assert_eq!(prop(meta, "airgap:image:reference"), Some(image), "{what}");
            assert_eq!(
                prop(meta, "airgap:image:platform"),
                Some(platform),
                "{what}"
            );
            assert_eq!(cdx_packages(&doc), want, "{what}");
            // The distribution is named.
            let os: Vec<&Value> = doc["components"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["type"] == "operating-system")
                .collect();
            let distro = if image == TOOLS {
                None
            } else if platform == AMD64 {
                Some(("debian", "12"))
            } else {
                Some(("alpine", "3.19.1"))
            };
            match distro {
                None => assert!(os.is_empty(), "{what}: {os:?}"),
                Some((id, v)) => {
                    assert_eq!(os.len(), 1, "{what}");
                    assert_eq!(os[0]["name"], id, "{what}");
                    assert_eq!(os[0]["version"], v, "{what}");
                }
            }
            assert!(
                prop(&doc["metadata"], "airgap:scan:warning").is_none(),
                "{what}: the fixture gives no warnings: {}",
                doc["metadata"]
            );
        }
        SbomFormat::Spdx => {
            assert_eq!(doc["spdxVersion"], "SPDX-2.3", "{what}");
            assert_eq!(doc["creationInfo"]["created"], CREATED, "{what}");
            let got = spdx_packages(&doc);
            let names: BTreeSet<&String> = got.keys().collect();
            let want_names: BTreeSet<&String> = want.keys().collect();
            assert_eq!(names, want_names, "{what}");
            for (name, (purl, layer)) in &want {
                let (p, source) = &got[name];
                assert_eq!(p, purl, "{what}: {name}");
                assert!(
                    source.ends_with(&format!("in layer {layer}")),
                    "{what}: {name}: sourceInfo {source:?}, expected layer {layer}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 1. The build
// ---------------------------------------------------------------------------

#[test]
fn build_lists_every_sbom_in_bundle_json() {
    let b = build_fixture();
    let d = descriptor(&b.bundle);
    // Layers were scanned while the rest was written: version 6, SBOMs last.
    assert_eq!(d.format_version, 6);
    let mut expected = Vec::new();
    for (image, platform) in [(APP, AMD64), (APP, ARM64), (TOOLS, AMD64)] {
        for format in [SbomFormat::Cyclonedx, SbomFormat::Spdx] {
            let e = entry(
                &d,
                Some(image),
                Some(platform),
                format,
                SbomOrigin::Generated,
            );
            expected.push(e.clone());
        }
    }
    let vendor = entry(
        &d,
        Some(APP),
        Some(AMD64),
        SbomFormat::Cyclonedx,
        SbomOrigin::Vendor,
    );
    assert_eq!(vendor.digest, Digest::of(VENDOR_CDX.as_bytes()));
    assert_eq!(vendor.size, VENDOR_CDX.len() as u64);
    expected.push(vendor.clone());
    for format in [SbomFormat::Cyclonedx, SbomFormat::Spdx] {
        expected.push(entry(&d, None, None, format, SbomOrigin::Generated).clone());
    }
    expected.sort();
    assert_eq!(d.sboms, expected, "nothing else, sorted");
    // Every SBOM is a signed blob of its format's media type, and the vendor's
    // is carried byte for byte.
    for e in &d.sboms {
        let b_entry = d
            .blobs
            .iter()
            .find(|x| x.digest == e.digest)
            .unwrap_or_else(|| panic!("SBOM {} is not listed in blobs", e.digest));
        assert_eq!(b_entry.size, e.size);
        assert_eq!(b_entry.media_type, e.format.media_type());
        assert_eq!(blob(&b.bundle, &e.digest).len() as u64, e.size);
    }
    assert_eq!(
        blob(&b.bundle, &vendor.digest),
        std::fs::read(&b.fixture.vendor).unwrap()
    );
    // Stock tar sees every other blob in digest order, then the SBOMs (the
    // vendor's among them) in digest order, then the seal.
    let listing = ok(Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -dc '{}' | tar -t", b.bundle.display())));
    let blobs: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("blobs/sha256/"))
        .collect();
    let mut sbom_hex: Vec<String> = d.sboms.iter().map(|e| e.digest.hex()).collect();
    sbom_hex.sort();
    sbom_hex.dedup();
    let mut other_hex: Vec<String> = d
        .blobs
        .iter()
        .map(|x| x.digest.hex())
        .filter(|h| !sbom_hex.contains(h))
        .collect();
    other_hex.sort();
    let mut want = other_hex;
    want.extend(sbom_hex);
    assert_eq!(blobs, want, "{listing}");
    let last: Vec<&str> = listing.lines().rev().take(2).collect();
    assert_eq!(last, ["bundle.seal.minisig", "bundle.seal"], "{listing}");
    // The head was patched in place: it is the canonical JSON padded with
    // spaces, and the same bytes on a second build.
    let raw = stored_bundle_json(&b.bundle);
    let text = String::from_utf8(raw.clone()).unwrap();
    assert_eq!(
        text.trim_end().as_bytes(),
        &d.to_canonical_bytes().unwrap()[..]
    );
    let again = b.tmp.path().join("again.bundle");
    ok(&mut build_cmd(&b.fixture.manifest, &b.key, &again));
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&b.bundle).unwrap(),
        "two builds differ"
    );
    let out = ok(&mut verify_cmd(&b.bundle, &b.public));
    assert!(out.starts_with("OK "), "{out}");
}

// ---------------------------------------------------------------------------
// 2. Listing, extraction, summary
// ---------------------------------------------------------------------------

#[test]
fn list_extract_and_summarise() {
    let b = build_fixture();
    let d = descriptor(&b.bundle);

    // --list: one row per SBOM; --list --json: the bundle.json entries.
    let table = ok(&mut sbom_cmd(&b.bundle, &b.public, &["--list"]));
    let rows: Vec<&str> = table.lines().collect();
    assert_eq!(rows.len(), 1 + d.sboms.len(), "{table}");
    assert!(
        rows[0].contains("FORMAT") && rows[0].contains("DIGEST"),
        "{table}"
    );
    for e in &d.sboms {
        let row = rows
            .iter()
            .find(|r| r.contains(&e.digest.to_string()))
            .unwrap_or_else(|| panic!("{} is not listed:\n{table}", e.digest));
        assert!(
            row.contains(e.image.as_deref().unwrap_or("(bundle)")),
            "{row}"
        );
        assert!(row.contains(e.platform.as_deref().unwrap_or("-")), "{row}");
        assert!(row.contains(e.format.as_str()), "{row}");
        let origin = match e.origin {
            SbomOrigin::Generated => "generated",
            SbomOrigin::Vendor => "vendor",
        };
        assert!(row.contains(origin), "{row}");
        assert!(row.contains(&e.size.to_string()), "{row}");
    }
    let listed: Vec<SbomEntry> = serde_json::from_str(&ok(&mut sbom_cmd(
        &b.bundle,
        &b.public,
        &["--list", "--json"],
    )))
    .unwrap();
    assert_eq!(listed, d.sboms);

    // --out: every SBOM, byte for byte, each valid.
    let all = b.tmp.path().join("all");
    let printed = ok(&mut sbom_cmd(
        &b.bundle,
        &b.public,
        &["--out", all.to_str().unwrap()],
    ));
    let want: BTreeSet<String> = d.sboms.iter().map(file_name).collect();
    assert_eq!(want.len(), d.sboms.len(), "file names are distinct");
    assert_eq!(names(&all), want);
    let printed: BTreeSet<PathBuf> = printed.lines().map(PathBuf::from).collect();
    let files: BTreeSet<PathBuf> = want.iter().map(|n| all.join(n)).collect();
    assert_eq!(printed, files, "stdout names the files written");
    let mut bundle_docs = BTreeMap::new();
    for e in &d.sboms {
        let bytes = std::fs::read(all.join(file_name(e))).unwrap();
        assert_eq!(bytes, blob(&b.bundle, &e.digest), "{}", file_name(e));
        assert_eq!(Digest::of(&bytes), e.digest);
        match (&e.image, e.origin) {
            (None, _) => {
                let doc = validate(e.format, &bytes, &format!("bundle {}", e.format.as_str()));
                bundle_docs.insert(e.format, (doc, String::from_utf8(bytes).unwrap()));
            }
            (Some(_), SbomOrigin::Vendor) => {
                validate(e.format, &bytes, "vendor SBOM");
                assert_eq!(bytes, VENDOR_CDX.as_bytes());
            }
            (Some(_), SbomOrigin::Generated) => check_image_sbom(&b.fixture, e, &bytes),
        }
    }
    // The bundle SBOMs name both images by digest, the file, and every
    // per-image SBOM (the vendor's too) by its SHA-256.
    for (format, (doc, text)) in &bundle_docs {
        for i in &d.images {
            assert!(
                text.contains(&i.digest.hex()),
                "{format:?}: {}",
                i.reference
            );
        }
        for f in &d.files {
            assert!(text.contains(&f.digest.hex()), "{format:?}: {}", f.name);
        }
        for e in d.sboms.iter().filter(|e| e.image.is_some()) {
            assert!(
                text.contains(&e.digest.hex()),
                "{format:?} bundle SBOM does not reference {}",
                file_name(e)
            );
        }
        match format {
            SbomFormat::Cyclonedx => assert_eq!(doc["metadata"]["component"]["name"], "sbomtest"),
            SbomFormat::Spdx => assert_eq!(doc["creationInfo"]["created"], CREATED),
        }
    }

    // --image NAME --format spdx: that image's SPDX SBOMs and the bundle's.
    let some = b.tmp.path().join("some");
    let written: Vec<Value> = serde_json::from_str(&ok(&mut sbom_cmd(
        &b.bundle,
        &b.public,
        &[
            "--out",
            some.to_str().unwrap(),
            "--image",
            "fixture/app",
            "--format",
            "spdx",
            "--json",
        ],
    )))
    .unwrap();
    let chosen: Vec<&SbomEntry> = d
        .sboms
        .iter()
        .filter(|e| e.format == SbomFormat::Spdx && e.image.as_deref() != Some(TOOLS))
        .collect();
    assert_eq!(chosen.len(), 3);
    assert_eq!(
        names(&some),
        chosen.iter().map(|e| file_name(e)).collect::<BTreeSet<_>>()
    );
    assert_eq!(written.len(), 3, "{written:?}");
    for w in &written {
        let path = PathBuf::from(w["path"].as_str().unwrap());
        let digest: Digest = w["digest"].as_str().unwrap().parse().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), blob(&b.bundle, &digest));
        assert_eq!(w["format"], "spdx");
    }
    // NAME:TAG works too; an unknown image is refused before anything is written.
    let tagged = b.tmp.path().join("tagged");
    ok(&mut sbom_cmd(
        &b.bundle,
        &b.public,
        &["--out", tagged.to_str().unwrap(), "--image", TOOLS],
    ));
    assert_eq!(
        names(&tagged),
        [
            "bundle.cdx.json",
            "bundle.spdx.json",
            "fixture+tools@2.0_linux-amd64.cdx.json",
            "fixture+tools@2.0_linux-amd64.spdx.json"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    );
    let none = b.tmp.path().join("none");
    let line = fails(&mut sbom_cmd(
        &b.bundle,
        &b.public,
        &["--out", none.to_str().unwrap(), "--image", "fixture/nope"],
    ));
    assert!(
        line.contains("fixture/nope") && line.contains(APP),
        "{line}"
    );
    assert!(!none.exists());

    // --summary: package counts by purl type per image platform.
    let rows: Vec<Value> = serde_json::from_str(&ok(&mut sbom_cmd(
        &b.bundle,
        &b.public,
        &["--summary", "--json"],
    )))
    .unwrap();
    let got: BTreeMap<(String, String), (Value, u64)> = rows
        .iter()
        .map(|r| {
            (
                (
                    r["image"].as_str().unwrap().to_string(),
                    r["platform"].as_str().unwrap().to_string(),
                ),
                (r["counts"].clone(), r["total"].as_u64().unwrap()),
            )
        })
        .collect();
    let want: BTreeMap<(String, String), (Value, u64)> = [
        (
            (APP, AMD64),
            serde_json::json!({"deb": 3, "npm": 1, "pypi": 1}),
            5,
        ),
        (
            (APP, ARM64),
            serde_json::json!({"apk": 2, "npm": 1, "pypi": 1}),
            4,
        ),
        ((TOOLS, AMD64), serde_json::json!({"pypi": 1}), 1),
    ]
    .into_iter()
    .map(|((i, p), c, t)| ((i.to_string(), p.to_string()), (c, t)))
    .collect();
    assert_eq!(got, want, "{rows:#?}");
    assert_eq!(rows.len(), 3, "one row per generated image platform");

    let table = ok(&mut sbom_cmd(&b.bundle, &b.public, &["--summary"]));
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        ["IMAGE", "PLATFORM", "apk", "deb", "npm", "pypi", "total"],
        "{table}"
    );
    let body: BTreeSet<Vec<&str>> = lines[1..].iter().cloned().collect();
    let expected: BTreeSet<Vec<&str>> = [
        vec![APP, AMD64, "0", "3", "1", "1", "5"],
        vec![APP, ARM64, "2", "0", "1", "1", "4"],
        vec![TOOLS, AMD64, "0", "0", "0", "1", "1"],
    ]
    .into_iter()
    .collect();
    assert_eq!(body, expected, "{table}");
}

// ---------------------------------------------------------------------------
// 3. Refusals: a changed SBOM, an untrusted bundle
// ---------------------------------------------------------------------------

#[test]
fn a_changed_sbom_is_refused() {
    let b = build_fixture();
    let d = descriptor(&b.bundle);
    let victim = entry(
        &d,
        Some(APP),
        Some(AMD64),
        SbomFormat::Cyclonedx,
        SbomOrigin::Generated,
    )
    .clone();
    let (mut entries, mtime) = read_entries(&b.bundle);
    // The faithful rewrite verifies and extracts: the crafting is sound.
    let same = b.tmp.path().join("same.bundle");
    write_archive(&same, &entries, &b.key, mtime);
    ok(&mut verify_cmd(&same, &b.public));

    // Same size, one package version changed, still valid JSON; re-sealed
    // and re-signed with the vendor's key.
    let raw = entries
        .iter_mut()
        .find(|r| r.path() == victim.digest.blob_path())
        .expect("the SBOM blob is in the archive");
    let text = String::from_utf8(raw.data.clone()).unwrap();
    let changed = text.replacen("5.2.15-2", "5.2.16-2", 1);
    assert_ne!(changed, text);
    assert_eq!(changed.len(), text.len());
    raw.data = changed.into_bytes();
    let bad = b.tmp.path().join("changed.bundle");
    write_archive(&bad, &entries, &b.key, mtime);

    let out = b.tmp.path().join("out");
    let line = fails(&mut sbom_cmd(
        &bad,
        &b.public,
        &["--out", out.to_str().unwrap()],
    ));
    let blob_path = victim.digest.blob_path();
    assert!(
        line.contains(&format!("SBOM {blob_path}")) && line.contains("changed.bundle"),
        "the error names the SBOM blob: {line}"
    );
    assert!(line.contains("does not match its digest"), "{line}");
    // Nothing is written for it; whatever was written is a checked SBOM and
    // no temporary file is left behind.
    let written = if out.exists() {
        names(&out)
    } else {
        BTreeSet::new()
    };
    assert!(
        !written.contains(&file_name(&victim)),
        "the changed SBOM was written: {written:?}"
    );
    for n in &written {
        let e = d
            .sboms
            .iter()
            .find(|e| &file_name(e) == n)
            .unwrap_or_else(|| panic!("stray file {n} in {}", out.display()));
        assert_eq!(std::fs::read(out.join(n)).unwrap(), blob(&bad, &e.digest));
    }
    // Only that SBOM asked for: refused, nothing written at all.
    let only = b.tmp.path().join("only");
    let line = fails(&mut sbom_cmd(
        &bad,
        &b.public,
        &[
            "--out",
            only.to_str().unwrap(),
            "--image",
            "fixture/app",
            "--format",
            "cyclonedx",
        ],
    ));
    assert!(line.contains(&blob_path), "{line}");
    assert!(
        !only.join(file_name(&victim)).exists(),
        "the changed SBOM was written"
    );
    // The summary reads that document: refused the same way.
    let line = fails(&mut sbom_cmd(&bad, &b.public, &["--summary"]));
    assert!(line.contains(&blob_path), "{line}");
    // SBOMs the change did not touch still extract.
    let tools = b.tmp.path().join("tools");
    ok(&mut sbom_cmd(
        &bad,
        &b.public,
        &["--out", tools.to_str().unwrap(), "--image", "fixture/tools"],
    ));
    assert_eq!(names(&tools).len(), 4);
    // And verify refuses the bundle.
    fails(&mut verify_cmd(&bad, &b.public));
}

#[test]
fn an_untrusted_bundle_is_refused_before_anything_is_written() {
    let b = build_fixture();
    let (_, other) = keygen(b.tmp.path(), "other");
    let out = b.tmp.path().join("out");
    for args in [
        vec!["--out", out.to_str().unwrap()],
        vec!["--list"],
        vec!["--summary"],
        vec!["--list", "--json"],
    ] {
        let line = fails(&mut sbom_cmd(&b.bundle, &other, &args));
        assert!(line.contains("unknown key"), "{args:?}: {line}");
        assert!(!out.exists(), "{args:?}: {} was created", out.display());
    }
    // No key at all: refused too.
    let mut c = Command::new(bin("airgap-install"));
    c.arg("sbom")
        .arg(&b.bundle)
        .arg("--out")
        .arg(&out)
        .env("AIRGAP_INSTALL_CONFIG_DIR", b.tmp.path().join("no-config"));
    let line = fails(&mut c);
    assert!(line.contains("no trusted keys"), "{line}");
    assert!(!out.exists());
}

// ---------------------------------------------------------------------------
// 4. --skip-sbom
// ---------------------------------------------------------------------------

#[test]
fn skip_sbom_builds_a_bundle_without_sboms() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let demo = repo_root().join("manifests/demo.yaml");
    let with = tmp.path().join("with.bundle");
    let json: Value =
        serde_json::from_str(&ok(build_cmd(&demo, &key, &with).arg("--json"))).unwrap();
    assert!(json["sbom"].is_object(), "{json}");
    assert_eq!(descriptor(&with).format_version, 6);

    let without = tmp.path().join("without.bundle");
    let json: Value = serde_json::from_str(&ok(build_cmd(&demo, &key, &without)
        .arg("--skip-sbom")
        .arg("--json")))
    .unwrap();
    // Nothing scanned; the report still says so (and counts vendor SBOMs).
    assert_eq!(json["sbom"]["imagesScanned"], 0, "{json}");
    let d = descriptor(&without);
    // The demo has templates: version 2, the lowest that can say it.
    assert!(!d.templates.is_empty());
    assert_eq!(d.format_version, 2);
    assert!(d.sboms.is_empty());
    let raw = String::from_utf8(stored_bundle_json(&without)).unwrap();
    assert!(!raw.contains("sboms"), "{raw}");
    ok(&mut verify_cmd(&without, &public));

    // --out: a clear error, nothing created.
    let out = tmp.path().join("out");
    let line = fails(&mut sbom_cmd(
        &without,
        &public,
        &["--out", out.to_str().unwrap()],
    ));
    assert!(
        line.contains("carries no SBOMs") && line.contains("without.bundle"),
        "{line}"
    );
    assert!(!out.exists());
    // --list --json: an empty list; --list: says there are none.
    let listed: Vec<Value> =
        serde_json::from_str(&ok(&mut sbom_cmd(&without, &public, &["--list", "--json"]))).unwrap();
    assert!(listed.is_empty());
    // (Checked last: the product prints a header and no rows.)
    let text = ok(&mut sbom_cmd(&without, &public, &["--list"]));
    assert!(
        text.to_lowercase().contains("no sboms"),
        "`sbom --list` on a bundle without SBOMs should say so, printed:\n{text}"
    );
}

/// `bundle.json` as stored.
fn stored_bundle_json(bundle: &Path) -> Vec<u8> {
    let r = ArchiveReader::open(bundle, Limits::default()).unwrap();
    r.read_head().unwrap().bundle_json
}

/// `--skip-sbom`'s help says "Make no SBOMs (quick local builds); vendor
/// SBOMs are still carried": the vendor's SBOM is in the bundle, the
/// generated ones are not.
#[test]
fn skip_sbom_still_carries_vendor_sboms() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = write_fixture(tmp.path());
    let (key, public) = keygen(tmp.path(), "vendor");
    let bundle = tmp.path().join("quick.bundle");
    ok(build_cmd(&fixture.manifest, &key, &bundle).arg("--skip-sbom"));
    ok(&mut verify_cmd(&bundle, &public));
    let d = descriptor(&bundle);
    let vendor: Vec<&SbomEntry> = d
        .sboms
        .iter()
        .filter(|e| e.origin == SbomOrigin::Vendor)
        .collect();
    assert_eq!(
        vendor.len(),
        1,
        "--skip-sbom dropped the vendor SBOM its help promises to carry: {:#?}",
        d.sboms
    );
    assert_eq!(vendor[0].digest, Digest::of(VENDOR_CDX.as_bytes()));
    assert_eq!(d.format_version, 3);
    assert!(
        !d.sboms
            .iter()
            .any(|e| e.image.is_some() && e.origin == SbomOrigin::Generated),
        "{:#?}",
        d.sboms
    );
}

// ---------------------------------------------------------------------------
// 5. Malformed package databases
// ---------------------------------------------------------------------------

/// A real rpmdb.sqlite (a `Packages` table of header blobs spanning several
/// pages), cut short in the middle of a page.
fn truncated_rpmdb() -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("rpmdb.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "PRAGMA page_size = 4096; PRAGMA journal_mode = DELETE;
         CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL);",
    )
    .unwrap();
    for i in 0..16u8 {
        conn.execute("INSERT INTO Packages (blob) VALUES (?1)", [vec![i; 3000]])
            .unwrap();
    }
    drop(conn);
    let full = std::fs::read(&path).unwrap();
    assert!(full.starts_with(b"SQLite format 3\0") && full.len() > 8 * 4096);
    full[..3 * 4096 + 1000].to_vec()
}

#[test]
fn malformed_package_databases_warn_and_never_abort() {
    let tmp = tempfile::tempdir().unwrap();
    let garbage_apk = b"\x00\x01\x02 this is not an apk database \xff\xfe\n\x7f\x7f garbage\n";
    let layer = LayerBlob::gzipped(layer_tar(&[
        ("etc/os-release", DEBIAN_OS_RELEASE, 0o644),
        ("lib/apk/db/installed", garbage_apk, 0o644),
        ("var/lib/rpm/rpmdb.sqlite", &truncated_rpmdb(), 0o644),
        (
            "app/node_modules/broken/package.json",
            b"{\"name\": ",
            0o644,
        ),
        (
            "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
            SIX_METADATA,
            0o644,
        ),
    ]));
    write_oci_layout(
        &tmp.path().join("images/oci"),
        &[ImageSpec {
            ref_name: "fixture/broken:1.0".into(),
            platforms: vec![PlatformImage::linux("amd64", vec![layer.clone()], &["/x"])],
        }],
    )
    .unwrap();
    let manifest = tmp.path().join("broken.yaml");
    std::fs::write(
        &manifest,
        "name: broken\nversion: 1.0.0\nimages:\n  - source: oci-layout:images/oci:fixture/broken:1.0\n",
    )
    .unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let bundle = tmp.path().join("broken.bundle");
    let out = run(build_cmd(&manifest, &key, &bundle)
        .arg("--json")
        .env("RUST_LOG", "warn"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the build must not abort: {stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings: Vec<&str> = report["sbom"]["warnings"]
        .as_array()
        .unwrap_or_else(|| panic!("no sbom.warnings: {report}"))
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let files = [
        "lib/apk/db/installed",
        "var/lib/rpm/rpmdb.sqlite",
        "app/node_modules/broken/package.json",
    ];
    for f in files {
        let w: Vec<&&str> = warnings.iter().filter(|w| w.contains(f)).collect();
        assert_eq!(w.len(), 1, "one warning naming {f}: {warnings:#?}");
        assert!(
            w[0].contains("fixture/broken:1.0") && w[0].contains(&layer.digest()),
            "the warning names the image and layer: {}",
            w[0]
        );
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(f)).collect();
        assert_eq!(lines.len(), 1, "one stderr line naming {f}:\n{stderr}");
        assert!(lines[0].contains("WARN"), "{}", lines[0]);
    }
    assert_eq!(warnings.len(), files.len(), "{warnings:#?}");
    assert_eq!(report["sbom"]["imagesScanned"], 1);
    assert_eq!(report["sbom"]["packages"], 1, "six is still found");
    // The bundler's default build inflates gzip layers with ISA-L.
    assert_eq!(report["sbom"]["gzipDecoder"], "isal");
    // No other stderr output than the WARN lines.
    assert_eq!(stderr.lines().count(), files.len(), "{stderr}");

    ok(&mut verify_cmd(&bundle, &public));
    // The image SBOM carries the warnings and the package that was readable.
    let d = descriptor(&bundle);
    let e = entry(
        &d,
        Some("fixture/broken:1.0"),
        Some(AMD64),
        SbomFormat::Cyclonedx,
        SbomOrigin::Generated,
    );
    let doc = validate(e.format, &blob(&bundle, &e.digest), "broken cyclonedx");
    let doc_warnings: Vec<&str> = doc["metadata"]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "airgap:scan:warning")
        .map(|p| p["value"].as_str().unwrap())
        .collect();
    for f in files {
        assert!(
            doc_warnings.iter().any(|w| w.contains(f)),
            "{f}: {doc_warnings:#?}"
        );
    }
    assert_eq!(
        cdx_packages(&doc).keys().collect::<Vec<_>>(),
        ["six"],
        "{doc}"
    );
    let spdx = entry(
        &d,
        Some("fixture/broken:1.0"),
        Some(AMD64),
        SbomFormat::Spdx,
        SbomOrigin::Generated,
    );
    validate(spdx.format, &blob(&bundle, &spdx.digest), "broken spdx");
}

// ---------------------------------------------------------------------------
// 6. Reproducibility
// ---------------------------------------------------------------------------

#[test]
fn builds_are_reproducible_with_sboms() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = write_fixture(tmp.path());
    let (key, _) = keygen(tmp.path(), "vendor");
    let one = tmp.path().join("one.bundle");
    let two = tmp.path().join("two.bundle");
    ok(&mut build_cmd(&fixture.manifest, &key, &one));
    ok(&mut build_cmd(&fixture.manifest, &key, &two));
    let (a, b) = (std::fs::read(&one).unwrap(), std::fs::read(&two).unwrap());
    let d = descriptor(&one);
    assert_eq!(d.sboms.len(), 9, "{:#?}", d.sboms);
    assert!(a == b, "two builds of one manifest differ");
    // The documents carry the SOURCE_DATE_EPOCH time, not the clock's.
    for e in d.sboms.iter().filter(|e| e.origin == SbomOrigin::Generated) {
        let doc = json(&blob(&one, &e.digest));
        let created = match e.format {
            SbomFormat::Cyclonedx => &doc["metadata"]["timestamp"],
            SbomFormat::Spdx => &doc["creationInfo"]["created"],
        };
        assert_eq!(created, CREATED, "{}", file_name(e));
    }
}

/// `build --json`, returning the report.
fn build_json(manifest: &Path, key: &Path, out: &Path, args: &[&str]) -> Value {
    let text = ok(build_cmd(manifest, key, out).arg("--json").args(args));
    serde_json::from_str(&text).unwrap()
}

/// The entries of the scan cache folder.
fn scan_entries(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(cache.join("scans")) {
        Ok(d) => d.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

#[test]
fn the_scan_cache_reuses_layers_and_changes_no_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = write_fixture(tmp.path());
    let (key, _) = keygen(tmp.path(), "vendor");
    // build_cmd keeps the cache beside the bundle.
    let cache = tmp.path().join("cache");
    let bundle = |name: &str| tmp.path().join(name);
    let counts = |j: &Value| {
        (
            j["sbom"]["layersRead"].as_u64().unwrap(),
            j["sbom"]["layersCached"].as_u64().unwrap(),
        )
    };

    // Without the cache: every layer read (the upper one by both
    // platforms), nothing kept.
    let plain = build_json(
        &fixture.manifest,
        &key,
        &bundle("plain.bundle"),
        &["--no-scan-cache"],
    );
    assert_eq!(counts(&plain), (5, 0), "{plain:#}");
    assert!(plain["sbom"].get("scanCache").is_none(), "{plain:#}");
    assert!(scan_entries(&cache).is_empty());
    let want = std::fs::read(bundle("plain.bundle")).unwrap();

    // Cold: five layer slots, four distinct layers stored.
    let cold = build_json(&fixture.manifest, &key, &bundle("cold.bundle"), &[]);
    let (read, cached) = counts(&cold);
    assert_eq!(read + cached, 5, "{cold:#}");
    assert!(read >= 4, "{cold:#}");
    assert_eq!(cold["sbom"]["scanCache"]["stored"], 4, "{cold:#}");
    assert_eq!(
        cold["sbom"]["scanCache"]["dir"].as_str().map(PathBuf::from),
        Some(cache.join("scans"))
    );
    assert_eq!(scan_entries(&cache).len(), 4);
    assert!(
        std::fs::read(bundle("cold.bundle")).unwrap() == want,
        "the cold build differs"
    );

    // Warm: no layer read, the same bytes.
    let warm = build_json(&fixture.manifest, &key, &bundle("warm.bundle"), &[]);
    assert_eq!(counts(&warm), (0, 5), "{warm:#}");
    assert_eq!(warm["sbom"]["packages"], plain["sbom"]["packages"]);
    assert_eq!(warm["sbom"]["warnings"], plain["sbom"]["warnings"]);
    assert!(
        std::fs::read(bundle("warm.bundle")).unwrap() == want,
        "the warm build differs"
    );

    // Damaged entries are misses: removed with a warning, read again,
    // stored again; the bundle is unchanged.
    for (i, entry) in scan_entries(&cache).iter().enumerate() {
        let mut b = std::fs::read(entry).unwrap();
        match i % 3 {
            0 => b.truncate(b.len() / 2),
            1 => b = b"not zstd".to_vec(),
            _ => b = zstd::encode_all(&b"airgap-sbom layer record 1\n\x01"[..], 3).unwrap(),
        }
        std::fs::write(entry, b).unwrap();
    }
    let out = run(build_cmd(&fixture.manifest, &key, &bundle("mended.bundle")).arg("--json"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One warning per damaged entry (the shared upper layer's twice when
    // both platforms look it up before either has removed it).
    let warned = stderr.matches("scan cache: ").count();
    assert!((4..=5).contains(&warned), "{warned} warnings: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let mended: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(mended["sbom"]["scanCache"]["stored"], 4, "{mended:#}");
    assert!(
        std::fs::read(bundle("mended.bundle")).unwrap() == want,
        "the mended build differs"
    );
    let again = build_json(&fixture.manifest, &key, &bundle("again.bundle"), &[]);
    assert_eq!(counts(&again), (0, 5), "{again:#}");
}

#[test]
fn a_layer_that_fails_its_digest_leaves_no_scan_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = write_fixture(tmp.path());
    let (key, _) = keygen(tmp.path(), "vendor");
    let cache = tmp.path().join("cache");
    // The tools layer's bytes replaced by another valid gzip stream of the
    // same size and contents (another MTIME in its header): it scans fine,
    // but is not the layer its digest names.
    let tools = tmp
        .path()
        .join("images/oci/blobs/sha256")
        .join(fixture.tools.trim_start_matches("sha256:"));
    let good = std::fs::read(&tools).unwrap();
    let mut swapped = good.clone();
    swapped[4] ^= 0xff;
    std::fs::write(&tools, &swapped).unwrap();
    let line = fails(&mut build_cmd(
        &fixture.manifest,
        &key,
        &tmp.path().join("bad.bundle"),
    ));
    assert!(line.contains(&fixture.tools), "{line}");
    assert!(
        scan_entries(&cache).is_empty(),
        "a failed build stored scans: {:?}",
        scan_entries(&cache)
    );
    std::fs::write(&tools, &good).unwrap();
    let j = build_json(
        &fixture.manifest,
        &key,
        &tmp.path().join("good.bundle"),
        &[],
    );
    assert_eq!(j["sbom"]["scanCache"]["stored"], 4, "{j:#}");
}
