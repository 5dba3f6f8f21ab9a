//! `airgap-install render`: turns a verified bundle's templates and a
//! validated site file into exactly the configuration the release was
//! tested with: one Helm values file per release, the other files the bundle
//! names (monitoring, backups), `install-plan.sh` and `plan.json`.
//!
//! Rendering is deterministic: the same bundle, site file, secrets and
//! relocation map give the same bytes. Secret values come from the files and
//! environment variables the site file names. They appear only in the
//! rendered files that need them, which are written with mode 0600, and never
//! in the plan, on standard output or in errors.

pub mod helpers;
pub mod limits;
pub mod script;
pub mod spec;

use std::collections::BTreeSet;
use std::path::Path;

use airgap_format::bundle_json::BundleDescriptor;
use airgap_format::Digest;
use airgap_format::SignedBundle;
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::out_dir::OutDir;
use crate::relocation::RelocationMap;
use crate::site::{SecretRef, SiteFile};
use airgap_format::display::escape;
use helpers::KnownImage;
use limits::{Analysis, Budget, RenderLimits};
use script::Script;
use spec::{RenderSpec, RENDER_SPEC};

/// Largest template read from a bundle.
const MAX_TEMPLATE_BYTES: u64 = 4 << 20;
/// Largest chart archive extracted from a bundle.
const MAX_CHART_BYTES: u64 = 256 << 20;
/// The plan format version written.
pub const PLAN_VERSION: u32 = 1;

/// What was rendered: written as `plan.json`, without any secret value.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Always [`PLAN_VERSION`].
    pub plan_version: u32,
    /// The bundle rendered.
    pub bundle: PlanBundle,
    /// The site.
    pub site: PlanSite,
    /// Helm releases in install order.
    pub releases: Vec<PlannedRelease>,
    /// Other rendered files.
    pub files: Vec<PlannedFile>,
    /// Health checks run after installing (the profile's, filled in for
    /// the site).
    pub health_checks: Vec<HealthCheck>,
}

/// The bundle a plan was rendered from.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanBundle {
    /// Bundle name.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// Digest of its `bundle.json`.
    pub digest: String,
}

/// The site a plan was rendered for.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanSite {
    /// Site name.
    pub name: String,
    /// The site's scenario (`-` when the product has none).
    pub scenario: String,
    /// Kubernetes namespace.
    pub namespace: String,
    /// Where charts are installed from: `registry` or `bundle`.
    pub charts_from: String,
}

/// One Helm release.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedRelease {
    /// Release name.
    pub name: String,
    /// Chart name.
    pub chart: String,
    /// Chart version.
    pub chart_version: String,
    /// What `helm upgrade --install` takes: `oci://…` or `charts/NAME-VERSION.tgz`.
    pub chart_ref: String,
    /// Namespace.
    pub namespace: String,
    /// The values file, relative to the output folder.
    pub values: String,
    /// SHA-256 of the values file.
    pub values_digest: String,
    /// Whether the values file holds secret values (then it is mode 0600).
    pub contains_secrets: bool,
    /// For a release repeated over a list of the site file (`forEach`),
    /// the item's `name` (or its index when it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

/// One other rendered file.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFile {
    /// Path relative to the output folder.
    pub path: String,
    /// The template it came from.
    pub template: String,
    /// SHA-256 of the content.
    pub digest: String,
    /// Whether it holds secret values (then it is readable by the owner only).
    pub contains_secrets: bool,
    /// What the installer does with it (`backup`: runs before upgrades).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<spec::FileRole>,
}

/// A health check: the profile's, filled in for the site.
pub type HealthCheck = airgap_profile::profile::HealthTarget;

impl Plan {
    /// The plan for people: releases in order, files, health checks.
    pub fn to_text(&self, out: &Path) -> String {
        let scenario = match self.site.scenario.as_str() {
            "-" => String::new(),
            s => format!(" ({})", escape(s)),
        };
        let mut t = format!(
            "rendered {} {} for site {}{scenario} into {}\n\ninstall plan (charts from the {}):\n",
            escape(&self.bundle.name),
            escape(&self.bundle.version),
            escape(&self.site.name),
            escape(&out.display().to_string()),
            self.site.charts_from
        );
        for (i, r) in self.releases.iter().enumerate() {
            t.push_str(&format!(
                "  {}. {:<24} {:<28} values {}{}\n",
                i + 1,
                escape(&r.name),
                escape(&format!("{} {}", r.chart, r.chart_version)),
                escape(&r.values),
                if r.contains_secrets {
                    " (secrets, 0600)"
                } else {
                    ""
                }
            ));
        }
        for f in &self.files {
            t.push_str(&format!(
                "  file {}{}\n",
                escape(&f.path),
                if f.contains_secrets {
                    " (secrets, owner only)"
                } else {
                    ""
                }
            ));
        }
        for h in &self.health_checks {
            t.push_str(&format!(
                "  health {:<24} {}\n",
                escape(&h.name),
                escape(&h.url)
            ));
        }
        t.push_str(&format!(
            "\nnext: review {0}/install-plan.sh, then run it (needs helm and kubectl access)\n",
            escape(&out.display().to_string())
        ));
        t
    }
}

/// Where to render and with what.
pub struct RenderOptions<'a> {
    /// The validated site file.
    pub site: &'a SiteFile,
    /// The output folder.
    pub out: &'a Path,
    /// The relocation map written by `push`, and the file it is in (named
    /// in errors); without it, images are taken to be at
    /// `registry.host/registry.prefix/NAME@DIGEST` (where `push` puts them)
    /// and charts are installed from the bundle.
    pub relocation: Option<(&'a RelocationMap, &'a Path)>,
    /// The active licence (armored text) the control plane is configured
    /// with; it takes the place of the site file's `license`.
    pub license: Option<&'a str>,
}

/// Stack of the thread that renders: template parsing and rendering
/// recurse once per nesting level, which [`limits`] bounds.
pub const RENDER_STACK_BYTES: usize = 64 << 20;

/// Renders a bundle whose signature checked out, within
/// [`RenderLimits::default`], on a thread of its own with a stack large
/// enough for the deepest nesting the limits allow.
pub fn render_bundle(bundle: &SignedBundle, options: &RenderOptions) -> Result<Plan> {
    on_render_thread(|| render_here(bundle, options))?
}

/// Runs `f` on a thread of its own with a [`RENDER_STACK_BYTES`] stack, as
/// every compiling and rendering of templates must run, and returns what
/// it returned.
pub fn on_render_thread<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("render".into())
            .stack_size(RENDER_STACK_BYTES)
            .spawn_scoped(s, f)
            .context("cannot start the render thread")?
            .join()
            .map_err(|_| anyhow!("internal error: the render thread panicked"))
    })
}

fn render_here(head: &SignedBundle, options: &RenderOptions) -> Result<Plan> {
    let bundle = head.path();
    let d = &head.descriptor;
    if d.templates.is_empty() {
        bail!(
            "{}: bundle {} {} carries no templates to render",
            bundle.display(),
            d.name,
            d.version
        );
    }
    let read_template = |name: &str| -> Result<String> {
        let t = d
            .template(name)
            .ok_or_else(|| anyhow!("{}: no template {name} in the bundle", bundle.display()))?;
        let bytes = head.read_blob(&t.digest, MAX_TEMPLATE_BYTES, "template")?;
        String::from_utf8(bytes).map_err(|_| anyhow!("template {name}: not UTF-8 text"))
    };
    let spec = RenderSpec::parse(&read_template(RENDER_SPEC)?)
        .map_err(|e| anyhow!("template {RENDER_SPEC}: {e}"))?;

    let profile = crate::profile::read(head)?.ok_or_else(|| {
        anyhow!(
            "{}: bundle {} {} carries templates but no {}: it was built by an older airgap-bundle; ask the vendor to rebuild it",
            bundle.display(),
            d.name,
            d.version,
            airgap_profile::profile::PROFILE_FILE
        )
    })?;
    let site = options.site;
    let s = &site.site;
    let namespace = site.namespace()?;
    let map = options
        .relocation
        .map(|(map, file)| check_map(map, file, d, &head.bundle_digest, site).map(|()| map))
        .transpose()?;
    let images = known_images(d, map, site)?;

    // Secrets, resolved once. Everything is rendered twice: with the real
    // values and with stand-ins. An output that differs between the two
    // depends on a secret, however a template encoded it (quoted, escaped
    // for a shell, as YAML or JSON), and is written for its owner only.
    let secrets = site.resolve_secrets()?;
    let mut site_json = site_data(site, |n, _, _| Ok(secrets[n].clone()))?;
    let mut stand_in = site_data(site, |n, _, _| Ok(stand_in_secret(n)))?;
    if let Some(text) = options.license {
        // Not a secret, but handled like one: files holding it are the
        // owner's only, like the site file's own `license`.
        site_json["license"] = Value::String(text.to_string());
        stand_in["license"] = Value::String("airgap-stand-in-license".into());
    }
    let ca_bundle = match site.internal_ca() {
        Some(p) => {
            let pem = airgap_format::regular_file::read_regular_string(
                &p,
                airgap_registry::client::MAX_CA_FILE,
                "a CA bundle",
            )
            .map_err(|e| anyhow!("{}: internalCa: {e}", site.path.display()))?;
            // The same check the health command makes.
            airgap_registry::client::trust_roots(std::slice::from_ref(&p))
                .map_err(|e| anyhow!("{}: internalCa: {e}", site.path.display()))?;
            pem
        }
        None => String::new(),
    };
    let bundle_ctx = json!({
        "name": d.name,
        "version": d.version,
        "digest": head.bundle_digest.to_string(),
        "images": d.images.iter().map(|i| json!({"name": i.name, "tag": i.tag, "reference": i.reference, "digest": i.digest.to_string()})).collect::<Vec<_>>(),
        "charts": d.charts.iter().map(|c| json!({"name": c.name, "version": c.version})).collect::<Vec<_>>(),
    });

    // Only `.hbs` files are templates; others (a README) travel as they are.
    let mut sources = Vec::new();
    for t in &d.templates {
        if t.name.ends_with(".hbs") {
            sources.push((t.name.clone(), read_template(&t.name)?));
        }
    }
    let renderer =
        compile(&spec, sources, &images, RenderLimits::default()).map_err(|p| anyhow!("{p}"))?;
    let draw = |name: &str, ctx: &Value, counted: bool| renderer.draw(name, ctx, counted);

    let out = options.out;
    // Everything is rendered before anything is written, so a failure
    // leaves the output folder as it was.
    let mut outputs = Outputs::default();
    let charts_from_registry = map.is_some();
    let mut releases = Vec::new();
    let mut names = BTreeSet::new();
    let mut written_charts = BTreeSet::new();
    for (i, r) in spec.releases.iter().enumerate() {
        if let Some(sc) = &r.scenarios {
            let Some(scenario) = &s.scenario else {
                bail!(
                    "template {RENDER_SPEC}: releases[{i}] is for scenarios {}, but {} has no scenario: add scenario: to it",
                    sc.join(", "),
                    site.path.display()
                );
            };
            if !sc.contains(scenario) {
                continue;
            }
        }
        let chart = d.charts.iter().find(|c| c.name == r.chart).ok_or_else(|| {
            anyhow!(
                "template {RENDER_SPEC}: releases[{i}]: no chart {} in the bundle",
                r.chart
            )
        })?;
        let scopes: Vec<Option<usize>> = match &r.for_each {
            Some(list) => match airgap_profile::profile::lookup_value(&site.value, list) {
                Some(Value::Array(items)) => (0..items.len()).map(Some).collect(),
                Some(Value::Null) | None => Vec::new(),
                Some(_) => bail!(
                    "template {RENDER_SPEC}: releases[{i}].forEach: {list} is not a list in {}",
                    site.path.display()
                ),
            },
            None => vec![None],
        };
        for scope in scopes {
            let each = r
                .for_each
                .as_deref()
                .zip(scope)
                .map(|(list, n)| ForEachItem {
                    list,
                    index: n,
                    name: r.item_name(),
                });
            let context = |site_json: &Value| {
                release_context(
                    site_json,
                    &bundle_ctx,
                    &ca_bundle,
                    namespace,
                    (&chart.name, &chart.version),
                    each.as_ref(),
                )
            };
            let mut ctx = context(&site_json);
            let mut alt = context(&stand_in);
            let name = draw(&name_template(i), &ctx, false)
                .map_err(|e| anyhow!("template {RENDER_SPEC}: releases[{i}].name: {e}"))?;
            if !is_release_name(&name) {
                bail!("template {RENDER_SPEC}: releases[{i}].name: {name:?} is not a Helm release name (lowercase letters, digits and '-', at most 53)");
            }
            if !names.insert(name.clone()) {
                bail!("template {RENDER_SPEC}: release {name} is rendered twice");
            }
            ctx["release"]["name"] = Value::String(name.clone());
            alt["release"]["name"] = Value::String(name.clone());
            let values = draw(&r.values, &ctx, true)
                .map_err(|e| anyhow!("release {name}: template {}: {e}", r.values))?;
            let parsed: Result<Value, _> = serde_saphyr::from_str(&values);
            if let Err(e) = parsed {
                bail!(
                    "release {name}: template {} did not give valid YAML: {}",
                    r.values,
                    one_line(&e.without_snippet().to_string())
                );
            }
            let contains_secrets = draw(&r.values, &alt, false).ok().as_ref() != Some(&values);
            let rel = format!("values/{name}.yaml");
            outputs.add(&rel, values.clone().into_bytes(), contains_secrets, false);
            let chart_ref = if charts_from_registry {
                let m = map.as_ref().expect("checked");
                let entry = m
                    .charts
                    .iter()
                    .find(|c| {
                        c.name == format!("charts/{}", chart.name)
                            && c.tag == chart.version.replace('+', "_")
                    })
                    .ok_or_else(|| {
                        anyhow!(
                            "the relocation map has no chart {} {}; push the bundle again",
                            chart.name,
                            chart.version
                        )
                    })?;
                format!("oci://{}", entry.repository)
            } else {
                // Always written afresh: a chart left in the folder by an
                // earlier run is never trusted.
                let rel = format!("charts/{}-{}.tgz", chart.name, chart.version);
                if d.blob(&chart.digest).is_none() && d.base_blob(&chart.digest).is_some() {
                    bail!(
                        "chart {} {} is not in this delta bundle (its base delivered it): render with --relocation RELOCATION_MAP (written by push), so the chart comes from the site registry",
                        chart.name,
                        chart.version
                    );
                }
                if written_charts.insert(rel.clone()) {
                    let bytes = head.read_blob(&chart.digest, MAX_CHART_BYTES, "chart")?;
                    outputs.add(&rel, bytes, false, false);
                }
                rel
            };
            releases.push(PlannedRelease {
                name,
                chart: chart.name.clone(),
                chart_version: chart.version.clone(),
                chart_ref,
                namespace: namespace.to_string(),
                values: rel,
                values_digest: Digest::of(values.as_bytes()).to_string(),
                contains_secrets,
                item: each.as_ref().map(|e| e.label(&site.value)),
            });
        }
    }
    let mut files = Vec::new();
    for f in &spec.files {
        let context = |site_json: &Value| {
            json!({
                "site": site_json,
                "bundle": bundle_ctx,
                "caBundle": ca_bundle,
                "releases": releases,
            })
        };
        let ctx = context(&site_json);
        let text = draw(&f.template, &ctx, true)
            .map_err(|e| anyhow!("file {}: template {}: {e}", f.output, f.template))?;
        let contains_secrets =
            draw(&f.template, &context(&stand_in), false).ok().as_ref() != Some(&text);
        outputs.add(
            &f.output,
            text.clone().into_bytes(),
            contains_secrets,
            f.executable,
        );
        files.push(PlannedFile {
            path: f.output.clone(),
            template: f.template.clone(),
            digest: Digest::of(text.as_bytes()).to_string(),
            contains_secrets,
            role: f.role,
        });
    }
    // Exactly what `airgap-install health` will check.
    let health_checks = profile
        .profile
        .health_targets(&site.value)
        .map_err(|e| anyhow!("template {}: {e}", airgap_profile::profile::PROFILE_FILE))?;
    let plan = Plan {
        plan_version: PLAN_VERSION,
        bundle: PlanBundle {
            name: d.name.clone(),
            version: d.version.clone(),
            digest: head.bundle_digest.to_string(),
        },
        site: PlanSite {
            name: s.name.clone(),
            scenario: s.scenario_name().into(),
            namespace: namespace.to_string(),
            charts_from: if charts_from_registry {
                "registry"
            } else {
                "bundle"
            }
            .into(),
        },
        releases,
        files,
        health_checks,
    };
    if !ca_bundle.is_empty() {
        outputs.add("ca.pem", ca_bundle.clone().into_bytes(), false, false);
    }
    let script = install_script(&plan, site, !ca_bundle.is_empty())?;
    outputs.add("install-plan.sh", script.into_bytes(), false, true);
    let mut plan_json = serde_json::to_vec_pretty(&plan)?;
    plan_json.push(b'\n');
    outputs.add("plan.json", plan_json, false, false);
    outputs.write_all(out)?;
    Ok(plan)
}

/// Whether render reads the template `name` as text: `render.yaml` and
/// the `.hbs` templates (others travel as they are).
pub fn is_read_by_render(name: &str) -> bool {
    name == RENDER_SPEC || name.ends_with(".hbs")
}

/// The name release `i`'s name is registered under as a template.
fn name_template(i: usize) -> String {
    format!("{RENDER_SPEC}: releases[{i}].name")
}

/// A problem with one of a bundle's templates: which, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateProblem {
    /// The template's name in the bundle (`render.yaml` for a problem of
    /// the render description or of a release name).
    pub template: String,
    /// What is wrong, on one line.
    pub message: String,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let owned = format!("template {}", self.template);
        if self.message.starts_with(&owned) {
            f.write_str(&self.message)
        } else {
            write!(f, "{owned}: {}", self.message)
        }
    }
}

impl std::error::Error for TemplateProblem {}

/// Compiles a bundle's `.hbs` templates (`sources`: name and text) and the
/// release names of `spec` as render does: each checked and compiled
/// ([`Templates::register`]), then all analysed ([`Templates::analyse`]).
/// Runs on the caller's thread: call it on [`on_render_thread`].
pub fn compile(
    spec: &RenderSpec,
    sources: Vec<(String, String)>,
    images: &[KnownImage],
    limits: RenderLimits,
) -> Result<Renderer, TemplateProblem> {
    let names: Vec<String> = sources.iter().map(|(n, _)| n.clone()).collect();
    let mut templates = Templates::new(images, limits);
    for (name, text) in sources {
        templates
            .register(&name, text)
            .map_err(|message| TemplateProblem {
                template: name.clone(),
                message,
            })?;
    }
    // Release names are templates too.
    for (i, r) in spec.releases.iter().enumerate() {
        templates
            .register(&name_template(i), r.name.clone())
            .map_err(|e| TemplateProblem {
                template: RENDER_SPEC.into(),
                message: format!("releases[{i}].name: {e}"),
            })?;
    }
    templates.analyse().map_err(|message| {
        // The analysis names the template it found at fault.
        let template = names
            .iter()
            .filter(|n| message.starts_with(&format!("template {n}")))
            .max_by_key(|n| n.len())
            .cloned()
            .unwrap_or_else(|| RENDER_SPEC.into());
        TemplateProblem { template, message }
    })
}

/// Checks a bundle's templates before they ship, as `render` will read
/// them at a site: `render.yaml` is among them and reads; every release's
/// chart is among `charts` (chart names) and its values template among the
/// templates, as is every file's template; every `.hbs` template and every
/// release name compiles and passes the analysis ([`compile`]). `templates`
/// holds every template's name and, for `render.yaml` and `.hbs` ones, its
/// text (`None`: not UTF-8). The problem names the template and the fix.
pub fn check_templates(
    templates: &[(String, Option<String>)],
    charts: &[String],
) -> Result<(), TemplateProblem> {
    let problem = |template: &str, message: String| TemplateProblem {
        template: template.to_string(),
        message,
    };
    for (name, text) in templates {
        if text.is_none() && is_read_by_render(name) {
            return Err(problem(name, "not UTF-8 text; save it as UTF-8".into()));
        }
    }
    let Some((_, Some(spec_text))) = templates.iter().find(|(n, _)| n == RENDER_SPEC) else {
        return Err(problem(
            RENDER_SPEC,
            format!("not among the templates, and render reads what to render from it: add a {RENDER_SPEC} (templates.md)"),
        ));
    };
    let spec = RenderSpec::parse(spec_text).map_err(|e| problem(RENDER_SPEC, e))?;
    let has = |name: &str| templates.iter().any(|(n, _)| n == name);
    let listed = |names: &[String]| {
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    for (i, r) in spec.releases.iter().enumerate() {
        if !charts.contains(&r.chart) {
            return Err(problem(
                RENDER_SPEC,
                format!(
                    "releases[{i}].chart: no chart {} in the bundle (its charts: {}); add the chart under charts: in the manifest, or name one of those",
                    escape(&r.chart),
                    listed(charts)
                ),
            ));
        }
        if !has(&r.values) {
            return Err(problem(
                RENDER_SPEC,
                format!(
                    "releases[{i}].values: no template {} in the bundle; add it under templates: in the manifest, or correct the name",
                    escape(&r.values)
                ),
            ));
        }
    }
    for (i, f) in spec.files.iter().enumerate() {
        if !has(&f.template) {
            return Err(problem(
                RENDER_SPEC,
                format!(
                    "files[{i}].template: no template {} in the bundle; add it under templates: in the manifest, or correct the name",
                    escape(&f.template)
                ),
            ));
        }
    }
    let sources: Vec<(String, String)> = templates
        .iter()
        .filter(|(n, _)| n.ends_with(".hbs"))
        .filter_map(|(n, t)| Some((n.clone(), t.clone()?)))
        .collect();
    on_render_thread(|| {
        compile(&spec, sources, &[], RenderLimits::default())
            .map(|_| ())
            .map_err(|mut p| {
                p.message = format!("{}; fix the template (templates.md)", p.message);
                p
            })
    })
    .map_err(|e| problem(RENDER_SPEC, e.to_string()))?
}

/// The site as templates see it: the site file as the schema fills it
/// ([`SiteFile::value`]), with each secret reference (the `n`th of
/// [`SiteFile::secrets`], at `field`) replaced by `value(n, field, reference)`.
pub fn site_data(
    site: &SiteFile,
    mut value: impl FnMut(usize, &str, &SecretRef) -> Result<String>,
) -> Result<Value> {
    let mut data = site.value.clone();
    for (n, s) in site.secrets().iter().enumerate() {
        let v = value(n, &s.field, &s.reference)?;
        let pointer = &s.pointer;
        *data
            .pointer_mut(pointer)
            .ok_or_else(|| anyhow!("internal error: no {pointer} in the site"))? = Value::String(v);
    }
    Ok(data)
}

/// One item of a list a release is repeated over (`forEach`).
#[derive(Clone, Copy, Debug)]
pub struct ForEachItem<'a> {
    /// The list's field path in the site file.
    pub list: &'a str,
    /// The item's index.
    pub index: usize,
    /// The name templates see it under (`as`, default `item`).
    pub name: &'a str,
}

impl ForEachItem<'_> {
    /// The item in `site`.
    pub fn value(&self, site: &Value) -> Value {
        airgap_profile::profile::lookup_value(site, self.list)
            .and_then(|l| l.get(self.index))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// How plans name it: its `name` field, else its index.
    pub fn label(&self, site: &Value) -> String {
        match self.value(site).get("name") {
            Some(Value::String(n)) => n.clone(),
            _ => self.index.to_string(),
        }
    }
}

/// The stand-in for the `n`th secret in the probe render that finds which
/// outputs depend on a secret.
pub fn stand_in_secret(n: usize) -> String {
    format!("airgap-stand-in-secret-{n}")
}

/// The data a release's templates (its name and values) render with: the
/// site (as JSON, with secret values or stand-ins), the bundle, the CA
/// bundle, the release's namespace, chart and chart version, and for a
/// release repeated over a list, the item under its name.
pub fn release_context(
    site_json: &Value,
    bundle_ctx: &Value,
    ca_bundle: &str,
    namespace: &str,
    (chart, chart_version): (&str, &str),
    each: Option<&ForEachItem>,
) -> Value {
    let mut ctx = json!({
        "site": site_json,
        "bundle": bundle_ctx,
        "caBundle": ca_bundle,
        "release": {"namespace": namespace, "chart": chart, "chartVersion": chart_version},
    });
    if let Some(e) = each {
        ctx[e.name] = e.value(site_json);
    }
    ctx
}

/// A render's templates being registered: each checked for nesting
/// ([`limits::check_nesting`]) before it is compiled, in a registry with
/// every helper ([`helpers::registry`]).
pub struct Templates {
    hb: handlebars::Handlebars<'static>,
    limits: RenderLimits,
    helper_limits: helpers::HelperLimits,
}

impl Templates {
    /// An empty set with the helpers for `images`, within `limits`
    /// (`render` uses [`RenderLimits::default`]).
    pub fn new(images: &[KnownImage], limits: RenderLimits) -> Templates {
        // A helper's value is at most what one file may hold.
        let helper_limits = helpers::HelperLimits::new(limits.max_file_bytes, limits.max_time);
        Templates {
            hb: helpers::registry(images, &helper_limits),
            limits,
            helper_limits,
        }
    }

    /// Checks and compiles the template `name`; the error is one line.
    pub fn register(&mut self, name: &str, text: String) -> Result<(), String> {
        limits::check_nesting(&text, &self.limits)?;
        self.hb
            .register_template_string(name, text)
            .map_err(|e| one_line(&e.to_string()))
    }

    /// Analyses every template registered (partials, loops, work; see
    /// [`Analysis`]) and starts the render's [`Budget`].
    pub fn analyse(self) -> Result<Renderer, String> {
        let analysis = Analysis::new(&self.hb, &self.limits)?;
        let budget = Budget::new(self.limits.clone());
        // The helpers' clock is the budget's.
        let _ = self.helper_limits.started.set(budget.started());
        Ok(Renderer {
            budget,
            hb: self.hb,
            limits: self.limits,
            analysis,
        })
    }
}

/// A render's analysed templates and its budget of time and output.
pub struct Renderer {
    hb: handlebars::Handlebars<'static>,
    limits: RenderLimits,
    analysis: Analysis,
    budget: Budget,
}

impl Renderer {
    /// Renders the registered template `name` with `ctx` within the
    /// bounds; `counted` when the output is kept (a stand-in render is only
    /// compared). The error is one line.
    pub fn draw(&self, name: &str, ctx: &Value, counted: bool) -> Result<String, String> {
        self.analysis.check(name, ctx, &self.limits)?;
        let mut w = self.budget.writer(counted);
        let rendered = self.hb.render_to_write(name, ctx, &mut w);
        if let Some(why) = self.budget.stopped() {
            return Err(why);
        }
        rendered.map_err(|e| one_line(&e.to_string()))?;
        String::from_utf8(w.into_inner()).map_err(|_| "output is not UTF-8".to_string())
    }
}

/// The files a render produces, held until every one rendered.
#[derive(Default)]
struct Outputs {
    files: Vec<(String, Vec<u8>, bool, bool)>,
}

impl Outputs {
    fn add(&mut self, rel: &str, bytes: Vec<u8>, secret: bool, executable: bool) {
        self.files
            .push((rel.to_string(), bytes, secret, executable));
    }

    /// Writes every file through one [`OutDir`] (no name can leave the
    /// folder or go through a symbolic link), then removes what an earlier
    /// render left in `values/`, `charts/` and `ca.pem` that this one did
    /// not write, so a removed item's values (and secrets) do not
    /// linger.
    fn write_all(&self, out: &Path) -> Result<()> {
        let dir = OutDir::create(out)?;
        for (rel, bytes, secret, executable) in &self.files {
            let mode = match (secret, executable) {
                (true, true) => 0o700,
                (true, false) => 0o600,
                (false, true) => 0o755,
                (false, false) => 0o644,
            };
            dir.write(rel, bytes, mode)?;
        }
        let written: BTreeSet<&str> = self.files.iter().map(|f| f.0.as_str()).collect();
        for folder in ["values", "charts"] {
            for name in dir.list_files(folder)? {
                let rel = format!("{folder}/{name}");
                // A name render could not have written is not its to remove.
                if !written.contains(rel.as_str()) && airgap_format::display::is_display_safe(&name)
                {
                    dir.remove_file(&rel).context("removing a stale file")?;
                }
            }
        }
        if !written.contains("ca.pem") {
            dir.remove_file("ca.pem")?;
        }
        Ok(())
    }
}

/// Checks the relocation map (from file `path`) against the bundle and
/// the site.
fn check_map(
    map: &RelocationMap,
    path: &Path,
    d: &BundleDescriptor,
    bundle_digest: &Digest,
    site: &SiteFile,
) -> Result<()> {
    if map.bundle_digest != bundle_digest.to_string() {
        bail!(
            "{}: the relocation map is for bundle {} {} ({}), not {} {} ({bundle_digest})",
            path.display(),
            map.bundle,
            map.version,
            map.bundle_digest,
            d.name,
            d.version
        );
    }
    let r = &site.site.registry;
    if map.registry != r.host || map.prefix.trim_matches('/') != r.prefix {
        bail!(
            "{}: images were pushed to {}/{}, but {} says registry {}/{}",
            path.display(),
            map.registry,
            map.prefix,
            site.path.display(),
            r.host,
            r.prefix
        );
    }
    Ok(())
}

/// Every bundle image with the internal reference it is pinned at.
fn known_images(
    d: &BundleDescriptor,
    map: Option<&RelocationMap>,
    site: &SiteFile,
) -> Result<Vec<KnownImage>> {
    let r = &site.site.registry;
    d.images
        .iter()
        .map(|i| {
            let pinned = match map {
                // With a map, every image must be in it: push wrote it.
                Some(m) => m
                    .images
                    .iter()
                    .find(|x| x.source == i.reference)
                    .map(|x| x.pinned.clone())
                    .ok_or_else(|| {
                        anyhow!(
                            "the relocation map has no image {}; push the bundle again",
                            i.reference
                        )
                    })?,
                // Without one, where push puts images: HOST/PREFIX/NAME.
                None => {
                    let repo = if r.prefix.is_empty() {
                        i.name.clone()
                    } else {
                        format!("{}/{}", r.prefix, i.name)
                    };
                    format!("{}/{repo}@{}", r.host, i.digest)
                }
            };
            Ok(KnownImage {
                name: i.name.clone(),
                tag: i.tag.clone(),
                pinned,
            })
        })
        .collect()
}

fn is_release_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 53
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && !s.ends_with('-')
}

/// `install-plan.sh`: the releases in order, then the health checks. Every
/// string from the bundle, the site file or the relocation map goes in
/// through [`script::Script`] only.
fn install_script(plan: &Plan, site: &SiteFile, ca: bool) -> Result<String> {
    let s = &site.site;
    let mut out = Script::new();
    out.comment(&format!(
        "Install plan for {} {} (bundle.json {}) at site {} ({}).",
        plan.bundle.name,
        plan.bundle.version,
        plan.bundle.digest,
        s.name,
        s.scenario_name()
    ));
    out.code("# Written by airgap-install render. Review it, then run it from any folder.\n");
    out.code("# Set HELM to the helm binary and AIRGAP_INSTALL to airgap-install if they are not on PATH.\n");
    out.code("set -eu\ncd \"$(dirname \"$0\")\"\nHELM=\"${HELM:-helm}\"\nAIRGAP_INSTALL=\"${AIRGAP_INSTALL:-airgap-install}\"\n");
    for (n, r) in plan.releases.iter().enumerate() {
        out.code("\n");
        out.comment(&format!(
            "{}. {} (chart {} {})",
            n + 1,
            r.name,
            r.chart,
            r.chart_version
        ));
        let mut args = vec![
            "upgrade",
            "--install",
            r.name.as_str(),
            r.chart_ref.as_str(),
        ];
        if r.chart_ref.starts_with("oci://") {
            args.extend(["--version", r.chart_version.as_str()]);
            if s.registry.plain_http {
                args.push("--plain-http");
            } else if ca {
                args.extend(["--ca-file", "ca.pem"]);
            }
        }
        args.extend([
            "--namespace",
            r.namespace.as_str(),
            "--create-namespace",
            "--values",
            r.values.as_str(),
            "--wait",
            "--timeout",
            "10m",
        ]);
        out.command("", "\"$HELM\"", &args)
            .with_context(|| format!("release {}", escape(&r.name)))?;
    }
    out.code("\n");
    out.comment(&format!(
        "Health checks: {}",
        plan.health_checks
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.code("# (skipped with AIRGAP_SKIP_HEALTH=1: airgap-install install runs them itself)\nif [ \"${AIRGAP_SKIP_HEALTH:-0}\" != 1 ]; then\n");
    out.command("    ", "\"$AIRGAP_INSTALL\"", &["health", "--plan", "."])?;
    out.code("fi\n");
    Ok(out.finish())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked_analysed_and_drawn_within_limits() {
        let limits = RenderLimits {
            max_file_bytes: 100,
            ..RenderLimits::default()
        };
        let mut t = Templates::new(&[], limits);
        let deep = "{{#if a}}".repeat(100) + &"{{/if}}".repeat(100);
        let e = t.register("deep", deep).unwrap_err();
        assert!(e.contains("blocks nest more than 64 deep"), "{e}");
        t.register(
            "main",
            "{{> p1}}{{#each site.teams}}{{name}}{{/each}}".into(),
        )
        .unwrap();
        t.register("p1", "{{site.name}}:".into()).unwrap();
        t.register("big", "{{concat (toJson site) (toJson site)}}".into())
            .unwrap();
        let r = t.analyse().unwrap();
        let site =
            json!({"name": "s", "pad": "x".repeat(40), "teams": [{"name": "a"}, {"name": "b"}]});
        let each = ForEachItem {
            list: "teams",
            index: 1,
            name: "team",
        };
        let ctx = release_context(&site, &json!({}), "", "ns", ("c", "1"), Some(&each));
        assert_eq!(ctx["team"]["name"], "b");
        assert_eq!(each.label(&site), "b");
        assert_eq!(ctx["release"]["chartVersion"], "1");
        assert_eq!(r.draw("main", &ctx, true).unwrap(), "s:ab");
        let e = r.draw("big", &ctx, true).unwrap_err();
        assert!(e.contains("larger than 100 bytes"), "{e}");
    }

    #[test]
    fn a_bundles_templates_are_checked_before_they_ship() {
        let demo = |name: &str| {
            let text = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../manifests/demo/templates")
                    .join(name),
            )
            .unwrap();
            (name.to_string(), Some(text))
        };
        let all = vec![
            demo("render.yaml"),
            demo("hello.values.yaml.hbs"),
            demo("monitoring.yaml.hbs"),
            ("README.md".to_string(), None),
        ];
        let charts = vec!["hello".to_string()];
        check_templates(&all, &charts).unwrap();

        // A release whose chart the bundle lacks.
        let e = check_templates(&all, &["other".to_string()]).unwrap_err();
        assert_eq!(e.template, "render.yaml");
        assert_eq!(
            e.to_string(),
            "template render.yaml: releases[0].chart: no chart hello in the bundle (its charts: other); add the chart under charts: in the manifest, or name one of those"
        );
        // A template that does not compile: named, with the fix.
        let mut broken = all.clone();
        broken[1].1 = Some("replicas: {{#if site.name}}2\n".into());
        let e = check_templates(&broken, &charts).unwrap_err();
        assert_eq!(e.template, "hello.values.yaml.hbs");
        assert!(
            e.to_string()
                .starts_with("template hello.values.yaml.hbs: ")
                && e.to_string().ends_with("; fix the template (templates.md)"),
            "{e}"
        );
        // A partial that is nowhere, found by the analysis.
        broken[1].1 = Some("{{> nothere}}".into());
        let e = check_templates(&broken, &charts).unwrap_err();
        assert_eq!(e.template, "hello.values.yaml.hbs", "{e}");
        // A values or file template missing, render.yaml missing or bad.
        let e = check_templates(&all[..2], &charts).unwrap_err();
        assert!(
            e.message
                .starts_with("files[0].template: no template monitoring.yaml.hbs in the bundle"),
            "{e}"
        );
        let e = check_templates(&all[1..], &charts).unwrap_err();
        assert!(e.message.starts_with("not among the templates"), "{e}");
        let mut bad_spec = all.clone();
        bad_spec[0].1 = Some("renderVersion: 2\nreleases: []\n".into());
        let e = check_templates(&bad_spec, &charts).unwrap_err();
        assert_eq!(
            e.to_string(),
            "template render.yaml: renderVersion: expected 1 (found 2)"
        );
        bad_spec[0].1 = None;
        let e = check_templates(&bad_spec, &charts).unwrap_err();
        assert_eq!(e.message, "not UTF-8 text; save it as UTF-8");
    }

    #[test]
    fn site_data_replaces_every_secret() {
        let (_dir, site) = crate::site::tests::small_site(
            "name: lab\nnamespace: lab\nregistry: {host: r.example}\ntoken: {env: T}\nteams:\n  - name: a\n    key: {file: a.key}\n",
        );
        let data = site_data(&site, |n, _, _| Ok(stand_in_secret(n))).unwrap();
        assert_eq!(data["teams"][0]["key"], "airgap-stand-in-secret-0");
        assert_eq!(data["token"], "airgap-stand-in-secret-1");
        assert_eq!(data["teams"][0]["port"], 8080, "the schema's default");
    }

    #[test]
    fn pointers_and_words() {
        assert!(is_release_name("app-a"));
        assert!(!is_release_name("Ws"));
    }
}
