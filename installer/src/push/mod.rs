//! `push`: puts every image of a verified bundle into the site's registry,
//! streaming blobs straight out of the archive. Blobs first (several at
//! once), then manifests children before their index, then tags, so no tag
//! ever points at missing content, even if the run is killed. A second run
//! skips whatever is already there.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use airgap_cli::progress::{Progress, ProgressGroup};
use airgap_format::reader::ArchiveReader;
use airgap_format::tar_entry::EntryHeader;
use airgap_format::{Digest, PublicKey, SignedBundle};
use anyhow::{bail, Context, Result};

use crate::relocation::{RelocatedImage, RelocationMap};
use airgap_registry::blob::{BlobSource, Mounted};
use airgap_registry::retry::POLICY;
use airgap_registry::{Client, Error};

mod plan;
pub mod survey;

pub use plan::{image_blob_digests, KnownImage, OnExistingTag, PushOptions};
pub(crate) use plan::{prepare, tag_digest, Prepared};

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

/// Pushes a verified bundle; a `--base` bundle (for a delta) is checked
/// against `trusted`.
pub fn push(
    head: &SignedBundle,
    trusted: &[PublicKey],
    options: &PushOptions,
) -> Result<PushReport> {
    let prepared = prepare(head, trusted, options)?;
    let Prepared {
        entries,
        base,
        plans,
        client,
        ..
    } = &prepared;
    let base_entries = match base {
        Some(b) => Some((&b.head, b.head.entries()?)),
        None => None,
    };
    let d = &head.descriptor;
    let reader = &head.reader;
    // Where tags stand and what the registry has: nothing is written before
    // this passes, nor when a delta's left-out blobs are nowhere.
    let survey = survey::survey(&prepared, options)?;
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
                    None => base_entries
                        .and_then(|(b, entries)| entries.get(&path).map(|e| (&b.reader, e))),
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
    bundle: &SignedBundle,
    trusted: &[PublicKey],
    options: &PushOptions,
) -> Result<Option<DeltaSources>> {
    let p = prepare(bundle, trusted, options)?;
    let d = &p.head.descriptor;
    if d.base.is_none() {
        return Ok(None);
    }
    let survey = survey::survey(&p, options)?;
    survey.require_complete(d, &options.target.host)?;
    Ok(Some(DeltaSources {
        in_registry: survey.left_in_registry,
        from_base: survey.left_from_base,
    }))
}

/// What a push of `bundle` would send, asked of the registry (HEAD and GET
/// only): the figure `plan` shows, and the one `push` then sends, unless
/// the registry changes in between.
pub fn transfer(
    bundle: &SignedBundle,
    trusted: &[PublicKey],
    options: &PushOptions,
) -> Result<(survey::Transfer, Option<String>)> {
    let p = prepare(bundle, trusted, options)?;
    let survey = survey::survey(&p, options)?;
    let refused = survey
        .require_complete(&p.head.descriptor, &options.target.host)
        .err()
        .map(|e| e.to_string());
    Ok((survey.transfer(), refused))
}

/// Puts one blob into every repository of the survey that lacks it:
/// mounted from its home in the registry when it has one, else uploaded
/// (from this bundle or the base) into the first and mounted into the rest.
fn push_blob(
    client: &Client,
    source: Option<(&ArchiveReader, &EntryHeader)>,
    work: &survey::BlobWork,
    counters: &Counters,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let (digest, size) = (&work.digest, work.size);
    let mut home: Option<&str> = work.home.as_deref();
    let mut sent = false;
    for repo in &work.missing {
        let ctx = || format!("blob {digest} ({size} bytes) to {repo}");
        let location = match home {
            Some(from) => match client.mount_blob(repo, digest, from).with_context(ctx)? {
                Mounted::Yes => {
                    counters.mounted.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Mounted::Upload(location) => location,
            },
            None => client.start_upload(repo).with_context(ctx)?,
        };
        let Some((reader, entry)) = source else {
            bail!(
                "blob {digest}: the registry would not mount it into {repo}, and neither this bundle nor a --base bundle holds it"
            );
        };
        let source = BundleBlob { reader, entry };
        client
            .upload_blob(repo, digest, size, &source, location, progress)
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

/// A blob of the bundle, streamed out of the archive for an upload.
struct BundleBlob<'a> {
    reader: &'a ArchiveReader,
    entry: &'a EntryHeader,
}

impl BlobSource for BundleBlob<'_> {
    fn open(&self, offset: u64, len: u64) -> Result<Box<dyn std::io::Read + Send + '_>> {
        Ok(Box::new(
            self.reader.range(self.entry.data_offset + offset, len)?,
        ))
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
    let is_tag = !reference.starts_with("sha256:");
    let mut attempt = 1;
    loop {
        let changed = match client.put_manifest(repo, reference, media_type, bytes) {
            Ok(Some(got)) if got != digest.to_string() => {
                let hint = if is_tag {
                    format!(
                        ", so {repo}:{reference} points at content that is not the bundle's; once the cause is fixed, run again with --on-existing-tag overwrite"
                    )
                } else {
                    String::new()
                };
                format!("manifest {digest}: the registry stored it as {got} (the bytes changed on the way){hint}")
            }
            Ok(_) => return Ok(()),
            Err(e @ Error::Status { status: 400, .. })
                if e.body().is_some_and(|b| b.has_code("DIGEST_INVALID")) =>
            {
                format!("{e} ({digest})")
            }
            Err(e) => return Err(e.into()),
        };
        let Some(delay) = POLICY.next(attempt, None) else {
            bail!("{changed} (after {attempt} attempts)");
        };
        tracing::debug!(%digest, repo, reference, attempt, "retrying: the registry received other bytes than the manifest's");
        std::thread::sleep(delay);
        attempt += 1;
    }
}
