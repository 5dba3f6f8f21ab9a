//! Full verification of a bundle archive: signature first, then one
//! sequential pass that checks every frame against the seek table and every
//! entry against `bundle.json`.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

use crate::bundle_json::{
    BundleDescriptor, DescriptorError, ExpectedEntry, Seal, BUNDLE_JSON, BUNDLE_SEAL,
    BUNDLE_SEAL_SIG, BUNDLE_SIG, INDEX_JSON, MAX_SEAL_BYTES, OCI_LAYOUT, REF_NAME_ANNOTATION,
};
use crate::digest::{Digest, Hasher};
use crate::limits::Limits;
use crate::reader::{ArchiveReader, Head, ReadError};
use crate::seekable::{self, FrameEntry, FrameSeal};
use crate::signature::{KeyId, PublicKey, Signature, SignatureError};
use crate::signed::SignedBundle;
use crate::tar_entry::{self, HeaderBlock};

/// Why a bundle is refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The archive could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The signature is missing, malformed, unknown or wrong.
    #[error("{path}: {source}")]
    Signature {
        /// The archive.
        path: String,
        /// The error.
        source: SignatureError,
    },
    /// `bundle.json` is not acceptable.
    #[error("{path}: {source}")]
    Descriptor {
        /// The archive.
        path: String,
        /// The error.
        source: DescriptorError,
    },
    /// An entry does not match what `bundle.json` says.
    #[error("{path}: entry {entry}: {reason}")]
    Entry {
        /// The archive.
        path: String,
        /// The entry.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The archive as a whole is inconsistent.
    #[error("{path}: {reason}")]
    Archive {
        /// The archive.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// A bundle whose signature and every entry checked out.
#[derive(Debug)]
pub struct Verified {
    /// The signed description.
    pub descriptor: BundleDescriptor,
    /// Digest of the `bundle.json` bytes (identifies the bundle).
    pub bundle_digest: Digest,
    /// Key that signed it.
    pub signer: KeyId,
    /// Trusted comment of the signature.
    pub trusted_comment: String,
    /// Archive size on disk.
    pub archive_size: u64,
}

/// Checks only the signature of the head. Content is NOT checked: use
/// [`verify_archive`] before trusting any entry, or check each entry's digest
/// as it is read.
pub fn verify_head(
    path: &Path,
    trusted: &[PublicKey],
    limits: Limits,
) -> Result<SignedBundle, VerifyError> {
    let reader = ArchiveReader::open(path, limits)?;
    // The head is in the first part: say so when it is what fails.
    let name = match reader.parts().and_then(|p| p.first()) {
        Some(first) => format!(
            "{} (bundle.json and its signature begin in {})",
            path.display(),
            first.path.display()
        ),
        None => path.display().to_string(),
    };
    let head = reader.read_head()?;
    let signature = Signature::parse(&head.signature).map_err(|source| VerifyError::Signature {
        path: name.clone(),
        source,
    })?;
    if signature.to_minisign_text() != head.signature
        || signature.untrusted_comment != crate::signature::UNTRUSTED_SIGNATURE_COMMENT
    {
        return Err(VerifyError::Entry {
            path: name.clone(),
            entry: BUNDLE_SIG.into(),
            reason: format!(
                "not in canonical form (four lines, each ending in a newline, untrusted comment {:?})",
                crate::signature::UNTRUSTED_SIGNATURE_COMMENT
            ),
        });
    }
    signature
        .verify(&head.bundle_json, trusted)
        .map_err(|source| VerifyError::Signature {
            path: name.clone(),
            source,
        })?;
    let descriptor = BundleDescriptor::from_slice(&head.bundle_json).map_err(|source| {
        VerifyError::Descriptor {
            path: name.clone(),
            source,
        }
    })?;
    let bundle_digest = Digest::of(&head.bundle_json);
    Ok(SignedBundle::from_parts(
        reader,
        head,
        descriptor,
        signature,
        bundle_digest,
    ))
}

/// Verifies the signature against `trusted`, then reads the archive once,
/// checking every frame, entry, digest and size. `progress` receives the
/// number of archive bytes consumed as the pass advances.
pub fn verify_archive(
    path: &Path,
    trusted: &[PublicKey],
    limits: Limits,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Verified, VerifyError> {
    let v = verify_head(path, trusted, limits)?;
    verify_content(&v, trusted, progress)
}

/// The content pass of [`verify_archive`] over a bundle whose head checked
/// out ([`SignedBundle::verify_content`]).
pub(crate) fn verify_content(
    v: &SignedBundle,
    trusted: &[PublicKey],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Verified, VerifyError> {
    let name = v.path().display().to_string();
    tracing::debug!(
        bundle = %v.descriptor.name,
        version = %v.descriptor.version,
        signer = %v.signature.key_id,
        frames = v.reader.frames().len(),
        "signature verified; checking every entry"
    );
    // Split bundles: each part on its own first, naming every damaged one;
    // that pass and the full pass each count for half of the progress.
    let halves = std::sync::atomic::AtomicU64::new(0);
    let split_progress = |n: u64| {
        use std::sync::atomic::Ordering;
        let before = halves.fetch_add(n, Ordering::Relaxed);
        let step = (before + n) / 2 - before / 2;
        if step > 0 {
            progress(step);
        }
    };
    let progress: &(dyn Fn(u64) + Sync) = if v.descriptor.split.is_some() {
        &split_progress
    } else {
        progress
    };
    if let Some(split) = &v.descriptor.split {
        check_parts(&name, &v.reader, &v.head, split, progress)?;
    }
    let mut checker = EntryChecker::new(
        &name,
        &v.descriptor,
        &v.head.bundle_json,
        &v.head.signature,
        &v.reader,
    );
    let frames = sequential_pass(&v.reader, &mut checker, progress)?;
    checker.finish(&frames, &v.signature, trusted)?;
    Ok(Verified {
        bundle_digest: v.bundle_digest,
        signer: v.signature.key_id,
        trusted_comment: v.signature.trusted_comment.clone(),
        archive_size: v.reader.file_len(),
        descriptor: v.descriptor.clone(),
    })
}

/// The body region of a bundle's file: from the first frame after the head
/// to the first of the five frames of the tail (the seal entries and the
/// end of the archive). The head must end on a frame boundary.
pub fn body_region(reader: &ArchiveReader, head: &Head) -> Result<(u64, u64), String> {
    let frames = reader.frames();
    let i = frames.partition_point(|f| f.decompressed_offset < head.next_offset);
    let start = match frames.get(i) {
        Some(f) if f.decompressed_offset == head.next_offset && frames.len() >= i + 5 => {
            f.compressed_offset
        }
        _ => return Err("the head does not end on a frame boundary before the body".into()),
    };
    let end = frames[frames.len() - 5].compressed_offset;
    Ok((start, end))
}

/// Checks the parts of a split bundle against `split`: sizes, then each
/// part's body-region digest. Every damaged or missing part is named.
fn check_parts(
    name: &str,
    reader: &ArchiveReader,
    head: &Head,
    split: &crate::bundle_json::SplitEntry,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(), VerifyError> {
    let fail = |reason: String| VerifyError::Archive {
        path: name.to_string(),
        reason,
    };
    let name_given = reader.path().display().to_string();
    let base =
        std::path::PathBuf::from(crate::parts::part_base(&name_given).unwrap_or(&name_given));
    let label = |i: usize| match reader.parts() {
        Some(_) => crate::parts::part_path(&base, i).display().to_string(),
        None => format!(
            "part {:03} (bytes {} to {})",
            i + 1,
            i as u64 * split.part_size,
            i as u64 * split.part_size + split.parts[i].size
        ),
    };
    let mut bad = Vec::new();
    match reader.parts() {
        Some(found) => {
            for (i, want) in split.parts.iter().enumerate() {
                match found.get(i) {
                    None => bad.push(format!("{}: missing", label(i))),
                    Some(p) if p.len != want.size => bad.push(format!(
                        "{}: {} bytes, bundle.json says {}",
                        label(i),
                        p.len,
                        want.size
                    )),
                    Some(_) => {}
                }
            }
            for p in found.iter().skip(split.parts.len()) {
                bad.push(format!(
                    "{}: not a part of this bundle ({} parts are listed; remove it)",
                    p.path.display(),
                    split.parts.len()
                ));
            }
        }
        None if reader.file_len() != split.total_size() => {
            return Err(fail(format!(
                "{} bytes, but its {} parts join into {} bytes (truncated or extended)",
                reader.file_len(),
                split.parts.len(),
                split.total_size()
            )))
        }
        None => {}
    }
    if !bad.is_empty() {
        return Err(fail(format!(
            "parts do not match bundle.json: {}",
            bad.join("; ")
        )));
    }
    let body = body_region(reader, head).map_err(fail)?;
    let mut start = 0u64;
    for (i, want) in split.parts.iter().enumerate() {
        let got = crate::parts::region_digest(reader.source(), start, want.size, body, progress)
            .map_err(|e| fail(format!("{}: {e}", label(i))))?;
        if got != want.digest {
            bad.push(format!(
                "{}: content damaged (digest {got}, signed {})",
                label(i),
                want.digest
            ));
        }
        start += want.size;
    }
    if !bad.is_empty() {
        return Err(fail(format!(
            "{} of {} parts damaged, copy them again: {}",
            bad.len(),
            split.parts.len(),
            bad.join("; ")
        )));
    }
    Ok(())
}

/// Decompresses every frame in order on a second thread and feeds the bytes
/// to `checker`.
fn sequential_pass(
    reader: &ArchiveReader,
    checker: &mut EntryChecker<'_>,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<FrameSeal, VerifyError> {
    let frames = reader.frames();
    let (full_tx, full_rx) = crossbeam_channel::bounded::<Result<Vec<u8>, ReadError>>(3);
    let (empty_tx, empty_rx) = crossbeam_channel::bounded::<Vec<u8>>(5);
    for _ in 0..5 {
        let _ = empty_tx.send(Vec::new());
    }
    std::thread::scope(|scope| {
        let decompressor =
            scope.spawn(move || decompress_all(reader, frames, full_tx, empty_rx, progress));
        let mut result = Ok(());
        for msg in full_rx.iter() {
            match msg {
                Ok(buf) => {
                    if let Err(e) = checker.feed(&buf) {
                        result = Err(e);
                        break;
                    }
                    let _ = empty_tx.send(buf);
                }
                Err(e) => {
                    result = Err(VerifyError::Read(e));
                    break;
                }
            }
        }
        drop(full_rx);
        drop(empty_tx);
        let seal = decompressor
            .join()
            .expect("decompressor thread does not panic");
        result.map(|_| seal)
    })
}

fn decompress_all(
    reader: &ArchiveReader,
    frames: &[FrameEntry],
    full: crossbeam_channel::Sender<Result<Vec<u8>, ReadError>>,
    empty: crossbeam_channel::Receiver<Vec<u8>>,
    progress: &(dyn Fn(u64) + Sync),
) -> FrameSeal {
    let name = reader.path().display().to_string();
    let max_window = reader.limits().max_frame_size;
    let mut decompressor = match seekable::decompressor(max_window) {
        Ok(d) => d,
        Err(source) => {
            let _ = full.send(Err(ReadError::Io { path: name, source }));
            return FrameSeal::default();
        }
    };
    // Read the file in large sequential chunks holding whole frames.
    const CHUNK: usize = 8 << 20;
    let mut chunk: Vec<u8> = Vec::new();
    let mut chunk_start = 0u64;
    let mut seal = FrameSeal::default();
    for (index, f) in frames.iter().enumerate() {
        let Ok(mut out) = empty.recv() else {
            return FrameSeal::default();
        };
        let end = f.compressed_offset + f.compressed_size as u64;
        if f.compressed_offset < chunk_start || end > chunk_start + chunk.len() as u64 {
            let want = (f.compressed_size as usize).max(CHUNK);
            let avail = reader.file_len().saturating_sub(f.compressed_offset) as usize;
            chunk.resize(want.min(avail), 0);
            chunk_start = f.compressed_offset;
            if let Err(source) = reader.read_raw_at(&mut chunk, chunk_start) {
                let _ = full.send(Err(ReadError::Io { path: name, source }));
                return FrameSeal::default();
            }
        }
        let from = (f.compressed_offset - chunk_start) as usize;
        let src = &chunk[from..from + f.compressed_size as usize];
        if let Err(reason) = seekable::decompress_frame(
            &mut decompressor,
            src,
            f.decompressed_size,
            max_window,
            &mut out,
        ) {
            let _ = full.send(Err(ReadError::Frame {
                path: name,
                index,
                offset: f.compressed_offset,
                reason: format!("{reason}{}", reader.part_note(f.compressed_offset)),
            }));
            return FrameSeal::default();
        }
        seal.add(src);
        progress(f.compressed_size as u64);
        if full.send(Ok(out)).is_err() {
            return FrameSeal::default();
        }
    }
    seal
}

enum State {
    Header { filled: usize },
    Data { remaining: u64, pad: u64 },
    Padding { remaining: u64 },
    End { zeros: u64 },
}

struct Current {
    path: String,
    expected: Option<ExpectedEntry>,
    hasher: Hasher,
    capture: Option<Vec<u8>>,
}

/// A state machine over the decompressed tar stream.
struct EntryChecker<'a> {
    name: String,
    descriptor: &'a BundleDescriptor,
    expected: HashMap<String, ExpectedEntry>,
    seen: HashMap<String, ()>,
    /// Paths in the order the format requires.
    order: Vec<String>,
    index: usize,
    state: State,
    header: [u8; 512],
    current: Option<Current>,
    index_json: Option<Vec<u8>>,
    oci_layout: Option<Vec<u8>>,
    seal: Option<Vec<u8>>,
    seal_sig: Option<Vec<u8>>,
    bundle_digest: Digest,
    frame_table: Vec<FrameEntry>,
    max_layout_file: u64,
    offset: u64,
    mtime: u64,
}

impl<'a> EntryChecker<'a> {
    fn new(
        name: &str,
        descriptor: &'a BundleDescriptor,
        bundle_json: &[u8],
        signature: &str,
        reader: &ArchiveReader,
    ) -> Self {
        let mut expected = HashMap::new();
        let mut order = Vec::new();
        for e in [
            ExpectedEntry {
                path: BUNDLE_JSON.into(),
                digest: Digest::of(bundle_json),
                size: bundle_json.len() as u64,
            },
            ExpectedEntry {
                path: BUNDLE_SIG.into(),
                digest: Digest::of(signature.as_bytes()),
                size: signature.len() as u64,
            },
        ]
        .into_iter()
        .chain(descriptor.expected_entries())
        {
            order.push(e.path.clone());
            expected.insert(e.path.clone(), e);
        }
        order.push(BUNDLE_SEAL.into());
        order.push(BUNDLE_SEAL_SIG.into());
        EntryChecker {
            name: name.to_string(),
            descriptor,
            expected,
            seen: HashMap::new(),
            order,
            index: 0,
            state: State::Header { filled: 0 },
            header: [0u8; 512],
            current: None,
            index_json: None,
            seal: None,
            seal_sig: None,
            bundle_digest: Digest::of(bundle_json),
            frame_table: reader.frames().to_vec(),
            oci_layout: None,
            max_layout_file: reader.limits().max_layout_file,
            offset: 0,
            mtime: descriptor.created_unix(),
        }
    }

    fn entry_err(&self, entry: &str, reason: impl Into<String>) -> VerifyError {
        VerifyError::Entry {
            path: self.name.clone(),
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }

    fn archive_err(&self, reason: impl Into<String>) -> VerifyError {
        VerifyError::Archive {
            path: self.name.clone(),
            reason: reason.into(),
        }
    }

    fn feed(&mut self, mut buf: &[u8]) -> Result<(), VerifyError> {
        while !buf.is_empty() {
            match self.state {
                State::Header { filled } => {
                    let n = (512 - filled).min(buf.len());
                    self.header[filled..filled + n].copy_from_slice(&buf[..n]);
                    buf = &buf[n..];
                    self.offset += n as u64;
                    if filled + n == 512 {
                        self.on_header()?;
                    } else {
                        self.state = State::Header { filled: filled + n };
                    }
                }
                State::Data { remaining, pad } => {
                    let n = (remaining.min(buf.len() as u64)) as usize;
                    let cur = self.current.as_mut().expect("entry in progress");
                    cur.hasher.update(&buf[..n]);
                    if let Some(c) = cur.capture.as_mut() {
                        c.extend_from_slice(&buf[..n]);
                    }
                    buf = &buf[n..];
                    self.offset += n as u64;
                    let left = remaining - n as u64;
                    if left == 0 {
                        self.on_entry_end()?;
                        self.state = if pad > 0 {
                            State::Padding { remaining: pad }
                        } else {
                            State::Header { filled: 0 }
                        };
                    } else {
                        self.state = State::Data {
                            remaining: left,
                            pad,
                        };
                    }
                }
                State::Padding { remaining } => {
                    let n = (remaining.min(buf.len() as u64)) as usize;
                    if buf[..n].iter().any(|&b| b != 0) {
                        return Err(self.archive_err(format!(
                            "non-zero tar padding near offset {}",
                            self.offset
                        )));
                    }
                    buf = &buf[n..];
                    self.offset += n as u64;
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        State::Header { filled: 0 }
                    } else {
                        State::Padding { remaining: left }
                    };
                }
                State::End { zeros } => {
                    if buf.iter().any(|&b| b != 0) {
                        return Err(self.archive_err(format!(
                            "data after the end-of-archive marker near offset {}",
                            self.offset
                        )));
                    }
                    self.offset += buf.len() as u64;
                    self.state = State::End {
                        zeros: zeros + buf.len() as u64,
                    };
                    buf = &[];
                }
            }
        }
        Ok(())
    }

    fn on_header(&mut self) -> Result<(), VerifyError> {
        let block = self.header;
        let (path, size) = match tar_entry::parse_header(&block).map_err(|e| {
            let entry = e
                .entry
                .clone()
                .unwrap_or_else(|| format!("at offset {}", self.offset - 512));
            self.entry_err(&entry, e.reason)
        })? {
            HeaderBlock::End => {
                self.state = State::End { zeros: 512 };
                return Ok(());
            }
            HeaderBlock::Entry { path, size } => (path, size),
        };
        let canonical = crate::writer::entry_header(&path, size, self.mtime).map_err(|e| {
            self.entry_err(
                &path,
                format!("cannot be described by a ustar header ({e})"),
            )
        })?;
        if canonical != block {
            return Err(self.entry_err(
                &path,
                "tar header differs from the canonical header for this entry (mode 0644, owner 0, mtime = bundle creation time, ustar)",
            ));
        }
        let position = self.index;
        self.index += 1;
        match position {
            0 if path != BUNDLE_JSON => {
                return Err(self.entry_err(&path, format!("first entry must be {BUNDLE_JSON}")))
            }
            1 if path != BUNDLE_SIG => {
                return Err(self.entry_err(&path, format!("second entry must be {BUNDLE_SIG}")))
            }
            _ => {}
        }
        if self.seen.insert(path.clone(), ()).is_some() {
            return Err(self.entry_err(&path, "duplicated entry"));
        }
        let is_seal = path == BUNDLE_SEAL || path == BUNDLE_SEAL_SIG;
        let expected = match self.expected.get(&path).cloned() {
            Some(e) => Some(e),
            None if is_seal => None,
            None => return Err(self.entry_err(&path, "extra entry, not listed in bundle.json")),
        };
        let want = self
            .order
            .get(position)
            .map(String::as_str)
            .unwrap_or("nothing");
        if want != path {
            return Err(self.entry_err(
                &path,
                format!("out of canonical order: expected {want} here (missing or misplaced)"),
            ));
        }
        let limit = match &expected {
            Some(e) if size > e.size => {
                return Err(self.entry_err(
                    &path,
                    format!("{size} bytes, larger than the signed size {}", e.size),
                ))
            }
            Some(e) if size < e.size => {
                return Err(self.entry_err(
                    &path,
                    format!("{size} bytes, smaller than the signed size {}", e.size),
                ))
            }
            Some(_) if path == INDEX_JSON || path == OCI_LAYOUT => Some(self.max_layout_file),
            Some(_) => None,
            None => Some(MAX_SEAL_BYTES),
        };
        let Some(padded) = tar_entry::padded(size) else {
            return Err(self.entry_err(&path, format!("{size} bytes, more than any archive holds")));
        };
        let pad = padded - size;
        let capture = match limit {
            Some(max) if size > max => {
                return Err(
                    self.entry_err(&path, format!("{size} bytes, above the {max}-byte limit"))
                )
            }
            Some(_) => Some(Vec::with_capacity(size as usize)),
            None => None,
        };
        self.current = Some(Current {
            path,
            expected,
            hasher: Hasher::new(),
            capture,
        });
        if size == 0 {
            self.on_entry_end()?;
            self.state = State::Header { filled: 0 };
        } else {
            self.state = State::Data {
                remaining: size,
                pad,
            };
        }
        Ok(())
    }

    fn on_entry_end(&mut self) -> Result<(), VerifyError> {
        let cur = self.current.take().expect("entry in progress");
        let Some(expected) = cur.expected else {
            // A seal entry: checked as a whole in `finish`.
            match cur.path.as_str() {
                BUNDLE_SEAL => self.seal = cur.capture,
                _ => self.seal_sig = cur.capture,
            }
            return Ok(());
        };
        let digest = cur.hasher.finish();
        if digest != expected.digest {
            return Err(self.entry_err(
                &cur.path,
                format!(
                    "content altered: digest {digest}, signed {}",
                    expected.digest
                ),
            ));
        }
        match cur.path.as_str() {
            INDEX_JSON => self.index_json = cur.capture,
            OCI_LAYOUT => self.oci_layout = cur.capture,
            _ => {}
        }
        Ok(())
    }

    fn finish(
        self,
        frames: &FrameSeal,
        signature: &Signature,
        trusted: &[PublicKey],
    ) -> Result<(), VerifyError> {
        match self.state {
            State::End { zeros: 1024 } => {}
            State::End { zeros } => {
                return Err(self.archive_err(format!(
                    "end-of-archive marker is {zeros} zero bytes, expected 1024"
                )))
            }
            _ => return Err(self.archive_err("truncated: no end-of-archive marker")),
        }
        let mut missing: Vec<&ExpectedEntry> = self
            .expected
            .values()
            .filter(|e| !self.seen.contains_key(&e.path))
            .collect();
        missing.sort_by(|a, b| a.path.cmp(&b.path));
        if let Some(m) = missing.first() {
            return Err(self.entry_err(
                &m.path,
                format!("missing ({} entries missing in all)", missing.len()),
            ));
        }
        self.check_layout()?;
        self.check_seal(frames, signature, trusted)
    }

    /// The seal must be signed by the bundle's signer, name this bundle, and
    /// match every frame that is not a canonical stored frame.
    fn check_seal(
        &self,
        frames: &FrameSeal,
        signature: &Signature,
        trusted: &[PublicKey],
    ) -> Result<(), VerifyError> {
        let (Some(seal), Some(sig_bytes)) = (&self.seal, &self.seal_sig) else {
            return Err(self.entry_err(BUNDLE_SEAL, "missing: the bundle is not sealed"));
        };
        let sig_text = std::str::from_utf8(sig_bytes)
            .map_err(|_| self.entry_err(BUNDLE_SEAL_SIG, "not UTF-8"))?;
        let sig = Signature::parse(sig_text)
            .map_err(|e| self.entry_err(BUNDLE_SEAL_SIG, e.to_string()))?;
        if sig.to_minisign_text() != sig_text
            || sig.untrusted_comment != crate::signature::UNTRUSTED_SIGNATURE_COMMENT
        {
            return Err(self.entry_err(BUNDLE_SEAL_SIG, "not in canonical form"));
        }
        if sig.key_id != signature.key_id {
            return Err(self.entry_err(
                BUNDLE_SEAL_SIG,
                format!(
                    "signed by key {}, bundle.json by key {}",
                    sig.key_id, signature.key_id
                ),
            ));
        }
        sig.verify(seal, trusted)
            .map_err(|e| self.entry_err(BUNDLE_SEAL_SIG, e.to_string()))?;
        let seal = Seal::from_slice(seal)
            .map_err(|e| self.entry_err(BUNDLE_SEAL, format!("not a seal ({e})")))?;
        if seal.bundle_digest != self.bundle_digest {
            return Err(self.entry_err(BUNDLE_SEAL, "seals a different bundle.json"));
        }
        // The tail is exactly five stored frames: the two seal entries'
        // headers and data, and the end-of-archive blocks.
        let table: Vec<(u32, u32)> = self
            .frame_table
            .iter()
            .map(|f| (f.compressed_size, f.decompressed_size))
            .collect();
        let before = table.len().saturating_sub(5);
        let tail: Vec<u32> = table[before..].iter().map(|t| t.1).collect();
        let expected_tail = [
            512,
            tar_entry::padded(self.seal.as_ref().map_or(0, |s| s.len()) as u64).unwrap_or(0) as u32,
            512,
            tar_entry::padded(sig_bytes.len() as u64).unwrap_or(0) as u32,
            1024,
        ];
        if tail != expected_tail {
            return Err(self.archive_err(format!(
                "the tail after the blobs is framed {tail:?}, expected {expected_tail:?} (seal header and data, signature header and data, end of archive)"
            )));
        }
        if seal.frames != before as u64 {
            return Err(self.archive_err(format!(
                "frame boundaries differ from the seal: {before} frames before the seal, sealed {}",
                seal.frames
            )));
        }
        if seal.frame_table_digest != seekable::frame_table_digest(&table[..before]) {
            return Err(self.archive_err(
                "frame boundaries differ from the seal: frame sizes do not match the sealed frame table",
            ));
        }
        let (count, digest) = frames.result();
        if (seal.compressed_frames, seal.compressed_frames_digest) != (count, digest) {
            return Err(self.archive_err(format!(
                "compressed frames differ from the seal ({count} frames, digest {digest}; sealed {} frames, digest {})",
                seal.compressed_frames, seal.compressed_frames_digest
            )));
        }
        Ok(())
    }

    /// `index.json` must list exactly the images of `bundle.json`.
    fn check_layout(&self) -> Result<(), VerifyError> {
        let layout = self.oci_layout.as_deref().unwrap_or_default();
        let v: serde_json::Value = crate::strict_json::from_slice(layout)
            .map_err(|e| self.entry_err(OCI_LAYOUT, format!("not JSON ({e})")))?;
        if v.get("imageLayoutVersion")
            .and_then(|x| x.as_str())
            .is_none()
        {
            return Err(self.entry_err(OCI_LAYOUT, "no imageLayoutVersion"));
        }
        let index = self.index_json.as_deref().unwrap_or_default();
        let listed = parse_index_refs(index).map_err(|e| self.entry_err(INDEX_JSON, e))?;
        let mut wanted: Vec<(String, Digest, u64, String)> = self
            .descriptor
            .images
            .iter()
            .map(|i| (i.reference.clone(), i.digest, i.size, i.media_type.clone()))
            .collect();
        wanted.sort();
        if listed != wanted {
            return Err(self.entry_err(
                INDEX_JSON,
                "images listed differ from the images in bundle.json",
            ));
        }
        Ok(())
    }
}

/// `(ref name, digest, size, media type)` of each manifest in an OCI index,
/// sorted.
pub fn parse_index_refs(bytes: &[u8]) -> Result<Vec<(String, Digest, u64, String)>, String> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Option<Vec<Desc>>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Desc {
        media_type: String,
        digest: Digest,
        size: u64,
        #[serde(default)]
        annotations: Option<HashMap<String, String>>,
    }
    let index: Index =
        crate::strict_json::from_slice(bytes).map_err(|e| format!("not an OCI index ({e})"))?;
    let mut out = Vec::new();
    for d in index.manifests.unwrap_or_default() {
        let name = d
            .annotations
            .as_ref()
            .and_then(|a| a.get(REF_NAME_ANNOTATION))
            .cloned()
            .ok_or_else(|| format!("manifest {} has no {REF_NAME_ANNOTATION}", d.digest))?;
        out.push((name, d.digest, d.size, d.media_type));
    }
    out.sort();
    Ok(out)
}

/// Reads an entry's data fully into memory after checking its size against
/// `max`; for small signed entries such as manifests.
pub fn read_small_entry(
    reader: &ArchiveReader,
    offset: u64,
    size: u64,
    max: u64,
    what: &str,
) -> Result<Vec<u8>, VerifyError> {
    if size > max {
        return Err(VerifyError::Entry {
            path: reader.path().display().to_string(),
            entry: what.to_string(),
            reason: format!("{size} bytes, above the {max}-byte limit"),
        });
    }
    let mut out = Vec::with_capacity(size as usize);
    reader
        .range(offset, size)?
        .read_to_end(&mut out)
        .map_err(|e| VerifyError::Read(reader.unwrap_io(e)))?;
    Ok(out)
}

impl From<io::Error> for VerifyError {
    fn from(e: io::Error) -> Self {
        VerifyError::Archive {
            path: String::new(),
            reason: e.to_string(),
        }
    }
}
