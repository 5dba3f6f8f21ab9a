//! Bundles made in memory for unit tests: a signer with a fixed key, a
//! small description and a writer run that produces the bytes the bundler
//! would, so the verifier, the reader and [`crate::SignedBundle`] are tested
//! without the command-line tools.

use std::io;

use ed25519_dalek::{Signer, SigningKey};

use crate::bundle_json::ExpectedEntry;
use crate::bundle_json::{
    BlobEntry, BundleDescriptor, FileEntry, FileKind, LayoutEntry, SbomEntry, SbomFormat,
    SbomOrigin, CYCLONEDX_MEDIA_TYPE, INDEX_JSON, OCI_LAYOUT, SBOMS_LAST_FORMAT_VERSION,
};
use crate::digest::Digest;
use crate::signature::{prehash, KeyId, PublicKey, Signature, UNTRUSTED_SIGNATURE_COMMENT};
use crate::writer::bundle::{
    BundleOutput, BundleSigner, BundleWriter, Finished, Head, UNKNOWN_SIZE,
};
use crate::writer::{Compression, WriterOptions};

pub(crate) const OCI: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
pub(crate) const INDEX: &[u8] =
    br#"{"manifests":[],"mediaType":"application/vnd.oci.image.index.v1+json","schemaVersion":2}"#;
pub(crate) const MTIME: u64 = 1_700_000_000;

/// Signs as the bundler does, with a key made from a fixed seed.
pub(crate) struct TestSigner(SigningKey);

impl TestSigner {
    pub(crate) fn new() -> Self {
        TestSigner(SigningKey::from_bytes(&[7; 32]))
    }

    pub(crate) fn public(&self) -> PublicKey {
        PublicKey {
            key_id: KeyId([1, 2, 3, 4, 5, 6, 7, 8]),
            key: self.0.verifying_key(),
        }
    }
}

impl BundleSigner for TestSigner {
    fn sign(&self, file: &str, bytes: &[u8]) -> io::Result<String> {
        let comment = format!("timestamp:{MTIME}\tfile:{file}\tbundle:t@1.0.0\tprehashed");
        let signature = self.0.sign(&prehash(bytes)).to_bytes();
        let mut global = signature.to_vec();
        global.extend_from_slice(comment.as_bytes());
        Ok(Signature {
            untrusted_comment: UNTRUSTED_SIGNATURE_COMMENT.into(),
            key_id: self.public().key_id,
            signature,
            trusted_comment: comment,
            global_signature: self.0.sign(&global).to_bytes(),
        }
        .to_minisign_text())
    }
}

pub(crate) fn options() -> WriterOptions {
    WriterOptions {
        level: 3,
        mtime: MTIME,
    }
}

/// Content that compresses (text) and content that does not.
pub(crate) fn contents() -> Vec<Vec<u8>> {
    let text: Vec<u8> = (0..3000)
        .flat_map(|i| format!("line {i} of the release notes\n").into_bytes())
        .collect();
    let mut noise = vec![0u8; DATA_FRAME + 777];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    vec![text, noise]
}

pub(crate) const DATA_FRAME: usize = crate::writer::DATA_FRAME_SIZE;

/// A bundle of files (and an SBOM, when given), the lowest version
/// that can say it.
pub(crate) fn describe(files: &[Vec<u8>], sbom: Option<(Digest, u64)>) -> BundleDescriptor {
    let files: Vec<(Digest, u64)> = files
        .iter()
        .map(|f| (Digest::of(f), f.len() as u64))
        .collect();
    describe_sizes(&files, sbom)
}

/// [`describe`] from the files' digests and sizes.
pub(crate) fn describe_sizes(
    files: &[(Digest, u64)],
    sbom: Option<(Digest, u64)>,
) -> BundleDescriptor {
    let mut blobs: Vec<BlobEntry> = files
        .iter()
        .map(|&(digest, size)| BlobEntry {
            digest,
            size,
            media_type: "text/plain".into(),
        })
        .collect();
    let mut sboms = Vec::new();
    if let Some((digest, size)) = sbom {
        blobs.push(BlobEntry {
            digest,
            size,
            media_type: CYCLONEDX_MEDIA_TYPE.into(),
        });
        sboms.push(SbomEntry {
            image: None,
            platform: None,
            format: SbomFormat::Cyclonedx,
            origin: SbomOrigin::Generated,
            digest,
            size,
        });
    }
    blobs.sort_by_key(|b| b.digest);
    let total_size = blobs.iter().fold(0u64, |t, b| t.saturating_add(b.size));
    BundleDescriptor {
        format_version: if sbom.is_some() {
            SBOMS_LAST_FORMAT_VERSION
        } else {
            1
        },
        name: "t".into(),
        version: "1.0.0".into(),
        description: String::new(),
        created: "2023-11-14T22:13:20Z".into(),
        generator: "writer tests".into(),
        images: Vec::new(),
        charts: Vec::new(),
        files: files
            .iter()
            .enumerate()
            .map(|(i, &(digest, size))| FileEntry {
                name: format!("docs/f{i}.txt"),
                kind: FileKind::Documentation,
                media_type: "text/plain".into(),
                digest,
                size,
            })
            .collect(),
        templates: Vec::new(),
        sboms,
        license: None,
        base: None,
        split: None,
        layout: vec![
            LayoutEntry {
                path: OCI_LAYOUT.into(),
                digest: Digest::of(OCI),
                size: OCI.len() as u64,
            },
            LayoutEntry {
                path: INDEX_JSON.into(),
                digest: Digest::of(INDEX),
                size: INDEX.len() as u64,
            },
        ],
        blobs,
        base_blobs: Vec::new(),
        total_size,
    }
}

/// The content of each entry by path.
pub(crate) fn content<'a>(path: &str, files: &'a [Vec<u8>], sbom: &'a [u8]) -> &'a [u8] {
    match path {
        OCI_LAYOUT => OCI,
        INDEX_JSON => INDEX,
        _ => files
            .iter()
            .map(|f| &f[..])
            .chain([sbom])
            .find(|c| Digest::of(c).blob_path() == path)
            .expect("a known entry"),
    }
}

/// Appends `entries` from `files` and `sbom`, alternating the two ways
/// of appending.
pub(crate) fn append<W: BundleOutput + Send>(
    w: &mut BundleWriter<W>,
    entries: &[ExpectedEntry],
    files: &[Vec<u8>],
    sbom: &[u8],
) {
    for (i, e) in entries.iter().enumerate() {
        let data = content(&e.path, files, sbom);
        let got = if i % 2 == 0 {
            w.append_bytes(&e.path, data, Compression::Auto).unwrap()
        } else {
            w.append_reader(&e.path, e.size, data, Compression::Auto, &mut |_| {})
                .unwrap()
        };
        assert_eq!(got, e.digest);
    }
}

/// Writes a bundle of `files` and, generated "late", an SBOM: with a
/// final head when there is none, else with a reserved one holding a
/// stand-in, the SBOM appended after the other entries.
pub(crate) fn write<W: BundleOutput + Send>(
    out: W,
    files: &[Vec<u8>],
    sbom: Option<&[u8]>,
) -> Finished<W> {
    let signer = TestSigner::new();
    let sbom_bytes = sbom.unwrap_or_default();
    let real = describe(files, sbom.map(|s| (Digest::of(s), s.len() as u64)));
    let head = match sbom {
        None => Head::Final(real.clone()),
        Some(_) => {
            let mut room = describe(files, Some((Digest::of(b"stand-in"), UNKNOWN_SIZE)));
            room.total_size = UNKNOWN_SIZE;
            Head::Reserved(room)
        }
    };
    let first: Vec<ExpectedEntry> = match &head {
        Head::Final(d) | Head::Reserved(d) => d
            .expected_entries()
            .into_iter()
            .filter(|e| e.size != UNKNOWN_SIZE)
            .collect(),
    };
    let mut w = BundleWriter::start(out, options(), head, &signer).unwrap();
    append(&mut w, &first, files, sbom_bytes);
    // The SBOM is known now.
    let rest = w.remaining(&real).unwrap();
    append(&mut w, &rest, files, sbom_bytes);
    w.finish(real, &signer).unwrap()
}
