//! SIGINT and SIGTERM in the middle of real work: `airgap-bundle build`
//! waiting for a layer a stalled registry holds back, and `airgap-install
//! install --apply` while `helm` runs. Each command must print `interrupted;
//! run the same command again to resume`, exit with 130 (SIGINT) or 143
//! (SIGTERM), and leave what the same command again resumes: no partial
//! bundle file; for install, its journal and an `interrupted` audit record.
//! `status` lists the unfinished run, `abandon` gives it up. A build killed
//! outright (SIGKILL) leaves its partial file, which the next build
//! removes.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use airgap_e2e::demo_site::{demo_release, demo_site};
use airgap_e2e::fault_proxy::{Fault, FaultProxy};
use airgap_e2e::harness::*;
use airgap_e2e::registry::Registry;
use airgap_e2e::*;
use serde_json::Value;

const MESSAGE: &str = "interrupted; run the same command again to resume";

/// Waits until `ready()` or the child ends (a failure: it should still be
/// running), at most 60 s.
fn wait_for(child: &mut Child, what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the command ended ({status}) before {what}: {err}");
        }
        assert!(Instant::now() < deadline, "never got to {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `signal` to the child (or to its whole process group, as a
/// terminal's Ctrl-C does), then collects its output.
fn interrupt(child: Child, signal: i32, group: bool) -> Output {
    let pid = child.id() as i32;
    // SAFETY: kill(2) with a pid (or process group) this test started.
    let rc = unsafe { libc::kill(if group { -pid } else { pid }, signal) };
    assert_eq!(rc, 0, "kill");
    child.wait_with_output().unwrap()
}

fn assert_interrupted(out: &Output, code: i32) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.lines().any(|l| l == MESSAGE), "{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_interrupted_build_removes_its_partial_file_and_a_killed_ones_is_swept() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    let big = LayerBlob::gzipped(layer_tar(&[(
        "srv/data.bin",
        &airgap_e2e::fixtures::noise(1 << 20, 7),
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
    reg.publish(tmp.path(), &image, "vendor/big:1");
    // The big layer is held back: the build has begun writing the bundle
    // and waits for it.
    let layer = big.digest();
    let stall = move || -> Box<airgap_e2e::fault_proxy::Schedule> {
        let layer = layer.clone();
        Box::new(move |_, method, path| {
            if method == "GET" && path.ends_with(&layer) {
                Fault::Stall(Duration::from_secs(30))
            } else {
                Fault::Pass
            }
        })
    };
    let proxy = FaultProxy::start(&reg.addr(), stall());
    let addr = proxy.addr();
    let manifest = tmp.path().join("m.yaml");
    std::fs::write(
        &manifest,
        format!(
            "name: pulled\nversion: 1.0.0\nimages:\n  - source: {addr}/vendor/big:1\nregistries:\n  - host: {addr}\n    plainHttp: true\n"
        ),
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("b.bundle");
    let build = || {
        let mut c = build_cmd(&manifest, &key, &out);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    };
    let has_partial = || !partial_files(&out_dir).is_empty();

    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let mut child = build().spawn().unwrap();
        wait_for(&mut child, "the partial file", has_partial);
        let o = interrupt(child, signal, false);
        assert_interrupted(&o, code);
        assert!(
            partial_files(&out_dir).is_empty(),
            "{:?}",
            partial_files(&out_dir)
        );
        assert!(!out.exists());
    }

    // SIGKILL: nothing can clean up; the next build does.
    let mut child = build().spawn().unwrap();
    wait_for(&mut child, "the partial file", has_partial);
    child.kill().unwrap();
    child.wait().unwrap();
    let left = partial_files(&out_dir);
    assert_eq!(left.len(), 1, "{left:?}");
    proxy.set_schedule(Box::new(|_, _, _| Fault::Pass));
    let o = run(&mut build());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("removed the partial file") && stderr.contains("that was killed"),
        "{stderr}"
    );
    assert!(partial_files(&out_dir).is_empty());
    ok(&mut verify_cmd(&out, &public));
}

struct Slow {
    path_env: String,
}

/// `helm` on the PATH that takes `HELM_TAKES` seconds (default 30).
fn slow_helm(dir: &Path) -> Slow {
    let wrap = dir.join("bin");
    std::fs::create_dir_all(&wrap).unwrap();
    std::fs::write(
        wrap.join("helm"),
        format!("#!/bin/sh\n{HELM_VERSION_LINE}exec sleep \"${{HELM_TAKES:-30}}\"\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(wrap.join("helm"), std::fs::Permissions::from_mode(0o755)).unwrap();
    // No cluster here: kubectl answers preflight's version questions.
    kubectl_stand_in(&wrap);
    Slow {
        path_env: format!(
            "{}:{}",
            wrap.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    }
}

fn audit_lines(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn journals(state: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(state.join("runs")).map_or(Vec::new(), |rd| {
        rd.flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect()
    })
}

#[test]
fn an_interrupted_install_is_recorded_listed_resumed_or_abandoned() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    let helm = slow_helm(tmp.path());
    let s = demo_site(
        &tmp.path().join("site"),
        &reg.addr(),
        &tmp.path().join("state"),
        None,
    );
    let v1 = demo_release(tmp.path(), &key, "1.0.0", None, None);
    let v2 = demo_release(tmp.path(), &key, "1.1.0", None, None);
    let install = |bundle: &Path| {
        let mut c = s.install(bundle, &public);
        c.args(["--apply", "--skip-health"])
            .env("PATH", &helm.path_env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let state = s.state.clone();
    let rendered = |before: usize| {
        let state = state.clone();
        move || {
            audit_lines(&state)[before..]
                .iter()
                .any(|r| r["step"] == "render" && r["outcome"] == "ok")
        }
    };

    // Ctrl-C at a terminal: SIGINT to the whole process group, helm too.
    let before = audit_lines(&s.state).len();
    let mut child = install(&v1).process_group(0).spawn().unwrap();
    wait_for(&mut child, "render ok", rendered(before));
    std::thread::sleep(Duration::from_millis(300));
    let o = interrupt(child, libc::SIGINT, true);
    assert_interrupted(&o, 130);
    let last = audit_lines(&s.state).pop().unwrap();
    assert_eq!(
        (&last["step"], &last["outcome"], &last["bundle"]),
        (&"apply".into(), &"interrupted".into(), &"demo@1.0.0".into()),
        "{last:#}"
    );
    let detail = last["detail"].as_str().unwrap();
    assert!(detail.starts_with("SIGINT during step apply"), "{detail}");
    assert_eq!(journals(&s.state).len(), 1);

    // status lists the run, with how to resume or give it up.
    let text = ok(s.installer().arg("status"));
    assert!(text.starts_with("nothing installed\n"), "{text}");
    assert!(
        text.contains("unfinished runs:\n  demo@1.0.0  sha256:"),
        "{text}"
    );
    assert!(
        text.contains("done: verify, license, push, render; next: apply"),
        "{text}"
    );
    assert!(
        text.contains("to resume: run the same airgap-install install command again (bundle "),
        "{text}"
    );
    assert!(
        text.contains("to give it up: airgap-install abandon demo@1.0.0"),
        "{text}"
    );
    let st = s.status_json();
    assert_eq!(st["installed"].as_array().unwrap().len(), 0, "{st:#}");
    let run = &st["unfinished"][0];
    assert_eq!(run["bundle"], "demo@1.0.0", "{st:#}");
    assert_eq!(run["nextStep"], "apply", "{st:#}");
    assert_eq!(
        run["abandon"], "airgap-install abandon demo@1.0.0",
        "{st:#}"
    );

    // The same command again resumes it.
    let o = run_output(install(&v1).env("HELM_TAKES", "0"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("render    resumed"), "{out}");
    assert!(out.contains("apply     ok"), "{out}");
    assert!(journals(&s.state).is_empty());
    assert_eq!(s.status_json()["unfinished"], Value::Array(vec![]));

    // SIGTERM to the installer alone, during the upgrade; then abandon.
    let before = audit_lines(&s.state).len();
    let mut child = install(&v2).env("HELM_TAKES", "5").spawn().unwrap();
    wait_for(&mut child, "render ok", rendered(before));
    std::thread::sleep(Duration::from_millis(300));
    let o = interrupt(child, libc::SIGTERM, false);
    assert_interrupted(&o, 143);
    let last = audit_lines(&s.state).pop().unwrap();
    assert_eq!(last["outcome"], "interrupted", "{last:#}");
    assert!(
        last["detail"].as_str().unwrap().starts_with("SIGTERM"),
        "{last:#}"
    );
    let text = ok(s.installer().arg("status"));
    assert!(text.contains("upgrade from 1.0.0"), "{text}");
    let said = ok(s.installer().args(["abandon", "demo@1.1.0"]));
    assert!(
        said.starts_with("abandoned the unfinished run of demo@1.1.0"),
        "{said}"
    );
    assert!(journals(&s.state).is_empty());
    let last = audit_lines(&s.state).pop().unwrap();
    assert_eq!(
        (&last["command"], &last["outcome"], &last["bundle"]),
        (&"abandon".into(), &"abandoned".into(), &"demo@1.1.0".into()),
        "{last:#}"
    );
    let st = s.status_json();
    assert_eq!(st["unfinished"], Value::Array(vec![]), "{st:#}");
    assert_eq!(st["installed"][0]["version"], "1.0.0", "{st:#}");
    let line = fails(s.installer().args(["abandon", "demo@1.1.0"]));
    assert!(line.contains("no unfinished install run matches"), "{line}");
    // History shows both records.
    let history = ok(s.installer().arg("history"));
    assert!(history.contains("interrupted"), "{history}");
    assert!(history.contains("abandoned"), "{history}");
}

fn run_output(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}
