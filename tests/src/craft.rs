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
