#![no_main]
//! The checks a signature guards: the input is a bundle's tar stream
//! (`bundle.json` first, then the body entries, without the signature,
//! the seal or the end-of-archive blocks; see `sealed::seal_stream`),
//! which the harness frames, signs and seals with the fuzz-only key as the
//! bundler would. `verify_archive`, trusting that key, then checks every
//! tar header, `bundle.json` (strict JSON, schema, `validate`), the entry
//! order, sizes, padding and digests, `oci-layout` and `index.json`
//! against the images, the end of the archive and the seal. `inspect` and
//! the reader's entry walk get the same archive. Every refusal must be one
//! line.
use airgap_format::inspect::inspect;
use airgap_format::verify::verify_archive;
use airgap_format::{ArchiveReader, Limits};
use airgap_fuzz::{assert_one_line, sealed, temp_file};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let archive = sealed::seal_stream(data);
    let file = temp_file(&archive);
    let path = file.path();
    let trusted = [sealed::public_key()];
    if let Err(e) = verify_archive(path, &trusted, Limits::default(), &|_| {}) {
        assert_one_line("verify", &e.to_string());
    }
    match inspect(path) {
        Ok(report) => {
            let _ = report.to_output(false);
        }
        Err(e) => assert_one_line("inspect", &e.to_string()),
    }
    let r = ArchiveReader::open(path, Limits::default()).expect("the harness writes a seek table");
    if let Err(e) = r.entries() {
        assert_one_line("entries", &e.to_string());
    }
});
