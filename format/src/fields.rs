//! Character and length rules for the strings of `bundle.json` that are
//! not digests or enumerations (docs/format.md §5.1, "Strings"). The reader
//! refuses a bundle that breaks one ([`crate::BundleDescriptor::validate`]);
//! the bundler checks the same rules where the value comes from, so that
//! its error can name the manifest field or source file.
//!
//! Even strings that pass may hold characters a terminal acts on (a
//! description may hold line feeds): whoever shows them escapes them with
//! [`crate::display`].

use crate::display::is_unsafe_char;

/// Longest `version`, `base.version` and chart `version`, in bytes: a chart
/// version becomes an OCI tag (`+` written `_`), and tags have at most 128.
pub const MAX_VERSION_LEN: usize = 128;
/// Longest chart name, in bytes (a DNS label).
pub const MAX_CHART_NAME_LEN: usize = 63;
/// Longest `description`, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 4096;
/// Longest `generator`, in bytes.
pub const MAX_GENERATOR_LEN: usize = 128;
/// Longest chart `appVersion`, in bytes.
pub const MAX_APP_VERSION_LEN: usize = 128;
/// Longest type or subtype name of a media type (RFC 6838 §4.2).
pub const MAX_MEDIA_TYPE_NAME_LEN: usize = 127;
/// Longest component (`os`, `arch`, `variant`) of a platform, in bytes.
pub const MAX_PLATFORM_PART_LEN: usize = 32;

/// The chart name rule, for messages.
pub const CHART_NAME_RULE: &str =
    "1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit";
/// The version rule, for messages.
pub const VERSION_RULE: &str =
    "a semantic version such as 1.4.0 or 2.0.0-rc.1+build.5, at most 128 bytes, every number at most 18446744073709551615";
/// The media type rule, for messages.
pub const MEDIA_TYPE_RULE: &str =
    "TYPE/SUBTYPE as RFC 6838 names them: each 1 to 127 letters, digits and !#$&-^_.+, starting with a letter or digit, no parameters";
/// The platform rule, for messages.
pub const PLATFORM_RULE: &str =
    "OS/ARCH or OS/ARCH/VARIANT, each 1 to 32 lowercase letters, digits, '.' or '_'";
/// The description rule, for messages.
pub const DESCRIPTION_RULE: &str =
    "at most 4096 bytes of text; line feeds are allowed, other control characters and bidirectional formatting characters are not";
/// The `appVersion` rule, for messages.
pub const APP_VERSION_RULE: &str =
    "at most 128 bytes of text without control characters or bidirectional formatting characters";
/// The generator rule, for messages.
pub const GENERATOR_RULE: &str = "1 to 128 printable ASCII characters (space to '~')";

/// A Semantic Version 2.0.0 (<https://semver.org>) as the `semver` crate
/// parses it, at most [`MAX_VERSION_LEN`] bytes, whose major, minor and
/// patch numbers and numeric pre-release identifiers each fit in a u64.
/// Returns the parsed version, or why not.
pub fn parse_version(s: &str) -> Result<semver::Version, String> {
    if s.len() > MAX_VERSION_LEN {
        return Err(format!("{} bytes, above {MAX_VERSION_LEN}", s.len()));
    }
    let v = semver::Version::parse(s).map_err(|e| e.to_string())?;
    // The crate keeps numeric pre-release identifiers as text of any
    // length; other implementations read them as u64.
    for id in v.pre.as_str().split('.') {
        if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && id.parse::<u64>().is_err() {
            return Err(format!(
                "pre-release identifier {id} exceeds 18446744073709551615"
            ));
        }
    }
    Ok(v)
}

/// A chart name: what Helm's own rules accept (`helm create`'s
/// `[a-zA-Z0-9._-]{1,250}`, a name equal to its own base name) narrowed to
/// Helm's naming convention (lowercase letters, digits and dashes), which is
/// also a DNS label and one OCI repository path component (charts are
/// pushed to `charts/NAME`).
pub fn is_valid_chart_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_CHART_NAME_LEN
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A media type without parameters, as RFC 6838 §4.2 names types and
/// subtypes: `restricted-name "/" restricted-name`, each name a letter or
/// digit followed by at most 126 of `A-Z a-z 0-9 ! # $ & - ^ _ . +`.
pub fn is_valid_media_type(s: &str) -> bool {
    let name = |n: &str| {
        let b = n.as_bytes();
        !b.is_empty()
            && b.len() <= MAX_MEDIA_TYPE_NAME_LEN
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(c))
    };
    match s.split_once('/') {
        Some((t, sub)) => name(t) && name(sub),
        None => false,
    }
}

/// A platform `os/arch[/variant]`: two or three components, each 1 to
/// [`MAX_PLATFORM_PART_LEN`] bytes of `a-z 0-9 . _` (Go's `GOOS` and
/// `GOARCH` values, ARM variants such as `v7`, and `x86_64`).
pub fn is_valid_platform(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    (2..=3).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= MAX_PLATFORM_PART_LEN
                && p.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'_')
        })
}

/// A description: at most [`MAX_DESCRIPTION_LEN`] bytes; no character
/// [`crate::display`] calls unsafe except the line feed (U+000A).
pub fn is_valid_description(s: &str) -> bool {
    s.len() <= MAX_DESCRIPTION_LEN && !s.chars().any(|c| c != '\n' && is_unsafe_char(c))
}

/// A chart `appVersion`: at most [`MAX_APP_VERSION_LEN`] bytes (Helm allows
/// an empty one), no character
/// [`crate::display`] calls unsafe (no control character of any kind, no
/// bidirectional formatting character).
pub fn is_valid_app_version(s: &str) -> bool {
    s.len() <= MAX_APP_VERSION_LEN && !s.chars().any(is_unsafe_char)
}

/// A `generator`: 1 to [`MAX_GENERATOR_LEN`] printable ASCII characters
/// (U+0020 to U+007E).
pub fn is_valid_generator(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_GENERATOR_LEN && s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in [
            "1.0.0",
            "0.0.1-rc.1+build.5",
            "18446744073709551615.18446744073709551615.18446744073709551615",
            "1.0.0-18446744073709551615",
            "1.0.0-0a.01a",
            "1.0.0+001",
        ] {
            parse_version(ok).unwrap();
        }
        let long = format!("1.0.0-{}", "a".repeat(MAX_VERSION_LEN - 6));
        assert_eq!(long.len(), MAX_VERSION_LEN);
        parse_version(&long).unwrap();
        for bad in [
            "",
            "v1.0.0",
            "1.0",
            "01.0.0",
            "1.0.0-01",
            "18446744073709551616.0.0",
            "1.18446744073709551616.0",
            "1.0.18446744073709551616",
            "1.0.0-18446744073709551616",
            "1.0.0-rc.99999999999999999999",
            "1.0.0-é",
            "1.0.0+",
            &format!("{long}a"),
        ] {
            assert!(parse_version(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chart_names() {
        for ok in [
            "a",
            "hello",
            "kube-prometheus-stack",
            "x2",
            "a--b",
            &"a".repeat(63),
        ] {
            assert!(is_valid_chart_name(ok), "{ok}");
        }
        for bad in [
            "",
            "../../tmp/x",
            "a/b",
            "Hello",
            "a_b",
            "a.b",
            "-a",
            "a-",
            "..",
            "a\nb",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(!is_valid_chart_name(bad), "{bad}");
        }
    }

    #[test]
    fn media_types() {
        for ok in [
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            "text/x-handlebars-template",
            "Application/JSON",
            "a/b!#$&-^_.+",
        ] {
            assert!(is_valid_media_type(ok), "{ok}");
        }
        let name = "a".repeat(127);
        assert!(is_valid_media_type(&format!("{name}/{name}")));
        for bad in [
            "",
            "text",
            "text/",
            "/plain",
            "text/plain; charset=utf-8",
            "text/plain/x",
            "-text/plain",
            "text/.plain",
            "text/pl ain",
            "text/plain\u{1b}",
            &format!("{name}a/b"),
        ] {
            assert!(!is_valid_media_type(bad), "{bad}");
        }
    }

    #[test]
    fn platforms() {
        for ok in [
            "linux/amd64",
            "linux/arm/v7",
            "windows/amd64",
            "linux/x86_64",
            "a/b.c_d",
        ] {
            assert!(is_valid_platform(ok), "{ok}");
        }
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/arm/v7/x",
            "Linux/amd64",
            "linux/amd64\u{1b}",
            "linux/amd 64",
            "linux/arm-64",
            &format!("linux/{}", "a".repeat(33)),
        ] {
            assert!(!is_valid_platform(bad), "{bad}");
        }
    }

    #[test]
    fn text_fields() {
        assert!(is_valid_description(""));
        assert!(is_valid_description("Two lines:\nsecond, Zürich 研究.\n"));
        assert!(is_valid_description(&"x".repeat(MAX_DESCRIPTION_LEN)));
        for bad in [
            "a\rb",
            "a\tb",
            "a\u{1b}[2J",
            "a\u{7f}",
            "a\u{85}",
            "evil\u{202e}txt",
        ] {
            assert!(!is_valid_description(bad), "{bad:?}");
        }
        assert!(!is_valid_description(&"x".repeat(MAX_DESCRIPTION_LEN + 1)));

        assert!(is_valid_app_version("1.16.0"));
        assert!(is_valid_app_version("v2 (LTS)"));
        assert!(is_valid_app_version(""));
        for bad in ["1\n2", "1\u{2066}", &"1".repeat(129)] {
            assert!(!is_valid_app_version(bad), "{bad:?}");
        }

        assert!(is_valid_generator("airgap-bundle 0.1.0"));
        for bad in ["", "x\ty", "é", "x\u{7f}", &"g".repeat(129)] {
            assert!(!is_valid_generator(bad), "{bad:?}");
        }
    }
}
