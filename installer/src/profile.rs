//! The product profile a bundle carries: `profile.yaml` and the site
//! schema it names, among the bundle's templates, read through the
//! verified handle; and a site file checked against that schema.

use std::path::Path;

use airgap_format::regular_file::read_regular_string;
use airgap_format::SignedBundle;
use airgap_profile::profile::{Profile, MAX_PROFILE_BYTES, PROFILE_FILE};
use airgap_profile::{Problem, SiteSchema};
use anyhow::{anyhow, Result};

use crate::site::MAX_SITE_BYTES;

/// A bundle's profile and its compiled site schema.
#[derive(Debug)]
pub struct BundleProfile {
    /// `profile.yaml`.
    pub profile: Profile,
    /// The schema it names.
    pub schema: SiteSchema,
    /// The schema's text, as the vendor wrote it (its key order).
    pub schema_text: String,
    /// `profile.yaml`'s text.
    pub profile_text: String,
}

/// The profile `bundle` carries; `None` when its templates hold none.
/// The bundler checked it when it built the bundle; what is read here is
/// checked again, as untrusted input, with errors naming the template.
pub fn read(bundle: &SignedBundle) -> Result<Option<BundleProfile>> {
    let d = &bundle.descriptor;
    let read_template = |name: &str| -> Result<String> {
        let t = d.template(name).ok_or_else(|| {
            anyhow!(
                "{}: template {PROFILE_FILE} names {name}, which the bundle does not carry; the vendor must rebuild it",
                bundle.path().display()
            )
        })?;
        let bytes = bundle.read_blob(&t.digest, MAX_PROFILE_BYTES, "template")?;
        String::from_utf8(bytes).map_err(|_| anyhow!("template {name}: not UTF-8 text"))
    };
    if d.template(PROFILE_FILE).is_none() {
        return Ok(None);
    }
    let profile_text = read_template(PROFILE_FILE)?;
    let name = Profile::parse(&profile_text)
        .map(|p| p.site_schema)
        .unwrap_or_default();
    let schema_text = if name.is_empty() {
        String::new()
    } else {
        read_template(&name)?
    };
    BundleProfile::from_texts(&profile_text, &schema_text).map(Some)
}

impl BundleProfile {
    /// A profile and its schema from their texts (a bundle's templates, or
    /// the copies the state keeps of an installed version's); errors name
    /// the file as a template.
    pub fn from_texts(profile_text: &str, schema_text: &str) -> Result<BundleProfile> {
        let profile = Profile::parse(profile_text).map_err(|(at, e)| match at {
            Some((l, c)) => anyhow!("template {PROFILE_FILE}:{l}:{c}: {e}"),
            None => anyhow!("template {PROFILE_FILE}: {e}"),
        })?;
        let name = &profile.site_schema;
        let schema =
            SiteSchema::from_text(schema_text).map_err(|e| anyhow!("template {name}: {e}"))?;
        Ok(BundleProfile {
            profile,
            schema,
            schema_text: schema_text.to_string(),
            profile_text: profile_text.to_string(),
        })
    }
}

/// The site file at `path`, checked against the schema of `bundle`'s
/// profile and read with it. A bundle without templates needs no profile
/// (only the installer's own fields are read); one with templates but no
/// profile was built by an older bundler and is refused with the fix.
pub fn load_site(bundle: &SignedBundle, path: &Path) -> Result<crate::site::SiteFile> {
    let profile = read(bundle)?;
    let d = &bundle.descriptor;
    if profile.is_none() && !d.templates.is_empty() {
        return Err(anyhow!(
            "{}: bundle {} {} carries templates but no {PROFILE_FILE}, so the site file cannot be checked: it was built by an older airgap-bundle; ask the vendor to rebuild it",
            bundle.path().display(),
            d.name,
            d.version
        ));
    }
    let site = crate::site::SiteFile::load(path, profile.as_ref())?;
    for r in &site.renamed {
        tracing::warn!(
            "{}: {} is now {} in {} {}: the file keeps working; rename it",
            path.display(),
            r.from,
            r.to,
            d.name,
            d.version
        );
    }
    Ok(site)
}

/// One problem of a site file, where it is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SiteProblem {
    /// 1-based line, when the field was found.
    pub line: Option<u32>,
    /// 1-based column.
    pub column: Option<u32>,
    /// The field path (empty for the whole file).
    pub field: String,
    /// What is wrong and what is expected.
    pub message: String,
}

impl std::fmt::Display for SiteProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, "{l}:{c}: ")?;
        }
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Every problem of the site file at `path` against the profile's schema,
/// each at its line and column (empty when it validates), after the
/// profile's renames, which are returned too. A file that cannot be read
/// is an error; one that is not YAML is one problem.
pub fn check_site_file(
    path: &Path,
    p: &BundleProfile,
) -> Result<(Vec<SiteProblem>, Vec<SiteProblem>)> {
    let text = read_regular_string(path, MAX_SITE_BYTES, "a site file")?;
    let mut value = match airgap_profile::yaml::parse(&text) {
        Ok(v) => v,
        Err(e) => {
            let problem = SiteProblem {
                line: e.position.map(|p| p.0),
                column: e.position.map(|p| p.1),
                field: String::new(),
                message: e.message,
            };
            return Ok((vec![problem], Vec::new()));
        }
    };
    let (renamed, problems) = examine(&text, &mut value, p);
    let renamed = renamed
        .into_iter()
        .map(|r| {
            let at = airgap_profile::locate::locate(&text, &r.from);
            SiteProblem {
                line: at.map(|p| p.0),
                column: at.map(|p| p.1),
                message: format!("renamed to {}: the file keeps working; rename it", r.to),
                field: r.from,
            }
        })
        .collect();
    Ok((problems, renamed))
}

/// The profile's renames applied to a site `value` read from `text`, then
/// the value checked against the profile's schema: what was renamed, and
/// every problem, located in `text`. What `site check`, every command that
/// loads a site file with a bundle, agree on.
pub fn examine(
    text: &str,
    value: &mut serde_json::Value,
    p: &BundleProfile,
) -> (Vec<airgap_profile::changes::Renamed>, Vec<SiteProblem>) {
    let renamed = p.profile.apply_renames(value);
    let problems = problems_in(text, value, &p.schema);
    (renamed, problems)
}

/// Every problem of the site `value` (read from `text`) against `schema`,
/// each at its line and column in `text`, in the file's order.
fn problems_in(text: &str, value: &serde_json::Value, schema: &SiteSchema) -> Vec<SiteProblem> {
    let mut problems: Vec<SiteProblem> = schema
        .check(value)
        .into_iter()
        .map(|Problem { path, message }| {
            let at = airgap_profile::locate::locate(text, &path);
            SiteProblem {
                line: at.map(|p| p.0),
                column: at.map(|p| p.1),
                field: path,
                message,
            }
        })
        .collect();
    // In the file's order; a problem not found in the text last.
    problems.sort_by_key(|p| (p.line.is_none(), p.line, p.column));
    problems
}

/// What a bundle's profile asks of a site file, against the installed
/// version's (`plan --site`).
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteAssessment {
    /// The site file.
    pub file: String,
    /// The installed version the schema is compared with, when its
    /// profile is recorded.
    pub compared_with: Option<String>,
    /// Whether the site schema differs from the installed version's (true
    /// when that is not known).
    pub schema_changed: bool,
    /// Fields named by an old name, which keep working.
    pub renamed: Vec<SiteProblem>,
    /// What must change in the file before the new version installs.
    pub problems: Vec<SiteProblem>,
    /// Defaults that change for fields the file leaves out.
    pub defaults: Vec<airgap_profile::changes::DefaultChange>,
}

/// What `bundle`'s profile asks of the site file at `path`, compared with
/// the profile the state recorded for the installed version of the same
/// bundle; `None` for a bundle without a profile.
pub fn assess_site(
    state: &crate::state::State,
    bundle: &SignedBundle,
    path: &Path,
) -> Result<Option<SiteAssessment>> {
    let Some(new) = read(bundle)? else {
        return Ok(None);
    };
    let d = &bundle.descriptor;
    let installed = state
        .install_record(&d.name)?
        .filter(|r| r.uninstalled_at.is_none());
    let old = match &installed {
        Some(r) => state
            .version_profile(&r.name, &r.version)?
            .map(|(p, s)| BundleProfile::from_texts(&p, &s))
            .transpose()?,
        None => None,
    };
    let text = read_regular_string(path, MAX_SITE_BYTES, "a site file")?;
    let file = path.display().to_string();
    let at = |field: &str| airgap_profile::locate::locate(&text, field);
    let located = |field: String, message: String| {
        let pos = at(&field);
        SiteProblem {
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            field,
            message,
        }
    };
    let value = match airgap_profile::yaml::parse(&text) {
        Ok(v) => v,
        Err(e) => anyhow::bail!("{file}: {}", e.message),
    };
    let changes = airgap_profile::changes::site_changes(
        &new.profile,
        &new.schema,
        old.as_ref().map(|o| &o.schema),
        &value,
    );
    let mut problems: Vec<SiteProblem> = changes
        .problems
        .into_iter()
        .map(|p| located(p.path, p.message))
        .collect();
    problems.sort_by_key(|p| (p.line.is_none(), p.line, p.column));
    Ok(Some(SiteAssessment {
        file,
        compared_with: old.as_ref().and(installed.map(|r| r.version)),
        schema_changed: old
            .as_ref()
            .is_none_or(|o| o.schema.value() != new.schema.value()),
        renamed: changes
            .renamed
            .into_iter()
            .map(|r| {
                located(
                    r.from,
                    format!("renamed to {}: keeps working; rename it", r.to),
                )
            })
            .collect(),
        problems,
        defaults: changes.defaults,
    }))
}
