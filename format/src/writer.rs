//! Writes a bundle archive: a tar stream whose every entry starts a new zstd
//! frame (the 512-byte header is a frame of its own, the data follows in
//! frames of at most [`DATA_FRAME_SIZE`] bytes, the last one carrying the
//! tar padding), then the end-of-archive blocks, then the seek table.
//!
//! [`ArchiveWriter`] frames entries; [`BundleWriter`] (module [`bundle`])
//! writes a whole bundle with it: the head, the entries, the tail and the
//! part list of media parts.

pub mod bundle;

pub use bundle::{
    BundleOutput, BundleSigner, BundleWriter, Finished, Head, MemoryParts, TooManyParts,
    UNKNOWN_SIZE,
};

use std::io::{self, Read, Write};

use crate::digest::{Digest, Hasher};
use crate::seekable::{FrameMode, FrameWriter};

/// Decompressed size of a data frame; the last frame of an entry is shorter
/// (its data plus the zero padding to the next 512-byte block).
pub const DATA_FRAME_SIZE: usize = 1 << 20;
/// zstd level used for compressible entries unless told otherwise.
pub const DEFAULT_LEVEL: i32 = 3;
const BLOCK: usize = 512;

/// How an entry's data is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Stored as raw blocks when the data already looks compressed (by the
    /// magic bytes of its first frame); otherwise zstd, switching to raw blocks
    /// for the rest of the entry once a frame compresses by less than 3%.
    Auto,
    /// Always zstd.
    Zstd,
    /// Always raw blocks.
    Stored,
}

/// Settings that shape the archive bytes.
#[derive(Clone, Copy, Debug)]
pub struct WriterOptions {
    /// zstd level for compressible data.
    pub level: i32,
    /// Modification time written into every tar header (seconds since 1970).
    pub mtime: u64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            level: DEFAULT_LEVEL,
            mtime: 0,
        }
    }
}

/// Streams entries into a seekable zstd tar archive.
pub struct ArchiveWriter<W: Write> {
    frames: FrameWriter<W>,
    options: WriterOptions,
}

/// True when `head` starts with the magic bytes of a compressed format
/// (gzip, zstd, xz, bzip2, zip, 7z, lz4, PNG, JPEG).
pub fn looks_compressed(head: &[u8]) -> bool {
    const MAGICS: &[&[u8]] = &[
        &[0x1f, 0x8b],
        &[0x28, 0xb5, 0x2f, 0xfd],
        &[0xfd, b'7', b'z', b'X', b'Z', 0],
        b"BZh",
        b"PK\x03\x04",
        &[b'7', b'z', 0xbc, 0xaf, 0x27, 0x1c],
        &[0x04, 0x22, 0x4d, 0x18],
        b"\x89PNG",
        &[0xff, 0xd8, 0xff],
    ];
    MAGICS.iter().any(|m| head.starts_with(m))
}

/// The 512-byte ustar header the writer emits for a regular file. `mtime`
/// must fit in 11 octal digits ([`crate::bundle_json::MAX_CREATED_UNIX`]):
/// the format never writes it in base-256.
pub fn entry_header(path: &str, size: u64, mtime: u64) -> io::Result<[u8; 512]> {
    if mtime > crate::bundle_json::MAX_CREATED_UNIX {
        return Err(io::Error::other(format!(
            "mtime {mtime} does not fit in 11 octal digits (at most {}, 2242-03-16T12:56:31Z)",
            crate::bundle_json::MAX_CREATED_UNIX
        )));
    }
    let mut h = tar::Header::new_ustar();
    h.set_path(path)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    Ok(*h.as_bytes())
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive on `out`.
    pub fn new(out: W, options: WriterOptions) -> io::Result<Self> {
        Ok(ArchiveWriter {
            frames: FrameWriter::new(out, options.level)?,
            options,
        })
    }

    /// Bytes written to the output so far.
    pub fn compressed_len(&self) -> u64 {
        self.frames.compressed_len()
    }

    /// Appends an entry from memory; returns its digest.
    pub fn append_bytes(
        &mut self,
        path: &str,
        data: &[u8],
        compression: Compression,
    ) -> io::Result<Digest> {
        self.write_header(path, data.len() as u64)?;
        let mut mode = None;
        let mut chunks = data.chunks(DATA_FRAME_SIZE).peekable();
        let mut buf = Vec::new();
        while let Some(chunk) = chunks.next() {
            buf.clear();
            buf.extend_from_slice(chunk);
            if chunks.peek().is_none() {
                pad_to_block(&mut buf, data.len() as u64);
            }
            self.write_data_frame(&buf, compression, &mut mode)?;
        }
        Ok(Digest::of(data))
    }

    /// Appends an entry of exactly `size` bytes read from `source`, hashing
    /// while it writes; returns the digest. Reading and hashing run on a
    /// second thread, framing and writing on this one. `progress` is called
    /// with the number of data bytes after each frame.
    pub fn append_reader<R: Read + Send>(
        &mut self,
        path: &str,
        size: u64,
        source: R,
        compression: Compression,
        progress: &mut dyn FnMut(u64),
    ) -> io::Result<Digest>
    where
        W: Send,
    {
        self.write_header(path, size)?;
        if size == 0 {
            return check_empty(source).map(|_| Digest::of(&[]));
        }
        let (full_tx, full_rx) = crossbeam_channel::bounded::<io::Result<Vec<u8>>>(3);
        let (empty_tx, empty_rx) = crossbeam_channel::bounded::<Vec<u8>>(4);
        for _ in 0..4 {
            let _ = empty_tx.send(Vec::with_capacity(DATA_FRAME_SIZE + BLOCK));
        }
        std::thread::scope(|scope| {
            let reader = scope.spawn(move || read_and_hash(source, size, full_tx, empty_rx));
            let mut mode = None;
            let mut result = Ok(());
            for msg in full_rx.iter() {
                let step = msg.and_then(|buf| {
                    let n = buf.len();
                    self.write_data_frame(&buf, compression, &mut mode)?;
                    progress(n.min(size as usize) as u64);
                    let _ = empty_tx.send(buf);
                    Ok(())
                });
                if let Err(e) = step {
                    result = Err(e);
                    break;
                }
            }
            drop(full_rx);
            drop(empty_tx);
            let digest = reader
                .join()
                .map_err(|_| io::Error::other("reader thread panicked"))?;
            result?;
            digest
        })
    }

    fn write_header(&mut self, path: &str, size: u64) -> io::Result<()> {
        let header = entry_header(path, size, self.options.mtime)?;
        self.frames
            .write_frame(&header, FrameMode::Compress(self.options.level))?;
        Ok(())
    }

    fn write_data_frame(
        &mut self,
        buf: &[u8],
        compression: Compression,
        mode: &mut Option<FrameMode>,
    ) -> io::Result<()> {
        let level = self.options.level;
        let chosen = *mode.get_or_insert_with(|| match compression {
            Compression::Stored => FrameMode::Stored,
            Compression::Zstd => FrameMode::Compress(level),
            Compression::Auto if looks_compressed(buf) => FrameMode::Stored,
            Compression::Auto => FrameMode::Compress(level),
        });
        let csize = self.frames.write_frame(buf, chosen)?;
        if compression == Compression::Auto
            && chosen != FrameMode::Stored
            && (csize as u64) * 100 >= (buf.len() as u64) * 97
        {
            // zstd gains almost nothing here: store the rest of the entry raw.
            *mode = Some(FrameMode::Stored);
        }
        Ok(())
    }

    /// Writes the end-of-archive blocks and the seek table; returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        // Stored, like the seal before it: the tail adds nothing to the seal.
        self.frames
            .write_frame(&[0u8; 2 * BLOCK], FrameMode::Stored)?;
        self.frames.finish()
    }

    /// The output, for callers that need to flush or mark it mid-stream.
    pub fn get_mut(&mut self) -> &mut W {
        self.frames.get_mut()
    }

    /// What `bundle.seal` records about the frames written so far: the count
    /// and SHA-256 of those that are not canonical stored frames, and the
    /// count and digest of all their seek-table entries.
    pub fn seal(&self) -> crate::seekable::SealState {
        self.frames.seal()
    }

    /// Appends `bytes` to the tar stream exactly as given, in frames of at
    /// most [`DATA_FRAME_SIZE`] bytes compressed at the writer's level: no
    /// header is made, nothing is checked or padded. For tools that craft
    /// archives a bundle writer never produces (the fuzz targets feed
    /// arbitrary tar streams through it); bundles use the `append_*`
    /// methods that write whole entries.
    pub fn append_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        for chunk in bytes.chunks(DATA_FRAME_SIZE) {
            self.frames
                .write_frame(chunk, FrameMode::Compress(self.options.level))?;
        }
        Ok(())
    }

    /// Appends an entry whose header and data are both stored frames, so it
    /// changes nothing the seal covers (used for the seal entries).
    pub fn append_stored(&mut self, path: &str, data: &[u8]) -> io::Result<Digest> {
        let header = entry_header(path, data.len() as u64, self.options.mtime)?;
        self.frames.write_frame(&header, FrameMode::Stored)?;
        if !data.is_empty() {
            let mut buf = data.to_vec();
            pad_to_block(&mut buf, data.len() as u64);
            self.frames.write_frame(&buf, FrameMode::Stored)?;
        }
        Ok(Digest::of(data))
    }
}

/// The bytes [`ArchiveWriter::append_bytes`] writes for `data`'s frames
/// (not its header) with [`Compression::Stored`]: so a writer can replace
/// stored content in place with other content of the same length.
pub fn stored_entry_data(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunks = data.chunks(DATA_FRAME_SIZE).peekable();
    while let Some(chunk) = chunks.next() {
        let mut buf = chunk.to_vec();
        if chunks.peek().is_none() {
            pad_to_block(&mut buf, data.len() as u64);
        }
        crate::seekable::stored_frame(&buf, &mut out);
    }
    out
}

/// An upper bound on the bytes an entry of `size` bytes takes in the file,
/// whatever its compression: its header frame, its data frames, and their
/// seek-table entries.
pub fn entry_size_bound(size: u64) -> u64 {
    let frame = |len: u64| {
        let compressed = zstd_safe::compress_bound(len as usize) as u64;
        let stored = len + 9 + 3 * len.div_ceil(128 << 10).max(1);
        compressed.max(stored) + 8
    };
    let full = size / DATA_FRAME_SIZE as u64;
    let rest = size % DATA_FRAME_SIZE as u64;
    let last = if rest > 0 {
        frame(rest.div_ceil(BLOCK as u64) * BLOCK as u64)
    } else {
        0
    };
    frame(BLOCK as u64) + full * frame(DATA_FRAME_SIZE as u64) + last
}

fn pad_to_block(buf: &mut Vec<u8>, total: u64) {
    let rem = (total % BLOCK as u64) as usize;
    if rem != 0 {
        buf.resize(buf.len() + BLOCK - rem, 0);
    }
}

fn check_empty<R: Read>(mut source: R) -> io::Result<()> {
    let mut probe = [0u8; 1];
    match source.read(&mut probe)? {
        0 => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "source is larger than its declared size 0",
        )),
    }
}

/// Reads exactly `size` bytes in frame-sized buffers, hashing them, and sends
/// the buffers (the last padded to a tar block) to the writer.
fn read_and_hash<R: Read>(
    mut source: R,
    size: u64,
    full: crossbeam_channel::Sender<io::Result<Vec<u8>>>,
    empty: crossbeam_channel::Receiver<Vec<u8>>,
) -> io::Result<Digest> {
    let mut hasher = Hasher::new();
    let mut remaining = size;
    let fail = |full: &crossbeam_channel::Sender<io::Result<Vec<u8>>>, e: io::Error| {
        let msg = e.to_string();
        let _ = full.send(Err(io::Error::new(e.kind(), msg.clone())));
        Err(io::Error::new(e.kind(), msg))
    };
    while remaining > 0 {
        let Ok(mut buf) = empty.recv() else {
            return Err(io::Error::other("writer stopped"));
        };
        let want = remaining.min(DATA_FRAME_SIZE as u64) as usize;
        // Every byte up to `want` is overwritten by the reads below, so the
        // buffer is not cleared first (that would zero 1 MiB per frame).
        buf.resize(want, 0);
        let mut filled = 0;
        while filled < want {
            match source.read(&mut buf[filled..]) {
                Ok(0) => {
                    let e = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "source ended after {} bytes, expected {size}",
                            size - remaining + filled as u64
                        ),
                    );
                    return fail(&full, e);
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return fail(&full, e),
            }
        }
        hasher.update(&buf);
        remaining -= want as u64;
        if remaining == 0 {
            pad_to_block(&mut buf, size);
        }
        if full.send(Ok(buf)).is_err() {
            return Err(io::Error::other("writer stopped"));
        }
    }
    if let Err(e) = check_empty(&mut source) {
        return fail(&full, e);
    }
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_the_canonical_ustar_subset() {
        let path = "blobs/sha256/034654b4b8b9a444d89e11a1f54c94b5851e2388d57ca9bac846dc70efd3cacf";
        let h = entry_header(path, 224, 1_700_000_000).unwrap();
        assert_eq!(&h[..path.len()], path.as_bytes());
        assert!(h[path.len()..100].iter().all(|&b| b == 0));
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[108..116], b"0000000\0");
        assert_eq!(&h[116..124], b"0000000\0");
        assert_eq!(&h[124..136], b"00000000340\0");
        assert_eq!(&h[136..148], b"14524770400\0");
        assert_eq!(h[156], b'0');
        assert!(h[157..257].iter().all(|&b| b == 0));
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert!(h[265..512].iter().all(|&b| b == 0));
        // The checksum: all bytes, the field itself counted as spaces.
        let sum: u32 = h[..148]
            .iter()
            .chain(&[b' '; 8])
            .chain(&h[156..])
            .map(|&b| b as u32)
            .sum();
        assert_eq!(&h[148..156], format!("{sum:07o}\0").as_bytes());
    }

    #[test]
    fn mtime_stays_octal_and_sizes_switch_to_base_256() {
        let last = crate::bundle_json::MAX_CREATED_UNIX;
        assert_eq!(last, 8_589_934_591);
        let h = entry_header("x", 1, last).unwrap();
        assert_eq!(&h[136..148], b"77777777777\0");
        let e = entry_header("x", 1, last + 1).unwrap_err().to_string();
        assert!(e.contains("does not fit in 11 octal digits"), "{e}");
        let below = entry_header("x", (8 << 30) - 1, 0).unwrap();
        assert_eq!(&below[124..136], b"77777777777\0");
        let big = entry_header("x", 8 << 30, 0).unwrap();
        assert_eq!(big[124], 0x80);
        assert!(big[125..128].iter().all(|&b| b == 0));
        assert_eq!(&big[128..136], &(8u64 << 30).to_be_bytes());
    }

    #[test]
    fn raw_bytes_are_framed_as_given() {
        // Bytes no entry header describes, over two frames: the stream
        // holds them unchanged and the seek table lists both frames.
        let bytes: Vec<u8> = (0..DATA_FRAME_SIZE + 700)
            .map(|i| (i % 253) as u8)
            .collect();
        let mut w = ArchiveWriter::new(Vec::new(), WriterOptions::default()).unwrap();
        w.append_raw(&bytes).unwrap();
        w.append_raw(&[]).unwrap();
        assert_eq!(w.seal().frames, 2);
        let file = w.finish().unwrap();
        let all = zstd::stream::decode_all(&file[..]).unwrap();
        assert_eq!(&all[..bytes.len()], &bytes[..]);
        assert_eq!(all.len(), bytes.len() + 2 * BLOCK);
    }
}
