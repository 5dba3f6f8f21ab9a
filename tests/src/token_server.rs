//! A token server for the registry bearer-token flow (the "Docker Registry
//! v2 authentication" protocol), on a free loopback port.
//!
//! `GET /token?service=S&scope=repository:NAME:pull,push[&scope=...]` with
//! HTTP basic credentials answers
//! `{"token", "access_token", "expires_in", "issued_at"}`, the token being a
//! JWT that CNCF distribution's `auth: token:` accepts: ES256-signed, its
//! header carrying the signing certificate in `x5c`, its claims
//! `iss`/`sub`/`aud`/`exp`/`nbf`/`iat`/`jti` (`aud` being the `service` asked
//! for) and an `access` list granting every action asked for (or those
//! [`TokenServer::allow_only`] allows). The signing key and its self-signed
//! certificate are generated at start; the registry trusts
//! [`TokenServer::cert_pem`] (its `rootcertbundle`). Wrong or missing
//! credentials get 401, a malformed scope 400, anything but `GET /token` 404.
//! Every request is recorded ([`TokenServer::requests`]) and counted
//! ([`TokenServer::tokens_issued`], [`TokenServer::requests_refused`]).
//! HTTP is `tiny_http`'s, through [`crate::http_server`].

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rcgen::{CertificateParams, DnType, KeyPair};
use serde::Serialize;
use tiny_http::{Header as HttpHeader, Method, Response};

use crate::http_server::HttpServer;

/// The `iss` claim of every token; the registry's `auth.token.issuer`.
pub const ISSUER: &str = "airgap-test-issuer";

/// The path tokens are asked for at.
pub const TOKEN_PATH: &str = "/token";

/// Lifetime of a token, in seconds (`exp` - `iat`, and `expires_in`).
pub const TOKEN_LIFETIME_SECS: u64 = 300;

/// One entry of a token's `access` claim: what it lets its bearer do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Access {
    /// The resource type: `repository`, `registry`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource name, e.g. `site/demo/web`.
    pub name: String,
    /// The actions granted, e.g. `["pull", "push"]`.
    pub actions: Vec<String>,
}

/// One request the token server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRequest {
    /// The user name of the basic credentials sent, if any (right or wrong).
    pub user: Option<String>,
    /// The `service` query parameter, if any.
    pub service: Option<String>,
    /// Every `scope` query parameter, in order (space-separated values split).
    pub scopes: Vec<String>,
    /// The status answered: 200 with a token, else 400, 401 or 404.
    pub status: u16,
}

/// The claims of a token, as distribution 2.8 reads them.
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

/// State shared by the connection threads.
struct Shared {
    user: String,
    password: String,
    key: EncodingKey,
    x5c: String,
    issued: AtomicUsize,
    refused: AtomicUsize,
    serial: AtomicU64,
    log: Mutex<Vec<TokenRequest>>,
    allowed: Mutex<Option<Vec<String>>>,
}

/// A running token server, stopped on drop.
pub struct TokenServer {
    http: HttpServer,
    cert_pem: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("addr", &self.http.addr())
            .field("user", &self.shared.user)
            .field("issued", &self.tokens_issued())
            .field("refused", &self.requests_refused())
            .finish_non_exhaustive()
    }
}

impl TokenServer {
    /// Starts a token server on `127.0.0.1:<free port>` issuing tokens to
    /// `user` authenticated with `password`, signed with a fresh ECDSA P-256
    /// key whose self-signed certificate is [`TokenServer::cert_pem`].
    pub fn start(user: &str, password: &str) -> TokenServer {
        let key = KeyPair::generate().expect("generate token signing key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("cert params");
        params
            .distinguished_name
            .push(DnType::CommonName, "airgap-e2e token signer");
        let cert = params.self_signed(&key).expect("self-sign token cert");
        let encoding = EncodingKey::from_ec_pem(key.serialize_pem().as_bytes())
            .expect("token signing key as a JWT key");

        let shared = Arc::new(Shared {
            user: user.to_string(),
            password: password.to_string(),
            key: encoding,
            x5c: B64.encode(cert.der()),
            issued: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            serial: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            allowed: Mutex::new(None),
        });
        let sh = shared.clone();
        let http = HttpServer::start(move |request| serve(request, &sh));
        TokenServer {
            http,
            cert_pem: cert.pem(),
            shared,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http.addr())
    }

    /// The token endpoint, `http://127.0.0.1:PORT/token`: the registry's
    /// `auth.token.realm`.
    pub fn realm(&self) -> String {
        format!("{}{TOKEN_PATH}", self.url())
    }

    /// The PEM certificate of the signing key (the registry's
    /// `auth.token.rootcertbundle`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> usize {
        self.shared.issued.load(Ordering::Relaxed)
    }

    /// Requests answered with an error status so far (401 for wrong or
    /// missing credentials, 400 for a malformed scope, 404 elsewhere).
    pub fn requests_refused(&self) -> usize {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.log.lock().expect("lock").clone()
    }

    /// From now on grants only `actions` (e.g. `["pull"]`: a read-only
    /// user), as token servers do: the token lists the requested actions
    /// that are allowed, and a scope left with none is omitted. `None`
    /// grants everything asked for again.
    pub fn allow_only(&self, actions: Option<&[&str]>) {
        *self.shared.allowed.lock().expect("lock") =
            actions.map(|a| a.iter().map(|s| s.to_string()).collect());
    }
}

/// Answers one request.
fn serve(request: tiny_http::Request, shared: &Shared) {
    let authorization = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_string());
    let target = request.url().to_string();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let (status, body) = if *request.method() == Method::Get && path == TOKEN_PATH {
        answer(shared, authorization.as_deref(), query)
    } else {
        let mut req = parse_request(authorization.as_deref(), query);
        req.status = 404;
        record(shared, req);
        (404, error_json("NOT_FOUND", "not found"))
    };
    let header =
        |name: &str, value: &str| HttpHeader::from_bytes(name, value).expect("a valid header");
    let mut response = Response::from_string(body)
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"));
    if status == 401 {
        response.add_header(header(
            "WWW-Authenticate",
            "Basic realm=\"airgap-test-token\"",
        ));
    }
    let _ = request.respond(response);
}

/// The status and JSON body for `GET /token?<query>`.
fn answer(shared: &Shared, authorization: Option<&str>, query: &str) -> (u16, String) {
    let mut req = parse_request(authorization, query);
    let password = authorization.and_then(basic_credentials).map(|(_, p)| p);
    if req.user.as_deref() != Some(shared.user.as_str())
        || password.as_deref() != Some(shared.password.as_str())
    {
        req.status = 401;
        record(shared, req);
        return (
            401,
            error_json("UNAUTHORIZED", "invalid user name or password"),
        );
    }
    let allowed = shared.allowed.lock().expect("lock").clone();
    let mut access = Vec::new();
    for scope in &req.scopes {
        match parse_scope(scope) {
            Some(mut a) => {
                if let Some(allowed) = &allowed {
                    a.actions.retain(|x| allowed.contains(x));
                }
                if !a.actions.is_empty() {
                    access.push(a);
                }
            }
            None => {
                req.status = 400;
                record(shared, req);
                return (400, error_json("INVALID_REQUEST", "invalid scope"));
            }
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let serial = shared.serial.fetch_add(1, Ordering::Relaxed);
    let claims = Claims {
        iss: ISSUER,
        sub: &shared.user,
        aud: req.service.as_deref().unwrap_or(""),
        exp: now + TOKEN_LIFETIME_SECS,
        nbf: now,
        iat: now,
        jti: format!("{}-{now}-{serial}", std::process::id()),
        access,
    };
    let mut header = Header::new(Algorithm::ES256);
    header.x5c = Some(vec![shared.x5c.clone()]);
    let token = jsonwebtoken::encode(&header, &claims, &shared.key).expect("sign token");
    let issued_at = time::OffsetDateTime::from_unix_timestamp(now as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    req.status = 200;
    record(shared, req);
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": TOKEN_LIFETIME_SECS,
        "issued_at": issued_at,
    });
    (200, body.to_string())
}

/// Records a request and counts it as issued or refused.
fn record(shared: &Shared, req: TokenRequest) {
    let counter = if req.status == 200 {
        &shared.issued
    } else {
        &shared.refused
    };
    counter.fetch_add(1, Ordering::Relaxed);
    shared.log.lock().expect("lock").push(req);
}

/// The user, service and scopes of a request; status left at 0.
fn parse_request(authorization: Option<&str>, query: &str) -> TokenRequest {
    let mut req = TokenRequest {
        user: authorization.and_then(basic_credentials).map(|(u, _)| u),
        service: None,
        scopes: Vec::new(),
        status: 0,
    };
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "service" => req.service = Some(v.into_owned()),
            "scope" => req
                .scopes
                .extend(v.split(' ').filter(|s| !s.is_empty()).map(str::to_string)),
            _ => {}
        }
    }
    req
}

/// `user` and `password` of `Basic base64(user:password)`.
fn basic_credentials(header: &str) -> Option<(String, String)> {
    let (scheme, b64) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(B64.decode(b64.trim()).ok()?).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// `TYPE:NAME:ACTION[,ACTION...]`, the name possibly holding colons
/// (`repository:host:5000/app:pull`).
fn parse_scope(scope: &str) -> Option<Access> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let actions: Vec<String> = actions
        .split(',')
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if kind.is_empty() || name.is_empty() || actions.is_empty() {
        return None;
    }
    Some(Access {
        kind: kind.to_string(),
        name: name.to_string(),
        actions,
    })
}

/// `{"errors":[{"code":"...","message":"..."}]}`, as registries answer.
fn error_json(code: &str, message: &str) -> String {
    serde_json::json!({"errors": [{"code": code, "message": message}]}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert_eq!(
            parse_scope("repository:host:5000/site/app:pull,push"),
            Some(Access {
                kind: "repository".into(),
                name: "host:5000/site/app".into(),
                actions: vec!["pull".into(), "push".into()],
            })
        );
        assert_eq!(parse_scope("repository:app"), None);
        assert_eq!(parse_scope("repository:app:"), None);
    }

    #[test]
    fn queries() {
        let r = parse_request(
            Some(&format!("Basic {}", B64.encode("u:p:q"))),
            "service=airgap-test&scope=repository%3Aa%3Apull&scope=repository:b:pull+repository:c:push",
        );
        assert_eq!(r.user.as_deref(), Some("u"));
        assert_eq!(r.service.as_deref(), Some("airgap-test"));
        assert_eq!(
            r.scopes,
            [
                "repository:a:pull",
                "repository:b:pull",
                "repository:c:push"
            ]
        );
        assert_eq!(
            basic_credentials(&format!("basic {}", B64.encode("u:p:q"))),
            Some(("u".into(), "p:q".into()))
        );
    }
}
