//! Alpine packages: `lib/apk/db/installed` (also `usr/lib/apk/db/installed`
//! where apk-tools keeps it under `/usr`). Records are blank-line separated
//! `X:value` lines; used are `P` name, `V` version, `A` arch, `L` license
//! (kept as written, usually an SPDX expression), `o` origin (the source
//! package), `m` maintainer and `c` aports commit. File lists (`F`, `R`,
//! `Z`, ...) are ignored.

use std::collections::BTreeMap;

use crate::package::{normalize_location, os_package_purl, props, Distro, Ecosystem, Package};
use crate::ParseError;

#[derive(Default)]
struct Record<'a> {
    line: usize,
    fields: BTreeMap<u8, &'a str>,
}

/// Parses an apk installed database; records without a name or version are
/// skipped. It adds a warning for every record it had to skip. Text without
/// any `X:value` line is an error.
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
    let mut records = Vec::new();
    let mut current = Record::default();
    let mut bad_lines = 0usize;
    let mut good_lines = 0usize;
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                records.push(std::mem::take(&mut current));
            }
            continue;
        }
        let b = line.as_bytes();
        if b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphanumeric() {
            good_lines += 1;
            if current.fields.is_empty() {
                current.line = i + 1;
            }
            // The first occurrence wins (file lists repeat keys such as `R`).
            current.fields.entry(b[0]).or_insert(&line[2..]);
        } else {
            bad_lines += 1;
        }
    }
    if !current.fields.is_empty() {
        records.push(current);
    }
    if good_lines == 0 {
        return Err(ParseError::new(path, "no apk database record found"));
    }
    if bad_lines > 0 {
        warnings.push(ParseError::new(
            path,
            format!("{bad_lines} line(s) are not KEY:value lines"),
        ));
    }
    let location = normalize_location(path);
    let mut out = Vec::new();
    for rec in &records {
        let get = |k: u8| rec.fields.get(&k).map(|v| v.trim()).unwrap_or("");
        let (name, version) = (get(b'P'), get(b'V'));
        if name.is_empty() || version.is_empty() {
            warnings.push(ParseError::new(
                path,
                format!("record at line {}: no package name or version", rec.line),
            ));
            continue;
        }
        let mut properties = BTreeMap::new();
        for (key, field) in [
            (props::ARCH, b'A'),
            (props::SOURCE, b'o'),
            (props::MAINTAINER, b'm'),
            (props::APK_COMMIT, b'c'),
        ] {
            let v = get(field);
            if !v.is_empty() {
                properties.insert(key.to_string(), v.to_string());
            }
        }
        let license = get(b'L');
        out.push(Package {
            ecosystem: Ecosystem::Apk,
            name: name.to_string(),
            version: version.to_string(),
            purl: os_package_purl(Ecosystem::Apk, name, version, &properties, distro)
                .unwrap_or_default(),
            licenses: if license.is_empty() {
                Vec::new()
            } else {
                vec![license.to_string()]
            },
            location: location.clone(),
            properties,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecosystems::fuzz;

    const INSTALLED: &str = "\
C:Q1pCbEhsU6NNuz4V6k5WhB4NZwDqg=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407494
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1701358880
c:a2f85f1e4b4f15ab8d5e8a5bb3c6dcd0ba8b7ed4
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1Zmxd8jYUmRaSSJlGdHfIeNNvNmM=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1o8tHKrWUWX9rTBkI1t4ghNh1v5Q=
P:busybox
V:1.36.1-r15
A:x86_64
S:505359
I:946176
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1700496236
c:5ff0b0f6c9f62283d15f1cf3d1d9e2e73ad2fb6b
D:so:libc.musl-x86_64.so.1
F:bin
R:busybox

C:Q1xxxxxxxxxxxxxxxxxxxxxxxxxxx=
V:0.1-r0
A:x86_64
";

    #[test]
    fn installed_database() {
        let mut warnings = Vec::new();
        let pkgs = parse_with_warnings(
            "lib/apk/db/installed",
            INSTALLED.as_bytes(),
            &Distro::new("alpine", Some("3.19")),
            &mut warnings,
        )
        .unwrap();
        assert_eq!(pkgs.len(), 2);
        let musl = &pkgs[0];
        assert_eq!(musl.name, "musl");
        assert_eq!(musl.version, "1.2.4_git20230717-r4");
        assert_eq!(
            musl.purl,
            "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19"
        );
        assert_eq!(musl.licenses, ["MIT"]);
        assert_eq!(musl.location, "/lib/apk/db/installed");
        assert_eq!(musl.properties[props::SOURCE], "musl");
        assert_eq!(
            musl.properties[props::MAINTAINER],
            "Timo Teräs <timo.teras@iki.fi>"
        );
        assert_eq!(
            musl.properties[props::APK_COMMIT],
            "a2f85f1e4b4f15ab8d5e8a5bb3c6dcd0ba8b7ed4"
        );
        assert_eq!(pkgs[1].licenses, ["GPL-2.0-only"]);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].reason.contains("line 39"), "{warnings:?}");
    }

    #[test]
    fn wolfi_and_unknown_distro() {
        let p = crate::ecosystems::packages(
            parse_with_warnings,
            "lib/apk/db/installed",
            INSTALLED.as_bytes(),
            &Distro::new("wolfi", Some("20230201")),
        )
        .unwrap();
        assert!(p[0].purl.starts_with("pkg:apk/wolfi/musl@"));
        let p = crate::ecosystems::packages(
            parse_with_warnings,
            "lib/apk/db/installed",
            INSTALLED.as_bytes(),
            &Distro::default(),
        )
        .unwrap();
        assert_eq!(p[1].purl, "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64");
    }

    #[test]
    fn garbage_is_an_error() {
        let d = Distro::default();
        assert!(
            crate::ecosystems::packages(parse_with_warnings, "lib/apk/db/installed", b"", &d)
                .unwrap()
                .is_empty()
        );
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "lib/apk/db/installed",
            b"\x7fELF\x02\x01",
            &d
        )
        .is_err());
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let d = Distro::new("alpine", Some("3.19"));
        fuzz::mutations(INSTALLED.as_bytes(), 400, |bytes| {
            let _ =
                crate::ecosystems::packages(parse_with_warnings, "lib/apk/db/installed", bytes, &d);
        });
    }
}
