//! npm packages: `package.json` files of installed packages. A file is a
//! package manifest only at `.../node_modules/NAME/package.json` or
//! `.../node_modules/@SCOPE/NAME/package.json` (so the application's own
//! manifest and the helper `package.json` files many packages carry in
//! subdirectories, such as `{"type":"module"}`, are not packages), and
//! only when it has a string `name` and `version`. Licenses: `license` as
//! an SPDX expression string or the legacy `{"type": ...}` object, else
//! the legacy `licenses` array (strings or objects).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::package::{
    dedup_licenses, normalize_location, relative_path, Distro, Ecosystem, Package,
};
use crate::purl::PackageUrl;
use crate::ParseError;

/// Whether `path` is where an installed package's manifest lives.
pub fn is_package_manifest_path(path: &str) -> bool {
    let segments: Vec<&str> = relative_path(path).split('/').collect();
    let Some(nm) = segments.iter().rposition(|s| *s == "node_modules") else {
        return false;
    };
    match &segments[nm + 1..] {
        [name, "package.json"] => {
            !name.is_empty() && !name.starts_with('@') && !name.starts_with('.')
        }
        [scope, name, "package.json"] => {
            scope.len() > 1 && scope.starts_with('@') && !name.is_empty() && !name.starts_with('.')
        }
        _ => false,
    }
}

/// Parses one `package.json`. Returns no package when the path is not an
/// installed package's manifest or it lacks a name or version; invalid JSON
/// is an error. One file holds one package, so there are no warnings.
pub fn parse_with_warnings(
    path: &str,
    bytes: &[u8],
    _distro: &Distro,
    _warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    if !is_package_manifest_path(path) {
        return Ok(Vec::new());
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let json: Value = serde_json::from_slice(bytes)
        .map_err(|e| ParseError::new(path, format!("invalid JSON: {e}")))?;
    let (Some(name), Some(version)) = (
        json.get("name").and_then(Value::as_str).map(str::trim),
        json.get("version").and_then(Value::as_str).map(str::trim),
    ) else {
        return Ok(Vec::new());
    };
    if name.is_empty() || version.is_empty() {
        return Ok(Vec::new());
    }
    let lower = name.to_lowercase();
    let purl = match lower.strip_prefix('@').and_then(|s| s.split_once('/')) {
        Some((scope, bare)) => PackageUrl::new("npm", bare).with_namespace(&format!("@{scope}")),
        None => PackageUrl::new("npm", &lower),
    }
    .with_version(version)
    .to_string();
    Ok(vec![Package {
        ecosystem: Ecosystem::Npm,
        name: name.to_string(),
        version: version.to_string(),
        purl,
        licenses: licenses(&json),
        location: normalize_location(path),
        properties: BTreeMap::new(),
    }])
}

fn license_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("type").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn licenses(json: &Value) -> Vec<String> {
    if let Some(l) = json.get("license").and_then(license_value) {
        return dedup_licenses([l]);
    }
    match json.get("licenses") {
        Some(Value::Array(items)) => dedup_licenses(items.iter().filter_map(license_value)),
        Some(other) => dedup_licenses(license_value(other)),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecosystems::fuzz;

    const EXPRESS: &str = r#"{
  "name": "express",
  "description": "Fast, unopinionated, minimalist web framework",
  "version": "4.18.2",
  "author": "TJ Holowaychuk <tj@vision-media.ca>",
  "license": "MIT",
  "repository": "expressjs/express",
  "dependencies": { "accepts": "~1.3.8", "array-flatten": "1.1.1" },
  "engines": { "node": ">= 0.10.0" }
}"#;

    fn d() -> Distro {
        Distro::default()
    }

    #[test]
    fn plain_and_scoped_packages() {
        let p = crate::ecosystems::packages(
            parse_with_warnings,
            "app/node_modules/express/package.json",
            EXPRESS.as_bytes(),
            &d(),
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].purl, "pkg:npm/express@4.18.2");
        assert_eq!(p[0].licenses, ["MIT"]);
        assert_eq!(p[0].location, "/app/node_modules/express/package.json");

        let scoped = r#"{"name":"@Babel/Core","version":"7.23.0","license":"MIT OR Apache-2.0"}"#;
        let p = crate::ecosystems::packages(
            parse_with_warnings,
            "usr/lib/node_modules/npm/node_modules/@babel/core/package.json",
            scoped.as_bytes(),
            &d(),
        )
        .unwrap();
        assert_eq!(p[0].name, "@Babel/Core");
        assert_eq!(p[0].purl, "pkg:npm/%40babel/core@7.23.0");
        assert_eq!(p[0].licenses, ["MIT OR Apache-2.0"]);
    }

    #[test]
    fn legacy_licenses() {
        let obj = r#"{"name":"a","version":"1.0.0","license":{"type":"ISC","url":"x"}}"#;
        let arr = r#"{"name":"b","version":"1.0.0","licenses":[{"type":"MIT"},{"type":"Apache-2.0"},"MIT"]}"#;
        let one = r#"{"name":"c","version":"1.0.0","licenses":{"type":"BSD"}}"#;
        let none = r#"{"name":"d","version":"1.0.0","license":42}"#;
        let lic = |s: &str| {
            crate::ecosystems::packages(
                parse_with_warnings,
                "node_modules/x/package.json",
                s.as_bytes(),
                &d(),
            )
            .unwrap()[0]
                .licenses
                .clone()
        };
        assert_eq!(lic(obj), ["ISC"]);
        assert_eq!(lic(arr), ["MIT", "Apache-2.0"]);
        assert_eq!(lic(one), ["BSD"]);
        assert!(lic(none).is_empty());
    }

    #[test]
    fn which_files_are_packages() {
        for path in [
            "node_modules/a/package.json",
            "/srv/node_modules/@s/a/package.json",
            "node_modules/.pnpm/a@1.0.0/node_modules/a/package.json",
            "node_modules/a/node_modules/b/package.json",
        ] {
            assert!(is_package_manifest_path(path), "{path}");
        }
        for path in [
            "package.json",
            "app/package.json",
            "node_modules/a/lib/package.json",
            "node_modules/@s/package.json",
            "node_modules/.bin/package.json",
            "node_modules/@/a/package.json",
            "node_modules/package.json",
        ] {
            assert!(!is_package_manifest_path(path), "{path}");
        }
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "app/package.json",
            EXPRESS.as_bytes(),
            &d()
        )
        .unwrap()
        .is_empty());
        let helper = r#"{"type":"module"}"#;
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "node_modules/x/package.json",
            helper.as_bytes(),
            &d()
        )
        .unwrap()
        .is_empty());
        let e = crate::ecosystems::packages(
            parse_with_warnings,
            "node_modules/x/package.json",
            b"{\"name\":",
            &d(),
        )
        .unwrap_err();
        assert!(e.reason.starts_with("invalid JSON"), "{e}");
        let bom = b"\xef\xbb\xbf{\"name\":\"x\",\"version\":\"1\"}";
        assert_eq!(
            crate::ecosystems::packages(
                parse_with_warnings,
                "node_modules/x/package.json",
                bom,
                &d()
            )
            .unwrap()
            .len(),
            1
        );
    }

    #[test]
    fn mutated_inputs_never_panic() {
        fuzz::mutations(EXPRESS.as_bytes(), 400, |bytes| {
            let _ = crate::ecosystems::packages(
                parse_with_warnings,
                "node_modules/express/package.json",
                bytes,
                &d(),
            );
        });
        let deep = "[".repeat(100_000);
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "node_modules/x/package.json",
            deep.as_bytes(),
            &d()
        )
        .is_err());
    }
}
