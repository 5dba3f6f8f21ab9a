//! A client for one registry: TLS with extra CA certificates (or plain HTTP
//! when asked), basic and bearer-token authentication, and retries with
//! back-off on 429, 5xx and connection errors (each retry said on a
//! terminal, see [`report_retry`]). A transport that does not match the
//! registry (plain HTTP to HTTPS, HTTPS to plain HTTP, a certificate from
//! an unknown CA) is an [`Error::Mismatch`] naming the caller's fix.
//! Every failure is an [`Error`] variant; the verbs of the distribution
//! API, built on `Client::send`, are in [`crate::manifest`] and
//! [`crate::blob`].

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::anyhow;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ureq::http::Response;
use ureq::Body;

use crate::credentials::Credentials;
pub use crate::error::{is_transient, mismatch, Error, Mismatch, Result};
use crate::retry::{report_retry, retry_after, retryable_status, POLICY};
pub use crate::tls::{describe_tls, tls_error, trust_roots, MAX_CA_FILE};

/// Longest a response body may take to arrive in one attempt.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(300);
/// Redirects followed by [`Client::get_following`].
#[cfg(feature = "pull")]
const MAX_REDIRECTS: u32 = 5;
/// Largest error or token body read.
const MAX_SMALL_BODY: u64 = 1 << 20;

/// Makes a request body afresh for each attempt: its length and a reader.
pub type BodyFn<'b> = dyn FnMut() -> anyhow::Result<(u64, Box<dyn Read + Send + 'b>)> + 'b;

/// How the registry wants to be authenticated, learnt from its challenges.
#[derive(Clone, Debug)]
enum Scheme {
    Unknown,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// A registry client.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    host: String,
    credentials: Option<Credentials>,
    scheme: Mutex<Scheme>,
    tokens: Mutex<HashMap<String, String>>,
    ca_files: Vec<std::path::PathBuf>,
    fixes: Fixes,
}

/// TLS and transport settings.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    /// Extra CA certificates (PEM files) to trust besides the system bundle.
    pub ca_files: Vec<std::path::PathBuf>,
    /// Use plain HTTP.
    pub plain_http: bool,
    /// `User-Agent` sent (default: `airgap/VERSION`).
    pub user_agent: Option<String>,
    /// How the user changes these settings, for the fix an
    /// [`Error::Mismatch`] names.
    pub fixes: Fixes,
}

/// How the program's user changes the transport settings (a flag, a field
/// of a site file or manifest), each a phrase that ends a message naming
/// the fix: `drop --plain-http`.
#[derive(Clone, Debug)]
pub struct Fixes {
    /// To speak HTTPS instead of plain HTTP.
    pub use_https: String,
    /// To speak plain HTTP instead of HTTPS.
    pub use_plain_http: String,
    /// To trust the CA that issued the registry's certificate.
    pub trust_ca: String,
}

impl Default for Fixes {
    fn default() -> Self {
        Fixes {
            use_https: "speak HTTPS to it".into(),
            use_plain_http: "allow plain HTTP for this host if that is intended".into(),
            trust_ca: "trust the CA certificate (PEM) that issued the registry's certificate"
                .into(),
        }
    }
}

/// What Go's HTTP server (and so the CNCF distribution registry) answers,
/// with a 400, to plain HTTP on a port that speaks HTTPS.
pub const HTTPS_SERVER_REPLY: &str = "Client sent an HTTP request to an HTTPS server";

/// Whether a response body is [`HTTPS_SERVER_REPLY`].
fn says_https(body: &[u8]) -> bool {
    String::from_utf8_lossy(body).contains(HTTPS_SERVER_REPLY)
}

/// A reason to try again, short: `connection refused`, `HTTP 503`.
fn retry_reason(e: &ureq::Error) -> String {
    use std::io::ErrorKind as K;
    match e {
        ureq::Error::Io(io) => match io.kind() {
            K::ConnectionRefused => "connection refused".into(),
            K::ConnectionReset => "connection reset".into(),
            K::ConnectionAborted => "connection aborted".into(),
            K::UnexpectedEof => "connection closed early".into(),
            K::TimedOut | K::WouldBlock => "timed out".into(),
            K::HostUnreachable => "host unreachable".into(),
            K::NetworkUnreachable => "network unreachable".into(),
            _ => one_line(&io.to_string()),
        },
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        other => one_line(&other.to_string()),
    }
}

impl Client {
    /// A client for `host` (`host[:port]`).
    pub fn new(
        host: &str,
        transport: &Transport,
        credentials: Option<Credentials>,
    ) -> Result<Client> {
        let roots = trust_roots(&transport.ca_files)?;
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(
                transport
                    .user_agent
                    .clone()
                    .unwrap_or_else(|| format!("airgap/{}", env!("CARGO_PKG_VERSION"))),
            )
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            // A body that stops arriving ends the attempt; downloads resume
            // from the last byte received.
            .timeout_recv_body(Some(BODY_TIMEOUT))
            .build()
            .into();
        let scheme = if transport.plain_http {
            "http"
        } else {
            "https"
        };
        Ok(Client {
            agent,
            base: format!("{scheme}://{host}"),
            host: host.to_string(),
            credentials,
            scheme: Mutex::new(Scheme::Unknown),
            tokens: Mutex::new(HashMap::new()),
            ca_files: transport.ca_files.clone(),
            fixes: transport.fixes.clone(),
        })
    }

    /// Whether `origin` (`http://host:port`) answers a plain-HTTP GET of
    /// `/v2/` with the words of a server that speaks HTTPS.
    fn speaks_https(&self, origin: &str) -> bool {
        self.agent
            .get(format!("{origin}/v2/"))
            .call()
            .is_ok_and(|mut r| says_https(&read_small_bytes(r.body_mut())))
    }

    /// The error for a request that met a [`Mismatch`].
    fn mismatched(&self, mismatch: Mismatch, request: &str) -> Error {
        let f = &self.fixes;
        let message = match mismatch {
            Mismatch::SpeaksHttps => format!(
                "{request}: HTTP 400: the registry speaks HTTPS, and this request was plain HTTP; {}",
                f.use_https
            ),
            Mismatch::SpeaksPlainHttp => format!(
                "{request}: the registry answered in plain HTTP, not TLS: it seems to speak plain HTTP; {}",
                f.use_plain_http
            ),
            Mismatch::UnknownIssuer if self.ca_files.is_empty() => format!(
                "{request}: TLS: the registry's certificate is not from a CA this machine trusts; {}",
                f.trust_ca
            ),
            Mismatch::UnknownIssuer => format!(
                "{request}: TLS: the registry's certificate is issued neither by {} nor by a system CA; {}",
                self.ca_files
                    .iter()
                    .map(|p| airgap_format::display::quote(&p.display().to_string()))
                    .collect::<Vec<_>>()
                    .join(", "),
                f.trust_ca
            ),
        };
        Error::Mismatch { mismatch, message }
    }

    /// The error for a request that got no response and is not tried
    /// again: a [`Mismatch`], another TLS failure in words, or the error.
    fn failed(&self, request: &str, e: ureq::Error) -> Error {
        let Some(tls) = tls_error(&e) else {
            return Error::Transport {
                message: format!("{request}: {e}"),
                transient: false,
            };
        };
        match tls {
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                self.mismatched(Mismatch::UnknownIssuer, request)
            }
            // An HTTP answer to the TLS hello: rustls finds no TLS record.
            rustls::Error::InvalidMessage(_) => self.mismatched(Mismatch::SpeaksPlainHttp, request),
            other => Error::Tls {
                message: format!("{request}: {}", describe_tls(other)),
            },
        }
    }

    /// The registry's `host[:port]`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// An absolute URL for `path_or_url` (registries return relative Locations).
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_string()
        } else {
            format!("{}{}", self.base, path_or_url)
        }
    }

    /// Whether `url` is on this registry (same scheme, host and port):
    /// credentials and tokens go nowhere else. An upload `Location` may
    /// name another host, which then gets no `Authorization`.
    pub fn same_origin(&self, url: &str) -> bool {
        origin_of(url) == self.base
    }

    fn auth_header(&self, scope: &str) -> Result<Option<String>> {
        let scheme = self.scheme.lock().expect("lock").clone();
        match scheme {
            Scheme::Unknown => Ok(None),
            Scheme::Basic => Ok(self
                .credentials
                .as_ref()
                .map(|c| format!("Basic {}", c.basic()))),
            Scheme::Bearer { realm, service } => {
                if let Some(t) = self.tokens.lock().expect("lock").get(scope) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scope)?;
                self.tokens
                    .lock()
                    .expect("lock")
                    .insert(scope.to_string(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let mut attempt = 0;
        let mut resp = loop {
            attempt += 1;
            let mut req = self.agent.get(realm);
            if let Some(s) = service {
                req = req.query("service", s);
            }
            for s in scope.split(' ').filter(|s| !s.is_empty()) {
                req = req.query("scope", s);
            }
            if let Some(c) = &self.credentials {
                req = req.header("Authorization", &format!("Basic {}", c.basic()));
            }
            // The token service is retried like the registry itself.
            let (retry, asked, last) = match req.call() {
                Ok(r) if retryable_status(r.status().as_u16()) => (
                    format!("HTTP {}", r.status().as_u16()),
                    retry_after(&r),
                    Ok(r),
                ),
                Ok(r) => break r,
                Err(e) => (retry_reason(&e), None, Err(e)),
            };
            let Some(delay) = POLICY.next(attempt, asked) else {
                match last {
                    Ok(r) => break r,
                    Err(e) => {
                        return Err(Error::Transport {
                            message: format!(
                                "token service {realm}: {e} (after {attempt} attempts)"
                            ),
                            transient: true,
                        })
                    }
                }
            };
            report_retry(
                &format!("token service {}", origin_of(realm)),
                &retry,
                delay,
                attempt + 1,
                POLICY.attempts,
            );
            std::thread::sleep(delay);
        };
        let status = resp.status().as_u16();
        let body = read_small(resp.body_mut());
        token_reply(status, &body).map_err(|reason| match status {
            401 | 403 => Error::Unauthorized {
                scope: scope.to_string(),
                message: format!(
                    "token service {realm}: {reason}; check the user name and password for {}",
                    self.host
                ),
            },
            200 => Error::Protocol(format!("token service {realm}: {reason}")),
            _ => Error::Status {
                what: format!("token service {realm}"),
                status,
                body: crate::error::ErrorBody(body.clone()),
            },
        })
    }

    fn learn_challenge(&self, resp: &Response<Body>, scope: &str) -> Result<()> {
        let header = resp
            .headers()
            .get("www-authenticate")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let unauthorized = |message: String| Error::Unauthorized {
            scope: scope.to_string(),
            message,
        };
        let scheme = match parse_www_authenticate(header)
            .map_err(|e| unauthorized(format!("{}: {e}", self.host)))?
        {
            Challenge::Bearer { realm, service } => Scheme::Bearer { realm, service },
            Challenge::Basic => {
                if self.credentials.is_none() {
                    return Err(unauthorized(format!(
                        "{}: the registry asks for a user name and password (use --username with --password-stdin, or a credentials file)",
                        self.host
                    )));
                }
                Scheme::Basic
            }
        };
        *self.scheme.lock().expect("lock") = scheme;
        Ok(())
    }

    /// Sends a request; `body` is re-created for each attempt. Retries with
    /// back-off on connection errors, 429 and 5xx (waiting as long as a
    /// `Retry-After` asks, see [`crate::retry::backoff`]); answers a 401 challenge once.
    /// Returns the final response whatever its status; a connection error
    /// that outlasts every attempt is a transient [`Error::Transport`].
    pub(crate) fn send<'b>(
        &self,
        method: &str,
        url: &str,
        scope: &str,
        headers: &[(&str, String)],
        body: Option<&mut BodyFn<'b>>,
    ) -> Result<Response<Body>> {
        self.send_attempts(method, url, scope, headers, body, POLICY.attempts)
    }

    /// [`Client::send`] with a single attempt (a 401 challenge is still
    /// answered): for requests whose retry depends on what the registry
    /// kept of the failed one, such as a blob upload cut off part-way.
    /// 429 and 5xx come back as responses, connection errors as transient
    /// [`Error::Transport`] errors.
    pub(crate) fn send_once<'b>(
        &self,
        method: &str,
        url: &str,
        scope: &str,
        headers: &[(&str, String)],
        body: Option<&mut BodyFn<'b>>,
    ) -> Result<Response<Body>> {
        self.send_attempts(method, url, scope, headers, body, 1)
    }

    fn send_attempts<'b>(
        &self,
        method: &str,
        url: &str,
        scope: &str,
        headers: &[(&str, String)],
        mut body: Option<&mut BodyFn<'b>>,
        attempts: u32,
    ) -> Result<Response<Body>> {
        let mut challenged = false;
        let mut attempt = 0;
        // Upload URLs carry long state tokens: errors show the path only.
        let shown = shown(url);
        loop {
            attempt += 1;
            let own = self.same_origin(url);
            let auth = if own { self.auth_header(scope)? } else { None };
            let mut builder = ureq::http::Request::builder().method(method).uri(url);
            for (k, v) in headers {
                builder = builder.header(*k, v.as_str());
            }
            if let Some(a) = &auth {
                builder = builder.header("Authorization", a.as_str());
            }
            let result = match body.as_mut() {
                Some(make) => {
                    let (len, mut reader) = make()?;
                    let req = builder
                        .header("Content-Length", len.to_string())
                        .body(ureq::SendBody::from_reader(&mut reader))
                        .map_err(|e| Error::Local(anyhow!("{method} {shown}: {e}")))?;
                    self.agent.run(req)
                }
                None => {
                    let req = builder
                        .header("Content-Length", "0")
                        .body(())
                        .map_err(|e| Error::Local(anyhow!("{method} {shown}: {e}")))?;
                    self.agent.run(req)
                }
            };
            // A registry that speaks HTTPS answers plain HTTP with a 400
            // of its own: read it (it is short) to tell.
            let result = match result {
                Ok(resp) if resp.status().as_u16() == 400 && url.starts_with("http://") => {
                    let (parts, mut body) = resp.into_parts();
                    let bytes = read_small_bytes(&mut body);
                    // A reply to HEAD has no body to read: ask /v2/ then.
                    let https = says_https(&bytes)
                        || (bytes.is_empty() && self.speaks_https(origin_of(url)));
                    if https {
                        return Err(
                            self.mismatched(Mismatch::SpeaksHttps, &format!("{method} {shown}"))
                        );
                    }
                    Ok(Response::from_parts(parts, Body::builder().data(bytes)))
                }
                other => other,
            };
            let retry_reason = match &result {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let unauthorized = |message: String| Error::Unauthorized {
                        scope: scope.to_string(),
                        message,
                    };
                    if status == 401 && !own {
                        return Err(unauthorized(format!(
                            "{method} {shown}: HTTP 401 from {}, which is not the registry {}; the registry sent this address (an upload Location), and credentials are only sent to the registry itself: check the registry's configured URL (its http.host setting)",
                            airgap_format::display::quote(origin_of(url)),
                            self.host
                        )));
                    }
                    if status == 401 && !challenged {
                        challenged = true;
                        // A cached bearer token may have expired: fetch anew.
                        self.tokens.lock().expect("lock").remove(scope);
                        self.learn_challenge(resp, scope)?;
                        attempt -= 1;
                        continue;
                    }
                    if status == 401 && insufficient_scope(resp) {
                        return Err(Error::Denied {
                            scope: scope.to_string(),
                            message: format!(
                                "{method} {shown}: HTTP 401: the account may not do this (insufficient_scope for {scope}); check its permissions on {}",
                                self.host
                            ),
                        });
                    }
                    if status == 401 {
                        return Err(unauthorized(format!(
                            "{method} {shown}: HTTP 401: authentication failed; check the user name and password"
                        )));
                    }
                    if retryable_status(status) {
                        Some(format!("HTTP {status}"))
                    } else {
                        None
                    }
                }
                // Bad data (a damaged bundle being read, a TLS failure) does
                // not get better by trying again.
                Err(ureq::Error::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => None,
                Err(e) if tls_error(e).is_some() => None,
                Err(e) => Some(retry_reason(e)),
            };
            let Some(reason) = retry_reason else {
                return result.map_err(|e| self.failed(&format!("{method} {shown}"), e));
            };
            let policy = crate::retry::Policy { attempts, ..POLICY };
            match policy.next(attempt, result.as_ref().ok().and_then(retry_after)) {
                None => {
                    return match result {
                        Ok(resp) => Ok(resp),
                        Err(e) => Err(Error::Transport {
                            message: if attempts == 1 {
                                format!("{method} {shown}: {e}")
                            } else {
                                format!("{method} {shown}: {e} (after {attempt} attempts)")
                            },
                            transient: true,
                        }),
                    }
                }
                Some(delay) => {
                    report_retry(
                        origin_of(url).split_once("://").map_or(url, |(_, h)| h),
                        &reason,
                        delay,
                        attempt + 1,
                        attempts,
                    );
                    std::thread::sleep(delay);
                }
            }
        }
    }
}

impl Client {
    /// Sends a GET (with retries, as [`Client::send`]) and follows up to five
    /// redirects, as registries do to hand blob downloads to storage
    /// elsewhere. Credentials go only to the registry itself, never to the
    /// host a redirect names. Returns the final response whatever its status.
    #[cfg(feature = "pull")]
    pub(crate) fn get_following(
        &self,
        url: &str,
        scope: &str,
        headers: &[(&str, String)],
    ) -> Result<Response<Body>> {
        let mut resp = self.send("GET", url, scope, headers, None)?;
        let mut current = url.to_string();
        for _ in 0..MAX_REDIRECTS {
            if !resp.status().is_redirection() {
                return Ok(resp);
            }
            let location = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| {
                    Error::Protocol(format!(
                        "GET {}: HTTP {} without a Location",
                        shown(&current),
                        resp.status().as_u16()
                    ))
                })?;
            let next = resolve_location(&current, location);
            let mut builder = ureq::http::Request::builder().method("GET").uri(&next);
            for (k, v) in headers {
                builder = builder.header(*k, v.as_str());
            }
            let req = builder
                .body(())
                .map_err(|e| Error::Local(anyhow!("GET {}: {e}", shown(&next))))?;
            resp = self.agent.run(req).map_err(|e| match tls_error(&e) {
                Some(t) => Error::Tls {
                    message: format!("GET {} (redirected): {}", shown(&next), describe_tls(t)),
                },
                None => Error::Transport {
                    message: format!("GET {} (redirected): {e}", shown(&next)),
                    transient: false,
                },
            })?;
            current = next;
        }
        Err(Error::Protocol(format!(
            "GET {}: more than {MAX_REDIRECTS} redirects",
            shown(url)
        )))
    }
}

/// A URL without its query, which may carry tokens.
fn shown(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// The `scheme://host[:port]` part of a URL, for messages.
fn origin_of(url: &str) -> &str {
    let start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[start..]
        .find(['/', '?'])
        .map(|i| i + start)
        .unwrap_or(url.len());
    &url[..end]
}

/// Resolves a `Location` header against the URL that returned it.
pub fn resolve_location(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let host_end = origin_of(base).len();
    if location.starts_with('/') {
        format!("{}{location}", &base[..host_end])
    } else {
        let dir_end = shown(base).rfind('/').map(|i| i + 1).unwrap_or(base.len());
        format!("{}{location}", &base[..dir_end.max(host_end)])
    }
}

/// Reads at most 1 MiB of a (small) response body as text; bytes that are
/// not UTF-8 show as U+FFFD, so that the message around them stays.
pub fn read_small(body: &mut Body) -> String {
    String::from_utf8_lossy(&read_small_bytes(body)).into_owned()
}

/// Reads at most 1 MiB of a (small) response body.
fn read_small_bytes(body: &mut Body) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = body
        .as_reader()
        .take(MAX_SMALL_BODY)
        .read_to_end(&mut bytes);
    bytes
}

/// The registry's error message, on one line and shortened.
pub fn one_line(body: &str) -> String {
    let s: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    s.chars().take(300).collect()
}

/// Whether a 401 says the credentials were fine but lacked the scope.
fn insufficient_scope(resp: &Response<Body>) -> bool {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|h| h.to_str().ok())
        .any(is_insufficient_scope)
}

/// Whether a `WWW-Authenticate` value is a bearer challenge with
/// `error="insufficient_scope"`: the credentials were fine but the token
/// lacked the scope.
pub fn is_insufficient_scope(header: &str) -> bool {
    header
        .get(..BEARER.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(BEARER))
        && parse_challenge(&header[BEARER.len()..])
            .get("error")
            .is_some_and(|e| e == "insufficient_scope")
}

const BEARER: &str = "bearer";
const BASIC: &str = "basic";

/// An authentication challenge from a `WWW-Authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// `Basic realm=…`: send the user name and password.
    Basic,
    /// `Bearer realm=…,service=…`: get a token from the realm.
    Bearer {
        /// The token service URL.
        realm: String,
        /// The `service` to ask the token for, when given.
        service: Option<String>,
    },
}

/// Parses the `WWW-Authenticate` value of a 401: the scheme (`Basic` or
/// `Bearer`, any case) and, for `Bearer`, its `realm` (required) and
/// `service`. The reason of an error quotes the header shortened.
pub fn parse_www_authenticate(header: &str) -> Result<Challenge, String> {
    let scheme = |name: &str| {
        header
            .get(..name.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(name))
    };
    if scheme(BEARER) {
        let mut params = parse_challenge(&header[BEARER.len()..]);
        let realm = params
            .remove("realm")
            .ok_or_else(|| "bearer challenge without a realm".to_string())?;
        Ok(Challenge::Bearer {
            realm,
            service: params.remove("service"),
        })
    } else if scheme(BASIC) {
        Ok(Challenge::Basic)
    } else {
        Err(format!(
            "HTTP 401 with an unsupported challenge {:?}",
            one_line(header)
        ))
    }
}

/// What a token service's reply gives: the `token` (or OAuth2
/// `access_token`) of a 200 JSON reply; otherwise the reason, with the
/// status and, for an error status, the body on one line (a 200 reply's
/// body is never shown: it may hold a token).
pub fn token_reply(status: u16, body: &str) -> Result<String, String> {
    if status != 200 {
        return Err(format!("HTTP {status}: {}", one_line(body)));
    }
    // A successful reply holds a token, damaged or not: it is never shown.
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| {
        format!(
            "the reply ({} bytes, not shown: it may hold a token) is not JSON ({e})",
            body.len()
        )
    })?;
    v.get("token")
        .or_else(|| v.get("access_token"))
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| "no token in the reply".to_string())
}

/// Whether a registry error body carries the error `code`: one of its
/// `errors[].code` when it is JSON (`{"errors":[{"code":"…"}]}`, as the OCI
/// distribution spec gives it, so that a message that only mentions the
/// code does not count); the code anywhere in it when it is not JSON.
pub fn has_error_code(body: &str, code: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return body.contains(code);
    };
    v.get("errors")
        .and_then(|e| e.as_array())
        .is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e.get("code").and_then(|c| c.as_str()) == Some(code))
        })
}

/// Parses `key="value", key=value` challenge parameters (what follows the
/// scheme of a `WWW-Authenticate` value) into lowercase keys and values;
/// quoted values may hold commas and backslash escapes.
pub fn parse_challenge(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            continue;
        }
        let mut value = String::new();
        if chars.next_if_eq(&'"').is_some() {
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    out
}

/// Base64 of `user:password`, for basic authentication.
pub fn basic(user: &str, password: &str) -> String {
    B64.encode(format!("{user}:{password}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback HTTP server answering every request with `status`; the
    /// receiver gets, per request, whether it carried `Authorization`.
    fn recording_server(status: u16) -> (String, std::sync::mpsc::Receiver<bool>) {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let _ = tx.send(head.contains("\r\nauthorization:"));
                let challenge = if status == 401 {
                    "WWW-Authenticate: Basic realm=\"x\"\r\n"
                } else {
                    ""
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\n{challenge}Content-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        (addr, rx)
    }

    #[test]
    fn credentials_go_only_to_the_registry_itself() {
        let (registry, at_registry) = recording_server(202);
        let (other, at_other) = recording_server(202);
        let transport = Transport {
            plain_http: true,
            ..Transport::default()
        };
        let creds = Credentials {
            username: "deploy".into(),
            password: "s3cret".into(),
        };
        let c = Client::new(&registry, &transport, Some(creds)).unwrap();
        *c.scheme.lock().unwrap() = Scheme::Basic;
        assert!(c.same_origin(&format!("http://{registry}/v2/")));
        assert!(!c.same_origin(&format!("http://{registry}0/v2/")));
        assert!(!c.same_origin(&format!("https://{registry}/v2/")));
        assert!(!c.same_origin(&format!("http://{other}/v2/")));

        c.send_once("PUT", &c.url("/v2/a/blobs/uploads/1"), "s", &[], None)
            .unwrap();
        assert!(
            at_registry.recv().unwrap(),
            "the registry gets the credentials"
        );
        // An upload Location naming another host (a registry may answer
        // with any absolute URL) gets none.
        let location = format!("http://{other}/v2/a/blobs/uploads/1?_state=x");
        c.send_once("PUT", &location, "s", &[], None).unwrap();
        assert!(!at_other.recv().unwrap(), "another host must not get them");

        // And a 401 from it is not answered with credentials either.
        let (asking, at_asking) = recording_server(401);
        let e = c
            .send_once("PUT", &format!("http://{asking}/v2/x"), "s", &[], None)
            .unwrap_err()
            .to_string();
        assert!(!at_asking.recv().unwrap());
        assert!(
            at_asking.try_recv().is_err(),
            "asked once, not again with credentials"
        );
        assert!(e.contains("which is not the registry"), "{e}");
    }

    /// A loopback server answering every connection with `reply`, bytes
    /// as they are, then closing it.
    fn raw_server(reply: &'static [u8]) -> String {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf);
                let _ = conn.write_all(reply);
            }
        });
        addr
    }

    fn client(addr: &str, plain_http: bool, ca_files: Vec<std::path::PathBuf>) -> Client {
        let transport = Transport {
            plain_http,
            ca_files,
            fixes: Fixes {
                use_https: "drop --plain-http".into(),
                use_plain_http: "pass --plain-http".into(),
                trust_ca: "pass its CA with --ca-file".into(),
            },
            ..Transport::default()
        };
        Client::new(addr, &transport, None).unwrap()
    }

    /// A HEAD from a client (`plain` HTTP or not) to a server that answers
    /// `response`: the server's address, the transport mismatch the error
    /// names, and its text.
    fn head_error(response: &'static [u8], plain: bool) -> (String, Option<Mismatch>, String) {
        let addr = raw_server(response);
        let c = client(&addr, plain, vec![]);
        let e = c
            .send("HEAD", &c.url("/v2/a/manifests/1"), "s", &[], None)
            .unwrap_err();
        let mismatch = match &e {
            Error::Mismatch { mismatch, .. } => Some(*mismatch),
            _ => None,
        };
        (addr, mismatch, e.to_string())
    }

    #[test]
    fn a_transport_that_does_not_match_the_registry_names_the_fix() {
        let cases: [(&'static [u8], bool, Mismatch, &str, &str); 2] = [
            // What Go's server sends on a TLS port to a plain-HTTP request.
            (
                b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
                true,
                Mismatch::SpeaksHttps,
                "http",
                ": HTTP 400: the registry speaks HTTPS, and this request was plain HTTP; drop --plain-http",
            ),
            // A plain-HTTP server's answer to a TLS handshake.
            (
                b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                false,
                Mismatch::SpeaksPlainHttp,
                "https",
                "it seems to speak plain HTTP; pass --plain-http",
            ),
        ];
        for (response, plain, want, scheme, end) in cases {
            let (addr, mismatch, text) = head_error(response, plain);
            assert_eq!(mismatch, Some(want));
            let start = format!("HEAD {scheme}://{addr}/v2/a/manifests/1");
            assert!(text.starts_with(&start), "{text}");
            assert!(text.ends_with(end), "{text}");
            assert!(!text.contains("InvalidContentType"), "{text}");
        }
    }

    #[test]
    fn another_400_is_the_callers_to_read() {
        // Not a transport mismatch: the body is the caller's.
        let addr = raw_server(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad request",
        );
        let c = client(&addr, true, vec![]);
        let mut resp = c
            .send("GET", &c.url("/v2/a/manifests/1"), "s", &[], None)
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        assert_eq!(read_small(resp.body_mut()), "bad request");
    }

    #[test]
    fn a_401_is_unauthorized_with_its_scope() {
        let (addr, _) = recording_server(401);
        let c = client(&addr, true, vec![]);
        let e = c
            .send(
                "GET",
                &c.url("/v2/a/tags/list"),
                "repository:a:pull",
                &[],
                None,
            )
            .unwrap_err();
        match e {
            Error::Unauthorized { scope, message } => {
                assert_eq!(scope, "repository:a:pull");
                assert!(
                    message.contains("asks for a user name and password"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
        // With credentials the registry refuses again: authentication failed.
        let creds = Credentials {
            username: "deploy".into(),
            password: "wrong".into(),
        };
        let c = Client::new(&addr, &c_transport(), Some(creds)).unwrap();
        let e = c.ping().unwrap_err();
        assert!(
            matches!(&e, Error::Unauthorized { scope, message }
                if scope.is_empty() && message.ends_with("authentication failed; check the user name and password")),
            "{e:?}"
        );
    }

    fn c_transport() -> Transport {
        Transport {
            plain_http: true,
            ..Transport::default()
        }
    }

    #[test]
    fn verbs_answer_with_variants() {
        let c = |reply: &'static [u8]| client(&raw_server(reply), true, vec![]);
        let missing = c(b"HTTP/1.1 404 Not Found\r\nContent-Length: 62\r\nConnection: close\r\n\r\n{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"unknown\"}]}  ");
        let e = missing
            .get_manifest("a", "1.0", "repository:a:pull", 1 << 20)
            .unwrap_err();
        assert!(
            matches!(&e, Error::NotFound { what, body }
            if what.ends_with("/a:1.0") && body.has_code("MANIFEST_UNKNOWN")),
            "{e:?}"
        );
        assert_eq!(missing.manifest_digest("a", "1.0", "s").unwrap(), None);

        let denied = c(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let e = denied.start_upload("a").unwrap_err();
        assert!(
            matches!(&e, Error::Denied { scope, .. } if scope == "repository:a:pull,push"),
            "{e:?}"
        );

        let invalid = c(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 38\r\nConnection: close\r\n\r\n{\"errors\":[{\"code\":\"DIGEST_INVALID\"}]}");
        let e = invalid
            .put_manifest("a", "1.0", crate::media_types::OCI_MANIFEST, b"{}")
            .unwrap_err();
        assert_eq!(e.status(), Some(400));
        assert!(e.body().unwrap().has_code("DIGEST_INVALID"), "{e:?}");

        let tags = c(b"HTTP/1.1 200 OK\r\nContent-Length: 31\r\nConnection: close\r\n\r\n{\"name\":\"a\",\"tags\":[\"1\",\"2\"]}  ");
        assert_eq!(tags.tags("a").unwrap(), ["1", "2"]);
    }

    #[test]
    fn retry_reasons_are_short() {
        let refused = ureq::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(retry_reason(&refused), "connection refused");
    }

    #[test]
    fn challenges() {
        let p = parse_challenge(
            r#" realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#,
        );
        assert_eq!(p["realm"], "https://auth.example/token");
        assert_eq!(p["service"], "registry.example");
        assert_eq!(p["scope"], "repository:a:pull");
        let q = parse_challenge(
            r#"realm="https://a/t",scope="repository:x:pull,push",error="insufficient_scope""#,
        );
        assert_eq!(q["scope"], "repository:x:pull,push");
        assert_eq!(q["error"], "insufficient_scope");
        assert_eq!(parse_challenge(r#"realm=plain, x="a\"b""#)["x"], "a\"b");
    }

    #[test]
    fn www_authenticate_headers() {
        assert_eq!(
            parse_www_authenticate(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#
            ),
            Ok(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_www_authenticate(r#"Basic realm="Registry Realm""#),
            Ok(Challenge::Basic)
        );
        assert_eq!(
            parse_www_authenticate(r#"BEARER realm=x"#),
            Ok(Challenge::Bearer {
                realm: "x".into(),
                service: None
            })
        );
        let e = parse_www_authenticate(r#"Bearer service="x""#).unwrap_err();
        assert!(e.contains("without a realm"), "{e}");
        let e = parse_www_authenticate(&format!("Negotiate {}", "a ".repeat(1000))).unwrap_err();
        assert!(e.contains("unsupported challenge") && e.len() < 400, "{e}");
        // Not a panic on a multi-byte character where the scheme ends.
        assert!(parse_www_authenticate("Beare\u{e9}").is_err());
        assert!(is_insufficient_scope(
            r#"Bearer realm="https://a/t",error="insufficient_scope""#
        ));
        assert!(!is_insufficient_scope(
            r#"Basic error="insufficient_scope""#
        ));
        assert!(!is_insufficient_scope("é"));
    }

    #[test]
    fn token_replies_and_error_bodies() {
        assert_eq!(token_reply(200, r#"{"token":"t1"}"#), Ok("t1".into()));
        assert_eq!(
            token_reply(200, r#"{"access_token":"t2","expires_in":300}"#),
            Ok("t2".into())
        );
        assert!(token_reply(200, r#"{"token":""}"#).is_err());
        assert!(token_reply(200, "<html>").unwrap_err().contains("not JSON"));
        // A damaged reply's token never reaches the error.
        let e = token_reply(200, "X\"token\":\"SECRET-TOKEN\"}").unwrap_err();
        assert!(e.contains("not JSON") && !e.contains("SECRET"), "{e}");
        assert_eq!(
            token_reply(401, "{\n \"errors\": []\n}").unwrap_err(),
            r#"HTTP 401: { "errors": [] }"#
        );
        let body = r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content","detail":{}}]}"#;
        assert!(has_error_code(body, "DIGEST_INVALID"));
        assert!(!has_error_code(body, "BLOB_UNKNOWN"));
        assert!(!has_error_code(
            r#"{"errors":[{"code":"UNKNOWN","message":"not DIGEST_INVALID"}]}"#,
            "DIGEST_INVALID"
        ));
        assert!(has_error_code(
            "digest invalid: DIGEST_INVALID",
            "DIGEST_INVALID"
        ));
    }

    #[test]
    fn small_bodies_are_bounded_text() {
        let mut body = Body::builder().data(b"{\"errors\":\"bad \xff byte\"}".to_vec());
        // Before, a byte that is not UTF-8 lost the whole message.
        assert_eq!(read_small(&mut body), "{\"errors\":\"bad \u{fffd} byte\"}");
        let mut body = Body::builder().data(vec![b'a'; (MAX_SMALL_BODY + 10) as usize]);
        assert_eq!(read_small(&mut body).len() as u64, MAX_SMALL_BODY);
    }

    #[test]
    fn locations() {
        let base = "https://r.example/v2/a/blobs/sha256:00?x=1";
        assert_eq!(resolve_location(base, "https://s3/x"), "https://s3/x");
        assert_eq!(resolve_location(base, "/b/c"), "https://r.example/b/c");
        assert_eq!(
            resolve_location(base, "d"),
            "https://r.example/v2/a/blobs/d"
        );
    }
}
