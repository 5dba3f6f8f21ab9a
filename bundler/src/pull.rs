//! Pulls from registries and chart repositories into the local cache.
//!
//! Manifests and configs (small) are fetched as the sources are resolved;
//! layers are queued and then downloaded several at a time, each streamed to
//! a temporary file with its SHA-256 computed as the bytes arrive, resumed
//! with a `Range` request when a connection breaks, and renamed into the
//! cache only once its digest is right. Nothing is ever held in memory
//! whole except manifests and configs, which are bounded.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use airgap_cli::progress::ProgressGroup;
use airgap_format::Digest;
use airgap_registry::blob::Expect;
use airgap_registry::manifest::pull_scope;
use airgap_registry::{credentials, Client, Credentials, Error, Transport};
use anyhow::{bail, Context, Result};

use crate::cache::BlobCache;
use crate::sources::{DOCKER_LIST, DOCKER_MANIFEST, MAX_METADATA_BYTES, OCI_INDEX, OCI_MANIFEST};

/// How to reach one registry or chart repository host.
#[derive(Clone, Debug, Default)]
pub struct HostSettings {
    /// Extra CA certificates (PEM files).
    pub ca_files: Vec<PathBuf>,
    /// Plain HTTP instead of HTTPS.
    pub plain_http: bool,
}

/// Pull settings.
#[derive(Clone, Debug)]
pub struct PullOptions {
    /// Where pulled blobs are kept.
    pub cache_dir: PathBuf,
    /// Per-host settings (`host[:port]` → settings).
    pub hosts: BTreeMap<String, HostSettings>,
    /// An auth file consulted before the usual ones.
    pub authfile: Option<PathBuf>,
    /// Credentials given on the command line, for one host.
    pub login: Option<(String, Credentials)>,
    /// Downloads at once, 1 to [`airgap_cli::args::MAX_JOBS`].
    pub jobs: usize,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            cache_dir: BlobCache::default_dir(),
            hosts: BTreeMap::new(),
            authfile: None,
            login: None,
            jobs: 4,
            progress: false,
        }
    }
}

/// How the manifest changes the transport to `host` (`registries:`), for
/// the fix a mismatch names; `listed_plain` when the manifest already
/// says `plainHttp: true` for it (else an `http://` URL asked for it).
fn manifest_fixes(host: &str, listed_plain: bool) -> airgap_registry::client::Fixes {
    airgap_registry::client::Fixes {
        use_https: if listed_plain {
            format!("remove plainHttp: true from {host} under registries: in the manifest")
        } else {
            "use an https:// URL in the manifest".into()
        },
        use_plain_http: format!(
            "list {host} under registries: in the manifest with plainHttp: true if it is meant to speak plain HTTP"
        ),
        trust_ca: format!(
            "list {host} under registries: in the manifest with caFile: naming the CA certificate (PEM) that issued it"
        ),
    }
}

/// A blob waiting to be downloaded.
#[derive(Clone, Debug)]
struct Pending {
    host: String,
    repository: String,
    size: u64,
    what: String,
}

/// What the pulls of one run amounted to.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PullStats {
    /// Blobs downloaded (manifests, configs, layers, chart archives).
    pub blobs_downloaded: u64,
    /// Bytes downloaded.
    pub bytes_downloaded: u64,
    /// Blobs found in the cache.
    pub cache_hits: u64,
}

/// Fetches from registries and chart repositories through the cache.
pub struct Puller {
    options: PullOptions,
    cache: BlobCache,
    clients: Mutex<HashMap<String, Arc<Client>>>,
    pending: Mutex<BTreeMap<Digest, Pending>>,
    downloaded: AtomicU64,
    bytes: AtomicU64,
    /// Blobs fetched in this run, so re-reading them is not a cache hit.
    fetched: Mutex<std::collections::BTreeSet<Digest>>,
    /// Distinct blobs served from the cache.
    hits: Mutex<std::collections::BTreeSet<Digest>>,
    /// Signalled whenever a queued blob arrives and when the queue is done,
    /// for readers waiting on a blob ([`Puller::wait_for`]).
    arrived: (Mutex<()>, std::sync::Condvar),
    /// Set when [`Puller::download_queued`] has returned.
    queue_done: std::sync::atomic::AtomicBool,
}

/// A manifest as fetched: its bytes, digest and declared media type.
#[derive(Clone, Debug)]
pub struct FetchedManifest {
    /// The raw bytes, exactly as served.
    pub bytes: Vec<u8>,
    /// Their SHA-256.
    pub digest: Digest,
    /// Media type from the `mediaType` field or the `Content-Type` header.
    pub media_type: String,
}

impl Puller {
    /// A puller using the cache at `options.cache_dir`.
    pub fn new(options: PullOptions) -> Result<Puller> {
        let cache = BlobCache::open(&options.cache_dir)?;
        Ok(Puller {
            options,
            cache,
            clients: Mutex::new(HashMap::new()),
            pending: Mutex::new(BTreeMap::new()),
            downloaded: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            fetched: Mutex::new(Default::default()),
            hits: Mutex::new(Default::default()),
            arrived: (Mutex::new(()), std::sync::Condvar::new()),
            queue_done: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Blocks until blob `digest` of `size` bytes is in the cache, so work
    /// on a blob (SBOM generation) can start while other blobs are still
    /// downloading. Fails when the download queue finished without it (the
    /// pull failed; its own error says why).
    pub fn wait_for(&self, digest: &Digest, size: u64) -> Result<()> {
        let (lock, signal) = &self.arrived;
        let mut guard = lock.lock().expect("lock");
        loop {
            if self.cache.has(digest, size) {
                return Ok(());
            }
            if self.queue_done.load(Ordering::Acquire) {
                bail!("blob {digest} was not downloaded");
            }
            guard = signal
                .wait_timeout(guard, std::time::Duration::from_millis(200))
                .expect("lock")
                .0;
        }
    }

    fn signal_arrival(&self) {
        let _guard = self.arrived.0.lock().expect("lock");
        self.arrived.1.notify_all();
    }

    /// The cache.
    pub fn cache(&self) -> &BlobCache {
        &self.cache
    }

    /// Counts so far.
    pub fn stats(&self) -> PullStats {
        PullStats {
            blobs_downloaded: self.downloaded.load(Ordering::Relaxed),
            bytes_downloaded: self.bytes.load(Ordering::Relaxed),
            cache_hits: self.hits.lock().expect("lock").len() as u64,
        }
    }

    /// Records that `digest` was served from the cache (unless fetched in this run).
    fn hit(&self, digest: &Digest) {
        if !self.fetched.lock().expect("lock").contains(digest) {
            self.hits.lock().expect("lock").insert(*digest);
        }
    }

    /// Records a blob fetched over the network.
    fn fetched(&self, digest: &Digest, bytes: u64) {
        self.fetched.lock().expect("lock").insert(*digest);
        self.downloaded.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The client for `host` (the API host), made on first use.
    pub fn client(&self, host: &str, plain_http: bool) -> Result<Arc<Client>> {
        let key = format!("{plain_http}/{host}");
        if let Some(c) = self.clients.lock().expect("lock").get(&key) {
            return Ok(c.clone());
        }
        let settings = self.options.hosts.get(host).cloned().unwrap_or_default();
        let credentials = match &self.options.login {
            Some((h, c)) if h == host => Some(c.clone()),
            _ => credentials::lookup_with(self.options.authfile.as_deref(), host).unwrap_or_else(
                |e| {
                    tracing::warn!("credentials for {host}: {e:#}; trying without");
                    None
                },
            ),
        };
        let transport = Transport {
            ca_files: settings.ca_files.clone(),
            plain_http: plain_http || settings.plain_http,
            user_agent: Some(format!("airgap-bundle/{}", env!("CARGO_PKG_VERSION"))),
            fixes: manifest_fixes(host, settings.plain_http),
        };
        let client = Arc::new(Client::new(host, &transport, credentials)?);
        self.clients
            .lock()
            .expect("lock")
            .insert(key, client.clone());
        Ok(client)
    }

    fn registry_client(&self, host: &str) -> Result<Arc<Client>> {
        self.client(host, false)
    }

    /// Fetches the manifest `reference` (a tag or digest) of `repository`
    /// from the registry at `host`, checking its digest when `reference` is
    /// one and the registry's `Docker-Content-Digest` when it is a tag.
    pub fn fetch_manifest(
        &self,
        host: &str,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest> {
        let expected: Option<Digest> = reference.parse().ok();
        if let Some(d) = &expected {
            if let Ok(bytes) = self.cached_small(d, None) {
                self.hit(d);
                let media_type = media_type_of(&bytes, None)?;
                return Ok(FetchedManifest {
                    bytes,
                    digest: *d,
                    media_type,
                });
            }
        }
        let sep = if expected.is_some() { '@' } else { ':' };
        let at = format!("{host}/{repository}{sep}{reference}");
        let client = self.registry_client(host)?;
        let fetched = client
            .get_manifest(
                repository,
                reference,
                &pull_scope(repository),
                MAX_METADATA_BYTES,
            )
            .map_err(|e| match e {
                // These name the manifest already.
                Error::NotFound { .. } | Error::Status { .. } | Error::Protocol(_) => e.into(),
                other => anyhow::Error::new(other).context(format!("manifest {at}")),
            })?;
        let (bytes, content_type, served_digest) =
            (fetched.bytes, fetched.content_type, fetched.served_digest);
        let (digest, media_type) = check_manifest_reply(
            &bytes,
            expected,
            served_digest.as_deref(),
            content_type.as_deref(),
        )
        .with_context(|| format!("manifest {at}"))?;
        self.cache.insert_bytes(&digest, &bytes)?;
        self.downloaded.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(FetchedManifest {
            bytes,
            digest,
            media_type,
        })
    }

    /// A small blob (config) of `repository`, from the cache or the registry,
    /// checked against its digest.
    pub fn fetch_small_blob(
        &self,
        host: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        what: &str,
    ) -> Result<Vec<u8>> {
        if size > MAX_METADATA_BYTES {
            bail!("{host}/{repository}: {what} {digest} is {size} bytes, above the {MAX_METADATA_BYTES}-byte limit");
        }
        if let Ok(bytes) = self.cached_small(digest, Some(size)) {
            self.hit(digest);
            return Ok(bytes);
        }
        self.download_blob(host, repository, digest, size, what, None)?;
        self.cached_small(digest, Some(size))
    }

    /// Reads a small cached blob, dropping it from the cache if it is wrong.
    fn cached_small(&self, digest: &Digest, size: Option<u64>) -> Result<Vec<u8>> {
        let path = self.cache.path(digest);
        let f = std::fs::File::open(&path)?;
        let mut bytes = Vec::new();
        f.take(MAX_METADATA_BYTES + 1).read_to_end(&mut bytes)?;
        if Digest::of(&bytes) != *digest || size.is_some_and(|s| s != bytes.len() as u64) {
            tracing::warn!("{}: damaged cache entry dropped", path.display());
            self.cache.evict(digest);
            bail!("{}: damaged cache entry", path.display());
        }
        Ok(bytes)
    }

    /// Where blob `digest` will be once [`Puller::download_queued`] has run:
    /// queues it unless it is cached already.
    pub fn want_blob(
        &self,
        host: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        what: &str,
    ) -> PathBuf {
        if self.cache.has(digest, size) {
            self.hit(digest);
        } else {
            self.pending
                .lock()
                .expect("lock")
                .entry(*digest)
                .or_insert_with(|| Pending {
                    host: host.to_string(),
                    repository: repository.to_string(),
                    size,
                    what: what.to_string(),
                });
        }
        self.cache.path(digest)
    }

    /// Downloads every queued blob, `jobs` at a time, largest first.
    /// Readers blocked in [`Puller::wait_for`] are woken as blobs arrive,
    /// and when this returns.
    pub fn download_queued(&self) -> Result<()> {
        let r = self.download_queue();
        self.queue_done.store(true, Ordering::Release);
        self.signal_arrival();
        r
    }

    fn download_queue(&self) -> Result<()> {
        // Configs read while resolving are in the cache already.
        let mut queue: Vec<(Digest, Pending)> =
            std::mem::take(&mut *self.pending.lock().expect("lock"))
                .into_iter()
                .filter(|(d, p)| !self.cache.has(d, p.size))
                .collect();
        if queue.is_empty() {
            return Ok(());
        }
        queue.sort_by(|a, b| b.1.size.cmp(&a.1.size).then(a.0.cmp(&b.0)));
        let total: u64 = queue.iter().map(|(_, p)| p.size).sum();
        tracing::debug!(blobs = queue.len(), bytes = total, "pulling");
        let group = ProgressGroup::new(self.options.progress);
        let overall = group.add(total, "pull");
        let next = AtomicUsize::new(0);
        let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
        let jobs = self
            .options
            .jobs
            .clamp(1, usize::from(airgap_cli::args::MAX_JOBS))
            .min(queue.len());
        std::thread::scope(|s| {
            for _ in 0..jobs {
                s.spawn(|| loop {
                    if failed.lock().expect("lock").is_some() {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((digest, p)) = queue.get(i) else {
                        return;
                    };
                    let bar = group.add(p.size, &short(&p.what));
                    let both = |n: u64| {
                        bar.inc(n);
                        overall.inc(n);
                    };
                    let r = self.download_blob(
                        &p.host,
                        &p.repository,
                        digest,
                        p.size,
                        &p.what,
                        Some(&both),
                    );
                    bar.finish();
                    if let Err(e) = r {
                        failed.lock().expect("lock").get_or_insert(e);
                        return;
                    }
                    self.signal_arrival();
                });
            }
        });
        overall.finish();
        match failed.into_inner().expect("lock") {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A registry blob's path in the cache, downloading it now if needed.
    pub fn fetch_blob(
        &self,
        host: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        what: &str,
    ) -> Result<PathBuf> {
        if self.cache.has(digest, size) {
            self.hit(digest);
            return Ok(self.cache.path(digest));
        }
        self.download_blob(host, repository, digest, size, what, None)
    }

    /// Downloads one registry blob into the cache.
    fn download_blob(
        &self,
        host: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        what: &str,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<PathBuf> {
        let client = self.registry_client(host)?;
        let url = client.url(&format!("/v2/{repository}/blobs/{digest}"));
        let label = format!("{what}: blob {digest}");
        self.download(
            &client,
            &url,
            &format!("repository:{repository}:pull"),
            Expect {
                digest: Some(*digest),
                size: Some(size),
                max: size,
            },
            &label,
            progress,
        )
        .map(|(p, _, _)| p)
    }

    /// Downloads `url` (a chart archive in a Helm repository) into the cache,
    /// checking `digest` when known; returns the path, digest and size.
    pub fn download_url(
        &self,
        url: &str,
        digest: Option<Digest>,
        max: u64,
        what: &str,
    ) -> Result<(PathBuf, Digest, u64)> {
        if let Some(d) = &digest {
            if let Ok(m) = std::fs::metadata(self.cache.path(d)) {
                if m.is_file() {
                    self.hit(d);
                    return Ok((self.cache.path(d), *d, m.len()));
                }
            }
        }
        let client = self.url_client(url)?;
        self.download(
            &client,
            url,
            "",
            Expect {
                digest,
                size: None,
                max,
            },
            what,
            None,
        )
    }

    /// The client for an http(s) URL's host. Plain `http://` needs
    /// `plainHttp: true` for that host, as registries do.
    fn url_client(&self, url: &str) -> Result<Arc<Client>> {
        let (host, plain) = host_of_url(url)?;
        let allowed = self.options.hosts.get(&host).is_some_and(|h| h.plain_http);
        if plain && !allowed {
            bail!("{url}: plain HTTP to {host} is not allowed; list it under registries: with plainHttp: true");
        }
        self.client(&host, plain)
    }

    /// Fetches a small document (a repository's `index.yaml`), bounded.
    pub fn fetch_document(&self, url: &str, max: u64) -> Result<Vec<u8>> {
        let client = self.url_client(url)?;
        Ok(client.get_document(url, max)?)
    }

    /// Streams `url` into a temporary file of the cache with its digest
    /// computed on the way, resuming broken transfers from the last byte.
    fn download(
        &self,
        client: &Client,
        url: &str,
        scope: &str,
        expect: Expect,
        label: &str,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<(PathBuf, Digest, u64)> {
        let mut file = self.cache.temp_file()?;
        let (digest, size) =
            client.download(url, scope, &expect, file.as_file_mut(), label, progress)?;
        let path = self.cache.commit(file, &digest)?;
        self.fetched(&digest, size);
        Ok((path, digest, size))
    }
}

/// Checks a registry's manifest reply (the body, read up to one byte past
/// the limit, and its `Docker-Content-Digest` and `Content-Type`
/// headers): within [`MAX_METADATA_BYTES`], matching the digest asked for
/// (when the reference was one) and the one the registry served, and an
/// image manifest or index. Returns its digest and media type.
pub fn check_manifest_reply(
    bytes: &[u8],
    expected: Option<Digest>,
    served_digest: Option<&str>,
    content_type: Option<&str>,
) -> Result<(Digest, String)> {
    if bytes.len() as u64 > MAX_METADATA_BYTES {
        bail!("larger than {MAX_METADATA_BYTES} bytes");
    }
    let digest = Digest::of(bytes);
    if let Some(e) = expected {
        if e != digest {
            bail!("content does not match its digest (got {digest})");
        }
    }
    if let Some(served) = served_digest {
        if served.starts_with("sha256:") && served != digest.to_string() {
            bail!(
                "the registry says its digest is {}, but the content is {digest}",
                airgap_format::display::quote(served)
            );
        }
    }
    Ok((digest, media_type_of(bytes, content_type)?))
}

/// The media type of a manifest: its `mediaType` field, else the header,
/// else what its shape says. Only image manifests and indexes are accepted.
pub fn media_type_of(bytes: &[u8], header: Option<&str>) -> Result<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).context("not JSON")?;
    let declared = v.get("mediaType").and_then(|m| m.as_str());
    let header = header.map(|h| h.split(';').next().unwrap_or(h).trim());
    let mt = declared
        .or(header.filter(|h| *h != "application/json" && !h.is_empty()))
        .map(str::to_string)
        .unwrap_or_else(|| {
            if v.get("manifests").is_some() {
                OCI_INDEX.to_string()
            } else {
                OCI_MANIFEST.to_string()
            }
        });
    if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
        bail!("Docker schema 1 manifests are not supported (push the image again with a current tool)");
    }
    match mt.as_str() {
        OCI_INDEX | OCI_MANIFEST | DOCKER_LIST | DOCKER_MANIFEST => Ok(mt),
        other => bail!(
            "media type {} is not an image manifest or index",
            airgap_format::display::quote(other)
        ),
    }
}

/// `host[:port]` of an http(s) URL, and whether it is plain HTTP.
pub fn host_of_url(url: &str) -> Result<(String, bool)> {
    let (plain, rest) = if let Some(r) = url.strip_prefix("https://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (true, r)
    } else {
        bail!("{url:?}: expected an http:// or https:// URL");
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        bail!("{url:?}: no host (and user names belong in the auth file, not the URL)");
    }
    Ok((host.to_string(), plain))
}

fn short(what: &str) -> String {
    let s: String = what.chars().take(24).collect();
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert_eq!(
            media_type_of(br#"{"schemaVersion":2,"manifests":[]}"#, None).unwrap(),
            OCI_INDEX
        );
        assert_eq!(
            media_type_of(
                br#"{"schemaVersion":2,"config":{}}"#,
                Some("application/vnd.docker.distribution.manifest.v2+json")
            )
            .unwrap(),
            DOCKER_MANIFEST
        );
        assert!(media_type_of(br#"{"schemaVersion":1}"#, None).is_err());
        assert!(media_type_of(b"<html>", None).is_err());
    }

    #[test]
    fn manifest_replies() {
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{}}"#;
        let d = Digest::of(m);
        assert_eq!(
            check_manifest_reply(m, Some(d), Some(&d.to_string()), None).unwrap(),
            (d, OCI_MANIFEST.to_string())
        );
        let e = check_manifest_reply(m, Some(Digest::of(b"x")), None, None).unwrap_err();
        assert!(e.to_string().contains("does not match its digest"), "{e}");
        let e = check_manifest_reply(m, None, Some("sha256:00"), None).unwrap_err();
        assert!(
            e.to_string()
                .contains("the registry says its digest is \"sha256:00\""),
            "{e}"
        );
        // A digest of another algorithm is not compared.
        check_manifest_reply(m, None, Some("sha512:00"), None).unwrap();
        let big = vec![b' '; MAX_METADATA_BYTES as usize + 1];
        let e = check_manifest_reply(&big, None, None, None).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        let e = check_manifest_reply(br#"{"mediaType":"a\u001b[31mb"}"#, None, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(r#""a\u{1b}[31mb""#), "{e}");
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            host_of_url("https://charts.example/stable/index.yaml").unwrap(),
            ("charts.example".into(), false)
        );
        assert_eq!(
            host_of_url("http://127.0.0.1:8080").unwrap(),
            ("127.0.0.1:8080".into(), true)
        );
        assert!(host_of_url("ftp://x").is_err());
        assert!(host_of_url("https://u:p@x/").is_err());
    }
}
