//! `airgap-install install`: one recorded, resumable run that takes a
//! bundle from the media to a configured site, and the same for upgrades.
//!
//! Steps, in order: preflight (see [`crate::preflight`]; run again on
//! every start, never journaled), verify, license, push, render, apply
//! (backups first when upgrading; only with `--apply`), health, record
//! ([`steps`]). Each finished step is written to a journal in the state
//! folder (`runs/HEX.json`, [`journal`]) before the next starts, so a run
//! that was interrupted (Ctrl-C, SIGKILL, power loss) and is started again
//! skips what it finished; within the push step, blobs already in the
//! registry are not sent again. Every step's outcome goes to the audit log
//! ([`run`]). The journal is removed when the run is recorded
//! ([`records`]).
//!
//! `plan` ([`upgrade`]) compares a bundle with what is installed without
//! changing anything.

pub mod access;
pub mod journal;
pub mod records;
pub mod run;
pub mod scripts;
pub mod steps;
pub mod upgrade;

use std::path::Path;

use airgap_cli::progress::error_line;
use airgap_format::display::count;
use airgap_format::SignedBundle;
use airgap_format::{Limits, PublicKey};
use airgap_licenses::NodeIds;
use anyhow::{bail, Result};
use serde::Serialize;
use time::OffsetDateTime;

use self::access::{site_target, RegistryAccess};
use self::journal::{FileIdentity, Journal, RunKind, Step};
use self::records::{compare, Change};
use self::run::{audit_failure, Command, Run, StepReport};
use self::steps::{Install, STEPS};
use crate::preflight::PreflightReport;
use crate::site::SiteFile;
use crate::state::{Outcome, State};

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
    /// `install`, `upgrade`, `downgrade`, `reinstall`, `apply` (the
    /// installed bundle, rendered by an earlier run without `--apply`) or
    /// `rollback`.
    pub kind: records::ChangeKind,
    /// The version it replaced, if any.
    pub from_version: Option<String>,
    /// Each step.
    pub steps: Vec<StepReport>,
    /// The rendered configuration folder.
    pub config_dir: String,
}

/// Installs or upgrades the bundle. See the module documentation.
pub fn install(state: &State, options: &InstallOptions) -> Result<InstallReport> {
    let now = OffsetDateTime::now_utc();
    // Refusals before a run starts (a clock set back, a bundle whose
    // signature fails) are logged too.
    let early = state
        .observe_time(now, airgap_licenses::clock::DEFAULT_MAX_DRIFT)
        .and_then(|_| {
            Ok(SignedBundle::open(
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
    let d = &head.descriptor;
    let digest = head.bundle_digest.to_string();
    let label = format!("{}@{}", d.name, d.version);
    let current = state.install_record(&d.name)?;
    let journal_id = digest.trim_start_matches("sha256:").to_string();
    let existing = state.journal(&journal_id)?;
    let change = existing
        .as_ref()
        .and_then(Journal::started_as)
        .unwrap_or_else(|| compare(d, &digest, current.as_ref(), options.apply));
    let journal = existing.clone().unwrap_or_else(|| {
        Journal::begin(
            digest.clone(),
            label.clone(),
            RunKind::of(&change),
            change.from(),
        )
    });
    let mut run = Run::new(
        state,
        Command::Install,
        &STEPS,
        journal,
        journal_id,
        options.progress,
    );
    let version_dir = state.version_dir(&d.name, &d.version);
    let report = |run: Run| InstallReport {
        name: d.name.clone(),
        version: d.version.clone(),
        bundle_digest: digest.clone(),
        kind: change.kind(),
        from_version: change.from(),
        steps: run.steps,
        config_dir: version_dir.join("config").display().to_string(),
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
            run.audit_run(Outcome::Skipped, audit)?;
            run.report(Step::Record, Outcome::Skipped, shown);
            return Ok(report(run));
        }
        Change::Downgrade(old) if !options.allow_downgrade => {
            let msg = format!(
                "{label} is not newer than the installed {} {old}; refusing (pass --allow-downgrade to install it anyway)",
                d.name
            );
            run.audit_run(Outcome::Refused, msg.clone())?;
            bail!("{msg}");
        }
        Change::Downgrade(old) => {
            run.audit_run(
                Outcome::Warning,
                format!("--allow-downgrade: replacing {} {old} with {label}", d.name),
            )?;
        }
        _ => {}
    }
    run.audit_run(
        Outcome::Started,
        match (&existing, change.from()) {
            (Some(_), _) => "resuming an interrupted run".into(),
            (None, Some(v)) => format!("{} from {v}", change.kind()),
            (None, None) => change.kind().to_string(),
        },
    )?;
    let _interrupted = run.record_interruption();

    let pre = preflight(&mut run, options, &head, existing.is_none())?;

    // A rerun after an interruption finds its own tags: same digest,
    // nothing to do. A tag that points elsewhere stops the run unless the
    // operator chose otherwise.
    let target = site_target(options.site)?;
    let push_options = options.registry.push_options(
        state,
        options.site,
        options.jobs,
        options.on_existing_tag,
        options.progress,
        options.base,
    )?;
    let install = Install {
        pushed: Default::default(),
        state,
        options,
        head: &head,
        digest: digest.clone(),
        label: label.clone(),
        change: change.clone(),
        current: current.clone(),
        version_dir: version_dir.clone(),
        target: if target.prefix.is_empty() {
            target.host.clone()
        } else {
            format!("{}/{}", target.host, target.prefix)
        },
        push_options,
        identity: FileIdentity::of(options.bundle)?,
        delta: pre.delta,
    };

    // A journal entry for verify counts only for the same, unchanged file.
    if run.done(Step::Verify) && run.journal.file.as_ref() != Some(&install.identity) {
        run.journal.done.clear();
    }
    run.step(Step::Verify, |run| install.verify(run))?;
    run.step(Step::License, |run| install.license(run))?;
    run.step(Step::Push, |_| install.push())?;
    run.step(Step::Render, |run| install.render(run))?;
    run.step(Step::Apply, |run| install.apply(run))?;
    run.step(Step::Health, |_| install.health())?;
    run.step(Step::Record, |run| install.record(run))?;
    // Logged before the journal goes: a run killed in between is resumed
    // (every step done) and logs `install ok` again, where the other order
    // left a run without its last record, and the rerun a reinstall.
    run.audit_run(Outcome::Ok, format!("{} {label}", change.kind()))?;
    state.remove_journal(&run.journal_id)?;
    Ok(report(run))
}

/// The preflight step: every problem the run would meet, all at once,
/// before anything changes. Run again when a run resumes (what it checks
/// may have changed since); a run it stops leaves no journal behind. A new
/// run's journal is written once it passes (or is skipped).
fn preflight(
    run: &mut Run,
    options: &InstallOptions,
    bundle: &SignedBundle,
    new_run: bool,
) -> Result<PreflightReport> {
    if options.skip_preflight {
        let detail = "--skip-preflight: nothing was checked before the run".to_string();
        run.audit(Step::Preflight, Outcome::Skipped, Some(detail.clone()))?;
        run.report(Step::Preflight, Outcome::Skipped, detail);
        if new_run {
            run.save_journal()?;
        }
        return Ok(PreflightReport::skipped());
    }
    let pre = crate::preflight::preflight(
        run.state,
        &crate::preflight::PreflightOptions {
            bundle,
            site: options.site,
            trusted: options.trusted,
            registry: &options.registry,
            apply: options.apply,
            allow_downgrade: options.allow_downgrade,
            node: options.node.as_ref(),
            base: options.base,
            on_existing_tag: options.on_existing_tag,
            jobs: options.jobs,
            // Decided by the run.
            skip_version: true,
        },
    );
    let pre = match pre {
        Ok(p) => p,
        Err(err) => {
            let line = error_line(err.as_ref());
            run.audit(Step::Preflight, Outcome::Failed, Some(line.clone()))?;
            run.report(Step::Preflight, Outcome::Failed, line);
            return Err(err);
        }
    };
    let failures = pre.failures();
    if !failures.is_empty() {
        if options.progress {
            // With the step lines, on standard output; the error line
            // below goes to standard error. A reader that went away
            // (`| head`) is no reason to stop.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), pre.to_table().as_bytes());
        }
        let line = failures
            .iter()
            .map(|f| format!("{}: {}", f.check, f.detail))
            .collect::<Vec<_>>()
            .join("; ");
        run.audit(Step::Preflight, Outcome::Failed, Some(line.clone()))?;
        run.report(Step::Preflight, Outcome::Failed, line.clone());
        bail!(
            "preflight found {}, nothing was changed: {line} (airgap-install preflight shows each with its fix)",
            count(failures.len() as u64, "problem")
        );
    }
    let warnings = pre
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Warning)
        .count();
    let detail = format!(
        "{} passed{}",
        count((pre.checks.len() - warnings) as u64, "check"),
        if warnings > 0 {
            format!(", {}", count(warnings as u64, "warning"))
        } else {
            String::new()
        }
    );
    run.audit(Step::Preflight, Outcome::Ok, Some(detail.clone()))?;
    run.report(Step::Preflight, Outcome::Ok, detail);
    if new_run {
        run.save_journal()?;
    }
    Ok(pre)
}
