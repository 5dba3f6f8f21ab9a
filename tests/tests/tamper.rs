//! Tampered bundles: every flipped byte, every truncation and every crafted
//! archive is refused by `verify` with one clear line, never a panic.

use airgap_e2e::craft::{
    read_entries, resign, resign_text, rewrite_frames, write_archive, write_archive_with, Raw, Tail,
};
use std::path::{Path, PathBuf};
use std::process::Command;

use airgap_e2e::harness::*;
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

    /// `verify` refuses the file `write(entries, mtime, key, out)` writes,
    /// with a line that contains every needle.
    fn refuses_written(
        &self,
        name: &str,
        write: impl FnOnce(Vec<Raw>, u64, &Path, &Path),
        needles: &[&str],
    ) -> String {
        let (entries, mtime) = read_entries(&self.bundle);
        let out = self.tmp.path().join(format!("{name}.bundle"));
        write(entries, mtime, &self.key, &out);
        let line = fails(&mut verify_cmd(&out, &self.public));
        for n in needles {
            assert!(line.contains(n), "{name}: {line:?} should contain {n:?}");
        }
        line
    }

    /// `verify` accepts the change.
    fn accepts(&self, name: &str, modify: impl FnOnce(&mut Vec<Raw>, u64, &Path)) {
        let (mut entries, mtime) = read_entries(&self.bundle);
        modify(&mut entries, mtime, &self.key);
        let out = self.tmp.path().join(format!("{name}.bundle"));
        write_archive(&out, &entries, &self.key, mtime);
        ok(&mut verify_cmd(&out, &self.public));
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
                    media_type: "text/plain".into(),
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

// ---------------------------------------------------------------------
// One test per rule of docs/format.md (Appendix A maps rules to tests).
// ---------------------------------------------------------------------

/// `entries[index]` (`oci-layout` or `index.json`) replaced by `data`,
/// `bundle.json` re-signed with its new digest and size.
fn replace_layout(entries: &mut [Raw], key: &Path, mtime: u64, index: usize, data: &[u8]) {
    let path = entries[index].path();
    entries[index] = Raw::new(&path, data.to_vec(), mtime);
    resign(entries, key, |d| {
        d.layout[index - 2].digest = airgap_format::Digest::of(data);
        d.layout[index - 2].size = data.len() as u64;
    });
}

#[test]
fn chart_names_and_versions_outside_helms_rules_are_refused() {
    // Issue 15, defect 1: a signed chart name reached an output path.
    let c = Crafted::new();
    type Edit = fn(&mut airgap_format::bundle_json::ChartEntry);
    let cases: [(&str, Edit, &[&str]); 6] = [
        (
            "chart-path",
            |ch| ch.name = "../../tmp/x".into(),
            &["charts[0]: name \"../../tmp/x\" is not a chart name (1 to 63 lowercase"],
        ),
        (
            "chart-newline",
            |ch| ch.name = "hello\n$(touch /tmp/pwned)".into(),
            &["charts[0]: name \"hello\\n$(touch /tmp/pwned)\" is not a chart name"],
        ),
        (
            "chart-upper",
            |ch| ch.name = "Hello".into(),
            &["is not a chart name"],
        ),
        (
            "chart-version",
            |ch| ch.version = "0.1".into(),
            &["charts[0]: version \"0.1\" is not a semantic version"],
        ),
        (
            "chart-version-length",
            |ch| ch.version = format!("0.1.0-{}", "a".repeat(123)),
            &["129 bytes, above 128"],
        ),
        (
            "chart-app-version",
            |ch| ch.app_version = Some("1.0\u{1b}]0;pwned\u{7}".into()),
            &["charts[0]: appVersion \"1.0\\u{1b}]0;pwned\\u{7}\" is not valid"],
        ),
    ];
    for (name, edit, needles) in cases {
        c.refuses(
            name,
            |e, _, key| resign(e, key, |d| edit(&mut d.charts[0])),
            needles,
        );
    }
}

#[test]
fn string_rules_of_bundle_json_are_refused() {
    let c = Crafted::new();
    type Edit = fn(&mut airgap_format::BundleDescriptor);
    let cases: [(&str, Edit, &[&str]); 11] = [
        (
            "description-escape",
            |d| d.description = "Demo\u{1b}[2J\u{1b}]0;owned\u{7}".into(),
            &["description \"Demo\\u{1b}[2J", "line feeds are allowed"],
        ),
        (
            "description-bidi",
            |d| d.description = "Demo \u{202e}gnp.exe".into(),
            &["description"],
        ),
        (
            "generator",
            |d| d.generator = "airgap\tbundle".into(),
            &["generator \"airgap\\tbundle\" is not valid (1 to 128 printable ASCII"],
        ),
        (
            "media-type",
            |d| d.blobs[0].media_type = "text/x-yaml; charset=utf-8".into(),
            &["blobs[0]: mediaType \"text/x-yaml; charset=utf-8\" is not a media type"],
        ),
        (
            "platform",
            |d| d.images[0].platforms[1] = "linux/ARM64".into(),
            &["images[0].platforms[1]: \"linux/ARM64\" is not a platform"],
        ),
        (
            "platform-order",
            |d| d.images[0].platforms.reverse(),
            &["images[0].platforms[1]: linux/amd64 is out of order or duplicated"],
        ),
        (
            // docs/format.md §5.1: an SBOM's platform MUST be one of its image's.
            "sbom-platform",
            |d| d.sboms[7].platform = Some("linux/s390x".into()),
            &["sboms[7]: platform linux/s390x is not a platform of image demo/worker:1.0.0"],
        ),
        (
            "file-name-bidi",
            |d| d.files[0].name = "docs/\u{202e}dm.exe".into(),
            &["files[0]: name", "is not a safe relative path"],
        ),
        (
            "template-name-control",
            |d| d.templates[0].name = "a\u{85}.hbs".into(),
            &["templates[0]: name", "is not a safe relative path"],
        ),
        (
            "version-overflow",
            |d| d.version = "1.0.0-18446744073709551616".into(),
            &["pre-release identifier 18446744073709551616 exceeds"],
        ),
        (
            "created-after-2242",
            |d| d.created = "2242-03-16T12:56:32Z".into(),
            &["created \"2242-03-16T12:56:32Z\" is after 2242-03-16T12:56:31Z"],
        ),
    ];
    for (name, edit, needles) in cases {
        c.refuses(name, |e, _, key| resign(e, key, edit), needles);
    }
}

#[test]
fn description_with_line_feeds_is_accepted_by_both_tools() {
    // A YAML block scalar gives line feeds: the bundler keeps them, verify
    // accepts them.
    let c = Crafted::new();
    c.accepts("description-lf", |e, _, key| {
        resign(e, key, |d| d.description = "Line one.\nLine two.\n".into())
    });
    let m = c.tmp.path().join("lf.yaml");
    std::fs::write(
        &m,
        "name: lf\nversion: 1.0.0\ndescription: |\n  Line one.\n  Line two, Zürich.\n",
    )
    .unwrap();
    let out = c.tmp.path().join("lf.bundle");
    ok(&mut build_cmd(&m, &c.key, &out));
    ok(&mut verify_cmd(&out, &c.public));
    let r = ArchiveReader::open(&out, Limits::default()).unwrap();
    let (_, d) = r.read_descriptor_unverified().unwrap();
    assert_eq!(d.description, "Line one.\nLine two, Zürich.\n");
}

#[test]
fn json_rules_of_bundle_json_are_refused() {
    let c = Crafted::new();
    let deep = format!(
        r#""x":{}0{},"description":"#,
        "[".repeat(40),
        "]".repeat(40)
    );
    let cases: [(&str, &str, &str, &str); 8] = [
        (
            "duplicate-key",
            r#""name":"demo","#,
            r#""name":"demo","name":"evil","#,
            "bundle.json: name: duplicate key",
        ),
        (
            "null-optional",
            r#""description":"#,
            r#""license":null,"description":"#,
            "bundle.json: license: null is not allowed (leave an optional key out instead)",
        ),
        (
            "fraction",
            r#""totalSize":80757"#,
            r#""totalSize":80757.0"#,
            "bundle.json: totalSize: a number that is not an integer from 0 to 18446744073709551615",
        ),
        (
            "exponent",
            r#""totalSize":80757"#,
            r#""totalSize":8.0757e4"#,
            "totalSize: a number that is not an integer",
        ),
        (
            "negative",
            r#""totalSize":80757"#,
            r#""totalSize":-80757"#,
            "totalSize: a number that is not an integer",
        ),
        (
            "beyond-u64",
            r#""totalSize":80757"#,
            r#""totalSize":18446744073709551616"#,
            "totalSize: a number that is not an integer",
        ),
        ("deep", r#""description":"#, &deep, "nested deeper than 32 levels"),
        (
            "unknown-key",
            r#""description":"#,
            r#""sbom":[],"description":"#,
            "unknown field `sbom`",
        ),
    ];
    for (name, from, to, want) in cases {
        c.refuses(
            name,
            |e, _, key| {
                resign_text(e, key, |t| {
                    assert!(t.contains(from), "{name}: {from}");
                    t.replacen(from, to, 1)
                })
            },
            &[want],
        );
    }
}

#[test]
fn index_json_and_oci_layout_rules_are_refused() {
    let c = Crafted::new();
    let (entries, _) = read_entries(&c.bundle);
    let index = String::from_utf8(entries[3].data.clone()).unwrap();
    let web = r#""org.opencontainers.image.ref.name":"demo/web:1.0.0""#;
    let cases: Vec<(&str, usize, String, &str)> = vec![
        (
            "index-duplicate-key",
            3,
            index.replacen(web, &format!(r#"{web},"org.opencontainers.image.ref.name":"demo/evil:1""#), 1),
            "entry index.json: not an OCI index (manifests[0].annotations.org.opencontainers.image.ref.name: duplicate key",
        ),
        (
            "index-null",
            3,
            index.replacen(r#""schemaVersion":2"#, r#""schemaVersion":2,"subject":null"#, 1),
            "subject: null is not allowed",
        ),
        (
            "index-fraction",
            3,
            index.replacen(r#""size":491"#, r#""size":491.0"#, 1),
            "manifests[0].size: a number that is not an integer",
        ),
        (
            "index-no-ref-name",
            3,
            index.replacen(&format!(r#""annotations":{{{web}}},"#), "", 1),
            "has no org.opencontainers.image.ref.name",
        ),
        (
            "index-other-image",
            3,
            index.replacen("demo/web:1.0.0", "demo/web:2.0.0", 1),
            "entry index.json: images listed differ from the images in bundle.json",
        ),
        (
            "index-no-manifests",
            3,
            r#"{"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#.into(),
            "images listed differ",
        ),
        (
            "layout-not-json",
            2,
            "imageLayoutVersion: 1.0.0".into(),
            "entry oci-layout: not JSON",
        ),
        (
            "layout-duplicate-key",
            2,
            r#"{"imageLayoutVersion":"1.0.0","imageLayoutVersion":"1.0.0"}"#.into(),
            "imageLayoutVersion: duplicate key",
        ),
        (
            "layout-version-type",
            2,
            r#"{"imageLayoutVersion":1}"#.into(),
            "entry oci-layout: no imageLayoutVersion",
        ),
    ];
    for (name, index, data, want) in cases {
        c.refuses(
            name,
            |e, t, key| replace_layout(e, key, t, index, data.as_bytes()),
            &[want],
        );
    }
}

#[test]
fn seal_rules_are_refused() {
    let c = Crafted::new();
    type SealEdit = fn(Vec<u8>) -> Vec<u8>;
    fn text(f: fn(String) -> String) -> Box<dyn FnOnce(Vec<u8>) -> Vec<u8>> {
        Box::new(move |s| f(String::from_utf8(s).unwrap()).into_bytes())
    }
    type Case = (
        &'static str,
        Box<dyn FnOnce(Vec<u8>) -> Vec<u8>>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "seal-duplicate",
            text(|s| s.replacen(r#""frames":"#, r#""frames":1,"frames":"#, 1)),
            "entry bundle.seal: not a seal (frames: duplicate key",
        ),
        (
            "seal-null",
            text(|s| s.replacen('{', r#"{"extra":null,"#, 1)),
            "entry bundle.seal: not a seal (extra: null is not allowed",
        ),
        (
            "seal-fraction",
            text(|s| s.replacen(r#""frames":64"#, r#""frames":64.0"#, 1)),
            "not a seal (frames: a number that is not an integer",
        ),
        (
            "seal-unknown-key",
            text(|s| s.replacen('{', r#"{"extra":1,"#, 1)),
            "not a seal (unknown field `extra`",
        ),
        (
            "seal-missing-key",
            text(|s| s.replacen(r#","frames":64"#, "", 1)),
            "not a seal (missing field `frames`",
        ),
        (
            "seal-large",
            Box::new(
                (|mut s: Vec<u8>| {
                    s.extend(std::iter::repeat_n(b' ', 4000));
                    s
                }) as SealEdit,
            ),
            "entry bundle.seal: 4316 bytes, above the 4096-byte limit",
        ),
    ];
    for (name, edit, want) in cases {
        c.refuses_written(
            name,
            |e, t, key, out| {
                write_archive_with(
                    out,
                    &e,
                    key,
                    t,
                    Tail {
                        seal: edit,
                        ..Tail::default()
                    },
                )
            },
            &[want],
        );
    }
    // A seal of another bundle.json, well formed.
    c.refuses_written(
        "seal-digest",
        |e, t, key, out| {
            let other = airgap_format::Digest::of(b"another bundle.json").to_string();
            write_archive_with(
                out,
                &e,
                key,
                t,
                Tail {
                    seal: Box::new(move |s| {
                        let mut v: serde_json::Value = serde_json::from_slice(&s).unwrap();
                        v["bundleDigest"] = other.into();
                        airgap_format::canonical_json::to_canonical_vec(&v).unwrap()
                    }),
                    ..Tail::default()
                },
            )
        },
        &["entry bundle.seal: seals a different bundle.json"],
    );
}

#[test]
fn seal_signature_rules_are_refused() {
    let c = Crafted::new();
    let (entries, _) = read_entries(&c.bundle);
    let head_sig = String::from_utf8(entries[1].data.clone()).unwrap();
    type Case = (
        &'static str,
        Box<dyn FnOnce(String) -> Vec<u8>>,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "seal-sig-utf8",
            Box::new(|s| {
                let mut b = s.into_bytes();
                b[3] = 0xff;
                b
            }),
            "entry bundle.seal.minisig: not UTF-8",
        ),
        (
            "seal-sig-crlf",
            Box::new(|s| s.replace('\n', "\r\n").into_bytes()),
            "entry bundle.seal.minisig: not in canonical form",
        ),
        (
            "seal-sig-comment",
            Box::new(|s| {
                s.replacen("signature from minisign secret key", "signed by us", 1)
                    .into_bytes()
            }),
            "entry bundle.seal.minisig: not in canonical form",
        ),
        (
            // The signature of bundle.json: same key, other content.
            "seal-sig-other-content",
            Box::new(move |_| head_sig.into_bytes()),
            "entry bundle.seal.minisig: signature by key",
        ),
    ];
    for (name, edit, want) in cases {
        c.refuses_written(
            name,
            |e, t, key, out| {
                write_archive_with(
                    out,
                    &e,
                    key,
                    t,
                    Tail {
                        signature: edit,
                        ..Tail::default()
                    },
                )
            },
            &[want],
        );
    }
}

/// The minisign signature text `sig` with its second line's algorithm
/// replaced by `alg`.
fn with_algorithm(sig: &str, alg: &[u8; 2]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut lines: Vec<String> = sig.lines().map(str::to_string).collect();
    let mut raw = b64.decode(&lines[1]).unwrap();
    raw[..2].copy_from_slice(alg);
    lines[1] = b64.encode(raw);
    lines.join("\n") + "\n"
}

#[test]
fn signature_rules_are_refused() {
    let c = Crafted::new();
    type Edit = fn(String) -> String;
    let cases: [(&str, Edit, &str); 6] = [
        (
            "sig-crlf",
            |s| s.replace('\n', "\r\n"),
            "entry bundle.json.minisig: not in canonical form (four lines, each ending in a newline",
        ),
        (
            "sig-no-final-newline",
            |s| s.trim_end().to_string(),
            "not in canonical form",
        ),
        (
            "sig-comment",
            |s| s.replacen("signature from minisign secret key", "from us", 1),
            "not in canonical form",
        ),
        (
            "sig-legacy",
            |s| with_algorithm(&s, b"Ed"),
            "legacy (non-prehashed) signatures are not accepted",
        ),
        (
            "sig-algorithm",
            |s| with_algorithm(&s, b"XX"),
            "unknown signature algorithm",
        ),
        (
            "sig-trusted-comment",
            |s| s.replacen("timestamp:1700000000", "timestamp:1700000001", 1),
            "was altered",
        ),
    ];
    for (name, edit, want) in cases {
        c.refuses(
            name,
            |e, t, _| {
                let text = edit(String::from_utf8(e[1].data.clone()).unwrap());
                e[1] = Raw::new("bundle.json.minisig", text.into_bytes(), t);
            },
            &[want],
        );
    }
    c.refuses(
        "sig-content",
        |e, t, _| {
            let mut json = e[0].data.clone();
            let at = json.len() - 1;
            json[at] = b'\t'; // padding space → tab: still JSON, not signed
            e[0] = Raw::new("bundle.json", json, t);
        },
        &["does not match the signed content"],
    );
    c.refuses(
        "sig-not-utf8",
        |e, t, _| {
            let mut sig = e[1].data.clone();
            sig[0] = 0xff;
            e[1] = Raw::new("bundle.json.minisig", sig, t);
        },
        &["bundle.json.minisig is not UTF-8"],
    );
}

/// `frame` (a libzstd frame) with its header replaced; the blocks stay.
fn reheader(frame: &[u8], fhd: u8, wd: Option<u8>, did: &[u8], fcs: &[u8]) -> Vec<u8> {
    let old = airgap_format::seekable::parse_frame_header(frame)
        .unwrap()
        .header_len;
    let mut out = frame[..4].to_vec();
    out.push(fhd);
    out.extend(wd);
    out.extend_from_slice(did);
    out.extend_from_slice(fcs);
    out.extend_from_slice(&frame[old..]);
    out
}

#[test]
fn zstd_frame_rules_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    // Frame 5 holds the 512 bytes of oci-layout's data (and padding).
    let r = ArchiveReader::open(&bundle, Limits::default()).unwrap();
    let f5 = r.frames()[5];
    let content = r.read_at(f5.decompressed_offset, 512).unwrap();
    let plain = zstd::bulk::compress(&content, 3).unwrap(); // FHD 0x60, 2-byte size
    let zeros = zstd::bulk::compress(&vec![0u8; 1 << 20], 3).unwrap();
    let mut doubled = content.clone();
    doubled.extend_from_slice(&content);
    let with_checksum = {
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        c.include_checksum(true).unwrap();
        c.compress(&content).unwrap()
    };
    let short = zstd::bulk::compress(&content[..500], 3).unwrap();
    let set_bit = |bit: u8| {
        let mut f = plain.clone();
        f[4] |= bit;
        f
    };
    let mut skippable = 0x184D_2A50u32.to_le_bytes().to_vec();
    skippable.extend_from_slice(&0u32.to_le_bytes());
    type Frames = Vec<(Vec<u8>, u32)>;
    let cases: Vec<(&str, Frames, &str)> = vec![
        (
            "dictionary",
            vec![(reheader(&plain, 0x61, None, &[7], &[0, 1]), 512)],
            "frame 5 at offset 8991: frame header names a dictionary (Dictionary_ID 7); bundle frames use none",
        ),
        (
            "window",
            vec![(reheader(&plain, 0x00, Some(14 << 3), &[], &[]), 512)],
            "frame 5 at offset 8991: frame needs a 16777216-byte window, above the 8388608-byte limit",
        ),
        (
            "bomb",
            vec![(reheader(&zeros, 0x00, Some(10 << 3), &[], &[]), 512)],
            "frame 5 at offset 8991: frame decompresses to more than 512 bytes, seek table says 512",
        ),
        (
            "declared-size",
            vec![(zstd::bulk::compress(&doubled, 3).unwrap(), 512)],
            "frame header says it decompresses to 1024 bytes, seek table says 512",
        ),
        (
            "short",
            vec![(reheader(&short, 0x00, Some(0), &[], &[]), 512)],
            "frame decompresses to 500 bytes, seek table says 512",
        ),
        (
            "unused-bit",
            vec![(set_bit(0x10), 512)],
            "frame 5 at offset 8991: frame header has its unused bit set",
        ),
        (
            "reserved-bit",
            vec![(set_bit(0x08), 512)],
            "frame header has its reserved bit set",
        ),
        (
            "skippable",
            vec![(skippable, 1), (plain.clone(), 511)],
            "frame 5 at offset 8991: not a zstd frame",
        ),
        (
            "two-frames",
            vec![([plain.clone(), plain.clone()].concat(), 512)],
            "is 48 bytes, seek table says 96",
        ),
        (
            // Decodes (libzstd checks the checksum), but the seal pins the
            // compressed bytes (here their size first).
            "checksum",
            vec![(with_checksum, 512)],
            "frame boundaries differ from the seal",
        ),
    ];
    for (name, frames, want) in cases {
        let out = tmp.path().join(format!("{name}.bundle"));
        let mut frames = Some(frames);
        rewrite_frames(&bundle, &out, |i, src, d| match i {
            5 => frames.take().unwrap(),
            _ => vec![(src.to_vec(), d)],
        });
        let line = fails(&mut verify_cmd(&out, &public));
        assert!(
            line.contains(want),
            "{name}: {line:?} should contain {want:?}"
        );
    }
    // A head frame fails the same way before the signature is checked.
    let out = tmp.path().join("head.bundle");
    rewrite_frames(&bundle, &out, |i, src, d| match i {
        0 => vec![(reheader(src, 0x00, Some(20 << 3), &[], &[]), d)],
        _ => vec![(src.to_vec(), d)],
    });
    let line = fails(&mut verify_cmd(&out, &public));
    assert!(
        line.contains("frame 0 at offset 0: frame needs a 1073741824-byte window"),
        "{line}"
    );
}

#[test]
fn tar_header_rules_are_refused() {
    let c = Crafted::new();
    let pushed = |path: &'static str, kind: tar::EntryType| {
        move |e: &mut Vec<Raw>, t: u64, _: &Path| {
            e.push(Raw {
                header: header_with(path, 0, t, kind, None),
                data: vec![],
            })
        }
    };
    use tar::EntryType as T;
    c.refuses(
        "directory",
        pushed("dir", T::Directory),
        &["entry dir: is a directory"],
    );
    c.refuses("fifo", pushed("fifo", T::Fifo), &["entry fifo: is a FIFO"]);
    c.refuses(
        "gnu-long-name",
        pushed("././@LongLink", T::GNULongName),
        &["uses a tar extension header, which bundles never contain"],
    );
    c.refuses(
        "contiguous",
        pushed("c", T::new(b'7')),
        &["entry c: has unsupported entry type '7'"],
    );
    for (name, path) in [
        ("backslash", "blobs\\x"),
        ("control", "blobs/a\u{1b}b"),
        ("bidi", "blobs/\u{202e}x"),
        ("empty-component", "blobs//x"),
        ("dot-component", "blobs/./x"),
    ] {
        c.refuses(name, pushed(path, T::Regular), &["unsafe path"]);
    }
    c.refuses(
        "not-utf8",
        |e, t, _| {
            let mut h = header_with("blobs/x", 0, t, T::Regular, None);
            h[6] = 0xff;
            let mut hh = tar::Header::from_byte_slice(&h).clone();
            hh.set_cksum();
            e.push(Raw {
                header: *hh.as_bytes(),
                data: vec![],
            })
        },
        &["path is not UTF-8"],
    );
    c.refuses(
        "checksum",
        |e, _, _| e[4].header[140] ^= 1,
        &["header checksum mismatch"],
    );
    c.refuses(
        "mode",
        |e, _, _| {
            let mut h = tar::Header::from_byte_slice(&e[4].header).clone();
            h.set_mode(0o755);
            h.set_cksum();
            e[4].header = *h.as_bytes();
        },
        &["tar header differs from the canonical header for this entry (mode 0644, owner 0, mtime = bundle creation time, ustar)"],
    );
    c.refuses(
        "mtime",
        |e, t, _| {
            let mut h = tar::Header::from_byte_slice(&e[4].header).clone();
            h.set_mtime(t + 1);
            h.set_cksum();
            e[4].header = *h.as_bytes();
        },
        &["tar header differs from the canonical header"],
    );
    c.refuses(
        "prefix",
        |e, _, _| {
            // The same path as ustar prefix "blobs/sha256" and name "<hex>".
            let path = e[4].path();
            let (dir, file) = path.rsplit_once('/').unwrap();
            let mut h = tar::Header::from_byte_slice(&e[4].header).clone();
            let u = h.as_ustar_mut().unwrap();
            u.name = [0; 100];
            u.name[..file.len()].copy_from_slice(file.as_bytes());
            u.prefix[..dir.len()].copy_from_slice(dir.as_bytes());
            h.set_cksum();
            e[4].header = *h.as_bytes();
        },
        &["tar header differs from the canonical header"],
    );
    c.refuses(
        "order",
        |e, _, _| e.swap(4, 5),
        &["out of canonical order: expected blobs/sha256/"],
    );
    c.refuses(
        "smaller",
        |e, t, _| {
            let last = e.len() - 1;
            let path = e[last].path();
            e[last].data.pop();
            e[last].header = entry_header(&path, e[last].data.len() as u64, t).unwrap();
        },
        &["smaller than the signed size"],
    );
    c.refuses(
        "padding",
        |e, _, _| {
            // One byte more than the header says: it lands in the padding.
            let last = e.len() - 1;
            assert!(e[last].data.len() % 512 != 0);
            e[last].data.push(1);
        },
        &["non-zero tar padding near offset"],
    );
    for (zeros, want) in [
        (
            1536,
            "end-of-archive marker is 1536 zero bytes, expected 1024",
        ),
        (
            512,
            "end-of-archive marker is 512 zero bytes, expected 1024",
        ),
    ] {
        c.refuses_written(
            &format!("end-{zeros}"),
            |e, t, key, out| {
                write_archive_with(
                    out,
                    &e,
                    key,
                    t,
                    Tail {
                        end_zeros: zeros,
                        ..Tail::default()
                    },
                )
            },
            &[want],
        );
    }
    c.refuses_written(
        "no-end",
        |e, t, key, out| {
            let full = out.with_extension("full");
            write_archive(&full, &e, key, t);
            let n = ArchiveReader::open(&full, Limits::default())
                .unwrap()
                .frames()
                .len();
            rewrite_frames(&full, out, |i, src, d| match i {
                _ if i + 1 == n => vec![],
                _ => vec![(src.to_vec(), d)],
            });
        },
        &["truncated: no end-of-archive marker"],
    );
    c.refuses_written(
        "entries-missing",
        |mut e, _, _, out| {
            // The archive ends (unsealed) before its last blob.
            e.pop();
            let mut w = FrameWriter::new(Vec::new(), 3).unwrap();
            for r in &e {
                w.write_frame(&r.header, FrameMode::Compress(3)).unwrap();
                let mut d = r.data.clone();
                d.resize(d.len().div_ceil(512) * 512, 0);
                if !d.is_empty() {
                    w.write_frame(&d, FrameMode::Compress(3)).unwrap();
                }
            }
            w.write_frame(&[0u8; 1024], FrameMode::Stored).unwrap();
            std::fs::write(out, w.finish().unwrap()).unwrap();
        },
        &["missing (1 entries missing in all)"],
    );
}

#[test]
fn reader_limits_are_enforced() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _, public) = demo_bundle(tmp.path());
    let keys = vec![airgap_format::PublicKey::from_file(&public).unwrap()];
    let verify = |limits: Limits| {
        airgap_format::verify_archive(&bundle, &keys, limits, &|_| {})
            .unwrap_err()
            .to_string()
    };
    let cases: [(&str, Limits, &str); 5] = [
        (
            "frames",
            Limits {
                max_frames: 64,
                ..Limits::default()
            },
            "seek table: 69 frames exceed the limit of 64",
        ),
        (
            "frame size",
            Limits {
                max_frame_size: 8192,
                ..Limits::default()
            },
            "seek table: frame 15 decompresses to 22528 bytes, above the 8192-byte limit",
        ),
        (
            "bundle.json",
            Limits {
                max_bundle_json: 7941,
                ..Limits::default()
            },
            "bundle.json is 7942 bytes, above the 7941-byte limit",
        ),
        (
            "signature",
            Limits {
                max_signature: 100,
                ..Limits::default()
            },
            "bundle.json.minisig is 327 bytes, above the 100-byte limit",
        ),
        (
            "layout",
            Limits {
                max_layout_file: 530,
                ..Limits::default()
            },
            "entry index.json: 531 bytes, above the 530-byte limit",
        ),
    ];
    for (name, limits, want) in cases {
        let e = verify(limits);
        assert!(e.contains(want), "{name}: {e}");
    }
    let r = ArchiveReader::open(
        &bundle,
        Limits {
            max_entries: 3,
            ..Limits::default()
        },
    )
    .unwrap();
    let e = r.entries().unwrap_err().to_string();
    assert!(e.ends_with("more than 3 entries"), "{e}");
    // Files too short, with bytes appended, or with a set descriptor bit.
    let original = std::fs::read(&bundle).unwrap();
    let bad = tmp.path().join("bad.bundle");
    let n = original.len();
    let mut descriptor = original.clone();
    descriptor[n - 5] = 0x80;
    for (bytes, want) in [
        (
            original[..16].to_vec(),
            "file too short for a seek table (16 bytes)",
        ),
        (
            [&original[..], b"x"].concat(),
            "no seek table at the end of the file (not a bundle, or truncated)",
        ),
        (
            descriptor,
            "seek table: descriptor is 0x80, this format writes 0 (no checksums)",
        ),
        (
            original[n - 568..].to_vec(),
            "seek table: 69 frames do not fit in a 568-byte file",
        ),
        (
            original[n - 569..].to_vec(),
            "seek table: frames cover 35998 bytes but 0 bytes precede the table",
        ),
    ] {
        std::fs::write(&bad, &bytes).unwrap();
        let e = airgap_format::verify_archive(&bad, &keys, Limits::default(), &|_| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn tar_mtime_at_the_octal_limit() {
    // 8^11 − 1 seconds (2242-03-16T12:56:31Z) is the last creation time a
    // tar header holds in 11 octal digits: it builds and verifies; one
    // second later the bundler refuses.
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    let manifest = repo_root().join("manifests/demo.yaml");
    let out = tmp.path().join("late.bundle");
    ok(build_cmd(&manifest, &key, &out)
        .args(["--skip-sbom"])
        .env("SOURCE_DATE_EPOCH", "8589934591"));
    ok(&mut verify_cmd(&out, &public));
    let r = ArchiveReader::open(&out, Limits::default()).unwrap();
    let (_, d) = r.read_descriptor_unverified().unwrap();
    assert_eq!(d.created, "2242-03-16T12:56:31Z");
    let header = r.read_at(0, 512).unwrap();
    assert_eq!(&header[136..148], b"77777777777\0");
    let line = fails(
        build_cmd(&manifest, &key, &tmp.path().join("later.bundle"))
            .env("SOURCE_DATE_EPOCH", "8589934592"),
    );
    assert!(
        line.contains(
            "SOURCE_DATE_EPOCH=\"8589934592\" is after 8589934591 (2242-03-16T12:56:31Z)"
        ),
        "{line}"
    );
}

#[test]
fn non_canonical_json_verifies() {
    // docs/format.md §5.3: readers MUST NOT require the canonical form.
    let c = Crafted::new();
    c.accepts("pretty", |e, _, key| {
        resign_text(e, key, |t| {
            let v: serde_json::Value = serde_json::from_str(&t).unwrap();
            let obj = v.as_object().unwrap();
            let body: Vec<String> = obj
                .iter()
                .rev()
                .map(|(k, v)| format!("\n  {k:?} : {}", serde_json::to_string_pretty(v).unwrap()))
                .collect();
            format!("{{{}\n}}\n\t", body.join(" ,"))
        })
    });
}

#[test]
fn other_framings_before_the_seal_verify() {
    // docs/format.md §3.1: readers MUST NOT require the writer's framing
    // before the seal. Here every entry before the seal is one frame of
    // ~30 KiB, and a second bundle cuts the same bytes every 700 bytes.
    let c = Crafted::new();
    let (entries, mtime) = read_entries(&c.bundle);
    let mut stream = Vec::new();
    for e in &entries {
        stream.extend_from_slice(&e.header);
        stream.extend_from_slice(&e.data);
        stream.resize(stream.len().div_ceil(512) * 512, 0);
    }
    for (name, cut) in [("one-frame", stream.len()), ("every-700", 700)] {
        let mut w = FrameWriter::new(Vec::new(), 3).unwrap();
        for chunk in stream.chunks(cut) {
            w.write_frame(chunk, FrameMode::Compress(3)).unwrap();
        }
        let key = airgap_bundle::sign::SecretKey::from_file(&c.key).unwrap();
        let (seal, sig) =
            airgap_bundle::sign::seal(&key, &entries[0].data, w.seal(), airgap_e2e::craft::COMMENT)
                .unwrap();
        for (path, data) in [
            ("bundle.seal", seal),
            ("bundle.seal.minisig", sig.into_bytes()),
        ] {
            w.write_frame(
                &entry_header(path, data.len() as u64, mtime).unwrap(),
                FrameMode::Stored,
            )
            .unwrap();
            let mut d = data;
            d.resize(d.len().div_ceil(512) * 512, 0);
            w.write_frame(&d, FrameMode::Stored).unwrap();
        }
        w.write_frame(&[0u8; 1024], FrameMode::Stored).unwrap();
        let out = c.tmp.path().join(format!("{name}.bundle"));
        std::fs::write(&out, w.finish().unwrap()).unwrap();
        ok(&mut verify_cmd(&out, &c.public));
    }
}

/// A zstd frame of raw blocks of the given sizes: the same content as a
/// canonical stored frame, other bytes (docs/format.md §2.4).
fn raw_blocks(content: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut f = 0xFD2F_B528u32.to_le_bytes().to_vec();
    f.push(0xA0);
    f.extend_from_slice(&(content.len() as u32).to_le_bytes());
    let mut pos = 0;
    for (i, &n) in cuts.iter().enumerate() {
        let header = ((n as u32) << 3) | (i + 1 == cuts.len()) as u32;
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.extend_from_slice(&content[pos..pos + n]);
        pos += n;
    }
    assert_eq!(pos, content.len());
    f
}

#[test]
fn sealed_compressed_frames_cannot_be_re_encoded() {
    // docs/format.md §7.4: every frame that is not a canonical stored frame
    // is hashed into the seal. Frame 5 written as raw blocks of 256 and 256
    // bytes verifies once sealed; the same content as blocks of 128 and 384
    // bytes (same size, other bytes) does not.
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, key, public) = demo_bundle(tmp.path());
    let r = ArchiveReader::open(&bundle, Limits::default()).unwrap();
    let (head, d) = r.read_descriptor_unverified().unwrap();
    let bytes = std::fs::read(&bundle).unwrap();
    let frames = r.frames().to_vec();
    let f5 = frames[5];
    let content = r.read_at(f5.decompressed_offset, 512).unwrap();
    let (a, b) = (
        raw_blocks(&content, &[256, 256]),
        raw_blocks(&content, &[128, 384]),
    );
    assert_eq!(a.len(), b.len());
    assert!(a != b && !airgap_format::seekable::is_canonical_stored(&a));
    let body: Vec<(Vec<u8>, u32)> = frames[..frames.len() - 5]
        .iter()
        .enumerate()
        .map(|(i, f)| match i {
            5 => (a.clone(), f.decompressed_size),
            _ => (
                bytes[f.compressed_offset as usize..][..f.compressed_size as usize].to_vec(),
                f.decompressed_size,
            ),
        })
        .collect();
    let sealed = tmp.path().join("sealed.bundle");
    airgap_e2e::craft::write_sealed_frames(
        &sealed,
        &body,
        &head.bundle_json,
        &key,
        d.created_unix(),
    );
    ok(&mut verify_cmd(&sealed, &public));
    let swapped = tmp.path().join("swapped.bundle");
    rewrite_frames(&sealed, &swapped, |i, src, size| match i {
        5 => vec![(b.clone(), size)],
        _ => vec![(src.to_vec(), size)],
    });
    let line = fails(&mut verify_cmd(&swapped, &public));
    assert!(
        line.contains("compressed frames differ from the seal (60 frames, digest sha256:"),
        "{line}"
    );
}

#[test]
fn signed_blobs_read_alone_are_checked() {
    // docs/format.md §9 (last paragraph) and §11: a reader that reads one
    // entry without the full pass checks its header against bundle.json and
    // its content against the digest.
    let c = Crafted::new();
    let keys = vec![airgap_format::PublicKey::from_file(&c.public).unwrap()];
    type Edit = fn(&mut Raw, u64);
    let cases: [(&str, Edit, &str); 2] = [
        (
            "content",
            |r, _| r.data[0] ^= 1,
            "content does not match its digest",
        ),
        (
            "size",
            |r, t| {
                let path = r.path();
                r.data.push(b'x');
                r.header = entry_header(&path, r.data.len() as u64, t).unwrap();
            },
            "2324 bytes in the archive, 2323 signed",
        ),
    ];
    for (name, edit, want) in cases {
        let (mut entries, mtime) = read_entries(&c.bundle);
        let last = entries.len() - 1;
        edit(&mut entries[last], mtime);
        let hex = entries[last].path().rsplit('/').next().unwrap().to_string();
        let out = c.tmp.path().join(format!("alone-{name}.bundle"));
        write_archive(&out, &entries, &c.key, mtime);
        let v = airgap_format::SignedBundle::open(&out, &keys, Limits::default()).unwrap();
        let digest: airgap_format::Digest = format!("sha256:{hex}").parse().unwrap();
        let e = v
            .read_blob(&digest, 1 << 20, "SBOM")
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{name}: {e}");
    }
}
