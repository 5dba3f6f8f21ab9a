//! Opening files that untrusted input names, or that an operator hands over
//! (bundles, media parts, keys, licences, site files, the files a site
//! file names): regular files only, and read only up to a bound.
//!
//! A FIFO, a character device such as `/dev/zero` or a folder is refused
//! before a byte is read. The file is opened without blocking (a FIFO
//! with no writer would otherwise block `open` for ever), then checked
//! with `fstat` on the open handle, so a name swapped between the check
//! and the open cannot slip through.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RegularFileError {
    /// Opening or reading failed.
    #[error("{path}: cannot read ({source})")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// Not a regular file.
    #[error("{path}: is {kind}, not a regular file (give the path of a file)")]
    NotRegular {
        /// The file.
        path: String,
        /// What it is instead: "a FIFO", "a character device", …
        kind: &'static str,
    },
    /// Larger than the bound.
    #[error("{path}: larger than the {limit}-byte limit for {what}")]
    TooLarge {
        /// The file.
        path: String,
        /// What the file is meant to be ("a CA bundle", …).
        what: String,
        /// The bound.
        limit: u64,
    },
}

impl RegularFileError {
    /// The underlying I/O error kind, when there is one.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            RegularFileError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

fn shown(path: &Path) -> String {
    crate::display::escape(&path.display().to_string()).into_owned()
}

/// What a file type is, for messages; `None` for a regular file.
fn not_regular(t: std::fs::FileType) -> Option<&'static str> {
    if t.is_file() {
        None
    } else if t.is_dir() {
        Some("a folder")
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// Opens `path` for reading, refusing anything but a regular file
/// (symbolic links to regular files are followed).
pub fn open_regular(path: &Path) -> Result<File, RegularFileError> {
    let io_err = |source| RegularFileError::Io {
        path: shown(path),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io_err)?;
    let meta = file.metadata().map_err(io_err)?;
    if let Some(kind) = not_regular(meta.file_type()) {
        return Err(RegularFileError::NotRegular {
            path: shown(path),
            kind,
        });
    }
    // Regular files ignore O_NONBLOCK; nothing to clear.
    Ok(file)
}

/// Reads the whole regular file at `path`, refusing it when larger than
/// `limit` bytes. `what` names the file's role in the message.
pub fn read_regular(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, RegularFileError> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| RegularFileError::Io {
            path: shown(path),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(RegularFileError::TooLarge {
            path: shown(path),
            what: what.to_string(),
            limit,
        });
    }
    Ok(bytes)
}

/// [`read_regular`] into a string; not UTF-8 is an error naming the file.
pub fn read_regular_string(
    path: &Path,
    limit: u64,
    what: &str,
) -> Result<String, RegularFileError> {
    let bytes = read_regular(path, limit, what)?;
    String::from_utf8(bytes).map_err(|_| RegularFileError::Io {
        path: shown(path),
        source: io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} is not UTF-8 text"),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_files_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // Would block for ever on a plain open: no writer.
        let e = open_regular(&fifo).unwrap_err().to_string();
        assert!(e.contains("is a FIFO, not a regular file"), "{e}");
        let e = read_regular(Path::new("/dev/zero"), 10, "a CA bundle")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a character device"), "{e}");
        let e = read_regular(dir.path(), 10, "x").unwrap_err().to_string();
        assert!(e.contains("is a folder"), "{e}");
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"12345").unwrap();
        assert_eq!(read_regular(&p, 5, "x").unwrap(), b"12345");
        let e = read_regular(&p, 4, "a CA bundle").unwrap_err().to_string();
        assert!(
            e.ends_with("larger than the 4-byte limit for a CA bundle"),
            "{e}"
        );
        std::fs::write(&p, [0xff]).unwrap();
        let e = read_regular_string(&p, 4, "a key").unwrap_err().to_string();
        assert!(e.contains("a key is not UTF-8"), "{e}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(read_regular(&link, 4, "x").is_ok());
    }
}
