//! `render.yaml`: the bundle's own description of what to render: the
//! Helm releases in install order, each with its chart and values template,
//! and other files (monitoring, backup commands). It travels in the bundle
//! as a template like the others, so a site renders exactly what shipped.

use serde::Deserialize;

/// The name of the render description among a bundle's templates.
pub const RENDER_SPEC: &str = "render.yaml";
/// Output names `render` writes itself, which `files` may not use.
pub const RESERVED_OUTPUTS: &[&str] =
    &["values", "charts", "ca.pem", "plan.json", "install-plan.sh"];
/// The render description version this installer reads.
pub const RENDER_VERSION: u32 = 1;

/// The whole `render.yaml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenderSpec {
    /// Always [`RENDER_VERSION`].
    pub render_version: u32,
    /// Helm releases, in install order.
    pub releases: Vec<ReleaseSpec>,
    /// Other files to render.
    #[serde(default)]
    pub files: Vec<FileSpec>,
}

/// One release, or one per item of a list in the site file.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseSpec {
    /// Release name; a template itself (`app-{{item.name}}`).
    pub name: String,
    /// Chart name in the bundle.
    pub chart: String,
    /// The values template.
    pub values: String,
    /// A list in the site file (its field path, `teams`): one
    /// release per item, with the item in scope under [`ReleaseSpec::item_name`].
    #[serde(default)]
    pub for_each: Option<String>,
    /// The name templates see the item under (default `item`).
    #[serde(default, rename = "as")]
    pub as_name: Option<String>,
    /// Scenarios the release belongs to (default: all).
    #[serde(default)]
    pub scenarios: Option<Vec<String>>,
}

/// Names a release's templates already see, which `as` may not take.
pub const CONTEXT_NAMES: &[&str] = &["site", "bundle", "caBundle", "release"];

impl ReleaseSpec {
    /// The name the item of `forEach` is seen under: `as`, else `item`.
    pub fn item_name(&self) -> &str {
        self.as_name.as_deref().unwrap_or("item")
    }
}

/// One other rendered file.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileSpec {
    /// The template.
    pub template: String,
    /// Output path under the output folder.
    pub output: String,
    /// Make it executable (scripts).
    #[serde(default)]
    pub executable: bool,
    /// What the installer does with it: `backup` scripts run before every
    /// upgrade is applied (a failure stops the upgrade). Absent: nothing.
    #[serde(default)]
    pub role: Option<FileRole>,
}

/// What the installer does with a rendered file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileRole {
    /// Run before an upgrade is applied, with `BACKUP_DIR` set to a new
    /// folder; must be executable.
    Backup,
    /// Run by `rollback` before the earlier version is applied again, with
    /// `BACKUP_DIR` set to the folder the upgrade's backups wrote; must be
    /// executable.
    Restore,
}

impl FileRole {
    /// The role as `render.yaml` and the audit log name it.
    pub fn as_str(self) -> &'static str {
        match self {
            FileRole::Backup => "backup",
            FileRole::Restore => "restore",
        }
    }
}

impl RenderSpec {
    /// Parses `render.yaml` text; errors name the field path.
    pub fn parse(text: &str) -> Result<RenderSpec, String> {
        let value: serde_json::Value = serde_saphyr::from_str(text)
            .map_err(|e| format!("not valid YAML: {}", e.without_snippet()))?;
        let spec: RenderSpec = serde_path_to_error::deserialize(&value)
            .map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
        if spec.render_version != RENDER_VERSION {
            return Err(format!(
                "renderVersion: expected {RENDER_VERSION} (found {})",
                spec.render_version
            ));
        }
        let mut outputs = std::collections::BTreeSet::new();
        for (i, f) in spec.files.iter().enumerate() {
            let first = f.output.split('/').next().unwrap_or_default();
            if !airgap_format::bundle_json::is_safe_relative_path(&f.output)
                || RESERVED_OUTPUTS.contains(&first)
            {
                return Err(format!(
                    "files[{i}].output: {:?} is not a safe relative path outside the names render writes itself ({})",
                    f.output,
                    RESERVED_OUTPUTS.join(", ")
                ));
            }
            if !outputs.insert(f.output.as_str()) {
                return Err(format!("files[{i}].output: {} is listed twice", f.output));
            }
            if !f.template.ends_with(".hbs") {
                return Err(format!(
                    "files[{i}].template: {:?}: templates are .hbs files",
                    f.template
                ));
            }
            if let Some(role) = f.role.filter(|_| !f.executable) {
                return Err(format!(
                    "files[{i}].role: a {} script must be executable (add executable: true)",
                    role.as_str()
                ));
            }
        }
        for (i, r) in spec.releases.iter().enumerate() {
            if !r.values.ends_with(".hbs") {
                return Err(format!(
                    "releases[{i}].values: {:?}: templates are .hbs files",
                    r.values
                ));
            }
            if r.scenarios.as_ref().is_some_and(|s| s.is_empty()) {
                return Err(format!(
                    "releases[{i}].scenarios: empty; leave it out to render the release in every scenario"
                ));
            }
            if let Some(list) = &r.for_each {
                let ok = !list.is_empty()
                    && list.split('.').all(|p| {
                        !p.is_empty()
                            && p.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    });
                if !ok {
                    return Err(format!(
                        "releases[{i}].forEach: {list:?} is not a field path of the site file (a list such as teams, or a.b)"
                    ));
                }
            }
            if let Some(name) = &r.as_name {
                let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok || CONTEXT_NAMES.contains(&name.as_str()) {
                    return Err(format!(
                        "releases[{i}].as: {name:?} must be a name (letters, digits, '_') other than {}",
                        CONTEXT_NAMES.join(", ")
                    ));
                }
                if r.for_each.is_none() {
                    return Err(format!("releases[{i}].as: names the item of forEach, which this release does not have"));
                }
            }
        }
        Ok(spec)
    }
}
