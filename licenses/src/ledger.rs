//! The vendor's serial ledger (feature `issue`): the last serial issued to
//! each site, so that every new licence for a site gets a higher serial.
//!
//! The file is JSON: `{"format": "airgap-license-ledger/v1", "sites":
//! {"<site key>": <last serial>}}`. [`Ledger::next_serial`] holds an
//! exclusive `flock(2)` on `<ledger>.lock` while it reads, increments and
//! writes (atomically: temporary file in the same folder, fsync, rename), so
//! two issuers on one machine never hand out the same serial.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::LicenseError;
use crate::limits::{read_bounded, MAX_JSON_INTEGER, MAX_LEDGER_FILE};
use crate::request::Request;

/// The `format` value of the ledger file.
pub const LEDGER_FORMAT: &str = "airgap-license-ledger/v1";

/// The ledger file's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    /// Always [`LEDGER_FORMAT`].
    pub format: String,
    /// Last serial issued, by site key.
    pub sites: BTreeMap<String, u64>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger {
            format: LEDGER_FORMAT.to_string(),
            sites: BTreeMap::new(),
        }
    }
}

impl Ledger {
    /// The site key of a request: `<product>/<machine fingerprint>`.
    ///
    /// The cluster component is deliberately left out: the installer
    /// compares serials on the machine whatever the licence binds, so all
    /// licences for one machine (and product) share one increasing sequence,
    /// also when the site re-requests with another or no cluster UID.
    pub fn site_key(request: &Request) -> String {
        format!("{}/{}", request.product, request.fingerprint.machine)
    }

    /// Reads a ledger (bounded); a missing file is an empty ledger.
    pub fn load(path: &Path) -> Result<Self, LicenseError> {
        let what = path.display().to_string();
        let bytes = match read_bounded(path, MAX_LEDGER_FILE) {
            Ok(bytes) => bytes,
            Err(LicenseError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(Ledger::default())
            }
            Err(e) => return Err(e),
        };
        let ledger: Ledger = serde_json::from_slice(&bytes).map_err(|e| {
            LicenseError::malformed(&what, format!("not a licence serial ledger: {e}"))
        })?;
        if ledger.format != LEDGER_FORMAT {
            return Err(LicenseError::malformed(
                &what,
                format!("unsupported ledger format (expected {LEDGER_FORMAT:?})"),
            ));
        }
        Ok(ledger)
    }

    /// Reserves the next serial for `site` in the ledger at `path` (created
    /// if missing): the last serial plus one, starting at 1. The ledger is
    /// written before the serial is returned, so a licence that then fails
    /// to be issued leaves a gap, never a reused serial.
    pub fn next_serial(path: &Path, site: &str) -> Result<u64, LicenseError> {
        let what = path.display().to_string();
        let _lock = lock(path)?;
        let mut ledger = Ledger::load(path)?;
        let last = ledger.sites.get(site).copied().unwrap_or(0);
        let next = last
            .checked_add(1)
            .filter(|n| *n <= MAX_JSON_INTEGER)
            .ok_or_else(|| {
                LicenseError::malformed(&what, format!("site {site}: serials exhausted"))
            })?;
        ledger.sites.insert(site.to_string(), next);
        let mut text = serde_json::to_string_pretty(&ledger)
            .map_err(|e| LicenseError::malformed(&what, e.to_string()))?;
        text.push('\n');
        airgap_format::atomic_file::write_file_atomic(path, text.as_bytes(), 0o644)
            .map_err(|e| LicenseError::io("cannot write the serial ledger", e))?;
        Ok(next)
    }
}

/// An exclusive lock on `<path>.lock`, released when dropped.
struct LockFile(#[allow(dead_code)] std::fs::File);

fn lock(path: &Path) -> Result<LockFile, LicenseError> {
    use std::os::unix::io::AsRawFd;
    let mut lock_path = PathBuf::from(path).into_os_string();
    lock_path.push(".lock");
    let lock_path = PathBuf::from(lock_path);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| LicenseError::io(lock_path.display(), e))?;
    loop {
        // SAFETY: flock on a file descriptor this function owns and keeps
        // open for the lifetime of the returned guard.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(LockFile(file));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(LicenseError::io(lock_path.display(), err));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_increase_per_site_and_sites_are_independent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        assert_eq!(Ledger::next_serial(&path, "p/aaa").unwrap(), 1);
        assert_eq!(Ledger::next_serial(&path, "p/aaa").unwrap(), 2);
        assert_eq!(Ledger::next_serial(&path, "p/bbb").unwrap(), 1);
        assert_eq!(Ledger::next_serial(&path, "p/aaa").unwrap(), 3);
        assert_eq!(Ledger::next_serial(&path, "p/bbb").unwrap(), 2);
        let ledger = Ledger::load(&path).unwrap();
        assert_eq!(ledger.sites.get("p/aaa"), Some(&3));
        assert_eq!(ledger.sites.get("p/bbb"), Some(&2));
    }

    #[test]
    fn concurrent_issuers_never_share_a_serial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    (0..10)
                        .map(|_| Ledger::next_serial(&path, "p/site").unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        all.sort();
        assert_eq!(all, (1..=40).collect::<Vec<_>>());
    }

    #[test]
    fn garbled_ledger_refused_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.json");
        std::fs::write(
            &path,
            "{\"format\": \"airgap-license-ledger/v1\", \"sites\": {\"a\": -1}}",
        )
        .unwrap();
        let err = Ledger::next_serial(&path, "a").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}: not a licence serial ledger", path.display())),
            "{err}"
        );
        std::fs::write(&path, "{\"format\": \"other\", \"sites\": {}}").unwrap();
        let err = Ledger::next_serial(&path, "a").unwrap_err().to_string();
        assert!(err.contains("unsupported ledger format"), "{err}");
    }
}
