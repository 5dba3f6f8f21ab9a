//! The installer's state folder: what is installed, the active licence, the
//! last time this installer saw (the clock watermark) and the append-only
//! audit log. Every file but the log is replaced atomically (temp file,
//! fsync, rename, then the folder is synced); the log is appended one whole
//! JSON line per write and synced. One run at a time holds the folder's lock.
//!
//! ```text
//! STATE/
//!   lock                      flock(2) of the run that holds the folder
//!   clock.json                {"lastSeen": RFC 3339}
//!   audit.log                 JSON lines (AuditRecord), append-only
//!   license/active.lic        the active licence, as activated
//!   license/active.json       its serial, digest and activation time
//!   license/history/N.lic     every licence ever activated, by serial
//!   installs/NAME.json        the installed version of bundle NAME
//!   installs/NAME/VERSION/    its relocation map, rendered configuration
//!                             and record.json (a copy of its record)
//!   runs/ID.json              journal of an unfinished run: the bundle
//!                             digest's hex (install), rollback-NAME or
//!                             uninstall-NAME
//! ```
//!
//! Install records, journals and the audit log are read and written
//! through typed accessors ([`State::install_record`], [`State::journal`],
//! [`State::audit`]), so their paths are spelled here only.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use airgap_format::atomic_file::write_file_atomic;
use airgap_licenses::clock::{advance_watermark, check_clock};
use anyhow::{bail, Context, Result};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::install::journal::Journal;
use crate::install::records::InstallRecord;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Default state folder.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/airgap-install";
/// Environment variable that overrides the state folder.
pub const STATE_DIR_ENV: &str = "AIRGAP_INSTALL_STATE_DIR";
/// Largest state file read (records, journals, the clock).
pub const MAX_STATE_FILE: u64 = 16 << 20;
/// Largest audit log read by `history`.
pub const MAX_AUDIT_LOG: u64 = 256 << 20;
/// Largest licence file kept in the state.
pub const MAX_LICENSE_FILE: u64 = 64 << 10;

/// Largest recorded profile or schema read back.
const MAX_PROFILE_COPY: u64 = airgap_profile::profile::MAX_PROFILE_BYTES;

/// The state folder: `--state-dir`, else `$AIRGAP_INSTALL_STATE_DIR`, else the default.
pub fn state_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os(STATE_DIR_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
}

/// An open state folder, locked for this process until dropped.
pub struct State {
    root: PathBuf,
    _lock: Option<File>,
}

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditRecord {
    /// When (RFC 3339, UTC).
    pub time: String,
    /// Who ran the command (the login name; `SUDO_USER` when run through sudo).
    pub operator: String,
    /// The command (`install`, `abandon`, `license activate`).
    pub command: String,
    /// Digest of the bundle's `bundle.json`, when a bundle is involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_digest: Option<String>,
    /// `NAME@VERSION` of the bundle, when a bundle is involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle: Option<String>,
    /// The step (`verify`, `push`, `activate`, …).
    pub step: String,
    /// `ok`, `failed`, `refused`, `warning`, `skipped`, `started`,
    /// `interrupted` (SIGINT, SIGTERM) or `abandoned` (`abandon`).
    pub outcome: Outcome,
    /// One line of detail (an error, a count, a flag such as --allow-downgrade).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The outcome of a step or a command, as the audit log and reports name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It did what it should.
    Ok,
    /// It did, with something to look at (a licence in its grace period).
    Warning,
    /// Nothing to do, or not asked for.
    Skipped,
    /// Done by an earlier, interrupted run (reports only).
    Resumed,
    /// It failed, and the run stopped.
    Failed,
    /// Refused before anything changed.
    Refused,
    /// A run started (or resumed).
    Started,
    /// Stopped by SIGINT or SIGTERM.
    Interrupted,
    /// An unfinished run given up (`abandon`).
    Abandoned,
}

impl Outcome {
    /// The outcome's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Warning => "warning",
            Outcome::Skipped => "skipped",
            Outcome::Resumed => "resumed",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::Started => "started",
            Outcome::Interrupted => "interrupted",
            Outcome::Abandoned => "abandoned",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so that widths such as `{:<8}` apply.
        f.pad(self.as_str())
    }
}

/// The active licence as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicenseRecord {
    /// Its serial.
    pub serial: u64,
    /// The licence's identity: SHA-256 (hex) of its signed payload.
    pub digest: String,
    /// When it was activated (RFC 3339).
    pub activated_at: String,
    /// Where it came from (a file, or a bundle digest).
    pub source: String,
}

/// The user running this process, for the audit log: `SUDO_USER` when run
/// through sudo, else the login name of the real user id, else `uid:N`.
pub fn operator() -> String {
    let ok = |v: &str| !v.is_empty() && v.len() <= 64 && !v.chars().any(char::is_control);
    if let Ok(v) = std::env::var("SUDO_USER") {
        if ok(&v) {
            return v;
        }
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    if let Some(name) = user_name(uid).filter(|n| ok(n)) {
        return name;
    }
    format!("uid:{uid}")
}

/// The passwd entry's name for `uid`.
fn user_name(uid: libc::uid_t) -> Option<String> {
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: the buffers are valid for the sizes given; on success
    // `result` points at `pwd`, whose strings live in `buf`.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    name.to_str().ok().map(str::to_string)
}

/// `now` as RFC 3339.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

fn parse_time(s: &str, what: &Path) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .with_context(|| format!("{}: {s:?} is not an RFC 3339 time", what.display()))
}

/// Reads a whole file of at most `max` bytes; `None` when it does not exist.
pub fn read_bounded(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    match airgap_format::regular_file::read_regular(path, max, "a state file") {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.io_kind() == Some(std::io::ErrorKind::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl State {
    /// Opens (creating it, mode 0700) and locks the state folder. A second
    /// process waits up to `wait` for the lock, then gives up with a clear
    /// message.
    pub fn open(root: &Path) -> Result<State> {
        Self::open_waiting(root, std::time::Duration::from_secs(10))
    }

    /// [`State::open`] with a chosen wait for the lock.
    pub fn open_waiting(root: &Path, wait: std::time::Duration) -> Result<State> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .with_context(|| format!("{}: cannot create the state folder", root.display()))?;
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .with_context(|| format!("{}: cannot open", lock_path.display()))?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            // flock(2) on Unix: held by the open file description, released
            // when it is closed.
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(err)) => {
                    return Err(err)
                        .with_context(|| format!("{}: cannot lock", lock_path.display()));
                }
            }
            if std::time::Instant::now() >= deadline {
                bail!(
                    "{}: another airgap-install run is using this state folder; wait for it to finish",
                    root.display()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        sweep_leftovers(root);
        Ok(State {
            root: root.to_path_buf(),
            _lock: Some(lock),
        })
    }

    /// Opens the folder for reading only, without the lock (every file is
    /// replaced atomically, so a reader sees whole files while a run goes
    /// on). A missing folder reads as empty.
    pub fn open_read_only(root: &Path) -> State {
        State {
            root: root.to_path_buf(),
            _lock: None,
        }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn ensure_dir(&self, rel: &str) -> Result<PathBuf> {
        let dir = self.path(rel);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        Ok(dir)
    }

    /// Writes `bytes` to `rel` atomically (mode 0600) and syncs the folder,
    /// so the rename itself survives a power loss.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(rel);
        let dir = path.parent().unwrap_or(&self.root).to_path_buf();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("{}: cannot create", dir.display()))?;
        write_file_atomic(&path, bytes, 0o600)?;
        sync_dir(&dir)
    }

    /// Reads a JSON state file; `None` when it does not exist.
    pub fn read_json<T: DeserializeOwned>(&self, rel: &str) -> Result<Option<T>> {
        let path = self.path(rel);
        let Some(bytes) = read_bounded(&path, MAX_STATE_FILE)? else {
            return Ok(None);
        };
        let v = serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: damaged state file", path.display()))?;
        Ok(Some(v))
    }

    /// Writes a JSON state file atomically.
    pub fn write_json<T: Serialize>(&self, rel: &str, value: &T) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        self.write(rel, &bytes)
    }

    /// Removes a state file (no error when it is already gone).
    pub fn remove(&self, rel: &str) -> Result<()> {
        let path = self.path(rel);
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().unwrap_or(&self.root)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("{}: cannot remove", path.display())),
        }
    }

    /// Lists the `*.json` files of a sub-folder, sorted, without extension.
    pub fn list(&self, rel: &str) -> Result<Vec<String>> {
        let dir = self.path(rel);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("{}: cannot list", dir.display())),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    // --- installs ------------------------------------------------------

    /// The names of the bundles with an install record, sorted.
    pub fn install_names(&self) -> Result<Vec<String>> {
        self.list("installs")
    }

    /// The install record of bundle `name` (`installs/NAME.json`).
    pub fn install_record(&self, name: &str) -> Result<Option<InstallRecord>> {
        self.read_json(&format!("installs/{name}.json"))
    }

    /// Every install record, sorted by name.
    pub fn install_records(&self) -> Result<Vec<InstallRecord>> {
        let mut out = Vec::new();
        for name in self.install_names()? {
            if let Some(r) = self.install_record(&name)? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Writes `record` as the install record of its bundle.
    pub fn write_install_record(&self, record: &InstallRecord) -> Result<()> {
        self.write_json(&format!("installs/{}.json", record.name), record)
    }

    /// Where bundle `name` `version`'s relocation map, rendered
    /// configuration and record copy live.
    pub fn version_dir(&self, name: &str, version: &str) -> PathBuf {
        self.root.join("installs").join(name).join(version)
    }

    /// The record of bundle `name` `version` kept beside its configuration
    /// (`installs/NAME/VERSION/record.json`), for rollback.
    pub fn version_record(&self, name: &str, version: &str) -> Result<Option<InstallRecord>> {
        self.read_json(&format!("installs/{name}/{version}/record.json"))
    }

    /// The product profile and site schema (their texts) recorded for
    /// bundle `name` `version` when it was installed, if they were.
    pub fn version_profile(&self, name: &str, version: &str) -> Result<Option<(String, String)>> {
        let read = |file: &str| -> Result<Option<String>> {
            let rel = format!("installs/{name}/{version}/profile/{file}");
            match read_bounded(&self.path(&rel), MAX_PROFILE_COPY)? {
                None => Ok(None),
                Some(b) => String::from_utf8(b)
                    .map(Some)
                    .map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", self.path(&rel).display())),
            }
        };
        Ok(read("profile.yaml")?.zip(read("site.schema")?))
    }

    /// Records the product profile and site schema bundle `name`
    /// `version` was installed with, for `plan` to compare a later
    /// version's with.
    pub fn write_version_profile(
        &self,
        name: &str,
        version: &str,
        profile_text: &str,
        schema_text: &str,
    ) -> Result<()> {
        self.write(
            &format!("installs/{name}/{version}/profile/profile.yaml"),
            profile_text.as_bytes(),
        )?;
        self.write(
            &format!("installs/{name}/{version}/profile/site.schema"),
            schema_text.as_bytes(),
        )
    }

    /// Writes `record` beside its version's configuration.
    pub fn write_version_record(&self, record: &InstallRecord) -> Result<()> {
        self.write_json(
            &format!("installs/{}/{}/record.json", record.name, record.version),
            record,
        )
    }

    // --- runs ----------------------------------------------------------

    /// The ids of the unfinished runs' journals (`runs/ID.json`), sorted.
    pub fn journal_ids(&self) -> Result<Vec<String>> {
        self.list("runs")
    }

    /// Where journal `id` is kept.
    pub fn journal_path(&self, id: &str) -> PathBuf {
        self.path(&format!("runs/{id}.json"))
    }

    /// The journal of unfinished run `id`.
    pub fn journal(&self, id: &str) -> Result<Option<Journal>> {
        self.read_json(&format!("runs/{id}.json"))
    }

    /// Writes the journal of run `id`.
    pub fn write_journal(&self, id: &str, journal: &Journal) -> Result<()> {
        self.write_json(&format!("runs/{id}.json"), journal)
    }

    /// Removes the journal of run `id` (no error when it is gone).
    pub fn remove_journal(&self, id: &str) -> Result<()> {
        self.remove(&format!("runs/{id}.json"))
    }

    // --- clock ---------------------------------------------------------

    /// The latest time this installer has seen, if any.
    pub fn watermark(&self) -> Result<Option<OffsetDateTime>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Clock {
            last_seen: String,
        }
        let path = self.path("clock.json");
        match self.read_json::<Clock>("clock.json")? {
            Some(c) => Ok(Some(parse_time(&c.last_seen, &path)?)),
            None => Ok(None),
        }
    }

    /// Checks `now` against the watermark and moves the watermark forward.
    /// A clock earlier than the watermark by more than `max_drift` is
    /// refused: someone set it back (to make an expired licence look valid).
    pub fn observe_time(&self, now: OffsetDateTime, max_drift: time::Duration) -> Result<()> {
        let last = self.watermark()?;
        let clock = self.path("clock.json");
        check_clock(&clock.display().to_string(), now, last, max_drift)?;
        let next = advance_watermark(last, now.replace_nanosecond(0).unwrap_or(now));
        if Some(next) == last {
            return Ok(());
        }
        self.write_json(
            "clock.json",
            &serde_json::json!({ "lastSeen": rfc3339(next) }),
        )
    }

    // --- licence -------------------------------------------------------

    /// The active licence: its text and record.
    pub fn active_license(&self) -> Result<Option<(String, LicenseRecord)>> {
        let Some(record) = self.read_json::<LicenseRecord>("license/active.json")? else {
            return Ok(None);
        };
        let path = self.path("license/active.lic");
        let bytes = read_bounded(&path, MAX_LICENSE_FILE)?
            .with_context(|| format!("{}: missing, but active.json names it", path.display()))?;
        let text = String::from_utf8(bytes)
            .with_context(|| format!("{}: not UTF-8 text", path.display()))?;
        Ok(Some((text, record)))
    }

    /// Stores `text` as the active licence (and in the history by serial).
    pub fn store_license(&self, text: &str, record: &LicenseRecord) -> Result<()> {
        self.ensure_dir("license/history")?;
        self.write(
            &format!("license/history/{}.lic", record.serial),
            text.as_bytes(),
        )?;
        self.write("license/active.lic", text.as_bytes())?;
        self.write_json("license/active.json", record)
    }

    // --- audit log -----------------------------------------------------

    /// Appends one record to the audit log and syncs it.
    pub fn audit(&self, record: &AuditRecord) -> Result<()> {
        let path = self.path("audit.log");
        let mut line = serde_json::to_vec(record)?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        // A line torn by a power loss must not swallow this one: start on a
        // fresh line.
        let len = f
            .metadata()
            .with_context(|| format!("{}: cannot stat", path.display()))?
            .len();
        if len > 0 {
            use std::io::{Seek, SeekFrom};
            let mut r =
                File::open(&path).with_context(|| format!("{}: cannot open", path.display()))?;
            let mut last = [0u8; 1];
            r.seek(SeekFrom::Start(len - 1))
                .and_then(|_| r.read_exact(&mut last))
                .with_context(|| format!("{}: cannot read", path.display()))?;
            if last[0] != b'\n' {
                line.insert(0, b'\n');
            }
        }
        // One write of the whole line: O_APPEND keeps lines whole.
        f.write_all(&line)
            .and_then(|_| f.sync_data())
            .with_context(|| format!("{}: cannot append", path.display()))
    }

    /// Reads the audit log. A damaged line (torn by a power loss during a
    /// write, or edited) is skipped with a warning naming its number, so
    /// the records around it stay readable.
    pub fn audit_log(&self) -> Result<Vec<AuditRecord>> {
        read_audit_log(&self.path("audit.log"))
    }

    /// The audit log's path.
    pub fn audit_log_path(&self) -> PathBuf {
        self.path("audit.log")
    }
}

/// Removes what runs killed part-way (SIGKILL, a power loss) left behind:
/// the temporary files of atomic writes (`.airgap-*`, anywhere but in
/// `backups/`, which belongs to the backup scripts) and the temporary
/// folders of `plan` (`.plan-*`). Called with the lock held, so no other
/// run is writing them. Best effort: what cannot be removed stays.
fn sweep_leftovers(root: &Path) {
    fn walk(dir: &Path, top: bool) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else {
                continue;
            };
            let name = e.file_name();
            let name = name.to_string_lossy();
            let path = e.path();
            if kind.is_file() && name.starts_with(".airgap-") {
                tracing::debug!(
                    "{}: removing a temporary file an interrupted write left",
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
            } else if kind.is_dir() && top && name.starts_with(".plan-") {
                tracing::debug!(
                    "{}: removing the temporary folder of an interrupted plan",
                    path.display()
                );
                let _ = std::fs::remove_dir_all(&path);
            } else if kind.is_dir() && !(top && name == "backups") {
                walk(&path, false);
            }
        }
    }
    walk(root, true);
}

/// Reads an audit log file (see [`State::audit_log`]).
pub fn read_audit_log(path: &Path) -> Result<Vec<AuditRecord>> {
    let Some(bytes) = read_bounded(path, MAX_AUDIT_LOG)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<AuditRecord>(line) {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!(
                "{}: line {} is damaged (an interrupted write, or edited), skipped: {e}",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

/// Whether `e` comes from a full filesystem (ENOSPC, or EDQUOT: the
/// user's quota), looking inside the `io::Error`s of its chain too.
pub fn full_disk(e: &anyhow::Error) -> bool {
    fn find(e: &(dyn std::error::Error + 'static)) -> bool {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
                || matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                )
            {
                return true;
            }
            // `io::Error::source` skips the error it carries.
            if io.get_ref().is_some_and(|inner| find(inner)) {
                return true;
            }
        }
        e.source().is_some_and(find)
    }
    find(e.as_ref())
}

/// `e`, with what to do said after it when a filesystem is full. Every
/// state file is replaced whole or not at all, and the audit log only
/// appended to, so what was recorded before is still there.
pub fn explain_full_disk(e: anyhow::Error) -> anyhow::Error {
    if !full_disk(&e) {
        return e;
    }
    anyhow::anyhow!(
        "{}; the filesystem is full: free space on it, then run the same command again (what was recorded before is kept)",
        airgap_cli::progress::error_line(e.as_ref())
    )
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("{}: cannot sync", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn record(step: &str) -> AuditRecord {
        AuditRecord {
            time: "2026-11-22T10:00:00Z".into(),
            operator: "alice".into(),
            command: "install".into(),
            bundle_digest: None,
            bundle: None,
            step: step.into(),
            outcome: Outcome::Ok,
            detail: None,
        }
    }

    #[test]
    fn clock_moves_forward_and_refuses_a_clock_set_back() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(dir.path()).unwrap();
        let drift = time::Duration::minutes(5);
        assert_eq!(s.watermark().unwrap(), None);
        s.observe_time(datetime!(2026-11-22 10:00 UTC), drift)
            .unwrap();
        s.observe_time(datetime!(2026-11-22 12:00 UTC), drift)
            .unwrap();
        // Within the drift: accepted, and the watermark stays.
        s.observe_time(datetime!(2026-11-22 11:57 UTC), drift)
            .unwrap();
        assert_eq!(
            s.watermark().unwrap(),
            Some(datetime!(2026-11-22 12:00 UTC))
        );
        let err = s
            .observe_time(datetime!(2026-11-01 12:00 UTC), drift)
            .unwrap_err()
            .to_string();
        assert!(err.contains("set back"), "{err}");
        assert!(err.contains("2026-11-22T12:00:00Z"), "{err}");
    }

    #[test]
    fn a_second_process_cannot_take_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let _held = State::open(dir.path()).unwrap();
        // flock locks belong to the open file description, so a second open
        // in the same process conflicts just like another process would.
        let err = State::open_waiting(dir.path(), std::time::Duration::from_millis(150))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("another airgap-install run"), "{err}");
    }

    #[test]
    fn audit_log_appends_after_a_torn_line_and_skips_damaged_lines() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(dir.path()).unwrap();
        s.audit(&record("verify")).unwrap();
        s.audit(&record("push")).unwrap();
        let log = dir.path().join("audit.log");
        let mut f = OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"{\"time\":\"2026").unwrap();
        let got = s.audit_log().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].step, "push");
        // The next record starts a line of its own and stays readable.
        s.audit(&record("render")).unwrap();
        let got = s.audit_log().unwrap();
        assert_eq!(
            got.iter().map(|r| r.step.as_str()).collect::<Vec<_>>(),
            ["verify", "push", "render"]
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 4);
    }

    #[test]
    fn licence_is_stored_with_history() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(dir.path()).unwrap();
        assert!(s.active_license().unwrap().is_none());
        let rec = LicenseRecord {
            serial: 2,
            digest: "ab".into(),
            activated_at: "2026-11-22T10:00:00Z".into(),
            source: "site.lic".into(),
        };
        s.store_license("LICENSE TEXT", &rec).unwrap();
        let (text, got) = s.active_license().unwrap().unwrap();
        assert_eq!(text, "LICENSE TEXT");
        assert_eq!(got.serial, 2);
        assert!(dir.path().join("license/history/2.lic").is_file());
    }

    #[test]
    fn leftovers_of_interrupted_writes_are_removed_when_the_lock_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["runs", "installs/demo/1.0.0/config/values", "backups/1"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            ".airgap-AbC123",
            "runs/.airgap-x",
            "installs/demo/1.0.0/config/values/.airgap-7-1.tmp",
            "backups/1/.airgap-kept",
            "runs/0123.json",
            "installs/demo.json",
        ] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        std::fs::create_dir_all(root.join(".plan-XyZ/values")).unwrap();
        let _s = State::open(root).unwrap();
        let mut left = Vec::new();
        fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(root, &p, out);
                } else {
                    out.push(p.strip_prefix(root).unwrap().display().to_string());
                }
            }
        }
        walk(root, root, &mut left);
        left.sort();
        assert_eq!(
            left,
            [
                "backups/1/.airgap-kept",
                "installs/demo.json",
                "lock",
                "runs/0123.json"
            ]
        );
    }

    #[test]
    fn install_records_and_journals_have_their_own_paths() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(dir.path()).unwrap();
        assert!(s.install_record("demo").unwrap().is_none());
        let r = crate::install::records::tests::record("demo", "1.0.0", "sha256:a", true);
        s.write_install_record(&r).unwrap();
        s.write_version_record(&r).unwrap();
        assert!(dir.path().join("installs/demo.json").is_file());
        assert!(dir.path().join("installs/demo/1.0.0/record.json").is_file());
        assert_eq!(
            s.version_dir("demo", "1.0.0"),
            dir.path().join("installs/demo/1.0.0")
        );
        assert_eq!(s.install_names().unwrap(), ["demo"]);
        assert_eq!(s.install_records().unwrap()[0].version, "1.0.0");
        assert_eq!(
            s.version_record("demo", "1.0.0")
                .unwrap()
                .unwrap()
                .bundle_digest,
            "sha256:a"
        );

        let j = Journal {
            bundle: "demo@1.0.0".into(),
            ..Journal::default()
        };
        s.write_journal("rollback-demo", &j).unwrap();
        assert!(s.journal_path("rollback-demo").is_file());
        assert_eq!(s.journal_ids().unwrap(), ["rollback-demo"]);
        assert_eq!(
            s.journal("rollback-demo").unwrap().unwrap().bundle,
            j.bundle
        );
        s.remove_journal("rollback-demo").unwrap();
        s.remove_journal("rollback-demo").unwrap();
        assert!(s.journal("rollback-demo").unwrap().is_none());
    }

    #[test]
    fn outcomes_keep_their_names() {
        let mut r = record("push");
        r.outcome = Outcome::Interrupted;
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.contains(r#""outcome":"interrupted""#), "{line}");
        assert_eq!(format!("[{:<8}]", Outcome::Ok), "[ok      ]");
    }

    #[test]
    fn damaged_state_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = State::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("clock.json"), b"{not json").unwrap();
        let err = s.watermark().unwrap_err().to_string();
        assert!(err.contains("clock.json"), "{err}");
    }
}
