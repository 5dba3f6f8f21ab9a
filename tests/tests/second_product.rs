//! A second product, unrelated to the reference platform, built, rendered
//! and installed with the same binaries: `tests/fixtures/small-product/`
//! (`small-notes`: the demo's web image, a chart of its own, and a product
//! profile with its own site schema: no scenario, no workspaces, one
//! health check). Nothing in the installer knows this product; what it
//! does with it comes from the bundle's profile, schema and `render.yaml`.
//!
//! One run, in order: the build; `site init` and `site check` (the
//! starting file's only problems are its CHANGE-ME placeholders, a filled-in
//! file passes); `render` (one values file with the schema's default and
//! the secret, for its owner only; one health check in `plan.json`);
//! `install --apply` with a Helm that renders the chart for real (no
//! cluster here) against Debian's docker-registry and the HTTPS test
//! server, on loopback; and a reference-platform field refused as unknown.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use airgap_e2e::demo_site::{pairs, steps, FULL_RUN};
use airgap_e2e::harness::*;
use airgap_e2e::https_server::HttpsServer;
use airgap_e2e::registry::Registry;
use serde_json::{json, Value};

/// The product's manifest, relative to the repository root.
const MANIFEST: &str = "tests/fixtures/small-product/small.yaml";
/// The administrator's password the site gives (a secret file).
const ADMIN_PASSWORD: &str = "notes-admin-s3cret";
/// Where the test site puts the image (registry.prefix).
const PREFIX: &str = "notes";

/// `airgap-install --state-dir STATE`, away from this machine's
/// configuration, with a host root holding a fixed machine id.
fn installer(state: &Path) -> Command {
    let host = state.with_extension("host");
    std::fs::create_dir_all(host.join("etc")).unwrap();
    std::fs::write(
        host.join("etc/machine-id"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    let mut c = Command::new(bin("airgap-install"));
    c.arg("--state-dir")
        .arg(state)
        .env("AIRGAP_INSTALL_HOST_ROOT", &host)
        .env_remove("RUST_LOG");
    without_ambient_config(&mut c);
    without_proxies(&mut c);
    c
}

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", airgap_e2e::fixtures::sha256_hex(bytes))
}

/// The filled-in site file: the loopback registry (plain HTTP), the HTTPS
/// test server as the service's URL, its CA as the internal CA, the
/// password in a file. No namespace and no replicas: the schema's
/// defaults apply.
fn site_text(registry: &str, notes_url: &str) -> String {
    format!(
        "# A small-notes test site.\nname: notes-test\ninternalCa: internal-ca.pem\nregistry:\n  host: {registry}\n  prefix: {PREFIX}\n  plainHttp: true\nnotes:\n  url: {notes_url}\n  adminPassword:\n    file: secrets/admin.password\n"
    )
}

#[test]
fn a_second_product_builds_renders_and_installs_with_the_same_binaries() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start_plain();
    let server = HttpsServer::start();
    server.route("/healthz", 200, r#"{"status":"ok"}"#);
    let notes_url = server.url();

    // 1. The build, signed with a key of its own.
    let (key, public) = keygen(tmp.path(), "notes-vendor");
    let bundle = tmp.path().join("small-notes-1.0.0.bundle");
    ok(&mut build_cmd(&repo_root().join(MANIFEST), &key, &bundle));
    let reader =
        airgap_format::ArchiveReader::open(&bundle, airgap_format::Limits::default()).unwrap();
    let (_, d) = reader.read_descriptor_unverified().unwrap();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("small-notes", "1.0.0")
    );
    let images: Vec<&str> = d.images.iter().map(|i| i.reference.as_str()).collect();
    assert_eq!(images, ["demo/web:1.0.0"]);
    let charts: Vec<(&str, &str)> = d
        .charts
        .iter()
        .map(|c| (c.name.as_str(), c.version.as_str()))
        .collect();
    assert_eq!(charts, [("notes", "0.1.0")]);
    let templates: Vec<&str> = d.templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        templates,
        [
            "notes.values.yaml.hbs",
            "profile.yaml",
            "render.yaml",
            "site.schema.json"
        ]
    );
    let web_digest = d.images[0].digest.to_string();

    // 2. site init: a starting file whose only problems are its
    // placeholders; the filled-in file passes.
    let dir = tmp.path().join("site");
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    let state = tmp.path().join("state");
    let init = dir.join("init.yaml");
    let out = ok(installer(&state)
        .args(["site", "init"])
        .arg(&bundle)
        .arg("--out")
        .arg(&init)
        .arg("--trust")
        .arg(&public)
        .arg("--json"));
    let r = json_of(&out);
    // name, registry.host and notes.url: what the schema gives no default.
    assert_eq!(r["placeholders"], 3, "{r:#}");
    assert_eq!(r["bundle"], "small-notes 1.0.0", "{r:#}");
    assert_eq!(r["schema"], "site.schema.json", "{r:#}");
    let init_text = std::fs::read_to_string(&init).unwrap();
    for reference_field in ["workspaces", "scenario", "controlPlane", "siteVersion"] {
        assert!(
            !init_text.contains(reference_field),
            "{reference_field} in:\n{init_text}"
        );
    }
    let check = |site: &Path| {
        let mut c = installer(&state);
        c.args(["site", "check"])
            .arg(&bundle)
            .arg("--site")
            .arg(site)
            .arg("--trust")
            .arg(&public);
        c
    };
    let out = run(check(&init).arg("--json"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let r = json_of(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(r["ok"], false, "{r:#}");
    let problems = r["problems"].as_array().unwrap();
    for p in problems {
        // Each at its own placeholder: `url: CHANGE-ME` for notes.url.
        let line = p["line"].as_u64().unwrap() as usize;
        let text = init_text.lines().nth(line - 1).unwrap();
        let key = p["field"].as_str().unwrap().rsplit('.').next().unwrap();
        assert_eq!(text.trim(), format!("{key}: CHANGE-ME"), "{p}\n{init_text}");
        assert_eq!(
            p["message"], "still CHANGE-ME, as site init wrote it: write this site's value",
            "{p}"
        );
    }
    let fields: Vec<&str> = problems
        .iter()
        .map(|p| p["field"].as_str().unwrap())
        .collect();
    // Every placeholder, also where the schema would take CHANGE-ME (it is
    // a valid host name for registry.host).
    assert_eq!(fields, ["name", "registry.host", "notes.url"], "{r:#}");

    let site = dir.join("site.yaml");
    std::fs::write(&site, site_text(&reg.addr(), &notes_url)).unwrap();
    std::fs::write(
        dir.join("secrets/admin.password"),
        format!("{ADMIN_PASSWORD}\n"),
    )
    .unwrap();
    server.write_ca(&dir.join("internal-ca.pem"));
    let out = ok(&mut check(&site));
    assert_eq!(
        out,
        format!(
            "{}: valid against the site schema of small-notes 1.0.0 (site.schema.json)\ninfrastructure the product needs, as the file describes it:\n  registry  registry  {}/{PREFIX}\n",
            site.display(),
            reg.addr()
        )
    );

    // 3. render: one values file, with the schema's default and the
    // secret, for its owner only; one health check, nothing per item.
    let rendered = tmp.path().join("rendered");
    ok(installer(&state)
        .arg("render")
        .arg(&bundle)
        .arg("--site")
        .arg(&site)
        .arg("--out")
        .arg(&rendered)
        .arg("--trust")
        .arg(&public)
        .arg("--json"));
    let mut values: Vec<String> = std::fs::read_dir(rendered.join("values"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    values.sort();
    assert_eq!(values, ["notes.yaml"]);
    let values_path = rendered.join("values/notes.yaml");
    let text = std::fs::read_to_string(&values_path).unwrap();
    assert_eq!(
        text,
        format!(
            "# Helm values for small-notes at site notes-test.\n# Rendered by airgap-install from the bundle's templates; do not edit by hand.\nimage: \"{}/{PREFIX}/demo/web@{web_digest}\"\nreplicas: 2\nadminPassword: \"{ADMIN_PASSWORD}\"\n",
            reg.addr()
        )
    );
    let mode = std::fs::metadata(&values_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let plan = json_of(&std::fs::read_to_string(rendered.join("plan.json")).unwrap());
    assert!(
        !plan.to_string().contains(ADMIN_PASSWORD),
        "plan.json holds the secret"
    );
    assert_eq!(
        plan["site"],
        json!({"name": "notes-test", "scenario": "-", "namespace": "notes", "chartsFrom": "bundle"}),
        "{plan:#}"
    );
    assert_eq!(
        plan["releases"],
        json!([{
            "name": "notes",
            "chart": "notes",
            "chartVersion": "0.1.0",
            "chartRef": "charts/notes-0.1.0.tgz",
            "namespace": "notes",
            "values": "values/notes.yaml",
            "valuesDigest": sha256(text.as_bytes()),
            "containsSecrets": true
        }]),
        "{plan:#}"
    );
    assert_eq!(plan["files"], json!([]), "{plan:#}");
    assert_eq!(
        plan["healthChecks"],
        json!([{"name": "notes", "url": format!("{notes_url}/healthz"), "expect": 200}]),
        "{plan:#}"
    );
    let plan_text = plan.to_string();
    for word in ["\"item\"", "\"workspace\"", "workspaces"] {
        assert!(!plan_text.contains(word), "{word} in {plan:#}");
    }
    assert!(server.requests().is_empty(), "render runs no health check");

    // 4. install --apply: push, render, apply (Helm renders the chart from
    // the site registry with the values), the one health check against the
    // HTTPS test server trusted through internalCa, all recorded.
    let log = tmp.path().join("helm.log");
    let path = helm_without_cluster(tmp.path(), &log);
    let r = json_of(&ok(installer(&state)
        .arg("install")
        .arg(&bundle)
        .arg("--site")
        .arg(&site)
        .arg("--trust")
        .arg(&public)
        .args(["--apply", "--json"])
        .env("PATH", &path)));
    let step = |name: &str| {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no step {name} in {r:#}"))
            .clone()
    };
    assert_eq!(step("apply")["outcome"], "ok", "{r:#}");
    assert_eq!(step("health")["outcome"], "ok", "{r:#}");
    assert_eq!(server.requests(), ["/healthz"]);
    // One release, its chart from the site registry, in the schema's
    // default namespace.
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!(
            "upgrade --install notes oci://{}/{PREFIX}/charts/notes --version 0.1.0 --plain-http --namespace notes --create-namespace --values values/notes.yaml --wait --timeout 10m\n",
            reg.addr()
        )
    );
    // What Helm made of the chart and the values the install rendered.
    let manifests = std::fs::read_to_string(format!("{}.rendered", log.display())).unwrap();
    assert!(
        manifests.contains(&format!(
            "image: \"{}/{PREFIX}/demo/web@{web_digest}\"",
            reg.addr()
        )) && manifests.contains("replicas: 2")
            && manifests.contains(&format!("password: \"{ADMIN_PASSWORD}\"")),
        "{manifests}"
    );
    // The image is in the site registry, by the digest the bundle signed.
    let index = ureq::get(&format!(
        "{}/v2/{PREFIX}/demo/web/manifests/{web_digest}",
        reg.url()
    ))
    .header("Accept", "application/vnd.oci.image.index.v1+json")
    .call()
    .unwrap_or_else(|e| panic!("the image is not in the registry: {e}\n{}", reg.log_tail()));
    assert_eq!(
        index
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok()),
        Some(web_digest.as_str())
    );
    let audit: Vec<Value> = ok(installer(&state).args(["history", "--json"]))
        .lines()
        .map(json_of)
        .collect();
    let mut want = FULL_RUN.to_vec();
    want[6] = ("apply", "ok");
    want[7] = ("health", "ok");
    assert_eq!(steps(&audit), pairs(&want), "{audit:#?}");
    for rec in &audit {
        assert_eq!(rec["bundle"], "small-notes@1.0.0", "{rec}");
    }
    let health = audit.iter().find(|r| r["step"] == "health").unwrap();
    let detail = health["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("1 ") && detail.contains("passed"),
        "{health}"
    );
    // `health` runs the same one check: from the installed configuration
    // (--site), and from the rendered folder (--plan, trusting its ca.pem).
    for args in [
        vec!["health".into(), "--site".into(), site.display().to_string()],
        vec![
            "health".into(),
            "--plan".into(),
            rendered.display().to_string(),
        ],
    ] {
        let r = json_of(&ok(installer(&state).args(&args).arg("--json")));
        assert_eq!(r["healthy"], true, "{args:?}: {r:#}");
        let checks = r["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 1, "{args:?}: {r:#}");
        assert_eq!(checks[0]["name"], "notes", "{r:#}");
        assert_eq!(checks[0]["url"], format!("{notes_url}/healthz"), "{r:#}");
        assert_eq!(checks[0]["status"], 200, "{r:#}");
    }
    assert_eq!(server.requests(), ["/healthz", "/healthz", "/healthz"]);
    let status = json_of(&ok(installer(&state).args(["status", "--json"])));
    let installed = status["installed"].as_array().unwrap();
    assert_eq!(installed.len(), 1, "{status:#}");
    assert_eq!(installed[0]["name"], "small-notes", "{status:#}");
    assert_eq!(installed[0]["version"], "1.0.0", "{status:#}");
    assert_eq!(installed[0]["applied"], true, "{status:#}");

    // 5. A reference-platform field is not this product's: refused as
    // unknown, at its line, by site check and by render.
    let foreign = dir.join("foreign.yaml");
    let foreign_text = format!("{}workspaces: []\n", site_text(&reg.addr(), &notes_url));
    let line = foreign_text.lines().count();
    std::fs::write(&foreign, &foreign_text).unwrap();
    let err = fails(&mut check(&foreign));
    assert_eq!(
        err,
        format!(
            "error: {f}: 1 problem against the site schema of small-notes 1.0.0: (1) {f}:{line}:1: workspaces: unknown field; expected one of internalCa, name, namespace, notes, registry",
            f = foreign.display()
        )
    );
    let err = fails(
        installer(&state)
            .arg("render")
            .arg(&bundle)
            .arg("--site")
            .arg(&foreign)
            .arg("--out")
            .arg(tmp.path().join("foreign-rendered"))
            .arg("--trust")
            .arg(&public),
    );
    assert!(
        err.contains(&format!(
            "{}:{line}:1: workspaces: unknown field",
            foreign.display()
        )),
        "{err}"
    );
    assert!(!tmp.path().join("foreign-rendered").exists());

    // 6. The next version's schema asks something of the site file: plan
    // says what before anything is pushed, a renamed field keeps working
    // with a warning, and install takes the file once it is changed.
    let v2 = next_version(tmp.path());
    let v2_bundle = tmp.path().join("small-notes-1.1.0.bundle");
    ok(&mut build_cmd(&v2, &key, &v2_bundle));
    let plan_cmd = |site: &Path| {
        let mut c = installer(&state);
        c.arg("plan")
            .arg(&v2_bundle)
            .arg("--site")
            .arg(site)
            .arg("--trust")
            .arg(&public);
        c
    };
    let site_lines = std::fs::read_to_string(&site).unwrap();
    let line_of = |needle: &str| site_lines.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let (password_line, notes_line) = (line_of("adminPassword:"), line_of("notes:"));
    let text = ok(&mut plan_cmd(&site));
    let expected = format!(
        "Site file {f} (against the installed 1.0.0's; schema changed):\n  renamed      {password_line}:3: notes.adminPassword: renamed to notes.adminSecret: keeps working; rename it\n  must change  {notes_line}:1: notes.tier: required\n  default      notes.replicas: 2 -> 3 (not set in the file)\nConfiguration: not rendered until the site file is changed\n",
        f = site.display()
    );
    assert!(text.contains(&expected), "{expected}\nnot in:\n{text}");
    let r = json_of(&ok(plan_cmd(&site).arg("--json")));
    assert_eq!(r["site"]["comparedWith"], "1.0.0", "{r:#}");
    assert_eq!(r["site"]["problems"][0]["field"], "notes.tier", "{r:#}");
    assert_eq!(
        r["site"]["defaults"],
        json!([{"field": "notes.replicas", "from": 2, "to": 3}]),
        "{r:#}"
    );
    assert!(!r.to_string().contains(ADMIN_PASSWORD), "{r:#}");
    // Install refuses the file as it is, naming what to add.
    let err = fails(
        installer(&state)
            .arg("install")
            .arg(&v2_bundle)
            .arg("--site")
            .arg(&site)
            .arg("--trust")
            .arg(&public),
    );
    assert!(err.contains("notes.tier: required"), "{err}");
    // With tier set, the plan renders the configuration; the old name
    // still works, with a warning.
    std::fs::write(
        &site,
        site_lines.replace("notes:\n", "notes:\n  tier: small\n"),
    )
    .unwrap();
    let text = ok(&mut plan_cmd(&site));
    assert!(
        text.contains("  renamed      ")
            && !text.contains("must change")
            && text.contains("changed  values/notes.yaml"),
        "{text}"
    );
    let out = installer(&state)
        .arg("install")
        .arg(&v2_bundle)
        .arg("--site")
        .arg(&site)
        .arg("--trust")
        .arg(&public)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: notes.adminPassword is now notes.adminSecret in small-notes 1.1.0: the file keeps working; rename it",
            site.display()
        )),
        "{stderr}"
    );
    let values =
        std::fs::read_to_string(state.join("installs/small-notes/1.1.0/config/values/notes.yaml"))
            .unwrap();
    assert!(
        values.contains("replicas: 3")
            && values.contains(&format!("adminSecret: \"{ADMIN_PASSWORD}\"")),
        "{values}"
    );
}

/// Version 1.1.0 of the fixture in `dir`: `notes.adminPassword` renamed to
/// `notes.adminSecret` (declared in the profile's renames), a new required
/// `notes.tier`, and `notes.replicas` defaulting to 3. Returns its manifest.
fn next_version(dir: &Path) -> PathBuf {
    let fixture = repo_root().join("tests/fixtures/small-product");
    let top = dir.join("v2");
    airgap_e2e::demo_site::copy_dir(&fixture, &top);
    let edit = |rel: &str, edits: &[(&str, &str)]| {
        let path = top.join(rel);
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "{rel}: {from}");
            text = text.replace(from, to);
        }
        std::fs::write(&path, text).unwrap();
    };
    edit(
        "small.yaml",
        &[
            ("version: 1.0.0", "version: 1.1.0"),
            (
                "oci-layout:../../../manifests",
                &format!("oci-layout:{}/manifests", repo_root().display()),
            ),
        ],
    );
    edit(
        "templates/site.schema.json",
        &[
            (
                "\"adminPassword\"\n",
                "\"adminSecret\",\n        \"tier\"\n",
            ),
            (
                "\"adminPassword\": {",
                "\"tier\": {\"enum\": [\"small\", \"large\"]},\n        \"adminSecret\": {",
            ),
            ("\"default\": 2,", "\"default\": 3,"),
        ],
    );
    edit(
        "templates/profile.yaml",
        &[(
            "healthChecks:",
            "renames:\n  - from: notes.adminPassword\n    to: notes.adminSecret\n\nhealthChecks:",
        )],
    );
    edit(
        "templates/notes.values.yaml.hbs",
        &[(
            "adminPassword: {{quote site.notes.adminPassword}}",
            "adminSecret: {{quote site.notes.adminSecret}}",
        )],
    );
    edit(
        "site.example.yaml",
        &[("adminPassword:", "tier: small\n  adminSecret:")],
    );
    top.join("small.yaml")
}

/// The fixture's own files are what the test above relies on: its image
/// source resolves against the manifest's folder to the demo's layout.
#[test]
fn the_fixture_points_at_the_demo_image_layout() {
    let fixture: PathBuf = repo_root().join("tests/fixtures/small-product");
    let manifest = std::fs::read_to_string(fixture.join("small.yaml")).unwrap();
    let source = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("- source: oci-layout:"))
        .unwrap();
    let (path, reference) = source.split_once(':').unwrap();
    assert_eq!(reference, "demo/web:1.0.0");
    assert_eq!(
        fixture.join(path).canonicalize().unwrap(),
        repo_root()
            .join("manifests/demo/images/web-oci")
            .canonicalize()
            .unwrap()
    );
}
