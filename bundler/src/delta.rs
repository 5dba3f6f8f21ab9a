//! Delta bundles: `build --base OLD` leaves out the image and chart blobs
//! (configs, layers, chart archives) that the base bundle stores, and names
//! the base in `bundle.json`. Manifests, files, templates, SBOMs and the
//! licence are always stored, so a delta can be verified, planned and
//! rendered on its own; only its registry content needs the base or the
//! registry the base was installed into.

use std::collections::BTreeSet;
use std::path::Path;

use airgap_format::bundle_json::{is_manifest_media_type, BaseEntry};
use airgap_format::SignedBundle;
use airgap_format::{Digest, Limits};
use anyhow::{bail, Context, Result};

use crate::plan::Plan;
use crate::sign::SecretKey;

/// The base bundle of a delta build.
pub struct Base {
    /// What `bundle.json` records about it.
    pub entry: BaseEntry,
    /// Every blob it stores.
    pub blobs: BTreeSet<Digest>,
}

/// Reads the base bundle's signed head. It must be signed by `key` (the
/// key that signs the delta), be the same product, and be older.
pub fn load_base(path: &Path, key: &SecretKey, name: &str, version: &str) -> Result<Base> {
    let head = SignedBundle::open(path, &[key.public()], Limits::default()).with_context(|| {
        format!(
            "--base {}: the base bundle must be signed by the key that signs the delta",
            path.display()
        )
    })?;
    let d = &head.descriptor;
    if d.name != name {
        bail!(
            "--base {}: it is {} {}, not a version of {name}",
            path.display(),
            d.name,
            d.version
        );
    }
    let older = match (
        semver::Version::parse(&d.version),
        semver::Version::parse(version),
    ) {
        (Ok(b), Ok(v)) => b < v,
        _ => false,
    };
    if !older {
        bail!(
            "--base {}: its version {} is not older than {version}",
            path.display(),
            d.version
        );
    }
    Ok(Base {
        entry: BaseEntry {
            name: d.name.clone(),
            version: d.version.clone(),
            digest: head.bundle_digest,
        },
        blobs: d.blobs.iter().map(|b| b.digest).collect(),
    })
}

/// The blobs of `plan` a delta against `base` leaves out: those the base
/// stores that only images and charts use, and that are not manifests.
pub fn left_to_base(plan: &Plan, base: &Base, sboms: &[Digest]) -> BTreeSet<Digest> {
    let mut keep: BTreeSet<Digest> = BTreeSet::new();
    keep.extend(plan.files.iter().map(|f| f.digest));
    keep.extend(plan.templates.iter().map(|t| t.digest));
    keep.extend(plan.license.iter().map(|l| l.digest));
    keep.extend(plan.charts.iter().map(|c| c.manifest));
    keep.extend(sboms.iter().copied());
    for img in &plan.images {
        keep.insert(img.image.top.digest);
        keep.extend(
            img.image
                .blobs
                .iter()
                .filter(|b| is_manifest_media_type(&b.media_type))
                .map(|b| b.digest),
        );
    }
    plan.blobs
        .iter()
        .filter(|(d, b)| {
            base.blobs.contains(d) && !keep.contains(d) && !is_manifest_media_type(&b.media_type)
        })
        .map(|(d, _)| *d)
        .collect()
}
