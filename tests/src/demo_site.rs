//! A test site for `airgap-install install` runs built from the demo
//! bundle: releases of the demo (`manifests/demo.yaml` at another version,
//! optionally carrying a licence), the example site file pointed at a
//! loopback registry (and, for health checks, at an [`HttpsServer`]), a
//! state folder, and a host root with a fixed machine id for node-locked
//! licences.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{bin, build_cmd, ok, repo_root};
use crate::https_server::HttpsServer;

/// A site: its file, state folder and host root.
pub struct DemoSite {
    /// The site file.
    pub file: PathBuf,
    /// The state folder (`--state-dir`).
    pub state: PathBuf,
    /// `AIRGAP_INSTALL_HOST_ROOT`: holds `etc/machine-id`.
    pub host_root: PathBuf,
}

/// Copies a folder tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// The example site in `dir`, its registry `registry` (plain HTTP, prefix
/// `site`), its state folder `state`. With `health`, the control plane and
/// both workspaces are that server (`/cp`, `/ws/genomics`, `/ws/imaging`),
/// trusted through the site's internal CA.
pub fn demo_site(
    dir: &Path,
    registry: &str,
    state: &Path,
    health: Option<&HttpsServer>,
) -> DemoSite {
    std::fs::create_dir_all(dir).unwrap();
    copy_dir(
        &repo_root().join("manifests/site-secrets"),
        &dir.join("site-secrets"),
    );
    let mut text = std::fs::read_to_string(repo_root().join("manifests/site.example.yaml"))
        .unwrap()
        .replace(
            "host: registry.internal.example:5000",
            &format!("host: {registry}\n  plainHttp: true"),
        )
        .replace("prefix: platform", "prefix: site");
    if let Some(server) = health {
        let url = server.url();
        text = text
            .replace(
                "url: https://cp.internal.example",
                &format!("url: {url}/cp"),
            )
            .replace(
                "url: https://genomics.ws.internal.example",
                &format!("url: {url}/ws/genomics"),
            )
            .replace(
                "url: https://imaging.ws.internal.example",
                &format!("url: {url}/ws/imaging"),
            );
        server.write_ca(&dir.join("site-secrets/internal-ca.pem"));
    }
    let file = dir.join("site.yaml");
    std::fs::write(&file, text).unwrap();
    let host_root = dir.join("host");
    std::fs::create_dir_all(host_root.join("etc")).unwrap();
    std::fs::write(
        host_root.join("etc/machine-id"),
        "0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    DemoSite {
        file,
        state: state.to_path_buf(),
        host_root,
    }
}

impl DemoSite {
    /// `airgap-install --state-dir STATE` with the site's environment.
    pub fn installer(&self) -> Command {
        let mut c = Command::new(bin("airgap-install"));
        c.arg("--state-dir")
            .arg(&self.state)
            .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config")
            .env("AIRGAP_INSTALL_HOST_ROOT", &self.host_root)
            .env("PLATFORM_OIDC_CLIENT_SECRET", "oidc-secret")
            .env("IMAGING_DB_PASSWORD", "imaging-secret")
            .env("HOME", "/nonexistent-home")
            .env_remove("RUST_LOG")
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("DOCKER_CONFIG");
        c
    }

    /// `install BUNDLE --site SITE --trust PUBLIC`.
    pub fn install(&self, bundle: &Path, public: &Path) -> Command {
        let mut c = self.installer();
        c.arg("install")
            .arg(bundle)
            .arg("--site")
            .arg(&self.file)
            .arg("--trust")
            .arg(public);
        c
    }

    /// `history --json`, parsed.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        ok(self.installer().args(["history", "--json"]))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `status --json`'s install records, parsed.
    pub fn status(&self) -> Vec<serde_json::Value> {
        let v = self.status_json();
        serde_json::from_value(v["installed"].clone()).unwrap()
    }

    /// `status --json`, parsed: `installed` and `unfinished`.
    pub fn status_json(&self) -> serde_json::Value {
        serde_json::from_str(&ok(self.installer().args(["status", "--json"]))).unwrap()
    }

    /// A licence for this site's node and product `demo`, issued by `key`
    /// (the vendor's ledger beside the key gives serials 1, 2, …).
    pub fn licence(&self, dir: &Path, key: &Path, name: &str) -> PathBuf {
        self.licence_for(dir, key, name, "demo", &[])
    }

    /// A licence for this site's node and `product`, issued by `key` with
    /// `extra` arguments (`--limit workspaces=5`), written as `dir/NAME.lic`.
    pub fn licence_for(
        &self,
        dir: &Path,
        key: &Path,
        name: &str,
        product: &str,
        extra: &[&str],
    ) -> PathBuf {
        let req = dir.join(format!("{name}.request.json"));
        ok(self
            .installer()
            .args(["license", "request", "--product", product, "--out"])
            .arg(&req));
        let lic = dir.join(format!("{name}.lic"));
        ok(Command::new(bin("airgap-bundle"))
            .args(["license", "issue", "--request"])
            .arg(&req)
            .arg("--key")
            .arg(key)
            .args(["--customer", "Example Research", "--expires", "2099-01-01"])
            .args(extra)
            .arg("--out")
            .arg(&lic));
        lic
    }
}

/// The audit records of a whole install run without --apply of a bundle
/// that carries no licence: (step, outcome).
pub const FULL_RUN: &[(&str, &str)] = &[
    ("install", "started"),
    ("preflight", "ok"),
    ("verify", "ok"),
    ("license", "skipped"),
    ("push", "ok"),
    ("render", "ok"),
    ("apply", "skipped"),
    ("health", "skipped"),
    ("record", "ok"),
    ("install", "ok"),
];

/// Owned (step, outcome) pairs, to compare with [`steps`].
pub fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// (step, outcome) of audit records (`history --json` lines).
pub fn steps(records: &[serde_json::Value]) -> Vec<(String, String)> {
    records
        .iter()
        .map(|r| {
            (
                r["step"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Builds release `version` of the demo (its images, chart, files and
/// templates; `extra_image` an `oci-layout:PATH:REF` source added to it;
/// `licence` carried when given) into `dir`, without SBOMs.
pub fn demo_release(
    dir: &Path,
    key: &Path,
    version: &str,
    extra_image: Option<&str>,
    licence: Option<&Path>,
) -> PathBuf {
    let demo = repo_root().join("manifests/demo.yaml");
    let demo_dir = repo_root().join("manifests/demo");
    let mut text = std::fs::read_to_string(&demo)
        .unwrap()
        .replace("version: 1.0.0", &format!("version: {version}"))
        .replace(
            "source: oci-layout:demo/",
            &format!("source: oci-layout:{}/", demo_dir.display()),
        )
        .replace(
            "source: docker-archive:demo/",
            &format!("source: docker-archive:{}/", demo_dir.display()),
        )
        .replace("source: demo/", &format!("source: {}/", demo_dir.display()));
    if let Some(src) = extra_image {
        text = text.replace("charts:\n", &format!("  - source: {src}\ncharts:\n"));
    }
    if let Some(l) = licence {
        text.push_str(&format!("license: {}\n", l.display()));
    }
    let manifest = dir.join(format!("demo-{version}.yaml"));
    std::fs::write(&manifest, text).unwrap();
    let out = dir.join(format!("demo-{version}.bundle"));
    ok(build_cmd(&manifest, key, &out).arg("--skip-sbom"));
    out
}
