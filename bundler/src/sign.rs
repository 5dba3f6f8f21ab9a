//! Signing keys in minisign's unencrypted secret-key format, and signing.
//! This module is the only place secret keys are handled; the installer
//! does not link it.

use std::path::{Path, PathBuf};

use airgap_format::signature::{prehash, read_bounded_text, ALG_ED};
use airgap_format::{KeyId, PublicKey, Signature};
use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest as _};
use ed25519_dalek::{Signer, SigningKey};

const KDF_NONE: [u8; 2] = [0, 0];
const CHK_B2: [u8; 2] = *b"B2";
use airgap_format::signature::SECRET_KEY_LEN;

/// An Ed25519 signing key with its minisign key id.
pub struct SecretKey {
    key_id: KeyId,
    signing: SigningKey,
}

fn checksum(key_id: &KeyId, keypair: &[u8; 64]) -> [u8; 32] {
    let mut h = Blake2b::<U32>::new();
    h.update(ALG_ED);
    h.update(key_id.0);
    h.update(keypair);
    h.finalize().into()
}

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Result<Self> {
        let mut seed = [0u8; 32];
        let mut id = [0u8; 8];
        getrandom::getrandom(&mut seed)
            .map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
        getrandom::getrandom(&mut id).map_err(|e| anyhow::anyhow!("no system randomness: {e}"))?;
        Ok(SecretKey {
            key_id: KeyId(id),
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            key_id: self.key_id,
            key: self.signing.verifying_key(),
        }
    }

    /// The key in minisign's secret key file format, unencrypted (as
    /// `minisign -G -W` writes it), so `minisign -S` can use it too.
    pub fn to_minisign_text(&self) -> String {
        let keypair = self.signing.to_keypair_bytes();
        let mut raw = Vec::with_capacity(SECRET_KEY_LEN);
        raw.extend_from_slice(&ALG_ED);
        raw.extend_from_slice(&KDF_NONE);
        raw.extend_from_slice(&CHK_B2);
        raw.extend_from_slice(&[0u8; 32]); // salt: unused without a KDF
        raw.extend_from_slice(&0u64.to_le_bytes());
        raw.extend_from_slice(&0u64.to_le_bytes());
        raw.extend_from_slice(&self.key_id.0);
        raw.extend_from_slice(&keypair);
        raw.extend_from_slice(&checksum(&self.key_id, &keypair));
        format!(
            "untrusted comment: minisign secret key {}\n{}\n",
            self.key_id,
            B64.encode(raw)
        )
    }

    /// Parses an unencrypted minisign secret key.
    pub fn parse(text: &str, what: &str) -> Result<Self> {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let first = lines.next().with_context(|| format!("{what}: empty"))?;
        let line = if first.starts_with("untrusted comment:") {
            lines
                .next()
                .with_context(|| format!("{what}: no key after the comment"))?
        } else {
            first
        };
        let raw = B64
            .decode(line.trim())
            .with_context(|| format!("{what}: not a minisign secret key (invalid base64)"))?;
        if raw.len() == airgap_format::signature::PUBLIC_KEY_LEN {
            bail!("{what}: this is a minisign public key, not a secret key: give the secret key (the .key file `airgap-bundle keygen` wrote beside it)");
        }
        if raw.len() != SECRET_KEY_LEN {
            bail!("{what}: not a minisign secret key ({} bytes)", raw.len());
        }
        if raw[0..2] != ALG_ED {
            bail!("{what}: not an Ed25519 minisign secret key");
        }
        if raw[2..4] != KDF_NONE {
            bail!("{what}: the key is password-protected; create an unencrypted one with `airgap-bundle keygen` or `minisign -G -W`");
        }
        if raw[4..6] != CHK_B2 {
            bail!("{what}: unknown checksum algorithm");
        }
        let key_id = KeyId(raw[54..62].try_into().expect("8 bytes"));
        let keypair: [u8; 64] = raw[62..126].try_into().expect("64 bytes");
        let chk: [u8; 32] = raw[126..158].try_into().expect("32 bytes");
        // minisign -G -W leaves the checksum of unencrypted keys zeroed; the
        // key pair check below still catches a corrupted key.
        if chk != [0u8; 32] && checksum(&key_id, &keypair) != chk {
            bail!("{what}: checksum mismatch (corrupted key)");
        }
        let signing = SigningKey::from_keypair_bytes(&keypair)
            .map_err(|_| anyhow::anyhow!("{what}: public half does not match the secret key"))?;
        Ok(SecretKey { key_id, signing })
    }

    /// Reads a secret key file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = read_bounded_text(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The key id (as minisign shows it).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// The Ed25519 signing key itself, for signatures other than minisign's
    /// (licences, which use their own domain-separated construction).
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    /// Signs `message` (prehashed with BLAKE2b-512, as minisign does).
    pub fn sign(&self, message: &[u8], trusted_comment: &str) -> Signature {
        let signature = self.signing.sign(&prehash(message)).to_bytes();
        let mut global = Vec::with_capacity(64 + trusted_comment.len());
        global.extend_from_slice(&signature);
        global.extend_from_slice(trusted_comment.as_bytes());
        let global_signature = self.signing.sign(&global).to_bytes();
        Signature {
            untrusted_comment: airgap_format::signature::UNTRUSTED_SIGNATURE_COMMENT.into(),
            key_id: self.key_id,
            signature,
            trusted_comment: trusted_comment.to_string(),
            global_signature,
        }
    }
}

/// Largest file `sign_file` signs: signatures are of small files such as a
/// release's `SHA256SUMS`, read whole (minisign prehashes them).
pub const MAX_SIGNED_FILE: u64 = 16 << 20;

/// Signs `file` with `key` into `out` (minisign's format, so stock
/// `minisign -Vm FILE -p KEY.pub` checks it); the trusted comment names the
/// file and its SHA-256.
pub fn sign_file(key: &SecretKey, file: &Path, out: &Path) -> Result<Signature> {
    let bytes = airgap_format::regular_file::read_regular(file, MAX_SIGNED_FILE, "a file to sign")
        .with_context(|| file.display().to_string())?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let comment = format!(
        "file:{name} sha256:{}",
        airgap_format::Digest::of(&bytes).hex()
    );
    let signature = key.sign(&bytes, &comment);
    airgap_format::atomic_file::write_file_atomic(
        out,
        signature.to_minisign_text().as_bytes(),
        0o644,
    )
    .with_context(|| format!("{}: cannot write the signature", out.display()))?;
    Ok(signature)
}

/// The seal entries for a bundle whose `bundle.json` is `bundle_json` and whose
/// frames so far are described by `frames`: `bundle.seal` bytes
/// and their signature text. `bundle_comment` is the trusted comment of the
/// bundle's signature; the seal's names the seal file instead.
pub fn seal(
    key: &SecretKey,
    bundle_json: &[u8],
    frames: airgap_format::seekable::SealState,
    bundle_comment: &str,
) -> Result<(Vec<u8>, String)> {
    let seal = airgap_format::bundle_json::Seal {
        bundle_digest: airgap_format::Digest::of(bundle_json),
        compressed_frames: frames.compressed_frames,
        compressed_frames_digest: frames.compressed_frames_digest,
        frames: frames.frames,
        frame_table_digest: frames.frame_table_digest,
    };
    let bytes = airgap_format::canonical_json::to_canonical_vec(&seal)?;
    let comment = bundle_comment.replace(
        &format!("file:{}", airgap_format::bundle_json::BUNDLE_JSON),
        &format!("file:{}", airgap_format::bundle_json::BUNDLE_SEAL),
    );
    let sig = key.sign(&bytes, &comment).to_minisign_text();
    Ok((bytes, sig))
}

/// Writes a new key pair to `PREFIX.key` (mode 0600) and `PREFIX.pub`.
/// Existing files are kept unless `force`.
pub fn keygen(prefix: &Path, force: bool) -> Result<(PathBuf, PathBuf, KeyId)> {
    let key_path = with_suffix(prefix, ".key");
    let pub_path = with_suffix(prefix, ".pub");
    for p in [&key_path, &pub_path] {
        if p.exists() && !force {
            bail!(
                "{}: already exists (use --force to replace it)",
                p.display()
            );
        }
    }
    let key = SecretKey::generate()?;
    write_file_atomic(&key_path, key.to_minisign_text().as_bytes(), 0o600)?;
    write_file_atomic(&pub_path, key.public().to_minisign_text().as_bytes(), 0o644)?;
    Ok((key_path, pub_path, key.key_id))
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes `bytes` to `path` with `mode`, atomically (see [`airgap_format::atomic_file`]).
pub fn write_file_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    Ok(airgap_format::atomic_file::write_file_atomic(
        path, bytes, mode,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_round_trips_and_signs() {
        let k = SecretKey::generate().unwrap();
        let parsed = SecretKey::parse(&k.to_minisign_text(), "k").unwrap();
        assert_eq!(parsed.key_id, k.key_id);
        let sig = parsed.sign(b"hello", "timestamp:0");
        let text = sig.to_minisign_text();
        let back = Signature::parse(&text).unwrap();
        let pk = PublicKey::parse(&k.public().to_minisign_text(), "p").unwrap();
        back.verify(b"hello", std::slice::from_ref(&pk)).unwrap();
        assert!(back.verify(b"hellO", std::slice::from_ref(&pk)).is_err());
    }

    #[test]
    fn corrupted_secret_keys_are_refused() {
        // docs/format.md §8: a checksum other than all zeros must match, and
        // the public half must match the seed in every case.
        let k = SecretKey::generate().unwrap();
        let text = k.to_minisign_text();
        let line = text.lines().nth(1).unwrap();
        let raw = B64.decode(line).unwrap();
        let edit = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut r = raw.clone();
            f(&mut r);
            format!("untrusted comment: x\n{}\n", B64.encode(r))
        };
        let err = |t: String| SecretKey::parse(&t, "k.key").err().unwrap().to_string();
        // A public key where the secret key belongs is named as such.
        assert!(err(k.public().to_minisign_text())
            .contains("this is a minisign public key, not a secret key"));
        assert!(err(edit(&|r| r[130] ^= 1)).ends_with("checksum mismatch (corrupted key)"));
        // Zeroed checksum (minisign -G -W): accepted while the pair matches.
        assert!(SecretKey::parse(&edit(&|r| r[126..158].fill(0)), "k").is_ok());
        assert!(err(edit(&|r| {
            r[126..158].fill(0);
            r[100] ^= 1;
        }))
        .ends_with("public half does not match the secret key"));
        assert!(err(edit(&|r| r[2..4].copy_from_slice(b"Sc"))).contains("password-protected"));
    }
}
