//! `airgap-install version --verbose` and `airgap-install self-check`: what
//! this binary is, and whether it is the file the release signed.
//!
//! A release folder holds the binaries, `SHA256SUMS` (as `sha256sum`
//! writes it) and `SHA256SUMS.minisig`, the release key's minisign
//! signature of the sums. `self-check` verifies the signature against the
//! trusted keys, then hashes its own file and finds it in the sums.

use std::path::{Path, PathBuf};

use airgap_format::display::escape as e;
use airgap_format::signature::Signature;
use airgap_format::{Digest, PublicKey};
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

/// The sums file a release folder holds.
pub const SUMS: &str = "SHA256SUMS";
/// Its signature.
pub const SUMS_SIGNATURE: &str = "SHA256SUMS.minisig";
/// Largest sums file read.
const MAX_SUMS: u64 = 1 << 20;

/// What this binary is, fixed when it was built (see `build.rs`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildInfo {
    /// The program's version.
    pub version: &'static str,
    /// The commit it was built from (`unknown` outside a git checkout).
    pub commit: &'static str,
    /// The target triple (`x86_64-unknown-linux-musl`).
    pub target: &'static str,
    /// The build date (RFC 3339, UTC): `SOURCE_DATE_EPOCH`, else the
    /// commit's date; `unknown` when neither was known.
    pub build_date: String,
    /// The compiler.
    pub rustc: &'static str,
}

/// This binary's build facts.
pub fn build_info() -> BuildInfo {
    let date = env!("AIRGAP_BUILD_EPOCH")
        .parse::<i64>()
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .map_or_else(|| "unknown".to_string(), crate::state::rfc3339);
    BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("AIRGAP_BUILD_COMMIT"),
        target: env!("AIRGAP_BUILD_TARGET"),
        build_date: date,
        rustc: env!("AIRGAP_BUILD_RUSTC"),
    }
}

impl BuildInfo {
    /// The facts for people, one per line.
    pub fn to_text(&self) -> String {
        format!(
            "airgap-install {}\ncommit:  {}\ntarget:  {}\nbuilt:   {}\ncompiler: {}\n",
            self.version, self.commit, self.target, self.build_date, self.rustc
        )
    }
}

/// What `self-check` found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfCheck {
    /// The binary checked.
    pub file: String,
    /// Its SHA-256.
    pub digest: String,
    /// The sums file it was found in.
    pub sums: String,
    /// The key that signed the sums.
    pub signer: String,
}

/// Checks the file at `exe` against the signed `SHA256SUMS` beside it.
pub fn self_check(exe: &Path, trusted: &[PublicKey]) -> Result<SelfCheck> {
    let dir = exe.parent().unwrap_or(Path::new("."));
    let sums_path = dir.join(SUMS);
    let sig_path = dir.join(SUMS_SIGNATURE);
    let missing = |p: &PathBuf| {
        anyhow!(
            "{}: not found; self-check needs the release's {SUMS} and {SUMS_SIGNATURE} in the same folder as {}",
            p.display(),
            exe.display()
        )
    };
    if !sums_path.is_file() {
        return Err(missing(&sums_path));
    }
    if !sig_path.is_file() {
        return Err(missing(&sig_path));
    }
    let sums = airgap_format::regular_file::read_regular(&sums_path, MAX_SUMS, "a sums file")
        .with_context(|| sums_path.display().to_string())?;
    let sig_text = airgap_format::signature::read_bounded_text(&sig_path)
        .map_err(|err| anyhow!("{}: {err}", sig_path.display()))?;
    let signature =
        Signature::parse(&sig_text).map_err(|err| anyhow!("{}: {err}", sig_path.display()))?;
    let signer = signature.verify(&sums, trusted).map_err(|err| {
        anyhow!(
            "{}: {err}; the sums are not the release's, or --trust is not the release key",
            sums_path.display()
        )
    })?;
    let name = exe
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("{}: not a file name", exe.display()))?;
    let text = std::str::from_utf8(&sums)
        .map_err(|_| anyhow!("{}: not UTF-8 text", sums_path.display()))?;
    let listed = text.lines().find_map(|line| {
        let (hex, file) = line.split_once(' ')?;
        let file = file.trim_start_matches([' ', '*']);
        (file == name).then(|| hex.to_string())
    });
    let listed = listed.ok_or_else(|| {
        anyhow!(
            "{}: {} is not listed; this is not a file of that release",
            sums_path.display(),
            e(name)
        )
    })?;
    let actual = sha256_file(exe)?;
    if actual.hex() != listed {
        bail!(
            "{}: its SHA-256 is {}, but {} lists {listed}: the file was changed since the release was signed; do not use it, take it again from the release media",
            exe.display(),
            actual.hex(),
            sums_path.display()
        );
    }
    Ok(SelfCheck {
        file: exe.display().to_string(),
        digest: actual.to_string(),
        sums: sums_path.display().to_string(),
        signer: signer.key_id.to_string(),
    })
}

fn sha256_file(path: &Path) -> Result<Digest> {
    let f = airgap_format::regular_file::open_regular(path)
        .with_context(|| format!("{}: cannot open", path.display()))?;
    let (digest, _) =
        airgap_format::digest::hash_reader(std::io::BufReader::with_capacity(1 << 20, f))
            .with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(digest)
}
