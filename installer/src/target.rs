//! Where the installer pushes: `HOST[:PORT][/PREFIX]`.

use airgap_format::display::quote;
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
        if host.is_empty() || s.contains("://") || !crate::site::valid_host(host) {
            bail!(
                "--registry {}: expected HOST[:PORT][/PREFIX], without a scheme (registry.example:5000/platform)",
                quote(s)
            );
        }
        if !prefix.is_empty() && !airgap_format::bundle_json::is_valid_repository(prefix) {
            bail!(
                "--registry {}: prefix {} is not a valid repository path (lowercase components such as site/platform)",
                quote(s),
                quote(prefix)
            );
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
        for bad in [
            "r/a/../b",
            "r/..",
            "r?x=1/a",
            "r#f/a",
            "u@r/a",
            "r:0/a",
            "r /a",
            "r\u{1b}/a",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        assert!(Target::parse("127.0.0.1:5000/p").is_ok());
        assert_eq!(Target::parse("[::1]:5000/p").unwrap().host, "[::1]:5000");
        assert!(Target::parse("[::1/p").is_err());
    }
}
