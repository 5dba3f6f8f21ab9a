//! `airgap-install install`, `plan`, `status` and `history` against a real
//! registry (Debian's docker-registry on loopback), checked with skopeo:
//!
//! - install 1.0.0 → plan and upgrade to 1.1.0 (one image changed in its top
//!   layer, one chart changed, a licence carried) → a refused downgrade →
//!   a downgrade with `--allow-downgrade`, with the audit log checked after
//!   each run;
//! - SIGKILL of the installer at several points during the push, then a
//!   rerun that finishes without sending again what had arrived;
//! - backups rendered for the site run before an upgrade is applied: a
//!   failing one stops the upgrade with its output in the audit log, a
//!   working one runs before helm;
//! - the state folder's lock keeps a second run out;
//! - delta bundles: refused with the list of missing blobs when neither the
//!   registry nor `--base` has them, installed from `--base` on an empty
//!   registry, and as an upgrade over the base installed earlier.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airgap_e2e::demo_site::{copy_dir, demo_site, pairs, steps, DemoSite, FULL_RUN};
use airgap_e2e::fault_proxy::{Fault, FaultProxy};
use airgap_e2e::fixtures::{
    layer_tar, noise, write_oci_layout, ImageSpec, LayerBlob, PlatformImage,
};
use airgap_e2e::harness::*;
use airgap_e2e::registry::Registry;
use serde_json::Value;

fn layer(name: &str, len: usize, seed: u64) -> LayerBlob {
    LayerBlob::gzipped(layer_tar(&[(name, &noise(len, seed), 0o644)]))
}

/// What differs between the product versions a test builds.
struct Release<'a> {
    version: &'a str,
    /// Seed of the api image's top layer (a new seed: a changed image).
    api_top: u64,
    chart_version: &'a str,
    /// The backup script's body (`None`: the render makes no backup).
    backup: Option<&'a str>,
    /// The restore script's body (`None`: the render makes none).
    restore: Option<&'a str>,
    license: Option<&'a Path>,
    /// Base layers of both images (size each).
    base_layers: usize,
    base_size: usize,
    /// Also ship `app/legacy`, built on the same base layers as the others.
    legacy: bool,
}

impl Default for Release<'_> {
    fn default() -> Self {
        Release {
            version: "1.0.0",
            api_top: 1,
            chart_version: "0.1.0",
            backup: None,
            restore: None,
            license: None,
            base_layers: 2,
            base_size: 1 << 20,
            legacy: false,
        }
    }
}

/// Writes the sources of one product release and its manifest; returns the manifest.
fn product(dir: &Path, r: &Release) -> PathBuf {
    let root = dir.join(format!("src-{}", r.version));
    let base: Vec<LayerBlob> = (0..r.base_layers)
        .map(|i| layer(&format!("base/{i}.bin"), r.base_size, 100 + i as u64))
        .collect();
    let mut api = base.clone();
    api.push(layer("api/app.bin", 512 << 10, r.api_top));
    let mut legacy = base.clone();
    legacy.push(layer("legacy/app.bin", 64 << 10, 9));
    let mut web = base;
    web.push(layer("web/app.bin", 256 << 10, 7));
    let mut images = vec![
        ImageSpec {
            ref_name: format!("app/api:{}", r.version),
            platforms: vec![PlatformImage::linux("amd64", api, &["/api"])],
        },
        ImageSpec {
            ref_name: format!("app/web:{}", r.version),
            platforms: vec![PlatformImage::linux("amd64", web, &["/web"])],
        },
    ];
    if r.legacy {
        images.push(ImageSpec {
            ref_name: format!("app/legacy:{}", r.version),
            platforms: vec![PlatformImage::linux("amd64", legacy, &["/legacy"])],
        });
    }
    write_oci_layout(&root.join("images"), &images).unwrap();
    // The demo's chart, at this release's version.
    let chart = root.join("charts/hello");
    copy_dir(&repo_root().join("manifests/demo/charts/hello"), &chart);
    let chart_yaml = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        chart_yaml.replace("version: 0.1.0", &format!("version: {}", r.chart_version)),
    )
    .unwrap();
    let t = root.join("templates");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(
        t.join("hello.values.yaml.hbs"),
        "image: {{quote (image \"app/web\")}}\napi: {{quote (image \"app/api\")}}\nreplicas: 1\nservice:\n  port: 8080\nlicense: {{quote (default \"\" site.license)}}\n",
    )
    .unwrap();
    let mut spec = String::from(
        "renderVersion: 1\nreleases:\n  - name: hello\n    chart: hello\n    values: hello.values.yaml.hbs\n",
    );
    if r.backup.is_some() || r.restore.is_some() {
        spec.push_str("files:\n");
    }
    for (role, body) in [("backup", r.backup), ("restore", r.restore)] {
        if let Some(body) = body {
            std::fs::write(
                t.join(format!("{role}.sh.hbs")),
                format!("#!/bin/sh\n{body}\n"),
            )
            .unwrap();
            spec.push_str(&format!(
                "  - template: {role}.sh.hbs\n    output: {role}.sh\n    executable: true\n    role: {role}\n"
            ));
        }
    }
    std::fs::write(t.join("render.yaml"), spec).unwrap();
    // The product profile: the reference platform's site file and health
    // checks, as the example site these tests install is written for it.
    std::fs::copy(
        repo_root().join("templates/site.schema.json"),
        t.join("site.schema.json"),
    )
    .unwrap();
    let profile = std::fs::read_to_string(repo_root().join("templates/profile.yaml"))
        .unwrap()
        .replace("product: reference-platform", "product: platform")
        .replace("example: ../manifests/site.example.yaml\n", "");
    std::fs::write(t.join("profile.yaml"), profile).unwrap();
    let legacy = if r.legacy {
        format!(
            "  - source: oci-layout:{}:app/legacy:{}\n",
            root.join("images").display(),
            r.version
        )
    } else {
        String::new()
    };
    let mut manifest = format!(
        "name: platform\nversion: {v}\nimages:\n  - source: oci-layout:{img}:app/api:{v}\n  - source: oci-layout:{img}:app/web:{v}\n{legacy}charts:\n  - source: {chart}\ntemplates:\n  - source: {t}\n",
        v = r.version,
        img = root.join("images").display(),
        chart = chart.display(),
        t = t.display()
    );
    if let Some(l) = r.license {
        manifest.push_str(&format!("license: {}\n", l.display()));
    }
    let path = root.join("platform.yaml");
    std::fs::write(&path, manifest).unwrap();
    path
}

/// The example site in `dir` (state in `dir/state`) for `registry`.
fn site(dir: &Path, registry: &str) -> DemoSite {
    demo_site(dir, registry, &dir.join("state"), None)
}

fn build(manifest: &Path, key: &Path, out: &Path) -> PathBuf {
    ok(build_cmd(manifest, key, out).arg("--skip-sbom"));
    out.to_path_buf()
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn step<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {report:#}"))
}

/// The audit records of runs after `skip` records: (step, outcome) pairs.
fn steps_since(audit: &[Value], skip: usize) -> Vec<(String, String)> {
    steps(&audit[skip..])
}

fn bundle_digest(bundle: &Path) -> String {
    let r = airgap_format::ArchiveReader::open(bundle, airgap_format::Limits::default()).unwrap();
    let (raw, _) = r.read_descriptor_unverified().unwrap();
    format!(
        "sha256:{}",
        airgap_e2e::fixtures::sha256_hex(&raw.bundle_json)
    )
}

fn image_digest(bundle: &Path, reference: &str) -> String {
    let r = airgap_format::ArchiveReader::open(bundle, airgap_format::Limits::default()).unwrap();
    let (_, d) = r.read_descriptor_unverified().unwrap();
    d.images
        .iter()
        .find(|i| i.reference == reference)
        .unwrap()
        .digest
        .to_string()
}

#[test]
fn install_upgrade_refused_downgrade_and_allowed_downgrade_are_recorded() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    let s = site(tmp.path(), &reg.addr());
    let v1 = build(
        &product(tmp.path(), &Release::default()),
        &key,
        &tmp.path().join("platform-1.0.0.bundle"),
    );
    let lic = s.licence_for(
        tmp.path(),
        &key,
        "site",
        "platform",
        &["--limit", "workspaces=5"],
    );
    let v2 = build(
        &product(
            tmp.path(),
            &Release {
                version: "1.1.0",
                api_top: 2,
                chart_version: "0.2.0",
                license: Some(&lic),
                ..Release::default()
            },
        ),
        &key,
        &tmp.path().join("platform-1.1.0.bundle"),
    );

    // 1. Install 1.0.0.
    let r = json(&ok(s.install(&v1, &public).arg("--json")));
    assert_eq!(r["kind"], "install", "{r:#}");
    assert_eq!(step(&r, "push")["outcome"], "ok");
    assert_eq!(
        reg.skopeo_inspect_raw_digest("site/app/api:1.0.0")
            .as_deref(),
        Some(image_digest(&v1, "app/api:1.0.0").as_str())
    );
    let st = s.status();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["version"], "1.0.0");
    assert_eq!(st[0]["bundleDigest"], bundle_digest(&v1));
    let audit = s.audit();
    assert_eq!(steps_since(&audit, 0), pairs(FULL_RUN));
    for r in &audit {
        assert_eq!(r["bundleDigest"], bundle_digest(&v1));
        assert_eq!(r["command"], "install");
        assert!(!r["operator"].as_str().unwrap().is_empty());
        assert!(r["time"].as_str().unwrap().ends_with('Z'));
    }
    // Rendered into the state folder, with the images as pushed.
    let values = std::fs::read_to_string(
        s.state
            .join("installs/platform/1.0.0/config/values/hello.yaml"),
    )
    .unwrap();
    assert!(
        values.contains(&format!(
            "{}/site/app/web@{}",
            reg.addr(),
            image_digest(&v1, "app/web:1.0.0")
        )),
        "{values}"
    );

    // The installed bundle planned again: nothing to change, not even the
    // rendered configuration (plan renders with the relocation map push
    // would write, so charts come from the registry as they did).
    let same = json(&ok(s
        .installer()
        .arg("plan")
        .arg(&v1)
        .arg("--trust")
        .arg(&public)
        .arg("--site")
        .arg(&s.file)
        .arg("--json")));
    assert_eq!(same["kind"], "reinstall");
    assert_eq!(same["config"].as_array().unwrap().len(), 0, "{same:#}");

    // 2. Plan the upgrade: the api image changed in its top layer, the web
    // image did not (same digest under a new tag), the chart changed.
    let plan = json(&ok(s
        .installer()
        .arg("plan")
        .arg(&v2)
        .arg("--trust")
        .arg(&public)
        .arg("--site")
        .arg(&s.file)
        .arg("--json")));
    assert_eq!(plan["kind"], "upgrade");
    assert_eq!(plan["installedVersion"], "1.0.0");
    let images = plan["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{plan:#}");
    assert_eq!(images[0]["name"], "app/api");
    assert_eq!(images[0]["change"], "changed");
    let api_bytes = images[0]["bytes"].as_u64().unwrap();
    assert!(
        api_bytes > 512 << 10 && api_bytes < 1 << 20,
        "only the new top layer, its config and manifest: {api_bytes}"
    );
    let charts = plan["charts"].as_array().unwrap();
    assert_eq!(charts.len(), 1);
    assert_eq!(charts[0]["from"], "0.1.0");
    assert_eq!(charts[0]["to"], "0.2.0");
    assert!(
        plan["bytesToTransfer"].as_u64().unwrap() < 2 << 20,
        "{plan:#}"
    );
    assert!(
        plan["license"]
            .as_str()
            .unwrap()
            .contains("no licence is active"),
        "{plan:#}"
    );
    let config: Vec<&str> = plan["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["path"].as_str().unwrap())
        .collect();
    assert!(config.contains(&"install-plan.sh"), "{plan:#}");
    // The install plan changes where the chart's version does, and says so.
    let script = plan["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "install-plan.sh")
        .unwrap();
    let diff = script["diff"].as_str().unwrap();
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
        .collect();
    assert!(
        !changed.is_empty()
            && changed
                .iter()
                .all(|l| l.contains("0.2.0") || !l.contains("0.1.0")),
        "{diff}"
    );
    assert!(
        changed.iter().any(|l| l.contains("--version 0.2.0")),
        "{diff}"
    );

    // 3. Upgrade to 1.1.0, activating the licence it carries.
    let before = s.audit().len();
    let r = json(&ok(s.install(&v2, &public).arg("--json")));
    assert_eq!(r["kind"], "upgrade");
    assert_eq!(r["fromVersion"], "1.0.0");
    let push = step(&r, "push")["detail"].as_str().unwrap().to_string();
    assert!(
        !push.contains(" 0 already there"),
        "shared blobs were sent again: {push}"
    );
    assert!(step(&r, "license")["detail"]
        .as_str()
        .unwrap()
        .contains("serial 1"));
    let status = ok(s
        .installer()
        .args(["license", "status", "--json", "--trust"])
        .arg(&public));
    assert_eq!(json(&status)["state"], "valid");
    assert_eq!(
        reg.skopeo_inspect_raw_digest("site/app/api:1.1.0")
            .as_deref(),
        Some(image_digest(&v2, "app/api:1.1.0").as_str())
    );
    let st = s.status();
    assert_eq!(st[0]["version"], "1.1.0");
    assert_eq!(st[0]["previous"][0]["version"], "1.0.0");
    let audit = s.audit();
    let mut want = FULL_RUN.to_vec();
    want[3] = ("license", "ok");
    assert_eq!(steps_since(&audit, before), pairs(&want));
    // The configuration gets the active licence.
    let active = std::fs::read_to_string(s.state.join("license/active.lic")).unwrap();
    let values = std::fs::read_to_string(
        s.state
            .join("installs/platform/1.1.0/config/values/hello.yaml"),
    )
    .unwrap();
    let first_body_line = active.lines().nth(7).unwrap();
    assert!(
        values.contains("-----BEGIN AIRGAP LICENSE-----") && values.contains(first_body_line),
        "{values}"
    );

    // 4. 1.0.0 again: not newer, refused, and logged.
    let before = audit.len();
    let err = fails(&mut s.install(&v1, &public));
    assert!(
        err.contains("not newer than the installed platform 1.1.0")
            && err.contains("--allow-downgrade"),
        "{err}"
    );
    let audit = s.audit();
    assert_eq!(
        steps_since(&audit, before),
        pairs(&[("install", "refused")])
    );
    assert_eq!(s.status()[0]["version"], "1.1.0");

    // 5. With --allow-downgrade: done, and the flag is in the log.
    let before = audit.len();
    let r = json(&ok(s
        .install(&v1, &public)
        .arg("--allow-downgrade")
        .arg("--json")));
    assert_eq!(r["kind"], "downgrade");
    let audit = s.audit();
    assert_eq!(audit[before]["outcome"], "warning");
    assert!(audit[before]["detail"]
        .as_str()
        .unwrap()
        .contains("--allow-downgrade"));
    assert_eq!(s.status()[0]["version"], "1.0.0");
    // The same bundle again: nothing to do.
    let r = json(&ok(s.install(&v1, &public).arg("--json")));
    assert_eq!(r["kind"], "reinstall");
    assert_eq!(step(&r, "record")["outcome"], "skipped");
}

/// A vendor key and release 1.0.0 built with it: (secret key, public key, bundle).
fn first_release(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (key, public) = keygen(dir, "vendor");
    let v1 = build(
        &product(dir, &Release::default()),
        &key,
        &dir.join("v1.bundle"),
    );
    (key, public, v1)
}

fn build_delta(manifest: &Path, key: &Path, base: &Path, out: &Path) -> Value {
    json(&ok(build_cmd(manifest, key, out)
        .arg("--skip-sbom")
        .arg("--base")
        .arg(base)
        .arg("--json")))
}

#[test]
fn delta_bundles_install_from_the_registry_or_the_base_and_are_refused_otherwise() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let v1 = build(
        &product(tmp.path(), &Release::default()),
        &key,
        &tmp.path().join("platform-1.0.0.bundle"),
    );
    let m2 = product(
        tmp.path(),
        &Release {
            version: "1.1.0",
            api_top: 2,
            chart_version: "0.2.0",
            ..Release::default()
        },
    );
    let full = build(&m2, &key, &tmp.path().join("platform-1.1.0.bundle"));
    let delta_path = tmp.path().join("platform-1.1.0-delta.bundle");
    let report = build_delta(&m2, &key, &v1, &delta_path);
    let full_size = std::fs::metadata(&full).unwrap().len();
    let delta_size = std::fs::metadata(&delta_path).unwrap().len();
    // Only the api image's new top layer and config, the new chart and the
    // manifests are stored: the 2 MiB of shared base layers are not.
    assert!(
        delta_size * 3 < full_size,
        "delta {delta_size} bytes, full {full_size}"
    );
    assert_eq!(report["base"]["version"], "1.0.0");
    assert_eq!(report["base"]["digest"], bundle_digest(&v1));
    assert!(
        report["blobsLeftToBase"].as_u64().unwrap() >= 3,
        "{report:#}"
    );
    // The delta verifies on its own and says what it needs.
    let v = json(&ok(verify_cmd(&delta_path, &public).arg("--json")));
    assert_eq!(v["base"]["version"], "1.0.0");
    // A base that is not older is refused at build time.
    let err = fails(
        build_cmd(&m2, &key, &tmp.path().join("x.bundle"))
            .arg("--skip-sbom")
            .arg("--base")
            .arg(&full),
    );
    assert!(err.contains("is not older than 1.1.0"), "{err}");

    // Site A, an empty registry: without --base the delta is refused before
    // anything is written, with the list of what is missing.
    let reg = Registry::start_plain();
    let a = site(&tmp.path().join("a"), &reg.addr());
    let err = fails(&mut a.install(&delta_path, &public));
    assert!(
        err.contains("neither in the registry nor in a --base bundle")
            && err.contains("install the base first or give --base"),
        "{err}"
    );
    let (_, d1) = airgap_format::ArchiveReader::open(&v1, airgap_format::Limits::default())
        .unwrap()
        .read_descriptor_unverified()
        .unwrap();
    let (_, dd) = airgap_format::ArchiveReader::open(&delta_path, airgap_format::Limits::default())
        .unwrap()
        .read_descriptor_unverified()
        .unwrap();
    for b in &dd.base_blobs {
        assert!(
            err.contains(&b.digest.to_string()),
            "{} not named: {err}",
            b.digest
        );
        assert!(
            d1.blob(&b.digest).is_some(),
            "left to the base but not in it"
        );
    }
    assert_eq!(
        stored_blobs(&reg),
        0,
        "a refused delta wrote to the registry"
    );
    let audit = a.audit();
    assert_eq!(
        steps_since(&audit, 0),
        pairs(&[("install", "started"), ("preflight", "failed")])
    );
    // The wrong base is refused by digest.
    let err = fails(a.install(&delta_path, &public).arg("--base").arg(&full));
    assert!(
        err.contains("but this delta was built against platform 1.0.0"),
        "{err}"
    );
    // With the right base: installed, the left-out blobs read from it.
    let before = a.audit().len();
    let r = json(&ok(a
        .install(&delta_path, &public)
        .arg("--base")
        .arg(&v1)
        .arg("--json")));
    let detail = step(&r, "verify")["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains(&format!(
            "delta of platform 1.0.0: 0 blobs already in the registry, {} from --base",
            dd.base_blobs.len()
        )),
        "{detail}"
    );
    assert_eq!(steps_since(&a.audit(), before), pairs(FULL_RUN));
    for image in ["app/api:1.1.0", "app/web:1.1.0"] {
        assert_eq!(
            reg.skopeo_inspect_raw_digest(&format!("site/{image}"))
                .as_deref(),
            Some(image_digest(&full, image).as_str())
        );
    }
    // skopeo reads every layer back (a missing blob would fail the copy).
    let out = tmp.path().join("copied");
    let mut args = vec!["copy".to_string()];
    args.extend(reg.skopeo_src_args());
    args.push(reg.docker_ref("site/app/web:1.1.0"));
    args.push(format!("oci:{}:web", out.display()));
    ok(Command::new("skopeo").args(&args));

    // Site B: install 1.0.0, then upgrade with the delta alone: every
    // left-out blob is already in the registry.
    let reg_b = Registry::start_plain();
    let b = site(&tmp.path().join("b"), &reg_b.addr());
    ok(&mut b.install(&v1, &public));
    let before = b.audit().len();
    let r = json(&ok(b.install(&delta_path, &public).arg("--json")));
    assert_eq!(r["kind"], "upgrade");
    let detail = step(&r, "verify")["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains(&format!(
            "{} blobs already in the registry, 0 from --base",
            dd.base_blobs.len()
        )),
        "{detail}"
    );
    assert_eq!(steps_since(&b.audit(), before), pairs(FULL_RUN));
    assert_eq!(
        reg_b
            .skopeo_inspect_raw_digest("site/app/api:1.1.0")
            .as_deref(),
        Some(image_digest(&full, "app/api:1.1.0").as_str())
    );
    let st = b.status();
    assert_eq!(st[0]["version"], "1.1.0");
    assert_eq!(st[0]["bundleDigest"], bundle_digest(&delta_path));

    // 1.2.0 keeps the chart, so its delta against full 1.1.0 leaves the
    // chart archive to the base. Rendering it needs the registry's copy:
    // without a relocation map it is refused by name, and after its
    // install (the registry has everything) it renders from the map.
    let m3 = product(
        tmp.path(),
        &Release {
            version: "1.2.0",
            api_top: 3,
            chart_version: "0.2.0",
            ..Release::default()
        },
    );
    let delta3 = tmp.path().join("platform-1.2.0-delta.bundle");
    build_delta(&m3, &key, &full, &delta3);
    let render = |map: Option<&Path>| {
        let mut c = b.installer();
        c.arg("render")
            .arg(&delta3)
            .arg("--trust")
            .arg(&public)
            .arg("--site")
            .arg(&b.file)
            .arg("--out")
            .arg(tmp.path().join("rendered-1.2.0"));
        if let Some(m) = map {
            c.arg("--relocation").arg(m);
        }
        c
    };
    let err = fails(&mut render(None));
    assert!(
        err.contains("chart hello 0.2.0 is not in this delta bundle")
            && err.contains("--relocation"),
        "{err}"
    );
    let r = json(&ok(b.install(&delta3, &public).arg("--json")));
    assert_eq!(r["kind"], "upgrade");
    ok(&mut render(Some(
        &b.state.join("installs/platform/1.2.0/relocation-map.json"),
    )));
}

/// `N uploaded (B bytes), M mounted` from an install's push step.
fn pushed(report: &Value) -> (u64, u64, u64) {
    let detail = step(report, "push")["detail"].as_str().unwrap().to_string();
    let num = |after: &str| -> u64 {
        let at = detail
            .find(after)
            .unwrap_or_else(|| panic!("{after}: {detail}"));
        detail[..at]
            .rsplit(|c: char| !c.is_ascii_digit())
            .find(|w| !w.is_empty())
            .unwrap()
            .parse()
            .unwrap()
    };
    (num(" uploaded"), num(" bytes)"), num(" mounted"))
}

fn plan_json(s: &DemoSite, bundle: &Path, public: &Path) -> Value {
    json(&ok(s
        .installer()
        .arg("plan")
        .arg(bundle)
        .arg("--trust")
        .arg(public)
        .arg("--site")
        .arg(&s.file)
        .arg("--json")))
}

/// Issue 16, defects 1 and 3. A delta whose new image (`app/legacy`) is
/// built on layers the base delivered under other repositories
/// (`site/app/api`, `site/app/web`) used to be refused as "neither in the
/// registry nor in a --base bundle"; and `plan` counted SBOMs, files and
/// templates without asking the registry. Now the layers are mounted from
/// where the installed release put them, and plan's transfer is what the
/// push then uploads.
#[test]
fn a_delta_reuses_layers_from_other_repositories_and_plan_counts_what_push_sends() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public, v1) = first_release(tmp.path());
    let m2 = product(
        tmp.path(),
        &Release {
            version: "1.1.0",
            legacy: true,
            ..Release::default()
        },
    );
    let delta = tmp.path().join("platform-1.1.0-delta.bundle");
    build_delta(&m2, &key, &v1, &delta);
    let reg = Registry::start_plain();
    let s = site(&tmp.path().join("a"), &reg.addr());

    // A first install: plan's transfer is exactly what the push uploads.
    let plan = plan_json(&s, &v1, &public);
    // Its configuration: every file added, listed with its line count; the
    // contents only with --diff.
    let config = plan["config"].as_array().unwrap();
    assert!(!config.is_empty(), "{plan:#}");
    for c in config {
        assert_eq!(c["change"], "added", "{plan:#}");
        assert!(c["linesAdded"].as_u64().unwrap() > 0, "{plan:#}");
        assert!(
            c["diff"] == "" || c["diff"] == "(holds secrets: contents not shown)",
            "{plan:#}"
        );
    }
    let full = json(&ok(s
        .installer()
        .arg("plan")
        .arg(&v1)
        .arg("--trust")
        .arg(&public)
        .arg("--site")
        .arg(&s.file)
        .args(["--diff", "--json"])));
    let script = full["config"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["path"] == "install-plan.sh")
        .unwrap_or_else(|| panic!("{full:#}"));
    assert!(
        script["diff"]
            .as_str()
            .unwrap()
            .starts_with("--- installed/install-plan.sh"),
        "{full:#}"
    );
    assert_eq!(
        script["diff"]
            .as_str()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
            .count() as u64,
        script["linesAdded"].as_u64().unwrap()
    );
    let r = json(&ok(s.install(&v1, &public).arg("--json")));
    let (uploaded, bytes, mounted) = pushed(&r);
    assert_eq!(plan["blobsToTransfer"], uploaded, "{plan:#}");
    assert_eq!(plan["bytesToTransfer"], bytes, "{plan:#}");
    assert_eq!(plan["blobsToMount"], mounted, "{plan:#}");
    // The shared base layers go up once and are mounted into the other image.
    assert!(mounted >= 2, "{r:#}");

    // The delta: its legacy image's base layers are in site/app/api.
    let plan = plan_json(&s, &delta, &public);
    let r = json(&ok(s.install(&delta, &public).arg("--json")));
    assert_eq!(r["kind"], "upgrade");
    let (uploaded, bytes, mounted) = pushed(&r);
    assert_eq!(plan["blobsToTransfer"], uploaded, "{plan:#}");
    assert_eq!(plan["bytesToTransfer"], bytes, "{plan:#}");
    assert_eq!(plan["blobsToMount"], mounted, "{plan:#}");
    // Only legacy's own layer, its config and nothing else is uploaded;
    // less than the 1 MiB of one base layer.
    assert_eq!(uploaded, 2, "{r:#}");
    assert!(bytes < 1 << 20, "{r:#}");
    assert!(mounted >= 2, "{r:#}");
    // skopeo reads every layer back (a missing blob would fail the copy).
    let mut args = vec!["copy".to_string()];
    args.extend(reg.skopeo_src_args());
    args.push(reg.docker_ref("site/app/legacy:1.1.0"));
    args.push(format!(
        "oci:{}:legacy",
        tmp.path().join("copied").display()
    ));
    ok(Command::new("skopeo").args(&args));

    // A push of the delta alone to another prefix of the same registry
    // finds the layers through the installed records, and mounts them.
    let out = ok(s
        .installer()
        .arg("push")
        .arg(&delta)
        .arg("--trust")
        .arg(&public)
        .arg("--registry")
        .arg(format!("{}/other", reg.addr()))
        .arg("--plain-http")
        .arg("--relocation-map")
        .arg(tmp.path().join("map.json"))
        .arg("--json"));
    let p = json(&out);
    assert!(p["blobsMounted"].as_u64().unwrap() >= 2, "{p:#}");
    let mut args = vec!["copy".to_string()];
    args.extend(reg.skopeo_src_args());
    args.push(reg.docker_ref("other/app/legacy:1.1.0"));
    args.push(format!(
        "oci:{}:legacy2",
        tmp.path().join("copied").display()
    ));
    ok(Command::new("skopeo").args(&args));
}

#[test]
fn apply_runs_the_plan_and_leaves_health_to_its_own_step() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (_key, public, v1) = first_release(tmp.path());
    let reg = Registry::start_plain();
    // No Kubernetes here: `helm` on the PATH is the real Helm run as
    // `helm template` with the same arguments, so the chart is pulled from
    // the site registry and rendered with the site's values for real.
    let wrap = tmp.path().join("wrap");
    std::fs::create_dir_all(&wrap).unwrap();
    let log = tmp.path().join("helm.log");
    let script = wrap.join("helm");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{HELM_VERSION_LINE}echo \"$@\" >> '{log}'\n[ \"$1 $2\" = \"upgrade --install\" ] || exit 9\nshift 2\nexec '{helm}' template \"$@\" --kube-version 1.30.0\n",
            log = log.display(),
            helm = helm().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    kubectl_stand_in(&wrap);
    let path = format!(
        "{}:{}",
        wrap.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    // --skip-health: the plan runs, and no health check at all (the site's
    // services do not exist here, so any check would fail).
    let a = site(&tmp.path().join("a"), &reg.addr());
    let r = json(&ok(a
        .install(&v1, &public)
        .args(["--apply", "--skip-health", "--json"])
        .env("PATH", &path)));
    assert_eq!(step(&r, "apply")["outcome"], "ok", "{r:#}");
    assert_eq!(step(&r, "health")["outcome"], "skipped", "{r:#}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(
        calls.starts_with("upgrade --install hello oci://") && calls.contains("--version 0.1.0"),
        "{calls}"
    );
    let mut want = FULL_RUN.to_vec();
    want[6] = ("apply", "ok");
    assert_eq!(steps_since(&a.audit(), 0), pairs(&want));
    assert_eq!(a.status()[0]["applied"], true);

    // Without it, the checks run once, in the health step, and fail there.
    let b = site(&tmp.path().join("b"), &reg.addr());
    let err = fails(
        b.install(&v1, &public)
            .args(["--apply", "--health-timeout", "2"])
            .env("PATH", &path),
    );
    assert!(err.contains("health checks failed"), "{err}");
    let audit = b.audit();
    let steps = steps_since(&audit, 0);
    assert!(
        steps.contains(&("apply".to_string(), "ok".to_string()))
            && steps.contains(&("health".to_string(), "failed".to_string())),
        "{steps:?}"
    );

    // A run without --apply renders only; a later --apply of the same
    // bundle applies it. It used to answer "already installed; nothing to
    // do" and exit 0, leaving the plan never applied.
    let c = site(&tmp.path().join("c"), &reg.addr());
    let r = json(&ok(c
        .install(&v1, &public)
        .arg("--json")
        .env("PATH", &path)));
    assert_eq!(step(&r, "apply")["outcome"], "skipped", "{r:#}");
    assert_eq!(c.status()[0]["applied"], false);
    let calls = |log: &Path| std::fs::read_to_string(log).unwrap().lines().count();
    let before = calls(&log);
    let again = |c: &DemoSite| {
        json(&ok(c
            .install(&v1, &public)
            .args(["--apply", "--skip-health", "--json"])
            .env("PATH", &path)))
    };
    let r = again(&c);
    assert_eq!(r["kind"], "apply", "{r:#}");
    assert_eq!(step(&r, "apply")["outcome"], "ok", "{r:#}");
    assert_eq!(step(&r, "record")["outcome"], "ok", "{r:#}");
    assert_eq!(calls(&log), before + 1, "helm ran once more");
    let status = c.status();
    assert_eq!(status[0]["applied"], true, "{status:#?}");
    assert_eq!(status[0]["version"], "1.0.0");
    // Applied now: the same command has nothing left to do.
    let r = again(&c);
    assert_eq!(step(&r, "record")["outcome"], "skipped", "{r:#}");
    assert_eq!(calls(&log), before + 1);
}

#[test]
fn a_tag_held_by_another_image_stops_install_unless_told_otherwise() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (_key, public, v1) = first_release(tmp.path());
    let reg = Registry::start_plain();
    let a = site(&tmp.path().join("a"), &reg.addr());
    ok(&mut a.install(&v1, &public));
    // Someone tags the api image as web:1.0.0 in the same registry.
    let mut args = vec!["copy".to_string()];
    args.extend(reg.skopeo_src_args());
    args.extend(reg.skopeo_dest_args());
    args.push(reg.docker_ref("site/app/api:1.0.0"));
    args.push(reg.docker_ref("site/app/web:1.0.0"));
    ok(Command::new("skopeo").args(&args));
    let web = image_digest(&v1, "app/web:1.0.0");
    assert_ne!(
        reg.skopeo_inspect_raw_digest("site/app/web:1.0.0")
            .as_deref(),
        Some(web.as_str())
    );
    // Another site state installing the same bundle stops before pushing.
    let b = site(&tmp.path().join("b"), &reg.addr());
    let err = fails(&mut b.install(&v1, &public));
    assert!(
        err.contains("already points at") && err.contains("--on-existing-tag"),
        "{err}"
    );
    // skip: the tag is left, the run completes (deployments use digests).
    let r = json(&ok(b.install(&v1, &public).args([
        "--on-existing-tag",
        "skip",
        "--json",
    ])));
    assert_eq!(step(&r, "push")["outcome"], "ok");
    assert_ne!(
        reg.skopeo_inspect_raw_digest("site/app/web:1.0.0")
            .as_deref(),
        Some(web.as_str())
    );
    // overwrite, from a third state: the tag is moved back.
    let c = site(&tmp.path().join("c"), &reg.addr());
    ok(c.install(&v1, &public)
        .args(["--on-existing-tag", "overwrite"]));
    assert_eq!(
        reg.skopeo_inspect_raw_digest("site/app/web:1.0.0")
            .as_deref(),
        Some(web.as_str())
    );
}

/// Number of blobs the registry stores.
fn stored_blobs(reg: &Registry) -> usize {
    let dir = reg.storage_dir().join("docker/registry/v2/blobs/sha256");
    let Ok(prefixes) = std::fs::read_dir(&dir) else {
        return 0;
    };
    prefixes
        .flatten()
        .flat_map(|p| std::fs::read_dir(p.path()).into_iter().flatten().flatten())
        .filter(|b| b.path().join("data").is_file())
        .count()
}

/// Starts an install and SIGKILLs it once `until` holds (or fails the test
/// when the run ends first).
fn kill_when(mut cmd: Command, until: impl Fn() -> bool) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("the run ended ({status}) before the kill point:\n{err}");
        }
        if until() {
            break;
        }
        assert!(Instant::now() < deadline, "kill point never reached");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn sigkill_during_push_then_rerun_finishes_without_resending() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    // Every blob upload is held up a little, so that the push takes long
    // enough to be killed part-way at chosen points.
    let proxy = FaultProxy::start(
        &reg.addr(),
        Box::new(|_, method, path| {
            if (method == "PUT" || method == "PATCH") && path.contains("/blobs/uploads/") {
                Fault::Stall(Duration::from_millis(250))
            } else {
                Fault::Pass
            }
        }),
    );
    let s = site(tmp.path(), &proxy.addr());
    let bundle = build(
        &product(
            tmp.path(),
            &Release {
                base_layers: 6,
                base_size: 512 << 10,
                ..Release::default()
            },
        ),
        &key,
        &tmp.path().join("platform.bundle"),
    );
    let journal = s.state.join("runs").join(format!(
        "{}.json",
        &bundle_digest(&bundle)["sha256:".len()..]
    ));
    let mut jobs = s.install(&bundle, &public);
    jobs.args(["--jobs", "1"]);

    // Point 1: as soon as the first blob is in the registry.
    kill_when(
        {
            let mut c = s.install(&bundle, &public);
            c.args(["--jobs", "1"]);
            c
        },
        || stored_blobs(&reg) >= 1,
    );
    assert!(journal.is_file(), "the journal survives the kill");
    // Point 2: a rerun, killed when half of the blobs are there.
    let first = stored_blobs(&reg);
    kill_when(jobs, || stored_blobs(&reg) >= first + 4);
    let partial = stored_blobs(&reg);
    // Point 3: as soon as the rerun has logged its start.
    let logged = s.audit().len();
    let audit_log = s.state.join("audit.log");
    kill_when(s.install(&bundle, &public), || {
        std::fs::read_to_string(&audit_log).map_or(0, |t| t.lines().count()) > logged
    });

    let r = json(&ok(s.install(&bundle, &public).arg("--json")));
    assert_eq!(step(&r, "verify")["outcome"], "resumed", "{r:#}");
    let push = step(&r, "push")["detail"].as_str().unwrap().to_string();
    let there: usize = push
        .split(", ")
        .find_map(|p| p.strip_suffix(" already there"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{push}"));
    assert!(
        there >= partial,
        "{partial} blobs had arrived before the kills, yet only {there} were found there: {push}"
    );
    assert!(
        !journal.exists(),
        "the journal is removed when the run is recorded"
    );
    for reference in ["app/api:1.0.0", "app/web:1.0.0"] {
        assert_eq!(
            reg.skopeo_inspect_raw_digest(&format!("site/{reference}"))
                .as_deref(),
            Some(image_digest(&bundle, reference).as_str()),
            "{reference}"
        );
    }
    // Every image copies out whole with an independent client.
    let dest = tmp.path().join("copied");
    let mut skopeo = Command::new("skopeo");
    skopeo
        .arg("copy")
        .args(reg.skopeo_src_args())
        .arg(format!("docker://{}/site/app/api:1.0.0", reg.addr()))
        .arg(format!("oci:{}:api", dest.display()));
    ok(&mut skopeo);

    // The audit log: every interrupted run shows as started and then
    // resumed; the run that finished logs every remaining step.
    let audit = s.audit();
    let starts: Vec<&str> = audit
        .iter()
        .filter(|r| r["step"] == "install" && r["outcome"] == "started")
        .map(|r| r["detail"].as_str().unwrap())
        .collect();
    assert_eq!(starts.len(), 4, "{audit:#?}");
    assert_eq!(starts[0], "install");
    assert!(starts[1..]
        .iter()
        .all(|d| *d == "resuming an interrupted run"));
    let last = audit.last().unwrap();
    assert_eq!(
        (last["step"].as_str(), last["outcome"].as_str()),
        (Some("install"), Some("ok"))
    );
    assert_eq!(
        audit.iter().filter(|r| r["step"] == "verify").count(),
        1,
        "verified once, then resumed: {audit:#?}"
    );
    assert_eq!(audit.iter().filter(|r| r["step"] == "push").count(), 1);
    assert_eq!(s.status()[0]["version"], "1.0.0");
}

#[test]
fn backups_run_before_an_upgrade_is_applied_and_a_failure_stops_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    let s = site(tmp.path(), &reg.addr());
    let v1 = build(
        &product(tmp.path(), &Release::default()),
        &key,
        &tmp.path().join("v1.bundle"),
    );
    ok(&mut s.install(&v1, &public));

    // A backup that fails: the upgrade stops before helm runs.
    let failing = build(
        &product(
            tmp.path(),
            &Release {
                version: "1.1.0",
                api_top: 2,
                backup: Some(
                    "echo \"dumping {{site.name}}\"; echo 'pg_dump: disk full' >&2; exit 3",
                ),
                ..Release::default()
            },
        ),
        &key,
        &tmp.path().join("v2.bundle"),
    );
    // helm is the real one (it fails: there is no cluster here), kubectl a
    // stand-in that answers preflight's version questions.
    let tools = kubectl_stand_in(&tmp.path().join("tools"));
    let helm_dir = helm().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}:{}",
        helm_dir.display(),
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let before = s.audit().len();
    let err = fails(
        s.install(&failing, &public)
            .arg("--apply")
            .env("PATH", &path)
            .env("KUBECONFIG", tmp.path().join("no-cluster.yaml")),
    );
    assert!(
        err.contains("backup backup.sh failed (exit status 3)"),
        "{err}"
    );
    assert!(err.contains("disk full"), "{err}");
    let audit = s.audit();
    let backup = audit[before..]
        .iter()
        .find(|r| r["step"] == "backup")
        .expect("backup logged");
    assert_eq!(backup["outcome"], "failed");
    let detail = backup["detail"].as_str().unwrap();
    assert!(
        detail.contains("exit status 3")
            && detail.contains("dumping example-research")
            && detail.contains("disk full"),
        "{detail}"
    );
    let apply = audit[before..]
        .iter()
        .find(|r| r["step"] == "apply")
        .unwrap();
    assert_eq!(apply["outcome"], "failed");
    assert_eq!(s.status()[0]["version"], "1.0.0", "nothing recorded");

    // A backup that works runs first, in the state folder's backups/, then
    // helm runs the plan (and, with no cluster here, fails: the run stops
    // and nothing is recorded).
    let working = build(
        &product(
            tmp.path(),
            &Release {
                version: "1.2.0",
                api_top: 3,
                backup: Some("echo \"backup of {{site.name}}\" > \"$BACKUP_DIR/site.dump\""),
                ..Release::default()
            },
        ),
        &key,
        &tmp.path().join("v3.bundle"),
    );
    let before = s.audit().len();
    let out = run(s
        .install(&working, &public)
        .arg("--apply")
        .env("PATH", &path)
        .env("KUBECONFIG", tmp.path().join("no-cluster.yaml")));
    let audit = s.audit();
    let order: Vec<(String, String)> = steps_since(&audit, before)
        .into_iter()
        .filter(|(step, _)| step == "backup" || step == "apply")
        .collect();
    assert_eq!(
        order,
        pairs(&[("backup", "ok"), ("apply", "failed")]),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dumps: Vec<PathBuf> = std::fs::read_dir(s.state.join("backups"))
        .unwrap()
        .flatten()
        .map(|d| d.path().join("site.dump"))
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(dumps.len(), 1);
    assert_eq!(
        std::fs::read_to_string(&dumps[0]).unwrap(),
        "backup of example-research\n"
    );
    assert!(!out.status.success());
    assert_eq!(s.status()[0]["version"], "1.0.0");
}

#[test]
fn a_second_run_waits_for_the_state_lock_then_gives_up() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::start_plain();
    let s = site(tmp.path(), &reg.addr());
    std::fs::create_dir_all(&s.state).unwrap();
    // Hold the lock the way a running install does.
    let lock = std::fs::File::create(s.state.join("lock")).unwrap();
    let mut holder = Command::new("flock")
        .arg("--exclusive")
        .arg("--no-fork")
        .arg(s.state.join("lock"))
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (_, public) = keygen(tmp.path(), "vendor");
    let garbled = tmp.path().join("garbled.lic");
    std::fs::write(&garbled, "not a licence\n").unwrap();
    let activate = || {
        let mut c = s.installer();
        c.args(["license", "activate"])
            .arg(&garbled)
            .arg("--trust")
            .arg(&public);
        c
    };
    // Reading is never blocked.
    assert_eq!(ok(s.installer().arg("status")), "nothing installed\n");
    let started = Instant::now();
    let err = fails(&mut activate());
    assert!(err.contains("another airgap-install run"), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(5));
    holder.kill().unwrap();
    holder.wait().unwrap();
    drop(lock);
    let err = fails(&mut activate());
    assert!(err.contains("garbled.lic"), "{err}");
}

/// Issue 16: rollback re-applies an earlier recorded version (its restore
/// script first, with the backup the upgrade took) from its recorded
/// configuration and the images still in the registry, and refuses, naming
/// them, when images are gone; uninstall removes the Helm releases and,
/// with --purge-images, the images, reporting what the registry would not
/// delete.
#[test]
fn rollback_reapplies_an_earlier_version_and_uninstall_removes_it() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let restore = "set -eu\necho \"restoring {{site.name}} from $BACKUP_DIR\"\ncp \"$BACKUP_DIR/site.dump\" \"$BACKUP_DIR/restored\"";
    let backup =
        "set -eu\necho \"data before {{site.name}} was upgraded\" > \"$BACKUP_DIR/site.dump\"";
    let v1 = build(
        &product(
            tmp.path(),
            &Release {
                restore: Some(restore),
                backup: Some(backup),
                ..Release::default()
            },
        ),
        &key,
        &tmp.path().join("v1.bundle"),
    );
    let v2 = build(
        &product(
            tmp.path(),
            &Release {
                version: "1.1.0",
                api_top: 2,
                chart_version: "0.2.0",
                restore: Some(restore),
                backup: Some(backup),
                ..Release::default()
            },
        ),
        &key,
        &tmp.path().join("v2.bundle"),
    );
    let reg = Registry::start_plain();
    let s = site(&tmp.path().join("a"), &reg.addr());
    let log = tmp.path().join("helm.log");
    let path = helm_without_cluster(tmp.path(), &log);
    let apply = |b: &Path| {
        ok(s.install(b, &public)
            .args(["--apply", "--skip-health"])
            .env("PATH", &path));
    };
    apply(&v1);
    apply(&v2);
    let backup_dir = s.status()[0]["backupDir"].as_str().unwrap().to_string();
    assert!(Path::new(&backup_dir).join("site.dump").is_file());

    // Nothing to roll back to is refused by name.
    let err = fails(
        s.installer()
            .args(["rollback", "--to", "0.9.0", "--site"])
            .arg(&s.file),
    );
    assert!(
        err.contains("platform 0.9.0 was never installed here (earlier versions: 1.0.0)"),
        "{err}"
    );

    // Back to 1.0.0: restore with 1.1.0's backup, then 1.0.0's plan. Helm
    // fails the first time: the rollback stops, keeps its journal, and the
    // same command resumes it without restoring twice.
    let audit_before = s.audit().len();
    let err = fails(
        s.installer()
            .args(["rollback", "--skip-health", "--site"])
            .arg(&s.file)
            .env("PATH", &path)
            .env("HELM_FAILS", "1"),
    );
    assert!(err.contains("UPGRADE FAILED"), "{err}");
    assert_eq!(s.status()[0]["version"], "1.1.0");
    assert!(s.state.join("runs/rollback-platform.json").is_file());
    let st: Value = json(&ok(s.installer().args(["status", "--json"])));
    assert_eq!(st["unfinished"][0]["command"], "rollback", "{st:#}");
    assert_eq!(st["unfinished"][0]["nextStep"], "apply", "{st:#}");
    let text = ok(s.installer().arg("status"));
    assert!(
        text.contains("to resume: run the same airgap-install rollback command again"),
        "{text}"
    );
    let calls_before = std::fs::read_to_string(&log).unwrap().lines().count();
    let r = json(&ok(s
        .installer()
        .args(["rollback", "--skip-health", "--json", "--site"])
        .arg(&s.file)
        .env("PATH", &path)));
    assert_eq!(r["kind"], "rollback", "{r:#}");
    assert_eq!(r["version"], "1.0.0");
    assert_eq!(r["fromVersion"], "1.1.0");
    assert_eq!(step(&r, "check")["outcome"], "resumed", "{r:#}");
    assert_eq!(step(&r, "restore")["outcome"], "resumed", "{r:#}");
    assert!(!s.state.join("runs/rollback-platform.json").exists());
    assert_eq!(
        std::fs::read_to_string(Path::new(&backup_dir).join("restored")).unwrap(),
        "data before example-research was upgraded\n"
    );
    let calls: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .skip(calls_before)
        .map(str::to_string)
        .collect();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].starts_with("upgrade --install hello oci://")
            && calls[0].contains("--version 0.1.0"),
        "{calls:?}"
    );
    let st = s.status();
    assert_eq!(st[0]["version"], "1.0.0");
    assert_eq!(st[0]["rolledBackFrom"], "1.1.0");
    assert_eq!(st[0]["previous"][0]["version"], "1.1.0", "{st:#?}");
    assert_eq!(
        steps_since(&s.audit(), audit_before),
        pairs(&[
            ("rollback", "started"),
            ("check", "ok"),
            // The script's own record (its output), then the step's.
            ("restore", "ok"),
            ("restore", "ok"),
            ("apply", "failed"),
            ("rollback", "started"),
            ("apply", "ok"),
            ("health", "skipped"),
            ("record", "ok"),
            ("rollback", "ok"),
        ])
    );

    // Forward again to 1.1.0 is refused once one of its images is gone
    // from the registry, naming it.
    let mut args = vec!["delete".to_string()];
    args.extend(reg.skopeo_args());
    args.push(reg.docker_ref("site/app/api:1.1.0"));
    ok(Command::new("skopeo").args(&args));
    let err = fails(
        s.installer()
            .args(["rollback", "--to", "1.1.0", "--site"])
            .arg(&s.file)
            .env("PATH", &path),
    );
    assert!(
        err.contains("cannot roll back to platform 1.1.0: site/app/api@sha256:")
            && err.contains("is no longer in")
            && err.contains("push its bundle again"),
        "{err}"
    );
    assert_eq!(s.status()[0]["version"], "1.0.0");

    // Uninstall: the releases go, then the images.
    let r = json(&ok(s
        .installer()
        .args([
            "uninstall",
            "platform",
            "--purge-images",
            "--json",
            "--site",
        ])
        .arg(&s.file)
        .env("PATH", &path)));
    assert_eq!(step(&r, "helm")["outcome"], "ok", "{r:#}");
    assert_eq!(step(&r, "images")["outcome"], "ok", "{r:#}");
    let last = std::fs::read_to_string(&log).unwrap();
    assert!(
        last.lines()
            .last()
            .unwrap()
            .starts_with("uninstall hello --namespace "),
        "{last}"
    );
    assert_eq!(reg.skopeo_inspect_raw_digest("site/app/web:1.0.0"), None);
    let st = s.status();
    assert!(st[0]["uninstalledAt"].is_string(), "{st:#?}");
    let err = fails(s.installer().args(["uninstall", "platform"]));
    assert!(err.contains("platform 1.0.0 was uninstalled on "), "{err}");
    // And installing again is a first install.
    let r = json(&ok(s.install(&v1, &public).arg("--json")));
    assert_eq!(r["kind"], "install", "{r:#}");

    // A registry that does not allow deletes: the images stay, each named.
    let proxy = FaultProxy::start(
        &reg.addr(),
        Box::new(|_, method, _| {
            if method == "DELETE" {
                Fault::Status(405)
            } else {
                Fault::Pass
            }
        }),
    );
    let b = site(&tmp.path().join("b"), &proxy.addr());
    ok(&mut b.install(&v1, &public));
    let r = json(&ok(b
        .installer()
        .args([
            "uninstall",
            "platform",
            "--purge-images",
            "--json",
            "--site",
        ])
        .arg(&b.file)));
    assert_eq!(step(&r, "helm")["outcome"], "skipped", "{r:#}");
    assert_eq!(step(&r, "images")["outcome"], "warning", "{r:#}");
    let not = r["notDeleted"].as_array().unwrap();
    assert_eq!(not.len(), 3, "{r:#}");
    assert!(not[0].as_str().unwrap().contains("HTTP 405"), "{r:#}");
}
