//! What a push works from, read from the signed bundle before any request:
//! the push settings, each image's and chart's manifests and blobs
//! ([`ImagePlan`]), the base bundle of a delta, and a registry client
//! ([`Prepared`]). The survey and the push itself build on it.

use std::collections::HashMap;
use std::path::Path;

use airgap_format::bundle_json::{is_valid_repository, is_valid_tag, BundleDescriptor, ImageEntry};
use airgap_format::display::quote;
use airgap_format::tar_entry::EntryHeader;
use airgap_format::{Digest, Limits, PublicKey, SignedBundle};
use airgap_registry::manifest::push_scope;
use airgap_registry::{Client, Credentials, Transport};
use anyhow::{anyhow, bail, Context, Result};

use crate::target::Target;

/// Largest manifest or index read from the bundle (or the registry).
pub(crate) const MAX_MANIFEST: u64 = 16 << 20;

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
    pub known: Vec<KnownImage>,
}

/// An image or chart already in the target registry, by repository and
/// tag or digest: where a blob the push needs may be mounted from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownImage {
    /// Repository (with the registry's prefix).
    pub repository: String,
    /// Tag or digest.
    pub reference: String,
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

/// Reads a manifest or index from the archive, checking it against its digest.
fn read_manifest(bundle: &SignedBundle, digest: &Digest) -> Result<Vec<u8>> {
    Ok(bundle.read_blob(digest, MAX_MANIFEST, "manifest")?)
}

/// Every blob of an image (manifests, configs, layers), read from the
/// bundle's signed manifests.
pub fn image_blob_digests(bundle: &SignedBundle, img: &ImageEntry) -> Result<Vec<Digest>> {
    let target = Target::parse("localhost")?;
    let plan = plan_image(bundle, img, &target)?;
    let mut all: Vec<Digest> = plan.manifests.iter().map(|(dg, _, _)| *dg).collect();
    all.extend(plan.blobs);
    Ok(all)
}

fn plan_image(bundle: &SignedBundle, img: &ImageEntry, target: &Target) -> Result<ImagePlan> {
    let d = &bundle.descriptor;
    let ctx = || format!("image {}", img.reference);
    let top = read_manifest(bundle, &img.digest).with_context(ctx)?;
    // Children are read by digest from the bundle's signed blobs.
    let mut read = |child: &Digest, _size: u64| read_manifest(bundle, child).map(Some);
    let walked =
        airgap_registry::walk::walk((img.digest, Some(img.media_type.as_str()), top), &mut read)
            .with_context(ctx)?;
    let blobs: Vec<Digest> = walked.blobs.iter().map(|b| b.0).collect();
    for b in &blobs {
        if d.any_blob(b).is_none() {
            return Err(anyhow!("blob {b} is not listed in bundle.json")).with_context(ctx);
        }
    }
    Ok(ImagePlan {
        chart: false,
        entry: img.clone(),
        repository: target.repository(&img.name),
        manifests: walked.manifests,
        blobs,
    })
}

/// The digest a tag points at, if it exists (asked with push's scope, so
/// the push's token serves).
pub(crate) fn tag_digest(client: &Client, repo: &str, tag: &str) -> Result<Option<Digest>> {
    Ok(client.manifest_digest(repo, tag, &push_scope(repo))?)
}

/// What each image and chart of bundle `d` needs, pushed to `target`.
fn plans_of(bundle: &SignedBundle, target: &Target) -> Result<Vec<ImagePlan>> {
    let d = &bundle.descriptor;
    let mut plans = d
        .images
        .iter()
        .map(|img| plan_image(bundle, img, target))
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
        let mut plan = plan_image(bundle, &entry, target)
            .with_context(|| format!("chart {} {}", c.name, c.version))?;
        plan.chart = true;
        plans.push(plan);
    }
    Ok(plans)
}

/// A bundle read for pushing: the verified bundle and its entries, the
/// base of a delta, what each image and chart needs, and a client for the
/// registry.
pub(crate) struct Prepared<'a> {
    pub head: &'a SignedBundle,
    pub entries: &'a HashMap<String, EntryHeader>,
    pub base: Option<BaseBundle>,
    pub plans: Vec<ImagePlan>,
    pub client: Client,
}

pub(crate) fn prepare<'a>(
    head: &'a SignedBundle,
    trusted: &[PublicKey],
    options: &PushOptions,
) -> Result<Prepared<'a>> {
    let d = &head.descriptor;
    let entries = head.entries()?;
    let base = open_base(d, trusted, options.base.as_deref(), &options.target)?;
    let plans = plans_of(head, &options.target)?;
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

/// A verified base bundle of a delta.
pub(crate) struct BaseBundle {
    pub head: SignedBundle,
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
    let head = SignedBundle::open(path, trusted, Limits::default())
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
    let plans = plans_of(&head, target).with_context(|| format!("--base {}", path.display()))?;
    Ok(Some(BaseBundle { head, plans }))
}
