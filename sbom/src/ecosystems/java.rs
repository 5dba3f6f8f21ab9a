//! Java archives (`.jar`, `.war`, `.ear`, and the `.jpi`/`.hpi` plugin
//! jars), read from memory as zip files: every
//! `META-INF/maven/GROUP/ARTIFACT/pom.properties` gives a Maven package
//! `pkg:maven/GROUP/ARTIFACT@VERSION` (name `GROUP:ARTIFACT`), and archives
//! nested one level deep (Spring Boot `BOOT-INF/lib/*.jar`, `WEB-INF/lib`,
//! jars in an EAR) are read the same way.
//!
//! Not covered: archives without `pom.properties` (no guess from the
//! manifest or the file name), licenses (a `pom.properties` has none), and
//! nesting deeper than one level. Bounds: entries scanned per archive,
//! `pom.properties` size, nested archive size, count and total bytes.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek};

use crate::package::{normalize_location, props, Distro, Ecosystem, Package};
use crate::purl::PackageUrl;
use crate::ParseError;

/// Central directory entries looked at per archive.
const MAX_ENTRIES: usize = 200_000;
/// Largest `pom.properties` read.
const MAX_POM_PROPERTIES: u64 = 64 * 1024;
/// Largest nested archive read.
const MAX_NESTED_SIZE: u64 = 128 * 1024 * 1024;
/// Nested archives read per outer archive.
const MAX_NESTED_COUNT: usize = 5_000;
/// Total bytes of nested archives read per outer archive.
const MAX_NESTED_TOTAL: u64 = 1024 * 1024 * 1024;

/// Whether a file name looks like a Java archive this parser reads.
pub fn is_java_archive_path(path: &str) -> bool {
    let lower = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    [".jar", ".war", ".ear", ".jpi", ".hpi"]
        .iter()
        .any(|ext| lower.len() > ext.len() && lower.ends_with(ext))
}

/// Parses a Java archive; `pom.properties` files and nested archives that
/// cannot be read are skipped. It adds a warning for each skipped
/// `pom.properties` or nested archive. Bytes that are not a zip archive are
/// an error.
pub fn parse_with_warnings(
    path: &str,
    bytes: &[u8],
    _distro: &Distro,
    warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    parse_reader(path, Cursor::new(bytes), warnings)
}

/// [`parse_with_warnings`] on an archive in a file (the layer walker
/// spools large ones to disk): the zip reader seeks to the entries it
/// needs, so only those are read into memory.
pub fn parse_file(
    path: &str,
    file: &std::fs::File,
    warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    parse_reader(path, file, warnings)
}

fn parse_reader<R: Read + Seek>(
    path: &str,
    reader: R,
    warnings: &mut Vec<ParseError>,
) -> Result<Vec<Package>, ParseError> {
    let location = normalize_location(path);
    let mut out = Vec::new();
    let mut budget = MAX_NESTED_TOTAL;
    let mut nested_count = 0usize;
    scan_archive(
        path,
        reader,
        None,
        &location,
        &mut out,
        warnings,
        &mut budget,
        &mut nested_count,
    )?;
    // The same artifact can be described twice (shading); keep one.
    let mut seen = std::collections::HashSet::new();
    out.retain(|p: &Package| {
        seen.insert((
            p.purl.clone(),
            p.properties.get(props::NESTED_ARCHIVE).cloned(),
        ))
    });
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn scan_archive<R: Read + Seek>(
    path: &str,
    reader: R,
    nested: Option<&str>,
    location: &str,
    out: &mut Vec<Package>,
    warnings: &mut Vec<ParseError>,
    budget: &mut u64,
    nested_count: &mut usize,
) -> Result<(), ParseError> {
    let where_ = |inner: &str| match nested {
        Some(n) => format!("{n}!/{inner}"),
        None => inner.to_string(),
    };
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| {
        ParseError::new(
            path,
            format!(
                "{}not a readable zip archive: {e}",
                nested.map(|n| format!("{n}: ")).unwrap_or_default()
            ),
        )
    })?;
    let count = archive.len();
    if count > MAX_ENTRIES {
        warnings.push(ParseError::new(
            path,
            format!(
                "{}{count} entries, only the first {MAX_ENTRIES} were looked at",
                nested.map(|n| format!("{n}: ")).unwrap_or_default()
            ),
        ));
    }
    // Names first (no decompression), then read what matters.
    let mut poms = Vec::new();
    let mut archives = Vec::new();
    for i in 0..count.min(MAX_ENTRIES) {
        let Some(Ok(name)) = archive.name_for_index(i) else {
            continue;
        };
        if is_pom_properties(&name) {
            poms.push((i, name.into_owned()));
        } else if nested.is_none() && is_java_archive_path(&name) && !name.ends_with('/') {
            archives.push((i, name.into_owned()));
        }
    }
    for (i, name) in poms {
        let text = match read_entry(&mut archive, i, MAX_POM_PROPERTIES) {
            Ok(b) => b,
            Err(reason) => {
                warnings.push(ParseError::new(
                    path,
                    format!("{}: {reason}", where_(&name)),
                ));
                continue;
            }
        };
        let props = parse_properties(&String::from_utf8_lossy(&text));
        let get = |k: &str| props.get(k).map(|v| v.trim()).unwrap_or("");
        let (group, artifact, version) = (get("groupId"), get("artifactId"), get("version"));
        if group.is_empty() || artifact.is_empty() || version.is_empty() {
            warnings.push(ParseError::new(
                path,
                format!("{}: no groupId, artifactId or version", where_(&name)),
            ));
            continue;
        }
        let mut properties = BTreeMap::new();
        properties.insert(props::MAVEN_GROUP_ID.to_string(), group.to_string());
        properties.insert(props::MAVEN_ARTIFACT_ID.to_string(), artifact.to_string());
        properties.insert(props::POM_PROPERTIES.to_string(), name.clone());
        if let Some(n) = nested {
            properties.insert(props::NESTED_ARCHIVE.to_string(), n.to_string());
        }
        out.push(Package {
            ecosystem: Ecosystem::Maven,
            name: format!("{group}:{artifact}"),
            version: version.to_string(),
            purl: PackageUrl::new("maven", artifact)
                .with_namespace(group)
                .with_version(version)
                .to_string(),
            licenses: Vec::new(),
            location: location.to_string(),
            properties,
        });
    }
    for (i, name) in archives {
        if *nested_count >= MAX_NESTED_COUNT {
            warnings.push(ParseError::new(
                path,
                format!("more than {MAX_NESTED_COUNT} nested archives, the rest were skipped"),
            ));
            break;
        }
        *nested_count += 1;
        let limit = MAX_NESTED_SIZE.min(*budget);
        let inner = match read_entry(&mut archive, i, limit) {
            Ok(b) => b,
            Err(reason) => {
                warnings.push(ParseError::new(path, format!("{name}: {reason}")));
                continue;
            }
        };
        *budget = budget.saturating_sub(inner.len() as u64);
        if let Err(e) = scan_archive(
            path,
            Cursor::new(&inner[..]),
            Some(&name),
            location,
            out,
            warnings,
            budget,
            nested_count,
        ) {
            warnings.push(e);
        }
    }
    Ok(())
}

/// `META-INF/maven/<group>/<artifact>/pom.properties`.
fn is_pom_properties(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    matches!(parts.as_slice(), ["META-INF", "maven", g, a, "pom.properties"] if !g.is_empty() && !a.is_empty())
}

/// Reads entry `i` whole, refusing more than `limit` bytes (whatever the
/// archive claims its size is).
fn read_entry<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    i: usize,
    limit: u64,
) -> Result<Vec<u8>, String> {
    let entry = archive.by_index(i).map_err(|e| e.to_string())?;
    if entry.size() > limit {
        return Err(format!("larger than {limit} bytes, skipped"));
    }
    let mut buf = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read: {e}"))?;
    if buf.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes, skipped"));
    }
    Ok(buf)
}

/// Reads a Java `.properties` file: `key=value`, `key:value` or `key value`
/// lines, `#`/`!` comments, backslash line continuations and escapes
/// (`\t`, `\n`, `\uXXXX`, ...). The first occurrence of a key wins.
pub(crate) fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    let mut continuing = false;
    for raw in text.lines() {
        let line = if continuing {
            raw.trim_start()
        } else {
            let t = raw.trim_start();
            if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
                continue;
            }
            t
        };
        let trailing = line.len() - line.trim_end_matches('\\').len();
        if !trailing.is_multiple_of(2) {
            logical.push_str(&line[..line.len() - 1]);
            continuing = true;
            continue;
        }
        logical.push_str(line);
        continuing = false;
        let (k, v) = split_property(&logical);
        out.entry(k).or_insert(v);
        logical.clear();
    }
    if !logical.is_empty() {
        let (k, v) = split_property(&logical);
        out.entry(k).or_insert(v);
    }
    out
}

fn split_property(line: &str) -> (String, String) {
    let mut key = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    push_escape(&mut key, n, &mut chars);
                }
            }
            '=' | ':' => break,
            c if c.is_whitespace() => {
                // Whitespace ends the key; one `=` or `:` may follow it.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if matches!(chars.peek(), Some('=') | Some(':')) {
                    chars.next();
                }
                break;
            }
            c => key.push(c),
        }
    }
    while chars.peek().is_some_and(|c| c.is_whitespace()) {
        chars.next();
    }
    let mut value = String::new();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                push_escape(&mut value, n, &mut chars);
            }
        } else {
            value.push(c);
        }
    }
    (key, value)
}

fn push_escape(out: &mut String, c: char, rest: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match c {
        't' => out.push('\t'),
        'n' => out.push('\n'),
        'r' => out.push('\r'),
        'f' => out.push('\u{c}'),
        'u' => {
            let hex: String = rest.by_ref().take(4).collect();
            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                Some(ch) if hex.len() == 4 => out.push(ch),
                _ => out.push('\u{fffd}'),
            }
        }
        other => out.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecosystems::fuzz;
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    fn pom(group: &str, artifact: &str, version: &str) -> String {
        format!("#Generated by Maven\n#Tue Oct 10 10:10:10 UTC 2023\nartifactId={artifact}\ngroupId={group}\nversion={version}\n")
    }

    pub(crate) fn zip_of(entries: &[(&str, &[u8])], deflate: bool) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = SimpleFileOptions::default().compression_method(if deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        });
        for (name, data) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    fn boot_jar() -> Vec<u8> {
        let inner = zip_of(
            &[
                ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\n"),
                (
                    "META-INF/maven/org.slf4j/slf4j-api/pom.properties",
                    pom("org.slf4j", "slf4j-api", "2.0.9").as_bytes(),
                ),
            ],
            true,
        );
        let broken_inner = b"PK\x03\x04 not really a jar".to_vec();
        zip_of(
            &[
                ("META-INF/MANIFEST.MF", b"Manifest-Version: 1.0\nMain-Class: x\n"),
                (
                    "META-INF/maven/com.example/demo-app/pom.properties",
                    pom("com.example", "demo-app", "1.0.0-SNAPSHOT").as_bytes(),
                ),
                (
                    "META-INF/maven/com.fasterxml.jackson.core/jackson-core/pom.properties",
                    b"version = 2.15.2\ngroupId : com.fasterxml.jackson.core\nartifactId jackson-core\n",
                ),
                ("META-INF/maven/bad/bad/pom.properties", b"groupId=bad\n"),
                ("BOOT-INF/lib/slf4j-api-2.0.9.jar", &inner),
                ("BOOT-INF/lib/broken.jar", &broken_inner),
                ("BOOT-INF/classes/app.class", b"\xca\xfe\xba\xbe"),
            ],
            true,
        )
    }

    #[test]
    fn spring_boot_jar_with_nested_jars() {
        let mut warnings = Vec::new();
        let pkgs = parse_with_warnings(
            "app/app.jar",
            &boot_jar(),
            &Distro::default(),
            &mut warnings,
        )
        .unwrap();
        // Read from a file (as a spooled archive is), the same.
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, &boot_jar()).unwrap();
        let mut file_warnings = Vec::new();
        assert_eq!(
            parse_file("app/app.jar", &file, &mut file_warnings).unwrap(),
            pkgs
        );
        assert_eq!(file_warnings, warnings);
        let purls: Vec<_> = pkgs.iter().map(|p| p.purl.as_str()).collect();
        assert_eq!(
            purls,
            [
                "pkg:maven/com.example/demo-app@1.0.0-SNAPSHOT",
                "pkg:maven/com.fasterxml.jackson.core/jackson-core@2.15.2",
                "pkg:maven/org.slf4j/slf4j-api@2.0.9",
            ]
        );
        assert_eq!(pkgs[0].name, "com.example:demo-app");
        assert_eq!(pkgs[0].location, "/app/app.jar");
        assert_eq!(
            pkgs[0].properties[props::POM_PROPERTIES],
            "META-INF/maven/com.example/demo-app/pom.properties"
        );
        assert_eq!(
            pkgs[2].properties[props::NESTED_ARCHIVE],
            "BOOT-INF/lib/slf4j-api-2.0.9.jar"
        );
        assert_eq!(pkgs[2].location, "/app/app.jar");
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings.iter().any(|w| w.reason.contains("bad/bad")));
        assert!(warnings.iter().any(|w| w.reason.contains("broken.jar")));
    }

    #[test]
    fn stored_entries_and_not_a_zip() {
        let jar = zip_of(
            &[(
                "META-INF/maven/junit/junit/pom.properties",
                pom("junit", "junit", "4.13.2").as_bytes(),
            )],
            false,
        );
        let p = crate::ecosystems::packages(parse_with_warnings, "x.jar", &jar, &Distro::default())
            .unwrap();
        assert_eq!(p[0].purl, "pkg:maven/junit/junit@4.13.2");
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "x.jar",
            b"not a zip",
            &Distro::default()
        )
        .is_err());
        let empty = zip_of(&[], false);
        assert!(crate::ecosystems::packages(
            parse_with_warnings,
            "x.jar",
            &empty,
            &Distro::default()
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn oversized_pom_properties_are_skipped() {
        let mut big = pom("a", "b", "1").into_bytes();
        big.extend(std::iter::repeat_n(b'#', 70_000));
        let jar = zip_of(&[("META-INF/maven/a/b/pom.properties", &big)], true);
        let mut w = Vec::new();
        let p = parse_with_warnings("x.jar", &jar, &Distro::default(), &mut w).unwrap();
        assert!(p.is_empty());
        assert!(w[0].reason.contains("larger than"), "{w:?}");
    }

    #[test]
    fn properties_syntax() {
        let p = parse_properties(
            "# c\n! c\n  a = 1\nb:2\nc 3\nd=\\\n   ef\nk\\\n  ey\ne=\\u0041\\tx\\\\\nf\\ g=h\na=ignored\n",
        );
        assert_eq!(p["a"], "1");
        assert_eq!(p["b"], "2");
        assert_eq!(p["c"], "3");
        assert_eq!(p["d"], "ef");
        assert_eq!(p["key"], "");
        assert_eq!(p["e"], "A\tx\\");
        assert_eq!(p["f g"], "h");
        let p = parse_properties("x=\\u12\ny=trailing\\");
        assert_eq!(p["x"], "\u{fffd}");
        assert_eq!(p["y"], "trailing");
    }

    #[test]
    fn archive_names() {
        assert!(is_java_archive_path("opt/app/lib/x.JAR"));
        assert!(is_java_archive_path("a.war"));
        assert!(!is_java_archive_path("dir/.jar"));
        assert!(!is_java_archive_path("a.jar.sha1"));
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let jar = boot_jar();
        fuzz::mutations(&jar, 300, |bytes| {
            let _ = crate::ecosystems::packages(
                parse_with_warnings,
                "app.jar",
                bytes,
                &Distro::default(),
            );
        });
        let stored = zip_of(
            &[(
                "META-INF/maven/junit/junit/pom.properties",
                pom("junit", "junit", "4.13.2").as_bytes(),
            )],
            false,
        );
        fuzz::mutations(&stored, 300, |bytes| {
            let _ = crate::ecosystems::packages(
                parse_with_warnings,
                "x.jar",
                bytes,
                &Distro::default(),
            );
        });
        fuzz::mutations(pom("g", "a", "1").as_bytes(), 200, |bytes| {
            let _ = parse_properties(&String::from_utf8_lossy(bytes));
        });
    }
}
