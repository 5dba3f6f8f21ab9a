//! Small files written atomically: a temp file beside the destination,
//! synced, then renamed into place, so a reader never sees half a file.
//!
//! The programs write into folders that exist: they never create the
//! folder an output file goes in ([`check_output_folder`]), and errors
//! never show the temp file's name.

use std::io::{self, Write};
use std::path::Path;

/// What a missing output folder is told, after its path.
pub const MISSING_FOLDER: &str = "the output folder does not exist; create it first";

/// The folder a file at `path` is written in: its parent, or `.`.
pub fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Checks that the folder a file at `path` goes in exists and is a
/// folder: `DIR: the output folder does not exist; create it first`,
/// `DIR: not a folder; …`. Commands check before their work, so that a
/// mistyped `--out` costs nothing.
pub fn check_output_folder(path: &Path) -> io::Result<()> {
    let dir = folder_of(path);
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!(
                "{}: not a folder; the output goes in an existing folder",
                dir.display()
            ),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: {MISSING_FOLDER}", dir.display()),
        )),
        Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", dir.display()))),
    }
}

/// The operating system's error in `e`, without the temp file's name that
/// tempfile adds (`… at path "…/.airgap-XXXX"`): the same code, or one for
/// the same kind (so a full disk is still recognised by its code).
pub fn os_error(e: &io::Error) -> io::Error {
    use io::ErrorKind as K;
    if let Some(code) = e.raw_os_error() {
        return io::Error::from_raw_os_error(code);
    }
    let code = match e.kind() {
        K::NotFound => libc::ENOENT,
        K::PermissionDenied => libc::EACCES,
        K::AlreadyExists => libc::EEXIST,
        K::NotADirectory => libc::ENOTDIR,
        K::IsADirectory => libc::EISDIR,
        K::ReadOnlyFilesystem => libc::EROFS,
        K::StorageFull => libc::ENOSPC,
        K::QuotaExceeded => libc::EDQUOT,
        K::FileTooLarge => libc::EFBIG,
        kind => return io::Error::from(kind),
    };
    io::Error::from_raw_os_error(code)
}

/// Writes `bytes` to `path` with permission bits `mode`: temp file in the
/// same folder, fsync, rename. Errors name the file or folder, never the
/// temp file; a missing folder is [`MISSING_FOLDER`].
pub fn write_file_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    check_output_folder(path)?;
    let dir = folder_of(path);
    // The error names the file being written, keeping the OS error it
    // carries (so a full disk can still be recognised).
    let named = |e: io::Error, what: &Path| {
        let os = os_error(&e);
        io::Error::new(e.kind(), Named(format!("{}: {os}", what.display()), os))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_folder_is_named_not_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such");
        let e = write_file_atomic(&missing.join("x.json"), b"{}", 0o644).unwrap_err();
        // Before: "…/no/such: No such file or directory (os error 2) at path \"…/.airgap-XXXX\"".
        assert_eq!(
            e.to_string(),
            format!(
                "{}: the output folder does not exist; create it first",
                missing.display()
            )
        );
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let e = write_file_atomic(&dir.path().join("file/x.json"), b"{}", 0o644).unwrap_err();
        assert!(
            e.to_string()
                .ends_with(": not a folder; the output goes in an existing folder"),
            "{e}"
        );
        write_file_atomic(&dir.path().join("x.json"), b"{}", 0o644).unwrap();
        assert_eq!(folder_of(Path::new("x.json")), Path::new("."));
    }

    #[test]
    fn os_errors_lose_the_temp_name() {
        let e = std::fs::File::open("/nonexistent/x").unwrap_err();
        let wrapped = io::Error::new(e.kind(), format!("{e} at path \"/x/.airgap-1\""));
        assert_eq!(os_error(&wrapped).raw_os_error(), Some(libc::ENOENT));
        assert!(!os_error(&wrapped).to_string().contains("airgap"));
    }
}
