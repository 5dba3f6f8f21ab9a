#![no_main]
//! The bundler's `docker save` reader on arbitrary bytes as the tarball:
//! the tar index (`DockerArchive::open`), both forms (`index.json` and the
//! OCI layout in it, walked through `walk_descriptor`; the legacy
//! `manifest.json`, configs and layers), resolved with no reference and
//! with the references the fixtures use, then every blob read back and
//! checked against its digest as the build copies it (`read_blob` for
//! those stored under `blobs/sha256/`). Every refusal must be one line.
use std::io::Read;

use airgap_bundle::sources::docker_archive::{read_blob, DockerArchive};
use airgap_bundle::sources::MAX_METADATA_BYTES;
use airgap_format::digest::hash_reader;
use airgap_fuzz::{assert_one_line, temp_file};
use libfuzzer_sys::fuzz_target;

/// References the fixtures' archives hold (demo worker and web, a
/// reference-platform image), and one in Docker's full form.
const REFERENCES: [&str; 4] = [
    "demo/worker:1.0.0",
    "demo/web:1.0.0",
    "vendor/dashboard:1.4.0",
    "docker.io/demo/worker:1.0.0",
];

fn check(archive: &DockerArchive, reference: Option<&str>) {
    let image = match archive.resolve(reference) {
        Ok(i) => i,
        Err(e) => {
            assert_one_line("resolve", &format!("{e:#}"));
            return;
        }
    };
    for blob in &image.blobs {
        // As the build stores a blob: the bytes where the source says,
        // hashed while copied, then compared with the digest.
        match blob.data.open(blob.size).map(hash_reader) {
            Ok(Ok((digest, len))) => {
                let _ = digest == blob.digest && len == blob.size;
            }
            Ok(Err(e)) => assert_one_line("blob", &e.to_string()),
            Err(e) => assert_one_line("blob", &format!("{e:#}")),
        }
        if blob.size <= MAX_METADATA_BYTES {
            if let Err(e) = read_blob(archive, &blob.digest, blob.size) {
                assert_one_line("read_blob", &format!("{e:#}"));
            }
        }
        let mut head = [0u8; 16];
        if let Ok(mut r) = blob.data.open(blob.size) {
            let _ = r.read(&mut head);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let file = temp_file(data);
    let archive = match DockerArchive::open(file.path()) {
        Ok(a) => a,
        Err(e) => {
            assert_one_line("open", &format!("{e:#}"));
            return;
        }
    };
    check(&archive, None);
    for r in REFERENCES {
        check(&archive, Some(r));
    }
});
