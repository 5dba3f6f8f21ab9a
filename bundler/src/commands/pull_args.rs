//! The registry access flags `build` and `lock` share.

use std::path::PathBuf;

use airgap_bundle::pull::PullOptions;
use airgap_cli::progress::UsageError;
use airgap_registry::credentials::{password_from_stdin, Credentials};
use anyhow::{bail, Result};

/// How to reach registries and chart repositories.
#[derive(clap::Args)]
pub struct PullArgs {
    /// Cache folder: pulled blobs, and layer scans for SBOMs (default: $AIRGAP_BUNDLE_CACHE, else $XDG_CACHE_HOME/airgap-bundle, else ~/.cache/airgap-bundle).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Downloads at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    jobs: u16,
    /// Registry auth file (Docker config.json or Podman auth.json format), read first.
    #[arg(long)]
    authfile: Option<PathBuf>,
    /// HOST=USER: log in to HOST as USER, with the password from --password-stdin.
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password for --username from standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

impl PullArgs {
    /// The pull options; reads the password from standard input for
    /// `--username HOST=USER`.
    pub fn options(self) -> Result<PullOptions> {
        let mut o = PullOptions::default();
        if let Some(d) = self.cache_dir {
            o.cache_dir = d;
        }
        o.jobs = self.jobs as usize;
        if let Some(f) = &self.authfile {
            if !f.is_file() {
                bail!("--authfile {}: file not found", f.display());
            }
        }
        o.authfile = self.authfile;
        if let Some(hu) = self.username {
            let Some((host, user)) = hu
                .split_once('=')
                .filter(|(h, u)| !h.is_empty() && !u.is_empty())
            else {
                return Err(UsageError(format!("--username {hu:?}: expected HOST=USER")).into());
            };
            let host = airgap_bundle::sources::reference::api_host(host).to_string();
            o.login = Some((
                host,
                Credentials {
                    username: user.to_string(),
                    password: password_from_stdin()?,
                },
            ));
        }
        Ok(o)
    }
}
