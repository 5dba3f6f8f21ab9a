//! The licence file, reading side: the armored text, the envelope inside it,
//! the signed payload, and the signature check.
//!
//! ```text
//! -----BEGIN AIRGAP LICENSE-----
//! Product: reference-platform
//! Customer: Example Hospital
//! Serial: 3
//! Expires: 2027-11-22T00:00:00Z
//! Key: 0123456789ABCDEF
//!
//! <base64 of the envelope JSON, wrapped at 64 columns>
//! -----END AIRGAP LICENSE-----
//! ```
//!
//! The envelope is `{"alg","keyId","payload","signature"}`; `payload` is the
//! base64 of the exact payload JSON bytes, and `signature` an Ed25519
//! signature over [`SIGNING_DOMAIN`] followed by those bytes.

use std::collections::BTreeMap;
use std::path::Path;

use airgap_format::{KeyId, PublicKey};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::{quote, LicenseError};
use crate::fingerprint::{Component, Fingerprint};
use crate::limits::{
    read_bounded, MAX_CUSTOMER_CHARS, MAX_FEATURES, MAX_GRACE_DAYS, MAX_JSON_INTEGER,
    MAX_LICENSE_FILE, MAX_LIMITS,
};
use crate::names::{check_name, is_lower_hex};
use crate::request::NONCE_HEX_LEN;

/// The payload `format` this crate reads and writes.
pub const LICENSE_FORMAT: u32 = 1;
/// The one signature algorithm: Ed25519 over the domain-separated payload.
pub const ALG_ED25519: &str = "Ed25519";
/// Signature algorithms accepted (the allow-list).
pub const ALLOWED_ALGORITHMS: &[&str] = &[ALG_ED25519];
/// Prefix of the signed message: the signature covers
/// `SIGNING_DOMAIN || payload bytes`.
pub const SIGNING_DOMAIN: &[u8] = b"airgap-license/v1\0";
/// First line of the armor.
pub const BEGIN_LINE: &str = "-----BEGIN AIRGAP LICENSE-----";
/// Last line of the armor.
pub const END_LINE: &str = "-----END AIRGAP LICENSE-----";
/// Header names, in the order writers emit them.
pub const HEADER_NAMES: [&str; 5] = ["Product", "Customer", "Serial", "Expires", "Key"];
/// Width of the base64 body lines writers emit.
pub const BODY_COLUMNS: usize = 64;

/// The message an Ed25519 licence signature covers: [`SIGNING_DOMAIN`]
/// followed by the exact payload bytes.
pub fn signing_input(payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_DOMAIN.len() + payload.len());
    message.extend_from_slice(SIGNING_DOMAIN);
    message.extend_from_slice(payload);
    message
}

/// A licence's identity: SHA-256 of the signed payload bytes, lowercase hex.
/// The same licence has the same digest however its armor was re-wrapped,
/// re-encoded with CRLF or quoted in a message.
pub fn payload_digest(payload: &[u8]) -> String {
    hex::encode(Sha256::digest(payload))
}

/// Parses a key id as licences write it: 16 uppercase hex digits, the way
/// [`KeyId`]'s `Display` shows it.
pub fn parse_key_id(text: &str) -> Option<KeyId> {
    if text.len() != 16
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
    {
        return None;
    }
    let n = u64::from_str_radix(text, 16).ok()?;
    Some(KeyId(n.to_le_bytes()))
}

/// Checks the size of licence file content and that it is UTF-8 text.
pub fn decode_text<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, LicenseError> {
    if bytes.len() as u64 > MAX_LICENSE_FILE {
        return Err(LicenseError::TooLarge {
            what: what.to_string(),
            limit: MAX_LICENSE_FILE,
        });
    }
    std::str::from_utf8(bytes).map_err(|_| LicenseError::malformed(what, "not UTF-8 text"))
}

/// Reads a licence file: at most [`MAX_LICENSE_FILE`] bytes of UTF-8 text.
pub fn read_license_file(path: &Path) -> Result<String, LicenseError> {
    let bytes = read_bounded(path, MAX_LICENSE_FILE)?;
    decode_text(&bytes, &path.display().to_string()).map(str::to_string)
}

/// The signed content of a licence (the payload JSON), field for field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LicensePayload {
    /// Always [`LICENSE_FORMAT`].
    pub format: u32,
    /// The signature algorithm; equals the envelope's.
    pub alg: String,
    /// The signing key's id, 16 uppercase hex digits; equals the envelope's.
    pub key_id: String,
    /// The product id.
    pub product: String,
    /// Serial number, 1 or more; increases with each licence for a site.
    pub serial: u64,
    /// Customer name: 1 to 256 characters, no control or bidirectional
    /// formatting characters, no
    /// leading or trailing white space.
    pub customer: String,
    /// When the licence was issued.
    #[serde(with = "crate::utc::serde")]
    pub issued_at: OffsetDateTime,
    /// Start of validity.
    #[serde(with = "crate::utc::serde")]
    pub not_before: OffsetDateTime,
    /// End of validity (later than `not_before`).
    #[serde(with = "crate::utc::serde")]
    pub expires: OffsetDateTime,
    /// Days after `expires` during which the licence still works, with a
    /// warning (0 to 365).
    pub grace_days: u32,
    /// Licensed features: names, sorted, unique.
    pub features: Vec<String>,
    /// Licensed limits by name (`workspaces` → 5).
    #[serde(deserialize_with = "deserialize_limits")]
    pub limits: BTreeMap<String, u64>,
    /// The fingerprint of the node the licence was issued for.
    pub fingerprint: Fingerprint,
    /// The fingerprint components that must match, sorted: always
    /// `machine`; `cluster` exactly when `fingerprint.cluster` is present.
    pub bind: Vec<Component>,
    /// The nonce of the request the licence answers.
    pub request_nonce: String,
}

fn deserialize_limits<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, u64>, D::Error> {
    struct Limits;
    impl<'de> Visitor<'de> for Limits {
        type Value = BTreeMap<String, u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of limit names to non-negative integers")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((name, value)) = map.next_entry::<String, u64>()? {
                if out.len() == MAX_LIMITS {
                    return Err(de::Error::custom(format!("more than {MAX_LIMITS} limits")));
                }
                if out.contains_key(&name) {
                    return Err(de::Error::custom(format!(
                        "duplicate limit {:?}",
                        quote(&name)
                    )));
                }
                out.insert(name, value);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Limits)
}

impl LicensePayload {
    /// Parses signed payload bytes (the signature is checked before, by
    /// [`ArmoredLicense::verify_signature`]): the `format` first, so that a
    /// newer format is named as such rather than as a missing field, then
    /// every field, then the algorithm against [`ALLOWED_ALGORITHMS`].
    /// The field rules are [`LicensePayload::validate`]'s. `what` names the
    /// licence in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<LicensePayload, LicenseError> {
        let bad = |reason: String| LicenseError::malformed(what, reason);
        #[derive(Deserialize)]
        struct FormatOnly {
            format: Option<serde_json::Value>,
        }
        let format = serde_json::from_slice::<FormatOnly>(bytes)
            .map_err(|e| bad(format!("signed payload is not a JSON object: {e}")))?
            .format;
        if format != Some(serde_json::Value::from(LICENSE_FORMAT)) {
            let shown = format.map_or("none".to_string(), |v| quote(&v.to_string()));
            return Err(bad(format!(
                "unsupported licence format {shown} (this verifier reads format {LICENSE_FORMAT})"
            )));
        }
        let payload: LicensePayload = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("signed payload is not valid: {e}")))?;
        if !ALLOWED_ALGORITHMS.contains(&payload.alg.as_str()) {
            return Err(LicenseError::AlgorithmNotAllowed {
                what: what.to_string(),
                alg: quote(&payload.alg),
            });
        }
        Ok(payload)
    }

    /// End of the grace period: `expires` plus `grace_days` days.
    pub fn grace_ends(&self) -> OffsetDateTime {
        self.expires
            .checked_add(Duration::days(i64::from(self.grace_days)))
            .unwrap_or(self.expires)
    }

    /// Whether the licence binds `component`.
    pub fn binds(&self, component: Component) -> bool {
        self.bind.contains(&component)
    }

    /// Checks every field against the format's rules (see `docs/licenses.md`).
    /// The reason names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != LICENSE_FORMAT {
            return Err(format!(
                "unsupported licence format {} (this verifier reads format {LICENSE_FORMAT})",
                self.format
            ));
        }
        if !ALLOWED_ALGORITHMS.contains(&self.alg.as_str()) {
            return Err(format!("alg: {:?} is not allowed", quote(&self.alg)));
        }
        if parse_key_id(&self.key_id).is_none() {
            return Err("keyId: expected 16 uppercase hex digits".to_string());
        }
        check_name("product id", &self.product)?;
        if self.serial == 0 || self.serial > MAX_JSON_INTEGER {
            return Err(format!("serial: expected 1 to {MAX_JSON_INTEGER}"));
        }
        check_customer(&self.customer)?;
        if self.expires <= self.not_before {
            return Err("expires: must be later than notBefore".to_string());
        }
        if self.grace_days > MAX_GRACE_DAYS {
            return Err(format!("graceDays: at most {MAX_GRACE_DAYS}"));
        }
        if self
            .expires
            .checked_add(Duration::days(i64::from(self.grace_days)))
            .is_none()
        {
            return Err("expires: the grace period ends after the year 9999".to_string());
        }
        if self.features.len() > MAX_FEATURES {
            return Err(format!("features: more than {MAX_FEATURES}"));
        }
        for feature in &self.features {
            check_name("feature", feature).map_err(|e| format!("features: {e}"))?;
        }
        if self.features.windows(2).any(|w| w[0] >= w[1]) {
            return Err("features: must be sorted and unique".to_string());
        }
        for (name, value) in &self.limits {
            check_name("limit name", name).map_err(|e| format!("limits: {e}"))?;
            if *value > MAX_JSON_INTEGER {
                return Err(format!("limits: {name}: at most {MAX_JSON_INTEGER}"));
            }
        }
        self.fingerprint.check()?;
        if self.bind.windows(2).any(|w| w[0] >= w[1]) {
            return Err("bind: must be sorted and unique".to_string());
        }
        if !self.binds(Component::Machine) {
            return Err("bind: must include \"machine\"".to_string());
        }
        if self.binds(Component::Cluster) != self.fingerprint.cluster.is_some() {
            return Err(
                "bind: must include \"cluster\" exactly when fingerprint.cluster is present"
                    .to_string(),
            );
        }
        if !is_lower_hex(&self.request_nonce, NONCE_HEX_LEN) {
            return Err(format!(
                "requestNonce: expected {NONCE_HEX_LEN} lowercase hex digits"
            ));
        }
        Ok(())
    }

    /// The header values a licence with this payload must carry, in
    /// [`HEADER_NAMES`] order.
    pub fn header_values(&self) -> [(&'static str, String); 5] {
        [
            ("Product", self.product.clone()),
            ("Customer", self.customer.clone()),
            ("Serial", self.serial.to_string()),
            ("Expires", crate::utc::format(self.expires)),
            ("Key", self.key_id.clone()),
        ]
    }
}

/// The customer name rule: 1 to [`MAX_CUSTOMER_CHARS`] characters, no
/// control or bidirectional formatting characters (which would reorder
/// what a terminal shows), no leading or trailing white space.
pub(crate) fn check_customer(customer: &str) -> Result<(), String> {
    let count = customer.chars().count();
    if count == 0 || count > MAX_CUSTOMER_CHARS {
        return Err(format!(
            "customer: expected 1 to {MAX_CUSTOMER_CHARS} characters"
        ));
    }
    if !airgap_format::display::is_display_safe(customer) {
        return Err(
            "customer: must not contain control characters, bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) or line and paragraph separators (U+2028, U+2029)"
                .to_string(),
        );
    }
    if customer.trim() != customer {
        return Err("customer: must not start or end with white space".to_string());
    }
    Ok(())
}

/// The envelope: the JSON object the armor body encodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    /// Signature algorithm; must be on [`ALLOWED_ALGORITHMS`].
    pub alg: String,
    /// The signing key's id, 16 uppercase hex digits.
    pub key_id: String,
    /// Base64 (standard, padded) of the exact payload JSON bytes.
    pub payload: String,
    /// Base64 (standard, padded) of the 64-byte signature.
    pub signature: String,
}

/// The armor's headers, as written (not signed on their own: each must
/// equal the signed payload's value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers {
    /// `Product:`
    pub product: String,
    /// `Customer:`
    pub customer: String,
    /// `Serial:`
    pub serial: String,
    /// `Expires:`
    pub expires: String,
    /// `Key:`
    pub key: String,
}

impl Headers {
    fn slot(&mut self, name: &str) -> Option<&mut String> {
        match name {
            "Product" => Some(&mut self.product),
            "Customer" => Some(&mut self.customer),
            "Serial" => Some(&mut self.serial),
            "Expires" => Some(&mut self.expires),
            "Key" => Some(&mut self.key),
            _ => None,
        }
    }

    fn get(&self, name: &str) -> &str {
        match name {
            "Product" => &self.product,
            "Customer" => &self.customer,
            "Serial" => &self.serial,
            "Expires" => &self.expires,
            _ => &self.key,
        }
    }
}

/// A licence file taken apart, not yet verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArmoredLicense {
    /// The armor headers.
    pub headers: Headers,
    /// The envelope's algorithm.
    pub alg: String,
    /// The envelope's key id, as written.
    pub key_id: String,
    /// The payload bytes (decoded from base64), exactly as signed.
    pub payload: Vec<u8>,
    /// The signature bytes (decoded from base64; 64 for Ed25519).
    pub signature: Vec<u8>,
}

impl ArmoredLicense {
    /// Takes licence text apart: armor, headers, base64 body, envelope JSON,
    /// and the base64 of the payload and signature. Checks nothing signed.
    ///
    /// Text before the BEGIN line and after the END line, CRLF line endings,
    /// trailing white space on any line and a leading byte order mark are
    /// tolerated; anything else out of the grammar is refused.
    pub fn parse(text: &str, what: &str) -> Result<Self, LicenseError> {
        let bad = |reason: String| LicenseError::malformed(what, reason);
        if text.len() as u64 > MAX_LICENSE_FILE {
            return Err(LicenseError::TooLarge {
                what: what.to_string(),
                limit: MAX_LICENSE_FILE,
            });
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text.split('\n').map(str::trim_end).collect();
        let mut begins = lines.iter().enumerate().filter(|(_, l)| **l == BEGIN_LINE);
        let begin = match (begins.next(), begins.next()) {
            (None, _) => return Err(bad(format!("not armored: no {BEGIN_LINE:?} line"))),
            (Some((i, _)), None) => i,
            (Some(_), Some(_)) => return Err(bad(format!("more than one {BEGIN_LINE:?} line"))),
        };
        let truncated = || bad(format!("truncated: no {END_LINE:?} line"));
        // A file cut anywhere before its end has no END line: say so first,
        // rather than report the header or body line the cut went through.
        if !lines[begin + 1..].contains(&END_LINE) {
            return Err(truncated());
        }
        let mut rest = lines[begin + 1..].iter().copied();

        let mut headers = Headers::default();
        let mut seen = [false; HEADER_NAMES.len()];
        loop {
            let line = rest.next().ok_or_else(truncated)?;
            if line.is_empty() {
                break;
            }
            if line == END_LINE {
                return Err(bad("no blank line and body after the headers".to_string()));
            }
            let (name, value) = line.split_once(": ").ok_or_else(|| {
                bad(format!(
                    "header line {:?} is not \"Name: value\"",
                    quote(line)
                ))
            })?;
            let index = HEADER_NAMES
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| bad(format!("unknown header {:?}", quote(name))))?;
            if seen[index] {
                return Err(bad(format!("header {name} appears twice")));
            }
            seen[index] = true;
            if let Some(slot) = headers.slot(name) {
                *slot = value.to_string();
            }
        }
        if let Some(index) = seen.iter().position(|s| !s) {
            return Err(bad(format!("missing header {}", HEADER_NAMES[index])));
        }

        let mut body = String::new();
        loop {
            let line = rest.next().ok_or_else(truncated)?;
            if line == END_LINE {
                break;
            }
            if line.is_empty() {
                if rest.clone().all(str::is_empty) {
                    return Err(truncated());
                }
                return Err(bad("blank line inside the base64 body".to_string()));
            }
            body.push_str(line);
        }
        if body.is_empty() {
            return Err(bad("empty base64 body".to_string()));
        }
        let json = B64
            .decode(body.as_bytes())
            .map_err(|e| bad(format!("body is not valid base64 ({e})")))?;
        let envelope: Envelope = serde_json::from_slice(&json)
            .map_err(|e| bad(format!("body is not a licence envelope: {e}")))?;
        let payload = B64
            .decode(envelope.payload.as_bytes())
            .map_err(|e| bad(format!("envelope payload is not valid base64 ({e})")))?;
        let signature = B64
            .decode(envelope.signature.as_bytes())
            .map_err(|e| bad(format!("envelope signature is not valid base64 ({e})")))?;
        Ok(ArmoredLicense {
            headers,
            alg: envelope.alg,
            key_id: envelope.key_id,
            payload,
            signature,
        })
    }

    /// The licence's identity (see [`payload_digest`]).
    pub fn digest(&self) -> String {
        payload_digest(&self.payload)
    }

    /// Checks, in order: the envelope's algorithm is allowed; the key id is
    /// trusted; the signature over `SIGNING_DOMAIN || payload` verifies
    /// (strict Ed25519); the payload parses and follows the rules; its
    /// `alg` and `keyId` equal the envelope's; every header equals the
    /// payload's value. Returns the signed payload.
    pub fn verify_signature(
        &self,
        what: &str,
        trusted: &[PublicKey],
    ) -> Result<LicensePayload, LicenseError> {
        let bad = |reason: String| LicenseError::malformed(what, reason);
        if !ALLOWED_ALGORITHMS.contains(&self.alg.as_str()) {
            return Err(LicenseError::AlgorithmNotAllowed {
                what: what.to_string(),
                alg: quote(&self.alg),
            });
        }
        let key_id = parse_key_id(&self.key_id)
            .ok_or_else(|| bad("envelope keyId: expected 16 uppercase hex digits".to_string()))?;
        let key = trusted.iter().find(|k| k.key_id == key_id).ok_or_else(|| {
            let ids: Vec<String> = trusted.iter().map(|k| k.key_id.to_string()).collect();
            LicenseError::UnknownKey {
                what: what.to_string(),
                key_id: key_id.to_string(),
                trusted: if ids.is_empty() {
                    "none".to_string()
                } else {
                    ids.join(", ")
                },
            }
        })?;
        let signature: [u8; 64] = self.signature.as_slice().try_into().map_err(|_| {
            bad(format!(
                "envelope signature: expected 64 bytes, found {}",
                self.signature.len()
            ))
        })?;
        key.key
            .verify_strict(
                &signing_input(&self.payload),
                &ed25519_dalek::Signature::from_bytes(&signature),
            )
            .map_err(|_| LicenseError::BadSignature {
                what: what.to_string(),
                key_id: key_id.to_string(),
            })?;

        // Signed from here on: a failure means the vendor wrote a bad file.
        let payload = LicensePayload::parse(&self.payload, what)?;
        if payload.alg != self.alg {
            return Err(bad(
                "the signed payload's alg differs from the envelope's".to_string()
            ));
        }
        if payload.key_id != self.key_id {
            return Err(bad(
                "the signed payload's keyId differs from the envelope's".to_string(),
            ));
        }
        payload
            .validate()
            .map_err(|reason| bad(format!("signed payload: {reason}")))?;
        for (name, value) in payload.header_values() {
            if self.headers.get(name) != value {
                return Err(LicenseError::HeaderMismatch {
                    what: what.to_string(),
                    header: name,
                });
            }
        }
        Ok(payload)
    }
}
