//! Helm charts from OCI registries (`oci://host/path/name:version`) and from
//! Helm HTTP repositories (`index.yaml`), pulled through the cache and
//! pinned by digest in the lock file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use airgap_format::bundle_json::{CHART_MEDIA_TYPE, HELM_CONFIG_MEDIA_TYPE};
use airgap_format::Digest;
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::image::ImageManifest;
use serde::Deserialize;

use crate::chart::{inspect_tgz, ChartMeta};
use crate::lock::LockedChart;
use crate::pull::Puller;

/// Media type of a chart's provenance file, an optional second layer.
pub const PROVENANCE_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";
/// Largest chart archive downloaded.
const MAX_CHART_BYTES: u64 = 256 << 20;
/// Largest repository `index.yaml` read.
const MAX_INDEX_BYTES: u64 = 64 << 20;

/// A blob of a pulled OCI chart.
#[derive(Clone, Debug)]
pub struct ArtifactBlob {
    /// Digest.
    pub digest: Digest,
    /// Size.
    pub size: u64,
    /// Media type.
    pub media_type: String,
    /// The cached file.
    pub path: PathBuf,
}

/// A chart pulled into the cache.
#[derive(Clone, Debug)]
pub struct PulledChart {
    /// What `Chart.yaml` says.
    pub meta: ChartMeta,
    /// The cached `.tgz`.
    pub tgz: PathBuf,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// For OCI charts, the artifact as published: its manifest first, then
    /// its config and layers. Kept as is, so its digest stays the vendor's.
    pub artifact: Vec<ArtifactBlob>,
    /// The pin for the lock file.
    pub lock: LockedChart,
}

/// Pulls an OCI chart (at the `locked` manifest digest when pinned).
pub fn pull_oci(
    puller: &Puller,
    source: &str,
    host: &str,
    repository: &str,
    reference: &str,
    version: Option<&str>,
    locked: Option<&LockedChart>,
) -> Result<PulledChart> {
    let shown = format!("oci://{host}/{repository}");
    let wanted = locked
        .map(|l| l.digest.to_string())
        .unwrap_or_else(|| reference.to_string());
    let m = puller.fetch_manifest(host, repository, &wanted)?;
    let manifest: ImageManifest = serde_json::from_slice(&m.bytes)
        .with_context(|| format!("{shown}: manifest {} is not an OCI manifest", m.digest))?;
    let config = manifest.config();
    if config.media_type().to_string() != HELM_CONFIG_MEDIA_TYPE {
        bail!(
            "{shown}: {} is not a Helm chart (config media type {})",
            m.digest,
            config.media_type()
        );
    }
    let mut artifact = vec![ArtifactBlob {
        digest: m.digest,
        size: m.bytes.len() as u64,
        media_type: m.media_type.clone(),
        path: puller.cache().path(&m.digest),
    }];
    let mut tgz = None;
    let descriptors = std::iter::once(config).chain(manifest.layers().iter());
    for d in descriptors {
        let digest: Digest = d
            .digest()
            .to_string()
            .parse()
            .map_err(|e| anyhow!("{shown}: manifest {}: {e}", m.digest))?;
        let media_type = d.media_type().to_string();
        match media_type.as_str() {
            HELM_CONFIG_MEDIA_TYPE | PROVENANCE_MEDIA_TYPE => {}
            CHART_MEDIA_TYPE if tgz.is_none() => tgz = Some((digest, d.size())),
            other => bail!(
                "{shown}: manifest {} has a layer of type {other}, not a Helm chart's",
                m.digest
            ),
        }
        if d.size() > MAX_CHART_BYTES {
            bail!(
                "{shown}: blob {digest} is {} bytes, above the {MAX_CHART_BYTES}-byte limit",
                d.size()
            );
        }
        let path = puller.fetch_blob(host, repository, &digest, d.size(), &shown)?;
        artifact.push(ArtifactBlob {
            digest,
            size: d.size(),
            media_type,
            path,
        });
    }
    let (digest, size) =
        tgz.ok_or_else(|| anyhow!("{shown}: manifest {} has no chart layer", m.digest))?;
    let path = puller.cache().path(&digest);
    let meta = inspect_tgz(&path).with_context(|| format!("{shown}: chart {digest}"))?;
    let name = repository.rsplit('/').next().unwrap_or(repository);
    if meta.name != name {
        bail!("{shown}: the chart inside is named {}", meta.name);
    }
    if let Some(v) = version.or(locked.map(|l| l.version.as_str())) {
        if meta.version != v {
            bail!(
                "{shown}: the chart inside has version {}, not {v}",
                meta.version
            );
        }
    }
    Ok(PulledChart {
        lock: LockedChart {
            source: source.to_string(),
            chart: None,
            version: meta.version.clone(),
            digest: m.digest,
            url: None,
        },
        meta,
        tgz: path,
        digest,
        size,
        artifact,
    })
}

/// A Helm repository's `index.yaml`: only the fields used are read.
#[derive(Debug, Deserialize)]
struct RepoIndex {
    #[serde(default)]
    entries: BTreeMap<String, Vec<RepoChartVersion>>,
}

#[derive(Debug, Deserialize)]
struct RepoChartVersion {
    version: String,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    digest: Option<String>,
}

/// Pulls chart `chart` at `version` from the Helm repository at `url`. When
/// the lock pins it and the archive is cached, nothing is fetched.
pub fn pull_repo(
    puller: &Puller,
    url: &str,
    chart: &str,
    version: &str,
    locked: Option<&LockedChart>,
) -> Result<PulledChart> {
    let shown = format!("{url} chart {chart} {version}");
    let (tgz_url, expected) = match locked.and_then(|l| l.url.clone().map(|u| (u, l.digest))) {
        Some((u, d)) => (u, Some(d)),
        None => {
            let index_url = format!("{url}/index.yaml");
            let bytes = puller.fetch_document(&index_url, MAX_INDEX_BYTES)?;
            let text =
                String::from_utf8(bytes).map_err(|_| anyhow!("{index_url}: not UTF-8 text"))?;
            let index: RepoIndex = serde_saphyr::from_str(&text).map_err(|e| {
                anyhow!(
                    "{index_url}: not a Helm repository index: {}",
                    e.to_string().lines().next().unwrap_or_default()
                )
            })?;
            let versions = index
                .entries
                .get(chart)
                .ok_or_else(|| anyhow!("{index_url}: no chart named {chart}"))?;
            let entry = versions
                .iter()
                .find(|v| v.version == version)
                .ok_or_else(|| {
                    let mut have: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
                    have.truncate(10);
                    anyhow!("{index_url}: chart {chart} has no version {version} (has {have:?})")
                })?;
            let first = entry
                .urls
                .first()
                .ok_or_else(|| anyhow!("{index_url}: chart {chart} {version} lists no URL"))?;
            let digest = match &entry.digest {
                Some(d) if !d.is_empty() => Some(
                    Digest::from_hex(d.trim_start_matches("sha256:")).map_err(|e| {
                        anyhow!("{index_url}: chart {chart} {version}: digest: {e}")
                    })?,
                ),
                _ => None,
            };
            if digest.is_none() {
                tracing::warn!(
                    "{index_url}: chart {chart} {version} has no digest in the index; the archive is pinned as downloaded"
                );
            }
            (join_url(url, first), digest)
        }
    };
    let (path, digest, size) = puller
        .download_url(&tgz_url, expected, MAX_CHART_BYTES, &shown)
        .with_context(|| format!("{shown}: {tgz_url}"))?;
    let meta = inspect_tgz(&path).with_context(|| format!("{shown}: {tgz_url}"))?;
    if meta.name != chart || meta.version != version {
        bail!(
            "{shown}: {tgz_url} holds chart {} {}",
            meta.name,
            meta.version
        );
    }
    Ok(PulledChart {
        lock: LockedChart {
            source: url.to_string(),
            chart: Some(chart.to_string()),
            version: version.to_string(),
            digest,
            url: Some(tgz_url),
        },
        meta,
        tgz: path,
        digest,
        size,
        artifact: Vec::new(),
    })
}

/// Resolves a chart URL from an index against the repository URL.
fn join_url(repo: &str, u: &str) -> String {
    if u.starts_with("http://") || u.starts_with("https://") {
        u.to_string()
    } else {
        format!(
            "{}/{}",
            repo.trim_end_matches('/'),
            u.trim_start_matches("./")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_urls() {
        assert_eq!(join_url("http://r/x", "web-1.tgz"), "http://r/x/web-1.tgz");
        assert_eq!(
            join_url("http://r/x/", "https://cdn/w.tgz"),
            "https://cdn/w.tgz"
        );
    }
}
