//! Where a field is in a YAML text: `workspaces[1].database.sslMode` to
//! its line and column, for messages that point at the place to fix.

use serde::Deserialize;
use serde_saphyr::Spanned;

/// Where the field at `path` (`workspaces[1].database.sslMode`) is in the
/// YAML `text`: its value when that is a scalar, else its key; the nearest
/// field on the way that is there when it is not (a missing field is
/// pointed at its parent). `None` when the text cannot be read so.
pub fn locate(text: &str, path: &str) -> Option<(u32, u32)> {
    let root: Spanned<Located> = serde_saphyr::from_str(text).ok()?;
    let mut at = None;
    let mut node = &root.value;
    for part in path_parts(path) {
        let next = match (part, node) {
            (PathPart::Key(k), Located::Map(entries)) => entries
                .iter()
                .find(|(key, _)| key.value.0 == k)
                .map(|(key, value)| {
                    let place = match value.value {
                        Located::Scalar => &value.referenced,
                        _ => &key.referenced,
                    };
                    (place, &value.value)
                }),
            (PathPart::Index(i), Located::Seq(items)) => {
                items.get(i).map(|item| (&item.referenced, &item.value))
            }
            _ => None,
        };
        let Some((place, value)) = next else { break };
        if place.line() > 0 {
            at = Some((place.line() as u32, place.column() as u32));
        }
        node = value;
    }
    at
}

/// One step of a field path.
enum PathPart<'a> {
    Key(&'a str),
    Index(usize),
}

/// `workspaces[1].name` → `workspaces`, `1`, `name`.
fn path_parts(path: &str) -> Vec<PathPart<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            out.push(PathPart::Key(key));
        }
        for index in pieces {
            match index.trim_end_matches(']').parse() {
                Ok(i) => out.push(PathPart::Index(i)),
                Err(_) => return out,
            }
        }
    }
    out
}

/// A YAML document's shape with where each node is, for [`locate`].
enum Located {
    Map(Vec<(Spanned<Key>, Spanned<Located>)>),
    Seq(Vec<Spanned<Located>>),
    Scalar,
}

/// A mapping key as text (a key that is not a scalar is empty).
struct Key(String);

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Located;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any YAML")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_str<E>(self, _: &str) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_unit<E>(self) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_none<E>(self) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Located, D::Error> {
                Located::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Located, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(Located::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Located, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = a.next_key()? {
                    entries.push((key, a.next_value()?));
                }
                Ok(Located::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping key")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_string()))
            }
            fn visit_unit<E>(self) -> Result<Key, E> {
                Ok(Key(String::new()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Key, A::Error> {
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Key(String::new()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Key, A::Error> {
                while a
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(Key(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}
