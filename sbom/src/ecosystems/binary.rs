//! Executables, read once for both kinds of embedded package data: Go
//! build information ([`super::golang`]) and cargo-auditable data
//! ([`super::rust`]). Use [`crate::is_executable`] on a file's first
//! bytes to decide whether to read it whole and call this.

use crate::package::{Distro, Package};
use crate::source::FileSource;
use crate::ParseError;

/// Parses an executable for Go modules and Rust crates; one with neither
/// gives no packages. When one kind of data is unreadable and the other was
/// read, the error becomes a warning; when both fail, the Go error is
/// returned and the Rust one is a warning.
pub fn parse_with_warnings(
    path: &str,
    bytes: &[u8],
    _distro: &Distro,
    warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    let file = object::File::parse(bytes).ok();
    combine(
        super::golang::parse_object(path, &bytes, file.as_ref(), warnings),
        super::rust::parse_object(path, file.as_ref(), warnings),
        warnings,
    )
}

/// [`parse_with_warnings`] on an executable in a file of `size` bytes
/// (the layer walker spools large ones to disk): only its headers, section
/// tables and the sections that hold package data are read, so memory
/// does not grow with the file.
pub fn parse_file(
    path: &str,
    file: &std::fs::File,
    size: u64,
    warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    let cache = object::ReadCache::new(file);
    let parsed = object::File::parse(&cache).ok();
    let src = FileSource::new(file, size);
    combine(
        super::golang::parse_object(path, &src, parsed.as_ref(), warnings),
        super::rust::parse_object(path, parsed.as_ref(), warnings),
        warnings,
    )
}

/// The Go and Rust results of one file as one.
fn combine(
    go: Result<Vec<Package>, ParseError>,
    rust: Result<Vec<Package>, ParseError>,
    warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    match (go, rust) {
        (Ok(mut a), Ok(b)) => {
            a.extend(b);
            Ok(a)
        }
        (Ok(a), Err(e)) | (Err(e), Ok(a)) => {
            warnings.push(e);
            Ok(a)
        }
        (Err(go), Err(rust)) => {
            warnings.push(rust);
            Err(go)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecosystems::{fuzz, golang, rust};
    use crate::testelf::{elf, Section};
    use crate::Ecosystem;

    #[test]
    fn go_and_rust_data_in_one_file() {
        let file = elf(&[
            Section::new(
                ".go.buildinfo",
                0x500000,
                &golang::tests::inline_blob("go1.22.1", golang::tests::MODINFO),
            ),
            Section::new(
                ".dep-v0",
                0x600000,
                &rust::tests::zlib(rust::tests::AUDIT_JSON.as_bytes()),
            ),
        ]);
        let pkgs =
            crate::ecosystems::packages(parse_with_warnings, "bin/x", &file, &Distro::default())
                .unwrap();
        // Read from a file (as a spooled executable is), the same.
        let mut on_disk = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut on_disk, &file).unwrap();
        let mut warnings = Vec::new();
        let from_file = parse_file("bin/x", &on_disk, file.len() as u64, &mut warnings).unwrap();
        assert_eq!(from_file, pkgs);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            pkgs.iter()
                .filter(|p| p.ecosystem == Ecosystem::Golang)
                .count(),
            5
        );
        assert_eq!(
            pkgs.iter()
                .filter(|p| p.ecosystem == Ecosystem::Cargo)
                .count(),
            5
        );
    }

    #[test]
    fn one_broken_kind_is_a_warning() {
        let file = elf(&[
            Section::new(
                ".go.buildinfo",
                0x500000,
                &golang::tests::inline_blob("go1.22.1", golang::tests::MODINFO),
            ),
            Section::new(".dep-v0", 0x600000, b"broken"),
        ]);
        let mut w = Vec::new();
        let pkgs = parse_with_warnings("bin/x", &file, &Distro::default(), &mut w).unwrap();
        assert_eq!(pkgs.len(), 5);
        assert_eq!(w.len(), 1);
        assert!(w[0].reason.contains("cargo-auditable"));
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "bin/x",
            b"\x7fELF garbage",
            &Distro::default()
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let file = rust::tests::audited_elf(rust::tests::AUDIT_JSON);
        fuzz::mutations(&file, 200, |b| {
            let _ = crate::ecosystems::packages(parse_with_warnings, "x", b, &Distro::default());
        });
    }
}
