//! Registry credentials: from the command line, or looked up the way
//! Podman and Docker do: `REGISTRY_AUTH_FILE`, Podman's `auth.json`,
//! Docker's `config.json`, and credential helpers named there.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// Largest credentials file read.
const MAX_FILE: u64 = 1 << 20;

/// A user name and password (or identity token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    /// Base64 of `user:password`.
    pub fn basic(&self) -> String {
        crate::client::basic(&self.username, &self.password)
    }
}

/// Reads a password from standard input (one line, newline removed).
pub fn password_from_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut s)
        .context("reading the password from standard input")?;
    let p = s.strip_suffix('\n').unwrap_or(&s);
    let p = p.strip_suffix('\r').unwrap_or(p);
    if p.is_empty() {
        bail!("--password-stdin: standard input is empty");
    }
    Ok(p.to_string())
}

/// The auth files consulted, in order.
pub fn auth_files() -> Vec<PathBuf> {
    let env = |k: &str| std::env::var_os(k).map(PathBuf::from);
    let mut files = Vec::new();
    if let Some(f) = env("REGISTRY_AUTH_FILE") {
        files.push(f);
    }
    if let Some(d) = env("XDG_RUNTIME_DIR") {
        files.push(d.join("containers/auth.json"));
    }
    if let Some(h) = env("HOME") {
        files.push(h.join(".config/containers/auth.json"));
    }
    match env("DOCKER_CONFIG") {
        Some(d) => files.push(d.join("config.json")),
        None => {
            if let Some(h) = env("HOME") {
                files.push(h.join(".docker/config.json"));
            }
        }
    }
    files
}

/// Looks up credentials for `host` in the auth files; `None` when none knows it.
pub fn lookup(host: &str) -> Result<Option<Credentials>> {
    lookup_with(None, host)
}

/// Like [`lookup`], consulting `authfile` (given on the command line) first.
pub fn lookup_with(authfile: Option<&std::path::Path>, host: &str) -> Result<Option<Credentials>> {
    let mut files = auth_files();
    if let Some(f) = authfile {
        if !f.is_file() {
            bail!("{}: auth file not found", f.display());
        }
        files.insert(0, f.to_path_buf());
    }
    for file in files {
        let text = match airgap_format::regular_file::read_regular_string(
            &file,
            MAX_FILE,
            "a registry credentials file",
        ) {
            Ok(t) => t,
            Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => continue,
            Err(e) => return Err(e.into()),
        };
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", file.display()))?;
        if let Some(c) = from_config(&v, host, &file.display().to_string())? {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// The keys an auth file may use for `host`. Docker Hub is stored under
/// its old index URL.
fn keys_for(host: &str) -> Vec<String> {
    let mut keys = vec![
        host.to_string(),
        format!("https://{host}"),
        format!("http://{host}"),
    ];
    if matches!(
        host,
        "docker.io" | "registry-1.docker.io" | "index.docker.io"
    ) {
        keys.push("https://index.docker.io/v1/".to_string());
        keys.push("index.docker.io".to_string());
        keys.push("docker.io".to_string());
    }
    keys
}

fn from_config(v: &serde_json::Value, host: &str, what: &str) -> Result<Option<Credentials>> {
    for key in keys_for(host) {
        if let Some(helper) = v
            .pointer(&format!("/credHelpers/{}", key.replace('/', "~1")))
            .and_then(|h| h.as_str())
        {
            return helper_get(helper, host).map(Some);
        }
    }
    for key in keys_for(host) {
        if let Some(entry) = v.get("auths").and_then(|a| a.get(&key)) {
            if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
                let decoded = B64
                    .decode(auth)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .with_context(|| {
                        format!("{what}: auths.{key}.auth is not base64 of user:password")
                    })?;
                let Some((u, p)) = decoded.split_once(':') else {
                    bail!("{what}: auths.{key}.auth is not base64 of user:password");
                };
                return Ok(Some(Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                }));
            }
        }
    }
    if let Some(store) = v.get("credsStore").and_then(|s| s.as_str()) {
        return helper_get(store, host).map(Some);
    }
    Ok(None)
}

/// Runs `docker-credential-<helper> get` with `host` on its standard input.
fn helper_get(helper: &str, host: &str) -> Result<Credentials> {
    if helper.is_empty()
        || !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!("credential helper name {helper:?} is not valid");
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {program}"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(host.as_bytes())
        .with_context(|| format!("{program}: writing the host"))?;
    let out = child
        .wait_with_output()
        .with_context(|| format!("{program} get"))?;
    if !out.status.success() {
        bail!(
            "{program} get {host}: {}",
            String::from_utf8_lossy(&out.stdout).trim()
        );
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).with_context(|| format!("{program} get: not JSON"))?;
    let get = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_string()
    };
    Ok(Credentials {
        username: get("Username"),
        password: get("Secret"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_and_podman_auths() {
        let v =
            serde_json::json!({"auths": {"reg.local:5000": {"auth": B64.encode("alice:s3cret")}}});
        let c = from_config(&v, "reg.local:5000", "f").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cret")
        );
        assert!(from_config(&v, "other", "f").unwrap().is_none());
        let bad = serde_json::json!({"auths": {"r": {"auth": "!!"}}});
        assert!(from_config(&bad, "r", "f").is_err());
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
