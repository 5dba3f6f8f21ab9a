//! `airgap-install health`: checks that the endpoints the product's profile
//! names (its `healthChecks`, filled in for the site when `render` wrote
//! `plan.json`) answer `GET URL` with the status expected, over HTTPS,
//! trusting the system roots and the site's internal CA. Checks run concurrently, each
//! bounded by one timeout (connecting, the TLS handshake, the response and
//! its body). Failures are described in one short line each
//! (`HTTP 503`, `connection refused`, `TLS: certificate not trusted (is
//! internalCa set?)`). No secret the site file names is read.

use airgap_format::display::escape;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use airgap_registry::ureq;
use anyhow::Result;
use serde::Serialize;

pub use airgap_profile::profile::HealthTarget as Target;

/// Time a check may take when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Checks run at once.
pub const MAX_PARALLEL: usize = 8;
/// Most bytes of a response body read.
pub const MAX_BODY: u64 = 64 << 10;
/// Values of a JSON body's `status` that mean healthy (compared ignoring case).
pub const HEALTHY_STATUSES: &[&str] = &["ok", "pass", "healthy", "up"];

/// The outcome of one check.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// The check's name, as the profile gives it.
    pub name: String,
    /// The URL asked.
    pub url: String,
    /// Whether the endpoint is healthy.
    pub ok: bool,
    /// The HTTP status answered, if a response arrived.
    pub status: Option<u16>,
    /// Why the check failed (one short line); `None` when it passed.
    pub reason: Option<String>,
    /// How long the check took, in milliseconds.
    pub millis: u64,
}

/// The outcome of every check, in the order the site lists the endpoints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Whether every check passed.
    pub healthy: bool,
    /// One entry per check, in the order the profile lists them.
    pub checks: Vec<Check>,
}

impl Report {
    /// Builds a report from checks.
    pub fn new(checks: Vec<Check>) -> Report {
        Report {
            healthy: checks.iter().all(|c| c.ok),
            checks,
        }
    }

    /// How many checks passed.
    pub fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.ok).count()
    }

    /// The human-readable table (`NAME  URL  RESULT  TIME`) and a last line
    /// `N of M healthy`, each line ending in a newline.
    pub fn to_table(&self) -> String {
        let rows: Vec<[String; 4]> = self
            .checks
            .iter()
            .map(|c| {
                let result = match (&c.reason, c.ok) {
                    (_, true) => "OK".to_string(),
                    (Some(r), false) => format!("FAILED: {r}"),
                    (None, false) => "FAILED".to_string(),
                };
                [
                    escape(&c.name).into_owned(),
                    escape(&c.url).into_owned(),
                    escape(&result).into_owned(),
                    format!("{} ms", c.millis),
                ]
            })
            .collect();
        let header = ["NAME", "URL", "RESULT", "TIME"].map(String::from);
        let mut widths = [0usize; 4];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&rows) {
            let line = format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {}",
                row[0],
                row[1],
                row[2],
                row[3],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2],
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str(&format!(
            "{} of {} healthy\n",
            self.passed(),
            self.checks.len()
        ));
        out
    }
}

/// Largest `plan.json` read for its health checks.
const MAX_PLAN_BYTES: u64 = 16 << 20;

/// The health checks a rendered configuration folder's `plan.json` lists:
/// what `render` filled in from the profile and the site file.
pub fn planned_targets(config_dir: &Path) -> Result<Vec<Target>> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Planned {
        #[serde(default)]
        health_checks: Vec<Target>,
    }
    let path = config_dir.join("plan.json");
    let text = airgap_format::regular_file::read_regular_string(&path, MAX_PLAN_BYTES, "a plan")
        .map_err(|e| {
            anyhow::anyhow!("{e}; render the configuration first (airgap-install render)")
        })?;
    let planned: Planned = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a plan.json that render wrote ({e})",
            path.display()
        )
    })?;
    Ok(planned.health_checks)
}

/// Checks `targets`, trusting the system roots and the CA certificates
/// in `internal_ca`. Fails only when the internal CA cannot be read;
/// unhealthy endpoints are reported in the [`Report`].
pub fn check_targets(
    targets: &[Target],
    internal_ca: Option<&Path>,
    timeout: Duration,
) -> Result<Report> {
    let checker = Checker::new(internal_ca, timeout)?;
    Ok(Report::new(checker.check_all(targets)))
}

/// Runs health checks with one HTTPS client.
pub struct Checker {
    agent: ureq::Agent,
    timeout: Duration,
    extra_ca: bool,
}

impl Checker {
    /// A checker trusting the system roots and, when given, the CA
    /// certificates (PEM) in `internal_ca`; each check is bounded by `timeout`.
    pub fn new(internal_ca: Option<&Path>, timeout: Duration) -> Result<Checker> {
        let roots = roots(internal_ca)?;
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            // A redirect is reported, not followed: a health endpoint that
            // sends to a login page is not healthy.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(format!("airgap-install/{}", env!("CARGO_PKG_VERSION")))
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout))
            .build()
            .into();
        Ok(Checker {
            agent,
            timeout,
            extra_ca: internal_ca.is_some(),
        })
    }

    /// Checks every target, at most [`MAX_PARALLEL`] at once; the results
    /// are in the order of `targets`.
    pub fn check_all(&self, targets: &[Target]) -> Vec<Check> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Check>>> = Mutex::new(vec![None; targets.len()]);
        std::thread::scope(|s| {
            for _ in 0..targets.len().min(MAX_PARALLEL) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = targets.get(i) else { break };
                    let check = self.check(t);
                    results.lock().expect("results lock")[i] = Some(check);
                });
            }
        });
        results
            .into_inner()
            .expect("results lock")
            .into_iter()
            .map(|c| c.expect("every target checked"))
            .collect()
    }

    /// Checks one target.
    pub fn check(&self, target: &Target) -> Check {
        let start = Instant::now();
        let (status, reason) = match self.probe(&target.url, target.expect) {
            Ok((status, reason)) => (Some(status), reason),
            Err(reason) => (None, Some(reason)),
        };
        Check {
            name: target.name.clone(),
            url: target.url.clone(),
            ok: reason.is_none(),
            status,
            reason,
            millis: start.elapsed().as_millis().try_into().unwrap_or(u64::MAX),
        }
    }

    /// The status and the failure reason, if any; `Err` when no response came.
    fn probe(&self, url: &str, expect: u16) -> Result<(u16, Option<String>), String> {
        let mut resp = self
            .agent
            .get(url)
            .header("Accept", "application/json")
            .call()
            .map_err(|e| self.describe(&e, url, ""))?;
        let status = resp.status().as_u16();
        if status != expect {
            let mut reason = format!("HTTP {status}");
            if expect != 200 {
                reason.push_str(&format!(" (expected {expect})"));
            }
            if resp.status().is_redirection() {
                if let Some(l) = resp.headers().get("location").and_then(|l| l.to_str().ok()) {
                    let shown: String = l
                        .split(['?', '#'])
                        .next()
                        .unwrap_or(l)
                        .chars()
                        .take(100)
                        .collect();
                    reason.push_str(&format!(" (redirects to {shown})"));
                }
            }
            return Ok((status, Some(reason)));
        }
        let mut body = Vec::new();
        if let Err(e) = resp
            .body_mut()
            .as_reader()
            .take(MAX_BODY)
            .read_to_end(&mut body)
        {
            let e = ureq::Error::from(e);
            return Ok((status, Some(self.describe(&e, url, " reading the body"))));
        }
        // A JSON status is judged where a 200 means healthy.
        Ok((
            status,
            if expect == 200 {
                judge_body(&body)
            } else {
                None
            },
        ))
    }

    /// One short line for a request that got no (complete) response.
    fn describe(&self, e: &ureq::Error, url: &str, during: &str) -> String {
        let host = host_of(url);
        if let Some(t) = airgap_registry::client::tls_error(e) {
            return describe_tls(t, self.extra_ca);
        }
        match e {
            ureq::Error::Timeout(_) => {
                format!("timed out after {}{during}", seconds(self.timeout))
            }
            ureq::Error::HostNotFound => format!("DNS: cannot resolve {host}"),
            ureq::Error::Tls(m) => format!("TLS: {m}"),
            ureq::Error::Io(io) => describe_io(io, &host, self.timeout, during),
            ureq::Error::Protocol(p) => format!("not an HTTP response ({p})"),
            ureq::Error::LargeResponseHeader(..) => "response headers too large".into(),
            ureq::Error::BadUri(_) => "not a valid URL".into(),
            ureq::Error::ConnectProxyFailed(m) => format!("proxy: {m}"),
            ureq::Error::InvalidProxyUrl => "proxy: the proxy setting is not a valid URL".into(),
            other => one_line(&other.to_string()),
        }
    }
}

/// Why a 200 response is not healthy, if it is not: a JSON object whose
/// `status` is not one of [`HEALTHY_STATUSES`]. Bodies that are not JSON
/// objects, or have no `status`, are healthy.
pub fn judge_body(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let status = value.as_object()?.get("status")?;
    if let Some(s) = status.as_str() {
        if HEALTHY_STATUSES
            .iter()
            .any(|h| h.eq_ignore_ascii_case(s.trim()))
        {
            return None;
        }
    }
    let shown = status.to_string();
    let shown: String = if shown.chars().count() > 60 {
        shown.chars().take(57).chain("...".chars()).collect()
    } else {
        shown
    };
    Some(format!("reports status {shown}"))
}

/// A TLS failure in words; a certificate from an unknown CA names
/// `internalCa`.
fn describe_tls(e: &rustls::Error, extra_ca: bool) -> String {
    match e {
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
            if extra_ca {
                "TLS: certificate not trusted (issued neither by internalCa nor by a system CA)"
                    .into()
            } else {
                "TLS: certificate not trusted (is internalCa set?)".into()
            }
        }
        other => airgap_registry::client::describe_tls(other),
    }
}

fn describe_io(e: &std::io::Error, host: &str, timeout: Duration, during: &str) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "connection refused".into(),
        K::ConnectionReset => format!("connection reset by the server{during}"),
        K::ConnectionAborted => format!("connection aborted{during}"),
        K::UnexpectedEof => format!("connection closed by the server{during}"),
        K::TimedOut | K::WouldBlock => format!("timed out after {}{during}", seconds(timeout)),
        K::HostUnreachable => "host unreachable".into(),
        K::NetworkUnreachable => "network unreachable".into(),
        K::AddrNotAvailable => "address not available".into(),
        _ => {
            let text = e.to_string();
            // std's words for a getaddrinfo failure.
            if let Some(detail) = text.strip_prefix("failed to lookup address information: ") {
                one_line(&format!("DNS: cannot resolve {host} ({detail})"))
            } else {
                one_line(&format!("connection failed{during}: {text}"))
            }
        }
    }
}

/// The host of an `https://host[:port]/…` URL.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority)
        .to_string()
}

/// `5s`, `1.5s`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// `s` on one line, shortened.
fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.chars().take(200).collect()
}

/// The system roots and the certificates in `internal_ca`.
fn roots(internal_ca: Option<&Path>) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let files: Vec<PathBuf> = internal_ca.map(Path::to_path_buf).into_iter().collect();
    airgap_registry::client::trust_roots(&files).map_err(|e| anyhow::anyhow!("internalCa: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies() {
        assert_eq!(judge_body(b""), None);
        assert_eq!(judge_body(b"OK"), None);
        assert_eq!(judge_body(b"{}"), None);
        assert_eq!(judge_body(b"[1]"), None);
        assert_eq!(judge_body(br#"{"status":"ok"}"#), None);
        assert_eq!(judge_body(br#"{"status":"UP","checks":[]}"#), None);
        assert_eq!(judge_body(br#"{"status":"Healthy"}"#), None);
        assert_eq!(judge_body(br#"{"status":"pass"}"#), None);
        assert_eq!(
            judge_body(br#"{"status":"degraded"}"#).as_deref(),
            Some(r#"reports status "degraded""#)
        );
        assert_eq!(
            judge_body(br#"{"status":false}"#).as_deref(),
            Some("reports status false")
        );
        let long = format!(r#"{{"status":"{}"}}"#, "x".repeat(500));
        assert!(judge_body(long.as_bytes()).unwrap().len() < 80);
    }

    #[test]
    fn helpers() {
        assert_eq!(host_of("https://cp.example:8443/x"), "cp.example");
        assert_eq!(host_of("https://cp.example/x"), "cp.example");
        assert_eq!(seconds(Duration::from_secs(5)), "5s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
        assert_eq!(one_line("a\n b\r\nc"), "a b c");
    }

    #[test]
    fn table() {
        let report = Report::new(vec![
            Check {
                name: "control-plane".into(),
                url: "https://cp/health".into(),
                ok: true,
                status: Some(200),
                reason: None,
                millis: 12,
            },
            Check {
                name: "workspace/genomics".into(),
                url: "https://g/health".into(),
                ok: false,
                status: Some(503),
                reason: Some("HTTP 503".into()),
                millis: 7,
            },
        ]);
        assert!(!report.healthy);
        let t = report.to_table();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("NAME "), "{t}");
        assert!(lines[0].contains("  URL  "), "{t}");
        assert!(lines[1].starts_with("control-plane "), "{t}");
        assert!(lines[1].contains(" OK "), "{t}");
        assert!(lines[2].contains("FAILED: HTTP 503"), "{t}");
        assert!(lines[2].ends_with("7 ms"), "{t}");
        assert_eq!(lines[3], "1 of 2 healthy");
    }

    #[test]
    fn unreadable_internal_ca() {
        let e = Checker::new(Some(Path::new("/nonexistent/ca.pem")), DEFAULT_TIMEOUT)
            .err()
            .expect("an error");
        let e = e.to_string();
        assert!(
            e.starts_with("internalCa: /nonexistent/ca.pem: cannot read"),
            "{e}"
        );
    }
}
