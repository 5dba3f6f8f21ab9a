//! The zstd seekable format: independent zstd frames followed by a seek table
//! in a skippable frame, which stock `zstd` skips.
//!
//! Layout of the seek table frame (all integers little-endian):
//!
//! ```text
//! u32 0x184D2A5E   skippable frame magic
//! u32 N*8 + 9      frame content size
//! N × { u32 compressed_size, u32 decompressed_size }
//! u32 N            number of frames
//! u8  0            descriptor (no checksums)
//! u32 0x8F92EAB1   seekable magic
//! ```
//!
//! Frames are written either by libzstd (compressible data) or as a frame of
//! raw (stored) blocks built here, for data that is already compressed.

use std::io::{self, Write};

/// Magic number of the skippable frame that holds the seek table.
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// Magic number that ends the seek table.
pub const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Size of the seek table footer.
pub const FOOTER_SIZE: usize = 9;
/// Size of one seek table entry (no checksums).
pub const ENTRY_SIZE: usize = 8;
/// Magic number of a zstd frame.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Frame header descriptor of stored frames: content size in 4 bytes (flag 2),
/// single segment, no checksum, no dictionary. With a single segment the
/// window is the content, so blocks are at most 128 KiB.
const STORED_DESCRIPTOR: u8 = 0b1010_0000;
/// Largest block in a zstd frame.
const MAX_BLOCK: usize = 128 * 1024;

/// One frame's place in the compressed file and in the decompressed stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameEntry {
    /// Offset of the frame in the file.
    pub compressed_offset: u64,
    /// Size of the frame in the file.
    pub compressed_size: u32,
    /// Offset of the frame's content in the decompressed stream.
    pub decompressed_offset: u64,
    /// Size of the frame's content.
    pub decompressed_size: u32,
}

/// How an entry's data frames are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameMode {
    /// zstd at the given level.
    Compress(i32),
    /// Raw (stored) blocks: for data that is already compressed.
    Stored,
}

/// Writes independent frames to `out` and remembers them for the seek table.
pub struct FrameWriter<W: Write> {
    out: W,
    frames: Vec<(u32, u32)>,
    compressed_len: u64,
    decompressed_len: u64,
    compressor: zstd::bulk::Compressor<'static>,
    level: i32,
    scratch: Vec<u8>,
    sealed: FrameSeal,
}

/// Running SHA-256 over the bytes of every frame that is not a canonical
/// stored frame (see [`is_canonical_stored`]): the part of the file whose
/// bytes the decompressed content does not pin down.
#[derive(Clone, Default)]
pub struct FrameSeal {
    hasher: crate::digest::Hasher,
    frames: u64,
}

impl FrameSeal {
    /// Accounts one frame's bytes.
    pub fn add(&mut self, frame: &[u8]) {
        if !is_canonical_stored(frame) {
            self.hasher.update(frame);
            self.frames += 1;
        }
    }

    /// Number of frames hashed and their digest so far.
    pub fn result(&self) -> (u64, crate::digest::Digest) {
        (self.frames, self.hasher.clone().finish())
    }
}

/// What the seal pins about the frames before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealState {
    /// Frames that are not canonical stored frames.
    pub compressed_frames: u64,
    /// SHA-256 of their bytes, in file order.
    pub compressed_frames_digest: crate::digest::Digest,
    /// All frames.
    pub frames: u64,
    /// SHA-256 of their seek-table entries (which fix every frame boundary).
    pub frame_table_digest: crate::digest::Digest,
}

/// SHA-256 of the seek-table entries (u32 LE compressed size, u32 LE
/// decompressed size) of `frames`.
pub fn frame_table_digest(frames: &[(u32, u32)]) -> crate::digest::Digest {
    let mut h = crate::digest::Hasher::new();
    for (c, d) in frames {
        h.update(&c.to_le_bytes());
        h.update(&d.to_le_bytes());
    }
    h.finish()
}

/// True when `frame` is exactly what [`stored_frame`] writes for its content:
/// descriptor 0xA0, 4-byte content size, raw blocks of 128 KiB (the last one
/// shorter and flagged last). Only headers are examined; the content of raw
/// blocks is the decompressed data itself.
pub fn is_canonical_stored(frame: &[u8]) -> bool {
    if frame.len() < 12 || frame[0..4] != ZSTD_MAGIC.to_le_bytes() || frame[4] != STORED_DESCRIPTOR
    {
        return false;
    }
    let len = u32::from_le_bytes(frame[5..9].try_into().expect("4 bytes")) as usize;
    let blocks = len.div_ceil(MAX_BLOCK).max(1);
    if frame.len() != 9 + len + 3 * blocks {
        return false;
    }
    let mut pos = 9;
    let mut left = len;
    for i in 0..blocks {
        let size = left.min(MAX_BLOCK);
        if frame[pos..pos + 3] != block_header(size, i + 1 == blocks) {
            return false;
        }
        pos += 3 + size;
        left -= size;
    }
    true
}

impl<W: Write> FrameWriter<W> {
    /// A writer whose compressed frames use `level`.
    pub fn new(out: W, level: i32) -> io::Result<Self> {
        let mut compressor = zstd::bulk::Compressor::new(level)?;
        compressor.include_checksum(false)?;
        compressor.include_contentsize(true)?;
        Ok(Self {
            out,
            frames: Vec::new(),
            compressed_len: 0,
            decompressed_len: 0,
            compressor,
            level,
            scratch: Vec::new(),
            sealed: FrameSeal::default(),
        })
    }

    /// What `bundle.seal` records about the frames written so far.
    pub fn seal(&self) -> SealState {
        let (compressed_frames, compressed_frames_digest) = self.sealed.result();
        SealState {
            compressed_frames,
            compressed_frames_digest,
            frames: self.frames.len() as u64,
            frame_table_digest: frame_table_digest(&self.frames),
        }
    }

    /// The output.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Bytes of decompressed stream written so far.
    pub fn decompressed_len(&self) -> u64 {
        self.decompressed_len
    }

    /// Bytes of file written so far.
    pub fn compressed_len(&self) -> u64 {
        self.compressed_len
    }

    /// Writes `data` as one frame. Returns the frame's compressed size.
    pub fn write_frame(&mut self, data: &[u8], mode: FrameMode) -> io::Result<u32> {
        if data.len() > u32::MAX as usize {
            return Err(io::Error::other("frame larger than 4 GiB"));
        }
        self.scratch.clear();
        match mode {
            FrameMode::Compress(level) => {
                if level != self.level {
                    self.compressor.set_compression_level(level)?;
                    self.level = level;
                }
                let bound = zstd_safe::compress_bound(data.len());
                self.scratch.reserve(bound);
                self.compressor
                    .compress_to_buffer(data, &mut self.scratch)?;
            }
            FrameMode::Stored => {
                // Headers only; the data goes out straight from `data`.
                let csize = self.write_stored(data)?;
                self.frames.push((csize, data.len() as u32));
                self.compressed_len += csize as u64;
                self.decompressed_len += data.len() as u64;
                return Ok(csize);
            }
        }
        self.out.write_all(&self.scratch)?;
        self.sealed.add(&self.scratch);
        let csize = self.scratch.len() as u32;
        self.frames.push((csize, data.len() as u32));
        self.compressed_len += csize as u64;
        self.decompressed_len += data.len() as u64;
        Ok(csize)
    }

    /// Writes `data` as a frame of raw blocks with one vectored write per
    /// frame, without copying the data; returns the frame size.
    fn write_stored(&mut self, data: &[u8]) -> io::Result<u32> {
        let blocks = data.len().div_ceil(MAX_BLOCK).max(1);
        self.scratch.clear();
        self.scratch.extend_from_slice(&ZSTD_MAGIC.to_le_bytes());
        self.scratch.push(STORED_DESCRIPTOR);
        self.scratch
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        let mut headers = Vec::with_capacity(blocks);
        let mut chunks = data.chunks(MAX_BLOCK).peekable();
        let mut parts: Vec<&[u8]> = Vec::with_capacity(2 * blocks);
        if chunks.peek().is_none() {
            headers.push(block_header(0, true));
        }
        while let Some(chunk) = chunks.next() {
            headers.push(block_header(chunk.len(), chunks.peek().is_none()));
            parts.push(chunk);
        }
        let mut slices: Vec<io::IoSlice<'_>> = Vec::with_capacity(1 + 2 * blocks);
        slices.push(io::IoSlice::new(&self.scratch));
        if parts.is_empty() {
            slices.push(io::IoSlice::new(&headers[0]));
        }
        for (h, p) in headers.iter().zip(&parts) {
            slices.push(io::IoSlice::new(h));
            slices.push(io::IoSlice::new(p));
        }
        let total: usize = slices.iter().map(|s| s.len()).sum();
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            match self.out.write_vectored(rest) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => io::IoSlice::advance_slices(&mut rest, n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total as u32)
    }

    /// Writes the seek table and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        let table = seek_table_bytes(&self.frames);
        self.out.write_all(&table)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Encodes `data` as a zstd frame of raw blocks with its content size.
pub fn stored_frame(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len() + 8 + 3 * (data.len() / MAX_BLOCK + 1));
    out.extend_from_slice(&ZSTD_MAGIC.to_le_bytes());
    out.push(STORED_DESCRIPTOR);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    let mut chunks = data.chunks(MAX_BLOCK).peekable();
    if chunks.peek().is_none() {
        // An empty frame still needs one (last, empty) block.
        out.extend_from_slice(&block_header(0, true));
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        out.extend_from_slice(&block_header(chunk.len(), last));
        out.extend_from_slice(chunk);
    }
}

fn block_header(size: usize, last: bool) -> [u8; 3] {
    // bit 0: last block; bits 1-2: block type (0 = raw); bits 3-23: size.
    let v = ((size as u32) << 3) | (last as u32);
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// Encodes a seek table for frames given as (compressed, decompressed) sizes.
pub fn seek_table_bytes(frames: &[(u32, u32)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + frames.len() * ENTRY_SIZE + FOOTER_SIZE);
    out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    out.extend_from_slice(&((frames.len() * ENTRY_SIZE + FOOTER_SIZE) as u32).to_le_bytes());
    for (c, d) in frames {
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    out.push(0);
    out.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
    out
}

/// Why a seek table could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SeekTableError {
    /// The file is shorter than a seek table.
    #[error("file too short for a seek table ({0} bytes)")]
    TooShort(u64),
    /// The last four bytes are not the seekable magic.
    #[error("no seek table at the end of the file (not a bundle, or truncated)")]
    NoMagic,
    /// A field of the table is out of range or inconsistent.
    #[error("seek table: {0}")]
    Invalid(String),
}

/// Parses the footer: returns (number of frames, size of the whole seek table frame).
pub fn parse_footer(
    footer: &[u8; FOOTER_SIZE],
    file_len: u64,
) -> Result<(u32, u64), SeekTableError> {
    let magic = u32::from_le_bytes(footer[5..9].try_into().expect("4 bytes"));
    if magic != SEEKABLE_MAGIC {
        return Err(SeekTableError::NoMagic);
    }
    let descriptor = footer[4];
    if descriptor != 0 {
        return Err(SeekTableError::Invalid(format!(
            "descriptor is {descriptor:#04x}, this format writes 0 (no checksums)"
        )));
    }
    let n = u32::from_le_bytes(footer[0..4].try_into().expect("4 bytes"));
    let table_len = 8 + n as u64 * ENTRY_SIZE as u64 + FOOTER_SIZE as u64;
    if table_len > file_len {
        return Err(SeekTableError::Invalid(format!(
            "{n} frames do not fit in a {file_len}-byte file"
        )));
    }
    Ok((n, table_len))
}

/// Parses the whole seek table frame (`bytes` is the frame, magic to footer)
/// into frame positions, checking that the frames exactly fill `data_len`
/// bytes of file before it.
pub fn parse_seek_table(
    bytes: &[u8],
    data_len: u64,
    max_frame_size: u32,
) -> Result<Vec<FrameEntry>, SeekTableError> {
    let bad = |m: String| SeekTableError::Invalid(m);
    if bytes.len() < 8 + FOOTER_SIZE {
        return Err(bad("truncated".into()));
    }
    let magic = u32::from_le_bytes(bytes[0..4].try_into().expect("4 bytes"));
    if magic != SKIPPABLE_MAGIC {
        return Err(bad(format!("skippable frame magic is {magic:#010x}")));
    }
    let size = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    if size != bytes.len() - 8 {
        return Err(bad(format!(
            "frame size field {size} does not match the table's {} bytes",
            bytes.len() - 8
        )));
    }
    let entries = &bytes[8..bytes.len() - FOOTER_SIZE];
    let mut frames = Vec::with_capacity(entries.len() / ENTRY_SIZE);
    let (mut c_off, mut d_off) = (0u64, 0u64);
    for (i, e) in entries.chunks_exact(ENTRY_SIZE).enumerate() {
        let c = u32::from_le_bytes(e[0..4].try_into().expect("4 bytes"));
        let d = u32::from_le_bytes(e[4..8].try_into().expect("4 bytes"));
        if c == 0 || d == 0 {
            return Err(bad(format!("frame {i} is empty")));
        }
        if d > max_frame_size {
            return Err(bad(format!(
                "frame {i} decompresses to {d} bytes, above the {max_frame_size}-byte limit"
            )));
        }
        frames.push(FrameEntry {
            compressed_offset: c_off,
            compressed_size: c,
            decompressed_offset: d_off,
            decompressed_size: d,
        });
        c_off += c as u64;
        d_off += d as u64;
    }
    if c_off != data_len {
        return Err(bad(format!(
            "frames cover {c_off} bytes but {data_len} bytes precede the table"
        )));
    }
    Ok(frames)
}

/// Decompresses one frame, checking that `src` is exactly one zstd frame whose
/// content is `expected_len` bytes. `dst` is cleared and filled.
pub fn decompress_frame(
    decompressor: &mut zstd::bulk::Decompressor<'_>,
    src: &[u8],
    expected_len: u32,
    dst: &mut Vec<u8>,
) -> Result<(), String> {
    if src.len() < 4 || u32::from_le_bytes(src[0..4].try_into().expect("4 bytes")) != ZSTD_MAGIC {
        return Err("not a zstd frame".into());
    }
    // Bit 4 of the frame header descriptor is unused: decoders ignore it, so a
    // set bit would let altered bytes decode to the same content.
    if src.len() > 4 && src[4] & 0x10 != 0 {
        return Err("frame header has its unused bit set".into());
    }
    match zstd_safe::find_frame_compressed_size(src) {
        Ok(n) if n == src.len() => {}
        Ok(n) => return Err(format!("frame is {n} bytes, seek table says {}", src.len())),
        Err(code) => {
            return Err(format!(
                "corrupt frame ({})",
                zstd_safe::get_error_name(code)
            ))
        }
    }
    dst.clear();
    dst.reserve(expected_len as usize);
    let n = decompressor
        .decompress_to_buffer(src, dst)
        .map_err(|e| format!("corrupt frame ({e})"))?;
    if n != expected_len as usize {
        return Err(format!(
            "frame decompresses to {n} bytes, seek table says {expected_len}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_frames_decode_with_libzstd() {
        for len in [0usize, 1, 511, 128 * 1024, 128 * 1024 + 1, 1 << 20] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 13) as u8).collect();
            let mut frame = Vec::new();
            stored_frame(&data, &mut frame);
            let out = zstd::stream::decode_all(&frame[..]).unwrap();
            assert_eq!(out, data, "len {len}");
        }
    }

    #[test]
    fn vectored_stored_frames_match_the_reference_encoding() {
        for len in [0usize, 5, 128 * 1024, 300 * 1024 + 7] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut w = FrameWriter::new(Vec::new(), 3).unwrap();
            w.write_frame(&data, FrameMode::Stored).unwrap();
            let n = w.compressed_len() as usize;
            let file = w.finish().unwrap();
            let mut reference = Vec::new();
            stored_frame(&data, &mut reference);
            assert_eq!(&file[..n], &reference[..], "len {len}");
            assert!(is_canonical_stored(&reference));
            let mut altered = reference.clone();
            altered[4] = 0xA4; // checksum flag
            assert!(!is_canonical_stored(&altered));
        }
    }

    #[test]
    fn table_round_trips() {
        let mut w = FrameWriter::new(Vec::new(), 3).unwrap();
        w.write_frame(&[1u8; 512], FrameMode::Compress(3)).unwrap();
        w.write_frame(&[2u8; 3000], FrameMode::Stored).unwrap();
        let data_len = w.compressed_len();
        let file = w.finish().unwrap();
        let table = &file[data_len as usize..];
        let footer: [u8; FOOTER_SIZE] = table[table.len() - FOOTER_SIZE..].try_into().unwrap();
        let (n, tlen) = parse_footer(&footer, file.len() as u64).unwrap();
        assert_eq!((n, tlen as usize), (2, table.len()));
        let frames = parse_seek_table(table, data_len, 1 << 20).unwrap();
        assert_eq!(frames[1].decompressed_offset, 512);
        assert_eq!(frames[1].decompressed_size, 3000);
        // Stock zstd decoding skips the table.
        let all = zstd::stream::decode_all(&file[..]).unwrap();
        assert_eq!(all.len(), 3512);
        let mut d = zstd::bulk::Decompressor::new().unwrap();
        let mut buf = Vec::new();
        let f = frames[0];
        decompress_frame(
            &mut d,
            &file[f.compressed_offset as usize..][..f.compressed_size as usize],
            f.decompressed_size,
            &mut buf,
        )
        .unwrap();
        assert_eq!(buf, vec![1u8; 512]);
    }
}
