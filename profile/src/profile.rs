//! `profile.yaml`: the product profile a vendor writes beside the site
//! schema and the templates. It names the licence's product, the site
//! file's schema and an example site file, the infrastructure the product
//! needs (as typed requirements that point into the site file), the
//! health checks (URL templates over site fields), and renames of site
//! fields between versions.
//!
//! [`Profile::check`] holds it against its schema: every field a
//! requirement, a health check or a rename names must be one the schema
//! declares, with the shape its kind needs.

use std::collections::BTreeSet;

use airgap_format::display::quote;
use serde::Deserialize;
use serde_json::Value;

use crate::schema::SiteSchema;

/// The profile's name among a bundle's templates.
pub const PROFILE_FILE: &str = "profile.yaml";
/// The profile version this code reads.
pub const PROFILE_VERSION: u32 = 1;
/// Largest profile, schema or example site file read.
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// The whole `profile.yaml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    /// Always [`PROFILE_VERSION`].
    pub profile_version: u32,
    /// The product licences are issued for (a bundle's licence must name
    /// it).
    pub product: String,
    /// The site file's schema, a file beside the profile.
    pub site_schema: String,
    /// An example site file beside the profile, which must validate.
    #[serde(default)]
    pub example: Option<String>,
    /// The infrastructure the product needs.
    #[serde(default)]
    pub requirements: Vec<Requirement>,
    /// What `airgap-install health` probes.
    #[serde(default)]
    pub health_checks: Vec<HealthCheck>,
    /// Site fields renamed since earlier versions: an old site file keeps
    /// working, with a warning.
    #[serde(default)]
    pub renames: Vec<Rename>,
}

/// A service the product needs, described by the site file at `at`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requirement {
    /// What kind of service.
    pub kind: Kind,
    /// Where the site file describes it: a field path, `[]` for every item
    /// of a list (`workspaces[].database`).
    pub at: String,
}

/// The kinds of infrastructure a profile can require. Each names the
/// fields its section of the site file must declare and the `type`
/// values it knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An OCI registry (`host`, optional `prefix`, `plainHttp`).
    Registry,
    /// A database: `type` postgresql or mysql, `host`, `port`, `name`,
    /// `user`, `password`.
    Database,
    /// An identity provider: `type` oidc, ldap or saml.
    IdentityProvider,
    /// A secrets store: `type` vault, aws-secrets-manager or kubernetes.
    SecretsStore,
    /// An artifact store: `type` s3, nfs or azure-blob.
    ArtifactStore,
}

impl Kind {
    /// `database`, as written in profiles.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Registry => "registry",
            Kind::Database => "database",
            Kind::IdentityProvider => "identity-provider",
            Kind::SecretsStore => "secrets-store",
            Kind::ArtifactStore => "artifact-store",
        }
    }

    /// The fields the section must declare.
    pub fn fields(&self) -> &'static [&'static str] {
        match self {
            Kind::Registry => &["host"],
            Kind::Database => &["type", "host", "port", "name", "user", "password"],
            Kind::IdentityProvider | Kind::SecretsStore | Kind::ArtifactStore => &["type"],
        }
    }

    /// The `type` values this kind knows (empty: no `type`).
    pub fn types(&self) -> &'static [&'static str] {
        match self {
            Kind::Registry => &[],
            Kind::Database => &["postgresql", "mysql"],
            Kind::IdentityProvider => &["oidc", "ldap", "saml"],
            Kind::SecretsStore => &["vault", "aws-secrets-manager", "kubernetes"],
            Kind::ArtifactStore => &["s3", "nfs", "azure-blob"],
        }
    }
}

/// One health check: an HTTPS URL that must answer `expect`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    /// Its name in reports; `{{item.FIELD}}` when repeated.
    pub name: String,
    /// The URL, with `{{site.FIELD}}` (and `{{item.FIELD}}` when
    /// repeated) in it.
    pub url: String,
    /// A path appended to the URL's path (one slash between them, a
    /// query in the URL kept after it): `/health`.
    #[serde(default)]
    pub path: Option<String>,
    /// The HTTP status that means healthy.
    #[serde(default = "default_expect")]
    pub expect: u16,
    /// A list in the site file to repeat the check for, each item as
    /// `item`.
    #[serde(default)]
    pub for_each: Option<String>,
}

fn default_expect() -> u16 {
    200
}

/// One required service as a site file describes it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Described {
    /// The kind (`database`).
    pub kind: &'static str,
    /// Where (`workspaces[1].database`).
    pub at: String,
    /// What the site file says, in one line, never a secret
    /// (`postgresql db.internal.example:5432/control_plane`).
    pub summary: String,
}

/// Fields that say where a service is, in the order they are looked for
/// in its section (and in the subsection its `type` names).
const LOCATION_FIELDS: &[&str] = &[
    "url",
    "endpoint",
    "issuerUrl",
    "metadataUrl",
    "server",
    "host",
    "account",
    "region",
];

/// The text of a scalar, for a summary.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A health check with its placeholders filled in for one site.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthTarget {
    /// Its name (`control-plane`, `workspace/genomics`).
    pub name: String,
    /// The URL asked.
    pub url: String,
    /// The status that means healthy.
    #[serde(default = "default_expect")]
    pub expect: u16,
}

/// The site fields the installer reads itself, whatever the product, and
/// what each is for; every product's schema declares the required ones
/// (the bundler checks), with the JSON type it must have.
pub const INSTALLER_FIELDS: &[InstallerField] = &[
    InstallerField {
        path: "name",
        kind: "string",
        required: true,
        purpose: "the site's name, in plans and install scripts",
    },
    InstallerField {
        path: "namespace",
        kind: "string",
        required: true,
        purpose: "the Kubernetes namespace the releases go to (a default is usual)",
    },
    InstallerField {
        path: "registry",
        kind: "object",
        required: true,
        purpose: "the site's registry, which push fills and templates pin images to",
    },
    InstallerField {
        path: "registry.host",
        kind: "string",
        required: true,
        purpose: "HOST[:PORT] of the registry",
    },
    InstallerField {
        path: "registry.prefix",
        kind: "string",
        required: false,
        purpose: "the repository prefix images go under",
    },
    InstallerField {
        path: "registry.plainHttp",
        kind: "boolean",
        required: false,
        purpose: "plain HTTP, for test registries",
    },
    InstallerField {
        path: "scenario",
        kind: "string",
        required: false,
        purpose: "what releases' scenarios: select on",
    },
    InstallerField {
        path: "internalCa",
        kind: "string",
        required: false,
        purpose: "a PEM file of CA certificates trusted for the registry and health checks",
    },
    InstallerField {
        path: "license",
        kind: "secret",
        required: false,
        purpose: "a licence file; the licence activated on this node takes its place in templates",
    },
];

/// One of [`INSTALLER_FIELDS`].
#[derive(Clone, Copy, Debug)]
pub struct InstallerField {
    /// The field path.
    pub path: &'static str,
    /// Its JSON type, or `secret` (`x-secret: true`).
    pub kind: &'static str,
    /// Whether every schema must declare it.
    pub required: bool,
    /// What the installer does with it.
    pub purpose: &'static str,
}

/// `base` with `path` appended to its URL path: one slash between them; a
/// query is kept after it, a fragment dropped.
pub fn join_url_path(base: &str, path: &str) -> String {
    let base = base.split('#').next().unwrap_or(base);
    let (head, query) = match base.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (base, None),
    };
    let mut url = format!(
        "{}/{}",
        head.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

/// The text at `path` (`a.b.c`) under `from`, for a placeholder: text and
/// numbers as written; `None` when absent or null.
fn lookup(from: &Value, path: &str) -> Result<Option<String>, String> {
    match lookup_value(from, path) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => scalar_text(v)
            .map(Some)
            .ok_or_else(|| format!("{path} is a list or a mapping, not text")),
    }
}

/// `text` with `{{site.F}}` and `{{item.F}}` filled in; `None` when one
/// names a field the site leaves out.
fn fill_placeholders(
    text: &str,
    site: &Value,
    item: Option<&Value>,
) -> Result<Option<String>, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("{} has a {{{{ without }}}}", quote(text)))?;
        let expr = after[..end].trim();
        let value = match (expr.split_once('.'), item) {
            (Some(("site", p)), _) => lookup(site, p)?,
            (Some(("item", p)), Some(item)) => lookup(item, p)?,
            _ => {
                return Err(format!(
                    "{} is not {{{{site.FIELD}}}} or {{{{item.FIELD}}}}",
                    quote(expr)
                ))
            }
        };
        let Some(value) = value else { return Ok(None) };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(Some(out))
}

/// A site field renamed.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rename {
    /// The old field path.
    pub from: String,
    /// The new one, which the schema declares.
    pub to: String,
}

impl Profile {
    /// Parses `profile.yaml`; errors are `FIELD: message`, located at
    /// their line and column when found.
    pub fn parse(text: &str) -> Result<Profile, (Option<(u32, u32)>, String)> {
        let value = crate::yaml::parse(text).map_err(|e| (e.position, e.message))?;
        let profile: Profile = serde_path_to_error::deserialize(&value).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            let field = if path == "." { String::new() } else { path };
            let at = crate::locate::locate(text, &field);
            let shown = if field.is_empty() {
                message
            } else {
                format!("{field}: {message}")
            };
            (at, shown)
        })?;
        if profile.profile_version != PROFILE_VERSION {
            return Err((
                crate::locate::locate(text, "profileVersion"),
                format!(
                    "profileVersion: expected {PROFILE_VERSION} (found {}); this tool reads version {PROFILE_VERSION}",
                    profile.profile_version
                ),
            ));
        }
        Ok(profile)
    }

    /// Each required service as `site` (as [`SiteSchema::fill`] gives it)
    /// describes it, in the profile's order, `[]` expanded over the items;
    /// a section the site leaves out is not listed.
    pub fn describe_requirements(&self, site: &Value) -> Vec<Described> {
        let mut out = Vec::new();
        for r in &self.requirements {
            let mut places = vec![(String::new(), site)];
            for part in r.at.split('.') {
                let (key, list) = match part.strip_suffix("[]") {
                    Some(k) => (k, true),
                    None => (part, false),
                };
                let mut next = Vec::new();
                for (at, node) in places {
                    let at = if at.is_empty() {
                        key.to_string()
                    } else {
                        format!("{at}.{key}")
                    };
                    match node.get(key) {
                        Some(Value::Array(items)) if list => {
                            next.extend(
                                items
                                    .iter()
                                    .enumerate()
                                    .map(|(i, v)| (format!("{at}[{i}]"), v)),
                            );
                        }
                        Some(v) if !list && !v.is_null() => next.push((at, v)),
                        _ => {}
                    }
                }
                places = next;
            }
            for (at, section) in places {
                out.push(Described {
                    kind: r.kind.as_str(),
                    at,
                    summary: summarize(r.kind, section),
                });
            }
        }
        out
    }

    /// The health checks for `site` (as [`SiteSchema::fill`] gives it), in
    /// the profile's order, repeated per item where a check says
    /// `forEach`. A check whose URL names a field the site leaves out is
    /// not made. Errors name the check.
    pub fn health_targets(&self, site: &Value) -> Result<Vec<HealthTarget>, String> {
        let mut out = Vec::new();
        for (i, h) in self.health_checks.iter().enumerate() {
            let at = |e: String| format!("healthChecks[{i}]: {e}");
            let items: Vec<Option<&Value>> = match &h.for_each {
                Some(list) => match lookup_value(site, list) {
                    Some(Value::Array(items)) => items.iter().map(Some).collect(),
                    Some(Value::Null) | None => Vec::new(),
                    Some(_) => {
                        return Err(at(format!(
                            "forEach: {list} is not a list in the site file"
                        )))
                    }
                },
                None => vec![None],
            };
            for item in items {
                let name = fill_placeholders(&h.name, site, item).map_err(at)?;
                let url = fill_placeholders(&h.url, site, item).map_err(at)?;
                if let (Some(name), Some(url)) = (name, url) {
                    let url = match &h.path {
                        Some(p) => join_url_path(&url, p),
                        None => url,
                    };
                    out.push(HealthTarget {
                        name,
                        url,
                        expect: h.expect,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Everything wrong with the profile against `schema`, each as
    /// `FIELD: message` naming the profile's field.
    pub fn check(&self, schema: &SiteSchema) -> Vec<String> {
        let mut out = Vec::new();
        if !is_name(&self.product) {
            out.push(format!(
                "product: {} is not a product name: expected lowercase letters, digits and '-'",
                quote(&self.product)
            ));
        }
        for (i, r) in self.requirements.iter().enumerate() {
            let at = format!("requirements[{i}]");
            match schema.field(&r.at) {
                None => out.push(format!(
                    "{at}.at: the site schema declares no field {}",
                    quote(&r.at)
                )),
                Some(section) => {
                    let declared = schema.property_names(section);
                    for f in r.kind.fields() {
                        if !declared.iter().any(|d| d == f) {
                            out.push(format!(
                                "{at}: a {} at {} needs a field {f}, which the site schema does not declare there",
                                r.kind.as_str(),
                                r.at
                            ));
                        }
                    }
                    if !r.kind.types().is_empty() {
                        let types = schema.enum_values(section, "type");
                        let unknown: Vec<&String> = types
                            .iter()
                            .filter(|t| !r.kind.types().contains(&t.as_str()))
                            .collect();
                        if types.is_empty() {
                            out.push(format!(
                                "{at}: {}.type must list its values (enum), a subset of {}",
                                r.at,
                                r.kind.types().join(", ")
                            ));
                        } else if !unknown.is_empty() {
                            out.push(format!(
                                "{at}: {}.type allows {}, which a {} cannot be (known: {})",
                                r.at,
                                unknown
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", "),
                                r.kind.as_str(),
                                r.kind.types().join(", ")
                            ));
                        }
                    }
                }
            }
        }
        for f in INSTALLER_FIELDS {
            let Some(declared) = schema.field(f.path) else {
                if f.required {
                    out.push(format!(
                        "siteSchema: the site schema must declare {} ({}: the installer reads it, whatever the product; templates.md §8.2)",
                        f.path, f.purpose
                    ));
                }
                continue;
            };
            let ok = match f.kind {
                "secret" => declared.get("x-secret") == Some(&Value::Bool(true)),
                kind => declared.get("type").is_none_or(|t| {
                    t == kind || t.as_array().is_some_and(|a| a.iter().any(|x| x == kind))
                }),
            };
            if !ok {
                let want = if f.kind == "secret" {
                    "a secret (x-secret: true)".to_string()
                } else {
                    format!("of type {}", f.kind)
                };
                out.push(format!(
                    "siteSchema: {} must be {want}: the installer reads it as {}",
                    f.path, f.purpose
                ));
            }
        }
        let mut names = BTreeSet::new();
        for (i, h) in self.health_checks.iter().enumerate() {
            let at = format!("healthChecks[{i}]");
            if !names.insert(h.name.clone()) {
                out.push(format!("{at}.name: {} is used twice", quote(&h.name)));
            }
            if !(100..=599).contains(&h.expect) {
                out.push(format!(
                    "{at}.expect: expected an HTTP status from 100 to 599 (found {})",
                    h.expect
                ));
            }
            let item = match &h.for_each {
                Some(list) => match schema.field(&format!("{list}[]")) {
                    Some(item) => Some(item),
                    None => {
                        out.push(format!(
                            "{at}.forEach: the site schema declares no list {}",
                            quote(list)
                        ));
                        continue;
                    }
                },
                None => None,
            };
            if let Some(p) = &h.path {
                if !p.starts_with('/') || p.contains(['?', '#', '{']) {
                    out.push(format!(
                        "{at}.path: expected a path such as /health (found {})",
                        quote(p)
                    ));
                }
            }
            for (field, text) in [("name", &h.name), ("url", &h.url)] {
                for e in placeholders(text) {
                    let problem = match e.split_once('.') {
                        Some(("site", path)) => schema
                            .field(path)
                            .is_none()
                            .then(|| format!("the site schema declares no field {}", quote(path))),
                        Some(("item", path)) => match (item, &h.for_each) {
                            (Some(item), Some(list)) => {
                                schema.field_in(item, path).is_none().then(|| {
                                    format!(
                                        "the items of {list} have no field {} in the site schema",
                                        quote(path)
                                    )
                                })
                            }
                            _ => Some("{{item.…}} needs forEach".to_string()),
                        },
                        _ => Some(format!(
                            "{} is not {{{{site.FIELD}}}} or {{{{item.FIELD}}}}",
                            quote(&e)
                        )),
                    };
                    if let Some(p) = problem {
                        out.push(format!("{at}.{field}: {p}"));
                    }
                }
            }
            if !h.url.starts_with("https://") && !h.url.starts_with("{{") {
                out.push(format!("{at}.url: expected https://… or a site URL field"));
            }
        }
        for (i, r) in self.renames.iter().enumerate() {
            let at = format!("renames[{i}]");
            if schema.field(&r.to).is_none() {
                out.push(format!(
                    "{at}.to: the site schema declares no field {}",
                    quote(&r.to)
                ));
            }
            let lists = |p: &str| p.split('.').filter(|s| s.contains("[]")).count();
            let shared = r
                .from
                .split('.')
                .zip(r.to.split('.'))
                .take_while(|(a, b)| a == b)
                .filter(|(a, _)| a.contains("[]"))
                .count();
            if lists(&r.from) != shared || lists(&r.to) != shared {
                out.push(format!(
                    "{at}: a rename may go through a list ([]) only where from and to share it ({} to {})",
                    r.from, r.to
                ));
            }
            if schema.field(&r.from).is_some() {
                out.push(format!(
                    "{at}.from: the site schema still declares {}; a rename's old name must be gone",
                    quote(&r.from)
                ));
            }
        }
        out
    }
}

/// The expressions between `{{` and `}}` in `text`, trimmed.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push(after.trim().to_string());
            break;
        };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    out
}

/// One line about a required service's section: its `type`, then where it
/// is (a database as `HOST:PORT/NAME`, a registry as `HOST/PREFIX`).
fn summarize(kind: Kind, section: &Value) -> String {
    let field = |v: &Value, k: &str| v.get(k).and_then(scalar_text).filter(|s| !s.is_empty());
    let kind_type = field(section, "type");
    let location = match kind {
        Kind::Registry => field(section, "host").map(|h| match field(section, "prefix") {
            Some(p) => format!("{h}/{p}"),
            None => h,
        }),
        Kind::Database => field(section, "host").map(|h| {
            let port = field(section, "port")
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            let name = field(section, "name")
                .map(|n| format!("/{n}"))
                .unwrap_or_default();
            format!("{h}{port}{name}")
        }),
        _ => {
            // The section itself, else the subsection its type names
            // (`s3` for type s3, `azureBlob` for azure-blob).
            let sub = kind_type.as_deref().and_then(|t| {
                let camel = t
                    .split('-')
                    .enumerate()
                    .map(|(i, w)| {
                        if i == 0 {
                            w.to_string()
                        } else {
                            w[..1].to_uppercase() + &w[1..]
                        }
                    })
                    .collect::<String>();
                section.get(&camel).or_else(|| section.get(t))
            });
            [Some(section), sub]
                .into_iter()
                .flatten()
                .find_map(|s| LOCATION_FIELDS.iter().find_map(|k| field(s, k)))
        }
    };
    match (kind_type, location) {
        (Some(t), Some(l)) => format!("{t} {l}"),
        (Some(t), None) => t,
        (None, Some(l)) => l,
        (None, None) => "(described)".into(),
    }
}

/// The value at the dotted field path `path` (`a.b.c`) under `from`.
pub fn lookup_value<'a>(from: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(from, |node, part| node.get(part))
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

impl SiteSchema {
    /// The subschema of the field at `path` (`controlPlane.database`,
    /// `workspaces[].database`; `[]` is every item of a list), following
    /// `$ref`s; `None` when the schema does not declare it.
    pub fn field(&self, path: &str) -> Option<&Value> {
        self.field_in(self.value(), path)
    }

    /// [`SiteSchema::field`] below the subschema `from`.
    pub fn field_in<'a>(&'a self, from: &'a Value, path: &str) -> Option<&'a Value> {
        let mut node = self.deref(from)?;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (key, lists) = match part.find("[]") {
                Some(i) => (&part[..i], part[i..].matches("[]").count()),
                None => (part, 0),
            };
            if !key.is_empty() {
                node = self.deref(node.get("properties")?.get(key)?)?;
            }
            for _ in 0..lists {
                node = self.deref(node.get("items")?)?;
            }
        }
        Some(node)
    }

    /// The names a subschema's `properties` declares.
    pub fn property_names(&self, schema: &Value) -> Vec<String> {
        self.deref(schema)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The text values a subschema's field `name` lists in its `enum` (or
    /// `const`).
    pub fn enum_values(&self, schema: &Value, name: &str) -> Vec<String> {
        let Some(field) = self.field_in(schema, name) else {
            return Vec::new();
        };
        if let Some(c) = field.get("const").and_then(Value::as_str) {
            return vec![c.to_string()];
        }
        field
            .get("enum")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Follows a local `$ref` (a few steps at most).
    fn deref<'a>(&'a self, mut node: &'a Value) -> Option<&'a Value> {
        for _ in 0..8 {
            match node.get("$ref").and_then(Value::as_str) {
                Some(r) => node = self.value().pointer(r.strip_prefix('#')?)?,
                None => return Some(node),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = include_str!("../../templates/profile.yaml");
    const SCHEMA: &str = include_str!("../../templates/site.schema.json");

    fn schema() -> SiteSchema {
        SiteSchema::new(serde_json::from_str(SCHEMA).unwrap()).unwrap()
    }

    #[test]
    fn the_reference_profile_holds_against_its_schema() {
        let p = Profile::parse(PROFILE).unwrap();
        assert_eq!(p.product, "reference-platform");
        assert_eq!(p.check(&schema()), Vec::<String>::new());
        assert_eq!(p.health_checks.len(), 2);
        assert_eq!(p.requirements.len(), 7);
    }

    #[test]
    fn the_demo_carries_the_reference_schema_and_a_profile_that_holds() {
        let demo = include_str!("../../manifests/demo/templates/site.schema.json");
        assert_eq!(
            demo, SCHEMA,
            "copy templates/site.schema.json to manifests/demo/templates/"
        );
        let p =
            Profile::parse(include_str!("../../manifests/demo/templates/profile.yaml")).unwrap();
        assert_eq!(p.product, "demo");
        assert_eq!(p.check(&schema()), Vec::<String>::new());
    }

    #[test]
    fn health_checks_fill_in_the_site_and_repeat_per_item() {
        let p = Profile::parse(PROFILE).unwrap();
        let site = serde_json::json!({
            "controlPlane": {"url": "https://cp.example/"},
            "workspaces": [{"name": "a", "url": "https://h:8443/ws/a?tenant=x#f"}, {"name": "b", "url": "https://b.example"}]
        });
        let t = p.health_targets(&site).unwrap();
        let got: Vec<(&str, &str, u16)> = t
            .iter()
            .map(|t| (t.name.as_str(), t.url.as_str(), t.expect))
            .collect();
        assert_eq!(
            got,
            [
                ("control-plane", "https://cp.example/health", 200),
                ("workspace/a", "https://h:8443/ws/a/health?tenant=x", 200),
                ("workspace/b", "https://b.example/health", 200),
            ]
        );
        // A site without the field gets no check; without the list, none per item.
        assert!(p.health_targets(&serde_json::json!({})).unwrap().is_empty());
        let e = p
            .health_targets(&serde_json::json!({"workspaces": "x"}))
            .unwrap_err();
        assert_eq!(
            e,
            "healthChecks[1]: forEach: workspaces is not a list in the site file"
        );
    }

    #[test]
    fn requirements_are_described_from_the_site() {
        let p = Profile::parse(PROFILE).unwrap();
        let example: Value =
            crate::yaml::parse(include_str!("../../manifests/site.example.yaml")).unwrap();
        let site = schema().fill(&example).value;
        let got: Vec<String> = p
            .describe_requirements(&site)
            .iter()
            .map(|d| format!("{} {}: {}", d.kind, d.at, d.summary))
            .collect();
        assert_eq!(
            got,
            [
                "registry registry: registry.internal.example:5000/platform",
                "database controlPlane.database: postgresql db.internal.example:5432/control_plane",
                "database workspaces[0].database: postgresql db.internal.example:5432/ws_genomics",
                "database workspaces[1].database: mysql mysql.internal.example:3306/ws_imaging",
                "identity-provider identityProvider: oidc https://sso.internal.example/realms/research",
                "artifact-store artifactStore: s3 https://objects.internal.example",
                "secrets-store secretsStore: vault https://vault.internal.example:8200",
                "secrets-store workspaces[1].secretsStore: kubernetes",
            ]
        );
    }

    #[test]
    fn the_schema_must_declare_what_the_installer_reads() {
        let p = Profile::parse(PROFILE).unwrap();
        let mut s: Value = serde_json::from_str(SCHEMA).unwrap();
        s["properties"].as_object_mut().unwrap().remove("namespace");
        s["properties"]["license"] = serde_json::json!({"type": "string"});
        let got = p.check(&SiteSchema::new(s).unwrap());
        assert!(
            got.iter().any(|g| g.starts_with(
                "siteSchema: the site schema must declare namespace (the Kubernetes namespace"
            )),
            "{got:#?}"
        );
        assert!(
            got.iter()
                .any(|g| g.starts_with("siteSchema: license must be a secret (x-secret: true)")),
            "{got:#?}"
        );
    }

    #[test]
    fn profiles_naming_what_the_schema_lacks_are_refused() {
        let bad = PROFILE
            .replace("at: controlPlane.database", "at: controlPlane.db")
            .replace("{{item.url}}", "{{item.address}}")
            .replace("forEach: workspaces", "forEach: teams")
            .replace(
                "kind: secrets-store\n    at: secretsStore",
                "kind: database\n    at: secretsStore",
            );
        let got = Profile::parse(&bad).unwrap().check(&schema());
        let want = [
            "requirements[1].at: the site schema declares no field \"controlPlane.db\"",
            "healthChecks[1].forEach: the site schema declares no list \"teams\"",
            "requirements[5]: a database at secretsStore needs a field host, which the site schema does not declare there",
        ];
        for w in want {
            assert!(got.iter().any(|g| g == w), "{w}\n{got:#?}");
        }
        let bad = PROFILE.replace("{{site.controlPlane.url}}", "{{site.controlPlane.uri}}");
        let got = Profile::parse(&bad).unwrap().check(&schema());
        assert_eq!(
            got,
            ["healthChecks[0].url: the site schema declares no field \"controlPlane.uri\""]
        );
    }

    #[test]
    fn parse_errors_name_the_field_and_line() {
        let (at, e) = Profile::parse(
            &PROFILE.replace("product: reference-platform", "produkt: reference-platform"),
        )
        .unwrap_err();
        assert!(e.contains("produkt"), "{e}");
        assert!(at.is_some(), "{e}");
        let (_, e) =
            Profile::parse(&PROFILE.replace("profileVersion: 1", "profileVersion: 2")).unwrap_err();
        assert!(e.starts_with("profileVersion: expected 1 (found 2)"), "{e}");
    }

    #[test]
    fn schema_fields_follow_refs_and_lists() {
        let s = schema();
        assert!(s.field("workspaces[].database.sslMode").is_some());
        assert!(s.field("controlPlane.database.password").is_some());
        assert!(s.field("workspaces[].nope").is_none());
        assert_eq!(
            s.enum_values(s.field("artifactStore").unwrap(), "type"),
            ["s3", "nfs", "azure-blob"]
        );
        assert_eq!(
            placeholders("{{ site.a }}/x/{{item.b}}"),
            ["site.a", "item.b"]
        );
    }
}
