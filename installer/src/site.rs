//! The site file (`site.yaml`): what a site decides about its installation.
//! What it may hold is the product's business: the bundle's profile carries
//! its schema, and [`SiteFile::load`] checks the file against it (every
//! problem at once, at its line and column), then reads it as templates see
//! it ([`airgap_profile::SiteSchema::fill`]: defaults applied, every
//! declared field present) and finds its secrets (`x-secret`).
//!
//! The installer itself reads only the few fields every product's site
//! file has ([`Site`], listed in [`airgap_profile::profile::INSTALLER_FIELDS`]):
//! the site's name, the Kubernetes namespace, the scenario, the internal
//! registry, the internal CA, and the licence. Secret values are never in
//! the file itself: it names a file or an environment variable for each,
//! read only when rendering.

use airgap_format::display::quote;
use airgap_format::regular_file::read_regular;
use std::path::{Path, PathBuf};

use airgap_profile::changes::Renamed;
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use serde_json::Value;

/// Largest site file read.
pub(crate) const MAX_SITE_BYTES: u64 = 1 << 20;
/// Largest secret file read.
const MAX_SECRET_BYTES: u64 = 64 << 10;

/// A validated site file with its location.
#[derive(Clone, Debug)]
pub struct SiteFile {
    /// The file as given.
    pub path: PathBuf,
    /// The fields the installer reads itself.
    pub site: Site,
    /// The whole site as templates see it: checked against the bundle's
    /// schema and filled from it when one was given, secrets still as
    /// their `{file}`/`{env}` references.
    pub value: Value,
    /// The file's text, to point at a field's line in messages.
    pub text: String,
    /// Its secrets, read once when the file is loaded.
    secrets: Vec<SecretField>,
    /// Fields the file names by an old name, which the profile's renames
    /// moved (callers warn about them).
    pub renamed: Vec<Renamed>,
}

/// The fields of a site file the installer reads itself, whatever the
/// product (the product's schema declares them; the bundler checks it).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    /// The site's name (plans, install scripts).
    pub name: String,
    /// The Kubernetes namespace the releases go to.
    #[serde(default)]
    pub namespace: Option<String>,
    /// The scenario, as the product names them:
    /// releases may be limited to some.
    #[serde(default)]
    pub scenario: Option<String>,
    /// The site's internal CA certificate (PEM), trusted for the registry,
    /// health checks and by the platform's services.
    #[serde(default)]
    pub internal_ca: Option<PathBuf>,
    /// The internal registry.
    pub registry: RegistrySettings,
}

/// The internal registry.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrySettings {
    /// `HOST[:PORT]`, without a scheme.
    pub host: String,
    /// Repository prefix images go under (no slashes at either end).
    #[serde(default)]
    pub prefix: String,
    /// Plain HTTP (test registries only).
    #[serde(default)]
    pub plain_http: bool,
}

impl Site {
    /// The scenario, or `-` when the product has none.
    pub fn scenario_name(&self) -> &str {
        self.scenario.as_deref().unwrap_or("-")
    }

    /// Reads the installer's fields from a site (null fields count as
    /// absent); errors are `FIELD: message`.
    pub fn read(value: &Value) -> Result<Site, String> {
        let value = airgap_profile::schema::without_nulls(value);
        let mut site: Site = serde_path_to_error::deserialize(&value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner().to_string();
            if let Some(rest) = inner.strip_prefix("missing field `") {
                let field = rest.split('`').next().unwrap_or_default();
                let at = if path == "." {
                    field.to_string()
                } else {
                    format!("{path}.{field}")
                };
                return format!("{at}: required (the installer reads it; see the product's guide)");
            }
            let m = inner
                .split(" at line ")
                .next()
                .unwrap_or(&inner)
                .replace('`', "");
            format!("{path}: {m}")
        })?;
        check_label("name", &site.name, 63)?;
        if let Some(ns) = &site.namespace {
            check_label("namespace", ns, 63)?;
        }
        if !valid_host(&site.registry.host) {
            return Err(format!(
                "registry.host: expected HOST[:PORT] without a scheme (found {})",
                quote(&site.registry.host)
            ));
        }
        let prefix = site.registry.prefix.trim_matches('/').to_string();
        if !prefix.is_empty() && !airgap_format::bundle_json::is_valid_repository(&prefix) {
            return Err(format!(
                "registry.prefix: {} is not a lowercase repository path",
                quote(&prefix)
            ));
        }
        site.registry.prefix = prefix;
        if site
            .internal_ca
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err("internalCa: expected the path of a PEM file (found \"\")".into());
        }
        Ok(site)
    }
}

/// A secret the site file names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretField {
    /// Its JSON pointer in [`SiteFile::value`].
    pub pointer: String,
    /// Its field path, for messages (`teams[0].key`).
    pub field: String,
    /// Where the value is.
    pub reference: SecretRef,
}

/// Where a secret value is: a file or an environment variable.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretRef {
    /// A file holding the value (one trailing newline is dropped).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// An environment variable holding the value.
    #[serde(default)]
    pub env: Option<String>,
}

impl SecretRef {
    /// Reads the value (relative files resolve against `base`). Errors name
    /// `field` and where the value was looked for, never the value.
    pub fn resolve(&self, field: &str, base: &Path) -> Result<String> {
        match (&self.file, &self.env) {
            (Some(f), None) => {
                let path = if f.is_absolute() {
                    f.clone()
                } else {
                    base.join(f)
                };
                let bytes = read_regular(&path, MAX_SECRET_BYTES, "a secret")
                    .map_err(|e| anyhow!("{field}: {e}"))?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| anyhow!("{field}: {} is not UTF-8 text", path.display()))?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                if text.is_empty() {
                    bail!("{field}: {} is empty", path.display());
                }
                Ok(text.to_string())
            }
            (None, Some(var)) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(v),
                Ok(_) => bail!("{field}: environment variable {var} is empty"),
                Err(_) => bail!("{field}: environment variable {var} is not set"),
            },
            _ => bail!("{field}: expected exactly one of file or env"),
        }
    }
}

impl SiteFile {
    /// Reads `path`, applies the renames of `profile` (the bundle's) and
    /// checks it against its schema (without one,
    /// only the installer's own fields are read, for commands that take no
    /// bundle) and reads it. Errors are `FILE:LINE:COLUMN: FIELD: message`,
    /// or every problem at once, numbered, when there are several.
    pub fn load(path: &Path, profile: Option<&BundleProfile>) -> Result<SiteFile> {
        let bytes = read_regular(path, MAX_SITE_BYTES, "a site file")?;
        let text =
            String::from_utf8(bytes).map_err(|_| anyhow!("{}: not UTF-8 text", path.display()))?;
        SiteFile::from_text(path, text, profile)
    }

    /// [`SiteFile::load`] of a file already read: `text`, from `path`
    /// (named in errors; relative paths in it resolve against its folder).
    pub fn from_text(
        path: &Path,
        text: String,
        profile: Option<&BundleProfile>,
    ) -> Result<SiteFile> {
        let name = path.display().to_string();
        let raw = airgap_profile::yaml::parse(&text).map_err(|e| match e.position {
            Some((l, c)) => anyhow!("{name}:{l}:{c}: {}", e.message),
            None => anyhow!("{name}: {}", e.message),
        })?;
        let mut raw = raw;
        let (mut value, secrets, renamed) = match profile {
            Some(p) => {
                let (renamed, problems) = crate::profile::examine(&text, &mut raw, p);
                match problems.as_slice() {
                    [] => {}
                    [one] => bail!("{name}:{}", located(one)),
                    many => bail!(
                        "{name}: {} problems: {}; airgap-install site check lists them too",
                        many.len(),
                        many.iter()
                            .enumerate()
                            .map(|(i, p)| format!("({}) {}", i + 1, p))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                }
                let filled = p.schema.fill(&raw);
                (filled.value, filled.secrets, renamed)
            }
            None => (
                airgap_profile::schema::without_nulls(&raw),
                Vec::new(),
                Vec::new(),
            ),
        };
        // The schema checked each secret's form (x-secret): read them once.
        let secrets = secrets
            .into_iter()
            .map(|pointer| {
                let field = airgap_profile::schema::field_path(&value, &pointer);
                let at = value.pointer(&pointer).cloned().unwrap_or_default();
                let reference: SecretRef = serde_json::from_value(at).map_err(|_| {
                    anyhow!("{name}: {field}: {}", airgap_profile::schema::SECRET_FORM)
                })?;
                Ok(SecretField {
                    pointer,
                    field,
                    reference,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let site = Site::read(&value).map_err(|message| {
            let field = message.split(": ").next().unwrap_or_default();
            match locate(&text, field) {
                Some((l, c)) => anyhow!("{name}:{l}:{c}: {message}"),
                None => anyhow!("{name}: {message}"),
            }
        })?;
        // Templates see the prefix as the installer uses it.
        if let Some(r) = value.get_mut("registry").and_then(Value::as_object_mut) {
            if r.contains_key("prefix") {
                r.insert("prefix".into(), Value::String(site.registry.prefix.clone()));
            }
        }
        Ok(SiteFile {
            path: path.to_path_buf(),
            site,
            value,
            text,
            secrets,
            renamed,
        })
    }

    /// Every secret the site names, in the order of [`SiteFile::value`]'s
    /// keys.
    pub fn secrets(&self) -> &[SecretField] {
        &self.secrets
    }

    /// Every secret's value, in the order of [`SiteFile::secrets`]. When any
    /// cannot be read, one error lists each of them (its line, field path,
    /// where it was looked for and the fix), never a value.
    pub fn resolve_secrets(&self) -> Result<Vec<String>> {
        let base = self.base_dir();
        let mut values = Vec::new();
        let mut failures = Vec::new();
        for SecretField {
            field,
            reference: r,
            ..
        } in self.secrets()
        {
            match r.resolve(field, &base) {
                Ok(v) => values.push(v),
                Err(e) => {
                    let fix = if r.env.is_some() {
                        "set the variable in the environment airgap-install runs in"
                    } else {
                        "write the value into that file, or correct file:"
                    };
                    let at = match locate(&self.text, field) {
                        Some((l, _)) => format!("line {l}: "),
                        None => String::new(),
                    };
                    failures.push(format!("({}) {at}{e}; {fix}", failures.len() + 1));
                }
            }
        }
        if !failures.is_empty() {
            bail!(
                "{}: {} cannot be read: {}",
                self.path.display(),
                airgap_format::display::count(failures.len() as u64, "secret"),
                failures.join(" ")
            );
        }
        Ok(values)
    }

    /// The Kubernetes namespace; an error naming the fix when the site
    /// file (and its schema's default) gives none.
    pub fn namespace(&self) -> Result<&str> {
        self.site.namespace.as_deref().ok_or_else(|| {
            anyhow!(
                "{}: namespace: required (the Kubernetes namespace the releases go to); add namespace: NAME",
                self.path.display()
            )
        })
    }

    /// The folder relative paths in the file resolve against.
    pub fn base_dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// How to reach the site's registry: its internal CA, plain HTTP when
    /// the file says so, and fixes that name the file's fields.
    pub fn transport(&self, user_agent: String) -> airgap_registry::Transport {
        let file = self.path.display();
        airgap_registry::Transport {
            ca_files: self.internal_ca().into_iter().collect(),
            plain_http: self.site.registry.plain_http,
            user_agent: Some(user_agent),
            fixes: airgap_registry::client::Fixes {
                use_https: format!("set plainHttp: false under registry: in {file}"),
                use_plain_http: format!(
                    "set plainHttp: true under registry: in {file} if the registry is meant to speak plain HTTP"
                ),
                trust_ca: format!(
                    "name the CA certificate (PEM) that issued it in internalCa: of {file}"
                ),
            },
        }
    }

    /// The internal CA file, resolved.
    pub fn internal_ca(&self) -> Option<PathBuf> {
        self.site.internal_ca.as_ref().map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                self.base_dir().join(p)
            }
        })
    }
}

use crate::profile::BundleProfile;

/// `LINE:COLUMN: FIELD: message` (or `FIELD: message` when not found).
fn located(p: &crate::profile::SiteProblem) -> String {
    match (p.line, p.column) {
        (Some(_), Some(_)) => p.to_string(),
        _ => format!(" {p}"),
    }
}

pub use airgap_profile::locate::locate;

fn check_label(field: &str, s: &str, max: usize) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field}: {} is not a name: expected lowercase letters, digits and '-', at most {max}",
            quote(s)
        ))
    }
}

/// Whether `h` is `HOST[:PORT]` (IPv6 in brackets).
pub use airgap_registry::host::valid_host;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small product's schema, for tests that need one that is not the
    /// reference product's.
    pub(crate) const SMALL_SCHEMA: &str = r#"{
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object", "additionalProperties": false,
        "required": ["name", "registry"],
        "properties": {
            "name": {"type": "string"},
            "namespace": {"type": "string", "default": "small"},
            "registry": {"type": "object", "additionalProperties": false, "required": ["host"], "properties": {"host": {"type": "string"}, "prefix": {"type": "string"}}},
            "token": {"x-secret": true},
            "teams": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "port": {"type": "integer", "default": 8080}, "key": {"x-secret": true}
            }}}
        }
    }"#;

    /// The small product's profile, which renames `crew` to `teams`.
    fn small_profile() -> BundleProfile {
        BundleProfile::from_texts(
            "profileVersion: 1\nproduct: small\nsiteSchema: s.json\nrenames:\n  - {from: crew, to: teams}\n",
            SMALL_SCHEMA,
        )
        .unwrap()
    }

    /// `yaml` written as a site file in a new folder and loaded against
    /// [`SMALL_SCHEMA`].
    fn load(yaml: &str) -> (tempfile::TempDir, Result<SiteFile>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.yaml");
        std::fs::write(&path, yaml).unwrap();
        let site = SiteFile::load(&path, Some(&small_profile()));
        (dir, site)
    }

    /// [`load`], which must succeed.
    pub(crate) fn small_site(yaml: &str) -> (tempfile::TempDir, SiteFile) {
        let (dir, site) = load(yaml);
        (dir, site.unwrap())
    }

    /// A valid small site with two teams and three secrets.
    const SMALL: &str = "name: lab\nregistry:\n  host: r.example:5000\n  prefix: /apps/\ntoken:\n  env: AIRGAP_TEST_UNSET_TOKEN\nteams:\n  - name: a\n    key:\n      file: keys/a.key\n  - name: b\n    port: 9000\n    key:\n      file: keys/b.key\n";

    #[test]
    fn a_valid_site_is_defaulted_and_its_secrets_found() {
        let (_d, s) = small_site(SMALL);
        assert_eq!(s.site.name, "lab");
        assert_eq!(s.namespace().unwrap(), "small", "the schema's default");
        assert_eq!(s.site.registry.prefix, "apps");
        assert_eq!(s.value["registry"]["prefix"], "apps");
        assert_eq!(s.value["teams"][0]["port"], 8080);
        assert_eq!(s.value["teams"][1]["port"], 9000);
        let fields: Vec<&str> = s.secrets().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["teams[0].key", "teams[1].key", "token"]);
    }

    #[test]
    fn a_secret_written_as_its_value_says_where_it_goes() {
        let text = SMALL.replace("    key:\n      file: keys/a.key", "    key: hunter2");
        let (_d, e) = load(&text);
        let e = e.unwrap_err().to_string();
        assert!(
            e.ends_with("site.yaml:9:10: teams[0].key: expected {file: PATH} or {env: NAME}; the value itself never goes in the site file (write it into a file, or set an environment variable)"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn every_problem_is_listed_at_once_with_its_line() {
        let text = SMALL
            .replace("  prefix: /apps/", "  prefix: 7\n  colour: red")
            .replace("    port: 9000", "    port: many");
        let (_d, e) = load(&text);
        let e = e.unwrap_err().to_string();
        assert!(e.contains("site.yaml: 3 problems: (1) 4:11: registry.prefix: expected text (found 7) (2) 5:11: registry.colour: unknown field; expected one of host, prefix"), "{e}");
        assert!(
            e.contains("(3) 13:11: teams[1].port: expected a whole number"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn a_key_the_schema_does_not_declare_is_refused_whatever_the_schema_allows() {
        // The items of teams do not say additionalProperties: false.
        let text = SMALL.replace("    port: 9000", "    prot: 9000");
        let (_d, e) = load(&text);
        let e = e.unwrap_err().to_string();
        assert!(
            e.ends_with("site.yaml:12:11: teams[1].prot: unknown field; expected one of key, name, port; did you mean port?"),
            "{e}"
        );
    }

    #[test]
    fn a_renamed_field_keeps_working_and_is_reported() {
        let (_dir, site) =
            small_site("name: lab\nregistry: {host: r.example}\ncrew:\n  - name: a\n");
        assert_eq!(site.value["teams"][0]["name"], "a");
        assert_eq!(site.value["teams"][0]["port"], 8080);
        assert!(site.value.get("crew").is_none());
        let r: Vec<(&str, &str)> = site
            .renamed
            .iter()
            .map(|r| (r.from.as_str(), r.to.as_str()))
            .collect();
        assert_eq!(r, [("crew", "teams")]);
    }

    #[test]
    fn without_a_schema_only_the_installers_fields_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.yaml");
        std::fs::write(
            &path,
            "name: lab\nregistry:\n  host: r.example:5000\n  prefix: /a/b/\nanything: [1]\n",
        )
        .unwrap();
        let s = SiteFile::load(&path, None).unwrap();
        assert_eq!(s.site.registry.prefix, "a/b");
        assert_eq!(s.value["registry"]["prefix"], "a/b");
        assert!(s.secrets().is_empty());
        assert!(s
            .namespace()
            .unwrap_err()
            .to_string()
            .contains("add namespace: NAME"));
        std::fs::write(&path, "name: lab\nregistry:\n  host: https://r.example\n").unwrap();
        let e = SiteFile::load(&path, None).unwrap_err().to_string();
        assert!(
            e.ends_with("site.yaml:3:9: registry.host: expected HOST[:PORT] without a scheme (found \"https://r.example\")"),
            "{e}"
        );
        std::fs::write(&path, "name: lab\n").unwrap();
        let e = SiteFile::load(&path, None).unwrap_err().to_string();
        assert!(e.contains("registry: required"), "{e}");
    }

    #[test]
    fn every_unreadable_secret_is_listed_at_once() {
        let (dir, site) = small_site(SMALL);
        // No keys/ folder beside it, and the variable is not set.
        let e = site.resolve_secrets().unwrap_err().to_string();
        let (file, dir) = (site.path.display(), dir.path().display());
        assert_eq!(
            e,
            format!("{file}: 3 secrets cannot be read: (1) line 9: teams[0].key: {dir}/keys/a.key: cannot read (No such file or directory (os error 2)); write the value into that file, or correct file: (2) line 13: teams[1].key: {dir}/keys/b.key: cannot read (No such file or directory (os error 2)); write the value into that file, or correct file: (3) line 5: token: environment variable AIRGAP_TEST_UNSET_TOKEN is not set; set the variable in the environment airgap-install runs in")
        );
    }

    #[test]
    fn secret_values_come_from_files_and_variables() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let r = SecretRef {
            file: Some("pw".into()),
            env: None,
        };
        assert_eq!(r.resolve("x.password", dir.path()).unwrap(), "s3cret");
        let missing = SecretRef {
            file: Some("nope".into()),
            env: None,
        };
        let e = missing
            .resolve("x.password", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("x.password: ") && e.contains("nope: cannot read"),
            "{e}"
        );
        // Only regular files, and bounded: /dev/zero never ends.
        let zero = SecretRef {
            file: Some("/dev/zero".into()),
            env: None,
        };
        let e = zero
            .resolve("x.password", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is a character device, not a regular file"),
            "{e}"
        );
        std::fs::write(dir.path().join("big"), vec![b'x'; 70 << 10]).unwrap();
        let big = SecretRef {
            file: Some("big".into()),
            env: None,
        };
        let e = big
            .resolve("x.password", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("larger than the 65536-byte limit for a secret"),
            "{e}"
        );
        let unset = SecretRef {
            file: None,
            env: Some("AIRGAP_TEST_SURELY_UNSET_VAR".into()),
        };
        let e = unset.resolve("y", dir.path()).unwrap_err().to_string();
        assert_eq!(
            e,
            "y: environment variable AIRGAP_TEST_SURELY_UNSET_VAR is not set"
        );
    }
}
