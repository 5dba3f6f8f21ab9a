//! The strict subset of tar the format uses: ustar headers of regular files
//! with safe relative paths. Everything else is refused with a reason.

use std::fmt;

use crate::bundle_json::is_safe_relative_path;

/// A tar block: the end-of-archive marker, or a regular file entry.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderBlock {
    /// An all-zero block.
    End,
    /// A regular file.
    Entry {
        /// Path in the archive.
        path: String,
        /// Data size.
        size: u64,
    },
}

/// Why a tar header is refused.
#[derive(Debug, thiserror::Error)]
pub struct EntryError {
    /// Entry name, when it could be read.
    pub entry: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.entry {
            Some(e) => write!(f, "entry {e}: {}", self.reason),
            None => write!(f, "tar header: {}", self.reason),
        }
    }
}

/// Where an entry sits in the decompressed stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryHeader {
    /// Path in the archive.
    pub path: String,
    /// Data size.
    pub size: u64,
    /// Offset of the header.
    pub header_offset: u64,
    /// Offset of the data.
    pub data_offset: u64,
    /// Offset of the next header (after padding).
    pub next_offset: u64,
}

impl EntryHeader {
    /// Positions for an entry whose header is at `header_offset`.
    pub fn new(path: String, size: u64, header_offset: u64) -> Self {
        let data_offset = header_offset + 512;
        EntryHeader {
            path,
            size,
            header_offset,
            data_offset,
            next_offset: data_offset + padded(size),
        }
    }
}

/// `size` rounded up to a whole number of 512-byte blocks.
pub fn padded(size: u64) -> u64 {
    size.div_ceil(512).saturating_mul(512)
}

/// Parses one 512-byte header block strictly.
pub fn parse_header(block: &[u8; 512]) -> Result<HeaderBlock, EntryError> {
    if block.iter().all(|&b| b == 0) {
        return Ok(HeaderBlock::End);
    }
    let header = tar::Header::from_byte_slice(block);
    let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
    let err = |reason: String| EntryError {
        entry: Some(name.clone()),
        reason,
    };
    let stored = header
        .cksum()
        .map_err(|_| err("unreadable header checksum".into()))?;
    let computed: u32 = block[..148].iter().map(|&b| b as u32).sum::<u32>()
        + 8 * b' ' as u32
        + block[156..].iter().map(|&b| b as u32).sum::<u32>();
    if stored != computed {
        return Err(err("header checksum mismatch".into()));
    }
    use tar::EntryType as T;
    match header.entry_type() {
        T::Regular => {}
        T::Symlink => return Err(err("is a symbolic link".into())),
        T::Link => return Err(err("is a hard link".into())),
        T::Char | T::Block => return Err(err("is a device".into())),
        T::Fifo => return Err(err("is a FIFO".into())),
        T::Directory => return Err(err("is a directory".into())),
        T::XHeader | T::XGlobalHeader | T::GNULongName | T::GNULongLink => {
            return Err(err(
                "uses a tar extension header, which bundles never contain".into(),
            ))
        }
        other => {
            return Err(err(format!(
                "has unsupported entry type {:?}",
                other.as_byte() as char
            )))
        }
    }
    if std::str::from_utf8(&header.path_bytes()).is_err() {
        return Err(err("path is not UTF-8".into()));
    }
    if name.starts_with('/') {
        return Err(err("absolute path".into()));
    }
    if name.split('/').any(|c| c == "..") {
        return Err(err("path contains '..'".into()));
    }
    if !is_safe_relative_path(&name) {
        return Err(err("unsafe path".into()));
    }
    let size = header
        .entry_size()
        .map_err(|_| err("unreadable size field".into()))?;
    Ok(HeaderBlock::Entry { path: name, size })
}
