//! A bundle whose signature checked out: the handle every reader of a
//! bundle works through once trust is established.
//!
//! [`SignedBundle::open`] checks the signature over `bundle.json` and
//! nothing else; after that, every blob is read through
//! [`SignedBundle::read_blob`] or [`SignedBundle::open_blob`], which check
//! the entry against the size `bundle.json` signs and its content against
//! the digest, so no caller reads an unchecked byte. The archive's entry
//! index is built once, on first use, and shared by every read.
//! [`SignedBundle::verify_content`] checks the whole archive in one pass
//! (what `verify` does) without opening or checking the signature again.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;
use std::sync::OnceLock;

use crate::bundle_json::{BlobEntry, BundleDescriptor};
use crate::digest::{Digest, Hasher};
use crate::limits::Limits;
use crate::reader::{ArchiveReader, Head, RangeReader};
use crate::signature::{PublicKey, Signature};
use crate::tar_entry::EntryHeader;
use crate::verify::{Verified, VerifyError};

/// An open archive whose head (`bundle.json` and its signature) checked out
/// against a trusted key. Content is checked as it is read.
pub struct SignedBundle {
    /// The open archive.
    pub reader: ArchiveReader,
    /// Raw head entries.
    pub head: Head,
    /// The parsed, validated description.
    pub descriptor: BundleDescriptor,
    /// The signature.
    pub signature: Signature,
    /// Digest of the `bundle.json` bytes (identifies the bundle).
    pub bundle_digest: Digest,
    /// Every entry by its path, built on first use.
    entries: OnceLock<HashMap<String, EntryHeader>>,
}

impl SignedBundle {
    /// Opens the archive at `path` (or its split parts) and checks the
    /// signature of its head against `trusted`. Nothing else is read.
    pub fn open(path: &Path, trusted: &[PublicKey], limits: Limits) -> Result<Self, VerifyError> {
        crate::verify::verify_head(path, trusted, limits)
    }

    /// Assembles the handle from a head [`crate::verify::verify_head`] checked.
    pub(crate) fn from_parts(
        reader: ArchiveReader,
        head: Head,
        descriptor: BundleDescriptor,
        signature: Signature,
        bundle_digest: Digest,
    ) -> Self {
        SignedBundle {
            reader,
            head,
            descriptor,
            signature,
            bundle_digest,
            entries: OnceLock::new(),
        }
    }

    /// The archive's path (its first part, for a split bundle).
    pub fn path(&self) -> &Path {
        self.reader.path()
    }

    /// Checks every frame, entry, digest and size in one sequential pass,
    /// as `verify` does; the signature was checked by [`SignedBundle::open`]
    /// and its key must be among `trusted`.
    pub fn verify_content(
        &self,
        trusted: &[PublicKey],
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<Verified, VerifyError> {
        crate::verify::verify_content(self, trusted, progress)
    }

    /// Every entry of the archive by its path; read from the tar headers the
    /// first time, then shared.
    pub fn entries(&self) -> Result<&HashMap<String, EntryHeader>, VerifyError> {
        if let Some(entries) = self.entries.get() {
            return Ok(entries);
        }
        let built = self.reader.entries_by_path()?;
        Ok(self.entries.get_or_init(|| built))
    }

    /// The entry at `path`, if the archive has one.
    pub fn entry(&self, path: &str) -> Result<Option<&EntryHeader>, VerifyError> {
        Ok(self.entries()?.get(path))
    }

    /// Blob `digest` as `bundle.json` lists it, and its entry in the archive
    /// with the signed size. `what` names the blob in errors ("SBOM",
    /// "manifest").
    pub fn blob_entry(
        &self,
        digest: &Digest,
        what: &str,
    ) -> Result<(&BlobEntry, &EntryHeader), VerifyError> {
        let bad = |reason: String| self.blob_error(digest, what, reason);
        let signed = self
            .descriptor
            .blob(digest)
            .ok_or_else(|| bad("not listed in bundle.json".into()))?;
        let entry = self
            .entries()?
            .get(&digest.blob_path())
            .ok_or_else(|| bad("not in the archive".into()))?;
        if entry.size != signed.size {
            return Err(bad(format!(
                "{} bytes in the archive, {} signed",
                entry.size, signed.size
            )));
        }
        Ok((signed, entry))
    }

    /// Reads blob `digest` into memory: its size must match `bundle.json`
    /// and be at most `max`, and its content must match the digest.
    pub fn read_blob(&self, digest: &Digest, max: u64, what: &str) -> Result<Vec<u8>, VerifyError> {
        let (_, entry) = self.blob_entry(digest, what)?;
        let bytes = crate::verify::read_small_entry(
            &self.reader,
            entry.data_offset,
            entry.size,
            max,
            &entry.path,
        )?;
        if Digest::of(&bytes) != *digest {
            return Err(self.blob_error(digest, what, "content does not match its digest".into()));
        }
        Ok(bytes)
    }

    /// A reader over blob `digest` that streams it from the archive and
    /// fails at its end, with an error naming the blob, when the content
    /// does not match the digest. Its size is checked against `bundle.json`
    /// before the first byte.
    pub fn open_blob(&self, digest: &Digest, what: &str) -> Result<CheckedBlob<'_>, VerifyError> {
        let (_, entry) = self.blob_entry(digest, what)?;
        Ok(CheckedBlob {
            inner: self.reader.range(entry.data_offset, entry.size)?,
            hasher: Hasher::new(),
            expected: *digest,
            size: entry.size,
            name: format!("{}: {what} {}", self.path().display(), digest.blob_path()),
            done: false,
        })
    }

    fn blob_error(&self, digest: &Digest, what: &str, reason: String) -> VerifyError {
        VerifyError::Entry {
            path: self.path().display().to_string(),
            entry: format!("{what} {}", digest.blob_path()),
            reason,
        }
    }
}

/// A blob streamed from a [`SignedBundle`]: its digest is checked when the
/// last byte has been read, and a mismatch is an [`io::ErrorKind::InvalidData`]
/// error from that read, so no caller can finish reading damaged content
/// without noticing.
pub struct CheckedBlob<'a> {
    inner: RangeReader<'a>,
    hasher: Hasher,
    expected: Digest,
    size: u64,
    name: String,
    done: bool,
}

impl CheckedBlob<'_> {
    /// The blob's size as signed.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for CheckedBlob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        if n == 0 || self.hasher.len() == self.size {
            let hasher = std::mem::take(&mut self.hasher);
            if hasher.len() != self.size || hasher.finish() != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: content does not match its digest (the bundle is damaged; verify it)",
                        self.name
                    ),
                ));
            }
            self.done = true;
        }
        Ok(n)
    }
}
