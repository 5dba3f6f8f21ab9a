//! Random access to a bundle archive through its seek table: read the head,
//! walk the tar headers, or stream any entry, decompressing only the frames
//! that hold the requested bytes.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::bundle_json::{BundleDescriptor, BUNDLE_JSON, BUNDLE_SIG};
use crate::limits::Limits;
use crate::parts::{Part, Source};
use crate::seekable::{self, FrameEntry, SeekTableError, FOOTER_SIZE};
use crate::tar_entry::{self, EntryHeader, HeaderBlock};

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// I/O on the archive file.
    #[error("{path}: {source}")]
    Io {
        /// The archive.
        path: String,
        /// The error.
        source: io::Error,
    },
    /// The seek table is missing or invalid.
    #[error("{path}: {source}")]
    SeekTable {
        /// The archive.
        path: String,
        /// The error.
        source: SeekTableError,
    },
    /// A frame could not be decompressed.
    #[error("{path}: frame {index} at offset {offset}: {reason}")]
    Frame {
        /// The archive.
        path: String,
        /// Frame index.
        index: usize,
        /// File offset of the frame.
        offset: u64,
        /// What went wrong.
        reason: String,
    },
    /// A tar entry is malformed or not allowed.
    #[error("{path}: {source}")]
    Entry {
        /// The archive.
        path: String,
        /// The error.
        source: tar_entry::EntryError,
    },
    /// The archive ends where more was expected.
    #[error("{path}: truncated: {what}")]
    Truncated {
        /// The archive.
        path: String,
        /// What is cut off.
        what: String,
    },
    /// The head is not `bundle.json` then its signature.
    #[error("{path}: {reason}")]
    Head {
        /// The archive.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// An open bundle archive.
pub struct ArchiveReader {
    source: Source,
    path: PathBuf,
    file_len: u64,
    frames: Vec<FrameEntry>,
    decompressed_len: u64,
    limits: Limits,
}

/// The unverified head of an archive: `bundle.json` and its signature.
pub struct Head {
    /// Raw `bundle.json` bytes (what the signature covers).
    pub bundle_json: Vec<u8>,
    /// Raw signature text.
    pub signature: String,
    /// Where the entry after the head starts in the decompressed stream.
    pub next_offset: u64,
}

impl ArchiveReader {
    /// Opens `path` and reads its seek table. `path` may name a bundle
    /// written as media parts: any of its parts, or `FILE` when only
    /// `FILE.part-001`… exist; the parts are then read in place.
    pub fn open(path: &Path, limits: Limits) -> Result<Self, ReadError> {
        let p = path.display().to_string();
        let io_err = |source| ReadError::Io {
            path: p.clone(),
            source,
        };
        let source = Source::open(path).map_err(io_err)?;
        let (file_len, frames) = match read_seek_table(&source, &limits) {
            Ok(t) => t,
            Err(TableError::Io(e)) => return Err(io_err(e)),
            Err(TableError::Table(e)) => return Err(explain_table_error(&source, &limits, &p, e)),
        };
        let decompressed_len = frames
            .last()
            .map(|f| f.decompressed_offset + f.decompressed_size as u64)
            .unwrap_or(0);
        Ok(ArchiveReader {
            source,
            path: path.to_path_buf(),
            file_len,
            frames,
            decompressed_len,
            limits,
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The archive's size on disk.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Frames listed in the seek table.
    pub fn frames(&self) -> &[FrameEntry] {
        &self.frames
    }

    /// Size of the decompressed tar stream.
    pub fn decompressed_len(&self) -> u64 {
        self.decompressed_len
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Reads raw (compressed) bytes of the whole bundle at `offset`, across
    /// parts when it is read from parts.
    pub fn read_raw_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.source.read_exact_at(buf, offset)
    }

    /// The bundle's bytes (one file or its parts).
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The parts, when the bundle is read from media parts.
    pub fn parts(&self) -> Option<&[Part]> {
        self.source.parts()
    }

    /// " (in FILE.part-NNN)" for a file offset when read from parts, else "".
    pub fn part_note(&self, offset: u64) -> String {
        match self.source.part_at(offset) {
            Some(p) => format!(" (in {})", p.path.display()),
            None => String::new(),
        }
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// A reader over `len` decompressed bytes starting at `offset`.
    pub fn range(&self, offset: u64, len: u64) -> Result<RangeReader<'_>, ReadError> {
        if offset
            .checked_add(len)
            .is_none_or(|end| end > self.decompressed_len)
        {
            return Err(ReadError::Truncated {
                path: self.name(),
                what: format!(
                    "range {offset}+{len} beyond the {}-byte stream",
                    self.decompressed_len
                ),
            });
        }
        let decompressor =
            seekable::decompressor(self.limits.max_frame_size).map_err(|source| ReadError::Io {
                path: self.name(),
                source,
            })?;
        Ok(RangeReader {
            archive: self,
            pos: offset,
            end: offset + len,
            frame: usize::MAX,
            buf: Vec::new(),
            compressed: Vec::new(),
            decompressor,
        })
    }

    /// Reads `len` decompressed bytes at `offset` into memory (for small reads).
    pub fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, ReadError> {
        let mut out = vec![0u8; len];
        let mut r = self.range(offset, len as u64)?;
        r.read_exact(&mut out).map_err(|e| self.unwrap_io(e))?;
        Ok(out)
    }

    /// Turns an error from a [`RangeReader`] back into a [`ReadError`].
    pub fn unwrap_io(&self, e: io::Error) -> ReadError {
        match e.get_ref().and_then(|i| i.downcast_ref::<FrameFailure>()) {
            Some(f) => ReadError::Frame {
                path: self.name(),
                index: f.index,
                offset: f.offset,
                reason: format!("{}{}", f.reason, self.part_note(f.offset)),
            },
            None => ReadError::Io {
                path: self.name(),
                source: e,
            },
        }
    }

    /// Parses the tar header at `offset`; `None` at the end-of-archive marker.
    pub fn entry_at(&self, offset: u64) -> Result<Option<EntryHeader>, ReadError> {
        if offset
            .checked_add(512)
            .is_none_or(|end| end > self.decompressed_len)
        {
            return Err(ReadError::Truncated {
                path: self.name(),
                what: format!("no tar header at offset {offset}"),
            });
        }
        let block: [u8; 512] = self.read_at(offset, 512)?.try_into().expect("512 bytes");
        match tar_entry::parse_header(&block).map_err(|source| ReadError::Entry {
            path: self.name(),
            source,
        })? {
            HeaderBlock::End => Ok(None),
            HeaderBlock::Entry { path, size } => {
                let past_end = || ReadError::Truncated {
                    path: self.name(),
                    what: format!(
                        "entry {} needs {size} bytes past the end",
                        crate::display::escape(&path)
                    ),
                };
                let Some(entry) = EntryHeader::new(path.clone(), size, offset) else {
                    return Err(past_end());
                };
                if entry.next_offset > self.decompressed_len {
                    return Err(past_end());
                }
                Ok(Some(entry))
            }
        }
    }

    /// Every entry, by its path (see [`ArchiveReader::entries`]).
    pub fn entries_by_path(
        &self,
    ) -> Result<std::collections::HashMap<String, EntryHeader>, ReadError> {
        Ok(self
            .entries()?
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect())
    }

    /// Lists every entry by walking the tar headers (only header frames are
    /// decompressed when entries start on frame boundaries, as written).
    pub fn entries(&self) -> Result<Vec<EntryHeader>, ReadError> {
        let mut out = Vec::new();
        let mut offset = 0;
        while let Some(e) = self.entry_at(offset)? {
            if out.len() >= self.limits.max_entries {
                return Err(ReadError::Head {
                    path: self.name(),
                    reason: format!("more than {} entries", self.limits.max_entries),
                });
            }
            offset = e.next_offset;
            out.push(e);
        }
        Ok(out)
    }

    /// Reads the unverified head: the first entry must be `bundle.json`, the
    /// second `bundle.json.minisig`, each within its size limit.
    pub fn read_head(&self) -> Result<Head, ReadError> {
        let head_err = |reason: String| ReadError::Head {
            path: self.name(),
            reason,
        };
        let first = self
            .entry_at(0)?
            .ok_or_else(|| head_err("empty archive: no bundle.json".into()))?;
        if first.path != BUNDLE_JSON {
            return Err(head_err(format!(
                "first entry is {}, expected {BUNDLE_JSON}",
                first.path
            )));
        }
        if first.size > self.limits.max_bundle_json {
            return Err(head_err(format!(
                "{BUNDLE_JSON} is {} bytes, above the {}-byte limit",
                first.size, self.limits.max_bundle_json
            )));
        }
        let bundle_json = self.read_at(first.data_offset, first.size as usize)?;
        let second = self.entry_at(first.next_offset)?;
        let second = match second {
            Some(e) if e.path == BUNDLE_SIG => e,
            Some(e) => {
                return Err(head_err(format!(
                    "bundle is not signed: second entry is {}, expected {BUNDLE_SIG}",
                    e.path
                )))
            }
            None => return Err(head_err(format!("bundle is not signed: no {BUNDLE_SIG}"))),
        };
        if second.size > self.limits.max_signature {
            return Err(head_err(format!(
                "{BUNDLE_SIG} is {} bytes, above the {}-byte limit",
                second.size, self.limits.max_signature
            )));
        }
        let sig = self.read_at(second.data_offset, second.size as usize)?;
        let signature =
            String::from_utf8(sig).map_err(|_| head_err(format!("{BUNDLE_SIG} is not UTF-8")))?;
        Ok(Head {
            bundle_json,
            signature,
            next_offset: second.next_offset,
        })
    }

    /// Reads the head and parses `bundle.json` WITHOUT checking the signature
    /// (for `inspect`); callers that act on content must verify instead.
    pub fn read_descriptor_unverified(&self) -> Result<(Head, BundleDescriptor), ReadError> {
        let head = self.read_head()?;
        let d = BundleDescriptor::from_slice(&head.bundle_json).map_err(|e| ReadError::Head {
            path: self.name(),
            reason: e.to_string(),
        })?;
        Ok((head, d))
    }

    /// Index of the frame holding decompressed `offset`.
    fn frame_index(&self, offset: u64) -> usize {
        self.frames
            .partition_point(|f| f.decompressed_offset + f.decompressed_size as u64 <= offset)
    }
}

enum TableError {
    Io(io::Error),
    Table(SeekTableError),
}

/// Reads and checks the seek table at the end of `source`: the file size
/// and the frames.
fn read_seek_table(source: &Source, limits: &Limits) -> Result<(u64, Vec<FrameEntry>), TableError> {
    let file_len = source.len().map_err(TableError::Io)?;
    if file_len < (8 + FOOTER_SIZE) as u64 {
        return Err(TableError::Table(SeekTableError::TooShort(file_len)));
    }
    let mut footer = [0u8; FOOTER_SIZE];
    source
        .read_exact_at(&mut footer, file_len - FOOTER_SIZE as u64)
        .map_err(TableError::Io)?;
    let (n, table_len) = seekable::parse_footer(&footer, file_len).map_err(TableError::Table)?;
    if n > limits.max_frames {
        return Err(TableError::Table(SeekTableError::Invalid(format!(
            "{n} frames exceed the limit of {}",
            limits.max_frames
        ))));
    }
    let mut table = vec![0u8; table_len as usize];
    source
        .read_exact_at(&mut table, file_len - table_len)
        .map_err(TableError::Io)?;
    let frames = seekable::parse_seek_table(&table, file_len - table_len, limits.max_frame_size)
        .map_err(TableError::Table)?;
    Ok((file_len, frames))
}

/// A seek table that does not fit: for media parts, say which part is
/// wrong. A stray part after the real last one shows as a valid bundle
/// without it; a short part as a size unlike the others; anything else is
/// in the last part, where the table is.
fn explain_table_error(
    source: &Source,
    limits: &Limits,
    path: &str,
    e: SeekTableError,
) -> ReadError {
    let Some(parts) = source.parts() else {
        return ReadError::SeekTable {
            path: path.to_string(),
            source: e,
        };
    };
    for keep in (1..parts.len()).rev().take(3) {
        let fewer = Source::open_parts(parts[..keep].iter().map(|p| p.path.clone()));
        if let Ok(fewer) = fewer {
            if read_seek_table(&fewer, limits).is_ok() {
                let stray: Vec<String> = parts[keep..]
                    .iter()
                    .map(|p| p.path.display().to_string())
                    .collect();
                return ReadError::Head {
                    path: path.to_string(),
                    reason: format!(
                        "{}: not a part of this bundle, which ends with {} (remove it)",
                        stray.join(", "),
                        parts[keep - 1].path.display()
                    ),
                };
            }
        }
    }
    if let Err(reason) = crate::parts::check_sizes(parts) {
        return ReadError::Head {
            path: path.to_string(),
            reason,
        };
    }
    let last = parts.last().expect("at least one part");
    ReadError::SeekTable {
        path: format!(
            "{path} (the seek table is in the last part, {}; a missing or damaged last part?)",
            last.path.display()
        ),
        source: e,
    }
}

/// A frame that failed to decompress, carried inside an `io::Error`.
#[derive(Debug)]
struct FrameFailure {
    index: usize,
    offset: u64,
    reason: String,
}

impl std::fmt::Display for FrameFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "frame {} at offset {}: {}",
            self.index, self.offset, self.reason
        )
    }
}

impl std::error::Error for FrameFailure {}

/// Streams a range of the decompressed tar stream, one frame at a time.
/// Several can read one archive at once: each uses positioned reads.
pub struct RangeReader<'a> {
    archive: &'a ArchiveReader,
    pos: u64,
    end: u64,
    frame: usize,
    buf: Vec<u8>,
    compressed: Vec<u8>,
    decompressor: zstd_safe::DCtx<'static>,
}

impl RangeReader<'_> {
    /// Bytes left in the range.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }

    fn load(&mut self, index: usize) -> io::Result<()> {
        let f = self.archive.frames[index];
        self.compressed.resize(f.compressed_size as usize, 0);
        self.archive
            .source
            .read_exact_at(&mut self.compressed, f.compressed_offset)?;
        seekable::decompress_frame(
            &mut self.decompressor,
            &self.compressed,
            f.decompressed_size,
            self.archive.limits.max_frame_size,
            &mut self.buf,
        )
        .map_err(|reason| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                FrameFailure {
                    index,
                    offset: f.compressed_offset,
                    reason,
                },
            )
        })?;
        self.frame = index;
        Ok(())
    }
}

impl Read for RangeReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.end || out.is_empty() {
            return Ok(0);
        }
        let index = self.archive.frame_index(self.pos);
        if index != self.frame {
            self.load(index)?;
        }
        let f = self.archive.frames[index];
        let start = (self.pos - f.decompressed_offset) as usize;
        let avail = (f.decompressed_size as usize - start).min((self.end - self.pos) as usize);
        let n = avail.min(out.len());
        out[..n].copy_from_slice(&self.buf[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{ArchiveWriter, WriterOptions};

    /// An archive whose stream is one tar header of `size` bytes for `x`.
    fn one_header(size: u64) -> tempfile::NamedTempFile {
        let mut h = tar::Header::new_ustar();
        h.set_path("x").unwrap();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        let mut w = ArchiveWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.append_raw(h.as_bytes()).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), w.finish().unwrap()).unwrap();
        file
    }

    #[test]
    fn sizes_near_2_pow_64_are_truncation_not_overflow() {
        // `offset + 512 + padded(size)` overflowed (a panic) for a
        // base-256 size field near 2^64.
        for size in [u64::MAX, u64::MAX - 511, u64::MAX - 1024, 1 << 40] {
            let f = one_header(size);
            let r = ArchiveReader::open(f.path(), Limits::default()).unwrap();
            let e = r.entries().unwrap_err().to_string();
            assert!(
                e.ends_with(&format!(
                    "truncated: entry x needs {size} bytes past the end"
                )),
                "{e}"
            );
        }
    }
}
