//! Crafting bundle archives for tamper tests: read a bundle's entries as
//! raw 512-byte headers and data, change them, and write them back as an
//! archive sealed with the test key, exactly as the bundler would, so that
//! only the change under test can be caught. [`resign`] and [`resign_text`]
//! change a signed `bundle.json`, [`write_archive_with`] the seal, its
//! signature and the end of the archive, [`write_sealed_frames`] seals
//! frames made any way, and [`rewrite_frames`] changes the zstd frames of a
//! file.

use std::path::Path;

use airgap_bundle::sign::{seal, SecretKey};
use airgap_format::bundle_json::{
    BundleDescriptor, BUNDLE_JSON, BUNDLE_SEAL, BUNDLE_SEAL_SIG, BUNDLE_SIG,
};
use airgap_format::seekable::{seek_table_bytes, FrameMode, FrameWriter};
use airgap_format::writer::entry_header;
use airgap_format::{ArchiveReader, Limits};

/// The trusted comment the bundler writes for the demo, as the crafted
/// signatures carry it.
pub const COMMENT: &str = "timestamp:1700000000\tfile:bundle.json";

/// One archive entry: its raw tar header and its data.
pub struct Raw {
    /// The 512-byte ustar header.
    pub header: [u8; 512],
    /// The entry's data (without padding: [`write_archive`] pads it with
    /// zeros up to the next 512-byte block).
    pub data: Vec<u8>,
}

impl Raw {
    /// The path in the entry's header.
    pub fn path(&self) -> String {
        String::from_utf8_lossy(&tar::Header::from_byte_slice(&self.header).path_bytes())
            .into_owned()
    }

    /// An entry with the writer's canonical header for `path` and `data`.
    pub fn new(path: &str, data: Vec<u8>, mtime: u64) -> Raw {
        Raw {
            header: entry_header(path, data.len() as u64, mtime).unwrap(),
            data,
        }
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

/// Replaces the head entries with `bundle_json` and its signature by `key`.
pub fn resign_bytes(entries: &mut [Raw], key: &Path, bundle_json: Vec<u8>, mtime: u64) {
    let sig = SecretKey::from_file(key)
        .unwrap()
        .sign(&bundle_json, COMMENT)
        .to_minisign_text();
    entries[0] = Raw::new(BUNDLE_JSON, bundle_json, mtime);
    entries[1] = Raw::new(BUNDLE_SIG, sig.into_bytes(), mtime);
}

/// Re-signs a modified `bundle.json` (written as canonical JSON, whether or
/// not the change is valid), so only the checks after the signature can
/// catch the change. The tar headers keep the bundle's creation time.
pub fn resign(entries: &mut [Raw], key: &Path, edit: impl FnOnce(&mut BundleDescriptor)) {
    let mut d = BundleDescriptor::from_slice(&entries[0].data).unwrap();
    let mtime = d.created_unix();
    edit(&mut d);
    let json = d.to_canonical_bytes().unwrap();
    resign_bytes(entries, key, json, mtime);
}

/// Re-signs `bundle.json` after an edit of its canonical text, for what a
/// [`BundleDescriptor`] cannot hold (duplicate keys, `null`, fractions).
pub fn resign_text(entries: &mut [Raw], key: &Path, edit: impl FnOnce(String) -> String) {
    let d = BundleDescriptor::from_slice(&entries[0].data).unwrap();
    let text = String::from_utf8(d.to_canonical_bytes().unwrap()).unwrap();
    resign_bytes(entries, key, edit(text).into_bytes(), d.created_unix());
}

/// Writes `entries` as a bundle archive and seals it with `key`.
pub fn write_archive(path: &Path, entries: &[Raw], key: &Path, mtime: u64) {
    write_archive_with(path, entries, key, mtime, Tail::default());
}

/// Changes [`write_archive_with`] makes to the end of an archive.
pub struct Tail {
    /// Applied to the seal's bytes before they are signed.
    pub seal: Box<dyn FnOnce(Vec<u8>) -> Vec<u8>>,
    /// Applied to the seal's signature text.
    pub signature: Box<dyn FnOnce(String) -> Vec<u8>>,
    /// Zero bytes that end the archive (the format's 1024).
    pub end_zeros: usize,
}

impl Default for Tail {
    fn default() -> Self {
        Tail {
            seal: Box::new(|s| s),
            signature: Box::new(String::into_bytes),
            end_zeros: 1024,
        }
    }
}

/// [`write_archive`], with the seal, its signature or the end of the
/// archive changed as `tail` says.
pub fn write_archive_with(path: &Path, entries: &[Raw], key: &Path, mtime: u64, tail: Tail) {
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
    let (seal_bytes, _) = seal(&key, &bundle_json, w.seal(), COMMENT).unwrap();
    let seal_bytes = (tail.seal)(seal_bytes);
    let sig = key
        .sign(&seal_bytes, "timestamp:1700000000\tfile:bundle.seal")
        .to_minisign_text();
    let sig = (tail.signature)(sig);
    for (name, data) in [(BUNDLE_SEAL, seal_bytes), (BUNDLE_SEAL_SIG, sig)] {
        w.write_frame(
            &entry_header(name, data.len() as u64, mtime).unwrap(),
            FrameMode::Stored,
        )
        .unwrap();
        let mut d = data;
        d.resize(d.len().div_ceil(512) * 512, 0);
        w.write_frame(&d, FrameMode::Stored).unwrap();
    }
    w.write_frame(&vec![0u8; tail.end_zeros], FrameMode::Stored)
        .unwrap();
    std::fs::write(path, w.finish().unwrap()).unwrap();
}

/// A bundle taken apart for crafting: `bundle.json` as JSON to edit, and
/// every stored blob by digest. [`Crafted::write`] puts it back together as
/// a second writer would: canonical `bundle.json`, entries in the
/// canonical order, signed and sealed with the given key. Nothing is
/// validated, so it writes what the reference bundler never would.
pub struct Crafted {
    /// `bundle.json`, to edit.
    pub json: serde_json::Value,
    /// `oci-layout` and `index.json`.
    pub layout: Vec<(String, Vec<u8>)>,
    /// Stored blobs by digest (`sha256:…`).
    pub blobs: std::collections::BTreeMap<String, Vec<u8>>,
    mtime: u64,
}

impl Crafted {
    /// Takes `bundle` apart.
    pub fn open(bundle: &Path) -> Crafted {
        let (entries, mtime) = read_entries(bundle);
        let mut json = serde_json::Value::Null;
        let mut layout = Vec::new();
        let mut blobs = std::collections::BTreeMap::new();
        for e in entries {
            let path = e.path();
            if path == BUNDLE_JSON {
                json = serde_json::from_slice(&e.data).unwrap();
            } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                blobs.insert(format!("sha256:{hex}"), e.data);
            } else if path != airgap_format::bundle_json::BUNDLE_SIG {
                layout.push((path, e.data));
            }
        }
        Crafted {
            json,
            layout,
            blobs,
            mtime,
        }
    }

    /// The digest of the template named `name`.
    pub fn template_digest(&self, name: &str) -> String {
        self.json["templates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("no template {name}"))["digest"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Replaces the content of blob `digest` everywhere `bundle.json`
    /// names it (digest and size), keeping `blobs` sorted and `totalSize`
    /// right. Returns the new digest.
    pub fn replace_blob(&mut self, digest: &str, bytes: Vec<u8>) -> String {
        use sha2::Digest as _;
        let new = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
        let size = bytes.len() as u64;
        fn walk(v: &mut serde_json::Value, old: &str, new: &str, size: u64) {
            match v {
                serde_json::Value::Object(o) => {
                    if o.get("digest").and_then(|d| d.as_str()) == Some(old) {
                        o.insert("digest".into(), new.into());
                        if o.contains_key("size") {
                            o.insert("size".into(), size.into());
                        }
                    }
                    for x in o.values_mut() {
                        walk(x, old, new, size);
                    }
                }
                serde_json::Value::Array(a) => {
                    for x in a {
                        walk(x, old, new, size);
                    }
                }
                _ => {}
            }
        }
        walk(&mut self.json, digest, &new, size);
        self.blobs.remove(digest).expect("a stored blob");
        self.blobs.insert(new.clone(), bytes);
        let blobs = self.json["blobs"].as_array_mut().unwrap();
        blobs.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
        let total: u64 = blobs.iter().map(|b| b["size"].as_u64().unwrap()).sum();
        self.json["totalSize"] = total.into();
        new
    }

    /// Writes the bundle to `path`, signed and sealed with `key`.
    pub fn write(&self, path: &Path, key: &Path) {
        let secret = SecretKey::from_file(key).unwrap();
        let bundle_json = airgap_format::canonical_json::to_canonical_vec(&self.json).unwrap();
        let comment = format!("timestamp:{}\tfile:bundle.json\tcrafted", self.mtime);
        let sig = secret.sign(&bundle_json, &comment).to_minisign_text();
        let entry = |path: &str, data: Vec<u8>| Raw {
            header: entry_header(path, data.len() as u64, self.mtime).unwrap(),
            data,
        };
        let mut entries = vec![
            entry(BUNDLE_JSON, bundle_json),
            entry(airgap_format::bundle_json::BUNDLE_SIG, sig.into_bytes()),
        ];
        for (p, data) in &self.layout {
            entries.push(entry(p, data.clone()));
        }
        // The canonical order: by digest, SBOM blobs last in version 6.
        let sbom_types = [
            airgap_format::bundle_json::CYCLONEDX_MEDIA_TYPE,
            airgap_format::bundle_json::SPDX_MEDIA_TYPE,
        ];
        let last = |digest: &str| {
            self.json["formatVersion"] == 6
                && self.json["blobs"].as_array().unwrap().iter().any(|b| {
                    b["digest"] == digest
                        && sbom_types.contains(&b["mediaType"].as_str().unwrap_or(""))
                })
        };
        let mut order: Vec<&String> = self.blobs.keys().collect();
        order.sort_by_key(|d| (last(d), d.to_string()));
        for d in order {
            let path = format!("blobs/sha256/{}", d.trim_start_matches("sha256:"));
            entries.push(entry(&path, self.blobs[d].clone()));
        }
        write_archive(path, &entries, key, self.mtime);
    }
}

/// Writes `frames` (each its bytes and decompressed size, whatever made
/// them) and then a seal over them, as the bundler would: the seal's two
/// entries and the end of the archive as canonical stored frames, then the
/// seek table. `bundle_json` is the `bundle.json` the frames hold.
pub fn write_sealed_frames(
    path: &Path,
    frames: &[(Vec<u8>, u32)],
    bundle_json: &[u8],
    key: &Path,
    mtime: u64,
) {
    use airgap_format::seekable::{frame_table_digest, stored_frame, FrameSeal, SealState};
    let mut seal_state = FrameSeal::default();
    let mut table = Vec::new();
    let mut file = Vec::new();
    for (bytes, size) in frames {
        seal_state.add(bytes);
        table.push((bytes.len() as u32, *size));
        file.extend_from_slice(bytes);
    }
    let (compressed_frames, compressed_frames_digest) = seal_state.result();
    let state = SealState {
        compressed_frames,
        compressed_frames_digest,
        frames: table.len() as u64,
        frame_table_digest: frame_table_digest(&table),
    };
    let key = SecretKey::from_file(key).unwrap();
    let (seal_bytes, sig) = seal(&key, bundle_json, state, COMMENT).unwrap();
    let mut tail: Vec<Vec<u8>> = Vec::new();
    for (name, data) in [
        (BUNDLE_SEAL, seal_bytes),
        (BUNDLE_SEAL_SIG, sig.into_bytes()),
    ] {
        tail.push(
            entry_header(name, data.len() as u64, mtime)
                .unwrap()
                .to_vec(),
        );
        let mut d = data;
        d.resize(d.len().div_ceil(512) * 512, 0);
        tail.push(d);
    }
    tail.push(vec![0u8; 1024]);
    for content in tail {
        let mut f = Vec::new();
        stored_frame(&content, &mut f);
        table.push((f.len() as u32, content.len() as u32));
        file.extend_from_slice(&f);
    }
    file.extend_from_slice(&seek_table_bytes(&table));
    std::fs::write(path, file).unwrap();
}

/// Writes `out` from the frames of `bundle`, each passed through `edit`
/// with its number, its bytes and its decompressed size; `edit` returns
/// the frames to write in its place (bytes and decompressed size). The seek
/// table is written for the new frames; nothing is re-sealed.
pub fn rewrite_frames(
    bundle: &Path,
    out: &Path,
    mut edit: impl FnMut(usize, &[u8], u32) -> Vec<(Vec<u8>, u32)>,
) {
    let r = ArchiveReader::open(bundle, Limits::default()).unwrap();
    let bytes = std::fs::read(bundle).unwrap();
    let mut file = Vec::new();
    let mut table = Vec::new();
    for (i, f) in r.frames().iter().enumerate() {
        let src = &bytes[f.compressed_offset as usize..][..f.compressed_size as usize];
        for (frame, size) in edit(i, src, f.decompressed_size) {
            table.push((frame.len() as u32, size));
            file.extend_from_slice(&frame);
        }
    }
    file.extend_from_slice(&seek_table_bytes(&table));
    std::fs::write(out, file).unwrap();
}
