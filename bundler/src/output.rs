//! The bundle file being written: a temp file beside the destination that
//! starts disk writeback as it grows, and is renamed into place only when
//! complete, synced and readable by others.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writeback is started for each window of this many bytes behind the
/// write position, so the final sync waits only for the tail.
const WRITEBACK_WINDOW: u64 = 32 << 20;

/// A temp file that becomes `dest` on [`Output::commit`], and vanishes if dropped.
pub struct Output {
    tmp: tempfile::NamedTempFile,
    dest: PathBuf,
    written: u64,
    flushed_to: u64,
}

impl Output {
    /// Creates the temp file in `dest`'s folder.
    pub fn create(dest: &Path) -> Result<Output> {
        let dir = parent_dir(dest);
        let name = dest
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{}: not a file name", dest.display()))?;
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .tempfile_in(dir)
            .with_context(|| format!("{}: cannot create a file in this folder", dir.display()))?;
        Ok(Output {
            tmp,
            dest: dest.to_path_buf(),
            written: 0,
            flushed_to: 0,
        })
    }

    fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// Asks the kernel to start writing back everything before the last
    /// full window (it does not wait).
    fn start_writeback(&mut self) {
        let upto = self.written - self.written % WRITEBACK_WINDOW;
        if upto > self.flushed_to {
            use std::os::fd::AsRawFd;
            // SAFETY: the descriptor belongs to the open temp file, which
            // outlives the call; sync_file_range reads no user memory. The
            // call is advisory: a failure only leaves more for the final sync.
            unsafe {
                libc::sync_file_range(
                    self.file().as_raw_fd(),
                    self.flushed_to as libc::off64_t,
                    (upto - self.flushed_to) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.flushed_to = upto;
        }
    }

    /// Makes the file readable by others (temp files start 0600), syncs it,
    /// renames it into place and syncs the folder. Returns its size.
    pub fn commit(self) -> Result<u64> {
        use std::os::unix::fs::PermissionsExt;
        self.file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .context("setting the bundle's permissions")?;
        self.file()
            .sync_all()
            .context("syncing the bundle to disk")?;
        let size = self.file().metadata()?.len();
        let dest = self.dest.clone();
        self.tmp
            .persist(&dest)
            .with_context(|| format!("{}: cannot rename into place", dest.display()))?;
        if let Ok(d) = File::open(parent_dir(&dest)) {
            let _ = d.sync_all();
        }
        Ok(size)
    }
}

fn parent_dir(p: &Path) -> &Path {
    p.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.tmp.as_file().write(buf)?;
        self.written += n as u64;
        self.start_writeback();
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.tmp.as_file().write_vectored(bufs)?;
        self.written += n as u64;
        self.start_writeback();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
