//! The product profile, checked at build time: when the templates hold a
//! `profile.yaml`, its site schema (also among the templates) must be
//! valid JSON Schema 2020-12, its example site file (on the build machine,
//! beside the profile) must validate against it, every field the profile
//! names must be one the schema declares, and its product must be the
//! bundle's name, which licences name. What the site's installer would
//! trip over is refused here, naming the file and field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airgap_format::display::quote;
use airgap_format::regular_file::read_regular_string;
use airgap_profile::profile::{Profile, MAX_PROFILE_BYTES, PROFILE_FILE};
use airgap_profile::SiteSchema;

/// Checks the profile among `templates` (template name → file on disk)
/// for the bundle `product`. `Ok(false)` when there is none.
pub fn check(templates: &BTreeMap<String, PathBuf>, product: &str) -> Result<bool, String> {
    let Some(path) = templates.get(PROFILE_FILE) else {
        return Ok(false);
    };
    let shown = path.display();
    let text = read(path)?;
    let profile = Profile::parse(&text).map_err(|(at, e)| located(path, at, &e))?;
    if profile.product != product {
        return Err(format!(
            "{shown}: product: {} is not this bundle's name {}; licences name the bundle's name, so write product: {product} (or correct name: in the manifest)",
            quote(&profile.product),
            quote(product)
        ));
    }
    let Some(schema_path) = templates.get(&profile.site_schema) else {
        return Err(format!(
            "{shown}: siteSchema: {} is not among the templates; put the schema beside {PROFILE_FILE}",
            quote(&profile.site_schema)
        ));
    };
    let schema_text = read(schema_path)?;
    let schema = SiteSchema::from_text(&schema_text)
        .map_err(|e| format!("{}: {e}", schema_path.display()))?;
    let problems = profile.check(&schema);
    if !problems.is_empty() {
        return Err(format!("{shown}: {}", problems.join("; ")));
    }
    if let Some(example) = &profile.example {
        let example_path = path.parent().unwrap_or(Path::new(".")).join(example);
        let text = read(&example_path)?;
        let value = airgap_profile::yaml::parse(&text)
            .map_err(|e| located(&example_path, e.position, &e.message))?;
        let problems = schema.check(&value);
        if !problems.is_empty() {
            let listed: Vec<String> = problems
                .iter()
                .map(|p| match airgap_profile::locate::locate(&text, &p.path) {
                    Some((l, c)) => format!("{l}:{c}: {p}"),
                    None => p.to_string(),
                })
                .collect();
            return Err(format!(
                "{}: the example site file does not validate against {}: {}",
                example_path.display(),
                profile.site_schema,
                listed.join("; ")
            ));
        }
    }
    Ok(true)
}

fn read(path: &Path) -> Result<String, String> {
    read_regular_string(path, MAX_PROFILE_BYTES, "a profile file").map_err(|e| e.to_string())
}

fn located(path: &Path, at: Option<(u32, u32)>, message: &str) -> String {
    match at {
        Some((l, c)) => format!("{}:{l}:{c}: {message}", path.display()),
        None => format!("{}: {message}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = include_str!("../../templates/profile.yaml");
    const SCHEMA: &str = include_str!("../../templates/site.schema.json");
    const EXAMPLE: &str = include_str!("../../manifests/site.example.yaml");

    /// Changes to the profile, the schema and the example.
    type Edit = Box<dyn Fn(&mut String, &mut String, &mut String)>;

    /// A templates folder with the reference profile, `edit` applied to
    /// (profile, schema, example), and the name → path map.
    fn folder(
        dir: &Path,
        edit: impl Fn(&mut String, &mut String, &mut String),
    ) -> BTreeMap<String, PathBuf> {
        let (mut p, mut s, mut e) = (
            PROFILE.replace("../manifests/site.example.yaml", "example.yaml"),
            SCHEMA.to_string(),
            EXAMPLE.to_string(),
        );
        edit(&mut p, &mut s, &mut e);
        let mut map = BTreeMap::new();
        for (name, text) in [("profile.yaml", &p), ("site.schema.json", &s)] {
            std::fs::write(dir.join(name), text).unwrap();
            map.insert(name.to_string(), dir.join(name));
        }
        std::fs::write(dir.join("example.yaml"), e).unwrap();
        map
    }

    #[test]
    fn the_reference_profile_passes_and_none_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let map = folder(dir.path(), |_, _, _| {});
        assert_eq!(check(&map, "reference-platform"), Ok(true));
        assert_eq!(check(&BTreeMap::new(), "reference-platform"), Ok(false));
    }

    #[test]
    fn each_defect_is_refused_naming_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let cases: Vec<(&str, Edit)> = vec![
            (
                "product: \"other\" is not this bundle's name",
                Box::new(|p, _, _| *p = p.replace("product: reference-platform", "product: other")),
            ),
            (
                "siteSchema: \"nope.json\" is not among the templates",
                Box::new(|p, _, _| *p = p.replace("siteSchema: site.schema.json", "siteSchema: nope.json")),
            ),
            (
                "site.schema.json: $schema: required",
                Box::new(|_, s, _| *s = s.replacen("\"$schema\"", "\"$comment\"", 1)),
            ),
            (
                "healthChecks[1].url: the items of workspaces have no field \"address\"",
                Box::new(|p, _, _| *p = p.replace("{{item.url}}", "{{item.address}}")),
            ),
            (
                "example.yaml: the example site file does not validate against site.schema.json: 26:11: controlPlane.database.port: expected a whole number from 1 to 65535 (found 0)",
                Box::new(|_, _, e| *e = e.replace("port: 5432", "port: 0")),
            ),
            (
                "profile.yaml:",
                Box::new(|p, _, _| *p = p.replace("profileVersion: 1", "profileVersion: 1\nextra: x")),
            ),
        ];
        for (want, edit) in cases {
            let map = folder(dir.path(), edit);
            let e = check(&map, "reference-platform").unwrap_err();
            assert!(e.contains(want), "{want}\n{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
