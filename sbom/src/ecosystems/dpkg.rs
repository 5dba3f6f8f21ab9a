//! Debian and Ubuntu packages: `var/lib/dpkg/status` and the distroless
//! `var/lib/dpkg/status.d/*` files (one or more paragraphs each), plus the
//! licenses of machine-readable `usr/share/doc/PKG/copyright` files.
//!
//! A package is reported when its `Status` says its files are on disk:
//! `installed`, and the transient `unpacked`, `half-configured`,
//! `triggers-awaited` and `triggers-pending` (these carry
//! [`props::DPKG_STATUS`]); `not-installed`, `config-files` and
//! `half-installed` are skipped. In `status.d` files, which have no
//! `Status` field, every paragraph is installed. dpkg keeps no licenses in
//! its status file: [`copyright_licenses`] reads them from copyright files.

use crate::package::{
    dedup_licenses, normalize_location, os_package_purl, props, Distro, Ecosystem, Package,
};
use crate::text::{deb822_paragraphs, Paragraph};
use crate::ParseError;

/// Parses a dpkg status file or a `status.d` file; paragraphs that cannot be
/// read are skipped. It adds a warning for every paragraph it had to skip. A
/// file with text but no package paragraph at all is an error.
pub fn parse_with_warnings(
    path: &str,
    bytes: &[u8],
    distro: &Distro,
    warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    let text = String::from_utf8_lossy(bytes);
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let in_status_d = path.contains("status.d/");
    let (paragraphs, bad_lines) = deb822_paragraphs(&text);
    if !paragraphs.iter().any(|p| p.get("Package").is_some()) {
        return Err(ParseError::new(path, "no dpkg package paragraph found"));
    }
    if bad_lines > 0 {
        warnings.push(ParseError::new(
            path,
            format!("{bad_lines} line(s) are neither a field nor a continuation"),
        ));
    }
    let location = normalize_location(path);
    let mut out = Vec::new();
    for para in &paragraphs {
        match package(para, in_status_d, distro, &location) {
            Ok(Some(p)) => out.push(p),
            Ok(None) => {}
            Err(reason) => warnings.push(ParseError::new(
                path,
                format!("paragraph at line {}: {reason}", para.line),
            )),
        }
    }
    Ok(out)
}

/// `Some(extra)` when a `Status` value means the package's files are on
/// disk; `extra` is true when that is not the plain installed state.
fn present(status: &str) -> Option<bool> {
    let words: Vec<&str> = status.split_whitespace().collect();
    match words.as_slice() {
        [_, _, "installed"] => Some(false),
        [_, _, "unpacked" | "half-configured" | "triggers-awaited" | "triggers-pending"] => {
            Some(true)
        }
        _ => None,
    }
}

fn package(
    para: &Paragraph<'_>,
    in_status_d: bool,
    distro: &Distro,
    location: &str,
) -> Result<Option<Package>, String> {
    let name = para.get("Package").unwrap_or("");
    let mut odd_status = None;
    match para.get("Status") {
        Some(status) => match present(status) {
            Some(false) => {}
            Some(true) => odd_status = Some(status.to_string()),
            None => return Ok(None),
        },
        None if in_status_d => {}
        None => return Ok(None),
    }
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(format!("no usable Package field ({name:?})"));
    }
    let version = para.get("Version").unwrap_or("");
    if version.is_empty() || version.contains(char::is_whitespace) {
        return Err(format!("package {name}: no usable Version field"));
    }
    let arch = para.get("Architecture").unwrap_or("");
    let mut properties = std::collections::BTreeMap::new();
    if !arch.is_empty() {
        properties.insert(props::ARCH.to_string(), arch.to_string());
    }
    if let Some(source) = para.get("Source") {
        // `Source: glibc (2.36-9+deb12u4)` or `Source: bash`.
        let (src, src_version) = match source.split_once('(') {
            Some((s, v)) => (s.trim(), v.trim_end_matches(')').trim()),
            None => (source.trim(), ""),
        };
        if !src.is_empty() {
            properties.insert(props::SOURCE.to_string(), src.to_string());
        }
        if !src_version.is_empty() {
            properties.insert(props::SOURCE_VERSION.to_string(), src_version.to_string());
        }
    }
    if let Some(m) = para.get("Maintainer").filter(|m| !m.is_empty()) {
        properties.insert(props::MAINTAINER.to_string(), m.to_string());
    }
    if let Some(s) = odd_status {
        properties.insert(props::DPKG_STATUS.to_string(), s);
    }
    let purl =
        os_package_purl(Ecosystem::Deb, name, version, &properties, distro).unwrap_or_default();
    Ok(Some(Package {
        ecosystem: Ecosystem::Deb,
        name: name.to_string(),
        version: version.to_string(),
        purl,
        licenses: Vec::new(),
        location: location.to_string(),
        properties,
    }))
}

/// The package a `usr/share/doc/PKG/copyright` path belongs to.
pub fn copyright_package(path: &str) -> Option<&str> {
    let rest = crate::package::relative_path(path).strip_prefix("usr/share/doc/")?;
    let (pkg, file) = rest.split_once('/')?;
    (file == "copyright" && !pkg.is_empty()).then_some(pkg)
}

/// Licenses declared in a machine-readable Debian copyright file (DEP-5,
/// with a `Format:` header): the first line of every `License:` field, as
/// written (Debian short names such as `GPL-2+`, not necessarily SPDX), in
/// order, without duplicates. Empty for free-form copyright files.
pub fn copyright_licenses(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let (paragraphs, _) = deb822_paragraphs(&text);
    let Some(header) = paragraphs.first() else {
        return Vec::new();
    };
    if header.get("Format").is_none() {
        return Vec::new();
    }
    dedup_licenses(
        paragraphs
            .iter()
            .flat_map(|p| p.all("License"))
            .map(|v| v.lines().next().unwrap_or("").to_string()),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ecosystems::fuzz;

    pub(crate) const STATUS: &str = "\
Package: base-files
Essential: yes
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 341
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Multi-Arch: foreign
Version: 12.4+deb12u5
Replaces: base, dpkg (<= 1.15.0), miscutils
Provides: base
Pre-Depends: awk
Breaks: debian-security-support (<< 2019.04.25), initscripts (<< 2.88dsf-13.3)
Conffiles:
 /etc/debian_version 7b4e0ad6ee2cc9e1b8a5b1ea4e10b2d7
 /etc/dpkg/origins/debian c47b6815f67ad1aeccb0d4529bd0b990
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy of a Debian system, and
 several important miscellaneous files, such as /etc/debian_version,
 .
 /etc/host.conf, /etc/issue, /etc/motd, /etc/profile, and others,

Package: bash
Essential: yes
Status: install ok installed
Priority: required
Section: shells
Installed-Size: 7163
Maintainer: Matthias Klose <doko@debian.org>
Architecture: amd64
Version: 5.2.15-2+b2
Replaces: bash-completion (<< 20060301-0), bash-doc (<= 2.05-1)
Depends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)
Pre-Depends: libc6 (>= 2.36), libtinfo6 (>= 6)
Recommends: bash-completion (>= 20060301-0)
Suggests: bash-doc
Conflicts: bash-completion (<< 20060301-0)
Conffiles:
 /etc/bash.bashrc 89269e1298235f1b12b4c16e4065ad0d
 /etc/skel/.bash_logout 22bfb8c1dd94b5f3813a2b25da67463f
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter that executes
 commands read from the standard input or from a file.
Homepage: http://tiswww.case.edu/php/chet/bash/bashtop.html
Source: bash (5.2.15-2)

Package: libgcc-s1
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 140
Maintainer: Debian GCC Maintainers <debian-gcc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: gcc-12
Version: 1:12.2.0-14
Depends: gcc-12-base (= 12.2.0-14), libc6 (>= 2.35)
Description: GCC support library

Package: oldpkg
Status: deinstall ok config-files
Priority: optional
Architecture: amd64
Version: 1.0-1
Description: removed, configuration kept

Package: triggered
Status: install ok triggers-pending
Architecture: all
Version: 2.0
Description: waits for triggers

Package: broken
Status: install ok installed
Architecture: amd64
Description: no version
";

    fn debian() -> Distro {
        Distro::new("debian", Some("12"))
    }

    #[test]
    fn status_file() {
        let mut warnings = Vec::new();
        let pkgs = parse_with_warnings(
            "var/lib/dpkg/status",
            STATUS.as_bytes(),
            &debian(),
            &mut warnings,
        )
        .unwrap();
        let names: Vec<_> = pkgs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["base-files", "bash", "libgcc-s1", "triggered"]);
        let bash = &pkgs[1];
        assert_eq!(bash.version, "5.2.15-2+b2");
        assert_eq!(
            bash.purl,
            "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12"
        );
        assert_eq!(bash.location, "/var/lib/dpkg/status");
        assert_eq!(bash.properties[props::SOURCE], "bash");
        assert_eq!(bash.properties[props::SOURCE_VERSION], "5.2.15-2");
        assert_eq!(bash.properties[props::ARCH], "amd64");
        assert_eq!(
            bash.properties[props::MAINTAINER],
            "Matthias Klose <doko@debian.org>"
        );
        assert!(bash.licenses.is_empty());
        let libgcc = &pkgs[2];
        assert_eq!(libgcc.version, "1:12.2.0-14");
        assert_eq!(
            libgcc.purl,
            "pkg:deb/debian/libgcc-s1@1:12.2.0-14?arch=amd64&distro=debian-12"
        );
        assert_eq!(libgcc.properties[props::SOURCE], "gcc-12");
        assert!(!libgcc.properties.contains_key(props::SOURCE_VERSION));
        assert_eq!(
            pkgs[3].properties[props::DPKG_STATUS],
            "install ok triggers-pending"
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].reason.contains("line 74"), "{warnings:?}");
        assert!(warnings[0].reason.contains("broken"), "{warnings:?}");
    }

    #[test]
    fn status_d_files_have_no_status_field() {
        let file = "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\nMaintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>\n\nPackage: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\nSource: openssl\n";
        let pkgs = crate::ecosystems::packages(
            parse_with_warnings,
            "./var/lib/dpkg/status.d/libssl3",
            file.as_bytes(),
            &Distro::new("debian", Some("12")),
        )
        .unwrap();
        assert_eq!(pkgs.len(), 2);
        assert_eq!(
            pkgs[1].purl,
            "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12"
        );
        assert_eq!(pkgs[1].location, "/var/lib/dpkg/status.d/libssl3");
        // The same paragraph in a status file without Status is not installed.
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "var/lib/dpkg/status",
            file.as_bytes(),
            &debian()
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn unknown_distro_and_ubuntu() {
        let p = crate::ecosystems::packages(
            parse_with_warnings,
            "var/lib/dpkg/status",
            STATUS.as_bytes(),
            &Distro::default(),
        )
        .unwrap();
        assert_eq!(p[1].purl, "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64");
        let p = crate::ecosystems::packages(
            parse_with_warnings,
            "var/lib/dpkg/status",
            STATUS.as_bytes(),
            &Distro::new("ubuntu", Some("22.04")),
        )
        .unwrap();
        assert_eq!(
            p[1].purl,
            "pkg:deb/ubuntu/bash@5.2.15-2%2Bb2?arch=amd64&distro=ubuntu-22.04"
        );
    }

    #[test]
    fn empty_and_garbage() {
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "var/lib/dpkg/status",
            b"",
            &debian()
        )
        .unwrap()
        .is_empty());
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "var/lib/dpkg/status",
            b"\n\n",
            &debian()
        )
        .unwrap()
        .is_empty());
        let err = crate::ecosystems::packages(
            parse_with_warnings,
            "var/lib/dpkg/status",
            b"\x00\x01garbage\xff",
            &debian(),
        )
        .unwrap_err();
        assert_eq!(err.path, "var/lib/dpkg/status");
        assert!(err.reason.contains("no dpkg package"));
    }

    #[test]
    fn copyright_files() {
        let dep5 = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\nUpstream-Name: bash\n\nFiles: *\nCopyright: 1987-2022 Free Software Foundation, Inc.\nLicense: GPL-3+\n\nFiles: lib/sh/inet_aton.c\nCopyright: 1983, 1990, 1993 The Regents of the University of California.\nLicense: BSD-4-clause-UC\n\nFiles: debian/*\nLicense: GPL-3+\n\nLicense: GPL-3+\n This program is free software; you can redistribute it\n .\n On Debian systems, the complete text ...\n";
        assert_eq!(
            copyright_licenses(dep5.as_bytes()),
            ["GPL-3+", "BSD-4-clause-UC"]
        );
        let free_form = "This is Debian's prepackaged version of zlib.\nLicense: whatever\n";
        assert!(copyright_licenses(free_form.as_bytes()).is_empty());
        assert!(copyright_licenses(b"").is_empty());
        assert_eq!(
            copyright_package("usr/share/doc/bash/copyright"),
            Some("bash")
        );
        assert_eq!(copyright_package("/usr/share/doc/bash/changelog.gz"), None);
        assert_eq!(copyright_package("usr/share/doc/a/b/copyright"), None);
    }

    /// The packages found in this machine's own dpkg database are exactly
    /// those `dpkg-query -W` reports with their files on disk.
    #[test]
    fn host_database_matches_dpkg_query() {
        let admindir = std::path::Path::new("/var/lib/dpkg");
        let Ok(status) = std::fs::read(admindir.join("status")) else {
            eprintln!("SKIPPED host_database_matches_dpkg_query: no /var/lib/dpkg/status");
            return;
        };
        let Ok(out) = std::process::Command::new("dpkg-query")
            .arg("--admindir")
            .arg(admindir)
            .args(["-W", "-f", "${Package}\t${Version}\t${db:Status-Status}\n"])
            .output()
        else {
            eprintln!("SKIPPED host_database_matches_dpkg_query: no dpkg-query");
            return;
        };
        assert!(out.status.success());
        let mut expected: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                present(&format!("install ok {}", f.get(2)?))?;
                Some((f[0].to_string(), f[1].to_string()))
            })
            .collect();
        let mut warnings = Vec::new();
        let mut found: Vec<(String, String)> =
            parse_with_warnings("var/lib/dpkg/status", &status, &debian(), &mut warnings)
                .unwrap()
                .into_iter()
                .map(|p| (p.name, p.version))
                .collect();
        expected.sort();
        found.sort();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(!found.is_empty());
        assert_eq!(found, expected);
    }

    #[test]
    fn mutated_inputs_never_panic() {
        fuzz::mutations(STATUS.as_bytes(), 400, |bytes| {
            let _ = crate::ecosystems::packages(
                parse_with_warnings,
                "var/lib/dpkg/status",
                bytes,
                &debian(),
            );
            let _ = crate::ecosystems::packages(
                parse_with_warnings,
                "var/lib/dpkg/status.d/x",
                bytes,
                &debian(),
            );
            let _ = copyright_licenses(bytes);
        });
    }
}
