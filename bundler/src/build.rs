//! Writes a bundle: `bundle.json` and its signature first, then the OCI
//! layout files, then every blob, into a temp file renamed into place only
//! when complete.

use std::path::{Path, PathBuf};

use std::collections::{BTreeMap, BTreeSet};

use airgap_cli::progress::Progress;
use airgap_format::bundle_json::{
    is_sbom_media_type, BaseEntry, BlobEntry, BundleDescriptor, ExpectedEntry, ImageEntry,
    LayoutEntry, SbomEntry, BUNDLE_JSON, DELTA_FORMAT_VERSION, INDEX_JSON, LICENSE_FORMAT_VERSION,
    MIN_FORMAT_VERSION, OCI_LAYOUT, REF_NAME_ANNOTATION, SBOMS_FORMAT_VERSION,
    SBOMS_LAST_FORMAT_VERSION, TEMPLATES_FORMAT_VERSION,
};
use airgap_format::canonical_json::to_canonical_vec;
use airgap_format::writer::{BundleSigner, BundleWriter, Head, TooManyParts, UNKNOWN_SIZE};
use airgap_format::{Compression, Digest, WriterOptions};
use anyhow::{bail, Context, Result};
use time::OffsetDateTime;

use crate::lock::LockFile;
use crate::manifest::Manifest;
use crate::output::Output;
use crate::plan::{self, Plan, PlannedBlob, Remote};
use crate::pull::{PullOptions, PullStats, Puller};
use crate::scan_cache::ScanCache;
use crate::sign::SecretKey;
use crate::sources::BlobData;

/// Build settings.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// zstd level for compressible entries.
    pub level: i32,
    /// Creation time (from `SOURCE_DATE_EPOCH` when set).
    pub created: OffsetDateTime,
    /// Whether `created` is only a fallback: without `SOURCE_DATE_EPOCH`
    /// the build takes the newest modification time of its local inputs
    /// ([`crate::inputs::newest_mtime`]), and `created` (the time now) only
    /// when there is none or it lies in the future.
    pub created_from_inputs: bool,
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
    /// Keep and reuse layer scans in the cache folder's `scans/`
    /// ([`crate::scan_cache`]).
    pub scan_cache: bool,
    /// Build a delta against this base bundle.
    pub base: Option<PathBuf>,
    /// Write media parts of this many bytes instead of one file.
    pub split: Option<crate::output::PartSize>,
}

impl BuildOptions {
    /// Defaults, with the time taken from `SOURCE_DATE_EPOCH` when set.
    pub fn from_env() -> Result<Self> {
        let from_env = std::env::var_os("SOURCE_DATE_EPOCH").is_some();
        let created = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => {
                let secs: i64 = v.trim().parse().ok().filter(|s| *s >= 0).with_context(|| {
                    format!("SOURCE_DATE_EPOCH={v:?} is not a non-negative number of seconds")
                })?;
                let max = airgap_format::bundle_json::MAX_CREATED_UNIX;
                if secs as u64 > max {
                    bail!(
                        "SOURCE_DATE_EPOCH={v:?} is after {max} (2242-03-16T12:56:31Z), the last time a bundle's tar headers can hold; set an earlier time"
                    );
                }
                OffsetDateTime::from_unix_timestamp(secs)
                    .with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is out of range"))?
            }
            Err(_) => OffsetDateTime::now_utc(),
        };
        Ok(BuildOptions {
            level: airgap_format::writer::DEFAULT_LEVEL,
            created: created.replace_nanosecond(0).expect("0 is valid"),
            created_from_inputs: !from_env,
            progress: true,
            pull: PullOptions::default(),
            lock_path: None,
            locked: false,
            skip_sbom: false,
            scan_cache: true,
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

/// Builds the bundle described by `manifest_path`, signed with `key`, into
/// `out`. A failure to write the bundle (a full disk) is reported as that,
/// naming `out`, whatever was being written.
pub fn build(
    manifest_path: &Path,
    key: &SecretKey,
    out: &Path,
    options: &BuildOptions,
) -> Result<BuildOutput> {
    build_inner(manifest_path, key, out, options).map_err(crate::output::bundle_write_error)
}

fn build_inner(
    manifest_path: &Path,
    key: &SecretKey,
    out: &Path,
    options: &BuildOptions,
) -> Result<BuildOutput> {
    // Before anything is pulled: a mistyped --out costs nothing.
    airgap_format::atomic_file::check_output_folder(out)?;
    let manifest = Manifest::load(manifest_path)?;
    let mut options = options.clone();
    if options.created_from_inputs {
        let now = options.created.unix_timestamp().max(0) as u64;
        if let Some(t) = crate::inputs::newest_mtime(&manifest, manifest_path)? {
            let t = t.min(now).min(airgap_format::bundle_json::MAX_CREATED_UNIX);
            options.created = OffsetDateTime::from_unix_timestamp(t as i64)
                .context("the inputs' modification time is out of range")?;
        }
    }
    let options = &options;
    let mtime = options.created.unix_timestamp().max(0) as u64;
    let (plan, puller) = if manifest.has_remote_sources() {
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
    let index_json = index_json(&plan)?;
    let base = match &options.base {
        Some(p) => Some(crate::delta::load_base(
            p,
            key,
            &manifest.doc.name.value,
            &manifest.doc.version.value,
        )?),
        None => None,
    };
    let ctx = Ctx {
        manifest: &manifest,
        plan: &plan,
        created: &created,
        oci_layout: &oci_layout,
        index_json: &index_json,
        base: base.as_ref().map(|b| b.entry.clone()),
        trusted_comment: format!(
            "timestamp:{mtime}\tfile:{BUNDLE_JSON}\tbundle:{}@{}\tprehashed",
            manifest.doc.name.value, manifest.doc.version.value
        ),
        key,
        puller: puller.as_ref(),
        cache_dir: cache_dir.as_deref(),
        options,
        mtime,
        out,
    };
    let scan_cache = if options.scan_cache && !options.skip_sbom {
        Some(ScanCache::open(&options.pull.cache_dir))
    } else {
        None
    };
    let ready = |digest: &Digest, size: u64| match &puller {
        Some(p) => p.wait_for(digest, size),
        None => Ok(()),
    };
    // The queued layers download on a thread of their own while SBOMs are
    // generated (each layer scanned as soon as it is in the cache) and the
    // bundle is written (each blob stored as soon as it is there).
    let (written, sbom_report) = std::thread::scope(|s| -> Result<_> {
        let download = puller
            .as_ref()
            .map(|p| s.spawn(move || p.download_queued()));
        let result = (|| {
            let prepared = crate::sbom::prepare(&manifest, &plan, options.skip_sbom, &ready)?;
            let omit = |sboms: &[Digest]| match &base {
                Some(b) => crate::delta::left_to_base(&plan, b, sboms),
                None => BTreeSet::new(),
            };
            // SBOM blobs go last (format version 6) when there is a scan:
            // it runs while everything else is written, whole or split.
            let scanning = if prepared.scans() {
                let vendor = prepared.vendor_blobs();
                let placeholders = prepared.placeholders();
                let vendor_digests: Vec<Digest> = vendor.iter().map(|(e, _)| e.digest).collect();
                let omit = omit(&vendor_digests);
                Some((ctx.room_for_sboms(placeholders, vendor, &omit)?, omit))
            } else {
                None
            };
            let generate = {
                // Borrowed; only `prepared` moves in (generating consumes it).
                let (plan, created, manifest) = (&plan, &created, &manifest);
                let (ready, scan_cache) = (&ready, scan_cache.as_ref());
                move || {
                    prepared.generate(
                        plan,
                        created,
                        &manifest.doc.name.value,
                        &manifest.doc.version.value,
                        ready,
                        scan_cache,
                    )
                }
            };
            if let Some((room, omit)) = scanning {
                let scan = s.spawn(generate);
                ctx.write(Head::Reserved(room), Sboms::Scanning(scan), &omit)
            } else {
                let docs = generate()?;
                let sbom_blobs = docs.blobs();
                let omit = omit(&sbom_blobs.keys().copied().collect::<Vec<_>>());
                let entries: Vec<BlobEntry> =
                    sbom_blobs.iter().map(|(d, b)| blob_entry(d, b)).collect();
                let descriptor = ctx.describe(docs.entries(), &entries, &omit)?;
                ctx.write(Head::Final(descriptor), Sboms::Ready(docs), &omit)
            }
        })();
        if let Some(h) = download {
            // A failed download explains a blob that never arrived.
            h.join()
                .map_err(|_| anyhow::anyhow!("internal error: the download thread panicked"))??;
        }
        result
    })?;
    let Written {
        output,
        descriptor,
        bundle_json,
    } = written;
    let committed = output.commit()?;
    let mut sbom_report = sbom_report;
    if let (Some(cache), Some(report)) = (&scan_cache, &mut sbom_report.scan_cache) {
        // Every blob in the bundle was checked against its digest as it was
        // written; layers left to a delta's base were not read here.
        let written: BTreeSet<String> = descriptor
            .blobs
            .iter()
            .map(|b| b.digest.to_string())
            .collect();
        report.stored = cache.commit(|d| written.contains(d));
    }
    Ok(BuildOutput {
        path: out.to_path_buf(),
        bundle_digest: Digest::of(&bundle_json),
        archive_size: committed.size,
        total_size: descriptor.total_size,
        blobs: descriptor.blobs.len(),
        key_id: key.public().key_id.to_string(),
        pull: puller.as_ref().map(|p| p.stats()),
        sbom: Some(sbom_report),
        parts: committed.parts,
        base: descriptor.base.clone(),
        blobs_left_to_base: descriptor.base_blobs.len(),
        bytes_left_to_base: descriptor.base_blobs.iter().map(|b| b.size).sum(),
    })
}

/// What a build writes with, once the plan is made.
struct Ctx<'a> {
    manifest: &'a Manifest,
    plan: &'a Plan,
    created: &'a str,
    oci_layout: &'a [u8],
    index_json: &'a [u8],
    base: Option<BaseEntry>,
    trusted_comment: String,
    key: &'a SecretKey,
    puller: Option<&'a Puller>,
    cache_dir: Option<&'a Path>,
    options: &'a BuildOptions,
    mtime: u64,
    out: &'a Path,
}

/// A written (not yet committed) bundle.
struct Written {
    output: Output,
    descriptor: BundleDescriptor,
    bundle_json: Vec<u8>,
}

/// The SBOM documents: generated already, or being generated while the
/// other blobs are written.
enum Sboms<'s> {
    Ready(crate::sbom::Documents),
    Scanning(std::thread::ScopedJoinHandle<'s, Result<crate::sbom::Documents>>),
}

impl BundleSigner for Ctx<'_> {
    /// Signs with the build's key; the trusted comment names `file`.
    fn sign(&self, file: &str, bytes: &[u8]) -> std::io::Result<String> {
        let comment = self
            .trusted_comment
            .replace(&format!("file:{BUNDLE_JSON}"), &format!("file:{file}"));
        Ok(self.key.sign(bytes, &comment).to_minisign_text())
    }
}

impl Ctx<'_> {
    fn describe(
        &self,
        sboms: Vec<SbomEntry>,
        sbom_blobs: &[BlobEntry],
        omit: &BTreeSet<Digest>,
    ) -> Result<BundleDescriptor> {
        describe(
            self.manifest,
            self.plan,
            self.created.to_string(),
            self.oci_layout,
            self.index_json,
            sboms,
            sbom_blobs,
            self.base.clone(),
            omit,
        )
    }

    /// Format version 6 (docs/format.md §16.2): `bundle.json` at its
    /// largest, with the documents still to be generated as stand-ins of
    /// unknown size, which the head reserves room for.
    fn room_for_sboms(
        &self,
        placeholders: Vec<SbomEntry>,
        vendor: Vec<(SbomEntry, PlannedBlob)>,
        omit: &BTreeSet<Digest>,
    ) -> Result<BundleDescriptor> {
        let mut blobs: Vec<BlobEntry> = vendor
            .iter()
            .map(|(e, b)| blob_entry(&e.digest, b))
            .collect();
        blobs.extend(placeholders.iter().map(|e| BlobEntry {
            digest: e.digest,
            size: e.size,
            media_type: e.format.media_type().to_string(),
        }));
        let mut sboms: Vec<SbomEntry> = vendor.into_iter().map(|(e, _)| e).collect();
        sboms.extend(placeholders);
        sboms.sort();
        sboms.dedup();
        let mut room = self.describe(sboms, &blobs, omit)?;
        room.format_version = room.format_version.max(SBOMS_LAST_FORMAT_VERSION);
        room.total_size = UNKNOWN_SIZE;
        Ok(room)
    }

    /// Writes the bundle: the head, then every entry of `head`'s
    /// description that is known now, then (once the SBOMs are there) the
    /// rest, then the tail. With SBOMs still scanning the head is reserved
    /// and rewritten at the end; the writer does that, as it cuts media
    /// parts.
    fn write(
        &self,
        head: Head,
        sboms: Sboms<'_>,
        omit: &BTreeSet<Digest>,
    ) -> Result<(Written, crate::sbom::SbomReport)> {
        let first: Vec<ExpectedEntry> = match &head {
            Head::Final(d) => d.expected_entries(),
            // Every entry before the first SBOM: the SBOMs come last.
            Head::Reserved(d) => d
                .expected_entries()
                .into_iter()
                .take_while(|e| {
                    !d.blob(&e.digest)
                        .is_some_and(|b| is_sbom_media_type(&b.media_type))
                })
                .collect(),
        };
        let known = match &head {
            Head::Final(d) => Some(d.clone()),
            Head::Reserved(_) => None,
        };
        let output = match &self.options.split {
            Some(part_size) => Output::create_split(self.out, part_size.bytes)?,
            None => Output::create(self.out)?,
        };
        let writer_options = WriterOptions {
            level: self.options.level,
            mtime: self.mtime,
        };
        let progress = Progress::bytes(
            first.iter().map(|e| e.size).sum(),
            "build",
            self.options.progress,
        );
        let mut writer = BundleWriter::start(output, writer_options, head, self)
            .map_err(|e| self.split_error(e))?;
        tracing::debug!(entries = first.len(), left_to_base = omit.len(), out = %self.out.display(), "writing bundle");
        // Vendor SBOMs, and generated ones when generation is over.
        let early = match &sboms {
            Sboms::Ready(docs) => docs.blobs(),
            Sboms::Scanning(_) => BTreeMap::new(),
        };
        for e in &first {
            self.store(&mut writer, e, &early, &progress)?;
        }
        let docs = match sboms {
            Sboms::Ready(docs) => docs,
            Sboms::Scanning(scan) => scan
                .join()
                .map_err(|_| anyhow::anyhow!("internal error: the SBOM thread panicked"))??,
        };
        let sbom_blobs = docs.blobs();
        let descriptor = match known {
            Some(d) => d,
            None => {
                let entries: Vec<BlobEntry> =
                    sbom_blobs.iter().map(|(d, b)| blob_entry(d, b)).collect();
                let mut d = self.describe(docs.entries(), &entries, omit)?;
                d.format_version = d.format_version.max(SBOMS_LAST_FORMAT_VERSION);
                d
            }
        };
        let rest = writer.remaining(&descriptor)?;
        // The SBOMs (and what follows them) were not known when the bar
        // began.
        progress.grow(rest.iter().map(|e| e.size).sum());
        for e in &rest {
            self.store(&mut writer, e, &sbom_blobs, &progress)?;
        }
        let done = writer
            .finish(descriptor, self)
            .map_err(|e| self.split_error(e))?;
        progress.finish();
        Ok((
            Written {
                output: done.output,
                descriptor: done.descriptor,
                bundle_json: done.bundle_json,
            },
            docs.report,
        ))
    }

    /// `e`, naming `--split` as given when the parts are the problem.
    fn split_error(&self, e: std::io::Error) -> anyhow::Error {
        match (
            e.get_ref().and_then(|e| e.downcast_ref::<TooManyParts>()),
            &self.options.split,
        ) {
            (Some(too_many), Some(split)) => {
                anyhow::anyhow!("--split {:?}: {too_many}", split.given)
            }
            _ => e.into(),
        }
    }

    /// Stores one entry: a layout file, or a blob of the plan or a
    /// generated SBOM, once it has downloaded, checking its digest on the
    /// way.
    fn store(
        &self,
        writer: &mut BundleWriter<Output>,
        entry: &ExpectedEntry,
        sbom_blobs: &BTreeMap<Digest, PlannedBlob>,
        progress: &Progress,
    ) -> Result<()> {
        let layout = match entry.path.as_str() {
            OCI_LAYOUT => Some(self.oci_layout),
            INDEX_JSON => Some(self.index_json),
            _ => None,
        };
        if let Some(bytes) = layout {
            writer.append_bytes(&entry.path, bytes, Compression::Zstd)?;
            progress.inc(bytes.len() as u64);
            return Ok(());
        }
        let digest = &entry.digest;
        let blob = self
            .plan
            .blobs
            .get(digest)
            .or_else(|| sbom_blobs.get(digest))
            .ok_or_else(|| anyhow::anyhow!("blob {digest}: neither planned nor an SBOM"))?;
        let cached = |path: &Path| self.cache_dir.is_some_and(|dir| path.starts_with(dir));
        if let (Some(p), BlobData::File { path, .. }) = (self.puller, &blob.data) {
            if cached(path) {
                p.wait_for(digest, blob.size)
                    .with_context(|| format!("{}: blob {digest}", blob.owner))?;
            }
        }
        tracing::debug!(%digest, size = blob.size, source = %blob.data, "storing blob");
        let reader = blob.data.open(blob.size)?;
        let got = writer
            .append_reader(
                &entry.path,
                blob.size,
                reader,
                Compression::Auto,
                &mut |n| progress.inc(n),
            )
            .with_context(|| format!("{}: blob {digest}", blob.owner))?;
        if got != *digest {
            // A damaged cache entry must not fail every later build.
            let evicted = match &blob.data {
                BlobData::File { path, .. } if cached(path) => std::fs::remove_file(path).is_ok(),
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
        Ok(())
    }
}

/// A planned blob's `bundle.json` entry.
fn blob_entry(digest: &Digest, blob: &PlannedBlob) -> BlobEntry {
    BlobEntry {
        digest: *digest,
        size: blob.size,
        media_type: blob.media_type.clone(),
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
    sboms: Vec<SbomEntry>,
    sbom_blobs: &[BlobEntry],
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
    // SBOMs are the last use of a blob: a plan blob keeps its media type.
    let mut all: BTreeMap<Digest, BlobEntry> =
        sbom_blobs.iter().map(|b| (b.digest, b.clone())).collect();
    all.extend(plan.blobs.iter().map(|(d, b)| (*d, blob_entry(d, b))));
    let (base_blobs, blobs): (Vec<BlobEntry>, Vec<BlobEntry>) =
        all.into_values().partition(|b| omit.contains(&b.digest));
    // Saturating: the stand-in sizes of a reserved head add up past u64.
    let total_size = blobs.iter().fold(0u64, |t, b| t.saturating_add(b.size));
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
        description: manifest
            .doc
            .description
            .as_ref()
            .map(|d| d.value.clone())
            .unwrap_or_default(),
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
