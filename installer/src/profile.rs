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
    let profile = Profile::parse(&read_template(PROFILE_FILE)?).map_err(|(at, e)| match at {
        Some((l, c)) => anyhow!("template {PROFILE_FILE}:{l}:{c}: {e}"),
        None => anyhow!("template {PROFILE_FILE}: {e}"),
    })?;
    let name = profile.site_schema.clone();
    let schema_text = read_template(&name)?;
    let schema =
        SiteSchema::from_text(&schema_text).map_err(|e| anyhow!("template {name}: {e}"))?;
    Ok(Some(BundleProfile {
        profile,
        schema,
        schema_text,
    }))
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
    crate::site::SiteFile::load(path, profile.as_ref().map(|p| &p.schema))
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

/// Every problem of the site file at `path` against `schema`, each at its
/// line and column; empty when it validates. A file that cannot be read
/// or is not YAML is an error.
pub fn check_site_file(path: &Path, schema: &SiteSchema) -> Result<Vec<SiteProblem>> {
    let text = read_regular_string(path, MAX_SITE_BYTES, "a site file")?;
    let value = match airgap_profile::yaml::parse(&text) {
        Ok(v) => v,
        Err(e) => {
            return Ok(vec![SiteProblem {
                line: e.position.map(|p| p.0),
                column: e.position.map(|p| p.1),
                field: String::new(),
                message: e.message,
            }])
        }
    };
    Ok(problems_in(&text, &value, schema))
}

/// Every problem of the site `value` (read from `text`) against `schema`,
/// each at its line and column in `text`, in the file's order.
pub fn problems_in(text: &str, value: &serde_json::Value, schema: &SiteSchema) -> Vec<SiteProblem> {
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
