//! One module per subcommand: its arguments (`Args`) and its body (`run`).
//! `main.rs` parses the command line and calls the one named; what several
//! commands share is here.

use std::path::{Path, PathBuf};

use airgap_cli::progress::error_line;
use airgap_install::push::OnExistingTag;
use airgap_registry::credentials::{self, Credentials};
use anyhow::Result;

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

/// A registry login: a user name, its password on standard input.
#[derive(clap::Args)]
pub struct LoginArgs {
    /// User name for the registry; the password is read from standard input (--password-stdin).
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

/// How `push` and `install` upload to the site registry.
#[derive(clap::Args)]
pub struct UploadArgs {
    /// User name for the registry; the password is read from standard input (--password-stdin).
    #[arg(long, requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Blobs uploaded at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// When a tag already points at another image: fail (stop before pushing), skip (keep it) or overwrite.
    #[arg(long, value_enum, default_value_t = OnExistingTag::Fail)]
    pub on_existing_tag: OnExistingTag,
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
        println!("{}", serde_json::to_string_pretty(&failure)?);
    }
    result
}

/// The `User-Agent` sent to registries.
pub fn user_agent() -> String {
    format!("airgap-install/{}", env!("CARGO_PKG_VERSION"))
}

/// Credentials for `host`: from `--username` and standard input, else the
/// usual credential stores.
pub fn registry_credentials(
    host: &str,
    username: Option<String>,
    password_stdin: bool,
) -> Result<Option<Credentials>> {
    Ok(match (username, password_stdin) {
        (Some(username), true) => Some(Credentials {
            username,
            password: credentials::password_from_stdin()?,
        }),
        // A broken credentials file or helper must not stop a push to a
        // registry that needs no credentials: warn and go on.
        _ => credentials::lookup(host).unwrap_or_else(|e| {
            tracing::warn!("ignoring stored credentials: {}", error_line(e.as_ref()));
            None
        }),
    })
}
