//! The name rule shared by product ids, feature names and limit names:
//! `[a-z0-9][a-z0-9._-]*`, at most [`MAX_NAME_LEN`] bytes.

use crate::limits::MAX_NAME_LEN;

/// Whether `name` follows the rule: a lowercase ASCII letter or digit, then
/// lowercase letters, digits, `.`, `_` or `-`, [`MAX_NAME_LEN`] bytes at most.
pub fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let first_ok = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME_LEN
        && first_ok(&bytes[0])
        && bytes[1..]
            .iter()
            .all(|b| first_ok(b) || matches!(b, b'.' | b'_' | b'-'))
}

/// `Ok` if `name` is valid, else a reason naming `kind` ("product id", …).
pub(crate) fn check_name(kind: &str, name: &str) -> Result<(), String> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(format!(
            "invalid {kind} {:?}: expected a lowercase letter or digit, then lowercase letters, digits, '.', '_' or '-', at most {MAX_NAME_LEN} bytes",
            crate::error::quote(name)
        ))
    }
}

/// Whether `text` is exactly `len` lowercase hex digits.
pub(crate) fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rule() {
        for good in [
            "a",
            "0",
            "reference-platform",
            "a.b_c-d",
            &"x".repeat(MAX_NAME_LEN),
        ] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "A",
            "a b",
            "a/b",
            "é",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
