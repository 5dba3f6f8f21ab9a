//! A small HTTPS server on a free loopback port for health-check tests.
//!
//! At start it generates a test CA with rcgen and a server certificate it
//! issues (for `127.0.0.1` and `localhost`, or for names given to
//! [`HttpsServer::start_for`]), and serves TLS with rustls (ring provider).
//! Each path answers what [`HttpsServer::route`] set: a status, a body, and
//! a delay before the answer; other paths get 404. `GET` and `HEAD` only,
//! one request per connection (`Connection: close`), one thread per
//! connection. Requested paths are recorded ([`HttpsServer::requests`]).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Largest request head read.
const MAX_HEAD: u64 = 64 * 1024;

/// What a path answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The HTTP status.
    pub status: u16,
    /// The body (sent with `Content-Type: application/json` when it parses
    /// as JSON, else `text/plain`).
    pub body: String,
    /// How long to wait after reading the request before answering.
    pub delay: Duration,
}

/// State shared with the connection threads.
struct Shared {
    routes: Mutex<HashMap<String, Route>>,
    requests: Mutex<Vec<String>>,
}

/// A running HTTPS server, stopped on drop (connections being answered
/// finish on their own).
pub struct HttpsServer {
    addr: String,
    ca_pem: String,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for HttpsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl HttpsServer {
    /// Starts a server on `127.0.0.1:<free port>` with a certificate for
    /// `127.0.0.1` and `localhost` issued by a fresh test CA.
    pub fn start() -> HttpsServer {
        HttpsServer::start_for(&["127.0.0.1", "localhost"])
    }

    /// Starts a server on `127.0.0.1:<free port>` whose certificate names
    /// only `names` (IP addresses or DNS names), issued by a fresh test CA.
    pub fn start_for(names: &[&str]) -> HttpsServer {
        let (ca_pem, chain, key) = issue(names);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate and key");
        let config = Arc::new(config);

        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("local addr").to_string();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
        });
        let (s, sh) = (stop.clone(), shared.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (sh, config) = (sh.clone(), config.clone());
                        std::thread::spawn(move || {
                            let _ = serve(conn, config, &sh);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        HttpsServer {
            addr,
            ca_pem,
            stop,
            shared,
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The test CA's certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Writes the test CA's certificate (PEM) to `path`.
    pub fn write_ca(&self, path: &Path) {
        std::fs::write(path, &self.ca_pem)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Makes `path` (e.g. `/cp/health`) answer `status` with `body` at once.
    pub fn route(&self, path: &str, status: u16, body: &str) {
        self.route_delayed(path, status, body, Duration::ZERO);
    }

    /// Makes `path` answer `status` with `body` after `delay`.
    pub fn route_delayed(&self, path: &str, status: u16, body: &str, delay: Duration) {
        self.shared.routes.lock().expect("lock").insert(
            path.to_string(),
            Route {
                status,
                body: body.to_string(),
                delay,
            },
        );
    }

    /// The paths requested so far, in order of arrival.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().expect("lock").clone()
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A fresh CA (PEM) and a server certificate chain and key for `names`.
fn issue(names: &[&str]) -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let ca_key = KeyPair::generate().expect("generate CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "airgap-e2e https test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign CA");
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate().expect("generate server key");
    let mut server =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("server params");
    server.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("server"),
    );
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server
        .signed_by(&server_key, &issuer)
        .expect("sign server cert");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    (
        ca_cert.pem(),
        vec![server_cert.der().clone(), ca_cert.der().clone()],
        key,
    )
}

/// Answers one request on `conn` (TLS handshake first), then closes it.
fn serve(
    mut tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    shared: &Shared,
) -> std::io::Result<()> {
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut conn = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    let mut tls = rustls::StreamOwned::new(conn, tcp);

    let (method, path) = {
        let mut head = BufReader::new((&mut tls).take(MAX_HEAD));
        let mut line = String::new();
        head.read_line(&mut line)?;
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        loop {
            let mut h = String::new();
            if head.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
        }
        let path = target.split('?').next().unwrap_or("/").to_string();
        (method, path)
    };
    shared.requests.lock().expect("lock").push(path.clone());

    let route = shared.routes.lock().expect("lock").get(&path).cloned();
    let route = match (method.as_str(), route) {
        ("GET" | "HEAD", Some(r)) => r,
        ("GET" | "HEAD", None) => Route {
            status: 404,
            body: "not found\n".into(),
            delay: Duration::ZERO,
        },
        _ => Route {
            status: 405,
            body: "method not allowed\n".into(),
            delay: Duration::ZERO,
        },
    };
    if !route.delay.is_zero() {
        std::thread::sleep(route.delay);
    }
    let content_type = if serde_json::from_str::<serde_json::Value>(&route.body).is_ok() {
        "application/json"
    } else {
        "text/plain"
    };
    write!(
        tls,
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        route.status,
        reason(route.status),
        route.body.len()
    )?;
    if method != "HEAD" {
        tls.write_all(route.body.as_bytes())?;
    }
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
    Ok(())
}

/// A reason phrase for the statuses tests use.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
