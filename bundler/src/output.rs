//! The bundle file being written: a temp file beside the destination that
//! starts disk writeback as it grows, and is renamed into place only when
//! complete, synced and readable by others. With `--split`, the same bytes
//! go to one temp file per media part instead, each renamed to
//! `FILE.part-NNN` at the end. What goes where in the bytes (the head, the
//! part list) is the format writer's business
//! ([`airgap_format::writer::BundleWriter`]); this is the files.
//!
//! The temp files are named `.FILE.XXXXXX.partial` and held under an
//! exclusive `flock(2)` while the build runs. A build that is interrupted
//! (SIGINT, SIGTERM) removes them; one that is killed (SIGKILL, a power
//! loss) cannot, so every build first removes the partial files of its own
//! output name that no live build holds locked ([`sweep_stale_partials`]).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use airgap_format::parts::part_path;
use airgap_format::writer::BundleOutput;
use anyhow::{bail, Context, Result};

/// Writeback is started for each window of this many bytes behind the
/// write position, so the final sync waits only for the tail.
const WRITEBACK_WINDOW: u64 = 32 << 20;

/// Writing the bundle failed. Names the file, and for a full disk what to
/// do. Carried inside the `io::Error` the write returns, so that whatever
/// blob was being written when the disk filled, the build reports this
/// (see [`bundle_write_error`]): the blob and its source are not the
/// problem.
#[derive(Debug)]
pub struct WriteError {
    dest: PathBuf,
    written: u64,
    source: io::Error,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let full = matches!(
            self.source.raw_os_error(),
            Some(libc::ENOSPC) | Some(libc::EDQUOT) | Some(libc::EFBIG)
        );
        if full {
            write!(
                f,
                "{}: cannot write the bundle after {} bytes: {}; free space there, or build with --out on a filesystem with room for the bundle (the partial file was removed)",
                self.dest.display(),
                self.written,
                self.source
            )
        } else {
            write!(
                f,
                "{}: cannot write the bundle after {} bytes: {} (the partial file was removed)",
                self.dest.display(),
                self.written,
                self.source
            )
        }
    }
}

impl std::error::Error for WriteError {}

/// The [`WriteError`] anywhere in `e`'s chain, as the whole error: a
/// failed write of the bundle is reported as that, without the blob or
/// step that was under way.
pub fn bundle_write_error(e: anyhow::Error) -> anyhow::Error {
    // `io::Error::source` skips the error it carries, so look inside too.
    fn find(e: &(dyn std::error::Error + 'static)) -> Option<String> {
        if let Some(w) = e.downcast_ref::<WriteError>() {
            return Some(w.to_string());
        }
        if let Some(inner) = e.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if let Some(found) = find(inner) {
                return Some(found);
            }
        }
        e.source().and_then(find)
    }
    match find(e.as_ref()) {
        Some(text) => anyhow::anyhow!(text),
        None => e,
    }
}

/// Temp files that become `dest` (or its parts) on [`Output::commit`], and
/// vanish if dropped.
pub struct Output {
    files: Vec<tempfile::NamedTempFile>,
    dest: PathBuf,
    written: u64,
    flushed_to: u64,
    /// Bytes per part, when split.
    part_size: Option<u64>,
    /// The temp files' paths, which an interruption removes.
    partials: Arc<Mutex<Vec<PathBuf>>>,
    _on_interrupt: airgap_cli::interrupt::OnInterrupt,
}

/// What [`Output::commit`] left on disk.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Committed {
    /// Total size in bytes.
    pub size: u64,
    /// The part files, when split.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PathBuf>,
}

impl Output {
    /// Creates the temp file in `dest`'s folder, which must exist
    /// ([`check_output_folder`](airgap_format::atomic_file::check_output_folder)),
    /// after removing the stale partial files of earlier builds of `dest` there.
    pub fn create(dest: &Path) -> Result<Output> {
        airgap_format::atomic_file::check_output_folder(dest)?;
        sweep_stale_partials(dest);
        let partials: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
        let on_interrupt = {
            let partials = partials.clone();
            airgap_cli::interrupt::on_interrupt(move |_| {
                let paths = partials.lock().map(|p| p.clone()).unwrap_or_default();
                for p in paths {
                    let _ = std::fs::remove_file(p);
                }
            })
        };
        let mut out = Output {
            files: Vec::new(),
            dest: dest.to_path_buf(),
            written: 0,
            flushed_to: 0,
            part_size: None,
            partials,
            _on_interrupt: on_interrupt,
        };
        out.new_file()?;
        Ok(out)
    }

    /// Writes parts of `part_size` bytes instead of one file.
    pub fn create_split(dest: &Path, part_size: u64) -> Result<Output> {
        let mut out = Output::create(dest)?;
        out.part_size = Some(part_size);
        Ok(out)
    }

    /// `e`, a failure to write the bundle, as an `io::Error` of the same
    /// kind carrying a [`WriteError`].
    fn failed(&self, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            WriteError {
                dest: self.dest.clone(),
                written: self.written,
                // Never the temp file's name.
                source: airgap_format::atomic_file::os_error(&e),
            },
        )
    }

    fn new_file(&mut self) -> Result<()> {
        let dir = parent_dir(&self.dest);
        let name = self
            .dest
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: not a file name", self.dest.display()))?;
        // The list is held while the file is created and listed, so an
        // interruption's hook (which takes it) never runs between the two
        // and misses a file already on disk.
        let partials = self.partials.clone();
        let mut listed = partials.lock().unwrap_or_else(|e| e.into_inner());
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)
            .map_err(|e| self.failed(e))
            .with_context(|| format!("{}: cannot create a file in this folder", dir.display()))?;
        // Held until the process ends: a later build leaves the file alone
        // while this one lives. Where locks are not supported, neither can
        // a later build lock it, so it is left alone too.
        // SAFETY: a valid open descriptor.
        unsafe { libc::flock(tmp.as_file().as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        listed.push(tmp.path().to_path_buf());
        drop(listed);
        // Created just after an interruption's hook ran: removed here, and
        // the signal thread ends the process.
        if airgap_cli::interrupt::interrupted() {
            let _ = std::fs::remove_file(tmp.path());
            airgap_cli::interrupt::wait_if_interrupted();
        }
        self.files.push(tmp);
        Ok(())
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Asks the kernel to start writing back everything before the last
    /// full window (it does not wait). Whole files only.
    fn start_writeback(&mut self) {
        if self.part_size.is_some() {
            return;
        }
        let upto = self.written - self.written % WRITEBACK_WINDOW;
        if upto > self.flushed_to {
            use std::os::fd::AsRawFd;
            // SAFETY: the descriptor belongs to the open temp file, which
            // outlives the call; sync_file_range reads no user memory. The
            // call is advisory: a failure only leaves more for the final sync.
            unsafe {
                libc::sync_file_range(
                    self.files[0].as_file().as_raw_fd(),
                    self.flushed_to as libc::off64_t,
                    (upto - self.flushed_to) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.flushed_to = upto;
        }
    }

    /// Makes the files readable by others (temp files start 0600), syncs
    /// them, renames them into place (`FILE`, or `FILE.part-001`…), removes
    /// what an earlier build left under the same name in the other form
    /// (parts, or the whole file) and syncs the folder.
    pub fn commit(self) -> Result<Committed> {
        use std::os::unix::fs::PermissionsExt;
        let split = self.part_size.is_some();
        let written = self.written;
        let failed = |e: io::Error| WriteError {
            dest: self.dest.clone(),
            written,
            source: e,
        };
        let mut size = 0;
        let mut parts = Vec::new();
        for (i, tmp) in self.files.into_iter().enumerate() {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .context("setting the bundle's permissions")?;
            // Some filesystems report a full disk only here.
            tmp.as_file().sync_all().map_err(failed)?;
            size += tmp.as_file().metadata()?.len();
            let dest = if split {
                part_path(&self.dest, i)
            } else {
                self.dest.clone()
            };
            tmp.persist(&dest)
                .with_context(|| format!("{}: cannot rename into place", dest.display()))?;
            if split {
                parts.push(dest);
            }
        }
        // The other form of an earlier build under the same name would be
        // read instead of (or mixed with) this one: a whole file shadows
        // parts, and parts beyond this build's would join into a broken
        // bundle.
        if split && self.dest.exists() {
            tracing::warn!(
                "{}: removing the whole bundle an earlier build left, so that readers find the parts",
                self.dest.display()
            );
            std::fs::remove_file(&self.dest)
                .with_context(|| format!("{}: cannot remove", self.dest.display()))?;
        }
        for i in parts.len()..airgap_format::bundle_json::MAX_PARTS {
            let p = part_path(&self.dest, i);
            if p.exists() {
                tracing::warn!("{}: removing a part an earlier build left", p.display());
                std::fs::remove_file(&p)
                    .with_context(|| format!("{}: cannot remove a stale part", p.display()))?;
            }
        }
        if let Ok(d) = File::open(parent_dir(&self.dest)) {
            let _ = d.sync_all();
        }
        Ok(Committed { size, parts })
    }
}

/// Whether `file_name` is a partial file of a build of `dest_name`:
/// `.DEST.XXXXXX.partial`, with a random alphanumeric middle.
fn is_partial_of(file_name: &str, dest_name: &str) -> bool {
    file_name
        .strip_prefix('.')
        .and_then(|n| n.strip_prefix(dest_name))
        .and_then(|n| n.strip_prefix('.'))
        .and_then(|n| n.strip_suffix(".partial"))
        .is_some_and(|mid| !mid.is_empty() && mid.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Removes the partial files of `dest` (`.NAME.XXXXXX.partial` beside it)
/// that no live build holds: a build holds an exclusive `flock` on each of
/// its partial files until it ends, however it ends, so a file this
/// process can lock belongs to a build that was killed. Best effort;
/// returns the files removed, each named in a warning.
pub fn sweep_stale_partials(dest: &Path) -> Vec<PathBuf> {
    let Some(name) = dest.file_name().and_then(|n| n.to_str()) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(parent_dir(dest)) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        if !file_name.to_str().is_some_and(|n| is_partial_of(n, name)) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(&path)
        else {
            continue;
        };
        let Ok(meta) = file.metadata() else {
            continue;
        };
        // SAFETY: a valid open descriptor.
        let free = meta.is_file()
            && unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if free && std::fs::remove_file(&path).is_ok() {
            tracing::warn!(
                "{}: removed the partial file ({} bytes) of an earlier build of {} that was killed",
                path.display(),
                meta.len(),
                dest.display()
            );
            removed.push(path);
        }
    }
    removed
}

fn parent_dir(p: &Path) -> &Path {
    p.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let buf = match self.part_size {
            Some(part_size) => {
                let within = self.written % part_size;
                if within == 0
                    && self.written > 0
                    && self.files.len() as u64 == self.written / part_size
                {
                    self.new_file().map_err(io::Error::other)?;
                }
                let room = (part_size - within) as usize;
                &buf[..buf.len().min(room)]
            }
            None => buf,
        };
        let n = self
            .files
            .last()
            .expect("a file is open")
            .as_file()
            .write(buf)
            .map_err(|e| self.failed(e))?;
        self.written += n as u64;
        self.start_writeback();
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        if self.part_size.is_some() {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &**b);
            return self.write(first);
        }
        let n = self.files[0]
            .as_file()
            .write_vectored(bufs)
            .map_err(|e| self.failed(e))?;
        self.written += n as u64;
        self.start_writeback();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BundleOutput for Output {
    fn part_size(&self) -> Option<u64> {
        self.part_size
    }

    /// Overwrites bytes already written, across parts (the writer rewrites
    /// the head this way).
    fn patch(&mut self, mut offset: u64, mut data: &[u8]) -> io::Result<()> {
        if offset + data.len() as u64 > self.written {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "patch beyond the bytes written",
            ));
        }
        let part_size = self.part_size.unwrap_or(u64::MAX);
        while !data.is_empty() {
            let index = (offset / part_size) as usize;
            let within = offset % part_size;
            let n = ((part_size - within) as usize).min(data.len());
            self.files[index]
                .as_file()
                .write_all_at(&data[..n], within)
                .map_err(|e| self.failed(e))?;
            data = &data[n..];
            offset += n as u64;
        }
        Ok(())
    }
}

/// The sizes [`parse_size`] reads, for messages.
pub const SIZE_FORMS: &str = "a number with an optional unit: B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), such as 4GiB or 4.7GB";

/// Parses a human size: a number with an optional unit, `B`, `kB`/`KB`,
/// `MB`, `GB`, `TB` (powers of 1000) or `KiB`, `MiB`, `GiB`, `TiB` (powers
/// of 1024); `4GiB`, `4.7GB`, `650MB`, `1048576`. Errors quote `s` and
/// name the accepted forms ([`SIZE_FORMS`]).
pub fn parse_size(s: &str) -> Result<u64> {
    let refused = |why: &str| anyhow::anyhow!("{s:?}: {why}; expected {SIZE_FORMS}");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(refused(&format!("unknown unit {unit:?}"))),
    };
    let (whole, frac) = num.split_once('.').unwrap_or((num, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(refused("not a number"));
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| refused("too large"))?
    };
    let mut value = whole
        .checked_mul(mult)
        .ok_or_else(|| refused("too large"))?;
    // The fraction in exact integer arithmetic: digits / 10^len × mult.
    if !frac.is_empty() {
        if frac.len() > 12 {
            return Err(refused("too many decimals"));
        }
        let digits: u128 = frac.parse().map_err(|_| refused("not a number"))?;
        let scale = 10u128.pow(frac.len() as u32);
        value = value
            .checked_add((digits * mult as u128 / scale) as u64)
            .ok_or_else(|| refused("too large"))?;
    }
    Ok(value)
}

/// The size of `--split` parts: the bytes, and the text given, which
/// messages echo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartSize {
    /// Bytes per part.
    pub bytes: u64,
    /// What was given (`4GiB`).
    pub given: String,
}

impl PartSize {
    /// Parses `--split SIZE` ([`parse_size`]): at least
    /// [`MIN_PART_SIZE`](airgap_format::bundle_json::MIN_PART_SIZE). Errors
    /// start `--split SIZE:` with `SIZE` as given.
    pub fn parse(s: &str) -> Result<PartSize> {
        use airgap_format::bundle_json::MIN_PART_SIZE;
        let bytes = parse_size(s).map_err(|e| anyhow::anyhow!("--split {e}"))?;
        if bytes < MIN_PART_SIZE {
            bail!(
                "--split {s:?}: parts must be at least {}KiB ({MIN_PART_SIZE} bytes), this is {bytes} bytes; give a larger size, such as 4GiB or 4.7GB",
                MIN_PART_SIZE >> 10
            );
        }
        Ok(PartSize {
            bytes,
            given: s.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_partials_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("demo.bundle");
        let stale = dir.path().join(".demo.bundle.Ab12Cd.partial");
        let live = dir.path().join(".demo.bundle.Zz99Yy.partial");
        let others = [
            ".other.bundle.Ab12Cd.partial",
            "demo.bundle.Ab12Cd.partial",
            ".demo.bundle..partial",
            ".demo.bundle.A-b.partial",
            "demo.bundle",
        ];
        for f in others {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        std::fs::write(&stale, b"stale").unwrap();
        std::fs::write(&live, b"live").unwrap();
        // A live build's lock (another open file description conflicts
        // like another process would).
        let held = File::open(&live).unwrap();
        assert_eq!(
            unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
            0
        );
        assert_eq!(sweep_stale_partials(&dest), std::slice::from_ref(&stale));
        assert!(!stale.exists());
        assert!(live.exists());
        for f in others {
            assert!(dir.path().join(f).exists(), "{f}");
        }
        // The build's own partial files are locked while it writes.
        let mut out = Output::create(&dest).unwrap();
        out.write_all(b"bundle").unwrap();
        assert!(sweep_stale_partials(&dest).is_empty());
        drop(held);
        assert_eq!(sweep_stale_partials(&dest), [live]);
        out.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"bundle");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(parse_size("4.7GB").unwrap(), 4_700_000_000);
        assert_eq!(parse_size("650 MB").unwrap(), 650_000_000);
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        for bad in ["", "GB", "4XB", "1.2.3GB", "-1GB", "99999999999TiB"] {
            let e = parse_size(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("{bad:?}: ")) && e.ends_with(SIZE_FORMS),
                "{e}"
            );
        }
    }

    #[test]
    fn part_sizes_echo_what_was_given() {
        assert_eq!(PartSize::parse("64KiB").unwrap().bytes, 64 << 10);
        // Before: "--split 10240: parts must be at least 65536 bytes".
        let e = PartSize::parse("10KiB").unwrap_err().to_string();
        assert_eq!(
            e,
            "--split \"10KiB\": parts must be at least 64KiB (65536 bytes), this is 10240 bytes; give a larger size, such as 4GiB or 4.7GB"
        );
        let e = PartSize::parse("4 GiBs").unwrap_err().to_string();
        assert_eq!(
            e,
            format!("--split \"4 GiBs\": unknown unit \"GiBs\"; expected {SIZE_FORMS}")
        );
    }

    #[test]
    fn parts_split_the_bytes_and_patch_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("b.bundle");
        std::fs::write(part_path(&dest, 5), b"stale").unwrap();
        let mut out = Output::create_split(&dest, 10).unwrap();
        let data: Vec<u8> = (0..35u8).collect();
        out.write_all(&data[..3]).unwrap();
        out.write_all(&data[3..30]).unwrap();
        out.write_all(&data[30..]).unwrap();
        out.patch(8, &[100, 101, 102]).unwrap();
        assert!(out.patch(34, &[1, 2]).is_err());
        let c = out.commit().unwrap();
        assert_eq!(c.size, 35);
        assert_eq!(c.parts.len(), 4);
        assert!(!part_path(&dest, 5).exists());
        let mut joined = Vec::new();
        for p in &c.parts {
            joined.extend(std::fs::read(p).unwrap());
        }
        let mut want = data.clone();
        want[8..11].copy_from_slice(&[100, 101, 102]);
        assert_eq!(joined, want);

        // A whole build under the same name replaces the parts, and a split
        // build the whole file: readers never find the older form.
        let mut whole = Output::create(&dest).unwrap();
        whole.write_all(b"whole").unwrap();
        assert!(whole.commit().unwrap().parts.is_empty());
        assert!(dest.exists() && !part_path(&dest, 0).exists() && !part_path(&dest, 3).exists());
        let mut again = Output::create_split(&dest, 10).unwrap();
        again.write_all(b"split").unwrap();
        assert_eq!(again.commit().unwrap().parts.len(), 1);
        assert!(!dest.exists() && part_path(&dest, 0).exists());
    }
}
