//! The journal of an unfinished run (`runs/ID.json`): what an `install`,
//! `rollback` or `uninstall` finished so far, written after every step so
//! that a run started again goes on where it stopped. Plain data: reading
//! and writing journals is [`crate::state::State`]'s.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

use super::records::Change;

/// A step of a run, as journals, reports and the audit log name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Install: every check, before anything changes (never journaled).
    Preflight,
    /// Install: the bundle's signature and every blob.
    Verify,
    /// Install: the licence the bundle carries, activated.
    License,
    /// Install: images and charts into the site's registry.
    Push,
    /// Install: the site's configuration rendered.
    Render,
    /// Install and rollback: `install-plan.sh` run through Helm.
    Apply,
    /// Install and rollback: the site's health checks.
    Health,
    /// Install, rollback and uninstall: the install record written.
    Record,
    /// Rollback: the version's configuration, images and tools are there.
    Check,
    /// Rollback: the version's `role: restore` scripts.
    Restore,
    /// Install (before applying an upgrade): the `role: backup` scripts.
    Backup,
    /// Uninstall: the Helm releases removed.
    Helm,
    /// Uninstall: the images and charts deleted from the registry.
    Images,
}

impl Step {
    /// The step's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Preflight => "preflight",
            Step::Verify => "verify",
            Step::License => "license",
            Step::Push => "push",
            Step::Render => "render",
            Step::Apply => "apply",
            Step::Health => "health",
            Step::Record => "record",
            Step::Check => "check",
            Step::Restore => "restore",
            Step::Backup => "backup",
            Step::Helm => "helm",
            Step::Images => "images",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that `{:<9}` lines steps up.
        f.pad(self.as_str())
    }
}

/// What a journaled run does, decided when it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    /// A first install.
    Install,
    /// An install of a newer version.
    Upgrade,
    /// An install of an older (or rebuilt) version, with `--allow-downgrade`.
    Downgrade,
    /// The installed bundle, rendered earlier without `--apply`, applied.
    Apply,
    /// `rollback`.
    Rollback,
    /// `uninstall`.
    Uninstall,
}

impl RunKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Install => "install",
            RunKind::Upgrade => "upgrade",
            RunKind::Downgrade => "downgrade",
            RunKind::Apply => "apply",
            RunKind::Rollback => "rollback",
            RunKind::Uninstall => "uninstall",
        }
    }

    /// The kind of an install run making `change` (none for a reinstall,
    /// which is never journaled as such).
    pub fn of(change: &Change) -> Option<RunKind> {
        match change {
            Change::Install => Some(RunKind::Install),
            Change::Upgrade(_) => Some(RunKind::Upgrade),
            Change::Downgrade(_) => Some(RunKind::Downgrade),
            Change::Apply(_) => Some(RunKind::Apply),
            Change::Same(_) => None,
        }
    }
}

/// The journal of an unfinished run (`runs/ID.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Journal {
    /// The bundle's digest.
    pub bundle_digest: String,
    /// The bundle, `NAME@VERSION`.
    pub bundle: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// Identity of the bundle file when it was verified: a changed file is
    /// verified again.
    pub file: Option<FileIdentity>,
    /// The steps finished, in order.
    pub done: Vec<Step>,
    /// The serial of the licence the bundle carried.
    pub license_serial: Option<u64>,
    /// SHA-256 of the rendered `plan.json`.
    pub config_digest: Option<String>,
    /// Whether the plan was applied.
    pub applied: bool,
    /// What the run does, decided when it started, and the version it
    /// replaces. A resumed run goes on as what it started as, even when it
    /// was interrupted after writing the install record (which then
    /// already names this bundle). Absent in journals of older installers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RunKind>,
    /// The version the run replaces.
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
    /// The journal of a run of `kind` starting now on bundle `bundle`
    /// (`NAME@VERSION`, digest `bundle_digest`), replacing `from_version`.
    pub fn begin(
        bundle_digest: String,
        bundle: String,
        kind: Option<RunKind>,
        from_version: Option<String>,
    ) -> Journal {
        let now = time::OffsetDateTime::now_utc();
        Journal {
            bundle_digest,
            bundle,
            started_at: crate::state::rfc3339(now.replace_nanosecond(0).expect("0")),
            kind,
            from_version,
            ..Journal::default()
        }
    }

    /// The change an install run started as, when the journal says.
    pub fn started_as(&self) -> Option<Change> {
        match (self.kind, self.from_version.clone()) {
            (Some(RunKind::Install), _) => Some(Change::Install),
            (Some(RunKind::Upgrade), Some(v)) => Some(Change::Upgrade(v)),
            (Some(RunKind::Downgrade), Some(v)) => Some(Change::Downgrade(v)),
            (Some(RunKind::Apply), Some(v)) => Some(Change::Apply(v)),
            _ => None,
        }
    }

    /// Whether `step` is finished.
    pub fn done(&self, step: Step) -> bool {
        self.done.contains(&step)
    }

    /// Marks `step` finished (once).
    pub fn mark_done(&mut self, step: Step) {
        if !self.done(step) {
            self.done.push(step);
        }
    }

    /// The first step of `order` not finished, leaving out install's
    /// preflight (run on every start, never journaled).
    pub fn next_step(&self, order: &[Step]) -> Option<Step> {
        order
            .iter()
            .copied()
            .filter(|s| *s != Step::Preflight)
            .find(|s| !self.done(*s))
    }
}

/// Identity of a bundle file (or of every part of a split one) when it was
/// verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileIdentity {
    /// The file's path (for media parts: every part's, space-separated).
    pub path: String,
    dev: u64,
    ino: u64,
    /// Its size (for media parts: their sum).
    pub size: u64,
    mtime_ns: i128,
}

impl FileIdentity {
    /// The bundle file, or for media parts: every part's path, the first
    /// part's device and inode, the sum of their sizes and the latest mtime
    /// (a part copied again is newer).
    pub fn of(path: &Path) -> Result<Self> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_json_keeps_its_names() {
        let j = Journal {
            bundle_digest: "sha256:ab".into(),
            bundle: "demo@1.1.0".into(),
            started_at: "2026-11-22T10:00:00Z".into(),
            done: vec![Step::Verify, Step::License],
            kind: Some(RunKind::Upgrade),
            from_version: Some("1.0.0".into()),
            ..Journal::default()
        };
        let text = serde_json::to_string(&j).unwrap();
        assert_eq!(
            text,
            r#"{"bundleDigest":"sha256:ab","bundle":"demo@1.1.0","startedAt":"2026-11-22T10:00:00Z","file":null,"done":["verify","license"],"licenseSerial":null,"configDigest":null,"applied":false,"kind":"upgrade","fromVersion":"1.0.0"}"#
        );
        let back: Journal = serde_json::from_str(&text).unwrap();
        assert_eq!(back.done, j.done);
        assert_eq!(back.started_as(), Some(Change::Upgrade("1.0.0".into())));
    }

    #[test]
    fn a_journal_resumes_as_what_it_started_as() {
        let mut j = Journal::default();
        assert_eq!(j.started_as(), None);
        j.kind = Some(RunKind::Install);
        assert_eq!(j.started_as(), Some(Change::Install));
        // An upgrade needs the version it replaces.
        j.kind = Some(RunKind::Upgrade);
        assert_eq!(j.started_as(), None);
        j.kind = Some(RunKind::Rollback);
        j.from_version = Some("1.0.0".into());
        assert_eq!(j.started_as(), None);
        assert_eq!(RunKind::of(&Change::Same("1".into())), None);
        assert_eq!(
            RunKind::of(&Change::Apply("1".into())),
            Some(RunKind::Apply)
        );
    }

    #[test]
    fn steps_are_marked_once_and_the_next_one_skips_preflight() {
        let order = [Step::Preflight, Step::Verify, Step::License, Step::Push];
        let mut j = Journal::default();
        assert_eq!(j.next_step(&order), Some(Step::Verify));
        j.mark_done(Step::Verify);
        j.mark_done(Step::Verify);
        assert_eq!(j.done, [Step::Verify]);
        assert_eq!(j.next_step(&order), Some(Step::License));
        j.mark_done(Step::License);
        j.mark_done(Step::Push);
        assert_eq!(j.next_step(&order), None);
        assert_eq!(format!("[{:<9}]", Step::Push), "[push     ]");
    }

    #[test]
    fn file_identity_changes_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("b.tar");
        std::fs::write(&f, b"one").unwrap();
        let a = FileIdentity::of(&f).unwrap();
        assert_eq!(a.size, 3);
        assert_eq!(a, FileIdentity::of(&f).unwrap());
        std::fs::write(&f, b"other").unwrap();
        assert_ne!(a, FileIdentity::of(&f).unwrap());
    }
}
