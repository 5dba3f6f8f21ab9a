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
    let named =
        |e: io::Error, what: &Path| io::Error::new(e.kind(), format!("{}: {e}", what.display()));
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
