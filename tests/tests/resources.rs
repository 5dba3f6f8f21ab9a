//! Resource exhaustion and concurrency, end to end:
//!
//! - a build onto a small tmpfs that the bundle does not fit fails with one
//!   error line naming the file and the fix, and leaves nothing behind
//!   (whole bundles and media parts);
//! - the installer's state folder on a tmpfs filled to every level from
//!   full to roomy: an install that cannot record fails clearly, and what
//!   was recorded before (the install record, the audit log, the active
//!   licence) stays intact and readable by `status`, `history` and
//!   `license status`; once there is room, the same command completes;
//! - installers started together on one state folder are serialised by its
//!   lock: the later ones wait, and give up clearly after 10 seconds.
//!
//! The tmpfs is mounted in a private mount namespace
//! ([`airgap_e2e::harness::SmallFs`]).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airgap_e2e::demo_site::{copy_dir, demo_release, demo_site, pairs, steps, DemoSite, FULL_RUN};
use airgap_e2e::fault_proxy::{nth_matching, Fault, FaultProxy};
use airgap_e2e::harness::*;
use airgap_e2e::registry::Registry;
use serde_json::Value;

/// Every file and folder below `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// Building onto a full disk
// ---------------------------------------------------------------------------

#[test]
fn a_build_onto_a_full_disk_fails_clearly_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    // 12 MiB of incompressible layers: a 12 MiB bundle, onto 4 MiB.
    let layout = tmp.path().join("big");
    ok(Command::new(bin("gen-fixtures"))
        .arg("bench-layout")
        .arg(&layout)
        .args(["--size", "12M", "--layers", "2"]));
    let manifest = tmp.path().join("big.yaml");
    std::fs::write(
        &manifest,
        format!(
            "name: big\nversion: 1.0.0\nimages:\n  - source: oci-layout:{}:bench/big:1.0\n",
            layout.display()
        ),
    )
    .unwrap();
    let small = SmallFs::mount("4m");
    let free = small.free();
    for (name, extra) in [("whole", &[][..]), ("split", &["--split", "1MiB"][..])] {
        let out = small.path().join(format!("{name}.bundle"));
        let line = fails(build_cmd(&manifest, &key, &out).args(extra));
        eprintln!("{name}: {line}");
        assert!(
            line.contains(&out.display().to_string()),
            "the error names the bundle file: {line}"
        );
        assert!(line.contains("No space left on device"), "{line}");
        assert!(line.contains("--out"), "the error says what to do: {line}");
        assert!(
            !line.contains("bench/big") && !line.contains(&layout.display().to_string()),
            "the source is not the problem: {line}"
        );
        assert_eq!(
            listing(&small.path()),
            Vec::<String>::new(),
            "nothing left behind"
        );
        assert_eq!(small.free(), free, "every byte given back");
    }
    // With room, the same build completes and verifies.
    let roomy = tmp.path().join("roomy.bundle");
    ok(&mut build_cmd(&manifest, &key, &roomy));
    ok(&mut verify_cmd(&roomy, &public));
}

// ---------------------------------------------------------------------------
// The installer's state folder on a full disk
// ---------------------------------------------------------------------------

/// What `status`, `history` and `license status` say, for comparing.
struct Recorded {
    status: Vec<Value>,
    history: Vec<Value>,
    licence: Value,
}

fn recorded(s: &DemoSite, public: &Path) -> Recorded {
    Recorded {
        status: s.status(),
        history: s.audit(),
        licence: serde_json::from_str(&ok(s
            .installer()
            .args(["license", "status", "--json", "--trust"])
            .arg(public)))
        .unwrap(),
    }
}

#[test]
fn a_full_state_folder_loses_nothing_recorded() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    let small = SmallFs::mount("1m");
    let state = small.path().join("state");
    let s = demo_site(&tmp.path().join("site"), &reg.addr(), &state, None);
    // Recorded first: licence serial 1, then demo 1.0.0.
    let lic1 = s.licence(tmp.path(), &key, "serial-1");
    ok(s.installer()
        .args(["license", "activate"])
        .arg(&lic1)
        .arg("--trust")
        .arg(&public));
    let v1 = demo_release(tmp.path(), &key, "1.0.0", None, None);
    ok(&mut s.install(&v1, &public));
    // The upgrade carries licence serial 2.
    let lic2 = s.licence(tmp.path(), &key, "serial-2");
    let v2 = demo_release(tmp.path(), &key, "1.1.0", None, Some(&lic2));
    let before = recorded(&s, &public);
    assert_eq!(before.status[0]["version"], "1.0.0");
    assert_eq!(before.licence["serial"], 1);
    let snapshot = tmp.path().join("snapshot");
    copy_dir(&state, &snapshot);

    // Preflight refuses the upgrade on the full disk before anything
    // changes, naming the room it needs.
    small.fill(0);
    let err = fails(&mut s.install(&v2, &public));
    assert!(
        err.contains("preflight found 1 problem, nothing was changed: space: state folder:")
            && err.contains("0 bytes free, needs "),
        "{err}"
    );
    eprintln!("preflight on the full disk: {err}");
    std::fs::remove_file(small.path().join("filler")).unwrap();
    assert_eq!(recorded(&s, &public).status, before.status);

    // The upgrade with 0, 4, 8 … KiB free, until it has room: with
    // --skip-preflight, so that every step meets the full disk (as when the
    // disk fills while a run goes on).
    let mut rows = Vec::new();
    let mut completed = 0;
    for kib in (0..).step_by(4) {
        std::fs::remove_dir_all(&state).unwrap();
        copy_dir(&snapshot, &state);
        let filler = small.fill(kib << 10);
        let free = small.free();
        let out = run(s.install(&v2, &public).arg("--skip-preflight"));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = stderr.lines().last().unwrap_or("").to_string();
        let succeeded = out.status.success();
        if !succeeded {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(
                line.starts_with("error: ") && !stderr.contains("panicked"),
                "{stderr}"
            );
            assert!(
                line.contains("No space left on device")
                    && line.contains("free space on it, then run the same command again"),
                "the error says the disk is full and what to do: {line}"
            );
            assert!(
                !line.contains(".airgap-"),
                "the error names the state file, not a temp file: {line}"
            );
        }
        // Still on the full disk: everything recorded before is there.
        let now = recorded(&s, &public);
        if !succeeded {
            assert_eq!(now.status, before.status, "{free} bytes free: {line}");
            assert!(
                now.licence["serial"] == 1 || now.licence["serial"] == 2,
                "{:#}",
                now.licence
            );
            assert_eq!(now.licence["state"], "valid", "{:#}", now.licence);
        }
        assert_eq!(
            &now.history[..before.history.len()],
            &before.history[..],
            "{free} bytes free: earlier audit records changed: {line}"
        );
        // The step the run stopped in, from its own audit records.
        let stopped = now.history[before.history.len()..]
            .iter()
            .rev()
            .find(|r| r["outcome"] == "failed")
            .map(|r| r["step"].as_str().unwrap().to_string())
            .unwrap_or_else(|| {
                if succeeded {
                    "-".into()
                } else {
                    "(not logged)".into()
                }
            });
        // With room again, the same command completes.
        std::fs::remove_file(&filler).unwrap();
        let r: Value = serde_json::from_str(&ok(s.install(&v2, &public).arg("--json"))).unwrap();
        let after = recorded(&s, &public);
        assert_eq!(after.status[0]["version"], "1.1.0", "{r:#}");
        assert_eq!(after.status[0]["previous"][0]["version"], "1.0.0");
        assert_eq!(
            after.status[0]["previous"].as_array().unwrap().len(),
            1,
            "{:?}",
            after.status
        );
        assert_eq!(after.licence["serial"], 2);
        assert_eq!(after.licence["state"], "valid");
        assert_eq!(&after.history[..before.history.len()], &before.history[..]);
        let last = after.history.last().unwrap();
        if succeeded {
            assert_eq!(r["kind"], "reinstall", "{r:#}");
        } else {
            assert_eq!(
                (&last["step"], &last["outcome"]),
                (&"install".into(), &"ok".into())
            );
            assert_eq!(r["kind"], "upgrade", "{r:#}");
        }
        rows.push(format!(
            "| {free} | {} | {stopped} | {} |",
            if succeeded { "exit 0" } else { "exit 1" },
            if succeeded {
                "-".to_string()
            } else {
                format!("`{}`", line.replace(&state.display().to_string(), "STATE"))
            }
        ));
        if succeeded {
            completed += 1;
            if completed == 2 {
                break;
            }
        }
        assert!(kib < 512, "never completed:\n{}", rows.join("\n"));
    }
    eprintln!(
        "\n| bytes free | upgrade | failed step | error line |\n|---|---|---|---|\n{}",
        rows.join("\n")
    );
    // Where render ran out of room, its own error is reported (the audit
    // log, on the same full disk, cannot take the failure either).
    assert!(
        rows.iter()
            .any(|r| r.contains("STATE/installs/demo/1.1.0/config/")),
        "no level failed in render with render's error:\n{}",
        rows.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Two installers, one state folder
// ---------------------------------------------------------------------------

#[test]
fn installers_on_one_state_folder_are_serialised_by_its_lock() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    let proxy = FaultProxy::start(&reg.addr(), Box::new(|_, _, _| Fault::Pass));
    let s = demo_site(
        &tmp.path().join("site"),
        &proxy.addr(),
        &tmp.path().join("state"),
        None,
    );
    let v1 = demo_release(tmp.path(), &key, "1.0.0", None, None);
    let v2 = demo_release(tmp.path(), &key, "1.1.0", None, None);

    // Three installs of 1.0.0 at once: one installs, the others wait for
    // the lock and then find it installed.
    let children: Vec<_> = (0..3)
        .map(|_| {
            s.install(&v1, &public)
                .arg("--json")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let kinds: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let r: Value = serde_json::from_slice(&out.stdout).unwrap();
            format!("{} {}", r["kind"], r["steps"].as_array().unwrap().len())
        })
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["\"install\" 8", "\"reinstall\" 1", "\"reinstall\" 1"],
        "{kinds:?}"
    );
    let mut want = FULL_RUN.to_vec();
    want.extend([("install", "skipped"), ("install", "skipped")]);
    assert_eq!(steps(&s.audit()), pairs(&want), "runs interleaved");

    let before_upgrade = s.audit().len();
    // The upgrade holds the lock for 15 s (its first tag check is held up
    // that long); a second one started meanwhile waits 10 s and gives up,
    // changing nothing.
    proxy.set_schedule(nth_matching(
        |method, path| method == "HEAD" && path.contains("/manifests/"),
        0,
        1,
        Fault::Stall(Duration::from_secs(15)),
    ));
    let first = s
        .install(&v2, &public)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Started: its `install started` record is in the audit log (its
    // preflight then waits on the stalled tag check, holding the lock).
    let log = s.state.join("audit.log");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) <= before_upgrade {
        assert!(Instant::now() < deadline, "the upgrade never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Readers are never held up by the lock, and see the recorded state.
    assert_eq!(s.status()[0]["version"], "1.0.0");
    let started = Instant::now();
    let line = fails(&mut s.install(&v2, &public));
    let waited = started.elapsed();
    assert!(
        line.contains(
            "another airgap-install run is using this state folder; wait for it to finish"
        ),
        "{line}"
    );
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(14),
        "waited {waited:?}"
    );
    let out = first.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let audit = s.audit();
    assert_eq!(
        steps(&audit[before_upgrade..]),
        pairs(FULL_RUN),
        "the refused run left records, or runs interleaved"
    );
    let st = s.status();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0]["version"], "1.1.0");
    assert_eq!(st[0]["previous"][0]["version"], "1.0.0");
    eprintln!("second upgrade refused after {waited:?}: {line}");
}
