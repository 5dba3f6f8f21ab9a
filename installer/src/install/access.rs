//! How a run reaches the site's registry: the site file's address, TLS
//! settings and credentials, and the push settings built from them.

use std::path::Path;

use anyhow::Result;

use crate::push::PushOptions;
use crate::site::SiteFile;
use crate::state::State;

/// How to reach the site's registry.
pub struct RegistryAccess {
    /// TLS settings (the site's internal CA, plain HTTP for test registries).
    pub transport: airgap_registry::Transport,
    /// Credentials, if any.
    pub credentials: Option<airgap_registry::credentials::Credentials>,
}

impl RegistryAccess {
    /// The site file's registry settings (its internal CA, plain HTTP),
    /// with `credentials`.
    pub fn for_site(
        site: &SiteFile,
        credentials: Option<airgap_registry::credentials::Credentials>,
    ) -> Self {
        RegistryAccess {
            transport: site.transport(format!("airgap-install/{}", env!("CARGO_PKG_VERSION"))),
            credentials,
        }
    }

    /// Push settings for the site's registry: its target, and the images
    /// the installed releases put there (where blobs can be mounted from).
    pub fn push_options(
        &self,
        state: &State,
        site: &SiteFile,
        jobs: usize,
        on_existing_tag: crate::push::OnExistingTag,
        progress: bool,
        base: Option<&Path>,
    ) -> Result<PushOptions> {
        let target = site_target(site)?;
        let mut records = state.install_records()?;
        // The newest install first: its images are the likeliest homes.
        records.sort_by(|a, b| b.installed_at.cmp(&a.installed_at));
        Ok(PushOptions {
            known: crate::survey::known_images(&records, &target),
            target,
            transport: self.transport.clone(),
            credentials: self.credentials.clone(),
            jobs,
            on_existing_tag,
            progress,
            base: base.map(Path::to_path_buf),
        })
    }
}

/// Where the site file says images go.
pub fn site_target(site: &SiteFile) -> Result<crate::target::Target> {
    let r = &site.site.registry;
    crate::target::Target::parse(&if r.prefix.is_empty() {
        r.host.clone()
    } else {
        format!("{}/{}", r.host, r.prefix)
    })
}
