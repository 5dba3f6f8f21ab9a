//! What every parser produces: [`Package`]s of an [`Ecosystem`], with purls
//! qualified by the image's [`Distro`].

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::purl::PackageUrl;

/// The package ecosystems the parsers know, each with its purl type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    /// Debian and Ubuntu packages (dpkg); purl type `deb`.
    Deb,
    /// Alpine packages (apk); purl type `apk`.
    Apk,
    /// RPM packages (Fedora, RHEL and friends, SUSE); purl type `rpm`.
    Rpm,
    /// Python distributions; purl type `pypi`.
    Python,
    /// npm packages; purl type `npm`.
    Npm,
    /// Go modules compiled into a binary; purl type `golang`.
    Golang,
    /// Rust crates compiled into a binary (cargo-auditable); purl type `cargo`.
    Cargo,
    /// Java artifacts found in archives; purl type `maven`.
    Maven,
}

impl Ecosystem {
    /// Every ecosystem, in declaration order (handy for summaries).
    pub const ALL: [Ecosystem; 8] = [
        Ecosystem::Deb,
        Ecosystem::Apk,
        Ecosystem::Rpm,
        Ecosystem::Python,
        Ecosystem::Npm,
        Ecosystem::Golang,
        Ecosystem::Cargo,
        Ecosystem::Maven,
    ];

    /// The purl type: `deb`, `apk`, `rpm`, `pypi`, `npm`, `golang`, `cargo`, `maven`.
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
            Ecosystem::Rpm => "rpm",
            Ecosystem::Python => "pypi",
            Ecosystem::Npm => "npm",
            Ecosystem::Golang => "golang",
            Ecosystem::Cargo => "cargo",
            Ecosystem::Maven => "maven",
        }
    }

    /// A short lowercase name for people: `deb`, `apk`, `rpm`, `python`,
    /// `npm`, `golang`, `cargo`, `maven` (also the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Ecosystem::Python => "python",
            other => other.purl_type(),
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One package found in an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    /// Which ecosystem it belongs to.
    pub ecosystem: Ecosystem,
    /// The name as declared (a Go module path, an npm name with its scope,
    /// `groupId:artifactId` for Maven).
    pub name: String,
    /// The version as declared (dpkg: with its epoch, `1:2.3-4`; rpm:
    /// `VERSION-RELEASE`, the epoch in [`props::EPOCH`]).
    pub version: String,
    /// The package URL, canonical form.
    pub purl: String,
    /// Licenses as declared (SPDX ids or expressions, or whatever the
    /// package says), in the order found, without duplicates.
    pub licenses: Vec<String>,
    /// The file inside the image it was read from, as an absolute path
    /// (`/var/lib/dpkg/status`); see [`normalize_location`].
    pub location: String,
    /// Extra facts, keyed by the names in [`props`].
    pub properties: BTreeMap<String, String>,
}

/// Keys of [`Package::properties`].
pub mod props {
    /// Architecture (`amd64`, `x86_64`, `noarch`).
    pub const ARCH: &str = "arch";
    /// Source package name (dpkg `Source`, apk origin, rpm source rpm's name).
    pub const SOURCE: &str = "source";
    /// Source package version, when it differs from or is given beside the binary's.
    pub const SOURCE_VERSION: &str = "source_version";
    /// Maintainer or packager.
    pub const MAINTAINER: &str = "maintainer";
    /// dpkg status when it is not plain `install ok installed`.
    pub const DPKG_STATUS: &str = "dpkg_status";
    /// rpm epoch.
    pub const EPOCH: &str = "epoch";
    /// rpm source rpm file name (`bash-5.2.26-3.fc40.src.rpm`).
    pub const SOURCE_RPM: &str = "source_rpm";
    /// rpm vendor.
    pub const VENDOR: &str = "vendor";
    /// apk commit of the aports tree the package was built from.
    pub const APK_COMMIT: &str = "apk_commit";
    /// Go toolchain that built the binary (`go1.22.1`).
    pub const GO_TOOLCHAIN: &str = "go_toolchain";
    /// `true` on the main module of a Go binary.
    pub const GO_MAIN: &str = "go_main";
    /// Go module checksum (`h1:...`).
    pub const GO_SUM: &str = "go_sum";
    /// `path@version` of the module a Go `replace` directive replaced.
    pub const GO_REPLACES: &str = "go_replaces";
    /// Local directory a Go module was replaced with (no version of its own).
    pub const GO_REPLACED_BY_DIR: &str = "go_replaced_by_dir";
    /// A Go build setting of the main module, `go_build:KEY` (`go_build:GOOS`, `go_build:vcs.revision`).
    pub const GO_BUILD_PREFIX: &str = "go_build:";
    /// cargo-auditable source kind (`crates.io`, `local`, `git`, `registry`).
    pub const CARGO_SOURCE: &str = "cargo_source";
    /// cargo-auditable dependency kind when not `runtime` (`build`).
    pub const CARGO_KIND: &str = "cargo_kind";
    /// `true` on the crate the binary was built from.
    pub const CARGO_ROOT: &str = "cargo_root";
    /// Maven groupId.
    pub const MAVEN_GROUP_ID: &str = "maven_group_id";
    /// Maven artifactId.
    pub const MAVEN_ARTIFACT_ID: &str = "maven_artifact_id";
    /// Path of the `pom.properties` inside the archive.
    pub const POM_PROPERTIES: &str = "pom_properties";
    /// Path of the nested archive (`BOOT-INF/lib/x.jar`) the package was in.
    pub const NESTED_ARCHIVE: &str = "nested_archive";
}

/// The distribution an image is built from, as its os-release says; it
/// qualifies the purls of OS packages (`distro=debian-12`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Distro {
    /// `ID` of os-release (`debian`, `ubuntu`, `alpine`, `fedora`); empty when unknown.
    pub id: String,
    /// `VERSION_ID` of os-release (`12`, `3.19.1`, `40`), if given.
    pub version_id: Option<String>,
}

/// Where os-release lives, in the order to prefer (paths inside the image,
/// without a leading `/`).
pub const OS_RELEASE_PATHS: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

impl Distro {
    /// A distro from its id and version id.
    pub fn new(id: &str, version_id: Option<&str>) -> Self {
        Distro {
            id: id.to_string(),
            version_id: version_id.map(str::to_string),
        }
    }

    /// The `distro` purl qualifier: `ID-VERSION_ID`, or `ID` alone without
    /// a version; `None` when the id is unknown.
    pub fn qualifier(&self) -> Option<String> {
        if self.id.is_empty() {
            return None;
        }
        Some(match &self.version_id {
            Some(v) if !v.is_empty() => format!("{}-{}", self.id, v),
            _ => self.id.clone(),
        })
    }
}

/// Reads an os-release file (`KEY=value` lines, values optionally quoted
/// shell-style). `None` when it has no `ID`. The id is lowercased.
pub fn parse_os_release(bytes: &[u8]) -> Option<Distro> {
    let text = String::from_utf8_lossy(bytes);
    let mut id = None;
    let mut version_id = None;
    for line in text.lines().take(10_000) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = unquote_shell(value.trim());
        match key.trim() {
            "ID" if !value.is_empty() => id = Some(value.to_ascii_lowercase()),
            "VERSION_ID" if !value.is_empty() => version_id = Some(value),
            _ => {}
        }
    }
    id.map(|id| Distro { id, version_id })
}

/// Undoes the quoting os-release allows: `"..."` with backslash escapes,
/// `'...'` literally, or a bare word.
fn unquote_shell(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    match value.chars().next() {
        Some('"') => {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => {
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                    }
                    c => out.push(c),
                }
            }
        }
        Some('\'') => {
            chars.next();
            out.extend(chars.take_while(|&c| c != '\''));
        }
        _ => out.extend(chars.take_while(|c| !c.is_whitespace())),
    }
    out
}

/// The location recorded for a file: its path inside the image made
/// absolute (`./var/lib/dpkg/status` and `var/lib/dpkg/status` both give
/// `/var/lib/dpkg/status`).
pub fn normalize_location(path: &str) -> String {
    format!("/{}", relative_path(path))
}

/// `path` without leading `./` and `/`.
pub(crate) fn relative_path(path: &str) -> &str {
    let mut p = path;
    loop {
        if let Some(rest) = p.strip_prefix("./") {
            p = rest;
        } else if let Some(rest) = p.strip_prefix('/') {
            p = rest;
        } else {
            return p;
        }
    }
}

/// Licenses without empty or repeated entries, order kept.
pub(crate) fn dedup_licenses(licenses: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in licenses {
        let l = l.trim();
        if !l.is_empty() && !out.iter().any(|o| o == l) {
            out.push(l.to_string());
        }
    }
    out
}

/// The purl of an OS package: `pkg:TYPE/NAMESPACE/NAME@VERSION` with the
/// `distro` qualifier and `extra` ones. The namespace is the distro id,
/// or `default_ns` when it is unknown.
fn os_purl(
    ty: &str,
    distro: &Distro,
    default_ns: &str,
    name: &str,
    version: &str,
    extra: &[(&str, &str)],
) -> String {
    let ns = if distro.id.is_empty() {
        default_ns
    } else {
        &distro.id
    };
    let mut p = PackageUrl::new(ty, name)
        .with_namespace(&ns.to_ascii_lowercase())
        .with_version(version);
    if let Some(q) = distro.qualifier() {
        p = p.with_qualifier("distro", &q);
    }
    for (k, v) in extra {
        p = p.with_qualifier(k, v);
    }
    p.to_string()
}

impl Package {
    /// Rebuilds the purl of an OS package (deb, apk, rpm) for `distro`,
    /// from its name, version and properties; other ecosystems are left
    /// as they are. For a walker that meets os-release only after a
    /// package database, or learns the distro from another layer: parse
    /// with [`Distro::default()`], then set it here.
    pub fn set_distro(&mut self, distro: &Distro) {
        if let Some(purl) = os_package_purl(
            self.ecosystem,
            &self.name,
            &self.version,
            &self.properties,
            distro,
        ) {
            self.purl = purl;
        }
    }
}

/// The purl of an OS package from its parts: `deb` and `apk` names are
/// lowercased, the namespace is the distro id (`debian`, `alpine`, or none
/// for rpm when unknown), qualifiers `arch`, `distro` and, for rpm, `epoch`.
/// `None` for the other ecosystems.
pub(crate) fn os_package_purl(
    ecosystem: Ecosystem,
    name: &str,
    version: &str,
    properties: &BTreeMap<String, String>,
    distro: &Distro,
) -> Option<String> {
    let get = |k: &str| properties.get(k).map(String::as_str).unwrap_or("");
    let arch = get(props::ARCH);
    match ecosystem {
        Ecosystem::Deb => Some(os_purl(
            "deb",
            distro,
            "debian",
            &name.to_ascii_lowercase(),
            version,
            &[("arch", arch)],
        )),
        Ecosystem::Apk => Some(os_purl(
            "apk",
            distro,
            "alpine",
            &name.to_ascii_lowercase(),
            version,
            &[("arch", arch)],
        )),
        Ecosystem::Rpm => Some(os_purl(
            "rpm",
            distro,
            "",
            name,
            version,
            &[("arch", arch), ("epoch", get(props::EPOCH))],
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_variants() {
        let debian = b"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
        assert_eq!(
            parse_os_release(debian),
            Some(Distro::new("debian", Some("12")))
        );
        let alpine = b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n";
        assert_eq!(
            parse_os_release(alpine),
            Some(Distro::new("alpine", Some("3.19.1")))
        );
        let quoted = b"# comment\nID='Fedora'\nVERSION_ID=\"4\\\"0\"\n";
        assert_eq!(
            parse_os_release(quoted),
            Some(Distro::new("fedora", Some("4\"0")))
        );
        let sid = b"ID=debian\nPRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\n";
        let d = parse_os_release(sid).unwrap();
        assert_eq!(d.qualifier().as_deref(), Some("debian"));
        assert_eq!(parse_os_release(b"NAME=x\n"), None);
        assert_eq!(parse_os_release(b"\xff\xfe\x00ID"), None);
        assert_eq!(Distro::default().qualifier(), None);
    }

    #[test]
    fn locations_are_absolute() {
        assert_eq!(
            normalize_location("var/lib/dpkg/status"),
            "/var/lib/dpkg/status"
        );
        assert_eq!(
            normalize_location("./var/lib/dpkg/status"),
            "/var/lib/dpkg/status"
        );
        assert_eq!(normalize_location("/.//x"), "/x");
    }

    #[test]
    fn set_distro_requalifies_os_packages_only() {
        let mut props = BTreeMap::new();
        props.insert(props::ARCH.to_string(), "x86_64".to_string());
        props.insert(props::EPOCH.to_string(), "1".to_string());
        let mut rpm = Package {
            ecosystem: Ecosystem::Rpm,
            name: "openssl-libs".into(),
            version: "3.2.1-2.fc40".into(),
            purl: String::new(),
            licenses: vec![],
            location: "/var/lib/rpm/rpmdb.sqlite".into(),
            properties: props,
        };
        rpm.set_distro(&Distro::new("fedora", Some("40")));
        assert_eq!(
            rpm.purl,
            "pkg:rpm/fedora/openssl-libs@3.2.1-2.fc40?arch=x86_64&distro=fedora-40&epoch=1"
        );
        let mut npm = Package {
            ecosystem: Ecosystem::Npm,
            purl: "pkg:npm/x@1".into(),
            ..rpm.clone()
        };
        npm.set_distro(&Distro::new("debian", None));
        assert_eq!(npm.purl, "pkg:npm/x@1");
    }

    #[test]
    fn ecosystem_names() {
        assert_eq!(Ecosystem::Python.purl_type(), "pypi");
        assert_eq!(Ecosystem::Python.to_string(), "python");
        assert_eq!(
            serde_json::to_string(&Ecosystem::Golang).unwrap(),
            "\"golang\""
        );
        let types: Vec<_> = Ecosystem::ALL.iter().map(|e| e.purl_type()).collect();
        assert_eq!(
            types,
            ["deb", "apk", "rpm", "pypi", "npm", "golang", "cargo", "maven"]
        );
    }
}
