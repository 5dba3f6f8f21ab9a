//! Flag groups both binaries use, defined once so that a flag means the same
//! thing in `airgap-bundle` and `airgap-install`: registry login
//! (`--username [HOST=]USER --password-stdin`), transfer concurrency
//! (`--jobs`, one range), machine-readable output (`--json`) and a signed
//! bundle with the keys it must be signed by (`FILE --trust KEY`).

use std::path::PathBuf;

use airgap_registry::credentials::{password_from_stdin, Credentials};
use clap::Args;

use crate::progress::UsageError;

/// Registry login from the command line.
#[derive(Args, Debug, Clone, Default)]
pub struct LoginArgs {
    /// Log in as USER (HOST=USER names the registry; needed when a command
    /// talks to several); the password is read from standard input.
    #[arg(long, value_name = "[HOST=]USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the password for --username from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
}

/// A `--username` value split into its optional registry and its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAt {
    /// The registry the login is for (`HOST=`), when named.
    pub host: Option<String>,
    /// The user name.
    pub user: String,
}

impl UserAt {
    /// Parses `[HOST=]USER`; an empty host or user is a usage error.
    pub fn parse(value: &str) -> Result<Self, UsageError> {
        let bad = || {
            UsageError(format!(
                "--username {value:?}: expected USER or HOST=USER, such as --username registry.example:5000=deploy"
            ))
        };
        match value.split_once('=') {
            Some((h, u)) if !h.is_empty() && !u.is_empty() && !u.contains('=') => Ok(UserAt {
                host: Some(h.to_string()),
                user: u.to_string(),
            }),
            Some(_) => Err(bad()),
            None if value.is_empty() => Err(bad()),
            None => Ok(UserAt {
                host: None,
                user: value.to_string(),
            }),
        }
    }
}

impl LoginArgs {
    /// The parsed `--username`, if given.
    pub fn user_at(&self) -> Result<Option<UserAt>, UsageError> {
        self.username.as_deref().map(UserAt::parse).transpose()
    }

    /// Credentials for the one registry `host` a command talks to: `USER`,
    /// or `HOST=USER` naming that registry, with the password read from
    /// standard input. `None` without `--username`.
    pub fn credentials_for(&self, host: &str) -> anyhow::Result<Option<Credentials>> {
        let Some(at) = self.user_at()? else {
            return Ok(None);
        };
        if let Some(named) = &at.host {
            if named != host {
                return Err(UsageError(format!(
                    "--username names registry {named:?}, but this command talks to {host:?}: write --username {}={} or leave HOST= out",
                    host, at.user
                ))
                .into());
            }
        }
        Ok(Some(Credentials {
            username: at.user,
            password: password_from_stdin()?,
        }))
    }

    /// Credentials for a command that talks to several registries: `HOST=`
    /// is required. Returns the host as written and the credentials.
    pub fn credentials_with_host(&self) -> anyhow::Result<Option<(String, Credentials)>> {
        let Some(at) = self.user_at()? else {
            return Ok(None);
        };
        let Some(host) = at.host else {
            return Err(UsageError(format!(
                "--username {:?}: name the registry, as in --username registry.example:5000={}",
                at.user, at.user
            ))
            .into());
        };
        Ok(Some((
            host,
            Credentials {
                username: at.user,
                password: password_from_stdin()?,
            },
        )))
    }
}

/// The highest `--jobs` either tool accepts.
pub const MAX_JOBS: u16 = 64;

/// Transfers at once.
#[derive(Args, Debug, Clone, Copy)]
pub struct JobsArgs {
    /// Blobs transferred at once (downloads or uploads), 1 to 64.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=MAX_JOBS as i64))]
    pub jobs: u16,
}

impl JobsArgs {
    /// The count as a `usize`.
    pub fn get(&self) -> usize {
        usize::from(self.jobs)
    }
}

/// `--json`.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct OutputArgs {
    /// Print the result as JSON and draw no progress bars.
    #[arg(long)]
    pub json: bool,
}

/// A signed bundle and the keys it must be signed by.
#[derive(Args, Debug, Clone)]
pub struct BundleArgs {
    /// The bundle (its first part, for a split bundle).
    pub file: PathBuf,
    /// A trusted public key (minisign format); repeatable.
    #[arg(long)]
    pub trust: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        login: LoginArgs,
        #[command(flatten)]
        jobs: JobsArgs,
    }

    #[test]
    fn user_at_grammar() {
        assert_eq!(
            UserAt::parse("deploy").unwrap(),
            UserAt {
                host: None,
                user: "deploy".into()
            }
        );
        assert_eq!(
            UserAt::parse("[::1]:5000=ci").unwrap(),
            UserAt {
                host: Some("[::1]:5000".into()),
                user: "ci".into()
            }
        );
        for bad in ["", "=u", "h=", "h=u=v"] {
            let e = UserAt::parse(bad).unwrap_err().0;
            assert!(e.contains("HOST=USER"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn another_registry_named_is_refused_with_the_fix() {
        let a = LoginArgs {
            username: Some("other:5000=u".into()),
            password_stdin: true,
        };
        let e = a.credentials_for("site:5000").unwrap_err().to_string();
        assert!(e.contains("--username site:5000=u"), "{e}");
        let a = LoginArgs {
            username: Some("u".into()),
            password_stdin: true,
        };
        let e = a.credentials_with_host().unwrap_err().to_string();
        assert!(e.contains("name the registry"), "{e}");
    }

    #[test]
    fn flags_parse_and_pair() {
        let t = T::try_parse_from(["t", "--jobs", "64"]).unwrap();
        assert_eq!(t.jobs.get(), 64);
        assert!(T::try_parse_from(["t", "--jobs", "65"]).is_err());
        assert!(T::try_parse_from(["t", "--jobs", "0"]).is_err());
        assert!(T::try_parse_from(["t", "--username", "u"]).is_err());
        assert!(T::try_parse_from(["t", "--password-stdin"]).is_err());
        let t = T::try_parse_from(["t", "--username", "u", "--password-stdin"]).unwrap();
        assert_eq!(t.login.username.as_deref(), Some("u"));
        assert_eq!(t.jobs.jobs, 4);
    }
}
