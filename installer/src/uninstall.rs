//! `airgap-install uninstall NAME`: removes an installed bundle's Helm
//! releases in the reverse of their install order and marks its record,
//! and with `--purge-images` deletes its images and charts from the
//! registry by digest.
//!
//! Steps, each in the audit log and journaled (`runs/uninstall-NAME.json`,
//! with every release and image done so far, so an interrupted uninstall
//! resumes where it stopped): helm, images, record.

use airgap_format::display::count;
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use time::OffsetDateTime;

use crate::install::access::RegistryAccess;
use crate::install::journal::{Journal, RunKind, Step};
use crate::install::records::InstallRecord;
use crate::install::run::{Command, Run, StepReport};
use crate::state::{rfc3339, Outcome, State};
use crate::target::Target;

/// The steps of an uninstall, in order.
pub const STEPS: [Step; 3] = [Step::Helm, Step::Images, Step::Record];

/// Settings of an uninstall.
pub struct UninstallOptions<'a> {
    /// The installed bundle's name.
    pub name: &'a str,
    /// Delete its images and charts from the registry.
    pub purge_images: bool,
    /// How to reach the registry (needed with `purge_images`).
    pub registry: Option<RegistryAccess>,
    /// Print each step.
    pub progress: bool,
}

/// What an uninstall did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UninstallReport {
    /// Bundle name.
    pub name: String,
    /// The version that was installed.
    pub version: String,
    /// Each step.
    pub steps: Vec<StepReport>,
    /// Images and charts the registry would not delete, with why.
    pub not_deleted: Vec<String>,
}

/// One Helm release of a rendered configuration.
#[derive(serde::Deserialize)]
struct Release {
    name: String,
    namespace: String,
}

#[derive(serde::Deserialize)]
struct PlanReleases {
    releases: Vec<Release>,
}

/// Uninstalls. See the module documentation.
pub fn uninstall(state: &State, o: &UninstallOptions) -> Result<UninstallReport> {
    let record: InstallRecord = state.install_record(o.name)?.ok_or_else(|| {
        anyhow!(
            "{} is not installed (airgap-install status lists what is)",
            o.name
        )
    })?;
    let journal_id = format!("uninstall-{}", o.name);
    let existing = state.journal(&journal_id)?;
    if let (Some(when), None) = (&record.uninstalled_at, &existing) {
        bail!(
            "{} {} was uninstalled on {when}",
            record.name,
            record.version
        );
    }
    if o.purge_images && o.registry.is_none() {
        bail!("--purge-images needs --site (the registry's address and TLS settings)");
    }
    let label = format!("{}@{}", record.name, record.version);
    let mut run = Run::new(
        state,
        Command::Uninstall,
        &STEPS,
        existing.clone().unwrap_or_else(|| {
            Journal::begin(
                record.bundle_digest.clone(),
                label.clone(),
                Some(RunKind::Uninstall),
                None,
            )
        }),
        journal_id.clone(),
        o.progress,
    );
    run.audit_run(
        Outcome::Started,
        if existing.is_some() {
            "resuming an interrupted uninstall".into()
        } else {
            format!(
                "{}{}",
                label,
                if o.purge_images {
                    ", --purge-images"
                } else {
                    ""
                }
            )
        },
    )?;
    if existing.is_none() {
        run.save_journal()?;
    }
    // Ctrl-C or SIGTERM: an `interrupted` record; the journal stays.
    let _interrupted = run.record_interruption();

    run.step(Step::Helm, |run| {
        if !record.applied {
            return Ok((
                Outcome::Skipped,
                "never applied: there are no Helm releases to remove".into(),
            ));
        }
        let plan = std::path::Path::new(&record.config_dir).join("plan.json");
        let bytes =
            crate::state::read_bounded(&plan, crate::state::MAX_STATE_FILE)?.ok_or_else(|| {
                anyhow!(
                    "{}: missing; cannot tell which Helm releases to remove",
                    plan.display()
                )
            })?;
        let releases: PlanReleases = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a render plan", plan.display()))?;
        if which::which("helm").is_err() {
            bail!("helm is not on the PATH; install it to remove the releases");
        }
        let (mut removed, mut gone) = (0, 0);
        for r in releases.releases.iter().rev() {
            let key = format!("release {}/{}", r.namespace, r.name);
            if run.journal.finished.contains(&key) {
                continue;
            }
            let out = std::process::Command::new("helm")
                .args(["uninstall", &r.name, "--namespace", &r.namespace, "--wait"])
                .output()
                .context("helm: cannot run")?;
            let text = String::from_utf8_lossy(&out.stderr).into_owned();
            if out.status.success() {
                removed += 1;
            } else if text.contains("not found") {
                gone += 1;
            } else {
                bail!(
                    "helm uninstall {} --namespace {} failed ({}): {}",
                    r.name,
                    r.namespace,
                    out.status,
                    crate::install::scripts::last_line(&text)
                );
            }
            run.audit(Step::Helm, Outcome::Ok, Some(format!("{key} removed")))?;
            run.journal.finished.push(key);
            run.save_journal()?;
        }
        Ok((
            Outcome::Ok,
            format!(
                "{} removed{}",
                count(removed, "release"),
                if gone > 0 {
                    format!(", {gone} already gone")
                } else {
                    String::new()
                }
            ),
        ))
    })?;

    let mut not_deleted = Vec::new();
    run.step(Step::Images, |run| {
        let Some(access) = o.registry.as_ref().filter(|_| o.purge_images) else {
            return Ok((
                Outcome::Skipped,
                "kept in the registry (--purge-images deletes them)".into(),
            ));
        };
        let target = Target::parse(&record.registry)?;
        let client = airgap_registry::client::Client::new(
            &target.host,
            &access.transport,
            access.credentials.clone(),
        )?;
        // What other installed bundles still use stays.
        let others: Vec<InstallRecord> = state
            .install_records()?
            .into_iter()
            .filter(|r| r.name != record.name && r.uninstalled_at.is_none())
            .collect();
        let in_use = |digest: &str| {
            others
                .iter()
                .any(|r| r.images.iter().any(|i| i.digest == digest))
        };
        let mut items: Vec<(String, String)> = Vec::new();
        for i in &record.images {
            let name = i.reference.rsplit_once(':').map_or(&*i.reference, |x| x.0);
            items.push((target.repository(name), i.digest.clone()));
        }
        for c in &record.charts {
            let (name, tag) = crate::relocation::chart_name_tag(&c.name, &c.version);
            items.push((target.repository(&name), tag));
        }
        let (mut deleted, mut kept) = (0, 0);
        for (repo, reference) in items {
            let key = format!("image {repo}@{reference}");
            if run.journal.finished.contains(&key) {
                continue;
            }
            if in_use(&reference) {
                kept += 1;
            } else {
                match delete_manifest(&client, &repo, &reference)? {
                    Deleted::Yes | Deleted::AlreadyGone => deleted += 1,
                    Deleted::Refused(why) => not_deleted.push(format!("{repo}@{reference}: {why}")),
                }
            }
            run.journal.finished.push(key);
            run.save_journal()?;
        }
        let mut detail = format!("{} deleted from {}", count(deleted, "manifest"), target.host);
        if kept > 0 {
            detail.push_str(&format!(", {kept} kept (another installed bundle uses them)"));
        }
        if not_deleted.is_empty() {
            detail.push_str("; the registry frees their blobs at its next garbage collection");
            Ok((Outcome::Ok, detail))
        } else {
            detail.push_str(&format!(
                "; {} the registry would not delete: {} (a registry must allow deletes, e.g. distribution's storage.delete.enabled: true)",
                not_deleted.len(),
                not_deleted.join("; ")
            ));
            Ok((Outcome::Warning, detail))
        }
    })?;

    run.step(Step::Record, |_| {
        let mut r = record.clone();
        r.uninstalled_at = Some(rfc3339(
            OffsetDateTime::now_utc().replace_nanosecond(0).expect("0"),
        ));
        state.write_install_record(&r)?;
        Ok((Outcome::Ok, format!("{label} marked uninstalled")))
    })?;
    run.audit_run(Outcome::Ok, label)?;
    state.remove_journal(&journal_id)?;
    Ok(UninstallReport {
        name: record.name.clone(),
        version: record.version.clone(),
        steps: run.steps,
        not_deleted,
    })
}

enum Deleted {
    Yes,
    AlreadyGone,
    Refused(String),
}

/// Deletes a manifest by digest (a tag is resolved to its digest first:
/// the distribution API deletes by digest only).
fn delete_manifest(
    client: &airgap_registry::client::Client,
    repo: &str,
    reference: &str,
) -> Result<Deleted> {
    let scope = format!("repository:{repo}:pull,push,delete");
    let digest = if reference.starts_with("sha256:") {
        reference.to_string()
    } else {
        match crate::push::tag_digest(client, repo, reference)? {
            Some(d) => d.to_string(),
            None => return Ok(Deleted::AlreadyGone),
        }
    };
    Ok(match client.delete_manifest(repo, &digest, &scope) {
        Ok(true) => Deleted::Yes,
        Ok(false) => Deleted::AlreadyGone,
        // The registry refuses (deleting disabled, no right to): said, not fatal.
        Err(airgap_registry::Error::Status { status, body, .. }) => {
            Deleted::Refused(match body.line() {
                b if b.is_empty() => format!("HTTP {status}"),
                b => format!("HTTP {status}: {b}"),
            })
        }
        Err(e @ airgap_registry::Error::Denied { .. }) => Deleted::Refused(e.to_string()),
        Err(e) => return Err(e.into()),
    })
}
