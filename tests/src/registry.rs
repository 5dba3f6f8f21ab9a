//! A real container registry for the end-to-end tests: Debian's
//! `docker-registry` package (CNCF distribution v2.8, `/usr/bin/docker-registry`).
//!
//! Each [`Registry`] runs its own process on `127.0.0.1:<free port>` with its
//! own temporary directory holding the configuration, the storage, the log
//! and (for [`Registry::start_tls_auth`]) a test CA, the server certificate
//! and an htpasswd file. Results are checked with skopeo as an independent
//! client ([`SkopeoTarget`]).
//!
//! ```no_run
//! use airgap_e2e::registry::{Registry, SkopeoTarget};
//! let reg = Registry::start_tls_auth("alice", "s3cret");
//! let digest = reg.skopeo_inspect_raw_digest("demo/web:1.0.0");
//! assert_eq!(digest, None);
//! ```

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tempfile::TempDir;

use crate::fixtures::sha256_digest;

/// The registry binary of Debian's `docker-registry` package.
pub const REGISTRY_BIN: &str = "docker-registry";

/// How long [`Registry::start_plain`], [`Registry::start_tls_auth`] and
/// [`Registry::restart`] wait for `/v2/` to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many fresh ports a start tries when the chosen one is taken meanwhile.
const PORT_ATTEMPTS: usize = 5;

/// bcrypt cost of the htpasswd entry: the minimum, since distribution checks
/// the password on every request and the tests make many.
const BCRYPT_COST: u32 = 4;

/// Lines of the log shown when a registry fails or a test panics.
const LOG_TAIL_LINES: usize = 60;

/// TLS material of a registry started with [`Registry::start_tls_auth`].
#[derive(Debug)]
struct Tls {
    /// The test CA, PEM.
    ca_pem: PathBuf,
    /// A directory holding only `ca.crt` (a copy of `ca_pem`).
    cert_dir: PathBuf,
}

/// A running `docker-registry serve` process, killed on drop.
///
/// Plain-HTTP registries are started with [`Registry::start_plain`], TLS +
/// basic-auth ones with [`Registry::start_tls_auth`]. When a test panics
/// while a registry is alive, dropping it prints the tail of its log.
#[derive(Debug)]
pub struct Registry {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    tls: Option<Tls>,
    credentials: Option<(String, String)>,
    agent: ureq::Agent,
}

impl Registry {
    /// Starts a registry speaking plain HTTP without authentication.
    /// Panics (with the log tail) unless `/v2/` answers 200 within
    /// [`START_TIMEOUT`].
    pub fn start_plain() -> Registry {
        let dir = new_dir();
        Registry::launch(dir, None, None)
    }

    /// Starts a registry speaking HTTPS, with a server certificate for
    /// `127.0.0.1` and `localhost` issued by a test CA generated here, and
    /// htpasswd basic auth accepting `user`/`password` (bcrypt entry).
    /// Panics (with the log tail) unless `/v2/` answers 401 within
    /// [`START_TIMEOUT`].
    pub fn start_tls_auth(user: &str, password: &str) -> Registry {
        assert!(
            !user.is_empty() && !user.contains(':'),
            "htpasswd user names cannot be empty or contain ':' ({user:?})"
        );
        let dir = new_dir();
        let tls = write_tls(dir.path());
        let hash = bcrypt::hash_with_result(password, BCRYPT_COST)
            .expect("bcrypt hash")
            .format_for_version(bcrypt::Version::TwoY);
        write_file(&dir.path().join("htpasswd"), &format!("{user}:{hash}\n"));
        Registry::launch(
            dir,
            Some(tls),
            Some((user.to_string(), password.to_string())),
        )
    }

    fn launch(dir: TempDir, tls: Option<Tls>, credentials: Option<(String, String)>) -> Registry {
        crate::harness::require_tool(REGISTRY_BIN);
        fs::create_dir_all(dir.path().join("storage")).expect("create storage dir");
        let agent = http_agent(tls.as_ref());
        let mut reg = Registry {
            dir,
            port: 0,
            child: None,
            tls,
            credentials,
            agent,
        };
        let secret = http_secret();
        for attempt in 1..=PORT_ATTEMPTS {
            reg.port = free_port();
            write_file(&reg.config_path(), &reg.config_yaml(&secret));
            match reg.spawn_and_wait() {
                Ok(()) => return reg,
                Err(Failure::PortTaken) if attempt < PORT_ATTEMPTS => continue,
                Err(f) => reg.fail(&f.to_string()),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// The address the registry listens on: `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The base URL: `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr())
    }

    /// Whether the registry speaks HTTPS (started with
    /// [`Registry::start_tls_auth`]).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The PEM file of the test CA that issued the server certificate (TLS
    /// registries only).
    pub fn ca_pem_path(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|t| t.ca_pem.clone())
    }

    /// A directory holding only `ca.crt` (the test CA), for skopeo's
    /// `--cert-dir` / `--src-cert-dir` / `--dest-cert-dir` (TLS registries
    /// only).
    pub fn cert_dir(&self) -> Option<PathBuf> {
        self.tls.as_ref().map(|t| t.cert_dir.clone())
    }

    /// The `(user, password)` the registry accepts (TLS registries only).
    pub fn credentials(&self) -> Option<(String, String)> {
        self.credentials.clone()
    }

    /// Whether the registry process is running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the registry (SIGKILL) and waits for it; the storage stays.
    /// Does nothing if it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the registry if it runs, then starts it again on the same port
    /// with the same configuration and storage (for kill-and-rerun tests).
    /// Panics (with the log tail) unless it comes back within
    /// [`START_TIMEOUT`].
    pub fn restart(&mut self) {
        self.stop();
        self.append_log(&format!(
            "==== airgap-e2e: restarting registry on {} ====\n",
            self.addr()
        ));
        if let Err(f) = self.spawn_and_wait() {
            self.fail(&format!("restart failed: {f}"));
        }
    }

    /// The HTTP status of `GET <url><path>` (e.g. `/v2/`), with the
    /// registry's credentials as basic auth when `authenticated` and there
    /// are some. TLS is verified against the test CA.
    pub fn http_status(&self, path: &str, authenticated: bool) -> u16 {
        let url = format!("{}{path}", self.url());
        match self.get(&url, authenticated) {
            Ok(resp) => resp.status().as_u16(),
            Err(e) => panic!("GET {url}: {e}\n{}", self.log_tail()),
        }
    }

    /// The last lines of the log, headed for a panic message.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!(
            "--- last {} lines of {} ---\n{}",
            lines.len() - start,
            self.log_path().display(),
            lines[start..].join("\n")
        )
    }

    fn fail(&mut self, what: &str) -> ! {
        self.stop();
        panic!(
            "{REGISTRY_BIN} on {}: {what}\nconfig {}:\n{}\n{}",
            self.addr(),
            self.config_path().display(),
            fs::read_to_string(self.config_path()).unwrap_or_default(),
            self.log_tail()
        );
    }

    fn append_log(&self, line: &str) {
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
        {
            let _ = f.write_all(line.as_bytes());
        }
    }

    fn get(
        &self,
        url: &str,
        authenticated: bool,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut req = self.agent.get(url);
        if let (true, Some((u, p))) = (authenticated, &self.credentials) {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            req = req.header("Authorization", format!("Basic {token}"));
        }
        req.call()
    }

    /// Spawns `docker-registry serve config.yml` and waits until it listens
    /// on our port and `/v2/` answers as expected.
    fn spawn_and_wait(&mut self) -> Result<(), Failure> {
        let (child, log_start) =
            spawn_registry(&self.config_path(), self.dir.path(), &self.log_path());
        self.child = Some(child);

        let expected = if self.credentials.is_some() { 401 } else { 200 };
        let url = format!("{}/v2/", self.url());
        let deadline = Instant::now() + START_TIMEOUT;
        let mut last = String::from("no \"listening on\" line in the log yet");
        loop {
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            let new_log = self.log().get(log_start..).unwrap_or("").to_string();
            if let Some(status) = exited {
                self.child = None;
                if new_log.contains("address already in use") {
                    return Err(Failure::PortTaken);
                }
                return Err(Failure::Other(format!("exited early ({status})")));
            }
            // The log line proves that *our* process bound the port, so the
            // answer below cannot come from someone else's server.
            if new_log.contains("listening on") {
                match self.get(&url, false) {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let api = resp
                            .headers()
                            .get("Docker-Distribution-Api-Version")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        if status == expected && api == "registry/2.0" {
                            return Ok(());
                        }
                        last = format!("GET {url} answered {status} (api version {api:?})");
                    }
                    Err(e) => last = format!("GET {url}: {e}"),
                }
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(Failure::Other(format!(
                    "/v2/ did not answer {expected} within {START_TIMEOUT:?}; last: {last}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn config_yaml(&self, secret: &str) -> String {
        let q = |p: PathBuf| yaml_str(&p.display().to_string());
        let mut y = format!(
            "version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: airgap-e2e-registry
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: {secret}
  headers:
    X-Content-Type-Options: [nosniff]
",
            storage = q(self.storage_dir()),
            addr = yaml_str(&self.addr()),
            secret = yaml_str(secret),
        );
        if self.tls.is_some() {
            y.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                q(self.dir.path().join("server.crt")),
                q(self.dir.path().join("server.key")),
            ));
        }
        if self.credentials.is_some() {
            y.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: airgap-e2e\n    path: {}\n",
                q(self.dir.path().join("htpasswd")),
            ));
        }
        y
    }
}

/// A test registry as skopeo, the independent client, reaches it; the
/// checks the tests make through skopeo are written once here for every
/// kind of test registry.
pub trait SkopeoTarget {
    /// `127.0.0.1:PORT`.
    fn registry_addr(&self) -> String;
    /// The registry log's last lines, for failure messages.
    fn registry_log_tail(&self) -> String;
    /// skopeo's flags for this registry, each named with `prefix` (``
    /// for single-image commands, `src-` and `dest-` for `skopeo copy`).
    fn skopeo_flags(&self, prefix: &str) -> Vec<String>;

    /// `docker://ADDR/<repo_tag>`, for skopeo.
    fn docker_ref(&self, repo_tag: &str) -> String {
        format!("docker://{}/{repo_tag}", self.registry_addr())
    }

    /// skopeo flags for reading from this registry with `skopeo inspect`.
    fn skopeo_args(&self) -> Vec<String> {
        self.skopeo_flags("")
    }

    /// skopeo flags for `skopeo copy` reading from this registry.
    fn skopeo_src_args(&self) -> Vec<String> {
        self.skopeo_flags("src-")
    }

    /// skopeo flags for `skopeo copy` writing to this registry.
    fn skopeo_dest_args(&self) -> Vec<String> {
        self.skopeo_flags("dest-")
    }

    /// `sha256:<hex>` of the raw manifest (or index) of
    /// `docker://ADDR/<repo_tag>` as skopeo fetches it, or `None` if the
    /// registry does not have it. Panics on any other skopeo failure (TLS,
    /// auth, registry down), with skopeo's stderr and the registry log tail.
    fn skopeo_inspect_raw_digest(&self, repo_tag: &str) -> Option<String> {
        let image = self.docker_ref(repo_tag);
        let out = Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .args(self.skopeo_args())
            .arg(&image)
            .output()
            .unwrap_or_else(|e| panic!("cannot run skopeo: {e} (is it installed?)"));
        if out.status.success() {
            return Some(sha256_digest(&out.stdout));
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        let absent = ["manifest unknown", "name unknown", "not found"]
            .iter()
            .any(|m| stderr.to_ascii_lowercase().contains(m));
        if absent {
            return None;
        }
        panic!(
            "skopeo inspect --raw {image} failed ({}):\n{stderr}\n{}",
            out.status,
            self.registry_log_tail()
        );
    }

    /// Writes `image` as an OCI layout under `dir` and copies it here at
    /// `repo_tag` with skopeo, keeping every digest; returns the digest of
    /// its manifest (or index), checked by reading it back.
    fn publish(&self, dir: &Path, image: &crate::fixtures::ImageSpec, repo_tag: &str) -> String {
        let layout = dir.join(format!("layout-{}", repo_tag.replace(['/', ':'], "-")));
        let digest = crate::fixtures::write_oci_layout(&layout, std::slice::from_ref(image))
            .unwrap()[0]
            .clone();
        crate::harness::ok(
            Command::new("skopeo")
                .args(["copy", "--all", "--preserve-digests", "-q"])
                .args(self.skopeo_dest_args())
                .arg(format!("oci:{}:{}", layout.display(), image.ref_name))
                .arg(self.docker_ref(repo_tag)),
        );
        assert_eq!(
            self.skopeo_inspect_raw_digest(repo_tag).as_deref(),
            Some(digest.as_str())
        );
        digest
    }
}

/// The files of a test registry: its folder and what is in it. One
/// implementation for every kind of test registry; each gives its folder.
pub trait RegistryFolder {
    /// The registry's temporary directory (config, storage, log, certs).
    fn dir(&self) -> &Path;

    /// The storage root (`storage.filesystem.rootdirectory`).
    fn storage_dir(&self) -> PathBuf {
        self.dir().join("storage")
    }

    /// The registry's `config.yml`.
    fn config_path(&self) -> PathBuf {
        self.dir().join("config.yml")
    }

    /// The file the registry's stdout and stderr go to.
    fn log_path(&self) -> PathBuf {
        self.dir().join("registry.log")
    }

    /// Everything the registry logged so far, across restarts.
    fn log(&self) -> String {
        fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}

impl RegistryFolder for Registry {
    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl SkopeoTarget for Registry {
    fn registry_addr(&self) -> String {
        self.addr()
    }

    fn skopeo_flags(&self, prefix: &str) -> Vec<String> {
        match (&self.tls, &self.credentials) {
            (None, _) => vec![format!("--{prefix}tls-verify=false")],
            (Some(tls), creds) => {
                let mut v = vec![
                    format!("--{prefix}cert-dir"),
                    tls.cert_dir.display().to_string(),
                ];
                if let Some((u, p)) = creds {
                    v.push(format!("--{prefix}creds"));
                    v.push(format!("{u}:{p}"));
                }
                v
            }
        }
    }
    fn registry_log_tail(&self) -> String {
        self.log_tail()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let was_running = self.child.is_some();
        self.stop();
        if was_running && std::thread::panicking() {
            eprintln!(
                "{REGISTRY_BIN} on {} (dropped during a panic)\n{}",
                self.addr(),
                self.log_tail()
            );
        }
    }
}

/// Why a start failed.
pub(crate) enum Failure {
    /// The port was taken between choosing it and the registry binding it.
    PortTaken,
    /// Anything else.
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::PortTaken => f.write_str("address already in use"),
            Failure::Other(s) => f.write_str(s),
        }
    }
}

fn new_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("airgap-registry-")
        .tempdir()
        .expect("create registry temp dir")
}

/// Starts `docker-registry serve CONFIG` in `dir`, its output appended to
/// `log_path`, with any `REGISTRY_*` variables (which override the
/// configuration file) kept out. Returns the process and where this run's
/// part of the log starts.
pub(crate) fn spawn_registry(config: &Path, dir: &Path, log_path: &Path) -> (Child, usize) {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("open registry log");
    let log_start = log.metadata().map(|m| m.len()).unwrap_or(0) as usize;
    let stderr = log.try_clone().expect("clone log handle");
    let mut cmd = Command::new(REGISTRY_BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(&key);
        }
    }
    let child = cmd
        .arg("serve")
        .arg(config)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {REGISTRY_BIN}: {e}"));
    (child, log_start)
}

pub(crate) fn write_file(path: &Path, contents: &str) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// A free TCP port on 127.0.0.1 (bound to port 0, then released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A YAML double-quoted scalar (JSON strings are valid YAML).
pub(crate) fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).expect("string to JSON")
}

/// A per-registry `http.secret`: unique, not secret (tests only).
pub(crate) fn http_secret() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let seed = format!(
        "{}-{nanos}-{:?}",
        std::process::id(),
        std::thread::current().id()
    );
    crate::fixtures::sha256_hex(seed.as_bytes())
}

/// Generates the test CA and a server certificate for `127.0.0.1` and
/// `localhost` into `dir`: `ca.pem`, `certs/ca.crt`, `server.crt`,
/// `server.key`.
fn write_tls(dir: &Path) -> Tls {
    let ca_key = KeyPair::generate().expect("generate CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "airgap-e2e test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign CA");
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate().expect("generate server key");
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("server params");
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .expect("sign server cert");

    let ca_pem = dir.join("ca.pem");
    let cert_dir = dir.join("certs");
    fs::create_dir_all(&cert_dir).expect("create cert dir");
    write_file(&ca_pem, &ca_cert.pem());
    write_file(&cert_dir.join("ca.crt"), &ca_cert.pem());
    write_file(&dir.join("server.crt"), &server_cert.pem());
    write_file(&dir.join("server.key"), &server_key.serialize_pem());
    Tls { ca_pem, cert_dir }
}

/// An HTTP client trusting only the test CA (if any), never using a proxy,
/// reporting 4xx/5xx as statuses rather than errors.
fn http_agent(tls: Option<&Tls>) -> ureq::Agent {
    let mut cfg = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(5)));
    if let Some(tls) = tls {
        let pem = fs::read(&tls.ca_pem).expect("read CA PEM");
        let ca = ureq::tls::Certificate::from_pem(&pem).expect("parse CA PEM");
        cfg = cfg.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[ca]))
                .build(),
        );
    }
    cfg.build().into()
}
