//! Blobs: whether one exists, a cross-repository mount (same registry
//! only), upload sessions, and an upload that is monolithic when small and
//! chunked when large, resumed from the registry's reported range and in
//! a new session when one is lost. The resumable download of a blob into
//! a file (pull side) is behind the `pull` feature.

use std::io::Read;

use airgap_format::Digest;

use crate::client::{read_small, Client};
use crate::error::{Error, Result};
use crate::manifest::push_scope;
use crate::retry::{retry_after, retryable_status, POLICY};

#[cfg(feature = "pull")]
pub use crate::download::{content_range_start, Expect};

/// Blobs up to this size go in one PUT; larger ones in chunks.
pub const MONOLITHIC_MAX: u64 = 32 << 20;
/// Size of one chunk of a chunked upload.
pub const CHUNK: u64 = 16 << 20;
/// Failed chunks in a row, without progress, before an upload gives up.
const CHUNK_STALLS: u32 = 3;

const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

/// Where a blob's bytes are read from for an upload: any range of them,
/// afresh for each attempt.
pub trait BlobSource: Sync {
    /// A reader of `len` bytes of the blob from `offset`.
    fn open(&self, offset: u64, len: u64) -> anyhow::Result<Box<dyn Read + Send + '_>>;
}

/// What became of a cross-repository mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mounted {
    /// The blob is now in the repository.
    Yes,
    /// The registry would not mount it and opened an upload session
    /// instead, at this `Location`.
    Upload(String),
}

fn location_of(resp: &ureq::http::Response<ureq::Body>) -> Result<String> {
    resp.headers()
        .get("location")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| Error::Protocol("the registry gave no upload Location".into()))
}

fn with_query(location: &str, key: &str, value: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}{key}={value}")
}

impl Client {
    /// Whether blob `digest` is in `repo` (a HEAD with `scope`).
    pub fn blob_exists(&self, repo: &str, digest: &Digest, scope: &str) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let mut resp = self.send("HEAD", &url, scope, &[], None)?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => Err(Error::from_status(
                "HEAD",
                s,
                read_small(resp.body_mut()),
                scope,
            )),
        }
    }

    /// Mounts blob `digest` into `repo` from the repository `from` of the
    /// same registry; when the registry will not, the upload session it
    /// opened instead.
    pub fn mount_blob(&self, repo: &str, digest: &Digest, from: &str) -> Result<Mounted> {
        let url = self.url(&format!(
            "/v2/{repo}/blobs/uploads/?mount={digest}&from={from}"
        ));
        let scope = format!("{} repository:{from}:pull", push_scope(repo));
        let mut resp = self.send("POST", &url, &scope, &[], None)?;
        match resp.status().as_u16() {
            201 => Ok(Mounted::Yes),
            202 => Ok(Mounted::Upload(location_of(&resp)?)),
            s => Err(Error::from_status(
                &format!("mount from {from}"),
                s,
                read_small(resp.body_mut()),
                &scope,
            )),
        }
    }

    /// Opens an upload session in `repo`; its `Location`.
    pub fn start_upload(&self, repo: &str) -> Result<String> {
        let url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        let scope = push_scope(repo);
        let mut resp = self.send("POST", &url, &scope, &[], None)?;
        match resp.status().as_u16() {
            202 => location_of(&resp),
            s => Err(Error::from_status(
                "starting an upload",
                s,
                read_small(resp.body_mut()),
                &scope,
            )),
        }
    }

    /// Cancels the upload session at `location` in `repo`, when it is on
    /// this registry (credentials go nowhere else); its answer is not
    /// read.
    pub fn cancel_upload(&self, repo: &str, location: &str) {
        let loc = crate::client::resolve_location(&self.url(""), location);
        if self.same_origin(&loc) {
            let _ = self.send("DELETE", &loc, &push_scope(repo), &[], None);
        }
    }

    /// Uploads blob `digest` of `size` bytes into `repo`, read from
    /// `source`, in the session at `location`: one PUT when small, else
    /// PATCH chunks resumed from the registry's reported range after a
    /// failure, then the closing PUT. A session that is lost (a request
    /// cut off part-way, a session the registry no longer knows) is
    /// replaced by a new one, after checking that the blob did not arrive
    /// all the same. `progress` is told of the bytes sent, each once.
    #[allow(clippy::too_many_arguments)]
    pub fn upload_blob(
        &self,
        repo: &str,
        digest: &Digest,
        size: u64,
        source: &dyn BlobSource,
        mut location: String,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<()> {
        let mut shown = 0u64;
        let mut show = |to: u64| {
            if to > shown {
                progress(to - shown);
                shown = to;
            }
        };
        let mut sessions = 1;
        loop {
            let upload = Upload {
                client: self,
                repo,
                digest,
                size,
                source,
            };
            let result = if size <= MONOLITHIC_MAX {
                upload.whole(&location)
            } else {
                upload.chunks(&location, &mut show)
            };
            let lost = match result {
                Ok(()) => {
                    show(size);
                    return Ok(());
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Lost(e)) => e,
            };
            // The registry may have stored the blob and lost only its answer.
            if self.blob_exists(repo, digest, &push_scope(repo))? {
                show(size);
                return Ok(());
            }
            let Some(delay) = POLICY.next(sessions, None) else {
                return Err(Error::Transport {
                    message: format!("{sessions} upload sessions lost in a row: {lost}"),
                    transient: true,
                });
            };
            std::thread::sleep(delay);
            sessions += 1;
            tracing::debug!(%digest, repo, sessions, error = %lost, "upload session lost; resuming in a new one");
            location = self.start_upload(repo)?;
        }
    }
}

/// Why one upload session did not finish.
enum Attempt {
    /// Another session would not help: the registry refused the content,
    /// or the source cannot be read.
    Fatal(Error),
    /// The upload session is gone, or holds an unknown part of the blob
    /// (a request cut off part-way): start again in a new one.
    Lost(Error),
}

/// Statuses of an upload request that say the session is gone: unknown
/// to the registry, or refused because a request it took only part of
/// left it at another offset than the session's state says (the CNCF
/// distribution registry then cancels the session).
fn session_lost(status: u16) -> bool {
    matches!(status, 404 | 416)
}

/// One blob's upload into one session.
struct Upload<'a> {
    client: &'a Client,
    repo: &'a str,
    digest: &'a Digest,
    size: u64,
    source: &'a dyn BlobSource,
}

impl Upload<'_> {
    /// One PUT of the whole blob into the session at `location`.
    fn whole(&self, location: &str) -> std::result::Result<(), Attempt> {
        let (client, repo, digest, size) = (self.client, self.repo, self.digest, self.size);
        let url = client.url(&with_query(location, "digest", &digest.to_string()));
        let mut make = || -> anyhow::Result<(u64, Box<dyn Read + Send + '_>)> {
            Ok((size, self.source.open(0, size)?))
        };
        let headers = [(OCTET.0, OCTET.1.to_string())];
        let scope = push_scope(repo);
        let mut attempt = 1;
        loop {
            let mut resp = match client.send_once("PUT", &url, &scope, &headers, Some(&mut make)) {
                Ok(r) => r,
                // Cut off: the session holds an unknown part of the blob.
                Err(e) if e.is_transient() => return Err(Attempt::Lost(e)),
                Err(e) => return Err(Attempt::Fatal(e)),
            };
            let s = resp.status().as_u16();
            if s == 201 {
                return Ok(());
            }
            let body = read_small(resp.body_mut());
            let why = Error::from_status("PUT", s, body.clone(), &scope);
            if session_lost(s) {
                return Err(Attempt::Lost(why));
            }
            if !retryable_status(s) {
                return Err(Attempt::Fatal(why));
            }
            let Some(delay) = POLICY.next(attempt, retry_after(&resp)) else {
                let what = format!("PUT, after {attempt} attempts");
                return Err(Attempt::Fatal(Error::from_status(&what, s, body, &scope)));
            };
            tracing::debug!(%digest, repo, %why, attempt, ?delay, "retrying the blob PUT");
            std::thread::sleep(delay);
            attempt += 1;
        }
    }

    /// PATCH chunks into the session at `location`, then the closing PUT.
    /// `show` is told how far the upload got.
    fn chunks(
        &self,
        location: &str,
        show: &mut dyn FnMut(u64),
    ) -> std::result::Result<(), Attempt> {
        use Attempt::{Fatal, Lost};
        let (client, repo, digest, size) = (self.client, self.repo, self.digest, self.size);
        let sc = push_scope(repo);
        let mut location = location.to_string();
        let mut offset = 0u64;
        let mut stalls = 0;
        let mut resumed = false;
        while offset < size {
            let n = CHUNK.min(size - offset);
            let url = client.url(&location);
            let start = offset;
            let mut make = || -> anyhow::Result<(u64, Box<dyn Read + Send + '_>)> {
                Ok((n, self.source.open(start, n)?))
            };
            let headers = [
                (OCTET.0, OCTET.1.to_string()),
                ("Content-Range", format!("{start}-{}", start + n - 1)),
            ];
            let (why, asked) = match client.send_once("PATCH", &url, &sc, &headers, Some(&mut make))
            {
                Ok(resp) if resp.status().as_u16() == 202 => {
                    location = location_of(&resp).map_err(Fatal)?;
                    offset += n;
                    show(offset);
                    stalls = 0;
                    continue;
                }
                Ok(mut resp) => {
                    let s = resp.status().as_u16();
                    let body = read_small(resp.body_mut());
                    if !retryable_status(s) && !session_lost(s) {
                        let what = format!("PATCH at offset {offset}");
                        return Err(Fatal(Error::from_status(&what, s, body, &sc)));
                    }
                    let why = format!("HTTP {s}: {}", crate::client::one_line(&body));
                    (why, retry_after(&resp))
                }
                Err(e) if e.is_transient() => (e.to_string(), None),
                Err(e) => return Err(Fatal(e)),
            };
            stalls += 1;
            if stalls > CHUNK_STALLS {
                return Err(Fatal(Error::Transport {
                    message: format!(
                        "PATCH at offset {offset}: {why} ({stalls} failures in a row without progress)"
                    ),
                    transient: false,
                }));
            }
            std::thread::sleep(POLICY.delay(stalls, asked));
            // Ask the registry how much it holds, and go on from there. One
            // that no longer knows the session (or refuses it after a chunk
            // it took only part of) answers 404: start again in a new one.
            let status = client
                .send("GET", &client.url(&location), &sc, &[], None)
                .map_err(|e| if e.is_transient() { Lost(e) } else { Fatal(e) })?;
            if status.status().as_u16() != 204 {
                return Err(Lost(Error::Protocol(format!(
                    "PATCH at offset {offset}: {why}; upload status: HTTP {}",
                    status.status()
                ))));
            }
            if let Ok(l) = location_of(&status) {
                location = l;
            }
            let have = held_from_range(status.headers().get("range").and_then(|h| h.to_str().ok()));
            if have > size {
                return Err(Lost(Error::Protocol(format!(
                    "PATCH at offset {offset}: {why}; the registry says it holds {have} bytes of {size}"
                ))));
            }
            tracing::debug!(%digest, offset, have, %why, "resuming chunked upload");
            offset = have;
            resumed = true;
        }
        let url = client.url(&with_query(&location, "digest", &digest.to_string()));
        let mut attempt = 1;
        loop {
            let (why, asked) = match client.send_once("PUT", &url, &sc, &[], None) {
                Ok(resp) if resp.status().as_u16() == 201 => return Ok(()),
                Ok(mut resp) => {
                    let s = resp.status().as_u16();
                    let body = read_small(resp.body_mut());
                    let why = Error::from_status("closing PUT", s, body.clone(), &sc);
                    if session_lost(s) {
                        // Also what a closing PUT that went through, but
                        // whose answer was lost, gets when sent again.
                        return Err(Lost(why));
                    }
                    if resumed
                        && s == 400
                        && why.body().is_some_and(|b| b.has_code("DIGEST_INVALID"))
                    {
                        // The registry's account of what it held was wrong
                        // (or ambiguous, see `held_from_range`): start again
                        // from zero.
                        return Err(Lost(Error::Protocol(format!(
                            "{why} (after a resumed chunk)"
                        ))));
                    }
                    if !retryable_status(s) {
                        return Err(Fatal(why));
                    }
                    (why.to_string(), retry_after(&resp))
                }
                Err(e) if e.is_transient() => (format!("closing PUT: {e}"), None),
                Err(e) => return Err(Fatal(e)),
            };
            let Some(delay) = POLICY.next(attempt, asked) else {
                return Err(Fatal(Error::Transport {
                    message: format!("{why} (after {attempt} attempts)"),
                    transient: true,
                }));
            };
            tracing::debug!(%digest, repo, %why, attempt, ?delay, "retrying the closing PUT");
            std::thread::sleep(delay);
            attempt += 1;
        }
    }
}

/// How many bytes an upload status says the registry holds, from its
/// `Range: 0-END` header's value (`None` when there is none). END is the
/// last byte's offset, so a registry that holds one byte says `0-0`; but
/// the CNCF distribution registry says `0-0` for an empty upload too.
/// `0-0` is read as empty: a chunk broken off after exactly one byte is
/// rarer than one refused whole, and if it happens the closing PUT fails
/// its digest check and the upload starts again in a new session.
/// Anything unreadable is none, and an END of `u64::MAX` (more than any
/// blob) saturates, so that the caller's "holds more than the blob" check
/// refuses it.
pub fn held_from_range(range: Option<&str>) -> u64 {
    range
        .and_then(|r| r.split_once('-'))
        .and_then(|(_, end)| end.trim().parse::<u64>().ok())
        .map_or(0, |end| if end == 0 { 0 } else { end.saturating_add(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_reads_the_upload_range() {
        assert_eq!(held_from_range(None), 0);
        assert_eq!(held_from_range(Some("0-0")), 0);
        assert_eq!(held_from_range(Some("0-99")), 100);
        assert_eq!(held_from_range(Some("0- 99 ")), 100);
        assert_eq!(held_from_range(Some("bytes")), 0);
        assert_eq!(held_from_range(Some("0-x")), 0);
        // Found by fuzzing (registry target): END + 1 overflowed.
        assert_eq!(held_from_range(Some("0-18446744073709551615")), u64::MAX);
    }

    #[test]
    fn queries_are_appended() {
        assert_eq!(with_query("/u/1", "digest", "d"), "/u/1?digest=d");
        assert_eq!(
            with_query("/u/1?_state=x", "digest", "d"),
            "/u/1?_state=x&digest=d"
        );
    }
}
