//! Where the installer pushes: `HOST[:PORT][/PREFIX]`.

use anyhow::{bail, Result};

/// Where images go: `HOST[:PORT][/PREFIX]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `host[:port]`.
    pub host: String,
    /// Repository prefix, without slashes at either end (may be empty).
    pub prefix: String,
}

impl Target {
    /// Parses `HOST[:PORT][/PREFIX]`.
    pub fn parse(s: &str) -> Result<Target> {
        let s = s.trim_end_matches('/');
        let (host, prefix) = s.split_once('/').unwrap_or((s, ""));
        if host.is_empty() || host.contains("://") || s.contains("://") {
            bail!("--registry {s:?}: expected HOST[:PORT][/PREFIX], without a scheme");
        }
        if !prefix.is_empty() && !airgap_format::bundle_json::is_valid_repository(prefix) {
            bail!("--registry {s:?}: prefix {prefix:?} is not a valid repository path");
        }
        Ok(Target {
            host: host.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The repository an image named `name` lands in.
    pub fn repository(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("registry.local:5000/site/apps").unwrap();
        assert_eq!(t.host, "registry.local:5000");
        assert_eq!(t.repository("demo/web"), "site/apps/demo/web");
        assert_eq!(Target::parse("r").unwrap().repository("x"), "x");
        assert!(Target::parse("https://r").is_err());
        assert!(Target::parse("r/Bad").is_err());
    }
}
