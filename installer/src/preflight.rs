//! `airgap-install preflight`: every problem an install would meet, found
//! before anything changes and reported all at once.
//!
//! Checks, each one row of the report: the bundle against what is installed
//! (newer, or a downgrade allowed); the licence it carries, for this node
//! and product; every secret the site file names; the rendered
//! configuration (rendered into a temporary folder, measured and
//! removed); free space in the state folder and, with
//! `--apply`, the temporary folder Helm downloads charts into; the
//! registry (reachable, TLS trusted, credentials accepted, push rights
//! proved by opening an upload session and cancelling it); what the push
//! would send (the survey of [`crate::survey`]: tags held by other images,
//! a delta's blobs that are nowhere); and with `--apply`, `helm` and
//! `kubectl` at supported versions and the cluster reachable. Nothing is
//! pushed, recorded or left behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use airgap_cli::progress::error_line;
use airgap_format::display::{self, escape as e};
use airgap_format::PublicKey;
use airgap_format::SignedBundle;
use airgap_licenses::NodeIds;
use anyhow::{anyhow, Result};
use serde::Serialize;

use crate::install::access::{site_target, RegistryAccess};
use crate::install::records::{compare, Change};
use crate::push::OnExistingTag;
use crate::site::SiteFile;
use crate::state::{Outcome, State};

/// Oldest Helm that installs charts from OCI registries without flags.
pub const MIN_HELM: (u64, u64) = (3, 8);
/// Oldest kubectl supported (Kubernetes 1.25, the oldest with a supported
/// Helm 3 release at the time of writing).
pub const MIN_KUBECTL: (u64, u64) = (1, 25);
/// Room kept in the state folder for what a run writes besides the
/// rendered configuration and relocation map: the journal, audit records,
/// the install records, the licence and clock files, each written beside
/// its old copy before the rename (about ten small files of one block).
const STATE_ALLOWANCE: u64 = 32 << 10;
/// The file system block every file takes at least (ext4, XFS, tmpfs).
const BLOCK: u64 = 4096;
/// Most of a tool's output (each stream) read.
const MAX_TOOL_OUTPUT: u64 = 1 << 20;
/// How long `helm`, `kubectl` and the cluster may take to answer.
const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of a preflight.
pub struct PreflightOptions<'a> {
    /// The bundle.
    pub bundle: &'a SignedBundle,
    /// The validated site file.
    pub site: &'a SiteFile,
    /// Trusted signing keys.
    pub trusted: &'a [PublicKey],
    /// The registry's TLS settings and credentials.
    pub registry: &'a RegistryAccess,
    /// The install would apply through Helm.
    pub apply: bool,
    /// A downgrade would be accepted.
    pub allow_downgrade: bool,
    /// This node's identity (or why it could not be read).
    pub node: Option<&'a NodeIds>,
    /// For a delta: its base bundle.
    pub base: Option<&'a Path>,
    /// The tag policy the install would use.
    pub on_existing_tag: OnExistingTag,
    /// Requests at once.
    pub jobs: usize,
    /// Skip the version check (install decided it already).
    pub skip_version: bool,
}

/// One check.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// What was checked.
    pub check: String,
    /// `ok`, `warning`, `failed` or `skipped`.
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
    /// How to fix it, for a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every check of a preflight.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreflightReport {
    /// No check failed.
    pub ok: bool,
    /// Bundle name.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// Bundle digest.
    pub bundle_digest: String,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// For a delta whose left-out blobs were all found: where they come
    /// from, as the survey found them (install's verify step reports it).
    #[serde(skip)]
    pub delta: Option<crate::push::DeltaSources>,
}

impl PreflightReport {
    /// The report of a preflight that was not run (`--skip-preflight`).
    pub fn skipped() -> Self {
        PreflightReport {
            ok: true,
            name: String::new(),
            version: String::new(),
            bundle_digest: String::new(),
            checks: Vec::new(),
            delta: None,
        }
    }

    /// The failed checks.
    pub fn failures(&self) -> Vec<&Check> {
        self.checks
            .iter()
            .filter(|c| c.outcome == Outcome::Failed)
            .collect()
    }

    /// The report for people: one row per check, the fix under a failure.
    pub fn to_table(&self) -> String {
        let width = self
            .checks
            .iter()
            .map(|c| c.check.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut s = format!("{:<width$}  {:<7}  DETAIL\n", "CHECK", "RESULT");
        for c in &self.checks {
            s.push_str(&format!(
                "{:<width$}  {:<7}  {}\n",
                e(&c.check),
                c.outcome,
                e(&c.detail)
            ));
            if let Some(fix) = &c.fix {
                s.push_str(&format!("{:<width$}  {:<7}  fix: {}\n", "", "", e(fix)));
            }
        }
        let failed = self.failures().len();
        s.push_str(&if failed == 0 {
            format!(
                "{} {}: ready to install ({})\n",
                e(&self.name),
                e(&self.version),
                display::count(self.checks.len() as u64, "check")
            )
        } else {
            format!(
                "{} {}: {} found; nothing was changed\n",
                e(&self.name),
                e(&self.version),
                display::count(failed as u64, "problem")
            )
        });
        s
    }
}

struct Checks(Vec<Check>);

impl Checks {
    fn ok(&mut self, check: impl Into<String>, detail: impl Into<String>) {
        self.push(check, Outcome::Ok, detail, None);
    }
    fn skipped(&mut self, check: impl Into<String>, detail: impl Into<String>) {
        self.push(check, Outcome::Skipped, detail, None);
    }
    fn warning(&mut self, check: impl Into<String>, detail: impl Into<String>) {
        self.push(check, Outcome::Warning, detail, None);
    }
    fn failed(
        &mut self,
        check: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(check, Outcome::Failed, detail, Some(fix.into()));
    }
    fn push(
        &mut self,
        check: impl Into<String>,
        outcome: Outcome,
        detail: impl Into<String>,
        fix: Option<String>,
    ) {
        self.0.push(Check {
            check: check.into(),
            outcome,
            detail: detail.into(),
            fix,
        });
    }
}

/// Runs every check. Fails only when the bundle's signature does not
/// verify (nothing else can be trusted then); every other problem is a
/// failed row of the report.
pub fn preflight(state: &State, o: &PreflightOptions) -> Result<PreflightReport> {
    let head = o.bundle;
    let d = &head.descriptor;
    let digest = head.bundle_digest.to_string();
    let mut c = Checks(Vec::new());
    c.ok(
        "signature",
        format!("bundle.json signed by {}", head.signature.key_id),
    );

    // The bundle against what is installed.
    let current = state.install_record(&d.name)?;
    if !o.skip_version {
        match compare(d, &digest, current.as_ref(), o.apply) {
            Change::Install => c.ok(
                "version",
                format!("{} {}: a first install", d.name, d.version),
            ),
            Change::Upgrade(v) => c.ok("version", format!("upgrade from {v}")),
            Change::Apply(v) => c.ok(
                "version",
                format!("{v} is installed, rendered but not applied: --apply applies it"),
            ),
            Change::Same(v) => c.ok(
                "version",
                format!(
                    "{} {v} is already installed: install has nothing to do",
                    d.name
                ),
            ),
            Change::Downgrade(v) if o.allow_downgrade => {
                c.warning("version", format!("downgrade from {v} (--allow-downgrade)"))
            }
            Change::Downgrade(v) => c.failed(
                "version",
                format!(
                    "{} {} is not newer than the installed {v}",
                    d.name, d.version
                ),
                "install a newer bundle, or pass --allow-downgrade to install this one anyway",
            ),
        }
    }

    // The licence the bundle carries.
    match (&d.license, o.node) {
        (None, _) => c.skipped("licence", "the bundle carries no licence"),
        (Some(_), None) => c.failed(
            "licence",
            "the bundle carries a licence, but this node's machine id could not be read",
            format!(
                "make /etc/machine-id readable (or set {} to the host's root)",
                crate::license::HOST_ROOT_ENV
            ),
        ),
        (Some(entry), Some(node)) => {
            let checked = crate::license::bundle_license_text(head).and_then(|text| {
                crate::license::check(
                    state,
                    text.as_deref().unwrap_or_default(),
                    &format!("license {}", entry.digest),
                    o.trusted,
                    node,
                    Some(&d.name),
                )
            });
            match checked {
                Ok(l) if l.state == crate::license::LicenseState::Grace => c.warning(
                    "licence",
                    format!("serial {} for {}: expired on {}, in its grace period", l.serial, l.customer, l.expires),
                ),
                Ok(l) => c.ok(
                    "licence",
                    format!("serial {} for {}, {} on this node; expires {}", l.serial, l.customer, l.product, l.expires),
                ),
                Err(err) => c.failed(
                    "licence",
                    error_line(err.as_ref()),
                    "ask the vendor for a licence for this node and product (airgap-install license request)",
                ),
            }
        }
    }

    // Every secret the site file names.
    let base = o.site.base_dir();
    let secrets = o.site.secrets();
    let mut secrets_ok = true;
    if secrets.is_empty() {
        c.skipped("secrets", "the site file names none");
    }
    for crate::site::SecretField {
        field,
        reference: secret,
        ..
    } in secrets
    {
        let label = format!("secret {field}");
        match secret.resolve(field, &base) {
            Ok(_) => c.ok(
                label,
                match (&secret.file, &secret.env) {
                    (Some(f), _) => format!("readable from {}", f.display()),
                    (_, Some(v)) => format!("set in ${v}"),
                    _ => "readable".into(),
                },
            ),
            Err(err) => {
                secrets_ok = false;
                c.failed(
                    label,
                    error_line(err.as_ref()),
                    "create the file or set the variable the site file names",
                )
            }
        }
    }

    // The configuration, rendered where install renders it, then removed.
    let rendered = if secrets_ok {
        render_size(state, o, head, &digest)
    } else {
        Err(anyhow!("needs the secrets above"))
    };
    match &rendered {
        Ok(None) => c.skipped("render", "the bundle carries no templates"),
        Err(_) if !secrets_ok => c.skipped(
            "render",
            "needs the secrets above; the space below leaves the configuration out",
        ),
        Ok(Some((files, bytes))) => c.ok(
            "render",
            format!(
                "{} ({})",
                display::count(*files, "file"),
                display::bytes(*bytes)
            ),
        ),
        Err(err) if crate::state::full_disk(err) => c.skipped(
            "render",
            "no room to render it in the state folder (see the space row)",
        ),
        Err(err) => c.failed(
            "render",
            error_line(err.as_ref()),
            "correct the site file (airgap-install render shows the same error)",
        ),
    }

    // Free space.
    let map_bytes = serde_json::to_vec_pretty(&crate::relocation::RelocationMap::expected(
        d,
        &digest,
        &site_target(o.site)?,
        "pushed",
    ))?
    .len() as u64;
    let map_bytes = blocks(map_bytes);
    let state_needs = rendered
        .as_ref()
        .ok()
        .and_then(|r| r.map(|x| x.1))
        .unwrap_or(0)
        + map_bytes
        + STATE_ALLOWANCE;
    space(
        &mut c,
        "space: state folder",
        state.root(),
        state_needs,
        "the rendered configuration, relocation map, journal and records",
    );
    if o.apply {
        let charts: u64 = d.charts.iter().map(|ch| ch.size).sum();
        space(
            &mut c,
            "space: temporary folder",
            &std::env::temp_dir(),
            charts,
            "the charts Helm downloads from the registry",
        );
    }

    // The registry, then what the push would do there.
    let reachable = registry_checks(&mut c, state, o, d);
    let mut delta = None;
    if reachable {
        let survey = o
            .registry
            .push_options(state, o.site, o.jobs, o.on_existing_tag, false, o.base)
            .and_then(|opts| {
                let p = crate::push::prepare(o.bundle, o.trusted, &opts)?;
                let s = crate::survey::survey(&p, &opts)?;
                if d.base.is_some() && s.unavailable.is_empty() {
                    delta = Some(crate::push::DeltaSources {
                        in_registry: s.left_in_registry,
                        from_base: s.left_from_base,
                    });
                }
                Ok((s.require_complete(d, &opts.target.host).err(), s.transfer()))
            });
        match survey {
            Ok((None, t)) => c.ok(
                "registry content",
                format!(
                    "{} ({}) to upload, {} to mount, {} already in place",
                    display::count(t.blobs_to_upload, "blob"),
                    display::bytes(t.bytes_to_upload),
                    display::count(t.blobs_to_mount, "blob"),
                    if t.unchanged == 1 {
                        "1 image or chart".to_string()
                    } else {
                        format!("{} images and charts", t.unchanged)
                    }
                ),
            ),
            Ok((Some(refused), _)) => c.failed(
                "registry content",
                error_line(refused.as_ref()),
                if d.base.is_some() {
                    "install the delta's base first, or give --base BASE_BUNDLE"
                } else {
                    "pass --on-existing-tag skip or overwrite, or remove the tag"
                },
            ),
            Err(err) => c.failed(
                "registry content",
                error_line(err.as_ref()),
                "see the registry rows above",
            ),
        }
    } else {
        c.skipped("registry content", "the registry could not be reached");
    }

    if o.apply {
        c.0.extend(tool_checks());
    }
    let ok = !c.0.iter().any(|x| x.outcome == Outcome::Failed);
    Ok(PreflightReport {
        ok,
        name: d.name.clone(),
        version: d.version.clone(),
        bundle_digest: digest,
        checks: c.0,
        delta,
    })
}

/// Renders into a temporary folder (as install would,
/// with the relocation map its push would write) and measures the result:
/// `(files, bytes)`, or `None` without templates.
fn render_size(
    state: &State,
    o: &PreflightOptions,
    bundle: &SignedBundle,
    digest: &str,
) -> Result<Option<(u64, u64)>> {
    let d = &bundle.descriptor;
    if d.templates.is_empty() {
        return Ok(None);
    }
    // In the temporary folder, not the state folder: a full state folder
    // must still get its exact need.
    let root = std::env::temp_dir();
    let tmp = tempfile::Builder::new()
        .prefix(".airgap-preflight-")
        .tempdir_in(&root)
        .map_err(|err| {
            anyhow!(
                "{}: cannot create a temporary folder: {err}",
                root.display()
            )
        })?;
    let map =
        crate::relocation::RelocationMap::expected(d, digest, &site_target(o.site)?, "pushed");
    let out = tmp.path().join("config");
    let license = crate::license::active_text(state.root())?;
    let plan = crate::render::render_bundle(
        bundle,
        &crate::render::RenderOptions {
            site: o.site,
            out: &out,
            relocation: Some((&map, Path::new("relocation-map.json"))),
            license: license.as_deref(),
        },
    )?;
    let bytes = folder_bytes(&out);
    Ok(Some((plan.files.len() as u64 + 2, bytes)))
}

/// The room the files under `dir` take: each rounded up to whole blocks,
/// and one block per folder.
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(list) = std::fs::read_dir(dir) else {
        return 0;
    };
    BLOCK
        + list
            .flatten()
            .map(|entry| match entry.file_type() {
                Ok(t) if t.is_dir() => folder_bytes(&entry.path()),
                Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| blocks(m.len())),
                _ => 0,
            })
            .sum::<u64>()
}

/// `n` bytes rounded up to whole blocks.
fn blocks(n: u64) -> u64 {
    n.div_ceil(BLOCK).max(1) * BLOCK
}

/// The folder itself, or its nearest ancestor that exists (a state folder
/// is created by the first run).
fn nearest_existing(p: &Path) -> PathBuf {
    let mut at = p.to_path_buf();
    while !at.exists() {
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent.to_path_buf(),
            _ => return PathBuf::from("."),
        }
    }
    at
}

/// Bytes free for this user on the file system holding `p`.
pub fn free_bytes(p: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let at = nearest_existing(p);
    let c = std::ffi::CString::new(at.as_os_str().as_bytes())
        .map_err(|_| anyhow!("{}: a path with a NUL byte", at.display()))?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `s` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(anyhow!(
            "{}: {}",
            at.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok((s.f_bavail as u64).saturating_mul(s.f_frsize as u64))
}

fn space(c: &mut Checks, check: &str, dir: &Path, needs: u64, what: &str) {
    let detail = |free: u64| {
        format!(
            "{}: {} free, needs {} ({what})",
            dir.display(),
            display::bytes(free),
            display::bytes(needs)
        )
    };
    match free_bytes(dir) {
        Ok(free) if free >= needs => c.ok(check, detail(free)),
        Ok(free) => c.failed(
            check,
            detail(free),
            format!(
                "free at least {} there, or use another folder",
                display::bytes(needs - free)
            ),
        ),
        Err(err) => c.failed(
            check,
            error_line(err.as_ref()),
            "check that the folder is readable",
        ),
    }
}

/// Reachable, TLS trusted, login, push rights. True when the registry
/// answered at all (the survey can run).
fn registry_checks(
    c: &mut Checks,
    state: &State,
    o: &PreflightOptions,
    d: &airgap_format::bundle_json::BundleDescriptor,
) -> bool {
    let host = &o.site.site.registry.host;
    let client = match airgap_registry::client::Client::new(
        host,
        &o.registry.transport,
        o.registry.credentials.clone(),
    ) {
        Ok(client) => client,
        Err(err) => {
            c.failed(
                "registry",
                error_line(&err),
                "check the site file's internalCa (a PEM file of CA certificates)",
            );
            return false;
        }
    };
    let scheme = if o.registry.transport.plain_http {
        "http"
    } else {
        "https"
    };
    if let Err(err) = client.ping() {
        use airgap_registry::{Error, Mismatch};
        let line = error_line(&err);
        let fixes = &o.registry.transport.fixes;
        let (check, fix) = match &err {
            Error::Mismatch { mismatch, .. } => (
                "registry",
                match mismatch {
                    Mismatch::UnknownIssuer => fixes.trust_ca.clone(),
                    Mismatch::SpeaksPlainHttp => fixes.use_plain_http.clone(),
                    Mismatch::SpeaksHttps => fixes.use_https.clone(),
                },
            ),
            Error::Unauthorized { .. } => {
                c.ok("registry", format!("{scheme}://{host} answers"));
                (
                    "registry login",
                    "check the user name and password (--username with --password-stdin, or the credentials file)"
                        .to_string(),
                )
            }
            // It answered, but not as a registry does.
            Error::NotFound { .. } | Error::Status { .. } => {
                c.failed(
                    "registry",
                    format!(
                        "GET {scheme}://{host}/v2/: HTTP {}",
                        err.status().unwrap_or_default()
                    ),
                    format!(
                        "check that {host} is an OCI registry (the distribution API answers /v2/)"
                    ),
                );
                return false;
            }
            _ => (
                "registry",
                format!(
                    "check registry.host ({host}) in the site file and that the registry is running"
                ),
            ),
        };
        c.failed(check, line, fix);
        return check == "registry login";
    }
    // Plain HTTP to an HTTPS registry (its 400) arrives above as a
    // transport mismatch, from the shared client.
    c.ok(
        "registry",
        format!(
            "{scheme}://{host} answers{}",
            if scheme == "https" {
                ", its certificate trusted"
            } else {
                ""
            }
        ),
    );
    match &o.registry.credentials {
        Some(cred) => c.ok("registry login", format!("accepted for {}", cred.username)),
        None => c.skipped(
            "registry login",
            "no credentials given; the registry lets anonymous clients in",
        ),
    }
    // Push rights: open an upload session where the first image goes, then cancel it.
    let Ok(target) = site_target(o.site) else {
        return true;
    };
    let name = d.images.first().map(|i| i.name.clone()).or_else(|| {
        d.charts
            .first()
            .map(|ch| crate::relocation::chart_name_tag(&ch.name, &ch.version).0)
    });
    let Some(name) = name else {
        c.skipped("registry push rights", "the bundle has no images or charts");
        return true;
    };
    let repo = target.repository(&name);
    let _ = state;
    let fix = format!(
        "grant the account push rights on {}/*",
        if target.prefix.is_empty() {
            "the registry"
        } else {
            &target.prefix
        }
    );
    match client.start_upload(&repo) {
        Ok(location) => {
            client.cancel_upload(&repo, &location);
            c.ok(
                "registry push rights",
                format!("may push to {repo} (an upload session was opened and cancelled)"),
            );
        }
        Err(
            err @ (airgap_registry::Error::NotFound { .. } | airgap_registry::Error::Status { .. }),
        ) => {
            let s = err.status().unwrap_or_default();
            let body = err.body().map(|b| b.line()).unwrap_or_default();
            c.failed(
                "registry push rights",
                format!("may not push to {repo}: HTTP {s}: {body}"),
                fix,
            );
        }
        Err(err) => c.failed(
            "registry push rights",
            format!("may not push to {repo}: {}", error_line(&err)),
            fix,
        ),
    }
    true
}

/// `helm` and `kubectl` present at supported versions, the cluster
/// reachable: what applying needs (`install --apply`, `rollback`).
pub fn tool_checks() -> Vec<Check> {
    let mut checks = Checks(Vec::new());
    let c = &mut checks;
    match tool_output("helm", &["version", "--template", "{{.Version}}"]) {
        Err(why) => c.failed("helm", why, "install Helm 3.8 or newer on the PATH, or run without --apply and apply install-plan.sh yourself"),
        Ok(out) => match version_at_least(&out, MIN_HELM) {
            Some(true) => c.ok("helm", format!("helm {}", out.trim())),
            _ => c.failed(
                "helm",
                format!("helm {} is older than {}.{}", out.trim(), MIN_HELM.0, MIN_HELM.1),
                "install Helm 3.8 or newer (OCI charts)",
            ),
        },
    }
    match tool_output("kubectl", &["version", "--client", "-o", "json"]) {
        Err(why) => c.failed("kubectl", why, "install kubectl on the PATH"),
        Ok(out) => {
            let v = serde_json::from_str::<serde_json::Value>(&out)
                .ok()
                .and_then(|j| {
                    j["clientVersion"]["gitVersion"]
                        .as_str()
                        .map(str::to_string)
                })
                .unwrap_or_default();
            match version_at_least(&v, MIN_KUBECTL) {
                Some(true) => c.ok("kubectl", format!("kubectl {v}")),
                _ => c.failed(
                    "kubectl",
                    format!(
                        "kubectl {} is older than {}.{} or unreadable",
                        if v.is_empty() { "(unknown)" } else { &v },
                        MIN_KUBECTL.0,
                        MIN_KUBECTL.1
                    ),
                    "install kubectl 1.25 or newer",
                ),
            }
            match tool_output(
                "kubectl",
                &["version", "-o", "json", "--request-timeout=5s"],
            ) {
                Ok(out) => {
                    let server = serde_json::from_str::<serde_json::Value>(&out)
                        .ok()
                        .and_then(|j| {
                            j["serverVersion"]["gitVersion"]
                                .as_str()
                                .map(str::to_string)
                        });
                    match server {
                        Some(v) => c.ok("cluster", format!("Kubernetes {v} answers")),
                        None => c.failed(
                            "cluster",
                            "kubectl got no server version",
                            "check the kubeconfig (KUBECONFIG) and that the cluster is reachable",
                        ),
                    }
                }
                Err(why) => c.failed(
                    "cluster",
                    why,
                    "check the kubeconfig (KUBECONFIG) and that the cluster is reachable",
                ),
            }
        }
    }
    checks.0
}

/// Runs a tool with a time limit; its standard output, or why not.
fn tool_output(tool: &str, args: &[&str]) -> Result<String, String> {
    if which::which(tool).is_err() {
        return Err(format!("{tool} is not on the PATH"));
    }
    let mut child = Command::new(tool)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|err| format!("{tool}: cannot run: {err}"))?;
    // Both pipes are read while the tool runs (a tool that fills one must
    // not stall until the time limit), each up to MAX_TOOL_OUTPUT.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            use std::io::Read;
            let mut bytes = Vec::new();
            if let Some(p) = pipe {
                let _ = p.take(MAX_TOOL_OUTPUT).read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let start = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > TOOL_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{tool} {} did not answer within {} s",
                    args.join(" "),
                    TOOL_TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(err) => return Err(format!("{tool}: {err}")),
        }
    };
    let out = std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!(
            "{tool} {}: {} {}",
            args.join(" "),
            out.status,
            last.trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether a version such as `v3.14.2` or `v1.30.0+k3s1` is at least
/// `(major, minor)`; `None` when it is not a version.
fn version_at_least(text: &str, min: (u64, u64)) -> Option<bool> {
    let t = text.trim().trim_start_matches('v');
    let mut parts = t.split(|ch: char| !ch.is_ascii_digit());
    let major: u64 = parts.next()?.parse().ok()?;
    let minor: u64 = parts.next()?.parse().ok()?;
    Some((major, minor) >= min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(version_at_least("v3.14.2", MIN_HELM), Some(true));
        assert_eq!(version_at_least("v3.8.0", MIN_HELM), Some(true));
        assert_eq!(version_at_least("v3.7.9", MIN_HELM), Some(false));
        assert_eq!(version_at_least("v1.30.0+k3s1", MIN_KUBECTL), Some(true));
        assert_eq!(version_at_least("v1.24.3", MIN_KUBECTL), Some(false));
        assert_eq!(version_at_least("garbage", MIN_HELM), None);
        assert_eq!(version_at_least("", MIN_HELM), None);
    }

    #[test]
    fn a_tool_that_writes_more_than_a_pipe_holds_is_read_not_timed_out() {
        // 300 KB is more than a pipe's buffer: read only after the tool
        // exits, it would block the tool until the time limit.
        let out = tool_output("sh", &["-c", "head -c 300000 /dev/zero | tr '\\0' a"]).unwrap();
        assert_eq!(out.len(), 300_000);
        let err = tool_output(
            "sh",
            &["-c", "echo first >&2; echo 'last words' >&2; exit 3"],
        )
        .unwrap_err();
        assert!(err.ends_with("last words"), "{err}");
    }

    #[test]
    fn free_space_is_read_for_a_folder_not_yet_made() {
        let dir = tempfile::tempdir().unwrap();
        let free = free_bytes(&dir.path().join("not/yet")).unwrap();
        assert!(free > 0);
    }

    #[test]
    fn the_table_names_every_failure_and_its_fix() {
        let r = PreflightReport {
            ok: false,
            name: "demo".into(),
            version: "1.0.0".into(),
            bundle_digest: "sha256:x".into(),
            delta: None,
            checks: vec![
                Check {
                    check: "signature".into(),
                    outcome: Outcome::Ok,
                    detail: "signed".into(),
                    fix: None,
                },
                Check {
                    check: "helm".into(),
                    outcome: Outcome::Failed,
                    detail: "helm is not on the PATH".into(),
                    fix: Some("install Helm".into()),
                },
                Check {
                    check: "secret a.b".into(),
                    outcome: Outcome::Failed,
                    detail: "a.b: environment variable X is not set".into(),
                    fix: Some("set it".into()),
                },
            ],
        };
        let t = r.to_table();
        assert!(
            t.contains("helm is not on the PATH") && t.contains("fix: install Helm"),
            "{t}"
        );
        assert!(
            t.ends_with("demo 1.0.0: 2 problems found; nothing was changed\n"),
            "{t}"
        );
        assert_eq!(r.failures().len(), 2);
    }
}
