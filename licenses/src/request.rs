//! The licence request: what the installer writes on the site (`license
//! request`) and the vendor signs a licence for. It carries the node's
//! fingerprint, never the raw ids.

use std::path::Path;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{quote, LicenseError};
use crate::fingerprint::{Fingerprint, NodeIds};
use crate::limits::{read_bounded, MAX_INSTALLER_CHARS, MAX_REQUEST_FILE};
use crate::names::{check_name, is_lower_hex};
use crate::utc;

/// The `format` value of every request.
pub const REQUEST_FORMAT: &str = "airgap-license-request/v1";
/// Length of a request nonce in hex digits (16 random bytes).
pub const NONCE_HEX_LEN: usize = 32;

/// A licence request (`request.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    /// Always [`REQUEST_FORMAT`].
    pub format: String,
    /// The product id the fingerprint was computed for.
    pub product: String,
    /// The node's fingerprint for that product.
    pub fingerprint: Fingerprint,
    /// 16 random bytes, lowercase hex; the licence repeats it.
    pub nonce: String,
    /// When the request was made (UTC, whole seconds).
    #[serde(with = "crate::utc::serde")]
    pub created_at: OffsetDateTime,
    /// The program that made the request and its version (free text).
    pub installer: String,
}

impl Request {
    /// A new request for `product` from this node, with a fresh random nonce.
    pub fn new(
        product: &str,
        ids: &NodeIds,
        installer: &str,
        now: OffsetDateTime,
    ) -> Result<Self, LicenseError> {
        let mut nonce = [0u8; NONCE_HEX_LEN / 2];
        getrandom::getrandom(&mut nonce).map_err(|e| LicenseError::Random {
            reason: e.to_string(),
        })?;
        let request = Request {
            format: REQUEST_FORMAT.to_string(),
            product: product.to_string(),
            fingerprint: Fingerprint::compute(product, ids)?,
            nonce: hex::encode(nonce),
            created_at: utc::whole_seconds(now),
            installer: installer.to_string(),
        };
        request.validate("request")?;
        Ok(request)
    }

    /// The request as pretty-printed JSON, ending with a newline.
    pub fn to_json_pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a request always serialises");
        text.push('\n');
        text
    }

    /// Parses and validates request JSON (at most [`MAX_REQUEST_FILE`] bytes).
    /// `what` names the input in errors.
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, LicenseError> {
        if bytes.len() as u64 > MAX_REQUEST_FILE {
            return Err(LicenseError::TooLarge {
                what: what.to_string(),
                limit: MAX_REQUEST_FILE,
            });
        }
        let request: Request = serde_json::from_slice(bytes)
            .map_err(|e| LicenseError::malformed(what, format!("not a licence request: {e}")))?;
        request.validate(what)?;
        Ok(request)
    }

    /// Reads (bounded) and parses a request file.
    pub fn from_file(path: &Path) -> Result<Self, LicenseError> {
        let bytes = read_bounded(path, MAX_REQUEST_FILE)?;
        Self::parse(&bytes, &path.display().to_string())
    }

    /// Checks every field against the format's rules.
    pub fn validate(&self, what: &str) -> Result<(), LicenseError> {
        let bad = |reason: String| LicenseError::malformed(what, reason);
        if self.format != REQUEST_FORMAT {
            return Err(bad(format!(
                "unsupported request format {:?} (expected {REQUEST_FORMAT:?})",
                quote(&self.format)
            )));
        }
        check_name("product id", &self.product).map_err(bad)?;
        self.fingerprint.check().map_err(bad)?;
        if !is_lower_hex(&self.nonce, NONCE_HEX_LEN) {
            return Err(bad(format!(
                "nonce: expected {NONCE_HEX_LEN} lowercase hex digits"
            )));
        }
        if self.installer.chars().count() > MAX_INSTALLER_CHARS
            || self.installer.chars().any(char::is_control)
        {
            return Err(bad(format!(
                "installer: expected at most {MAX_INSTALLER_CHARS} characters without control characters"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const MID: &str = "0123456789abcdef0123456789abcdef";

    fn request() -> Request {
        let ids = NodeIds::new(MID, Some("0f8e3c1a-5b2d-4e6f-9a7b-1c2d3e4f5a6b")).unwrap();
        Request::new(
            "reference-platform",
            &ids,
            "airgap-install 0.1.0",
            datetime!(2026-05-01 12:00:00.25 UTC),
        )
        .unwrap()
    }

    #[test]
    fn round_trip() {
        let r = request();
        let text = r.to_json_pretty();
        assert!(
            text.contains("\"createdAt\": \"2026-05-01T12:00:00Z\""),
            "{text}"
        );
        assert!(text.contains("\"format\": \"airgap-license-request/v1\""));
        assert!(!text.contains(MID), "raw machine id leaked: {text}");
        assert_eq!(Request::parse(text.as_bytes(), "request.json").unwrap(), r);
        assert_ne!(request().nonce, r.nonce, "nonces are random");
    }

    #[test]
    fn refuses_bad_requests() {
        let good: serde_json::Value = serde_json::from_str(&request().to_json_pretty()).unwrap();
        let cases: Vec<(&str, serde_json::Value, &str)> = vec![
            (
                "format",
                "airgap-license-request/v2".into(),
                "unsupported request format",
            ),
            ("product", "Bad".into(), "invalid product id"),
            ("nonce", "abc".into(), "nonce: expected 32"),
            (
                "nonce",
                "0123456789ABCDEF0123456789ABCDEF".into(),
                "nonce: expected 32",
            ),
            (
                "createdAt",
                "2026-05-01T12:00:00+02:00".into(),
                "invalid timestamp",
            ),
            ("installer", "a\nb".into(), "installer:"),
            (
                "fingerprint",
                serde_json::json!({"machine": "00"}),
                "fingerprint.machine",
            ),
            (
                "fingerprint",
                serde_json::json!({"machine": "0".repeat(64), "extra": 1}),
                "unknown field",
            ),
            ("extra", 1.into(), "unknown field `extra`"),
        ];
        for (field, value, expected) in cases {
            let mut v = good.clone();
            v[field] = value;
            let err = Request::parse(v.to_string().as_bytes(), "request.json")
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("request.json: "), "{err}");
            assert!(err.contains(expected), "{field}: {err}");
        }
        // Found by fuzzing (license target): serde quotes an unknown field
        // as written, so its message went over several lines.
        let mut v = good.clone();
        v["a\nb\u{1b}[2J"] = 1.into();
        v[format!("long{}", "x".repeat(2000))] = 1.into();
        let err = Request::parse(v.to_string().as_bytes(), "request.json")
            .unwrap_err()
            .to_string();
        assert!(!err.contains(['\n', '\u{1b}']), "{err}");
        assert!(err.contains(r"unknown field `a\nb\u{1b}[2J`"), "{err}");
        assert!(err.chars().count() < 600, "{err}");
        let err = Request::parse(&vec![b' '; 70_000], "request.json").unwrap_err();
        assert_eq!(err.to_string(), "request.json: larger than 65536 bytes");
        let text = request().to_json_pretty();
        for len in 0..text.trim_end().len() {
            assert!(Request::parse(&text.as_bytes()[..len], "r").is_err());
        }
    }
}
