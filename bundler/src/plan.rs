//! Resolves a manifest into a build plan: every image, chart and file with
//! its digest, and every distinct blob with where its bytes are.

use std::collections::BTreeMap;
use std::path::Path;

use airgap_format::bundle_json::{ChartEntry, FileEntry, TemplateEntry, CHART_MEDIA_TYPE};
use airgap_format::digest::hash_reader;
use airgap_format::display::quote;
use airgap_format::fields;
use airgap_format::Digest;
use anyhow::{bail, Context, Result};

use crate::chart;
use crate::chart_source::ChartSource;
use crate::lock::{LockFile, LockedImage};
use crate::manifest::{ChartSpec, ImageSpec, Manifest};
use crate::pull::Puller;
use crate::sources::docker_archive::DockerArchive;
use crate::sources::oci_layout::OciLayout;
use crate::sources::remote_chart::{self, PulledChart};
use crate::sources::{registry, BlobData, ImageSource, ResolvedImage};

/// A blob to store and where to read it.
#[derive(Clone, Debug)]
pub struct PlannedBlob {
    /// Size.
    pub size: u64,
    /// Media type of the first reference.
    pub media_type: String,
    /// Where the bytes are.
    pub data: BlobData,
    /// What refers to it, for error messages.
    pub owner: String,
}

/// An image with the name it is published under.
#[derive(Clone, Debug)]
pub struct PlannedImage {
    /// Index of the manifest's `images` entry it came from.
    pub spec_index: usize,
    /// Repository.
    pub name: String,
    /// Tag.
    pub tag: String,
    /// The resolved image.
    pub image: ResolvedImage,
}

/// Everything a build needs.
pub struct Plan {
    /// Images in manifest order.
    pub images: Vec<PlannedImage>,
    /// Charts in manifest order.
    pub charts: Vec<ChartEntry>,
    /// Files in manifest order.
    pub files: Vec<FileEntry>,
    /// Templates sorted by name.
    pub templates: Vec<TemplateEntry>,
    /// The licence file, when the manifest names one.
    pub license: Option<airgap_format::bundle_json::LicenseEntry>,
    /// Distinct blobs by digest.
    pub blobs: BTreeMap<Digest, PlannedBlob>,
    /// Holds packaged charts until the build ends.
    pub _work_dir: tempfile::TempDir,
    /// Removes the work folder when the build is interrupted.
    pub _work_dir_on_interrupt: airgap_cli::interrupt::OnInterrupt,
}

impl Plan {
    fn add_blob(&mut self, digest: Digest, blob: PlannedBlob) -> Result<()> {
        match self.blobs.get(&digest) {
            Some(existing) if existing.size != blob.size => bail!(
                "blob {digest} is {} bytes in {} but {} bytes in {}",
                existing.size,
                existing.owner,
                blob.size,
                blob.owner
            ),
            Some(_) => Ok(()),
            None => {
                self.blobs.insert(digest, blob);
                Ok(())
            }
        }
    }

    /// Sum of all blob sizes.
    pub fn total_size(&self) -> u64 {
        self.blobs.values().map(|b| b.size).sum()
    }
}

/// Registry and chart-repository access while resolving.
pub struct Remote<'a> {
    /// Fetches through the cache.
    pub puller: &'a Puller,
    /// The lock file read, if any.
    pub lock: Option<&'a LockFile>,
    /// The lock file's path, for messages.
    pub lock_path: std::path::PathBuf,
    /// Refuse remote sources the lock does not pin.
    pub locked: bool,
    /// Every pin used by this resolve, in manifest order: the lock to write.
    pub resolved: LockFile,
}

impl Remote<'_> {
    fn not_pinned(&self, what: &str) -> anyhow::Error {
        anyhow::anyhow!(
            "{what} is not pinned in {} and --locked was given; run airgap-bundle lock",
            self.lock_path.display()
        )
    }
}

/// Resolves every source of `manifest`. `mtime` is used for packaged charts.
/// Registry and remote chart sources need `remote`; image layers are only
/// queued on its puller, to be downloaded before the bundle is written.
pub fn resolve(manifest: &Manifest, mtime: u64, mut remote: Option<&mut Remote>) -> Result<Plan> {
    let work_dir = tempfile::Builder::new()
        .prefix("airgap-bundle-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let mut plan = Plan {
        images: Vec::new(),
        charts: Vec::new(),
        files: Vec::new(),
        templates: Vec::new(),
        license: None,
        blobs: BTreeMap::new(),
        _work_dir_on_interrupt: airgap_cli::interrupt::remove_on_interrupt(
            work_dir.path().to_path_buf(),
        ),
        _work_dir: work_dir,
    };
    for (i, spec) in manifest.doc.images.iter().enumerate() {
        let at = |e: anyhow::Error| {
            manifest.error_at(&spec.source, format!("images[{i}].source: {e:#}"))
        };
        let source = ImageSource::parse(&spec.source.value).map_err(|e| at(anyhow::anyhow!(e)))?;
        let filters = spec
            .platform_filters()
            .map_err(|e| at(anyhow::anyhow!(e)))?;
        let filters = filters.as_deref();
        let images = match &source {
            ImageSource::OciLayout { path, reference } => OciLayout::open(&manifest.resolve(path))
                .and_then(|l| l.resolve(reference.as_deref(), filters)),
            ImageSource::DockerArchive { path, reference } => {
                DockerArchive::open(&manifest.resolve(path))
                    .and_then(|a| a.resolve(reference.as_deref()))
                    .and_then(|r| {
                        r.check_platforms(filters, path)?;
                        Ok(vec![r])
                    })
            }
            ImageSource::Registry(reference) => {
                let remote = remote.as_deref_mut().ok_or_else(no_remote).map_err(at)?;
                // A digest in the reference pins it already.
                let locked = match reference.digest {
                    Some(_) => None,
                    None => remote.lock.and_then(|l| l.image(&spec.source.value)),
                };
                if locked.is_none() && reference.digest.is_none() && remote.locked {
                    return Err(at(remote.not_pinned(&format!("image {reference}"))).into());
                }
                registry::resolve(remote.puller, reference, locked.map(|l| l.digest), filters).map(
                    |(top, images)| {
                        remote.resolved.add_image(LockedImage {
                            source: spec.source.value.clone(),
                            resolved: reference.pinned(top.digest).to_string(),
                            digest: top.digest,
                            media_type: top.media_type,
                            size: top.size,
                        });
                        images
                    },
                )
            }
        }
        .map_err(at)?;
        for resolved in images {
            // A registry reference always names its repository, even when
            // it pins a digest without a tag.
            let repository = match &source {
                ImageSource::Registry(r) => Some(r.repository.as_str()),
                _ => None,
            };
            add_image(manifest, &mut plan, i, spec, resolved, repository)?;
        }
    }
    for (i, spec) in manifest.doc.charts.iter().enumerate() {
        let at = |e: anyhow::Error| {
            manifest.error_at(&spec.source, format!("charts[{i}].source: {e:#}"))
        };
        let source = spec.parsed().map_err(|e| at(anyhow::anyhow!(e)))?;
        let (prepared, pulled) = match &source {
            ChartSource::Local(path) => {
                let src = manifest.resolve(path);
                let prepared = chart::prepare(&src, plan._work_dir.path(), i, mtime).map_err(at)?;
                (prepared, None)
            }
            remote_source => {
                let remote = remote.as_deref_mut().ok_or_else(no_remote).map_err(at)?;
                let pulled = pull_chart(remote, spec, remote_source).map_err(at)?;
                let prepared = chart::PreparedChart {
                    meta: pulled.meta.clone(),
                    tgz: pulled.tgz.clone(),
                };
                (prepared, Some(pulled))
            }
        };
        if plan
            .charts
            .iter()
            .any(|c| c.name == prepared.meta.name && c.version == prepared.meta.version)
        {
            return Err(at(anyhow::anyhow!(
                "chart {} {} is listed twice",
                prepared.meta.name,
                prepared.meta.version
            ))
            .into());
        }
        let (digest, size) = match &pulled {
            Some(p) => (p.digest, p.size),
            None => hash_file(&prepared.tgz).map_err(at)?,
        };
        plan.add_blob(
            digest,
            PlannedBlob {
                size,
                media_type: CHART_MEDIA_TYPE.into(),
                data: BlobData::File {
                    path: prepared.tgz.clone(),
                    offset: 0,
                },
                owner: format!("chart {}", prepared.meta.name),
            },
        )
        .map_err(at)?;
        let artifact = pulled
            .as_ref()
            .map(|p| p.artifact.as_slice())
            .unwrap_or(&[]);
        let manifest_digest = if artifact.is_empty() {
            chart_artifact(&mut plan, &prepared.meta, digest, size, mtime).map_err(at)?
        } else {
            // An OCI chart keeps the artifact its vendor published.
            for b in artifact {
                plan.add_blob(
                    b.digest,
                    PlannedBlob {
                        size: b.size,
                        media_type: b.media_type.clone(),
                        data: BlobData::File {
                            path: b.path.clone(),
                            offset: 0,
                        },
                        owner: format!("chart {}", prepared.meta.name),
                    },
                )
                .map_err(at)?;
            }
            artifact[0].digest
        };
        plan.charts.push(ChartEntry {
            name: prepared.meta.name,
            version: prepared.meta.version,
            app_version: prepared.meta.app_version,
            digest,
            size,
            manifest: manifest_digest,
        });
    }
    for (i, spec) in manifest.doc.files.iter().enumerate() {
        let at =
            |e: anyhow::Error| manifest.error_at(&spec.source, format!("files[{i}].source: {e:#}"));
        let src = manifest.resolve(&spec.source.value);
        if !src.is_file() {
            return Err(at(anyhow::anyhow!("{}: file not found", src.display())).into());
        }
        let name = match &spec.name {
            Some(n) => n.value.clone(),
            None => src
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .ok_or_else(|| at(anyhow::anyhow!("{}: file name is not UTF-8", src.display())))?,
        };
        if !airgap_format::bundle_json::is_safe_relative_path(&name) {
            return Err(at(anyhow::anyhow!(
                "file name {name:?} is not a safe relative path; set files[{i}].name"
            ))
            .into());
        }
        if plan.files.iter().any(|f| f.name == name) {
            return Err(at(anyhow::anyhow!("file name {name} is listed twice")).into());
        }
        let (digest, size) = hash_file(&src).map_err(at)?;
        let media_type = spec
            .media_type
            .as_ref()
            .map(|m| m.value.clone())
            .unwrap_or_else(|| {
                mime_guess::from_path(&src)
                    .first_raw()
                    .unwrap_or("application/octet-stream")
                    .to_string()
            });
        plan.add_blob(
            digest,
            PlannedBlob {
                size,
                media_type: media_type.clone(),
                data: BlobData::File {
                    path: src.clone(),
                    offset: 0,
                },
                owner: format!("file {name}"),
            },
        )
        .map_err(at)?;
        plan.files.push(FileEntry {
            name,
            kind: spec.kind,
            media_type,
            digest,
            size,
        });
    }
    // Every template's name, its `templates` entry and, for the ones render
    // reads, its text (None: not UTF-8), to check them before they ship.
    let mut texts: Vec<(String, Option<String>)> = Vec::new();
    let mut entry_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut paths: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    for (i, spec) in manifest.doc.templates.iter().enumerate() {
        let at = |e: anyhow::Error| {
            manifest.error_at(&spec.source, format!("templates[{i}].source: {e:#}"))
        };
        let src = manifest.resolve(&spec.source.value);
        let prefix = spec.name.as_ref().map(|n| n.value.as_str());
        for (name, path) in template_files(&src, prefix).map_err(at)? {
            if plan.templates.iter().any(|t| t.name == name) {
                return Err(at(anyhow::anyhow!("template name {name} is listed twice")).into());
            }
            let text = if airgap_install::render::is_read_by_render(&name) {
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("{}: cannot read", path.display()))
                    .map_err(at)?;
                String::from_utf8(bytes).ok()
            } else {
                None
            };
            texts.push((name.clone(), text));
            entry_of.insert(name.clone(), i);
            paths.insert(name.clone(), path.clone());
            let (digest, size) = hash_file(&path).map_err(at)?;
            plan.add_blob(
                digest,
                PlannedBlob {
                    size,
                    media_type: template_media_type(&name),
                    data: BlobData::File {
                        path: path.clone(),
                        offset: 0,
                    },
                    owner: format!("template {name}"),
                },
            )
            .map_err(at)?;
            plan.templates.push(TemplateEntry { name, digest, size });
        }
    }
    plan.templates.sort_by(|a, b| a.name.cmp(&b.name));
    if !texts.is_empty() {
        // What render would refuse at the site, refused here.
        let charts: Vec<String> = plan.charts.iter().map(|c| c.name.clone()).collect();
        airgap_install::render::check_templates(&texts, &charts).map_err(|p| {
            let i = entry_of
                .get(&p.template)
                .or_else(|| entry_of.values().next())
                .copied()
                .unwrap_or(0);
            manifest.error_at(
                &manifest.doc.templates[i].source,
                format!("templates[{i}].source: {p}"),
            )
        })?;
    }
    // The product profile, when the templates carry one (templates.md).
    crate::profile_check::check(&paths, &texts, &manifest.doc.name.value).map_err(|e| {
        let i = entry_of
            .get(airgap_profile::profile::PROFILE_FILE)
            .copied()
            .unwrap_or(0);
        manifest.error_at(
            &manifest.doc.templates[i].source,
            format!("templates[{i}].source: {e}"),
        )
    })?;
    if let Some(spec) = &manifest.doc.license {
        let at = |e: anyhow::Error| manifest.error_at(spec, format!("license: {e:#}"));
        let path = manifest.resolve(&spec.value);
        let text = airgap_licenses::license::read_license_file(&path)
            .map_err(|e| at(anyhow::anyhow!("{e}")))?;
        // Only its form is checked here: the site checks the signature, its
        // node and its dates when it activates the licence.
        let armored = airgap_licenses::license::ArmoredLicense::parse(&text, &spec.value)
            .map_err(|e| at(anyhow::anyhow!("{e}")))?;
        // The site refuses a licence for another product than the bundle's
        // name when it installs: refused here instead.
        let payload =
            airgap_licenses::license::LicensePayload::parse(&armored.payload, &spec.value)
                .map_err(|e| at(anyhow::anyhow!("{e}")))?;
        let name = &manifest.doc.name.value;
        if &payload.product != name {
            return Err(at(anyhow::anyhow!(
                "the licence is for product {}, not this bundle's {}; issue one from a licence request made with --product {name} (airgap-install license request), or correct name:",
                quote(&payload.product),
                quote(name)
            ))
            .into());
        }
        let (digest, size) = hash_file(&path).map_err(at)?;
        plan.add_blob(
            digest,
            PlannedBlob {
                size,
                media_type: airgap_format::bundle_json::LICENSE_MEDIA_TYPE.into(),
                data: BlobData::File { path, offset: 0 },
                owner: "license".into(),
            },
        )
        .map_err(at)?;
        plan.license = Some(airgap_format::bundle_json::LicenseEntry { digest, size });
    }
    Ok(plan)
}

/// Largest template file.
const MAX_TEMPLATE_BYTES: u64 = 4 << 20;

/// The template files `src` names, with their names in the bundle: the file
/// itself, or every regular file under the folder (sorted, dotfiles skipped).
fn template_files(src: &Path, prefix: Option<&str>) -> Result<Vec<(String, std::path::PathBuf)>> {
    let meta =
        std::fs::symlink_metadata(src).with_context(|| format!("{}: not found", src.display()))?;
    let mut out = Vec::new();
    if meta.is_file() {
        let name = match prefix {
            Some(n) => n.to_string(),
            None => src
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("{}: name is not UTF-8", src.display()))?,
        };
        out.push((name, src.to_path_buf()));
    } else if meta.is_dir() {
        let mut stack = vec![(src.to_path_buf(), String::new())];
        while let Some((dir, rel)) = stack.pop() {
            for entry in std::fs::read_dir(&dir)
                .with_context(|| format!("{}: cannot list", dir.display()))?
            {
                let entry = entry.with_context(|| format!("{}: cannot list", dir.display()))?;
                let file_name = entry.file_name();
                let Some(n) = file_name.to_str() else {
                    bail!("{}: a file name is not UTF-8", dir.display());
                };
                if n.starts_with('.') {
                    continue;
                }
                let child_rel = if rel.is_empty() {
                    n.to_string()
                } else {
                    format!("{rel}/{n}")
                };
                let ft = entry.file_type()?;
                if ft.is_dir() {
                    stack.push((entry.path(), child_rel));
                } else if ft.is_file() {
                    let name = match prefix {
                        Some(p) => format!("{}/{child_rel}", p.trim_end_matches('/')),
                        None => child_rel,
                    };
                    out.push((name, entry.path()));
                } else {
                    bail!(
                        "{}: templates must be regular files",
                        entry.path().display()
                    );
                }
            }
        }
        out.sort();
    } else {
        bail!("{}: not a file or folder", src.display());
    }
    for (name, path) in &out {
        if !airgap_format::bundle_json::is_safe_relative_path(name) {
            bail!("template name {name:?} is not a safe relative path");
        }
        let len = std::fs::metadata(path)?.len();
        if len > MAX_TEMPLATE_BYTES {
            bail!(
                "{}: {len} bytes, above the {MAX_TEMPLATE_BYTES}-byte template limit",
                path.display()
            );
        }
    }
    Ok(out)
}

/// Media type of a template by its name.
fn template_media_type(name: &str) -> String {
    if name.ends_with(".hbs") {
        "text/x-handlebars-template".into()
    } else {
        mime_guess::from_path(name)
            .first_raw()
            .unwrap_or("text/plain")
            .to_string()
    }
}

fn no_remote() -> anyhow::Error {
    anyhow::anyhow!("internal error: a remote source without registry access")
}

/// Pulls a remote chart through the lock: its pin when there is one, else
/// what the source resolves to now (recorded for the lock file).
fn pull_chart(remote: &mut Remote, spec: &ChartSpec, source: &ChartSource) -> Result<PulledChart> {
    let lock = remote.lock;
    let pulled = match source {
        ChartSource::Oci {
            host,
            repository,
            reference,
            version,
        } => {
            let by_digest = reference.starts_with("sha256:");
            let locked = match (by_digest, version) {
                (false, Some(v)) => lock.and_then(|l| l.chart(&spec.source.value, None, v)),
                _ => None,
            };
            if locked.is_none() && !by_digest && remote.locked {
                return Err(remote.not_pinned(&format!("chart oci://{host}/{repository}")));
            }
            remote_chart::pull_oci(
                remote.puller,
                &spec.source.value,
                host,
                repository,
                reference,
                version.as_deref(),
                locked,
            )?
        }
        ChartSource::Repo {
            url,
            chart,
            version,
        } => {
            let locked = lock.and_then(|l| l.chart(&spec.source.value, Some(chart), version));
            if locked.is_none() && remote.locked {
                return Err(remote.not_pinned(&format!("chart {chart} {version} from {url}")));
            }
            let mut pulled = remote_chart::pull_repo(remote.puller, url, chart, version, locked)?;
            pulled.lock.source = spec.source.value.clone();
            pulled
        }
        ChartSource::Local(_) => unreachable!("local charts are not pulled"),
    };
    remote.resolved.add_chart(pulled.lock.clone());
    Ok(pulled)
}

/// Adds one resolved image under its published name and tag.
fn add_image(
    manifest: &Manifest,
    plan: &mut Plan,
    i: usize,
    spec: &ImageSpec,
    resolved: ResolvedImage,
    repository: Option<&str>,
) -> Result<()> {
    let name = match (&spec.name, &resolved.default_name) {
        (Some(n), _) => n.value.clone(),
        (None, Some((repo, _))) => repo.clone(),
        (None, None) if repository.is_some() => repository.unwrap_or_default().to_string(),
        (None, None) => {
            return Err(manifest
                .error_at(
                    &spec.source,
                    format!("images[{i}]: the source names no repository; set images[{i}].name"),
                )
                .into())
        }
    };
    let tag = match (&spec.tag, &resolved.default_name) {
        (Some(t), _) => t.value.clone(),
        (None, Some((_, tag))) => tag.clone(),
        (None, None) => {
            return Err(manifest
                .error_at(
                    &spec.source,
                    format!("images[{i}]: the source names no tag; set images[{i}].tag"),
                )
                .into())
        }
    };
    let tag = match &resolved.tag_suffix {
        Some(suffix) => format!("{tag}-{suffix}"),
        None => tag,
    };
    if !airgap_format::bundle_json::is_valid_repository(&name)
        || !airgap_format::bundle_json::is_valid_tag(&tag)
    {
        return Err(manifest
            .error_at(
                &spec.source,
                format!(
                    "images[{i}]: {name}:{tag} is not a valid repository:tag; set name and tag"
                ),
            )
            .into());
    }
    let reference = format!("{name}:{tag}");
    // What the source says, held to the bundle format's rules.
    for p in &resolved.platforms {
        if !fields::is_valid_platform(p) {
            return Err(manifest
                .error_at(
                    &spec.source,
                    format!(
                        "images[{i}].source: {reference} has platform {}, which a bundle cannot record (expected {}); fix the image's os, architecture or variant, or select other platforms with images[{i}].platforms",
                        quote(p),
                        fields::PLATFORM_RULE
                    ),
                )
                .into());
        }
    }
    for b in &resolved.blobs {
        if !fields::is_valid_media_type(&b.media_type) {
            return Err(manifest
                .error_at(
                    &spec.source,
                    format!(
                        "images[{i}].source: {reference} refers to blob {} with media type {}, which a bundle cannot record (expected {}); fix the image's manifest",
                        b.digest,
                        quote(&b.media_type),
                        fields::MEDIA_TYPE_RULE
                    ),
                )
                .into());
        }
    }
    if plan
        .images
        .iter()
        .any(|p| format!("{}:{}", p.name, p.tag) == reference)
    {
        return Err(manifest
            .error_at(
                &spec.source,
                format!("images[{i}]: {reference} is listed twice"),
            )
            .into());
    }
    for b in &resolved.blobs {
        plan.add_blob(
            b.digest,
            PlannedBlob {
                size: b.size,
                media_type: b.media_type.clone(),
                data: b.data.clone(),
                owner: format!("image {reference} ({})", b.data),
            },
        )
        .map_err(|e| manifest.error_at(&spec.source, format!("images[{i}]: {e:#}")))?;
    }
    tracing::debug!(
        image = %reference,
        digest = %resolved.top.digest,
        blobs = resolved.blobs.len(),
        platforms = ?resolved.platforms,
        "resolved image"
    );
    plan.images.push(PlannedImage {
        spec_index: i,
        name,
        tag,
        image: resolved,
    });
    Ok(())
}

/// Adds the config and manifest blobs that make the chart an OCI artifact the
/// way `helm push` does (config: `Chart.yaml` as JSON; one layer: the
/// `.tgz`); returns the manifest's digest.
fn chart_artifact(
    plan: &mut Plan,
    meta: &chart::ChartMeta,
    tgz: Digest,
    tgz_size: u64,
    mtime: u64,
) -> Result<Digest> {
    use airgap_format::bundle_json::HELM_CONFIG_MEDIA_TYPE;
    let config = airgap_format::canonical_json::to_canonical_vec(&meta.metadata)
        .context("Chart.yaml cannot be stored as canonical JSON (numbers must be integers)")?;
    let created = time::OffsetDateTime::from_unix_timestamp(mtime as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let manifest = airgap_format::canonical_json::to_canonical_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::sources::OCI_MANIFEST,
        "config": {"mediaType": HELM_CONFIG_MEDIA_TYPE, "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": [{"mediaType": CHART_MEDIA_TYPE, "digest": tgz.to_string(), "size": tgz_size}],
        "annotations": {
            "org.opencontainers.image.title": meta.name,
            "org.opencontainers.image.version": meta.version,
            "org.opencontainers.image.created": created,
        },
    }))?;
    let digest = Digest::of(&manifest);
    for (bytes, media_type) in [
        (config, HELM_CONFIG_MEDIA_TYPE),
        (manifest, crate::sources::OCI_MANIFEST),
    ] {
        plan.add_blob(
            Digest::of(&bytes),
            PlannedBlob {
                size: bytes.len() as u64,
                media_type: media_type.into(),
                data: BlobData::Memory(std::sync::Arc::new(bytes)),
                owner: format!("chart {}", meta.name),
            },
        )?;
    }
    Ok(digest)
}

fn hash_file(path: &Path) -> Result<(Digest, u64)> {
    let f = airgap_format::regular_file::open_regular(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    hash_reader(std::io::BufReader::with_capacity(1 << 20, f))
        .with_context(|| format!("{}: cannot read", path.display()))
}
