//! The steps of an install run after preflight, in order: verify, license,
//! push, render, apply, health, record. Each takes what the run decided
//! when it started ([`Install`]) and returns what it did as an outcome of
//! its own, which the run records ([`StepDone`]).

use std::path::{Path, PathBuf};

use airgap_cli::progress::Progress;
use airgap_format::bundle_json::BundleDescriptor;
use airgap_format::display::count;
use airgap_format::SignedBundle;

use anyhow::{anyhow, bail, Context, Result};
use time::OffsetDateTime;

use super::journal::{FileIdentity, Step};
use super::records::{
    recorded_charts, recorded_images, recorded_templates, registry_blobs, Change, InstallRecord,
};
use super::run::{Run, StepDone};
use super::scripts::{file_digest, run_backups, run_install_plan};
use super::InstallOptions;
use crate::license::{Activation, LicenseState};
use crate::push::{push, DeltaSources, PushOptions};
use crate::relocation::RelocationMap;
use crate::render::spec::FileRole;
use crate::site::SiteFile;
use crate::state::{operator, rfc3339, Outcome, State};

/// The steps of an install run, in order.
pub const STEPS: [Step; 8] = [
    Step::Preflight,
    Step::Verify,
    Step::License,
    Step::Push,
    Step::Render,
    Step::Apply,
    Step::Health,
    Step::Record,
];

/// What the steps of one install run share: the bundle as verified when
/// the run started, what it changes, and where its files go.
pub struct Install<'a> {
    /// The state folder.
    pub state: &'a State,
    /// The run's settings.
    pub options: &'a InstallOptions<'a>,
    /// The bundle's verified head.
    pub head: &'a SignedBundle,
    /// Its digest.
    pub digest: String,
    /// `NAME@VERSION`.
    pub label: String,
    /// What the run changes.
    pub change: Change,
    /// The install record of the same name, as the run found it.
    pub current: Option<InstallRecord>,
    /// Where this version's relocation map and configuration go.
    pub version_dir: PathBuf,
    /// The site's registry, `host[/prefix]`.
    pub target: String,
    /// How the push step pushes.
    pub push_options: PushOptions,
    /// The bundle file as it is now.
    pub identity: FileIdentity,
    /// For a delta bundle, where the blobs it leaves to its base are, as
    /// preflight found them (`None` when preflight was skipped).
    pub delta: Option<DeltaSources>,
    /// The relocation map this run's push wrote, for the render step; a
    /// resumed run whose push was done earlier reads it from its file.
    pub pushed: std::sync::OnceLock<RelocationMap>,
}

impl Install<'_> {
    fn descriptor(&self) -> &BundleDescriptor {
        &self.head.descriptor
    }

    /// The rendered configuration folder.
    pub fn config_dir(&self) -> PathBuf {
        self.version_dir.join("config")
    }

    /// The relocation map the push writes.
    fn map_path(&self) -> PathBuf {
        self.version_dir.join("relocation-map.json")
    }

    /// Verifies the whole bundle (every blob) against its signature.
    pub fn verify(&self, run: &mut Run) -> Result<Verified> {
        let o = self.options;
        let progress = Progress::bytes(self.identity.size, "verify", run.progress);
        // Through the handle whose signature the run checked: every later
        // step reads the bytes verified here, whatever happens to the path.
        let v = self.head.verify_content(o.trusted, &|n| progress.inc(n));
        progress.finish();
        let v = v?;
        // A delta is accepted only when the blobs it leaves to its base are
        // in the registry or the --base bundle: checked before any change,
        // by this run's preflight (its survey is not repeated here), or
        // here when preflight was skipped.
        let delta = match self.delta {
            Some(found) => Some(found),
            None => crate::push::check_delta(self.head, o.trusted, &self.push_options)?,
        };
        let d = self.descriptor();
        run.journal.file = Some(self.identity.clone());
        Ok(Verified {
            signer: v.signer.to_string(),
            blobs: v.descriptor.blobs.len(),
            bytes: v.archive_size,
            delta: delta.map(|s| {
                (
                    format!(
                        "{} {}",
                        d.base.as_ref().map_or("", |b| b.name.as_str()),
                        d.base.as_ref().map_or("", |b| b.version.as_str()),
                    ),
                    s,
                )
            }),
        })
    }

    /// Activates the licence the bundle carries, if any.
    pub fn license(&self, run: &mut Run) -> Result<LicenseOutcome> {
        let (o, d) = (self.options, self.descriptor());
        let Some(entry) = &d.license else {
            return Ok(LicenseOutcome::NoLicense);
        };
        let node = o.node.as_ref().ok_or_else(|| {
            anyhow!("the bundle carries a licence, but this node's machine id could not be read")
        })?;
        let text = crate::license::bundle_license_text(self.head)?
            .ok_or_else(|| anyhow!("the bundle's licence entry is gone"))?;
        let what = format!("{}: license {}", o.bundle.display(), entry.digest);
        let a = crate::license::activate(
            self.state,
            &text,
            &what,
            &format!("bundle {} ({})", self.label, self.digest),
            o.trusted,
            node,
            Some(&d.name),
        )?;
        run.journal.license_serial = Some(a.license.serial);
        Ok(LicenseOutcome::Activated(Box::new(a)))
    }

    /// Pushes the images and charts and writes the relocation map.
    pub fn push(&self) -> Result<Pushed> {
        let o = self.options;
        let r = push(self.head, o.trusted, &self.push_options)?;
        std::fs::create_dir_all(&self.version_dir)
            .with_context(|| format!("{}: cannot create", self.version_dir.display()))?;
        r.relocation.write(&self.map_path())?;
        let all: Vec<_> = r
            .relocation
            .images
            .iter()
            .chain(&r.relocation.charts)
            .collect();
        let pushed = Pushed {
            images: r.relocation.images.len(),
            charts: r.relocation.charts.len(),
            target: self.target.clone(),
            unchanged: all.iter().filter(|i| i.status == "unchanged").count(),
            blobs_uploaded: r.blobs_uploaded,
            bytes_uploaded: r.bytes_uploaded,
            blobs_mounted: r.blobs_mounted,
            blobs_present: r.blobs_present,
        };
        let _ = self.pushed.set(r.relocation);
        Ok(pushed)
    }

    /// Renders the site's configuration from the bundle's templates.
    pub fn render(&self, run: &mut Run) -> Result<Rendered> {
        let o = self.options;
        if self.descriptor().templates.is_empty() {
            return Ok(Rendered::NoTemplates);
        }
        let license = crate::license::active_text(self.state.root())?;
        // Render creates its output folder, not the folders above it.
        std::fs::create_dir_all(&self.version_dir)
            .with_context(|| format!("{}: cannot create", self.version_dir.display()))?;
        let config_dir = self.config_dir();
        let map_path = self.map_path();
        let read;
        let map = match self.pushed.get() {
            Some(map) => map,
            None => {
                read = RelocationMap::read(&map_path)?;
                &read
            }
        };
        let p = crate::render::render_bundle(
            self.head,
            &crate::render::RenderOptions {
                site: o.site,
                out: &config_dir,
                relocation: Some((map, &map_path)),
                license: license.as_deref(),
            },
        )?;
        run.journal.config_digest = Some(file_digest(&config_dir.join("plan.json"))?);
        Ok(Rendered::Rendered {
            releases: p.releases.len(),
            files: p.files.len(),
            config_dir,
        })
    }

    /// Runs the rendered `install-plan.sh` (with `--apply`), backups first
    /// when it replaces what an earlier run applied.
    pub fn apply(&self, run: &mut Run) -> Result<Applied> {
        let config_dir = self.config_dir();
        if !self.options.apply {
            return Ok(Applied::NotRequested { config_dir });
        }
        if self.descriptor().templates.is_empty() {
            return Ok(Applied::NothingRendered);
        }
        // Backups protect what an earlier run applied: none when nothing
        // was, a first install or the first apply of one.
        let first_apply = matches!(&self.change, Change::Apply(_))
            && self.current.as_ref().is_some_and(|c| c.previous.is_empty());
        if !matches!(self.change, Change::Install) && !first_apply {
            run.journal.backup_dir =
                run_backups(run, &config_dir, FileRole::Backup)?.map(|p| p.display().to_string());
        }
        if which::which("helm").is_err() {
            bail!("helm is not on the PATH; install it, or run without --apply and apply install-plan.sh yourself");
        }
        let last_line = run_install_plan(&config_dir)?;
        run.journal.applied = true;
        Ok(Applied::Applied { last_line })
    }

    /// Runs the site's health checks after applying.
    pub fn health(&self) -> Result<Health> {
        let o = self.options;
        if !o.apply {
            return Ok(Health::NothingApplied);
        }
        if o.skip_health {
            return Ok(Health::SkipHealth);
        }
        Ok(Health::Passed(check_health(
            &self.config_dir(),
            o.site,
            o.health_timeout,
        )?))
    }

    /// Writes the install record (and the version's own copy, for rollback).
    pub fn record(&self, run: &mut Run) -> Result<Recorded> {
        let d = self.descriptor();
        let previous = self
            .current
            .as_ref()
            .map(|c| c.history_for(&self.digest))
            .unwrap_or_default();
        let record = InstallRecord {
            name: d.name.clone(),
            version: d.version.clone(),
            bundle_digest: self.digest.clone(),
            signer: self.head.signature.key_id.to_string(),
            installed_at: rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).expect("0")),
            operator: operator(),
            bundle_file: self.identity.path.clone(),
            registry: self.target.clone(),
            relocation_map: self.map_path().display().to_string(),
            config_dir: self.config_dir().display().to_string(),
            config_digest: run.journal.config_digest.clone().unwrap_or_default(),
            applied: run.journal.applied,
            license_serial: run.journal.license_serial,
            images: recorded_images(d),
            charts: recorded_charts(d),
            templates: recorded_templates(d),
            blobs: registry_blobs(d),
            previous,
            backup_dir: run.journal.backup_dir.clone(),
            rolled_back_from: None,
            uninstalled_at: None,
        };
        // Each version's record stays beside its configuration, for rollback,
        // and its profile, for plan to compare a later version's with.
        self.state.write_version_record(&record)?;
        if let Some(p) = crate::profile::read(self.head)? {
            self.state.write_version_profile(
                &d.name,
                &d.version,
                &p.profile_text,
                &p.schema_text,
            )?;
        }
        self.state.write_install_record(&record)?;
        Ok(Recorded {
            name: d.name.clone(),
            from: self.change.from().filter(|v| *v != d.version),
            version: d.version.clone(),
        })
    }
}

/// Runs the health checks the configuration rendered in `config_dir`
/// lists, trusting the site's internal CA; how many passed, or an error
/// with the table of every check when one failed.
pub fn check_health(config_dir: &Path, site: &SiteFile, timeout_secs: u64) -> Result<usize> {
    let targets = crate::health::planned_targets(config_dir)?;
    let r = crate::health::check_targets(
        &targets,
        site.internal_ca().as_deref(),
        std::time::Duration::from_secs(timeout_secs),
    )
    .map_err(|e| anyhow::anyhow!("{}: {e:#}", site.path.display()))?;
    let failed = r.checks.len() - r.passed();
    if failed > 0 {
        bail!(
            "{failed} of {} health checks failed:\n{}",
            r.checks.len(),
            r.to_table()
        );
    }
    Ok(r.checks.len())
}

/// What the verify step found.
#[derive(Debug)]
pub struct Verified {
    /// The key id that signed the bundle.
    pub signer: String,
    /// Its blobs.
    pub blobs: usize,
    /// The archive's size in bytes.
    pub bytes: u64,
    /// For a delta: its base (`NAME VERSION`) and where the blobs it
    /// leaves to it are.
    pub delta: Option<(String, DeltaSources)>,
}

impl StepDone for Verified {
    fn outcome(&self) -> Outcome {
        Outcome::Ok
    }
    fn detail(&self) -> String {
        let delta = match &self.delta {
            Some((base, s)) => format!(
                "; delta of {base}: {} blobs already in the registry, {} from --base",
                s.in_registry, s.from_base
            ),
            None => String::new(),
        };
        format!(
            "signed by {}, {} blobs, {} bytes{delta}",
            self.signer, self.blobs, self.bytes
        )
    }
}

/// What the license step did.
#[derive(Debug)]
pub enum LicenseOutcome {
    /// The bundle carries no licence.
    NoLicense,
    /// Its licence was activated (or was active already).
    Activated(Box<Activation>),
}

impl StepDone for LicenseOutcome {
    fn outcome(&self) -> Outcome {
        match self {
            LicenseOutcome::NoLicense => Outcome::Skipped,
            LicenseOutcome::Activated(a) if a.license.state == LicenseState::Grace => {
                Outcome::Warning
            }
            LicenseOutcome::Activated(_) => Outcome::Ok,
        }
    }
    fn detail(&self) -> String {
        let a = match self {
            LicenseOutcome::NoLicense => return "the bundle carries no licence".into(),
            LicenseOutcome::Activated(a) => a,
        };
        let l = &a.license;
        let what = if a.already_active {
            "already active".to_string()
        } else {
            match a.replaced_serial {
                Some(old) => format!("activated, replacing serial {old}"),
                None => "activated".to_string(),
            }
        };
        format!(
            "serial {} for {} {what}; {}",
            l.serial,
            l.customer,
            match (l.state, l.days_left) {
                (LicenseState::Grace, Some(n)) =>
                    format!("EXPIRED on {}, grace period ends in {n} days", l.expires),
                (_, Some(n)) => format!("expires {} ({n} days left)", l.expires),
                _ => String::new(),
            }
        )
    }
}

/// What the push step sent.
#[derive(Debug)]
pub struct Pushed {
    /// Images pushed.
    pub images: usize,
    /// Charts pushed.
    pub charts: usize,
    /// The registry, `host[/prefix]`.
    pub target: String,
    /// Images and charts already in place.
    pub unchanged: usize,
    /// Blobs uploaded.
    pub blobs_uploaded: u64,
    /// Their bytes.
    pub bytes_uploaded: u64,
    /// Blobs mounted from another repository.
    pub blobs_mounted: u64,
    /// Blobs the registry had.
    pub blobs_present: u64,
}

impl StepDone for Pushed {
    fn outcome(&self) -> Outcome {
        Outcome::Ok
    }
    fn detail(&self) -> String {
        format!(
            "{} and {} to {} ({} already in place): {} uploaded ({} bytes), {} mounted, {} already there",
            count(self.images as u64, "image"),
            count(self.charts as u64, "chart"),
            self.target,
            self.unchanged,
            count(self.blobs_uploaded, "blob"),
            self.bytes_uploaded,
            self.blobs_mounted,
            self.blobs_present
        )
    }
}

/// What the render step did.
#[derive(Debug)]
pub enum Rendered {
    /// The bundle carries no templates.
    NoTemplates,
    /// The configuration was rendered.
    Rendered {
        /// Helm releases in the plan.
        releases: usize,
        /// Files written.
        files: usize,
        /// Where.
        config_dir: PathBuf,
    },
}

impl StepDone for Rendered {
    fn outcome(&self) -> Outcome {
        match self {
            Rendered::NoTemplates => Outcome::Skipped,
            Rendered::Rendered { .. } => Outcome::Ok,
        }
    }
    fn detail(&self) -> String {
        match self {
            Rendered::NoTemplates => "the bundle carries no templates".into(),
            Rendered::Rendered {
                releases,
                files,
                config_dir,
            } => format!(
                "{}, {} into {}",
                count(*releases as u64, "release"),
                count(*files as u64, "file"),
                config_dir.display()
            ),
        }
    }
}

/// What the apply step did.
#[derive(Debug)]
pub enum Applied {
    /// No `--apply`: the operator runs the plan.
    NotRequested {
        /// The rendered configuration, with its `install-plan.sh`.
        config_dir: PathBuf,
    },
    /// The bundle renders nothing to apply.
    NothingRendered,
    /// `install-plan.sh` finished.
    Applied {
        /// The last line it printed.
        last_line: String,
    },
}

impl StepDone for Applied {
    fn outcome(&self) -> Outcome {
        match self {
            Applied::NotRequested { .. } | Applied::NothingRendered => Outcome::Skipped,
            Applied::Applied { .. } => Outcome::Ok,
        }
    }
    fn detail(&self) -> String {
        match self {
            Applied::NotRequested { config_dir } => format!(
                "not applied (no --apply): run {}/install-plan.sh",
                config_dir.display()
            ),
            Applied::NothingRendered => "nothing rendered to apply".into(),
            Applied::Applied { last_line } => format!("install-plan.sh finished: {last_line}"),
        }
    }
}

/// What the health step did.
#[derive(Debug)]
pub enum Health {
    /// Nothing was applied (no `--apply`).
    NothingApplied,
    /// `--skip-health`.
    SkipHealth,
    /// Every check passed: how many.
    Passed(usize),
}

impl StepDone for Health {
    fn outcome(&self) -> Outcome {
        match self {
            Health::NothingApplied | Health::SkipHealth => Outcome::Skipped,
            Health::Passed(_) => Outcome::Ok,
        }
    }
    fn detail(&self) -> String {
        match self {
            Health::NothingApplied => "nothing was applied".into(),
            Health::SkipHealth => "--skip-health".into(),
            Health::Passed(n) => format!(
                "{} passed",
                airgap_format::display::count(*n as u64, "check")
            ),
        }
    }
}

/// What the record step recorded.
#[derive(Debug)]
pub struct Recorded {
    /// Bundle name.
    pub name: String,
    /// The other version it replaced, if any.
    pub from: Option<String>,
    /// The version recorded.
    pub version: String,
}

impl StepDone for Recorded {
    fn outcome(&self) -> Outcome {
        Outcome::Ok
    }
    fn detail(&self) -> String {
        match &self.from {
            Some(v) => format!("{} {v} -> {}", self.name, self.version),
            None => format!("{} {} installed", self.name, self.version),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn outcomes_read_as_before() {
        let v = Verified {
            signer: "k1".into(),
            blobs: 3,
            bytes: 1024,
            delta: None,
        };
        assert_eq!(v.detail(), "signed by k1, 3 blobs, 1024 bytes");
        let d = Verified {
            delta: Some((
                "demo 1.0.0".into(),
                DeltaSources {
                    in_registry: 2,
                    from_base: 1,
                },
            )),
            ..v
        };
        assert_eq!(
            d.detail(),
            "signed by k1, 3 blobs, 1024 bytes; delta of demo 1.0.0: 2 blobs already in the registry, 1 from --base"
        );
        let p = Pushed {
            images: 1,
            charts: 2,
            target: "r.local/p".into(),
            unchanged: 0,
            blobs_uploaded: 1,
            bytes_uploaded: 10,
            blobs_mounted: 0,
            blobs_present: 4,
        };
        assert_eq!(
            p.detail(),
            "1 image and 2 charts to r.local/p (0 already in place): 1 blob uploaded (10 bytes), 0 mounted, 4 already there"
        );
        assert_eq!(LicenseOutcome::NoLicense.outcome(), Outcome::Skipped);
        let r = Rendered::Rendered {
            releases: 2,
            files: 1,
            config_dir: Path::new("c").into(),
        };
        assert_eq!(
            (r.outcome(), r.detail()),
            (Outcome::Ok, "2 releases, 1 file into c".into())
        );
        let a = Applied::NotRequested {
            config_dir: Path::new("c").into(),
        };
        assert_eq!(
            (a.outcome(), a.detail()),
            (
                Outcome::Skipped,
                "not applied (no --apply): run c/install-plan.sh".into()
            )
        );
        assert_eq!(Health::Passed(3).detail(), "3 checks passed");
        let rec = Recorded {
            name: "demo".into(),
            from: Some("1.0.0".into()),
            version: "1.1.0".into(),
        };
        assert_eq!(rec.detail(), "demo 1.0.0 -> 1.1.0");
        let rec = Recorded { from: None, ..rec };
        assert_eq!(rec.detail(), "demo 1.1.0 installed");
    }
}
