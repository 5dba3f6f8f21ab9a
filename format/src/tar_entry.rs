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
    /// Entry name, when it could be read, escaped for display
    /// ([`crate::display::escape`]): the header is untrusted, and the name
    /// of a refused one may hold line feeds or escape sequences.
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
    /// Positions for an entry whose header is at `header_offset`; `None`
    /// when they do not fit in 64 bits (a size field near 2^64 that no
    /// archive can hold).
    pub fn new(path: String, size: u64, header_offset: u64) -> Option<Self> {
        let data_offset = header_offset.checked_add(512)?;
        let next_offset = data_offset.checked_add(padded(size)?)?;
        Some(EntryHeader {
            path,
            size,
            header_offset,
            data_offset,
            next_offset,
        })
    }
}

/// `size` rounded up to a whole number of 512-byte blocks; `None` when
/// that does not fit in 64 bits.
pub fn padded(size: u64) -> Option<u64> {
    size.checked_next_multiple_of(512)
}

/// Parses one 512-byte header block strictly.
pub fn parse_header(block: &[u8; 512]) -> Result<HeaderBlock, EntryError> {
    if block.iter().all(|&b| b == 0) {
        return Ok(HeaderBlock::End);
    }
    let header = tar::Header::from_byte_slice(block);
    let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
    let shown = crate::display::escape(&name).into_owned();
    let err = |reason: String| EntryError {
        entry: Some(shown.clone()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn header(path: &[u8], kind: tar::EntryType, size: u64) -> [u8; 512] {
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().name[..path.len()].copy_from_slice(path);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_entry_type(kind);
        h.set_cksum();
        *h.as_bytes()
    }

    fn refusal(block: &[u8; 512]) -> String {
        parse_header(block).unwrap_err().to_string()
    }

    #[test]
    fn regular_files_with_safe_paths_parse() {
        let block = header(b"blobs/sha256/ab", tar::EntryType::Regular, 10);
        assert_eq!(
            parse_header(&block).unwrap(),
            HeaderBlock::Entry {
                path: "blobs/sha256/ab".into(),
                size: 10
            }
        );
        assert_eq!(parse_header(&[0; 512]).unwrap(), HeaderBlock::End);
        // A NUL typeflag is a regular file too.
        let mut old = block;
        old[156] = 0;
        let mut h = tar::Header::from_byte_slice(&old).clone();
        h.set_cksum();
        assert!(matches!(
            parse_header(h.as_bytes()).unwrap(),
            HeaderBlock::Entry { .. }
        ));
    }

    #[test]
    fn sizes_are_octal_or_base_256() {
        let mut h = tar::Header::new_ustar();
        h.set_path("big").unwrap();
        h.set_size(9 << 30);
        h.set_cksum();
        assert_eq!(h.as_bytes()[124], 0x80, "base-256 from 8 GiB up");
        assert_eq!(
            parse_header(h.as_bytes()).unwrap(),
            HeaderBlock::Entry {
                path: "big".into(),
                size: 9 << 30
            }
        );
    }

    #[test]
    fn positions_past_2_pow_64_are_none() {
        // A base-256 size field near 2^64 overflowed
        // `data_offset + padded(size)` (a panic).
        assert_eq!(padded(0), Some(0));
        assert_eq!(padded(513), Some(1024));
        assert_eq!(padded(u64::MAX - 511), Some(u64::MAX - 511));
        assert_eq!(padded(u64::MAX - 510), None);
        assert_eq!(padded(u64::MAX - 1024), Some(u64::MAX - 1023));
        assert!(EntryHeader::new("x".into(), u64::MAX, 0).is_none());
        assert!(EntryHeader::new("x".into(), u64::MAX - 1023, 512).is_none());
        assert!(EntryHeader::new("x".into(), 0, u64::MAX - 100).is_none());
        let e = EntryHeader::new("x".into(), 10, 512).unwrap();
        assert_eq!((e.data_offset, e.next_offset), (1024, 1536));
    }

    #[test]
    fn other_entry_types_are_refused() {
        use tar::EntryType as T;
        for (kind, want) in [
            (T::Link, "entry x: is a hard link"),
            (T::Symlink, "entry x: is a symbolic link"),
            (T::Char, "entry x: is a device"),
            (T::Block, "entry x: is a device"),
            (T::Directory, "entry x: is a directory"),
            (T::Fifo, "entry x: is a FIFO"),
            (
                T::XHeader,
                "entry x: uses a tar extension header, which bundles never contain",
            ),
            (T::XGlobalHeader, "uses a tar extension header"),
            (T::GNULongName, "uses a tar extension header"),
            (T::GNULongLink, "uses a tar extension header"),
            (T::new(b'7'), "entry x: has unsupported entry type '7'"),
            (T::GNUSparse, "has unsupported entry type 'S'"),
        ] {
            let e = refusal(&header(b"x", kind, 0));
            assert!(
                e.starts_with("entry x: ") && e.contains(want.trim_start_matches("entry x: ")),
                "{kind:?}: {e}"
            );
        }
    }

    #[test]
    fn refused_names_are_escaped() {
        // Found by the archive and archive_tar fuzz targets: the name of a
        // refused header went into the error as it was, line feeds and
        // escape sequences included.
        let mut block = header(b"a\nb\x1b[31m", tar::EntryType::Regular, 1);
        block[100] ^= 1;
        assert_eq!(
            refusal(&block),
            "entry a\\nb\\u{1b}[31m: header checksum mismatch"
        );
        let block = header(b"x\ry", tar::EntryType::Symlink, 0);
        assert_eq!(refusal(&block), "entry x\\ry: is a symbolic link");
    }

    #[test]
    fn checksums_are_checked() {
        let mut block = header(b"x", tar::EntryType::Regular, 1);
        block[100] ^= 1;
        assert_eq!(refusal(&block), "entry x: header checksum mismatch");
        block[148..156].copy_from_slice(b"zzzzzzz\0");
        assert_eq!(refusal(&block), "entry x: unreadable header checksum");
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for (path, want) in [
            (&b"/etc/passwd"[..], "absolute path"),
            (b"../x", "path contains '..'"),
            (b"a/../../x", "path contains '..'"),
            (b"a\\b", "unsafe path"),
            (b"a//b", "unsafe path"),
            (b"./a", "unsafe path"),
            (b"a/", "unsafe path"),
            (b"a\x1bb", "unsafe path"),
            (b"a\x7fb", "unsafe path"),
            ("a\u{85}b".as_bytes(), "unsafe path"),
            ("a\u{202e}b".as_bytes(), "unsafe path"),
            ("a\u{2066}b".as_bytes(), "unsafe path"),
            (b"a\xffb", "path is not UTF-8"),
        ] {
            let e = refusal(&header(path, tar::EntryType::Regular, 0));
            assert!(
                e.ends_with(want),
                "{:?}: {e}",
                String::from_utf8_lossy(path)
            );
        }
        // The ustar prefix joins the name; the whole path is checked.
        let mut h = tar::Header::new_ustar();
        h.as_ustar_mut().unwrap().prefix[..2].copy_from_slice(b"..");
        h.as_ustar_mut().unwrap().name[..1].copy_from_slice(b"x");
        h.set_cksum();
        assert_eq!(refusal(h.as_bytes()), "entry ../x: path contains '..'");
    }
}
