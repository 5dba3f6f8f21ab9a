//! The fuzz-only signing key, and sealing for the `archive_tar` target: a
//! tar stream made into a bundle archive signed and sealed with that key
//! through the format crate's writer and the bundler's `sign::seal`, so
//! `verify_archive` gets past both signatures to the checks they guard.

use std::sync::OnceLock;

use airgap_bundle::sign::{seal, SecretKey};
use airgap_format::bundle_json::{BUNDLE_SEAL, BUNDLE_SEAL_SIG, BUNDLE_SIG, MAX_CREATED_UNIX};
use airgap_format::{ArchiveWriter, Compression, PublicKey, WriterOptions};

/// FUZZ-ONLY secret key (see `keys/README.md`): public on purpose, it
/// signs fuzz inputs and seed bundles and nothing else.
pub const FUZZ_ONLY_SECRET_KEY: &str = include_str!("../keys/fuzz-only.key");
/// The public half of [`FUZZ_ONLY_SECRET_KEY`], the one key the targets trust.
pub const FUZZ_ONLY_PUBLIC_KEY: &str = include_str!("../keys/fuzz-only.pub");
/// The trusted comment of the signatures made here (the bundler's form).
pub const COMMENT: &str = "timestamp:1700000000\tfile:bundle.json\tfuzz";

/// The fuzz-only secret key, parsed once.
pub fn secret_key() -> &'static SecretKey {
    static KEY: OnceLock<SecretKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SecretKey::parse(FUZZ_ONLY_SECRET_KEY, "keys/fuzz-only.key").expect("the fuzz key parses")
    })
}

/// The fuzz-only public key, the trust store of the archive targets.
pub fn public_key() -> PublicKey {
    PublicKey::parse(FUZZ_ONLY_PUBLIC_KEY, "keys/fuzz-only.pub").expect("the fuzz key parses")
}

/// Where the first entry of `stream` ends (header, data and padding, cut
/// at the end of the stream), its data, and its mtime: read leniently from
/// the header's fields, whatever the entry is; the verifier judges it.
fn split_head(stream: &[u8]) -> (usize, &[u8], u64) {
    let Some(block) = stream.get(..512) else {
        return (stream.len(), &[], 0);
    };
    let header = tar::Header::from_byte_slice(block);
    let size = header.entry_size().unwrap_or(0);
    let mtime = header
        .mtime()
        .ok()
        .filter(|&t| t <= MAX_CREATED_UNIX)
        .unwrap_or(0);
    let rest = (stream.len() - 512) as u64;
    let data_end = 512 + size.min(rest) as usize;
    let head_end = 512 + size.div_ceil(512).saturating_mul(512).min(rest) as usize;
    (head_end, &stream[512..data_end], mtime)
}

/// Makes a bundle archive of `stream`: a tar stream holding `bundle.json`
/// first and then the body entries (`oci-layout`, `index.json`, blobs),
/// without `bundle.json.minisig`, the seal entries or the end-of-archive
/// blocks, which are added here as the bundler writes them:
///
/// ```text
/// stream[..end of the first entry]    as given (bundle.json, any header)
/// bundle.json.minisig                 its data signed with the fuzz key
/// stream[end of the first entry..]    as given
/// bundle.seal, bundle.seal.minisig    sealing the frames above
/// end of archive, seek table
/// ```
///
/// The stream's bytes are framed as they are (frames of at most 1 MiB),
/// so every tar header, padding byte and entry is the fuzzer's, with one
/// exception: when the body's `oci-layout` or `index.json` differ from
/// what `bundle.json` lists, their digest and size in `bundle.json` are
/// updated first (see `fix_layout`) and its header gets the new size.
pub fn seal_stream(stream: &[u8]) -> Vec<u8> {
    let key = secret_key();
    let (head_end, bundle_json, mtime) = split_head(stream);
    let fixed = fix_layout(bundle_json, &stream[head_end..]);
    let bundle_json = fixed.as_deref().unwrap_or(bundle_json);
    let signature = key.sign(bundle_json, COMMENT).to_minisign_text();
    let options = WriterOptions { level: 1, mtime };
    let mut w = ArchiveWriter::new(Vec::new(), options).expect("an archive writer in memory");
    let written = (|| -> std::io::Result<Vec<u8>> {
        match &fixed {
            // bundle.json changed: its header gets the new size.
            Some(json) => {
                let mut header = tar::Header::from_byte_slice(&stream[..512]).clone();
                header.set_size(json.len() as u64);
                header.set_cksum();
                w.append_raw(header.as_bytes())?;
                let mut data = json.clone();
                data.resize(json.len().div_ceil(512) * 512, 0);
                w.append_raw(&data)?;
            }
            None => w.append_raw(&stream[..head_end])?,
        }
        w.append_bytes(BUNDLE_SIG, signature.as_bytes(), Compression::Zstd)?;
        w.append_raw(&stream[head_end..])?;
        let (seal_bytes, seal_sig) =
            seal(key, bundle_json, w.seal(), COMMENT).map_err(std::io::Error::other)?;
        w.append_stored(BUNDLE_SEAL, &seal_bytes)?;
        w.append_stored(BUNDLE_SEAL_SIG, seal_sig.as_bytes())?;
        w.finish()
    })();
    written.expect("writing an archive to memory")
}

/// The body entries `(path, data)` of a tar stream, read leniently (any
/// header that gives a path and a size), up to the first block that does
/// not or to the end of the stream.
fn body_entries(mut body: &[u8]) -> Vec<(String, &[u8])> {
    let mut out = Vec::new();
    while let Some(block) = body.get(..512) {
        let header = tar::Header::from_byte_slice(block);
        let Ok(size) = header.entry_size() else { break };
        let Ok(size) = usize::try_from(size) else {
            break;
        };
        let path = String::from_utf8_lossy(&header.path_bytes()).into_owned();
        let rest = &body[512..];
        let Some(data) = rest.get(..size) else { break };
        out.push((path, data));
        body = rest.get(size.div_ceil(512) * 512..).unwrap_or_default();
    }
    out
}

/// `bundle.json` with the digest and size of `oci-layout` and
/// `index.json` set to those of the entries the body holds, when they
/// differ: a fuzzer cannot compute SHA-256, so without this every change
/// to those entries would stop at their digest and the checks of their
/// content (`check_layout`, `parse_index_refs` against the images) would
/// see only the seeds' bytes. The text is edited in place (the digest
/// string, and `"path":P,"size":N` as canonical JSON writes it), so the
/// rest of `bundle.json` stays the fuzzer's. `None` when nothing changes.
fn fix_layout(bundle_json: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let value: serde_json::Value = serde_json::from_slice(bundle_json).ok()?;
    let layout = value.get("layout")?.as_array()?;
    let mut text = String::from_utf8(bundle_json.to_vec()).ok()?;
    let original = text.clone();
    for (path, data) in body_entries(body) {
        if path != "oci-layout" && path != "index.json" {
            continue;
        }
        let Some(entry) = layout
            .iter()
            .find(|l| l.get("path").and_then(|p| p.as_str()) == Some(path.as_str()))
        else {
            continue;
        };
        let digest = airgap_format::Digest::of(data).to_string();
        if let Some(old) = entry.get("digest").and_then(|d| d.as_str()) {
            if old.len() > 10 {
                text = text.replace(old, &digest);
            }
        }
        if let Some(old) = entry.get("size").and_then(|s| s.as_u64()) {
            text = text.replace(
                &format!("\"path\":\"{path}\",\"size\":{old}"),
                &format!("\"path\":\"{path}\",\"size\":{}", data.len()),
            );
        }
    }
    (text != original).then(|| text.into_bytes())
}
