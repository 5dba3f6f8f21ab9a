//! A starting site file written from a site schema, as `helm show values`
//! helps with a chart: every field in the schema's order with its
//! description as a comment; what is required (in the choices the file
//! makes) written out, the rest commented out; defaults and first choices
//! filled in, everything else [`PLACEHOLDER`], so that `site check` points
//! at what is left to fill.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::ordered::Ordered;

/// What a value the site must choose is written as.
pub const PLACEHOLDER: &str = "CHANGE-ME";

/// Widest comment line written.
const WIDTH: usize = 78;

/// The starting site file for the schema `schema_text` (JSON or YAML),
/// headed with `title`.
pub fn starting_site(schema_text: &str, title: &str) -> Result<String, String> {
    let root = Ordered::parse(schema_text)?;
    let mut out = String::new();
    for line in [
        format!("# A starting site file for {title}, written by `airgap-install site init`."),
        format!("# Replace every {PLACEHOLDER}, uncomment what the site uses, then check it with"),
        "#   airgap-install site check BUNDLE --site THIS-FILE".to_string(),
        "# Secrets are never written here: each names a file or an environment variable."
            .to_string(),
    ] {
        out.push_str(&line);
        out.push('\n');
    }
    let w = Writer { root: &root };
    out.push_str(&w.object(&root, &[], 0, ""));
    Ok(out)
}

struct Writer<'a> {
    root: &'a Ordered,
}

impl<'a> Writer<'a> {
    /// Follows `$ref`s.
    fn deref(&self, mut node: &'a Ordered) -> &'a Ordered {
        for _ in 0..8 {
            match node.get("$ref").and_then(Ordered::as_str) {
                Some(r) => match r.strip_prefix('#').and_then(|p| self.root.pointer(p)) {
                    Some(n) => node = n,
                    None => return node,
                },
                None => return node,
            }
        }
        node
    }

    /// The fields of an object schema, at `indent`; `overlays` are the
    /// subschemas a parent's `then` applies here.
    fn object(
        &self,
        schema: &'a Ordered,
        overlays: &[&'a Ordered],
        indent: usize,
        path: &str,
    ) -> String {
        let schema = self.deref(schema);
        let Some(Ordered::Map(props)) = schema.get("properties") else {
            return String::new();
        };
        let mut required: BTreeSet<String> = names(schema.get("required"));
        let mut forbidden: BTreeSet<String> = BTreeSet::new();
        let mut overlays: Vec<&'a Ordered> = overlays.to_vec();
        // The value each discriminating field gets, for the `if`s.
        let chosen = |k: &str| -> Option<Value> {
            let sub = self.deref(schema.get("properties")?.get(k)?);
            first_choice(sub)
        };
        // `then`s whose `if` the chosen values meet apply here.
        let mut pending: Vec<&'a Ordered> = vec![schema];
        pending.extend(overlays.iter().copied());
        while let Some(s) = pending.pop() {
            let Some(Ordered::Seq(all)) = s.get("allOf") else {
                continue;
            };
            for branch in all {
                let (Some(test), Some(then)) = (branch.get("if"), branch.get("then")) else {
                    continue;
                };
                if meets(test, &chosen) {
                    overlays.push(then);
                    pending.push(then);
                }
            }
        }
        for o in &overlays {
            required.extend(names(o.get("required")));
            if let Some(Ordered::Map(p)) = o.get("properties") {
                for (k, v) in p {
                    if v.scalar() == Some(&Value::Bool(false)) {
                        forbidden.insert(k.clone());
                    }
                }
            }
        }
        let mut out = String::new();
        for (key, written) in props {
            if forbidden.contains(key) {
                continue;
            }
            let sub = self.deref(written);
            let child: Vec<&'a Ordered> = overlays
                .iter()
                .filter_map(|o| o.get("properties")?.get(key))
                .filter(|o| !matches!(o, Ordered::Scalar(_)))
                .collect();
            let here = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let active = required.contains(key)
                || sub.get("default").is_some()
                || child.iter().any(|o| o.get("default").is_some());
            let mut block = String::new();
            // The field's own description, else its referenced schema's.
            let description = written
                .get("description")
                .or_else(|| sub.get("description"))
                .and_then(Ordered::as_str);
            if let Some(d) = description {
                // Line breaks fold into the comment; other controls are
                // escaped as every untrusted line we print is.
                let d = d.replace(['\n', '\r', '\t'], " ");
                let d = airgap_format::display::escape(&d);
                for line in wrap(&d, WIDTH.saturating_sub(indent + 2)) {
                    block.push_str(&format!("{}# {line}\n", pad(indent)));
                }
            }
            let body = self.field(key, sub, &child, indent, &here);
            if active {
                block.push_str(&body);
            } else {
                block.push_str(&comment_out(&body, indent));
            }
            out.push_str(&block);
        }
        out
    }

    /// One field, written out at `indent`.
    fn field(
        &self,
        key: &str,
        sub: &'a Ordered,
        overlays: &[&'a Ordered],
        indent: usize,
        path: &str,
    ) -> String {
        let p = pad(indent);
        // A key or path the schema spells oddly is quoted, not trusted to
        // read back as YAML.
        let key = &scalar(&Value::from(key));
        if sub.get("x-secret").is_some() {
            let file = scalar(&Value::from(format!("site-secrets/{path}")));
            return format!("{p}{key}:\n{p}  file: {file}\n");
        }
        let kind = sub.get("type").and_then(Ordered::as_str);
        if kind == Some("object") || sub.get("properties").is_some() {
            let inner = self.object(sub, overlays, indent + 2, path);
            if inner.is_empty() {
                return format!("{p}{key}: {{}}\n");
            }
            return format!("{p}{key}:\n{inner}");
        }
        if kind == Some("array") {
            let Some(items) = sub.get("items").map(|i| self.deref(i)) else {
                return format!("{p}{key}: []\n");
            };
            let item_overlays: Vec<&'a Ordered> =
                overlays.iter().filter_map(|o| o.get("items")).collect();
            let inner = self.object(items, &item_overlays, indent + 4, &format!("{path}[0]"));
            if inner.is_empty() {
                let v = first_choice(items).unwrap_or_else(|| placeholder(items));
                return format!("{p}{key}:\n{p}  - {}\n", scalar(&v));
            }
            // The item's first field goes on the `- ` line.
            let first_field = inner
                .lines()
                .position(|l| !l.trim_start().starts_with('#'))
                .unwrap_or(0);
            let mut lines: Vec<String> = inner.lines().map(str::to_string).collect();
            let dash = format!("{p}  - ");
            // Comments above it move up, at the dash's indent.
            for l in lines.iter_mut().take(first_field) {
                *l = format!("{p}  {}", l.trim_start());
            }
            lines[first_field] = format!("{dash}{}", lines[first_field].trim_start());
            return format!("{p}{key}:\n{}\n", lines.join("\n"));
        }
        // A `then` that applies here may narrow the choices or give the
        // default (a database's sslMode and port by its type).
        let value = overlays
            .iter()
            .find_map(|o| first_choice(o))
            .or_else(|| first_choice(sub))
            .unwrap_or_else(|| placeholder(sub));
        let mut line = format!("{p}{key}: {}", scalar(&value));
        let options = overlays
            .iter()
            .find_map(|o| o.get("enum"))
            .or_else(|| sub.get("enum"));
        if let Some(Ordered::Seq(options)) = options {
            if options.len() > 1 {
                let shown: Vec<String> = options
                    .iter()
                    .filter_map(Ordered::scalar)
                    .map(plain)
                    .collect();
                line.push_str(&format!("  # {}", shown.join(" | ")));
            }
        }
        line.push('\n');
        line
    }
}

/// The value a field gets without the site choosing: its `const`, its
/// `default`, or its first `enum` value.
fn first_choice(sub: &Ordered) -> Option<Value> {
    if let Some(v) = sub.get("const").and_then(Ordered::scalar) {
        return Some(v.clone());
    }
    if let Some(d) = sub.get("default") {
        return Some(d.to_value());
    }
    match sub.get("enum") {
        Some(Ordered::Seq(options)) => options.first().and_then(Ordered::scalar).cloned(),
        _ => None,
    }
}

/// What a field the site must fill in is written as, by its type.
fn placeholder(sub: &Ordered) -> Value {
    match sub.get("type").and_then(Ordered::as_str) {
        Some("integer") | Some("number") => sub
            .get("minimum")
            .and_then(Ordered::scalar)
            .cloned()
            .unwrap_or(Value::from(0)),
        Some("boolean") => Value::Bool(false),
        _ => Value::from(PLACEHOLDER),
    }
}

/// Whether the single-field test `test` (`{properties: {F: {const: V}}}`
/// or `enum`) holds for the values `chosen` gives.
fn meets(test: &Ordered, chosen: &dyn Fn(&str) -> Option<Value>) -> bool {
    let Some(Ordered::Map(props)) = test.get("properties") else {
        return false;
    };
    props.iter().all(|(field, cond)| {
        let Some(value) = chosen(field) else {
            return false;
        };
        if let Some(c) = cond.get("const").and_then(Ordered::scalar) {
            return *c == value;
        }
        match cond.get("enum") {
            Some(Ordered::Seq(options)) => options.iter().any(|o| o.scalar() == Some(&value)),
            _ => false,
        }
    })
}

fn names(list: Option<&Ordered>) -> BTreeSet<String> {
    match list {
        Some(Ordered::Seq(items)) => items
            .iter()
            .filter_map(Ordered::as_str)
            .map(str::to_string)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// A scalar as YAML: plain when it reads back as the same text, else
/// double-quoted (JSON's quoting, which YAML reads).
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let plain_safe = !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./@[]".contains(c))
                && !s.starts_with('[')
                && !matches!(
                    s.to_ascii_lowercase().as_str(),
                    "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
                )
                && s.parse::<f64>().is_err()
                && !s.starts_with('-');
            if plain_safe {
                s.clone()
            } else {
                Value::String(s.clone()).to_string()
            }
        }
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        other => other.to_string(),
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pad(n: usize) -> String {
    " ".repeat(n)
}

/// `body` with `# ` after the indentation of every line.
fn comment_out(body: &str, indent: usize) -> String {
    body.lines()
        .map(|l| {
            let cut = l.len() - l.trim_start().len();
            let cut = cut.min(indent).min(l.len());
            format!("{}# {}\n", &l[..cut], &l[cut..])
        })
        .collect()
}

/// Words of `text` in lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width.max(20) {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SiteSchema;

    const SCHEMA: &str = include_str!("../../templates/site.schema.json");

    #[test]
    fn the_reference_starting_file_leaves_only_placeholders_to_fill() {
        let text = starting_site(SCHEMA, "reference-platform 1.4.0").unwrap();
        let value = crate::yaml::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let schema = SiteSchema::new(serde_json::from_str(SCHEMA).unwrap()).unwrap();
        let problems = schema.check(&value);
        // Nothing missing, unknown or out of place: only what the site
        // must fill in.
        assert!(!problems.is_empty());
        for p in &problems {
            assert!(p.message.contains(PLACEHOLDER), "{p}\n{text}");
        }
        // The first choices are written out, the others left out; the
        // optional fields are commented out.
        assert!(
            text.contains("scenario: air-gapped  # air-gapped | hybrid"),
            "{text}"
        );
        assert!(text.contains("  oidc:\n"), "{text}");
        assert!(!text.contains("ldap:"), "{text}");
        assert!(text.contains("# ingressHost: CHANGE-ME"), "{text}");
        assert!(
            text.contains("  password:\n      file: site-secrets/controlPlane.database.password"),
            "{text}"
        );
        assert!(text.contains("workspaces:\n"), "{text}");
        assert!(text.starts_with("# A starting site file for reference-platform 1.4.0"));
    }

    #[test]
    fn filled_in_it_validates() {
        let text = starting_site(SCHEMA, "x").unwrap();
        let filled = text
            .replace("url: CHANGE-ME", "url: https://x.example")
            .replace("issuerUrl: CHANGE-ME", "issuerUrl: https://sso.example")
            .replace("endpoint: CHANGE-ME", "endpoint: https://objects.example")
            .replace("CHANGE-ME", "filled-in");
        let value = crate::yaml::parse(&filled).unwrap();
        let schema = SiteSchema::new(serde_json::from_str(SCHEMA).unwrap()).unwrap();
        let left: Vec<String> = schema.check(&value).iter().map(|p| p.to_string()).collect();
        assert_eq!(left, Vec::<String>::new(), "{filled}");
    }

    #[test]
    fn odd_keys_are_quoted_and_read_back() {
        let schema = r##"{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "required": ["a: b #c", "s"],
            "properties": {"a: b #c": {"type": "string"}, "s": {"x-secret": true}}}"##;
        let text = starting_site(schema, "x").unwrap();
        let v = crate::yaml::parse(&text).unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(v["a: b #c"], "CHANGE-ME", "{text}");
        assert_eq!(v["s"]["file"], "site-secrets/s", "{text}");
        let schema = schema.replace(
            r#""type": "string"}"#,
            r#""type": "string", "description": "two\nlines \u001b[31mred"}"#,
        );
        let text = starting_site(&schema, "x").unwrap();
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("# two lines "), "{text}");
    }

    #[test]
    fn scalars_read_back() {
        assert_eq!(scalar(&Value::from("platform")), "platform");
        assert_eq!(scalar(&Value::from("yes")), "\"yes\"");
        assert_eq!(scalar(&Value::from("5432")), "\"5432\"");
        assert_eq!(scalar(&Value::from("a b: c")), "\"a b: c\"");
        assert_eq!(scalar(&Value::from(9090)), "9090");
        assert_eq!(scalar(&Value::from("a#b: c")), "\"a#b: c\"");
        assert_eq!(
            scalar(&Value::from("site-secrets/ws[0].token")),
            "site-secrets/ws[0].token"
        );
        assert_eq!(scalar(&Value::from("[x]")), "\"[x]\"");
    }
}
