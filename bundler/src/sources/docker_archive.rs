//! `docker save` tarballs (`docker-archive:PATH[:REF]`), in both forms:
//! the legacy one (`manifest.json`, `<id>/layer.tar`, `<config>.json`) and
//! the OCI one Docker 25+ writes (an OCI layout inside the tarball, with a
//! `manifest.json` beside it). Entries are read in place; nothing is unpacked.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use airgap_format::bundle_json::REF_NAME_ANNOTATION;
use airgap_format::digest::hash_reader;
use airgap_format::display::escape;
use airgap_format::Digest;
use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::tar_index::TarIndex;
use super::{
    read_verified, split_reference, walk_descriptor, BlobData, BlobStore, ResolvedImage,
    SourceBlob, MAX_METADATA_BYTES, OCI_CONFIG, OCI_MANIFEST,
};

/// Annotation Docker and containerd put the full image name in.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A `docker save` tarball.
pub struct DockerArchive {
    index: TarIndex,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct LegacyEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Normalises an image name the way Docker does: `docker.io/` and
/// `library/` are implied, and `:latest` when no tag or digest is given.
pub fn normalize_name(name: &str) -> String {
    let mut n = name.to_string();
    let has_tag = split_reference(&n).is_some() || n.contains('@');
    if !has_tag {
        n.push_str(":latest");
    }
    let first = n.split('/').next().unwrap_or("");
    let has_host =
        n.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if !has_host {
        n = if n.contains('/') {
            format!("docker.io/{n}")
        } else {
            format!("docker.io/library/{n}")
        };
    }
    n
}

/// Short form for naming a bundled image: strips `docker.io/` and `library/`.
fn short_name(full: &str) -> String {
    let n = full.strip_prefix("docker.io/").unwrap_or(full);
    n.strip_prefix("library/").unwrap_or(n).to_string()
}

impl DockerArchive {
    /// Indexes the tarball.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            bail!("{}: docker archive not found", path.display());
        }
        Ok(DockerArchive {
            index: TarIndex::build(path)?,
        })
    }

    fn read_entry(&self, name: &str) -> Result<Vec<u8>> {
        let (offset, size) = self.index.file(name)?;
        if size > MAX_METADATA_BYTES {
            bail!(
                "{}: {} is larger than {MAX_METADATA_BYTES} bytes",
                self.describe(),
                escape(name)
            );
        }
        let mut out = Vec::with_capacity(size as usize);
        BlobData::File {
            path: self.index.path().to_path_buf(),
            offset,
        }
        .open(size)?
        .read_to_end(&mut out)?;
        Ok(out)
    }

    /// Resolves `reference` (`name:tag`, Docker-normalised), or the only image.
    pub fn resolve(&self, reference: Option<&str>) -> Result<ResolvedImage> {
        if self.index.contains("index.json") {
            if let Some(img) = self.resolve_oci(reference)? {
                return Ok(img);
            }
        }
        self.resolve_legacy(reference)
    }

    /// The OCI form; `None` when `index.json` lists no manifests (a known
    /// Docker quirk writes `"manifests": null`), so `manifest.json` is used.
    fn resolve_oci(&self, reference: Option<&str>) -> Result<Option<ResolvedImage>> {
        let bytes = self.read_entry("index.json")?;
        let index: serde_json::Value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: index.json is not JSON", self.describe()))?;
        let manifests = match index.get("manifests") {
            Some(serde_json::Value::Array(a)) if !a.is_empty() => a.clone(),
            _ => return Ok(None),
        };
        let names = |m: &serde_json::Value| -> Vec<String> {
            let a = m.get("annotations");
            let mut out = Vec::new();
            if let Some(n) = a
                .and_then(|a| a.get(CONTAINERD_NAME))
                .and_then(|n| n.as_str())
            {
                out.push(normalize_name(n));
            }
            if let Some(n) = a
                .and_then(|a| a.get(REF_NAME_ANNOTATION))
                .and_then(|n| n.as_str())
            {
                out.push(n.to_string());
            }
            out
        };
        let chosen = match reference {
            Some(r) => {
                let want = normalize_name(r);
                let found: Vec<&serde_json::Value> = manifests
                    .iter()
                    .filter(|m| names(m).iter().any(|n| *n == want || n == r))
                    .collect();
                match found.as_slice() {
                    [one] => *one,
                    [] => {
                        // Fall back to manifest.json, whose RepoTags may know it.
                        if self.index.contains("manifest.json") {
                            return Ok(None);
                        }
                        bail!("{}: no image named {r:?}", self.describe())
                    }
                    _ => bail!("{}: several images named {r:?}", self.describe()),
                }
            }
            None => match manifests.as_slice() {
                [one] => one,
                _ => bail!(
                    "{}: {} images; name one with docker-archive:PATH:NAME:TAG",
                    self.describe(),
                    manifests.len()
                ),
            },
        };
        let (top, blobs, platforms) = walk_descriptor(self, chosen)?;
        let default_name = chosen
            .get("annotations")
            .and_then(|a| a.get(CONTAINERD_NAME))
            .and_then(|n| n.as_str())
            .map(short_name)
            .or_else(|| reference.map(|r| short_name(&normalize_name(r))))
            .and_then(|n| split_reference(&n));
        Ok(Some(ResolvedImage {
            top,
            blobs,
            platforms,
            default_name,
            tag_suffix: None,
        }))
    }

    /// The legacy form: builds an OCI manifest for the image, deterministically.
    fn resolve_legacy(&self, reference: Option<&str>) -> Result<ResolvedImage> {
        let bytes = self.read_entry("manifest.json").with_context(|| {
            format!(
                "{}: neither an OCI index nor a manifest.json",
                self.describe()
            )
        })?;
        let entries: Vec<LegacyEntry> = serde_json::from_slice::<Option<Vec<LegacyEntry>>>(&bytes)
            .with_context(|| {
                format!(
                    "{}: manifest.json is not a docker save manifest",
                    self.describe()
                )
            })?
            .unwrap_or_default();
        let (entry, tag) = match reference {
            Some(r) => {
                let want = normalize_name(r);
                let found: Vec<(&LegacyEntry, String)> = entries
                    .iter()
                    .flat_map(|e| {
                        e.repo_tags
                            .iter()
                            .flatten()
                            .filter(|t| normalize_name(t) == want)
                            .map(move |t| (e, t.clone()))
                    })
                    .collect();
                match found.into_iter().next() {
                    Some(x) => x,
                    None => {
                        let tags: Vec<String> = entries
                            .iter()
                            .flat_map(|e| e.repo_tags.iter().flatten().cloned())
                            .collect();
                        bail!(
                            "{}: no image named {r:?} (available: {})",
                            self.describe(),
                            if tags.is_empty() {
                                "none".into()
                            } else {
                                escape(&tags.join(", ")).into_owned()
                            }
                        )
                    }
                }
            }
            None => match entries.as_slice() {
                [one] => (
                    one,
                    one.repo_tags
                        .iter()
                        .flatten()
                        .next()
                        .cloned()
                        .unwrap_or_default(),
                ),
                _ => bail!(
                    "{}: {} images; name one with docker-archive:PATH:NAME:TAG",
                    self.describe(),
                    entries.len()
                ),
            },
        };
        // Config: its digest is the hash of its bytes.
        let config_bytes = self.read_entry(&entry.config)?;
        let config_digest = Digest::of(&config_bytes);
        let config: serde_json::Value =
            serde_json::from_slice(&config_bytes).with_context(|| {
                format!("{}: {} is not JSON", self.describe(), escape(&entry.config))
            })?;
        let diff_ids: Vec<String> = config
            .pointer("/rootfs/diff_ids")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if diff_ids.len() != entry.layers.len() {
            bail!(
                "{}: config {} lists {} layers, manifest.json {}",
                self.describe(),
                escape(&entry.config),
                diff_ids.len(),
                entry.layers.len()
            );
        }
        let mut blobs = Vec::new();
        let mut layer_descs = Vec::new();
        for (i, name) in entry.layers.iter().enumerate() {
            let (offset, size) = self.index.file(name)?;
            let layer = escape(name);
            let data = BlobData::File {
                path: self.index.path().to_path_buf(),
                offset,
            };
            let mut head = [0u8; 4];
            let n = data.open(size)?.read(&mut head).unwrap_or(0);
            let media_type = if head[..n].starts_with(&[0x1f, 0x8b]) {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else if head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                "application/vnd.oci.image.layer.v1.tar+zstd"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            };
            let (digest, len) = hash_reader(data.open(size)?)
                .with_context(|| format!("{}: reading layer {layer}", self.describe()))?;
            if len != size {
                bail!("{}: layer {layer} is truncated", self.describe());
            }
            if media_type == "application/vnd.oci.image.layer.v1.tar"
                && diff_ids[i] != digest.to_string()
            {
                bail!(
                    "{}: layer {layer} has digest {digest}, but the config's diff_id is {}",
                    self.describe(),
                    escape(&diff_ids[i])
                );
            }
            layer_descs.push(serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": size}));
            blobs.push(SourceBlob {
                digest,
                size,
                media_type: media_type.to_string(),
                data,
            });
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
            "layers": layer_descs,
        });
        let manifest_bytes = airgap_format::canonical_json::to_canonical_vec(&manifest)?;
        let top = SourceBlob {
            digest: Digest::of(&manifest_bytes),
            size: manifest_bytes.len() as u64,
            media_type: OCI_MANIFEST.to_string(),
            data: BlobData::Memory(Arc::new(manifest_bytes)),
        };
        let config_blob = SourceBlob {
            digest: config_digest,
            size: config_bytes.len() as u64,
            media_type: OCI_CONFIG.to_string(),
            data: BlobData::Memory(Arc::new(config_bytes)),
        };
        let os = config.get("os").and_then(|x| x.as_str()).unwrap_or("linux");
        let arch = config
            .get("architecture")
            .and_then(|x| x.as_str())
            .unwrap_or("unknown");
        let platform = match config.get("variant").and_then(|x| x.as_str()) {
            Some(v) => format!("{os}/{arch}/{v}"),
            None => format!("{os}/{arch}"),
        };
        let mut all = vec![top.clone(), config_blob];
        for b in blobs {
            if !all.iter().any(|x| x.digest == b.digest) {
                all.push(b);
            }
        }
        Ok(ResolvedImage {
            top,
            blobs: all,
            platforms: vec![platform],
            default_name: split_reference(&short_name(&normalize_name(&tag)))
                .filter(|_| !tag.is_empty()),
            tag_suffix: None,
        })
    }
}

impl BlobStore for DockerArchive {
    fn describe(&self) -> String {
        format!("docker archive {}", self.index.path().display())
    }

    fn locate(&self, digest: &Digest, size: u64) -> Result<BlobData> {
        let name = format!("blobs/sha256/{}", digest.hex());
        let (offset, actual) = self
            .index
            .file(&name)
            .with_context(|| format!("{}: blob {digest} is missing", self.describe()))?;
        if actual != size {
            bail!(
                "{}: blob {digest} is {actual} bytes, its descriptor says {size}",
                self.describe()
            );
        }
        Ok(BlobData::File {
            path: self.index.path().to_path_buf(),
            offset,
        })
    }
}

/// Reads and verifies a small blob of a docker archive (for tests and tools).
pub fn read_blob(archive: &DockerArchive, digest: &Digest, size: u64) -> Result<Vec<u8>> {
    read_verified(archive, digest, size, "blob")
}

#[cfg(test)]
mod tests {
    use super::{normalize_name, DockerArchive};

    /// A legacy `docker save` tarball of one image with one uncompressed
    /// layer, whose config lists `diff_ids`.
    fn legacy(dir: &std::path::Path, diff_ids: &[String]) -> std::path::PathBuf {
        let layer = {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_ustar();
            h.set_size(2);
            h.set_cksum();
            b.append_data(&mut h, "hello", &b"hi"[..]).unwrap();
            b.into_inner().unwrap()
        };
        let config = serde_json::json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let manifest = serde_json::json!([{"Config": "c.json", "RepoTags": ["a/b:1"], "Layers": ["l/layer.tar"]}]);
        let path = dir.join(format!("{}.tar", diff_ids.len()));
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        for (name, data) in [
            ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
            ("c.json", serde_json::to_vec(&config).unwrap()),
            ("l/layer.tar", layer.clone()),
        ] {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        b.finish().unwrap();
        path
    }

    #[test]
    fn legacy_configs_must_match_their_layers() {
        // docs/format.md §6.3: as many diff_ids as layers, and an
        // uncompressed layer's digest equal to its diff_id.
        let dir = tempfile::tempdir().unwrap();
        let resolve = |ids: &[String]| {
            DockerArchive::open(&legacy(dir.path(), ids))
                .and_then(|a| a.resolve(None))
                .map_err(|e| format!("{e:#}"))
        };
        let e = resolve(&[]).err().unwrap();
        assert!(
            e.contains("config c.json lists 0 layers, manifest.json 1"),
            "{e}"
        );
        let wrong = format!("sha256:{}", "0".repeat(64));
        let e = resolve(std::slice::from_ref(&wrong)).err().unwrap();
        assert!(
            e.contains("layer l/layer.tar has digest sha256:")
                && e.contains(&format!("but the config's diff_id is {wrong}")),
            "{e}"
        );
    }

    #[test]
    fn names_from_the_tarball_are_escaped_in_errors() {
        // Found by the docker_save fuzz target: the tar crate's message for
        // a corrupt header, and names taken from manifest.json and the
        // config, went into errors as they were, line feeds included.
        let dir = tempfile::tempdir().unwrap();
        let mut block = [0u8; 512];
        block[..4].copy_from_slice(b"h\nx\x1b");
        block[148..156].copy_from_slice(b"zzzzzzz\0");
        let corrupt = dir.path().join("corrupt.tar");
        std::fs::write(&corrupt, block).unwrap();
        let e = format!("{:#}", DockerArchive::open(&corrupt).err().unwrap());
        assert!(
            e.contains("corrupt tar archive: ") && e.contains("h\\nx\\u{1b}"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e:?}");
        let manifest =
            serde_json::json!([{"Config": "c\n.json", "RepoTags": ["a/b:1\n"], "Layers": []}]);
        let path = dir.path().join("names.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&path).unwrap());
        let data = serde_json::to_vec(&manifest).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, "manifest.json", &data[..]).unwrap();
        b.finish().unwrap();
        drop(b);
        let a = DockerArchive::open(&path).unwrap();
        for r in [None, Some("x/y:1")] {
            let e = format!("{:#}", a.resolve(r).err().unwrap());
            assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn normalizes_like_docker() {
        assert_eq!(
            normalize_name("busybox"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(normalize_name("demo/web:1.0"), "docker.io/demo/web:1.0");
        assert_eq!(
            normalize_name("docker.io/demo/web:1.0"),
            "docker.io/demo/web:1.0"
        );
        assert_eq!(
            normalize_name("localhost:5000/web"),
            "localhost:5000/web:latest"
        );
    }
}
