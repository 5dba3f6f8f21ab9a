//! Trusted signing keys: given with `--trust`, and every `*.pub` file in the
//! trusted-keys folder of the installer's configuration.

use std::path::{Path, PathBuf};

use airgap_format::PublicKey;
use anyhow::{bail, Context, Result};

/// Default configuration folder.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/airgap-install";
/// Environment variable that overrides the configuration folder.
pub const CONFIG_DIR_ENV: &str = "AIRGAP_INSTALL_CONFIG_DIR";

/// The trusted-keys folder inside a configuration folder.
pub fn trusted_keys_dir(config_dir: &Path) -> PathBuf {
    config_dir.join("trusted-keys")
}

/// The configuration folder: `--config-dir`, else `$AIRGAP_INSTALL_CONFIG_DIR`, else the default.
pub fn config_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os(CONFIG_DIR_ENV).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_DIR))
}

/// Loads the keys named on the command line and those in the trusted-keys
/// folder (when it exists). Refuses when there are none at all.
pub fn load_trusted(explicit: &[PathBuf], config_dir: &Path) -> Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for p in explicit {
        keys.push(PublicKey::from_file(p).map_err(|e| anyhow::anyhow!("--trust {e}"))?);
    }
    let dir = trusted_keys_dir(config_dir);
    if dir.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .with_context(|| format!("{}: cannot list", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pub"))
            .collect();
        files.sort();
        for p in files {
            keys.push(PublicKey::from_file(&p).map_err(|e| anyhow::anyhow!("{e}"))?);
        }
    }
    if keys.is_empty() {
        bail!(
            "no trusted keys: pass --trust PUBKEY or put *.pub files in {}",
            dir.display()
        );
    }
    Ok(keys)
}
