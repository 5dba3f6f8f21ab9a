//! Writes a whole bundle, and owns its layout: the head (`bundle.json` and
//! its signature, reserved and rewritten in place when it is not final when
//! the first byte goes out), the body entries, the tail (the seal, the end
//! of the archive and the seek table) and, for media parts, the part list
//! `bundle.json` records (docs/format.md §15).
//!
//! The steps are types, so they cannot come in another order:
//! [`BundleWriter::start`] writes the head (a [`Head`]), the `append_*`
//! methods the entries, and [`BundleWriter::finish`] computes the sizes of
//! the tail and the parts, rewrites a reserved head, writes the tail and
//! gives the output back as a [`Finished`] bundle. Every size is computed
//! here; the caller gives descriptions and content.

use std::io::{self, BufWriter, Read, Write};

use crate::bundle_json::{
    BundleDescriptor, ExpectedEntry, PartEntry, Seal, SplitEntry, BUNDLE_JSON, BUNDLE_SEAL,
    BUNDLE_SEAL_SIG, BUNDLE_SIG, DELTA_FORMAT_VERSION, MAX_PARTS, MIN_PART_SIZE,
};
use crate::digest::Digest;
use crate::parts::PartHasher;

use super::{entry_size_bound, stored_entry_data, ArchiveWriter, Compression, WriterOptions};

/// The size a reserved [`Head`] gives an entry whose size is not known yet
/// (an SBOM still being generated): the largest there is, so the real size
/// takes no more room in `bundle.json`.
pub const UNKNOWN_SIZE: u64 = u64::MAX;

/// Where a bundle's bytes go: a stream that can also overwrite bytes it
/// already holds (to rewrite a reserved head) and says whether it is cut
/// into media parts.
pub trait BundleOutput: Write {
    /// The size of the media parts the output is cut into
    /// (`FILE.part-001`, …), or `None` for one file.
    fn part_size(&self) -> Option<u64>;

    /// Overwrites `data.len()` bytes already written, from `offset` of the
    /// whole bundle.
    fn patch(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
}

impl BundleOutput for Vec<u8> {
    fn part_size(&self) -> Option<u64> {
        None
    }

    fn patch(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        patch_slice(self, offset, data)
    }
}

/// A bundle kept in memory and cut into parts of `part_size` bytes: for
/// tests and tools that write split bundles without files.
#[derive(Debug, Default)]
pub struct MemoryParts {
    /// The whole bundle (the parts joined).
    pub bytes: Vec<u8>,
    /// Bytes per part.
    pub part_size: u64,
}

impl MemoryParts {
    /// An empty bundle to be cut into parts of `part_size` bytes.
    pub fn new(part_size: u64) -> Self {
        MemoryParts {
            bytes: Vec::new(),
            part_size,
        }
    }

    /// The parts, in order.
    pub fn parts(&self) -> impl Iterator<Item = &[u8]> {
        self.bytes.chunks(self.part_size as usize)
    }
}

impl Write for MemoryParts {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl BundleOutput for MemoryParts {
    fn part_size(&self) -> Option<u64> {
        Some(self.part_size)
    }

    fn patch(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        patch_slice(&mut self.bytes, offset, data)
    }
}

fn patch_slice(bytes: &mut [u8], offset: u64, data: &[u8]) -> io::Result<()> {
    let end = offset
        .checked_add(data.len() as u64)
        .filter(|&e| e <= bytes.len() as u64)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "patch beyond the end"))?;
    bytes[offset as usize..end as usize].copy_from_slice(data);
    Ok(())
}

/// Signs what the bundle's two signatures cover.
pub trait BundleSigner {
    /// The text of the minisign signature file of `bytes`, the content of
    /// the entry `file` ([`BUNDLE_JSON`] or [`BUNDLE_SEAL`]). The same key
    /// must sign both, and signatures of the same file must have one length
    /// whatever the bytes.
    fn sign(&self, file: &str, bytes: &[u8]) -> io::Result<String>;
}

/// The head a bundle starts with.
#[derive(Clone, Debug)]
pub enum Head {
    /// `bundle.json` as it will stay: written as zstd frames and never
    /// rewritten. [`BundleWriter::finish`] must be given the same
    /// description. On an output cut into parts it is reserved instead,
    /// since the part list is known only at the end.
    Final(BundleDescriptor),
    /// Room for the largest description the bundle can end with (entries
    /// not known yet as stand-ins, of [`UNKNOWN_SIZE`] when their size is
    /// not known either): written as stored frames, padded with spaces, and
    /// rewritten in place by [`BundleWriter::finish`] with the real one
    /// (docs/format.md §15.3, §16.2).
    Reserved(BundleDescriptor),
}

/// The part list would be longer than the format allows.
#[derive(Debug, thiserror::Error)]
#[error("the bundle could need up to {needed} parts of {part_size} bytes, more than the {MAX_PARTS} allowed; give a larger size")]
pub struct TooManyParts {
    /// Parts the bundle could need.
    pub needed: u64,
    /// Bytes per part.
    pub part_size: u64,
}

/// A bundle whose head is written and whose entries are being appended;
/// [`BundleWriter::finish`] completes it.
pub struct BundleWriter<W: BundleOutput> {
    archive: ArchiveWriter<Tracked<W>>,
    head: HeadState,
    written: Vec<ExpectedEntry>,
}

/// What the head holds, and for a reserved head where to rewrite it.
enum HeadState {
    Final {
        json: Vec<u8>,
    },
    Reserved {
        /// The stand-in `bundle.json`, at its reserved length.
        json: Vec<u8>,
        signature_len: usize,
        /// File offsets of the stored data frames of the two head entries.
        json_at: u64,
        signature_at: u64,
        /// Parts the reserved part list has room for (split output).
        parts: usize,
    },
}

/// A complete bundle, as [`BundleWriter::finish`] leaves it.
pub struct Finished<W> {
    /// The output, every byte written.
    pub output: W,
    /// The description as written (with its part list when split).
    pub descriptor: BundleDescriptor,
    /// The `bundle.json` bytes as written (padded when it was reserved).
    pub bundle_json: Vec<u8>,
    /// Bytes written.
    pub size: u64,
}

impl<W: BundleOutput> BundleWriter<W> {
    /// Writes the head of a bundle to `out`: `bundle.json` from `head`
    /// (with room for the part list when `out` is cut into parts, which
    /// makes the bundle at least format version 5) and its signature.
    /// Entries follow with the `append_*` methods, in the canonical order
    /// of the description the bundle will end with.
    pub fn start(
        out: W,
        options: WriterOptions,
        head: Head,
        signer: &dyn BundleSigner,
    ) -> io::Result<Self> {
        let part_size = out.part_size();
        let (mut descriptor, reserved) = match head {
            Head::Final(d) => {
                d.validate().map_err(invalid)?;
                (d, false)
            }
            Head::Reserved(d) => (d, true),
        };
        let parts = match part_size {
            Some(size) => reserve_parts(&mut descriptor, size)?,
            None => 0,
        };
        let json = descriptor.to_canonical_bytes().map_err(invalid)?;
        let signature = signer.sign(BUNDLE_JSON, &json)?;
        let tracked = Tracked {
            inner: BufWriter::with_capacity(1 << 20, out),
            parts: part_size.map(PartHasher::new),
            written: 0,
        };
        let mut archive = ArchiveWriter::new(tracked, options)?;
        let head = if reserved || part_size.is_some() {
            archive.append_bytes(BUNDLE_JSON, &json, Compression::Stored)?;
            let json_at = archive.compressed_len() - stored_entry_data(&json).len() as u64;
            archive.append_bytes(BUNDLE_SIG, signature.as_bytes(), Compression::Stored)?;
            let signature_at =
                archive.compressed_len() - stored_entry_data(signature.as_bytes()).len() as u64;
            HeadState::Reserved {
                json,
                signature_len: signature.len(),
                json_at,
                signature_at,
                parts,
            }
        } else {
            archive.append_bytes(BUNDLE_JSON, &json, Compression::Zstd)?;
            archive.append_bytes(BUNDLE_SIG, signature.as_bytes(), Compression::Zstd)?;
            HeadState::Final { json }
        };
        archive.get_mut().body(true);
        Ok(BundleWriter {
            archive,
            head,
            written: Vec::new(),
        })
    }

    /// Appends an entry from memory; returns its digest.
    pub fn append_bytes(
        &mut self,
        path: &str,
        data: &[u8],
        compression: Compression,
    ) -> io::Result<Digest> {
        let digest = self.archive.append_bytes(path, data, compression)?;
        self.record(path, digest, data.len() as u64);
        Ok(digest)
    }

    /// Appends an entry of exactly `size` bytes read from `source`, hashing
    /// while it writes (see [`ArchiveWriter::append_reader`]); returns the
    /// digest, which the caller compares with the one it expects.
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
        let digest = self
            .archive
            .append_reader(path, size, source, compression, progress)?;
        self.record(path, digest, size);
        Ok(digest)
    }

    fn record(&mut self, path: &str, digest: Digest, size: u64) {
        self.written.push(ExpectedEntry {
            path: path.to_string(),
            digest,
            size,
        });
    }

    /// The entries of `descriptor` still to be appended, in order: those
    /// after the ones appended so far, which must be the first entries of
    /// `descriptor` (docs/format.md §4).
    pub fn remaining(&self, descriptor: &BundleDescriptor) -> io::Result<Vec<ExpectedEntry>> {
        let mut expected = descriptor.expected_entries();
        check_order(&self.written, &expected, false)?;
        Ok(expected.split_off(self.written.len()))
    }

    /// Completes the bundle described by `descriptor`, whose entries must
    /// all have been appended in its canonical order: computes the part
    /// list (split output), rewrites a reserved head with `descriptor`
    /// (padded to the reserved length, and signed again), then writes the
    /// seal, the end of the archive and the seek table.
    pub fn finish(
        mut self,
        mut descriptor: BundleDescriptor,
        signer: &dyn BundleSigner,
    ) -> io::Result<Finished<W>> {
        check_order(&self.written, &descriptor.expected_entries(), true)?;
        self.archive.get_mut().body(false);
        let bundle_json = match &self.head {
            HeadState::Final { json } => {
                let now = descriptor.to_canonical_bytes().map_err(invalid)?;
                if &now != json {
                    return Err(invalid(
                        "the description differs from the bundle.json written first",
                    ));
                }
                now
            }
            HeadState::Reserved {
                json,
                signature_len,
                json_at,
                signature_at,
                parts,
            } => {
                if let Some(part_size) = self.archive.get_mut().part_size() {
                    // The whole size is known now: the tail's length does
                    // not depend on the digests it will hold.
                    let total = self.archive.compressed_len() + self.tail_len(json, signer)?;
                    let count = total.div_ceil(part_size);
                    if count > *parts as u64 {
                        return Err(invalid(TooManyParts {
                            needed: count,
                            part_size,
                        }));
                    }
                    let digests = self.archive.get_mut().part_digests(count as usize);
                    descriptor.format_version = descriptor.format_version.max(DELTA_FORMAT_VERSION);
                    descriptor.split = Some(SplitEntry {
                        part_size,
                        parts: digests
                            .into_iter()
                            .enumerate()
                            .map(|(i, digest)| PartEntry {
                                size: part_size.min(total - i as u64 * part_size),
                                digest,
                            })
                            .collect(),
                    });
                }
                descriptor.validate().map_err(invalid)?;
                let mut now = descriptor.to_canonical_bytes().map_err(invalid)?;
                if now.len() > json.len() {
                    return Err(invalid(format!(
                        "bundle.json ({} bytes) outgrew the {} bytes reserved for it",
                        now.len(),
                        json.len()
                    )));
                }
                now.resize(json.len(), b' ');
                let signature = signer.sign(BUNDLE_JSON, &now)?;
                if signature.len() != *signature_len {
                    return Err(invalid("the signature of bundle.json changed length"));
                }
                let (json_at, signature_at) = (*json_at, *signature_at);
                let out = self.archive.get_mut();
                out.patch(json_at, &stored_entry_data(&now))?;
                out.patch(signature_at, &stored_entry_data(signature.as_bytes()))?;
                now
            }
        };
        let expected_size = self.archive.compressed_len() + self.tail_len(&bundle_json, signer)?;
        let (seal, seal_signature) = self.seal(&bundle_json, signer)?;
        self.archive.append_stored(BUNDLE_SEAL, &seal)?;
        self.archive
            .append_stored(BUNDLE_SEAL_SIG, seal_signature.as_bytes())?;
        let tracked = self.archive.finish()?;
        let size = tracked.written;
        let output = tracked.into_inner()?;
        if size != expected_size {
            return Err(invalid(format!(
                "wrote {size} bytes, {expected_size} were expected"
            )));
        }
        Ok(Finished {
            output,
            descriptor,
            bundle_json,
            size,
        })
    }

    /// `bundle.seal` for `bundle_json` and the frames written so far, and
    /// its signature.
    fn seal(&self, bundle_json: &[u8], signer: &dyn BundleSigner) -> io::Result<(Vec<u8>, String)> {
        let frames = self.archive.seal();
        let seal = Seal {
            bundle_digest: Digest::of(bundle_json),
            compressed_frames: frames.compressed_frames,
            compressed_frames_digest: frames.compressed_frames_digest,
            frames: frames.frames,
            frame_table_digest: frames.frame_table_digest,
        };
        let bytes = crate::canonical_json::to_canonical_vec(&seal).map_err(invalid)?;
        let signature = signer.sign(BUNDLE_SEAL, &bytes)?;
        Ok((bytes, signature))
    }

    /// The bytes the tail will take after what is written so far: the five
    /// stored frames of the seal entries and the end of the archive
    /// (docs/format.md §7.4), then the seek table. Its length does not
    /// depend on the digests in the seal, only on `bundle_json`'s length.
    fn tail_len(&self, bundle_json: &[u8], signer: &dyn BundleSigner) -> io::Result<u64> {
        let (seal, signature) = self.seal(bundle_json, signer)?;
        let pad = |n: usize| (n as u64).div_ceil(512) * 512;
        let frames = self.archive.seal().frames + 5;
        Ok(stored_frame_len(512)
            + stored_frame_len(pad(seal.len()))
            + stored_frame_len(512)
            + stored_frame_len(pad(signature.len()))
            + stored_frame_len(1024)
            + seek_table_len(frames))
    }
}

/// Checks that `written` are the first entries of `expected`, or all of
/// them when `whole`.
fn check_order(
    written: &[ExpectedEntry],
    expected: &[ExpectedEntry],
    whole: bool,
) -> io::Result<()> {
    for (i, w) in written.iter().enumerate() {
        match expected.get(i) {
            Some(e) if e == w => {}
            Some(e) => {
                return Err(invalid(format!(
                    "entry {} ({}, {} bytes, {}) is not the one bundle.json puts there ({}, {} bytes, {})",
                    i + 3,
                    w.path,
                    w.size,
                    w.digest,
                    e.path,
                    e.size,
                    e.digest
                )))
            }
            None => {
                return Err(invalid(format!(
                    "entry {} ({}) is not listed in bundle.json",
                    i + 3,
                    w.path
                )))
            }
        }
    }
    if whole && written.len() < expected.len() {
        return Err(invalid(format!(
            "entry {} ({}) was never written",
            written.len() + 3,
            expected[written.len()].path
        )));
    }
    Ok(())
}

/// Bytes of a canonical stored frame of `n` bytes (docs/format.md §2.4).
fn stored_frame_len(n: u64) -> u64 {
    n + 9 + 3 * n.div_ceil(128 << 10).max(1)
}

/// Bytes of the seek table of `frames` frames (docs/format.md §2.3).
fn seek_table_len(frames: u64) -> u64 {
    8 + 8 * frames + 9
}

/// Puts placeholders for as many parts as the bundle could need, each at
/// its largest, into `descriptor`, making it format version 5 at least;
/// returns that count. The real part list is never longer. With an entry of
/// [`UNKNOWN_SIZE`] the bundle could need any number of parts: room is made
/// for the most the format allows.
fn reserve_parts(descriptor: &mut BundleDescriptor, part_size: u64) -> io::Result<usize> {
    if part_size < MIN_PART_SIZE {
        return Err(invalid(format!(
            "parts must be at least {MIN_PART_SIZE} bytes, not {part_size}"
        )));
    }
    descriptor.format_version = descriptor.format_version.max(DELTA_FORMAT_VERSION);
    let placeholders = |parts: usize| SplitEntry {
        part_size,
        parts: vec![
            PartEntry {
                size: part_size,
                digest: Digest::of(&[]),
            };
            parts
        ],
    };
    let entries = descriptor.expected_entries();
    if entries.iter().any(|e| e.size == UNKNOWN_SIZE) {
        descriptor.split = Some(placeholders(MAX_PARTS));
        return Ok(MAX_PARTS);
    }
    let body: u64 = entries
        .iter()
        .map(|e| entry_size_bound(e.size))
        .sum::<u64>()
        + 5 * entry_size_bound(4096)
        + 8 * 1024;
    let mut parts = 1;
    loop {
        descriptor.split = Some(placeholders(parts));
        let json = descriptor.to_canonical_bytes().map_err(invalid)?.len() as u64;
        let bound = body + 2 * entry_size_bound(json) + 2 * entry_size_bound(1024);
        let needed = bound.div_ceil(part_size);
        if needed <= parts as u64 {
            return Ok(parts);
        }
        if needed > MAX_PARTS as u64 {
            return Err(invalid(TooManyParts { needed, part_size }));
        }
        parts = needed as usize;
    }
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// The output as the archive writer sees it: buffered, with the body-region
/// bytes of each part hashed as they pass (docs/format.md §15.2).
struct Tracked<W: BundleOutput> {
    inner: BufWriter<W>,
    parts: Option<PartHasher>,
    /// Bytes written.
    written: u64,
}

impl<W: BundleOutput> Tracked<W> {
    /// The body region starts (`true`) or ends with the next byte.
    fn body(&mut self, starts: bool) {
        if let Some(h) = &mut self.parts {
            if starts {
                h.body_starts();
            } else {
                h.body_ends();
            }
        }
    }

    fn part_size(&self) -> Option<u64> {
        self.inner.get_ref().part_size()
    }

    fn part_digests(&self, count: usize) -> Vec<Digest> {
        self.parts
            .as_ref()
            .map(|h| h.digests(count))
            .unwrap_or_default()
    }

    fn patch(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.inner.flush()?;
        self.inner.get_mut().patch(offset, data)
    }

    fn into_inner(self) -> io::Result<W> {
        self.inner.into_inner().map_err(|e| e.into_error())
    }

    fn hash(&mut self, bufs: &[io::IoSlice<'_>], mut n: usize) {
        self.written += n as u64;
        let Some(h) = &mut self.parts else { return };
        for b in bufs {
            if n == 0 {
                break;
            }
            let take = n.min(b.len());
            h.write(&b[..take]);
            n -= take;
        }
    }
}

impl<W: BundleOutput> Write for Tracked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        if let Some(h) = &mut self.parts {
            h.write(&buf[..n]);
        }
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let n = self.inner.write_vectored(bufs)?;
        self.hash(bufs, n);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle_json::SBOMS_LAST_FORMAT_VERSION;
    use crate::test_bundle::*;
    use crate::Limits;
    use std::path::Path;

    fn verify(path: &Path) -> crate::Verified {
        let keys = [TestSigner::new().public()];
        crate::verify_archive(path, &keys, Limits::default(), &|_| {}).unwrap()
    }

    #[test]
    fn a_whole_bundle_with_its_head_known_verifies() {
        let files = contents();
        let done = write(Vec::new(), &files, None);
        assert_eq!(done.size, done.output.len() as u64);
        assert_eq!(
            done.bundle_json,
            done.descriptor.to_canonical_bytes().unwrap()
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.bundle");
        std::fs::write(&path, &done.output).unwrap();
        let v = verify(&path);
        assert_eq!(v.descriptor, done.descriptor);
        assert_eq!(v.bundle_digest, Digest::of(&done.bundle_json));
        // The head is compressed: bundle.json's data frame is not stored.
        let r = crate::ArchiveReader::open(&path, Limits::default()).unwrap();
        let data = r.frames()[1];
        assert!(data.compressed_size < data.decompressed_size, "{data:?}");
        // The same input gives the same bytes.
        assert_eq!(write(Vec::new(), &files, None).output, done.output);
    }

    #[test]
    fn a_reserved_head_is_rewritten_with_what_came_late() {
        let files = contents();
        let sbom = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}"#;
        let done = write(Vec::new(), &files, Some(sbom));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.bundle");
        std::fs::write(&path, &done.output).unwrap();
        let v = verify(&path);
        assert_eq!(v.descriptor.format_version, SBOMS_LAST_FORMAT_VERSION);
        assert_eq!(v.descriptor.sboms[0].digest, Digest::of(sbom));
        // bundle.json is the canonical description padded with spaces.
        let canonical = done.descriptor.to_canonical_bytes().unwrap();
        assert!(done.bundle_json.len() > canonical.len());
        assert!(done.bundle_json.starts_with(&canonical));
        assert!(done.bundle_json[canonical.len()..]
            .iter()
            .all(|&b| b == b' '));
        assert_eq!(v.bundle_digest, Digest::of(&done.bundle_json));
    }

    /// Writes `out`'s parts as `FILE.part-NNN` in `dir`; returns FILE.
    fn save_parts(dir: &Path, out: &MemoryParts) -> std::path::PathBuf {
        let path = dir.join("b.bundle");
        for (i, p) in out.parts().enumerate() {
            std::fs::write(crate::parts::part_path(&path, i), p).unwrap();
        }
        path
    }

    #[test]
    fn split_bundles_verify_in_place_with_or_without_late_entries() {
        let files = contents();
        let sbom = br#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[]}"#;
        for late in [None, Some(&sbom[..])] {
            let done = write(MemoryParts::new(MIN_PART_SIZE), &files, late);
            let split = done.descriptor.split.clone().unwrap();
            assert_eq!(split.part_size, MIN_PART_SIZE);
            assert_eq!(split.total_size(), done.size);
            let parts: Vec<&[u8]> = done.output.parts().collect();
            assert_eq!(parts.len(), split.parts.len());
            assert!(parts.len() >= 3, "{} parts", parts.len());
            for (p, e) in parts.iter().zip(&split.parts) {
                assert_eq!(p.len() as u64, e.size);
            }
            let dir = tempfile::tempdir().unwrap();
            let path = save_parts(dir.path(), &done.output);
            let v = verify(&path);
            assert_eq!(v.descriptor, done.descriptor);
            let want = if late.is_some() {
                SBOMS_LAST_FORMAT_VERSION
            } else {
                DELTA_FORMAT_VERSION
            };
            assert_eq!(v.descriptor.format_version, want);
            // With an entry of unknown size the head has room for every
            // part the format allows; otherwise for those the sizes need.
            let room = done.bundle_json.len() - done.descriptor.to_canonical_bytes().unwrap().len();
            if late.is_some() {
                assert!(room > 90 * (MAX_PARTS - parts.len()), "{room}");
            } else {
                assert!(room < 200 * parts.len(), "{room}");
            }
            // A damaged part is found.
            let third = crate::parts::part_path(&path, 2);
            let mut bytes = std::fs::read(&third).unwrap();
            bytes[100] ^= 1;
            std::fs::write(&third, &bytes).unwrap();
            let keys = [TestSigner::new().public()];
            assert!(crate::verify_archive(&path, &keys, Limits::default(), &|_| {}).is_err());
            // Reproducible, part for part.
            let again = write(MemoryParts::new(MIN_PART_SIZE), &files, late);
            assert_eq!(again.output.bytes, done.output.bytes);
        }
    }

    #[test]
    fn misuse_is_refused() {
        let files = contents();
        let signer = TestSigner::new();
        let real = describe(&files, None);
        let entries = real.expected_entries();

        // An entry missing at the end.
        let mut w =
            BundleWriter::start(Vec::new(), options(), Head::Final(real.clone()), &signer).unwrap();
        append(&mut w, &entries[..entries.len() - 1], &files, &[]);
        let e = w.finish(real.clone(), &signer).err().unwrap().to_string();
        assert!(e.contains("was never written"), "{e}");

        // Entries out of order.
        let mut w =
            BundleWriter::start(Vec::new(), options(), Head::Final(real.clone()), &signer).unwrap();
        append(&mut w, &entries[1..2], &files, &[]);
        let e = w.remaining(&real).unwrap_err().to_string();
        assert!(e.contains("entry 3 (index.json"), "{e}");

        // A final head finished with another description.
        let mut w =
            BundleWriter::start(Vec::new(), options(), Head::Final(real.clone()), &signer).unwrap();
        append(&mut w, &entries, &files, &[]);
        let mut other = real.clone();
        other.description = "changed".into();
        let e = w.finish(other, &signer).err().unwrap().to_string();
        assert!(
            e.contains("differs from the bundle.json written first"),
            "{e}"
        );

        // A reserved head too small for what comes.
        let mut w =
            BundleWriter::start(Vec::new(), options(), Head::Reserved(real.clone()), &signer)
                .unwrap();
        append(&mut w, &entries, &files, &[]);
        let mut longer = real.clone();
        longer.description = "longer than the room reserved".into();
        let e = w.finish(longer, &signer).err().unwrap().to_string();
        assert!(e.contains("outgrew the"), "{e}");

        // Parts too small, or too many of them.
        let e = BundleWriter::start(
            MemoryParts::new(1000),
            options(),
            Head::Final(real),
            &signer,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("parts must be at least"), "{e}");
        let big: Vec<(Digest, u64)> = (0..5u8)
            .map(|i| (Digest::of(&[i]), 200 * MIN_PART_SIZE))
            .collect();
        let e = BundleWriter::start(
            MemoryParts::new(MIN_PART_SIZE),
            options(),
            Head::Final(describe_sizes(&big, None)),
            &signer,
        )
        .err()
        .unwrap();
        let too_many = e.get_ref().unwrap().downcast_ref::<TooManyParts>().unwrap();
        assert!(too_many.needed > MAX_PARTS as u64);
    }
}
