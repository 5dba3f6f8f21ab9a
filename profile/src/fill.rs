//! What a valid site file means beyond its text, read through its schema:
//! the values the schema's `default`s give to fields left out (including
//! defaults that depend on another field, under `if`/`then`, such as a
//! database port by engine), every field the schema declares made present
//! (null when unset) so a template can test any of them, and where the
//! secrets (`x-secret`) are.
//!
//! The walk follows the subschemas that apply to each value: `$ref`
//! (inside the document), `allOf`, `if`/`then`/`else` (the `if` decided by
//! validating the value), the `anyOf`/`oneOf` branches the value matches,
//! `dependentSchemas` of present keys, then `properties`,
//! `patternProperties`, `additionalProperties`, `prefixItems` and `items`
//! for what is inside.

use std::cell::RefCell;
use std::collections::BTreeMap;

use jsonschema::{Registry, Validator};
use serde_json::{Map, Value};

use crate::schema::escape_pointer;

/// The schema's document as a resource, for validating its `if`s.
const ROOT_URI: &str = "urn:airgap:site-schema";
/// Deepest chain of `$ref`s and combinators followed at one value (a
/// schema that refers to itself in a loop stops here).
const MAX_DEPTH: usize = 64;
/// Rounds of defaults at one mapping (a default can decide an `if` that
/// brings another default).
const MAX_ROUNDS: usize = 8;

/// A site file as the installer reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Filled {
    /// The site with defaults applied and every declared field present.
    pub value: Value,
    /// JSON pointers (into `value`) of the secret fields present, in
    /// document order.
    pub secrets: Vec<String>,
}

/// Walks a schema over a site; [`crate::SiteSchema::fill`] is its use.
pub(crate) struct Walker<'a> {
    root: &'a Value,
    /// Compiled `if`s and branches, by pointer into the schema (`None`:
    /// would not compile, taken as not matching).
    tests: RefCell<BTreeMap<String, Option<Validator>>>,
}

impl<'a> Walker<'a> {
    pub(crate) fn new(root: &'a Value) -> Walker<'a> {
        Walker {
            root,
            tests: RefCell::new(BTreeMap::new()),
        }
    }

    /// `site` filled (see the module), with its secrets found. `site`
    /// should be valid against the schema: where it is not, fields are
    /// filled as far as the schema says.
    pub(crate) fn fill(&self, site: &Value) -> Filled {
        let mut value = crate::schema::without_nulls(site);
        let mut secrets = Vec::new();
        self.fill_at(&mut value, String::new(), vec![String::new()], &mut secrets);
        Filled { value, secrets }
    }

    fn fill_at(
        &self,
        value: &mut Value,
        at: String,
        starts: Vec<String>,
        secrets: &mut Vec<String>,
    ) {
        let mut nodes = self.applicable_all(&starts, value);
        if nodes
            .iter()
            .any(|n| self.node(n).get("x-secret") == Some(&Value::Bool(true)))
        {
            secrets.push(at);
            return;
        }
        match value {
            Value::Object(_) => {
                for _ in 0..MAX_ROUNDS {
                    let Value::Object(map) = &mut *value else {
                        break;
                    };
                    let mut changed = false;
                    for n in &nodes {
                        for (k, sub) in properties(self.node(n)) {
                            if !map.contains_key(k) {
                                if let Some(d) = self.default_of(sub) {
                                    map.insert(k.clone(), d);
                                    changed = true;
                                }
                            }
                        }
                    }
                    if !changed {
                        break;
                    }
                    nodes = self.applicable_all(&starts, value);
                }
                let Value::Object(map) = value else {
                    return;
                };
                for n in &nodes {
                    for (k, _) in properties(self.node(n)) {
                        map.entry(k.clone()).or_insert(Value::Null);
                    }
                }
                let keys: Vec<String> = map.keys().cloned().collect();
                for k in keys {
                    let child: Vec<String> = nodes
                        .iter()
                        .flat_map(|n| self.children_for_key(n, &k))
                        .collect();
                    if let Some(v) = map.get_mut(&k) {
                        if !v.is_null() {
                            self.fill_at(v, format!("{at}/{}", escape_pointer(&k)), child, secrets);
                        }
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    let child = self.item_children(&nodes, i);
                    self.fill_at(v, format!("{at}/{i}"), child, secrets);
                }
            }
            _ => {}
        }
    }

    /// Keys of mappings in `site` that no applicable subschema declares:
    /// `(instance pointer of the key, the declared names)`. A mapping whose
    /// subschemas declare no `properties` is free-form; a key allowed by
    /// a matching `patternProperties` or an `additionalProperties` other
    /// than `false` is declared.
    pub(crate) fn undeclared(&self, site: &Value) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        self.undeclared_at(site, String::new(), vec![String::new()], &mut out);
        out
    }

    fn undeclared_at(
        &self,
        value: &Value,
        at: String,
        starts: Vec<String>,
        out: &mut Vec<(String, Vec<String>)>,
    ) {
        let nodes = self.applicable_all(&starts, value);
        if nodes
            .iter()
            .any(|n| self.node(n).get("x-secret") == Some(&Value::Bool(true)))
        {
            return;
        }
        match value {
            Value::Object(map) => {
                let mut known: Vec<String> = nodes
                    .iter()
                    .flat_map(|n| properties(self.node(n)).map(|(k, _)| k.clone()))
                    .collect();
                known.sort();
                known.dedup();
                let declares = nodes
                    .iter()
                    .any(|n| self.node(n).get("properties").is_some());
                let open = nodes.iter().any(|n| {
                    self.node(n)
                        .get("additionalProperties")
                        .is_some_and(|a| a != &Value::Bool(false))
                });
                for (k, v) in map {
                    let child: Vec<String> = nodes
                        .iter()
                        .flat_map(|n| self.children_for_key(n, k))
                        .collect();
                    let declared = known.contains(k)
                        || child.iter().any(|c| c.contains("/patternProperties/"))
                        || open;
                    let here = format!("{at}/{}", escape_pointer(k));
                    if declares && !declared {
                        out.push((here, known.clone()));
                    } else if !v.is_null() {
                        self.undeclared_at(v, here, child, out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    let child = self.item_children(&nodes, i);
                    self.undeclared_at(v, format!("{at}/{i}"), child, out);
                }
            }
            _ => {}
        }
    }

    fn node(&self, pointer: &str) -> &'a Value {
        static NOTHING: Value = Value::Bool(true);
        self.root.pointer(pointer).unwrap_or(&NOTHING)
    }

    /// Every subschema that applies to `value` from `starts`.
    fn applicable_all(&self, starts: &[String], value: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for s in starts {
            self.applicable(s, value, &mut out, 0);
        }
        out
    }

    fn applicable(&self, ptr: &str, value: &Value, out: &mut Vec<String>, depth: usize) {
        if depth > MAX_DEPTH || out.iter().any(|p| p == ptr) {
            return;
        }
        out.push(ptr.to_string());
        let node = self.node(ptr);
        let Value::Object(node) = node else {
            return;
        };
        if let Some(Value::String(r)) = node.get("$ref") {
            if let Some(target) = r.strip_prefix('#') {
                self.applicable(target, value, out, depth + 1);
            }
        }
        if let Some(Value::Array(all)) = node.get("allOf") {
            for i in 0..all.len() {
                self.applicable(&format!("{ptr}/allOf/{i}"), value, out, depth + 1);
            }
        }
        if node.contains_key("if") {
            let branch = if self.matches(&format!("{ptr}/if"), value) {
                "then"
            } else {
                "else"
            };
            if node.contains_key(branch) {
                self.applicable(&format!("{ptr}/{branch}"), value, out, depth + 1);
            }
        }
        for combinator in ["anyOf", "oneOf"] {
            if let Some(Value::Array(any)) = node.get(combinator) {
                for i in 0..any.len() {
                    let p = format!("{ptr}/{combinator}/{i}");
                    if self.matches(&p, value) {
                        self.applicable(&p, value, out, depth + 1);
                    }
                }
            }
        }
        if let (Some(Value::Object(deps)), Value::Object(map)) =
            (node.get("dependentSchemas"), value)
        {
            for k in deps.keys() {
                if map.contains_key(k) {
                    let p = format!("{ptr}/dependentSchemas/{}", escape_pointer(k));
                    self.applicable(&p, value, out, depth + 1);
                }
            }
        }
    }

    /// Whether `value` is valid against the subschema at `ptr`.
    fn matches(&self, ptr: &str, value: &Value) -> bool {
        let mut tests = self.tests.borrow_mut();
        let test = tests.entry(ptr.to_string()).or_insert_with(|| {
            // The document registered under its own `$id` (or a name of
            // ours), and a schema that refers to the subschema in it, so
            // the `$ref`s inside resolve as in the whole schema.
            let uri = self
                .root
                .get("$id")
                .and_then(Value::as_str)
                .unwrap_or(ROOT_URI)
                .to_string();
            let wrapper = serde_json::json!({
                "$schema": crate::schema::DIALECT,
                "$ref": format!("{uri}#{ptr}"),
            });
            let registry = Registry::new()
                .add(uri.as_str(), self.root.clone())
                .ok()?
                .prepare()
                .ok()?;
            jsonschema::draft202012::options()
                .offline()
                .with_registry(&registry)
                .build(&wrapper)
                .ok()
        });
        test.as_ref().is_some_and(|v| v.is_valid(value))
    }

    /// The default a property's subschema gives: its own `default`, else
    /// the one of what it refers to.
    fn default_of(&self, sub: &Value) -> Option<Value> {
        let mut node = sub;
        for _ in 0..MAX_DEPTH {
            if let Some(d) = node.get("default") {
                return Some(d.clone());
            }
            let target = node.get("$ref")?.as_str()?.strip_prefix('#')?;
            node = self.root.pointer(target)?;
        }
        None
    }

    /// The subschemas for the value under `key` of a mapping the schema
    /// at `ptr` applies to.
    fn children_for_key(&self, ptr: &str, key: &str) -> Vec<String> {
        let node = self.node(ptr);
        if node.get("properties").and_then(|p| p.get(key)).is_some() {
            return vec![format!("{ptr}/properties/{}", escape_pointer(key))];
        }
        let mut out = Vec::new();
        if let Some(Value::Object(patterns)) = node.get("patternProperties") {
            for p in patterns.keys() {
                if regex_matches(p, key) {
                    out.push(format!("{ptr}/patternProperties/{}", escape_pointer(p)));
                }
            }
        }
        if out.is_empty() && node.get("additionalProperties").is_some() {
            out.push(format!("{ptr}/additionalProperties"));
        }
        out
    }

    /// The subschemas for item `i` of a list the schemas at `nodes` apply to.
    fn item_children(&self, nodes: &[String], i: usize) -> Vec<String> {
        nodes
            .iter()
            .filter_map(|n| self.child_for_item(n, i))
            .collect()
    }

    /// The subschema for item `i` of a list the schema at `ptr` applies to.
    fn child_for_item(&self, ptr: &str, i: usize) -> Option<String> {
        let node = self.node(ptr);
        let prefix = node
            .get("prefixItems")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if i < prefix {
            Some(format!("{ptr}/prefixItems/{i}"))
        } else if node.get("items").is_some() {
            Some(format!("{ptr}/items"))
        } else {
            None
        }
    }
}

fn properties(node: &Value) -> impl Iterator<Item = (&String, &Value)> {
    node.get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(Map::iter)
}

/// Whether `key` matches the ECMA-262 pattern `pattern`, as the validator
/// would decide it.
fn regex_matches(pattern: &str, key: &str) -> bool {
    let schema = serde_json::json!({"$schema": crate::schema::DIALECT, "propertyNames": {"pattern": pattern}});
    let mut probe = Map::new();
    probe.insert(key.to_string(), Value::Null);
    jsonschema::draft202012::options()
        .build(&schema)
        .is_ok_and(|v| v.is_valid(&Value::Object(probe)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "$schema": crate::schema::DIALECT,
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "port": {"type": "integer", "default": 80},
                "extra": {"type": "object", "default": {}, "properties": {"level": {"default": 3}}},
                "token": {"x-secret": true},
                "dbs": {"type": "array", "items": {"$ref": "#/$defs/db"}}
            },
            "$defs": {
                "db": {
                    "type": "object",
                    "properties": {
                        "type": {"enum": ["postgresql", "mysql"]},
                        "port": {"type": "integer"},
                        "password": {"x-secret": true}
                    },
                    "allOf": [
                        {"if": {"properties": {"type": {"const": "postgresql"}}},
                         "then": {"properties": {"port": {"default": 5432}}}},
                        {"if": {"properties": {"type": {"const": "mysql"}}},
                         "then": {"properties": {"port": {"default": 3306}, "engineOnly": {"default": true}}}}
                    ]
                }
            }
        })
    }

    #[test]
    fn defaults_fill_what_is_left_out_even_under_a_condition() {
        let s = schema();
        let site = json!({
            "name": "a",
            "token": {"env": "T"},
            "dbs": [
                {"type": "postgresql", "password": {"file": "p"}},
                {"type": "mysql", "port": 3307, "password": {"env": "P"}},
            ]
        });
        let f = Walker::new(&s).fill(&site);
        assert_eq!(f.value["port"], 80);
        assert_eq!(f.value["extra"], json!({"level": 3}));
        assert_eq!(f.value["dbs"][0]["port"], 5432);
        assert!(f.value["dbs"][0].get("engineOnly").is_none());
        assert_eq!(f.value["dbs"][1]["port"], 3307, "a value given is kept");
        assert_eq!(f.value["dbs"][1]["engineOnly"], true);
        assert_eq!(
            f.secrets,
            ["/dbs/0/password", "/dbs/1/password", "/token"],
            "secrets in key order (mappings are sorted)"
        );
    }

    #[test]
    fn declared_fields_left_out_are_present_as_null() {
        let s = schema();
        let f = Walker::new(&s).fill(&json!({"name": "a", "unset": null}));
        assert_eq!(f.value["token"], Value::Null);
        assert_eq!(f.value["dbs"], Value::Null);
        assert!(
            f.value.get("unset").is_none(),
            "a null the file wrote is absent"
        );
        assert!(f.secrets.is_empty(), "{:?}", f.secrets);
    }

    #[test]
    fn a_schema_that_refers_to_itself_ends() {
        let s = json!({"$schema": crate::schema::DIALECT, "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"});
        let f = Walker::new(&s).fill(&json!({"x": 1}));
        assert_eq!(f.value, json!({"x": 1}));
    }

    #[test]
    fn keys_no_subschema_declares_are_found() {
        let s = json!({
            "$schema": crate::schema::DIALECT,
            "properties": {
                "a": {"properties": {"x": {}}},
                "free": {"type": "object"},
                "open": {"properties": {"y": {}}, "additionalProperties": {"type": "string"}},
                "pat": {"properties": {"z": {}}, "patternProperties": {"^p": {}}},
                "dbs": {"items": {"$ref": "#/$defs/db"}}
            },
            "$defs": {"db": {"properties": {"type": {}},
                "if": {"properties": {"type": {"const": "m"}}}, "then": {"properties": {"mode": {}}}}}
        });
        let got = Walker::new(&s).undeclared(&json!({
            "a": {"x": 1, "typo": 2},
            "free": {"anything": 1},
            "open": {"extra": "s"},
            "pat": {"p1": 1, "q": 2},
            "dbs": [{"type": "m", "mode": 1}, {"type": "n", "mode": 1}],
            "top": 1
        }));
        let got: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(got, ["/a/typo", "/dbs/1/mode", "/pat/q", "/top"]);
    }

    #[test]
    fn pattern_and_additional_properties_reach_secrets() {
        let s = json!({
            "$schema": crate::schema::DIALECT,
            "properties": {
                "keys": {"patternProperties": {"^k": {"x-secret": true}}},
                "more": {"additionalProperties": {"x-secret": true}}
            }
        });
        let f = Walker::new(&s)
            .fill(&json!({"keys": {"k1": {"env": "A"}, "z": 1}, "more": {"m": {"env": "B"}}}));
        assert_eq!(f.secrets, ["/keys/k1", "/more/m"]);
    }
}
