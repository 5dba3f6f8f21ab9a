#![no_main]
//! Licences and licence requests, as the installer reads them from a site
//! (`airgap-install license activate|status`) and the vendor from a
//! customer (`airgap-bundle license issue --request`).
//!
//! Every input goes three ways:
//!
//! 1. as licence text: [`verify`] and [`status`] against the fuzz-only key,
//!    on a fixed clock and fixed node ids (with and without a cluster, with
//!    a watermark and an active licence), then the decoded payload of a
//!    well-formed armor as in 2;
//! 2. as signed payload JSON: [`LicensePayload::parse`] and `validate`,
//!    `standing_at` around its own dates; a payload that passes is signed
//!    with the fuzz-only key ([`airgap_licenses::issue::armor`]) and must
//!    then authenticate through the whole of [`verify`] and [`status`],
//!    so mutated fields reach the node, clock and validity checks past the
//!    signature;
//! 3. as request JSON: [`Request::parse`], which must read back what it
//!    writes.
//!
//! The seeds (`fuzz/seeds/license/`) are licences issued by
//! `airgap-bundle license issue` with `fuzz/keys/license/fuzz-only.key`,
//! their payloads and the requests they answer; see
//! `fuzz/keys/license/README.md`.

use std::sync::LazyLock;

use airgap_bundle::sign::SecretKey;
use airgap_format::PublicKey;
use airgap_licenses::license::{ArmoredLicense, LicensePayload};
use airgap_licenses::verify::{standing_at, ActiveLicense};
use airgap_licenses::{status, verify, Context, NodeIds, Request};
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;
use time::Duration;

/// FUZZ-ONLY signing key: committed on purpose, trusted by nothing but the
/// fuzz targets. Never use it to sign a real licence.
const FUZZ_ONLY_KEY: &str = include_str!("../keys/license/fuzz-only.key");
/// The machine id the seed requests were made on.
const MACHINE_ID: &str = "5e2f1c0a9b8d4e7f8a6b3c2d1e0f9a8b";
/// The cluster UID the cluster-bound seed request names.
const CLUSTER_UID: &str = "0f8e3c1a-5b2d-4e6f-9a7b-1c2d3e4f5a6b";

struct Fixture {
    key: SecretKey,
    trusted: Vec<PublicKey>,
    nodes: Vec<NodeIds>,
    contexts: Vec<Context>,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let key = SecretKey::parse(FUZZ_ONLY_KEY, "fuzz-only.key").expect("the fuzz key");
    let now = datetime!(2027-03-01 12:00:00 UTC);
    let mut contexts = vec![Context::new(now)];
    let mut later = Context::new(datetime!(2028-01-15 00:00:00 UTC));
    later.watermark = Some(datetime!(2028-01-14 00:00:00 UTC));
    later.product = Some("reference-platform".into());
    later.active = Some(ActiveLicense {
        serial: 2,
        digest: "0".repeat(64),
    });
    contexts.push(later);
    Fixture {
        trusted: vec![key.public()],
        key,
        nodes: vec![
            NodeIds::new(MACHINE_ID, None).expect("node ids"),
            NodeIds::new(MACHINE_ID, Some(CLUSTER_UID)).expect("node ids"),
        ],
        contexts,
    }
});

fn as_licence(f: &Fixture, text: &str) {
    for node in &f.nodes {
        for ctx in &f.contexts {
            let verified = verify(text, "fuzz.lic", &f.trusted, node, ctx);
            let shown = status(text, "fuzz.lic", &f.trusted, node, ctx);
            match (&verified, &shown) {
                // Activation and status authenticate alike.
                (Ok(v), Ok(s)) => {
                    assert_eq!(v.payload, s.payload);
                    assert_eq!(v.digest, s.digest);
                }
                (Ok(_), Err(e)) => panic!("verify accepts what status refuses: {e}"),
                _ => {}
            }
            if let Err(e) = &verified {
                one_line(&e.to_string());
            }
        }
    }
    if let Ok(armored) = ArmoredLicense::parse(text, "fuzz.lic") {
        assert_eq!(armored.digest().len(), 64);
        as_payload(f, &armored.payload);
    }
}

fn as_payload(f: &Fixture, bytes: &[u8]) {
    let payload = match LicensePayload::parse(bytes, "payload") {
        Ok(p) => p,
        Err(e) => return one_line(&e.to_string()),
    };
    let valid = payload.validate();
    let _ = payload.header_values();
    let second = Duration::seconds(1);
    for t in [payload.not_before, payload.expires, payload.grace_ends()] {
        for at in [t.checked_sub(second), Some(t), t.checked_add(second)] {
            if let Some(at) = at {
                let _ = standing_at(&payload, "payload", at);
            }
        }
    }
    if valid.is_err() {
        return;
    }
    // A valid payload, signed with a trusted key, authenticates.
    let text = airgap_licenses::issue::armor(&payload, f.key.signing_key())
        .expect("a valid payload serialises");
    let ours = payload.key_id == f.key.key_id().to_string();
    for node in &f.nodes {
        for ctx in &f.contexts {
            let shown = status(&text, "signed.lic", &f.trusted, node, ctx);
            if ours {
                let s = shown.unwrap_or_else(|e| panic!("a valid signed payload is refused: {e}"));
                assert_eq!(s.payload, payload);
            }
            if let Ok(v) = verify(&text, "signed.lic", &f.trusted, node, ctx) {
                assert!(ours);
                assert_eq!(v.payload, payload);
            }
        }
    }
}

fn as_request(bytes: &[u8]) {
    match Request::parse(bytes, "request.json") {
        Ok(r) => {
            let again = Request::parse(r.to_json_pretty().as_bytes(), "request.json")
                .expect("a request reads back what it writes");
            assert_eq!(again, r);
        }
        Err(e) => one_line(&e.to_string()),
    }
}

/// Errors about untrusted input are one line.
fn one_line(message: &str) {
    assert!(!message.contains('\n'), "a multi-line error: {message:?}");
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    if let Ok(text) = airgap_licenses::license::decode_text(data, "fuzz.lic") {
        as_licence(f, text);
    }
    as_payload(f, data);
    as_request(data);
});
