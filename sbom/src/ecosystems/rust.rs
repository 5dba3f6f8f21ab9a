//! Rust binaries built with cargo-auditable: the `.dep-v0` section (ELF,
//! Mach-O, PE) holds zlib-compressed JSON,
//! `{"packages":[{"name","version","source","kind","dependencies","root"}]}`.
//! Every entry becomes `pkg:cargo/NAME@VERSION`; the crate the binary was
//! built from (`root`) is kept and marked [`props::CARGO_ROOT`], as are
//! the source (`crates.io`, `local`, `git`, `registry`) and build-only
//! dependencies (`kind: build`, compiled but not linked in).
//!
//! Not covered: binaries without the section (plain `cargo build`: no
//! packages), WebAssembly modules, and licenses (the format has none).
//! Bounds: 8 MiB of compressed section, 64 MiB of JSON.

use std::collections::BTreeMap;
use std::io::Read;

use object::{Object, ObjectSection, ReadRef};
use serde::Deserialize;

use crate::package::{normalize_location, props, Distro, Ecosystem, Package};
use crate::purl::PackageUrl;
use crate::ParseError;

const SECTION: &str = ".dep-v0";
const MAX_COMPRESSED: usize = 8 * 1024 * 1024;
const MAX_JSON: u64 = 64 * 1024 * 1024;

/// Parses a binary's cargo-auditable data; a file without the section is no
/// package (not an error). The data is one JSON document, so there are no
/// per-record warnings. A section that does not decompress or decode is an
/// error.
pub fn parse_with_warnings(
    path: &str,
    bytes: &[u8],
    _distro: &Distro,
    warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    let file = object::File::parse(bytes).ok();
    parse_object(path, file.as_ref(), warnings)
}

#[derive(Deserialize)]
struct AuditData {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    root: bool,
}

/// [`parse_with_warnings`] on an executable already parsed by `object`.
pub(crate) fn parse_object<'d, R: ReadRef<'d>>(
    path: &str,
    file: Option<&object::File<'d, R>>,
    _warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    let Some(section) = file.and_then(|f| f.section_by_name(SECTION)) else {
        return Ok(Vec::new());
    };
    let err = |reason: String| ParseError::new(path, format!("cargo-auditable data: {reason}"));
    // Judged by the section header before the section is read.
    if section.size() > MAX_COMPRESSED as u64 {
        return Err(err(format!("section larger than {MAX_COMPRESSED} bytes")));
    }
    let compressed = section
        .data()
        .map_err(|e| err(format!("unreadable section: {e}")))?;
    if compressed.len() > MAX_COMPRESSED {
        return Err(err(format!("section larger than {MAX_COMPRESSED} bytes")));
    }
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_JSON + 1)
        .read_to_end(&mut json)
        .map_err(|e| err(format!("not zlib data: {e}")))?;
    if json.len() as u64 > MAX_JSON {
        return Err(err(format!("more than {MAX_JSON} bytes of JSON")));
    }
    let data: AuditData =
        serde_json::from_slice(&json).map_err(|e| err(format!("invalid JSON: {e}")))?;
    let location = normalize_location(path);
    Ok(data
        .packages
        .into_iter()
        .filter(|p| !p.name.is_empty() && !p.version.is_empty())
        .map(|p| {
            let mut properties = BTreeMap::new();
            if let Some(s) = p.source.filter(|s| !s.is_empty()) {
                properties.insert(props::CARGO_SOURCE.to_string(), s);
            }
            if let Some(k) = p.kind.filter(|k| !k.is_empty() && k != "runtime") {
                properties.insert(props::CARGO_KIND.to_string(), k);
            }
            if p.root {
                properties.insert(props::CARGO_ROOT.to_string(), "true".to_string());
            }
            Package {
                ecosystem: Ecosystem::Cargo,
                purl: PackageUrl::new("cargo", &p.name)
                    .with_version(&p.version)
                    .to_string(),
                name: p.name,
                version: p.version,
                licenses: Vec::new(),
                location: location.clone(),
                properties,
            }
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ecosystems::fuzz;
    use crate::testelf::{elf, Section};
    use std::io::Write;

    pub(crate) const AUDIT_JSON: &str = r#"{"packages":[
        {"name":"adler","version":"1.0.2","source":"crates.io"},
        {"name":"cc","version":"1.0.83","source":"crates.io","kind":"build"},
        {"name":"hello-audit","version":"0.1.0","source":"local","dependencies":[0,1,3],"root":true},
        {"name":"serde","version":"1.0.193","source":"crates.io","kind":"runtime","features":["std"]},
        {"name":"my-fork","version":"0.3.0-alpha.1+build","source":"git"}
    ]}"#;

    pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    pub(crate) fn audited_elf(json: &str) -> Vec<u8> {
        elf(&[
            Section::new(".text", 0x401000, &[0xc3; 32]),
            Section::new(".dep-v0", 0x402000, &zlib(json.as_bytes())),
        ])
    }

    #[test]
    fn audit_data() {
        let pkgs = crate::ecosystems::packages(
            parse_with_warnings,
            "usr/local/bin/hello-audit",
            &audited_elf(AUDIT_JSON),
            &Distro::default(),
        )
        .unwrap();
        let purls: Vec<_> = pkgs.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:cargo/adler@1.0.2",
                "pkg:cargo/cc@1.0.83",
                "pkg:cargo/hello-audit@0.1.0",
                "pkg:cargo/serde@1.0.193",
                "pkg:cargo/my-fork@0.3.0-alpha.1%2Bbuild",
            ]
        );
        assert_eq!(pkgs[0].properties[props::CARGO_SOURCE], "crates.io");
        assert_eq!(pkgs[1].properties[props::CARGO_KIND], "build");
        assert_eq!(pkgs[2].properties[props::CARGO_ROOT], "true");
        assert_eq!(pkgs[2].properties[props::CARGO_SOURCE], "local");
        assert!(!pkgs[3].properties.contains_key(props::CARGO_KIND));
        assert_eq!(pkgs[0].location, "/usr/local/bin/hello-audit");
        assert!(pkgs.iter().all(|p| p.ecosystem == Ecosystem::Cargo));
    }

    #[test]
    fn no_section_bad_zlib_bad_json() {
        let d = Distro::default();
        let plain = elf(&[Section::new(".text", 0x1000, &[0; 8])]);
        assert!(
            crate::ecosystems::packages(parse_with_warnings, "x", &plain, &d)
                .unwrap()
                .is_empty()
        );
        assert!(
            crate::ecosystems::packages(parse_with_warnings, "x", b"not an executable", &d)
                .unwrap()
                .is_empty()
        );
        let bad = elf(&[Section::new(".dep-v0", 0x1000, b"not zlib")]);
        assert!(
            crate::ecosystems::packages(parse_with_warnings, "x", &bad, &d)
                .unwrap_err()
                .reason
                .contains("zlib")
        );
        let bad = elf(&[Section::new(".dep-v0", 0x1000, &zlib(b"{\"packages\":3}"))]);
        assert!(
            crate::ecosystems::packages(parse_with_warnings, "x", &bad, &d)
                .unwrap_err()
                .reason
                .contains("JSON")
        );
    }

    #[test]
    fn decompression_is_bounded() {
        let huge = vec![b' '; (MAX_JSON + 10) as usize];
        let bomb = elf(&[Section::new(".dep-v0", 0x1000, &zlib(&huge))]);
        let e = crate::ecosystems::packages(parse_with_warnings, "x", &bomb, &Distro::default())
            .unwrap_err();
        assert!(e.reason.contains("more than"), "{e}");
    }

    #[test]
    fn real_cargo_auditable_binary() {
        let Some(bin) = crate::testtools::cargo_auditable_hello() else {
            eprintln!("SKIPPED real_cargo_auditable_binary: cargo-auditable is not installed (cargo install cargo-auditable)");
            return;
        };
        let pkgs = crate::ecosystems::packages(
            parse_with_warnings,
            "usr/bin/hello",
            &bin,
            &Distro::default(),
        )
        .unwrap();
        let purls: Vec<_> = pkgs.iter().map(|p| p.purl.as_str()).collect();
        assert!(
            purls.contains(&"pkg:cargo/sbom-audit-hello@0.1.0"),
            "{purls:?}"
        );
        assert!(
            purls.contains(&"pkg:cargo/sbom-audit-dep@0.2.0"),
            "{purls:?}"
        );
        let root = pkgs.iter().find(|p| p.name == "sbom-audit-hello").unwrap();
        assert_eq!(root.properties[props::CARGO_ROOT], "true");
        assert_eq!(root.properties[props::CARGO_SOURCE], "local");
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let file = audited_elf(AUDIT_JSON);
        fuzz::mutations(&file, 400, |b| {
            let _ = crate::ecosystems::packages(parse_with_warnings, "x", b, &Distro::default());
        });
        let z = zlib(AUDIT_JSON.as_bytes());
        fuzz::mutations(&z, 300, |b| {
            let f = elf(&[Section::new(".dep-v0", 0x1000, b)]);
            let _ = crate::ecosystems::packages(parse_with_warnings, "x", &f, &Distro::default());
        });
    }
}
