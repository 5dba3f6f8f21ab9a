//! SIGKILL at random points of `airgap-install install --apply`, then the
//! same command again, in a loop.
//!
//! The bundle is the demo carrying a licence; the site's registry is
//! Debian's docker-registry on loopback, its health endpoints an HTTPS
//! server, and `helm` a recorder on the PATH (it logs its arguments and
//! takes 0.2 s), so every step of a run does real work: verify, license,
//! push, render, apply, health, record. A reference run first measures how
//! long each step takes; each iteration then aims at one step: it waits
//! until the run has logged the step before it, sleeps a delay drawn
//! within the step's length from a seeded generator, kills the run, checks
//! what the kill left, reruns the command and checks the result:
//!
//! - after the kill: every tag in the registry points at the bundle's
//!   digest; `status` and `history` answer, and what `status` shows is a
//!   whole record (none, or this install);
//! - after the rerun: it exits 0; the install is recorded once, applied,
//!   with its licence; the journal is gone, and so is every temporary file
//!   a killed write left in the state folder; the audit log parses line by
//!   line, holds every step, ends with `install ok` (once, or twice when the
//!   killed run had logged it), and says `install` (not `reinstall`) unless
//!   the killed run had already finished (its journal removed, whether or
//!   not the process got to exit); every image
//!   copies out of the registry whole (skopeo).
//!
//! Where the kills landed (the step each interrupted, from the audit log)
//! is printed as a table. `AIRGAP_SIGKILL_SEED` and
//! `AIRGAP_SIGKILL_ITERATIONS` change the seed (default 15) and the count
//! (default 45; up to half as many again are added to reach a window no
//! kill has landed in yet).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airgap_e2e::demo_site::{demo_release, demo_site, DemoSite};
use airgap_e2e::harness::*;
use airgap_e2e::https_server::HttpsServer;
use airgap_e2e::registry::Registry;
use rand::{Rng, SeedableRng};
use serde_json::Value;

/// The steps of a run, in order, as the audit log names them.
const STEPS: &[&str] = &[
    "preflight",
    "verify",
    "license",
    "push",
    "render",
    "apply",
    "health",
    "record",
];

/// Where a kill landed, from the audit records the killed run left:
/// before its start record, in a step (the first not yet logged as done),
/// or after its last record.
fn landed(records: &[Value], finished: bool) -> String {
    let Some(last) = records.last() else {
        return "before the run started".into();
    };
    let (step, outcome) = (
        last["step"].as_str().unwrap_or(""),
        last["outcome"].as_str().unwrap_or(""),
    );
    match (step, outcome) {
        ("install", "started") => STEPS[0].into(),
        ("install", "ok") if finished => "after the run finished".into(),
        ("install", "ok") => "after install ok, before the journal was removed".into(),
        (s, _) => match STEPS.iter().position(|x| *x == s) {
            Some(i) if i + 1 < STEPS.len() => STEPS[i + 1].into(),
            Some(_) => "after record, before the run's last record".into(),
            None => format!("after {s} {outcome}"),
        },
    }
}

/// Lines in the audit log so far.
/// Whether an unfinished run's journal (`runs/HEX.json`) is in the state
/// folder.
fn journal_left(state: &Path) -> bool {
    std::fs::read_dir(state.join("runs")).is_ok_and(|rd| {
        rd.flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".json"))
    })
}

fn audit_line_count(state: &Path) -> usize {
    std::fs::read(state.join("audit.log")).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
}

/// The audit log as stored: one JSON object per line, every line whole.
fn audit_lines(state: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(state.join("audit.log")).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a damaged audit log line ({e}): {l:?}"))
        })
        .collect()
}

/// A journal, or what an interrupted write or plan left, anywhere in the
/// state folder.
fn leftovers(state: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if name.starts_with(".airgap-") || name.starts_with(".plan-") {
                out.push(rel);
            } else if p.is_dir() {
                walk(root, &p, out);
            } else if rel.starts_with("runs/") {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(state, state, &mut out);
    out
}

struct Bench {
    site_dir: PathBuf,
    registry: String,
    health: HttpsServer,
    bundle: PathBuf,
    public: PathBuf,
    path_env: String,
}

impl Bench {
    /// A fresh site for iteration `i`: its own state folder and registry
    /// prefix, so each run pushes and records from nothing.
    fn site(&self, i: usize) -> (DemoSite, String) {
        let dir = self.site_dir.join(format!("it{i}"));
        let s = demo_site(&dir, &self.registry, &dir.join("state"), Some(&self.health));
        let prefix = format!("site{i}");
        let text = std::fs::read_to_string(&s.file)
            .unwrap()
            .replace("prefix: site", &format!("prefix: {prefix}"));
        std::fs::write(&s.file, text).unwrap();
        (s, prefix)
    }

    fn install(&self, s: &DemoSite) -> Command {
        let mut c = s.install(&self.bundle, &self.public);
        c.args(["--apply", "--json"]).env("PATH", &self.path_env);
        c
    }
}

#[test]
fn sigkill_at_random_points_then_rerun() {
    require_tool("skopeo");
    let seed: u64 = std::env::var("AIRGAP_SIGKILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let iterations: usize = std::env::var("AIRGAP_SIGKILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(45);
    eprintln!("SIGKILL loop: seed {seed}, {iterations} iterations");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    let health = HttpsServer::start();
    for p in ["/cp/health", "/ws/genomics/health", "/ws/imaging/health"] {
        health.route_delayed(p, 200, r#"{"status":"ok"}"#, Duration::from_millis(100));
    }
    // helm: records its arguments, takes 0.2 s.
    let wrap = tmp.path().join("bin");
    std::fs::create_dir_all(&wrap).unwrap();
    let helm_log = tmp.path().join("helm.log");
    std::fs::write(
        wrap.join("helm"),
        format!(
            "#!/bin/sh\n{HELM_VERSION_LINE}echo \"$@\" >> '{}'\nsleep \"${{HELM_TAKES:-0.2}}\"\n",
            helm_log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(wrap.join("helm"), std::fs::Permissions::from_mode(0o755)).unwrap();
    kubectl_stand_in(&wrap);
    let path_env = format!(
        "{}:{}",
        wrap.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let probe = demo_site(
        &tmp.path().join("probe"),
        &reg.addr(),
        &tmp.path().join("probe/state"),
        None,
    );
    let lic = probe.licence(tmp.path(), &key, "demo");
    let bundle = demo_release(tmp.path(), &key, "1.0.0", None, Some(&lic));
    let bench = Bench {
        site_dir: tmp.path().join("sites"),
        registry: reg.addr(),
        health,
        bundle: bundle.clone(),
        public: public.clone(),
        path_env,
    };
    let r = airgap_format::ArchiveReader::open(&bundle, airgap_format::Limits::default()).unwrap();
    let d = r.read_descriptor_unverified().unwrap().1;
    let tags: Vec<(String, String)> = d
        .images
        .iter()
        .map(|i| (i.reference.clone(), i.digest.to_string()))
        .chain(d.charts.iter().map(|c| {
            (
                format!("charts/{}:{}", c.name, c.version),
                c.manifest.to_string(),
            )
        }))
        .collect();

    // The reference run: when each of its audit records appears.
    let (s, _) = bench.site(9999);
    let started = Instant::now();
    let mut child = bench
        .install(&s)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut marks: Vec<Duration> = Vec::new();
    loop {
        let n = audit_lines(&s.state).len();
        while marks.len() < n {
            marks.push(started.elapsed());
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let total = started.elapsed();
    let records = audit_lines(&s.state);
    assert_eq!(
        records.last().map(|r| (&r["step"], &r["outcome"])),
        Some((&"install".into(), &"ok".into())),
        "the reference run failed: {records:#?}"
    );
    // Windows: [start of the run, `install started`), then one per step
    // (from the record before it to its own), then the last record.
    let mut windows: Vec<(String, Duration, Duration)> =
        vec![("before the run started".into(), Duration::ZERO, marks[0])];
    for (i, step) in STEPS.iter().enumerate() {
        windows.push((step.to_string(), marks[i], marks[i + 1]));
    }
    windows.push((
        "after record, before the run's last record".into(),
        marks[STEPS.len()],
        marks[STEPS.len() + 1],
    ));
    eprintln!("reference run: {total:?}");
    for (name, from, to) in &windows {
        eprintln!("  {name:<45} {from:>10.1?} .. {to:>10.1?}");
    }

    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut hits: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut reruns = Vec::new();
    // Every window in turn first; then the window with the fewest kills
    // so far, until each has one and `iterations` kills are done (at most
    // half as many again are added to reach a window not yet hit).
    let limit = iterations + iterations / 2;
    let mut i = 0;
    while i < limit {
        let landed_in = |w: &str| hits.get(w).map_or(0, |h| h.0);
        if i >= iterations && windows.iter().all(|w| landed_in(&w.0) > 0) {
            break;
        }
        let k = if i < windows.len() {
            i
        } else {
            (0..windows.len())
                .min_by_key(|k| (landed_in(&windows[*k].0), (*k + i) % windows.len()))
                .unwrap()
        };
        i += 1;
        let (name, from, to) = &windows[k];
        let span = to.saturating_sub(*from).as_micros().max(1) as u64;
        let delay = Duration::from_micros(rng.gen_range(0..span));
        let (s, prefix) = bench.site(i);
        let mut child = bench
            .install(&s)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Window k starts when the run has logged k records (window 0 when
        // it starts): wait for that, then the random delay, then kill.
        let deadline = Instant::now() + Duration::from_secs(30);
        while k > 0 && audit_line_count(&s.state) < k && child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "iteration {i}: the run never got to {name}"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        let records = audit_lines(&s.state);
        let logged_ok = records
            .last()
            .is_some_and(|r| r["step"] == "install" && r["outcome"] == "ok");
        // The run's work is done once its journal is gone, even when the
        // kill came before the process exited.
        let finished = status.success() || (logged_ok && !journal_left(&s.state));
        let at = landed(&records, finished);
        hits.entry(at.clone()).or_default().0 += 1;
        hits.entry(name.clone()).or_default().1 += 1;

        // What the kill left: tags right or absent; status and history answer.
        for (tag, digest) in &tags {
            let got = reg.skopeo_inspect_raw_digest(&format!("{prefix}/{tag}"));
            assert!(
                got.is_none() || got.as_deref() == Some(digest.as_str()),
                "iteration {i} (kill at {delay:?}, in {at}): {prefix}/{tag} points at {got:?}"
            );
        }
        let st = s.status();
        assert!(
            st.is_empty() || (st.len() == 1 && st[0]["bundleDigest"].is_string()),
            "{st:?}"
        );
        s.audit();

        // The same command again completes, and everything is consistent.
        let out = run(&mut bench.install(&s));
        assert!(
            out.status.success(),
            "iteration {i} (seed {seed}, kill at {delay:?}, in {at}): the rerun failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let resumed = report["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["outcome"] == "resumed")
            .count();
        reruns.push(resumed);
        let kind = if finished { "reinstall" } else { "install" };
        assert_eq!(
            report["kind"], kind,
            "iteration {i} (seed {seed}, kill at {delay:?}, in {at}): {report:#}"
        );
        let st = s.status();
        assert_eq!(st.len(), 1, "{st:?}");
        assert_eq!(st[0]["version"], "1.0.0");
        assert_eq!(st[0]["applied"], true, "{st:?}");
        assert_eq!(st[0]["licenseSerial"], 1, "{st:?}");
        assert!(st[0]["previous"].as_array().unwrap().is_empty(), "{st:?}");
        let audit = audit_lines(&s.state);
        assert_eq!(audit.len(), s.audit().len(), "history shows every line");
        let last = audit.last().unwrap();
        let ended = if finished { "skipped" } else { "ok" };
        assert_eq!(
            (&last["step"], &last["outcome"]),
            (&"install".into(), &ended.into()),
            "iteration {i}: {audit:#?}"
        );
        assert_eq!(
            audit
                .iter()
                .filter(|r| r["step"] == "install" && r["outcome"] == "ok")
                .count(),
            // A run killed after its `install ok` is resumed and logs it again.
            if logged_ok && !finished { 2 } else { 1 },
            "iteration {i}: {audit:#?}"
        );
        for step in STEPS {
            assert!(
                audit
                    .iter()
                    .any(|r| r["step"] == *step && r["outcome"] == "ok"),
                "iteration {i}: no {step} ok: {audit:#?}"
            );
        }
        let left: Vec<String> = leftovers(&s.state);
        assert!(
            left.is_empty(),
            "iteration {i} (in {at}): left behind: {left:?}"
        );
        let licence: Value = serde_json::from_str(&ok(s
            .installer()
            .args(["license", "status", "--json", "--trust"])
            .arg(&public)))
        .unwrap();
        assert_eq!(licence["serial"], 1);
        assert_eq!(licence["state"], "valid");
        for (tag, digest) in &tags {
            assert_eq!(
                reg.skopeo_inspect_raw_digest(&format!("{prefix}/{tag}"))
                    .as_deref(),
                Some(digest.as_str())
            );
        }
        let dest = tmp.path().join("copy");
        let _ = std::fs::remove_dir_all(&dest);
        ok(Command::new("skopeo")
            .args(["copy", "--all", "-q"])
            .args(reg.skopeo_src_args())
            .arg(reg.docker_ref(&format!("{prefix}/{}", tags[0].0)))
            .arg(format!("oci:{}:x", dest.display())));
        std::fs::remove_dir_all(s.state.parent().unwrap()).unwrap();
    }

    let mut table =
        String::from("\n| window | kills aimed at it | kills that landed in it |\n|---|---|---|\n");
    for (name, _, _) in &windows {
        let (n, aimed) = hits.remove(name).unwrap_or_default();
        table.push_str(&format!("| {name} | {aimed} | {n} |\n"));
    }
    for (name, (n, aimed)) in hits {
        table.push_str(&format!("| {name} | {aimed} | {n} |\n"));
    }
    eprintln!(
        "{table}\n{i} kills (seed {seed}), every rerun completed; steps resumed by the reruns: {reruns:?}"
    );
}

/// A run killed after it wrote the install record, but before it logged
/// that and updated its journal, is resumed as what it started as: the
/// record step is done again, and the run is reported and logged as the
/// upgrade it was (not as a reinstall of what the record now names).
#[test]
fn a_run_killed_after_writing_its_record_resumes_as_what_it_started_as() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let reg = Registry::start_plain();
    // helm takes 2 s: a run is killed while it applies.
    let wrap = tmp.path().join("bin");
    std::fs::create_dir_all(&wrap).unwrap();
    std::fs::write(
        wrap.join("helm"),
        format!("#!/bin/sh\n{HELM_VERSION_LINE}sleep 2\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(wrap.join("helm"), std::fs::Permissions::from_mode(0o755)).unwrap();
    kubectl_stand_in(&wrap);
    let path_env = format!(
        "{}:{}",
        wrap.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let s = demo_site(
        &tmp.path().join("site"),
        &reg.addr(),
        &tmp.path().join("state"),
        None,
    );
    let v1 = demo_release(tmp.path(), &key, "1.0.0", None, None);
    let v2 = demo_release(tmp.path(), &key, "1.1.0", None, None);
    ok(&mut s.install(&v1, &public));
    let upgrade = || {
        let mut c = s.install(&v2, &public);
        c.args(["--apply", "--skip-health", "--json"])
            .env("PATH", &path_env);
        c
    };

    // Killed in apply: the journal has verify … render.
    let before = audit_lines(&s.state).len();
    let mut child = upgrade()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !audit_lines(&s.state)[before..]
        .iter()
        .any(|r| r["step"] == "render" && r["outcome"] == "ok")
    {
        assert!(Instant::now() < deadline, "render never finished");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Well inside apply (helm sleeps 2 s): the journal written after
    // render is complete, even on a loaded machine.
    std::thread::sleep(Duration::from_millis(500));
    assert!(child.try_wait().unwrap().is_none(), "the run ended early");
    child.kill().unwrap();
    child.wait().unwrap();
    let runs = s.state.join("runs");
    let journal = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .expect("the killed run's journal");
    let killed_journal = std::fs::read(&journal).unwrap();
    let killed_audit = std::fs::read(s.state.join("audit.log")).unwrap();
    // Finish it, then put the journal and the audit log back as they were:
    // the state of a run killed right after it wrote installs/demo.json.
    ok(&mut upgrade());
    assert_eq!(s.status()[0]["version"], "1.1.0");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::write(&journal, &killed_journal).unwrap();
    std::fs::write(s.state.join("audit.log"), &killed_audit).unwrap();

    let r: Value = serde_json::from_str(&ok(&mut upgrade())).unwrap();
    assert_eq!(r["kind"], "upgrade", "{r:#}");
    assert_eq!(r["fromVersion"], "1.0.0", "{r:#}");
    let record = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["step"] == "record")
        .unwrap();
    assert_eq!(record["detail"], "demo 1.0.0 -> 1.1.0", "{r:#}");
    let audit = s.audit();
    let last = audit.last().unwrap();
    assert_eq!(last["detail"], "upgrade demo@1.1.0", "{last:#}");
    let st = s.status();
    assert_eq!(st[0]["version"], "1.1.0");
    let previous: Vec<&Value> = st[0]["previous"].as_array().unwrap().iter().collect();
    assert_eq!(previous.len(), 1, "{st:?}");
    assert_eq!(previous[0]["version"], "1.0.0");
}
