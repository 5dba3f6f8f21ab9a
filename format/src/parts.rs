//! Bundles written as media parts (`FILE.part-001`, `FILE.part-002`, …):
//! finding the parts of a bundle, reading them as one file without joining
//! them, and the per-part digests `bundle.json` records.
//!
//! A part's digest covers only its bytes inside the **body region** of the
//! whole file: from the first frame after `bundle.json.minisig` to the first
//! frame of `bundle.seal`. The head before it holds `bundle.json` itself
//! (which cannot contain its own digest) and is covered by the signature; the
//! tail after it is covered by the seal and its signature.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::bundle_json::MAX_PARTS;
use crate::digest::{Digest, Hasher};

/// One part file and where its bytes sit in the whole bundle.
#[derive(Debug)]
pub struct Part {
    /// The part file.
    pub path: PathBuf,
    /// Offset of its first byte in the whole bundle.
    pub start: u64,
    /// Its size.
    pub len: u64,
    file: File,
}

/// The bytes of a bundle: one file, or its parts read in place.
#[derive(Debug)]
pub enum Source {
    /// A whole bundle file.
    Whole(File),
    /// Parts, in order, that join into the bundle.
    Parts(Vec<Part>),
}

/// Where the bundle named `path` is: `path` itself, or when `path` is a part
/// (`FILE.part-NNN`) or does not exist while `path.part-001` does, every part
/// of it in order. Parts must be numbered from 001 without a gap.
pub fn locate(path: &Path) -> io::Result<Vec<PathBuf>> {
    let name = path.to_string_lossy();
    let base = match part_base(&name) {
        Some(base) => Some(PathBuf::from(base)),
        None if !path.exists() && part_path(path, 0).exists() => Some(path.to_path_buf()),
        None => None,
    };
    let Some(base) = base else {
        return Ok(vec![path.to_path_buf()]);
    };
    let mut parts = Vec::new();
    while parts.len() < MAX_PARTS {
        let p = part_path(&base, parts.len());
        if !p.exists() {
            break;
        }
        parts.push(p);
    }
    if parts.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{}: part 001 not found", part_path(&base, 0).display()),
        ));
    }
    // A gap: a later part exists after a missing one.
    for later in parts.len() + 1..MAX_PARTS.min(parts.len() + 50) {
        let p = part_path(&base, later);
        if p.exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{}: missing, but {} exists (copy the missing part)",
                    part_path(&base, parts.len()).display(),
                    p.display()
                ),
            ));
        }
    }
    Ok(parts)
}

/// `FILE.part-NNN` for part `index` (0-based).
pub fn part_path(base: &Path, index: usize) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".part-{:03}", index + 1));
    PathBuf::from(s)
}

/// `FILE` when `name` is `FILE.part-NNN`.
pub fn part_base(name: &str) -> Option<&str> {
    let (base, num) = name.rsplit_once(".part-")?;
    (num.len() == 3 && num.bytes().all(|b| b.is_ascii_digit()) && !base.is_empty()).then_some(base)
}

/// Opens a bundle or part file: a regular file only (a FIFO or a device
/// would block or never end), as an `io::Error` naming the file.
fn open_regular(path: &Path) -> io::Result<File> {
    crate::regular_file::open_regular(path).map_err(|e| {
        let kind = e.io_kind().unwrap_or(io::ErrorKind::InvalidInput);
        io::Error::new(kind, e.to_string())
    })
}

impl Source {
    /// Opens the bundle at `path` (see [`locate`]).
    pub fn open(path: &Path) -> io::Result<Source> {
        let paths = locate(path)?;
        if paths.len() == 1 && paths[0] == path && part_base(&path.to_string_lossy()).is_none() {
            return Ok(Source::Whole(open_regular(path)?));
        }
        Source::open_parts(paths)
    }

    /// Opens `paths` as the parts of one bundle, in order.
    pub fn open_parts(paths: impl IntoIterator<Item = PathBuf>) -> io::Result<Source> {
        let mut parts = Vec::new();
        let mut start = 0u64;
        for p in paths {
            let file = open_regular(&p)?;
            let len = file.metadata()?.len();
            parts.push(Part {
                path: p,
                start,
                len,
                file,
            });
            start += len;
        }
        Ok(Source::Parts(parts))
    }

    /// Size of the whole bundle.
    pub fn len(&self) -> io::Result<u64> {
        match self {
            Source::Whole(f) => Ok(f.metadata()?.len()),
            Source::Parts(p) => Ok(p.last().map_or(0, |l| l.start + l.len)),
        }
    }

    /// True when the bundle has no bytes.
    pub fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The parts, when read from parts.
    pub fn parts(&self) -> Option<&[Part]> {
        match self {
            Source::Whole(_) => None,
            Source::Parts(p) => Some(p),
        }
    }

    /// The part holding byte `offset` of the whole bundle, if read from parts.
    pub fn part_at(&self, offset: u64) -> Option<&Part> {
        let parts = self.parts()?;
        let i = parts.partition_point(|p| p.start + p.len <= offset);
        parts.get(i)
    }

    /// Fills `buf` from `offset` of the whole bundle, across parts.
    pub fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        match self {
            Source::Whole(f) => f.read_exact_at(buf, offset),
            Source::Parts(parts) => {
                while !buf.is_empty() {
                    let i = parts.partition_point(|p| p.start + p.len <= offset);
                    let Some(p) = parts.get(i) else {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    };
                    let within = offset - p.start;
                    let n = ((p.len - within) as usize).min(buf.len());
                    p.file.read_exact_at(&mut buf[..n], within)?;
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Ok(())
            }
        }
    }
}

/// Checks that parts could come from one split: every part but the last has
/// the same size (the largest), and the last is not larger. Names the parts
/// that break this (a short copy, a part from another build).
pub fn check_sizes(parts: &[Part]) -> Result<(), String> {
    let size = parts.iter().map(|p| p.len).max().unwrap_or(0);
    let bad: Vec<String> = parts
        .iter()
        .enumerate()
        .filter(|(i, p)| (*i + 1 < parts.len() && p.len != size) || p.len == 0)
        .map(|(_, p)| {
            format!(
                "{}: {} bytes, the other parts are {size} (an interrupted copy? copy it again)",
                p.path.display(),
                p.len
            )
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(bad.join("; "))
    }
}

/// SHA-256 of the bytes of `[start, start + len)` of the whole bundle that
/// lie in the body region `body` (empty input when none do).
pub fn region_digest(
    source: &Source,
    start: u64,
    len: u64,
    body: (u64, u64),
    progress: &dyn Fn(u64),
) -> io::Result<Digest> {
    let from = start.max(body.0);
    let to = (start + len).min(body.1);
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; 8 << 20];
    let mut pos = from;
    while pos < to {
        let n = ((to - pos) as usize).min(buf.len());
        source.read_exact_at(&mut buf[..n], pos)?;
        hasher.update(&buf[..n]);
        progress(n as u64);
        pos += n as u64;
    }
    Ok(hasher.finish())
}

/// Hashes the body-region bytes of each part while a writer streams the
/// whole file: feed every byte in order with [`PartHasher::write`], mark the
/// body region with [`PartHasher::body_starts`] and [`PartHasher::body_ends`].
pub struct PartHasher {
    part_size: u64,
    pos: u64,
    in_body: bool,
    current: Hasher,
    done: Vec<Digest>,
}

impl PartHasher {
    /// Starts at offset 0 with parts of `part_size` bytes.
    pub fn new(part_size: u64) -> Self {
        PartHasher {
            part_size,
            pos: 0,
            in_body: false,
            current: Hasher::new(),
            done: Vec::new(),
        }
    }

    /// The next bytes written start the body region.
    pub fn body_starts(&mut self) {
        self.in_body = true;
    }

    /// The next bytes written are after the body region.
    pub fn body_ends(&mut self) {
        self.in_body = false;
    }

    /// Accounts bytes written at the current position.
    pub fn write(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let left = self.part_size - self.pos % self.part_size;
            let n = (left as usize).min(data.len());
            if self.in_body {
                self.current.update(&data[..n]);
            }
            self.pos += n as u64;
            data = &data[n..];
            if self.pos.is_multiple_of(self.part_size) {
                let h = std::mem::take(&mut self.current);
                self.done.push(h.finish());
            }
        }
    }

    /// The digests of `parts` parts: those finished, the one in progress,
    /// and empty-input digests for parts not yet reached (only tail bytes
    /// will go there).
    pub fn digests(&self, parts: usize) -> Vec<Digest> {
        let mut out = self.done.clone();
        if out.len() < parts && !self.pos.is_multiple_of(self.part_size) {
            out.push(self.current.clone().finish());
        }
        while out.len() < parts {
            out.push(Hasher::new().finish());
        }
        out.truncate(parts);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names() {
        assert_eq!(part_base("a/b.bundle.part-001"), Some("a/b.bundle"));
        assert_eq!(part_base("b.part-1"), None);
        assert_eq!(part_base(".part-001"), None);
        assert_eq!(
            part_path(Path::new("x/b"), 11),
            PathBuf::from("x/b.part-012")
        );
    }

    #[test]
    fn hasher_covers_only_the_body_of_each_part() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let (bs, be, size) = (100u64, 900u64, 256u64);
        let mut h = PartHasher::new(size);
        h.write(&data[..bs as usize]);
        h.body_starts();
        h.write(&data[bs as usize..be as usize]);
        h.body_ends();
        h.write(&data[be as usize..]);
        let dir = tempfile::tempdir().unwrap();
        let whole = dir.path().join("w");
        std::fs::write(&whole, &data).unwrap();
        let src = Source::open(&whole).unwrap();
        let got = h.digests(4);
        for (i, d) in got.iter().enumerate() {
            let start = i as u64 * size;
            let len = size.min(1000 - start);
            assert_eq!(
                *d,
                region_digest(&src, start, len, (bs, be), &|_| {}).unwrap(),
                "part {i}"
            );
        }
        // The same bytes as parts read in place.
        for (i, c) in data.chunks(size as usize).enumerate() {
            std::fs::write(part_path(&dir.path().join("p"), i), c).unwrap();
        }
        let parts = Source::open(&dir.path().join("p")).unwrap();
        assert_eq!(parts.len().unwrap(), 1000);
        let mut buf = vec![0u8; 600];
        parts.read_exact_at(&mut buf, 200).unwrap();
        assert_eq!(&buf[..], &data[200..800]);
        assert_eq!(
            parts.part_at(600).unwrap().path,
            part_path(&dir.path().join("p"), 2)
        );
        std::fs::remove_file(part_path(&dir.path().join("p"), 1)).unwrap();
        let err = Source::open(&dir.path().join("p")).unwrap_err().to_string();
        assert!(err.contains("p.part-002: missing"), "{err}");
    }
}
