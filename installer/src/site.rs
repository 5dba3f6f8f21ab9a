//! The site file (`site.yaml`): everything a site decides about its
//! installation, typed and validated before anything is rendered. Errors
//! name the file and the field path and list the allowed values
//! (`site.yaml: identityProvider.type: expected one of oidc, ldap, saml`).
//! Secret values are never in the file itself: it names a file or an
//! environment variable for each, read only when rendering.

use airgap_format::display::quote;
use airgap_format::regular_file::read_regular;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

/// The site file version this installer reads.
pub const SITE_VERSION: u32 = 1;
/// Largest site file read.
pub(crate) const MAX_SITE_BYTES: u64 = 1 << 20;
/// Largest secret file read.
const MAX_SECRET_BYTES: u64 = 64 << 10;

/// A validated site file with its location.
#[derive(Clone, Debug)]
pub struct SiteFile {
    /// The file as given.
    pub path: PathBuf,
    /// The parsed, validated, defaulted content.
    pub site: Site,
    /// The file's text, to point at a field's line in messages.
    pub text: String,
}

/// Why a site file was refused: `FIELD.PATH: what is wrong and the fix`,
/// and where in the text, when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteError {
    /// 1-based line and column of the field (or the YAML error).
    pub position: Option<(u32, u32)>,
    /// The message, on one line, never with a Rust type name or a
    /// secret's value.
    pub message: String,
}

impl std::fmt::Display for SiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SiteError {}

/// What the site file says a secret is when it is written as a value.
pub const SECRET_FORM: &str = "expected {file: PATH} or {env: NAME}";

/// The whole site file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Site {
    /// Always [`SITE_VERSION`].
    pub site_version: u32,
    /// Site name (lowercase letters, digits and '-').
    pub name: String,
    /// Where the control plane runs.
    pub scenario: Scenario,
    /// Kubernetes namespace for every release.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The site's internal CA certificate (PEM), trusted for the registry,
    /// health checks and by the platform's services.
    #[serde(default)]
    pub internal_ca: Option<PathBuf>,
    /// The internal registry the bundle's images were pushed to.
    pub registry: RegistrySettings,
    /// The control plane.
    pub control_plane: ControlPlane,
    /// How users log in (air-gapped sites; a hybrid site's control plane is
    /// configured where it runs).
    #[serde(default)]
    pub identity_provider: Option<IdentityProvider>,
    /// Where workspaces keep secrets (the default for every workspace).
    pub secrets_store: SecretsStore,
    /// Where workspaces keep artifacts.
    pub artifact_store: ArtifactStore,
    /// The dashboard.
    #[serde(default)]
    pub dashboard: Dashboard,
    /// One workspace server per team.
    pub workspaces: Vec<Workspace>,
    /// Metrics collection.
    #[serde(default)]
    pub monitoring: Monitoring,
    /// The license file to configure the control plane with.
    #[serde(default)]
    pub license: Option<SecretRef>,
}

fn default_namespace() -> String {
    "platform".into()
}

/// Air-gapped (everything in the site) or hybrid (external control plane).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Everything runs inside the site.
    AirGapped,
    /// The control plane runs outside; workspaces and the dashboard inside.
    Hybrid,
}

impl Scenario {
    /// `air-gapped` or `hybrid`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Scenario::AirGapped => "air-gapped",
            Scenario::Hybrid => "hybrid",
        }
    }
}

/// The internal registry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrySettings {
    /// `host[:port]`.
    pub host: String,
    /// Repository prefix the images were pushed under (may be empty).
    #[serde(default)]
    pub prefix: String,
    /// Plain HTTP (test registries only).
    #[serde(default)]
    pub plain_http: bool,
}

/// The control plane.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ControlPlane {
    /// The URL workspaces and the dashboard reach it at (`https://…`).
    pub url: String,
    /// Ingress host name, when it is exposed through an ingress.
    #[serde(default)]
    pub ingress_host: Option<String>,
    /// Its database (air-gapped sites).
    #[serde(default)]
    pub database: Option<Database>,
}

/// A database connection.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Database {
    /// `postgresql` or `mysql`.
    #[serde(rename = "type")]
    pub kind: DatabaseKind,
    /// Host name.
    pub host: String,
    /// Port (default 5432 for PostgreSQL, 3306 for MySQL).
    #[serde(default)]
    pub port: Option<u16>,
    /// Database name.
    pub name: String,
    /// User name.
    pub user: String,
    /// TLS mode, in the database's own words (PostgreSQL `require`, MySQL `REQUIRED`).
    pub ssl_mode: String,
    /// The password.
    pub password: SecretRef,
}

/// Database engines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseKind {
    /// PostgreSQL.
    Postgresql,
    /// MySQL.
    Mysql,
}

/// `sslMode` values PostgreSQL accepts.
pub const POSTGRESQL_SSL_MODES: &[&str] = &[
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];
/// `ssl-mode` values MySQL accepts.
pub const MYSQL_SSL_MODES: &[&str] = &[
    "DISABLED",
    "PREFERRED",
    "REQUIRED",
    "VERIFY_CA",
    "VERIFY_IDENTITY",
];

/// The identity provider.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityProvider {
    /// `oidc`, `ldap` or `saml`; the matching section must be set.
    #[serde(rename = "type")]
    pub kind: IdentityProviderKind,
    /// OIDC settings.
    #[serde(default)]
    pub oidc: Option<Oidc>,
    /// LDAP settings.
    #[serde(default)]
    pub ldap: Option<Ldap>,
    /// SAML settings.
    #[serde(default)]
    pub saml: Option<Saml>,
}

/// Identity provider kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityProviderKind {
    /// OpenID Connect.
    Oidc,
    /// LDAP.
    Ldap,
    /// SAML 2.0.
    Saml,
}

/// OpenID Connect.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Oidc {
    /// Issuer URL (`https://…`).
    pub issuer_url: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: SecretRef,
}

/// LDAP.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Ldap {
    /// Server URL (`ldaps://…` or `ldap://…`).
    pub server: String,
    /// Base DN.
    pub base_dn: String,
    /// DN to bind as, if binding is needed.
    #[serde(default)]
    pub bind_dn: Option<String>,
    /// Its password.
    #[serde(default)]
    pub bind_password: Option<SecretRef>,
}

/// SAML.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Saml {
    /// Identity provider metadata URL (`https://…`).
    pub metadata_url: String,
}

/// A secrets store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretsStore {
    /// `aws-secrets-manager`, `vault` or `kubernetes`; the matching section must be set.
    #[serde(rename = "type")]
    pub kind: SecretsStoreKind,
    /// AWS Secrets Manager settings.
    #[serde(default)]
    pub aws: Option<AwsSecretsManager>,
    /// HashiCorp Vault settings.
    #[serde(default)]
    pub vault: Option<Vault>,
    /// Kubernetes secrets settings.
    #[serde(default)]
    pub kubernetes: Option<KubernetesSecrets>,
}

/// Secrets store kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecretsStoreKind {
    /// AWS Secrets Manager (or a compatible endpoint).
    AwsSecretsManager,
    /// HashiCorp Vault.
    Vault,
    /// Kubernetes secrets.
    Kubernetes,
}

/// AWS Secrets Manager.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsSecretsManager {
    /// Region.
    pub region: String,
    /// Endpoint URL (a site-local compatible service).
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// HashiCorp Vault.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vault {
    /// Vault URL (`https://…`).
    pub url: String,
    /// Vault namespace (Enterprise).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// Kubernetes secrets.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubernetesSecrets {
    /// Namespace holding the secrets.
    pub namespace: String,
}

/// An artifact store.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ArtifactStore {
    /// `s3`, `nfs` or `azure-blob`; the matching section must be set.
    #[serde(rename = "type")]
    pub kind: ArtifactStoreKind,
    /// S3-compatible settings.
    #[serde(default)]
    pub s3: Option<S3>,
    /// NFS settings.
    #[serde(default)]
    pub nfs: Option<Nfs>,
    /// Azure Blob settings.
    #[serde(default)]
    pub azure_blob: Option<AzureBlob>,
}

/// Artifact store kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactStoreKind {
    /// S3-compatible object storage.
    S3,
    /// An NFS export.
    Nfs,
    /// Azure Blob storage (or Azure Stack Hub).
    AzureBlob,
}

/// S3-compatible storage.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct S3 {
    /// Endpoint URL.
    pub endpoint: String,
    /// Bucket.
    pub bucket: String,
}

/// NFS.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Nfs {
    /// Server host name.
    pub server: String,
    /// Exported path (absolute).
    pub path: String,
}

/// Azure Blob storage.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureBlob {
    /// Storage account.
    pub account: String,
    /// Container.
    pub container: String,
    /// Endpoint URL (Azure Stack Hub or a local emulator).
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// The dashboard.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dashboard {
    /// Ingress host name.
    #[serde(default)]
    pub ingress_host: Option<String>,
}

/// One team's workspace.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workspace {
    /// Team name (lowercase letters, digits and '-', at most 40).
    pub name: String,
    /// URL the workspace server answers at (`https://…`), for health checks.
    pub url: String,
    /// Ingress host name.
    #[serde(default)]
    pub ingress_host: Option<String>,
    /// The workspace's own database.
    pub database: Database,
    /// The token the workspace enrolls with at the control plane.
    pub enrollment_token: SecretRef,
    /// The workspace's own secrets store (default: the site's).
    #[serde(default)]
    pub secrets_store: Option<SecretsStore>,
}

/// Metrics.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Monitoring {
    /// Where metrics are pushed or scraped from (a Prometheus-compatible URL), if any.
    #[serde(default)]
    pub metrics_endpoint: Option<String>,
    /// Port the services expose metrics on.
    #[serde(default = "default_metrics_port")]
    pub metrics_port: u16,
}

impl Default for Monitoring {
    fn default() -> Self {
        Monitoring {
            metrics_endpoint: None,
            metrics_port: default_metrics_port(),
        }
    }
}

fn default_metrics_port() -> u16 {
    9090
}

/// Where a secret value is: a file or an environment variable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Reads, parses and validates `path`. Errors are
    /// `FILE:LINE:COLUMN: FIELD.PATH: message`.
    pub fn load(path: &Path) -> Result<SiteFile> {
        let name = path.display().to_string();
        let bytes = read_regular(path, MAX_SITE_BYTES, "a site file")?;
        let text = String::from_utf8(bytes).map_err(|_| anyhow!("{name}: not UTF-8 text"))?;
        let site = Site::parse(&text).map_err(|e| match e.position {
            Some((l, c)) => anyhow!("{name}:{l}:{c}: {}", e.message),
            None => anyhow!("{name}: {}", e.message),
        })?;
        Ok(SiteFile {
            path: path.to_path_buf(),
            site,
            text,
        })
    }

    /// Every secret's value, in the order of [`Site::secrets`]. When any
    /// cannot be read, one error lists each of them (its line, field path,
    /// where it was looked for and the fix), never a value.
    pub fn resolve_secrets(&self) -> Result<Vec<String>> {
        let base = self.base_dir();
        let mut values = Vec::new();
        let mut failures = Vec::new();
        for (field, r) in self.site.secrets() {
            match r.resolve(&field, &base) {
                Ok(v) => values.push(v),
                Err(e) => {
                    let fix = if r.env.is_some() {
                        "set the variable in the environment airgap-install runs in"
                    } else {
                        "write the value into that file, or correct file:"
                    };
                    let at = match locate(&self.text, &field) {
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

impl Site {
    /// Parses and validates site YAML; errors are `FIELD.PATH: message`,
    /// located in `text` when the field (or the YAML error) is found.
    pub fn parse(text: &str) -> Result<Site, SiteError> {
        let value = airgap_profile::yaml::parse(text).map_err(|e| SiteError {
            position: e.position,
            message: e.message,
        })?;
        Site::from_value(&value).map_err(|message| SiteError {
            position: field_of(&message).and_then(|f| locate(text, f)),
            message,
        })
    }

    /// Reads and validates a site given as a JSON value (what
    /// [`Site::parse`] reads the YAML into); errors are `FIELD.PATH: message`.
    pub fn from_value(value: &serde_json::Value) -> Result<Site, String> {
        let mut site: Site = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let message = plain_serde_message(&e.inner().to_string(), &path);
            match (path.as_str(), message) {
                (".", (Some(field), m)) => format!("{field}: {m}"),
                (".", (None, m)) => m,
                (p, (Some(field), m)) => format!("{p}.{field}: {m}"),
                (p, (None, m)) => format!("{p}: {m}"),
            }
        })?;
        site.validate()?;
        Ok(site)
    }

    /// Every secret the site names, with its field path.
    pub fn secrets(&self) -> Vec<(String, &SecretRef)> {
        let mut out = Vec::new();
        if let Some(db) = &self.control_plane.database {
            out.push(("controlPlane.database.password".into(), &db.password));
        }
        if let Some(idp) = &self.identity_provider {
            if let Some(o) = &idp.oidc {
                out.push((
                    "identityProvider.oidc.clientSecret".into(),
                    &o.client_secret,
                ));
            }
            if let Some(p) = idp.ldap.as_ref().and_then(|l| l.bind_password.as_ref()) {
                out.push(("identityProvider.ldap.bindPassword".into(), p));
            }
        }
        for (i, w) in self.workspaces.iter().enumerate() {
            out.push((
                format!("workspaces[{i}].database.password"),
                &w.database.password,
            ));
            out.push((
                format!("workspaces[{i}].enrollmentToken"),
                &w.enrollment_token,
            ));
        }
        if let Some(l) = &self.license {
            out.push(("license".into(), l));
        }
        out
    }

    fn validate(&mut self) -> Result<(), String> {
        if self.site_version != SITE_VERSION {
            return Err(format!(
                "siteVersion: expected {SITE_VERSION} (found {})",
                self.site_version
            ));
        }
        check_label("name", &self.name, 63)?;
        check_label("namespace", &self.namespace, 63)?;
        if !valid_host(&self.registry.host) {
            return Err(format!(
                "registry.host: expected HOST[:PORT] without a scheme (found {})",
                quote(&self.registry.host)
            ));
        }
        let prefix = self.registry.prefix.trim_matches('/').to_string();
        if !prefix.is_empty() && !airgap_format::bundle_json::is_valid_repository(&prefix) {
            return Err(format!(
                "registry.prefix: {} is not a lowercase repository path",
                quote(&prefix)
            ));
        }
        self.registry.prefix = prefix;
        check_url("controlPlane.url", &self.control_plane.url, &["https"])?;
        if let Some(h) = &self.control_plane.ingress_host {
            check_hostname("controlPlane.ingressHost", h)?;
        }
        if let Some(h) = &self.dashboard.ingress_host {
            check_hostname("dashboard.ingressHost", h)?;
        }
        match self.scenario {
            Scenario::AirGapped => {
                let db = self.control_plane.database.as_mut().ok_or_else(|| {
                    "controlPlane.database: required in an air-gapped site".to_string()
                })?;
                check_database("controlPlane.database", db)?;
                let idp = self.identity_provider.as_ref().ok_or_else(|| {
                    "identityProvider: required in an air-gapped site".to_string()
                })?;
                check_idp(idp)?;
            }
            Scenario::Hybrid => {
                if self.control_plane.database.is_some() {
                    return Err("controlPlane.database: not used in a hybrid site, whose control plane runs outside (remove it)".into());
                }
                if self.identity_provider.is_some() {
                    return Err("identityProvider: not used in a hybrid site; the external control plane has its own (remove it)".into());
                }
                if self.license.is_some() {
                    return Err("license: not used in a hybrid site; the external control plane holds the license (remove it)".into());
                }
            }
        }
        check_secrets_store("secretsStore", &self.secrets_store)?;
        check_artifact_store(&self.artifact_store)?;
        if self.workspaces.is_empty() {
            return Err("workspaces: at least one workspace is required".into());
        }
        let mut names = BTreeSet::new();
        for (i, w) in self.workspaces.iter_mut().enumerate() {
            let at = format!("workspaces[{i}]");
            check_label(&format!("{at}.name"), &w.name, 40)?;
            if !names.insert(w.name.clone()) {
                return Err(format!("{at}.name: {} is listed twice", w.name));
            }
            check_url(&format!("{at}.url"), &w.url, &["https"])?;
            if let Some(h) = &w.ingress_host {
                check_hostname(&format!("{at}.ingressHost"), h)?;
            }
            check_database(&format!("{at}.database"), &mut w.database)?;
            if let Some(s) = &w.secrets_store {
                check_secrets_store(&format!("{at}.secretsStore"), s)?;
            }
        }
        if let Some(e) = &self.monitoring.metrics_endpoint {
            check_url("monitoring.metricsEndpoint", e, &["https", "http"])?;
        }
        if self.monitoring.metrics_port == 0 {
            return Err("monitoring.metricsPort: expected 1 to 65535".into());
        }
        for (field, s) in self.secrets() {
            if s.file.is_some() == s.env.is_some() {
                return Err(format!(
                    "{field}: expected exactly one of file or env (the value itself never goes in the site file)"
                ));
            }
            if let Some(var) = &s.env {
                if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "{field}.env: {} is not an environment variable name",
                        quote(var)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Splits serde's message into the field it names (for missing and unknown
/// fields) and a plain message listing allowed values without backticks,
/// in words rather than Rust types (`u16`, `struct SecretRef`), and
/// without the value found where a secret belongs.
fn plain_serde_message(m: &str, path: &str) -> (Option<String>, String) {
    let unquote = |s: &str| s.replace('`', "");
    // serde says "expected `a` or `b`" for two values and "expected one of
    // `a`, `b`, `c`" for more: always say the latter.
    let one_of = |tail: &str| {
        let list = unquote(
            tail.trim_start_matches(", ")
                .trim_start_matches("expected "),
        );
        let list = list.trim_start_matches("one of ").replace(" or ", ", ");
        format!("expected one of {list}")
    };
    if let Some(rest) = m.strip_prefix("missing field `") {
        let field = rest.split('`').next().unwrap_or_default().to_string();
        return (Some(field), "required".into());
    }
    if let Some(rest) = m.strip_prefix("unknown variant `") {
        let (found, tail) = rest.split_once('`').unwrap_or((rest, ""));
        return (None, format!("{} (found {})", one_of(tail), quote(found)));
    }
    if let Some(rest) = m.strip_prefix("unknown field `") {
        // The path already ends with the unknown field.
        let (_, tail) = rest.split_once('`').unwrap_or((rest, ""));
        return (None, format!("unknown field; {}", one_of(tail)));
    }
    let wrong = m
        .strip_prefix("invalid type: ")
        .or_else(|| m.strip_prefix("invalid value: "));
    if let Some((found, expected)) = wrong.and_then(|w| w.rsplit_once(", expected ")) {
        if expected == "struct SecretRef" {
            // The value found may be the secret itself: never shown.
            return (
                None,
                format!("{SECRET_FORM}; the value itself never goes in the site file (write it into a file, or set an environment variable)"),
            );
        }
        let expected = match expected {
            "a sequence" => "a list".to_string(),
            "u16" => "a whole number from 0 to 65535".to_string(),
            "u32" | "u64" => "a whole number".to_string(),
            "a boolean" => "true or false".to_string(),
            "path string" => "a path".to_string(),
            "string or map" => "a name".to_string(),
            _ if path == "." => "the site's fields (siteVersion:, name:, …)".to_string(),
            e if e.starts_with("struct ") => "a mapping of fields (KEY: VALUE)".to_string(),
            e => unquote(e),
        };
        let found = if let Some(s) = found.strip_prefix("string ") {
            quote(&serde_json::from_str::<String>(s).unwrap_or_else(|_| s.to_string()))
        } else {
            match found {
                "map" => "a mapping".to_string(),
                "sequence" => "a list".to_string(),
                "null" | "unit value" => "nothing".to_string(),
                f => unquote(
                    f.trim_start_matches("integer ")
                        .trim_start_matches("floating point ")
                        .trim_start_matches("boolean "),
                ),
            }
        };
        return (None, format!("expected {expected} (found {found})"));
    }
    (None, unquote(m))
}

/// The field path an error message starts with (`workspaces[1].name` of
/// `workspaces[1].name: …`), if it starts with one.
fn field_of(message: &str) -> Option<&str> {
    let (field, _) = message.split_once(": ")?;
    let ok = !field.is_empty()
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '[' | ']' | '_' | '-'));
    ok.then_some(field)
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

fn check_hostname(field: &str, h: &str) -> Result<(), String> {
    if valid_host(h) && !h.contains(':') {
        Ok(())
    } else {
        Err(format!("{field}: {} is not a host name", quote(h)))
    }
}

pub use airgap_registry::host::valid_host;

fn check_url(field: &str, url: &str, schemes: &[&str]) -> Result<(), String> {
    match airgap_profile::schema::url_problem(url, schemes) {
        Some(m) => Err(format!("{field}: {m}")),
        None => Ok(()),
    }
}

fn check_database(field: &str, db: &mut Database) -> Result<(), String> {
    if !valid_host(&db.host) || db.host.contains(':') {
        return Err(format!(
            "{field}.host: {} is not a host name",
            quote(&db.host)
        ));
    }
    if db.port == Some(0) {
        return Err(format!("{field}.port: expected 1 to 65535"));
    }
    let (default_port, modes) = match db.kind {
        DatabaseKind::Postgresql => (5432, POSTGRESQL_SSL_MODES),
        DatabaseKind::Mysql => (3306, MYSQL_SSL_MODES),
    };
    db.port.get_or_insert(default_port);
    let ident = |s: &str| {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    if !ident(&db.name) {
        return Err(format!(
            "{field}.name: {} is not a database name (letters, digits, '_', '-')",
            quote(&db.name)
        ));
    }
    if !ident(&db.user) {
        return Err(format!(
            "{field}.user: {} is not a user name (letters, digits, '_', '-')",
            quote(&db.user)
        ));
    }
    if !modes.contains(&db.ssl_mode.as_str()) {
        let kind = match db.kind {
            DatabaseKind::Postgresql => "postgresql",
            DatabaseKind::Mysql => "mysql",
        };
        return Err(format!(
            "{field}.sslMode: expected one of {} for {kind} (found {})",
            modes.join(", "),
            quote(&db.ssl_mode)
        ));
    }
    Ok(())
}

/// Refuses a section that does not belong to the chosen type, and a missing
/// one that does.
fn one_section(field: &str, kind: &str, sections: &[(&str, bool)]) -> Result<(), String> {
    let wanted = kind_section(kind);
    if sections
        .iter()
        .any(|(name, present)| *name == wanted && !present)
    {
        return Err(format!(
            "{field}.{wanted}: required when {field}.type is {kind}"
        ));
    }
    for (name, present) in sections {
        if *name != wanted && *present {
            return Err(format!(
                "{field}.{name}: set, but {field}.type is {kind} (remove it or change the type)"
            ));
        }
    }
    Ok(())
}

/// The section name for a type name (`aws-secrets-manager` → `aws`).
fn kind_section(kind: &str) -> &str {
    match kind {
        "aws-secrets-manager" => "aws",
        "azure-blob" => "azureBlob",
        other => other,
    }
}

fn check_idp(idp: &IdentityProvider) -> Result<(), String> {
    let kind = match idp.kind {
        IdentityProviderKind::Oidc => "oidc",
        IdentityProviderKind::Ldap => "ldap",
        IdentityProviderKind::Saml => "saml",
    };
    one_section(
        "identityProvider",
        kind,
        &[
            ("oidc", idp.oidc.is_some()),
            ("ldap", idp.ldap.is_some()),
            ("saml", idp.saml.is_some()),
        ],
    )?;
    if let Some(o) = &idp.oidc {
        check_url("identityProvider.oidc.issuerUrl", &o.issuer_url, &["https"])?;
        if o.client_id.is_empty() {
            return Err("identityProvider.oidc.clientId: must not be empty".into());
        }
    }
    if let Some(l) = &idp.ldap {
        check_url(
            "identityProvider.ldap.server",
            &l.server,
            &["ldaps", "ldap"],
        )?;
        if !l.base_dn.contains('=') {
            return Err(format!(
                "identityProvider.ldap.baseDn: {} is not a DN such as dc=example,dc=org",
                quote(&l.base_dn)
            ));
        }
        if l.bind_dn.is_some() != l.bind_password.is_some() {
            return Err("identityProvider.ldap: bindDn and bindPassword go together".into());
        }
    }
    if let Some(s) = &idp.saml {
        check_url(
            "identityProvider.saml.metadataUrl",
            &s.metadata_url,
            &["https"],
        )?;
    }
    Ok(())
}

fn check_secrets_store(field: &str, s: &SecretsStore) -> Result<(), String> {
    let kind = match s.kind {
        SecretsStoreKind::AwsSecretsManager => "aws-secrets-manager",
        SecretsStoreKind::Vault => "vault",
        SecretsStoreKind::Kubernetes => "kubernetes",
    };
    one_section(
        field,
        kind,
        &[
            ("aws", s.aws.is_some()),
            ("vault", s.vault.is_some()),
            ("kubernetes", s.kubernetes.is_some()),
        ],
    )?;
    if let Some(a) = &s.aws {
        let ok = !a.region.is_empty()
            && a.region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(format!(
                "{field}.aws.region: {} is not a region such as eu-west-1",
                quote(&a.region)
            ));
        }
        if let Some(e) = &a.endpoint {
            check_url(&format!("{field}.aws.endpoint"), e, &["https", "http"])?;
        }
    }
    if let Some(v) = &s.vault {
        check_url(&format!("{field}.vault.url"), &v.url, &["https"])?;
    }
    if let Some(k) = &s.kubernetes {
        check_label(&format!("{field}.kubernetes.namespace"), &k.namespace, 63)?;
    }
    Ok(())
}

fn check_artifact_store(s: &ArtifactStore) -> Result<(), String> {
    let kind = match s.kind {
        ArtifactStoreKind::S3 => "s3",
        ArtifactStoreKind::Nfs => "nfs",
        ArtifactStoreKind::AzureBlob => "azure-blob",
    };
    one_section(
        "artifactStore",
        kind,
        &[
            ("s3", s.s3.is_some()),
            ("nfs", s.nfs.is_some()),
            ("azureBlob", s.azure_blob.is_some()),
        ],
    )?;
    if let Some(b) = &s.s3 {
        check_url("artifactStore.s3.endpoint", &b.endpoint, &["https", "http"])?;
        let ok = (3..=63).contains(&b.bucket.len())
            && b.bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
        if !ok {
            return Err(format!(
                "artifactStore.s3.bucket: {} is not a bucket name",
                quote(&b.bucket)
            ));
        }
    }
    if let Some(n) = &s.nfs {
        if !valid_host(&n.server) || n.server.contains(':') {
            return Err(format!(
                "artifactStore.nfs.server: {} is not a host name",
                quote(&n.server)
            ));
        }
        if !n.path.starts_with('/') || n.path.contains("..") {
            return Err(format!(
                "artifactStore.nfs.path: {} is not an absolute export path",
                quote(&n.path)
            ));
        }
    }
    if let Some(a) = &s.azure_blob {
        let ok = (3..=24).contains(&a.account.len())
            && a.account
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !ok {
            return Err(format!(
                "artifactStore.azureBlob.account: {} is not a storage account name (3-24 lowercase letters and digits)",
                quote(&a.account)
            ));
        }
        check_label("artifactStore.azureBlob.container", &a.container, 63)?;
        if let Some(e) = &a.endpoint {
            check_url("artifactStore.azureBlob.endpoint", e, &["https", "http"])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../manifests/site.example.yaml");

    fn with(from: &str, to: &str) -> String {
        assert!(EXAMPLE.contains(from), "the example has no {from:?}");
        EXAMPLE.replacen(from, to, 1)
    }

    fn refused(text: &str, expected: &str) {
        let e = Site::parse(text).expect_err(expected).message;
        assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        assert!(!e.contains('\n'), "{e:?}");
    }

    /// The error and its line and column.
    fn located(text: &str) -> (String, Option<(u32, u32)>) {
        let e = Site::parse(text).unwrap_err();
        (e.message, e.position)
    }

    #[test]
    fn a_secret_written_as_its_value_says_where_it_goes() {
        let text = with(
            "    password:\n      file: site-secrets/control-plane-db.password",
            "    password: hunter2",
        );
        let (e, at) = located(&text);
        assert_eq!(
            e,
            "controlPlane.database.password: expected {file: PATH} or {env: NAME}; the value itself never goes in the site file (write it into a file, or set an environment variable)"
        );
        assert_eq!(at, Some((30, 15)));
        // Before, serde's words: a Rust type, and the secret itself.
        assert!(!e.contains("SecretRef") && !e.contains("hunter2"), "{e}");
        let text = with(
            "license:\n  file: site-secrets/platform.lic",
            "license: 1234",
        );
        let (e, _) = located(&text);
        assert!(
            e.starts_with("license: expected {file: PATH} or {env: NAME};"),
            "{e}"
        );
        assert!(!e.contains("1234"), "{e}");
    }

    #[test]
    fn wrong_types_are_said_in_words_at_their_line() {
        for (from, to, message, at) in [
            (
                "port: 5432",
                "port: 99999",
                "controlPlane.database.port: expected a whole number from 0 to 65535 (found 99999)",
                (26, 11),
            ),
            (
                "port: 5432",
                "port: five",
                "controlPlane.database.port: expected a whole number from 0 to 65535 (found \"five\")",
                (26, 11),
            ),
            (
                "  prefix: platform",
                "  prefix: platform\n  plainHttp: yes please",
                "registry.plainHttp: expected true or false (found \"yes please\")",
                (19, 14),
            ),
            (
                "siteVersion: 1",
                "siteVersion: [1]",
                "siteVersion: expected a whole number (found a list)",
                (5, 1),
            ),
            (
                "scenario: air-gapped",
                "scenario: 7",
                "scenario: expected a name (found 7)",
                (10, 11),
            ),
            (
                "registry:\n  host: registry.internal.example:5000\n  prefix: platform",
                "registry: registry.internal.example:5000",
                "registry: expected a mapping of fields (KEY: VALUE) (found \"registry.internal.example:5000\")",
                (16, 11),
            ),
            (
                "workspaces:\n  - name: genomics",
                "workspaces: {}\nx:\n  - name: genomics",
                "workspaces: expected a list (found a mapping)",
                (67, 1),
            ),
            (
                "internalCa: site-secrets/internal-ca.pem",
                "internalCa: [a]",
                "internalCa: expected a path (found a list)",
                (13, 1),
            ),
        ] {
            let (e, position) = located(&with(from, to));
            assert_eq!(e, message);
            assert_eq!(position, Some(at), "{e}");
        }
        let e = Site::parse("just text").unwrap_err().message;
        assert_eq!(
            e,
            "expected the site's fields (siteVersion:, name:, …) (found \"just text\")"
        );
    }

    #[test]
    fn no_message_names_a_rust_type() {
        // Every value of the example, replaced by values of other types.
        for (n, line) in EXAMPLE.lines().enumerate() {
            let Some((key, value)) = line.split_once(": ") else {
                continue;
            };
            if key.trim_start().starts_with('#') || value.trim().is_empty() {
                continue;
            }
            for other in ["[x]", "{a: 1}", "7", "true", "~", "-3", "1.5"] {
                let mut lines: Vec<&str> = EXAMPLE.lines().collect();
                let replaced = format!("{key}: {other}");
                lines[n] = &replaced;
                let Err(e) = Site::parse(&lines.join("\n")) else {
                    continue;
                };
                for rust in [
                    "struct",
                    "enum ",
                    "u16",
                    "u32",
                    "SecretRef",
                    "sequence",
                    "`",
                ] {
                    assert!(!e.message.contains(rust), "{replaced}: {}", e.message);
                }
                assert!(e.position.is_some(), "{replaced}: {}", e.message);
            }
        }
    }

    #[test]
    fn every_error_is_located() {
        // A checked value: at the value.
        let (e, at) = located(&with("sslMode: REQUIRED", "sslMode: require"));
        assert!(e.starts_with("workspaces[1].database.sslMode: "), "{e}");
        assert_eq!(at, Some((88, 16)));
        // An unknown field: at its value.
        let (e, at) = located(&with("  prefix: platform", "  prefx: platform"));
        assert!(e.starts_with("registry.prefx: unknown field"), "{e}");
        assert_eq!(at, Some((18, 10)));
        // A missing field: at its parent.
        let (e, at) = located(&with("    sslMode: verify-full      #", "    #"));
        assert_eq!(e, "controlPlane.database.sslMode: required");
        assert_eq!(at, Some((23, 3)));
        // A YAML error, where the parser stopped.
        let (e, at) = located("siteVersion: 1\nname: [\n");
        assert!(e.starts_with("not valid YAML"), "{e}");
        assert!(at.is_some_and(|(l, _)| l >= 2), "{e} {at:?}");
        assert!(!e.contains("at line"), "{e}");
        assert_eq!(locate("a:\n  - b: 1\n  - c: [x]\n", "a[1].c"), Some((3, 5)));
        assert_eq!(locate("a: 1\n", "nothere.x"), None);
    }

    #[test]
    fn every_unreadable_secret_is_listed_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.yaml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let site = SiteFile::load(&path).unwrap();
        let text = EXAMPLE
            .replace(
                "env: PLATFORM_OIDC_CLIENT_SECRET",
                "env: AIRGAP_TEST_UNSET_SECRET_VAR",
            )
            .replace(
                "env: IMAGING_DB_PASSWORD",
                "env: AIRGAP_TEST_UNSET_SECRET_VAR",
            );
        let site = SiteFile {
            text: text.clone(),
            site: Site::parse(&text).unwrap(),
            ..site
        };
        // No site-secrets/ folder beside it: every file is missing. Before,
        // only the first was named.
        let e = site.resolve_secrets().unwrap_err().to_string();
        let (file, dir) = (path.display(), dir.path().display());
        assert!(
            e.starts_with(&format!("{file}: 7 secrets cannot be read: (1) line 30: controlPlane.database.password: {dir}/site-secrets/control-plane-db.password: cannot read (No such file or directory (os error 2)); write the value into that file, or correct file: (2) line 38: identityProvider.oidc.clientSecret: environment variable AIRGAP_TEST_UNSET_SECRET_VAR is not set; set the variable in the environment airgap-install runs in (3) line 77: workspaces[0].database.password: ")),
            "{e}"
        );
        assert!(
            e.contains("(5) line 89: workspaces[1].database.password: environment variable")
                && e.contains("(7) line 104: license: ")
                && e.ends_with("; write the value into that file, or correct file:"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn a_validated_site_reads_back_as_itself() {
        let s = Site::parse(&with("  prefix: platform", "  prefix: /platform/")).unwrap();
        assert_eq!(s.registry.prefix, "platform");
        let v = serde_json::to_value(&s).unwrap();
        let again = Site::from_value(&v).unwrap();
        assert_eq!(serde_json::to_value(&again).unwrap(), v);
        let e = Site::from_value(&serde_json::json!({"siteVersion": 1})).unwrap_err();
        assert_eq!(e, "name: required");
    }

    #[test]
    fn the_example_is_valid_and_defaulted() {
        let s = Site::parse(EXAMPLE).unwrap();
        assert_eq!(s.scenario, Scenario::AirGapped);
        assert_eq!(s.workspaces[1].database.port, Some(3306));
        assert_eq!(s.secrets().len(), 7);
    }

    #[test]
    fn unknown_types_list_the_allowed_values() {
        refused(
            &with("  type: oidc ", "  type: kerberos "),
            "identityProvider.type: expected one of oidc, ldap, saml (found \"kerberos\")",
        );
        refused(
            &with("scenario: air-gapped", "scenario: cloud"),
            "scenario: expected one of air-gapped, hybrid (found \"cloud\")",
        );
        refused(
            &with("    type: postgresql          #", "    type: oracle #"),
            "controlPlane.database.type: expected one of postgresql, mysql",
        );
        refused(
            &with("  type: vault  ", "  type: keepass  "),
            "secretsStore.type: expected one of aws-secrets-manager, vault, kubernetes",
        );
        refused(
            &with("  type: s3  ", "  type: ftp  "),
            "artifactStore.type: expected one of s3, nfs, azure-blob",
        );
    }

    #[test]
    fn database_settings_are_checked_per_engine() {
        refused(
            &with("sslMode: REQUIRED", "sslMode: require"),
            "workspaces[1].database.sslMode: expected one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY for mysql",
        );
        refused(
            &with("sslMode: verify-full", "sslMode: VERIFY_IDENTITY"),
            "controlPlane.database.sslMode: expected one of disable, allow, prefer, require, verify-ca, verify-full for postgresql",
        );
        refused(
            &with("port: 5432", "port: 0"),
            "controlPlane.database.port: expected 1 to 65535",
        );
        refused(
            &with("port: 5432", "port: 99999"),
            "controlPlane.database.port",
        );
        refused(
            &with(
                "host: db.internal.example\n    port",
                "host: \"db internal\"\n    port",
            ),
            "controlPlane.database.host",
        );
        refused(
            &with("name: control_plane", "name: \"drop table\""),
            "controlPlane.database.name",
        );
    }

    #[test]
    fn sections_must_match_their_type() {
        refused(
            &with(
                "  vault:\n    url:",
                "  kubernetes:\n    namespace: x\n  vault:\n    url:",
            ),
            "secretsStore.kubernetes: set, but secretsStore.type is vault",
        );
        refused(
            &with("  type: s3  ", "  type: nfs  "),
            "artifactStore.nfs: required when artifactStore.type is nfs",
        );
        refused(
            &with("  type: oidc ", "  type: saml "),
            "identityProvider.saml: required when identityProvider.type is saml",
        );
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        refused(
            &with("  host: registry.internal.example:5000\n", ""),
            "registry.host: required",
        );
        refused(
            &with("  prefix: platform", "  prefx: platform"),
            "registry.prefx: unknown field",
        );
        refused(
            &with(
                "workspaces:\n  - name: genomics",
                "workspaces:\n  - team: genomics",
            ),
            "workspaces[0]",
        );
        refused(
            &with("siteVersion: 1", "siteVersion: 2"),
            "siteVersion: expected 1",
        );
        refused("name: [", "not valid YAML");
    }

    #[test]
    fn urls_hosts_and_names_are_checked() {
        refused(
            &with(
                "url: https://cp.internal.example",
                "url: http://cp.internal.example",
            ),
            "controlPlane.url: \"http://cp.internal.example\": expected https://",
        );
        refused(
            &with(
                "host: registry.internal.example:5000",
                "host: https://registry.internal.example",
            ),
            "registry.host: expected HOST[:PORT]",
        );
        refused(
            &with("prefix: platform", "prefix: Platform"),
            "registry.prefix",
        );
        refused(
            &with("- name: imaging", "- name: genomics"),
            "workspaces[1].name: genomics is listed twice",
        );
        refused(
            &with("- name: imaging", "- name: Imaging_Team"),
            "workspaces[1].name",
        );
        refused(
            &with("issuerUrl: https://sso", "issuerUrl: sso"),
            "identityProvider.oidc.issuerUrl",
        );
        refused(
            &with("bucket: platform-artifacts", "bucket: X"),
            "artifactStore.s3.bucket",
        );
        refused(
            &with("url: https://vault.internal.example:8200", "url: vault"),
            "secretsStore.vault.url",
        );
        refused(
            &with("namespace: imaging-secrets", "namespace: Imaging"),
            "workspaces[1].secretsStore.kubernetes.namespace",
        );
    }

    #[test]
    fn secrets_are_referenced_never_inline() {
        refused(
            &with(
                "      env: PLATFORM_OIDC_CLIENT_SECRET",
                "      env: PLATFORM_OIDC_CLIENT_SECRET\n      file: x",
            ),
            "identityProvider.oidc.clientSecret: expected exactly one of file or env",
        );
        refused(
            &with(
                "      env: PLATFORM_OIDC_CLIENT_SECRET",
                "      value: hunter2",
            ),
            "identityProvider.oidc.clientSecret.value: unknown field",
        );
        refused(
            &with("env: IMAGING_DB_PASSWORD", "env: \"not a var\""),
            "workspaces[1].database.password.env",
        );
    }

    #[test]
    fn scenarios_decide_what_is_required() {
        let hybrid = with("scenario: air-gapped", "scenario: hybrid");
        refused(&hybrid, "controlPlane.database: not used in a hybrid site");
        let no_db = with("scenario: air-gapped", "scenario: air-gapped");
        let cut = no_db
            .find("  database:\n    type: postgresql          #")
            .unwrap();
        let end = no_db.find("identityProvider:").unwrap();
        let without = format!("{}{}", &no_db[..cut], &no_db[end..]);
        refused(
            &without,
            "controlPlane.database: required in an air-gapped site",
        );
        refused(
            &with("workspaces:\n", "workspaces: []\nunused:\n"),
            "unused",
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

    /// The reference product's schema (`templates/site.schema.json`, which
    /// its bundles will carry) accepts and refuses what the typed model does:
    /// every value of the example replaced by values of other types, and
    /// the cases above.
    #[test]
    fn the_reference_schema_agrees_with_the_typed_model() {
        let schema = airgap_profile::SiteSchema::new(
            serde_json::from_str(include_str!("../../templates/site.schema.json")).unwrap(),
        )
        .unwrap();
        let mut texts = Vec::new();
        for (n, line) in EXAMPLE.lines().enumerate() {
            let Some((key, value)) = line.split_once(": ") else {
                continue;
            };
            if key.trim_start().starts_with('#') || value.trim().is_empty() {
                continue;
            }
            for other in [
                "[x]",
                "{a: 1}",
                "7",
                "true",
                "~",
                "-3",
                "1.5",
                "0",
                "65536",
                "\"\"",
                "Ab_c",
                "-a",
                "http://x.example",
                "https://",
                "a..b",
                "/x/../y",
            ] {
                let mut lines: Vec<&str> = EXAMPLE.lines().collect();
                let replaced = format!("{key}: {other}");
                lines[n] = &replaced;
                texts.push(lines.join("\n"));
            }
            let mut lines: Vec<&str> = EXAMPLE.lines().collect();
            lines.remove(n);
            texts.push(lines.join("\n"));
        }
        for (from, to) in [
            ("scenario: air-gapped", "scenario: hybrid"),
            ("  type: oidc ", "  type: ldap "),
            ("  type: s3 ", "  type: nfs "),
            ("  type: vault ", "  type: kubernetes "),
            ("  - name: imaging", "  - name: genomics"),
            (
                "workspaces:\n  - name: genomics",
                "workspaces: []\nx:\n  - name: genomics",
            ),
            ("  prefix: platform", "  prefix: /platform/"),
            ("  prefix: platform", "  prefix: Platform"),
            ("      type: mysql", "      type: postgresql"),
            (
                "host: registry.internal.example:5000",
                "host: \"[::1]:5000\"",
            ),
        ] {
            assert!(EXAMPLE.contains(from), "{from}");
            texts.push(EXAMPLE.replacen(from, to, 1));
        }
        let mut disagree = Vec::new();
        for text in &texts {
            let typed = Site::parse(text);
            let Ok(value) = airgap_profile::yaml::parse(text) else {
                assert!(typed.is_err());
                continue;
            };
            let problems = schema.check(&value);
            // Stricter on purpose: an empty path is refused when the file
            // is read, the typed model only finds out later.
            let stricter = typed.is_ok()
                && problems.len() == 1
                && (problems[0].path.ends_with(".file") || problems[0].path == "internalCa")
                && text.contains("\"\"");
            // Kinder on purpose: a field written with no value is absent, so
            // its default applies; the typed model took that only for
            // fields without a default.
            let kinder = problems.is_empty()
                && typed
                    .as_ref()
                    .is_err_and(|e| e.message.ends_with("(found nothing)"));
            if typed.is_ok() != problems.is_empty() && !stricter && !kinder {
                let diff: Vec<String> = text
                    .lines()
                    .zip(EXAMPLE.lines())
                    .filter(|(a, b)| a != b)
                    .map(|(a, _)| a.to_string())
                    .take(1)
                    .collect();
                disagree.push(format!(
                    "{diff:?}: typed {:?}, schema {:?}",
                    typed.err().map(|e| e.message),
                    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>()
                ));
            }
        }
        assert!(texts.len() > 800, "{}", texts.len());
        assert!(
            disagree.is_empty(),
            "{} of {}:\n{}",
            disagree.len(),
            texts.len(),
            disagree.join("\n")
        );
    }
}
