//! Tampered bundles made in memory, as table tests on the verifier and on
//! [`SignedBundle`]: every flipped bit, every truncation and a table of
//! named defects is refused with an error, never a panic, and content read
//! through the handle is checked. Fast enough to run on every change; the
//! same cases through the command line (and crafted archives) are in
//! `tests/tests/tamper.rs`.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::test_bundle::{write, TestSigner, DATA_FRAME};
use crate::{verify_archive, Digest, Limits, PublicKey, SignedBundle};

/// A small bundle: a text file that compresses and noise that does not,
/// each in one frame.
fn small_files() -> Vec<Vec<u8>> {
    let text: Vec<u8> = (0..120)
        .flat_map(|i| format!("line {i} of the notes\n").into_bytes())
        .collect();
    let mut noise = vec![0u8; 3000];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    assert!(noise.len() < DATA_FRAME);
    vec![text, noise]
}

fn keys() -> Vec<PublicKey> {
    vec![TestSigner::new().public()]
}

/// Writes the bytes as `name` in `dir`.
fn save(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn check(path: &Path, keys: &[PublicKey]) -> Result<(), String> {
    verify_archive(path, keys, Limits::default(), &|_| {})
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Runs `case` over `items` on every core; returns the items it accepted.
fn refused_everywhere(items: Vec<usize>, case: impl Fn(usize) -> bool + Sync) -> Vec<usize> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().copied().filter(|&i| case(i)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

#[test]
fn every_flipped_bit_is_refused() {
    // Every byte of the head (bundle.json and its signature, in the first
    // frames) and of the tail (seal, seek table, footer); every fifth byte
    // between. `tests/tests/tamper.rs` flips every byte of the demo bundle.
    let bytes = write(Vec::new(), &small_files(), None).output;
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    assert_eq!(
        check(&save(dir.path(), "good.bundle", &bytes), &keys),
        Ok(())
    );
    let n = bytes.len();
    let offsets: Vec<usize> = (0..n)
        .filter(|&o| o < 1536 || o + 768 >= n || o % 5 == 0)
        .collect();
    let accepted = refused_everywhere(offsets, |off| {
        let mut bad = bytes.clone();
        bad[off] ^= 1 << (off % 8);
        let path = save(dir.path(), &format!("flip-{off}.bundle"), &bad);
        let r = check(&path, &keys);
        std::fs::remove_file(&path).unwrap();
        match r {
            Ok(()) => true,
            Err(e) => {
                assert!(
                    e.contains(&format!("flip-{off}.bundle")),
                    "offset {off}: {e}"
                );
                false
            }
        }
    });
    assert!(accepted.is_empty(), "flips accepted at {accepted:?}");
}

#[test]
fn every_truncation_is_refused() {
    let bytes = write(Vec::new(), &small_files(), None).output;
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let accepted = refused_everywhere((0..bytes.len()).step_by(3).collect(), |len| {
        let path = save(dir.path(), &format!("short-{len}.bundle"), &bytes[..len]);
        let ok = check(&path, &keys).is_ok();
        std::fs::remove_file(&path).unwrap();
        ok
    });
    assert!(accepted.is_empty(), "lengths accepted: {accepted:?}");
}

/// A defect, made from the good bytes.
type Tamper = fn(&mut Vec<u8>);

#[test]
fn named_defects_are_refused_with_their_reason() {
    let good = write(Vec::new(), &small_files(), None).output;
    let dir = tempfile::tempdir().unwrap();
    let keys = keys();
    let table: &[(&str, Tamper, &str)] = &[
        ("empty file", |b| b.clear(), "short.bundle"),
        ("one byte appended", |b| b.push(0), "short.bundle"),
        (
            "a block of zeros appended",
            |b| b.extend([0; 512]),
            "short.bundle",
        ),
        (
            "the footer's magic changed",
            |b| {
                let n = b.len();
                b[n - 1] ^= 0xff;
            },
            "short.bundle",
        ),
        (
            "the first frame's magic changed",
            |b| b[0] ^= 0x01,
            "short.bundle",
        ),
        (
            "the last half cut off",
            |b| b.truncate(b.len() / 2),
            "short.bundle",
        ),
        (
            "the bundle doubled",
            |b| {
                let copy = b.clone();
                b.extend(copy);
            },
            "short.bundle",
        ),
    ];
    for (name, tamper, must) in table {
        let mut bytes = good.clone();
        tamper(&mut bytes);
        let path = save(dir.path(), "short.bundle", &bytes);
        let e = check(&path, &keys).expect_err(name);
        assert!(e.contains(must), "{name}: {e}");
        assert!(!e.contains('\n'), "{name}: not one line: {e}");
        // The handle refuses what the full check refuses, or leaves it to
        // the content check.
        if let Ok(b) = SignedBundle::open(&path, &keys, Limits::default()) {
            assert!(b.verify_content(&keys, &|_| {}).is_err(), "{name}");
        }
    }
}

#[test]
fn keys_decide() {
    let bytes = write(Vec::new(), &small_files(), None).output;
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), "b.bundle", &bytes);
    let mut other = TestSigner::new().public();
    other.key_id.0[0] ^= 1;
    let e = check(&path, &[other]).unwrap_err();
    assert!(e.contains("unknown key"), "{e}");
    let e = check(&path, &[]).unwrap_err();
    assert!(e.contains("b.bundle"), "{e}");
    // The right id with another key's bytes: the signature does not check.
    let mut wrong = TestSigner::new().public();
    wrong.key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key();
    let e = check(&path, &[wrong]).unwrap_err();
    assert!(e.contains("b.bundle"), "{e}");
    assert!(SignedBundle::open(&path, &keys(), Limits::default()).is_ok());
}

#[test]
fn the_handle_reads_checked_blobs() {
    let files = small_files();
    let bytes = write(Vec::new(), &files, None).output;
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), "b.bundle", &bytes);
    let b = SignedBundle::open(&path, &keys(), Limits::default()).unwrap();
    for f in &files {
        let d = Digest::of(f);
        assert_eq!(b.read_blob(&d, 1 << 20, "file").unwrap(), *f);
        let mut streamed = Vec::new();
        let mut r = b.open_blob(&d, "file").unwrap();
        assert_eq!(r.size(), f.len() as u64);
        r.read_to_end(&mut streamed).unwrap();
        assert_eq!(streamed, *f);
    }
    // Entries are indexed once and shared.
    assert!(std::ptr::eq(b.entries().unwrap(), b.entries().unwrap()));
    let d = Digest::of(&files[1]);
    let e = b.read_blob(&d, 100, "file").unwrap_err().to_string();
    assert!(e.contains("b.bundle"), "{e}");
    let e = b
        .read_blob(&Digest::of(b"absent"), 1 << 20, "SBOM")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("SBOM") && e.contains("not listed in bundle.json"),
        "{e}"
    );
    b.verify_content(&keys(), &|_| {}).unwrap();
}

#[test]
fn damaged_content_passes_the_head_but_not_a_read() {
    let files = small_files();
    let good = write(Vec::new(), &files, None).output;
    // The noise is stored as it is: find it in the archive and damage it.
    let noise = &files[1];
    let at = good
        .windows(64)
        .position(|w| w == &noise[..64])
        .expect("the noise is stored uncompressed");
    let mut bytes = good.clone();
    bytes[at + 1000] ^= 0x40;
    let dir = tempfile::tempdir().unwrap();
    let path = save(dir.path(), "b.bundle", &bytes);
    let b = SignedBundle::open(&path, &keys(), Limits::default()).unwrap();
    let d = Digest::of(noise);
    let e = b.read_blob(&d, 1 << 20, "file").unwrap_err().to_string();
    assert!(e.contains("b.bundle") && e.contains(&d.blob_path()), "{e}");
    let mut r = b.open_blob(&d, "file").unwrap();
    let e = std::io::copy(&mut r, &mut std::io::sink()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
    assert!(e.to_string().contains("does not match its digest"), "{e}");
    // The untouched file still reads; the full check fails.
    assert_eq!(
        b.read_blob(&Digest::of(&files[0]), 1 << 20, "file")
            .unwrap(),
        files[0]
    );
    assert!(b.verify_content(&keys(), &|_| {}).is_err());
}
