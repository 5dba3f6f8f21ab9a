//! The site file's schema: JSON Schema 2020-12, self-contained (every
//! `$ref` points inside the document), with these keywords of ours:
//!
//! - `x-secret: true`: the value is where a secret is, `{file: PATH}` or
//!   `{env: NAME}`, never the secret itself; no message ever shows what was
//!   written there.
//! - `x-url: [SCHEMES]`: text that is a URL of one of the schemes, with a
//!   valid host.
//! - `x-host: host-port | hostname`: a host name or address, with an
//!   optional `:PORT` for `host-port` (IPv6 in brackets).
//! - `x-unique-by: KEY`: the items of a list (mappings) have distinct KEYs.
//! - `x-expected: TEXT`: what a value must be, in words, for the message
//!   when a `pattern`, length or count check fails
//!   (`expected lowercase letters, digits and '-' (found "Lab_1")`).
//!
//! Errors are [`Problem`]s: the field path in the site file's own words
//! (`workspaces[1].database.sslMode`) and a message that says what was
//! expected, what was found, and under which condition (`required when
//! scenario is air-gapped`); a misspelt key gets a did-you-mean.

use std::collections::BTreeMap;
use std::fmt;

use airgap_format::display::quote;
use jsonschema::error::ValidationErrorKind;
use jsonschema::{Keyword, ValidationError, Validator};
use serde_json::Value;

/// The one dialect a site schema is written in.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// What a secret field takes, and why.
pub const SECRET_FORM: &str = "expected {file: PATH} or {env: NAME}; the value itself never goes in the site file (write it into a file, or set an environment variable)";

/// One thing wrong with a site file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The field, as `controlPlane.database.port` or `workspaces[0].name`
    /// (empty for the whole file).
    pub path: String,
    /// What is wrong and what is expected, on one line; never a secret.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A compiled site schema.
pub struct SiteSchema {
    schema: Value,
    validator: Validator,
}

impl fmt::Debug for SiteSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteSchema").finish_non_exhaustive()
    }
}

impl SiteSchema {
    /// Compiles `schema`. It must declare `$schema` 2020-12, be valid
    /// under that dialect's meta-schema, use our keywords as documented,
    /// and keep every `$ref` inside itself. Errors name the place in the
    /// schema (a JSON pointer) and what is wrong.
    pub fn new(schema: Value) -> Result<SiteSchema, String> {
        match schema.get("$schema").and_then(Value::as_str) {
            Some(DIALECT) => {}
            Some(other) => {
                return Err(format!(
                    "$schema: {} is not supported: write \"{DIALECT}\"",
                    quote(other)
                ))
            }
            None => return Err(format!("$schema: required: write \"{DIALECT}\"")),
        }
        if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
            return Err(format!(
                "{}: not valid JSON Schema 2020-12: {}",
                pointer_or_root(e.instance_path().as_str()),
                one_line(&e.to_string())
            ));
        }
        check_keywords(&schema, "")?;
        let validator = jsonschema::draft202012::options()
            .with_keyword("x-secret", |_, v, _| {
                if v != &Value::Bool(true) {
                    return Err(ValidationError::custom("x-secret takes true"));
                }
                Ok(Box::new(Secret) as Box<dyn for<'i> Keyword<'i>>)
            })
            .with_keyword("x-url", |_, v, _| {
                let schemes = url_schemes(v).map_err(ValidationError::custom)?;
                Ok(Box::new(Url(schemes)) as Box<dyn for<'i> Keyword<'i>>)
            })
            .with_keyword("x-host", |_, v, _| {
                let port = match v.as_str() {
                    Some("host-port") => true,
                    Some("hostname") => false,
                    _ => {
                        return Err(ValidationError::custom(
                            "x-host takes host-port or hostname",
                        ))
                    }
                };
                Ok(Box::new(Host { port }) as Box<dyn for<'i> Keyword<'i>>)
            })
            .with_keyword("x-unique-by", |_, v, _| {
                let key = v
                    .as_str()
                    .filter(|k| !k.is_empty())
                    .ok_or_else(|| ValidationError::custom("x-unique-by takes a key name"))?;
                Ok(Box::new(UniqueBy(key.to_string())) as Box<dyn for<'i> Keyword<'i>>)
            })
            .build(&schema)
            .map_err(|e| {
                format!(
                    "{}: {}",
                    pointer_or_root(e.instance_path().as_str()),
                    one_line(&e.to_string())
                )
            })?;
        Ok(SiteSchema { schema, validator })
    }

    /// Reads and compiles a schema written as JSON or YAML; errors are
    /// `LINE:COLUMN: message` for text that does not read, else as
    /// [`SiteSchema::new`]'s.
    pub fn from_text(text: &str) -> Result<SiteSchema, String> {
        let value = crate::yaml::parse(text).map_err(|e| match e.position {
            Some((l, c)) => format!("{l}:{c}: {}", e.message),
            None => e.message,
        })?;
        SiteSchema::new(value)
    }

    /// `site` as the installer reads it once [`SiteSchema::check`] found
    /// nothing wrong: defaults applied, every declared field present, and
    /// where its secrets are ([`crate::fill`]).
    pub fn fill(&self, site: &Value) -> crate::Filled {
        crate::fill::Walker::new(&self.schema).fill(site)
    }

    /// The schema as given.
    pub fn value(&self) -> &Value {
        &self.schema
    }

    /// Everything wrong with `site`, one problem per field, in the order
    /// the schema met them; empty when it is valid. A field written with
    /// no value (`ingressHost:` or `~`) counts as absent, as YAML readers
    /// expect: see [`without_nulls`].
    pub fn check(&self, site: &Value) -> Vec<Problem> {
        let site = &without_nulls(site);
        // Per field, the most telling error: a secret's own, then a list
        // of allowed values, then the type, then the rest.
        let mut best: BTreeMap<String, (u8, usize, Problem)> = BTreeMap::new();
        for (n, e) in self.validator.iter_errors(site).enumerate() {
            for (rank, problem) in self.explain(site, &e) {
                let slot = best.entry(problem.path.clone());
                match slot {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert((rank, n, problem));
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        if rank < o.get().0 {
                            o.insert((rank, n, problem));
                        }
                    }
                }
            }
        }
        // Unknown keys are errors for every product, also where the schema
        // does not say additionalProperties: false (a typo is never
        // silently ignored); a schema that wants free keys says so.
        for (pointer, known) in crate::fill::Walker::new(&self.schema).undeclared(site) {
            let path = field_path(site, &pointer);
            if best.contains_key(&path) {
                continue;
            }
            let name = segments_of_instance(&pointer).pop().unwrap_or_default();
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            let mut message = if known.is_empty() {
                "unknown field".to_string()
            } else {
                format!("unknown field; expected one of {}", known.join(", "))
            };
            if let Some(close) = did_you_mean(&name, &known) {
                message.push_str(&format!("; did you mean {close}?"));
            }
            best.insert(path.clone(), (1, usize::MAX - 1, Problem { path, message }));
        }
        // A value `site init` left to fill in, whatever the schema says of
        // it (`CHANGE-ME` is a valid host name, for one).
        let mut left = Vec::new();
        placeholders_in(site, "", &mut left);
        for pointer in left {
            let path = field_path(site, &pointer);
            let message = format!(
                "still {}, as site init wrote it: write this site's value",
                crate::init::PLACEHOLDER
            );
            let n = best.get(&path).map_or(usize::MAX, |b| b.1);
            best.insert(path.clone(), (0, n, Problem { path, message }));
        }
        let mut out: Vec<(usize, Problem)> = best.into_values().map(|(_, n, p)| (n, p)).collect();
        out.sort_by_key(|(n, _)| *n);
        out.into_iter().map(|(_, p)| p).collect()
    }

    /// One error in words, with its rank (lower wins at the same field).
    fn explain(&self, site: &Value, e: &ValidationError<'_>) -> Vec<(u8, Problem)> {
        let instance = e.instance_path().as_str();
        let here = field_path(site, instance);
        let sub = parent_of(&self.schema, e.schema_path().as_str());
        let cond = self.condition(site, e);
        let found = || describe(e.instance());
        let in_secret = sub.is_some_and(|s| s.get("x-secret").is_some());
        let expected = sub
            .and_then(|s| s.get("x-expected"))
            .and_then(Value::as_str);
        let problem = |path: String, message: String| Problem { path, message };
        match e.kind() {
            ValidationErrorKind::Custom { message, .. } => {
                // Our keywords say which field below this one they mean
                // (`[1].name`, `env`) before a NUL.
                let (rel, message) = message.split_once('\0').unwrap_or(("", message));
                vec![(0, problem(join(&here, rel), message.to_string()))]
            }
            _ if in_secret => vec![(0, problem(here, SECRET_FORM.to_string()))],
            ValidationErrorKind::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                vec![(1, problem(join(&here, name), format!("required{cond}")))]
            }
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                let known: Vec<&str> = sub
                    .and_then(|s| s.get("properties"))
                    .and_then(Value::as_object)
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                unexpected
                    .iter()
                    .map(|name| {
                        let mut m = if known.is_empty() {
                            "unknown field".to_string()
                        } else {
                            format!("unknown field; expected one of {}", known.join(", "))
                        };
                        if let Some(close) = did_you_mean(name, &known) {
                            m.push_str(&format!("; did you mean {close}?"));
                        }
                        (1, problem(join(&here, name), m))
                    })
                    .collect()
            }
            ValidationErrorKind::FalseSchema => {
                vec![(1, problem(here, format!("not used{cond} (remove it)")))]
            }
            ValidationErrorKind::Enum { options } => {
                let list: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(plain).collect())
                    .unwrap_or_default();
                vec![(
                    1,
                    problem(
                        here,
                        format!(
                            "expected one of {}{cond} (found {})",
                            list.join(", "),
                            found()
                        ),
                    ),
                )]
            }
            ValidationErrorKind::Constant { expected_value } => vec![(
                1,
                problem(
                    here,
                    format!(
                        "expected {}{cond} (found {})",
                        plain(expected_value),
                        found()
                    ),
                ),
            )],
            ValidationErrorKind::Type { .. } => {
                let words = sub.map(type_words).unwrap_or_else(|| "another type".into());
                let range = sub.and_then(integer_range);
                let words = match range {
                    Some(r) => r,
                    None => words,
                };
                vec![(
                    2,
                    problem(here, format!("expected {words} (found {})", found())),
                )]
            }
            ValidationErrorKind::Minimum { .. }
            | ValidationErrorKind::Maximum { .. }
            | ValidationErrorKind::ExclusiveMinimum { .. }
            | ValidationErrorKind::ExclusiveMaximum { .. } => {
                let words = sub
                    .and_then(integer_range)
                    .unwrap_or_else(|| one_line(&e.to_string()));
                vec![(
                    3,
                    problem(here, format!("expected {words} (found {})", found())),
                )]
            }
            _ => {
                let words = match expected {
                    Some(x) => x.to_string(),
                    None => generic_words(e.kind()),
                };
                vec![(
                    3,
                    problem(here, format!("expected {words}{cond} (found {})", found())),
                )]
            }
        }
    }

    /// ` when FIELD is VALUE` for an error under a `then` (or ` when
    /// FIELD is not VALUE` under an `else`) whose `if` tests one field's
    /// `const` or `enum`; empty otherwise.
    fn condition(&self, site: &Value, e: &ValidationError<'_>) -> String {
        let path = e.evaluation_path().as_str();
        let segments: Vec<String> = segments_of_instance(path);
        let Some(at) = segments.iter().rposition(|s| s == "then" || s == "else") else {
            return String::new();
        };
        let branch = segments[at].as_str();
        // The instance the `if` applied to: the error's, less the steps
        // the schema took into it after the branch.
        let steps = instance_steps(&segments[at + 1..]);
        let inst: Vec<String> = segments_of_instance(e.instance_path().as_str());
        // A `required` error sits at the object, a `false` at the field.
        let keep = inst.len().saturating_sub(steps);
        let object: String = inst[..keep]
            .iter()
            .map(|s| format!("/{}", escape_pointer(s)))
            .collect();
        let evaluated = evaluation_to_schema(&self.schema, &segments[..at]);
        let Some(test) = evaluated.and_then(|s| s.get("if")) else {
            return String::new();
        };
        let Some((field, values)) = single_field_test(test) else {
            return String::new();
        };
        let field_path = join(&field_path(site, &object), &field);
        let shown: Vec<String> = values.iter().map(plain).collect();
        match (branch, shown.len()) {
            ("then", 1) => format!(" when {field_path} is {}", shown[0]),
            ("then", _) => format!(" when {field_path} is one of {}", shown.join(", ")),
            (_, 1) => format!(" when {field_path} is not {}", shown[0]),
            _ => format!(" when {field_path} is none of {}", shown.join(", ")),
        }
    }
}

/// The JSON pointers of the text values that are
/// [`crate::init::PLACEHOLDER`].
fn placeholders_in(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s == crate::init::PLACEHOLDER => out.push(at.to_string()),
        Value::Object(m) => {
            for (k, v) in m {
                placeholders_in(v, &format!("{at}/{}", escape_pointer(k)), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                placeholders_in(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// `site` with every mapping entry whose value is null removed, at every
/// depth (list items stay): what the schema checks and the installer
/// reads.
pub fn without_nulls(site: &Value) -> Value {
    match site {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// `x-secret`: `{file: PATH}` or `{env: NAME}`, exactly one.
struct Secret;

impl<'i> Keyword<'i> for Secret {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match secret_problem(instance) {
            Some(m) => Err(ValidationError::custom(m)),
            None => Ok(()),
        }
    }
    fn is_valid(&self, instance: &'i Value) -> bool {
        secret_problem(instance).is_none()
    }
}

fn secret_problem(v: &Value) -> Option<String> {
    let Some(map) = v.as_object() else {
        return Some(SECRET_FORM.to_string());
    };
    if let Some(other) = map.keys().find(|k| *k != "file" && *k != "env") {
        return Some(format!("unknown field {}; {SECRET_FORM}", quote(other)));
    }
    match (map.get("file"), map.get("env")) {
        (Some(_), Some(_)) | (None, None) => Some(
            "expected exactly one of file or env (the value itself never goes in the site file)"
                .into(),
        ),
        (Some(f), None) => match f.as_str() {
            Some(p) if !p.is_empty() => None,
            _ => Some("file\0expected the path of the file that holds the value".into()),
        },
        (None, Some(e)) => match e.as_str() {
            Some(n)
                if !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                None
            }
            Some(n) => Some(format!(
                "env\0{} is not an environment variable name",
                quote(n)
            )),
            None => Some("env\0expected the name of an environment variable".into()),
        },
    }
}

/// `x-url`: a URL of one of the schemes, with a valid host.
struct Url(Vec<String>);

impl<'i> Keyword<'i> for Url {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match instance.as_str().and_then(|u| url_problem(u, &self.0)) {
            Some(m) => Err(ValidationError::custom(m)),
            None => Ok(()),
        }
    }
    fn is_valid(&self, instance: &'i Value) -> bool {
        instance
            .as_str()
            .and_then(|u| url_problem(u, &self.0))
            .is_none()
    }
}

fn url_schemes(v: &Value) -> Result<Vec<String>, String> {
    let list: Option<Vec<String>> = v.as_array().map(|a| {
        a.iter()
            .filter_map(|s| s.as_str())
            .filter(|s| {
                !s.is_empty()
                    && s.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '+' || c == '-'
                    })
            })
            .map(str::to_string)
            .collect()
    });
    match list {
        Some(l) if !l.is_empty() && Some(l.len()) == v.as_array().map(Vec::len) => Ok(l),
        _ => Err("x-url takes a list of URL schemes such as [https]".into()),
    }
}

/// What is wrong with `url` as a URL of one of `schemes` with a valid
/// host, in words; `None` when nothing is.
pub fn url_problem<S: AsRef<str>>(url: &str, schemes: &[S]) -> Option<String> {
    let expected = schemes
        .iter()
        .map(|s| format!("{}://", s.as_ref()))
        .collect::<Vec<_>>()
        .join(" or ");
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some(format!("{} is not a URL: expected {expected}…", quote(url)));
    };
    if !schemes.iter().any(|s| s.as_ref() == scheme) {
        return Some(format!("{}: expected {expected}…", quote(url)));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if !airgap_registry::host::valid_host(host)
        || url.chars().any(|c| c.is_whitespace() || c == '"')
    {
        return Some(format!("{} has no valid host", quote(url)));
    }
    None
}

/// `x-host`: a host name or address, with a port when allowed.
struct Host {
    port: bool,
}

impl<'i> Keyword<'i> for Host {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match instance.as_str().and_then(|h| self.problem(h)) {
            Some(m) => Err(ValidationError::custom(m)),
            None => Ok(()),
        }
    }
    fn is_valid(&self, instance: &'i Value) -> bool {
        instance.as_str().and_then(|h| self.problem(h)).is_none()
    }
}

impl Host {
    fn problem(&self, h: &str) -> Option<String> {
        let valid = airgap_registry::host::valid_host(h);
        // A bracketed IPv6 address has colons of its own.
        let has_port = h
            .rsplit_once(':')
            .is_some_and(|(a, _)| !a.is_empty() && (!a.starts_with('[') || a.ends_with(']')));
        match (valid, self.port) {
            (true, true) => None,
            (true, false) if !has_port || h.starts_with('[') && h.ends_with(']') => None,
            (_, true) => Some(format!(
                "expected HOST[:PORT] without a scheme (found {})",
                quote(h)
            )),
            (_, false) => Some(format!("{} is not a host name", quote(h))),
        }
    }
}

/// `x-unique-by`: no two items with the same KEY.
struct UniqueBy(String);

impl<'i> Keyword<'i> for UniqueBy {
    fn validate(&self, instance: &'i Value) -> Result<(), ValidationError<'i>> {
        match self.problem(instance) {
            Some(m) => Err(ValidationError::custom(m)),
            None => Ok(()),
        }
    }
    fn is_valid(&self, instance: &'i Value) -> bool {
        self.problem(instance).is_none()
    }
}

impl UniqueBy {
    fn problem(&self, v: &Value) -> Option<String> {
        let items = v.as_array()?;
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            let Some(key) = item.get(&self.0) else {
                continue;
            };
            let shown = plain(key);
            if let Some(first) = seen.insert(shown.clone(), i) {
                return Some(format!(
                    "[{i}].{}\0{shown} is listed twice (also at [{first}])",
                    self.0
                ));
            }
        }
        None
    }
}

/// Refuses `$ref`s that leave the document and our keywords written
/// where they do nothing.
fn check_keywords(v: &Value, at: &str) -> Result<(), String> {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let here = format!("{at}/{}", escape_pointer(k));
                if (k == "$ref" || k == "$dynamicRef")
                    && !child.as_str().is_some_and(|r| r.starts_with('#'))
                {
                    return Err(format!(
                        "{here}: only references inside the schema (#/$defs/…) are followed; a bundle carries one self-contained schema"
                    ));
                }
                if k == "x-expected" && !child.is_string() {
                    return Err(format!("{here}: x-expected takes text"));
                }
                check_keywords(child, &here)?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                check_keywords(child, &format!("{at}/{i}"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The subschema holding the keyword at `pointer` (its last step removed).
fn parent_of<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    let cut = pointer.rfind('/')?;
    root.pointer(&pointer[..cut])
}

/// Follows an evaluation path (which may pass through `$ref`s) to the
/// subschema it ends at.
fn evaluation_to_schema<'a>(root: &'a Value, steps: &[String]) -> Option<&'a Value> {
    let mut node = root;
    for step in steps {
        if step == "$ref" {
            let target = node.get("$ref")?.as_str()?;
            node = root.pointer(target.strip_prefix('#')?)?;
        } else {
            node = match node {
                Value::Object(m) => m.get(step.as_str())?,
                Value::Array(a) => a.get(step.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
    }
    Some(node)
}

/// How many steps into the instance the schema steps after a branch take.
fn instance_steps(steps: &[String]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < steps.len() {
        match steps[i].as_str() {
            "properties" | "patternProperties" | "prefixItems" | "dependentSchemas" => {
                // The next step is a name (or index), not a keyword.
                if steps[i].as_str() != "dependentSchemas" {
                    n += 1;
                }
                i += 2;
            }
            "items"
            | "additionalProperties"
            | "unevaluatedProperties"
            | "contains"
            | "propertyNames"
            | "unevaluatedItems" => {
                n += 1;
                i += 1;
            }
            "allOf" | "anyOf" | "oneOf" | "$defs" => i += 2,
            _ => i += 1,
        }
    }
    n
}

/// An `if` that tests one field: `{properties: {F: {const: V}}}` (or
/// `enum`), perhaps with `required: [F]`.
fn single_field_test(test: &Value) -> Option<(String, Vec<Value>)> {
    let props = test.get("properties")?.as_object()?;
    if props.len() != 1 {
        return None;
    }
    let (field, s) = props.iter().next()?;
    if let Some(c) = s.get("const") {
        return Some((field.clone(), vec![c.clone()]));
    }
    let values = s.get("enum")?.as_array()?.clone();
    Some((field.clone(), values))
}

/// `/a/1/b` in the instance `site` → `a[1].b`.
pub fn field_path(site: &Value, pointer: &str) -> String {
    let mut out = String::new();
    let mut node = Some(site);
    for seg in segments_of_instance(pointer) {
        match node {
            Some(Value::Array(items)) => {
                out.push_str(&format!("[{seg}]"));
                node = seg.parse::<usize>().ok().and_then(|i| items.get(i));
            }
            other => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&seg);
                node = other.and_then(|v| v.get(&seg));
            }
        }
    }
    out
}

fn segments_of_instance(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// A key as a JSON pointer segment (`~` and `/` escaped).
pub(crate) fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn join(path: &str, name: &str) -> String {
    if name.is_empty() {
        path.to_string()
    } else if path.is_empty() {
        name.to_string()
    } else if name.starts_with('[') {
        format!("{path}{name}")
    } else {
        format!("{path}.{name}")
    }
}

fn pointer_or_root(p: &str) -> String {
    if p.is_empty() {
        "the schema".to_string()
    } else {
        format!("the schema at {p}")
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A value as a message shows it: text quoted, lists and mappings by kind.
fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Array(a) if a.is_empty() => "an empty list".into(),
        Value::Array(_) => "a list".into(),
        Value::Object(m) if m.is_empty() => "an empty mapping".into(),
        Value::Object(_) => "a mapping".into(),
        Value::Null => "nothing".into(),
        other => other.to_string(),
    }
}

/// A value in a list of allowed ones: text bare, the rest as JSON.
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `type` in words.
fn type_words(schema: &Value) -> String {
    let one = |t: &str| match t {
        "integer" => "a whole number",
        "number" => "a number",
        "string" => "text",
        "boolean" => "true or false",
        "array" => "a list",
        "object" => "a mapping of fields (KEY: VALUE)",
        "null" => "nothing",
        _ => "another type",
    };
    match schema.get("type") {
        Some(Value::String(t)) => one(t).to_string(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(one)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => "another type".into(),
    }
}

/// `a whole number from MIN to MAX` when the schema bounds an integer.
fn integer_range(schema: &Value) -> Option<String> {
    let kind = if schema.get("type").and_then(Value::as_str) == Some("integer") {
        "a whole number"
    } else {
        "a number"
    };
    match (schema.get("minimum"), schema.get("maximum")) {
        (Some(lo), Some(hi)) => Some(format!("{kind} from {lo} to {hi}")),
        (Some(lo), None) => Some(format!("{kind} of at least {lo}")),
        (None, Some(hi)) => Some(format!("{kind} of at most {hi}")),
        (None, None) => None,
    }
}

/// Words for a failed check with no `x-expected`.
fn generic_words(kind: &ValidationErrorKind) -> String {
    match kind {
        ValidationErrorKind::Pattern { pattern } => format!("text matching {pattern}"),
        ValidationErrorKind::MinLength { limit } => format!("at least {limit} characters"),
        ValidationErrorKind::MaxLength { limit } => format!("at most {limit} characters"),
        ValidationErrorKind::MinItems { limit } => format!("at least {limit} items"),
        ValidationErrorKind::MaxItems { limit } => format!("at most {limit} items"),
        ValidationErrorKind::MinProperties { limit } => format!("at least {limit} fields"),
        ValidationErrorKind::MaxProperties { limit } => format!("at most {limit} fields"),
        ValidationErrorKind::UniqueItems => "no item twice".into(),
        ValidationErrorKind::Format { format } => format!("a {format}"),
        ValidationErrorKind::MultipleOf { .. } => "a multiple of the schema's step".into(),
        ValidationErrorKind::AnyOf { .. }
        | ValidationErrorKind::OneOfNotValid { .. }
        | ValidationErrorKind::OneOfMultipleValid { .. }
        | ValidationErrorKind::Not { .. } => "one of the forms the schema allows".into(),
        _ => "a value the schema allows".into(),
    }
}

/// The known key closest to `name`, when it is close enough to be a typo.
fn did_you_mean<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    known
        .iter()
        .map(|k| {
            (
                strsim::damerau_levenshtein(&lower, &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, k)| *d <= (k.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const REFERENCE: &str = include_str!("../../templates/site.schema.json");
    const EXAMPLE: &str = include_str!("../../manifests/site.example.yaml");

    fn reference() -> SiteSchema {
        SiteSchema::new(serde_json::from_str(REFERENCE).unwrap()).unwrap()
    }

    fn problems(schema: &SiteSchema, yaml: &str) -> Vec<String> {
        let v = crate::yaml::parse(yaml).unwrap();
        schema.check(&v).iter().map(|p| p.to_string()).collect()
    }

    fn example_with(from: &str, to: &str) -> String {
        assert!(EXAMPLE.contains(from), "the example has no {from:?}");
        EXAMPLE.replacen(from, to, 1)
    }

    #[test]
    fn the_reference_example_is_valid() {
        assert_eq!(problems(&reference(), EXAMPLE), Vec::<String>::new());
    }

    #[test]
    fn messages_name_the_field_the_rule_and_the_condition() {
        let s = reference();
        for (from, to, want) in [
            (
                "port: 5432",
                "port: 99999",
                "controlPlane.database.port: expected a whole number from 1 to 65535 (found 99999)",
            ),
            (
                "port: 5432",
                "port: five",
                "controlPlane.database.port: expected a whole number from 1 to 65535 (found \"five\")",
            ),
            (
                "scenario: air-gapped",
                "scenario: 7",
                "scenario: expected one of air-gapped, hybrid (found 7)",
            ),
            (
                "sslMode: REQUIRED",
                "sslMode: require",
                "workspaces[1].database.sslMode: expected one of VERIFY_IDENTITY, VERIFY_CA, REQUIRED, PREFERRED, DISABLED when workspaces[1].database.type is mysql (found \"require\")",
            ),
            (
                "  prefix: platform",
                "  prefx: platform",
                "registry.prefx: unknown field; expected one of host, plainHttp, prefix; did you mean prefix?",
            ),
            (
                "name: example-research",
                "name: Example_Research",
                "name: expected lowercase letters, digits and '-', at most 63, not starting or ending with '-' (found \"Example_Research\")",
            ),
            (
                "    sslMode: verify-full      #",
                "    #",
                "controlPlane.database.sslMode: required",
            ),
            (
                "  type: oidc ",
                "  type: ldap ",
                "identityProvider.ldap: required when identityProvider.type is ldap",
            ),
            (
                "url: https://cp.internal.example",
                "url: http://cp.internal.example",
                "controlPlane.url: \"http://cp.internal.example\": expected https://…",
            ),
            (
                "host: registry.internal.example:5000",
                "host: https://registry.internal.example:5000",
                "registry.host: expected HOST[:PORT] without a scheme (found \"https://registry.internal.example:5000\")",
            ),
            (
                "  - name: imaging",
                "  - name: genomics",
                "workspaces[1].name: genomics is listed twice (also at [0])",
            ),
            (
                "      env: IMAGING_DB_PASSWORD",
                "      env: IMAGING DB",
                "workspaces[1].database.password.env: \"IMAGING DB\" is not an environment variable name",
            ),
        ] {
            let got = problems(&s, &example_with(from, to));
            assert!(got.contains(&want.to_string()), "{to}: {got:#?}");
        }
    }

    #[test]
    fn a_hybrid_site_is_told_what_it_does_not_use() {
        let got = problems(
            &reference(),
            &example_with("scenario: air-gapped", "scenario: hybrid"),
        );
        for want in [
            "controlPlane.database: not used when scenario is hybrid (remove it)",
            "identityProvider: not used when scenario is hybrid (remove it)",
            "license: not used when scenario is hybrid (remove it)",
        ] {
            assert!(got.contains(&want.to_string()), "{got:#?}");
        }
    }

    #[test]
    fn a_secret_written_as_its_value_is_never_shown() {
        let got = problems(
            &reference(),
            &example_with(
                "    password:\n      file: site-secrets/control-plane-db.password",
                "    password: hunter2",
            ),
        );
        assert_eq!(
            got,
            [format!("controlPlane.database.password: {SECRET_FORM}")]
        );
        let got = problems(
            &reference(),
            &example_with(
                "license:\n  file: site-secrets/platform.lic",
                "license: {file: a, env: B}",
            ),
        );
        assert_eq!(got, ["license: expected exactly one of file or env (the value itself never goes in the site file)"]);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = example_with("port: 5432", "port: 0")
            .replace("bucket: platform-artifacts", "bucket: X");
        let got = problems(&reference(), &text);
        assert_eq!(got.len(), 2, "{got:#?}");
    }

    #[test]
    fn schemas_are_refused_with_the_place_and_the_fix() {
        let e = SiteSchema::new(json!({"type": "object"})).unwrap_err();
        assert!(e.starts_with("$schema: required"), "{e}");
        let e = SiteSchema::new(json!({"$schema": "http://json-schema.org/draft-07/schema#"}))
            .unwrap_err();
        assert!(e.contains("is not supported"), "{e}");
        let e = SiteSchema::new(json!({"$schema": DIALECT, "type": "objekt"})).unwrap_err();
        assert!(e.contains("not valid JSON Schema 2020-12"), "{e}");
        let e = SiteSchema::new(json!({"$schema": DIALECT, "properties": {"a": {"$ref": "https://example.org/s.json"}}})).unwrap_err();
        assert!(
            e.starts_with("/properties/a/$ref: only references inside the schema"),
            "{e}"
        );
        let e =
            SiteSchema::new(json!({"$schema": DIALECT, "properties": {"a": {"x-url": "https"}}}))
                .unwrap_err();
        assert!(e.contains("x-url takes a list"), "{e}");
        let e =
            SiteSchema::new(json!({"$schema": DIALECT, "properties": {"a": {"x-host": "any"}}}))
                .unwrap_err();
        assert!(e.contains("x-host takes host-port or hostname"), "{e}");
    }

    #[test]
    fn did_you_mean_only_when_close() {
        assert_eq!(did_you_mean("prefx", &["host", "prefix"]), Some("prefix"));
        assert_eq!(
            did_you_mean("ingresHost", &["url", "ingressHost"]),
            Some("ingressHost")
        );
        assert_eq!(did_you_mean("colour", &["host", "prefix"]), None);
    }
}
