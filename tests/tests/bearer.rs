//! Both programs against a real registry (Debian's docker-registry, CNCF
//! distribution v2.8) with bearer-token authentication: the registry answers
//! `401 WWW-Authenticate: Bearer realm=...,service=...`, the clients fetch
//! a JWT from the test token server with their basic credentials and retry
//! with it. skopeo, which speaks the flow itself, loads and checks the
//! registry as an independent client.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use airgap_e2e::harness::*;
use airgap_e2e::token_registry::{TokenRegistry, SERVICE};
use airgap_e2e::token_server::{TokenRequest, TOKEN_LIFETIME_SECS};
use airgap_e2e::*;
use airgap_format::BundleDescriptor;

fn descriptor(bundle: &Path) -> BundleDescriptor {
    let r = airgap_format::ArchiveReader::open(bundle, airgap_format::Limits::default()).unwrap();
    r.read_descriptor_unverified().unwrap().1
}

fn base64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A Docker `config.json` / Podman `auth.json` holding `user:password` for `host`.
fn write_auth_file(path: &Path, host: &str, user: &str, password: &str) {
    let v = serde_json::json!({"auths": {host: {"auth": base64(&format!("{user}:{password}"))}}});
    std::fs::write(path, v.to_string()).unwrap();
}

/// The token server's requests from number `from` on.
fn requests_since(reg: &TokenRegistry, from: usize) -> Vec<TokenRequest> {
    reg.token_server().requests().split_off(from)
}

// ---------------------------------------------------------------------------
// The harness itself: distribution accepts the token server's tokens.
// ---------------------------------------------------------------------------

fn token_url(reg: &TokenRegistry, scopes: &[&str]) -> String {
    let mut url = format!("{}?service={SERVICE}", reg.token_server().realm());
    for s in scopes {
        url.push_str(&format!("&scope={s}"));
    }
    url
}

/// `GET` a token with basic credentials: the status and the JSON reply.
fn get_token(url: &str, user: &str, password: &str) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let mut resp = agent
        .get(url)
        .header(
            "Authorization",
            format!("Basic {}", base64(&format!("{user}:{password}"))),
        )
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&body).unwrap_or_default())
}

#[test]
fn distribution_accepts_the_token_servers_tokens_for_their_scope_only() {
    let reg = TokenRegistry::start("ci", "t0ken pass");
    let tokens = reg.token_server();

    let anon = reg.probe("/v2/", None);
    assert_eq!(anon.status, 401);
    assert!(
        anon.challenge.starts_with("Bearer ")
            && anon
                .challenge
                .contains(&format!("realm=\"{}\"", tokens.realm()))
            && anon.challenge.contains("service=\"airgap-test\""),
        "{anon:?}"
    );

    let (status, reply) = get_token(
        &token_url(&reg, &["repository:vendor/app:pull"]),
        "ci",
        "t0ken pass",
    );
    assert_eq!(status, 200, "{reply}");
    let token = reply["token"].as_str().unwrap().to_string();
    assert_eq!(reply["access_token"], token.as_str());
    assert_eq!(reply["expires_in"], TOKEN_LIFETIME_SECS);
    assert!(
        reply["issued_at"].as_str().unwrap().ends_with('Z'),
        "{reply}"
    );
    let bearer = format!("Bearer {token}");

    // The token opens /v2/ and the repository it names (empty: 404, not 401)...
    assert_eq!(reg.probe("/v2/", Some(&bearer)).status, 200);
    assert_eq!(
        reg.probe("/v2/vendor/app/tags/list", Some(&bearer)).status,
        404
    );
    // ... but no other repository: the registry asks for that scope.
    let other = reg.probe("/v2/vendor/other/tags/list", Some(&bearer));
    assert_eq!(other.status, 401);
    assert!(
        other.challenge.contains("insufficient_scope")
            && other
                .challenge
                .contains("scope=\"repository:vendor/other:pull\""),
        "{other:?}"
    );
    // A token signed by another key is refused.
    let stranger = TokenRegistry::start("ci", "t0ken pass");
    let (_, foreign) = get_token(
        &token_url(&stranger, &["repository:vendor/app:pull"]),
        "ci",
        "t0ken pass",
    );
    let foreign = format!("Bearer {}", foreign["token"].as_str().unwrap());
    assert_eq!(reg.probe("/v2/", Some(&foreign)).status, 401);

    // Wrong credentials get no token; both outcomes are counted.
    let (status, _) = get_token(
        &token_url(&reg, &["repository:vendor/app:pull"]),
        "ci",
        "wrong",
    );
    assert_eq!(status, 401);
    assert_eq!(
        (tokens.tokens_issued(), tokens.requests_refused()),
        (1, 1),
        "{:?}",
        tokens.requests()
    );
    assert_eq!(
        tokens.requests()[0],
        TokenRequest {
            user: Some("ci".into()),
            service: Some(SERVICE.into()),
            scopes: vec!["repository:vendor/app:pull".into()],
            status: 200,
        }
    );
}

// ---------------------------------------------------------------------------
// airgap-bundle pulling through the token flow.
// ---------------------------------------------------------------------------

/// `airgap-bundle build ... --json` with its own cache and no ambient
/// credentials.
fn build(cache: &Path, manifest: &Path, key: &Path, out: &Path) -> Command {
    let mut c = Command::new(bin("airgap-bundle"));
    c.arg("build")
        .arg(manifest)
        .arg("--key")
        .arg(key)
        .arg("--out")
        .arg(out)
        .arg("--json")
        .env("AIRGAP_BUNDLE_CACHE", cache)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env_remove("XDG_CACHE_HOME");
    without_ambient_config(&mut c);
    c
}

/// A two-platform image whose platforms share a base layer.
fn two_platform_image(ref_name: &str) -> ImageSpec {
    let platforms = ["amd64", "arm64"]
        .iter()
        .map(|arch| {
            let top = LayerBlob::gzipped(layer_tar(&[(
                "etc/platform",
                format!("{arch} bearer\n").as_bytes(),
                0o644,
            )]));
            PlatformImage::linux(arch, vec![demo_base_layer(), top], &["/bin/hello"])
        })
        .collect();
    ImageSpec {
        ref_name: ref_name.to_string(),
        platforms,
    }
}

#[test]
fn bundle_build_pulls_from_a_token_registry_with_an_auth_file() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = TokenRegistry::start("vendor-ci", "pull s3cret");
    let digest = reg.publish(tmp.path(), &two_platform_image("app"), "vendor/app:1.0");
    let addr = reg.addr();
    let manifest = tmp.path().join("m.yaml");
    std::fs::write(
        &manifest,
        format!(
            "name: pulled\nversion: 1.0.0\nimages:\n  - source: {addr}/vendor/app:1.0\nregistries:\n  - host: {addr}\n    plainHttp: true\n"
        ),
    )
    .unwrap();
    let auth = tmp.path().join("auth.json");
    write_auth_file(&auth, &addr, "vendor-ci", "pull s3cret");
    let out = tmp.path().join("b.bundle");

    let before = reg.token_server().requests().len();
    let result: serde_json::Value =
        serde_json::from_str(&ok(build(&tmp.path().join("cache"), &manifest, &key, &out)
            .arg("--authfile")
            .arg(&auth)))
        .unwrap();
    // The bundler asked for one token, cached for the whole pull: as the
    // user of the auth file, for the registry's service, for pulling
    // vendor/app and nothing else.
    assert_eq!(
        requests_since(&reg, before),
        [TokenRequest {
            user: Some("vendor-ci".into()),
            service: Some(SERVICE.into()),
            scopes: vec!["repository:vendor/app:pull".into()],
            status: 200,
        }]
    );
    // Index, two manifests, two configs, three distinct layers.
    assert!(
        result["pull"]["blobsDownloaded"].as_u64().unwrap() >= 5,
        "{result}"
    );
    ok(&mut verify_cmd(&out, &public));
    let d = descriptor(&out);
    assert_eq!(d.images[0].reference, "vendor/app:1.0");
    assert_eq!(d.images[0].digest.to_string(), digest);
    assert_eq!(d.images[0].platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(
        reg.skopeo_inspect_raw_digest("vendor/app:1.0").as_deref(),
        Some(digest.as_str())
    );

    // A wrong password: the token service's refusal, on one line.
    let wrong = tmp.path().join("wrong.json");
    write_auth_file(&wrong, &addr, "vendor-ci", "not it");
    let refused = reg.token_server().requests_refused();
    let err = fails(
        build(
            &tmp.path().join("cache2"),
            &manifest,
            &key,
            &tmp.path().join("wrong.bundle"),
        )
        .arg("--authfile")
        .arg(&wrong),
    );
    assert!(
        err.contains(&format!("token service {}", reg.token_server().realm()))
            && err.contains("HTTP 401"),
        "{err}"
    );
    assert!(!err.contains("not it"), "the password leaks: {err}");
    assert!(reg.token_server().requests_refused() > refused);
    assert!(!tmp.path().join("wrong.bundle").exists());

    // No credentials at all: the same, the token service refusing anonymity.
    let err = fails(&mut build(
        &tmp.path().join("cache3"),
        &manifest,
        &key,
        &tmp.path().join("anon.bundle"),
    ));
    assert!(
        err.contains("token service") && err.contains("HTTP 401"),
        "{err}"
    );
    assert!(reg
        .token_server()
        .requests()
        .iter()
        .any(|r| r.user.is_none() && r.status == 401));
}

// ---------------------------------------------------------------------------
// airgap-install pushing through the token flow.
// ---------------------------------------------------------------------------

/// `airgap-install push BUNDLE --trust PUB --registry REGISTRY
/// --relocation-map MAP --plain-http --username USER --password-stdin ARGS`
/// with `password` on standard input and no ambient configuration.
fn push(
    bundle: &Path,
    public: &Path,
    registry: &str,
    map: &Path,
    user: &str,
    password: &str,
    args: &[&str],
) -> Output {
    let mut c = push_cmd(bundle, public, registry, map);
    c.args(["--plain-http", "--username", user, "--password-stdin"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {c:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The one `error:` line of a push that failed cleanly (exit 1, no panic).
fn one_error_line(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0].to_string()
}

/// A push to `ADDR/site` with the registry's credentials that must succeed;
/// returns its stdout.
fn push_checked(
    reg: &TokenRegistry,
    bundle: &Path,
    public: &Path,
    map: &Path,
    args: &[&str],
) -> String {
    let (user, password) = reg.credentials();
    let out = push(
        bundle,
        public,
        &format!("{}/site", reg.addr()),
        map,
        &user,
        &password,
        args,
    );
    assert!(
        out.status.success(),
        "push failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        reg.log_tail()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn push_to_a_token_registry_keeps_digests_and_reruns() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let d = descriptor(&bundle);
    let reg = TokenRegistry::start("operator", "correct horse battery");
    let map = tmp.path().join("map.json");

    let out = push_checked(&reg, &bundle, &public, &map, &[]);
    assert!(out.contains("pushed"), "{out}");
    let asked = reg.token_server().requests();
    assert!(reg.token_server().tokens_issued() > 0);
    assert_eq!(reg.token_server().requests_refused(), 0, "{asked:?}");
    for img in &d.images {
        assert_eq!(
            reg.skopeo_inspect_raw_digest(&format!("site/{}", img.reference))
                .as_deref(),
            Some(img.digest.to_string().as_str()),
            "{}",
            img.reference
        );
        let scope = format!("repository:site/{}:pull,push", img.name);
        assert!(
            asked.iter().any(|r| r.scopes.contains(&scope)),
            "no token for {scope}: {asked:?}"
        );
    }
    let chart = &d.charts[0];
    assert_eq!(
        reg.skopeo_inspect_raw_digest("site/charts/hello:0.1.0")
            .as_deref(),
        Some(chart.manifest.to_string().as_str())
    );
    for r in &asked {
        assert_eq!(r.user.as_deref(), Some("operator"), "{r:?}");
        assert_eq!(r.service.as_deref(), Some(SERVICE), "{r:?}");
    }
    // The images share a layer: the second gets it by a cross-repository
    // mount, with one token for both repositories.
    assert!(
        asked.iter().any(|r| r.scopes.len() == 2
            && r.scopes[0].ends_with(":pull,push")
            && r.scopes[1].starts_with("repository:site/")
            && r.scopes[1].ends_with(":pull")),
        "no mount token: {asked:?}"
    );
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&map).unwrap()).unwrap();
    assert_eq!(
        m["images"][0]["pinned"],
        format!("{}/site/demo/web@{}", reg.addr(), d.images[0].digest)
    );

    // A second run finds everything in place, through fresh tokens.
    let issued = reg.token_server().tokens_issued();
    let json = push_checked(&reg, &bundle, &public, &map, &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["blobsUploaded"], 0, "{v}");
    for img in v["relocation"]["images"].as_array().unwrap() {
        assert_eq!(img["status"], "unchanged", "{v}");
    }
    assert!(reg.token_server().tokens_issued() > issued);

    // A wrong password: the token service's refusal, on one line.
    let out = push(
        &bundle,
        &public,
        &format!("{}/site", reg.addr()),
        &tmp.path().join("wrong-map.json"),
        "operator",
        "wrong horse",
        &[],
    );
    let line = one_error_line(&out);
    assert!(
        line.contains(&format!("token service {}", reg.token_server().realm()))
            && line.contains("HTTP 401"),
        "{line}"
    );
    assert!(!line.contains("wrong horse"), "the password leaks: {line}");
    assert!(reg.token_server().requests_refused() > 0);
}

#[test]
fn push_with_a_pull_only_token_fails_cleanly_and_writes_nothing() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let reg = TokenRegistry::start("reader", "read only");
    // A read-only account: its tokens grant `pull` whatever is asked. The
    // first upload (whichever repository a parallel job reaches first) is
    // refused by the registry (`insufficient_scope`).
    reg.token_server().allow_only(Some(&["pull"]));
    let map = tmp.path().join("map.json");

    let out = push(
        &bundle,
        &public,
        &format!("{}/site", reg.addr()),
        &map,
        "reader",
        "read only",
        &[],
    );
    let line = one_error_line(&out);
    assert!(
        line.contains("/blobs/uploads/")
            && line.contains("HTTP 401")
            && line.contains("insufficient_scope")
            && !line.contains("check the user name and password"),
        "{line}"
    );
    // Tokens were issued (the tag checks need only `pull`), none refused.
    assert!(reg.token_server().tokens_issued() > 0);
    assert_eq!(reg.token_server().requests_refused(), 0);
    for tag in [
        "site/demo/web:1.0.0",
        "site/demo/worker:1.0.0",
        "site/charts/hello:0.1.0",
    ] {
        assert_eq!(reg.skopeo_inspect_raw_digest(tag), None, "{tag}");
    }
    assert!(!map.exists());
}
