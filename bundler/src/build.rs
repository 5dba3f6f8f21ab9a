//! Writes a bundle: `bundle.json` and its signature first, then the OCI
//! layout files, then every blob, into a temp file renamed into place only
//! when complete.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use std::collections::{BTreeMap, BTreeSet};

use airgap_cli::progress::Progress;
use airgap_format::bundle_json::{
    is_sbom_media_type, BaseEntry, BlobEntry, BundleDescriptor, ImageEntry, LayoutEntry, PartEntry,
    SbomEntry, SplitEntry, BUNDLE_JSON, BUNDLE_SEAL, BUNDLE_SEAL_SIG, BUNDLE_SIG,
    DELTA_FORMAT_VERSION, INDEX_JSON, LICENSE_FORMAT_VERSION, MAX_PARTS, MIN_FORMAT_VERSION,
    MIN_PART_SIZE, OCI_LAYOUT, REF_NAME_ANNOTATION, SBOMS_FORMAT_VERSION,
    SBOMS_LAST_FORMAT_VERSION, TEMPLATES_FORMAT_VERSION,
};
use airgap_format::canonical_json::to_canonical_vec;
use airgap_format::writer::{entry_size_bound, stored_entry_data};
use airgap_format::{ArchiveWriter, Compression, Digest, WriterOptions};
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
            if prepared.scans() && options.split.is_none() {
                // SBOM blobs go last (format version 6): the scan runs
                // while everything else is written.
                let vendor = prepared.vendor_blobs();
                let placeholders = prepared.placeholders();
                let vendor_digests: Vec<Digest> = vendor.iter().map(|(e, _)| e.digest).collect();
                let omit = omit(&vendor_digests);
                let scan = s.spawn(|| {
                    prepared.generate(
                        &plan,
                        &created,
                        &manifest.doc.name.value,
                        &manifest.doc.version.value,
                        &ready,
                        scan_cache.as_ref(),
                    )
                });
                ctx.write_sboms_last(scan, placeholders, vendor, &omit)
            } else {
                let docs = prepared.generate(
                    &plan,
                    &created,
                    &manifest.doc.name.value,
                    &manifest.doc.version.value,
                    &ready,
                    scan_cache.as_ref(),
                )?;
                let sbom_digests: Vec<Digest> = docs.blobs().into_keys().collect();
                let omit = omit(&sbom_digests);
                ctx.write_in_order(docs, &omit)
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

type Writer = ArchiveWriter<BufWriter<Output>>;

/// Where `bundle.json` and its signature end in the output.
struct HeadEnds {
    json: u64,
    sig: u64,
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

    fn sign(&self, bundle_json: &[u8]) -> String {
        self.key
            .sign(bundle_json, &self.trusted_comment)
            .to_minisign_text()
    }

    /// Creates the output and writes the head (as zstd frames, or as
    /// stored frames when it is to be patched later) and the layout files.
    fn start(
        &self,
        output: Output,
        bundle_json: &[u8],
        signature: &str,
        patchable: bool,
    ) -> Result<(Writer, HeadEnds)> {
        let writer_options = WriterOptions {
            level: self.options.level,
            mtime: self.mtime,
        };
        let mut writer =
            ArchiveWriter::new(BufWriter::with_capacity(1 << 20, output), writer_options)?;
        let head_mode = if patchable {
            Compression::Stored
        } else {
            Compression::Zstd
        };
        writer.append_bytes(BUNDLE_JSON, bundle_json, head_mode)?;
        let json = writer.compressed_len();
        writer.append_bytes(BUNDLE_SIG, signature.as_bytes(), head_mode)?;
        let sig = writer.compressed_len();
        writer.get_mut().flush()?;
        writer.get_mut().get_mut().body_starts();
        writer.append_bytes(OCI_LAYOUT, self.oci_layout, Compression::Zstd)?;
        writer.append_bytes(INDEX_JSON, self.index_json, Compression::Zstd)?;
        Ok((writer, HeadEnds { json, sig }))
    }

    /// The blob to store for `digest`: the plan's, or a generated SBOM's.
    fn planned<'b>(
        &'b self,
        digest: &Digest,
        sbom_blobs: &'b BTreeMap<Digest, PlannedBlob>,
    ) -> Result<&'b PlannedBlob> {
        self.plan
            .blobs
            .get(digest)
            .or_else(|| sbom_blobs.get(digest))
            .ok_or_else(|| anyhow::anyhow!("internal error: blob {digest} is not planned"))
    }

    /// Stores one blob, once it has downloaded, checking its digest on the way.
    fn store(
        &self,
        writer: &mut Writer,
        digest: &Digest,
        blob: &PlannedBlob,
        progress: &Progress,
    ) -> Result<()> {
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
                &digest.blob_path(),
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

    /// Writes the tail (seal, its signature and the seek table).
    fn finish(&self, mut writer: Writer, bundle_json: &[u8]) -> Result<Output> {
        let (seal, seal_sig) =
            crate::sign::seal(self.key, bundle_json, writer.seal(), &self.trusted_comment)?;
        writer.append_stored(BUNDLE_SEAL, &seal)?;
        writer.append_stored(BUNDLE_SEAL_SIG, seal_sig.as_bytes())?;
        let buffered = writer.finish().context("writing the seek table")?;
        buffered
            .into_inner()
            .map_err(|e| anyhow::anyhow!("writing the bundle: {}", e.error()))
    }

    /// Rewrites the head in place with the final `bundle.json` (padded to
    /// `len`) and its signature, which must have kept their lengths.
    fn patch_head(
        &self,
        writer: &mut Writer,
        ends: &HeadEnds,
        descriptor: &BundleDescriptor,
        len: usize,
        placeholder_signature: &str,
    ) -> Result<Vec<u8>> {
        descriptor
            .validate()
            .context("internal error: the bundle description is inconsistent")?;
        let mut bundle_json = descriptor.to_canonical_bytes()?;
        if bundle_json.len() > len {
            bail!("internal error: bundle.json outgrew its reserved space");
        }
        bundle_json.resize(len, b' ');
        let signature = self.sign(&bundle_json);
        if signature.len() != placeholder_signature.len() {
            bail!("internal error: the signature changed length");
        }
        let json_frames = stored_entry_data(&bundle_json);
        let sig_frames = stored_entry_data(signature.as_bytes());
        let output = writer.get_mut().get_mut();
        output.patch(ends.json - json_frames.len() as u64, &json_frames)?;
        output.patch(ends.sig - sig_frames.len() as u64, &sig_frames)?;
        Ok(bundle_json)
    }

    /// Every blob in the canonical order, `bundle.json` known up front
    /// (SBOMs already generated). A split bundle's head is reserved and
    /// patched once the parts' digests are known.
    fn write_in_order(
        &self,
        docs: crate::sbom::Documents,
        omit: &BTreeSet<Digest>,
    ) -> Result<(Written, crate::sbom::SbomReport)> {
        let sbom_blobs = docs.blobs();
        let entries: Vec<BlobEntry> = sbom_blobs.iter().map(|(d, b)| blob_entry(d, b)).collect();
        let mut descriptor = self.describe(docs.entries(), &entries, omit)?;
        let head_len = match &self.options.split {
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
        let signature = self.sign(&bundle_json);
        let output = match &self.options.split {
            Some(part_size) => Output::create_split(self.out, part_size.bytes)?,
            None => Output::create(self.out)?,
        };
        // Every entry after the signature: the blobs, and `oci-layout` and
        // `index.json`, which `totalSize` does not count.
        let progress = Progress::bytes(
            descriptor
                .expected_entries()
                .iter()
                .skip(2)
                .map(|e| e.size)
                .sum(),
            "build",
            self.options.progress,
        );
        let (mut writer, ends) =
            self.start(output, &bundle_json, &signature, head_len.is_some())?;
        tracing::debug!(blobs = descriptor.blobs.len(), bytes = descriptor.total_size, left_to_base = omit.len(), out = %self.out.display(), "writing bundle");
        for e in descriptor.expected_entries().iter().skip(2) {
            let blob = self.planned(&e.digest, &sbom_blobs)?;
            self.store(&mut writer, &e.digest, blob, &progress)?;
        }
        writer.get_mut().flush()?;
        writer.get_mut().get_mut().body_ends();
        if let (Some(part_size), Some(len)) =
            (self.options.split.as_ref().map(|p| p.bytes), head_len)
        {
            // The whole size is known now: the tail's length does not
            // depend on the digests it will hold.
            let (dummy_seal, dummy_sig) =
                crate::sign::seal(self.key, &bundle_json, writer.seal(), &self.trusted_comment)?;
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
            bundle_json = self.patch_head(&mut writer, &ends, &descriptor, len, &signature)?;
        }
        let output = self.finish(writer, &bundle_json)?;
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
        Ok((
            Written {
                output,
                descriptor,
                bundle_json,
            },
            docs.report,
        ))
    }

    /// Format version 6: `bundle.json` is written with room for the SBOM
    /// entries still being generated, then every blob but the SBOMs while
    /// the scan runs, then the SBOMs, and the head is patched in place.
    fn write_sboms_last(
        &self,
        scan: std::thread::ScopedJoinHandle<'_, Result<crate::sbom::Documents>>,
        placeholders: Vec<SbomEntry>,
        vendor: Vec<(SbomEntry, PlannedBlob)>,
        omit: &BTreeSet<Digest>,
    ) -> Result<(Written, crate::sbom::SbomReport)> {
        // bundle.json at its largest: the documents to come as stand-ins
        // of the largest size.
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
        let mut reserved = self.describe(sboms, &blobs, omit)?;
        reserved.format_version = reserved.format_version.max(SBOMS_LAST_FORMAT_VERSION);
        reserved.total_size = u64::MAX;
        let placeholder_json = reserved.to_canonical_bytes()?;
        let len = placeholder_json.len();
        let placeholder_signature = self.sign(&placeholder_json);
        let first: Vec<(Digest, &PlannedBlob)> = reserved
            .blobs
            .iter()
            .filter(|b| !is_sbom_media_type(&b.media_type))
            .map(|b| {
                self.plan
                    .blobs
                    .get(&b.digest)
                    .map(|p| (b.digest, p))
                    .ok_or_else(|| {
                        anyhow::anyhow!("internal error: blob {} is not planned", b.digest)
                    })
            })
            .collect::<Result<_>>()?;
        let progress = Progress::bytes(
            first.iter().map(|(_, b)| b.size).sum(),
            "build",
            self.options.progress,
        );
        let output = Output::create(self.out)?;
        let (mut writer, ends) =
            self.start(output, &placeholder_json, &placeholder_signature, true)?;
        tracing::debug!(blobs = first.len(), out = %self.out.display(), "writing bundle while SBOMs are generated");
        for (digest, blob) in &first {
            self.store(&mut writer, digest, blob, &progress)?;
        }
        let docs = scan
            .join()
            .map_err(|_| anyhow::anyhow!("internal error: the SBOM thread panicked"))??;
        let sbom_blobs = docs.blobs();
        if let Some(d) = sbom_blobs.keys().find(|d| omit.contains(d)) {
            bail!("internal error: SBOM {d} is also a blob this delta leaves to its base");
        }
        let entries: Vec<BlobEntry> = sbom_blobs.iter().map(|(d, b)| blob_entry(d, b)).collect();
        let mut descriptor = self.describe(docs.entries(), &entries, omit)?;
        descriptor.format_version = descriptor.format_version.max(SBOMS_LAST_FORMAT_VERSION);
        let expected = descriptor.expected_entries();
        let stored: Vec<Digest> = first.iter().map(|(d, _)| *d).collect();
        let rest = expected
            .get(2 + stored.len()..)
            .filter(|_| {
                expected[2..2 + stored.len()]
                    .iter()
                    .map(|e| e.digest)
                    .eq(stored.iter().copied())
            })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "internal error: an SBOM is also a blob stored earlier in the order"
                )
            })?;
        // The SBOMs (and what follows them) were not known when the bar
        // began.
        progress.grow(rest.iter().map(|e| e.size).sum());
        for e in rest {
            let blob = self.planned(&e.digest, &sbom_blobs)?;
            self.store(&mut writer, &e.digest, blob, &progress)?;
        }
        writer.get_mut().flush()?;
        writer.get_mut().get_mut().body_ends();
        let bundle_json =
            self.patch_head(&mut writer, &ends, &descriptor, len, &placeholder_signature)?;
        let output = self.finish(writer, &bundle_json)?;
        progress.finish();
        Ok((
            Written {
                output,
                descriptor,
                bundle_json,
            },
            docs.report,
        ))
    }
}
/// Fills `descriptor.split` with placeholders for as many parts as the
/// bundle could possibly need, each at its largest, and returns the length
/// of that `bundle.json`: the space the head reserves. The real part list
/// is never longer.
fn reserve_head(
    descriptor: &mut BundleDescriptor,
    size: &crate::output::PartSize,
) -> Result<usize> {
    let part_size = size.bytes;
    if part_size < MIN_PART_SIZE {
        bail!(
            "--split {:?}: parts must be at least {MIN_PART_SIZE} bytes",
            size.given
        );
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
                "--split {:?}: the bundle could need up to {needed} parts of {part_size} bytes, more than the {MAX_PARTS} allowed; give a larger size",
                size.given
            );
        }
        parts = needed;
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
