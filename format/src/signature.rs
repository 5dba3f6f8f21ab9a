//! minisign-format public keys and signatures, and their verification.
//!
//! Only what a verifier needs lives here; key generation and signing are in
//! the bundler so that the installer links no signing code.
//!
//! Public key: `untrusted comment: …` line, then base64 of
//! `"Ed" || key_id[8] || ed25519_public_key[32]`.
//!
//! Signature: `untrusted comment: …`, base64 of `"ED" || key_id[8] || sig[64]`
//! where `sig` signs BLAKE2b-512(message); `trusted comment: …`; base64 of the
//! global signature over `sig || trusted_comment`.

use std::fmt;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use blake2::{Blake2b512, Digest as _};
use ed25519_dalek::{Signature as EdSignature, VerifyingKey};

/// Algorithm bytes of a public key (and of a legacy, non-prehashed signature).
pub const ALG_ED: [u8; 2] = *b"Ed";
/// Algorithm bytes of a prehashed (BLAKE2b-512) signature, the only kind accepted.
pub const ALG_PREHASHED: [u8; 2] = *b"ED";
const UNTRUSTED_PREFIX: &str = "untrusted comment: ";
const TRUSTED_PREFIX: &str = "trusted comment: ";
/// The untrusted comment of bundle signatures (minisign's default). It is
/// not signed, so the format fixes it: any other text is refused.
pub const UNTRUSTED_SIGNATURE_COMMENT: &str = "signature from minisign secret key";
/// Largest key or signature file read.
pub const MAX_TEXT: u64 = 16 * 1024;

/// Why a key or signature is refused.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// Text not in minisign's format.
    #[error("{what}: {reason}")]
    Malformed {
        /// Which text (a file name, or "signature").
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// Signature by a key that is not trusted.
    #[error("signed by unknown key {key_id} (trusted: {trusted})")]
    UnknownKey {
        /// The signer's key id.
        key_id: KeyId,
        /// The trusted key ids.
        trusted: String,
    },
    /// The signature does not match the message or the trusted comment.
    #[error("signature by key {0} does not match the signed content")]
    BadSignature(KeyId),
    /// The global signature over the trusted comment does not match.
    #[error("trusted comment of the signature by key {0} was altered")]
    BadTrustedComment(KeyId),
    /// Reading a key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// An 8-byte minisign key id, shown as 16 uppercase hex digits like minisign does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016X}", u64::from_le_bytes(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A minisign Ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// Key id.
    pub key_id: KeyId,
    /// The Ed25519 key.
    pub key: VerifyingKey,
}

fn malformed(what: &str, reason: impl Into<String>) -> SignatureError {
    SignatureError::Malformed {
        what: what.to_string(),
        reason: reason.into(),
    }
}

/// Bytes of a minisign secret key's key line (signature algorithm, KDF,
/// checksum algorithm, salt, KDF parameters, key id, key pair, checksum).
pub const SECRET_KEY_LEN: usize = 158;
/// Bytes of a minisign public key's key line.
pub const PUBLIC_KEY_LEN: usize = 42;

fn decode_line(what: &str, line: &str, len: usize) -> Result<Vec<u8>, SignatureError> {
    let bytes = B64
        .decode(line.trim_end_matches('\r').as_bytes())
        .map_err(|e| malformed(what, format!("invalid base64 ({e})")))?;
    if len == PUBLIC_KEY_LEN && bytes.len() == SECRET_KEY_LEN {
        return Err(malformed(
            what,
            "this is a minisign secret key, not a public key: give the public key (the .pub file made beside it), and keep the secret key off this machine",
        ));
    }
    if bytes.len() != len {
        return Err(malformed(
            what,
            format!(
                "expected {len} bytes of key material, found {}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

impl PublicKey {
    /// Parses a public key file's text (two lines) or a bare base64 key line.
    pub fn parse(text: &str, what: &str) -> Result<Self, SignatureError> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let first = lines.next().ok_or_else(|| malformed(what, "empty"))?;
        let key_line = if first.starts_with(UNTRUSTED_PREFIX) {
            lines
                .next()
                .ok_or_else(|| malformed(what, "missing key line after the comment"))?
        } else {
            first
        };
        if lines.next().is_some() {
            return Err(malformed(what, "unexpected text after the key"));
        }
        let bytes = decode_line(what, key_line.trim(), 42)?;
        if bytes[0..2] != ALG_ED {
            return Err(malformed(what, "not an Ed25519 minisign public key"));
        }
        let key_id = KeyId(bytes[2..10].try_into().expect("8 bytes"));
        let key = VerifyingKey::from_bytes(&bytes[10..42].try_into().expect("32 bytes"))
            .map_err(|_| malformed(what, "invalid Ed25519 public key"))?;
        Ok(PublicKey { key_id, key })
    }

    /// Reads and parses a public key file (bounded).
    pub fn from_file(path: &Path) -> Result<Self, SignatureError> {
        let what = path.display().to_string();
        let text = read_bounded_text(path)?;
        Self::parse(&text, &what)
    }

    /// The key in minisign's public key file format.
    pub fn to_minisign_text(&self) -> String {
        let mut raw = Vec::with_capacity(42);
        raw.extend_from_slice(&ALG_ED);
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{UNTRUSTED_PREFIX}minisign public key {}\n{}\n",
            self.key_id,
            B64.encode(raw)
        )
    }
}

/// Reads a small text file, refusing anything over [`MAX_TEXT`] bytes.
pub fn read_bounded_text(path: &Path) -> Result<String, SignatureError> {
    use crate::regular_file::{read_regular, RegularFileError};
    let what = path.display().to_string();
    let buf = read_regular(path, MAX_TEXT, "a key or signature").map_err(|e| match e {
        RegularFileError::TooLarge { .. } => {
            malformed(&what, format!("larger than {MAX_TEXT} bytes"))
        }
        RegularFileError::Io { source, .. } => SignatureError::Io {
            path: what.clone(),
            source,
        },
        RegularFileError::NotRegular { kind, .. } => {
            malformed(&what, format!("is {kind}, not a regular file"))
        }
    })?;
    String::from_utf8(buf).map_err(|_| malformed(&what, "not UTF-8 text"))
}

/// A parsed minisign signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// Untrusted comment (not covered by any signature).
    pub untrusted_comment: String,
    /// Signer's key id.
    pub key_id: KeyId,
    /// Signature of BLAKE2b-512(message).
    pub signature: [u8; 64],
    /// Trusted comment (covered by the global signature).
    pub trusted_comment: String,
    /// Signature of `signature || trusted_comment`.
    pub global_signature: [u8; 64],
}

impl Signature {
    /// Parses signature text. Only prehashed (`ED`) signatures are accepted.
    pub fn parse(text: &str) -> Result<Self, SignatureError> {
        let what = "bundle.json.minisig";
        let text = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<&str> = text.split('\n').collect();
        if lines.len() != 4 {
            return Err(malformed(
                what,
                format!("expected 4 lines, found {}", lines.len()),
            ));
        }
        let untrusted = lines[0]
            .strip_prefix(UNTRUSTED_PREFIX)
            .ok_or_else(|| malformed(what, "first line is not an untrusted comment"))?;
        let sig = decode_line(what, lines[1], 74)?;
        match [sig[0], sig[1]] {
            ALG_PREHASHED => {}
            ALG_ED => {
                return Err(malformed(
                    what,
                    "legacy (non-prehashed) signatures are not accepted",
                ))
            }
            other => {
                return Err(malformed(
                    what,
                    format!(
                        "unknown signature algorithm {:?}",
                        String::from_utf8_lossy(&other)
                    ),
                ))
            }
        }
        let trusted = lines[2]
            .strip_prefix(TRUSTED_PREFIX)
            .ok_or_else(|| malformed(what, "third line is not a trusted comment"))?;
        let global = decode_line(what, lines[3], 64)?;
        Ok(Signature {
            untrusted_comment: untrusted.to_string(),
            key_id: KeyId(sig[2..10].try_into().expect("8 bytes")),
            signature: sig[10..74].try_into().expect("64 bytes"),
            trusted_comment: trusted.to_string(),
            global_signature: global.try_into().expect("64 bytes"),
        })
    }

    /// The signature in minisign's file format.
    pub fn to_minisign_text(&self) -> String {
        let mut raw = Vec::with_capacity(74);
        raw.extend_from_slice(&ALG_PREHASHED);
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(&self.signature);
        format!(
            "{UNTRUSTED_PREFIX}{}\n{}\n{TRUSTED_PREFIX}{}\n{}\n",
            self.untrusted_comment,
            B64.encode(raw),
            self.trusted_comment,
            B64.encode(self.global_signature)
        )
    }

    /// Checks the signature of `message` against `trusted` keys; returns the signer.
    pub fn verify<'k>(
        &self,
        message: &[u8],
        trusted: &'k [PublicKey],
    ) -> Result<&'k PublicKey, SignatureError> {
        let candidates: Vec<&PublicKey> =
            trusted.iter().filter(|k| k.key_id == self.key_id).collect();
        if candidates.is_empty() {
            return Err(SignatureError::UnknownKey {
                key_id: self.key_id,
                trusted: if trusted.is_empty() {
                    "none".into()
                } else {
                    trusted
                        .iter()
                        .map(|k| k.key_id.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
        let prehash = Blake2b512::digest(message);
        let mut global_msg = Vec::with_capacity(64 + self.trusted_comment.len());
        global_msg.extend_from_slice(&self.signature);
        global_msg.extend_from_slice(self.trusted_comment.as_bytes());
        let mut result = Err(SignatureError::BadSignature(self.key_id));
        // Key ids are 8 random bytes, so two trusted keys may share one: try each.
        for key in candidates {
            let sig = EdSignature::from_bytes(&self.signature);
            if key.key.verify_strict(&prehash, &sig).is_err() {
                continue;
            }
            let global = EdSignature::from_bytes(&self.global_signature);
            if key.key.verify_strict(&global_msg, &global).is_err() {
                result = Err(SignatureError::BadTrustedComment(self.key_id));
                continue;
            }
            return Ok(key);
        }
        result
    }
}

/// BLAKE2b-512 of `message`, the value a prehashed signature signs.
pub fn prehash(message: &[u8]) -> [u8; 64] {
    Blake2b512::digest(message).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const KEY_ID: [u8; 8] = [0xEE, 0xA7, 0x5A, 0x81, 0xFB, 0x84, 0x94, 0x98];

    fn key(seed: u8, id: [u8; 8]) -> (SigningKey, PublicKey) {
        let sk = SigningKey::from_bytes(&[seed; 32]);
        let pk = PublicKey {
            key_id: KeyId(id),
            key: sk.verifying_key(),
        };
        (sk, pk)
    }

    /// A prehashed minisign signature of `message`, as the bundler makes it.
    fn sign(sk: &SigningKey, id: [u8; 8], message: &[u8], comment: &str) -> Signature {
        let signature = sk.sign(&prehash(message)).to_bytes();
        let mut global = signature.to_vec();
        global.extend_from_slice(comment.as_bytes());
        Signature {
            untrusted_comment: UNTRUSTED_SIGNATURE_COMMENT.into(),
            key_id: KeyId(id),
            signature,
            trusted_comment: comment.into(),
            global_signature: sk.sign(&global).to_bytes(),
        }
    }

    fn with_algorithm(text: &str, alg: &[u8; 2]) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut raw = B64.decode(&lines[1]).unwrap();
        raw[..2].copy_from_slice(alg);
        lines[1] = B64.encode(raw);
        lines.join("\n") + "\n"
    }

    #[test]
    fn key_ids_display_as_minisign_does() {
        assert_eq!(KeyId(KEY_ID).to_string(), "989484FB815AA7EE");
        let (_, pk) = key(1, KEY_ID);
        let text = pk.to_minisign_text();
        assert!(
            text.starts_with(
                "untrusted comment: minisign public key 989484FB815AA7EE\nRWTup1qB+4SUm"
            ),
            "{text}"
        );
        assert_eq!(PublicKey::parse(&text, "k").unwrap(), pk);
    }

    #[test]
    fn signatures_round_trip_and_verify() {
        let (sk, pk) = key(1, KEY_ID);
        let sig = sign(&sk, KEY_ID, b"bundle", "timestamp:1\tfile:bundle.json");
        let text = sig.to_minisign_text();
        assert_eq!(text.lines().count(), 4);
        let parsed = Signature::parse(&text).unwrap();
        assert_eq!(parsed, sig);
        assert_eq!(
            parsed.verify(b"bundle", &[pk]).unwrap().key_id,
            KeyId(KEY_ID)
        );
    }

    #[test]
    fn only_prehashed_signatures_of_four_lines_parse() {
        let (sk, _) = key(1, KEY_ID);
        let text = sign(&sk, KEY_ID, b"m", "c").to_minisign_text();
        let err = |t: &str| Signature::parse(t).unwrap_err().to_string();
        assert_eq!(
            err(&with_algorithm(&text, b"Ed")),
            "bundle.json.minisig: legacy (non-prehashed) signatures are not accepted"
        );
        assert!(err(&with_algorithm(&text, b"XX")).contains("unknown signature algorithm \"XX\""));
        let three: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert!(err(&three).contains("expected 4 lines, found 3"));
        // A secret key where a public key belongs is named as such.
        let secret = format!(
            "untrusted comment: minisign secret key\n{}\n",
            B64.encode([0u8; SECRET_KEY_LEN])
        );
        assert!(PublicKey::parse(&secret, "k.pub")
            .unwrap_err()
            .to_string()
            .contains("this is a minisign secret key, not a public key"));
        assert!(err(&text.replacen("untrusted comment: ", "comment: ", 1))
            .contains("first line is not an untrusted comment"));
        assert!(err(&text.replacen("trusted comment: c", "comment: c", 1))
            .contains("third line is not a trusted comment"));
        let mut lines: Vec<&str> = text.lines().collect();
        lines[1] = "RUTup1qB+4SUmA==";
        assert!(err(&(lines.join("\n") + "\n")).contains("expected 74 bytes"));
        lines[1] = "not base64!";
        assert!(err(&(lines.join("\n") + "\n")).contains("invalid base64"));
    }

    #[test]
    fn verification_names_what_failed() {
        let (sk, pk) = key(1, KEY_ID);
        let (other_sk, other) = key(2, [1; 8]);
        let sig = sign(&sk, KEY_ID, b"bundle", "timestamp:1");
        assert_eq!(
            sig.verify(b"bundle", std::slice::from_ref(&other))
                .unwrap_err()
                .to_string(),
            "signed by unknown key 989484FB815AA7EE (trusted: 0101010101010101)"
        );
        assert!(sig
            .verify(b"bundle", &[])
            .unwrap_err()
            .to_string()
            .ends_with("(trusted: none)"));
        assert_eq!(
            sig.verify(b"bundlf", std::slice::from_ref(&pk))
                .unwrap_err()
                .to_string(),
            "signature by key 989484FB815AA7EE does not match the signed content"
        );
        let mut altered = sig.clone();
        altered.trusted_comment = "timestamp:2".into();
        assert_eq!(
            altered
                .verify(b"bundle", std::slice::from_ref(&pk))
                .unwrap_err()
                .to_string(),
            "trusted comment of the signature by key 989484FB815AA7EE was altered"
        );
        // Two trusted keys with the signer's id: each is tried.
        let impostor = PublicKey {
            key_id: KeyId(KEY_ID),
            key: other_sk.verifying_key(),
        };
        assert_eq!(
            sig.verify(b"bundle", &[impostor.clone(), pk.clone()])
                .unwrap()
                .key,
            pk.key
        );
        assert!(sig.verify(b"bundle", &[impostor]).is_err());
    }

    #[test]
    fn public_key_files() {
        let (_, pk) = key(1, KEY_ID);
        let text = pk.to_minisign_text();
        let bare = text.lines().nth(1).unwrap().to_string();
        assert_eq!(PublicKey::parse(&bare, "k").unwrap(), pk);
        assert_eq!(PublicKey::parse(&format!("\n\n{text}\n"), "k").unwrap(), pk);
        for (bad, want) in [
            (format!("{text}extra\n"), "unexpected text after the key"),
            ("".to_string(), "empty"),
            ("untrusted comment: x\n".to_string(), "missing key line"),
            (
                text.replace("RWT", "RUT"),
                "not an Ed25519 minisign public key",
            ),
        ] {
            let e = PublicKey::parse(&bad, "k").unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pub");
        std::fs::write(&big, format!("{text}{}", " ".repeat(MAX_TEXT as usize))).unwrap();
        let e = PublicKey::from_file(&big).unwrap_err().to_string();
        assert!(e.ends_with("larger than 16384 bytes"), "{e}");
        std::fs::write(&big, b"\xff\xfe").unwrap();
        assert!(PublicKey::from_file(&big)
            .unwrap_err()
            .to_string()
            .ends_with("not UTF-8 text"));
    }
}
