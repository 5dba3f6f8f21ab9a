//! Canonical JSON: object keys sorted by their UTF-8 bytes, no insignificant
//! white space, integers only. The writer emits `bundle.json` this way so that
//! equal content gives equal bytes, whatever serde_json's map features are.

use serde::Serialize;
use serde_json::Value;

/// Serialises `value` in canonical form.
pub fn to_canonical_vec<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::new();
    write_value(&value, &mut out)?;
    Ok(out)
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key)?;
                out.push(b':');
                write_value(&map[key], out)?;
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
        }
        Value::Number(n) if n.is_f64() => {
            return Err(serde::ser::Error::custom(
                "canonical JSON admits integers only",
            ))
        }
        other => serde_json::to_writer(&mut *out, other)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_and_strips_space() {
        let v = serde_json::json!({"b": 1, "a": {"z": [1, 2], "y": "é\n"}});
        let out = to_canonical_vec(&v).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"a\":{\"y\":\"é\\n\",\"z\":[1,2]},\"b\":1}"
        );
    }

    #[test]
    fn refuses_floats() {
        assert!(to_canonical_vec(&serde_json::json!({"a": 1.5})).is_err());
    }
}
