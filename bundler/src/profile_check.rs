//! The product profile, checked at build time: when the templates hold a
//! `profile.yaml`, its site schema (also among the templates) must be
//! valid JSON Schema 2020-12, its example site file (on the build machine,
//! beside the profile) must validate against it, every field the profile
//! names must be one the schema declares, and its product must be the
//! bundle's name, which licences name; `render.yaml`'s lists and scenarios
//! and every `site.…` path a template writes must be fields the schema
//! declares. Templates without a profile are refused: the installer reads
//! the site file through it. What the site's installer would trip over is
//! refused here, naming the file and field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airgap_format::display::quote;
use airgap_format::regular_file::read_regular_string;
use airgap_install::render::spec::{RenderSpec, RENDER_SPEC};
use airgap_profile::profile::{Profile, MAX_PROFILE_BYTES, PROFILE_FILE};
use airgap_profile::SiteSchema;

/// Checks the profile among `templates` (template name → file on disk;
/// `texts`: name → text of `render.yaml` and the `.hbs` templates) for the
/// bundle `product`. `Ok(false)` when there are no templates at all.
pub fn check(
    templates: &BTreeMap<String, PathBuf>,
    texts: &[(String, Option<String>)],
    product: &str,
) -> Result<bool, String> {
    if templates.is_empty() {
        return Ok(false);
    }
    let Some(path) = templates.get(PROFILE_FILE) else {
        return Err(format!(
            "the templates carry no {PROFILE_FILE}, which the installer reads to check the site file and fill it in: add one beside {RENDER_SPEC} (templates.md §8)"
        ));
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
    check_render_spec(texts, &schema, &profile.site_schema)?;
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

/// `render.yaml`'s `forEach` lists and `scenarios`, and the site fields
/// the templates name, against the schema.
fn check_render_spec(
    texts: &[(String, Option<String>)],
    schema: &SiteSchema,
    schema_name: &str,
) -> Result<(), String> {
    let text_of = |name: &str| {
        texts
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| t.as_deref())
    };
    // check_templates ran first: render.yaml is there and reads.
    let Some(spec) = text_of(RENDER_SPEC).and_then(|t| RenderSpec::parse(t).ok()) else {
        return Ok(());
    };
    let scenarios = schema.enum_values(schema.value(), "scenario");
    let mut items = BTreeMap::new();
    for (i, r) in spec.releases.iter().enumerate() {
        if let Some(list) = &r.for_each {
            let Some(item) = schema.field(&format!("{list}[]")) else {
                return Err(format!(
                    "{RENDER_SPEC}: releases[{i}].forEach: the site schema ({schema_name}) declares no list {}; name a list it declares, or declare it",
                    quote(list)
                ));
            };
            items.insert(r.values.clone(), (r.item_name().to_string(), item));
        }
        for s in r.scenarios.iter().flatten() {
            if !scenarios.contains(s) {
                return Err(format!(
                    "{RENDER_SPEC}: releases[{i}].scenarios: {} is not a scenario the site schema ({schema_name}) allows ({}); declare scenario with its values (enum), or correct the name",
                    quote(s),
                    if scenarios.is_empty() { "it declares none".to_string() } else { scenarios.join(", ") }
                ));
            }
        }
    }
    for (name, text) in texts {
        let Some(text) = text.as_deref().filter(|_| name.ends_with(".hbs")) else {
            continue;
        };
        let item = items.get(name);
        for (line, root, path) in field_references(text) {
            let declared = match (root.as_str(), item) {
                ("site", _) => schema.field(&path).is_some(),
                (r, Some((as_name, item))) if r == as_name => {
                    schema.field_in(item, &path).is_some()
                }
                _ => true,
            };
            if !declared {
                return Err(format!(
                    "{name}:{line}: {root}.{path}: the site schema ({schema_name}) declares no such field; correct the template, or declare the field"
                ));
            }
        }
    }
    Ok(())
}

/// The `ROOT.a.b` paths written inside `{{ … }}` of a template, with their
/// line: ROOT is `site` or another name (a release's item); a path that
/// goes through a list index (`.0.`, `.[0].`) is read as `[]`, and a last
/// `length` of a list is left out. Paths relative to an `#each` or `#with`
/// block (`this.name`, `name`) are not seen.
fn field_references(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|n| from + n) {
        let close = text[open..].find("}}").map_or(text.len(), |n| open + n);
        let line = text[..open].matches('\n').count() + 1;
        // Quoted text is not a path.
        let mut inside = String::new();
        let mut quote_char = None;
        for c in text[open + 2..close].chars() {
            match quote_char {
                Some(q) if c == q => quote_char = None,
                Some(_) => {}
                None if c == '"' || c == '\'' => quote_char = Some(c),
                None => inside.push(c),
            }
        }
        for token in inside.split(|c: char| c.is_whitespace() || "()=|{}".contains(c)) {
            let mut token = token.trim_start_matches(['#', '/', '>', '^', '~', '&']);
            while let Some(t) = token.strip_prefix("../") {
                token = t;
            }
            let token = token.strip_prefix("@root.").unwrap_or(token);
            let Some((root, path)) = token.split_once('.') else {
                continue;
            };
            if root.is_empty() || !root.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let mut parts: Vec<String> = Vec::new();
            for p in path.split('.').filter(|p| !p.is_empty()) {
                let p = p.trim_start_matches('[').trim_end_matches(']');
                if p.chars().all(|c| c.is_ascii_digit()) {
                    if let Some(last) = parts.last_mut() {
                        last.push_str("[]");
                    }
                } else {
                    parts.push(p.to_string());
                }
            }
            if parts.last().is_some_and(|p| p == "length") {
                parts.pop();
            }
            if !parts.is_empty() {
                out.push((line, root.to_string(), parts.join(".")));
            }
        }
        from = (close + 2).min(text.len());
    }
    out
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
        assert_eq!(check(&map, &[], "reference-platform"), Ok(true));
        assert_eq!(
            check(&BTreeMap::new(), &[], "reference-platform"),
            Ok(false)
        );
        let mut without = map.clone();
        without.remove("profile.yaml");
        let e = check(&without, &[], "reference-platform").unwrap_err();
        assert!(e.starts_with("the templates carry no profile.yaml"), "{e}");
    }

    /// The reference templates as `check` gets their texts, with `edit`
    /// applied to the one named.
    fn reference_texts(edit: (&str, &str, &str)) -> Vec<(String, Option<String>)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
        let mut out = Vec::new();
        for e in std::fs::read_dir(&root).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().to_string();
            if name.ends_with(".hbs") || name == RENDER_SPEC {
                let mut text = std::fs::read_to_string(root.join(&name)).unwrap();
                if name == edit.0 {
                    assert!(text.contains(edit.1), "{name}: {}", edit.1);
                    text = text.replacen(edit.1, edit.2, 1);
                }
                out.push((name, Some(text)));
            }
        }
        out
    }

    #[test]
    fn render_yaml_and_templates_name_only_declared_fields() {
        let dir = tempfile::tempdir().unwrap();
        let map = folder(dir.path(), |_, _, _| {});
        let ok = reference_texts(("", "", ""));
        assert_eq!(check(&map, &ok, "reference-platform"), Ok(true));
        for (edit, want) in [
            (
                ("control-plane.values.yaml.hbs", "site.controlPlane.database.host", "site.controlPlane.database.hostname"),
                "control-plane.values.yaml.hbs:12: site.controlPlane.database.hostname: the site schema (site.schema.json) declares no such field; correct the template, or declare the field",
            ),
            (
                ("workspace-server.values.yaml.hbs", "workspace.database.port", "workspace.database.portNumber"),
                "workspace.database.portNumber: the site schema (site.schema.json) declares no such field",
            ),
            (
                ("render.yaml", "forEach: workspaces", "forEach: teams"),
                "render.yaml: releases[1].forEach: the site schema (site.schema.json) declares no list \"teams\"",
            ),
            (
                ("render.yaml", "scenarios: [air-gapped]", "scenarios: [offline]"),
                "render.yaml: releases[0].scenarios: \"offline\" is not a scenario the site schema (site.schema.json) allows (air-gapped, hybrid)",
            ),
        ] {
            let e = check(&map, &reference_texts(edit), "reference-platform").unwrap_err();
            assert!(e.contains(want), "{want}\n{e}");
        }
        // Quoted text and paths relative to a block are not fields.
        let refs = field_references("a {{quote \"site.x\"}} {{#each site.teams}}{{name}}{{../site.b.c}}{{/each}}\n{{@root.site.d.0.e}} {{site.f.length}}");
        let got: Vec<String> = refs
            .iter()
            .map(|(l, r, p)| format!("{l}:{r}.{p}"))
            .collect();
        assert_eq!(
            got,
            ["1:site.teams", "1:site.b.c", "2:site.d[].e", "2:site.f"]
        );
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
            let e = check(&map, &[], "reference-platform").unwrap_err();
            assert!(e.contains(want), "{want}\n{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }
}
