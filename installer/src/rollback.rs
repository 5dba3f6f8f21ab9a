//! `airgap-install rollback`: makes an earlier recorded version current
//! again, from its recorded rendered configuration and the images it left
//! in the registry, without its bundle.
//!
//! Steps, each recorded in the audit log and journaled like `install`'s
//! (`runs/rollback-NAME.json`, so a rollback that is interrupted resumes):
//! check (the version's record and configuration are intact, its images
//! and charts are still in the registry, Helm, kubectl and the cluster are
//! there), restore (the version's `role: restore` scripts, with the backup
//! the upgrade after it took), apply (its `install-plan.sh`), health, record.

use std::path::Path;

use airgap_cli::progress::error_line;
use airgap_format::display::count;
use anyhow::{anyhow, bail, Result};
use time::OffsetDateTime;

use crate::install::access::RegistryAccess;
use crate::install::journal::{Journal, RunKind, Step};
use crate::install::records::{InstallRecord, PreviousVersion};
use crate::install::run::{Command, Run};
use crate::install::scripts::{file_digest, run_backups, run_install_plan};
use crate::install::steps::check_health;
use crate::install::InstallReport;
use crate::render::spec::FileRole;
use crate::site::SiteFile;
use crate::state::{operator, rfc3339, Outcome, State};
use crate::target::Target;

/// The steps of a rollback, in order.
pub const STEPS: [Step; 5] = [
    Step::Check,
    Step::Restore,
    Step::Apply,
    Step::Health,
    Step::Record,
];

/// Settings of a rollback.
pub struct RollbackOptions<'a> {
    /// The installed bundle's name (may be left out when only one is installed).
    pub name: Option<&'a str>,
    /// The version to go back to (default: the one before the current).
    pub to: Option<&'a str>,
    /// The site file (the registry's TLS settings, the health checks).
    pub site: &'a SiteFile,
    /// How to reach the registry.
    pub registry: RegistryAccess,
    /// Do not run the health checks after applying.
    pub skip_health: bool,
    /// Seconds each health check may take.
    pub health_timeout: u64,
    /// Print each step.
    pub progress: bool,
}

/// The one installed bundle called `name`, or the only one installed.
pub fn pick(state: &State, name: Option<&str>) -> Result<InstallRecord> {
    let records: Vec<InstallRecord> = state
        .install_records()?
        .into_iter()
        .filter(|r| r.uninstalled_at.is_none())
        .collect();
    let names = || {
        records
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match name {
        Some(n) => records
            .iter()
            .find(|r| r.name == n)
            .cloned()
            .ok_or_else(|| {
                anyhow!(
                    "{n} is not installed (installed: {}); airgap-install status lists them",
                    if records.is_empty() {
                        "none".into()
                    } else {
                        names()
                    }
                )
            }),
        None => match records.as_slice() {
            [one] => Ok(one.clone()),
            [] => bail!("nothing is installed"),
            _ => bail!("several bundles are installed ({}): name one", names()),
        },
    }
}

/// Rolls back. See the module documentation.
pub fn rollback(state: &State, o: &RollbackOptions) -> Result<InstallReport> {
    let current = pick(state, o.name)?;
    let name = current.name.clone();
    let journal_id = format!("rollback-{name}");
    let existing = state.journal(&journal_id)?;
    // A resumed rollback goes on to the version it started for.
    let (to, from) = match &existing {
        Some(j) => (
            j.bundle.rsplit_once('@').map_or("", |x| x.1).to_string(),
            j.from_version.clone().unwrap_or_default(),
        ),
        None => {
            let to = match o.to {
                Some(v) => v.to_string(),
                None => current
                    .previous
                    .last()
                    .map(|p| p.version.clone())
                    .ok_or_else(|| {
                        anyhow!(
                            "{name} {} has no earlier version to roll back to",
                            current.version
                        )
                    })?,
            };
            if to == current.version {
                bail!("{name} {to} is the installed version already");
            }
            if !current.previous.iter().any(|p| p.version == to) {
                bail!(
                    "{name} {to} was never installed here (earlier versions: {}); give --to one of them",
                    if current.previous.is_empty() {
                        "none".to_string()
                    } else {
                        current
                            .previous
                            .iter()
                            .map(|p| p.version.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                );
            }
            (to, current.version.clone())
        }
    };
    let vdir = state.version_dir(&name, &to);
    let old: InstallRecord = state
        .version_record(&name, &to)?
        .ok_or_else(|| {
            anyhow!(
                "cannot roll back to {name} {to}: there is no record of its images and configuration (it was installed by an older airgap-install); install its bundle again with --allow-downgrade"
            )
        })?;
    let label = format!("{name}@{to}");
    let mut run = Run::new(
        state,
        Command::Rollback,
        &STEPS,
        existing.clone().unwrap_or_else(|| {
            Journal::begin(
                old.bundle_digest.clone(),
                label.clone(),
                Some(RunKind::Rollback),
                Some(from.clone()),
            )
        }),
        journal_id.clone(),
        o.progress,
    );
    run.audit_run(
        Outcome::Started,
        if existing.is_some() {
            "resuming an interrupted rollback".into()
        } else {
            format!("{name} {from} -> {to}")
        },
    )?;
    if existing.is_none() {
        run.save_journal()?;
    }
    // Ctrl-C or SIGTERM: an `interrupted` record; the journal stays.
    let _interrupted = run.record_interruption();
    let config_dir = vdir.join("config");

    run.step(Step::Check, |_| {
        check(state, o, &old, &config_dir).map(|detail| (Outcome::Ok, detail))
    })?;

    run.step(Step::Restore, |run| {
        // The backup the upgrade after `to` took, before it was applied:
        // the data as `to` left it.
        let next = next_version(&current, &to).unwrap_or_else(|| from.clone());
        let next_record = state.version_record(&name, &next)?;
        run.journal.backup_dir = next_record.and_then(|r| r.backup_dir);
        let had_backup = run.journal.backup_dir.is_some();
        Ok(match run_backups(run, &config_dir, FileRole::Restore)? {
            Some(dir) => (Outcome::Ok, format!("restored from {}", dir.display())),
            None if had_backup => (
                Outcome::Skipped,
                format!("the configuration of {to} has no restore script"),
            ),
            None => (
                Outcome::Skipped,
                format!("the upgrade from {to} to {next} took no backup (it was not applied, or rendered no backup script)"),
            ),
        })
    })?;

    run.step(Step::Apply, |_| {
        let last = run_install_plan(&config_dir)?;
        Ok((
            Outcome::Ok,
            format!("install-plan.sh of {to} finished: {last}"),
        ))
    })?;

    run.step(Step::Health, |_| {
        if o.skip_health {
            return Ok((Outcome::Skipped, "--skip-health".into()));
        }
        let n = check_health(&config_dir, o.site, o.health_timeout)?;
        Ok((Outcome::Ok, format!("{} passed", count(n as u64, "check"))))
    })?;

    run.step(Step::Record, |_| {
        let now = rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).expect("0"));
        let mut previous: Vec<PreviousVersion> = current
            .previous
            .iter()
            .filter(|p| p.version != to)
            .cloned()
            .collect();
        if current.version != to {
            previous.push(PreviousVersion {
                version: current.version.clone(),
                bundle_digest: current.bundle_digest.clone(),
                installed_at: current.installed_at.clone(),
            });
        }
        let record = InstallRecord {
            installed_at: now,
            operator: operator(),
            applied: true,
            rolled_back_from: Some(from.clone()),
            uninstalled_at: None,
            previous,
            ..old.clone()
        };
        state.write_install_record(&record)?;
        Ok((Outcome::Ok, format!("{name} {from} -> {to} (rolled back)")))
    })?;
    run.audit_run(Outcome::Ok, format!("{name} {from} -> {to}"))?;
    state.remove_journal(&journal_id)?;
    Ok(InstallReport {
        name: name.clone(),
        version: to.clone(),
        bundle_digest: old.bundle_digest.clone(),
        kind: crate::install::records::ChangeKind::Rollback,
        from_version: Some(from),
        steps: run.steps,
        config_dir: config_dir.display().to_string(),
    })
}

/// The version installed right after `version`, from the record's history.
fn next_version(current: &InstallRecord, version: &str) -> Option<String> {
    let at = current.previous.iter().position(|p| p.version == version)?;
    current.previous.get(at + 1).map(|p| p.version.clone())
}

/// Everything a rollback to `old` needs, or one error naming all that is missing.
fn check(
    state: &State,
    o: &RollbackOptions,
    old: &InstallRecord,
    config_dir: &Path,
) -> Result<String> {
    let _ = state;
    let mut missing: Vec<String> = Vec::new();
    let plan = config_dir.join("plan.json");
    match file_digest(&plan) {
        Ok(d) if d == old.config_digest => {}
        Ok(_) => missing.push(format!(
            "{}: changed since it was rendered (its digest is not the recorded one)",
            plan.display()
        )),
        Err(e) => missing.push(error_line(e.as_ref())),
    }
    for tool in crate::preflight::tool_checks()
        .into_iter()
        .filter(|c| c.outcome == Outcome::Failed)
    {
        missing.push(format!("{}: {}", tool.check, tool.detail));
    }
    // Every image and chart, by digest (charts by tag), in the registry.
    let target = Target::parse(&old.registry)?;
    let client = airgap_registry::client::Client::new(
        &target.host,
        &o.registry.transport,
        o.registry.credentials.clone(),
    )?;
    let mut present = 0;
    let mut refs: Vec<(String, String)> = old
        .images
        .iter()
        .map(|i| {
            let n = i.reference.rsplit_once(':').map_or(&*i.reference, |x| x.0);
            (target.repository(n), i.digest.clone())
        })
        .collect();
    for c in &old.charts {
        let (n, tag) = crate::relocation::chart_name_tag(&c.name, &c.version);
        refs.push((target.repository(&n), tag));
    }
    for (repo, reference) in &refs {
        let pull = format!("repository:{repo}:pull");
        if client.manifest_digest(repo, reference, &pull)?.is_some() {
            present += 1;
        } else {
            missing.push(format!(
                "{repo}@{reference} is no longer in {}",
                target.host
            ));
        }
    }
    if !missing.is_empty() {
        bail!(
            "cannot roll back to {} {}: {}; push its bundle again (airgap-install push) or install it with --allow-downgrade",
            old.name,
            old.version,
            missing.join("; ")
        );
    }
    Ok(format!(
        "configuration intact; all {present} images and charts in {}",
        target.host
    ))
}
