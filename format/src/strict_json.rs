//! The JSON rules every JSON document of a bundle follows (`bundle.json`,
//! `bundle.seal`, `oci-layout`, `index.json`; docs/format.md §5.3), checked
//! before the document is read into its schema:
//!
//! - no object has the same key twice (serde would keep the last one of a
//!   map, and a second reader might keep the first);
//! - every number is an integer from 0 to 2^64−1, written without sign,
//!   fraction or exponent;
//! - no value is `null` (an optional key is left out instead);
//! - arrays and objects nest at most [`MAX_DEPTH`] deep.
//!
//! serde_json itself refuses the rest: bytes that are not UTF-8, a byte
//! order mark, raw control characters and lone surrogates in strings,
//! leading zeros, and anything but white space after the value.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::display::Escaped;

/// Deepest nesting of arrays and objects accepted; the outermost object is
/// level 1. `bundle.json` needs 4 (an image's `platforms`), `index.json` 4.
pub const MAX_DEPTH: usize = 32;

/// Checks `bytes` against the rules above without building the document.
/// The error names the place (`images[0].size`) and the rule.
pub fn check(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Node {
        path: String::new(),
        depth: 0,
    }
    .deserialize(&mut de)?;
    de.end()
}

/// Parses `bytes` into `T` after [`check`].
pub fn from_slice<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, serde_json::Error> {
    check(bytes)?;
    serde_json::from_slice(bytes)
}

/// One value of the document, at `path`, nested `depth` deep.
struct Node {
    path: String,
    depth: usize,
}

impl Node {
    fn at(&self) -> &str {
        if self.path.is_empty() {
            "the top level"
        } else {
            &self.path
        }
    }

    fn not_an_integer<E: de::Error>(&self) -> E {
        E::custom(format!(
            "{}: a number that is not an integer from 0 to 18446744073709551615 (numbers have no sign, fraction or exponent)",
            self.at()
        ))
    }

    fn enter<E: de::Error>(&self) -> Result<(), E> {
        if self.depth + 1 > MAX_DEPTH {
            return Err(E::custom(format!(
                "{}: arrays and objects nested deeper than {MAX_DEPTH} levels",
                self.at()
            )));
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Node {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.not_an_integer())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.not_an_integer())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom(format!(
            "{}: null is not allowed (leave an optional key out instead)",
            self.at()
        )))
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.enter()?;
        let mut i = 0usize;
        loop {
            let child = Node {
                path: format!("{}[{i}]", self.path),
                depth: self.depth + 1,
            };
            if seq.next_element_seed(child)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.enter()?;
        let mut keys = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                Escaped(&key).to_string()
            } else {
                format!("{}.{}", self.path, Escaped(&key))
            };
            if !keys.insert(key) {
                return Err(de::Error::custom(format!("{path}: duplicate key")));
            }
            map.next_value_seed(Node {
                path,
                depth: self.depth + 1,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        check(json.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn valid_documents_pass() {
        for ok in [
            r#"{"a":1,"b":[true,false,"x"],"c":{"d":18446744073709551615}}"#,
            "{}  \n ",
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        ] {
            check(ok.as_bytes()).unwrap();
        }
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(err(r#"{"a":1,"a":1}"#).starts_with("a: duplicate key"));
        let e = err(r#"{"images":[{"name":"x"},{"name":"y","name":"z"}]}"#);
        assert!(e.starts_with("images[1].name: duplicate key"), "{e}");
        // Escaped keys are still compared as written.
        let e = err(r#"{"a":1,"\u0061":2}"#);
        assert!(e.starts_with("a: duplicate key"), "{e}");
    }

    #[test]
    fn only_unsigned_integers_are_numbers() {
        for bad in [
            "1.0",
            "1e2",
            "1E2",
            "-1",
            "-0",
            "0.5",
            "18446744073709551616",
            "99999999999999999999999",
        ] {
            let e = err(&format!(r#"{{"size":{bad}}}"#));
            assert!(
                e.starts_with("size: a number that is not an integer"),
                "{bad}: {e}"
            );
        }
        check(br#"{"size":0}"#).unwrap();
    }

    #[test]
    fn null_is_refused() {
        let e = err(r#"{"charts":[{"appVersion":null}]}"#);
        assert!(
            e.starts_with("charts[0].appVersion: null is not allowed"),
            "{e}"
        );
        assert!(err("null").starts_with("the top level: null"));
    }

    #[test]
    fn nesting_is_bounded() {
        let at = |n: usize| "[".repeat(n) + &"]".repeat(n);
        check(at(MAX_DEPTH).as_bytes()).unwrap();
        let e = err(&at(MAX_DEPTH + 1));
        assert!(e.contains("nested deeper than 32 levels"), "{e}");
        // Far beyond serde_json's own limit, still one clear error.
        assert!(err(&at(100_000)).contains("nested deeper than 32"));
    }

    #[test]
    fn serde_json_refusals_stay() {
        for bad in [
            "\u{feff}{}",
            "{\"a\":\"\u{1}\"}",
            r#"{"a":"\ud800"}"#,
            r#"{"a":01}"#,
            "{} x",
        ] {
            assert!(check(bad.as_bytes()).is_err(), "{bad:?}");
        }
        assert!(check(b"{\"a\":\"\xff\"}").is_err());
    }
}
