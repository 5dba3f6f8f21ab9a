//! The registry harness itself: a real `docker-registry` (plain HTTP, and
//! TLS with a generated CA plus htpasswd auth) accepts the demo OCI image
//! from stock skopeo, serves it back with its digest unchanged, refuses
//! anonymous access when auth is on, and keeps its data across a kill and
//! restart on the same port.

use std::process::Command;

use airgap_e2e::harness::*;
use airgap_e2e::registry::Registry;
use airgap_e2e::DEMO_WEB_REF;

/// The digest `index.json` of the demo OCI layout gives for [`DEMO_WEB_REF`].
fn demo_web_digest() -> String {
    let path = repo_root().join("manifests/demo/images/web-oci/index.json");
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == DEMO_WEB_REF)
        .unwrap_or_else(|| panic!("{DEMO_WEB_REF} not in {}", path.display()))["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `skopeo copy --all` of the demo OCI image into `reg` as [`DEMO_WEB_REF`].
/// `--preserve-digests`: without it skopeo gzips the uncompressed base layer
/// on the way to a registry, which rewrites the manifests and the index.
fn push_demo_web(reg: &Registry) {
    let src = repo_root().join("manifests/demo/images/web-oci");
    let out = run(Command::new("skopeo")
        .args(["copy", "--all", "--preserve-digests", "--quiet"])
        .args(reg.skopeo_dest_args())
        .arg(format!("oci:{}:{DEMO_WEB_REF}", src.display()))
        .arg(reg.docker_ref(DEMO_WEB_REF)));
    assert!(
        out.status.success(),
        "skopeo copy to {} failed ({}):\n{}\n{}",
        reg.addr(),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        reg.log_tail()
    );
}

/// Push, read back, kill, restart, read back again.
fn round_trip(mut reg: Registry) {
    let want = demo_web_digest();
    assert_eq!(reg.skopeo_inspect_raw_digest(DEMO_WEB_REF), None);
    push_demo_web(&reg);
    assert_eq!(
        reg.skopeo_inspect_raw_digest(DEMO_WEB_REF).as_deref(),
        Some(want.as_str())
    );
    assert_eq!(reg.skopeo_inspect_raw_digest("demo/web:absent"), None);
    assert_eq!(reg.skopeo_inspect_raw_digest("demo/absent:1"), None);

    let addr = reg.addr();
    reg.stop();
    assert!(!reg.is_running());
    reg.stop(); // idempotent
    reg.restart();
    assert!(reg.is_running());
    assert_eq!(reg.addr(), addr, "restart keeps the port");
    assert_eq!(
        reg.skopeo_inspect_raw_digest(DEMO_WEB_REF).as_deref(),
        Some(want.as_str()),
        "restart keeps the storage"
    );
    // restart() also works on a running registry.
    reg.restart();
    assert_eq!(
        reg.skopeo_inspect_raw_digest(DEMO_WEB_REF).as_deref(),
        Some(want.as_str())
    );
    assert!(reg.log().contains("restarting registry"));
}

#[test]
fn plain_registry_round_trip() {
    require_tool("skopeo");
    let reg = Registry::start_plain();
    assert!(!reg.is_tls());
    assert_eq!(reg.ca_pem_path(), None);
    assert_eq!(reg.cert_dir(), None);
    assert_eq!(reg.credentials(), None);
    assert_eq!(reg.skopeo_args(), vec!["--tls-verify=false".to_string()]);
    assert!(reg.addr().starts_with("127.0.0.1:"));
    assert_eq!(reg.http_status("/v2/", false), 200);
    assert!(reg.log().contains("listening on"), "{}", reg.log());
    round_trip(reg);
}

#[test]
fn tls_auth_registry_round_trip() {
    require_tool("skopeo");
    let reg = Registry::start_tls_auth("alice", "correct horse");
    assert!(reg.is_tls());
    assert!(reg.url().starts_with("https://127.0.0.1:"));
    let cert_dir = reg.cert_dir().unwrap();
    assert!(cert_dir.join("ca.crt").is_file());
    assert!(reg.ca_pem_path().unwrap().is_file());
    assert_eq!(
        std::fs::read(reg.ca_pem_path().unwrap()).unwrap(),
        std::fs::read(cert_dir.join("ca.crt")).unwrap()
    );
    assert_eq!(
        reg.credentials(),
        Some(("alice".to_string(), "correct horse".to_string()))
    );

    // Anonymous requests are refused; the right credentials are accepted.
    assert_eq!(reg.http_status("/v2/", false), 401);
    assert_eq!(reg.http_status("/v2/_catalog", false), 401);
    assert_eq!(reg.http_status("/v2/", true), 200);

    round_trip(reg);
}

#[test]
fn tls_registry_refuses_wrong_or_missing_credentials() {
    require_tool("skopeo");
    let reg = Registry::start_tls_auth("alice", "correct horse");
    push_demo_web(&reg);
    let cert_dir = reg.cert_dir().unwrap();
    let image = reg.docker_ref(DEMO_WEB_REF);

    // No credentials at all (and no auth file that could supply some).
    let tmp = tempfile::tempdir().unwrap();
    let no_auth = tmp.path().join("auth.json");
    std::fs::write(&no_auth, "{}").unwrap();
    let out = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--authfile"])
        .arg(&no_auth)
        .arg("--cert-dir")
        .arg(&cert_dir)
        .arg(&image));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("401") || stderr.contains("authentication required"),
        "{stderr}"
    );

    // Wrong password.
    let out = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--creds", "alice:wrong", "--cert-dir"])
        .arg(&cert_dir)
        .arg(&image));
    assert!(!out.status.success());

    // Without the CA, TLS verification fails.
    let out = run(Command::new("skopeo")
        .args(["inspect", "--raw", "--creds", "alice:correct horse"])
        .arg(&image));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("certificate"), "{stderr}");
}

#[test]
fn registries_get_distinct_ports_and_dirs() {
    let a = Registry::start_plain();
    let b = Registry::start_plain();
    assert_ne!(a.addr(), b.addr());
    assert_ne!(a.storage_dir(), b.storage_dir());
    let dir = a.dir().to_path_buf();
    drop(a);
    assert!(!dir.exists(), "the temp dir goes with the registry");
    assert_eq!(b.http_status("/v2/", false), 200);
}
