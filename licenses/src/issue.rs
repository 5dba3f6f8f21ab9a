//! Issuing licences (vendor side, feature `issue`): build the payload from a
//! request and the terms, sign it, and write the armored text.

use std::collections::BTreeMap;

use airgap_format::{KeyId, PublicKey};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer, SigningKey};
use time::OffsetDateTime;

use crate::error::{quote, LicenseError};
use crate::fingerprint::Component;
use crate::license::{
    check_customer, signing_input, ArmoredLicense, Envelope, LicensePayload, ALG_ED25519,
    BEGIN_LINE, BODY_COLUMNS, END_LINE, LICENSE_FORMAT,
};
use crate::names::check_name;
use crate::request::Request;
use crate::utc;

/// What the vendor grants, beside the node binding and the serial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Terms {
    /// Customer name (1 to 256 characters, no control or bidirectional
    /// formatting characters, no
    /// leading or trailing white space).
    pub customer: String,
    /// End of validity (whole seconds are kept).
    pub expires: OffsetDateTime,
    /// Start of validity; `None` means the issue time.
    pub not_before: Option<OffsetDateTime>,
    /// Grace period after `expires`, in days (at most 365).
    pub grace_days: u32,
    /// Licensed features (sorted and deduplicated on issue).
    pub features: Vec<String>,
    /// Licensed limits by name.
    pub limits: BTreeMap<String, u64>,
}

/// Issues a licence for the node of `request`: builds the payload (binding
/// `machine`, and `cluster` when the request has a cluster fingerprint),
/// signs `SIGNING_DOMAIN || payload` with `signing`, and returns the armored
/// text. The same inputs give the same output. `serial` should come from
/// the vendor's [`crate::Ledger`]. Refuses terms that break the format's
/// rules, `expires` not later than `notBefore`, and `expires` not later
/// than `now`.
pub fn issue(
    request: &Request,
    terms: &Terms,
    serial: u64,
    signing: &SigningKey,
    key_id: KeyId,
    now: OffsetDateTime,
) -> Result<String, LicenseError> {
    request.validate("request")?;
    let invalid = |reason: String| LicenseError::InvalidTerms { reason };
    check_customer(&terms.customer).map_err(invalid)?;
    let issued_at = utc::whole_seconds(now);
    let not_before = utc::whole_seconds(terms.not_before.unwrap_or(issued_at));
    let expires = utc::whole_seconds(terms.expires);
    if expires <= issued_at {
        return Err(invalid(format!(
            "expires ({}) is not later than now ({}): the licence would be expired when issued",
            utc::format(expires),
            utc::format(issued_at)
        )));
    }
    if expires <= not_before {
        return Err(invalid(format!(
            "expires ({}) must be later than notBefore ({})",
            utc::format(expires),
            utc::format(not_before)
        )));
    }
    let mut features = terms.features.clone();
    features.sort();
    features.dedup();
    let mut bind = vec![Component::Machine];
    if request.fingerprint.cluster.is_some() {
        bind.insert(0, Component::Cluster);
    }
    let payload = LicensePayload {
        format: LICENSE_FORMAT,
        alg: ALG_ED25519.to_string(),
        key_id: key_id.to_string(),
        product: request.product.clone(),
        serial,
        customer: terms.customer.clone(),
        issued_at,
        not_before,
        expires,
        grace_days: terms.grace_days,
        features,
        limits: terms.limits.clone(),
        fingerprint: request.fingerprint.clone(),
        bind,
        request_nonce: request.nonce.clone(),
    };
    payload.validate().map_err(invalid)?;
    let text = armor(&payload, signing)?;

    // Read back what was written, as a verifier will.
    let public = PublicKey {
        key_id,
        key: signing.verifying_key(),
    };
    ArmoredLicense::parse(&text, "issued licence")?
        .verify_signature("issued licence", &[public])?;
    Ok(text)
}

/// Signs `payload` with `signing` (over `SIGNING_DOMAIN || payload JSON`)
/// and writes the armored licence text: the headers from the payload, the
/// envelope naming the payload's `alg` and `keyId`, base64 wrapped at
/// [`BODY_COLUMNS`]. The payload is not checked: [`issue`] validates it
/// first and reads the result back.
pub fn armor(payload: &LicensePayload, signing: &SigningKey) -> Result<String, LicenseError> {
    let invalid = |reason: String| LicenseError::InvalidTerms { reason };
    let payload_bytes =
        serde_json::to_vec(payload).map_err(|e| invalid(format!("cannot serialise: {e}")))?;
    let signature = signing.sign(&signing_input(&payload_bytes));
    let envelope = Envelope {
        alg: payload.alg.clone(),
        key_id: payload.key_id.clone(),
        payload: B64.encode(&payload_bytes),
        signature: B64.encode(signature.to_bytes()),
    };
    let envelope_json =
        serde_json::to_vec(&envelope).map_err(|e| invalid(format!("cannot serialise: {e}")))?;

    let mut text = String::new();
    text.push_str(BEGIN_LINE);
    text.push('\n');
    for (name, value) in payload.header_values() {
        text.push_str(&format!("{name}: {value}\n"));
    }
    text.push('\n');
    let body = B64.encode(&envelope_json);
    for line in body.as_bytes().chunks(BODY_COLUMNS) {
        // Base64 is ASCII, so every chunk is UTF-8.
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(END_LINE);
    text.push('\n');
    Ok(text)
}

/// Parses an expiry or start date for the command line: a date
/// (`2027-11-22`, meaning midnight UTC) or a timestamp as the files write
/// it (`2027-11-22T00:00:00Z`).
pub fn parse_date(text: &str) -> Result<OffsetDateTime, LicenseError> {
    let text = text.trim();
    if let Some(t) = utc::parse(text) {
        return Ok(t);
    }
    utc::parse(&format!("{text}T00:00:00Z")).ok_or_else(|| LicenseError::InvalidTerms {
        reason: format!(
            "invalid date {:?}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ",
            quote(text)
        ),
    })
}

/// Parses a comma-separated feature list (`a,b`): names, sorted and
/// deduplicated; an empty text is no features.
pub fn parse_features(text: &str) -> Result<Vec<String>, LicenseError> {
    let mut features = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        check_name("feature", name).map_err(|reason| LicenseError::InvalidTerms { reason })?;
        features.push(name.to_string());
    }
    features.sort();
    features.dedup();
    Ok(features)
}

/// Parses one `NAME=N` limit (`workspaces=5`).
pub fn parse_limit(text: &str) -> Result<(String, u64), LicenseError> {
    let invalid = |reason: String| LicenseError::InvalidTerms { reason };
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| invalid(format!("limit {:?}: expected NAME=N", quote(text))))?;
    let name = name.trim();
    check_name("limit name", name).map_err(invalid)?;
    let value = value.trim().parse::<u64>().map_err(|_| {
        invalid(format!(
            "limit {name}: {:?} is not a non-negative integer",
            quote(value.trim())
        ))
    })?;
    Ok((name.to_string(), value))
}
