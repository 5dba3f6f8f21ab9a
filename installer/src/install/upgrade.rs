//! `airgap-install plan`: what installing a bundle would change, against
//! what is installed, without changing anything: images, charts and
//! templates added, changed or removed, the transfer the push would make,
//! the rendered configuration file by file, and the licence.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use airgap_cli::progress::error_line;
use airgap_format::display::{self, count, escape as e};
use airgap_format::PublicKey;
use airgap_format::SignedBundle;
use anyhow::{Context, Result};
use serde::Serialize;

use super::access::{site_target, RegistryAccess};
use super::records::{
    compare, recorded_charts, recorded_templates, registry_blobs, InstallRecord, RecordedArtifact,
};
use crate::site::SiteFile;
use crate::state::State;
use crate::survey::Transfer;

/// How an image, chart, template or configuration file differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Difference {
    /// New in the bundle.
    Added,
    /// In both, different.
    Changed,
    /// Installed, not in the bundle.
    Removed,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that `{:<8}` lines changes up.
        f.pad(match self {
            Difference::Added => "added",
            Difference::Changed => "changed",
            Difference::Removed => "removed",
        })
    }
}

/// Where a plan's transfer figures come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TransferFrom {
    /// The site's registry was asked what it lacks.
    #[serde(rename = "registry")]
    Registry,
    /// An estimate: the blobs the installed version did not send.
    #[serde(rename = "install record")]
    InstallRecord,
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
    pub kind: super::records::ChangeKind,
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
    pub transfer_from: TransferFrom,
    /// Why install would stop before pushing (a tag held by another
    /// image, blobs a delta needs that are nowhere), if it would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Rendered configuration files that would change (when a site is given).
    pub config: Vec<ConfigChange>,
    /// The licence the bundle carries, against the active one.
    pub license: Option<String>,
    /// What the bundle's site schema asks of the site file (with `--site`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<crate::profile::SiteAssessment>,
}

/// One image, chart or template that differs.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactChange {
    /// `added`, `changed` or `removed`.
    pub change: Difference,
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
    pub change: Difference,
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
    /// The bundle, its signature checked.
    pub bundle: &'a SignedBundle,
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
    /// What the bundle's profile asks of the site file (with a site): when
    /// it asks for changes, the configuration is not rendered.
    pub site_changes: Option<crate::profile::SiteAssessment>,
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
                change: Difference::Added,
                name: k.into(),
                from: None,
                to: Some(v.to_string()),
                bytes: bytes(k),
            }),
            (Some((v, _)), None) => out.push(ArtifactChange {
                change: Difference::Removed,
                name: k.into(),
                from: Some(v.to_string()),
                to: None,
                bytes: 0,
            }),
            (Some((ov, od)), Some((nv, nd))) if od != nd => out.push(ArtifactChange {
                change: Difference::Changed,
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
    let (head, trusted, site) = (o.bundle, o.trusted, o.site);
    let d = &head.descriptor;
    let digest = head.bundle_digest.to_string();
    let current = state.install_record(&d.name)?;
    let change = compare(d, &digest, current.as_ref(), false);
    // Bytes to upload per blob, and the totals.
    let mut upload: BTreeMap<String, u64> = BTreeMap::new();
    let (transfer, refused, transfer_from) = match (site, &o.registry) {
        (Some(site), Some(access)) => {
            let options =
                access.push_options(state, site, o.jobs, o.on_existing_tag, false, o.base)?;
            let prepared = crate::push::prepare(head, trusted, &options)?;
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
            (survey.transfer(), refused, TransferFrom::Registry)
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
            (t, None, TransferFrom::InstallRecord)
        }
    };
    // Bytes per image: its blobs to upload, each counted for the first
    // image that needs it (as push's progress bars count them).
    let mut counted: BTreeSet<String> = BTreeSet::new();
    let mut image_bytes: BTreeMap<String, u64> = BTreeMap::new();
    for img in &d.images {
        let blobs = crate::push::image_blob_digests(head, img)?;
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
    let site_ready = o
        .site_changes
        .as_ref()
        .is_none_or(|a| a.problems.is_empty());
    let config = match (site, &current) {
        (Some(site), cur) if !d.templates.is_empty() && site_ready => {
            config_changes(state, o, site, cur.as_ref(), head, &digest)?
        }
        _ => Vec::new(),
    };
    let license = match crate::license::bundle_license_text(head)? {
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
        kind: change.kind(),
        images,
        charts,
        templates,
        blobs_to_transfer: transfer.blobs_to_upload,
        bytes_to_transfer: transfer.bytes_to_upload,
        blobs_to_mount: transfer.blobs_to_mount,
        transfer_from,
        refused,
        config,
        license,
        site: o.site_changes.clone(),
    })
}

fn config_changes(
    state: &State,
    o: &PlanOptions,
    site: &SiteFile,
    current: Option<&InstallRecord>,
    bundle: &SignedBundle,
    bundle_digest: &str,
) -> Result<Vec<ConfigChange>> {
    let d = &bundle.descriptor;
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
    let map =
        crate::relocation::RelocationMap::expected(d, bundle_digest, &site_target(site)?, "pushed");
    let rendered = tmp.path().join("config");
    crate::render::render_bundle(
        bundle,
        &crate::render::RenderOptions {
            site,
            out: &rendered,
            relocation: Some((&map, Path::new("relocation-map.json"))),
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
            (None, Some(_)) => Difference::Added,
            (Some(_), None) => Difference::Removed,
            _ => Difference::Changed,
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
            change,
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
        if self.transfer_from == TransferFrom::Registry {
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
        if let Some(a) = &self.site {
            s.push_str(&site_text(a));
        }
        if self.site.as_ref().is_some_and(|a| !a.problems.is_empty()) {
            s.push_str("Configuration: not rendered until the site file is changed\n");
        } else if self.config.is_empty() {
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

/// The plan's lines about the site file: renamed fields, what must change,
/// changed defaults.
fn site_text(a: &crate::profile::SiteAssessment) -> String {
    let against = match &a.compared_with {
        Some(v) => format!("against the installed {}'s", e(v)),
        None => "no installed version's profile recorded to compare with".to_string(),
    };
    let mut s = format!(
        "Site file {} ({}; schema {}):\n",
        e(&a.file),
        against,
        if a.schema_changed {
            "changed"
        } else {
            "unchanged"
        }
    );
    if a.renamed.is_empty() && a.problems.is_empty() && a.defaults.is_empty() {
        s.push_str("  nothing to change\n");
    }
    for r in &a.renamed {
        s.push_str(&format!("  renamed      {}\n", e(&r.to_string())));
    }
    for p in &a.problems {
        s.push_str(&format!("  must change  {}\n", e(&p.to_string())));
    }
    for d in &a.defaults {
        let shown = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "none".to_string(),
            v => v.to_string(),
        };
        s.push_str(&format!(
            "  default      {}: {} -> {} (not set in the file)\n",
            e(&d.field),
            e(&shown(&d.from)),
            e(&shown(&d.to))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        items
            .iter()
            .map(|(k, v, d)| (k.to_string(), v.to_string(), d.to_string()))
            .collect()
    }

    #[test]
    fn artifacts_are_added_changed_or_removed_by_digest() {
        let old = keys(&[("web", "1.0.0", "sha256:a"), ("db", "2.0.0", "sha256:b")]);
        let new = keys(&[
            ("web", "1.1.0", "sha256:c"),
            ("cache", "1.0.0", "sha256:d"),
            ("db", "2.0.0", "sha256:b"),
        ]);
        let got = artifact_changes(&old, &new, &|k| k.len() as u64);
        let got: Vec<_> = got
            .iter()
            .map(|c| {
                (
                    c.change,
                    c.name.as_str(),
                    c.from.as_deref(),
                    c.to.as_deref(),
                    c.bytes,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (Difference::Added, "cache", None, Some("1.0.0"), 5),
                (Difference::Changed, "web", Some("1.0.0"), Some("1.1.0"), 3),
            ]
        );
        let gone = artifact_changes(&old, &[], &|_| 7);
        assert!(gone
            .iter()
            .all(|c| c.change == Difference::Removed && c.bytes == 0));
    }

    #[test]
    fn a_template_is_shown_by_its_digest() {
        let items = [
            RecordedArtifact {
                name: "values".into(),
                version: String::new(),
                digest: "sha256:t".into(),
            },
            RecordedArtifact {
                name: "web".into(),
                version: "1.0.0".into(),
                digest: "sha256:c".into(),
            },
        ];
        assert_eq!(
            artifact_keys(&items),
            keys(&[
                ("values", "sha256:t", "sha256:t"),
                ("web", "1.0.0", "sha256:c")
            ])
        );
    }

    #[test]
    fn the_plan_reads_for_people_and_json_keeps_its_names() {
        let plan = UpgradePlan {
            name: "demo".into(),
            installed_version: Some("1.0.0".into()),
            version: "1.1.0".into(),
            kind: crate::install::records::ChangeKind::Upgrade,
            images: vec![ArtifactChange {
                change: Difference::Changed,
                name: "web".into(),
                from: Some("1.0 (sha256:a)".into()),
                to: Some("1.1 (sha256:b)".into()),
                bytes: 10,
            }],
            charts: Vec::new(),
            templates: Vec::new(),
            blobs_to_transfer: 1,
            bytes_to_transfer: 10,
            blobs_to_mount: 0,
            transfer_from: TransferFrom::InstallRecord,
            refused: None,
            config: Vec::new(),
            license: None,
            site: None,
        };
        let text = plan.to_text();
        assert!(
            text.starts_with("demo 1.0.0 -> 1.1.0 (upgrade)\nImages:\n  changed  web "),
            "{text}"
        );
        assert!(text.contains("Charts: no changes\n"), "{text}");
        assert!(text.contains("Transfer: at most 1 blob"), "{text}");
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["transferFrom"], "install record");
        assert_eq!(json["images"][0]["change"], "changed");
    }
}
