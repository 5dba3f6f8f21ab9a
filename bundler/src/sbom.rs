//! SBOMs for a build: one CycloneDX and one SPDX document per image and
//! platform, made by reading the image's layers in order (whiteouts
//! applied, nothing unpacked); the vendor's own SBOMs carried verbatim; and
//! one document per format for the whole bundle, naming every image, chart,
//! file and template with its digest and every per-image SBOM.
//!
//! Images are scanned in parallel, one thread per core, while the rest of
//! the bundle is written (format version 6 stores the SBOMs last; a
//! `--split` build scans first). A layer the scan cache
//! ([`crate::scan_cache`]) knows is not read.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Mutex;

use airgap_format::bundle_json::{SbomEntry, SbomFormat, SbomOrigin};
use airgap_format::Digest;
use airgap_sbom::document::{BundleArtifact, BundleImage, BundleSubject, ImageSubject, SbomRef};
use airgap_sbom::image::{scan_image_cached, LayerCache, LayerInput};
use airgap_sbom::layers::Compression;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::{ImageIndex, ImageManifest};

use crate::manifest::Manifest;
use crate::plan::{Plan, PlannedBlob};
use crate::sources::{BlobData, DOCKER_LIST, MAX_METADATA_BYTES, OCI_INDEX};

/// Largest vendor SBOM carried.
const MAX_VENDOR_SBOM: u64 = 64 << 20;

/// What SBOM generation added to a plan.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SbomReport {
    /// Image platforms scanned.
    pub images_scanned: usize,
    /// Packages found, over all of them.
    pub packages: usize,
    /// Vendor SBOMs carried.
    pub vendor_sboms: usize,
    /// Files or records that could not be read (they never stop a build).
    pub warnings: Vec<String>,
    /// Seconds spent.
    pub seconds: f64,
    /// What inflates gzip layers: `isal` (Intel ISA-L) or `flate2`.
    pub gzip_decoder: &'static str,
    /// Layers read (once per image platform that has them).
    pub layers_read: usize,
    /// Layers whose scan came from the scan cache instead.
    pub layers_cached: usize,
    /// The scan cache, unless `--no-scan-cache`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan_cache: Option<crate::scan_cache::ScanCacheReport>,
}

/// One platform of one image to scan.
struct Job {
    reference: String,
    name: String,
    tag: String,
    index_digest: Option<Digest>,
    manifest_digest: Digest,
    platform: String,
    layers: Vec<(Digest, String)>,
}

/// Reads a small blob of the plan (a manifest or index).
fn read_plan_blob(plan: &Plan, digest: &Digest, ready: Ready<'_>) -> Result<Vec<u8>> {
    let b = plan
        .blobs
        .get(digest)
        .ok_or_else(|| anyhow!("internal error: blob {digest} is not planned"))?;
    if b.size > MAX_METADATA_BYTES {
        bail!("{digest}: {} bytes, too large for a manifest", b.size);
    }
    ready(digest, b.size)?;
    let mut out = Vec::new();
    b.data.open(b.size)?.read_to_end(&mut out)?;
    if Digest::of(&out) != *digest {
        bail!(
            "{}: blob {digest}: content does not match its digest",
            b.owner
        );
    }
    Ok(out)
}

fn platform_of(config: &serde_json::Value) -> String {
    let s = |k: &str| config.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let (os, arch, variant) = (s("os"), s("architecture"), s("variant"));
    if variant.is_empty() {
        format!("{os}/{arch}")
    } else {
        format!("{os}/{arch}/{variant}")
    }
}

/// The platforms of every planned image, each with its layers.
fn jobs(plan: &Plan, ready: Ready<'_>) -> Result<Vec<Job>> {
    let mut out = Vec::new();
    for img in &plan.images {
        let reference = format!("{}:{}", img.name, img.tag);
        let top = &img.image.top;
        let mut manifests = Vec::new();
        let index_digest = if top.media_type == OCI_INDEX || top.media_type == DOCKER_LIST {
            let bytes = read_plan_blob(plan, &top.digest, ready)?;
            let index: ImageIndex = serde_json::from_slice(&bytes)
                .with_context(|| format!("image {reference}: index {}", top.digest))?;
            for m in index.manifests() {
                let is_attestation = m
                    .platform()
                    .as_ref()
                    .is_some_and(|p| p.os().to_string() == "unknown");
                if !is_attestation {
                    manifests.push(m.digest().to_string().parse::<Digest>()?);
                }
            }
            Some(top.digest)
        } else {
            manifests.push(top.digest);
            None
        };
        for digest in manifests {
            let bytes = read_plan_blob(plan, &digest, ready)?;
            let manifest: ImageManifest = serde_json::from_slice(&bytes)
                .with_context(|| format!("image {reference}: manifest {digest}"))?;
            let config_digest: Digest = manifest.config().digest().to_string().parse()?;
            let config: serde_json::Value =
                serde_json::from_slice(&read_plan_blob(plan, &config_digest, ready)?)
                    .with_context(|| format!("image {reference}: config {config_digest}"))?;
            let layers = manifest
                .layers()
                .iter()
                .map(|l| {
                    Ok((
                        l.digest().to_string().parse::<Digest>()?,
                        l.media_type().to_string(),
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            out.push(Job {
                reference: reference.clone(),
                name: img.name.clone(),
                tag: img.tag.clone(),
                index_digest,
                manifest_digest: digest,
                platform: platform_of(&config),
                layers,
            });
        }
    }
    Ok(out)
}

/// One job's outcome: its documents, package count and warnings.
type JobResult = Result<JobOutcome>;

/// What scanning one platform gave.
struct JobOutcome {
    docs: Vec<Doc>,
    packages: usize,
    warnings: Vec<String>,
    layers_read: usize,
    layers_cached: usize,
}

/// A generated document and its entry.
struct Doc {
    entry: SbomEntry,
    bytes: std::sync::Arc<Vec<u8>>,
}

impl Doc {
    /// The document as a blob held in memory.
    fn blob(&self) -> PlannedBlob {
        PlannedBlob {
            size: self.entry.size,
            media_type: self.entry.format.media_type().to_string(),
            data: BlobData::Memory(self.bytes.clone()),
            owner: match &self.entry.image {
                Some(i) => format!("SBOM of {i}"),
                None => "bundle SBOM".to_string(),
            },
        }
    }
}

fn doc(
    image: Option<&str>,
    platform: Option<&str>,
    format: SbomFormat,
    origin: SbomOrigin,
    bytes: Vec<u8>,
) -> Doc {
    Doc {
        entry: SbomEntry {
            image: image.map(str::to_string),
            platform: platform.map(str::to_string),
            format,
            origin,
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
        },
        bytes: std::sync::Arc::new(bytes),
    }
}

/// Blocks until a blob's bytes are available (registry layers still
/// downloading); `Ok` at once for local sources.
pub type Ready<'a> = &'a (dyn Fn(&Digest, u64) -> Result<()> + Sync);

/// A layer opened on its first read, after waiting for it to arrive, so
/// each layer is scanned as soon as it is downloaded.
struct WhenReady<'a> {
    digest: Digest,
    blob: &'a PlannedBlob,
    ready: Ready<'a>,
    inner: Option<Box<dyn Read + Send + 'a>>,
}

impl Read for WhenReady<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.inner.is_none() {
            (self.ready)(&self.digest, self.blob.size).map_err(std::io::Error::other)?;
            self.inner = Some(
                self.blob
                    .data
                    .open(self.blob.size)
                    .map_err(std::io::Error::other)?,
            );
        }
        self.inner.as_mut().expect("opened").read(buf)
    }
}

/// Scans one platform of an image (taking what `cache` holds for a layer
/// instead of reading it) and writes its two documents.
fn scan_job(
    plan: &Plan,
    job: &Job,
    created: &str,
    ready: Ready<'_>,
    cache: Option<&dyn LayerCache>,
) -> JobResult {
    let mut inputs = Vec::new();
    for (digest, media_type) in &job.layers {
        let b: &PlannedBlob = plan
            .blobs
            .get(digest)
            .ok_or_else(|| anyhow!("internal error: layer {digest} is not planned"))?;
        let mut reader: Box<dyn Read + Send + '_> = Box::new(WhenReady {
            digest: *digest,
            blob: b,
            ready,
            inner: None,
        });
        let compression = match Compression::from_media_type(media_type) {
            Some(c) => c,
            None => {
                // Unknown media type: look at the first bytes.
                let mut head = [0u8; 4];
                let n = reader.read(&mut head)?;
                let c = Compression::sniff(&head[..n]);
                reader = Box::new(std::io::Cursor::new(head[..n].to_vec()).chain(reader));
                c
            }
        };
        inputs.push(LayerInput {
            digest: digest.to_string(),
            compression,
            reader,
        });
    }
    let scan = match scan_image_cached(inputs, cache) {
        Ok(s) => s,
        Err(e) => {
            // A damaged blob is the likeliest cause: name it the way the
            // writer would.
            for (digest, _) in &job.layers {
                let b = &plan.blobs[digest];
                let (got, _) = airgap_format::digest::hash_reader(b.data.open(b.size)?)?;
                if got != *digest {
                    bail!(
                        "{}: blob {digest}: content does not match its digest (found {got})",
                        b.owner
                    );
                }
            }
            let layer = job
                .layers
                .get(e.layer)
                .map(|(d, _)| d.to_string())
                .unwrap_or_else(|| format!("{}", e.layer));
            bail!(
                "image {} ({}): layer {layer}: {}",
                job.reference,
                job.platform,
                e.message
            );
        }
    };
    let subject = ImageSubject {
        reference: job.reference.clone(),
        name: job.name.clone(),
        tag: job.tag.clone(),
        manifest_digest: job.manifest_digest.to_string(),
        index_digest: job.index_digest.map(|d| d.to_string()),
        platform: job.platform.clone(),
        layers: job.layers.iter().map(|(d, _)| d.to_string()).collect(),
    };
    let version = env!("CARGO_PKG_VERSION");
    let warnings = scan
        .warnings
        .iter()
        .map(|w| format!("image {} ({}): {w}", job.reference, job.platform))
        .collect();
    let docs = vec![
        doc(
            Some(&job.reference),
            Some(&job.platform),
            SbomFormat::Cyclonedx,
            SbomOrigin::Generated,
            airgap_sbom::cyclonedx::image_sbom(&subject, &scan, created, version),
        ),
        doc(
            Some(&job.reference),
            Some(&job.platform),
            SbomFormat::Spdx,
            SbomOrigin::Generated,
            airgap_sbom::spdx::image_sbom(&subject, &scan, created, version),
        ),
    ];
    Ok(JobOutcome {
        docs,
        packages: scan.packages.len(),
        warnings,
        layers_read: scan.layers_read,
        layers_cached: scan.layers_cached,
    })
}

/// Reads a vendor SBOM and checks it is the format it claims.
fn vendor_doc(manifest: &Manifest, image: &str, spec: &crate::manifest::SbomSpec) -> Result<Doc> {
    let path = manifest.resolve(&spec.source.value);
    let f = airgap_format::regular_file::open_regular(&path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_VENDOR_SBOM + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_VENDOR_SBOM {
        bail!("{}: larger than {MAX_VENDOR_SBOM} bytes", path.display());
    }
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).with_context(|| format!("{}: not JSON", path.display()))?;
    let ok = match spec.format {
        SbomFormat::Cyclonedx => v.get("bomFormat").and_then(|f| f.as_str()) == Some("CycloneDX"),
        SbomFormat::Spdx => v
            .get("spdxVersion")
            .and_then(|f| f.as_str())
            .is_some_and(|s| s.starts_with("SPDX-")),
    };
    if !ok {
        bail!(
            "{}: not a {} JSON document",
            path.display(),
            spec.format.as_str()
        );
    }
    Ok(doc(
        Some(image),
        spec.platform.as_ref().map(|p| p.value.as_str()),
        spec.format,
        SbomOrigin::Vendor,
        bytes,
    ))
}

/// SBOM work known before any layer is read: the image platforms to scan
/// and the vendor's documents, read and checked.
pub struct Prepared {
    jobs: Vec<Job>,
    vendor: Vec<Doc>,
    vendor_only: bool,
    started: std::time::Instant,
}

/// Plans SBOM generation: lists the platforms to scan (reading manifests
/// and configs) and reads the vendor SBOMs. With `vendor_only`
/// (`--skip-sbom`) nothing is scanned and only vendor SBOMs are carried.
pub fn prepare(
    manifest: &Manifest,
    plan: &Plan,
    vendor_only: bool,
    ready: Ready<'_>,
) -> Result<Prepared> {
    let started = std::time::Instant::now();
    let jobs = if vendor_only {
        Vec::new()
    } else {
        jobs(plan, ready)?
    };
    let mut vendor = Vec::new();
    for (i, spec) in manifest.doc.images.iter().enumerate() {
        let Some(specs) = &spec.sboms else { continue };
        // The image's published reference(s): every image this entry gave.
        let refs: Vec<String> = plan
            .images
            .iter()
            .filter(|p| p.spec_index == i)
            .map(|p| format!("{}:{}", p.name, p.tag))
            .collect();
        for v in specs {
            if let Some(p) = &v.platform {
                let known = plan
                    .images
                    .iter()
                    .filter(|x| x.spec_index == i)
                    .any(|x| x.image.platforms.iter().any(|q| q == &p.value));
                if !known {
                    return Err(manifest
                        .error_at(
                            p,
                            format!(
                                "images[{i}].sboms: platform {} is not a platform of the image",
                                p.value
                            ),
                        )
                        .into());
                }
            }
            for r in &refs {
                // A platform split (`TAG-os-arch`) gets the vendor SBOM
                // only on the image of that platform.
                if let Some(p) = &v.platform {
                    let has = plan.images.iter().any(|x| {
                        x.spec_index == i
                            && &format!("{}:{}", x.name, x.tag) == r
                            && x.image.platforms.iter().any(|q| q == &p.value)
                    });
                    if !has {
                        continue;
                    }
                }
                let d = vendor_doc(manifest, r, v).map_err(|e| {
                    manifest.error_at(&v.source, format!("images[{i}].sboms: {e:#}"))
                })?;
                vendor.push(d);
            }
        }
    }
    Ok(Prepared {
        jobs,
        vendor,
        vendor_only,
        started,
    })
}

impl Prepared {
    /// Whether any image layer is to be scanned.
    pub fn scans(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// The `bundle.json` entries of the documents [`Prepared::generate`]
    /// will add, each with a stand-in digest (distinct, not a real one) and
    /// the largest possible size: the most room they can take in
    /// `bundle.json`, for a writer that reserves it before generating them.
    pub fn placeholders(&self) -> Vec<SbomEntry> {
        if self.vendor_only {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut add = |image: Option<&str>, platform: Option<&str>| {
            for format in [SbomFormat::Cyclonedx, SbomFormat::Spdx] {
                out.push(SbomEntry {
                    image: image.map(str::to_string),
                    platform: platform.map(str::to_string),
                    format,
                    origin: SbomOrigin::Generated,
                    digest: Digest::of(format!("placeholder {}", out.len()).as_bytes()),
                    size: airgap_format::writer::UNKNOWN_SIZE,
                });
            }
        };
        for job in &self.jobs {
            add(Some(&job.reference), Some(&job.platform));
        }
        add(None, None);
        out
    }

    /// The vendor SBOMs: their entries and blobs, known before any scan.
    pub fn vendor_blobs(&self) -> Vec<(SbomEntry, PlannedBlob)> {
        self.vendor
            .iter()
            .map(|d| (d.entry.clone(), d.blob()))
            .collect()
    }

    /// Scans every platform (one thread per core) and writes the per-image
    /// documents, then the bundle-level ones. Reads the plan only: the
    /// documents come back as [`Documents`], for [`Documents::add_to`] or a
    /// writer that stores them itself.
    pub fn generate(
        self,
        plan: &Plan,
        created: &str,
        bundle_name: &str,
        bundle_version: &str,
        ready: Ready<'_>,
        cache: Option<&crate::scan_cache::ScanCache>,
    ) -> Result<Documents> {
        let Prepared {
            jobs,
            vendor,
            vendor_only,
            started,
        } = self;
        let mut report = SbomReport {
            vendor_sboms: vendor.len(),
            gzip_decoder: airgap_sbom::gunzip::NAME,
            ..SbomReport::default()
        };
        let results: Mutex<BTreeMap<usize, JobResult>> = Mutex::new(BTreeMap::new());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .min(jobs.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { return };
                    let r = scan_job(plan, job, created, ready, cache.map(|c| c as _));
                    results.lock().expect("lock").insert(i, r);
                });
            }
        });
        let mut docs = Vec::new();
        for (_, r) in results.into_inner().expect("lock") {
            let r = r?;
            report.images_scanned += 1;
            report.packages += r.packages;
            report.warnings.extend(r.warnings);
            report.layers_read += r.layers_read;
            report.layers_cached += r.layers_cached;
            docs.extend(r.docs);
        }
        report.scan_cache = cache.map(|c| crate::scan_cache::ScanCacheReport {
            dir: c.dir().to_path_buf(),
            stored: 0,
        });
        docs.extend(vendor);
        if !vendor_only {
            let [cyclonedx, spdx] = bundle_docs(plan, &docs, created, bundle_name, bundle_version);
            docs.push(cyclonedx);
            docs.push(spdx);
        }
        Ok(Documents::new(docs, report, started))
    }
}

/// The bundle-level CycloneDX and SPDX documents: every image, chart, file
/// and template of the plan, and every per-image document in `docs`.
fn bundle_docs(
    plan: &Plan,
    docs: &[Doc],
    created: &str,
    bundle_name: &str,
    bundle_version: &str,
) -> [Doc; 2] {
    let subject = BundleSubject {
        name: bundle_name.to_string(),
        version: bundle_version.to_string(),
        created: created.to_string(),
        images: plan
            .images
            .iter()
            .map(|p| BundleImage {
                reference: format!("{}:{}", p.name, p.tag),
                name: p.name.clone(),
                tag: p.tag.clone(),
                digest: p.image.top.digest.to_string(),
                media_type: p.image.top.media_type.clone(),
                platforms: p.image.platforms.clone(),
            })
            .collect(),
        charts: plan
            .charts
            .iter()
            .map(|c| BundleArtifact {
                name: c.name.clone(),
                version: Some(c.version.clone()),
                digest: c.digest.to_string(),
                size: c.size,
            })
            .collect(),
        files: plan
            .files
            .iter()
            .map(|f| BundleArtifact {
                name: f.name.clone(),
                version: None,
                digest: f.digest.to_string(),
                size: f.size,
            })
            .collect(),
        templates: plan
            .templates
            .iter()
            .map(|t| BundleArtifact {
                name: t.name.clone(),
                version: None,
                digest: t.digest.to_string(),
                size: t.size,
            })
            .collect(),
        image_sboms: docs
            .iter()
            .map(|d| {
                let format = match d.entry.format {
                    SbomFormat::Cyclonedx => airgap_sbom::document::SbomFormat::CycloneDx,
                    SbomFormat::Spdx => airgap_sbom::document::SbomFormat::Spdx,
                };
                SbomRef {
                    image_reference: d.entry.image.clone().unwrap_or_default(),
                    platform: d.entry.platform.clone(),
                    format,
                    digest: d.entry.digest.to_string(),
                    vendor: d.entry.origin == SbomOrigin::Vendor,
                    document_id: airgap_sbom::document::document_id(format, &d.bytes),
                }
            })
            .collect(),
    };
    let version = env!("CARGO_PKG_VERSION");
    [
        doc(
            None,
            None,
            SbomFormat::Cyclonedx,
            SbomOrigin::Generated,
            airgap_sbom::cyclonedx::bundle_sbom(&subject, version),
        ),
        doc(
            None,
            None,
            SbomFormat::Spdx,
            SbomOrigin::Generated,
            airgap_sbom::spdx::bundle_sbom(&subject, version),
        ),
    ]
}

/// Generated and vendor SBOM documents, ready to be stored.
pub struct Documents {
    docs: Vec<Doc>,
    /// What generation did.
    pub report: SbomReport,
}

impl Documents {
    fn new(docs: Vec<Doc>, mut report: SbomReport, started: std::time::Instant) -> Self {
        report.seconds = started.elapsed().as_secs_f64();
        for w in &report.warnings {
            tracing::warn!("SBOM: {w}");
        }
        Documents { docs, report }
    }

    /// Their `bundle.json` entries, sorted, without duplicates.
    pub fn entries(&self) -> Vec<SbomEntry> {
        let mut entries: Vec<SbomEntry> = self.docs.iter().map(|d| d.entry.clone()).collect();
        entries.sort();
        entries.dedup();
        entries
    }

    /// Every document as a blob to store (one per distinct digest).
    pub fn blobs(&self) -> BTreeMap<Digest, PlannedBlob> {
        self.docs
            .iter()
            .map(|d| (d.entry.digest, d.blob()))
            .collect()
    }
}
