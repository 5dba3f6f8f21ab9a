//! `airgap-install push` against real registries (Debian's docker-registry),
//! checked with skopeo as an independent client.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use airgap_e2e::harness::*;
use airgap_e2e::registry::Registry;
use airgap_format::BundleDescriptor;

fn descriptor(bundle: &Path) -> BundleDescriptor {
    let r = airgap_format::ArchiveReader::open(bundle, airgap_format::Limits::default()).unwrap();
    r.read_descriptor_unverified().unwrap().1
}

fn relocation(map: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(map).unwrap()).unwrap()
}

#[test]
fn push_to_plain_registry_keeps_digests_and_reruns_skip_everything() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let d = descriptor(&bundle);
    let reg = Registry::start_plain();
    let map = tmp.path().join("map.json");
    let target = format!("{}/site", reg.addr());
    let out = ok(push_cmd(&bundle, &public, &target, &map).arg("--plain-http"));
    assert!(out.contains("pushed"), "{out}");
    for img in &d.images {
        let got = reg.skopeo_inspect_raw_digest(&format!("site/{}", img.reference));
        assert_eq!(
            got.as_deref(),
            Some(img.digest.to_string().as_str()),
            "{}",
            img.reference
        );
        // Every platform copies out, blobs and all.
        let dest = tmp
            .path()
            .join(format!("copy-{}", img.name.replace('/', "_")));
        let mut c = Command::new("skopeo");
        c.args(["copy", "--all", "-q"]).args(reg.skopeo_src_args());
        c.arg(reg.docker_ref(&format!("site/{}", img.reference)));
        c.arg(format!("dir:{}", dest.display()));
        ok(&mut c);
    }
    let m = relocation(&map);
    assert_eq!(m["bundle"], "demo");
    assert_eq!(
        m["images"][0]["pinned"],
        format!("{}/site/demo/web@{}", reg.addr(), d.images[0].digest)
    );
    assert_eq!(m["images"][0]["status"], "pushed");

    // The chart is an OCI artifact that the real Helm pulls back, byte for byte.
    let chart = &d.charts[0];
    assert_eq!(
        reg.skopeo_inspect_raw_digest("site/charts/hello:0.1.0")
            .as_deref(),
        Some(chart.manifest.to_string().as_str())
    );
    assert_eq!(
        m["charts"][0]["repository"],
        format!("{}/site/charts/hello", reg.addr())
    );
    let pulled = tmp.path().join("pulled");
    std::fs::create_dir_all(&pulled).unwrap();
    let helm_home = tmp.path().join("helm-home");
    ok(Command::new(helm())
        .args(["pull", &format!("oci://{}/site/charts/hello", reg.addr())])
        .args(["--version", "0.1.0", "--plain-http", "--destination"])
        .arg(&pulled)
        .env("HOME", &helm_home)
        .env("HELM_CACHE_HOME", helm_home.join("cache"))
        .env("HELM_CONFIG_HOME", helm_home.join("config"))
        .env("HELM_DATA_HOME", helm_home.join("data")));
    let tgz = std::fs::read(pulled.join("hello-0.1.0.tgz")).unwrap();
    assert_eq!(airgap_format::Digest::of(&tgz), chart.digest);

    // A second run finds everything in place and uploads nothing.
    let json = ok(push_cmd(&bundle, &public, &target, &map)
        .arg("--plain-http")
        .arg("--json"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["blobsUploaded"], 0);
    assert_eq!(v["relocation"]["images"][1]["status"], "unchanged");
}

#[test]
fn push_to_tls_registry_with_basic_auth() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let d = descriptor(&bundle);
    let reg = Registry::start_tls_auth("operator", "correct horse");
    let ca = reg.ca_pem_path().unwrap();
    let map = tmp.path().join("map.json");

    // Without the site CA, TLS fails clearly.
    let line = fails(&mut push_cmd(&bundle, &public, &reg.addr(), &map));
    assert!(
        line.to_lowercase().contains("certificate") || line.contains("tls"),
        "{line}"
    );
    // Without credentials, the registry's challenge is named.
    let line = fails(
        push_cmd(&bundle, &public, &reg.addr(), &map)
            .arg("--ca-file")
            .arg(&ca),
    );
    assert!(line.contains("user name and password"), "{line}");
    assert!(!map.exists());

    // With --username and --password-stdin.
    let mut c = push_cmd(&bundle, &public, &reg.addr(), &map);
    c.arg("--ca-file")
        .arg(&ca)
        .args(["--username", "operator", "--password-stdin"]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"correct horse\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for img in &d.images {
        assert_eq!(
            reg.skopeo_inspect_raw_digest(&img.reference).as_deref(),
            Some(img.digest.to_string().as_str())
        );
    }

    // Credentials from an auth file (REGISTRY_AUTH_FILE, Podman's format).
    let auth = tmp.path().join("auth.json");
    let token = base64_encode(b"operator:correct horse");
    std::fs::write(
        &auth,
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{token}\"}}}}}}",
            reg.addr()
        ),
    )
    .unwrap();
    let json = ok(push_cmd(&bundle, &public, &reg.addr(), &map)
        .arg("--ca-file")
        .arg(&ca)
        .arg("--json")
        .env("REGISTRY_AUTH_FILE", &auth));
    assert!(json.contains("\"unchanged\""), "{json}");
}

fn base64_encode(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// A bundle whose image `demo/web:1.0.0` is in fact another image.
fn impostor_bundle(dir: &Path, key: &Path) -> PathBuf {
    let m = dir.join("impostor.yaml");
    std::fs::write(
        &m,
        format!(
            "name: impostor\nversion: 2.0.0\nimages:\n  - source: oci-layout:{}:vendor/dashboard:1.4.0\n    name: demo/web\n    tag: 1.0.0\n",
            repo_root().join("manifests/reference/images/platform-oci").display()
        ),
    )
    .unwrap();
    let out = dir.join("impostor.bundle");
    ok(&mut build_cmd(&m, key, &out));
    out
}

#[test]
fn existing_tags_are_failed_skipped_or_overwritten_as_asked() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, key, public) = demo_bundle(tmp.path());
    let web = descriptor(&bundle).images[0].digest.to_string();
    let other = impostor_bundle(tmp.path(), &key);
    let other_digest = descriptor(&other).images[0].digest.to_string();
    let reg = Registry::start_plain();
    let map = tmp.path().join("map.json");
    ok(push_cmd(&bundle, &public, &reg.addr(), &map).arg("--plain-http"));

    let line = fails(push_cmd(&other, &public, &reg.addr(), &map).arg("--plain-http"));
    assert!(line.contains("demo/web:1.0.0 already points at"), "{line}");
    assert_eq!(
        reg.skopeo_inspect_raw_digest("demo/web:1.0.0"),
        Some(web.clone())
    );

    ok(push_cmd(&other, &public, &reg.addr(), &map).args([
        "--plain-http",
        "--on-existing-tag",
        "skip",
    ]));
    assert_eq!(
        reg.skopeo_inspect_raw_digest("demo/web:1.0.0"),
        Some(web.clone())
    );
    assert_eq!(relocation(&map)["images"][0]["status"], "tag-kept");
    // Pushed by digest all the same.
    assert_eq!(
        reg.skopeo_inspect_raw_digest(&format!("demo/web@{other_digest}")),
        Some(other_digest.clone())
    );

    ok(push_cmd(&other, &public, &reg.addr(), &map).args([
        "--plain-http",
        "--on-existing-tag",
        "overwrite",
    ]));
    assert_eq!(
        reg.skopeo_inspect_raw_digest("demo/web:1.0.0"),
        Some(other_digest)
    );
}

/// A bundle with one image of one large gzip layer (chunked upload path).
fn large_bundle(dir: &Path, key: &Path, bytes: &str) -> PathBuf {
    let layout = dir.join("big");
    ok(Command::new(bin("gen-fixtures"))
        .args(["bench-layout"])
        .arg(&layout)
        .args(["--size", bytes, "--layers", "1"]));
    let m = dir.join("big.yaml");
    std::fs::write(
        &m,
        "name: big\nversion: 1.0.0\nimages:\n  - source: oci-layout:big:bench/big:1.0\n",
    )
    .unwrap();
    let out = dir.join("big.bundle");
    ok(&mut build_cmd(&m, key, &out));
    out
}

#[test]
fn large_blobs_go_in_chunks_and_a_killed_registry_is_resumed_by_a_rerun() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "k");
    let bundle = large_bundle(tmp.path(), &key, "96M");
    let digest = descriptor(&bundle).images[0].digest.to_string();
    let mut reg = Registry::start_plain();
    let map = tmp.path().join("map.json");

    // Kill the registry while the push runs.
    let child = push_cmd(&bundle, &public, &reg.addr(), &map)
        .args(["--plain-http", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    reg.stop();
    let out = child.wait_with_output().unwrap();
    reg.restart();
    eprintln!(
        "push during the kill: {} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        // Tags go last: the killed run left no tag pointing at missing content.
        assert_eq!(reg.skopeo_inspect_raw_digest("bench/big:1.0"), None);
    }
    // Simply running again completes the push.
    ok(push_cmd(&bundle, &public, &reg.addr(), &map).arg("--plain-http"));
    assert_eq!(reg.skopeo_inspect_raw_digest("bench/big:1.0"), Some(digest));
    let mut c = Command::new("skopeo");
    c.args(["copy", "-q"]).args(reg.skopeo_src_args());
    c.arg(reg.docker_ref("bench/big:1.0"))
        .arg(format!("dir:{}", tmp.path().join("out").display()));
    ok(&mut c);
}

#[test]
fn push_completes_through_injected_faults() {
    use airgap_e2e::fault_proxy::{Fault, FaultProxy};
    use std::time::Duration;
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, key, public) = demo_bundle(tmp.path());
    let big = large_bundle(tmp.path(), &key, "40M");
    let reg = Registry::start_plain();
    // 500s, 429s, resets and a stall, spread over the requests; no request
    // (method and path, whatever the query) fails more than twice, fewer
    // than the installer retries, however the parallel requests interleave.
    let seen = std::sync::Mutex::new(std::collections::HashMap::<String, u32>::new());
    let proxy = FaultProxy::start(
        &reg.addr(),
        Box::new(move |n, method, path| {
            let fault = match n % 10 {
                1 => Fault::Status(500),
                3 => Fault::Status(429),
                5 => Fault::Reset,
                7 if n < 20 => Fault::Stall(Duration::from_millis(1500)),
                8 => Fault::Status(503),
                _ => Fault::Pass,
            };
            if fault == Fault::Pass {
                return fault;
            }
            let key = format!("{method} {}", path.split('?').next().unwrap_or(path));
            let mut seen = seen.lock().unwrap();
            let times = seen.entry(key).or_default();
            if *times >= 2 {
                return Fault::Pass;
            }
            *times += 1;
            fault
        }),
    );
    let map = tmp.path().join("map.json");
    for b in [&bundle, &big] {
        ok(push_cmd(b, &public, &proxy.addr(), &map).arg("--plain-http"));
        for img in &descriptor(b).images {
            assert_eq!(
                reg.skopeo_inspect_raw_digest(&img.reference).as_deref(),
                Some(img.digest.to_string().as_str()),
                "{}",
                img.reference
            );
        }
    }
    let faults = proxy
        .requests()
        .iter()
        .filter(|r| r.2 != Fault::Pass)
        .count();
    assert!(faults >= 10, "only {faults} faults were injected");
}

#[test]
fn a_failing_registry_gives_a_clear_error_and_never_a_tag_without_content() {
    use airgap_e2e::fault_proxy::{Fault, FaultProxy};
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let reg = Registry::start_plain();
    // Every layer upload fails: manifests and tags must never be written.
    let proxy = FaultProxy::start(
        &reg.addr(),
        Box::new(|_, method, path| {
            if method == "PUT" && path.contains("/blobs/uploads/") {
                Fault::Status(500)
            } else {
                Fault::Pass
            }
        }),
    );
    let map = tmp.path().join("map.json");
    let line = fails(push_cmd(&bundle, &public, &proxy.addr(), &map).arg("--plain-http"));
    assert!(
        line.contains("blob sha256:") && line.contains("HTTP 500"),
        "{line}"
    );
    assert!(!map.exists());
    assert!(proxy
        .requests()
        .iter()
        .all(|(m, p, _)| !(m == "PUT" && p.contains("/manifests/"))));
    for img in &descriptor(&bundle).images {
        assert_eq!(reg.skopeo_inspect_raw_digest(&img.reference), None);
    }
}

#[test]
fn a_wrong_password_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let reg = Registry::start_tls_auth("operator", "right");
    let map = tmp.path().join("map.json");
    let mut c = push_cmd(&bundle, &public, &reg.addr(), &map);
    c.arg("--ca-file").arg(reg.ca_pem_path().unwrap()).args([
        "--username",
        "operator",
        "--password-stdin",
    ]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"wrong\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("authentication failed"), "{stderr}");
}

#[test]
fn untrusted_or_damaged_bundles_are_refused_without_leaving_tags() {
    use airgap_e2e::fault_proxy::{Fault, FaultProxy};
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let (_, other) = keygen(tmp.path(), "other");
    let reg = Registry::start_plain();
    let proxy = FaultProxy::start(&reg.addr(), Box::new(|_, _, _| Fault::Pass));
    let map = tmp.path().join("map.json");

    // Signed by a key the site does not trust: refused before any request.
    let line = fails(push_cmd(&bundle, &other, &proxy.addr(), &map).arg("--plain-http"));
    assert!(line.contains("unknown key"), "{line}");
    assert!(proxy.requests().is_empty(), "{:?}", proxy.requests());

    // A blob damaged on the media: the push stops on it, and no tag appears.
    let r = airgap_format::ArchiveReader::open(&bundle, airgap_format::Limits::default()).unwrap();
    let d = r.read_descriptor_unverified().unwrap().1;
    let layer = d
        .blobs
        .iter()
        .find(|b| b.media_type.contains("layer"))
        .expect("a layer")
        .digest;
    let e = r
        .entries()
        .unwrap()
        .into_iter()
        .find(|e| e.path == layer.blob_path())
        .unwrap();
    let f = r
        .frames()
        .iter()
        .find(|f| {
            f.decompressed_offset <= e.data_offset
                && e.data_offset < f.decompressed_offset + f.decompressed_size as u64
        })
        .copied()
        .unwrap();
    let mut bytes = std::fs::read(&bundle).unwrap();
    // The layer's first data byte: its data frame starts with the 9-byte frame
    // header and a 3-byte block header (a stored frame, for a gzip layer).
    assert_eq!(f.decompressed_offset, e.data_offset);
    let at = (f.compressed_offset + 12) as usize;
    bytes[at] ^= 0x5a;
    let damaged = tmp.path().join("damaged.bundle");
    std::fs::write(&damaged, &bytes).unwrap();
    let line = fails(push_cmd(&damaged, &public, &proxy.addr(), &map).arg("--plain-http"));
    assert!(line.contains(&layer.to_string()), "{line}");
    for img in &d.images {
        assert_eq!(reg.skopeo_inspect_raw_digest(&img.reference), None);
    }
}
