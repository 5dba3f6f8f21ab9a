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
pub mod spec;

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use airgap_format::bundle_json::BundleDescriptor;
use airgap_format::verify::{read_signed_blob, verify_head};
use airgap_format::{Digest, Limits, PublicKey};
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::relocation::RelocationMap;
use crate::site::SiteFile;
use helpers::KnownImage;
use spec::{ForEach, RenderSpec, RENDER_SPEC};

/// Largest template read from a bundle.
const MAX_TEMPLATE_BYTES: u64 = 4 << 20;
/// Largest relocation map read.
const MAX_MAP_BYTES: u64 = 16 << 20;
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
    /// Health checks run after installing.
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
    /// `air-gapped` or `hybrid`.
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
    /// The workspace, for per-workspace releases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
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

/// A health check.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// `control-plane` or `workspace/NAME`.
    pub name: String,
    /// The URL checked.
    pub url: String,
}

impl Plan {
    /// The plan for people: releases in order, files, health checks.
    pub fn to_text(&self, out: &Path) -> String {
        let mut t = format!(
            "rendered {} {} for site {} ({}) into {}\n\ninstall plan (charts from the {}):\n",
            self.bundle.name,
            self.bundle.version,
            self.site.name,
            self.site.scenario,
            out.display(),
            self.site.charts_from
        );
        for (i, r) in self.releases.iter().enumerate() {
            t.push_str(&format!(
                "  {}. {:<24} {:<28} values {}{}\n",
                i + 1,
                r.name,
                format!("{} {}", r.chart, r.chart_version),
                r.values,
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
                f.path,
                if f.contains_secrets {
                    " (secrets, owner only)"
                } else {
                    ""
                }
            ));
        }
        for h in &self.health_checks {
            t.push_str(&format!("  health {:<24} {}\n", h.name, h.url));
        }
        t.push_str(&format!(
            "\nnext: review {0}/install-plan.sh, then run it (needs helm and kubectl access)\n",
            out.display()
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
    /// The relocation map written by `push`; without it, images are taken to
    /// be at `registry.host/registry.prefix/NAME@DIGEST` (where `push` puts
    /// them) and charts are installed from the bundle.
    pub relocation: Option<&'a Path>,
    /// The active licence (armored text) the control plane is configured
    /// with; it takes the place of the site file's `license`.
    pub license: Option<&'a str>,
}

/// Renders the bundle at `bundle` (signature checked against `trusted`).
pub fn render(bundle: &Path, trusted: &[PublicKey], options: &RenderOptions) -> Result<Plan> {
    let head = verify_head(bundle, trusted, Limits::default())?;
    let d = &head.descriptor;
    let reader = &head.reader;
    let entries: HashMap<String, airgap_format::tar_entry::EntryHeader> = reader
        .entries()?
        .into_iter()
        .map(|e| (e.path.clone(), e))
        .collect();
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
        let bytes = read_signed_blob(
            reader,
            d,
            &entries,
            &t.digest,
            MAX_TEMPLATE_BYTES,
            "template",
        )?;
        String::from_utf8(bytes).map_err(|_| anyhow!("template {name}: not UTF-8 text"))
    };
    let spec = RenderSpec::parse(&read_template(RENDER_SPEC)?)
        .map_err(|e| anyhow!("template {RENDER_SPEC}: {e}"))?;

    let site = options.site;
    let s = &site.site;
    let map = options
        .relocation
        .map(|p| load_map(p, d, &head.bundle_digest, site))
        .transpose()?;
    let images = known_images(d, map.as_ref(), site)?;

    // Secrets, resolved once. Everything is rendered twice: with the real
    // values and with stand-ins. An output that differs between the two
    // depends on a secret, however a template encoded it (quoted, escaped
    // for a shell, as YAML or JSON), and is written for its owner only.
    let base = site.base_dir();
    let mut site_json = serde_json::to_value(s).context("site as JSON")?;
    let mut stand_in = site_json.clone();
    for (n, (field, r)) in s.secrets().into_iter().enumerate() {
        let value = r
            .resolve(&field, &base)
            .map_err(|e| anyhow!("{}: {e}", site.path.display()))?;
        let pointer = json_pointer(&field);
        let missing = || anyhow!("internal error: no {pointer} in the site");
        *site_json.pointer_mut(&pointer).ok_or_else(missing)? = Value::String(value);
        *stand_in.pointer_mut(&pointer).ok_or_else(missing)? =
            Value::String(format!("airgap-stand-in-secret-{n}"));
    }
    if let Some(text) = options.license {
        // Not a secret, but handled like one: files holding it are the
        // owner's only, like the site file's own `license`.
        site_json["license"] = Value::String(text.to_string());
        stand_in["license"] = Value::String("airgap-stand-in-license".into());
    }
    let ca_bundle = match site.internal_ca() {
        Some(p) => {
            let pem = std::fs::read_to_string(&p).with_context(|| {
                format!(
                    "{}: internalCa {}: cannot read",
                    site.path.display(),
                    p.display()
                )
            })?;
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

    let mut hb = helpers::registry(&images);
    // Only `.hbs` files are templates; others (a README) travel as they are.
    for t in &d.templates {
        if !t.name.ends_with(".hbs") {
            continue;
        }
        let text = read_template(&t.name)?;
        hb.register_template_string(&t.name, text)
            .map_err(|e| anyhow!("template {}: {}", t.name, one_line(&e.to_string())))?;
    }

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
            if !sc.iter().any(|x| x == s.scenario.as_str()) {
                continue;
            }
        }
        let chart = d.charts.iter().find(|c| c.name == r.chart).ok_or_else(|| {
            anyhow!(
                "template {RENDER_SPEC}: releases[{i}]: no chart {} in the bundle",
                r.chart
            )
        })?;
        let scopes: Vec<Option<usize>> = match r.for_each {
            Some(ForEach::Workspaces) => (0..s.workspaces.len()).map(Some).collect(),
            None => vec![None],
        };
        for workspace in scopes {
            let context = |site_json: &Value| {
                let mut ctx = json!({
                    "site": site_json,
                    "bundle": bundle_ctx,
                    "caBundle": ca_bundle,
                    "release": {"namespace": s.namespace, "chart": chart.name, "chartVersion": chart.version},
                });
                if let Some(w) = workspace {
                    ctx["workspace"] = site_json["workspaces"][w].clone();
                }
                ctx
            };
            let mut ctx = context(&site_json);
            let mut alt = context(&stand_in);
            let name = hb.render_template(&r.name, &ctx).map_err(|e| {
                anyhow!(
                    "template {RENDER_SPEC}: releases[{i}].name: {}",
                    one_line(&e.to_string())
                )
            })?;
            if !is_release_name(&name) {
                bail!("template {RENDER_SPEC}: releases[{i}].name: {name:?} is not a Helm release name (lowercase letters, digits and '-', at most 53)");
            }
            if !names.insert(name.clone()) {
                bail!("template {RENDER_SPEC}: release {name} is rendered twice");
            }
            ctx["release"]["name"] = Value::String(name.clone());
            alt["release"]["name"] = Value::String(name.clone());
            let values = hb.render(&r.values, &ctx).map_err(|e| {
                anyhow!(
                    "release {name}: template {}: {}",
                    r.values,
                    one_line(&e.to_string())
                )
            })?;
            let parsed: Result<Value, _> = serde_saphyr::from_str(&values);
            if let Err(e) = parsed {
                bail!(
                    "release {name}: template {} did not give valid YAML: {}",
                    r.values,
                    one_line(&e.without_snippet().to_string())
                );
            }
            let contains_secrets = hb.render(&r.values, &alt).ok().as_ref() != Some(&values);
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
                    let bytes = read_signed_blob(
                        reader,
                        d,
                        &entries,
                        &chart.digest,
                        MAX_CHART_BYTES,
                        "chart",
                    )?;
                    outputs.add(&rel, bytes, false, false);
                }
                rel
            };
            releases.push(PlannedRelease {
                name,
                chart: chart.name.clone(),
                chart_version: chart.version.clone(),
                chart_ref,
                namespace: s.namespace.clone(),
                values: rel,
                values_digest: Digest::of(values.as_bytes()).to_string(),
                contains_secrets,
                workspace: workspace.map(|w| s.workspaces[w].name.clone()),
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
        let text = hb.render(&f.template, &ctx).map_err(|e| {
            anyhow!(
                "file {}: template {}: {}",
                f.output,
                f.template,
                one_line(&e.to_string())
            )
        })?;
        let contains_secrets =
            hb.render(&f.template, &context(&stand_in)).ok().as_ref() != Some(&text);
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
    let health_checks = crate::health::targets(s)
        .into_iter()
        .map(|t| HealthCheck {
            name: t.name,
            url: t.url,
        })
        .collect();
    let plan = Plan {
        plan_version: PLAN_VERSION,
        bundle: PlanBundle {
            name: d.name.clone(),
            version: d.version.clone(),
            digest: head.bundle_digest.to_string(),
        },
        site: PlanSite {
            name: s.name.clone(),
            scenario: s.scenario.as_str().into(),
            namespace: s.namespace.clone(),
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

    /// Writes every file, then removes what an earlier render left in
    /// `values/`, `charts/` and `ca.pem` that this one did not write, so a
    /// removed workspace's values (and secrets) do not linger.
    fn write_all(&self, out: &Path) -> Result<()> {
        std::fs::create_dir_all(out)
            .with_context(|| format!("{}: cannot create", out.display()))?;
        for (rel, bytes, secret, exec) in &self.files {
            write(out, rel, bytes, *secret, *exec)?;
        }
        let written: BTreeSet<&str> = self.files.iter().map(|f| f.0.as_str()).collect();
        for dir in ["values", "charts"] {
            let Ok(list) = std::fs::read_dir(out.join(dir)) else {
                continue;
            };
            for entry in list.flatten() {
                let rel = format!("{dir}/{}", entry.file_name().to_string_lossy());
                if !written.contains(rel.as_str()) && entry.path().is_file() {
                    std::fs::remove_file(entry.path()).with_context(|| {
                        format!("removing the stale {}", entry.path().display())
                    })?;
                }
            }
        }
        if !written.contains("ca.pem") && out.join("ca.pem").is_file() {
            std::fs::remove_file(out.join("ca.pem"))?;
        }
        Ok(())
    }
}

/// Reads and checks the relocation map against the bundle and the site.
fn load_map(
    path: &Path,
    d: &BundleDescriptor,
    bundle_digest: &Digest,
    site: &SiteFile,
) -> Result<RelocationMap> {
    let f =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_MAP_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_MAP_BYTES {
        bail!("{}: larger than {MAX_MAP_BYTES} bytes", path.display());
    }
    let map: RelocationMap = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow!("{}: not a relocation map: {e}", path.display()))?;
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
    Ok(map)
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

/// `workspaces[0].database.password` → `/workspaces/0/database/password`.
fn json_pointer(field: &str) -> String {
    let mut out = String::new();
    for part in field.split('.') {
        match part.split_once('[') {
            Some((name, idx)) => {
                out.push('/');
                out.push_str(name);
                out.push('/');
                out.push_str(idx.trim_end_matches(']'));
            }
            None => {
                out.push('/');
                out.push_str(part);
            }
        }
    }
    out
}

fn is_release_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 53
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && !s.ends_with('-')
}

/// Writes `rel` under `out` atomically: 0600 when it holds secrets (0700
/// for scripts), else 0644 (0755).
fn write(out: &Path, rel: &str, bytes: &[u8], secret: bool, executable: bool) -> Result<()> {
    let path = out.join(rel);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
    }
    let mode = match (secret, executable) {
        (true, true) => 0o700,
        (true, false) => 0o600,
        (false, true) => 0o755,
        (false, false) => 0o644,
    };
    // Its errors name the file.
    Ok(airgap_format::atomic_file::write_file_atomic(
        &path, bytes, mode,
    )?)
}

/// A word for a POSIX shell, single-quoted when it needs to be.
fn sh(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@=+,".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `install-plan.sh`: the releases in order, then the health checks.
fn install_script(plan: &Plan, site: &SiteFile, ca: bool) -> Result<String> {
    let s = &site.site;
    let site_path = std::path::absolute(&site.path)
        .with_context(|| format!("{}: cannot resolve", site.path.display()))?;
    let mut out = String::new();
    out.push_str("#!/bin/sh\n");
    out.push_str(&format!(
        "# Install plan for {} {} (bundle.json {}) at site {} ({}).\n",
        plan.bundle.name,
        plan.bundle.version,
        plan.bundle.digest,
        s.name,
        s.scenario.as_str()
    ));
    out.push_str("# Written by airgap-install render. Review it, then run it from any folder.\n");
    out.push_str("# Set HELM to the helm binary and AIRGAP_INSTALL to airgap-install if they are not on PATH.\n");
    out.push_str("set -eu\ncd \"$(dirname \"$0\")\"\nHELM=\"${HELM:-helm}\"\nAIRGAP_INSTALL=\"${AIRGAP_INSTALL:-airgap-install}\"\n");
    for (n, r) in plan.releases.iter().enumerate() {
        out.push_str(&format!(
            "\n# {}. {} (chart {} {})\n",
            n + 1,
            r.name,
            r.chart,
            r.chart_version
        ));
        let mut args = vec![
            "upgrade".to_string(),
            "--install".into(),
            r.name.clone(),
            r.chart_ref.clone(),
        ];
        if r.chart_ref.starts_with("oci://") {
            args.push("--version".into());
            args.push(r.chart_version.clone());
            if s.registry.plain_http {
                args.push("--plain-http".into());
            } else if ca {
                args.push("--ca-file".into());
                args.push("ca.pem".into());
            }
        }
        args.extend([
            "--namespace".into(),
            r.namespace.clone(),
            "--create-namespace".into(),
            "--values".into(),
            r.values.clone(),
            "--wait".into(),
            "--timeout".into(),
            "10m".into(),
        ]);
        let words: Vec<String> = args.iter().map(|a| sh(a)).collect();
        out.push_str(&format!("\"$HELM\" {}\n", words.join(" ")));
    }
    out.push_str(&format!(
        "\n# Health checks: {}\n# (skipped with AIRGAP_SKIP_HEALTH=1: airgap-install install runs them itself)\nif [ \"${{AIRGAP_SKIP_HEALTH:-0}}\" != 1 ]; then\n    \"$AIRGAP_INSTALL\" health --site {}\nfi\n",
        plan.health_checks
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        sh(&site_path.display().to_string())
    ));
    Ok(out)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_and_words() {
        assert_eq!(
            json_pointer("workspaces[1].database.password"),
            "/workspaces/1/database/password"
        );
        assert_eq!(json_pointer("license"), "/license");
        assert_eq!(sh("values/a.yaml"), "values/a.yaml");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert!(is_release_name("ws-genomics"));
        assert!(!is_release_name("Ws"));
    }
}
