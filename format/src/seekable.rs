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

/// What a zstd frame header declares (RFC 8878 §3.1.1.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The Frame_Header_Descriptor byte.
    pub descriptor: u8,
    /// Window_Size: from the Window_Descriptor, or the content size for a
    /// single-segment frame.
    pub window_size: u64,
    /// Frame_Content_Size, when the header records it.
    pub content_size: Option<u64>,
    /// Dictionary_ID, when the header has the field (even when it is 0).
    pub dictionary_id: Option<u32>,
    /// Content_Checksum_flag.
    pub checksum: bool,
    /// Bytes of the header: magic, descriptor, Window_Descriptor,
    /// Dictionary_ID and Frame_Content_Size; the first block follows.
    pub header_len: usize,
}

/// Reads the header of the zstd frame at the start of `src`.
pub fn parse_frame_header(src: &[u8]) -> Result<FrameHeader, String> {
    if src.len() < 4 || u32::from_le_bytes(src[0..4].try_into().expect("4 bytes")) != ZSTD_MAGIC {
        return Err("not a zstd frame".into());
    }
    let truncated = || "corrupt frame (frame header is truncated)".to_string();
    let descriptor = *src.get(4).ok_or_else(truncated)?;
    // Bit 4 is unused: decoders ignore it, so a set bit would let altered
    // bytes decode to the same content. Bit 3 is reserved.
    if descriptor & 0x10 != 0 {
        return Err("frame header has its unused bit set".into());
    }
    if descriptor & 0x08 != 0 {
        return Err("frame header has its reserved bit set".into());
    }
    let fcs_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    let mut pos = 5;
    let mut window_size = 0u64;
    if !single_segment {
        let wd = *src.get(pos).ok_or_else(truncated)?;
        let log = 10 + (wd >> 3) as u32;
        let base = 1u64 << log;
        window_size = base + (base / 8) * (wd & 7) as u64;
        pos += 1;
    }
    let field = |pos: usize, len: usize| -> Result<u64, String> {
        let b = src.get(pos..pos + len).ok_or_else(truncated)?;
        Ok(b.iter().rev().fold(0u64, |v, &x| (v << 8) | x as u64))
    };
    let did_len = [0, 1, 2, 4][(descriptor & 3) as usize];
    let dictionary_id = match did_len {
        0 => None,
        n => Some(field(pos, n)? as u32),
    };
    pos += did_len;
    let fcs_len = match fcs_flag {
        0 if single_segment => 1,
        0 => 0,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let content_size = match fcs_len {
        0 => None,
        2 => Some(field(pos, 2)? + 256),
        n => Some(field(pos, n)?),
    };
    pos += fcs_len;
    if single_segment {
        window_size = content_size.unwrap_or(0);
    }
    Ok(FrameHeader {
        descriptor,
        window_size,
        content_size,
        dictionary_id,
        checksum: descriptor & 0x04 != 0,
        header_len: pos,
    })
}

/// A zstd decompression context for [`decompress_frame`]. Its window log
/// limit is set from `max_window` too, although libzstd applies that limit
/// only when it streams: for one frame decoded into a buffer, as here, it
/// refuses only windows above 2^31, so [`decompress_frame`] checks the
/// window the frame header declares itself.
pub fn decompressor(max_window: u32) -> io::Result<zstd_safe::DCtx<'static>> {
    let mut dctx = zstd_safe::DCtx::try_create()
        .ok_or_else(|| io::Error::other("cannot allocate a zstd decompression context"))?;
    // The smallest window log whose window holds max_window, within what
    // libzstd allows (10 to 31).
    let log = (32 - max_window.saturating_sub(1).leading_zeros()).clamp(10, 31);
    dctx.set_parameter(zstd_safe::DParameter::WindowLogMax(log))
        .map_err(|c| io::Error::other(zstd_safe::get_error_name(c)))?;
    Ok(dctx)
}

/// Decompresses one frame, checking that `src` is exactly one zstd frame
/// whose content is `expected_len` bytes (its seek-table entry), that needs
/// no dictionary and no window larger than `max_window` bytes. The output
/// is bounded by `expected_len`: a frame that would decode to more stops
/// there. `dst` is cleared and filled.
pub fn decompress_frame(
    dctx: &mut zstd_safe::DCtx<'_>,
    src: &[u8],
    expected_len: u32,
    max_window: u32,
    dst: &mut Vec<u8>,
) -> Result<(), String> {
    let header = parse_frame_header(src)?;
    if let Some(id) = header.dictionary_id {
        return Err(format!(
            "frame header names a dictionary (Dictionary_ID {id}); bundle frames use none"
        ));
    }
    if header.window_size > max_window as u64 {
        return Err(format!(
            "frame needs a {}-byte window, above the {max_window}-byte limit",
            header.window_size
        ));
    }
    if let Some(n) = header.content_size.filter(|&n| n != expected_len as u64) {
        return Err(format!(
            "frame header says it decompresses to {n} bytes, seek table says {expected_len}"
        ));
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
    // Exactly the seek table's size: libzstd stops before it writes more.
    dst.resize(expected_len as usize, 0);
    let too_small =
        (zstd_safe::zstd_sys::ZSTD_ErrorCode::ZSTD_error_dstSize_tooSmall as usize).wrapping_neg();
    match dctx.decompress(&mut dst[..], src) {
        Ok(n) if n == expected_len as usize => Ok(()),
        Ok(n) => Err(format!(
            "frame decompresses to {n} bytes, seek table says {expected_len}"
        )),
        Err(code) if code == too_small => Err(format!(
            "frame decompresses to more than {expected_len} bytes, seek table says {expected_len}"
        )),
        Err(code) => Err(format!(
            "corrupt frame ({})",
            zstd_safe::get_error_name(code)
        )),
    }
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
        let mut d = decompressor(8 << 20).unwrap();
        let mut buf = Vec::new();
        let f = frames[0];
        decompress_frame(
            &mut d,
            &file[f.compressed_offset as usize..][..f.compressed_size as usize],
            f.decompressed_size,
            8 << 20,
            &mut buf,
        )
        .unwrap();
        assert_eq!(buf, vec![1u8; 512]);
    }

    /// `frame` (a libzstd frame) with its header replaced by one of the
    /// given descriptor, window descriptor, Dictionary_ID and content size
    /// bytes; the blocks stay as they are.
    fn reframe(frame: &[u8], fhd: u8, wd: Option<u8>, did: &[u8], fcs: &[u8]) -> Vec<u8> {
        let old_len = parse_frame_header(frame).unwrap().header_len;
        let mut out = frame[..4].to_vec();
        out.push(fhd);
        out.extend(wd);
        out.extend_from_slice(did);
        out.extend_from_slice(fcs);
        out.extend_from_slice(&frame[old_len..]);
        out
    }

    fn decode(frame: &[u8], expected: u32) -> Result<Vec<u8>, String> {
        let mut d = decompressor(8 << 20).unwrap();
        let mut out = vec![7u8; 3 << 20];
        decompress_frame(&mut d, frame, expected, 8 << 20, &mut out).map(|_| out)
    }

    #[test]
    fn frame_headers_are_read_as_rfc_8878_says() {
        let data = vec![b'x'; 512];
        let frame = zstd::bulk::compress(&data, 3).unwrap();
        let h = parse_frame_header(&frame).unwrap();
        assert_eq!(h.descriptor, 0x60);
        assert_eq!((h.content_size, h.window_size), (Some(512), 512));
        assert_eq!(
            (h.dictionary_id, h.checksum, h.header_len),
            (None, false, 7)
        );
        let mut stored = Vec::new();
        stored_frame(&data, &mut stored);
        let h = parse_frame_header(&stored).unwrap();
        assert_eq!((h.descriptor, h.content_size), (0xA0, Some(512)));
        // A window descriptor: exponent 13, mantissa 4: 8 MiB + 4 MiB.
        let f = reframe(&frame, 0x00, Some((13 << 3) | 4), &[], &[]);
        let h = parse_frame_header(&f).unwrap();
        assert_eq!((h.window_size, h.content_size), (12 << 20, None));
        // Two-byte content size: the value plus 256; a 2-byte Dictionary_ID.
        let f = reframe(&frame, 0x42, Some(0), &[1, 2], &[0, 1]);
        let h = parse_frame_header(&f).unwrap();
        assert_eq!((h.content_size, h.dictionary_id), (Some(512), Some(0x0201)));
        assert_eq!(h.header_len, 4 + 1 + 1 + 2 + 2);
        assert_eq!(
            parse_frame_header(&frame[..5]).unwrap_err(),
            "corrupt frame (frame header is truncated)"
        );
    }

    #[test]
    fn decoding_stops_at_the_seek_table_size() {
        // 1 MiB of zeros whose frame records no content size (a window
        // descriptor of 1 MiB instead), listed as 512 bytes: libzstd stops
        // at 512 bytes of output instead of decoding the rest.
        let zeros = vec![0u8; 1 << 20];
        let big = zstd::bulk::compress(&zeros, 3).unwrap();
        let bomb = reframe(&big, 0x00, Some(10 << 3), &[], &[]);
        assert_eq!(
            decode(&bomb, 512).unwrap_err(),
            "frame decompresses to more than 512 bytes, seek table says 512"
        );
        assert_eq!(decode(&bomb, 1 << 20).unwrap(), zeros);
        // With the content size in the header, nothing is decoded at all.
        assert_eq!(
            decode(&big, 512).unwrap_err(),
            "frame header says it decompresses to 1048576 bytes, seek table says 512"
        );
        // Fewer bytes than listed.
        let small = reframe(
            &zstd::bulk::compress(&[1u8; 600], 3).unwrap(),
            0x00,
            Some(0),
            &[],
            &[],
        );
        assert_eq!(
            decode(&small, 1000).unwrap_err(),
            "frame decompresses to 600 bytes, seek table says 1000"
        );
        assert_eq!(decode(&small, 600).unwrap(), vec![1u8; 600]);
    }

    #[test]
    fn windows_above_the_frame_size_limit_are_refused() {
        let data = vec![b'y'; 4096];
        let frame = zstd::bulk::compress(&data, 3).unwrap();
        // 8 MiB (window log 23): the limit itself is accepted.
        let at_limit = reframe(&frame, 0x00, Some(13 << 3), &[], &[]);
        assert_eq!(decode(&at_limit, 4096).unwrap(), data);
        // 8 MiB + 1 MiB, and 2 GiB (window log 31).
        for (wd, size) in [((13 << 3) | 1, 9u64 << 20), (21 << 3, 1 << 31)] {
            let f = reframe(&frame, 0x00, Some(wd), &[], &[]);
            assert_eq!(
                decode(&f, 4096).unwrap_err(),
                format!("frame needs a {size}-byte window, above the 8388608-byte limit")
            );
        }
        // A single-segment frame's window is its content size.
        let mut big = Vec::new();
        stored_frame(&vec![0u8; (8 << 20) + 1], &mut big);
        let e = decode(&big, (8 << 20) + 1).unwrap_err();
        assert!(e.contains("8388609-byte window"), "{e}");
    }

    #[test]
    fn frames_that_need_a_dictionary_are_refused() {
        let data = vec![b'z'; 512];
        let frame = zstd::bulk::compress(&data, 3).unwrap();
        for (flag, did) in [(1u8, &[7u8][..]), (2, &[7, 0][..]), (3, &[1, 2, 3, 4][..])] {
            let f = reframe(&frame, 0x60 | flag, None, did, &[0, 1]);
            let e = decode(&f, 512).unwrap_err();
            assert!(
                e.starts_with("frame header names a dictionary (Dictionary_ID")
                    && e.ends_with("bundle frames use none"),
                "{e}"
            );
        }
        // Even a Dictionary_ID field of 0 (which needs no dictionary).
        let f = reframe(&frame, 0x61, None, &[0], &[0, 1]);
        assert!(decode(&f, 512).unwrap_err().contains("Dictionary_ID 0"));
        // libzstd alone would say only "Dictionary mismatch".
        assert!(zstd::bulk::decompress(&reframe(&frame, 0x61, None, &[7], &[0, 1]), 1024).is_err());
    }

    #[test]
    fn header_bits_and_sizes_are_checked() {
        let data = vec![b'w'; 512];
        let frame = zstd::bulk::compress(&data, 3).unwrap();
        for (fhd, want) in [
            (0x70, "frame header has its unused bit set"),
            (0x68, "frame header has its reserved bit set"),
        ] {
            let mut f = frame.clone();
            f[4] = fhd;
            assert_eq!(decode(&f, 512).unwrap_err(), want);
        }
        let mut skippable = SKIPPABLE_MAGIC.to_le_bytes().to_vec();
        skippable.extend_from_slice(&[0; 4]);
        assert_eq!(decode(&skippable, 512).unwrap_err(), "not a zstd frame");
        // Two frames where the seek table lists one.
        let mut two = frame.clone();
        two.extend_from_slice(&frame);
        assert_eq!(
            decode(&two, 512).unwrap_err(),
            format!(
                "frame is {} bytes, seek table says {}",
                frame.len(),
                two.len()
            )
        );
        // An empty frame (what the seek table cannot describe) listed as 1 byte.
        let mut empty = Vec::new();
        stored_frame(&[], &mut empty);
        assert_eq!(
            decode(&empty, 1).unwrap_err(),
            "frame header says it decompresses to 0 bytes, seek table says 1"
        );
        // Block type 3 is reserved.
        let mut corrupt = frame.clone();
        corrupt[7] |= 0x06;
        assert!(decode(&corrupt, 512)
            .unwrap_err()
            .starts_with("corrupt frame ("));
    }

    #[test]
    fn seek_table_fields_are_checked() {
        let table = seek_table_bytes(&[(5, 5)]);
        let mut magic = table.clone();
        magic[0] = 0x50;
        let e = parse_seek_table(&magic, 5, 8 << 20)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "seek table: skippable frame magic is 0x184d2a50");
        let mut size = table.clone();
        size[4] += 8;
        let e = parse_seek_table(&size, 5, 8 << 20).unwrap_err().to_string();
        assert_eq!(
            e,
            "seek table: frame size field 25 does not match the table's 17 bytes"
        );
        let e = parse_seek_table(&table, 6, 8 << 20)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "seek table: frames cover 5 bytes but 6 bytes precede the table"
        );
        let footer: [u8; FOOTER_SIZE] = table[table.len() - FOOTER_SIZE..].try_into().unwrap();
        assert!(matches!(parse_footer(&footer, 100), Ok((1, 25))));
        let mut bad = footer;
        bad[4] = 0x01;
        assert_eq!(
            parse_footer(&bad, 100).unwrap_err().to_string(),
            "seek table: descriptor is 0x01, this format writes 0 (no checksums)"
        );
        bad = footer;
        bad[8] ^= 1;
        assert!(matches!(
            parse_footer(&bad, 100),
            Err(SeekTableError::NoMagic)
        ));
        assert_eq!(
            parse_footer(&footer, 24).unwrap_err().to_string(),
            "seek table: 1 frames do not fit in a 24-byte file"
        );
    }

    #[test]
    fn empty_and_oversized_seek_table_entries_are_refused() {
        for (entry, want) in [
            ((0u32, 5u32), "frame 1 is empty"),
            ((5, 0), "frame 1 is empty"),
            (
                (5, (8 << 20) + 1),
                "frame 1 decompresses to 8388609 bytes, above the 8388608-byte limit",
            ),
        ] {
            let table = seek_table_bytes(&[(5, 5), entry]);
            let e = parse_seek_table(&table, 10, 8 << 20)
                .unwrap_err()
                .to_string();
            assert!(e.ends_with(want), "{e}");
        }
    }
}
