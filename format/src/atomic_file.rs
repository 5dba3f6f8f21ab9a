//! Small files written atomically: a temp file beside the destination,
//! synced, then renamed into place, so a reader never sees half a file.

use std::io::{self, Write};
use std::path::Path;

/// Writes `bytes` to `path` with permission bits `mode`: temp file in the
/// same folder, fsync, rename. Errors name the file or folder.
pub fn write_file_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tempfile adds the temp file's name ("… at path …/.airgap-XXXX"):
    // the error names the file being written instead, keeping the OS
    // error it carries (so a full disk can still be recognised).
    let named = |e: io::Error, what: &Path| {
        let code = e.raw_os_error().or(match e.kind() {
            io::ErrorKind::StorageFull => Some(libc::ENOSPC),
            io::ErrorKind::QuotaExceeded => Some(libc::EDQUOT),
            io::ErrorKind::FileTooLarge => Some(libc::EFBIG),
            _ => None,
        });
        match code {
            Some(code) => {
                let os = io::Error::from_raw_os_error(code);
                io::Error::new(e.kind(), Named(format!("{}: {os}", what.display()), os))
            }
            None => io::Error::new(e.kind(), format!("{}: {e}", what.display())),
        }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".airgap-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| named(e, dir))?;
    tmp.write_all(bytes).map_err(|e| named(e, path))?;
    tmp.as_file().sync_all().map_err(|e| named(e, path))?;
    tmp.persist(path).map_err(|e| named(e.error, path))?;
    Ok(())
}

/// An error text naming a file, with the OS error as its source.
#[derive(Debug)]
struct Named(String, io::Error);

impl std::fmt::Display for Named {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Named {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.1)
    }
}
