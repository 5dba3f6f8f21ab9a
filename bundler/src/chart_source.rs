//! A manifest's chart `source` (with its `chart` and `version` fields),
//! parsed: a local chart, an OCI artifact or a chart of a Helm repository.
//! Part of reading a manifest; pulling the chart is
//! [`crate::sources::remote_chart`]'s.

use airgap_format::Digest;

use crate::pull::host_of_url;
use crate::sources::reference::valid_host;

/// Where a chart comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChartSource {
    /// A chart folder or `.tgz` on disk.
    Local(String),
    /// An OCI artifact: `oci://host/path/name` at a tag or digest.
    Oci {
        /// Registry `host[:port]`.
        host: String,
        /// Repository path (its last component is the chart name).
        repository: String,
        /// Tag (the version, `+` written `_`) or digest.
        reference: String,
        /// The version asked for, when known.
        version: Option<String>,
    },
    /// A Helm HTTP repository.
    Repo {
        /// Repository URL (without `/index.yaml`).
        url: String,
        /// Chart name.
        chart: String,
        /// Chart version.
        version: String,
    },
}

impl ChartSource {
    /// Parses a manifest's chart `source` with its optional `chart` and
    /// `version` fields.
    pub fn parse(
        source: &str,
        chart: Option<&str>,
        version: Option<&str>,
    ) -> Result<ChartSource, String> {
        if let Some(rest) = source.strip_prefix("oci://") {
            if chart.is_some() {
                return Err("chart: only for Helm repositories; an oci:// source names the chart in its path".into());
            }
            let (rest, digest) = match rest.split_once('@') {
                Some((r, d)) => (
                    r,
                    Some(
                        d.parse::<Digest>()
                            .map_err(|e| format!("{source:?}: digest: {e}"))?,
                    ),
                ),
                None => (rest, None),
            };
            let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
            let (path, tag) = match rest[last_slash..].rfind(':') {
                Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
                None => (rest, None),
            };
            let (host, repository) = path.split_once('/').ok_or_else(|| {
                format!("{source:?}: expected oci://HOST[:PORT]/PATH/NAME[:VERSION]")
            })?;
            if !valid_host(host) {
                return Err(format!("{source:?}: {host:?} is not HOST[:PORT]"));
            }
            if !airgap_format::bundle_json::is_valid_repository(repository) {
                return Err(format!(
                    "{source:?}: {repository:?} is not a lowercase repository path"
                ));
            }
            let tag_version = tag.map(|t| t.replace('_', "+"));
            let version = match (tag_version, version) {
                (Some(t), Some(v)) if t != v => {
                    return Err(format!(
                        "{source:?} names version {t}, but version: says {v}"
                    ))
                }
                (t, v) => t.or(v.map(str::to_string)),
            };
            let reference = match (&digest, &version) {
                (Some(d), _) => d.to_string(),
                (None, Some(v)) => v.replace('+', "_"),
                (None, None) => {
                    return Err(format!(
                        "{source:?}: name the version, as oci://…/NAME:VERSION or with version:"
                    ))
                }
            };
            return Ok(ChartSource::Oci {
                host: host.to_string(),
                repository: repository.to_string(),
                reference,
                version,
            });
        }
        if source.starts_with("https://") || source.starts_with("http://") {
            host_of_url(source).map_err(|e| e.to_string())?;
            let (Some(chart), Some(version)) = (chart, version) else {
                return Err(format!(
                    "{source:?} is a Helm repository: set chart: (the chart name) and version:"
                ));
            };
            if !is_chart_name(chart) {
                return Err(format!("chart: {chart:?} is not a chart name"));
            }
            return Ok(ChartSource::Repo {
                url: source.trim_end_matches('/').to_string(),
                chart: chart.to_string(),
                version: version.to_string(),
            });
        }
        if chart.is_some() || version.is_some() {
            return Err(
                "chart: and version: are only for Helm repositories and oci:// sources".into(),
            );
        }
        Ok(ChartSource::Local(source.to_string()))
    }

    /// Whether the chart comes over the network.
    pub fn is_remote(&self) -> bool {
        !matches!(self, ChartSource::Local(_))
    }
}

fn is_chart_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 250
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !s.starts_with('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chart_sources() {
        assert_eq!(
            ChartSource::parse("oci://127.0.0.1:5000/charts/web:1.2.3", None, None).unwrap(),
            ChartSource::Oci {
                host: "127.0.0.1:5000".into(),
                repository: "charts/web".into(),
                reference: "1.2.3".into(),
                version: Some("1.2.3".into()),
            }
        );
        let plus = ChartSource::parse("oci://r.example/c/web", None, Some("1.0.0+b1")).unwrap();
        assert!(matches!(plus, ChartSource::Oci { ref reference, .. } if reference == "1.0.0_b1"));
        assert!(ChartSource::parse("oci://r.example/c/web", None, None).is_err());
        assert!(ChartSource::parse("oci://r.example/c/web:1", None, Some("2")).is_err());
        assert!(ChartSource::parse("https://charts.example", Some("web"), None).is_err());
        assert!(matches!(
            ChartSource::parse("https://charts.example/", Some("web"), Some("1.0.0")).unwrap(),
            ChartSource::Repo { ref url, .. } if url == "https://charts.example"
        ));
        assert_eq!(
            ChartSource::parse("charts/web", None, None).unwrap(),
            ChartSource::Local("charts/web".into())
        );
        assert!(ChartSource::parse("charts/web", None, Some("1")).is_err());
    }
}
