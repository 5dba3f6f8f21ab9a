#![no_main]
//! What registries answer, as the bundler (pull) and the installer (push)
//! read it. Every input goes every way:
//!
//! - as a header value: `WWW-Authenticate` challenges
//!   (`parse_www_authenticate`, `parse_challenge`, `is_insufficient_scope`),
//!   `Retry-After`, the upload `Range` of push (`held_from_range`), the
//!   `Content-Range` of a resumed pull, `Location` (resolved against a
//!   registry URL), `Docker-Content-Digest`, a URL's host;
//! - as a body: token service replies (`token_reply`), error bodies
//!   (`read_small` through a real `ureq::Body`, `one_line`,
//!   `has_error_code`);
//! - as manifests: sections split at `\n---\n` are the documents a
//!   registry serves by digest; the first is the reply to a manifest GET
//!   (`check_manifest_reply`, with and without the headers) and the top of
//!   an image walked with the platform filters of a `platforms:` list
//!   (`select_platforms`, as pulling a registry image does), so an index
//!   seed whose children are the following sections reaches the child
//!   manifests and configs.
//!
//! Seeds (`fuzz/seeds/registry/`): replies of the Debian `docker-registry`
//! (distribution v2.8), the challenges Docker Hub, GHCR and Quay send,
//! the error bodies of the OCI distribution spec.

use std::collections::HashMap;
use std::sync::Arc;

use airgap_bundle::pull::{check_manifest_reply, host_of_url};
use airgap_bundle::sources::{
    select_platforms, BlobData, BlobStore, Metadata, PlatformFilter, OCI_INDEX,
};
use airgap_format::Digest;
use airgap_registry::blob::{content_range_start, held_from_range};
use airgap_registry::client::{
    has_error_code, is_insufficient_scope, one_line, parse_challenge, parse_www_authenticate,
    read_small, resolve_location, token_reply, Challenge,
};
use airgap_registry::retry::{parse_retry_after, MAX_RETRY_AFTER};
use airgap_registry::ureq::Body;
use libfuzzer_sys::fuzz_target;

/// The blobs of one repository, in memory, by digest.
struct Store(HashMap<Digest, Arc<Vec<u8>>>);

impl BlobStore for Store {
    fn describe(&self) -> String {
        "registry.fuzz/repo".into()
    }

    fn locate(&self, digest: &Digest, _size: u64) -> anyhow::Result<BlobData> {
        // Like a registry, layers are located without being fetched.
        Ok(BlobData::Memory(
            self.0.get(digest).cloned().unwrap_or_default(),
        ))
    }

    fn read_metadata(&self, digest: &Digest, size: u64, kind: Metadata) -> anyhow::Result<Vec<u8>> {
        let bytes = airgap_bundle::sources::read_verified(self, digest, size, kind.as_str())?;
        if kind == Metadata::Manifest {
            // What pull checks of every manifest it fetches.
            check_manifest_reply(&bytes, Some(*digest), None, None)?;
        }
        Ok(bytes)
    }
}

fn as_header(text: &str) {
    let one = one_line(text);
    assert!(one.chars().count() <= 300 && !one.contains(['\n', '\r', '\t']));
    match parse_www_authenticate(text) {
        Ok(Challenge::Bearer { realm, service }) => {
            let params = parse_challenge(&text[6..]);
            assert_eq!(Some(&realm), params.get("realm"));
            assert_eq!(service.as_ref(), params.get("service"));
        }
        Ok(Challenge::Basic) => {}
        Err(e) => assert!(!e.contains('\n'), "{e:?}"),
    }
    let params = parse_challenge(text);
    assert!(params.keys().all(|k| *k == k.to_ascii_lowercase()));
    let _ = is_insufficient_scope(text);
    if let Some(d) = parse_retry_after(text) {
        assert!(airgap_registry::retry::backoff(3, Some(d)) <= MAX_RETRY_AFTER);
    }
    let _ = held_from_range(Some(text));
    let _ = content_range_start(text);
    for base in [
        "https://registry.fuzz/v2/repo/blobs/uploads/0f1e?_state=x",
        "http://[::1]:5000/v2/",
        "https://r",
    ] {
        let url = resolve_location(base, text);
        assert!(
            url.starts_with("http://") || url.starts_with("https://"),
            "{url}"
        );
    }
    let _ = host_of_url(text);
    let _ = text.parse::<Digest>();
}

fn as_body(data: &[u8], text: Option<&str>) {
    let mut body = Body::builder().data(data.to_vec());
    let read = read_small(&mut body);
    assert!(read.len() <= data.len().max(1) * 3);
    let shown = one_line(&read);
    assert!(!shown.contains('\n'));
    for status in [200, 401, 404, 500] {
        match token_reply(status, &read) {
            Ok(token) => assert!(status == 200 && !token.is_empty()),
            Err(e) => assert!(!e.contains('\n'), "{e:?}"),
        }
    }
    if let Some(text) = text {
        let _ = has_error_code(text, "DIGEST_INVALID");
    }
}

fn as_manifests(data: &[u8]) {
    let sections: Vec<&[u8]> = split_sections(data);
    let store = Store(
        sections
            .iter()
            .map(|s| (Digest::of(s), Arc::new(s.to_vec())))
            .collect(),
    );
    let top = sections[0];
    let digest = Digest::of(top);
    for content_type in [None, Some("application/json"), Some(OCI_INDEX)] {
        if let Ok((d, _)) = check_manifest_reply(top, None, Some(&digest.to_string()), content_type)
        {
            assert_eq!(d, digest);
        }
    }
    let filters: Vec<PlatformFilter> = ["linux/amd64", "linux/arm64/v8", "linux/arm"]
        .iter()
        .map(|p| PlatformFilter::parse(p).expect("a platform"))
        .collect();
    for platforms in [None, Some(&filters[..1]), Some(&filters[..])] {
        if let Ok(selected) = select_platforms(&store, digest, top.len() as u64, None, platforms) {
            assert!(!selected.is_empty());
        }
    }
}

/// The documents of an input: split at lines that are `---`.
fn split_sections(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = find(rest, b"\n---\n") {
        out.push(&rest[..i]);
        rest = &rest[i + 5..];
    }
    out.push(rest);
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let text = std::str::from_utf8(data).ok();
    if let Some(text) = text {
        as_header(text);
    }
    as_body(data, text);
    as_manifests(data);
});
