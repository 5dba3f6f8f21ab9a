//! `push`: puts every image of a verified bundle into the site's registry,
//! streaming blobs straight out of the archive. Blobs first (several at
//! once), then manifests children before their index, then tags, so no tag
//! ever points at missing content, even if the run is killed. A second run
//! skips whatever is already there.

use airgap_format::bundle_json::{is_valid_repository, is_valid_tag};
use airgap_format::display::quote;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use airgap_cli::progress::{Progress, ProgressGroup};
use airgap_format::bundle_json::{BundleDescriptor, ImageEntry};
use airgap_format::reader::ArchiveReader;
use airgap_format::tar_entry::EntryHeader;
use airgap_format::verify::verify_head;
use airgap_format::{Digest, Limits, PublicKey};
use anyhow::{anyhow, bail, Context, Result};

use crate::relocation::{RelocatedImage, RelocationMap};
use crate::target::Target;
use airgap_registry::client::{
    backoff, has_error_code, is_transient, one_line, read_small, retry_after, Client, Transport,
    ATTEMPTS,
};
use airgap_registry::Credentials;

/// Blobs up to this size go in one PUT; larger ones in chunks.
pub const MONOLITHIC_MAX: u64 = 32 << 20;
/// Size of one chunk of a chunked upload.
pub const CHUNK: u64 = 16 << 20;
/// Largest manifest or index read from the bundle.
pub(crate) const MAX_MANIFEST: u64 = 16 << 20;
/// Every manifest media type asked for when checking a tag.
pub(crate) const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// What to do when a tag already points at another image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnExistingTag {
    /// Leave the tag; push the image by digest only.
    Skip,
    /// Move the tag to the bundle's image.
    Overwrite,
    /// Stop before pushing anything.
    Fail,
}

/// Push settings.
pub struct PushOptions {
    /// Where to push.
    pub target: Target,
    /// TLS settings.
    pub transport: Transport,
    /// Credentials, if any.
    pub credentials: Option<Credentials>,
    /// Blobs uploaded at once.
    pub jobs: usize,
    /// Tag policy.
    pub on_existing_tag: OnExistingTag,
    /// Draw a progress bar (when stderr is a terminal).
    pub progress: bool,
    /// For a delta bundle: the base bundle that holds the blobs it leaves
    /// out (not needed for those already in the registry).
    pub base: Option<std::path::PathBuf>,
    /// Images and charts already in the target registry (from the install
    /// records): where a needed blob may be mounted from.
    pub known: Vec<crate::survey::KnownImage>,
}

/// What a push did.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushReport {
    /// Where each image is now.
    pub relocation: RelocationMap,
    /// Blobs uploaded.
    pub blobs_uploaded: u64,
    /// Blobs mounted from another repository.
    pub blobs_mounted: u64,
    /// Blobs already present.
    pub blobs_present: u64,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
}

/// One image's (or chart's) content, read from the bundle.
pub(crate) struct ImagePlan {
    /// True for a Helm chart pushed as an OCI artifact.
    pub chart: bool,
    pub entry: ImageEntry,
    pub repository: String,
    /// Manifests in push order: children before the index that lists them.
    pub manifests: Vec<(Digest, String, Vec<u8>)>,
    /// Config and layer blobs.
    pub blobs: Vec<Digest>,
}

/// Pushes the bundle at `path` after checking its signature against `trusted`.
pub fn push(path: &Path, trusted: &[PublicKey], options: &PushOptions) -> Result<PushReport> {
    let prepared = prepare(path, trusted, options)?;
    let Prepared {
        head,
        entries,
        base,
        plans,
        client,
    } = &prepared;
    let d = &head.descriptor;
    let reader = &head.reader;
    // Where tags stand and what the registry has: nothing is written before
    // this passes, nor when a delta's left-out blobs are nowhere.
    let survey = crate::survey::survey(&prepared, options)?;
    survey.require_complete(d, &options.target.host)?;
    let statuses = &survey.statuses;
    let total: u64 = survey.blobs.iter().map(|b| b.size).sum();
    // One bar per image (a shared blob counts for the first image that needs
    // it) and one for the whole push.
    let group = ProgressGroup::new(options.progress);
    let mut first_owner: HashMap<Digest, usize> = HashMap::new();
    let mut owned = vec![0u64; plans.len()];
    for (i, (p, status)) in plans.iter().zip(statuses).enumerate() {
        if *status == "unchanged" {
            continue;
        }
        for b in &p.blobs {
            if let std::collections::hash_map::Entry::Vacant(v) = first_owner.entry(*b) {
                v.insert(i);
                owned[i] += d.any_blob(b).map(|e| e.size).unwrap_or(0);
            }
        }
    }
    let bars: Vec<Progress> = plans
        .iter()
        .zip(&owned)
        .map(|(p, total)| group.add(*total, &p.entry.reference))
        .collect();
    let overall = group.add(total, "total");
    let counters = Counters::default();
    counters.present.store(survey.present, Ordering::Relaxed);
    let next = Mutex::new(survey.blobs.iter());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| loop {
                if failure.lock().expect("lock").is_some() {
                    return;
                }
                let Some(work) = next.lock().expect("lock").next() else {
                    return;
                };
                let bar = first_owner.get(&work.digest).map(|i| &bars[*i]);
                let tick = |n: u64| {
                    overall.inc(n);
                    if let Some(b) = bar {
                        b.inc(n);
                    }
                };
                let path = work.digest.blob_path();
                let source = match entries.get(&path) {
                    Some(e) => Some((reader, e)),
                    None => base
                        .as_ref()
                        .and_then(|b| b.entries.get(&path).map(|e| (&b.head.reader, e))),
                };
                if let Err(e) = push_blob(client, source, work, &counters, &tick) {
                    failure.lock().expect("lock").get_or_insert(e);
                    return;
                }
            });
        }
    });
    for b in bars.iter().chain(std::iter::once(&overall)) {
        b.finish();
    }
    if let Some(e) = failure.into_inner().expect("lock") {
        return Err(e);
    }

    // Manifests, children first, then tags.
    let mut images = Vec::new();
    let mut charts = Vec::new();
    for (p, status) in plans.iter().zip(statuses) {
        if *status != "unchanged" {
            for (digest, media_type, bytes) in &p.manifests {
                put_manifest(
                    client,
                    &p.repository,
                    &digest.to_string(),
                    media_type,
                    bytes,
                    digest,
                )
                .with_context(|| format!("image {}", p.entry.reference))?;
            }
            if *status == "pushed" {
                let (digest, media_type, bytes) = p.manifests.last().expect("top manifest");
                put_manifest(
                    client,
                    &p.repository,
                    &p.entry.tag,
                    media_type,
                    bytes,
                    digest,
                )
                .with_context(|| format!("image {}: tag {}", p.entry.reference, p.entry.tag))?;
            }
        }
        let list = if p.chart { &mut charts } else { &mut images };
        list.push(RelocatedImage::at(
            &options.target,
            &p.entry.name,
            &p.entry.tag,
            &p.entry.digest.to_string(),
            status,
        ));
    }
    Ok(PushReport {
        relocation: RelocationMap {
            registry: options.target.host.clone(),
            prefix: options.target.prefix.clone(),
            bundle: d.name.clone(),
            version: d.version.clone(),
            bundle_digest: head.bundle_digest.to_string(),
            images,
            charts,
        },
        blobs_uploaded: counters.uploaded.load(Ordering::Relaxed),
        blobs_mounted: counters.mounted.load(Ordering::Relaxed),
        blobs_present: counters.present.load(Ordering::Relaxed),
        bytes_uploaded: counters.bytes.load(Ordering::Relaxed),
    })
}

#[derive(Default)]
struct Counters {
    uploaded: AtomicU64,
    mounted: AtomicU64,
    present: AtomicU64,
    bytes: AtomicU64,
}

/// Reads a manifest or index from the archive, checking it against its digest.
fn read_manifest(
    reader: &ArchiveReader,
    d: &BundleDescriptor,
    entries: &HashMap<String, EntryHeader>,
    digest: &Digest,
) -> Result<Vec<u8>> {
    Ok(airgap_format::verify::read_signed_blob(
        reader,
        d,
        entries,
        digest,
        MAX_MANIFEST,
        "manifest",
    )?)
}

/// Every blob of an image (manifests, configs, layers), read from the
/// bundle's signed manifests.
pub fn image_blob_digests(
    reader: &ArchiveReader,
    d: &BundleDescriptor,
    entries: &HashMap<String, EntryHeader>,
    img: &ImageEntry,
) -> Result<Vec<Digest>> {
    let target = Target::parse("localhost")?;
    let plan = plan_image(reader, d, entries, img, &target)?;
    let mut all: Vec<Digest> = plan.manifests.iter().map(|(dg, _, _)| *dg).collect();
    all.extend(plan.blobs);
    Ok(all)
}

fn plan_image(
    reader: &ArchiveReader,
    d: &BundleDescriptor,
    entries: &HashMap<String, EntryHeader>,
    img: &ImageEntry,
    target: &Target,
) -> Result<ImagePlan> {
    let ctx = || format!("image {}", img.reference);
    let top = read_manifest(reader, d, entries, &img.digest).with_context(ctx)?;
    let json: serde_json::Value = serde_json::from_slice(&top).with_context(ctx)?;
    let mut manifests = Vec::new();
    let mut blobs = Vec::new();
    let descriptors = |v: &serde_json::Value, key: &str| -> Result<Vec<(Digest, String)>> {
        let list: Vec<&serde_json::Value> = match v.get(key) {
            Some(serde_json::Value::Array(a)) => a.iter().collect(),
            Some(serde_json::Value::Object(_)) => vec![&v[key]],
            _ => Vec::new(),
        };
        list.into_iter()
            .map(|x| {
                let digest: Digest = x
                    .get("digest")
                    .and_then(|g| g.as_str())
                    .unwrap_or_default()
                    .parse()
                    .map_err(|e| anyhow!("{e}"))?;
                let mt = x
                    .get("mediaType")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
                    .to_string();
                Ok((digest, mt))
            })
            .collect()
    };
    if json.get("manifests").is_some() {
        for (child, mt) in descriptors(&json, "manifests").with_context(ctx)? {
            let bytes = read_manifest(reader, d, entries, &child).with_context(ctx)?;
            let cj: serde_json::Value = serde_json::from_slice(&bytes).with_context(ctx)?;
            for (b, _) in descriptors(&cj, "config")?
                .into_iter()
                .chain(descriptors(&cj, "layers")?)
            {
                if !blobs.contains(&b) {
                    blobs.push(b);
                }
            }
            manifests.push((child, mt, bytes));
        }
    } else {
        for (b, _) in descriptors(&json, "config")?
            .into_iter()
            .chain(descriptors(&json, "layers")?)
        {
            if !blobs.contains(&b) {
                blobs.push(b);
            }
        }
    }
    manifests.push((img.digest, img.media_type.clone(), top));
    for b in &blobs {
        if d.any_blob(b).is_none() {
            return Err(anyhow!("blob {b} is not listed in bundle.json")).with_context(ctx);
        }
    }
    Ok(ImagePlan {
        chart: false,
        entry: img.clone(),
        repository: target.repository(&img.name),
        manifests,
        blobs,
    })
}

pub(crate) fn scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// The digest a tag points at, if it exists (asked with push's scope, so
/// the push's token serves).
pub(crate) fn tag_digest(client: &Client, repo: &str, tag: &str) -> Result<Option<Digest>> {
    manifest_digest(client, repo, tag, &scope(repo))
}

/// The digest of the manifest `reference` (a tag or a digest) in `repo`,
/// from a HEAD request with `scope`; `None` when the registry has none.
pub fn manifest_digest(
    client: &Client,
    repo: &str,
    reference: &str,
    scope: &str,
) -> Result<Option<Digest>> {
    let url = client.url(&format!("/v2/{repo}/manifests/{reference}"));
    let resp = client.send("HEAD", &url, scope, &[("Accept", ACCEPT.to_string())], None)?;
    let at = if reference.starts_with("sha256:") {
        '@'
    } else {
        ':'
    };
    match resp.status().as_u16() {
        200 => {
            let d = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|h| h.to_str().ok())
                .ok_or_else(|| {
                    anyhow!("{repo}{at}{reference}: the registry gave no Docker-Content-Digest")
                })?;
            Ok(Some(
                d.parse()
                    .map_err(|e| anyhow!("{repo}{at}{reference}: {e}"))?,
            ))
        }
        404 => Ok(None),
        s => bail!("{repo}{at}{reference}: HEAD manifest: HTTP {s}"),
    }
}

/// What each image and chart of bundle `d` needs, pushed to `target`.
fn plans_of(
    reader: &ArchiveReader,
    d: &BundleDescriptor,
    entries: &HashMap<String, EntryHeader>,
    target: &Target,
) -> Result<Vec<ImagePlan>> {
    let mut plans = d
        .images
        .iter()
        .map(|img| plan_image(reader, d, entries, img, target))
        .collect::<Result<Vec<_>>>()?;
    for c in &d.charts {
        let (name, tag) = crate::relocation::chart_name_tag(&c.name, &c.version);
        let size = d.any_blob(&c.manifest).map(|b| b.size).unwrap_or(0);
        let entry = ImageEntry {
            reference: format!("{name}:{tag}"),
            name,
            tag,
            digest: c.manifest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size,
            total_size: size + c.size,
            platforms: Vec::new(),
        };
        let mut plan = plan_image(reader, d, entries, &entry, target)
            .with_context(|| format!("chart {} {}", c.name, c.version))?;
        plan.chart = true;
        plans.push(plan);
    }
    Ok(plans)
}

/// A bundle read for pushing: its verified head and entries, the base of a
/// delta, what each image and chart needs, and a client for the registry.
pub(crate) struct Prepared {
    pub head: airgap_format::verify::VerifiedHead,
    pub entries: HashMap<String, EntryHeader>,
    pub base: Option<BaseBundle>,
    pub plans: Vec<ImagePlan>,
    pub client: Client,
}

pub(crate) fn prepare(
    path: &Path,
    trusted: &[PublicKey],
    options: &PushOptions,
) -> Result<Prepared> {
    let head = verify_head(path, trusted, Limits::default())?;
    let d = &head.descriptor;
    let reader = &head.reader;
    let entries: HashMap<String, EntryHeader> = reader.entries_by_path()?;
    let base = open_base(d, trusted, options.base.as_deref(), &options.target)?;
    let plans = plans_of(reader, d, &entries, &options.target)?;
    // Every repository and tag is checked before the first request: a
    // name a registry or proxy might normalise (`..`) never leaves here.
    for p in &plans {
        if !is_valid_repository(&p.repository) || !is_valid_tag(&p.entry.tag) {
            bail!(
                "{} {}: {}:{} is not a valid repository and tag; nothing was pushed",
                if p.chart { "chart" } else { "image" },
                quote(&p.entry.reference),
                quote(&p.repository),
                quote(&p.entry.tag)
            );
        }
    }
    let client = Client::new(
        &options.target.host,
        &options.transport,
        options.credentials.clone(),
    )?;
    Ok(Prepared {
        head,
        entries,
        base,
        plans,
        client,
    })
}

/// Where a delta bundle's left-out blobs will come from.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeltaSources {
    /// Blobs already in the target registry.
    pub in_registry: usize,
    /// Blobs read from the `--base` bundle.
    pub from_base: usize,
}

/// For a delta bundle, checks before anything is written that every blob it
/// leaves to its base is in the target registry (see [`crate::survey`]) or
/// the `--base` bundle, and fails with the list of those that are not.
/// `None` for a full bundle.
pub fn check_delta(
    path: &Path,
    trusted: &[PublicKey],
    options: &PushOptions,
) -> Result<Option<DeltaSources>> {
    let p = prepare(path, trusted, options)?;
    let d = &p.head.descriptor;
    if d.base.is_none() {
        return Ok(None);
    }
    let survey = crate::survey::survey(&p, options)?;
    survey.require_complete(d, &options.target.host)?;
    Ok(Some(DeltaSources {
        in_registry: survey.left_in_registry,
        from_base: survey.left_from_base,
    }))
}

/// What a push of the bundle at `path` would send, asked of the registry
/// (HEAD and GET only): the figure `plan` shows, and the one `push` then
/// sends, unless the registry changes in between.
pub fn transfer(
    path: &Path,
    trusted: &[PublicKey],
    options: &PushOptions,
) -> Result<(crate::survey::Transfer, Option<String>)> {
    let p = prepare(path, trusted, options)?;
    let survey = crate::survey::survey(&p, options)?;
    let refused = survey
        .require_complete(&p.head.descriptor, &options.target.host)
        .err()
        .map(|e| e.to_string());
    Ok((survey.transfer(), refused))
}

/// A verified base bundle of a delta, with its entries.
pub(crate) struct BaseBundle {
    pub head: airgap_format::verify::VerifiedHead,
    pub entries: HashMap<String, EntryHeader>,
    /// Its images and charts, pushed to this push's target: where its
    /// blobs are in the registry when it was installed there.
    pub plans: Vec<ImagePlan>,
}

/// Opens `--base` for a delta bundle `d`: it must be signed by a trusted key
/// and be exactly the bundle `d` names as its base.
fn open_base(
    d: &BundleDescriptor,
    trusted: &[PublicKey],
    path: Option<&Path>,
    target: &Target,
) -> Result<Option<BaseBundle>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let Some(want) = &d.base else {
        tracing::warn!(
            "--base {}: {} {} is a full bundle, so the base is not used",
            path.display(),
            d.name,
            d.version
        );
        return Ok(None);
    };
    let head = verify_head(path, trusted, Limits::default())
        .with_context(|| format!("--base {}", path.display()))?;
    if head.bundle_digest != want.digest {
        bail!(
            "--base {}: it is {} {} ({}), but this delta was built against {} {} ({})",
            path.display(),
            head.descriptor.name,
            head.descriptor.version,
            head.bundle_digest,
            want.name,
            want.version,
            want.digest
        );
    }
    let entries = head.reader.entries_by_path()?;
    let plans = plans_of(&head.reader, &head.descriptor, &entries, target)
        .with_context(|| format!("--base {}", path.display()))?;
    Ok(Some(BaseBundle {
        head,
        entries,
        plans,
    }))
}

/// Puts one blob into every repository of the survey that lacks it:
/// mounted from its home in the registry when it has one, else uploaded
/// (from this bundle or the base) into the first and mounted into the rest.
fn push_blob(
    client: &Client,
    source: Option<(&ArchiveReader, &EntryHeader)>,
    work: &crate::survey::BlobWork,
    counters: &Counters,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let (digest, size) = (&work.digest, work.size);
    let mut home: Option<&str> = work.home.as_deref();
    let mut sent = false;
    for repo in &work.missing {
        let ctx = || format!("blob {digest} ({size} bytes) to {repo}");
        let location = match home {
            Some(from) => match mount(client, repo, digest, from).with_context(ctx)? {
                None => {
                    counters.mounted.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Some(location) => location,
            },
            None => start_upload(client, repo).with_context(ctx)?,
        };
        let Some((reader, entry)) = source else {
            bail!(
                "blob {digest}: the registry would not mount it into {repo}, and neither this bundle nor a --base bundle holds it"
            );
        };
        upload(
            client, reader, entry, digest, size, repo, location, progress,
        )
        .with_context(ctx)?;
        sent = true;
        counters.uploaded.fetch_add(1, Ordering::Relaxed);
        counters.bytes.fetch_add(size, Ordering::Relaxed);
        home.get_or_insert(repo);
    }
    if !sent {
        // Nothing was sent for it: count it as done all the same.
        progress(size);
    }
    Ok(())
}

pub(crate) fn blob_exists(client: &Client, repo: &str, digest: &Digest) -> Result<bool> {
    let url = client.url(&format!("/v2/{repo}/blobs/{digest}"));
    let resp = client.send("HEAD", &url, &scope(repo), &[], None)?;
    match resp.status().as_u16() {
        200 => Ok(true),
        404 => Ok(false),
        s => bail!("HEAD: HTTP {s}"),
    }
}

fn location_of(
    resp: &airgap_registry::ureq::http::Response<airgap_registry::ureq::Body>,
) -> Result<String> {
    resp.headers()
        .get("location")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| anyhow!("the registry gave no upload Location"))
}

/// Tries a cross-repository mount; `None` when mounted, else the upload
/// session the registry opened instead.
fn mount(client: &Client, repo: &str, digest: &Digest, from: &str) -> Result<Option<String>> {
    let url = client.url(&format!(
        "/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"
    ));
    let scope = format!("{} repository:{from}:pull", scope(repo));
    let mut resp = client.send("POST", &url, &scope, &[], None)?;
    match resp.status().as_u16() {
        201 => Ok(None),
        202 => Ok(Some(location_of(&resp)?)),
        s => bail!(
            "mount from {from}: HTTP {s}: {}",
            one_line(&read_small(resp.body_mut()))
        ),
    }
}

fn start_upload(client: &Client, repo: &str) -> Result<String> {
    let url = client.url(&format!("/v2/{repo}/blobs/uploads/"));
    let mut resp = client.send("POST", &url, &scope(repo), &[], None)?;
    match resp.status().as_u16() {
        202 => location_of(&resp),
        s => bail!(
            "starting an upload: HTTP {s}: {}",
            one_line(&read_small(resp.body_mut()))
        ),
    }
}

fn with_query(location: &str, key: &str, value: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}{key}={value}")
}

/// Why an upload did not finish.
enum UploadError {
    /// Another session would not help: the registry refused the content,
    /// or the bundle cannot be read.
    Fatal(anyhow::Error),
    /// The upload session is gone, or holds an unknown part of the blob
    /// (a request cut off part-way): start again in a new one.
    Lost(anyhow::Error),
}

/// Statuses of an upload request that say the session is gone: unknown
/// to the registry, or refused because a request it took only part of
/// left it at another offset than the session's state says (the CNCF
/// distribution registry then cancels the session).
fn session_lost(status: u16) -> bool {
    matches!(status, 404 | 416)
}

/// Statuses worth asking again.
fn retryable(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

/// Uploads the blob's bytes, streamed from the archive: one PUT when small,
/// else PATCH chunks, resuming from the registry's reported range after a
/// failure, then the closing PUT. A session that is lost (a request cut off
/// part-way, a session the registry no longer knows) is replaced by a new
/// one, after checking that the blob did not arrive all the same.
#[allow(clippy::too_many_arguments)]
fn upload(
    client: &Client,
    reader: &ArchiveReader,
    entry: &EntryHeader,
    digest: &Digest,
    size: u64,
    repo: &str,
    mut location: String,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let mut shown = 0u64;
    let mut show = |to: u64| {
        if to > shown {
            progress(to - shown);
            shown = to;
        }
    };
    let mut sessions = 1;
    loop {
        let result = if size <= MONOLITHIC_MAX {
            upload_whole(client, reader, entry, digest, size, repo, &location)
        } else {
            upload_chunks(
                client, reader, entry, digest, size, repo, &location, &mut show,
            )
        };
        let lost = match result {
            Ok(()) => {
                show(size);
                return Ok(());
            }
            Err(UploadError::Fatal(e)) => return Err(e),
            Err(UploadError::Lost(e)) => e,
        };
        // The registry may have stored the blob and lost only its answer.
        if blob_exists(client, repo, digest)? {
            show(size);
            return Ok(());
        }
        if sessions >= ATTEMPTS {
            return Err(lost.context(format!("{sessions} upload sessions lost in a row")));
        }
        std::thread::sleep(backoff(sessions, None));
        sessions += 1;
        tracing::debug!(%digest, repo, sessions, error = %format!("{lost:#}"), "upload session lost; resuming in a new one");
        location = start_upload(client, repo)?;
    }
}

/// One PUT of the whole blob into the session at `location`.
#[allow(clippy::too_many_arguments)]
fn upload_whole(
    client: &Client,
    reader: &ArchiveReader,
    entry: &EntryHeader,
    digest: &Digest,
    size: u64,
    repo: &str,
    location: &str,
) -> Result<(), UploadError> {
    let url = client.url(&with_query(location, "digest", &digest.to_string()));
    let mut make = || -> Result<(u64, Box<dyn std::io::Read + Send + '_>)> {
        Ok((size, Box::new(reader.range(entry.data_offset, size)?)))
    };
    let headers = [(OCTET.0, OCTET.1.to_string())];
    let mut attempt = 1;
    loop {
        let mut resp = match client.send_once("PUT", &url, &scope(repo), &headers, Some(&mut make))
        {
            Ok(r) => r,
            // Cut off: the session holds an unknown part of the blob.
            Err(e) if is_transient(&e) => return Err(UploadError::Lost(e)),
            Err(e) => return Err(UploadError::Fatal(e)),
        };
        let s = resp.status().as_u16();
        if s == 201 {
            return Ok(());
        }
        let why = format!("PUT: HTTP {s}: {}", one_line(&read_small(resp.body_mut())));
        if session_lost(s) {
            return Err(UploadError::Lost(anyhow!(why)));
        }
        if !retryable(s) {
            return Err(UploadError::Fatal(anyhow!(why)));
        }
        if attempt >= ATTEMPTS {
            return Err(UploadError::Fatal(anyhow!(
                "{why} (after {attempt} attempts)"
            )));
        }
        let delay = backoff(attempt, retry_after(&resp));
        tracing::debug!(%digest, repo, %why, attempt, ?delay, "retrying the blob PUT");
        std::thread::sleep(delay);
        attempt += 1;
    }
}

/// How many bytes of an upload the registry holds, from the `Range:
/// 0-END` of an upload status. END is the last byte's offset, so a
/// registry that holds one byte says `0-0`; but the CNCF distribution
/// registry says `0-0` for an empty upload too. `0-0` is read as empty: a
/// chunk broken off after exactly one byte is rarer than one refused
/// whole, and if it happens the closing PUT fails its digest check and the
/// upload starts again in a new session.
fn held(status: &airgap_registry::ureq::http::Response<airgap_registry::ureq::Body>) -> u64 {
    held_from_range(status.headers().get("range").and_then(|h| h.to_str().ok()))
}

/// How many bytes an upload status says the registry holds, from its
/// `Range` header's value (`None` when there is none): `0-END` holds
/// END + 1 bytes, `0-0` and anything unreadable none. An END of
/// `u64::MAX` (more than any blob) saturates, so that the caller's "holds
/// more than the blob" check refuses it.
pub fn held_from_range(range: Option<&str>) -> u64 {
    range
        .and_then(|r| r.split_once('-'))
        .and_then(|(_, end)| end.trim().parse::<u64>().ok())
        .map_or(0, |end| if end == 0 { 0 } else { end.saturating_add(1) })
}

/// PATCH chunks into the session at `location`, then the closing PUT.
/// `show` is told how far the upload got.
#[allow(clippy::too_many_arguments)]
fn upload_chunks(
    client: &Client,
    reader: &ArchiveReader,
    entry: &EntryHeader,
    digest: &Digest,
    size: u64,
    repo: &str,
    location: &str,
    show: &mut dyn FnMut(u64),
) -> Result<(), UploadError> {
    use UploadError::{Fatal, Lost};
    let sc = scope(repo);
    let mut location = location.to_string();
    let mut offset = 0u64;
    let mut stalls = 0;
    let mut resumed = false;
    while offset < size {
        let n = CHUNK.min(size - offset);
        let url = client.url(&location);
        let start = offset;
        let mut make = || -> Result<(u64, Box<dyn std::io::Read + Send + '_>)> {
            Ok((n, Box::new(reader.range(entry.data_offset + start, n)?)))
        };
        let headers = [
            (OCTET.0, OCTET.1.to_string()),
            ("Content-Range", format!("{start}-{}", start + n - 1)),
        ];
        let (why, asked) = match client.send_once("PATCH", &url, &sc, &headers, Some(&mut make)) {
            Ok(resp) if resp.status().as_u16() == 202 => {
                location = location_of(&resp).map_err(Fatal)?;
                offset += n;
                show(offset);
                stalls = 0;
                continue;
            }
            Ok(mut resp) => {
                let s = resp.status().as_u16();
                let why = format!("HTTP {s}: {}", one_line(&read_small(resp.body_mut())));
                if !retryable(s) && !session_lost(s) {
                    return Err(Fatal(anyhow!("PATCH at offset {offset}: {why}")));
                }
                (why, retry_after(&resp))
            }
            Err(e) if is_transient(&e) => (format!("{e:#}"), None),
            Err(e) => return Err(Fatal(e.context(format!("PATCH at offset {offset}")))),
        };
        stalls += 1;
        if stalls > 3 {
            return Err(Fatal(anyhow!(
                "PATCH at offset {offset}: {why} ({stalls} failures in a row without progress)"
            )));
        }
        std::thread::sleep(backoff(stalls, asked));
        // Ask the registry how much it holds, and go on from there. One
        // that no longer knows the session (or refuses it after a chunk it
        // took only part of) answers 404: start again in a new session.
        let status = client
            .send("GET", &client.url(&location), &sc, &[], None)
            .map_err(|e| if is_transient(&e) { Lost(e) } else { Fatal(e) })?;
        if status.status().as_u16() != 204 {
            return Err(Lost(anyhow!(
                "PATCH at offset {offset}: {why}; upload status: HTTP {}",
                status.status()
            )));
        }
        if let Ok(l) = location_of(&status) {
            location = l;
        }
        let have = held(&status);
        if have > size {
            return Err(Lost(anyhow!(
                "PATCH at offset {offset}: {why}; the registry says it holds {have} bytes of {size}"
            )));
        }
        tracing::debug!(%digest, offset, have, %why, "resuming chunked upload");
        offset = have;
        resumed = true;
    }
    let url = client.url(&with_query(&location, "digest", &digest.to_string()));
    let mut attempt = 1;
    loop {
        let (why, asked) = match client.send_once("PUT", &url, &sc, &[], None) {
            Ok(resp) if resp.status().as_u16() == 201 => return Ok(()),
            Ok(mut resp) => {
                let s = resp.status().as_u16();
                let body = read_small(resp.body_mut());
                let why = format!("closing PUT: HTTP {s}: {}", one_line(&body));
                if session_lost(s) {
                    // Also what a closing PUT that went through, but whose
                    // answer was lost, gets when sent again.
                    return Err(Lost(anyhow!(why)));
                }
                if resumed && s == 400 && has_error_code(&body, "DIGEST_INVALID") {
                    // The registry's account of what it held was wrong
                    // (or ambiguous, see `held`): start again from zero.
                    return Err(Lost(anyhow!("{why} (after a resumed chunk)")));
                }
                if !retryable(s) {
                    return Err(Fatal(anyhow!(why)));
                }
                (why, retry_after(&resp))
            }
            Err(e) if is_transient(&e) => (format!("closing PUT: {e:#}"), None),
            Err(e) => return Err(Fatal(e)),
        };
        if attempt >= ATTEMPTS {
            return Err(Fatal(anyhow!("{why} (after {attempt} attempts)")));
        }
        let delay = backoff(attempt, asked);
        tracing::debug!(%digest, repo, %why, attempt, ?delay, "retrying the closing PUT");
        std::thread::sleep(delay);
        attempt += 1;
    }
}

/// Puts a manifest (by digest, or as a tag) and checks the digest the
/// registry reports. The manifest was checked against its signed digest
/// before, so a registry that reports another one, or refuses the digest,
/// received other bytes: changed on the way. It is sent again; for a tag,
/// that also moves the tag back off what arrived.
fn put_manifest(
    client: &Client,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
    digest: &Digest,
) -> Result<()> {
    let url = client.url(&format!("/v2/{repo}/manifests/{reference}"));
    let mut make = || -> Result<(u64, Box<dyn std::io::Read + Send + '_>)> {
        Ok((bytes.len() as u64, Box::new(bytes)))
    };
    let is_tag = !reference.starts_with("sha256:");
    let mut attempt = 1;
    loop {
        let mut resp = client.send(
            "PUT",
            &url,
            &scope(repo),
            &[("Content-Type", media_type.to_string())],
            Some(&mut make),
        )?;
        let s = resp.status().as_u16();
        let changed = match s {
            201 => match resp
                .headers()
                .get("docker-content-digest")
                .and_then(|h| h.to_str().ok())
            {
                Some(got) if got != digest.to_string() => {
                    let hint = if is_tag {
                        format!(
                            ", so {repo}:{reference} points at content that is not the bundle's; once the cause is fixed, run again with --on-existing-tag overwrite"
                        )
                    } else {
                        String::new()
                    };
                    format!("manifest {digest}: the registry stored it as {got} (the bytes changed on the way){hint}")
                }
                _ => return Ok(()),
            },
            _ => {
                let body = read_small(resp.body_mut());
                let line = format!(
                    "PUT manifest {reference} ({digest}): HTTP {s}: {}",
                    one_line(&body)
                );
                if s != 400 || !has_error_code(&body, "DIGEST_INVALID") {
                    bail!("{line}");
                }
                line
            }
        };
        if attempt >= ATTEMPTS {
            bail!("{changed} (after {attempt} attempts)");
        }
        tracing::debug!(%digest, repo, reference, attempt, "retrying: the registry received other bytes than the manifest's");
        std::thread::sleep(backoff(attempt, None));
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_reads_the_upload_range() {
        assert_eq!(held_from_range(None), 0);
        assert_eq!(held_from_range(Some("0-0")), 0);
        assert_eq!(held_from_range(Some("0-99")), 100);
        assert_eq!(held_from_range(Some("0- 99 ")), 100);
        assert_eq!(held_from_range(Some("bytes")), 0);
        assert_eq!(held_from_range(Some("0-x")), 0);
        // Found by fuzzing (registry target): END + 1 overflowed.
        assert_eq!(held_from_range(Some("0-18446744073709551615")), u64::MAX);
    }
}
