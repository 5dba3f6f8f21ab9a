//! `airgap-bundle sign FILE`: a minisign signature of a small file.

use std::path::PathBuf;

use airgap_bundle::sign::SecretKey;
use anyhow::Result;

/// Arguments of `sign`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  airgap-bundle sign dist/x86_64/SHA256SUMS --key release.key\n  minisign -Vm dist/x86_64/SHA256SUMS -p release.pub"
)]
pub struct Args {
    /// The file.
    file: PathBuf,
    /// Secret key to sign with.
    #[arg(long)]
    key: PathBuf,
    /// Where to write the signature (default: FILE.minisig).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Signs the file and says where the signature went.
pub fn run(args: Args) -> Result<()> {
    let Args { file, key, out } = args;
    let key = SecretKey::from_file(&key)?;
    let out = out.unwrap_or_else(|| {
        let mut name = file.clone().into_os_string();
        name.push(".minisig");
        PathBuf::from(name)
    });
    let sig = airgap_bundle::sign::sign_file(&key, &file, &out)?;
    airgap_cli::report::print_text(&format!(
        "wrote {}: signature of {} by {}",
        out.display(),
        file.display(),
        sig.key_id
    ))
}
