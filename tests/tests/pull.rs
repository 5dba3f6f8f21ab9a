//! `airgap-bundle lock` and `build` pulling images and charts from real
//! registries (Debian's docker-registry, loaded with skopeo) and from a Helm
//! HTTP repository, through the digest-keyed cache.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use airgap_e2e::fault_proxy::{Fault, FaultProxy};
use airgap_e2e::file_server::FileServer;
use airgap_e2e::harness::*;
use airgap_e2e::registry::Registry;
use airgap_e2e::*;
use airgap_format::BundleDescriptor;

fn descriptor(bundle: &Path) -> BundleDescriptor {
    let r = airgap_format::ArchiveReader::open(bundle, airgap_format::Limits::default()).unwrap();
    r.read_descriptor_unverified().unwrap().1
}

/// `airgap-bundle ARGS` with its own cache and no ambient credentials.
fn bundler(cache: &Path) -> Command {
    let mut c = Command::new(bin("airgap-bundle"));
    c.env("AIRGAP_BUNDLE_CACHE", cache)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("XDG_CACHE_HOME");
    without_ambient_config(&mut c);
    c
}

fn build(cache: &Path, manifest: &Path, key: &Path, out: &Path) -> Command {
    let mut c = bundler(cache);
    c.arg("build")
        .arg(manifest)
        .arg("--key")
        .arg(key)
        .arg("--out")
        .arg(out)
        .arg("--json");
    c
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// A three-platform image whose platforms share a base layer and each have
/// their own top layer.
fn three_platform_image(ref_name: &str, salt: &str) -> ImageSpec {
    let base = demo_base_layer();
    let platforms = [("amd64", None), ("arm64", None), ("arm", Some("v7"))]
        .iter()
        .map(|(arch, variant)| {
            let top = LayerBlob::gzipped(layer_tar(&[(
                "etc/platform",
                format!("{arch} {salt}\n").as_bytes(),
                0o644,
            )]));
            let mut p = PlatformImage::linux(arch, vec![base.clone(), top], &["/bin/hello"]);
            p.variant = variant.map(str::to_string);
            p
        })
        .collect();
    ImageSpec {
        ref_name: ref_name.to_string(),
        platforms,
    }
}

fn single_image(ref_name: &str, salt: &str) -> ImageSpec {
    let top = LayerBlob::gzipped(layer_tar(&[("etc/tool", salt.as_bytes(), 0o644)]));
    ImageSpec {
        ref_name: ref_name.to_string(),
        platforms: vec![PlatformImage::linux(
            "amd64",
            vec![demo_base_layer(), top],
            &["/bin/hello"],
        )],
    }
}

/// The raw index of `repo_tag` as skopeo reads it.
fn raw_index(reg: &Registry, repo_tag: &str) -> serde_json::Value {
    let out = ok(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .args(reg.skopeo_args())
        .arg(reg.docker_ref(repo_tag)));
    json(&out)
}

fn child_digest(index: &serde_json::Value, arch: &str, variant: Option<&str>) -> String {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["platform"]["architecture"] == arch && m["platform"]["variant"].as_str() == variant
        })
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn write_manifest(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("name: pulled\nversion: 1.0.0\n{body}")).unwrap();
    path
}

#[test]
fn lock_pins_tags_and_a_rebuild_from_the_cache_needs_no_registry() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let mut reg = Registry::start_plain();
    let app = reg.publish(
        tmp.path(),
        &three_platform_image("app", "1"),
        "vendor/app:1.0",
    );
    let tool = reg.publish(tmp.path(), &single_image("tool", "v2"), "vendor/tool:2.0");
    let addr = reg.addr();
    let manifest = write_manifest(
        tmp.path(),
        "m.yaml",
        &format!(
            "images:\n  - source: {addr}/vendor/app:1.0\n  - source: docker://{addr}/vendor/tool:2.0\nregistries:\n  - host: {addr}\n    plainHttp: true\n"
        ),
    );
    let cache = tmp.path().join("cache");

    let out = ok(bundler(&cache).arg("lock").arg(&manifest).arg("--json"));
    let lock = json(&out);
    assert_eq!(lock["images"][0]["digest"], app.as_str());
    assert_eq!(lock["images"][1]["digest"], tool.as_str());
    assert_eq!(
        lock["images"][0]["resolved"],
        format!("{addr}/vendor/app:1.0@{app}")
    );
    let lock_path = tmp.path().join("m.lock.json");
    assert_eq!(json(&std::fs::read_to_string(&lock_path).unwrap()), lock);

    let first = tmp.path().join("first.bundle");
    let result = json(&ok(&mut build(&cache, &manifest, &key, &first)));
    assert!(
        result["pull"]["blobsDownloaded"].as_u64().unwrap() >= 8,
        "{result}"
    );
    ok(&mut verify_cmd(&first, &public));
    let d = descriptor(&first);
    assert_eq!(d.images[0].reference, "vendor/app:1.0");
    assert_eq!(d.images[0].digest.to_string(), app);
    assert_eq!(
        d.images[0].platforms,
        ["linux/amd64", "linux/arm/v7", "linux/arm64"]
    );
    assert_eq!(d.images[1].reference, "vendor/tool:2.0");
    assert_eq!(d.images[1].digest.to_string(), tool);

    // The registry gone, the cache serves everything: same bytes.
    reg.stop();
    let second = tmp.path().join("second.bundle");
    let result = json(&ok(&mut build(&cache, &manifest, &key, &second)));
    assert_eq!(result["pull"]["blobsDownloaded"], 0, "{result}");
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&second).unwrap()
    );

    // The tag moves; a build from the lock with an empty cache still gives
    // the pinned image, byte for byte.
    reg.restart();
    let moved = reg.publish(tmp.path(), &single_image("tool", "v3"), "vendor/tool:2.0");
    assert_ne!(moved, tool);
    let third = tmp.path().join("third.bundle");
    let cache2 = tmp.path().join("cache2");
    ok(&mut build(&cache2, &manifest, &key, &third));
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&third).unwrap()
    );

    // --locked refuses a source the lock does not pin, naming it.
    let unpinned = write_manifest(
        tmp.path(),
        "u.yaml",
        &format!("images:\n  - source: {addr}/vendor/app:1.0\nregistries:\n  - host: {addr}\n    plainHttp: true\n"),
    );
    let err = fails(build(&cache, &unpinned, &key, &tmp.path().join("u.bundle")).arg("--locked"));
    assert!(
        err.contains("u.lock.json") && err.contains("--locked"),
        "{err}"
    );
    // A fresh lock pins the moved tag.
    let relocked = json(&ok(bundler(&cache)
        .arg("lock")
        .arg(&manifest)
        .arg("--json")));
    assert_eq!(relocked["images"][1]["digest"], moved.as_str());
}

#[test]
fn platform_selection_keeps_the_vendors_own_manifests() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    reg.publish(
        tmp.path(),
        &three_platform_image("app", "p"),
        "vendor/app:1.0",
    );
    let index = raw_index(&reg, "vendor/app:1.0");
    let addr = reg.addr();
    let cache = tmp.path().join("cache");
    let manifest = |name: &str, platforms: &str| {
        write_manifest(
            tmp.path(),
            name,
            &format!("images:\n  - source: {addr}/vendor/app:1.0\n    platforms: {platforms}\nregistries:\n  - host: {addr}\n    plainHttp: true\n"),
        )
    };

    // One platform: the image is that platform's manifest from the index.
    let one = tmp.path().join("one.bundle");
    ok(&mut build(
        &cache,
        &manifest("one.yaml", "[linux/arm64]"),
        &key,
        &one,
    ));
    ok(&mut verify_cmd(&one, &public));
    let d = descriptor(&one);
    assert_eq!(d.images.len(), 1);
    assert_eq!(d.images[0].reference, "vendor/app:1.0");
    assert_eq!(
        d.images[0].digest.to_string(),
        child_digest(&index, "arm64", None)
    );
    assert_eq!(d.images[0].platforms, ["linux/arm64"]);
    // Nothing of the other platforms travels: base, arm64 top, config,
    // manifest (besides the SBOMs, which describe linux/arm64 only).
    let image_blobs: Vec<_> = d
        .blobs
        .iter()
        .filter(|b| !b.media_type.contains("cyclonedx") && !b.media_type.contains("spdx"))
        .collect();
    assert_eq!(image_blobs.len(), 4, "{:?}", d.blobs);
    assert!(d
        .sboms
        .iter()
        .all(|s| s.platform.is_none() || s.platform.as_deref() == Some("linux/arm64")));

    // Two platforms: one image each, tagged by platform, digests unchanged.
    let two = tmp.path().join("two.bundle");
    ok(&mut build(
        &cache,
        &manifest("two.yaml", "[linux/amd64, linux/arm/v7]"),
        &key,
        &two,
    ));
    let d = descriptor(&two);
    let refs: Vec<(&str, String)> = d
        .images
        .iter()
        .map(|i| (i.reference.as_str(), i.digest.to_string()))
        .collect();
    assert_eq!(
        refs,
        [
            (
                "vendor/app:1.0-linux-amd64",
                child_digest(&index, "amd64", None)
            ),
            (
                "vendor/app:1.0-linux-arm-v7",
                child_digest(&index, "arm", Some("v7"))
            ),
        ]
    );

    // A platform the index lacks is named with what it has.
    let err = fails(&mut build(
        &cache,
        &manifest("bad.yaml", "[linux/s390x]"),
        &key,
        &tmp.path().join("bad.bundle"),
    ));
    assert!(
        err.contains("bad.yaml:") && err.contains("linux/s390x") && err.contains("linux/arm64"),
        "{err}"
    );
    assert!(!tmp.path().join("bad.bundle").exists());
}

#[test]
fn tls_registry_with_credentials_from_an_auth_file_or_stdin() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_tls_auth("alice", "s3cret");
    let digest = reg.publish(tmp.path(), &single_image("tool", "tls"), "vendor/tool:1");
    let addr = reg.addr();
    let ca = reg.ca_pem_path().unwrap();
    let manifest = write_manifest(
        tmp.path(),
        "m.yaml",
        &format!(
            "images:\n  - source: {addr}/vendor/tool:1\nregistries:\n  - host: {addr}\n    caFile: {}\n",
            ca.display()
        ),
    );
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("b.bundle");

    let err = fails(&mut build(&cache, &manifest, &key, &out));
    assert!(err.contains("user name and password"), "{err}");

    let auth = tmp.path().join("auth.json");
    std::fs::write(
        &auth,
        serde_json::json!({"auths": {addr.clone(): {"auth": base64("alice:s3cret")}}}).to_string(),
    )
    .unwrap();
    ok(build(&cache, &manifest, &key, &out)
        .arg("--authfile")
        .arg(&auth));
    assert_eq!(descriptor(&out).images[0].digest.to_string(), digest);

    // Credentials on standard input; a wrong password is named as such.
    let mut child = build(&tmp.path().join("cache2"), &manifest, &key, &out)
        .arg("--username")
        .arg(format!("{addr}=alice"))
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"wrong\n").unwrap();
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("authentication failed"), "{err}");

    // Without the CA the certificate is refused.
    let no_ca = write_manifest(
        tmp.path(),
        "noca.yaml",
        &format!("images:\n  - source: {addr}/vendor/tool:1\n"),
    );
    let err = fails(
        build(&tmp.path().join("cache3"), &no_ca, &key, &out)
            .arg("--authfile")
            .arg(&auth),
    );
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

fn base64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn pulls_complete_through_errors_resets_and_broken_downloads() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    // A layer large enough that a cut download resumes part-way.
    let big = LayerBlob::gzipped(layer_tar(&[(
        "srv/data.bin",
        &airgap_e2e::fixtures::noise(3 << 20, 1),
        0o644,
    )]));
    let image = ImageSpec {
        ref_name: "big".into(),
        platforms: vec![PlatformImage::linux(
            "amd64",
            vec![demo_base_layer(), big.clone()],
            &["/bin/hello"],
        )],
    };
    let digest = reg.publish(tmp.path(), &image, "vendor/big:1");
    let layer = big.digest();
    let proxy = FaultProxy::start(
        &reg.addr(),
        Box::new(move |n, method, path| {
            let blob = method == "GET" && path.contains("/blobs/");
            match n {
                0 => Fault::Status(503),
                1 => Fault::Reset,
                _ if blob && path.ends_with(&layer) && n < 12 => Fault::Cut(700_000),
                _ if blob && n % 4 == 0 && n < 30 => Fault::Status(429),
                _ if blob && n % 5 == 0 && n < 30 => Fault::Status(500),
                _ => Fault::Pass,
            }
        }),
    );
    let addr = proxy.addr();
    let manifest = write_manifest(
        tmp.path(),
        "m.yaml",
        &format!("images:\n  - source: {addr}/vendor/big:1\nregistries:\n  - host: {addr}\n    plainHttp: true\n"),
    );
    let out = tmp.path().join("b.bundle");
    ok(&mut build(&tmp.path().join("cache"), &manifest, &key, &out));
    ok(&mut verify_cmd(&out, &public));
    assert_eq!(descriptor(&out).images[0].digest.to_string(), digest);
    let log = proxy.requests();
    let ranged_resumes = log
        .iter()
        .filter(|(_, p, f)| p.ends_with(&big.digest()) && matches!(f, Fault::Cut(_)))
        .count();
    assert!(ranged_resumes >= 2, "{log:?}");
}

#[test]
fn a_damaged_blob_in_the_registry_is_refused_by_name_and_never_cached() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    let image = single_image("tool", "damaged");
    reg.publish(tmp.path(), &image, "vendor/tool:1");
    let layer = image.platforms[0].layers[1].digest();
    let hex = layer.trim_start_matches("sha256:");
    let data = reg.storage_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&data).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&data, &bytes).unwrap();

    let addr = reg.addr();
    let manifest = write_manifest(
        tmp.path(),
        "m.yaml",
        &format!("images:\n  - source: {addr}/vendor/tool:1\nregistries:\n  - host: {addr}\n    plainHttp: true\n"),
    );
    let cache = tmp.path().join("cache");
    let out = tmp.path().join("b.bundle");
    ok(bundler(&cache).arg("lock").arg(&manifest));
    let err = fails(&mut build(&cache, &manifest, &key, &out));
    assert!(
        err.contains(&layer) && err.contains("does not match"),
        "{err}"
    );
    assert!(!out.exists());
    assert!(!cache.join(format!("blobs/sha256/{hex}")).exists());
    assert!(partial_files(tmp.path()).is_empty());
}

fn helm_cmd(home: &Path) -> Command {
    let mut c = Command::new(helm());
    c.env("HOME", home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"));
    c
}

#[test]
fn charts_from_an_oci_registry_and_a_helm_repository() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("helm-home");
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    let addr = reg.addr();

    // hello 0.1.0 pushed by Helm into the registry.
    let pkg = tmp.path().join("pkg");
    ok(helm_cmd(&home)
        .arg("package")
        .arg(repo_root().join("manifests/demo/charts/hello"))
        .arg("--destination")
        .arg(&pkg));
    ok(helm_cmd(&home)
        .arg("push")
        .arg(pkg.join("hello-0.1.0.tgz"))
        .arg(format!("oci://{addr}/charts"))
        .arg("--plain-http"));
    let hello_manifest = reg.skopeo_inspect_raw_digest("charts/hello:0.1.0").unwrap();

    // web 0.1.0 served by a Helm HTTP repository.
    let repo = tmp.path().join("repo");
    ok(helm_cmd(&home).arg("create").arg(tmp.path().join("web")));
    ok(helm_cmd(&home)
        .arg("package")
        .arg(tmp.path().join("web"))
        .arg("--destination")
        .arg(&repo));
    let server = FileServer::start(&repo);
    ok(helm_cmd(&home)
        .arg("repo")
        .arg("index")
        .arg(&repo)
        .arg("--url")
        .arg(server.url()));
    let web_tgz = std::fs::read(repo.join("web-0.1.0.tgz")).unwrap();

    let manifest = write_manifest(
        tmp.path(),
        "m.yaml",
        &format!(
            "charts:\n  - source: oci://{addr}/charts/hello:0.1.0\n  - source: {}\n    chart: web\n    version: 0.1.0\nregistries:\n  - host: {addr}\n    plainHttp: true\n  - host: {}\n    plainHttp: true\n",
            server.url(),
            server.url().trim_start_matches("http://")
        ),
    );
    // Plain HTTP to the repository only when the manifest allows it.
    let strict = write_manifest(
        tmp.path(),
        "strict.yaml",
        &format!(
            "charts:\n  - source: {}\n    chart: web\n    version: 0.1.0\n",
            server.url()
        ),
    );
    let err = fails(bundler(&tmp.path().join("c0")).arg("lock").arg(&strict));
    assert!(
        err.contains("plain HTTP") && err.contains("plainHttp: true"),
        "{err}"
    );
    let cache = tmp.path().join("cache");
    let lock = json(&ok(bundler(&cache)
        .arg("lock")
        .arg(&manifest)
        .arg("--json")));
    assert_eq!(lock["charts"][0]["digest"], hello_manifest.as_str());
    assert_eq!(
        lock["charts"][1]["digest"],
        sha256_digest(&web_tgz).as_str()
    );
    assert_eq!(
        lock["charts"][1]["url"],
        format!("{}/web-0.1.0.tgz", server.url())
    );

    let out = tmp.path().join("charts.bundle");
    ok(&mut build(&cache, &manifest, &key, &out));
    ok(&mut verify_cmd(&out, &public));
    let d = descriptor(&out);
    assert_eq!(d.charts[0].name, "hello");
    assert_eq!(d.charts[0].manifest.to_string(), hello_manifest);
    assert_eq!(d.charts[1].name, "web");
    assert_eq!(d.charts[1].digest.to_string(), sha256_digest(&web_tgz));

    // From the lock and the cache, the repository is not asked again.
    let before = server.requests();
    ok(&mut build(
        &cache,
        &manifest,
        &key,
        &tmp.path().join("again.bundle"),
    ));
    assert_eq!(server.requests(), before);

    // The installer pushes the pulled chart on; Helm pulls it back.
    let site = Registry::start_plain();
    ok(push_cmd(&out, &public, &site.addr(), &tmp.path().join("map.json")).arg("--plain-http"));
    assert_eq!(
        site.skopeo_inspect_raw_digest("charts/hello:0.1.0"),
        Some(hello_manifest)
    );
    std::fs::create_dir_all(tmp.path().join("pulled")).unwrap();
    ok(helm_cmd(&home)
        .args(["pull", &format!("oci://{}/charts/web", site.addr())])
        .args(["--version", "0.1.0", "--plain-http", "--destination"])
        .arg(tmp.path().join("pulled")));
    assert!(tmp.path().join("pulled/web-0.1.0.tgz").is_file());

    // A repository archive that no longer matches its index is refused.
    std::fs::write(repo.join("web-0.1.0.tgz"), [&web_tgz[..], b"x"].concat()).unwrap();
    std::fs::remove_file(tmp.path().join("m.lock.json")).unwrap();
    let err = fails(&mut build(
        &tmp.path().join("cache-fresh"),
        &manifest,
        &key,
        &tmp.path().join("bad.bundle"),
    ));
    assert!(
        err.contains("web") && err.contains("does not match"),
        "{err}"
    );
}
