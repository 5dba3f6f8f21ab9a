//! Writes a bundle: `bundle.json` and its signature first, then the OCI
//! layout files, then every blob, into a temp file renamed into place only
//! when complete.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use airgap_format::bundle_json::{
    BlobEntry, BundleDescriptor, ImageEntry, LayoutEntry, BUNDLE_JSON, BUNDLE_SEAL,
    BUNDLE_SEAL_SIG, BUNDLE_SIG, INDEX_JSON, LICENSE_FORMAT_VERSION, MIN_FORMAT_VERSION,
    OCI_LAYOUT, REF_NAME_ANNOTATION, SBOMS_FORMAT_VERSION, TEMPLATES_FORMAT_VERSION,
};
use airgap_format::canonical_json::to_canonical_vec;
use airgap_format::progress::Progress;
use airgap_format::{ArchiveWriter, Compression, Digest, WriterOptions};
use anyhow::{bail, Context, Result};
use time::OffsetDateTime;

use crate::lock::LockFile;
use crate::manifest::Manifest;
use crate::output::Output;
use crate::plan::{self, Plan, Remote};
use crate::pull::{PullOptions, PullStats, Puller};
use crate::sign::SecretKey;
use crate::sources::BlobData;

/// Build settings.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// zstd level for compressible entries.
    pub level: i32,
    /// Creation time (from `SOURCE_DATE_EPOCH` when set).
    pub created: OffsetDateTime,
    /// Show progress bars (when stderr is a terminal).
    pub progress: bool,
    /// How to pull registry images and remote charts.
    pub pull: PullOptions,
    /// The lock file (default: `NAME.lock.json` beside the manifest).
    pub lock_path: Option<PathBuf>,
    /// Refuse remote sources the lock file does not pin.
    pub locked: bool,
    /// Make no SBOMs (quick local builds); vendor SBOMs are still carried.
    pub skip_sbom: bool,
}

impl BuildOptions {
    /// Defaults, with the time taken from `SOURCE_DATE_EPOCH` when set.
    pub fn from_env() -> Result<Self> {
        let created = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => {
                let secs: i64 = v.trim().parse().ok().filter(|s| *s >= 0).with_context(|| {
                    format!("SOURCE_DATE_EPOCH={v:?} is not a non-negative number of seconds")
                })?;
                OffsetDateTime::from_unix_timestamp(secs)
                    .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is out of range"))?
            }
            Err(_) => OffsetDateTime::now_utc(),
        };
        Ok(BuildOptions {
            level: airgap_format::writer::DEFAULT_LEVEL,
            created: created.replace_nanosecond(0).expect("0 is valid"),
            progress: true,
            pull: PullOptions::default(),
            lock_path: None,
            locked: false,
            skip_sbom: false,
        })
    }
}

/// What a build produced.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildOutput {
    /// The bundle file.
    pub path: PathBuf,
    /// Digest of `bundle.json`.
    pub bundle_digest: Digest,
    /// Archive size in bytes.
    pub archive_size: u64,
    /// Sum of blob sizes.
    pub total_size: u64,
    /// Number of blobs.
    pub blobs: usize,
    /// Signing key id.
    pub key_id: String,
    /// What was pulled from registries and chart repositories, if anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull: Option<PullStats>,
    /// What SBOM generation did, unless skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<crate::sbom::SbomReport>,
}

/// Builds the bundle described by `manifest_path`, signed with `key`, into `out`.
pub fn build(
    manifest_path: &Path,
    key: &SecretKey,
    out: &Path,
    options: &BuildOptions,
) -> Result<BuildOutput> {
    let manifest = Manifest::load(manifest_path)?;
    let mtime = options.created.unix_timestamp().max(0) as u64;
    let (mut plan, pulled) = if manifest.has_remote_sources() {
        let lock_path = options
            .lock_path
            .clone()
            .unwrap_or_else(|| LockFile::default_path(manifest_path));
        let lock = LockFile::load(&lock_path)?;
        if lock.is_none() && options.locked {
            bail!(
                "{}: lock file not found and --locked was given; run airgap-bundle lock {}",
                lock_path.display(),
                manifest_path.display()
            );
        }
        let mut pull = options.pull.clone();
        pull.hosts.extend(manifest.host_settings());
        pull.progress = options.progress;
        let puller = Puller::new(pull)?;
        let mut remote = Remote {
            puller: &puller,
            lock: lock.as_ref(),
            lock_path: lock_path.clone(),
            locked: options.locked,
            resolved: LockFile::default(),
        };
        let plan = plan::resolve(&manifest, mtime, Some(&mut remote))?;
        warn_unpinned(lock.as_ref(), &remote.resolved, &lock_path);
        puller.download_queued()?;
        (plan, Some(puller.stats()))
    } else {
        (plan::resolve(&manifest, mtime, None)?, None)
    };
    let cache_dir = pulled.is_some().then(|| options.pull.cache_dir.clone());
    let created = options
        .created
        .format(&time::format_description::well_known::Rfc3339)
        .context("formatting the creation time")?;

    let oci_layout = to_canonical_vec(&serde_json::json!({"imageLayoutVersion": "1.0.0"}))?;
    let (sboms, report) = crate::sbom::generate(
        &manifest,
        &mut plan,
        &created,
        &manifest.doc.name.value,
        &manifest.doc.version.value,
        options.skip_sbom,
    )?;
    let sbom_report = Some(report);
    let index_json = index_json(&plan)?;
    let descriptor = describe(&manifest, &plan, created, &oci_layout, &index_json, sboms)?;
    descriptor
        .validate()
        .context("internal error: the bundle description is inconsistent")?;
    let bundle_json = descriptor.to_canonical_bytes()?;
    let trusted_comment = format!(
        "timestamp:{mtime}\tfile:{BUNDLE_JSON}\tbundle:{}@{}\tprehashed",
        descriptor.name, descriptor.version
    );
    let signature = key.sign(&bundle_json, &trusted_comment).to_minisign_text();

    let output = Output::create(out)?;
    let writer_options = WriterOptions {
        level: options.level,
        mtime,
    };
    let progress = Progress::bytes(plan.total_size(), "build", options.progress);
    let mut writer = ArchiveWriter::new(BufWriter::with_capacity(1 << 20, output), writer_options)?;
    writer.append_bytes(BUNDLE_JSON, &bundle_json, Compression::Zstd)?;
    writer.append_bytes(BUNDLE_SIG, signature.as_bytes(), Compression::Zstd)?;
    writer.append_bytes(OCI_LAYOUT, &oci_layout, Compression::Zstd)?;
    writer.append_bytes(INDEX_JSON, &index_json, Compression::Zstd)?;
    tracing::debug!(blobs = plan.blobs.len(), bytes = plan.total_size(), out = %out.display(), "writing bundle");
    for (digest, blob) in &plan.blobs {
        tracing::debug!(%digest, size = blob.size, source = %blob.data, "storing blob");
        let reader = blob.data.open(blob.size)?;
        let got = writer
            .append_reader(
                &digest.blob_path(),
                blob.size,
                reader,
                Compression::Auto,
                &mut |n| progress.inc(n),
            )
            .with_context(|| format!("{}: blob {digest}", blob.owner))?;
        if got != *digest {
            // A damaged cache entry must not fail every later build.
            let evicted = match (&blob.data, cache_dir.as_deref()) {
                (BlobData::File { path, .. }, Some(dir)) if path.starts_with(dir) => {
                    std::fs::remove_file(path).is_ok()
                }
                _ => false,
            };
            bail!(
                "{}: blob {digest}: content does not match its digest (found {got}){}",
                blob.owner,
                if evicted {
                    "; the damaged cache entry was removed, so the next build fetches it again"
                } else {
                    ""
                }
            );
        }
    }
    let (seal, seal_sig) = crate::sign::seal(key, &bundle_json, writer.seal(), &trusted_comment)?;
    writer.append_stored(BUNDLE_SEAL, &seal)?;
    writer.append_stored(BUNDLE_SEAL_SIG, seal_sig.as_bytes())?;
    let buffered = writer.finish().context("writing the seek table")?;
    let output = buffered
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing the bundle: {}", e.error()))?;
    progress.finish();
    let archive_size = output.commit()?;
    Ok(BuildOutput {
        path: out.to_path_buf(),
        bundle_digest: Digest::of(&bundle_json),
        archive_size,
        total_size: descriptor.total_size,
        blobs: descriptor.blobs.len(),
        key_id: key.public().key_id.to_string(),
        pull: pulled,
        sbom: sbom_report,
    })
}

/// Warns about remote sources resolved now rather than from the lock.
fn warn_unpinned(lock: Option<&LockFile>, used: &LockFile, lock_path: &Path) {
    let pinned_images = |s: &str| lock.is_some_and(|l| l.image(s).is_some());
    let unpinned: Vec<String> = used
        .images
        .iter()
        .filter(|i| !pinned_images(&i.source) && !i.source.contains('@'))
        .map(|i| i.source.clone())
        .chain(
            used.charts
                .iter()
                .filter(|c| {
                    !c.source.contains('@')
                        && !lock.is_some_and(|l| {
                            l.chart(&c.source, c.chart.as_deref(), &c.version).is_some()
                        })
                })
                .map(|c| c.source.clone()),
        )
        .collect();
    if !unpinned.is_empty() {
        tracing::warn!(
            "not pinned in {}: {}; resolved now (run airgap-bundle lock to pin them)",
            lock_path.display(),
            unpinned.join(", ")
        );
    }
}

fn index_json(plan: &Plan) -> Result<Vec<u8>> {
    let manifests: Vec<serde_json::Value> = plan
        .images
        .iter()
        .map(|p| {
            serde_json::json!({
                "mediaType": p.image.top.media_type,
                "digest": p.image.top.digest.to_string(),
                "size": p.image.top.size,
                "annotations": {REF_NAME_ANNOTATION: format!("{}:{}", p.name, p.tag)},
            })
        })
        .collect();
    Ok(to_canonical_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    }))?)
}

fn describe(
    manifest: &Manifest,
    plan: &Plan,
    created: String,
    oci_layout: &[u8],
    index_json: &[u8],
    sboms: Vec<airgap_format::bundle_json::SbomEntry>,
) -> Result<BundleDescriptor> {
    let images = plan
        .images
        .iter()
        .map(|p| ImageEntry {
            name: p.name.clone(),
            tag: p.tag.clone(),
            reference: format!("{}:{}", p.name, p.tag),
            digest: p.image.top.digest,
            media_type: p.image.top.media_type.clone(),
            size: p.image.top.size,
            total_size: p.image.blobs.iter().map(|b| b.size).sum(),
            platforms: p.image.platforms.clone(),
        })
        .collect();
    let blobs = plan
        .blobs
        .iter()
        .map(|(d, b)| BlobEntry {
            digest: *d,
            size: b.size,
            media_type: b.media_type.clone(),
        })
        .collect();
    Ok(BundleDescriptor {
        // The lowest version that can say it, so older installers read it.
        format_version: if plan.license.is_some() {
            LICENSE_FORMAT_VERSION
        } else if !sboms.is_empty() {
            SBOMS_FORMAT_VERSION
        } else if !plan.templates.is_empty() {
            TEMPLATES_FORMAT_VERSION
        } else {
            MIN_FORMAT_VERSION
        },
        name: manifest.doc.name.value.clone(),
        version: manifest.doc.version.value.clone(),
        description: manifest.doc.description.clone(),
        created,
        generator: format!("airgap-bundle {}", env!("CARGO_PKG_VERSION")),
        images,
        charts: plan.charts.clone(),
        files: plan.files.clone(),
        templates: plan.templates.clone(),
        sboms,
        license: plan.license.clone(),
        layout: vec![
            LayoutEntry {
                path: OCI_LAYOUT.into(),
                digest: Digest::of(oci_layout),
                size: oci_layout.len() as u64,
            },
            LayoutEntry {
                path: INDEX_JSON.into(),
                digest: Digest::of(index_json),
                size: index_json.len() as u64,
            },
        ],
        blobs,
        total_size: plan.total_size(),
    })
}
