//! Deterministic container-image fixtures.
//!
//! Everything here is byte-for-byte reproducible: the same inputs always give
//! the same bytes. Tar entries are sorted by path and carry mtime 0, uid/gid 0
//! and empty user/group names; gzip streams carry mtime 0 and no file name;
//! JSON documents are serialized from structs with a fixed field order and
//! `BTreeMap`s, so serde_json's `preserve_order` feature cannot change them.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use flate2::{Compression, GzBuilder};
use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Media type of an OCI image index.
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of an OCI image manifest.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of an OCI image config.
pub const OCI_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of an uncompressed OCI layer.
pub const OCI_LAYER_TAR_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip-compressed OCI layer.
pub const OCI_LAYER_TAR_GZIP_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Annotation naming a reference in an OCI layout's `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation Docker 25+/containerd puts on `index.json` entries of `docker save` output.
pub const ANNOTATION_CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
/// Contents of the `oci-layout` file.
pub const OCI_LAYOUT_FILE_CONTENTS: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Reference of the demo OCI-layout image (multi-arch, gzip top layer).
pub const DEMO_WEB_REF: &str = "demo/web:1.0.0";
/// Reference of the demo docker-archive image (linux/amd64, uncompressed layers).
pub const DEMO_WORKER_REF: &str = "demo/worker:1.0.0";
/// Reference used by the `bench-layout` generator.
pub const BENCH_REF: &str = "bench/big:1.0";

/// Timestamp written wherever a format wants one.
const EPOCH: &str = "1970-01-01T00:00:00Z";
/// `PATH` written into image configs.
const DEFAULT_PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// ---------------------------------------------------------------------------
// Hashing, gzip, tar
// ---------------------------------------------------------------------------

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// OCI digest string `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// `len` incompressible bytes (xorshift64), the same for the same seed.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Deterministic gzip of `bytes` (mtime 0, no file name, default level).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("gzip into memory cannot fail");
    enc.finish().expect("gzip into memory cannot fail")
}

/// One entry of a tar built in memory.
#[derive(Clone, Debug)]
enum TarEntry {
    Dir,
    File { data: Vec<u8>, mode: u32 },
    Symlink(String),
}

fn tar_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_username("").expect("empty user name fits");
    h.set_groupname("").expect("empty group name fits");
    h
}

fn append_tar_entry<W: Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    entry: &TarEntry,
) -> io::Result<()> {
    match entry {
        TarEntry::Dir => {
            let mut h = tar_header(tar::EntryType::Directory, 0o755, 0);
            b.append_data(&mut h, path, io::empty())
        }
        TarEntry::File { data, mode } => {
            let mut h = tar_header(tar::EntryType::Regular, *mode, data.len() as u64);
            b.append_data(&mut h, path, data.as_slice())
        }
        TarEntry::Symlink(target) => {
            let mut h = tar_header(tar::EntryType::Symlink, 0o777, 0);
            b.append_link(&mut h, path, target)
        }
    }
}

/// Tar of `entries`, written in path order (the map is sorted).
fn tar_bytes(entries: &BTreeMap<String, TarEntry>) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, entry) in entries {
        append_tar_entry(&mut b, path, entry).expect("tar into memory cannot fail");
    }
    b.into_inner().expect("tar into memory cannot fail")
}

/// Inserts a directory entry (`a/`, `a/b/`, ...) for every parent of `path`.
fn insert_parent_dirs(entries: &mut BTreeMap<String, TarEntry>, path: &str) {
    for (i, c) in path.char_indices() {
        if c == '/' && i > 0 {
            entries
                .entry(path[..=i].to_string())
                .or_insert(TarEntry::Dir);
        }
    }
}

/// An uncompressed layer tar holding regular files `(path, contents, mode)`.
///
/// Parent directory entries (`bin/` before `bin/hello`) are added
/// automatically with mode 0755; entries are sorted by path. Leading `/` or
/// `./` in paths are stripped. A later duplicate path replaces an earlier one.
pub fn layer_tar(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut entries = BTreeMap::new();
    for (path, data, mode) in files {
        let path = path.trim_start_matches("./").trim_start_matches('/');
        assert!(
            !path.is_empty() && !path.ends_with('/'),
            "layer_tar: bad file path {path:?}"
        );
        insert_parent_dirs(&mut entries, path);
        entries.insert(
            path.to_string(),
            TarEntry::File {
                data: data.to_vec(),
                mode: *mode,
            },
        );
    }
    tar_bytes(&entries)
}

/// Writes `bytes` to `path` through a temporary file in the same directory.
fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(&parent)
        .with_context(|| format!("creating a temporary file in {}", parent.display()))?;
    tmp.write_all(bytes)?;
    make_world_readable(tmp.as_file())?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Temporary files are created 0600; fixtures are plain 0644 files.
fn make_world_readable(file: &File) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

// ---------------------------------------------------------------------------
// Image description
// ---------------------------------------------------------------------------

/// One layer blob of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    /// The blob as stored in an OCI layout (compressed or not, per `media_type`).
    pub bytes: Vec<u8>,
    /// The uncompressed layer tar; its SHA-256 is the layer's diff_id. Equal to
    /// `bytes` for uncompressed layers. Docker archives store these bytes.
    pub diff_id_source: Vec<u8>,
    /// OCI layer media type of `bytes`.
    pub media_type: String,
}

impl LayerBlob {
    /// An uncompressed layer (`application/vnd.oci.image.layer.v1.tar`).
    pub fn uncompressed(tar: Vec<u8>) -> Self {
        LayerBlob {
            bytes: tar.clone(),
            diff_id_source: tar,
            media_type: OCI_LAYER_TAR_MEDIA_TYPE.to_string(),
        }
    }

    /// A gzip layer (`application/vnd.oci.image.layer.v1.tar+gzip`) of `tar`.
    pub fn gzipped(tar: Vec<u8>) -> Self {
        LayerBlob {
            bytes: gzip(&tar),
            diff_id_source: tar,
            media_type: OCI_LAYER_TAR_GZIP_MEDIA_TYPE.to_string(),
        }
    }

    /// `sha256:<hex>` of the stored bytes (the blob digest in a manifest).
    pub fn digest(&self) -> String {
        sha256_digest(&self.bytes)
    }

    /// `sha256:<hex>` of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub fn diff_id(&self) -> String {
        sha256_digest(&self.diff_id_source)
    }
}

/// One platform's image: config fields and layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformImage {
    /// `os`, e.g. `linux`.
    pub os: String,
    /// `architecture`, e.g. `amd64`.
    pub architecture: String,
    /// Optional `variant`, e.g. `v8`.
    pub variant: Option<String>,
    /// Layers, base first.
    pub layers: Vec<LayerBlob>,
    /// `config.Cmd`.
    pub cmd: Vec<String>,
}

impl PlatformImage {
    /// A `linux/<architecture>` image without variant.
    pub fn linux(architecture: &str, layers: Vec<LayerBlob>, cmd: &[&str]) -> Self {
        PlatformImage {
            os: "linux".to_string(),
            architecture: architecture.to_string(),
            variant: None,
            layers,
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The image config JSON (`application/vnd.oci.image.config.v1+json`).
    pub fn config_json(&self) -> Vec<u8> {
        let diff_ids: Vec<String> = self.layers.iter().map(LayerBlob::diff_id).collect();
        config_json(&self.platform(), &self.cmd, &diff_ids)
    }

    /// This image with every layer stored uncompressed (what Docker archives hold).
    pub fn to_uncompressed(&self) -> PlatformImage {
        PlatformImage {
            layers: self
                .layers
                .iter()
                .map(|l| LayerBlob::uncompressed(l.diff_id_source.clone()))
                .collect(),
            ..self.clone()
        }
    }

    fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            variant: self.variant.clone(),
        }
    }
}

/// An image under one reference: one platform gives an image manifest,
/// several give an image index whose entries carry `platform`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSpec {
    /// Reference name, e.g. `demo/web:1.0.0` (for docker archives `name:tag`).
    pub ref_name: String,
    /// One or more platform images.
    pub platforms: Vec<PlatformImage>,
}

// ---------------------------------------------------------------------------
// OCI JSON
// ---------------------------------------------------------------------------

#[derive(Serialize, Clone, Debug)]
struct Platform {
    architecture: String,
    os: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<Platform>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
}

impl Descriptor {
    fn new(media_type: &str, digest: String, size: u64) -> Self {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }
}

#[derive(Serialize)]
struct ImageConfig<'a> {
    created: &'static str,
    architecture: &'a str,
    os: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
    config: ExecConfig<'a>,
    rootfs: RootFs<'a>,
    history: Vec<History>,
}

#[derive(Serialize)]
struct ExecConfig<'a> {
    #[serde(rename = "Env")]
    env: [&'static str; 1],
    #[serde(rename = "Cmd", skip_serializing_if = "<[String]>::is_empty")]
    cmd: &'a [String],
}

#[derive(Serialize)]
struct RootFs<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: &'a [String],
}

#[derive(Serialize)]
struct History {
    created: &'static str,
    created_by: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest<'a> {
    schema_version: u32,
    media_type: &'static str,
    config: &'a Descriptor,
    layers: &'a [Descriptor],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImageIndex<'a> {
    schema_version: u32,
    media_type: &'static str,
    /// `None` serializes as `"manifests": null` (the Docker quirk).
    manifests: Option<&'a [Descriptor]>,
}

fn config_json(platform: &Platform, cmd: &[String], diff_ids: &[String]) -> Vec<u8> {
    let history = (0..diff_ids.len())
        .map(|i| History {
            created: EPOCH,
            created_by: format!("airgap-e2e fixture layer {i}"),
        })
        .collect();
    let config = ImageConfig {
        created: EPOCH,
        architecture: &platform.architecture,
        os: &platform.os,
        variant: platform.variant.as_deref(),
        config: ExecConfig {
            env: [DEFAULT_PATH_ENV],
            cmd,
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids,
        },
        history,
    };
    serde_json::to_vec(&config).expect("config serializes")
}

fn manifest_json(config: &Descriptor, layers: &[Descriptor]) -> Vec<u8> {
    serde_json::to_vec(&ImageManifest {
        schema_version: 2,
        media_type: OCI_MANIFEST_MEDIA_TYPE,
        config,
        layers,
    })
    .expect("manifest serializes")
}

fn index_json(manifests: Option<&[Descriptor]>) -> Vec<u8> {
    serde_json::to_vec(&ImageIndex {
        schema_version: 2,
        media_type: OCI_INDEX_MEDIA_TYPE,
        manifests,
    })
    .expect("index serializes")
}

/// Content-addressed blobs, each kept once.
#[derive(Default)]
struct BlobSet {
    blobs: BTreeMap<String, Vec<u8>>,
}

impl BlobSet {
    fn add(&mut self, media_type: &str, bytes: &[u8]) -> Descriptor {
        let hex = sha256_hex(bytes);
        let desc = Descriptor::new(media_type, format!("sha256:{hex}"), bytes.len() as u64);
        self.blobs.entry(hex).or_insert_with(|| bytes.to_vec());
        desc
    }

    fn write_to_layout(&self, dir: &Path) -> Result<()> {
        let blob_dir = dir.join("blobs").join("sha256");
        fs::create_dir_all(&blob_dir)
            .with_context(|| format!("creating {}", blob_dir.display()))?;
        for (hex, bytes) in &self.blobs {
            let path = blob_dir.join(hex);
            fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    fn insert_into_tar(&self, entries: &mut BTreeMap<String, TarEntry>) {
        entries.insert("blobs/".to_string(), TarEntry::Dir);
        entries.insert("blobs/sha256/".to_string(), TarEntry::Dir);
        for (hex, bytes) in &self.blobs {
            entries.insert(
                format!("blobs/sha256/{hex}"),
                TarEntry::File {
                    data: bytes.clone(),
                    mode: 0o644,
                },
            );
        }
    }
}

/// Adds one platform image (layers, config, manifest) and returns the manifest descriptor.
fn add_platform_image(p: &PlatformImage, blobs: &mut BlobSet) -> Descriptor {
    let layers: Vec<Descriptor> = p
        .layers
        .iter()
        .map(|l| blobs.add(&l.media_type, &l.bytes))
        .collect();
    let config = blobs.add(OCI_CONFIG_MEDIA_TYPE, &p.config_json());
    blobs.add(OCI_MANIFEST_MEDIA_TYPE, &manifest_json(&config, &layers))
}

/// Adds an image and returns its top-level descriptor (manifest or index).
fn add_image(spec: &ImageSpec, blobs: &mut BlobSet) -> Result<Descriptor> {
    match spec.platforms.as_slice() {
        [] => bail!("image {} has no platforms", spec.ref_name),
        [one] => Ok(add_platform_image(one, blobs)),
        many => {
            let entries: Vec<Descriptor> = many
                .iter()
                .map(|p| {
                    let mut d = add_platform_image(p, blobs);
                    d.platform = Some(p.platform());
                    d
                })
                .collect();
            Ok(blobs.add(OCI_INDEX_MEDIA_TYPE, &index_json(Some(&entries))))
        }
    }
}

fn write_layout_metadata(dir: &Path, descriptors: &[Descriptor]) -> Result<()> {
    fs::write(dir.join("oci-layout"), OCI_LAYOUT_FILE_CONTENTS)
        .with_context(|| format!("writing {}/oci-layout", dir.display()))?;
    fs::write(dir.join("index.json"), index_json(Some(descriptors)))
        .with_context(|| format!("writing {}/index.json", dir.display()))?;
    Ok(())
}

/// Writes an OCI image layout into `dir` (created if missing): `oci-layout`,
/// `index.json` with one descriptor per image annotated with
/// `org.opencontainers.image.ref.name` = `ref_name`, and `blobs/sha256/<hex>`
/// for every blob (blobs shared between images are written once).
///
/// Returns the top-level digest (`sha256:<hex>`) of each image, in order.
/// Files already in `dir` that are not rewritten are left alone.
pub fn write_oci_layout(dir: &Path, images: &[ImageSpec]) -> Result<Vec<String>> {
    let mut blobs = BlobSet::default();
    let mut descriptors = Vec::with_capacity(images.len());
    for image in images {
        let mut d = add_image(image, &mut blobs)?;
        d.annotations
            .insert(ANNOTATION_REF_NAME.to_string(), image.ref_name.clone());
        descriptors.push(d);
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    blobs.write_to_layout(dir)?;
    write_layout_metadata(dir, &descriptors)?;
    Ok(descriptors.into_iter().map(|d| d.digest).collect())
}

// ---------------------------------------------------------------------------
// Docker archives
// ---------------------------------------------------------------------------

/// Splits `name:tag` (tag defaults to `latest`; a `:` before the last `/` is a port).
fn split_name_tag(reference: &str) -> Result<(String, String)> {
    ensure!(
        !reference.contains('@'),
        "docker archive references cannot carry a digest: {reference}"
    );
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => {
            let (name, tag) = (
                &reference[..last_slash + i],
                &reference[last_slash + i + 1..],
            );
            ensure!(
                !name.is_empty() && !tag.is_empty(),
                "bad reference {reference}"
            );
            Ok((name.to_string(), tag.to_string()))
        }
        None => {
            ensure!(!reference.is_empty(), "empty reference");
            Ok((reference.to_string(), "latest".to_string()))
        }
    }
}

/// Docker's fully-qualified form: `demo/web` → `docker.io/demo/web`, `web` → `docker.io/library/web`.
fn docker_full_name(name: &str) -> String {
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            name.to_string()
        }
        Some(_) => format!("docker.io/{name}"),
        None => format!("docker.io/library/{name}"),
    }
}

/// Deterministic 64-hex legacy layer id: a chain over the parent id and the diff_id,
/// so a shared base layer gets the same id in every image.
fn legacy_layer_id(parent: Option<&str>, diff_id: &str) -> String {
    sha256_hex(format!("{}\n{diff_id}", parent.unwrap_or("")).as_bytes())
}

#[derive(Serialize)]
struct LegacyLayerJson<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent: Option<&'a str>,
    created: &'static str,
}

#[derive(Serialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn single_platform(image: &ImageSpec) -> Result<&PlatformImage> {
    match image.platforms.as_slice() {
        [one] => Ok(one),
        other => bail!(
            "docker archives hold single-platform images; {} has {} platforms",
            image.ref_name,
            other.len()
        ),
    }
}

/// Adds `<layerid>/`, `<layerid>/VERSION`, `<layerid>/json` and `<layerid>/layer.tar`
/// (built by `layer_tar_entry`) for each layer; returns the layer ids.
fn insert_legacy_layer_dirs(
    entries: &mut BTreeMap<String, TarEntry>,
    p: &PlatformImage,
    mut layer_tar_entry: impl FnMut(&LayerBlob) -> TarEntry,
) -> Vec<String> {
    let mut ids: Vec<String> = Vec::with_capacity(p.layers.len());
    for layer in &p.layers {
        let parent = ids.last().map(String::as_str);
        let id = legacy_layer_id(parent, &layer.diff_id());
        let json = serde_json::to_vec(&LegacyLayerJson {
            id: &id,
            parent,
            created: EPOCH,
        })
        .expect("layer json serializes");
        entries.insert(format!("{id}/"), TarEntry::Dir);
        entries.insert(
            format!("{id}/VERSION"),
            TarEntry::File {
                data: b"1.0".to_vec(),
                mode: 0o644,
            },
        );
        entries.insert(
            format!("{id}/json"),
            TarEntry::File {
                data: json,
                mode: 0o644,
            },
        );
        entries.insert(format!("{id}/layer.tar"), layer_tar_entry(layer));
        ids.push(id);
    }
    ids
}

fn insert_docker_metadata(
    entries: &mut BTreeMap<String, TarEntry>,
    manifest: &[DockerManifestEntry],
    repositories: &BTreeMap<String, BTreeMap<String, String>>,
) {
    entries.insert(
        "manifest.json".to_string(),
        TarEntry::File {
            data: serde_json::to_vec(manifest).expect("manifest.json serializes"),
            mode: 0o644,
        },
    );
    entries.insert(
        "repositories".to_string(),
        TarEntry::File {
            data: serde_json::to_vec(repositories).expect("repositories serializes"),
            mode: 0o644,
        },
    );
}

/// Writes a classic `docker save` tarball to `path`: `manifest.json`,
/// `<config-hex>.json`, per layer `<layerid>/VERSION`, `<layerid>/json` and
/// `<layerid>/layer.tar` (uncompressed), and `repositories`.
///
/// Images must be single-platform and `ref_name` a `name:tag`.
pub fn write_docker_archive_legacy(path: &Path, images: &[ImageSpec]) -> Result<()> {
    let mut entries = BTreeMap::new();
    let mut manifest = Vec::with_capacity(images.len());
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let p = single_platform(image)?;
        let (name, tag) = split_name_tag(&image.ref_name)?;
        let config = p.config_json();
        let config_name = format!("{}.json", sha256_hex(&config));
        entries.insert(
            config_name.clone(),
            TarEntry::File {
                data: config,
                mode: 0o644,
            },
        );
        let ids = insert_legacy_layer_dirs(&mut entries, p, |layer| TarEntry::File {
            data: layer.diff_id_source.clone(),
            mode: 0o644,
        });
        if let Some(top) = ids.last() {
            repositories
                .entry(name)
                .or_default()
                .insert(tag, top.clone());
        }
        manifest.push(DockerManifestEntry {
            config: config_name,
            repo_tags: vec![image.ref_name.clone()],
            layers: ids.iter().map(|id| format!("{id}/layer.tar")).collect(),
        });
    }
    insert_docker_metadata(&mut entries, &manifest, &repositories);
    write_file_atomic(path, &tar_bytes(&entries))
}

/// Writes a `docker save` tarball in the Docker 25+ form to `path`: an OCI
/// layout (`oci-layout`, `index.json`, `blobs/sha256/...` with uncompressed
/// `application/vnd.oci.image.layer.v1.tar` layers) plus a `manifest.json`
/// whose `Config`/`Layers` are `blobs/sha256/<hex>` paths, `repositories`,
/// and per layer a legacy `<layerid>/` directory whose `layer.tar` is a
/// symlink to `../blobs/sha256/<hex>`.
///
/// `index.json` entries carry `io.containerd.image.name` =
/// `docker.io/<name>:<tag>` and `org.opencontainers.image.ref.name` = `<tag>`.
/// With `null_manifests`, `index.json` has `"manifests": null` (a Docker
/// quirk), so readers must fall back to `manifest.json`.
pub fn write_docker_archive_oci(
    path: &Path,
    images: &[ImageSpec],
    null_manifests: bool,
) -> Result<()> {
    let mut entries = BTreeMap::new();
    let mut blobs = BlobSet::default();
    let mut descriptors = Vec::with_capacity(images.len());
    let mut manifest = Vec::with_capacity(images.len());
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for image in images {
        let p = single_platform(image)?.to_uncompressed();
        let (name, tag) = split_name_tag(&image.ref_name)?;
        let mut d = add_platform_image(&p, &mut blobs);
        d.annotations.insert(
            ANNOTATION_CONTAINERD_IMAGE_NAME.to_string(),
            format!("{}:{tag}", docker_full_name(&name)),
        );
        d.annotations
            .insert(ANNOTATION_REF_NAME.to_string(), tag.clone());
        descriptors.push(d);

        let config_hex = sha256_hex(&p.config_json());
        let ids = insert_legacy_layer_dirs(&mut entries, &p, |layer| {
            TarEntry::Symlink(format!("../blobs/sha256/{}", sha256_hex(&layer.bytes)))
        });
        if let Some(top) = ids.last() {
            repositories
                .entry(name)
                .or_default()
                .insert(tag, top.clone());
        }
        manifest.push(DockerManifestEntry {
            config: format!("blobs/sha256/{config_hex}"),
            repo_tags: vec![image.ref_name.clone()],
            layers: p
                .layers
                .iter()
                .map(|l| format!("blobs/sha256/{}", sha256_hex(&l.bytes)))
                .collect(),
        });
    }
    blobs.insert_into_tar(&mut entries);
    let index = if null_manifests {
        index_json(None)
    } else {
        index_json(Some(&descriptors))
    };
    entries.insert(
        "index.json".to_string(),
        TarEntry::File {
            data: index,
            mode: 0o644,
        },
    );
    entries.insert(
        "oci-layout".to_string(),
        TarEntry::File {
            data: OCI_LAYOUT_FILE_CONTENTS.as_bytes().to_vec(),
            mode: 0o644,
        },
    );
    insert_docker_metadata(&mut entries, &manifest, &repositories);
    write_file_atomic(path, &tar_bytes(&entries))
}

// ---------------------------------------------------------------------------
// Streaming benchmark layout
// ---------------------------------------------------------------------------

/// A writer that hashes and counts everything written through it.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// Returns the inner writer, the hex SHA-256 and the byte count.
    fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.len)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `remaining` pseudo-random bytes.
struct RandomReader {
    rng: SmallRng,
    remaining: u64,
}

impl Read for RandomReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        self.rng.fill_bytes(&mut buf[..n]);
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Streams one gzip layer (a tar with `data/layer-NNNN.bin` of `size` random
/// bytes) into `blob_dir`; returns its descriptor and diff_id.
fn stream_gzip_layer(
    blob_dir: &Path,
    index: usize,
    size: u64,
    seed: u64,
) -> Result<(Descriptor, String)> {
    let tmp = tempfile::NamedTempFile::new_in(blob_dir)
        .with_context(|| format!("creating a temporary file in {}", blob_dir.display()))?;
    let (compressed_hex, compressed_len, diff_hex) = {
        let file: &File = tmp.as_file();
        let compressed = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        let gz = GzBuilder::new()
            .mtime(0)
            .write(compressed, Compression::fast());
        let mut tar = tar::Builder::new(HashingWriter::new(gz));
        append_tar_entry(&mut tar, "data/", &TarEntry::Dir)?;
        let mut header = tar_header(tar::EntryType::Regular, 0o644, size);
        let layer_seed = seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let data = RandomReader {
            rng: SmallRng::seed_from_u64(layer_seed),
            remaining: size,
        };
        tar.append_data(&mut header, format!("data/layer-{index:04}.bin"), data)?;
        let (gz, diff_hex, _) = tar.into_inner()?.finish();
        let (buffered, compressed_hex, compressed_len) = gz.finish()?.finish();
        buffered.into_inner().map_err(|e| e.into_error())?;
        (compressed_hex, compressed_len, diff_hex)
    };
    make_world_readable(tmp.as_file())?;
    let dest = blob_dir.join(&compressed_hex);
    tmp.persist(&dest)
        .with_context(|| format!("writing {}", dest.display()))?;
    let desc = Descriptor::new(
        OCI_LAYER_TAR_GZIP_MEDIA_TYPE,
        format!("sha256:{compressed_hex}"),
        compressed_len,
    );
    Ok((desc, format!("sha256:{diff_hex}")))
}

/// Writes an OCI layout into `dir` with one linux/amd64 image `ref_name`
/// whose `layer_count` gzip layers each hold one file of pseudo-random
/// (incompressible) bytes, `total_bytes` of file data in all.
///
/// Layers are streamed (tar → gzip level 1 → temporary file, hashing both the
/// tar and the gzip bytes on the way) and renamed to `blobs/sha256/<hex>`, so
/// memory use does not grow with the size. Same arguments give the same bytes.
pub fn write_gzip_layout_streaming(
    dir: &Path,
    ref_name: &str,
    total_bytes: u64,
    layer_count: usize,
    seed: u64,
) -> Result<()> {
    ensure!(layer_count > 0, "layer_count must be at least 1");
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).with_context(|| format!("creating {}", blob_dir.display()))?;
    let per_layer = total_bytes / layer_count as u64;
    let remainder = total_bytes % layer_count as u64;
    let mut layers = Vec::with_capacity(layer_count);
    let mut diff_ids = Vec::with_capacity(layer_count);
    for i in 0..layer_count {
        let size = per_layer + if i + 1 == layer_count { remainder } else { 0 };
        let (desc, diff_id) = stream_gzip_layer(&blob_dir, i, size, seed)?;
        layers.push(desc);
        diff_ids.push(diff_id);
    }
    let platform = Platform {
        architecture: "amd64".to_string(),
        os: "linux".to_string(),
        variant: None,
    };
    let cmd = vec!["/bin/true".to_string()];
    let mut blobs = BlobSet::default();
    let config = blobs.add(
        OCI_CONFIG_MEDIA_TYPE,
        &config_json(&platform, &cmd, &diff_ids),
    );
    let mut top = blobs.add(OCI_MANIFEST_MEDIA_TYPE, &manifest_json(&config, &layers));
    top.annotations
        .insert(ANNOTATION_REF_NAME.to_string(), ref_name.to_string());
    blobs.write_to_layout(dir)?;
    write_layout_metadata(dir, &[top])
}

// ---------------------------------------------------------------------------
// Demo images
// ---------------------------------------------------------------------------

/// The uncompressed base layer shared by both demo images:
/// `etc/os-release` and the `bin/hello` shell script (mode 0755).
pub fn demo_base_layer() -> LayerBlob {
    LayerBlob::uncompressed(layer_tar(&[
        (
            "etc/os-release",
            b"NAME=\"Airgap Demo Linux\"\nID=airgap-demo\nVERSION_ID=1.0\nPRETTY_NAME=\"Airgap Demo Linux 1.0\"\n",
            0o644,
        ),
        ("bin/hello", b"#!/bin/sh\necho hello from the demo\n", 0o755),
    ]))
}

/// The two demo images, sharing [`demo_base_layer`] (same blob digest in both):
///
/// - `.0`: for an OCI layout, [`DEMO_WEB_REF`], multi-arch (linux/amd64 and
///   linux/arm64, same layers, different configs), top layer gzip;
/// - `.1`: for a docker archive, [`DEMO_WORKER_REF`], linux/amd64,
///   uncompressed layers.
pub fn demo_images() -> (Vec<ImageSpec>, Vec<ImageSpec>) {
    let base = demo_base_layer();
    let web_top = LayerBlob::gzipped(layer_tar(&[
        (
            "srv/www/index.html",
            b"<!doctype html>\n<title>demo web</title>\n<p>hello from demo/web 1.0.0</p>\n",
            0o644,
        ),
        (
            "etc/demo/web.conf",
            b"listen = 0.0.0.0:8080\nroot = /srv/www\n",
            0o644,
        ),
    ]));
    let web_cmd = ["/bin/sh", "-c", "/bin/hello && cat /srv/www/index.html"];
    let web = ImageSpec {
        ref_name: DEMO_WEB_REF.to_string(),
        platforms: ["amd64", "arm64"]
            .iter()
            .map(|arch| PlatformImage::linux(arch, vec![base.clone(), web_top.clone()], &web_cmd))
            .collect(),
    };
    let worker_top = LayerBlob::uncompressed(layer_tar(&[
        (
            "opt/worker/run.sh",
            b"#!/bin/sh\n/bin/hello\necho worker 1.0.0 processing jobs\n",
            0o755,
        ),
        (
            "etc/demo/worker.conf",
            b"queue = jobs\nconcurrency = 2\n",
            0o644,
        ),
    ]));
    let worker = ImageSpec {
        ref_name: DEMO_WORKER_REF.to_string(),
        platforms: vec![PlatformImage::linux(
            "amd64",
            vec![base, worker_top],
            &["/opt/worker/run.sh"],
        )],
    };
    (vec![web], vec![worker])
}

/// Where [`write_demo`] put the demo images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoFixtures {
    /// `OUT_DIR/images/web-oci`: OCI layout holding [`DEMO_WEB_REF`].
    pub web_oci_dir: PathBuf,
    /// `OUT_DIR/images/worker-docker.tar`: legacy `docker save` of [`DEMO_WORKER_REF`].
    pub worker_docker_tar: PathBuf,
}

/// Writes the demo images under `out_dir/images/` (see [`DemoFixtures`]).
/// An existing `web-oci` directory is replaced, so reruns give identical trees.
pub fn write_demo(out_dir: &Path) -> Result<DemoFixtures> {
    let (oci, docker) = demo_images();
    let images = out_dir.join("images");
    let web_oci_dir = images.join("web-oci");
    let worker_docker_tar = images.join("worker-docker.tar");
    if web_oci_dir.exists() {
        fs::remove_dir_all(&web_oci_dir)
            .with_context(|| format!("removing {}", web_oci_dir.display()))?;
    }
    write_oci_layout(&web_oci_dir, &oci)?;
    write_docker_archive_legacy(&worker_docker_tar, &docker)?;
    Ok(DemoFixtures {
        web_oci_dir,
        worker_docker_tar,
    })
}

// ---------------------------------------------------------------------------
// Reference product images
// ---------------------------------------------------------------------------

/// References of the reference product's images, in one OCI layout.
pub const REFERENCE_REFS: [&str; 3] = [
    "vendor/control-plane:1.4.0",
    "vendor/workspace-server:1.4.0",
    "vendor/dashboard:1.4.0",
];

/// Small stand-ins for the reference product's three images (control plane,
/// workspace server, dashboard), sharing one base layer; the control plane
/// and workspace server are multi-arch.
pub fn reference_images() -> Vec<ImageSpec> {
    let base = LayerBlob::gzipped(layer_tar(&[
        (
            "etc/os-release",
            b"NAME=\"Vendor Base\"\nID=vendor-base\nVERSION_ID=1.4\n",
            0o644,
        ),
        ("etc/ssl/certs/.keep", b"", 0o644),
    ]));
    let app = |name: &str, body: &[u8]| {
        LayerBlob::gzipped(layer_tar(&[(
            &format!("opt/{name}/bin/{name}") as &str,
            body,
            0o755,
        )]))
    };
    let control = app(
        "control-plane",
        b"#!/bin/sh\necho control plane: auth, RBAC, workspace coordination\n",
    );
    let workspace = app(
        "workspace-server",
        b"#!/bin/sh\necho workspace server for team $TEAM\n",
    );
    let dashboard = app("dashboard", b"#!/bin/sh\necho dashboard on :8080\n");
    let multi = |layers: Vec<LayerBlob>, cmd: &str| -> Vec<PlatformImage> {
        ["amd64", "arm64"]
            .iter()
            .map(|arch| PlatformImage::linux(arch, layers.clone(), &[cmd]))
            .collect()
    };
    vec![
        ImageSpec {
            ref_name: REFERENCE_REFS[0].into(),
            platforms: multi(
                vec![base.clone(), control],
                "/opt/control-plane/bin/control-plane",
            ),
        },
        ImageSpec {
            ref_name: REFERENCE_REFS[1].into(),
            platforms: multi(
                vec![base.clone(), workspace],
                "/opt/workspace-server/bin/workspace-server",
            ),
        },
        ImageSpec {
            ref_name: REFERENCE_REFS[2].into(),
            platforms: vec![PlatformImage::linux(
                "amd64",
                vec![base, dashboard],
                &["/opt/dashboard/bin/dashboard"],
            )],
        },
    ]
}

/// Writes [`reference_images`] as one OCI layout at `out_dir/images/platform-oci`
/// (replacing it), and returns that path.
pub fn write_reference(out_dir: &Path) -> Result<PathBuf> {
    let dir = out_dir.join("images").join("platform-oci");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    write_oci_layout(&dir, &reference_images())?;
    Ok(dir)
}

#[cfg(test)]
mod tests;
