//! A real container registry (Debian's `docker-registry`, CNCF distribution
//! v2.8) with bearer-token authentication, in front of a [`TokenServer`].
//!
//! [`TokenRegistry::start`] starts a token server for one user, then a
//! registry on `127.0.0.1:<free port>` speaking plain HTTP whose
//! configuration has
//! `auth: token: {realm: <token server>/token, service: airgap-test,
//! issuer: airgap-test-issuer, rootcertbundle: <the signing cert>}`, so
//! every request without a valid token is answered
//! `401 WWW-Authenticate: Bearer realm=...,service=...`. Like
//! [`crate::registry::Registry`], each has its own temporary directory
//! (configuration, storage, log, certificate), is killed on drop and prints
//! its log tail when a test panics; results are checked with skopeo, which
//! speaks the token flow itself.
//!
//! ```no_run
//! use airgap_e2e::registry::SkopeoTarget;
//! use airgap_e2e::token_registry::TokenRegistry;
//! let reg = TokenRegistry::start("alice", "s3cret");
//! assert_eq!(reg.skopeo_inspect_raw_digest("vendor/app:1.0"), None);
//! assert!(reg.token_server().tokens_issued() > 0);
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::registry::{free_port, http_secret, spawn_registry, write_file, yaml_str};
use crate::registry::{Failure, RegistryFolder, SkopeoTarget, REGISTRY_BIN, START_TIMEOUT};
use crate::token_server::{TokenServer, ISSUER};

/// The registry's `auth.token.service`: the `service` of its challenges and
/// the `aud` its tokens must carry.
pub const SERVICE: &str = "airgap-test";

/// How many fresh ports a start tries when the chosen one is taken meanwhile.
const PORT_ATTEMPTS: usize = 5;

/// Lines of the log shown when the registry fails or a test panics.
const LOG_TAIL_LINES: usize = 60;

/// What `GET /v2/...` answered: see [`TokenRegistry::probe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The HTTP status.
    pub status: u16,
    /// The `WWW-Authenticate` header, empty when there is none.
    pub challenge: String,
}

/// A running `docker-registry serve` process with token authentication and
/// its token server, both stopped on drop.
#[derive(Debug)]
pub struct TokenRegistry {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    tokens: TokenServer,
    user: String,
    password: String,
    agent: ureq::Agent,
}

impl TokenRegistry {
    /// Starts a token server issuing tokens to `user`/`password`, then a
    /// plain-HTTP registry trusting it. Panics (with the log tail) unless
    /// `/v2/` answers 401 with a bearer challenge naming the token server
    /// within [`START_TIMEOUT`].
    pub fn start(user: &str, password: &str) -> TokenRegistry {
        crate::harness::require_tool(REGISTRY_BIN);
        assert!(
            !user.is_empty() && !user.contains(':'),
            "basic-auth user names cannot be empty or contain ':' ({user:?})"
        );
        let dir = tempfile::Builder::new()
            .prefix("airgap-token-registry-")
            .tempdir()
            .expect("create registry temp dir");
        fs::create_dir_all(dir.path().join("storage")).expect("create storage dir");
        let tokens = TokenServer::start(user, password);
        write_file(&dir.path().join("token-signer.pem"), tokens.cert_pem());
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let mut reg = TokenRegistry {
            dir,
            port: 0,
            child: None,
            tokens,
            user: user.to_string(),
            password: password.to_string(),
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

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The token server the registry sends clients to.
    pub fn token_server(&self) -> &TokenServer {
        &self.tokens
    }

    /// The `(user, password)` the token server accepts.
    pub fn credentials(&self) -> (String, String) {
        (self.user.clone(), self.password.clone())
    }

    /// The last lines of the log and the token server's requests, headed
    /// for a panic message.
    pub fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        let requests: Vec<String> = self
            .tokens
            .requests()
            .iter()
            .map(|r| format!("{r:?}"))
            .collect();
        format!(
            "--- last {} lines of {} ---\n{}\n--- token server ({} issued, {} refused) ---\n{}",
            lines.len() - start,
            self.log_path().display(),
            lines[start..].join("\n"),
            self.tokens.tokens_issued(),
            self.tokens.requests_refused(),
            requests.join("\n")
        )
    }

    /// Kills the registry (SIGKILL) and waits for it; the storage stays and
    /// the token server keeps running. Does nothing if it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `GET <url><path>` (e.g. `/v2/`) with `authorization` as the
    /// `Authorization` header if given: the status and the challenge.
    pub fn probe(&self, path: &str, authorization: Option<&str>) -> Probe {
        let url = format!("{}{path}", self.url());
        match self.get(&url, authorization) {
            Ok(resp) => Probe {
                status: resp.status().as_u16(),
                challenge: www_authenticate(&resp),
            },
            Err(e) => panic!("GET {url}: {e}\n{}", self.log_tail()),
        }
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

    fn get(
        &self,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut req = self.agent.get(url);
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        req.call()
    }

    /// Spawns `docker-registry serve config.yml` and waits until it listens
    /// on our port and `/v2/` answers 401 with our bearer challenge.
    fn spawn_and_wait(&mut self) -> Result<(), Failure> {
        let (child, log_start) =
            spawn_registry(&self.config_path(), self.dir.path(), &self.log_path());
        self.child = Some(child);

        let url = format!("{}/v2/", self.url());
        let realm = format!("realm=\"{}\"", self.tokens.realm());
        let service = format!("service=\"{SERVICE}\"");
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
            // The log line proves that *our* process bound the port.
            if new_log.contains("listening on") {
                match self.get(&url, None) {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let challenge = www_authenticate(&resp);
                        if status == 401
                            && challenge.starts_with("Bearer ")
                            && challenge.contains(&realm)
                            && challenge.contains(&service)
                        {
                            return Ok(());
                        }
                        last = format!("GET {url} answered {status} ({challenge:?})");
                    }
                    Err(e) => last = format!("GET {url}: {e}"),
                }
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(Failure::Other(format!(
                    "/v2/ did not answer 401 with a bearer challenge within {START_TIMEOUT:?}; last: {last}"
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn config_yaml(&self, secret: &str) -> String {
        let q = |p: PathBuf| yaml_str(&p.display().to_string());
        format!(
            "version: 0.1
log:
  level: info
  formatter: text
  fields:
    service: airgap-e2e-token-registry
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
auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {bundle}
",
            storage = q(self.storage_dir()),
            addr = yaml_str(&self.addr()),
            secret = yaml_str(secret),
            realm = yaml_str(&self.tokens.realm()),
            service = yaml_str(SERVICE),
            issuer = yaml_str(ISSUER),
            bundle = q(self.dir.path().join("token-signer.pem")),
        )
    }
}

impl RegistryFolder for TokenRegistry {
    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl SkopeoTarget for TokenRegistry {
    fn registry_addr(&self) -> String {
        self.addr()
    }

    fn skopeo_flags(&self, prefix: &str) -> Vec<String> {
        vec![
            format!("--{prefix}tls-verify=false"),
            format!("--{prefix}creds"),
            format!("{}:{}", self.user, self.password),
        ]
    }
    fn registry_log_tail(&self) -> String {
        self.log_tail()
    }
}

impl Drop for TokenRegistry {
    fn drop(&mut self) {
        let was_running = self.child.is_some();
        self.stop();
        if was_running && std::thread::panicking() {
            eprintln!(
                "{REGISTRY_BIN} (token auth) on {} (dropped during a panic)\n{}",
                self.addr(),
                self.log_tail()
            );
        }
    }
}

fn www_authenticate(resp: &ureq::http::Response<ureq::Body>) -> String {
    resp.headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}
