//! The bundle manifest: a strict, typed YAML schema. Unknown fields are
//! errors, and every error names the file, line and column.

use std::fmt;
use std::path::{Path, PathBuf};

use airgap_format::bundle_json::{
    is_safe_relative_path, is_valid_name, is_valid_repository, is_valid_tag, FileKind,
};
use airgap_format::display::quote;
use airgap_format::fields;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::chart_source::ChartSource;
use crate::sources::{ImageSource, PlatformFilter};

/// Largest manifest file read.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// A parsed, validated manifest with its location on disk.
#[derive(Debug)]
pub struct Manifest {
    /// The manifest file (as given).
    pub path: PathBuf,
    /// Folder that relative source paths resolve against.
    pub base_dir: PathBuf,
    /// The parsed document.
    pub doc: ManifestDoc,
}

/// The manifest document.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManifestDoc {
    /// Bundle name: lowercase letters, digits, `.`, `_`, `-`.
    pub name: Spanned<String>,
    /// Semantic version.
    pub version: Spanned<String>,
    /// Free text (docs/format.md §5.1: at most 4096 bytes, line feeds
    /// allowed, no other control or bidirectional formatting character).
    #[serde(default)]
    pub description: Option<Spanned<String>>,
    /// Container images.
    #[serde(default)]
    pub images: Vec<ImageSpec>,
    /// Helm charts.
    #[serde(default)]
    pub charts: Vec<ChartSpec>,
    /// Documentation, reports and other files.
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// Configuration templates (files or folders of them) the installer
    /// renders for a site.
    #[serde(default)]
    pub templates: Vec<TemplateSpec>,
    /// A node-locked licence file (from `airgap-bundle license issue`) that
    /// `airgap-install install` activates at the site.
    #[serde(default)]
    pub license: Option<Spanned<String>>,
    /// How to reach the registries and chart repositories sources name.
    #[serde(default)]
    pub registries: Vec<RegistrySpec>,
}

/// Templates to include: one file, or every file under a folder.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateSpec {
    /// A template file, or a folder whose files (recursively, dotfiles
    /// skipped) are all templates.
    pub source: Spanned<String>,
    /// For a file, its name in the bundle (default: the file name); for a
    /// folder, a prefix folder for every name (default: none).
    #[serde(default)]
    pub name: Option<Spanned<String>>,
}

/// Connection settings for one registry or chart repository host.
/// Credentials never go here: they come from auth files or the command line.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistrySpec {
    /// `host[:port]`, as sources name it (`docker.io` for Docker Hub).
    pub host: Spanned<String>,
    /// Extra CA certificates (PEM) to trust for it, relative to the manifest.
    #[serde(default)]
    pub ca_file: Option<Spanned<String>>,
    /// Speak plain HTTP to it (never the default).
    #[serde(default)]
    pub plain_http: bool,
}

/// An image to include.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageSpec {
    /// Where the image comes from: `oci-layout:PATH[:REF]`,
    /// `docker-archive:PATH[:REF]` or a registry reference
    /// (`host[:port]/repo[:tag][@digest]`, Docker Hub names normalised).
    pub source: Spanned<String>,
    /// Platforms to keep (`linux/amd64`); all when absent.
    #[serde(default)]
    pub platforms: Option<Vec<Spanned<String>>>,
    /// SBOMs the vendor supplies for this image, carried verbatim.
    #[serde(default)]
    pub sboms: Option<Vec<SbomSpec>>,
    /// Repository it is published under (`vendor/control-plane`); defaults to
    /// the repository part of the source reference.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// Tag; defaults to the tag of the source reference.
    #[serde(default)]
    pub tag: Option<Spanned<String>>,
}

/// A vendor-supplied SBOM for an image.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SbomSpec {
    /// The SBOM file (JSON).
    pub source: Spanned<String>,
    /// `cyclonedx` or `spdx`.
    pub format: airgap_format::bundle_json::SbomFormat,
    /// The platform it describes (`linux/amd64`), if one.
    #[serde(default)]
    pub platform: Option<Spanned<String>>,
}

/// A chart to include.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChartSpec {
    /// A chart directory (packaged deterministically), a `.tgz`,
    /// `oci://host/path/name[:version]`, or a Helm repository URL.
    pub source: Spanned<String>,
    /// Chart name, for Helm repositories.
    #[serde(default)]
    pub chart: Option<Spanned<String>>,
    /// Chart version, for Helm repositories (and `oci://` sources without one).
    #[serde(default)]
    pub version: Option<Spanned<String>>,
}

impl ChartSpec {
    /// The parsed source.
    pub fn parsed(&self) -> Result<ChartSource, String> {
        ChartSource::parse(
            &self.source.value,
            self.chart.as_ref().map(|c| c.value.as_str()),
            self.version.as_ref().map(|v| v.value.as_str()),
        )
    }
}

impl ImageSpec {
    /// The platforms asked for, parsed.
    pub fn platform_filters(&self) -> Result<Option<Vec<PlatformFilter>>, String> {
        self.platforms
            .as_ref()
            .map(|list| {
                list.iter()
                    .map(|p| PlatformFilter::parse(&p.value))
                    .collect()
            })
            .transpose()
    }
}

/// A file to include.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileSpec {
    /// Path of the file.
    pub source: Spanned<String>,
    /// Name in the bundle (a relative path); defaults to the file name.
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    /// What the file is.
    #[serde(default = "default_kind")]
    pub kind: FileKind,
    /// Media type (`type/subtype`, RFC 6838); guessed from the extension
    /// when absent.
    #[serde(default)]
    pub media_type: Option<Spanned<String>>,
}

fn default_kind() -> FileKind {
    FileKind::Other
}

/// A manifest error: file, position and message on one line.
#[derive(Debug)]
pub struct ManifestError {
    /// The manifest file.
    pub file: String,
    /// 1-based line and column, when known.
    pub position: Option<(u32, u32)>,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((l, c)) => write!(f, "{}:{l}:{c}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ManifestError {}

impl Manifest {
    /// Builds an error located at `span`.
    pub fn error_at<T>(&self, span: &Spanned<T>, message: impl Into<String>) -> ManifestError {
        ManifestError {
            file: self.path.display().to_string(),
            position: Some((
                span.referenced.line() as u32,
                span.referenced.column() as u32,
            )),
            message: message.into(),
        }
    }

    /// Whether any image or chart comes from a registry or chart repository.
    pub fn has_remote_sources(&self) -> bool {
        self.doc.images.iter().any(|i| {
            matches!(
                ImageSource::parse(&i.source.value),
                Ok(ImageSource::Registry(_))
            )
        }) || self
            .doc
            .charts
            .iter()
            .any(|c| c.parsed().is_ok_and(|s| s.is_remote()))
    }

    /// Per-host connection settings from `registries:`, paths resolved.
    pub fn host_settings(&self) -> std::collections::BTreeMap<String, crate::pull::HostSettings> {
        self.doc
            .registries
            .iter()
            .map(|r| {
                (
                    crate::sources::reference::api_host(&r.host.value).to_string(),
                    crate::pull::HostSettings {
                        ca_files: r.ca_file.iter().map(|f| self.resolve(&f.value)).collect(),
                        plain_http: r.plain_http,
                    },
                )
            })
            .collect()
    }

    /// Resolves a manifest-relative path.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// Reads, parses and validates a manifest file.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let file = path.display().to_string();
        let plain = |message: String| ManifestError {
            file: file.clone(),
            position: None,
            message,
        };
        use airgap_format::regular_file::{read_regular, RegularFileError};
        let bytes = read_regular(path, MAX_MANIFEST_BYTES, "a manifest").map_err(|e| {
            plain(match e {
                RegularFileError::Io { source, .. } => format!("cannot open: {source}"),
                RegularFileError::NotRegular { kind, .. } => {
                    format!("is {kind}, not a regular file (give the manifest's path)")
                }
                RegularFileError::TooLarge { .. } => {
                    format!("larger than {MAX_MANIFEST_BYTES} bytes")
                }
            })
        })?;
        let text = String::from_utf8(bytes).map_err(|_| plain("not UTF-8 text".into()))?;
        Self::parse(&text, path)
    }

    /// Parses and validates manifest text read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Manifest, ManifestError> {
        let file = path.display().to_string();
        let doc: ManifestDoc = serde_saphyr::from_str(text).map_err(|e| {
            let position = e.location().map(|l| (l.line() as u32, l.column() as u32));
            let message = e
                .without_snippet()
                .to_string()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ");
            // The position is already in front of the message.
            let message = match position {
                Some((l, c)) => message.replace(&format!(" at line {l}, column {c}"), ""),
                None => message,
            };
            ManifestError {
                file: file.clone(),
                position,
                message,
            }
        })?;
        let base_dir = path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let m = Manifest {
            path: path.to_path_buf(),
            base_dir,
            doc,
        };
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<(), ManifestError> {
        let d = &self.doc;
        if !is_valid_name(&d.name.value) {
            return Err(self.error_at(
                &d.name,
                format!(
                    "name: {:?} is not valid: expected lowercase letters, digits, '.', '_' or '-'",
                    d.name.value
                ),
            ));
        }
        if let Err(e) = fields::parse_version(&d.version.value) {
            return Err(self.error_at(
                &d.version,
                format!(
                    "version: {} is not a semantic version such as 1.4.0 ({e}; expected {})",
                    quote(&d.version.value),
                    fields::VERSION_RULE
                ),
            ));
        }
        if let Some(desc) = &d.description {
            if !fields::is_valid_description(&desc.value) {
                return Err(self.error_at(
                    desc,
                    format!(
                        "description: {} is not valid: expected {}; remove the characters (a YAML block scalar gives line feeds, which are fine)",
                        quote(&desc.value),
                        fields::DESCRIPTION_RULE
                    ),
                ));
            }
        }
        for (i, img) in d.images.iter().enumerate() {
            ImageSource::parse(&img.source.value)
                .map_err(|e| self.error_at(&img.source, format!("images[{i}].source: {e}")))?;
            for (j, p) in img.platforms.iter().flatten().enumerate() {
                PlatformFilter::parse(&p.value)
                    .map_err(|e| self.error_at(p, format!("images[{i}].platforms[{j}]: {e}")))?;
            }
            if let Some(n) = &img.name {
                if !is_valid_repository(&n.value) {
                    return Err(self.error_at(n, format!(
                        "images[{i}].name: {:?} is not a repository name: expected lowercase path components such as vendor/control-plane",
                        n.value
                    )));
                }
            }
            if let Some(t) = &img.tag {
                if !is_valid_tag(&t.value) {
                    return Err(self.error_at(t, format!(
                        "images[{i}].tag: {:?} is not a tag: expected letters, digits, '.', '_' or '-', at most 128",
                        t.value
                    )));
                }
            }
        }
        for (i, c) in d.charts.iter().enumerate() {
            c.parsed()
                .map_err(|e| self.error_at(&c.source, format!("charts[{i}]: {e}")))?;
        }
        let mut hosts = std::collections::BTreeSet::new();
        for (i, r) in d.registries.iter().enumerate() {
            if !crate::sources::reference::valid_host(&r.host.value) {
                return Err(self.error_at(
                    &r.host,
                    format!(
                        "registries[{i}].host: {:?} is not HOST[:PORT] (no scheme, no path)",
                        r.host.value
                    ),
                ));
            }
            if !hosts.insert(crate::sources::reference::api_host(&r.host.value)) {
                return Err(self.error_at(
                    &r.host,
                    format!("registries[{i}].host: {} is listed twice", r.host.value),
                ));
            }
        }
        for (i, t) in d.templates.iter().enumerate() {
            if let Some(n) = &t.name {
                if !is_safe_relative_path(&n.value) {
                    return Err(self.error_at(n, format!(
                        "templates[{i}].name: {:?} is not a safe relative path (no '..', no leading '/')",
                        n.value
                    )));
                }
            }
        }
        for (i, f) in d.files.iter().enumerate() {
            if let Some(m) = &f.media_type {
                if !fields::is_valid_media_type(&m.value) {
                    return Err(self.error_at(
                        m,
                        format!(
                            "files[{i}].mediaType: {} is not a media type: expected {}, such as text/markdown",
                            quote(&m.value),
                            fields::MEDIA_TYPE_RULE
                        ),
                    ));
                }
            }
            if let Some(n) = &f.name {
                if !is_safe_relative_path(&n.value) {
                    return Err(self.error_at(n, format!(
                        "files[{i}].name: {:?} is not a safe relative path (no '..', no leading '/')",
                        n.value
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, String> {
        Manifest::parse(text, Path::new("m.yaml")).map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_a_full_manifest() {
        let m = parse(
            "name: demo\nversion: 1.0.0\nimages:\n  - source: oci-layout:img:demo/web:1.0\ncharts:\n  - source: charts/x\nfiles:\n  - source: README.md\n    kind: documentation\n",
        )
        .unwrap();
        assert_eq!(m.doc.images.len(), 1);
        assert_eq!(m.doc.files[0].kind, FileKind::Documentation);
    }

    #[test]
    fn unknown_field_is_located() {
        let e = parse("name: demo\nversion: 1.0.0\nimagez: []\n").unwrap_err();
        assert!(e.starts_with("m.yaml:3:"), "{e}");
        assert!(e.contains("imagez"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn bad_version_is_located() {
        let e = parse("name: demo\nversion: one\n").unwrap_err();
        assert!(e.starts_with("m.yaml:2:10: version:"), "{e}");
    }

    #[test]
    fn bad_source_is_located() {
        let e = parse("name: demo\nversion: 1.0.0\nimages:\n  - source: http://x\n").unwrap_err();
        assert!(e.starts_with("m.yaml:4:"), "{e}");
        assert!(e.contains("images[0].source"), "{e}");
    }

    #[test]
    fn bad_kind_names_the_allowed_values() {
        let e = parse("name: demo\nversion: 1.0.0\nfiles:\n  - source: a\n    kind: manual\n")
            .unwrap_err();
        assert!(e.starts_with("m.yaml:5:"), "{e}");
        assert!(e.contains("documentation"), "{e}");
    }

    #[test]
    fn registry_sources_and_settings() {
        let m = parse(
            "name: demo\nversion: 1.0.0\nimages:\n  - source: 127.0.0.1:5000/vendor/app:1.0\n    platforms: [linux/amd64]\ncharts:\n  - source: oci://127.0.0.1:5000/charts/web:1.0.0\n  - source: https://charts.example\n    chart: web\n    version: 1.0.0\nregistries:\n  - host: 127.0.0.1:5000\n    plainHttp: true\n",
        )
        .unwrap();
        assert!(m.doc.registries[0].plain_http);
        let e = parse("name: demo\nversion: 1.0.0\nimages:\n  - source: r.example/a:1\n    platforms: [linux]\n").unwrap_err();
        assert!(
            e.starts_with("m.yaml:5:") && e.contains("images[0].platforms[0]"),
            "{e}"
        );
        let e = parse("name: demo\nversion: 1.0.0\ncharts:\n  - source: https://charts.example\n")
            .unwrap_err();
        assert!(e.starts_with("m.yaml:4:") && e.contains("chart:"), "{e}");
        let e =
            parse("name: demo\nversion: 1.0.0\nregistries:\n  - host: https://r\n").unwrap_err();
        assert!(
            e.starts_with("m.yaml:4:") && e.contains("registries[0].host"),
            "{e}"
        );
    }

    #[test]
    fn malformed_yaml() {
        let e = parse("name: [demo\n").unwrap_err();
        assert!(e.starts_with("m.yaml:"), "{e}");
    }
}
