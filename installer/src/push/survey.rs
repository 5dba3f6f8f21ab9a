//! What the site's registry already has of a bundle, found before anything
//! is written: where each tag stands, and for every image and chart blob
//! which repositories lack it and where in the same registry it can be
//! mounted from. `push` acts on the survey, `plan` reports it and the
//! install's verify step checks a delta with it, so the three agree on what
//! is present and what will be sent.
//!
//! A blob's home (the repository it is mounted from) is one of the
//! repositories that need it, else one where an installed release of the
//! same registry put it (their manifests are read from the registry), else
//! one the `--base` bundle's images go to. Every home is confirmed with a
//! HEAD request; nothing is ever mounted from another host.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use airgap_format::bundle_json::BundleDescriptor;
use airgap_format::Digest;
use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::plan::{
    tag_digest, BaseBundle, KnownImage, OnExistingTag, Prepared, PushOptions, MAX_MANIFEST,
};
use crate::install::records::InstallRecord;
use crate::target::Target;
use airgap_registry::manifest::push_scope;
use airgap_registry::{Client, Error};

/// The images and charts the installed releases put on `target`'s host
/// (under any prefix), newest record first.
pub fn known_images(records: &[InstallRecord], target: &Target) -> Vec<KnownImage> {
    let mut out = Vec::new();
    for r in records {
        let Ok(at) = Target::parse(&r.registry) else {
            continue;
        };
        if at.host != target.host {
            continue;
        }
        for i in &r.images {
            let name = i.reference.rsplit_once(':').map_or(&*i.reference, |x| x.0);
            out.push(KnownImage {
                repository: at.repository(name),
                reference: i.digest.clone(),
            });
        }
        for c in &r.charts {
            let (name, tag) = crate::relocation::chart_name_tag(&c.name, &c.version);
            out.push(KnownImage {
                repository: at.repository(&name),
                reference: tag,
            });
        }
    }
    out.dedup();
    out
}

/// One blob the bundle's images and charts need.
pub(crate) struct BlobWork {
    pub digest: Digest,
    pub size: u64,
    /// Repositories that need it and lack it, in the order first needed.
    pub missing: Vec<String>,
    /// A repository of the target registry that has it, to mount from.
    pub home: Option<String>,
}

/// The survey of a registry for one bundle.
pub(crate) struct Survey {
    /// Per image and chart plan: `unchanged`, `pushed` or `tag-kept`.
    pub statuses: Vec<&'static str>,
    /// Tags that point at another image, with `--on-existing-tag fail`:
    /// the push stops before writing anything.
    pub tag_conflicts: Vec<String>,
    /// Every blob of the images and charts that are not unchanged.
    pub blobs: Vec<BlobWork>,
    /// (blob, repository) pairs already in place.
    pub present: u64,
    /// Blobs left to a delta's base that no repository has and no
    /// `--base` bundle holds: `digest (size bytes, for repos)`.
    pub unavailable: Vec<String>,
    /// Blobs left to the base: found in the registry, and read from `--base`.
    pub left_in_registry: usize,
    pub left_from_base: usize,
}

/// What a push will send, as `plan` shows it and `push` then does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// Blobs no repository of the registry has: uploaded once each.
    pub blobs_to_upload: u64,
    /// Their bytes.
    pub bytes_to_upload: u64,
    /// Cross-repository mounts (no bytes sent).
    pub blobs_to_mount: u64,
    /// (blob, repository) pairs already in place.
    pub blobs_present: u64,
    /// Images and charts whose tag already points at the bundle's digest.
    pub unchanged: u64,
}

impl Survey {
    /// The figures of the push this survey leads to.
    pub fn transfer(&self) -> Transfer {
        let mut t = Transfer {
            blobs_present: self.present,
            unchanged: self.statuses.iter().filter(|s| **s == "unchanged").count() as u64,
            ..Transfer::default()
        };
        for b in &self.blobs {
            if b.missing.is_empty() {
                continue;
            }
            let uploads = u64::from(b.home.is_none());
            t.blobs_to_upload += uploads;
            t.bytes_to_upload += b.size * uploads;
            t.blobs_to_mount += b.missing.len() as u64 - uploads;
        }
        t
    }

    /// Fails when the push must not start: a tag held by another image
    /// (with `--on-existing-tag fail`), or blobs a delta leaves to its
    /// base that are neither in the registry nor in a `--base` bundle
    /// (all of them named).
    pub fn require_complete(&self, d: &BundleDescriptor, registry: &str) -> Result<()> {
        if let Some(first) = self.tag_conflicts.first() {
            bail!("{first}");
        }
        if self.unavailable.is_empty() {
            return Ok(());
        }
        let base = d
            .base
            .as_ref()
            .map(|b| format!("{} {} ({})", b.name, b.version, b.digest))
            .unwrap_or_else(|| "none named".into());
        bail!(
            "delta bundle {} {}: {} blobs it leaves to its base ({base}) are neither in the registry nor in a --base bundle (looked for in {registry}, in the repositories that need them and where installed releases put them): {}; install the base first or give --base BASE_BUNDLE",
            d.name,
            d.version,
            self.unavailable.len(),
            self.unavailable.join(", ")
        )
    }
}

/// Runs `f` over `items` on `jobs` threads; results in the items' order,
/// or the first error.
fn parallel<T: Sync, R: Send>(
    jobs: usize,
    items: &[T],
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                if failure.lock().expect("lock").is_some() {
                    return;
                }
                let i = {
                    let mut n = next.lock().expect("lock");
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(item) = items.get(i) else {
                    return;
                };
                match f(item) {
                    Ok(r) => results.lock().expect("lock")[i] = Some(r),
                    Err(e) => {
                        failure.lock().expect("lock").get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().expect("lock") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("lock")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect())
}

/// Surveys the registry for a prepared bundle. Reads only: HEAD and GET.
pub(crate) fn survey(p: &Prepared, options: &PushOptions) -> Result<Survey> {
    let d = &p.head.descriptor;
    let client = &p.client;
    // Where tags stand. Nothing is written before this passes.
    let mut statuses = Vec::new();
    let mut tag_conflicts = Vec::new();
    for plan in &p.plans {
        let current = tag_digest(client, &plan.repository, &plan.entry.tag)?;
        let status = match current {
            Some(cur) if cur == plan.entry.digest => "unchanged",
            Some(cur) => match options.on_existing_tag {
                OnExistingTag::Fail => {
                    tag_conflicts.push(format!(
                        "{}:{} already points at {cur}, not {} (use --on-existing-tag skip or overwrite)",
                        plan.repository, plan.entry.tag, plan.entry.digest
                    ));
                    "pushed"
                }
                OnExistingTag::Skip => "tag-kept",
                OnExistingTag::Overwrite => "pushed",
            },
            None => "pushed",
        };
        statuses.push(status);
    }
    // Each distinct blob once, with every repository that needs it.
    let mut wanted: BTreeMap<Digest, Vec<String>> = BTreeMap::new();
    for (plan, status) in p.plans.iter().zip(&statuses) {
        if *status == "unchanged" {
            continue;
        }
        for b in &plan.blobs {
            let repos = wanted.entry(*b).or_default();
            if !repos.contains(&plan.repository) {
                repos.push(plan.repository.clone());
            }
        }
    }
    let wanted: Vec<(Digest, Vec<String>)> = wanted.into_iter().collect();
    let found = parallel(options.jobs, &wanted, |(digest, repos)| {
        let mut have = Vec::new();
        for repo in repos {
            let here = client
                .blob_exists(repo, digest, &push_scope(repo))
                .with_context(|| format!("blob {digest} in {repo}"))?;
            have.push(here);
        }
        Ok(have)
    })?;
    let mut present = 0u64;
    let mut blobs = Vec::new();
    for ((digest, repos), have) in wanted.into_iter().zip(found) {
        present += have.iter().filter(|h| **h).count() as u64;
        let home = repos
            .iter()
            .zip(&have)
            .find(|(_, h)| **h)
            .map(|x| x.0.clone());
        let missing = repos
            .into_iter()
            .zip(&have)
            .filter(|(_, h)| !**h)
            .map(|x| x.0)
            .collect();
        blobs.push(BlobWork {
            digest,
            size: d.any_blob(&digest).map_or(0, |b| b.size),
            missing,
            home,
        });
    }
    // Blobs no repository that needs them has: look where the installed
    // releases and the base's images put them.
    let homeless: Vec<usize> = (0..blobs.len())
        .filter(|i| blobs[*i].home.is_none())
        .collect();
    if !homeless.is_empty() {
        let candidates = candidate_homes(client, options, p.base.as_ref())?;
        let checks: Vec<(usize, Vec<String>)> = homeless
            .iter()
            .filter_map(|i| candidates.get(&blobs[*i].digest).map(|c| (*i, c.clone())))
            .collect();
        let homes = parallel(options.jobs, &checks, |(i, repos)| {
            let digest = &blobs[*i].digest;
            for repo in repos {
                if client
                    .blob_exists(repo, digest, &push_scope(repo))
                    .with_context(|| format!("blob {digest} in {repo}"))?
                {
                    return Ok(Some(repo.clone()));
                }
            }
            Ok(None)
        })?;
        for ((i, _), home) in checks.iter().zip(homes) {
            blobs[*i].home = home;
        }
    }
    // A delta's left-out blobs: in the registry, or read from --base. Those
    // of images whose tag already points at their digest are in place.
    let mut unavailable = Vec::new();
    let surveyed: std::collections::BTreeSet<Digest> = blobs.iter().map(|b| b.digest).collect();
    let in_place: std::collections::BTreeSet<Digest> = p
        .plans
        .iter()
        .zip(&statuses)
        .filter(|(_, s)| **s == "unchanged")
        .flat_map(|(plan, _)| plan.blobs.iter().copied())
        .filter(|b| !surveyed.contains(b) && !p.entries.contains_key(&b.blob_path()))
        .collect();
    let (mut left_in_registry, mut left_from_base) = (in_place.len(), 0);
    let base_entries = match &p.base {
        Some(base) => Some((base, base.head.entries()?)),
        None => None,
    };
    for b in &blobs {
        let path = b.digest.blob_path();
        if p.entries.contains_key(&path) {
            continue;
        }
        if b.home.is_some() || b.missing.is_empty() {
            left_in_registry += 1;
            continue;
        }
        match base_entries.and_then(|(base, entries)| entries.get(&path).map(|e| (base, e))) {
            Some((base, entry)) => {
                // The base is signed, but by its own bundle.json: its entry
                // must be the size this delta says.
                if entry.size != b.size
                    || base.head.descriptor.blob(&b.digest).map(|e| e.size) != Some(b.size)
                {
                    bail!(
                        "--base: blob {} is {} bytes in the base bundle, but the delta says {}",
                        b.digest,
                        entry.size,
                        b.size
                    );
                }
                left_from_base += 1;
            }
            None => unavailable.push(format!(
                "{} ({} bytes, for {})",
                b.digest,
                b.size,
                b.missing.join(", ")
            )),
        }
    }
    Ok(Survey {
        statuses,
        tag_conflicts,
        blobs,
        present,
        unavailable,
        left_in_registry,
        left_from_base,
    })
}

/// Blob → repositories of the target registry that should hold it: the
/// blobs of the images and charts installed releases put there (their
/// manifests read from the registry), then those of the `--base` bundle's
/// images at this push's target.
fn candidate_homes(
    client: &Client,
    options: &PushOptions,
    base: Option<&BaseBundle>,
) -> Result<HashMap<Digest, Vec<String>>> {
    let mut map: HashMap<Digest, Vec<String>> = HashMap::new();
    let mut add = |digest: Digest, repo: &str| {
        let repos = map.entry(digest).or_default();
        if !repos.iter().any(|r| r == repo) {
            repos.push(repo.to_string());
        }
    };
    let lists = parallel(options.jobs, &options.known, |k| {
        registry_blobs(client, &k.repository, &k.reference)
    })?;
    for (k, list) in options.known.iter().zip(lists) {
        for digest in list {
            add(digest, &k.repository);
        }
    }
    if let Some(base) = base {
        for plan in &base.plans {
            for digest in &plan.blobs {
                add(*digest, &plan.repository);
            }
        }
    }
    Ok(map)
}

/// The config and layer blobs of the manifest `reference` in `repo` (and
/// of its children, for an index, down to the walker's depth), read from
/// the registry. An image the registry no longer has gives none, and a
/// child it no longer has is skipped.
fn registry_blobs(client: &Client, repo: &str, reference: &str) -> Result<Vec<Digest>> {
    let Some(top) = get_manifest(client, repo, reference)? else {
        return Ok(Vec::new());
    };
    let mut read = |child: &Digest, _size: u64| get_manifest(client, repo, &child.to_string());
    let walked = airgap_registry::walk::walk((Digest::of(&top), None, top), &mut read)
        .with_context(|| format!("{repo}@{reference}"))?;
    Ok(walked.blobs.into_iter().map(|b| b.0).collect())
}

/// A manifest from the registry, bounded; `None` when it is not there.
fn get_manifest(client: &Client, repo: &str, reference: &str) -> Result<Option<Vec<u8>>> {
    match client.get_manifest(repo, reference, &push_scope(repo), MAX_MANIFEST) {
        Ok(m) => Ok(Some(m.bytes)),
        Err(Error::NotFound { .. }) => {
            tracing::debug!("{repo}@{reference}: no longer in the registry");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
