//! `airgap-install preflight` against Debian's docker-registry with TLS and
//! htpasswd: a site that is ready passes; a wrong password, a missing
//! secret, a state folder on a tmpfs too small for the run, and `helm`
//! missing for `--apply` are all reported in one run, and nothing is
//! written to the registry or the state folder. Push rights are refused by
//! a loopback proxy in front of a plain registry that answers every upload
//! request 403 (the registry itself has no per-user write rights).

use std::path::Path;
use std::process::{Command, Stdio};

use airgap_e2e::demo_site::{demo_release, demo_site, DemoSite};
use airgap_e2e::fault_proxy::{Fault, FaultProxy};
use airgap_e2e::harness::*;
use airgap_e2e::registry::Registry;
use serde_json::Value;

/// The site file pointed at a TLS registry, trusting its CA.
fn tls_site(dir: &Path, reg: &Registry, state: &Path) -> DemoSite {
    let site = demo_site(dir, &reg.addr(), state, None);
    let text = std::fs::read_to_string(&site.file)
        .unwrap()
        .replace("\n  plainHttp: true", "");
    std::fs::write(&site.file, text).unwrap();
    std::fs::copy(
        reg.ca_pem_path().unwrap(),
        dir.join("site-secrets/internal-ca.pem"),
    )
    .unwrap();
    site
}

fn preflight(site: &DemoSite, bundle: &Path, public: &Path, password: Option<&str>) -> Command {
    let mut c = site.installer();
    c.arg("preflight")
        .arg(bundle)
        .arg("--site")
        .arg(&site.file)
        .arg("--trust")
        .arg(public)
        .arg("--json");
    if password.is_some() {
        c.args(["--username", "deploy", "--password-stdin"]);
    }
    c
}

/// Runs it with `password` on standard input; (exit code, report).
fn run_with(mut c: Command, password: Option<&str>) -> (i32, Value) {
    use std::io::Write;
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(p) = password {
        writeln!(stdin, "{p}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

fn row<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no check {check}: {report:#}"))
}

fn failed(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "failed")
        .map(|c| c["check"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn preflight_passes_a_ready_site_and_lists_every_problem_at_once() {
    require_tool("unshare");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let bundle = demo_release(tmp.path(), &key, "1.0.0", None, None);
    let mut reg = Registry::start_tls_auth("deploy", "right-password");

    // Ready: every row ok (the licence skipped: the bundle carries none).
    let site = tls_site(&tmp.path().join("a"), &reg, &tmp.path().join("a/state"));
    let (code, r) = run_with(
        preflight(&site, &bundle, &public, Some("right-password")),
        Some("right-password"),
    );
    assert_eq!(code, 0, "{r:#}");
    assert_eq!(r["ok"], true);
    for check in [
        "signature",
        "version",
        "registry",
        "registry login",
        "registry push rights",
        "registry content",
        "render",
        "space: state folder",
    ] {
        assert_eq!(row(&r, check)["outcome"], "ok", "{check}: {r:#}");
    }
    assert!(
        row(&r, "registry push rights")["detail"]
            .as_str()
            .unwrap()
            .contains("site/demo/"),
        "{r:#}"
    );
    // Nothing was pushed (the upload session was cancelled), nothing recorded.
    assert!(!site.state.exists(), "preflight created the state folder");
    assert_eq!(reg.http_status("/v2/site/demo/web/tags/list", true), 404);

    // Everything wrong at once: a wrong password, an unset secret, a state
    // folder on a tmpfs with 8 KiB left, and --apply without helm on the
    // PATH. Each is its own row, each failure names its fix.
    let small = SmallFs::mount("1m");
    small.fill(8 << 10);
    let b = tls_site(&tmp.path().join("b"), &reg, &small.path().join("state"));
    let mut c = preflight(&b, &bundle, &public, Some("wrong"));
    c.arg("--apply")
        .env_remove("IMAGING_DB_PASSWORD")
        .env("PATH", "/usr/bin:/bin");
    assert!(
        !Path::new("/usr/bin/helm").exists() && !Path::new("/bin/helm").exists(),
        "this test needs helm off /usr/bin and /bin"
    );
    let (code, r) = run_with(c, Some("wrong"));
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(r["ok"], false);
    let fails = failed(&r);
    for want in ["registry login", "space: state folder", "helm"] {
        assert!(fails.iter().any(|f| f == want), "{want} not failed: {r:#}");
    }
    let secret = row(&r, "secret workspaces[1].database.password");
    assert_eq!(secret["outcome"], "failed", "{r:#}");
    assert!(
        secret["detail"]
            .as_str()
            .unwrap()
            .contains("IMAGING_DB_PASSWORD is not set"),
        "{r:#}"
    );
    assert_eq!(row(&r, "render")["outcome"], "skipped", "{r:#}");
    assert!(
        row(&r, "registry login")["fix"]
            .as_str()
            .unwrap()
            .contains("user name and password"),
        "{r:#}"
    );
    assert!(
        row(&r, "helm")["detail"]
            .as_str()
            .unwrap()
            .contains("helm is not on the PATH"),
        "{r:#}"
    );
    let space = row(&r, "space: state folder")["detail"].as_str().unwrap();
    assert!(space.contains("free, needs"), "{space}");
    // The text report is the same table, with the fixes.
    let mut text = b.installer();
    text.arg("preflight")
        .arg(&bundle)
        .arg("--site")
        .arg(&b.file)
        .arg("--trust")
        .arg(&public)
        .env_remove("IMAGING_DB_PASSWORD");
    let out = run(&mut text);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("fix: "), "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("problems; nothing was changed")
            || String::from_utf8_lossy(&out.stderr).contains("problem; nothing was changed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(small.path()).unwrap().count(),
        1,
        "only the filler: preflight left something on the state's file system"
    );
    reg.stop();
}

#[test]
fn preflight_names_a_registry_that_refuses_pushes() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let bundle = demo_release(tmp.path(), &key, "1.0.0", None, None);
    let reg = Registry::start_plain();
    // A stand-in for an account with read-only rights: docker-registry's
    // htpasswd has no per-user write rights, so a loopback proxy answers
    // every upload request 403 DENIED, as a registry with access control would.
    let proxy = FaultProxy::start(
        &reg.addr(),
        Box::new(|_, method, path| {
            if method == "POST" && path.contains("/blobs/uploads/") {
                Fault::Status(403)
            } else {
                Fault::Pass
            }
        }),
    );
    let site = demo_site(tmp.path(), &proxy.addr(), &tmp.path().join("state"), None);
    let (code, r) = run_with(preflight(&site, &bundle, &public, None), None);
    assert_eq!(code, 1, "{r:#}");
    assert_eq!(
        failed(&r),
        vec!["registry push rights".to_string()],
        "{r:#}"
    );
    let row = row(&r, "registry push rights");
    assert!(
        row["detail"]
            .as_str()
            .unwrap()
            .contains("may not push to site/demo/")
            && row["detail"].as_str().unwrap().contains("HTTP 403"),
        "{r:#}"
    );
    assert!(
        row["fix"]
            .as_str()
            .unwrap()
            .contains("push rights on site/*"),
        "{r:#}"
    );
}
