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
