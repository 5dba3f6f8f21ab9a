//! Install records (`installs/NAME.json`, and beside each version's
//! configuration `installs/NAME/VERSION/record.json`): what is installed,
//! built from a bundle's descriptor, and how another bundle compares with
//! it. Plain data: reading and writing them is [`crate::state::State`]'s.

use std::collections::{BTreeMap, BTreeSet};

use airgap_format::bundle_json::BundleDescriptor;
use airgap_format::display::{count, escape as e};
use serde::{Deserialize, Serialize};

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

impl InstallRecord {
    /// The history a new version of this bundle records: this record's
    /// earlier versions, and this version itself unless it is the same
    /// bundle (`digest`) again.
    pub fn history_for(&self, digest: &str) -> Vec<PreviousVersion> {
        let mut previous = self.previous.clone();
        if self.bundle_digest != digest {
            previous.push(PreviousVersion {
                version: self.version.clone(),
                bundle_digest: self.bundle_digest.clone(),
                installed_at: self.installed_at.clone(),
            });
        }
        previous
    }
}

/// The images of `d` as an install record lists them.
pub fn recorded_images(d: &BundleDescriptor) -> Vec<RecordedImage> {
    d.images
        .iter()
        .map(|i| RecordedImage {
            reference: i.reference.clone(),
            digest: i.digest.to_string(),
            total_size: i.total_size,
        })
        .collect()
}

/// The charts of `d` as an install record lists them.
pub fn recorded_charts(d: &BundleDescriptor) -> Vec<RecordedArtifact> {
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
pub fn recorded_templates(d: &BundleDescriptor) -> Vec<RecordedArtifact> {
    d.templates
        .iter()
        .map(|t| RecordedArtifact {
            name: t.name.clone(),
            version: String::new(),
            digest: t.digest.to_string(),
        })
        .collect()
}

/// The blobs that go to the registry (images and charts), by digest: the
/// bundle's blobs less those only files, templates, SBOMs and the licence use.
pub fn registry_blobs(d: &BundleDescriptor) -> BTreeMap<String, u64> {
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

/// What a run does to the installed bundle of its name, as reports and the
/// audit log name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// Nothing of the name was installed.
    Install,
    /// A newer version.
    Upgrade,
    /// An older, or equal but different, version.
    Downgrade,
    /// The same bundle again.
    Reinstall,
    /// The bundle an earlier run rendered, now applied.
    Apply,
    /// Back to an earlier installed version (`rollback`).
    Rollback,
}

impl ChangeKind {
    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Install => "install",
            ChangeKind::Upgrade => "upgrade",
            ChangeKind::Downgrade => "downgrade",
            ChangeKind::Reinstall => "reinstall",
            ChangeKind::Apply => "apply",
            ChangeKind::Rollback => "rollback",
        }
    }
}

impl std::fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Change {
    /// What kind of change it is.
    pub fn kind(&self) -> ChangeKind {
        match self {
            Change::Install => ChangeKind::Install,
            Change::Upgrade(_) => ChangeKind::Upgrade,
            Change::Downgrade(_) => ChangeKind::Downgrade,
            Change::Same(_) => ChangeKind::Reinstall,
            Change::Apply(_) => ChangeKind::Apply,
        }
    }

    /// The installed version it replaces, if any.
    pub fn from(&self) -> Option<String> {
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
    compare_versions(&d.version, digest, current, apply)
}

/// [`compare`], for a bundle of version `version` and digest `digest`.
fn compare_versions(
    version: &str,
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
        semver::Version::parse(version),
        semver::Version::parse(&cur.version),
    ) {
        (Ok(new), Ok(old)) if new > old => Change::Upgrade(cur.version.clone()),
        _ => Change::Downgrade(cur.version.clone()),
    }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record of `name` `version` (digest `digest`), applied or not.
    pub(crate) fn record(name: &str, version: &str, digest: &str, applied: bool) -> InstallRecord {
        InstallRecord {
            name: name.into(),
            version: version.into(),
            bundle_digest: digest.into(),
            signer: "key".into(),
            installed_at: "2026-11-22T10:00:00Z".into(),
            operator: "alice".into(),
            bundle_file: "/media/b.tar".into(),
            registry: "registry.local".into(),
            relocation_map: "m.json".into(),
            config_dir: "config".into(),
            config_digest: String::new(),
            applied,
            license_serial: None,
            images: Vec::new(),
            charts: Vec::new(),
            templates: Vec::new(),
            blobs: BTreeMap::new(),
            previous: Vec::new(),
            backup_dir: None,
            rolled_back_from: None,
            uninstalled_at: None,
        }
    }

    #[test]
    fn bundles_compare_by_digest_then_version() {
        let cur = record("demo", "1.1.0", "sha256:b", true);
        let c = |v: &str, d: &str, apply| compare_versions(v, d, Some(&cur), apply);
        assert_eq!(compare_versions("1.0.0", "x", None, true), Change::Install);
        assert_eq!(
            c("1.2.0", "sha256:c", true),
            Change::Upgrade("1.1.0".into())
        );
        assert_eq!(
            c("1.0.0", "sha256:a", true),
            Change::Downgrade("1.1.0".into())
        );
        // The same version rebuilt is not newer.
        assert_eq!(
            c("1.1.0", "sha256:c", true),
            Change::Downgrade("1.1.0".into())
        );
        assert_eq!(c("1.1.0", "sha256:b", true), Change::Same("1.1.0".into()));
        let rendered = record("demo", "1.1.0", "sha256:b", false);
        assert_eq!(
            compare_versions("1.1.0", "sha256:b", Some(&rendered), true),
            Change::Apply("1.1.0".into())
        );
        assert_eq!(
            compare_versions("1.1.0", "sha256:b", Some(&rendered), false),
            Change::Same("1.1.0".into())
        );
        // An uninstalled bundle installs afresh.
        let mut gone = record("demo", "1.1.0", "sha256:b", true);
        gone.uninstalled_at = Some("2026-11-23T10:00:00Z".into());
        assert_eq!(
            compare_versions("1.0.0", "sha256:a", Some(&gone), true),
            Change::Install
        );
        assert_eq!(Change::Same("1".into()).kind(), ChangeKind::Reinstall);
        assert_eq!(
            serde_json::to_string(&ChangeKind::Reinstall).unwrap(),
            "\"reinstall\""
        );
        assert_eq!(Change::Install.from(), None);
    }

    #[test]
    fn history_keeps_earlier_versions_and_skips_a_reinstall() {
        let mut cur = record("demo", "1.1.0", "sha256:b", true);
        cur.previous.push(PreviousVersion {
            version: "1.0.0".into(),
            bundle_digest: "sha256:a".into(),
            installed_at: "2026-11-21T10:00:00Z".into(),
        });
        let versions =
            |p: Vec<PreviousVersion>| p.into_iter().map(|p| p.version).collect::<Vec<_>>();
        assert_eq!(versions(cur.history_for("sha256:c")), ["1.0.0", "1.1.0"]);
        assert_eq!(versions(cur.history_for("sha256:b")), ["1.0.0"]);
    }

    #[test]
    fn status_names_what_each_record_is() {
        assert_eq!(status_text(&[]), "nothing installed\n");
        let mut r = record("demo", "1.1.0", "sha256:b", false);
        r.rolled_back_from = Some("1.2.0".into());
        let text = status_text(&[r]);
        assert!(text.contains("rendered, not applied"), "{text}");
        assert!(text.contains("rolled back from 1.2.0"), "{text}");
    }
}
