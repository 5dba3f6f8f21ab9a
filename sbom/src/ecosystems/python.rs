//! Python distributions: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` and
//! `*.egg-info` files (the single-file form distutils wrote). The header
//! block gives `Name`, `Version` and the licenses: `License-Expression`
//! (PEP 639) when present; otherwise a one-line `License` field (a
//! multi-line one is license text, not a name, and is left out, as is
//! `UNKNOWN`); otherwise the names of `License ::` classifiers
//! (`License :: OSI Approved :: MIT License` gives `MIT License`).
//! The purl name is normalised per PEP 503.

use std::collections::BTreeMap;

use crate::package::{dedup_licenses, normalize_location, Distro, Ecosystem, Package};
use crate::purl::PackageUrl;
use crate::text::rfc822_headers;
use crate::ParseError;

/// A `License` field longer than this is license text, not a name.
const MAX_LICENSE_NAME: usize = 200;

/// Parses one metadata file into its distribution. There are no per-record
/// warnings (one file, one distribution).
pub fn parse_with_warnings(
    path: &str,
    bytes: &[u8],
    _distro: &Distro,
    _warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let (headers, _) = rfc822_headers(text);
    let name = headers.get("Name").unwrap_or("").trim();
    let version = headers.get("Version").unwrap_or("").trim();
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(ParseError::new(
            path,
            "no usable Name field in Python metadata",
        ));
    }
    if version.is_empty() || version.contains(char::is_whitespace) {
        return Err(ParseError::new(
            path,
            format!("{name}: no usable Version field in Python metadata"),
        ));
    }
    let licenses = if let Some(expr) = headers
        .get("License-Expression")
        .filter(|e| !e.trim().is_empty())
    {
        vec![expr.trim().to_string()]
    } else {
        let license = headers.get("License").unwrap_or("").trim();
        if !license.is_empty()
            && !license.contains('\n')
            && license.len() <= MAX_LICENSE_NAME
            && !license.eq_ignore_ascii_case("UNKNOWN")
        {
            vec![license.to_string()]
        } else {
            dedup_licenses(headers.all("Classifier").filter_map(classifier_license))
        }
    };
    let purl = PackageUrl::new("pypi", &normalize_name(name))
        .with_version(version)
        .to_string();
    Ok(vec![Package {
        ecosystem: Ecosystem::Python,
        name: name.to_string(),
        version: version.to_string(),
        purl,
        licenses,
        location: normalize_location(path),
        properties: BTreeMap::new(),
    }])
}

/// `License :: OSI Approved :: MIT License` → `MIT License`; the bare
/// `License :: OSI Approved` says nothing and gives `None`.
fn classifier_license(classifier: &str) -> Option<String> {
    let parts: Vec<&str> = classifier.split("::").map(str::trim).collect();
    match parts.as_slice() {
        ["License", "OSI Approved"] => None,
        ["License", .., last] if !last.is_empty() => Some(last.to_string()),
        _ => None,
    }
}

/// PEP 503 normalisation: lowercase, runs of `-`, `_` and `.` become one `-`.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.extend(c.to_lowercase());
            in_run = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecosystems::fuzz;

    const METADATA: &str = "\
Metadata-Version: 2.1
Name: Jinja2
Version: 3.1.2
Summary: A very fast and expressive template engine.
Home-page: https://palletsprojects.com/p/jinja/
Maintainer: Pallets
Maintainer-email: contact@palletsprojects.com
License: BSD-3-Clause
Classifier: Development Status :: 5 - Production/Stable
Classifier: License :: OSI Approved :: BSD License
Classifier: Programming Language :: Python
Requires-Python: >=3.7
Description-Content-Type: text/x-rst
License-File: LICENSE.rst
Requires-Dist: MarkupSafe (>=2.0)

Jinja
=====

Name: not-a-header
";

    fn d() -> Distro {
        Distro::default()
    }

    #[test]
    fn dist_info_metadata() {
        let p = crate::ecosystems::packages(
            parse_with_warnings,
            "usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA",
            METADATA.as_bytes(),
            &d(),
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].name, "Jinja2");
        assert_eq!(p[0].version, "3.1.2");
        assert_eq!(p[0].purl, "pkg:pypi/jinja2@3.1.2");
        assert_eq!(p[0].licenses, ["BSD-3-Clause"]);
        assert_eq!(
            p[0].location,
            "/usr/lib/python3/dist-packages/Jinja2-3.1.2.dist-info/METADATA"
        );
    }

    #[test]
    fn license_expression_text_and_classifiers() {
        let pep639 = "Metadata-Version: 2.4\nName: my_Pkg.name\nVersion: 1.0.post1\nLicense-Expression: MIT OR Apache-2.0\nLicense: ignored\n";
        let p = crate::ecosystems::packages(
            parse_with_warnings,
            "x.dist-info/METADATA",
            pep639.as_bytes(),
            &d(),
        )
        .unwrap();
        assert_eq!(p[0].purl, "pkg:pypi/my-pkg-name@1.0.post1");
        assert_eq!(p[0].licenses, ["MIT OR Apache-2.0"]);

        let text = "Metadata-Version: 1.1\nName: six\nVersion: 1.16.0\nLicense: Copyright (c) 2010-2020 Benjamin Peterson\n        \n        Permission is hereby granted, free of charge\nClassifier: License :: OSI Approved\nClassifier: License :: OSI Approved :: MIT License\nClassifier: License :: Public Domain\nClassifier: License :: OSI Approved :: MIT License\n";
        let p = crate::ecosystems::packages(
            parse_with_warnings,
            "six-1.16.0.egg-info/PKG-INFO",
            text.as_bytes(),
            &d(),
        )
        .unwrap();
        assert_eq!(p[0].licenses, ["MIT License", "Public Domain"]);

        let unknown = "Metadata-Version: 1.0\r\nName: old\r\nVersion: 0.1\r\nLicense: UNKNOWN\r\n";
        let p = crate::ecosystems::packages(
            parse_with_warnings,
            "usr/lib/python2.7/dist-packages/old-0.1.egg-info",
            unknown.as_bytes(),
            &d(),
        )
        .unwrap();
        assert!(p[0].licenses.is_empty());
        assert_eq!(p[0].purl, "pkg:pypi/old@0.1");
    }

    #[test]
    fn missing_fields_are_errors() {
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "a.dist-info/METADATA",
            b"Name: x\n",
            &d()
        )
        .is_err());
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "a.dist-info/METADATA",
            b"Version: 1\n",
            &d()
        )
        .is_err());
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "a.dist-info/METADATA",
            b"",
            &d()
        )
        .is_err());
        let e = crate::ecosystems::packages(
            parse_with_warnings,
            "a.dist-info/METADATA",
            b"\n\nName: x\nVersion: 1\n",
            &d(),
        )
        .unwrap_err();
        assert_eq!(e.path, "a.dist-info/METADATA");
    }

    #[test]
    fn pep503() {
        assert_eq!(normalize_name("Friendly-Bard"), "friendly-bard");
        assert_eq!(normalize_name("FRIENDLY._-BARD"), "friendly-bard");
        assert_eq!(normalize_name("zope.interface"), "zope-interface");
    }

    #[test]
    fn mutated_inputs_never_panic() {
        fuzz::mutations(METADATA.as_bytes(), 400, |bytes| {
            let _ = crate::ecosystems::packages(
                parse_with_warnings,
                "a.dist-info/METADATA",
                bytes,
                &d(),
            );
        });
    }
}
