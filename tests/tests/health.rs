//! `airgap-install health` against a real HTTPS server (rustls, certificate
//! from a test CA): healthy and failing endpoints, TLS trust, timeouts,
//! refused connections, JSON output. The checks are the reference profile's
//! (`templates/profile.yaml`) filled in for each test site, written as the
//! `plan.json` render writes (`--plan`); the site file gives the internal
//! CA (`--site`). The site files name secret files that do not exist and
//! environment variables that are not set: health reads no secret.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use airgap_e2e::harness::bin;
use airgap_e2e::https_server::HttpsServer;
use serde_json::Value;
use tempfile::TempDir;

/// One workspace of a test site: name and URL.
type Ws<'a> = (&'a str, &'a str);

/// A site file modelled on manifests/site.example.yaml.
fn site_yaml(scenario: &str, cp_url: &str, workspaces: &[Ws], internal_ca: Option<&str>) -> String {
    let mut y = String::new();
    y.push_str("siteVersion: 1\nname: health-test\n");
    y.push_str(&format!("scenario: {scenario}\nnamespace: platform\n"));
    if let Some(ca) = internal_ca {
        y.push_str(&format!("internalCa: {ca}\n"));
    }
    y.push_str("registry:\n  host: registry.internal.example:5000\n  prefix: platform\n");
    y.push_str(&format!("controlPlane:\n  url: {cp_url}\n"));
    if scenario == "air-gapped" {
        y.push_str(
            "  ingressHost: cp.internal.example
  database:
    type: postgresql
    host: db.internal.example
    port: 5432
    name: control_plane
    user: control_plane
    sslMode: verify-full
    password:
      file: site-secrets/control-plane-db.password
identityProvider:
  type: oidc
  oidc:
    issuerUrl: https://sso.internal.example/realms/research
    clientId: platform
    clientSecret:
      env: AIRGAP_HEALTH_TEST_UNSET_OIDC_SECRET
",
        );
    }
    y.push_str(
        "secretsStore:
  type: vault
  vault:
    url: https://vault.internal.example:8200
artifactStore:
  type: s3
  s3:
    endpoint: https://objects.internal.example
    bucket: platform-artifacts
dashboard:
  ingressHost: platform.internal.example
workspaces:
",
    );
    for (name, url) in workspaces {
        y.push_str(&format!(
            "  - name: {name}
    url: {url}
    database:
      type: postgresql
      host: db.internal.example
      name: ws_{name}
      user: ws_{name}
      sslMode: require
      password:
        file: site-secrets/{name}-db.password
    enrollmentToken:
      file: /nonexistent/site-secrets/{name}.token
"
        ));
    }
    y.push_str("monitoring:\n  metricsPort: 9090\n");
    if scenario == "air-gapped" {
        y.push_str("license:\n  file: site-secrets/platform.lic\n");
    }
    y
}

/// A temporary folder holding `site.yaml` and (when asked) the test CA as
/// `ca/internal-ca.pem`, referred to relatively. No `site-secrets/` exists.
struct Site {
    dir: TempDir,
}

impl Site {
    fn new(server: Option<&HttpsServer>, scenario: &str, cp_url: &str, ws: &[Ws]) -> Site {
        let dir = TempDir::new().expect("temp dir");
        let ca = server.map(|s| {
            std::fs::create_dir_all(dir.path().join("ca")).expect("mkdir ca");
            s.write_ca(&dir.path().join("ca/internal-ca.pem"));
            "ca/internal-ca.pem"
        });
        let yaml = site_yaml(scenario, cp_url, ws, ca);
        std::fs::write(dir.path().join("site.yaml"), &yaml).expect("write site.yaml");
        // The checks render lists in plan.json: the reference profile's,
        // filled in for this site.
        let profile = airgap_profile::Profile::parse(include_str!("../../templates/profile.yaml"))
            .expect("the reference profile");
        let site: Value = serde_saphyr::from_str(&yaml).expect("site YAML");
        let checks = profile.health_targets(&site).expect("health checks");
        std::fs::write(
            dir.path().join("plan.json"),
            serde_json::json!({"planVersion": 1, "healthChecks": checks}).to_string(),
        )
        .expect("write plan.json");
        assert!(!dir.path().join("site-secrets").exists());
        Site { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("site.yaml")
    }

    fn health(&self, extra: &[&str]) -> Output {
        health_cmd(&self.path(), extra)
    }
}

fn health_cmd(site: &Path, extra: &[&str]) -> Output {
    let mut c = Command::new(bin("airgap-install"));
    let plan = site.parent().expect("the site's folder");
    c.arg("health")
        .arg("--site")
        .arg(site)
        .arg("--plan")
        .arg(plan)
        .args(extra);
    airgap_e2e::harness::without_proxies(&mut c).env_remove("AIRGAP_HEALTH_TEST_UNSET_OIDC_SECRET");
    c.env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config");
    c.output().expect("run airgap-install health")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The table row for `name` (the line starting with it).
fn row<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{out}"))
}

/// Asserts exit 1 with one `error:` line on stderr naming the failures.
fn assert_failed(o: &Output, failed: usize, total: usize) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {}\nstderr: {err}",
        stdout(o)
    );
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    assert_eq!(
        lines[0],
        format!("error: {failed} of {total} health checks failed")
    );
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn healthy_server() -> HttpsServer {
    let s = HttpsServer::start();
    s.route("/cp/health", 200, r#"{"status":"ok"}"#);
    s.route("/ws/genomics/health", 200, "OK\n");
    s.route("/ws/imaging/health", 200, r#"{"status":"UP","checks":[]}"#);
    s
}

fn urls(s: &HttpsServer) -> (String, String, String) {
    (
        format!("{}/cp", s.url()),
        format!("{}/ws/genomics/", s.url()),
        format!("{}/ws/imaging", s.url()),
    )
}

#[test]
fn all_healthy() {
    let server = healthy_server();
    let (cp, g, i) = urls(&server);
    let site = Site::new(
        Some(&server),
        "air-gapped",
        &cp,
        &[("genomics", &g), ("imaging", &i)],
    );
    let o = site.health(&[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 5, "{out}");
    for col in ["NAME", "URL", "RESULT", "TIME"] {
        assert!(lines[0].contains(col), "{out}");
    }
    assert!(lines[0].starts_with("NAME "), "{out}");
    assert!(lines[1].starts_with("control-plane "), "{out}");
    assert!(lines[2].starts_with("workspace/genomics "), "{out}");
    assert!(lines[3].starts_with("workspace/imaging "), "{out}");
    for (name, url) in [
        ("control-plane", format!("{}/cp/health", server.url())),
        (
            "workspace/genomics",
            format!("{}/ws/genomics/health", server.url()),
        ),
        (
            "workspace/imaging",
            format!("{}/ws/imaging/health", server.url()),
        ),
    ] {
        let r = row(&out, name);
        assert!(r.contains(&url), "{r}");
        assert!(r.contains(" OK "), "{r}");
        assert!(r.ends_with(" ms"), "{r}");
    }
    assert_eq!(lines[4], "3 of 3 healthy");
    let mut asked = server.requests();
    asked.sort();
    assert_eq!(
        asked,
        ["/cp/health", "/ws/genomics/health", "/ws/imaging/health"]
    );
}

#[test]
fn failing_workspaces_are_named_with_reasons() {
    let server = HttpsServer::start();
    server.route("/cp/health", 200, r#"{"status":"healthy"}"#);
    server.route("/ws/genomics/health", 503, r#"{"status":"down"}"#);
    server.route("/ws/imaging/health", 200, r#"{"status":"degraded"}"#);
    let (cp, g, i) = urls(&server);
    let site = Site::new(
        Some(&server),
        "air-gapped",
        &cp,
        &[("genomics", &g), ("imaging", &i)],
    );
    let o = site.health(&[]);
    assert_failed(&o, 2, 3);
    let out = stdout(&o);
    assert!(row(&out, "control-plane").contains(" OK "), "{out}");
    let g = row(&out, "workspace/genomics");
    assert!(g.contains("FAILED: HTTP 503"), "{g}");
    let i = row(&out, "workspace/imaging");
    assert!(i.contains(r#"FAILED: reports status "degraded""#), "{i}");
    assert_eq!(out.lines().last(), Some("1 of 3 healthy"));
}

#[test]
fn without_internal_ca_the_certificate_is_not_trusted() {
    let server = healthy_server();
    let (cp, g, i) = urls(&server);
    let site = Site::new(
        None,
        "air-gapped",
        &cp,
        &[("genomics", &g), ("imaging", &i)],
    );
    let o = site.health(&[]);
    assert_failed(&o, 3, 3);
    let out = stdout(&o);
    for name in ["control-plane", "workspace/genomics", "workspace/imaging"] {
        assert!(
            row(&out, name).contains("FAILED: TLS: certificate not trusted (is internalCa set?)"),
            "{out}"
        );
    }
    // The handshake failed: no request reached the server.
    assert!(server.requests().is_empty());
}

#[test]
fn certificate_for_another_host() {
    let server = HttpsServer::start_for(&["cp.internal.example"]);
    server.route("/health", 200, "ok");
    let site = Site::new(
        Some(&server),
        "hybrid",
        &server.url(),
        &[("genomics", &server.url())],
    );
    let o = site.health(&[]);
    assert_failed(&o, 2, 2);
    let out = stdout(&o);
    assert!(
        row(&out, "control-plane").contains("FAILED: TLS: certificate is for another host"),
        "{out}"
    );
}

#[test]
fn stalled_endpoints_time_out_concurrently() {
    let server = healthy_server();
    server.route_delayed("/ws/imaging/health", 200, "{}", Duration::from_secs(8));
    let (cp, g, i) = urls(&server);
    let site = Site::new(
        Some(&server),
        "air-gapped",
        &cp,
        &[("genomics", &g), ("imaging", &i)],
    );
    let start = Instant::now();
    let o = site.health(&["--timeout", "1"]);
    let took = start.elapsed();
    assert_failed(&o, 1, 3);
    let out = stdout(&o);
    let r = row(&out, "workspace/imaging");
    assert!(r.contains("FAILED: timed out after 1s"), "{r}");
    assert!(row(&out, "control-plane").contains(" OK "), "{out}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // Every endpoint stalls: the checks run at once, so the whole run takes
    // about one timeout, not three.
    for path in ["/cp/health", "/ws/genomics/health"] {
        server.route_delayed(path, 200, "{}", Duration::from_secs(8));
    }
    let start = Instant::now();
    let o = site.health(&["--timeout", "1", "--json"]);
    let took = start.elapsed();
    assert_failed(&o, 3, 3);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    for c in v["checks"].as_array().expect("checks") {
        assert_eq!(c["reason"], "timed out after 1s", "{c}");
        assert!(c["status"].is_null(), "{c}");
        let ms = c["millis"].as_u64().expect("millis");
        assert!((900..2500).contains(&ms), "{c}");
    }
    assert!(took < Duration::from_millis(2800), "took {took:?}");
}

#[test]
fn closed_port_is_refused() {
    let server = healthy_server();
    let (cp, g, _) = urls(&server);
    let closed = format!("https://127.0.0.1:{}/ws/imaging", closed_port());
    let site = Site::new(
        Some(&server),
        "air-gapped",
        &cp,
        &[("genomics", &g), ("imaging", &closed)],
    );
    let o = site.health(&[]);
    assert_failed(&o, 1, 3);
    let out = stdout(&o);
    let r = row(&out, "workspace/imaging");
    assert!(r.contains("FAILED: connection refused"), "{r}");
    assert!(r.contains(&format!("{closed}/health")), "{r}");
}

#[test]
fn json_output() {
    let server = HttpsServer::start();
    server.route("/cp/health", 200, r#"{"status":"pass"}"#);
    server.route("/ws/genomics/health", 503, "busy");
    server.route("/ws/imaging/health", 200, r#"{"status":"Up"}"#);
    let (cp, g, i) = urls(&server);
    // A hybrid site: the external control plane is checked too.
    let site = Site::new(
        Some(&server),
        "hybrid",
        &cp,
        &[("genomics", &g), ("imaging", &i)],
    );
    let o = site.health(&["--json"]);
    assert_failed(&o, 1, 3);
    let v: Value = serde_json::from_str(&stdout(&o)).expect("stdout is one JSON document");
    assert_eq!(v["healthy"], false);
    let checks = v["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 3);
    let expect = [
        ("control-plane", "/cp/health", true, 200),
        ("workspace/genomics", "/ws/genomics/health", false, 503),
        ("workspace/imaging", "/ws/imaging/health", true, 200),
    ];
    for (c, (name, path, ok, status)) in checks.iter().zip(expect) {
        let keys: Vec<&str> = c
            .as_object()
            .expect("object")
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, ["millis", "name", "ok", "reason", "status", "url"]);
        assert_eq!(c["name"], name);
        assert_eq!(c["url"], format!("{}{path}", server.url()));
        assert_eq!(c["ok"], ok);
        assert_eq!(c["status"], status);
        assert!(c["millis"].is_u64(), "{c}");
        if ok {
            assert!(c["reason"].is_null(), "{c}");
        } else {
            assert_eq!(c["reason"], "HTTP 503");
        }
    }

    // All healthy: exit 0, healthy true, nothing on stderr.
    server.route("/ws/genomics/health", 200, "");
    let o = site.health(&["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    let v: Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["healthy"], true);
    assert!(v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .all(|c| c["ok"] == true && c["reason"].is_null()));
}

#[test]
fn unreadable_internal_ca_is_one_error() {
    let server = healthy_server();
    let (cp, g, _) = urls(&server);
    let site = Site::new(Some(&server), "hybrid", &cp, &[("genomics", &g)]);
    std::fs::remove_file(site.dir.path().join("ca/internal-ca.pem")).expect("remove CA");
    let o = site.health(&[]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains("internalCa: ") && err.contains("cannot read"),
        "{err}"
    );
    assert!(err.contains("internal-ca.pem"), "{err}");
}

#[test]
fn unknown_host_is_a_dns_failure() {
    let server = healthy_server();
    let (cp, g, _) = urls(&server);
    // RFC 6761: .invalid names never resolve.
    let site = Site::new(
        Some(&server),
        "hybrid",
        &cp,
        &[
            ("genomics", &g),
            ("imaging", "https://imaging.airgap-test.invalid"),
        ],
    );
    let o = site.health(&[]);
    assert_failed(&o, 1, 3);
    let out = stdout(&o);
    let r = row(&out, "workspace/imaging");
    assert!(
        r.contains("FAILED: DNS: cannot resolve imaging.airgap-test.invalid"),
        "{r}"
    );
}
