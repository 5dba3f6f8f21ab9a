//! Issue 15: the holes an independent attacker found, each reproduced with
//! the real binaries. Hostile bundles are crafted with
//! [`airgap_e2e::craft::Crafted`] and signed with the vendor's key: a stolen
//! key or an insider must still never turn into writes outside the output
//! folder, commands run at the site, a render without end, or escape
//! sequences on the operator's terminal.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use airgap_e2e::craft::Crafted;
use airgap_e2e::harness::*;

/// Characters no output of ours may carry raw: C0 (but line breaks and
/// tabs of our own), DEL, C1, bidirectional formatting.
fn unsafe_chars(s: &str) -> Vec<char> {
    s.chars()
        .filter(|&c| c != '\n' && c != '\t' && airgap_format::display::is_unsafe_char(c))
        .collect()
}

fn assert_clean(out: &Output, what: &str) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        let bad = unsafe_chars(&text);
        assert!(bad.is_empty(), "{what}: {name} carries {bad:?}:\n{text}");
        assert!(
            !text.lines().any(|l| l.starts_with("FAKE")),
            "{what}: {name} has a line the bundle wrote:\n{text}"
        );
    }
}

/// Runs `cmd`, killing it after `limit`: a hang is a failure, not a wait.
/// Its output is read while it runs, so a long one cannot block it.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    use std::io::Read;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still ran after {limit:?} (killed):\n{}",
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The demo bundle with its keys, and a site folder (the example site and
/// its secrets) to render it for.
struct Demo {
    tmp: tempfile::TempDir,
    bundle: PathBuf,
    key: PathBuf,
    public: PathBuf,
}

impl Demo {
    fn new() -> Demo {
        let tmp = tempfile::tempdir().unwrap();
        let (bundle, key, public) = demo_bundle(tmp.path());
        let site = tmp.path().join("site");
        std::fs::create_dir_all(site.join("site-secrets")).unwrap();
        let root = repo_root().join("manifests");
        std::fs::copy(root.join("site.example.yaml"), site.join("site.yaml")).unwrap();
        for f in std::fs::read_dir(root.join("site-secrets")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, site.join("site-secrets").join(f.file_name().unwrap())).unwrap();
        }
        Demo {
            tmp,
            bundle,
            key,
            public,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.tmp.path().join(p)
    }

    fn site(&self) -> PathBuf {
        self.path("site/site.yaml")
    }

    fn installer(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("airgap-install"));
        c.args(args)
            .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config")
            .env("AIRGAP_INSTALL_STATE_DIR", self.path("state"))
            .env("PLATFORM_OIDC_CLIENT_SECRET", "example")
            .env("IMAGING_DB_PASSWORD", "example")
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR");
        c
    }

    fn render(&self, bundle: &Path, out: &Path) -> Command {
        let mut c = self.installer(&["render"]);
        c.arg(bundle)
            .arg("--trust")
            .arg(&self.public)
            .arg("--site")
            .arg(self.site())
            .arg("--out")
            .arg(out);
        c
    }

    /// The demo rewritten by `edit` and signed with the vendor's key.
    fn crafted(&self, name: &str, edit: impl FnOnce(&mut Crafted)) -> PathBuf {
        let mut c = Crafted::open(&self.bundle);
        edit(&mut c);
        let out = self.path(name);
        c.write(&out, &self.key);
        out
    }
}

/// Every file under `dir`, recursively, as paths relative to it.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Replaces the chart's name, in `charts` and in render.yaml, by `name`.
fn rename_chart(c: &mut Crafted, name: &str) {
    c.json["charts"][0]["name"] = name.into();
    let spec = c.template_digest("render.yaml");
    let text = String::from_utf8(c.blobs[&spec].clone()).unwrap();
    let yaml_name = serde_json::to_string(name).unwrap();
    let text = text.replace("chart: hello", &format!("chart: {yaml_name}"));
    c.replace_blob(&spec, text.into_bytes());
}

// 1. render never writes outside --out --------------------------------------

#[test]
fn render_never_writes_outside_its_output_folder() {
    let d = Demo::new();
    // charts/NAME-VERSION.tgz with NAME = ../../escaped lands two folders
    // above charts/ unless every path is built below the folder.
    let hostile = d.crafted("escape.bundle", |c| rename_chart(c, "../../escaped"));
    let nest = d.path("a/b");
    std::fs::create_dir_all(&nest).unwrap();
    let out = nest.join("out");
    let before = files_under(d.tmp.path());
    let o = run_bounded(&mut d.render(&hostile, &out), Duration::from_secs(120));
    assert!(!o.status.success(), "rendered a chart named ../../escaped");
    let line = stderr(&o);
    assert!(
        line.contains("escaped") && line.contains("error:"),
        "the refusal names the chart: {line}"
    );
    let after = files_under(d.tmp.path());
    let new: Vec<&String> = after
        .iter()
        .filter(|f| !before.contains(f) && !f.starts_with("a/b/out/"))
        .collect();
    assert!(new.is_empty(), "written outside --out: {new:?}");
    assert!(!after.iter().any(|f| f.contains("escaped")), "{after:?}");
}

#[test]
fn render_refuses_symbolic_links_planted_in_its_output_folder() {
    let d = Demo::new();
    let out = d.path("out");
    let outside = d.path("outside");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, out.join("values")).unwrap();
    let o = run_bounded(&mut d.render(&d.bundle, &out), Duration::from_secs(120));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("values: is a symbolic link"),
        "{}",
        stderr(&o)
    );
    assert!(files_under(&outside).is_empty());
    // A link where plan.json goes is not followed either.
    std::fs::remove_file(out.join("values")).unwrap();
    std::os::unix::fs::symlink(outside.join("victim"), out.join("plan.json")).unwrap();
    let o = run_bounded(&mut d.render(&d.bundle, &out), Duration::from_secs(120));
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("plan.json: is a symbolic link"),
        "{}",
        stderr(&o)
    );
    assert!(!outside.join("victim").exists());
    // Without the links, the same render works.
    std::fs::remove_file(out.join("plan.json")).unwrap();
    ok(&mut d.render(&d.bundle, &out));
}

// 2. no untrusted string runs in install-plan.sh ----------------------------

#[test]
fn chart_names_cannot_inject_commands_into_the_install_plan() {
    let d = Demo::new();
    let out = d.path("out");
    let pwned = d.path("PWNED");
    let hostile_names = [
        format!("hello\ntouch {}", pwned.display()),
        format!("hello$(touch {})", pwned.display()),
        format!("hello`touch {}`", pwned.display()),
        format!("hello';touch {};'", pwned.display()),
        format!("hello\";touch {};\"", pwned.display()),
        format!("hello;touch {}", pwned.display()),
    ];
    // A recording helm: each call's arguments, one per line.
    let helm = d.path("helm");
    std::fs::write(
        &helm,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done >> {}\n",
            d.path("helm.log").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helm, std::fs::Permissions::from_mode(0o755)).unwrap();
    for (i, name) in hostile_names.iter().enumerate() {
        let bundle = d.crafted(&format!("inject-{i}.bundle"), |c| rename_chart(c, name));
        let o = run_bounded(&mut d.render(&bundle, &out), Duration::from_secs(120));
        assert_clean(&o, name);
        let script = out.join("install-plan.sh");
        if o.status.success() {
            // Whatever was written, running it runs nothing but helm.
            let text = std::fs::read_to_string(&script).unwrap();
            assert!(unsafe_chars(&text).is_empty(), "{text}");
            let run = Command::new("sh")
                .arg(&script)
                .env("HELM", &helm)
                .env("AIRGAP_SKIP_HEALTH", "1")
                .output()
                .unwrap();
            assert!(run.status.success(), "{run:?}");
        } else {
            assert!(stderr(&o).contains("error:"), "{}", stderr(&o));
        }
        assert!(!pwned.exists(), "chart name {name:?} ran a command");
        let _ = std::fs::remove_dir_all(&out);
    }
}

// 3. rendering is bounded ----------------------------------------------------

/// A bundle built from the demo manifest with the demo's templates plus
/// `extra` (name, text), `render.yaml` listing each extra template as a
/// file to render.
fn bundle_with_templates(d: &Demo, name: &str, extra: &[(&str, String)]) -> PathBuf {
    // The bundler refuses templates that render would refuse (issue 16),
    // so a hostile vendor's bundle is crafted: built with a placeholder for
    // each extra template, whose blob then takes the hostile text.
    let placeholders: Vec<(&str, String)> = extra
        .iter()
        .map(|(t, _)| (*t, format!("placeholder for {t}\n")))
        .collect();
    let manifest = template_sources(d, name, &placeholders);
    let built = d.path(&format!("{name}-placeholders.bundle"));
    ok(build_cmd(&manifest, &d.key, &built).arg("--skip-sbom"));
    let mut c = Crafted::open(&built);
    for (t, text) in extra {
        let digest = c.template_digest(t);
        c.replace_blob(&digest, text.clone().into_bytes());
    }
    let out = d.path(&format!("{name}.bundle"));
    c.write(&out, &d.key);
    out
}

/// The demo's sources in NAME-src with `extra` templates, those whose
/// names do not start with `_` rendered as files; returns the manifest.
fn template_sources(d: &Demo, name: &str, extra: &[(&str, String)]) -> PathBuf {
    let top = d.path(&format!("{name}-src"));
    let _ = std::fs::remove_dir_all(&top);
    std::fs::create_dir_all(&top).unwrap();
    let demo = repo_root().join("manifests");
    let copy = Command::new("cp")
        .arg("-r")
        .arg(demo.join("demo"))
        .arg(&top)
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::copy(demo.join("demo.yaml"), top.join("demo.yaml")).unwrap();
    // The example site file the demo's profile names, where it looks.
    std::fs::copy(
        demo.join("site.example.yaml"),
        top.join("site.example.yaml"),
    )
    .unwrap();
    let src = top.join("demo");
    let mut spec = std::fs::read_to_string(src.join("templates/render.yaml")).unwrap();
    for (t, text) in extra {
        std::fs::write(src.join("templates").join(t), text).unwrap();
        if !t.starts_with('_') {
            spec.push_str(&format!("  - template: {t}\n    output: {t}.out\n"));
        }
    }
    std::fs::write(src.join("templates/render.yaml"), spec).unwrap();
    top.join("demo.yaml")
}

#[test]
fn partials_that_double_forty_deep_are_refused_at_once() {
    let d = Demo::new();
    // p0 includes p1 twice, p1 includes p2 twice, …: 2^40 expansions.
    let mut extra: Vec<(String, String)> = (0..40)
        .map(|i| {
            (
                format!("_p{i}.hbs"),
                format!("{{{{> _p{0}.hbs}}}}{{{{> _p{0}.hbs}}}}", i + 1),
            )
        })
        .collect();
    extra.push(("_p40.hbs".into(), "x".into()));
    extra.push(("doubling.hbs".into(), "{{> _p0.hbs}}".into()));
    let refs: Vec<(&str, String)> = extra.iter().map(|(a, b)| (a.as_str(), b.clone())).collect();
    let bundle = bundle_with_templates(&d, "doubling", &refs);
    let start = Instant::now();
    let o = run_bounded(
        &mut d.render(&bundle, &d.path("out")),
        Duration::from_secs(60),
    );
    assert!(!o.status.success());
    let line = stderr(&o);
    assert!(line.contains("partials nest more than 16 deep"), "{line}");
    assert!(line.contains("template _p"), "names the template: {line}");
    eprintln!("refused in {:?}", start.elapsed());
    assert!(!d.path("out").join("plan.json").exists());
}

#[test]
fn partials_that_include_each_other_are_refused() {
    let d = Demo::new();
    let templates = [
        ("_a.hbs", "{{> _b.hbs}}{{> _b.hbs}}".to_string()),
        ("_b.hbs", "{{> _a.hbs}}{{> _a.hbs}}".to_string()),
        ("loop.hbs", "{{> _a.hbs}}".to_string()),
    ];
    // The bundler refuses to build it, naming the template.
    let manifest = template_sources(&d, "loop-built", &templates);
    let line = fails(build_cmd(&manifest, &d.key, &d.path("loop-built.bundle")).arg("--skip-sbom"));
    assert!(
        line.contains(
            "templates[0].source: template _a.hbs: partials include each other in a loop"
        ) && line.ends_with("; fix the template (templates.md)"),
        "{line}"
    );
    // And render refuses it, crafted.
    let bundle = bundle_with_templates(&d, "loop", &templates);
    let o = run_bounded(
        &mut d.render(&bundle, &d.path("out")),
        Duration::from_secs(60),
    );
    assert!(!o.status.success());
    let line = stderr(&o);
    assert!(
        line.contains("partials include each other in a loop"),
        "{line}"
    );
}

#[test]
fn huge_outputs_are_refused_naming_the_template() {
    let d = Demo::new();
    // A 1 MiB partial doubled four times: 16 MiB from a few small steps.
    let mib = "x".repeat(1 << 20);
    let bundle = bundle_with_templates(
        &d,
        "huge",
        &[
            ("_mib.hbs", mib),
            ("_d1.hbs", "{{> _mib.hbs}}{{> _mib.hbs}}".into()),
            ("_d2.hbs", "{{> _d1.hbs}}{{> _d1.hbs}}".into()),
            ("_d3.hbs", "{{> _d2.hbs}}{{> _d2.hbs}}".into()),
            ("huge.hbs", "{{> _d3.hbs}}{{> _d3.hbs}}".into()),
        ],
    );
    let out = d.path("out");
    let o = run_bounded(&mut d.render(&bundle, &out), Duration::from_secs(60));
    assert!(!o.status.success());
    let line = stderr(&o);
    assert!(
        line.contains("template huge.hbs") && line.contains("output larger than 8388608 bytes"),
        "{line}"
    );
    assert!(!out.join("huge.hbs.out").exists());
}

#[test]
fn nested_loops_over_site_data_are_bounded() {
    let d = Demo::new();
    let bundle = bundle_with_templates(
        &d,
        "loops",
        &[(
            "loops.hbs",
            "{{#each site}}{{#each ../site}}{{#each ../../site}}{{#each ../../../site}}{{#each ../../../../site}}{{#each ../../../../../site}}{{#each ../../../../../../site}}{{/each}}{{/each}}{{/each}}{{/each}}{{/each}}{{/each}}{{/each}}".into(),
        )],
    );
    let o = run_bounded(
        &mut d.render(&bundle, &d.path("out")),
        Duration::from_secs(60),
    );
    assert!(!o.status.success());
    let line = stderr(&o);
    assert!(
        line.contains("template loops.hbs") && line.contains("steps"),
        "{line}"
    );
}

// 4. nothing untrusted reaches the terminal raw -----------------------------

#[test]
fn escape_sequences_in_a_bundle_never_reach_the_terminal() {
    let d = Demo::new();
    let esc = "\u{1b}]0;PWNED\u{7}\u{1b}[2J\nFAKE LINE\r\u{202e}";
    let described = d.crafted("escapes.bundle", |c| {
        c.json["description"] = format!("about {esc}").into();
        c.json["generator"] = format!("gen {esc}").into();
        c.json["charts"][0]["appVersion"] = format!("1.0{esc}").into();
        c.json["files"][0]["name"] = "docs/READ\u{202e}dm.EM".into();
    });
    // A platform, where the image and its SBOMs name it (SBOM file names
    // are made from it).
    let hostile_platform = format!("linux/amd64{esc}");
    let platformed = d.crafted("platform.bundle", |c| {
        c.json["images"][0]["platforms"][0] = hostile_platform.clone().into();
        for e in c.json["sboms"].as_array_mut().unwrap() {
            if e["image"] == "demo/web:1.0.0" && e["platform"] == "linux/amd64" {
                e["platform"] = hostile_platform.clone().into();
            }
        }
        let sboms = c.json["sboms"].as_array_mut().unwrap();
        sboms.sort_by(|a, b| {
            let key = |v: &serde_json::Value| {
                (
                    v["image"].as_str().map(str::to_string),
                    v["platform"].as_str().map(str::to_string),
                    v["format"].as_str().map(str::to_string),
                )
            };
            key(a).cmp(&key(b))
        });
    });
    let out = d.path("sboms");
    let mut shown = 0;
    for hostile in [&described, &platformed] {
        for args in [
            vec!["inspect"],
            vec!["verify", "--trust"],
            vec!["sbom", "--list", "--trust"],
            vec!["sbom", "--out", out.to_str().unwrap(), "--trust"],
            vec!["plan", "--trust"],
        ] {
            let mut c = d.installer(&args[..1]);
            c.arg(hostile).args(&args[1..]);
            if args.len() > 1 && *args.last().unwrap() == "--trust" {
                c.arg(&d.public);
            }
            let o = run_bounded(&mut c, Duration::from_secs(60));
            assert_clean(&o, &args.join(" "));
            let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
            shown += all.matches("\\u{1b}").count();
        }
    }
    // Whichever refused or showed them, the hostile values were shown
    // (escaped) at least by inspect, which checks no signature.
    assert!(shown >= 2, "the hostile values were never shown");
    // No file name carries them either.
    for f in files_under(d.tmp.path()) {
        assert!(unsafe_chars(&f).is_empty(), "{f:?}");
    }
}

#[test]
fn a_hostile_entry_name_gives_one_clean_error_line() {
    let d = Demo::new();
    let (mut entries, mtime) = airgap_e2e::craft::read_entries(&d.bundle);
    // An extra entry whose name retitles the terminal and starts a line.
    let name = "x\u{1b}]0;t\u{7}\nerror: FAKE";
    let mut header = [0u8; 512];
    header.copy_from_slice(&entries[2].header);
    header[..100].fill(0);
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|&b| b as u32).sum();
    header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    entries.insert(
        3,
        airgap_e2e::craft::Raw {
            header,
            data: b"x".to_vec(),
        },
    );
    let bad = d.path("entry.bundle");
    airgap_e2e::craft::write_archive(&bad, &entries, &d.key, mtime);
    let o = run_bounded(&mut verify_cmd(&bad, &d.public), Duration::from_secs(60));
    assert!(!o.status.success());
    assert_clean(&o, "verify");
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("\\u{1b}"), "shown escaped: {err}");
}

// 5. and 6. site files, parts, keys and licences: regular and bounded ------

#[test]
fn special_files_are_refused_without_blocking() {
    let d = Demo::new();
    let fifo = d.path("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let limit = Duration::from_secs(30);
    // A bundle, a key, a licence, a site file.
    let o = run_bounded(&mut verify_cmd(&fifo, &d.public), limit);
    assert!(
        stderr(&o).contains("is a FIFO, not a regular file"),
        "{}",
        stderr(&o)
    );
    let o = run_bounded(&mut verify_cmd(&d.bundle, &fifo), limit);
    assert!(
        stderr(&o).contains("is a FIFO, not a regular file"),
        "{}",
        stderr(&o)
    );
    let mut lic = d.installer(&["license", "activate"]);
    lic.arg(&fifo).arg("--trust").arg(&d.public);
    let o = run_bounded(&mut lic, limit);
    assert!(stderr(&o).contains("FIFO"), "{}", stderr(&o));
    let mut render = d.installer(&["render"]);
    render
        .arg(&d.bundle)
        .arg("--trust")
        .arg(&d.public)
        .arg("--site")
        .arg(&fifo)
        .arg("--out")
        .arg(d.path("out"));
    let o = run_bounded(&mut render, limit);
    assert!(
        stderr(&o).contains("is a FIFO, not a regular file"),
        "{}",
        stderr(&o)
    );
    // A media part.
    let parts = d.path("parts.bundle");
    std::os::unix::fs::symlink(&fifo, d.path("parts.bundle.part-001")).unwrap();
    let o = run_bounded(&mut verify_cmd(&parts, &d.public), limit);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("FIFO"), "{}", stderr(&o));
}

#[test]
fn files_a_site_names_are_read_only_when_regular_and_bounded() {
    let d = Demo::new();
    let site = std::fs::read_to_string(d.site()).unwrap();
    let limit = Duration::from_secs(30);
    for (ca, needle) in [
        ("/dev/zero", "is a character device, not a regular file"),
        (
            "big-ca.pem",
            "larger than the 4194304-byte limit for a CA bundle",
        ),
    ] {
        std::fs::write(d.path("site/big-ca.pem"), vec![b'A'; 5 << 20]).unwrap();
        std::fs::write(
            d.site(),
            site.replace(
                "internalCa: site-secrets/internal-ca.pem",
                &format!("internalCa: {ca}"),
            ),
        )
        .unwrap();
        let o = run_bounded(&mut d.render(&d.bundle, &d.path("out")), limit);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(needle), "{ca}: {}", stderr(&o));
        let mut health = d.installer(&["health", "--site"]);
        health.arg(d.site());
        let o = run_bounded(&mut health, limit);
        assert!(stderr(&o).contains(needle), "health {ca}: {}", stderr(&o));
    }
}

// 7. smaller: long values, repository paths ---------------------------------

#[test]
fn a_huge_site_value_gives_a_short_error_line() {
    let d = Demo::new();
    let site = std::fs::read_to_string(d.site()).unwrap();
    let huge = "N".repeat(900_000);
    std::fs::write(
        d.site(),
        site.replace("name: example-research", &format!("name: {huge}")),
    )
    .unwrap();
    let o = run_bounded(
        &mut d.render(&d.bundle, &d.path("out")),
        Duration::from_secs(60),
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.len() < 4096, "{} bytes of error", err.len());
    assert!(
        err.contains("name") && err.contains("900000 bytes"),
        "{err}"
    );
}

#[test]
fn repository_paths_are_checked_before_any_request() {
    let d = Demo::new();
    // Port 9 on loopback: nothing listens; a request would fail otherwise.
    for registry in [
        "127.0.0.1:9/site/../../v2/x",
        "127.0.0.1:9/..",
        "127.0.0.1:9?x/site",
        "user@127.0.0.1:9/site",
    ] {
        let mut push = d.installer(&["push"]);
        push.arg(&d.bundle)
            .arg("--trust")
            .arg(&d.public)
            .arg("--registry")
            .arg(registry)
            .arg("--plain-http")
            .arg("--relocation-map")
            .arg(d.path("map.json"));
        let o = run_bounded(&mut push, Duration::from_secs(60));
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(err.contains("--registry"), "{registry}: {err}");
        assert!(
            !err.contains("connect"),
            "{registry}: a request was made: {err}"
        );
    }
    // A chart whose name climbs out of charts/ never reaches the registry.
    let hostile = d.crafted("climb.bundle", |c| rename_chart(c, "../../v2"));
    let mut push = d.installer(&["push"]);
    push.arg(&hostile)
        .arg("--trust")
        .arg(&d.public)
        .arg("--registry")
        .arg("127.0.0.1:9/site")
        .arg("--plain-http")
        .arg("--relocation-map")
        .arg(d.path("map.json"));
    let o = run_bounded(&mut push, Duration::from_secs(60));
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(!err.contains("connect"), "a request was made: {err}");
    assert!(err.contains("v2"), "{err}");
}
