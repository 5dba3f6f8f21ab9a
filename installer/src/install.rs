//! `airgap-install install`: one recorded, resumable run that takes a
//! bundle from the media to a configured site, and the same for upgrades.
//!
//! Steps, in order: preflight (see [`crate::preflight`]; run again on
//! every start, never journaled), verify, license, push, render, apply
//! (backups first when upgrading; only with `--apply`), health, record. Each finished step
//! is written to a journal in the state folder (`runs/HEX.json`) before the
//! next starts, so a run that was interrupted (Ctrl-C, SIGKILL, power loss)
//! and is started again skips what it finished; within the push step,
//! blobs already in the registry are not sent again. Every step's outcome
//! goes to the audit log. The journal is removed when the run is recorded.

use airgap_format::display::{self, count, escape as e};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use airgap_format::bundle_json::BundleDescriptor;
use airgap_format::progress::{error_line, Progress};
use airgap_format::verify::verify_head;
use airgap_format::{verify_archive, Limits, PublicKey};
use airgap_licenses::NodeIds;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::push::{push, PushOptions};
use crate::render::spec::FileRole;
use crate::site::SiteFile;
use crate::state::{operator, rfc3339, AuditRecord, State};
use crate::survey::Transfer;

/// The steps of a run, in order.
pub const STEPS: [&str; 8] = [
    "preflight",
    "verify",
    "license",
    "push",
    "render",
    "apply",
    "health",
    "record",
];

/// Largest backup or install-plan output kept in the audit log (the tail).
const MAX_LOGGED_OUTPUT: usize = 16 << 10;

/// How to reach the site's registry.
pub struct RegistryAccess {
    /// TLS settings (the site's internal CA, plain HTTP for test registries).
    pub transport: airgap_registry::Transport,
    /// Credentials, if any.
    pub credentials: Option<airgap_registry::credentials::Credentials>,
}

impl RegistryAccess {
    /// The site file's registry settings (its internal CA, plain HTTP),
    /// with `credentials`.
    pub fn for_site(
        site: &SiteFile,
        credentials: Option<airgap_registry::credentials::Credentials>,
    ) -> Self {
        RegistryAccess {
            transport: site.transport(format!("airgap-install/{}", env!("CARGO_PKG_VERSION"))),
            credentials,
        }
    }

    /// Push settings for the site's registry: its target, and the images
    /// the installed releases put there (where blobs can be mounted from).
    pub fn push_options(
        &self,
        state: &State,
        site: &SiteFile,
        jobs: usize,
        on_existing_tag: crate::push::OnExistingTag,
        progress: bool,
        base: Option<&Path>,
    ) -> Result<PushOptions> {
        let target = site_target(site)?;
        let mut records = installed(state)?;
        // The newest install first: its images are the likeliest homes.
        records.sort_by(|a, b| b.installed_at.cmp(&a.installed_at));
        Ok(PushOptions {
            known: crate::survey::known_images(&records, &target),
            target,
            transport: self.transport.clone(),
            credentials: self.credentials.clone(),
            jobs,
            on_existing_tag,
            progress,
            base: base.map(Path::to_path_buf),
        })
    }
}

/// Settings of an install or upgrade run.
pub struct InstallOptions<'a> {
    /// The bundle.
    pub bundle: &'a Path,
    /// The validated site file.
    pub site: &'a SiteFile,
    /// Trusted signing keys (bundle and licence).
    pub trusted: &'a [PublicKey],
    /// The registry's TLS settings and credentials.
    pub registry: RegistryAccess,
    /// Blobs uploaded at once.
    pub jobs: usize,
    /// Run the install plan through `helm` (and backups first when upgrading).
    pub apply: bool,
    /// Accept a bundle that is not newer than the installed one.
    pub allow_downgrade: bool,
    /// Do not run health checks after applying.
    pub skip_health: bool,
    /// Seconds each health check may take.
    pub health_timeout: u64,
    /// This node's identity, for a licence the bundle carries.
    pub node: Option<NodeIds>,
    /// Draw progress bars and print steps (false with `--json`).
    pub progress: bool,
    /// For a delta bundle: its base bundle, for blobs the registry lacks.
    pub base: Option<&'a Path>,
    /// What to do when a tag already points at another image.
    pub on_existing_tag: crate::push::OnExistingTag,
    /// Do not run the preflight checks (recorded in the audit log).
    pub skip_preflight: bool,
}

/// The installed version of a bundle, as recorded (`installs/NAME.json`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstallRecord {
    /// Bundle name.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// Digest of its `bundle.json`.
    pub bundle_digest: String,
    /// Key id that signed it.
    pub signer: String,
    /// When it was recorded.
    pub installed_at: String,
    /// Who ran it.
    pub operator: String,
    /// The bundle file it was installed from.
    pub bundle_file: String,
    /// The registry it was pushed to (`host[/prefix]`).
    pub registry: String,
    /// The relocation map (in the state folder).
    pub relocation_map: String,
    /// The rendered configuration folder (in the state folder).
    pub config_dir: String,
    /// SHA-256 of the rendered plan.json.
    pub config_digest: String,
    /// Whether the plan was applied through helm.
    pub applied: bool,
    /// The licence serial the bundle carried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_serial: Option<u64>,
    /// Images: reference → digest and total size.
    pub images: Vec<RecordedImage>,
    /// Charts: name → version and digest.
    pub charts: Vec<RecordedArtifact>,
    /// Templates: name → digest.
    pub templates: Vec<RecordedArtifact>,
    /// The blobs that went to the registry (images and charts): digest → size.
    pub blobs: BTreeMap<String, u64>,
    /// Earlier versions, oldest first.
    #[serde(default)]
    pub previous: Vec<PreviousVersion>,
    /// The backups the upgrade to this version took before it was applied
    /// (`backups/STAMP` in the state folder): what `rollback` restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<String>,
    /// When this version was made current again by `rollback`, the version
    /// it replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_from: Option<String>,
    /// When `uninstall` removed it (its Helm releases, and with
    /// `--purge-images` its images): the record stays, marked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninstalled_at: Option<String>,
}

/// One image in an install record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordedImage {
    /// `name:tag`.
    pub reference: String,
    /// Top manifest or index digest.
    pub digest: String,
    /// Sum of its blobs' sizes.
    pub total_size: u64,
}

/// A chart or template in an install record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordedArtifact {
    /// Name.
    pub name: String,
    /// Version (charts) or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Digest.
    pub digest: String,
}

/// A version that was installed before the current one.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviousVersion {
    /// Version.
    pub version: String,
    /// Bundle digest.
    pub bundle_digest: String,
    /// When it was installed.
    pub installed_at: String,
}

/// The journal of an unfinished run (`runs/HEX.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Journal {
    pub bundle_digest: String,
    pub bundle: String,
    pub started_at: String,
    /// Identity of the bundle file when it was verified: a changed file is
    /// verified again.
    pub(crate) file: Option<FileIdentity>,
    pub done: Vec<String>,
    pub license_serial: Option<u64>,
    pub config_digest: Option<String>,
    pub applied: bool,
    /// What the run does (`install`, `upgrade`, `downgrade`), decided when
    /// it started, and the version it replaces. A resumed run goes on as
    /// what it started as, even when it was interrupted after writing the
    /// install record (which then already names this bundle). Absent in
    /// journals of older installers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,
    /// The backups taken before this run applied (`backups/STAMP`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_dir: Option<String>,
    /// Items an uninstall or purge finished (Helm releases, images).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finished: Vec<String>,
}

impl Journal {
    /// The change the run started as, when the journal says.
    fn started_as(&self) -> Option<Change> {
        match (self.kind.as_deref(), self.from_version.clone()) {
            (Some("install"), _) => Some(Change::Install),
            (Some("upgrade"), Some(v)) => Some(Change::Upgrade(v)),
            (Some("downgrade"), Some(v)) => Some(Change::Downgrade(v)),
            (Some("apply"), Some(v)) => Some(Change::Apply(v)),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FileIdentity {
    /// The file's path (for media parts: every part's, space-separated).
    pub(crate) path: String,
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl FileIdentity {
    /// The bundle file, or for media parts: every part's path, the first
    /// part's device and inode, the sum of their sizes and the latest mtime
    /// (a part copied again is newer).
    fn of(path: &Path) -> Result<Self> {
        let files = airgap_format::parts::locate(path)
            .with_context(|| format!("{}: cannot find the bundle", path.display()))?;
        let mut id: Option<FileIdentity> = None;
        for f in &files {
            let m =
                std::fs::metadata(f).with_context(|| format!("{}: cannot stat", f.display()))?;
            let name = std::fs::canonicalize(f)
                .unwrap_or_else(|_| f.to_path_buf())
                .display()
                .to_string();
            let mtime_ns = i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec());
            match id.as_mut() {
                None => {
                    id = Some(FileIdentity {
                        path: name,
                        dev: m.dev(),
                        ino: m.ino(),
                        size: m.size(),
                        mtime_ns,
                    })
                }
                Some(i) => {
                    i.path = format!("{} {name}", i.path);
                    i.size += m.size();
                    i.mtime_ns = i.mtime_ns.max(mtime_ns);
                }
            }
        }
        id.ok_or_else(|| anyhow!("{}: no bundle file", path.display()))
    }
}

/// One step's outcome.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// The step.
    pub step: String,
    /// `ok`, `skipped`, `resumed`, `warning` or `failed`.
    pub outcome: String,
    /// One line of detail.
    pub detail: String,
}

/// What a run did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallReport {
    /// Bundle name.
    pub name: String,
    /// Bundle version.
    pub version: String,
    /// Bundle digest.
    pub bundle_digest: String,
    /// `install`, `upgrade`, `downgrade`, `reinstall`, or `apply` (the
    /// installed bundle, rendered by an earlier run without `--apply`).
    pub kind: String,
    /// The version it replaced, if any.
    pub from_version: Option<String>,
    /// Each step.
    pub steps: Vec<StepReport>,
    /// The rendered configuration folder.
    pub config_dir: String,
}

/// The names of the installed bundles.
pub fn installed_names(state_root: &Path) -> Result<Vec<String>> {
    State::open_read_only(state_root).list("installs")
}

/// Every install record, sorted by name.
pub fn installed(state: &State) -> Result<Vec<InstallRecord>> {
    let mut out = Vec::new();
    for name in state.list("installs")? {
        if let Some(r) = state.read_json::<InstallRecord>(&format!("installs/{name}.json"))? {
            out.push(r);
        }
    }
    Ok(out)
}

/// Where a bundle version's relocation map and rendered configuration live.
pub(crate) fn version_dir(state: &State, name: &str, version: &str) -> PathBuf {
    state.root().join("installs").join(name).join(version)
}

/// How the bundle relates to what is installed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Nothing of this name is installed.
    Install,
    /// A newer version.
    Upgrade(String),
    /// An older (or equal but different) version: needs `--allow-downgrade`.
    Downgrade(String),
    /// Exactly this bundle is installed.
    Same(String),
    /// Exactly this bundle was installed by a run without `--apply`
    /// (rendered, not applied), and this run applies it.
    Apply(String),
}

impl Change {
    fn kind(&self) -> &'static str {
        match self {
            Change::Install => "install",
            Change::Upgrade(_) => "upgrade",
            Change::Downgrade(_) => "downgrade",
            Change::Same(_) => "reinstall",
            Change::Apply(_) => "apply",
        }
    }
    fn from(&self) -> Option<String> {
        match self {
            Change::Install => None,
            Change::Upgrade(v) | Change::Downgrade(v) | Change::Same(v) | Change::Apply(v) => {
                Some(v.clone())
            }
        }
    }
}

/// Compares a bundle with the installed record of the same name, for a
/// run that applies (`apply`) or only renders.
pub fn compare(
    d: &BundleDescriptor,
    digest: &str,
    current: Option<&InstallRecord>,
    apply: bool,
) -> Change {
    let Some(cur) = current.filter(|c| c.uninstalled_at.is_none()) else {
        return Change::Install;
    };
    if cur.bundle_digest == digest {
        if apply && !cur.applied {
            return Change::Apply(cur.version.clone());
        }
        return Change::Same(cur.version.clone());
    }
    match (
        semver::Version::parse(&d.version),
        semver::Version::parse(&cur.version),
    ) {
        (Ok(new), Ok(old)) if new > old => Change::Upgrade(cur.version.clone()),
        _ => Change::Downgrade(cur.version.clone()),
    }
}

/// A recorded, resumable run of `install`, `rollback` or `uninstall`: its
/// journal, audit records and step report.
pub(crate) struct Run<'s> {
    pub state: &'s State,
    /// The command, as the audit log names it.
    pub command: &'static str,
    /// Its steps in order (for `[n/N]`).
    pub order: &'static [&'static str],
    pub journal: Journal,
    pub journal_path: String,
    pub bundle_digest: String,
    pub bundle_label: String,
    pub steps: Vec<StepReport>,
    pub progress: bool,
    /// The step under way, for the record of an interruption.
    pub current: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Run<'_> {
    pub fn audit(&self, step: &str, outcome: &str, detail: Option<String>) -> Result<()> {
        self.state.audit(&AuditRecord {
            time: rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).expect("0")),
            operator: operator(),
            command: self.command.into(),
            bundle_digest: Some(self.bundle_digest.clone()),
            bundle: Some(self.bundle_label.clone()),
            step: step.into(),
            outcome: outcome.into(),
            detail,
        })
    }

    pub fn done(&self, step: &str) -> bool {
        self.journal.done.iter().any(|s| s == step)
    }

    /// Records a finished step: audit log, journal, report line.
    pub fn finish(&mut self, step: &str, outcome: &str, detail: String) -> Result<()> {
        self.audit(step, outcome, Some(detail.clone()))?;
        if !self.done(step) {
            self.journal.done.push(step.to_string());
        }
        self.state.write_json(&self.journal_path, &self.journal)?;
        self.report(step, outcome, detail);
        Ok(())
    }

    pub fn report(&mut self, step: &str, outcome: &str, detail: String) {
        if self.progress {
            let n = self
                .order
                .iter()
                .position(|s| *s == step)
                .map_or(0, |i| i + 1);
            // Details carry bundle names and tools' output lines.
            println!(
                "[{n}/{}] {step:<9} {outcome}: {}",
                self.order.len(),
                e(&detail)
            );
        }
        self.steps.push(StepReport {
            step: step.into(),
            outcome: outcome.into(),
            detail,
        });
    }

    fn resumed(&mut self, step: &str) {
        self.report(step, "resumed", "done earlier in this run".into());
    }

    /// Runs `f` as step `step` unless the journal has it; a failure is
    /// logged and stops the run.
    pub fn step(
        &mut self,
        step: &str,
        f: impl FnOnce(&mut Self) -> Result<(String, String)>,
    ) -> Result<()> {
        if self.done(step) {
            self.resumed(step);
            return Ok(());
        }
        if let Ok(mut current) = self.current.lock() {
            *current = step.to_string();
        }
        match f(self) {
            Ok((outcome, detail)) => self.finish(step, &outcome, detail),
            Err(e) => {
                // A step that failed because of a signal (helm killed by
                // the same Ctrl-C) is recorded as interrupted instead.
                airgap_format::interrupt::wait_if_interrupted();
                let line = error_line(e.as_ref());
                // The step's error is the one to report, even when the log
                // cannot take it (a full disk is often both).
                if let Err(log) = self.audit(step, "failed", Some(line.clone())) {
                    tracing::warn!(
                        "the failure of step {step} is not in the audit log: {}",
                        error_line(log.as_ref())
                    );
                }
                self.report(step, "failed", line);
                Err(e)
            }
        }
    }
}

/// Installs or upgrades the bundle. See the module documentation.
pub fn install(state: &State, options: &InstallOptions) -> Result<InstallReport> {
    let now = OffsetDateTime::now_utc();
    // Refusals before a run starts (a clock set back, a bundle whose
    // signature fails) are logged too.
    let early = state
        .observe_time(now, airgap_licenses::clock::DEFAULT_MAX_DRIFT)
        .and_then(|_| {
            Ok(verify_head(
                options.bundle,
                options.trusted,
                Limits::default(),
            )?)
        })
        .and_then(|head| {
            // The secrets the render reads are read now, before anything
            // changes: every one missing is named before the push, not after.
            if !head.descriptor.templates.is_empty() {
                options.site.resolve_secrets()?;
            }
            Ok(head)
        });
    let head = match early {
        Ok(h) => h,
        Err(e) => {
            audit_failure(state, "install", None, None, &e);
            return Err(e);
        }
    };
    let d = head.descriptor.clone();
    let digest = head.bundle_digest.to_string();
    let label = format!("{}@{}", d.name, d.version);
    let current = state.read_json::<InstallRecord>(&format!("installs/{}.json", d.name))?;
    let hex = digest.trim_start_matches("sha256:").to_string();
    let journal_path = format!("runs/{hex}.json");
    let existing = state.read_json::<Journal>(&journal_path)?;
    let change = existing
        .as_ref()
        .and_then(Journal::started_as)
        .unwrap_or_else(|| compare(&d, &digest, current.as_ref(), options.apply));
    let mut run = Run {
        state,
        command: "install",
        order: &STEPS,
        journal: existing.clone().unwrap_or_else(|| Journal {
            bundle_digest: digest.clone(),
            bundle: label.clone(),
            started_at: rfc3339(now.replace_nanosecond(0).expect("0")),
            kind: Some(change.kind().to_string()),
            from_version: change.from(),
            ..Journal::default()
        }),
        journal_path,
        bundle_digest: digest.clone(),
        bundle_label: label.clone(),
        steps: Vec::new(),
        progress: options.progress,
        current: Default::default(),
    };
    let vdir = version_dir(state, &d.name, &d.version);
    let config_dir = vdir.join("config");
    let map_path = vdir.join("relocation-map.json");
    let report = |run: Run| InstallReport {
        name: d.name.clone(),
        version: d.version.clone(),
        bundle_digest: digest.clone(),
        kind: change.kind().into(),
        from_version: change.from(),
        steps: run.steps,
        config_dir: config_dir.display().to_string(),
    };

    match &change {
        Change::Same(_) if existing.is_none() => {
            let applied = current.as_ref().is_some_and(|c| c.applied);
            let (audit, shown) = if applied {
                (
                    "already installed".to_string(),
                    format!("{label} is already installed; nothing to do"),
                )
            } else {
                (
                    "already installed (rendered, not applied)".to_string(),
                    format!("{label} is already installed, rendered but not applied; nothing to do (run again with --apply to apply it)"),
                )
            };
            run.audit("install", "skipped", Some(audit))?;
            run.report("record", "skipped", shown);
            return Ok(report(run));
        }
        Change::Downgrade(old) if !options.allow_downgrade => {
            let msg = format!(
                "{label} is not newer than the installed {} {old}; refusing (pass --allow-downgrade to install it anyway)",
                d.name
            );
            run.audit("install", "refused", Some(msg.clone()))?;
            bail!("{msg}");
        }
        Change::Downgrade(old) => {
            run.audit(
                "install",
                "warning",
                Some(format!(
                    "--allow-downgrade: replacing {} {old} with {label}",
                    d.name
                )),
            )?;
        }
        _ => {}
    }
    if existing.is_none() {
        run.audit(
            "install",
            "started",
            Some(match change.from() {
                Some(v) => format!("{} from {v}", change.kind()),
                None => change.kind().to_string(),
            }),
        )?;
    } else {
        run.audit(
            "install",
            "started",
            Some("resuming an interrupted run".into()),
        )?;
    }
    let _interrupted = record_interruption(&run, &label);

    // 1. preflight: every problem the run would meet, all at once, before
    // anything changes. Run again when a run resumes (what it checks may
    // have changed since); a run it stops leaves no journal behind.
    if options.skip_preflight {
        let detail = "--skip-preflight: nothing was checked before the run".to_string();
        run.audit("preflight", "skipped", Some(detail.clone()))?;
        run.report("preflight", "skipped", detail);
        if existing.is_none() {
            state.write_json(&run.journal_path.clone(), &run.journal)?;
        }
    }
    let pre = if options.skip_preflight {
        Ok(crate::preflight::PreflightReport::skipped())
    } else {
        crate::preflight::preflight(
            state,
            &crate::preflight::PreflightOptions {
                bundle: options.bundle,
                site: options.site,
                trusted: options.trusted,
                registry: &options.registry,
                apply: options.apply,
                allow_downgrade: options.allow_downgrade,
                node: options.node.as_ref(),
                base: options.base,
                on_existing_tag: options.on_existing_tag,
                jobs: options.jobs,
                // Decided above.
                skip_version: true,
            },
        )
    };
    let pre = match pre {
        Ok(p) => p,
        Err(err) => {
            let line = error_line(err.as_ref());
            run.audit("preflight", "failed", Some(line.clone()))?;
            run.report("preflight", "failed", line);
            return Err(err);
        }
    };
    let failures = pre.failures();
    if !failures.is_empty() {
        if options.progress {
            // With the step lines, on standard output; the error line
            // below goes to standard error.
            print!("{}", pre.to_table());
        }
        let line = failures
            .iter()
            .map(|f| format!("{}: {}", f.check, f.detail))
            .collect::<Vec<_>>()
            .join("; ");
        run.audit("preflight", "failed", Some(line.clone()))?;
        run.report("preflight", "failed", line.clone());
        bail!(
            "preflight found {}, nothing was changed: {line} (airgap-install preflight shows each with its fix)",
            count(failures.len() as u64, "problem")
        );
    }
    let warnings = pre.checks.iter().filter(|c| c.outcome == "warning").count();
    let detail = format!(
        "{} passed{}",
        count((pre.checks.len() - warnings) as u64, "check"),
        if warnings > 0 {
            format!(", {}", count(warnings as u64, "warning"))
        } else {
            String::new()
        }
    );
    if !options.skip_preflight {
        run.audit("preflight", "ok", Some(detail.clone()))?;
        run.report("preflight", "ok", detail);
        if existing.is_none() {
            state.write_json(&run.journal_path.clone(), &run.journal)?;
        }
    }

    let target = site_target(options.site)?;
    let target_text = if target.prefix.is_empty() {
        target.host.clone()
    } else {
        format!("{}/{}", target.host, target.prefix)
    };
    // A rerun after an interruption finds its own tags: same digest,
    // nothing to do. A tag that points elsewhere stops the run unless the
    // operator chose otherwise.
    let push_options = options.registry.push_options(
        state,
        options.site,
        options.jobs,
        options.on_existing_tag,
        options.progress,
        options.base,
    )?;

    // 2. verify. A journal entry counts only for the same, unchanged file.
    let identity = FileIdentity::of(options.bundle)?;
    if run.done("verify") && run.journal.file.as_ref() != Some(&identity) {
        run.journal.done.clear();
    }
    run.step("verify", |run| {
        let size = identity.size;
        let progress = Progress::bytes(size, "verify", run.progress);
        let v = verify_archive(options.bundle, options.trusted, Limits::default(), &|n| {
            progress.inc(n)
        });
        progress.finish();
        let v = v?;
        if v.bundle_digest.to_string() != digest {
            bail!(
                "{}: changed while it was being verified",
                options.bundle.display()
            );
        }
        // A delta is accepted only when the blobs it leaves to its base are
        // in the registry or the --base bundle: checked before any change,
        // by this run's preflight (its survey is not repeated here), or
        // here when preflight was skipped.
        let sources = match pre.delta {
            Some(found) => Some(found),
            None => crate::push::check_delta(options.bundle, options.trusted, &push_options)?,
        };
        let delta = match sources {
            Some(s) => format!(
                "; delta of {} {}: {} blobs already in the registry, {} from --base",
                d.base.as_ref().map_or("", |b| b.name.as_str()),
                d.base.as_ref().map_or("", |b| b.version.as_str()),
                s.in_registry,
                s.from_base
            ),
            None => String::new(),
        };
        run.journal.file = Some(identity.clone());
        Ok((
            "ok".into(),
            format!(
                "signed by {}, {} blobs, {} bytes{delta}",
                v.signer,
                v.descriptor.blobs.len(),
                v.archive_size
            ),
        ))
    })?;

    // 3. license
    run.step("license", |run| {
        let Some(entry) = &d.license else {
            return Ok(("skipped".into(), "the bundle carries no licence".into()));
        };
        let node = options.node.as_ref().ok_or_else(|| {
            anyhow!("the bundle carries a licence, but this node's machine id could not be read")
        })?;
        let text = crate::license::bundle_license_text(&head, &head.reader.entries_by_path()?)?
            .ok_or_else(|| anyhow!("the bundle's licence entry is gone"))?;
        let what = format!("{}: license {}", options.bundle.display(), entry.digest);
        let a = crate::license::activate(
            state,
            &text,
            &what,
            &format!("bundle {label} ({digest})"),
            options.trusted,
            node,
            Some(&d.name),
        )?;
        run.journal.license_serial = Some(a.license.serial);
        let l = &a.license;
        let what = if a.already_active {
            "already active".to_string()
        } else {
            match a.replaced_serial {
                Some(old) => format!("activated, replacing serial {old}"),
                None => "activated".to_string(),
            }
        };
        let grace = l.state == crate::license::LicenseState::Grace;
        let outcome = if grace { "warning" } else { "ok" };
        Ok((
            outcome.into(),
            format!(
                "serial {} for {} {what}; {}",
                l.serial,
                l.customer,
                match (grace, l.days_left) {
                    (true, Some(n)) =>
                        format!("EXPIRED on {}, grace period ends in {n} days", l.expires),
                    (_, Some(n)) => format!("expires {} ({n} days left)", l.expires),
                    _ => String::new(),
                }
            ),
        ))
    })?;

    // 4. push
    run.step("push", |_| {
        let r = push(options.bundle, options.trusted, &push_options)?;
        std::fs::create_dir_all(&vdir)
            .with_context(|| format!("{}: cannot create", vdir.display()))?;
        r.relocation.write(&map_path)?;
        let all: Vec<_> = r.relocation.images.iter().chain(&r.relocation.charts).collect();
        let unchanged = all.iter().filter(|i| i.status == "unchanged").count();
        Ok((
            "ok".into(),
            format!(
                "{} and {} to {target_text} ({} already in place): {} uploaded ({} bytes), {} mounted, {} already there",
                count(r.relocation.images.len() as u64, "image"),
                count(r.relocation.charts.len() as u64, "chart"),
                unchanged,
                count(r.blobs_uploaded, "blob"),
                r.bytes_uploaded,
                r.blobs_mounted,
                r.blobs_present
            ),
        ))
    })?;

    // 5. render
    let mut plan: Option<crate::render::Plan> = None;
    run.step("render", |run| {
        if d.templates.is_empty() {
            return Ok(("skipped".into(), "the bundle carries no templates".into()));
        }
        let license = crate::license::active_text(state.root())?;
        // Render creates its output folder, not the folders above it.
        std::fs::create_dir_all(&vdir)
            .with_context(|| format!("{}: cannot create", vdir.display()))?;
        let p = crate::render::render(
            options.bundle,
            options.trusted,
            &crate::render::RenderOptions {
                site: options.site,
                out: &config_dir,
                relocation: Some(&map_path),
                license: license.as_deref(),
            },
        )?;
        let detail = format!(
            "{}, {} into {}",
            count(p.releases.len() as u64, "release"),
            count(p.files.len() as u64, "file"),
            config_dir.display()
        );
        run.journal.config_digest = Some(file_digest(&config_dir.join("plan.json"))?);
        plan = Some(p);
        Ok(("ok".into(), detail))
    })?;

    // 6. apply (backups first when upgrading)
    run.step("apply", |run| {
        if !options.apply {
            return Ok((
                "skipped".into(),
                format!(
                    "not applied (no --apply): run {}/install-plan.sh",
                    config_dir.display()
                ),
            ));
        }
        if d.templates.is_empty() {
            return Ok(("skipped".into(), "nothing rendered to apply".into()));
        }
        // Backups protect what an earlier run applied: none when nothing
        // was, a first install or the first apply of one.
        let first_apply = matches!(&change, Change::Apply(_))
            && current.as_ref().is_some_and(|c| c.previous.is_empty());
        if !matches!(change, Change::Install) && !first_apply {
            run.journal.backup_dir =
                run_backups(run, &config_dir, FileRole::Backup)?.map(|p| p.display().to_string());
        }
        if which::which("helm").is_err() {
            bail!("helm is not on the PATH; install it, or run without --apply and apply install-plan.sh yourself");
        }
        let script = config_dir.join("install-plan.sh");
        // The health step below runs the checks (or skips them with
        // --skip-health); the script's own check would only repeat them.
        let mut env = vec![("AIRGAP_SKIP_HEALTH".to_string(), "1".into())];
        if let Ok(me) = std::env::current_exe() {
            env.push(("AIRGAP_INSTALL".into(), me.display().to_string()));
        }
        let out = run_logged(&script, &config_dir, &env)?;
        run.journal.applied = true;
        Ok(("ok".into(), format!("install-plan.sh finished: {}", last_line(&out))))
    })?;

    // 7. health
    run.step("health", |_| {
        if !options.apply {
            return Ok(("skipped".into(), "nothing was applied".into()));
        }
        if options.skip_health {
            return Ok(("skipped".into(), "--skip-health".into()));
        }
        let r = crate::health::check_site(
            options.site,
            std::time::Duration::from_secs(options.health_timeout),
        )?;
        let failed = r.checks.len() - r.passed();
        if failed > 0 {
            bail!(
                "{failed} of {} health checks failed:\n{}",
                r.checks.len(),
                r.to_table()
            );
        }
        Ok(("ok".into(), format!("{} checks passed", r.checks.len())))
    })?;

    // 8. record
    let head_signer = head.signature.key_id.to_string();
    run.step("record", |run| {
        let mut previous = current
            .as_ref()
            .map(|c| c.previous.clone())
            .unwrap_or_default();
        if let Some(c) = &current {
            if c.bundle_digest != digest {
                previous.push(PreviousVersion {
                    version: c.version.clone(),
                    bundle_digest: c.bundle_digest.clone(),
                    installed_at: c.installed_at.clone(),
                });
            }
        }
        let record = InstallRecord {
            name: d.name.clone(),
            version: d.version.clone(),
            bundle_digest: digest.clone(),
            signer: head_signer.clone(),
            installed_at: rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).expect("0")),
            operator: operator(),
            bundle_file: identity.path.clone(),
            registry: target_text.clone(),
            relocation_map: map_path.display().to_string(),
            config_dir: config_dir.display().to_string(),
            config_digest: run.journal.config_digest.clone().unwrap_or_default(),
            applied: run.journal.applied,
            license_serial: run.journal.license_serial,
            images: d
                .images
                .iter()
                .map(|i| RecordedImage {
                    reference: i.reference.clone(),
                    digest: i.digest.to_string(),
                    total_size: i.total_size,
                })
                .collect(),
            charts: recorded_charts(&d),
            templates: recorded_templates(&d),
            blobs: registry_blobs(&d),
            previous,
            backup_dir: run.journal.backup_dir.clone(),
            rolled_back_from: None,
            uninstalled_at: None,
        };
        // Each version's record stays beside its configuration, for rollback.
        state.write_json(
            &format!("installs/{}/{}/record.json", d.name, d.version),
            &record,
        )?;
        state.write_json(&format!("installs/{}.json", d.name), &record)?;
        Ok((
            "ok".into(),
            match change.from() {
                Some(v) if v != d.version => format!("{} {v} -> {}", d.name, d.version),
                _ => format!("{} {} installed", d.name, d.version),
            },
        ))
    })?;
    // Logged before the journal goes: a run killed in between is resumed
    // (every step done) and logs `install ok` again, where the other order
    // left a run without its last record, and the rerun a reinstall.
    run.audit("install", "ok", Some(format!("{} {label}", change.kind())))?;
    state.remove(&run.journal_path)?;
    let _ = plan;
    Ok(report(run))
}

/// Registers the audit record of an interruption (SIGINT, SIGTERM) of
/// `run`: outcome `interrupted`, in the step under way. A run that already
/// finished (its journal removed) is not recorded as interrupted.
pub(crate) fn record_interruption(run: &Run, label: &str) -> airgap_format::interrupt::OnInterrupt {
    let root = run.state.root().to_path_buf();
    let journal = root.join(&run.journal_path);
    let current = run.current.clone();
    let command = run.command;
    let digest = run.bundle_digest.clone();
    let label = label.to_string();
    airgap_format::interrupt::on_interrupt(move |signal| {
        if !journal.exists() {
            return;
        }
        let step = current.lock().map(|s| s.clone()).unwrap_or_default();
        let step = if step.is_empty() {
            command.into()
        } else {
            step
        };
        let record = AuditRecord {
            time: rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).expect("0")),
            operator: operator(),
            command: command.into(),
            bundle_digest: Some(digest),
            bundle: Some(label.clone()),
            step: step.clone(),
            outcome: "interrupted".into(),
            detail: Some(format!(
                "{} during step {step}; run the same command again to resume, or airgap-install abandon {label} to give the run up",
                signal.name()
            )),
        };
        // The run holds the state folder's lock; appending needs none.
        let _ = State::open_read_only(&root).audit(&record);
    })
}

/// The blobs that go to the registry (images and charts), by digest: the
/// bundle's blobs less those only files, templates, SBOMs and the licence use.
fn registry_blobs(d: &BundleDescriptor) -> BTreeMap<String, u64> {
    let mut other: BTreeSet<String> = BTreeSet::new();
    other.extend(d.files.iter().map(|f| f.digest.to_string()));
    other.extend(d.templates.iter().map(|t| t.digest.to_string()));
    other.extend(d.sboms.iter().map(|s| s.digest.to_string()));
    other.extend(d.license.iter().map(|l| l.digest.to_string()));
    // A blob an image or chart shares with a file still goes to the registry.
    let mut used: BTreeSet<String> = BTreeSet::new();
    used.extend(
        d.charts
            .iter()
            .flat_map(|c| [c.digest.to_string(), c.manifest.to_string()]),
    );
    used.extend(d.images.iter().map(|i| i.digest.to_string()));
    d.blobs
        .iter()
        .chain(&d.base_blobs)
        .map(|b| (b.digest.to_string(), b.size))
        .filter(|(dg, _)| !other.contains(dg) || used.contains(dg))
        .collect()
}

pub(crate) fn file_digest(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(airgap_format::Digest::of(&bytes).to_string())
}

/// Runs every script of `role` the render produced, in plan order; their
/// output and exit status go to the audit log, and a failure stops the run.
/// Backups write into a new `backups/STAMP` folder in the state folder,
/// returned; a restore reads the folder `run.journal.backup_dir` names.
pub(crate) fn run_backups(
    run: &mut Run,
    config_dir: &Path,
    role: FileRole,
) -> Result<Option<PathBuf>> {
    #[derive(Deserialize)]
    struct PlanFiles {
        files: Vec<PlanFile>,
    }
    #[derive(Deserialize)]
    struct PlanFile {
        path: String,
        #[serde(default)]
        role: Option<FileRole>,
    }
    let plan_path = config_dir.join("plan.json");
    let bytes = crate::state::read_bounded(&plan_path, crate::state::MAX_STATE_FILE)?
        .ok_or_else(|| anyhow!("{}: missing", plan_path.display()))?;
    let plan: PlanFiles = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a render plan", plan_path.display()))?;
    let scripts: Vec<String> = plan
        .files
        .into_iter()
        .filter(|f| f.role == Some(role))
        .map(|f| f.path)
        .collect();
    let step = role.as_str();
    if scripts.is_empty() {
        // A rollback's restore step records this itself.
        if role == FileRole::Backup {
            run.audit(
                step,
                "skipped",
                Some("the bundle renders no backup script".into()),
            )?;
        }
        return Ok(None);
    }
    let backup_dir = match role {
        FileRole::Backup => {
            // A new folder per upgrade: the nanoseconds keep two runs
            // within one second apart.
            let now = OffsetDateTime::now_utc();
            let stamp = format!("{}-{:09}", now.unix_timestamp(), now.nanosecond());
            let dir = run.state.root().join("backups").join(stamp);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            dir
        }
        FileRole::Restore => match &run.journal.backup_dir {
            Some(dir) => PathBuf::from(dir),
            None => return Ok(None),
        },
    };
    let config_dir = &std::path::absolute(config_dir)
        .with_context(|| format!("{}: cannot resolve", config_dir.display()))?;
    for s in scripts {
        let path = config_dir.join(&s);
        let mut cmd = Command::new(&path);
        cmd.current_dir(config_dir).env("BACKUP_DIR", &backup_dir);
        let output = cmd
            .output()
            .with_context(|| format!("{}: cannot run", path.display()))?;
        let text = tail(&output.stdout, &output.stderr);
        let status = output
            .status
            .code()
            .map_or("killed by a signal".into(), |c| format!("exit status {c}"));
        let ok = output.status.success();
        run.audit(
            step,
            if ok { "ok" } else { "failed" },
            Some(format!("{s}: {status}\n{text}")),
        )?;
        if !ok {
            match role {
                FileRole::Backup => bail!(
                    "backup {s} failed ({status}); the upgrade was stopped before anything changed: {}",
                    last_line(&text)
                ),
                FileRole::Restore => bail!(
                    "restore {s} failed ({status}); nothing was applied: {}",
                    last_line(&text)
                ),
            }
        }
    }
    Ok(Some(backup_dir))
}

/// Runs a script, its output kept (the tail) for the audit log.
pub(crate) fn run_logged(script: &Path, dir: &Path, env: &[(String, String)]) -> Result<String> {
    // Run from `dir`: a relative script path (a relative state folder) is
    // made absolute first.
    let script = &std::path::absolute(script)
        .with_context(|| format!("{}: cannot resolve", script.display()))?;
    let output = Command::new(script)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .with_context(|| format!("{}: cannot run", script.display()))?;
    let text = tail(&output.stdout, &output.stderr);
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}",
            script.display(),
            output.status,
            last_line(&text)
        );
    }
    Ok(text)
}

fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let mut all = String::from_utf8_lossy(stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(stderr));
    if all.len() > MAX_LOGGED_OUTPUT {
        let mut cut = all.len() - MAX_LOGGED_OUTPUT;
        while !all.is_char_boundary(cut) {
            cut += 1;
        }
        all = format!("[…]{}", &all[cut..]);
    }
    all
}

pub(crate) fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

/// What `plan` reports: the differences between a bundle and what is installed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePlan {
    /// Bundle name.
    pub name: String,
    /// The version installed, if any.
    pub installed_version: Option<String>,
    /// The bundle's version.
    pub version: String,
    /// `install`, `upgrade`, `downgrade` or `reinstall`.
    pub kind: String,
    /// Images added, changed or removed.
    pub images: Vec<ArtifactChange>,
    /// Charts added, changed or removed.
    pub charts: Vec<ArtifactChange>,
    /// Templates added, changed or removed.
    pub templates: Vec<ArtifactChange>,
    /// Image and chart blobs no repository of the registry has: what the
    /// push uploads, once each.
    pub blobs_to_transfer: u64,
    /// Their bytes.
    pub bytes_to_transfer: u64,
    /// Blobs the push mounts from another repository of the registry.
    pub blobs_to_mount: u64,
    /// `registry` when the registry was asked (with `--site`), else
    /// `install record`: an estimate from what the installed version sent.
    pub transfer_from: String,
    /// Why install would stop before pushing (a tag held by another
    /// image, blobs a delta needs that are nowhere), if it would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Rendered configuration files that would change (when a site is given).
    pub config: Vec<ConfigChange>,
    /// The licence the bundle carries, against the active one.
    pub license: Option<String>,
}

/// One image, chart or template that differs.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactChange {
    /// `added`, `changed` or `removed`.
    pub change: String,
    /// Name (images: `name:tag`, charts: name).
    pub name: String,
    /// The installed version or digest.
    pub from: Option<String>,
    /// The new version or digest.
    pub to: Option<String>,
    /// Bytes to transfer for it (images: its blobs the registry lacks).
    pub bytes: u64,
}

/// One rendered configuration file that would change.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigChange {
    /// Path under the configuration folder.
    pub path: String,
    /// `added`, `changed` or `removed`.
    pub change: String,
    /// Lines added.
    pub lines_added: usize,
    /// Lines removed.
    pub lines_removed: usize,
    /// A unified diff (secret-holding files: only a note); empty for the
    /// files of a first install unless `--diff` asked for them.
    pub diff: String,
}

/// Settings of `plan`.
pub struct PlanOptions<'a> {
    /// The bundle.
    pub bundle: &'a Path,
    /// Trusted signing keys.
    pub trusted: &'a [PublicKey],
    /// The site file: the registry it names is asked what it lacks, and
    /// the configuration is rendered and compared.
    pub site: Option<&'a SiteFile>,
    /// How to reach the site's registry (with a site).
    pub registry: Option<RegistryAccess>,
    /// For a delta bundle: its base bundle.
    pub base: Option<&'a Path>,
    /// Requests at once.
    pub jobs: usize,
    /// The tag policy install will use.
    pub on_existing_tag: crate::push::OnExistingTag,
    /// Full diffs of every rendered file, also for a first install.
    pub full_diff: bool,
}

/// The charts of `d` as an install record lists them.
fn recorded_charts(d: &BundleDescriptor) -> Vec<RecordedArtifact> {
    d.charts
        .iter()
        .map(|c| RecordedArtifact {
            name: c.name.clone(),
            version: c.version.clone(),
            digest: c.digest.to_string(),
        })
        .collect()
}

/// The templates of `d` as an install record lists them (no version).
fn recorded_templates(d: &BundleDescriptor) -> Vec<RecordedArtifact> {
    d.templates
        .iter()
        .map(|t| RecordedArtifact {
            name: t.name.clone(),
            version: String::new(),
            digest: t.digest.to_string(),
        })
        .collect()
}

/// `(key, shown version, digest)` for [`artifact_changes`]: a template,
/// which has no version, is shown by its digest.
fn artifact_keys(items: &[RecordedArtifact]) -> Vec<(String, String, String)> {
    items
        .iter()
        .map(|a| {
            let shown = if a.version.is_empty() {
                &a.digest
            } else {
                &a.version
            };
            (a.name.clone(), shown.clone(), a.digest.clone())
        })
        .collect()
}

fn artifact_changes(
    old: &[(String, String, String)],
    new: &[(String, String, String)],
    bytes: &dyn Fn(&str) -> u64,
) -> Vec<ArtifactChange> {
    // (key, shown version, digest)
    let old_map: BTreeMap<&str, (&str, &str)> = old
        .iter()
        .map(|(k, v, d)| (k.as_str(), (v.as_str(), d.as_str())))
        .collect();
    let new_map: BTreeMap<&str, (&str, &str)> = new
        .iter()
        .map(|(k, v, d)| (k.as_str(), (v.as_str(), d.as_str())))
        .collect();
    let keys: BTreeSet<&str> = old_map.keys().chain(new_map.keys()).copied().collect();
    let mut out = Vec::new();
    for k in keys {
        match (old_map.get(k), new_map.get(k)) {
            (None, Some((v, _))) => out.push(ArtifactChange {
                change: "added".into(),
                name: k.into(),
                from: None,
                to: Some(v.to_string()),
                bytes: bytes(k),
            }),
            (Some((v, _)), None) => out.push(ArtifactChange {
                change: "removed".into(),
                name: k.into(),
                from: Some(v.to_string()),
                to: None,
                bytes: 0,
            }),
            (Some((ov, od)), Some((nv, nd))) if od != nd => out.push(ArtifactChange {
                change: "changed".into(),
                name: k.into(),
                from: Some(ov.to_string()),
                to: Some(nv.to_string()),
                bytes: bytes(k),
            }),
            _ => {}
        }
    }
    out
}

/// Compares a bundle with what is installed. With a site, the site's
/// registry is asked what it lacks (HEAD and GET only, see
/// [`crate::survey`]), giving the transfer the push will make, and the
/// configuration is rendered into a temporary folder and compared file by
/// file with the installed version's.
pub fn plan(state: &State, o: &PlanOptions) -> Result<UpgradePlan> {
    let (bundle, trusted, site) = (o.bundle, o.trusted, o.site);
    let head = verify_head(bundle, trusted, Limits::default())?;
    let d = &head.descriptor;
    let digest = head.bundle_digest.to_string();
    let current = state.read_json::<InstallRecord>(&format!("installs/{}.json", d.name))?;
    let change = compare(d, &digest, current.as_ref(), false);
    let entries: std::collections::HashMap<_, _> = head.reader.entries_by_path()?;
    // Bytes to upload per blob, and the totals.
    let mut upload: BTreeMap<String, u64> = BTreeMap::new();
    let (transfer, refused, transfer_from) = match (site, &o.registry) {
        (Some(site), Some(access)) => {
            let options =
                access.push_options(state, site, o.jobs, o.on_existing_tag, false, o.base)?;
            let prepared = crate::push::prepare(bundle, trusted, &options)?;
            let survey = crate::survey::survey(&prepared, &options)?;
            for b in &survey.blobs {
                if !b.missing.is_empty() && b.home.is_none() {
                    upload.insert(b.digest.to_string(), b.size);
                }
            }
            let refused = survey
                .require_complete(d, &options.target.host)
                .err()
                .map(|e| error_line(e.as_ref()));
            (survey.transfer(), refused, "registry")
        }
        _ => {
            // No registry to ask: the image and chart blobs the installed
            // version did not send.
            let have: BTreeMap<String, u64> = current
                .as_ref()
                .map(|c| c.blobs.clone())
                .unwrap_or_default();
            upload = registry_blobs(d)
                .into_iter()
                .filter(|(dg, _)| !have.contains_key(dg))
                .collect();
            let t = Transfer {
                blobs_to_upload: upload.len() as u64,
                bytes_to_upload: upload.values().sum(),
                ..Transfer::default()
            };
            (t, None, "install record")
        }
    };
    // Bytes per image: its blobs to upload, each counted for the first
    // image that needs it (as push's progress bars count them).
    let mut counted: BTreeSet<String> = BTreeSet::new();
    let mut image_bytes: BTreeMap<String, u64> = BTreeMap::new();
    for img in &d.images {
        let blobs = crate::push::image_blob_digests(&head.reader, d, &entries, img)?;
        let mut sum = 0;
        for b in blobs {
            let b = b.to_string();
            if let Some(size) = upload.get(&b) {
                if counted.insert(b) {
                    sum += size;
                }
            }
        }
        image_bytes.insert(img.reference.clone(), sum);
    }
    let old_images: Vec<(String, String, String)> = current
        .iter()
        .flat_map(|c| &c.images)
        .map(|i| (i.reference.clone(), i.digest.clone(), i.digest.clone()))
        .collect();
    let new_images: Vec<(String, String, String)> = d
        .images
        .iter()
        .map(|i| {
            (
                i.reference.clone(),
                i.digest.to_string(),
                i.digest.to_string(),
            )
        })
        .collect();
    // Images are compared by repository (a new tag of the same image is a change).
    let by_repo = |v: Vec<(String, String, String)>| -> Vec<(String, String, String)> {
        v.into_iter()
            .map(|(r, _, dg)| {
                let (name, tag) = r.rsplit_once(':').unwrap_or((&r, ""));
                (name.to_string(), format!("{tag} ({dg})"), dg)
            })
            .collect()
    };
    let ref_bytes: BTreeMap<String, u64> = d
        .images
        .iter()
        .map(|i| {
            let name = i
                .reference
                .rsplit_once(':')
                .map_or(i.reference.as_str(), |x| x.0);
            (
                name.to_string(),
                image_bytes.get(&i.reference).copied().unwrap_or(0),
            )
        })
        .collect();
    let images = artifact_changes(&by_repo(old_images), &by_repo(new_images), &|k| {
        ref_bytes.get(k).copied().unwrap_or(0)
    });
    let chart_bytes: BTreeMap<String, u64> = d
        .charts
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                upload.get(&c.digest.to_string()).copied().unwrap_or(0),
            )
        })
        .collect();
    let charts = artifact_changes(
        &artifact_keys(current.as_ref().map_or(&[][..], |c| &c.charts)),
        &artifact_keys(&recorded_charts(d)),
        &|k| chart_bytes.get(k).copied().unwrap_or(0),
    );
    let templates = artifact_changes(
        &artifact_keys(current.as_ref().map_or(&[][..], |c| &c.templates)),
        &artifact_keys(&recorded_templates(d)),
        &|_| 0,
    );
    let config = match (site, &current) {
        (Some(site), cur) if !d.templates.is_empty() => {
            config_changes(state, o, site, cur.as_ref(), d, &digest)?
        }
        _ => Vec::new(),
    };
    let license = match crate::license::bundle_license_text(&head, &entries)? {
        None => None,
        Some(text) => {
            let armored = airgap_licenses::license::ArmoredLicense::parse(&text, "license")?;
            let payload = armored.verify_signature("license", trusted)?;
            let active = state.active_license()?.map(|(_, r)| r.serial);
            Some(match active {
                Some(a) if a == payload.serial => {
                    format!("serial {} (already active)", payload.serial)
                }
                Some(a) if a > payload.serial => format!(
                    "serial {} is older than the active serial {a}: install would refuse it",
                    payload.serial
                ),
                Some(a) => format!("serial {} replaces the active serial {a}", payload.serial),
                None => format!("serial {} (no licence is active)", payload.serial),
            })
        }
    };
    Ok(UpgradePlan {
        name: d.name.clone(),
        installed_version: current.as_ref().map(|c| c.version.clone()),
        version: d.version.clone(),
        kind: change.kind().into(),
        images,
        charts,
        templates,
        blobs_to_transfer: transfer.blobs_to_upload,
        bytes_to_transfer: transfer.bytes_to_upload,
        blobs_to_mount: transfer.blobs_to_mount,
        transfer_from: transfer_from.into(),
        refused,
        config,
        license,
    })
}

/// Where the site file says images go.
pub(crate) fn site_target(site: &SiteFile) -> Result<crate::target::Target> {
    let r = &site.site.registry;
    crate::target::Target::parse(&if r.prefix.is_empty() {
        r.host.clone()
    } else {
        format!("{}/{}", r.host, r.prefix)
    })
}

fn config_changes(
    state: &State,
    o: &PlanOptions,
    site: &SiteFile,
    current: Option<&InstallRecord>,
    d: &BundleDescriptor,
    bundle_digest: &str,
) -> Result<Vec<ConfigChange>> {
    let tmp = tempfile::Builder::new()
        .prefix(".plan-")
        .tempdir_in(state.root())
        .with_context(|| {
            format!(
                "{}: cannot create a temporary folder",
                state.root().display()
            )
        })?;
    let license = crate::license::active_text(state.root())?;
    // Rendered as install will render it: with the relocation map the push
    // will write, so charts come from the registry as they will then.
    let map_path = tmp.path().join("relocation-map.json");
    crate::relocation::RelocationMap::expected(d, bundle_digest, &site_target(site)?, "pushed")
        .write(&map_path)?;
    let rendered = tmp.path().join("config");
    crate::render::render(
        o.bundle,
        o.trusted,
        &crate::render::RenderOptions {
            site,
            out: &rendered,
            relocation: Some(&map_path),
            license: license.as_deref(),
        },
    )?;
    let old_dir = current.map(|c| PathBuf::from(&c.config_dir));
    let mut files = BTreeSet::new();
    collect_files(&rendered, &rendered, &mut files)?;
    if let Some(o) = &old_dir {
        if o.is_dir() {
            collect_files(o, o, &mut files)?;
        }
    }
    let mut out = Vec::new();
    for rel in files {
        // plan.json names the bundle digest, so it differs whenever
        // anything does.
        if rel == "plan.json" {
            continue;
        }
        let new = std::fs::read(rendered.join(&rel)).ok();
        let old = old_dir
            .as_ref()
            .and_then(|o| std::fs::read(o.join(&rel)).ok());
        if new == old {
            continue;
        }
        let secret = [&new, &old].iter().any(|b| {
            b.as_ref().is_some_and(|_| {
                is_private(&rendered.join(&rel))
                    || old_dir.as_ref().is_some_and(|o| is_private(&o.join(&rel)))
            })
        });
        let change = match (&old, &new) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ => "changed",
        };
        let o_text = String::from_utf8_lossy(old.as_deref().unwrap_or_default()).into_owned();
        let n_text = String::from_utf8_lossy(new.as_deref().unwrap_or_default()).into_owned();
        let lines = similar::TextDiff::from_lines(&o_text, &n_text);
        let (mut lines_added, mut lines_removed) = (0, 0);
        for c in lines.iter_all_changes() {
            match c.tag() {
                similar::ChangeTag::Insert => lines_added += 1,
                similar::ChangeTag::Delete => lines_removed += 1,
                similar::ChangeTag::Equal => {}
            }
        }
        let diff = if secret {
            "(holds secrets: contents not shown)".to_string()
        } else if current.is_none() && !o.full_diff {
            // A first install adds every file: the summary says enough.
            String::new()
        } else {
            lines
                .unified_diff()
                .context_radius(if o.full_diff { usize::MAX / 2 } else { 2 })
                .header(&format!("installed/{rel}"), &format!("new/{rel}"))
                .to_string()
        };
        out.push(ConfigChange {
            path: rel,
            change: change.into(),
            lines_added,
            lines_removed,
            diff,
        });
    }
    Ok(out)
}

fn is_private(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o077 == 0)
}

fn collect_files(root: &Path, dir: &Path, out: &mut BTreeSet<String>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("{}: cannot list", dir.display()))? {
        let e = e?;
        let p = e.path();
        let t = e.file_type()?;
        if t.is_dir() {
            collect_files(root, &p, out)?;
        } else if t.is_file() {
            if let Ok(rel) = p.strip_prefix(root) {
                out.insert(rel.display().to_string());
            }
        }
    }
    Ok(())
}

impl UpgradePlan {
    /// The plan for people.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{} {} -> {} ({})\n",
            e(&self.name),
            e(self
                .installed_version
                .as_deref()
                .unwrap_or("(not installed)")),
            e(&self.version),
            self.kind
        );
        let section = |s: &mut String, title: &str, items: &[ArtifactChange]| {
            if items.is_empty() {
                s.push_str(&format!("{title}: no changes\n"));
                return;
            }
            s.push_str(&format!("{title}:\n"));
            for i in items {
                s.push_str(&format!(
                    "  {:<8} {:<40} {} -> {}{}\n",
                    i.change,
                    e(&i.name),
                    e(i.from.as_deref().unwrap_or("-")),
                    e(i.to.as_deref().unwrap_or("-")),
                    if i.bytes > 0 {
                        format!("  ({} bytes to transfer)", i.bytes)
                    } else {
                        String::new()
                    }
                ));
            }
        };
        section(&mut s, "Images", &self.images);
        section(&mut s, "Charts", &self.charts);
        section(&mut s, "Templates", &self.templates);
        if self.transfer_from == "registry" {
            s.push_str(&format!(
                "Transfer: {} ({}) to upload, {} to mount from other repositories of the registry\n",
                count(self.blobs_to_transfer, "blob"),
                display::bytes(self.bytes_to_transfer),
                count(self.blobs_to_mount, "blob"),
            ));
        } else {
            s.push_str(&format!(
                "Transfer: at most {} ({}) the installed version did not send (give --site to ask the registry)\n",
                count(self.blobs_to_transfer, "blob"),
                display::bytes(self.bytes_to_transfer),
            ));
        }
        if let Some(r) = &self.refused {
            s.push_str(&format!(
                "Refused: install would stop before pushing: {}\n",
                e(r)
            ));
        }
        if self.config.is_empty() {
            s.push_str("Configuration: no changes (or no --site given)\n");
        } else {
            s.push_str("Configuration:\n");
            for c in &self.config {
                s.push_str(&format!(
                    "  {:<8} {}  (+{} -{})\n",
                    c.change,
                    e(&c.path),
                    c.lines_added,
                    c.lines_removed
                ));
                for line in c.diff.lines() {
                    s.push_str(&format!("    {}\n", e(line)));
                }
            }
            if self.config.iter().all(|c| c.diff.is_empty()) {
                s.push_str("  (--diff shows every file in full)\n");
            }
        }
        s.push_str(&format!(
            "Licence: {}\n",
            e(self.license.as_deref().unwrap_or("the bundle carries none"))
        ));
        s
    }
}

/// The audit log for people: one line per record.
pub fn history_text(records: &[AuditRecord]) -> String {
    let mut s = String::new();
    for r in records {
        s.push_str(&format!(
            "{}  {:<10} {:<18} {:<24} {:<8} {:<8} {}\n",
            e(&r.time),
            e(&r.operator),
            e(&r.command),
            e(r.bundle.as_deref().unwrap_or("-")),
            e(&r.step),
            e(&r.outcome),
            e(r.detail
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or(""))
        ));
    }
    s
}

/// Recorded installs for people.
pub fn status_text(records: &[InstallRecord]) -> String {
    if records.is_empty() {
        return "nothing installed\n".into();
    }
    let mut s = String::new();
    for r in records {
        s.push_str(&format!(
            "{} {}  {}\n  installed {} by {}, signed by {}\n  registry {}; {}, {}; {}\n  configuration: {}\n",
            e(&r.name),
            e(&r.version),
            e(&r.bundle_digest),
            e(&r.installed_at),
            e(&r.operator),
            e(&r.signer),
            e(&r.registry),
            count(r.images.len() as u64, "image"),
            count(r.charts.len() as u64, "chart"),
            match (&r.uninstalled_at, r.applied) {
                (Some(_), _) => "uninstalled",
                (None, true) => "applied",
                (None, false) => "rendered, not applied",
            },
            e(&r.config_dir)
        ));
        if let Some(when) = &r.uninstalled_at {
            s.push_str(&format!("  uninstalled {}\n", e(when)));
        }
        if let Some(from) = &r.rolled_back_from {
            s.push_str(&format!("  rolled back from {}\n", e(from)));
        }
        if !r.previous.is_empty() {
            s.push_str(&format!(
                "  earlier: {}\n",
                e(&r.previous
                    .iter()
                    .map(|p| p.version.as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
            ));
        }
    }
    s
}

/// Logs a refused or failed command that did not get as far as a run.
pub fn audit_failure(
    state: &State,
    command: &str,
    bundle: Option<&BundleDescriptor>,
    digest: Option<String>,
    e: &anyhow::Error,
) {
    let _ = state.audit(&AuditRecord {
        time: rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).expect("0")),
        operator: operator(),
        command: command.into(),
        bundle_digest: digest,
        bundle: bundle.map(|d| format!("{}@{}", d.name, d.version)),
        step: command.rsplit(' ').next().unwrap_or(command).into(),
        outcome: "refused".into(),
        detail: Some(error_line(e.as_ref())),
    });
}
