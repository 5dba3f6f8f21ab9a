//! Messages that name the fix (issue 16): each case reproduces a mistake
//! an operator or a release engineer makes, and checks that the one error
//! line names what is wrong and how to fix it, in the words of the
//! command used (a flag for `push`, a site-file field for `install`).

use std::path::{Path, PathBuf};
use std::process::Command;

use airgap_e2e::demo_site::{demo_site, DemoSite};
use airgap_e2e::harness::*;
use airgap_e2e::registry::Registry;

/// [`harness::push_cmd`] with the relocation map in `dir` and no log
/// filter, so that the one error line is all there is.
fn push_to(dir: &Path, bundle: &Path, public: &Path, registry: &str) -> Command {
    let mut c = push_cmd(bundle, public, registry, &dir.join("map.json"));
    c.env_remove("RUST_LOG");
    c
}

/// The demo site in `dir` for `registry`, its site file rewritten by `edit`.
fn site_for(dir: &Path, registry: &str, edit: impl FnOnce(String) -> String) -> DemoSite {
    let site = demo_site(&dir.join("site"), registry, &dir.join("state"), None);
    let text = std::fs::read_to_string(&site.file).unwrap();
    std::fs::write(&site.file, edit(text)).unwrap();
    site
}

#[test]
fn plain_http_to_an_https_registry_says_to_drop_plain_http() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let reg = Registry::start_tls_auth("operator", "pw");
    // Before: "demo/web:1.0.0: HEAD manifest: HTTP 400".
    let line = fails(
        push_to(tmp.path(), &bundle, &public, &reg.addr())
            .arg("--plain-http")
            .arg("--ca-file")
            .arg(reg.ca_pem_path().unwrap()),
    );
    assert!(
        line.contains("the registry speaks HTTPS") && line.ends_with("; drop --plain-http"),
        "{line}"
    );

    // install: the site file's plainHttp (found by its preflight).
    let site = site_for(tmp.path(), &reg.addr(), |t| t);
    let line = fails(&mut site.install(&bundle, &public));
    assert!(
        line.contains("preflight found 1 problem")
            && line.contains("the registry speaks HTTPS")
            && line.contains(&format!(
                "; set plainHttp: false under registry: in {} ",
                site.file.display()
            )),
        "{line}"
    );
}

#[test]
fn https_to_a_plain_http_registry_says_to_pass_plain_http() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let reg = Registry::start_plain();
    // Before: "…: io: received corrupt message of type InvalidContentType (…)".
    let line = fails(&mut push_to(tmp.path(), &bundle, &public, &reg.addr()));
    assert!(
        line.contains("it seems to speak plain HTTP; pass --plain-http")
            && !line.contains("InvalidContentType"),
        "{line}"
    );

    let site = site_for(tmp.path(), &reg.addr(), |t| {
        t.replace("  plainHttp: true\n", "")
    });
    let line = fails(&mut site.install(&bundle, &public));
    assert!(
        line.contains(&format!(
            "it seems to speak plain HTTP; set plainHttp: true under registry: in {}",
            site.file.display()
        )),
        "{line}"
    );
}

#[test]
fn an_unknown_certificate_authority_names_ca_file_or_internal_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let reg = Registry::start_tls_auth("operator", "pw");
    // Before: "…: io: invalid peer certificate: UnknownIssuer".
    let line = fails(&mut push_to(tmp.path(), &bundle, &public, &reg.addr()));
    assert!(
        line.contains("the registry's certificate is not from a CA this machine trusts")
            && line.ends_with("; pass the CA certificate (PEM) that issued it with --ca-file")
            && !line.contains("UnknownIssuer"),
        "{line}"
    );

    // install: the site file's internalCa, here a CA that did not issue it.
    let site = site_for(tmp.path(), &reg.addr(), |t| {
        t.replace("  plainHttp: true\n", "")
    });
    let line = fails(&mut site.install(&bundle, &public));
    let ca: PathBuf = site
        .file
        .parent()
        .unwrap()
        .join("site-secrets/internal-ca.pem");
    assert!(
        line.contains(&format!(
            "the registry's certificate is issued neither by \"{}\" nor by a system CA",
            ca.display()
        )) && line.contains(&format!(
            "; name the CA certificate (PEM) that issued it in internalCa: of {} ",
            site.file.display()
        )),
        "{line}"
    );

    // airgap-bundle: the manifest's registries: entry.
    let manifest = tmp.path().join("m.yaml");
    std::fs::write(
        &manifest,
        format!(
            "name: m\nversion: 1.0.0\nimages:\n  - source: {}/vendor/tool:1\n",
            reg.addr()
        ),
    )
    .unwrap();
    let line = fails(
        Command::new(bin("airgap-bundle"))
            .arg("lock")
            .arg(&manifest)
            .env("AIRGAP_BUNDLE_CACHE", tmp.path().join("cache"))
            .env_remove("RUST_LOG"),
    );
    assert!(
        line.ends_with(&format!(
            "; list {} under registries: in the manifest with caFile: naming the CA certificate (PEM) that issued it",
            reg.addr()
        )),
        "{line}"
    );
}

#[test]
fn retries_of_a_refused_connection_are_said() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let registry = format!("127.0.0.1:{port}");

    // Not on a terminal: one error line by default, the retries in the log.
    fails(&mut push_to(tmp.path(), &bundle, &public, &registry));
    let out = run(push_to(tmp.path(), &bundle, &public, &registry).env("RUST_LOG", "info"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for attempt in 2..=6 {
        assert!(
            stderr.contains(&format!(
                "INFO airgap_registry::retry: {registry}: connection refused; retrying in "
            )) && stderr.contains(&format!("(attempt {attempt} of 6)")),
            "{stderr}"
        );
    }

    // On a terminal, without RUST_LOG: a warning per retry.
    require_tool("script");
    let cmd = push_to(tmp.path(), &bundle, &public, &registry);
    let shown: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let mut script = Command::new("script");
    script.args(["-qec", &shown.join(" "), "/dev/null"]);
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    let out = run(&mut script);
    let terminal = String::from_utf8_lossy(&out.stdout);
    // A terminal's log line: `warning: …`, without time or module.
    assert!(
        terminal.contains(&format!(
            "warning\u{1b}[0m: {registry}: connection refused; retrying in 0.2 s (attempt 2 of 6)"
        )) && terminal.contains("(attempt 6 of 6)"),
        "{terminal}"
    );
}

/// The 1-based number of the line of `text` that holds `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in the text"))
        + 1
}

#[test]
fn site_file_errors_are_located_and_every_missing_secret_is_listed() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let reg = Registry::start_plain();

    // A secret written as its value: located, in words, the value unshown.
    // Before: "…password: invalid type: string \"hunter2\", expected struct SecretRef".
    let site = site_for(tmp.path(), &reg.addr(), |t| {
        t.replace(
            "    password:\n      file: site-secrets/control-plane-db.password",
            "    password: hunter2",
        )
    });
    let text = std::fs::read_to_string(&site.file).unwrap();
    let line = fails(&mut site.install(&bundle, &public));
    assert_eq!(
        line,
        format!(
            "error: {}:{}:15: controlPlane.database.password: expected {{file: PATH}} or {{env: NAME}}; the value itself never goes in the site file (write it into a file, or set an environment variable)",
            site.file.display(),
            line_of(&text, "password: hunter2")
        )
    );

    // Two secrets that cannot be read: both named at once, before the push.
    let site = site_for(tmp.path(), &reg.addr(), |t| t);
    let text = std::fs::read_to_string(&site.file).unwrap();
    let token = site
        .file
        .parent()
        .unwrap()
        .join("site-secrets/genomics.token");
    std::fs::remove_file(&token).unwrap();
    let line = fails(
        site.install(&bundle, &public)
            .env_remove("IMAGING_DB_PASSWORD"),
    );
    let enrollment = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("enrollmentToken:"))
        .map(|(i, _)| i + 1)
        .next()
        .unwrap();
    assert!(
        line.starts_with(&format!(
            "error: {}: 2 secrets cannot be read: (1) line {enrollment}: workspaces[0].enrollmentToken: {}: cannot read",
            site.file.display(),
            token.display()
        )) && line.contains("; write the value into that file, or correct file: (2) line ")
            && line.ends_with(": workspaces[1].database.password: environment variable IMAGING_DB_PASSWORD is not set; set the variable in the environment airgap-install runs in"),
        "{line}"
    );
    assert_eq!(reg.skopeo_inspect_raw_digest("site/demo/web:1.0.0"), None);
}

#[test]
fn a_refused_split_size_is_echoed_with_the_accepted_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path(), "vendor");
    let manifest = repo_root().join("manifests/demo.yaml");
    let out = tmp.path().join("x.bundle");
    // Before: "--split 10240: parts must be at least 65536 bytes". A usage
    // error: exit status 2.
    let line = usage_error(build_cmd(&manifest, &key, &out).args(["--split", "10KiB"]));
    assert_eq!(
        line,
        "error: --split \"10KiB\": parts must be at least 64KiB (65536 bytes), this is 10240 bytes; give a larger size, such as 4GiB or 4.7GB"
    );
    let line = usage_error(build_cmd(&manifest, &key, &out).args(["--split", "4.7 GBytes"]));
    assert_eq!(
        line,
        "error: --split \"4.7 GBytes\": unknown unit \"GBytes\"; expected a number with an optional unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), such as 4GiB or 4.7GB"
    );
}

#[test]
fn a_missing_output_folder_is_named_not_a_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, key, public) = demo_bundle(tmp.path());
    let missing = tmp.path().join("no/such/dir");
    let said = format!(
        "error: {}: the output folder does not exist; create it first",
        missing.display()
    );
    let manifest = repo_root().join("manifests/demo.yaml");
    let bundler = || {
        let mut c = Command::new(bin("airgap-bundle"));
        c.env("AIRGAP_BUNDLE_CACHE", tmp.path().join("cache"));
        c
    };

    // Before: "…/x.bundle: cannot write the bundle after 0 bytes: No such
    // file or directory (os error 2) at path \"…/.x.bundle.salJBB.partial\" …".
    let line = fails(&mut build_cmd(&manifest, &key, &missing.join("x.bundle")));
    assert_eq!(line, said);
    let line = fails(
        bundler()
            .arg("lock")
            .arg(&manifest)
            .arg("--out")
            .arg(missing.join("x.lock.json")),
    );
    assert_eq!(line, said);
    let line = fails(bundler().arg("keygen").arg("--out").arg(missing.join("k")));
    assert_eq!(line, said);

    // push says so before it pushes (no registry listens at port 1).
    let line = fails(push_to(&missing, &bundle, &public, "127.0.0.1:1").arg("--plain-http"));
    assert_eq!(
        line,
        format!(
            "error: --relocation-map: {}: the output folder does not exist; create it first",
            missing.display()
        )
    );

    // sbom --out and render --out create their folder, not the one above.
    let line = fails(
        Command::new(bin("airgap-install"))
            .args(["sbom"])
            .arg(&bundle)
            .arg("--trust")
            .arg(&public)
            .arg("--out")
            .arg(missing.join("sboms"))
            .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config"),
    );
    assert_eq!(line, said);
    let site = site_for(tmp.path(), "127.0.0.1:1", |t| t);
    let line = fails(
        site.installer()
            .arg("render")
            .arg(&bundle)
            .arg("--site")
            .arg(&site.file)
            .arg("--trust")
            .arg(&public)
            .arg("--out")
            .arg(missing.join("out")),
    );
    assert_eq!(line, said);
    assert!(!tmp.path().join("no").exists());
}

/// The demo manifest in `dir` with absolute sources, its templates those of
/// `templates`, plus `extra` lines.
fn demo_manifest(dir: &Path, templates: &Path, extra: &str) -> PathBuf {
    let demo = repo_root().join("manifests/demo");
    let text = std::fs::read_to_string(repo_root().join("manifests/demo.yaml"))
        .unwrap()
        .replace(
            "source: demo/templates",
            &format!("source: {}", templates.display()),
        )
        .replace(
            "source: oci-layout:demo/",
            &format!("source: oci-layout:{}/", demo.display()),
        )
        .replace(
            "source: docker-archive:demo/",
            &format!("source: docker-archive:{}/", demo.display()),
        )
        .replace("source: demo/", &format!("source: {}/", demo.display()));
    let path = dir.join("m.yaml");
    std::fs::write(&path, format!("{text}{extra}")).unwrap();
    path
}

#[test]
fn the_vendors_mistakes_are_caught_when_the_bundle_is_built() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, _) = keygen(tmp.path(), "vendor");
    let templates = tmp.path().join("templates");
    airgap_e2e::demo_site::copy_dir(&repo_root().join("manifests/demo/templates"), &templates);
    // Without the example site file, which the profile names relative to
    // the folder it was copied from.
    let profile = templates.join("profile.yaml");
    let text = std::fs::read_to_string(&profile).unwrap();
    std::fs::write(
        &profile,
        text.replace("example: ../../site.example.yaml\n", ""),
    )
    .unwrap();
    let out = tmp.path().join("demo.bundle");
    let manifest = demo_manifest(tmp.path(), &templates, "");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let at = format!(
        "error: {}:{}:",
        manifest.display(),
        line_of(&text, &format!("source: {}", templates.display()))
    );
    ok(build_cmd(&manifest, &key, &out).arg("--skip-sbom"));

    // render.yaml names a chart the bundle lacks. Before: the bundle built,
    // and render failed at the site after the push.
    let spec = templates.join("render.yaml");
    let good = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, good.replace("chart: hello", "chart: helo")).unwrap();
    let line = fails(build_cmd(&manifest, &key, &out).arg("--skip-sbom"));
    assert!(
        line.starts_with(&at)
            && line.ends_with(": templates[0].source: template render.yaml: releases[0].chart: no chart helo in the bundle (its charts: hello); add the chart under charts: in the manifest, or name one of those"),
        "{line}"
    );
    std::fs::write(&spec, &good).unwrap();

    // A template that does not compile.
    let values = templates.join("hello.values.yaml.hbs");
    let good = std::fs::read_to_string(&values).unwrap();
    std::fs::write(&values, format!("{good}{{{{#if site.name}}}}\n")).unwrap();
    let line = fails(build_cmd(&manifest, &key, &out).arg("--skip-sbom"));
    assert!(
        line.starts_with(&at)
            && line.contains(": templates[0].source: template hello.values.yaml.hbs: ")
            && line.ends_with("; fix the template (templates.md)"),
        "{line}"
    );
    std::fs::write(&values, &good).unwrap();

    // A licence for another product than the bundle's name.
    let site = demo_site(
        &tmp.path().join("site"),
        "127.0.0.1:1",
        &tmp.path().join("state"),
        None,
    );
    let request = tmp.path().join("request.json");
    ok(site
        .installer()
        .args(["license", "request", "--product", "other-product", "--out"])
        .arg(&request));
    let licence = tmp.path().join("other.lic");
    ok(Command::new(bin("airgap-bundle"))
        .args(["license", "issue", "--request"])
        .arg(&request)
        .arg("--key")
        .arg(&key)
        .args(["--customer", "Example", "--expires", "2099-01-01", "--out"])
        .arg(&licence));
    let manifest = demo_manifest(
        tmp.path(),
        &templates,
        &format!("license: {}\n", licence.display()),
    );
    let text = std::fs::read_to_string(&manifest).unwrap();
    let line = fails(build_cmd(&manifest, &key, &out).arg("--skip-sbom"));
    assert_eq!(
        line,
        format!(
            "error: {}:{}:10: license: the licence is for product \"other-product\", not this bundle's \"demo\"; issue one from a licence request made with --product demo (airgap-install license request), or correct name:",
            manifest.display(),
            line_of(&text, "license: ")
        )
    );
    assert!(partial_files(tmp.path()).is_empty());
}
