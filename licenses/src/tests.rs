//! End-to-end tests: issue with the vendor side, verify with the site side,
//! one test per defence.

use std::collections::BTreeMap;

use airgap_format::{KeyId, PublicKey};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::license::{Envelope, BEGIN_LINE, END_LINE};
use crate::*;

const MID: &str = "4c4c4544004a3510805ab4c04f595a32";
const OTHER_MID: &str = "9f86d081884c7d659a2feaa0c55ad015";
const UID: &str = "0f8e3c1a-5b2d-4e6f-9a7b-1c2d3e4f5a6b";
const OTHER_UID: &str = "11111111-2222-4333-8444-555555555555";
const PRODUCT: &str = "reference-platform";
const WHAT: &str = "site.lic";
const T0: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);

fn key(n: u8) -> (SigningKey, PublicKey) {
    let signing = SigningKey::from_bytes(&[n; 32]);
    let public = PublicKey {
        key_id: KeyId([n, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, n]),
        key: signing.verifying_key(),
    };
    (signing, public)
}

fn trusted() -> Vec<PublicKey> {
    vec![key(1).1]
}

fn node() -> NodeIds {
    NodeIds::new(MID, None).unwrap()
}

fn node_with_cluster(uid: &str) -> NodeIds {
    NodeIds::new(MID, Some(uid)).unwrap()
}

fn request_for(ids: &NodeIds) -> Request {
    Request::new(PRODUCT, ids, "airgap-install 0.1.0", T0 - Duration::days(1)).unwrap()
}

fn terms() -> Terms {
    Terms {
        customer: "Example Hospital".to_string(),
        expires: T0 + Duration::days(365),
        not_before: None,
        grace_days: 14,
        features: vec!["sso".to_string(), "audit".to_string()],
        limits: BTreeMap::from([("workspaces".to_string(), 5)]),
    }
}

fn issue_with(ids: &NodeIds, terms: &Terms, serial: u64, key_n: u8) -> String {
    let (signing, public) = key(key_n);
    issue(
        &request_for(ids),
        terms,
        serial,
        &signing,
        public.key_id,
        T0,
    )
    .unwrap()
}

fn licence(serial: u64) -> String {
    issue_with(&node(), &terms(), serial, 1)
}

fn at(days: i64) -> Context {
    Context::new(T0 + Duration::days(days))
}

fn check(text: &str, ctx: &Context) -> Result<Verified, LicenseError> {
    verify(text, WHAT, &trusted(), &node(), ctx)
}

fn err(text: &str, ctx: &Context) -> String {
    let e = check(text, ctx).unwrap_err().to_string();
    assert!(!e.contains('\n'), "error is not one line: {e}");
    e
}

/// The parts of a licence file, to alter and put back together.
struct Parts {
    headers: Vec<(String, String)>,
    envelope: serde_json::Value,
}

fn split(text: &str) -> Parts {
    let armored = ArmoredLicense::parse(text, WHAT).unwrap();
    let h = &armored.headers;
    let headers = [
        ("Product", &h.product),
        ("Customer", &h.customer),
        ("Serial", &h.serial),
        ("Expires", &h.expires),
        ("Key", &h.key),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let envelope = serde_json::to_value(Envelope {
        alg: armored.alg,
        key_id: armored.key_id,
        payload: B64.encode(&armored.payload),
        signature: B64.encode(&armored.signature),
    })
    .unwrap();
    Parts { headers, envelope }
}

fn join(parts: &Parts) -> String {
    let mut text = format!("{BEGIN_LINE}\n");
    for (name, value) in &parts.headers {
        text.push_str(&format!("{name}: {value}\n"));
    }
    text.push('\n');
    let body = B64.encode(serde_json::to_vec(&parts.envelope).unwrap());
    for chunk in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(chunk).unwrap());
        text.push('\n');
    }
    text.push_str(END_LINE);
    text.push('\n');
    text
}

fn payload_of(parts: &Parts) -> serde_json::Value {
    let bytes = B64
        .decode(parts.envelope["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Re-signs `payload` (with key `key_n`) and rewrites the headers to match:
/// a licence the vendor really signed, to reach the checks after the
/// signature.
fn resign(parts: &mut Parts, payload: &serde_json::Value, key_n: u8) {
    let bytes = serde_json::to_vec(payload).unwrap();
    let signature = key(key_n).0.sign(&license::signing_input(&bytes));
    parts.envelope["payload"] = B64.encode(&bytes).into();
    parts.envelope["signature"] = B64.encode(signature.to_bytes()).into();
    for (name, value) in parts.headers.iter_mut() {
        let field = match name.as_str() {
            "Product" => "product",
            "Customer" => "customer",
            "Serial" => "serial",
            "Expires" => "expires",
            _ => "keyId",
        };
        *value = match &payload[field] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
    }
}

fn signed_variant(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut parts = split(&licence(1));
    let mut payload = payload_of(&parts);
    edit(&mut payload);
    resign(&mut parts, &payload, 1);
    join(&parts)
}

#[test]
fn valid_licence_verifies() {
    let text = licence(1);
    let v = check(&text, &at(1)).unwrap();
    assert_eq!(v.standing, Standing::Valid { days_left: 364 });
    assert!(!v.same_as_active);
    let p = &v.payload;
    assert_eq!(p.product, PRODUCT);
    assert_eq!(p.customer, "Example Hospital");
    assert_eq!(p.serial, 1);
    assert_eq!(p.features, ["audit", "sso"]);
    assert_eq!(p.limits.get("workspaces"), Some(&5));
    assert_eq!(p.bind, [Component::Machine]);
    assert_eq!(p.issued_at, T0);
    assert_eq!(p.not_before, T0);
    assert_eq!(p.key_id, "0166554433221101");
    assert!(text.starts_with(
        "-----BEGIN AIRGAP LICENSE-----\nProduct: reference-platform\nCustomer: Example Hospital\nSerial: 1\nExpires: 2027-01-01T00:00:00Z\nKey: 0166554433221101\n\n"
    ), "{text}");
    assert!(text.ends_with("\n-----END AIRGAP LICENSE-----\n"));
    for line in text.lines() {
        assert!(line.len() <= 64, "{line}");
    }
}

#[test]
fn issuing_is_deterministic() {
    let (signing, public) = key(1);
    let request = request_for(&node());
    let a = issue(&request, &terms(), 7, &signing, public.key_id, T0).unwrap();
    let b = issue(&request, &terms(), 7, &signing, public.key_id, T0).unwrap();
    assert_eq!(a, b);
}

#[test]
fn signature_checks_independently_from_the_documented_construction() {
    let text = licence(1);
    // Armor: the lines between the blank line after the headers and END.
    let body: String = text
        .lines()
        .skip_while(|l| !l.is_empty())
        .skip(1)
        .take_while(|l| *l != "-----END AIRGAP LICENSE-----")
        .collect();
    let envelope: serde_json::Value = serde_json::from_slice(&B64.decode(body).unwrap()).unwrap();
    assert_eq!(envelope["alg"], "Ed25519");
    assert_eq!(envelope.as_object().unwrap().len(), 4);
    let payload = B64.decode(envelope["payload"].as_str().unwrap()).unwrap();
    let signature: [u8; 64] = B64
        .decode(envelope["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let mut message = b"airgap-license/v1\0".to_vec();
    message.extend_from_slice(&payload);
    let verifying = SigningKey::from_bytes(&[1; 32]).verifying_key();
    verifying
        .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .unwrap();
    // Not over the payload alone: the domain separation is part of it.
    assert!(verifying
        .verify_strict(&payload, &ed25519_dalek::Signature::from_bytes(&signature))
        .is_err());
    // The payload's field order is the documented one.
    let payload = String::from_utf8(payload).unwrap();
    let positions: Vec<usize> = [
        "format",
        "alg",
        "keyId",
        "product",
        "serial",
        "customer",
        "issuedAt",
        "notBefore",
        "expires",
        "graceDays",
        "features",
        "limits",
        "fingerprint",
        "bind",
        "requestNonce",
    ]
    .iter()
    .map(|k| payload.find(&format!("\"{k}\":")).unwrap())
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{payload}");
    assert!(
        payload.starts_with("{\"format\":1,\"alg\":\"Ed25519\","),
        "{payload}"
    );
}

#[test]
fn raw_ids_never_leave_the_node() {
    let ids = node_with_cluster(UID);
    let request = request_for(&ids).to_json_pretty();
    let text = issue_with(&ids, &terms(), 1, 1);
    let payload = payload_of(&split(&text)).to_string();
    for haystack in [&request, &text, &payload] {
        for needle in [MID, UID, &UID.replace('-', ""), &MID.to_uppercase()] {
            assert!(!haystack.contains(needle), "{needle} in {haystack}");
        }
    }
    let fp = Fingerprint::compute(PRODUCT, &ids).unwrap();
    assert!(payload.contains(&fp.machine) && payload.contains(fp.cluster.as_ref().unwrap()));
}

#[test]
fn tampered_payload_refused() {
    let mut parts = split(&licence(1));
    let mut payload = payload_of(&parts);
    payload["customer"] = "Someone Else".into();
    payload["limits"]["workspaces"] = 500.into();
    parts.envelope["payload"] = B64.encode(serde_json::to_vec(&payload).unwrap()).into();
    assert_eq!(
        err(&join(&parts), &at(1)),
        "site.lic: signature by key 0166554433221101 does not match the licence (altered or corrupted)"
    );
    // Even a re-encoding of the same JSON (added white space) is refused:
    // the signature covers the exact bytes.
    let mut parts = split(&licence(1));
    let payload = payload_of(&parts);
    parts.envelope["payload"] = B64
        .encode(serde_json::to_vec_pretty(&payload).unwrap())
        .into();
    assert!(matches!(
        check(&join(&parts), &at(1)),
        Err(LicenseError::BadSignature { .. })
    ));
}

#[test]
fn tampered_signature_refused() {
    let mut parts = split(&licence(1));
    let mut signature = B64
        .decode(parts.envelope["signature"].as_str().unwrap())
        .unwrap();
    signature[10] ^= 1;
    parts.envelope["signature"] = B64.encode(&signature).into();
    assert!(matches!(
        check(&join(&parts), &at(1)),
        Err(LicenseError::BadSignature { .. })
    ));
    // A signature of the wrong length.
    parts.envelope["signature"] = B64.encode(&signature[..63]).into();
    assert_eq!(
        err(&join(&parts), &at(1)),
        "site.lic: envelope signature: expected 64 bytes, found 63"
    );
}

#[test]
fn untrusted_key_refused() {
    let text = issue_with(&node(), &terms(), 1, 2);
    assert_eq!(
        err(&text, &at(1)),
        "site.lic: signed by unknown key 0266554433221102 (trusted: 0166554433221101)"
    );
    let e = verify(&text, WHAT, &[], &node(), &at(1))
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("(trusted: none)"), "{e}");
    // Trusting both keys accepts it.
    verify(&text, WHAT, &[key(1).1, key(2).1], &node(), &at(1)).unwrap();
    // Signed by key 2 but claiming key 1's id: the signature fails.
    let mut parts = split(&text);
    let mut payload = payload_of(&parts);
    payload["keyId"] = "0166554433221101".into();
    resign(&mut parts, &payload, 2);
    parts.envelope["keyId"] = "0166554433221101".into();
    assert!(matches!(
        check(&join(&parts), &at(1)),
        Err(LicenseError::BadSignature { .. })
    ));
}

#[test]
fn unknown_algorithm_refused() {
    let mut parts = split(&licence(1));
    parts.envelope["alg"] = "RSA".into();
    assert_eq!(
        err(&join(&parts), &at(1)),
        "site.lic: algorithm \"RSA\" is not allowed (allowed: Ed25519)"
    );
    parts.envelope["alg"] = "ed25519".into();
    assert!(matches!(
        check(&join(&parts), &at(1)),
        Err(LicenseError::AlgorithmNotAllowed { .. })
    ));
    // The signed payload names another algorithm: refused too.
    let text = signed_variant(|p| p["alg"] = "HS256".into());
    assert_eq!(
        err(&text, &at(1)),
        "site.lic: algorithm \"HS256\" is not allowed (allowed: Ed25519)"
    );
}

#[test]
fn headers_must_match_the_signed_payload() {
    for (index, name, value) in [
        (0, "Product", "other-product"),
        (1, "Customer", "Someone Else"),
        (2, "Serial", "99"),
        (3, "Expires", "2099-01-01T00:00:00Z"),
        (4, "Key", "0266554433221102"),
    ] {
        let mut parts = split(&licence(1));
        parts.headers[index].1 = value.to_string();
        assert_eq!(
            err(&join(&parts), &at(1)),
            format!("site.lic: header {name} does not match the signed licence")
        );
    }
    let mut parts = split(&licence(1));
    parts.headers.push(("Note".into(), "x".into()));
    assert_eq!(
        err(&join(&parts), &at(1)),
        "site.lic: unknown header \"Note\""
    );
    let mut parts = split(&licence(1));
    parts.headers.remove(2);
    assert_eq!(
        err(&join(&parts), &at(1)),
        "site.lic: missing header Serial"
    );
    let mut parts = split(&licence(1));
    parts.headers.push(("Serial".into(), "1".into()));
    assert_eq!(
        err(&join(&parts), &at(1)),
        "site.lic: header Serial appears twice"
    );
    // Headers in another order are fine.
    let mut parts = split(&licence(1));
    parts.headers.reverse();
    check(&join(&parts), &at(1)).unwrap();
}

#[test]
fn envelope_with_unknown_or_missing_fields_refused() {
    let mut parts = split(&licence(1));
    parts.envelope["comment"] = "hello".into();
    let e = err(&join(&parts), &at(1));
    assert!(
        e.starts_with("site.lic: body is not a licence envelope: unknown field `comment`"),
        "{e}"
    );
    let mut parts = split(&licence(1));
    parts.envelope.as_object_mut().unwrap().remove("keyId");
    let e = err(&join(&parts), &at(1));
    assert!(e.contains("missing field `keyId`"), "{e}");
}

#[test]
fn signed_payload_rules_enforced() {
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|p| p["format"] = 2.into()),
            "unsupported licence format 2",
        ),
        (Box::new(|p| p["extra"] = 1.into()), "unknown field `extra`"),
        (
            Box::new(|p| p["serial"] = 0.into()),
            "serial: expected 1 to",
        ),
        (
            Box::new(|p| p["customer"] = "x".repeat(257).into()),
            "customer: expected 1 to 256",
        ),
        (
            Box::new(|p| p["customer"] = "a\u{7}b".into()),
            "customer: must not contain control",
        ),
        (Box::new(|p| p["customer"] = " X".into()), "white space"),
        (
            Box::new(|p| p["graceDays"] = 366.into()),
            "graceDays: at most 365",
        ),
        (
            Box::new(|p| p["features"] = serde_json::json!(["sso", "audit"])),
            "sorted and unique",
        ),
        (
            Box::new(|p| p["features"] = serde_json::json!(["Audit"])),
            "invalid feature",
        ),
        (
            Box::new(|p| p["limits"] = serde_json::json!({"Bad Name": 1})),
            "invalid limit name",
        ),
        (
            Box::new(|p| p["bind"] = serde_json::json!([])),
            "bind: must include \"machine\"",
        ),
        (
            Box::new(|p| p["bind"] = serde_json::json!(["cluster", "machine"])),
            "exactly when fingerprint.cluster",
        ),
        (
            Box::new(|p| p["bind"] = serde_json::json!(["machine", "disk"])),
            "unknown variant `disk`",
        ),
        (
            Box::new(|p| p["expires"] = p["notBefore"].clone()),
            "expires: must be later than notBefore",
        ),
        (
            Box::new(|p| p["issuedAt"] = "2026-01-01T00:00:00.000Z".into()),
            "invalid timestamp",
        ),
        (
            Box::new(|p| p["requestNonce"] = "xyz".into()),
            "requestNonce",
        ),
    ];
    for (edit, expected) in cases {
        let text = signed_variant(edit);
        let e = err(&text, &at(1));
        assert!(e.starts_with("site.lic: "), "{e}");
        assert!(e.contains(expected), "expected {expected:?} in {e}");
    }
    // Duplicate keys in the signed JSON are refused, not resolved.
    let mut parts = split(&licence(1));
    let payload = payload_of(&parts);
    let mut bytes = serde_json::to_string(&payload).unwrap();
    bytes = bytes.replace("\"workspaces\":5", "\"workspaces\":5,\"workspaces\":500");
    let signature = key(1).0.sign(&license::signing_input(bytes.as_bytes()));
    parts.envelope["payload"] = B64.encode(bytes.as_bytes()).into();
    parts.envelope["signature"] = B64.encode(signature.to_bytes()).into();
    let e = err(&join(&parts), &at(1));
    assert!(e.contains("duplicate limit \"workspaces\""), "{e}");
}

#[test]
fn licence_for_another_node_refused() {
    let text = issue_with(&NodeIds::new(OTHER_MID, None).unwrap(), &terms(), 1, 1);
    assert_eq!(
        err(&text, &at(1)),
        "site.lic: licence is for another node (machine fingerprint differs)"
    );
    // Another product's fingerprint of the same machine does not match either.
    let mut parts = split(&licence(1));
    let mut payload = payload_of(&parts);
    payload["product"] = "other-product".into();
    resign(&mut parts, &payload, 1);
    assert_eq!(
        err(&join(&parts), &at(1)),
        "site.lic: licence is for another node (machine fingerprint differs)"
    );
}

#[test]
fn wrong_product_refused_when_expected() {
    let mut ctx = at(1);
    ctx.product = Some("another-product".to_string());
    assert_eq!(
        err(&licence(1), &ctx),
        "site.lic: licence is for product \"reference-platform\", not \"another-product\""
    );
    ctx.product = Some(PRODUCT.to_string());
    check(&licence(1), &ctx).unwrap();
}

#[test]
fn cluster_binding() {
    let text = issue_with(&node_with_cluster(UID), &terms(), 1, 1);
    let v = verify(&text, WHAT, &trusted(), &node_with_cluster(UID), &at(1)).unwrap();
    assert_eq!(v.payload.bind, [Component::Cluster, Component::Machine]);
    // Same machine, another cluster.
    let e = verify(
        &text,
        WHAT,
        &trusted(),
        &node_with_cluster(OTHER_UID),
        &at(1),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "site.lic: licence is for another node (cluster fingerprint differs)"
    );
    // Cluster UID not given.
    let e = verify(&text, WHAT, &trusted(), &node(), &at(1)).unwrap_err();
    assert!(matches!(e, LicenseError::ClusterUidRequired { .. }));
    assert!(e.to_string().contains("pass --cluster-uid"), "{e}");
    // Same cluster, another machine.
    let other = NodeIds::new(OTHER_MID, Some(UID)).unwrap();
    let e = verify(&text, WHAT, &trusted(), &other, &at(1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("machine fingerprint differs"), "{e}");
    // A machine-only licence works whatever the cluster.
    verify(
        &licence(1),
        WHAT,
        &trusted(),
        &node_with_cluster(OTHER_UID),
        &at(1),
    )
    .unwrap();
}

#[test]
fn expired_refused_after_grace_and_warned_during_it() {
    let text = licence(1);
    // The last second of validity.
    let v = check(
        &text,
        &Context::new(T0 + Duration::days(365) - Duration::SECOND),
    )
    .unwrap();
    assert_eq!(v.standing, Standing::Valid { days_left: 0 });
    // Grace period.
    let grace_ends = T0 + Duration::days(365 + 14);
    let v = check(&text, &at(365)).unwrap();
    assert_eq!(
        v.standing,
        Standing::Grace {
            grace_ends,
            days_left: 14
        }
    );
    let v = check(&text, &Context::new(grace_ends - Duration::SECOND)).unwrap();
    assert_eq!(
        v.standing,
        Standing::Grace {
            grace_ends,
            days_left: 0
        }
    );
    // After it.
    assert_eq!(
        err(&text, &Context::new(grace_ends)),
        "site.lic: expired on 2027-01-01T00:00:00Z (grace period of 14 days ended 2027-01-15T00:00:00Z)"
    );
    // No grace period.
    let mut t = terms();
    t.grace_days = 0;
    let text = issue_with(&node(), &t, 1, 1);
    assert_eq!(
        err(&text, &at(365)),
        "site.lic: expired on 2027-01-01T00:00:00Z (no grace period)"
    );
}

#[test]
fn not_yet_valid_refused() {
    let mut t = terms();
    t.not_before = Some(T0 + Duration::days(10));
    let text = issue_with(&node(), &t, 1, 1);
    assert_eq!(
        err(&text, &at(5)),
        "site.lic: not valid before 2026-01-11T00:00:00Z"
    );
    assert_eq!(
        check(&text, &at(10)).unwrap().standing,
        Standing::Valid { days_left: 355 }
    );
}

#[test]
fn clock_set_back_detected() {
    let text = licence(1);
    let mut ctx = at(30);
    ctx.watermark = Some(T0 + Duration::days(100));
    let e = check(&text, &ctx).unwrap_err();
    assert!(matches!(e, LicenseError::ClockSetBack { .. }));
    assert_eq!(
        e.to_string(),
        "site.lic: system clock set back: it reads 2026-01-31T00:00:00Z, earlier than the last time seen (2026-04-11T00:00:00Z) by more than the allowed 5 minutes; correct the clock"
    );
    // Within the drift: accepted.
    ctx.now = T0 + Duration::days(100) - Duration::minutes(5);
    check(&text, &ctx).unwrap();
    // Just beyond it: refused.
    ctx.now -= Duration::SECOND;
    assert!(matches!(
        check(&text, &ctx),
        Err(LicenseError::ClockSetBack { .. })
    ));
    // Set back to stretch an expired licence: caught by the watermark
    // before the validity window is even looked at.
    let mut ctx = at(10);
    ctx.watermark = Some(T0 + Duration::days(500));
    assert!(matches!(
        check(&text, &ctx),
        Err(LicenseError::ClockSetBack { .. })
    ));
    // A clock behind the licence's issue time.
    let ctx = Context::new(T0 - Duration::hours(1));
    assert_eq!(
        err(&text, &ctx),
        "site.lic: system clock is behind: it reads 2025-12-31T23:00:00Z, before the licence was issued (2026-01-01T00:00:00Z); correct the clock"
    );
    // Behind by less than the drift: the clock check passes, the window does not.
    let ctx = Context::new(T0 - Duration::minutes(1));
    assert!(matches!(
        check(&text, &ctx),
        Err(LicenseError::NotYetValid { .. })
    ));
}

#[test]
fn replayed_older_serial_refused() {
    let old = licence(2);
    let active = check(&licence(3), &at(1)).unwrap();
    let mut ctx = at(2);
    ctx.active = Some(ActiveLicense {
        serial: 3,
        digest: active.digest,
    });
    assert_eq!(
        err(&old, &ctx),
        "site.lic: serial 2 is older than the active licence's serial 3; refusing a replayed licence"
    );
}

#[test]
fn renewal_with_higher_serial_accepted() {
    let first = check(&licence(1), &at(1)).unwrap();
    let mut t = terms();
    t.expires = T0 + Duration::days(730);
    t.features.push("reports".to_string());
    let renewal = issue_with(&node(), &t, 2, 1);
    let mut ctx = at(300);
    ctx.active = Some(ActiveLicense {
        serial: first.payload.serial,
        digest: first.digest.clone(),
    });
    ctx.watermark = Some(T0 + Duration::days(299));
    let v = check(&renewal, &ctx).unwrap();
    assert_eq!(v.payload.serial, 2);
    assert!(!v.same_as_active);
    assert_eq!(v.payload.features, ["audit", "reports", "sso"]);
    assert_ne!(v.digest, first.digest);
}

#[test]
fn same_licence_reactivated_is_idempotent() {
    let text = licence(4);
    let first = check(&text, &at(1)).unwrap();
    let mut ctx = at(2);
    ctx.active = Some(ActiveLicense {
        serial: 4,
        digest: first.digest.clone(),
    });
    let again = check(&text, &ctx).unwrap();
    assert!(again.same_as_active);
    assert_eq!(again.payload, first.payload);
    // The same licence after a trip through a mail client (CRLF, quoted in
    // a message) is still the same licence.
    let mailed = format!(
        "Hello,\r\nhere is your licence:\r\n\r\n{}\r\nRegards\r\n",
        text.replace('\n', "\r\n")
    );
    assert!(check(&mailed, &ctx).unwrap().same_as_active);
    // Another licence with the same serial is refused.
    let mut t = terms();
    t.customer = "Example Clinic".to_string();
    let conflicting = issue_with(&node(), &t, 4, 1);
    assert_eq!(
        err(&conflicting, &ctx),
        "site.lic: serial 4 is the active licence's serial, but the licence differs; refusing a conflicting licence with the same serial"
    );
}

#[test]
fn status_shows_a_licence_that_no_longer_works() {
    let text = licence(1);
    let s = status(&text, WHAT, &trusted(), &node(), &at(400)).unwrap();
    assert_eq!(s.payload.customer, "Example Hospital");
    assert!(matches!(s.standing, Err(LicenseError::Expired { .. })));
    let s = status(&text, WHAT, &trusted(), &node(), &at(370)).unwrap();
    assert!(matches!(
        s.standing,
        Ok(Standing::Grace { days_left: 9, .. })
    ));
    let other = NodeIds::new(OTHER_MID, None).unwrap();
    let s = status(&text, WHAT, &trusted(), &other, &at(1)).unwrap();
    assert!(matches!(s.standing, Err(LicenseError::WrongNode { .. })));
    // An unauthentic licence shows nothing.
    assert!(status(&text, WHAT, &[], &node(), &at(1)).is_err());
}

#[test]
fn tolerated_formatting() {
    let text = licence(1);
    let variants = [
        format!("Subject: your licence\n\n{text}\nThanks.\n"),
        text.replace('\n', "\r\n"),
        text.replace('\n', "  \t\n"),
        format!("\u{feff}{text}"),
        text.trim_end().to_string(),
    ];
    for variant in variants {
        check(&variant, &at(1)).unwrap();
    }
    // The body may be wrapped at another width.
    let (head, rest) = text.split_once("\n\n").unwrap();
    let body: String = rest.lines().take_while(|l| *l != END_LINE).collect();
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(40)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let rewrapped = format!("{head}\n\n{}\n{END_LINE}\n", lines.join("\n"));
    check(&rewrapped, &at(1)).unwrap();
}

#[test]
fn malformed_files_give_one_line_reasons() {
    let text = licence(1);
    let cases: Vec<(String, &str)> = vec![
        ("".to_string(), "site.lic: not armored: no \"-----BEGIN AIRGAP LICENSE-----\" line"),
        ("hello\n".to_string(), "site.lic: not armored: no \"-----BEGIN AIRGAP LICENSE-----\" line"),
        (text.replace("-----END AIRGAP LICENSE-----\n", ""), "site.lic: truncated: no \"-----END AIRGAP LICENSE-----\" line"),
        (format!("{text}{text}"), "site.lic: more than one \"-----BEGIN AIRGAP LICENSE-----\" line"),
        (text.replacen("\n\n", "\n", 1), "site.lic: header line"),
        (text.replacen("Serial: 1", "Serial:1", 1), "site.lic: header line \"Serial:1\" is not \"Name: value\""),
        (text.replacen("\n\n", "\n\n\n", 1), "site.lic: blank line inside the base64 body"),
        (text.replacen("\n\n", "\n\n!!!!\n", 1), "site.lic: body is not valid base64"),
        (
            format!("{BEGIN_LINE}\nProduct: a\nCustomer: b\nSerial: 1\nExpires: x\nKey: y\n\n{}\n{END_LINE}\n", B64.encode("[1,2]")),
            "site.lic: body is not a licence envelope",
        ),
        (
            format!("{BEGIN_LINE}\nProduct: a\nCustomer: b\nSerial: 1\nExpires: x\nKey: y\n\n{END_LINE}\n"),
            "site.lic: empty base64 body",
        ),
        (
            format!("{BEGIN_LINE}\nProduct: a\n{END_LINE}\n"),
            "site.lic: no blank line and body after the headers",
        ),
    ];
    for (input, expected) in cases {
        let e = err(&input, &at(1));
        assert!(e.starts_with(expected), "expected {expected:?}, got {e:?}");
    }
    let big = format!("{text}{}", " ".repeat(70_000));
    assert_eq!(err(&big, &at(1)), "site.lic: larger than 65536 bytes");
    assert_eq!(
        license::decode_text(&[0xff, 0xfe], WHAT)
            .unwrap_err()
            .to_string(),
        "site.lic: not UTF-8 text"
    );
}

#[test]
fn every_truncation_is_refused_without_panicking() {
    let text = licence(1);
    let end = text.find(END_LINE).unwrap() + END_LINE.len();
    for len in 0..=text.len() {
        let result = check(&text[..len], &at(1));
        if len >= end {
            assert!(result.is_ok(), "length {len}: {:?}", result.err());
        } else {
            let e = result.expect_err(&format!("truncated to {len} bytes but accepted"));
            assert!(!e.to_string().contains('\n'));
        }
    }
}

/// xorshift64*: a small deterministic generator for the garbling test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_garbling_never_panics_nor_changes_the_licence() {
    let original = format!("Licence for you:\n{}-- \nsignature\n", licence(1));
    let expected = check(&original, &at(1)).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut refused) = (0, 0);
    for round in 0..10_000 {
        let mut bytes = original.clone().into_bytes();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(bytes.len());
            match rng.below(6) {
                0 => bytes[i] ^= 1 << rng.below(8),
                1 => bytes[i] = rng.next() as u8,
                2 => {
                    bytes.remove(i);
                }
                3 => bytes.insert(i, b"\n =-:A/+\r\0\xff"[rng.below(11)]),
                4 => {
                    let j = (i + 1 + rng.below(40)).min(bytes.len());
                    let chunk = bytes[i..j].to_vec();
                    bytes.splice(i..i, chunk);
                }
                _ => bytes.truncate(i),
            }
            if bytes.is_empty() {
                break;
            }
        }
        let result = license::decode_text(&bytes, WHAT).and_then(|t| check(t, &at(1)));
        match result {
            Ok(v) => {
                // Only changes to text the format ignores may pass.
                assert_eq!(v.payload, expected.payload, "round {round}");
                assert_eq!(v.digest, expected.digest, "round {round}");
                accepted += 1;
            }
            Err(e) => {
                assert!(!e.to_string().contains('\n'), "round {round}: {e}");
                refused += 1;
            }
        }
    }
    assert!(
        accepted > 20 && refused > 5000,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn issue_refuses_bad_terms() {
    let (signing, public) = key(1);
    let request = request_for(&node());
    let issue_t = |t: &Terms| issue(&request, t, 1, &signing, public.key_id, T0);
    let mut t = terms();
    t.not_before = Some(t.expires);
    let e = issue_t(&t).unwrap_err().to_string();
    assert_eq!(e, "licence terms: expires (2027-01-01T00:00:00Z) must be later than notBefore (2027-01-01T00:00:00Z)");
    let mut t = terms();
    t.not_before = Some(T0 - Duration::days(10));
    t.expires = T0 - Duration::days(1);
    assert!(issue_t(&t)
        .unwrap_err()
        .to_string()
        .contains("would be expired when issued"));
    let mut t = terms();
    t.customer = "Evil\nCustomer: x".to_string();
    assert!(issue_t(&t)
        .unwrap_err()
        .to_string()
        .contains("control characters"));
    let mut t = terms();
    t.customer = "Example \u{202e}hcraeseR".to_string();
    assert!(issue_t(&t)
        .unwrap_err()
        .to_string()
        .contains("bidirectional formatting"));
    let mut t = terms();
    t.features = vec!["Bad".to_string()];
    assert!(issue_t(&t)
        .unwrap_err()
        .to_string()
        .contains("invalid feature"));
    let mut t = terms();
    t.grace_days = 400;
    assert!(issue_t(&t).unwrap_err().to_string().contains("graceDays"));
    assert!(issue(&request, &terms(), 0, &signing, public.key_id, T0).is_err());
    // A request with fields broken after parsing is refused.
    let mut bad = request.clone();
    bad.nonce = "x".into();
    assert!(issue(&bad, &terms(), 1, &signing, public.key_id, T0).is_err());
}

#[test]
fn command_line_helpers() {
    use crate::issue::{parse_date, parse_features, parse_limit};
    assert_eq!(
        parse_date("2027-11-22").unwrap(),
        datetime!(2027-11-22 00:00:00 UTC)
    );
    assert_eq!(
        parse_date("2027-11-22T10:00:00Z").unwrap(),
        datetime!(2027-11-22 10:00:00 UTC)
    );
    assert!(parse_date("22/11/2027").is_err());
    assert_eq!(parse_features("sso, audit,sso").unwrap(), ["audit", "sso"]);
    assert!(parse_features("").unwrap().is_empty());
    assert!(parse_features("a,B").is_err());
    assert_eq!(
        parse_limit("workspaces=5").unwrap(),
        ("workspaces".to_string(), 5)
    );
    assert!(parse_limit("workspaces").is_err());
    assert!(parse_limit("workspaces=-1").is_err());
}

#[test]
fn ledger_gives_each_site_increasing_serials_for_issued_licences() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.json");
    let a = request_for(&node());
    let a_cluster = request_for(&node_with_cluster(UID));
    let b = request_for(&NodeIds::new(OTHER_MID, None).unwrap());
    // The same machine with or without a cluster is one site.
    assert_eq!(Ledger::site_key(&a), Ledger::site_key(&a_cluster));
    assert_ne!(Ledger::site_key(&a), Ledger::site_key(&b));
    let s1 = Ledger::next_serial(&path, &Ledger::site_key(&a)).unwrap();
    let s2 = Ledger::next_serial(&path, &Ledger::site_key(&a_cluster)).unwrap();
    let s3 = Ledger::next_serial(&path, &Ledger::site_key(&b)).unwrap();
    assert_eq!((s1, s2, s3), (1, 2, 1));
    // The renewal with the ledger's serial replaces the first licence.
    let (signing, public) = key(1);
    let first = issue(&a, &terms(), s1, &signing, public.key_id, T0).unwrap();
    let second = issue(&a_cluster, &terms(), s2, &signing, public.key_id, T0).unwrap();
    let v1 = check(&first, &at(1)).unwrap();
    let mut ctx = at(1);
    ctx.active = Some(ActiveLicense {
        serial: v1.payload.serial,
        digest: v1.digest,
    });
    verify(&second, WHAT, &trusted(), &node_with_cluster(UID), &ctx).unwrap();
}

#[test]
fn licence_files_are_read_bounded_and_named_in_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.lic");
    let e = read_license_file(&path).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
    std::fs::write(&path, vec![b'a'; 64 * 1024 + 1]).unwrap();
    assert_eq!(
        read_license_file(&path).unwrap_err().to_string(),
        format!("{}: larger than 65536 bytes", path.display())
    );
    std::fs::write(&path, licence(1)).unwrap();
    let text = read_license_file(&path).unwrap();
    verify(
        &text,
        &path.display().to_string(),
        &trusted(),
        &node(),
        &at(1),
    )
    .unwrap();
}

/// The test vector of `docs/licenses.md` §11 verifies, and the document's
/// request example, payload bytes and digest agree with the code.
#[test]
fn documented_test_vector() {
    let doc = include_str!("../../docs/licenses.md");
    let section = &doc[doc.find("## 11. Test vector").unwrap()..];
    let block = |start: &str| -> &str {
        let from = section.find(start).unwrap() + start.len();
        let to = from + section[from..].find("```").unwrap();
        &section[from..to]
    };
    let key = PublicKey::parse(block("```text\n"), "doc key").unwrap();
    let signing = SigningKey::from_bytes(&[7; 32]);
    assert_eq!(key.key, signing.verifying_key());
    assert_eq!(key.key_id.to_string(), "0123456789ABCDEF");
    let text = &section[section.find(BEGIN_LINE).unwrap()..];
    let text = &text[..text.find(END_LINE).unwrap() + END_LINE.len()];
    let payload = block("```json\n").trim_end();

    let ids = NodeIds::new(MID, Some(UID)).unwrap();
    let mut ctx = Context::new(datetime!(2026-12-01 00:00:00 UTC));
    ctx.product = Some(PRODUCT.to_string());
    let v = verify(text, "doc", std::slice::from_ref(&key), &ids, &ctx).unwrap();
    assert_eq!(v.payload.serial, 3);
    assert_eq!(
        v.digest,
        "7a60fce775e62b191d17b6b687fc337ae3764b93301821eb68c8d36ff1ecb7d1"
    );
    let armored = ArmoredLicense::parse(text, "doc").unwrap();
    assert_eq!(std::str::from_utf8(&armored.payload).unwrap(), payload);
    let grace = Context::new(datetime!(2027-12-05 23:59:59 UTC));
    assert!(matches!(
        verify(text, "doc", std::slice::from_ref(&key), &ids, &grace)
            .unwrap()
            .standing,
        Standing::Grace { .. }
    ));
    let over = Context::new(datetime!(2027-12-06 00:00:00 UTC));
    assert!(verify(text, "doc", std::slice::from_ref(&key), &ids, &over).is_err());

    // The §4 request example: same fingerprint, and the issuer reproduces
    // the licence byte for byte.
    let request_text = &doc[doc
        .find("```json\n{\n  \"format\": \"airgap-license-request/v1\"")
        .unwrap()
        + 8..];
    let request_text = &request_text[..request_text.find("```").unwrap()];
    let request = Request::parse(request_text.as_bytes(), "doc request").unwrap();
    assert_eq!(
        request.fingerprint,
        Fingerprint::compute(PRODUCT, &ids).unwrap()
    );
    let terms = Terms {
        customer: "Example Hospital".into(),
        expires: datetime!(2027-11-22 00:00:00 UTC),
        not_before: None,
        grace_days: 14,
        features: vec!["sso".into(), "audit".into()],
        limits: BTreeMap::from([("workspaces".to_string(), 5)]),
    };
    let issued = issue(
        &request,
        &terms,
        3,
        &signing,
        key.key_id,
        datetime!(2026-11-22 10:00:00 UTC),
    )
    .unwrap();
    assert_eq!(issued, format!("{text}\n"));
}
