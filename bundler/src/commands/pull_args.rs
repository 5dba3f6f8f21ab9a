//! The registry access flags `build` and `lock` share.

use std::path::PathBuf;

use airgap_bundle::pull::PullOptions;
use airgap_cli::args::{JobsArgs, LoginArgs};
use anyhow::{bail, Result};

/// How to reach registries and chart repositories.
#[derive(clap::Args)]
pub struct PullArgs {
    /// Cache folder: pulled blobs, and layer scans for SBOMs (default: $AIRGAP_BUNDLE_CACHE, else $XDG_CACHE_HOME/airgap-bundle, else ~/.cache/airgap-bundle).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    #[command(flatten)]
    jobs: JobsArgs,
    /// Registry auth file (Docker config.json or Podman auth.json format), read first.
    #[arg(long)]
    authfile: Option<PathBuf>,
    #[command(flatten)]
    login: LoginArgs,
}

impl PullArgs {
    /// The pull options; reads the password from standard input for
    /// `--username HOST=USER` (a manifest names several registries, so
    /// `HOST=` is required).
    pub fn options(self) -> Result<PullOptions> {
        let mut o = PullOptions::default();
        if let Some(d) = self.cache_dir {
            o.cache_dir = d;
        }
        o.jobs = self.jobs.get();
        if let Some(f) = &self.authfile {
            if !f.is_file() {
                bail!("--authfile {}: file not found", f.display());
            }
        }
        o.authfile = self.authfile;
        o.login = self
            .login
            .credentials_with_host()?
            .map(|(host, credentials)| {
                let host = airgap_bundle::sources::reference::api_host(&host).to_string();
                (host, credentials)
            });
        Ok(o)
    }
}
