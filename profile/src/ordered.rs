//! A JSON or YAML document read with its mappings in written order (a
//! `serde_json::Value` sorts them), for output that follows the author's
//! order, such as a starting site file from a schema.

use serde::Deserialize;
use serde_json::Value;

/// A document node; mappings keep their keys in written order.
#[derive(Clone, Debug, PartialEq)]
pub enum Ordered {
    /// A mapping.
    Map(Vec<(String, Ordered)>),
    /// A list.
    Seq(Vec<Ordered>),
    /// Anything else.
    Scalar(Value),
}

impl Ordered {
    /// Reads `text` (YAML, which JSON is a part of).
    pub fn parse(text: &str) -> Result<Ordered, String> {
        serde_saphyr::from_str(text).map_err(|e| e.to_string())
    }

    /// The value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Ordered> {
        match self {
            Ordered::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The node at JSON pointer `pointer` (`/$defs/database`).
    pub fn pointer(&self, pointer: &str) -> Option<&Ordered> {
        let mut node = self;
        for raw in pointer.split('/').skip(1) {
            let step = raw.replace("~1", "/").replace("~0", "~");
            node = match node {
                Ordered::Map(_) => node.get(&step)?,
                Ordered::Seq(items) => items.get(step.parse::<usize>().ok()?)?,
                Ordered::Scalar(_) => return None,
            };
        }
        Some(node)
    }

    /// The scalar, when this is one.
    pub fn scalar(&self) -> Option<&Value> {
        match self {
            Ordered::Scalar(v) => Some(v),
            _ => None,
        }
    }

    /// The text, when this is a text scalar.
    pub fn as_str(&self) -> Option<&str> {
        self.scalar().and_then(Value::as_str)
    }

    /// The node as a `serde_json::Value` (mappings sorted).
    pub fn to_value(&self) -> Value {
        match self {
            Ordered::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
            Ordered::Seq(items) => Value::Array(items.iter().map(Ordered::to_value).collect()),
            Ordered::Scalar(v) => v.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON or YAML document")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::from(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::from(v)))
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Null))
            }
            fn visit_none<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Scalar(Value::Null))
            }
            fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Ordered, D::Error> {
                Ordered::deserialize(d)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = a.next_element()? {
                    items.push(item);
                }
                Ok(Ordered::Seq(items))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Ordered, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = a.next_key::<String>()? {
                    entries.push((key, a.next_value()?));
                }
                Ok(Ordered::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_written_order() {
        let o = Ordered::parse(r#"{"b": 1, "a": {"d": [true], "c": null}}"#).unwrap();
        let Ordered::Map(entries) = &o else { panic!() };
        assert_eq!(entries[0].0, "b");
        assert_eq!(
            o.pointer("/a/d/0").and_then(Ordered::scalar),
            Some(&Value::Bool(true))
        );
        assert_eq!(
            o.to_value(),
            serde_json::json!({"a": {"c": null, "d": [true]}, "b": 1})
        );
    }
}
