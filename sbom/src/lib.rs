//! SBOMs for bundles: generated from image contents (reading layers in
//! order, applying whiteouts, never unpacking), carried from vendors, and
//! aggregated per bundle in CycloneDX and SPDX. A library only: the bundler
//! generates, the installer extracts (issue 5).
//!
//! This part is the package detection: pure functions over the bytes of
//! one file that the layer walker has already read.
//!
//! - [`classify_path`] tells from a path which parser a file needs (and
//!   [`is_executable`], from its first bytes, whether it is an executable
//!   that may carry Go or cargo-auditable data); [`FileKind::max_size`]
//!   bounds what is worth reading.
//! - [`parse_os_release`] gives the [`Distro`] that qualifies OS package
//!   purls; read it first (see [`OS_RELEASE_PATHS`]).
//! - [`scan`] runs the right parser and returns the [`Package`]s found plus
//!   warnings ([`ParseError`]: file and reason) for the walker to report;
//!   it never fails and never panics. The parsers themselves live in
//!   [`ecosystems`], one module per format, each with
//!   `parse(path, bytes, distro) -> Result<Vec<Package>, ParseError>`.
//! - [`ecosystems::dpkg::copyright_licenses`] reads licenses from Debian
//!   copyright files, for the walker to attach to dpkg packages by name.
//!
//! ```
//! use airgap_sbom::{classify_path, parse_os_release, scan, FileKind};
//!
//! let distro = parse_os_release(b"ID=debian\nVERSION_ID=\"12\"\n").unwrap();
//! let status = b"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n";
//! let kind = classify_path("var/lib/dpkg/status").unwrap();
//! assert_eq!(kind, FileKind::DpkgStatus);
//! let found = scan(kind, "var/lib/dpkg/status", status, &distro);
//! assert!(found.warnings.is_empty());
//! assert_eq!(
//!     found.packages[0].purl,
//!     "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12"
//! );
//! ```

pub mod cyclonedx;
pub mod document;
pub mod ecosystems;
mod error;
pub mod gunzip;
pub mod image;
pub mod layers;
mod license;
mod package;
pub mod purl;
pub mod source;
pub mod spdx;
mod text;

pub use error::ParseError;
pub use package::{
    normalize_location, parse_os_release, props, Distro, Ecosystem, Package, OS_RELEASE_PATHS,
};
pub use purl::PackageUrl;

use crate::package::relative_path;

/// What a file inside an image is, for package detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum FileKind {
    /// `etc/os-release` or `usr/lib/os-release`: read with [`parse_os_release`].
    OsRelease,
    /// `var/lib/dpkg/status` or a `var/lib/dpkg/status.d/` file: [`ecosystems::dpkg`].
    DpkgStatus,
    /// `usr/share/doc/PKG/copyright`: [`ecosystems::dpkg::copyright_licenses`]
    /// for package [`ecosystems::dpkg::copyright_package`].
    DpkgCopyright,
    /// `lib/apk/db/installed`: [`ecosystems::apk`].
    ApkInstalled,
    /// `var/lib/rpm/rpmdb.sqlite` or `usr/lib/sysimage/rpm/rpmdb.sqlite`: [`ecosystems::rpm`].
    RpmSqlite,
    /// `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` or an `*.egg-info` file: [`ecosystems::python`].
    PythonMetadata,
    /// `.../node_modules/[@scope/]name/package.json`: [`ecosystems::npm`].
    NpmPackageJson,
    /// `*.jar`, `*.war`, `*.ear`, `*.jpi`, `*.hpi`: [`ecosystems::java`].
    JavaArchive,
    /// An ELF, Mach-O or PE executable (judged by [`is_executable`], not
    /// by path): [`ecosystems::binary`].
    Executable,
}

const MIB: u64 = 1024 * 1024;

impl FileKind {
    /// The ecosystem of the packages this kind of file yields, if any.
    pub fn ecosystem(self) -> Option<Ecosystem> {
        match self {
            FileKind::OsRelease | FileKind::DpkgCopyright | FileKind::Executable => None,
            FileKind::DpkgStatus => Some(Ecosystem::Deb),
            FileKind::ApkInstalled => Some(Ecosystem::Apk),
            FileKind::RpmSqlite => Some(Ecosystem::Rpm),
            FileKind::PythonMetadata => Some(Ecosystem::Python),
            FileKind::NpmPackageJson => Some(Ecosystem::Npm),
            FileKind::JavaArchive => Some(Ecosystem::Maven),
        }
    }

    /// The largest file of this kind worth reading into memory; the walker
    /// should skip (and report) larger ones. [`scan`] refuses them too.
    pub fn max_size(self) -> u64 {
        match self {
            FileKind::OsRelease => MIB,
            FileKind::DpkgCopyright | FileKind::PythonMetadata | FileKind::NpmPackageJson => {
                16 * MIB
            }
            FileKind::DpkgStatus | FileKind::ApkInstalled => 256 * MIB,
            FileKind::RpmSqlite => 1024 * MIB,
            FileKind::JavaArchive | FileKind::Executable => 512 * MIB,
        }
    }
}

/// Which parser a file needs, judged by its path inside the image (with or
/// without a leading `/` or `./`). Executables are not recognised by path:
/// see [`is_executable`].
pub fn classify_path(path: &str) -> Option<FileKind> {
    let p = relative_path(path);
    if OS_RELEASE_PATHS.contains(&p) {
        return Some(FileKind::OsRelease);
    }
    if p == "var/lib/dpkg/status" {
        return Some(FileKind::DpkgStatus);
    }
    if let Some(name) = p.strip_prefix("var/lib/dpkg/status.d/") {
        let plain = !name.is_empty() && !name.contains('/') && !name.starts_with('.');
        return (plain && !name.ends_with(".md5sums")).then_some(FileKind::DpkgStatus);
    }
    if ecosystems::dpkg::copyright_package(p).is_some() {
        return Some(FileKind::DpkgCopyright);
    }
    if p == "lib/apk/db/installed" || p == "usr/lib/apk/db/installed" {
        return Some(FileKind::ApkInstalled);
    }
    if p == "var/lib/rpm/rpmdb.sqlite" || p == "usr/lib/sysimage/rpm/rpmdb.sqlite" {
        return Some(FileKind::RpmSqlite);
    }
    if p.ends_with(".dist-info/METADATA")
        || p.ends_with(".egg-info/PKG-INFO")
        || (p.ends_with(".egg-info") && !p.ends_with("/.egg-info"))
    {
        return Some(FileKind::PythonMetadata);
    }
    if ecosystems::npm::is_package_manifest_path(p) {
        return Some(FileKind::NpmPackageJson);
    }
    if ecosystems::java::is_java_archive_path(p) {
        return Some(FileKind::JavaArchive);
    }
    None
}

/// [`classify_path`] for a regular file with permission bits `mode`, and
/// [`FileKind::Executable`] for any other file with an execute bit set.
/// For a walker that must decide before reading; [`scan`] checks the
/// executable's magic itself and ignores scripts and other non-binaries.
pub fn classify_file(path: &str, mode: u32) -> Option<FileKind> {
    classify_path(path).or_else(|| (mode & 0o111 != 0).then_some(FileKind::Executable))
}

/// Whether a file's first bytes (four are enough) are those of an ELF,
/// Mach-O (thin or universal) or PE executable, the files that may carry
/// Go build information or cargo-auditable data. Universal Mach-O shares
/// its magic with Java class files; those simply yield nothing.
pub fn is_executable(head: &[u8]) -> bool {
    head.starts_with(b"\x7fELF")
        || head.starts_with(b"MZ")
        || [
            [0xfe, 0xed, 0xfa, 0xce],
            [0xfe, 0xed, 0xfa, 0xcf],
            [0xce, 0xfa, 0xed, 0xfe],
            [0xcf, 0xfa, 0xed, 0xfe],
            [0xca, 0xfe, 0xba, 0xbe],
        ]
        .iter()
        .any(|m| head.starts_with(m))
}

/// What [`scan`] found in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// The packages, in the order the file lists them.
    pub packages: Vec<Package>,
    /// Why the file, or records in it, could not be read; for the build log.
    pub warnings: Vec<ParseError>,
}

/// Runs the parser for `kind` on one file. Never fails: an unreadable file
/// gives a warning and no packages, a partly readable one the packages it
/// could read and a warning per skipped record. Kinds that are context
/// rather than packages ([`FileKind::OsRelease`], [`FileKind::DpkgCopyright`])
/// give nothing, as does an [`FileKind::Executable`] whose bytes are not an
/// executable's ([`is_executable`]). As a last line of defence a panic in a dependency
/// (SQLite, zip, object) is caught and reported as a warning.
pub fn scan(kind: FileKind, path: &str, bytes: &[u8], distro: &Distro) -> Scan {
    use ecosystems::*;
    if bytes.len() as u64 > kind.max_size() {
        return too_large(kind, path, bytes.len() as u64);
    }
    let parser: ecosystems::Parser = match kind {
        FileKind::OsRelease | FileKind::DpkgCopyright => return Scan::default(),
        FileKind::Executable if !is_executable(bytes) => return Scan::default(),
        FileKind::DpkgStatus => dpkg::parse_with_warnings,
        FileKind::ApkInstalled => apk::parse_with_warnings,
        FileKind::RpmSqlite => rpm::parse_with_warnings,
        FileKind::PythonMetadata => python::parse_with_warnings,
        FileKind::NpmPackageJson => npm::parse_with_warnings,
        FileKind::JavaArchive => java::parse_with_warnings,
        FileKind::Executable => binary::parse_with_warnings,
    };
    guarded(path, |warnings| parser(path, bytes, distro, warnings))
}

/// [`scan`] on a file of `size` bytes on disk (the layer walker spools
/// files larger than [`layers::SPOOL_ABOVE`] to a temporary file).
/// Executables and Java archives are parsed in place, reading only what
/// holds package data, so memory does not grow with them; other kinds
/// are read whole (up to [`FileKind::max_size`]) and given to [`scan`].
pub fn scan_file(
    kind: FileKind,
    path: &str,
    file: &std::fs::File,
    size: u64,
    distro: &Distro,
) -> Scan {
    use std::os::unix::fs::FileExt;
    if size > kind.max_size() {
        return too_large(kind, path, size);
    }
    match kind {
        FileKind::Executable => {
            let mut head = [0u8; 4];
            if file.read_exact_at(&mut head, 0).is_err() || !is_executable(&head) {
                return Scan::default();
            }
            guarded(path, |w| {
                ecosystems::binary::parse_file(path, file, size, w)
            })
        }
        FileKind::JavaArchive => guarded(path, |w| ecosystems::java::parse_file(path, file, w)),
        _ => {
            let mut bytes = vec![0; size as usize];
            match file.read_exact_at(&mut bytes, 0) {
                Ok(()) => scan(kind, path, &bytes, distro),
                Err(e) => Scan {
                    packages: Vec::new(),
                    warnings: vec![ParseError::new(path, format!("cannot read: {e}"))],
                },
            }
        }
    }
}

/// What scanning a file above its kind's limit gives: a warning.
fn too_large(kind: FileKind, path: &str, size: u64) -> Scan {
    Scan {
        packages: Vec::new(),
        warnings: vec![ParseError::new(
            path,
            format!(
                "{size} bytes, more than the {} read for this kind of file",
                kind.max_size()
            ),
        )],
    }
}

/// Runs a parser, turning its error, and a panic in a dependency, into
/// warnings.
fn guarded(
    path: &str,
    parser: impl FnOnce(&mut Vec<ParseError>) -> Result<Vec<Package>, ParseError>,
) -> Scan {
    let mut out = Scan::default();
    let mut warnings = Vec::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser(&mut warnings)));
    out.warnings = warnings;
    match result {
        Ok(Ok(packages)) => out.packages = packages,
        Ok(Err(e)) => out.warnings.push(e),
        Err(_) => out
            .warnings
            .push(ParseError::new(path, "internal error: the parser panicked")),
    }
    out
}

#[cfg(test)]
pub(crate) mod testelf;
#[cfg(test)]
pub(crate) mod testtools;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_to_kinds() {
        let cases = [
            ("etc/os-release", Some(FileKind::OsRelease)),
            ("/usr/lib/os-release", Some(FileKind::OsRelease)),
            ("./var/lib/dpkg/status", Some(FileKind::DpkgStatus)),
            ("var/lib/dpkg/status-old", None),
            (
                "var/lib/dpkg/status.d/base-files",
                Some(FileKind::DpkgStatus),
            ),
            ("var/lib/dpkg/status.d/base-files.md5sums", None),
            ("var/lib/dpkg/status.d/", None),
            (
                "usr/share/doc/bash/copyright",
                Some(FileKind::DpkgCopyright),
            ),
            ("lib/apk/db/installed", Some(FileKind::ApkInstalled)),
            ("usr/lib/apk/db/installed", Some(FileKind::ApkInstalled)),
            ("var/lib/rpm/rpmdb.sqlite", Some(FileKind::RpmSqlite)),
            (
                "usr/lib/sysimage/rpm/rpmdb.sqlite",
                Some(FileKind::RpmSqlite),
            ),
            ("var/lib/rpm/Packages", None),
            (
                "usr/lib/python3.11/site-packages/pip-23.0.1.dist-info/METADATA",
                Some(FileKind::PythonMetadata),
            ),
            (
                "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO",
                Some(FileKind::PythonMetadata),
            ),
            (
                "usr/lib/python2.7/dist-packages/foo-1.0.egg-info",
                Some(FileKind::PythonMetadata),
            ),
            ("x.dist-info/RECORD", None),
            (
                "app/node_modules/express/package.json",
                Some(FileKind::NpmPackageJson),
            ),
            ("app/package.json", None),
            ("opt/app/app.jar", Some(FileKind::JavaArchive)),
            ("usr/bin/bash", None),
        ];
        for (path, kind) in cases {
            assert_eq!(classify_path(path), kind, "{path}");
        }
    }

    #[test]
    fn files_by_mode() {
        assert_eq!(
            classify_file("usr/bin/hello", 0o755),
            Some(FileKind::Executable)
        );
        assert_eq!(classify_file("usr/bin/hello", 0o644), None);
        assert_eq!(
            classify_file("var/lib/dpkg/status", 0o755),
            Some(FileKind::DpkgStatus)
        );
        let s = scan(
            FileKind::Executable,
            "usr/bin/script",
            b"#!/bin/sh\necho\n",
            &Distro::default(),
        );
        assert_eq!(s, Scan::default());
    }

    #[test]
    fn executables_by_magic() {
        assert!(is_executable(b"\x7fELF\x02\x01\x01"));
        assert!(is_executable(b"MZ\x90\x00"));
        assert!(is_executable(&[0xcf, 0xfa, 0xed, 0xfe, 7]));
        assert!(!is_executable(b"#!/bin/sh\n"));
        assert!(!is_executable(b"\x7fEL"));
    }

    #[test]
    fn scan_reports_instead_of_failing() {
        let d = Distro::new("alpine", Some("3.19"));
        let s = scan(
            FileKind::ApkInstalled,
            "lib/apk/db/installed",
            b"P:a\nV:1-r0\n\nV:2\n",
            &d,
        );
        assert_eq!(s.packages.len(), 1);
        assert_eq!(s.warnings.len(), 1);
        let s = scan(FileKind::RpmSqlite, "var/lib/rpm/rpmdb.sqlite", b"junk", &d);
        assert!(s.packages.is_empty());
        assert_eq!(s.warnings[0].path, "var/lib/rpm/rpmdb.sqlite");
        let s = scan(FileKind::OsRelease, "etc/os-release", b"ID=x", &d);
        assert_eq!(s, Scan::default());
        let s = scan(FileKind::PythonMetadata, "a.egg-info", b"no fields", &d);
        assert_eq!(s.warnings.len(), 1);
        let s = scan(
            FileKind::NpmPackageJson,
            "node_modules/a/package.json",
            &vec![b' '; 17 * 1024 * 1024],
            &d,
        );
        assert!(s.warnings[0].reason.contains("more than"));
    }

    #[test]
    fn every_kind_survives_garbage() {
        let kinds = [
            FileKind::OsRelease,
            FileKind::DpkgStatus,
            FileKind::DpkgCopyright,
            FileKind::ApkInstalled,
            FileKind::RpmSqlite,
            FileKind::PythonMetadata,
            FileKind::NpmPackageJson,
            FileKind::JavaArchive,
            FileKind::Executable,
        ];
        let mut rng = ecosystems::fuzz::Rng::new(42);
        for kind in kinds {
            for len in [0usize, 1, 7, 64, 4096] {
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let s = scan(
                    kind,
                    "node_modules/x/package.json",
                    &bytes,
                    &Distro::default(),
                );
                assert!(s.packages.is_empty() || kind == FileKind::Executable);
            }
        }
    }
}
