//! Writes a bundle: `bundle.json` and its signature first, then the OCI
//! layout files, then every blob, into a temp file renamed into place only
//! when complete.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use std::collections::BTreeSet;

use airgap_format::bundle_json::{
    BaseEntry, BlobEntry, BundleDescriptor, ImageEntry, LayoutEntry, PartEntry, SplitEntry,
    BUNDLE_JSON, BUNDLE_SEAL, BUNDLE_SEAL_SIG, BUNDLE_SIG, DELTA_FORMAT_VERSION, INDEX_JSON,
    LICENSE_FORMAT_VERSION, MAX_PARTS, MIN_FORMAT_VERSION, MIN_PART_SIZE, OCI_LAYOUT,
    REF_NAME_ANNOTATION, SBOMS_FORMAT_VERSION, TEMPLATES_FORMAT_VERSION,
};
use airgap_format::canonical_json::to_canonical_vec;
use airgap_format::progress::Progress;
use airgap_format::writer::{entry_size_bound, stored_entry_data};
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
    /// Build a delta against this base bundle.
    pub base: Option<PathBuf>,
    /// Write media parts of this many bytes instead of one file.
    pub split: Option<u64>,
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
            base: None,
            split: None,
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
    /// The media parts written, when split.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PathBuf>,
    /// The base bundle of a delta.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseEntry>,
    /// Blobs a delta leaves to its base, and their bytes.
    pub blobs_left_to_base: usize,
    /// Bytes of those blobs.
    pub bytes_left_to_base: u64,
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
    let (mut plan, puller) = if manifest.has_remote_sources() {
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
        (plan, Some(puller))
    } else {
        (plan::resolve(&manifest, mtime, None)?, None)
    };
    let cache_dir = puller.is_some().then(|| options.pull.cache_dir.clone());
    let created = options
        .created
        .format(&time::format_description::well_known::Rfc3339)
        .context("formatting the creation time")?;

    let oci_layout = to_canonical_vec(&serde_json::json!({"imageLayoutVersion": "1.0.0"}))?;
    // SBOMs are generated while the queued layers download: each layer is
    // scanned as soon as it is in the cache.
    let (sboms, report) = std::thread::scope(|s| -> Result<_> {
        let download = puller
            .as_ref()
            .map(|p| s.spawn(move || p.download_queued()));
        let ready = |digest: &Digest, size: u64| match &puller {
            Some(p) => p.wait_for(digest, size),
            None => Ok(()),
        };
        let generated = crate::sbom::generate(
            &manifest,
            &mut plan,
            &created,
            &manifest.doc.name.value,
            &manifest.doc.version.value,
            options.skip_sbom,
            &ready,
        );
        if let Some(h) = download {
            // A failed download explains a layer that never arrived.
            h.join()
                .map_err(|_| anyhow::anyhow!("internal error: the download thread panicked"))??;
        }
        generated
    })?;
    let pulled = puller.as_ref().map(|p| p.stats());
    let sbom_report = Some(report);
    let base = match &options.base {
        Some(p) => Some(crate::delta::load_base(
            p,
            key,
            &manifest.doc.name.value,
            &manifest.doc.version.value,
        )?),
        None => None,
    };
    let omit = match &base {
        Some(b) => {
            let sbom_digests: Vec<Digest> = sboms.iter().map(|e| e.digest).collect();
            crate::delta::left_to_base(&plan, b, &sbom_digests)
        }
        None => BTreeSet::new(),
    };
    let index_json = index_json(&plan)?;
    let mut descriptor = describe(
        &manifest,
        &plan,
        created,
        &oci_layout,
        &index_json,
        sboms,
        base.as_ref().map(|b| b.entry.clone()),
        &omit,
    )?;
    let trusted_comment = format!(
        "timestamp:{mtime}\tfile:{BUNDLE_JSON}\tbundle:{}@{}\tprehashed",
        descriptor.name, descriptor.version
    );
    // A split bundle's head is written as a placeholder of fixed length and
    // filled in once the parts' digests are known.
    let head_len = match options.split {
        Some(part_size) => Some(reserve_head(&mut descriptor, part_size)?),
        None => None,
    };
    descriptor
        .validate()
        .context("internal error: the bundle description is inconsistent")?;
    let mut bundle_json = descriptor.to_canonical_bytes()?;
    if let Some(len) = head_len {
        bundle_json.resize(len, b' ');
    }
    let mut signature = key.sign(&bundle_json, &trusted_comment).to_minisign_text();

    let output = match options.split {
        Some(part_size) => Output::create_split(out, part_size)?,
        None => Output::create(out)?,
    };
    let writer_options = WriterOptions {
        level: options.level,
        mtime,
    };
    let stored_total: u64 = descriptor.total_size;
    let progress = Progress::bytes(stored_total, "build", options.progress);
    let mut writer = ArchiveWriter::new(BufWriter::with_capacity(1 << 20, output), writer_options)?;
    let head_mode = if head_len.is_some() {
        Compression::Stored
    } else {
        Compression::Zstd
    };
    writer.append_bytes(BUNDLE_JSON, &bundle_json, head_mode)?;
    let json_end = writer.compressed_len();
    writer.append_bytes(BUNDLE_SIG, signature.as_bytes(), head_mode)?;
    let sig_end = writer.compressed_len();
    writer.get_mut().flush()?;
    writer.get_mut().get_mut().body_starts();
    writer.append_bytes(OCI_LAYOUT, &oci_layout, Compression::Zstd)?;
    writer.append_bytes(INDEX_JSON, &index_json, Compression::Zstd)?;
    tracing::debug!(blobs = descriptor.blobs.len(), bytes = stored_total, left_to_base = omit.len(), out = %out.display(), "writing bundle");
    for (digest, blob) in plan.blobs.iter().filter(|(d, _)| !omit.contains(d)) {
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
    writer.get_mut().flush()?;
    writer.get_mut().get_mut().body_ends();
    if let (Some(part_size), Some(len)) = (options.split, head_len) {
        // The whole size is known now: the tail's length does not depend on
        // the digests it will hold.
        let (dummy_seal, dummy_sig) =
            crate::sign::seal(key, &bundle_json, writer.seal(), &trusted_comment)?;
        let stored = |n: u64| n + 9 + 3 * n.div_ceil(128 << 10).max(1);
        let pad = |n: u64| n.div_ceil(512) * 512;
        let frames = writer.seal().frames + 5;
        let total = writer.compressed_len()
            + stored(512)
            + stored(pad(dummy_seal.len() as u64))
            + stored(512)
            + stored(pad(dummy_sig.len() as u64))
            + stored(1024)
            + 8
            + 8 * frames
            + 9;
        let count = total.div_ceil(part_size) as usize;
        let reserved = descriptor.split.as_ref().map_or(0, |s| s.parts.len());
        if count > reserved {
            bail!("internal error: {count} parts needed, {reserved} reserved");
        }
        let digests = writer.get_mut().get_ref().part_digests(count);
        descriptor.split = Some(SplitEntry {
            part_size,
            parts: digests
                .into_iter()
                .enumerate()
                .map(|(i, digest)| PartEntry {
                    size: part_size.min(total - i as u64 * part_size),
                    digest,
                })
                .collect(),
        });
        descriptor
            .validate()
            .context("internal error: the bundle description is inconsistent")?;
        bundle_json = descriptor.to_canonical_bytes()?;
        if bundle_json.len() > len {
            bail!("internal error: bundle.json outgrew its reserved space");
        }
        bundle_json.resize(len, b' ');
        let new_signature = key.sign(&bundle_json, &trusted_comment).to_minisign_text();
        if new_signature.len() != signature.len() {
            bail!("internal error: the signature changed length");
        }
        signature = new_signature;
        let json_frames = stored_entry_data(&bundle_json);
        let sig_frames = stored_entry_data(signature.as_bytes());
        let output = writer.get_mut().get_mut();
        output.patch(json_end - json_frames.len() as u64, &json_frames)?;
        output.patch(sig_end - sig_frames.len() as u64, &sig_frames)?;
    }
    let (seal, seal_sig) = crate::sign::seal(key, &bundle_json, writer.seal(), &trusted_comment)?;
    writer.append_stored(BUNDLE_SEAL, &seal)?;
    writer.append_stored(BUNDLE_SEAL_SIG, seal_sig.as_bytes())?;
    let buffered = writer.finish().context("writing the seek table")?;
    let output = buffered
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing the bundle: {}", e.error()))?;
    progress.finish();
    if let Some(split) = &descriptor.split {
        if output.written() != split.total_size() {
            bail!(
                "internal error: wrote {} bytes, bundle.json says {}",
                output.written(),
                split.total_size()
            );
        }
    }
    let committed = output.commit()?;
    Ok(BuildOutput {
        path: out.to_path_buf(),
        bundle_digest: Digest::of(&bundle_json),
        archive_size: committed.size,
        total_size: descriptor.total_size,
        blobs: descriptor.blobs.len(),
        key_id: key.public().key_id.to_string(),
        pull: pulled,
        sbom: sbom_report,
        parts: committed.parts,
        base: descriptor.base.clone(),
        blobs_left_to_base: descriptor.base_blobs.len(),
        bytes_left_to_base: descriptor.base_blobs.iter().map(|b| b.size).sum(),
    })
}

/// Fills `descriptor.split` with placeholders for as many parts as the
/// bundle could possibly need, each at its largest, and returns the length
/// of that `bundle.json`: the space the head reserves. The real part list
/// is never longer.
fn reserve_head(descriptor: &mut BundleDescriptor, part_size: u64) -> Result<usize> {
    if part_size < MIN_PART_SIZE {
        bail!("--split {part_size}: parts must be at least {MIN_PART_SIZE} bytes");
    }
    descriptor.format_version = DELTA_FORMAT_VERSION;
    let body: u64 = descriptor
        .expected_entries()
        .iter()
        .map(|e| entry_size_bound(e.size))
        .sum::<u64>()
        + 5 * entry_size_bound(4096)
        + 8 * 1024;
    let mut parts = 1usize;
    loop {
        descriptor.split = Some(SplitEntry {
            part_size,
            parts: vec![
                PartEntry {
                    size: part_size,
                    digest: Digest::of(&[]),
                };
                parts
            ],
        });
        let json = descriptor.to_canonical_bytes()?.len() as u64;
        let bound = body + 2 * entry_size_bound(json) + 2 * entry_size_bound(1024);
        let needed = bound.div_ceil(part_size) as usize;
        if needed <= parts {
            return Ok(json as usize);
        }
        if needed > MAX_PARTS {
            bail!(
                "--split {part_size}: the bundle could need up to {needed} parts, more than the {MAX_PARTS} allowed; use larger parts"
            );
        }
        parts = needed;
    }
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

#[allow(clippy::too_many_arguments)]
fn describe(
    manifest: &Manifest,
    plan: &Plan,
    created: String,
    oci_layout: &[u8],
    index_json: &[u8],
    sboms: Vec<airgap_format::bundle_json::SbomEntry>,
    base: Option<BaseEntry>,
    omit: &BTreeSet<Digest>,
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
    let (base_blobs, blobs): (Vec<BlobEntry>, Vec<BlobEntry>) = plan
        .blobs
        .iter()
        .map(|(d, b)| BlobEntry {
            digest: *d,
            size: b.size,
            media_type: b.media_type.clone(),
        })
        .partition(|b| omit.contains(&b.digest));
    let total_size = blobs.iter().map(|b| b.size).sum();
    Ok(BundleDescriptor {
        // The lowest version that can say it, so older installers read it.
        format_version: if base.is_some() {
            DELTA_FORMAT_VERSION
        } else if plan.license.is_some() {
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
        base,
        split: None,
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
        base_blobs,
        total_size,
    })
}
