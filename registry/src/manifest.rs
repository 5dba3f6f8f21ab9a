//! Manifests, tags and the catalog: GET, HEAD, PUT and DELETE of a
//! manifest, the tag list of a repository, the registry's catalog, and
//! the `/v2/` check. Callers get values or [`Error`] variants, never
//! status codes.

use std::io::Read;

use airgap_format::Digest;

use crate::client::{read_small, Client};
use crate::error::{Error, Result};
use crate::media_types::MANIFEST_ACCEPT;
use crate::retry::POLICY;

/// Largest tag list or catalog page read.
const MAX_LIST_BYTES: u64 = 4 << 20;
/// Pages of a tag list or catalog followed at most.
const MAX_PAGES: usize = 1000;

/// The scope that reads `repo`.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// The scope that reads and writes `repo`.
pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

/// `repo@sha256:…` for a digest, `repo:tag` for a tag.
pub fn at(repo: &str, reference: &str) -> String {
    let sep = if reference.contains(':') { '@' } else { ':' };
    format!("{repo}{sep}{reference}")
}

/// A manifest as the registry served it.
#[derive(Clone, Debug)]
pub struct Fetched {
    /// The bytes, exactly as served.
    pub bytes: Vec<u8>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Docker-Content-Digest` header.
    pub served_digest: Option<String>,
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

impl Client {
    /// Checks that the registry answers the distribution API (`GET /v2/`),
    /// with the credentials given if it asks for some.
    pub fn ping(&self) -> Result<()> {
        let url = self.url("/v2/");
        let mut resp = self.send("GET", &url, "", &[], None)?;
        match resp.status().as_u16() {
            200 => Ok(()),
            s => Err(Error::from_status(
                &format!("GET {url}"),
                s,
                read_small(resp.body_mut()),
                "",
            )),
        }
    }

    /// GETs the manifest `reference` (a tag or digest) of `repo` with
    /// every manifest media type accepted, at most `max` bytes. A reply
    /// cut off part-way is asked for again, like any other connection
    /// error. Errors name `manifest HOST/REPO:TAG` (or `@DIGEST`).
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        scope: &str,
        max: u64,
    ) -> Result<Fetched> {
        let what = format!("manifest {}/{}", self.host(), at(repo, reference));
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let mut attempt = 1;
        loop {
            let mut resp = self.send(
                "GET",
                &url,
                scope,
                &[("Accept", MANIFEST_ACCEPT.to_string())],
                None,
            )?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(Error::from_status(
                    &what,
                    status,
                    read_small(resp.body_mut()),
                    scope,
                ));
            }
            let content_type = header(&resp, "content-type");
            let served_digest = header(&resp, "docker-content-digest");
            let mut bytes = Vec::new();
            match resp
                .body_mut()
                .as_reader()
                .take(max + 1)
                .read_to_end(&mut bytes)
            {
                Ok(_) if bytes.len() as u64 > max => {
                    return Err(Error::Protocol(format!("{what}: larger than {max} bytes")))
                }
                Ok(_) => {
                    return Ok(Fetched {
                        bytes,
                        content_type,
                        served_digest,
                    })
                }
                Err(e) => match POLICY.next(attempt, None) {
                    Some(delay) => {
                        tracing::debug!(%url, error = %e, attempt, ?delay, "retrying the manifest: its reply broke off");
                        std::thread::sleep(delay);
                        attempt += 1;
                    }
                    None => {
                        return Err(Error::Transport {
                            message: format!(
                                "{what}: reading the reply (after {attempt} attempts): {e}"
                            ),
                            transient: true,
                        })
                    }
                },
            }
        }
    }

    /// The digest of the manifest `reference` (a tag or a digest) in
    /// `repo`, from a HEAD request with `scope`; `None` when the registry
    /// has none.
    pub fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
        scope: &str,
    ) -> Result<Option<Digest>> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let mut resp = self.send(
            "HEAD",
            &url,
            scope,
            &[("Accept", MANIFEST_ACCEPT.to_string())],
            None,
        )?;
        let at = at(repo, reference);
        match resp.status().as_u16() {
            200 => {
                let d = header(&resp, "docker-content-digest").ok_or_else(|| {
                    Error::Protocol(format!("{at}: the registry gave no Docker-Content-Digest"))
                })?;
                Ok(Some(
                    d.parse()
                        .map_err(|e| Error::Protocol(format!("{at}: {e}")))?,
                ))
            }
            404 => Ok(None),
            s => Err(Error::from_status(
                &format!("{at}: HEAD manifest"),
                s,
                read_small(resp.body_mut()),
                scope,
            )),
        }
    }

    /// PUTs a manifest of `media_type` as `reference` (its digest, or a
    /// tag) in `repo`. Returns the digest the registry says it stored
    /// (`Docker-Content-Digest`), when it says one. A registry that
    /// received other bytes than the digest names refuses them with an
    /// [`Error::Status`] 400 whose body has the code `DIGEST_INVALID`.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Option<String>> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let mut make = || -> anyhow::Result<(u64, Box<dyn Read + Send + '_>)> {
            Ok((bytes.len() as u64, Box::new(bytes)))
        };
        let scope = push_scope(repo);
        let mut resp = self.send(
            "PUT",
            &url,
            &scope,
            &[("Content-Type", media_type.to_string())],
            Some(&mut make),
        )?;
        match resp.status().as_u16() {
            201 => Ok(header(&resp, "docker-content-digest")),
            s => Err(Error::from_status(
                &format!("PUT manifest {reference}"),
                s,
                read_small(resp.body_mut()),
                &scope,
            )),
        }
    }

    /// DELETEs the manifest `digest` of `repo` (with `scope`, which must
    /// allow `delete`): `true` when deleted, `false` when it was gone.
    /// A registry that does not allow deleting answers with an
    /// [`Error::Status`] (405) or [`Error::Denied`].
    pub fn delete_manifest(&self, repo: &str, digest: &str, scope: &str) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/manifests/{digest}"));
        let mut resp = self.send("DELETE", &url, scope, &[], None)?;
        match resp.status().as_u16() {
            200 | 202 => Ok(true),
            404 => Ok(false),
            s => Err(Error::from_status(
                &format!("DELETE {}", at(repo, digest)),
                s,
                read_small(resp.body_mut()),
                scope,
            )),
        }
    }

    /// Every tag of `repo` (`GET /v2/REPO/tags/list`, following `Link`
    /// pages).
    pub fn tags(&self, repo: &str) -> Result<Vec<String>> {
        self.list(&format!("/v2/{repo}/tags/list"), &pull_scope(repo), "tags")
    }

    /// Every repository of the registry (`GET /v2/_catalog`, following
    /// `Link` pages); many registries allow it to administrators only.
    pub fn catalog(&self) -> Result<Vec<String>> {
        self.list("/v2/_catalog", "registry:catalog:*", "repositories")
    }

    /// The strings of `key` in a JSON list endpoint, page after page.
    fn list(&self, path: &str, scope: &str, key: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut next = Some(self.url(path));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(Error::Protocol(format!(
                    "GET {path}: more than {MAX_PAGES} pages"
                )));
            }
            let mut resp = self.send("GET", &url, scope, &[], None)?;
            let status = resp.status().as_u16();
            if status != 200 {
                return Err(Error::from_status(
                    &format!("GET {path}"),
                    status,
                    read_small(resp.body_mut()),
                    scope,
                ));
            }
            next = header(&resp, "link")
                .and_then(|l| next_link(&l))
                .map(|l| crate::client::resolve_location(&url, &l));
            let mut bytes = Vec::new();
            resp.body_mut()
                .as_reader()
                .take(MAX_LIST_BYTES + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| Error::Transport {
                    message: format!("GET {path}: reading the reply: {e}"),
                    transient: true,
                })?;
            out.extend(
                list_page(&bytes, key).map_err(|e| Error::Protocol(format!("GET {path}: {e}")))?,
            );
        }
        Ok(out)
    }
}

/// The strings of `key` in one page of a list reply (`{"tags":[…]}`,
/// `{"repositories":[…]}`); a `null` list is empty.
pub fn list_page(bytes: &[u8], key: &str) -> std::result::Result<Vec<String>, String> {
    if bytes.len() as u64 > MAX_LIST_BYTES {
        return Err(format!("larger than {MAX_LIST_BYTES} bytes"));
    }
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("the reply is not JSON ({e})"))?;
    match v.get(key) {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{key}: not a list of strings"))
            })
            .collect(),
        Some(_) => Err(format!("{key}: not a list")),
    }
}

/// The target of a `Link: <URL>; rel="next"` header, if it names one.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                p.trim()
                    .strip_prefix("rel=")
                    .is_some_and(|r| r.trim_matches('"') == "next")
            })
            .then(|| target.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_scopes() {
        assert_eq!(at("a/b", "1.0"), "a/b:1.0");
        assert_eq!(at("a/b", "sha256:00"), "a/b@sha256:00");
        assert_eq!(push_scope("a"), "repository:a:pull,push");
        assert_eq!(pull_scope("a"), "repository:a:pull");
    }

    #[test]
    fn list_pages_and_links() {
        assert_eq!(
            list_page(br#"{"name":"a","tags":["1","2"]}"#, "tags").unwrap(),
            ["1", "2"]
        );
        assert!(list_page(br#"{"name":"a","tags":null}"#, "tags")
            .unwrap()
            .is_empty());
        assert!(list_page(br#"{"tags":[1]}"#, "tags").is_err());
        assert!(list_page(b"<html>", "tags").is_err());
        assert_eq!(
            next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/_catalog?last=b&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
        assert_eq!(next_link("garbage"), None);
    }
}
