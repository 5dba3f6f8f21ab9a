//! Package URLs (purl), printed in the canonical form of the purl
//! specification (ECMA-427): every component percent-encoded except the
//! unreserved characters `A-Z a-z 0-9 . - _ ~` and the colon, namespace and
//! subpath segments encoded one by one, qualifier keys lowercased and
//! sorted, empty qualifier values left out.
//!
//! Type-specific normalisation (lowercasing a deb name, PEP 503 for PyPI,
//! and so on) is the caller's business: [`PackageUrl`] prints what it is
//! given.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

/// A package URL's parts; [`fmt::Display`] prints the canonical string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackageUrl {
    /// The package type (`deb`, `npm`, ...); printed lowercased.
    pub ty: String,
    /// Namespace segments, printed separated by `/`; empty ones are skipped.
    pub namespace: Vec<String>,
    /// The package name.
    pub name: String,
    /// The version, if any.
    pub version: Option<String>,
    /// Qualifiers; keys are printed lowercased and sorted.
    pub qualifiers: BTreeMap<String, String>,
    /// Subpath segments, printed separated by `/`; empty, `.` and `..` are skipped.
    pub subpath: Vec<String>,
}

impl PackageUrl {
    /// A package URL with a type and a name and nothing else.
    pub fn new(ty: &str, name: &str) -> Self {
        PackageUrl {
            ty: ty.to_string(),
            name: name.to_string(),
            ..Default::default()
        }
    }

    /// Sets the namespace from a `/`-separated string (each segment is
    /// encoded separately, so `/` stays a separator).
    pub fn with_namespace(mut self, namespace: &str) -> Self {
        self.namespace = namespace.split('/').map(str::to_string).collect();
        self
    }

    /// Sets the version; an empty version means none.
    pub fn with_version(mut self, version: &str) -> Self {
        self.version = (!version.is_empty()).then(|| version.to_string());
        self
    }

    /// Adds a qualifier; an empty value is left out, as the specification asks.
    pub fn with_qualifier(mut self, key: &str, value: &str) -> Self {
        if !value.is_empty() {
            self.qualifiers
                .insert(key.to_ascii_lowercase(), value.to_string());
        }
        self
    }
}

/// Appends `s` percent-encoded: unreserved characters and `:` stay, every
/// other byte of its UTF-8 form becomes `%XX` (uppercase hex).
pub fn encode_component(out: &mut String, s: &str) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

impl fmt::Display for PackageUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::from("pkg:");
        out.push_str(&self.ty.to_ascii_lowercase());
        for segment in self.namespace.iter().filter(|s| !s.is_empty()) {
            out.push('/');
            encode_component(&mut out, segment);
        }
        out.push('/');
        encode_component(&mut out, &self.name);
        if let Some(version) = &self.version {
            out.push('@');
            encode_component(&mut out, version);
        }
        let mut first = true;
        for (key, value) in &self.qualifiers {
            if value.is_empty() {
                continue;
            }
            out.push(if first { '?' } else { '&' });
            first = false;
            encode_component(&mut out, key);
            out.push('=');
            encode_component(&mut out, value);
        }
        let mut first = true;
        for segment in self
            .subpath
            .iter()
            .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        {
            out.push(if first { '#' } else { '/' });
            first = false;
            encode_component(&mut out, segment);
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_examples_from_the_specification() {
        let p = PackageUrl::new("deb", "curl")
            .with_namespace("debian")
            .with_version("7.50.3-1")
            .with_qualifier("arch", "i386")
            .with_qualifier("distro", "jessie");
        assert_eq!(
            p.to_string(),
            "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie"
        );
        let p = PackageUrl::new("npm", "core")
            .with_namespace("@angular")
            .with_version("16.0.0");
        assert_eq!(p.to_string(), "pkg:npm/%40angular/core@16.0.0");
        let p = PackageUrl::new("golang", "context")
            .with_namespace("github.com/gorilla")
            .with_version("v1.1.1+incompatible");
        assert_eq!(
            p.to_string(),
            "pkg:golang/github.com/gorilla/context@v1.1.1%2Bincompatible"
        );
        let p = PackageUrl::new("maven", "batik-anim")
            .with_namespace("org.apache.xmlgraphics")
            .with_version("1.9.1");
        assert_eq!(
            p.to_string(),
            "pkg:maven/org.apache.xmlgraphics/batik-anim@1.9.1"
        );
    }

    #[test]
    fn qualifiers_sorted_lowercased_empty_dropped_colon_kept() {
        let p = PackageUrl::new("rpm", "bash")
            .with_namespace("fedora")
            .with_version("1:5.2.26-3.fc40")
            .with_qualifier("Epoch", "1")
            .with_qualifier("distro", "fedora-40")
            .with_qualifier("arch", "x86_64")
            .with_qualifier("empty", "");
        assert_eq!(
            p.to_string(),
            "pkg:rpm/fedora/bash@1:5.2.26-3.fc40?arch=x86_64&distro=fedora-40&epoch=1"
        );
    }

    #[test]
    fn reserved_and_non_ascii_characters_are_encoded() {
        let mut out = String::new();
        encode_component(&mut out, "a b/c?d#e@f&g=h%i+j é");
        assert_eq!(out, "a%20b%2Fc%3Fd%23e%40f%26g%3Dh%25i%2Bj%20%C3%A9");
        let mut p = PackageUrl::new("generic", "x");
        p.subpath = vec!["..".into(), "lib".into(), "".into(), "a b".into()];
        assert_eq!(p.to_string(), "pkg:generic/x#lib/a%20b");
    }
}
