//! The pull side's blob download (feature `pull`): a GET following
//! redirects, streamed into a file with its SHA-256 computed as the bytes
//! arrive, resumed with a `Range` request from the last byte on disk when
//! the connection breaks, and started afresh when the server ignores or
//! refuses the range. It gives up after [`POLICY`]'s attempts in a row
//! that made no progress.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use airgap_format::digest::Hasher;
use airgap_format::Digest;
use anyhow::{anyhow, bail, Context};

use crate::client::{one_line, read_small, Client};
use crate::error::Error;
use crate::retry::{report_retry, POLICY};

/// Read size while streaming a download.
const CHUNK: usize = 1 << 20;

/// What a download must turn out to be.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    /// Its digest, when known (checked at the end).
    pub digest: Option<Digest>,
    /// Its size, when known (a shorter body is a broken connection).
    pub size: Option<u64>,
    /// The most bytes accepted.
    pub max: u64,
}

/// A download attempt's failure: worth another attempt, or not.
enum Failure {
    Retry(anyhow::Error),
    Fatal(anyhow::Error),
    /// An answer that is not the blob, naming what was asked for.
    Refused(Error),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Fatal(e.into())
    }
}

/// A download in progress: the file, the digest so far, the bytes in it.
struct Transfer<'f> {
    file: &'f mut File,
    hasher: Hasher,
    have: u64,
    /// Bytes already reported as progress (never counted twice).
    reported: u64,
}

impl Transfer<'_> {
    fn restart(&mut self) -> anyhow::Result<()> {
        self.file.set_len(0).context("truncating a download")?;
        self.file
            .seek(SeekFrom::Start(0))
            .context("rewinding a download")?;
        self.hasher = Hasher::new();
        self.have = 0;
        Ok(())
    }
}

impl Client {
    /// Downloads `url` (a blob of this registry, with `scope`, or a file
    /// on a host it redirects to) into `file`, which must be empty;
    /// returns its digest and size, the digest checked against
    /// `expect.digest` when given. Errors start with `label`; `progress`
    /// is told of the bytes as they arrive, each once.
    pub fn download(
        &self,
        url: &str,
        scope: &str,
        expect: &Expect,
        file: &mut File,
        label: &str,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> anyhow::Result<(Digest, u64)> {
        let mut t = Transfer {
            file,
            hasher: Hasher::new(),
            have: 0,
            reported: 0,
        };
        let mut failures = 0;
        loop {
            let before = t.have;
            match self.download_attempt(url, scope, expect, &mut t, label, progress) {
                Ok(()) => break,
                Err(Failure::Fatal(e)) => return Err(e.context(label.to_string())),
                Err(Failure::Refused(e)) => return Err(e.into()),
                Err(Failure::Retry(e)) => {
                    failures = if t.have == before { failures + 1 } else { 1 };
                    let Some(delay) = POLICY.next(failures, None) else {
                        return Err(e.context(format!(
                            "{label}: giving up after {failures} attempts without progress"
                        )));
                    };
                    tracing::debug!(%url, have = t.have, "download retry");
                    report_retry(
                        self.host(),
                        &format!("{label}: {}", one_line(&format!("{e:#}"))),
                        delay,
                        failures + 1,
                        POLICY.attempts,
                    );
                    std::thread::sleep(delay);
                }
            }
        }
        let digest = t.hasher.finish();
        if let Some(e) = expect.digest {
            if e != digest {
                bail!("{label}: content does not match its digest (got {digest})");
            }
        }
        t.file.flush().context("writing a download")?;
        Ok((digest, t.have))
    }

    /// GETs a small document at `url` (a chart repository's
    /// `index.yaml`), following redirects, at most `max` bytes.
    pub fn get_document(&self, url: &str, max: u64) -> Result<Vec<u8>, Error> {
        let mut resp = self.get_following(url, "", &[])?;
        let status = resp.status().as_u16();
        if status != 200 {
            let what = format!("GET {url}");
            return Err(Error::from_status(
                &what,
                status,
                read_small(resp.body_mut()),
                "",
            ));
        }
        let mut bytes = Vec::new();
        resp.body_mut()
            .as_reader()
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Transport {
                message: format!("GET {url}: reading the reply: {e}"),
                transient: true,
            })?;
        if bytes.len() as u64 > max {
            return Err(Error::Protocol(format!(
                "GET {url}: larger than {max} bytes"
            )));
        }
        Ok(bytes)
    }

    fn download_attempt(
        &self,
        url: &str,
        scope: &str,
        expect: &Expect,
        t: &mut Transfer,
        label: &str,
        progress: Option<&(dyn Fn(u64) + Sync)>,
    ) -> Result<(), Failure> {
        let mut headers = Vec::new();
        if t.have > 0 {
            headers.push(("Range", format!("bytes={}-", t.have)));
        }
        // Connection errors, 429 and 5xx before the body were retried by
        // the client already; what is retried here is a body that breaks.
        let mut resp = self.get_following(url, scope, &headers)?;
        let status = resp.status().as_u16();
        match status {
            200 => {
                if t.have > 0 {
                    // The server ignored the range: start again.
                    t.restart().map_err(Failure::Fatal)?;
                }
            }
            206 => {
                let range = resp
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if content_range_start(range) != Some(t.have) {
                    t.restart().map_err(Failure::Fatal)?;
                    return Err(Failure::Retry(anyhow!(
                        "the server answered a range request with {range:?}"
                    )));
                }
            }
            416 if t.have > 0 => {
                t.restart().map_err(Failure::Fatal)?;
                return Err(Failure::Retry(anyhow!("HTTP 416 for a resumed range")));
            }
            _ => {
                let body = read_small(resp.body_mut());
                return Err(Failure::Refused(Error::from_status(
                    label, status, body, scope,
                )));
            }
        }
        let mut reader = resp.body_mut().as_reader();
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Failure::Retry(anyhow!(
                        "connection broke after {} bytes: {e}",
                        t.have
                    )))
                }
            };
            if t.have + n as u64 > expect.max {
                return Err(Failure::Fatal(anyhow!(
                    "the server sent more than the expected {} bytes",
                    expect.max
                )));
            }
            t.file
                .write_all(&buf[..n])
                .context("writing a download")
                .map_err(Failure::Fatal)?;
            t.hasher.update(&buf[..n]);
            t.have += n as u64;
            if t.have > t.reported {
                if let Some(p) = progress {
                    p(t.have - t.reported);
                }
                t.reported = t.have;
            }
        }
        match expect.size {
            Some(s) if t.have < s => Err(Failure::Retry(anyhow!(
                "connection closed after {} of {s} bytes",
                t.have
            ))),
            _ => Ok(()),
        }
    }
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` header (a
/// resumed blob download must start where the partial file ends).
pub fn content_range_start(h: &str) -> Option<u64> {
    h.strip_prefix("bytes ")?
        .split('-')
        .next()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start(""), None);
    }
}
