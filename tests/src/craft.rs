//! Crafting bundle archives for tamper tests: read a bundle's entries as
//! raw 512-byte headers and data, change them, and write them back as an
//! archive sealed with the test key, exactly as the bundler would, so that
//! only the change under test can be caught.

use std::path::Path;

use airgap_bundle::sign::{seal, SecretKey};
use airgap_format::bundle_json::{BUNDLE_JSON, BUNDLE_SEAL, BUNDLE_SEAL_SIG};
use airgap_format::seekable::{FrameMode, FrameWriter};
use airgap_format::writer::entry_header;
use airgap_format::{ArchiveReader, Limits};

/// One archive entry: its raw tar header and its data.
pub struct Raw {
    /// The 512-byte ustar header.
    pub header: [u8; 512],
    /// The entry's data (without padding).
    pub data: Vec<u8>,
}

impl Raw {
    /// The path in the entry's header.
    pub fn path(&self) -> String {
        String::from_utf8_lossy(&tar::Header::from_byte_slice(&self.header).path_bytes())
            .into_owned()
    }
}

/// Every entry of `bundle` but the seal, and the bundle's creation time.
pub fn read_entries(bundle: &Path) -> (Vec<Raw>, u64) {
    let r = ArchiveReader::open(bundle, Limits::default()).unwrap();
    let (_, d) = r.read_descriptor_unverified().unwrap();
    let entries = r
        .entries()
        .unwrap()
        .into_iter()
        .filter(|e| e.path != BUNDLE_SEAL && e.path != BUNDLE_SEAL_SIG)
        .map(|e| Raw {
            header: r.read_at(e.header_offset, 512).unwrap().try_into().unwrap(),
            data: r.read_at(e.data_offset, e.size as usize).unwrap(),
        })
        .collect();
    (entries, d.created_unix())
}

/// Writes `entries` as a bundle archive and seals it with `key`.
pub fn write_archive(path: &Path, entries: &[Raw], key: &Path, mtime: u64) {
    let mut w = FrameWriter::new(Vec::new(), 3).unwrap();
    for e in entries {
        w.write_frame(&e.header, FrameMode::Compress(3)).unwrap();
        if !e.data.is_empty() {
            let mut d = e.data.clone();
            d.resize(d.len().div_ceil(512) * 512, 0);
            w.write_frame(&d, FrameMode::Compress(3)).unwrap();
        }
    }
    let bundle_json = entries
        .iter()
        .find(|e| e.path() == BUNDLE_JSON)
        .map(|e| e.data.clone())
        .unwrap_or_default();
    let key = SecretKey::from_file(key).unwrap();
    let (seal, sig) = seal(
        &key,
        &bundle_json,
        w.seal(),
        "timestamp:1700000000\tfile:bundle.json",
    )
    .unwrap();
    for (name, data) in [(BUNDLE_SEAL, seal), (BUNDLE_SEAL_SIG, sig.into_bytes())] {
        w.write_frame(
            &entry_header(name, data.len() as u64, mtime).unwrap(),
            FrameMode::Stored,
        )
        .unwrap();
        let mut d = data;
        d.resize(d.len().div_ceil(512) * 512, 0);
        w.write_frame(&d, FrameMode::Stored).unwrap();
    }
    w.write_frame(&[0u8; 1024], FrameMode::Stored).unwrap();
    std::fs::write(path, w.finish().unwrap()).unwrap();
}
