//! One module per subcommand: its arguments (`Args`) and its body (`run`).
//! `main.rs` parses the command line and calls the one named; what several
//! commands share is here.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use airgap_cli::args::{BundleArgs, JobsArgs, LoginArgs};
use airgap_cli::progress::error_line;
use airgap_cli::report::{emit, print_json, Report};
use airgap_format::PublicKey;
use airgap_install::install::access::RegistryAccess;
use airgap_install::push::OnExistingTag;
use airgap_install::site::SiteFile;
use airgap_install::trust;
use airgap_registry::credentials::{self, Credentials};
use anyhow::Result;
use serde::{Serialize, Serializer};

pub mod abandon;
pub mod completion;
pub mod health;
pub mod history;
pub mod inspect;
pub mod install;
pub mod license;
pub mod man;
pub mod plan;
pub mod preflight;
pub mod push;
pub mod render;
pub mod rollback;
pub mod sbom;
pub mod self_check;
pub mod site;
pub mod status;
pub mod uninstall;
pub mod verify;
pub mod version;

/// What every command may use besides its own arguments: the folders the
/// global options (or their defaults) name.
pub struct Context {
    /// The state folder (installed bundles, licence, audit log).
    pub state_dir: PathBuf,
    /// The configuration folder (holds trusted-keys/).
    pub config_dir: PathBuf,
}

/// How the commands that upload to a registry (`push`, `install`,
/// `preflight`, `plan`) log in, how many blobs they send at once and what
/// they do about a tag that points elsewhere.
#[derive(clap::Args)]
pub struct UploadArgs {
    #[command(flatten)]
    login: LoginArgs,
    #[command(flatten)]
    jobs: JobsArgs,
    /// When a tag already points at another image: fail (stop before pushing), skip (keep it) or overwrite.
    #[arg(long, value_enum, default_value_t = OnExistingTag::Fail)]
    on_existing_tag: OnExistingTag,
}

/// What `install` and `preflight` both take: the site file, the bundle and
/// its keys, and how to upload to the site's registry.
#[derive(clap::Args)]
pub struct SiteBundleArgs {
    /// The site file (site.yaml).
    #[arg(long)]
    site: PathBuf,
    #[command(flatten)]
    bundle: BundleArgs,
    #[command(flatten)]
    upload: UploadArgs,
}

impl SiteBundleArgs {
    /// The bundle (its signature checked), the site file checked against
    /// its schema and loaded, and the site's registry ([`site_registry`]).
    pub fn open_site(
        &self,
        trusted: &[PublicKey],
    ) -> Result<(airgap_format::SignedBundle, SiteFile, RegistryAccess)> {
        let bundle = airgap_format::SignedBundle::open(
            &self.bundle.file,
            trusted,
            airgap_format::Limits::default(),
        )?;
        let site = airgap_install::profile::load_site(&bundle, &self.site)?;
        let registry = site_registry(&site, &self.upload.login)?;
        Ok((bundle, site, registry))
    }
}

/// Runs a command's `body`; with `--json`, a failure is also printed on
/// stdout as `{"ok": false, "file": FILE, "error": LINE}` plus `extra`
/// fields, before the usual `error:` line on stderr.
pub fn json_failure(
    json: bool,
    file: Option<&Path>,
    extra: &[(&str, Option<&str>)],
    body: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let result = body();
    if let (true, Err(err)) = (json, &result) {
        let mut failure = serde_json::json!({
            "ok": false,
            "error": error_line(err.as_ref()),
        });
        if let Some(file) = file {
            failure["file"] = serde_json::Value::from(file.display().to_string());
        }
        for (key, value) in extra {
            if let Some(v) = value {
                failure[*key] = serde_json::Value::from(*v);
            }
        }
        print_json(&failure)?;
    }
    result
}

/// Runs `body` of a command on a signed bundle with the keys it trusts
/// (`--trust` and the configuration folder's); with `--json`, a failure is
/// also printed as JSON ([`json_failure`]).
pub fn with_trusted_keys(
    bundle: &BundleArgs,
    json: bool,
    ctx: &Context,
    body: impl FnOnce(&[PublicKey]) -> Result<()>,
) -> Result<()> {
    json_failure(json, Some(&bundle.file), &[], || {
        let trusted = trust::load_trusted(&bundle.trust, &ctx.config_dir)?;
        body(&trusted)
    })
}

/// The `User-Agent` sent to registries.
pub fn user_agent() -> String {
    format!("airgap-install/{}", env!("CARGO_PKG_VERSION"))
}

/// Credentials for `host`, the one registry the command talks to: from
/// `--username [HOST=]USER` and standard input, else the usual credential
/// stores.
pub fn registry_credentials(host: &str, login: &LoginArgs) -> Result<Option<Credentials>> {
    if let Some(given) = login.credentials_for(host)? {
        return Ok(Some(given));
    }
    // A broken credentials file or helper must not stop a push to a
    // registry that needs no credentials: warn and go on.
    Ok(credentials::lookup(host).unwrap_or_else(|e| {
        tracing::warn!("ignoring stored credentials: {}", error_line(e.as_ref()));
        None
    }))
}

/// The site's registry, as its site file describes it (TLS, plain HTTP),
/// with the credentials [`registry_credentials`] finds for it.
pub fn site_registry(site: &SiteFile, login: &LoginArgs) -> Result<RegistryAccess> {
    let credentials = registry_credentials(&site.site.registry.host, login)?;
    Ok(RegistryAccess::for_site(site, credentials))
}

/// Prints `value` as [`emit`] does: pretty JSON with `--json`, else the
/// text `text` makes of it. For the reports of the library crates, which
/// cannot implement [`Report`] here.
pub fn show<T: Serialize>(value: &T, json: bool, text: impl Fn(&T) -> String) -> Result<()> {
    emit(&Shown(value, text), json)
}

/// Prints text on standard output; a closed pipe ends it quietly, as
/// [`emit`] does.
pub fn print_text(text: &str) -> Result<()> {
    show(&text, false, |t| t.to_string())
}

/// A value and how to make its text form: the [`Report`] behind [`show`].
struct Shown<'a, T, F>(&'a T, F);

impl<T: Serialize, F> Serialize for Shown<'_, T, F> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<T: Serialize, F: Fn(&T) -> String> Report for Shown<'_, T, F> {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all((self.1)(self.0).as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airgap_cli::progress::is_usage_error;

    #[test]
    fn a_login_named_for_another_registry_is_a_usage_error_with_the_fix() {
        let login = LoginArgs {
            username: Some("other:5000=deploy".into()),
            password_stdin: true,
        };
        let e = registry_credentials("site.example:5000", &login).unwrap_err();
        assert!(is_usage_error(&e), "{e}");
        assert!(
            e.to_string()
                .contains("write --username site.example:5000=deploy"),
            "{e}"
        );
    }
}
