#![no_main]
//! Raw bytes as a bundle file: the seek table and footer, frame headers and
//! frames, the tar headers and the head (`ArchiveReader`), `inspect`, and
//! `verify_archive` trusting the fuzz-only key (seeds are bundles signed
//! with it, so unmutated frames reach the checks after the signature).
//! The lower-level parsers also get the whole input directly, where that
//! reaches deeper than through an archive: the footer, the seek table, a
//! frame header and frame, `bundle.json` (parse and validate), a seal,
//! `index.json` and a tar header block. Every refusal must be one line.
use airgap_format::bundle_json::Seal;
use airgap_format::inspect::inspect;
use airgap_format::seekable::{self, FOOTER_SIZE};
use airgap_format::tar_entry::{self, EntryHeader, HeaderBlock};
use airgap_format::verify::{parse_index_refs, verify_archive};
use airgap_format::{ArchiveReader, BundleDescriptor, Limits};
use airgap_fuzz::{assert_one_line, sealed, temp_file};
use libfuzzer_sys::fuzz_target;

/// The largest frame decoded from the raw input.
const MAX_FRAME: u32 = 1 << 20;

fn pieces(data: &[u8]) {
    let len = data.len() as u64;
    if let Some(footer) = data.last_chunk::<FOOTER_SIZE>() {
        if let Err(e) = seekable::parse_footer(footer, len) {
            assert_one_line("parse_footer", &e.to_string());
        }
    }
    // The input as a seek table frame, after as many bytes of frames as it
    // says it has.
    if let Err(e) = seekable::parse_seek_table(data, len, 8 << 20) {
        assert_one_line("parse_seek_table", &e.to_string());
    }
    match seekable::parse_frame_header(data) {
        Ok(h) => {
            let expected = h.content_size.unwrap_or(4096).clamp(1, MAX_FRAME as u64) as u32;
            let mut dctx = seekable::decompressor(MAX_FRAME).expect("a zstd context");
            let mut out = Vec::new();
            if let Err(e) =
                seekable::decompress_frame(&mut dctx, data, expected, MAX_FRAME, &mut out)
            {
                assert_one_line("decompress_frame", &e);
            }
            let _ = seekable::is_canonical_stored(data);
        }
        Err(e) => assert_one_line("parse_frame_header", &e),
    }
    match BundleDescriptor::from_slice(data) {
        Ok(d) => {
            let _ = d.expected_entries();
            let _ = d.created_unix();
            let _ = d.to_canonical_bytes();
            if let Some(split) = &d.split {
                let _ = split.total_size();
            }
        }
        Err(e) => assert_one_line("bundle.json", &e.to_string()),
    }
    if let Err(e) = Seal::from_slice(data) {
        assert_one_line("bundle.seal", &e.to_string());
    }
    if let Err(e) = parse_index_refs(data) {
        assert_one_line("index.json", &e);
    }
    if let Some(block) = data.first_chunk::<512>() {
        match tar_entry::parse_header(block) {
            Ok(HeaderBlock::Entry { path, size }) => {
                let _ = EntryHeader::new(path, size, 0);
            }
            Ok(HeaderBlock::End) => {}
            Err(e) => assert_one_line("tar header", &e.to_string()),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    pieces(data);
    let file = temp_file(data);
    let path = file.path();
    match ArchiveReader::open(path, Limits::default()) {
        Ok(r) => {
            if let Err(e) = r.entries() {
                assert_one_line("entries", &e.to_string());
            }
            if let Err(e) = r.read_descriptor_unverified() {
                assert_one_line("head", &e.to_string());
            }
        }
        Err(e) => assert_one_line("open", &e.to_string()),
    }
    match inspect(path) {
        Ok(report) => {
            let _ = report.to_output(false);
            let _ = report.to_output(true);
        }
        Err(e) => assert_one_line("inspect", &e.to_string()),
    }
    let trusted = [sealed::public_key()];
    if let Err(e) = verify_archive(path, &trusted, Limits::default(), &|_| {}) {
        assert_one_line("verify", &e.to_string());
    }
});
