//! Showing untrusted text safely: every string that comes from a bundle, a
//! site file, a licence or a registry and reaches a terminal, a log line or
//! a file name goes through [`escape`] (or [`Escaped`], or [`quote`] for a
//! value quoted in a message).
//!
//! Escaped are the characters a terminal acts on instead of showing: the
//! C0 controls (U+0000–U+001F, among them ESC, CR and LF), DEL (U+007F),
//! the C1 controls (U+0080–U+009F), the Unicode bidirectional
//! formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E,
//! U+2066–U+2069), which reorder what follows them on screen, and the line
//! and paragraph separators (U+2028, U+2029), which some terminals break
//! lines at. `\n`, `\r`
//! and `\t` are written as such; every other one as `\u{XX}` in hex, as
//! Rust writes it. JSON output never goes through here: serde_json escapes
//! controls itself and JSON must stay exact.

use std::borrow::Cow;
use std::fmt;

/// Longest value [`quote`] shows in full, in characters.
pub const MAX_QUOTED_CHARS: usize = 120;

/// True for the characters [`escape`] replaces: C0 and C1 controls, DEL,
/// the bidirectional formatting characters, and the line and paragraph
/// separators.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// True when `s` holds none of the characters [`escape`] replaces.
pub fn is_display_safe(s: &str) -> bool {
    !s.chars().any(is_unsafe_char)
}

/// `s` with every unsafe character written as a visible escape; borrowed
/// when there is none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if is_display_safe(s) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(Escaped(s).to_string())
    }
}

/// Displays a string with [`escape`]'s rules, without allocating.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(is_unsafe_char) {
            f.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().expect("found");
            match c {
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c => write!(f, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[i + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// A value quoted for a message: in double quotes, escaped, and cut to
/// [`MAX_QUOTED_CHARS`] characters with the full length noted, so that a
/// huge value cannot make a huge error line.
pub fn quote(s: &str) -> String {
    let shown: String = s.chars().take(MAX_QUOTED_CHARS).collect();
    let body = Escaped(&shown).to_string().replace('"', "\\\"");
    if shown.len() == s.len() {
        format!("\"{body}\"")
    } else {
        format!("\"{body}\"… ({} bytes)", s.len())
    }
}

/// `line` made fit for one line of a terminal: escaped, and when longer
/// than `max` bytes, its middle replaced by `…` so that the start (what
/// failed) and the end (the fix) both stay.
pub fn one_line(line: &str, max: usize) -> String {
    let e = escape(line);
    if e.len() <= max {
        return e.into_owned();
    }
    let head_len = floor_char_boundary(&e, max * 2 / 3);
    let tail_start = ceil_char_boundary(&e, e.len() - (max - head_len));
    format!(
        "{} … [{} bytes left out] … {}",
        &e[..head_len],
        tail_start - head_len,
        &e[tail_start..]
    )
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_escaped() {
        assert_eq!(escape("plain/name:1.0"), "plain/name:1.0");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\u{1b}]0;owned\u{7}b\nc\td\re"),
            "a\\u{1b}]0;owned\\u{7}b\\nc\\td\\re"
        );
        assert_eq!(escape("x\u{7f}\u{85}\u{9b}y"), "x\\u{7f}\\u{85}\\u{9b}y");
        assert_eq!(escape("a\u{2028}b\u{2029}"), "a\\u{2028}b\\u{2029}");
        assert_eq!(
            escape("evil\u{202e}gpj.exe\u{2066}\u{2069}\u{200f}\u{61c}"),
            "evil\\u{202e}gpj.exe\\u{2066}\\u{2069}\\u{200f}\\u{61c}"
        );
        // Printable non-ASCII stays as it is.
        assert_eq!(escape("Forschung Zürich 研究"), "Forschung Zürich 研究");
        for c in (0u32..0x20).chain(0x7f..0xa0) {
            let s = char::from_u32(c).unwrap().to_string();
            assert!(!is_display_safe(&s), "{c:#x}");
            assert!(is_display_safe(&escape(&s)), "{c:#x}");
        }
    }

    #[test]
    fn quoted_values_are_capped() {
        assert_eq!(quote("ok"), "\"ok\"");
        assert_eq!(quote("a\"b\u{1b}"), "\"a\\\"b\\u{1b}\"");
        let long = "x".repeat(900_000);
        let q = quote(&long);
        assert!(q.len() < 200, "{}", q.len());
        assert!(q.ends_with("… (900000 bytes)"), "{q}");
        // Cut on a character boundary.
        let q = quote(&"é".repeat(500));
        assert!(q.contains("(1000 bytes)"), "{q}");
    }

    #[test]
    fn long_lines_keep_both_ends() {
        let line = format!("start {} the fix", "y".repeat(10_000));
        let l = one_line(&line, 200);
        assert!(l.len() < 260, "{}", l.len());
        assert!(l.starts_with("start y"), "{l}");
        assert!(l.ends_with("y the fix"), "{l}");
        assert!(l.contains("bytes left out"), "{l}");
        assert_eq!(one_line("short\u{1b}", 200), "short\\u{1b}");
        let multi = "é".repeat(1000);
        let l = one_line(&multi, 101);
        assert!(l.starts_with('é') && l.ends_with('é'), "{l}");
    }
}

/// `n` and a noun, singular for one: `count(1, "chart")` is `1 chart`,
/// `count(2, "chart")` `2 charts`; a noun ending in a consonant and `y`
/// takes `ies` (`2 entries`).
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let consonant_y =
        noun.ends_with('y') && !noun[..noun.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']);
    if consonant_y {
        format!("{n} {}ies", &noun[..noun.len() - 1])
    } else {
        format!("{n} {noun}s")
    }
}

/// A byte count for people: `512 bytes`, `10.5 KiB`, `3.2 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return count(n, "byte");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod count_tests {
    use super::{bytes, count};

    #[test]
    fn byte_counts_for_people() {
        assert_eq!(bytes(1), "1 byte");
        assert_eq!(bytes(1023), "1023 bytes");
        assert_eq!(bytes(10752), "10.5 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn counts_are_singular_for_one() {
        assert_eq!(count(1, "chart"), "1 chart");
        assert_eq!(count(0, "chart"), "0 charts");
        assert_eq!(count(2, "release"), "2 releases");
        assert_eq!(count(1, "entry"), "1 entry");
        assert_eq!(count(3, "entry"), "3 entries");
        assert_eq!(count(3, "key"), "3 keys");
    }
}
