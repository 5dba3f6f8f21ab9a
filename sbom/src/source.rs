//! A file's bytes, in memory or in a file on disk, read by offset. The
//! executable parsers read through it, so that a large executable the layer
//! walker spooled to a temporary file is parsed by reading only the parts
//! they need (headers, section tables, the sections that hold package
//! data), never the whole file into memory.

use std::borrow::Cow;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// Bytes read by offset.
pub trait Source {
    /// The number of bytes.
    fn size(&self) -> u64;
    /// `len` bytes at `offset`; `None` when they run past the end or cannot
    /// be read.
    fn read_at(&self, offset: u64, len: usize) -> Option<Cow<'_, [u8]>>;
}

impl Source for &[u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        let start = usize::try_from(offset).ok()?;
        self.get(start..start.checked_add(len)?).map(Cow::Borrowed)
    }
}

/// A file of known size, read with positioned reads (no shared cursor).
pub struct FileSource<'f> {
    file: &'f File,
    size: u64,
}

impl<'f> FileSource<'f> {
    /// The first `size` bytes of `file`.
    pub fn new(file: &'f File, size: u64) -> Self {
        FileSource { file, size }
    }
}

impl Source for FileSource<'_> {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, len: usize) -> Option<Cow<'_, [u8]>> {
        if offset.checked_add(len as u64)? > self.size {
            return None;
        }
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, offset).ok()?;
        Some(Cow::Owned(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn memory_and_file_read_the_same_bytes() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();
        let on_disk = FileSource::new(&file, bytes.len() as u64);
        for (off, len) in [(0, 0), (0, 10), (9_990, 10), (5_000, 1_000)] {
            assert_eq!(
                (&bytes[..]).read_at(off, len).unwrap(),
                on_disk.read_at(off, len).unwrap()
            );
        }
        assert!((&bytes[..]).read_at(9_995, 10).is_none());
        assert!(on_disk.read_at(9_995, 10).is_none());
        assert!(on_disk.read_at(u64::MAX, 1).is_none());
        assert_eq!(on_disk.size(), 10_000);
    }
}
