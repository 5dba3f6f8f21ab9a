//! Tampered bundles: every flipped byte, every truncation and every crafted
//! archive is refused by `verify` with one clear line, never a panic.

use airgap_e2e::craft::{read_entries, write_archive, Raw};
use std::path::{Path, PathBuf};
use std::process::Command;

use airgap_bundle::sign::SecretKey;
use airgap_e2e::harness::*;
use airgap_format::bundle_json::{BundleDescriptor, BUNDLE_JSON, BUNDLE_SIG};
use airgap_format::seekable::{FrameMode, FrameWriter};
use airgap_format::writer::entry_header;
use airgap_format::{ArchiveReader, Limits};
use rand::{Rng, SeedableRng};

#[test]
fn every_flipped_byte_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let original = std::fs::read(&bundle).unwrap();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x5eed);
    let bad = tmp.path().join("bad.bundle");
    let mut offsets: Vec<usize> = (0..200).map(|_| rng.gen_range(0..original.len())).collect();
    // Always include the edges: first byte, seek table, footer.
    offsets.extend([
        0,
        4,
        original.len() - 1,
        original.len() - 9,
        original.len() - 20,
    ]);
    for off in offsets {
        let mut bytes = original.clone();
        bytes[off] ^= rng.gen_range(1..=255u8);
        std::fs::write(&bad, &bytes).unwrap();
        let line = fails(&mut verify_cmd(&bad, &public));
        assert!(line.contains("bad.bundle"), "offset {off}: {line}");
    }
}

#[test]
fn every_truncation_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let original = std::fs::read(&bundle).unwrap();
    let mut rng = rand::rngs::SmallRng::seed_from_u64(0x7a11);
    let bad = tmp.path().join("short.bundle");
    let mut lengths: Vec<usize> = (0..50).map(|_| rng.gen_range(0..original.len())).collect();
    lengths.extend([0, 1, original.len() - 1]);
    for len in lengths {
        std::fs::write(&bad, &original[..len]).unwrap();
        fails(&mut verify_cmd(&bad, &public));
    }
}

#[test]
fn unknown_key_and_no_key_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, _) = demo_bundle(tmp.path());
    let (_, other) = keygen(tmp.path(), "other");
    let line = fails(&mut verify_cmd(&bundle, &other));
    assert!(line.contains("unknown key"), "{line}");
    let mut c = Command::new(bin("airgap-install"));
    c.arg("verify")
        .arg(&bundle)
        .env("AIRGAP_INSTALL_CONFIG_DIR", tmp.path().join("none"));
    let line = fails(&mut c);
    assert!(line.contains("no trusted keys"), "{line}");
}

#[test]
fn trusted_keys_folder_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let cfg = tmp.path().join("cfg");
    std::fs::create_dir_all(cfg.join("trusted-keys")).unwrap();
    std::fs::copy(&public, cfg.join("trusted-keys/vendor.pub")).unwrap();
    ok(Command::new(bin("airgap-install"))
        .arg("--config-dir")
        .arg(&cfg)
        .arg("verify")
        .arg(&bundle));
}

fn header_with(
    path: &str,
    size: u64,
    mtime: u64,
    kind: tar::EntryType,
    link: Option<&str>,
) -> [u8; 512] {
    let mut h = tar::Header::new_ustar();
    // Write the name field directly: tar's set_path refuses '..' and absolute paths.
    let name = path.as_bytes();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(kind);
    if let Some(l) = link {
        h.set_link_name(l).unwrap();
    }
    h.set_cksum();
    *h.as_bytes()
}

/// Re-signs a modified bundle.json so only the entry checks can catch the change.
fn resign(entries: &mut [Raw], key: &Path, edit: impl FnOnce(&mut BundleDescriptor)) {
    let mut d = BundleDescriptor::from_slice(&entries[0].data).unwrap();
    edit(&mut d);
    let json = d.to_canonical_bytes().unwrap();
    let sig = SecretKey::from_file(key)
        .unwrap()
        .sign(&json, "timestamp:1700000000\tfile:bundle.json")
        .to_minisign_text();
    entries[0] = Raw {
        header: entry_header(BUNDLE_JSON, json.len() as u64, d.created_unix()).unwrap(),
        data: json,
    };
    entries[1] = Raw {
        header: entry_header(BUNDLE_SIG, sig.len() as u64, d.created_unix()).unwrap(),
        data: sig.into_bytes(),
    };
}

struct Crafted {
    tmp: tempfile::TempDir,
    bundle: PathBuf,
    key: PathBuf,
    public: PathBuf,
}

impl Crafted {
    fn new() -> Crafted {
        let tmp = tempfile::tempdir().unwrap();
        let (bundle, key, public) = demo_bundle(tmp.path());
        Crafted {
            tmp,
            bundle,
            key,
            public,
        }
    }

    fn refuses(
        &self,
        name: &str,
        modify: impl FnOnce(&mut Vec<Raw>, u64, &Path),
        needles: &[&str],
    ) {
        let (mut entries, mtime) = read_entries(&self.bundle);
        // The untouched rewrite verifies: the crafting itself is faithful.
        let same = self.tmp.path().join("same.bundle");
        write_archive(&same, &entries, &self.key, mtime);
        ok(&mut verify_cmd(&same, &self.public));
        modify(&mut entries, mtime, &self.key);
        let out = self.tmp.path().join(format!("{name}.bundle"));
        write_archive(&out, &entries, &self.key, mtime);
        let line = fails(&mut verify_cmd(&out, &self.public));
        for n in needles {
            assert!(line.contains(n), "{name}: {line:?} should contain {n:?}");
        }
    }
}

#[test]
fn crafted_archives_are_refused() {
    let c = Crafted::new();
    c.refuses(
        "dotdot",
        |e, t, _| {
            e.push(Raw {
                header: header_with("../evil", 4, t, tar::EntryType::Regular, None),
                data: b"evil".to_vec(),
            })
        },
        &["../evil", "'..'"],
    );
    c.refuses(
        "nested-dotdot",
        |e, t, _| {
            e.push(Raw {
                header: header_with("blobs/../../evil", 4, t, tar::EntryType::Regular, None),
                data: b"evil".to_vec(),
            })
        },
        &["'..'"],
    );
    c.refuses(
        "absolute",
        |e, t, _| {
            e.push(Raw {
                header: header_with("/etc/passwd", 4, t, tar::EntryType::Regular, None),
                data: b"evil".to_vec(),
            })
        },
        &["/etc/passwd", "absolute path"],
    );
    c.refuses(
        "symlink",
        |e, t, _| {
            let victim = e.len() - 1;
            let path = String::from_utf8_lossy(
                &tar::Header::from_byte_slice(&e[victim].header).path_bytes(),
            )
            .into_owned();
            e[victim] = Raw {
                header: header_with(&path, 0, t, tar::EntryType::Symlink, Some("/etc/passwd")),
                data: vec![],
            };
        },
        &["symbolic link"],
    );
    c.refuses(
        "hardlink",
        |e, t, _| {
            e.push(Raw {
                header: header_with("x", 0, t, tar::EntryType::Link, Some("bundle.json")),
                data: vec![],
            })
        },
        &["hard link"],
    );
    c.refuses(
        "device",
        |e, t, _| {
            e.push(Raw {
                header: header_with("dev", 0, t, tar::EntryType::Char, None),
                data: vec![],
            })
        },
        &["device"],
    );
    c.refuses(
        "pax",
        |e, t, _| {
            e.insert(
                2,
                Raw {
                    header: header_with("pax", 30, t, tar::EntryType::XHeader, None),
                    data: b"30 path=blobs/sha256/aaaaaaaa\n".to_vec(),
                },
            )
        },
        &["extension header"],
    );
    c.refuses(
        "duplicate",
        |e, _, _| {
            let dup = Raw {
                header: e[5].header,
                data: e[5].data.clone(),
            };
            e.insert(6, dup);
        },
        &["duplicated entry"],
    );
    c.refuses(
        "extra",
        |e, t, _| {
            e.push(Raw {
                header: header_with("extra.txt", 2, t, tar::EntryType::Regular, None),
                data: b"hi".to_vec(),
            })
        },
        &["extra.txt", "extra entry"],
    );
    c.refuses(
        "missing",
        |e, _, _| {
            e.pop();
        },
        &["missing"],
    );
    c.refuses(
        "altered",
        |e, _, _| {
            let last = e.len() - 1;
            e[last].data[0] ^= 1;
        },
        &["content altered"],
    );
    c.refuses(
        "larger",
        |e, t, _| {
            let last = e.len() - 1;
            let path = String::from_utf8_lossy(
                &tar::Header::from_byte_slice(&e[last].header).path_bytes(),
            )
            .into_owned();
            e[last].data.extend_from_slice(b"more");
            e[last].header = entry_header(&path, e[last].data.len() as u64, t).unwrap();
        },
        &["larger than the signed size"],
    );
    c.refuses(
        "unsigned",
        |e, _, _| {
            e.remove(1);
        },
        &["not signed"],
    );
    c.refuses(
        "signature-not-first",
        |e, _, _| e.swap(0, 1),
        &["first entry is bundle.json.minisig"],
    );
    // A re-signed bundle.json that lists a blob the archive lacks.
    c.refuses(
        "listed-but-absent",
        |e, _, key| {
            resign(e, key, |d| {
                let fake = airgap_format::Digest::of(b"not in the archive");
                d.blobs.push(airgap_format::bundle_json::BlobEntry {
                    digest: fake,
                    size: 18,
                    media_type: "x".into(),
                });
                d.blobs.sort_by_key(|b| b.digest);
                d.total_size += 18;
            });
        },
        &["missing"],
    );
    // Trailing garbage after the end-of-archive marker.
    c.refuses(
        "trailing",
        |e, t, _| {
            e.push(Raw {
                header: [0u8; 512],
                data: vec![],
            });
            e.push(Raw {
                header: header_with("late", 1, t, tar::EntryType::Regular, None),
                data: b"x".to_vec(),
            });
        },
        &["end-of-archive"],
    );
}

#[test]
fn inspect_reads_only_the_head() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    // Corrupt the last data frame (a blob): inspect still works, verify refuses.
    let r = ArchiveReader::open(&bundle, Limits::default()).unwrap();
    let frames = r.frames().to_vec();
    let victim = frames[frames.len() - 3];
    let mut bytes = std::fs::read(&bundle).unwrap();
    let at = (victim.compressed_offset + victim.compressed_size as u64 / 2) as usize;
    bytes[at] ^= 0xff;
    std::fs::write(&bundle, &bytes).unwrap();
    for program in ["airgap-bundle", "airgap-install"] {
        let json = ok(Command::new(bin(program))
            .arg("inspect")
            .arg("--json")
            .arg(&bundle));
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["name"], "demo");
        assert_eq!(
            v["images"][0]["platforms"],
            serde_json::json!(["linux/amd64", "linux/arm64"])
        );
        let text = ok(Command::new(bin(program)).arg("inspect").arg(&bundle));
        assert!(text.contains("demo/worker:1.0.0"), "{text}");
    }
    fails(&mut verify_cmd(&bundle, &public));
}

#[test]
fn random_access_reads_one_blob() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, _) = demo_bundle(tmp.path());
    let r = ArchiveReader::open(&bundle, Limits::default()).unwrap();
    let (_, d) = r.read_descriptor_unverified().unwrap();
    let entries = r.entries().unwrap();
    for b in &d.blobs {
        let e = entries
            .iter()
            .find(|e| e.path == b.digest.blob_path())
            .unwrap();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut r.range(e.data_offset, e.size).unwrap(), &mut data)
            .unwrap();
        assert_eq!(airgap_format::Digest::of(&data), b.digest);
    }
}

#[test]
fn one_bit_flipped_at_every_offset_is_refused() {
    // In process (the CLI path is covered above): every byte of the demo
    // bundle, one bit each, rotating through the eight bits.
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let keys = vec![airgap_format::PublicKey::from_file(&public).unwrap()];
    let original = std::fs::read(&bundle).unwrap();
    let bad = tmp.path().join("flip.bundle");
    let mut accepted = Vec::new();
    for off in 0..original.len() {
        let mut bytes = original.clone();
        bytes[off] ^= 1 << (off % 8);
        std::fs::write(&bad, &bytes).unwrap();
        if airgap_format::verify_archive(&bad, &keys, Limits::default(), &|_| {}).is_ok() {
            accepted.push(off);
        }
    }
    assert!(
        accepted.is_empty(),
        "flips accepted at offsets {accepted:?}"
    );
}

#[test]
fn one_bit_flipped_at_every_offset_of_a_split_bundle_is_refused() {
    // A split bundle's head is a padded bundle.json in stored frames, later
    // rewritten in place: every byte of it, and of the rest, still counts.
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let out = tmp.path().join("split.bundle");
    ok(build_cmd(&repo_root().join("manifests/demo.yaml"), &key, &out).args(["--split", "64KiB"]));
    let part = tmp.path().join("split.bundle.part-001");
    let keys = vec![airgap_format::PublicKey::from_file(&public).unwrap()];
    airgap_format::verify_archive(&out, &keys, Limits::default(), &|_| {}).unwrap();
    let original = std::fs::read(&part).unwrap();
    let mut accepted = Vec::new();
    for off in 0..original.len() {
        let mut bytes = original.clone();
        bytes[off] ^= 1 << (off % 8);
        std::fs::write(&part, &bytes).unwrap();
        if airgap_format::verify_archive(&out, &keys, Limits::default(), &|_| {}).is_ok() {
            accepted.push(off);
        }
    }
    assert!(
        accepted.is_empty(),
        "flips accepted at offsets {accepted:?}"
    );
}

#[test]
fn seal_defects_are_refused() {
    let c = Crafted::new();
    // A compressed frame re-encoded differently (same content) breaks the seal:
    // rewrite with stored data frames where the bundler compressed them.
    let (entries, mtime) = read_entries(&c.bundle);
    let out = c.tmp.path().join("reencoded.bundle");
    write_archive(&out, &entries, &c.key, mtime);
    let good = std::fs::read(&out).unwrap();
    let r = ArchiveReader::open(&out, Limits::default()).unwrap();
    // Re-encode the frame of bundle.json's header (a compressed frame) as a
    // stored frame: same content, different bytes, seek table adjusted.
    let f0 = r.frames()[0];
    let content = r.read_at(0, 512).unwrap();
    let mut stored = Vec::new();
    airgap_format::seekable::stored_frame(&content, &mut stored);
    let mut table: Vec<(u32, u32)> = r
        .frames()
        .iter()
        .map(|f| (f.compressed_size, f.decompressed_size))
        .collect();
    table[0].0 = stored.len() as u32;
    let data_end: u64 = r.frames().iter().map(|f| f.compressed_size as u64).sum();
    let mut bytes = stored;
    bytes.extend_from_slice(&good[f0.compressed_size as usize..data_end as usize]);
    bytes.extend_from_slice(&airgap_format::seekable::seek_table_bytes(&table));
    std::fs::write(&out, &bytes).unwrap();
    let line = fails(&mut verify_cmd(&out, &c.public));
    // Re-encoding changes the frame's size, so the frame table catches it first.
    assert!(line.contains("differ from the seal"), "{line}");

    // No seal at all.
    let (entries, mtime) = read_entries(&c.bundle);
    let mut w = FrameWriter::new(Vec::new(), 3).unwrap();
    for e in &entries {
        w.write_frame(&e.header, FrameMode::Compress(3)).unwrap();
        let mut d = e.data.clone();
        d.resize(d.len().div_ceil(512) * 512, 0);
        if !d.is_empty() {
            w.write_frame(&d, FrameMode::Compress(3)).unwrap();
        }
    }
    w.write_frame(&[0u8; 1024], FrameMode::Stored).unwrap();
    let unsealed = c.tmp.path().join("unsealed.bundle");
    std::fs::write(&unsealed, w.finish().unwrap()).unwrap();
    let _ = mtime;
    let line = fails(&mut verify_cmd(&unsealed, &c.public));
    assert!(line.contains("bundle.seal"), "{line}");

    // A seal signed by another key.
    let (other_key, _) = keygen(c.tmp.path(), "other");
    let (entries, mtime) = read_entries(&c.bundle);
    let foreign = c.tmp.path().join("foreign-seal.bundle");
    write_archive(&foreign, &entries, &other_key, mtime);
    let line = fails(&mut verify_cmd(&foreign, &c.public));
    assert!(line.contains("bundle.seal.minisig"), "{line}");
}

#[test]
fn moved_frame_boundaries_are_refused() {
    // Split one canonical stored frame in two: every content byte and every
    // compressed frame is unchanged, only a frame boundary moves.
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let bytes = std::fs::read(&bundle).unwrap();
    let r = ArchiveReader::open(&bundle, Limits::default()).unwrap();
    let frames = r.frames().to_vec();
    let (index, f) = frames[..frames.len() - 5]
        .iter()
        .enumerate()
        .find(|(_, f)| {
            let src = &bytes[f.compressed_offset as usize..][..f.compressed_size as usize];
            f.decompressed_size >= 1024 && airgap_format::seekable::is_canonical_stored(src)
        })
        .map(|(i, f)| (i, *f))
        .expect("the demo has a stored data frame");
    let content = r
        .read_at(f.decompressed_offset, f.decompressed_size as usize)
        .unwrap();
    let (a, b) = content.split_at(512);
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    airgap_format::seekable::stored_frame(a, &mut fa);
    airgap_format::seekable::stored_frame(b, &mut fb);
    let mut table: Vec<(u32, u32)> = frames
        .iter()
        .map(|f| (f.compressed_size, f.decompressed_size))
        .collect();
    table.splice(
        index..=index,
        [
            (fa.len() as u32, a.len() as u32),
            (fb.len() as u32, b.len() as u32),
        ],
    );
    let data_end: u64 = frames.iter().map(|f| f.compressed_size as u64).sum();
    let start = f.compressed_offset as usize;
    let mut out = bytes[..start].to_vec();
    out.extend_from_slice(&fa);
    out.extend_from_slice(&fb);
    out.extend_from_slice(&bytes[start + f.compressed_size as usize..data_end as usize]);
    out.extend_from_slice(&airgap_format::seekable::seek_table_bytes(&table));
    let split = tmp.path().join("split.bundle");
    std::fs::write(&split, &out).unwrap();
    let line = fails(&mut verify_cmd(&split, &public));
    assert!(
        line.contains("frame boundaries differ from the seal"),
        "{line}"
    );
}

#[test]
fn recut_tail_frames_are_refused() {
    // The five stored tail frames re-cut (same bytes of content, other sizes).
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let r = ArchiveReader::open(&bundle, Limits::default()).unwrap();
    let frames = r.frames().to_vec();
    let n = frames.len();
    let tail = &frames[n - 5..];
    let start = tail[0].decompressed_offset;
    let len: u64 = tail.iter().map(|f| f.decompressed_size as u64).sum();
    let content = r.read_at(start, len as usize).unwrap();
    let bytes = std::fs::read(&bundle).unwrap();
    let mut out = bytes[..tail[0].compressed_offset as usize].to_vec();
    let mut table: Vec<(u32, u32)> = frames[..n - 5]
        .iter()
        .map(|f| (f.compressed_size, f.decompressed_size))
        .collect();
    // 1024 first, then 512-byte frames: the reverse of what the writer does.
    let mut cuts = vec![1024usize];
    while cuts.iter().sum::<usize>() < content.len() {
        cuts.push(512.min(content.len() - cuts.iter().sum::<usize>()));
    }
    let mut pos = 0;
    for c in cuts {
        let mut f = Vec::new();
        airgap_format::seekable::stored_frame(&content[pos..pos + c], &mut f);
        table.push((f.len() as u32, c as u32));
        out.extend_from_slice(&f);
        pos += c;
    }
    out.extend_from_slice(&airgap_format::seekable::seek_table_bytes(&table));
    let recut = tmp.path().join("recut.bundle");
    std::fs::write(&recut, &out).unwrap();
    fails(&mut verify_cmd(&recut, &public));
}
