//! The fault table: every fault of [`Fault`] at the requests that matter,
//! against `airgap-install push` (a bundle into Debian's docker-registry
//! behind the fault proxy) and the bundler's pull (`airgap-bundle build` of
//! a manifest whose images come from a registry behind the proxy), plain
//! and with bearer tokens.
//!
//! For each case the tool's exit status, its retries (counted from its
//! debug log) and its error line are recorded, and then the registry (for
//! push) or the output folder (for pull) is checked:
//!
//! - push: every tag of the bundle that exists in the registry must point
//!   at the bundle's digest, and `skopeo copy --all` must copy it out (which
//!   checks every digest); a failed run must end with one `error:` line;
//!   then the same command without the fault must complete, and every tag
//!   must be right.
//! - pull: a build either writes a bundle that `airgap-install verify`
//!   accepts, with the registry's digests, or fails with one `error:` line
//!   and leaves nothing under the output name (nor a `.partial` file); then
//!   the same build without the fault, with the same cache, must complete.
//!
//! Each case also says what the tool should do: complete (the fault is one
//! the documented retries cover) or fail cleanly. The table is printed on
//! stderr (`cargo test -p airgap-e2e --test faults -- --nocapture`) and,
//! when `AIRGAP_FAULTS_TABLE` names a file, appended to it as Markdown rows
//! (docs/reliability.md's table comes from there). `AIRGAP_FAULTS_FILTER`
//! runs only the rows whose tool, fault and request text contains it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use airgap_e2e::fault_proxy::{Fault, FaultProxy, Schedule};
use airgap_e2e::harness::*;
use airgap_e2e::registry::Registry;
use airgap_e2e::token_registry::TokenRegistry;
use airgap_e2e::*;
use airgap_format::BundleDescriptor;

// ---------------------------------------------------------------------------
// Requests and cases
// ---------------------------------------------------------------------------

/// The kinds of request a fault is aimed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Req {
    /// `HEAD /v2/R/manifests/REF` (push's tag check).
    ManifestHead,
    /// `GET /v2/R/manifests/REF` (pull).
    ManifestGet,
    /// `PUT /v2/R/manifests/sha256:…` (push, by digest).
    ManifestPut,
    /// `PUT /v2/R/manifests/TAG` (push, the tag).
    TagPut,
    /// `HEAD /v2/R/blobs/sha256:…` (push).
    BlobHead,
    /// `GET /v2/R/blobs/sha256:…` (pull).
    BlobGet,
    /// `POST /v2/R/blobs/uploads/` (push: an upload or a mount starts).
    UploadPost,
    /// `PATCH` of an upload session (push: a chunk).
    UploadPatch,
    /// `PUT` of an upload session (push: a whole blob, or the closing PUT
    /// of a chunked upload).
    UploadPut,
    /// `GET /token` (bearer token service).
    Token,
    /// Any request.
    Any,
}

impl Req {
    fn name(self) -> &'static str {
        match self {
            Req::ManifestHead => "manifest HEAD",
            Req::ManifestGet => "manifest GET",
            Req::ManifestPut => "manifest PUT (digest)",
            Req::TagPut => "manifest PUT (tag)",
            Req::BlobHead => "blob HEAD",
            Req::BlobGet => "blob GET",
            Req::UploadPost => "upload POST",
            Req::UploadPatch => "upload PATCH",
            Req::UploadPut => "upload PUT",
            Req::Token => "token GET",
            Req::Any => "every request",
        }
    }

    fn matches(self, method: &str, path: &str) -> bool {
        let p = path.split('?').next().unwrap_or(path);
        let by_digest = p.contains("/manifests/sha256:");
        match self {
            Req::ManifestHead => method == "HEAD" && p.contains("/manifests/"),
            Req::ManifestGet => method == "GET" && p.contains("/manifests/"),
            Req::ManifestPut => method == "PUT" && by_digest,
            Req::TagPut => method == "PUT" && p.contains("/manifests/") && !by_digest,
            Req::BlobHead => method == "HEAD" && p.contains("/blobs/sha256:"),
            Req::BlobGet => method == "GET" && p.contains("/blobs/sha256:"),
            Req::UploadPost => method == "POST" && p.contains("/blobs/uploads/"),
            Req::UploadPatch => method == "PATCH",
            Req::UploadPut => method == "PUT" && p.contains("/blobs/uploads/"),
            Req::Token => p.starts_with("/token"),
            Req::Any => true,
        }
    }
}

/// How many of the matching requests get the fault.
#[derive(Clone, Copy, Debug)]
enum Times {
    /// One.
    Once,
    /// This many in a row.
    N(usize),
    /// Every one.
    Always,
    /// Every one for this long after the first.
    For(Duration),
}

/// Which requests of the kind: any, or those whose path holds a marker.
#[derive(Clone, Copy, Debug)]
enum On {
    Any,
    /// Paths naming the large layer's digest.
    BigLayer,
    /// Paths holding this text.
    Path(&'static str),
}

/// What the tool should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// Finish as if nothing happened (the documented retries cover it).
    Completes,
    /// Stop with one clear error line.
    Fails,
}

#[derive(Clone, Copy, Debug)]
struct Case {
    fault: Fault,
    req: Req,
    on: On,
    /// Matching requests let through before the first fault.
    skip: usize,
    times: Times,
    expect: Expect,
}

const fn case(fault: Fault, req: Req, times: Times, expect: Expect) -> Case {
    Case {
        fault,
        req,
        on: On::Any,
        skip: 0,
        times,
        expect,
    }
}

const fn on(mut c: Case, on: On) -> Case {
    c.on = on;
    c
}

const fn skip(mut c: Case, skip: usize) -> Case {
    c.skip = skip;
    c
}

fn fault_text(f: Fault) -> String {
    match f {
        Fault::Pass => "none".into(),
        Fault::Status(s) => format!("HTTP {s}"),
        Fault::RetryAfter(s, secs) => format!("HTTP {s}, Retry-After: {secs}"),
        Fault::Drop => "connection dropped (no answer)".into(),
        Fault::Reset => "connection reset (RST) mid-request".into(),
        Fault::Stall(d) => format!("stall {} s", d.as_secs_f64()),
        Fault::Cut(n) => format!("response cut after {n} bytes"),
        Fault::CutBody(n) => format!("response cut {n} bytes into its body"),
        Fault::CutRequest(n) => format!("request body cut after {n} bytes"),
        Fault::FlipResponse(n) => format!("response body byte {n} flipped"),
        Fault::FlipRequest(n) => format!("request body byte {n} flipped"),
    }
}

fn times_text(c: &Case) -> String {
    let t = match c.times {
        Times::Once => "once".to_string(),
        Times::N(n) => format!("{n}×"),
        Times::Always => "always".to_string(),
        Times::For(d) => format!("for {} s", d.as_secs()),
    };
    let which = match c.on {
        On::Any => String::new(),
        On::BigLayer => " (the large layer)".into(),
        On::Path(p) => format!(" ({p})"),
    };
    let nth = if c.skip > 0 {
        format!(", from match #{}", c.skip + 1)
    } else {
        String::new()
    };
    format!("{t}{which}{nth}")
}

/// Whether the case is run: all, or with `AIRGAP_FAULTS_FILTER=TEXT` only
/// those whose row (tool, fault, request) contains TEXT, to reproduce one
/// row.
fn selected(tool: &str, c: &Case) -> bool {
    match std::env::var("AIRGAP_FAULTS_FILTER") {
        Ok(f) if !f.is_empty() => format!(
            "{tool} | {} | {} ({})",
            fault_text(c.fault),
            c.req.name(),
            times_text(c)
        )
        .contains(&f),
        _ => true,
    }
}

/// The proxy's schedule for a case.
fn schedule(c: Case, big_layer: &str) -> Box<Schedule> {
    let marker = match c.on {
        On::Any => None,
        On::BigLayer => Some(big_layer.to_string()),
        On::Path(p) => Some(p.to_string()),
    };
    let seen = AtomicUsize::new(0);
    let first: Mutex<Option<Instant>> = Mutex::new(None);
    Box::new(move |_, method, path| {
        if !c.req.matches(method, path) || marker.as_ref().is_some_and(|m| !path.contains(m)) {
            return Fault::Pass;
        }
        let i = seen.fetch_add(1, Ordering::SeqCst);
        if i < c.skip {
            return Fault::Pass;
        }
        let k = i - c.skip;
        let hit = match c.times {
            Times::Once => k == 0,
            Times::N(n) => k < n,
            Times::Always => true,
            Times::For(d) => {
                let mut f = first.lock().unwrap();
                let start = *f.get_or_insert_with(Instant::now);
                start.elapsed() < d
            }
        };
        if hit {
            c.fault
        } else {
            Fault::Pass
        }
    })
}

// ---------------------------------------------------------------------------
// Running a tool and reading what it did
// ---------------------------------------------------------------------------

/// What one run of a tool did.
struct Run {
    code: Option<i32>,
    retries: usize,
    error: Option<String>,
    stderr: String,
    secs: f64,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// Failed the way every failure must: exit 1, the last line `error: …`,
    /// no panic.
    fn failed_cleanly(&self) -> bool {
        self.code == Some(1) && self.error.is_some() && !self.stderr.contains("panicked")
    }

    fn text(&self) -> String {
        match self.code {
            Some(0) => "exit 0".into(),
            Some(c) => format!("exit {c}"),
            None => "killed by a signal".into(),
        }
    }
}

/// Runs `cmd` with the retry logs of both programs on, and reads its
/// outcome. `stdin` is written to its standard input.
fn run_tool(mut cmd: Command, stdin: Option<&str>) -> Run {
    cmd.env(
        "RUST_LOG",
        "airgap_registry=debug,airgap_install=debug,airgap_bundle=debug",
    )
    .stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn");
    if let Some(s) = stdin {
        child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let retries = stderr
        .lines()
        .filter(|l| {
            l.contains("retrying") || l.contains("download retry") || l.contains("resuming")
        })
        .count();
    let error = stderr
        .lines()
        .last()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_string);
    Run {
        code: out.status.code(),
        retries,
        error,
        stderr,
        secs: started.elapsed().as_secs_f64(),
    }
}

/// One line of the table.
struct Row {
    tool: &'static str,
    case: Case,
    first: Run,
    state: String,
    rerun: String,
    ok: bool,
}

impl Row {
    fn markdown(&self) -> String {
        let did = match (&self.first.error, self.first.ok()) {
            (_, true) => format!(
                "completed, {} retries ({:.1} s)",
                self.first.retries, self.first.secs
            ),
            (Some(e), false) => format!(
                "{}, {} retries ({:.1} s): `{}`",
                self.first.text(),
                self.first.retries,
                self.first.secs,
                short(e, 160).replace('|', "\\|")
            ),
            (None, false) => format!("{} without an error line", self.first.text()),
        };
        format!(
            "| {} | {} ({}) | {} | {} | {} | {} | {} |",
            fault_text(self.case.fault),
            self.case.req.name(),
            times_text(&self.case),
            self.tool,
            did,
            self.state,
            self.rerun,
            if self.ok { "OK" } else { "**NO**" }
        )
    }
}

fn short(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max / 2).collect();
    let tail: String = s
        .chars()
        .rev()
        .take(max / 2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head}…{tail}")
}

/// Prints the table and appends it to `$AIRGAP_FAULTS_TABLE`; fails the
/// test when a row is not OK.
fn report(title: &str, rows: &[Row]) {
    let mut text = format!("\n### {title}\n\n| fault | request | tool | what the tool did | registry / output after it | rerun without the fault | OK? |\n|---|---|---|---|---|---|---|\n");
    for r in rows {
        text.push_str(&r.markdown());
        text.push('\n');
    }
    eprintln!("{text}");
    if let Some(path) = std::env::var_os("AIRGAP_FAULTS_TABLE") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }
    let bad: Vec<String> = rows
        .iter()
        .filter(|r| !r.ok)
        .map(|r| format!("{}\nstderr:\n{}", r.markdown(), tail(&r.first.stderr, 15)))
        .collect();
    assert!(bad.is_empty(), "cases not OK:\n{}", bad.join("\n\n"));
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------
// Registries: plain or with tokens, checked with skopeo
// ---------------------------------------------------------------------------

/// A registry the tests read back with skopeo (directly, not through the
/// proxy).
struct Site {
    addr: String,
    skopeo: Vec<String>,
    skopeo_src: Vec<String>,
    skopeo_dest: Vec<String>,
    /// `(user, password)` for the tools, for the token registry.
    credentials: Option<(String, String)>,
}

impl Site {
    fn plain(r: &Registry) -> Site {
        Site {
            addr: r.addr(),
            skopeo: r.skopeo_args(),
            skopeo_src: r.skopeo_src_args(),
            skopeo_dest: r.skopeo_dest_args(),
            credentials: None,
        }
    }

    fn token(r: &TokenRegistry) -> Site {
        Site {
            addr: r.addr(),
            skopeo: r.skopeo_args(),
            skopeo_src: r.skopeo_src_args(),
            skopeo_dest: r.skopeo_dest_args(),
            credentials: Some(r.credentials()),
        }
    }

    fn docker_ref(&self, repo_tag: &str) -> String {
        format!("docker://{}/{repo_tag}", self.addr)
    }

    /// The digest `repo_tag` resolves to, `None` when absent.
    fn inspect(&self, repo_tag: &str) -> Option<String> {
        let out = run(Command::new("skopeo")
            .args(["inspect", "--raw"])
            .args(&self.skopeo)
            .arg(self.docker_ref(repo_tag)));
        if out.status.success() {
            return Some(sha256_digest(&out.stdout));
        }
        let err = String::from_utf8_lossy(&out.stderr).to_ascii_lowercase();
        assert!(
            ["manifest unknown", "name unknown", "not found"]
                .iter()
                .any(|m| err.contains(m)),
            "skopeo inspect {repo_tag}: {err}"
        );
        None
    }

    /// Whether `skopeo copy --all` copies `repo_tag` out whole (it checks
    /// every blob's digest on the way).
    fn copies(&self, repo_tag: &str, scratch: &Path) -> Result<(), String> {
        let dest = scratch.join("copy");
        let _ = std::fs::remove_dir_all(&dest);
        let out = run(Command::new("skopeo")
            .args(["copy", "--all", "-q"])
            .args(&self.skopeo_src)
            .arg(self.docker_ref(repo_tag))
            .arg(format!("oci:{}:x", dest.display())));
        let _ = std::fs::remove_dir_all(&dest);
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    /// Checks every expected tag: absent, or at the right digest and
    /// copying out whole. Returns (summary, every present tag right, tags
    /// present).
    /// A tag in `copied` (copied whole earlier in the case, at the same
    /// digest, so with the same content) is not copied again.
    fn check(
        &self,
        tags: &[(String, String)],
        scratch: &Path,
        copied: &mut Vec<String>,
    ) -> (String, bool, usize) {
        let mut present = 0;
        let mut problems = Vec::new();
        for (tag, want) in tags {
            match self.inspect(tag) {
                None => {}
                Some(got) if &got == want => {
                    present += 1;
                    if copied.contains(tag) {
                        continue;
                    }
                    match self.copies(tag, scratch) {
                        Ok(()) => copied.push(tag.clone()),
                        Err(e) => problems.push(format!("{tag} does not copy: {}", short(&e, 200))),
                    }
                }
                Some(got) => {
                    present += 1;
                    problems.push(format!("{tag} points at {got}, not {want}"));
                }
            }
        }
        let summary = if problems.is_empty() {
            format!(
                "{present} of {} tags, each right and copied whole",
                tags.len()
            )
        } else {
            format!("**{}**", problems.join("; "))
        };
        (summary, problems.is_empty(), present)
    }
}

// ---------------------------------------------------------------------------
// Push
// ---------------------------------------------------------------------------

/// The bundle pushed: the demo's two images (one a two-platform index) and
/// chart, and an image of one 34 MiB layer, which goes in chunks.
struct PushFixture {
    bundle: PathBuf,
    public: PathBuf,
    descriptor: BundleDescriptor,
    big_layer: String,
}

fn push_fixture(dir: &Path) -> PushFixture {
    let (key, public) = keygen(dir, "vendor");
    let big = dir.join("big");
    ok(Command::new(bin("gen-fixtures"))
        .arg("bench-layout")
        .arg(&big)
        .args(["--size", "34M", "--layers", "1"]));
    let demo = repo_root().join("manifests/demo");
    let m = dir.join("faults.yaml");
    std::fs::write(
        &m,
        format!(
            "name: faults\nversion: 1.0.0\nimages:\n  - source: oci-layout:{web}:demo/web:1.0.0\n  - source: docker-archive:{worker}:demo/worker:1.0.0\n  - source: oci-layout:{big}:bench/big:1.0\ncharts:\n  - source: {chart}\n",
            web = demo.join("images/web-oci").display(),
            worker = demo.join("images/worker-docker.tar").display(),
            big = big.display(),
            chart = demo.join("charts/hello").display(),
        ),
    )
    .unwrap();
    let bundle = dir.join("faults.bundle");
    ok(build_cmd(&m, &key, &bundle).arg("--skip-sbom"));
    let r = airgap_format::ArchiveReader::open(&bundle, airgap_format::Limits::default()).unwrap();
    let descriptor = r.read_descriptor_unverified().unwrap().1;
    let big_layer = descriptor
        .blobs
        .iter()
        .max_by_key(|b| b.size)
        .unwrap()
        .digest
        .to_string();
    PushFixture {
        bundle,
        public,
        descriptor,
        big_layer,
    }
}

impl PushFixture {
    /// (repo:tag under `prefix`, digest) of every image and chart.
    fn tags(&self, prefix: &str) -> Vec<(String, String)> {
        let d = &self.descriptor;
        d.images
            .iter()
            .map(|i| (format!("{prefix}/{}", i.reference), i.digest.to_string()))
            .chain(d.charts.iter().map(|c| {
                (
                    format!("{prefix}/charts/{}:{}", c.name, c.version),
                    c.manifest.to_string(),
                )
            }))
            .collect()
    }

    fn push(&self, registry: &str, site: &Site, dir: &Path) -> Run {
        let mut c = push_cmd(&self.bundle, &self.public, registry, &dir.join("map.json"));
        c.arg("--plain-http");
        match &site.credentials {
            Some((user, password)) => {
                c.args(["--username", user, "--password-stdin"]);
                run_tool(c, Some(&format!("{password}\n")))
            }
            None => run_tool(c, None),
        }
    }
}

/// Runs each case against a push into `site` through `proxy`, each under
/// its own repository prefix (so every case starts from an empty
/// repository), and checks the registry after the faulty run and after a
/// rerun without the fault.
fn push_rows(
    fx: &PushFixture,
    site: &Site,
    proxy: &FaultProxy,
    cases: &[Case],
    label: &str,
    tool: &'static str,
    dir: &Path,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, c) in cases.iter().enumerate().filter(|(_, c)| selected(tool, c)) {
        let prefix = format!("{label}{i}");
        let case_dir = dir.join(&prefix);
        std::fs::create_dir_all(&case_dir).unwrap();
        let target = format!("{}/{prefix}", proxy.addr());
        let tags = fx.tags(&prefix);
        proxy.set_schedule(schedule(*c, &fx.big_layer));
        let first = fx.push(&target, site, &case_dir);
        let hit = proxy
            .entries()
            .iter()
            .filter(|e| e.fault != Fault::Pass)
            .count();
        let mut copied = Vec::new();
        let (state, state_ok, present) = site.check(&tags, &case_dir, &mut copied);
        proxy.set_schedule(Box::new(|_, _, _| Fault::Pass));
        let again = fx.push(&target, site, &case_dir);
        let (after, after_ok, after_present) = site.check(&tags, &case_dir, &mut copied);
        let rerun = if again.ok() && after_ok && after_present == tags.len() {
            format!("completed; {after}")
        } else {
            format!(
                "**{}: {}; {after}**",
                again.text(),
                again.error.clone().unwrap_or_default()
            )
        };
        let expected = match c.expect {
            Expect::Completes => first.ok() && present == tags.len(),
            Expect::Fails => first.failed_cleanly(),
        };
        let ok = hit > 0
            && (first.ok() || first.failed_cleanly())
            && state_ok
            && again.ok()
            && after_ok
            && after_present == tags.len()
            && expected;
        let state = if hit == 0 {
            "**the fault was never injected**".to_string()
        } else if !expected {
            format!(
                "{state} (**expected it to {}**)",
                match c.expect {
                    Expect::Completes => "complete",
                    Expect::Fails => "fail cleanly",
                }
            )
        } else {
            state
        };
        let _ = std::fs::remove_dir_all(&case_dir);
        rows.push(Row {
            tool,
            case: *c,
            first,
            state,
            rerun,
            ok,
        });
    }
    rows
}

use Expect::{Completes, Fails};
use Times::{Always, Once, N};

/// The cases run against push into a plain registry.
fn push_cases() -> Vec<Case> {
    vec![
        // The tag check before anything is written.
        case(Fault::Status(503), Req::ManifestHead, Once, Completes),
        case(Fault::Drop, Req::ManifestHead, Once, Completes),
        case(Fault::Status(500), Req::ManifestHead, Always, Fails),
        // Blob existence checks.
        case(Fault::Status(500), Req::BlobHead, Once, Completes),
        case(Fault::Reset, Req::BlobHead, Once, Completes),
        case(Fault::Status(502), Req::BlobHead, Always, Fails),
        // Upload sessions.
        case(Fault::Status(502), Req::UploadPost, Once, Completes),
        case(Fault::RetryAfter(429, 1), Req::UploadPost, Once, Completes),
        case(Fault::Status(429), Req::UploadPost, N(3), Completes),
        case(
            Fault::RetryAfter(429, 8),
            Req::Any,
            Times::For(Duration::from_secs(8)),
            Completes,
        ),
        case(
            Fault::Stall(Duration::from_secs(2)),
            Req::UploadPost,
            Once,
            Completes,
        ),
        // Whole-blob PUTs.
        case(Fault::Status(500), Req::UploadPut, Once, Completes),
        case(Fault::Drop, Req::UploadPut, Once, Completes),
        case(Fault::CutRequest(100), Req::UploadPut, Once, Completes),
        case(Fault::FlipRequest(100), Req::UploadPut, Once, Fails),
        case(Fault::Cut(20), Req::UploadPut, Once, Completes),
        // Chunks of the 34 MiB layer.
        case(Fault::Status(503), Req::UploadPatch, Once, Completes),
        skip(case(Fault::Reset, Req::UploadPatch, Once, Completes), 1),
        skip(
            case(
                Fault::CutRequest(8 << 20),
                Req::UploadPatch,
                Once,
                Completes,
            ),
            1,
        ),
        case(Fault::FlipRequest(1 << 20), Req::UploadPatch, Once, Fails),
        case(Fault::Status(500), Req::UploadPatch, Always, Fails),
        on(
            case(Fault::Status(500), Req::UploadPut, Once, Completes),
            On::Path("_state"),
        ),
        // Manifests by digest, then tags.
        case(Fault::Status(500), Req::ManifestPut, Once, Completes),
        case(Fault::Reset, Req::ManifestPut, Once, Completes),
        case(Fault::FlipRequest(10), Req::ManifestPut, Once, Completes),
        case(Fault::Drop, Req::ManifestPut, Always, Fails),
        case(Fault::Status(503), Req::TagPut, Once, Completes),
        case(Fault::Cut(12), Req::TagPut, Once, Completes),
        on(
            case(Fault::FlipRequest(120), Req::TagPut, Once, Completes),
            On::Path("/demo/web/manifests/1.0.0"),
        ),
        case(Fault::Status(500), Req::TagPut, Always, Fails),
    ]
}

/// The cases run against push into a registry with bearer tokens.
fn push_token_cases() -> Vec<Case> {
    vec![
        case(Fault::Status(503), Req::Token, Once, Completes),
        case(Fault::Drop, Req::Token, Once, Completes),
        // Byte 2 is in the key "token": the reply still names the token
        // as "access_token", which the Docker token spec allows.
        case(Fault::FlipResponse(2), Req::Token, Once, Completes),
        // Byte 0 is the opening brace: the reply is not JSON.
        case(Fault::FlipResponse(0), Req::Token, Once, Fails),
        case(Fault::Status(500), Req::Token, Always, Fails),
    ]
}

#[test]
fn push_fault_table() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let fx = push_fixture(tmp.path());
    let mut rows = Vec::new();
    {
        let reg = Registry::start_plain();
        let proxy = FaultProxy::start(&reg.addr(), Box::new(|_, _, _| Fault::Pass));
        rows.extend(push_rows(
            &fx,
            &Site::plain(&reg),
            &proxy,
            &push_cases(),
            "p",
            "push",
            tmp.path(),
        ));
    }
    {
        let reg = TokenRegistry::start("operator", "s3cret");
        let proxy = token_proxy(&reg);
        rows.extend(push_rows(
            &fx,
            &Site::token(&reg),
            &proxy,
            &push_token_cases(),
            "t",
            "push (tokens)",
            tmp.path(),
        ));
    }
    report("push", &rows);
}

/// A proxy in front of a token registry whose challenges name the proxy as
/// the token service, so token requests pass through it too.
fn token_proxy(reg: &TokenRegistry) -> FaultProxy {
    let proxy = FaultProxy::start(&reg.addr(), Box::new(|_, _, _| Fault::Pass));
    let tokens = reg.token_server().url();
    proxy.route("/token", tokens.trim_start_matches("http://"));
    proxy.rewrite_heads(&tokens, &format!("http://{}", proxy.addr()));
    proxy
}

// ---------------------------------------------------------------------------
// Pull
// ---------------------------------------------------------------------------

/// The images pulled: the demo's two-platform web image and an image with a
/// 3 MiB layer, put into the registry with skopeo (digests kept).
struct PullFixture {
    key: PathBuf,
    public: PathBuf,
    /// (repository:tag, digest)
    images: Vec<(String, String)>,
    big_layer: String,
}

fn pull_fixture(dir: &Path, site: &Site) -> PullFixture {
    let (key, public) = keygen(dir, "vendor");
    let mut images = Vec::new();
    let web = repo_root().join("manifests/demo/images/web-oci");
    let big_tar = layer_tar(&[("srv/data.bin", &noise(3 << 20, 7), 0o644)]);
    let big = LayerBlob::gzipped(big_tar);
    let big_layer = big.digest();
    let layout = dir.join("big-layout");
    let spec = ImageSpec {
        ref_name: "big".into(),
        platforms: vec![PlatformImage::linux(
            "amd64",
            vec![demo_base_layer(), big],
            &["/bin/hello"],
        )],
    };
    let big_digest = write_oci_layout(&layout, std::slice::from_ref(&spec)).unwrap()[0].clone();
    for (src, tag, digest) in [
        (
            format!("oci:{}:demo/web:1.0.0", web.display()),
            "vendor/web:1.0.0",
            None,
        ),
        (
            format!("oci:{}:big", layout.display()),
            "vendor/big:1",
            Some(big_digest),
        ),
    ] {
        ok(Command::new("skopeo")
            .args(["copy", "--all", "--preserve-digests", "-q"])
            .args(&site.skopeo_dest)
            .arg(&src)
            .arg(site.docker_ref(tag)));
        let got = site.inspect(tag).expect("published");
        if let Some(d) = digest {
            assert_eq!(got, d);
        }
        images.push((tag.to_string(), got));
    }
    PullFixture {
        key,
        public,
        images,
        big_layer,
    }
}

impl PullFixture {
    fn build(&self, registry: &str, site: &Site, dir: &Path) -> Run {
        let manifest = dir.join("m.yaml");
        let mut text = String::from("name: pulled\nversion: 1.0.0\nimages:\n");
        for (tag, _) in &self.images {
            text.push_str(&format!("  - source: {registry}/{tag}\n"));
        }
        text.push_str(&format!(
            "registries:\n  - host: {registry}\n    plainHttp: true\n"
        ));
        std::fs::write(&manifest, text).unwrap();
        let mut c = Command::new(bin("airgap-bundle"));
        c.arg("build")
            .arg(&manifest)
            .arg("--key")
            .arg(&self.key)
            .arg("--out")
            .arg(dir.join("out/pulled.bundle"))
            .arg("--skip-sbom")
            .env("AIRGAP_BUNDLE_CACHE", dir.join("cache"))
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .env_remove("XDG_CACHE_HOME");
        without_ambient_config(&mut c);
        match &site.credentials {
            Some((user, password)) => {
                c.arg("--username")
                    .arg(format!("{registry}={user}"))
                    .arg("--password-stdin");
                run_tool(c, Some(&format!("{password}\n")))
            }
            None => run_tool(c, None),
        }
    }

    /// What is under the output folder: a bundle that verifies with the
    /// registry's digests, or nothing at all.
    fn check(&self, dir: &Path) -> (String, bool, bool) {
        let out = dir.join("out");
        let bundle = out.join("pulled.bundle");
        let leftovers: Vec<String> = std::fs::read_dir(&out)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n != "pulled.bundle")
                    .collect()
            })
            .unwrap_or_default();
        if !leftovers.is_empty() {
            return (format!("**left behind: {leftovers:?}**"), false, false);
        }
        if !bundle.exists() {
            return ("no bundle, nothing left behind".into(), true, false);
        }
        let v = run(&mut verify_cmd(&bundle, &self.public));
        if !v.status.success() {
            return (
                format!(
                    "**the bundle does not verify: {}**",
                    String::from_utf8_lossy(&v.stderr).trim()
                ),
                false,
                true,
            );
        }
        let r =
            airgap_format::ArchiveReader::open(&bundle, airgap_format::Limits::default()).unwrap();
        let d = r.read_descriptor_unverified().unwrap().1;
        let got: Vec<(String, String)> = d
            .images
            .iter()
            .map(|i| (i.reference.clone(), i.digest.to_string()))
            .collect();
        if got != self.images {
            return (format!("**wrong images: {got:?}**"), false, true);
        }
        (
            "a bundle that verifies, digests as in the registry".into(),
            true,
            true,
        )
    }
}

fn pull_rows(
    fx: &PullFixture,
    site: &Site,
    proxy: &FaultProxy,
    cases: &[Case],
    label: &str,
    tool: &'static str,
    dir: &Path,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, c) in cases.iter().enumerate().filter(|(_, c)| selected(tool, c)) {
        let case_dir = dir.join(format!("{label}{i}"));
        std::fs::create_dir_all(case_dir.join("out")).unwrap();
        proxy.set_schedule(schedule(*c, &fx.big_layer));
        let first = fx.build(&proxy.addr(), site, &case_dir);
        let hit = proxy
            .entries()
            .iter()
            .filter(|e| e.fault != Fault::Pass)
            .count();
        let (state, state_ok, built) = fx.check(&case_dir);
        proxy.set_schedule(Box::new(|_, _, _| Fault::Pass));
        let _ = std::fs::remove_file(case_dir.join("out/pulled.bundle"));
        let again = fx.build(&proxy.addr(), site, &case_dir);
        let (after, after_ok, after_built) = fx.check(&case_dir);
        let rerun = if again.ok() && after_ok && after_built {
            format!("completed (same cache); {after}")
        } else {
            format!(
                "**{}: {}; {after}**",
                again.text(),
                again.error.clone().unwrap_or_default()
            )
        };
        let consistent = if first.ok() { built } else { !built };
        let expected = match c.expect {
            Expect::Completes => first.ok(),
            Expect::Fails => first.failed_cleanly(),
        };
        let ok = hit > 0
            && (first.ok() || first.failed_cleanly())
            && state_ok
            && consistent
            && again.ok()
            && after_ok
            && after_built
            && expected;
        let state = if hit == 0 {
            "**the fault was never injected**".to_string()
        } else if !expected {
            format!(
                "{state} (**expected it to {}**)",
                match c.expect {
                    Expect::Completes => "complete",
                    Expect::Fails => "fail cleanly",
                }
            )
        } else {
            state
        };
        let _ = std::fs::remove_dir_all(&case_dir);
        rows.push(Row {
            tool,
            case: *c,
            first,
            state,
            rerun,
            ok,
        });
    }
    rows
}

fn pull_cases() -> Vec<Case> {
    vec![
        // The tag's index, then its platform manifests by digest.
        case(Fault::Status(503), Req::ManifestGet, Once, Completes),
        case(Fault::Drop, Req::ManifestGet, Once, Completes),
        case(Fault::Reset, Req::ManifestGet, Once, Completes),
        case(Fault::RetryAfter(429, 1), Req::ManifestGet, Once, Completes),
        case(
            Fault::RetryAfter(429, 8),
            Req::Any,
            Times::For(Duration::from_secs(8)),
            Completes,
        ),
        case(Fault::CutBody(100), Req::ManifestGet, Once, Completes),
        case(Fault::FlipResponse(40), Req::ManifestGet, Once, Fails),
        skip(
            case(Fault::FlipResponse(40), Req::ManifestGet, Once, Fails),
            1,
        ),
        case(
            Fault::Stall(Duration::from_secs(2)),
            Req::ManifestGet,
            Once,
            Completes,
        ),
        case(Fault::Status(500), Req::ManifestGet, Always, Fails),
        // Configs and layers.
        case(Fault::Status(502), Req::BlobGet, Once, Completes),
        case(Fault::Status(429), Req::BlobGet, N(3), Completes),
        on(
            case(Fault::Cut(1 << 20), Req::BlobGet, Once, Completes),
            On::BigLayer,
        ),
        on(
            case(Fault::Cut(1 << 20), Req::BlobGet, Always, Completes),
            On::BigLayer,
        ),
        on(
            case(Fault::Reset, Req::BlobGet, Once, Completes),
            On::BigLayer,
        ),
        on(
            case(Fault::FlipResponse(1 << 20), Req::BlobGet, Once, Fails),
            On::BigLayer,
        ),
        case(Fault::FlipResponse(5), Req::BlobGet, Once, Fails),
        on(
            case(
                Fault::Stall(Duration::from_secs(2)),
                Req::BlobGet,
                Once,
                Completes,
            ),
            On::BigLayer,
        ),
        case(Fault::Status(500), Req::BlobGet, Always, Fails),
    ]
}

fn pull_token_cases() -> Vec<Case> {
    vec![
        case(Fault::Status(503), Req::Token, Once, Completes),
        case(Fault::Drop, Req::Token, Once, Completes),
        // Byte 2 is in the key "token": the reply still names the token
        // as "access_token", which the Docker token spec allows.
        case(Fault::FlipResponse(2), Req::Token, Once, Completes),
        // Byte 0 is the opening brace: the reply is not JSON.
        case(Fault::FlipResponse(0), Req::Token, Once, Fails),
        case(Fault::Status(500), Req::Token, Always, Fails),
    ]
}

#[test]
fn pull_fault_table() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    {
        let reg = Registry::start_plain();
        let site = Site::plain(&reg);
        let fx = pull_fixture(tmp.path(), &site);
        let proxy = FaultProxy::start(&reg.addr(), Box::new(|_, _, _| Fault::Pass));
        rows.extend(pull_rows(
            &fx,
            &site,
            &proxy,
            &pull_cases(),
            "p",
            "pull",
            tmp.path(),
        ));
    }
    {
        let reg = TokenRegistry::start("vendor", "s3cret");
        let site = Site::token(&reg);
        let token_dir = tmp.path().join("token");
        std::fs::create_dir_all(&token_dir).unwrap();
        let fx = pull_fixture(&token_dir, &site);
        let proxy = token_proxy(&reg);
        rows.extend(pull_rows(
            &fx,
            &site,
            &proxy,
            &pull_token_cases(),
            "t",
            "pull (tokens)",
            tmp.path(),
        ));
    }
    report("pull", &rows);
}
