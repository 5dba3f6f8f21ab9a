//! Registry image references (`host[:port]/repo[:tag][@sha256:...]`),
//! normalised the way Docker does: a first component without a dot, a colon
//! or `localhost` is a Docker Hub path (`nginx` is
//! `docker.io/library/nginx:latest`).

use std::fmt;

use airgap_format::bundle_json::{is_valid_repository, is_valid_tag};
use airgap_format::Digest;

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";
/// The host Docker Hub's registry API answers on.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A parsed, normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageReference {
    /// Registry `host[:port]` (`docker.io` for Docker Hub).
    pub registry: String,
    /// Repository path (`library/nginx`, `vendor/control-plane`).
    pub repository: String,
    /// Tag, when given (`latest` when neither tag nor digest is).
    pub tag: Option<String>,
    /// Digest, when given; it wins over the tag.
    pub digest: Option<Digest>,
}

impl ImageReference {
    /// Parses and normalises `s`.
    pub fn parse(s: &str) -> Result<ImageReference, String> {
        let bad = |why: &str| format!("{s:?} is not an image reference: {why}");
        if s.is_empty() || s.len() > 1024 || s.chars().any(|c| c.is_whitespace()) {
            return Err(bad("empty, too long or contains spaces"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(
                    d.parse::<Digest>()
                        .map_err(|e| bad(&format!("digest {d:?}: {e}")))?,
                ),
            ),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !is_valid_tag(t) {
                return Err(bad(&format!(
                    "tag {t:?}: expected letters, digits, '.', '_' or '-', at most 128"
                )));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !valid_host(&registry) {
            return Err(bad(&format!("registry {registry:?} is not HOST[:PORT]")));
        }
        if !is_valid_repository(&repository) {
            return Err(bad(&format!(
                "repository {repository:?}: expected lowercase path components such as vendor/app"
            )));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(ImageReference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The `host[:port]` to send API requests to.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// What to ask the registry for: the digest when known, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The same image pinned to `digest` (the tag kept for people to read).
    pub fn pinned(&self, digest: Digest) -> ImageReference {
        ImageReference {
            digest: Some(digest),
            ..self.clone()
        }
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The API host for a registry name (Docker Hub answers elsewhere).
pub fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

pub use airgap_registry::host::valid_host;

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        ImageReference::parse(s).unwrap().to_string()
    }

    #[test]
    fn normalises_like_docker() {
        assert_eq!(norm("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(norm("nginx:1.25"), "docker.io/library/nginx:1.25");
        assert_eq!(norm("bitnami/redis:7"), "docker.io/bitnami/redis:7");
        assert_eq!(
            norm("index.docker.io/nginx"),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(
            norm("127.0.0.1:5000/vendor/app:1.0"),
            "127.0.0.1:5000/vendor/app:1.0"
        );
        let d = "sha256:".to_string() + &"ab".repeat(32);
        assert_eq!(
            norm(&format!("reg.example/app@{d}")),
            format!("reg.example/app@{d}")
        );
        let r = ImageReference::parse(&format!("reg.example/app:1.0@{d}")).unwrap();
        assert_eq!(r.manifest_reference(), d);
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.api_host(), "reg.example");
        assert_eq!(
            ImageReference::parse("nginx").unwrap().api_host(),
            "registry-1.docker.io"
        );
    }

    #[test]
    fn ipv6_registries_are_bracketed() {
        let r = ImageReference::parse("[::1]:5000/vendor/app:1.0").unwrap();
        assert_eq!(r.registry, "[::1]:5000");
        assert_eq!(r.repository, "vendor/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.to_string(), "[::1]:5000/vendor/app:1.0");
        assert!(ImageReference::parse("::1:5000/vendor/app:1.0").is_err());
    }

    #[test]
    fn refuses_bad_references() {
        for bad in [
            "",
            "Nginx",
            "reg.example/App:1",
            "reg.example/app:",
            "reg.example/app@sha256:12",
            "http://reg.example/app",
            "reg.example:99999/app",
            "a b",
        ] {
            assert!(ImageReference::parse(bad).is_err(), "{bad}");
        }
    }

    /// Our grammar against oci-spec's `distribution::Reference` (the Go
    /// distribution library's regular expression and Docker's
    /// normalisation): both accept and reject the same strings and split
    /// them the same way, except where a line below says why we differ.
    #[test]
    fn agrees_with_oci_spec_reference() {
        use oci_spec::distribution::Reference;
        let d = "sha256:".to_string() + &"ab".repeat(32);
        let same = [
            "nginx".to_string(),
            "nginx:1.25".into(),
            "bitnami/redis:7".into(),
            "library/nginx".into(),
            "localhost/app".into(),
            "localhost:5000/app:1".into(),
            "127.0.0.1:5000/vendor/app:1.0".into(),
            "reg.example/a/b/c:v1.2-rc_3".into(),
            "reg.example/app.name/x__y:t".into(),
            "reg.example/a-b/c--d:T".into(),
            format!("reg.example/app@{d}"),
            format!("reg.example/app:1.0@{d}"),
            format!("nginx@{d}"),
            "Nginx".into(),
            "reg.example/App:1".into(),
            "reg.example/app:".into(),
            "reg.example/app@sha256:12".into(),
            "http://reg.example/app".into(),
            "a b".into(),
            "reg.example/app:-bad".into(),
            "reg.example/-app".into(),
            "reg.example//app".into(),
            format!("reg.example/app:{}", "t".repeat(129)),
            "".into(),
        ];
        for s in &same {
            let ours = ImageReference::parse(s);
            let theirs = Reference::try_from(s.as_str());
            match (&ours, &theirs) {
                (Ok(o), Ok(t)) => {
                    assert_eq!(o.registry, t.registry(), "{s}");
                    assert_eq!(o.repository, t.repository(), "{s}");
                    assert_eq!(o.tag.as_deref(), t.tag(), "{s}");
                    assert_eq!(
                        o.digest.map(|d| d.to_string()).as_deref(),
                        t.digest(),
                        "{s}"
                    );
                }
                (Err(_), Err(_)) => {}
                _ => panic!("{s:?}: ours {ours:?}, oci-spec {theirs:?}"),
            }
        }
        // Where we differ, on purpose:
        // - a port must be a port (oci-spec takes any digits);
        assert!(ImageReference::parse("reg.example:99999/app").is_err());
        assert!(Reference::try_from("reg.example:99999/app").is_ok());
        // - `index.docker.io` is Docker Hub, as Docker itself normalises it;
        let r = ImageReference::parse("index.docker.io/nginx").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "library/nginx")
        );
        // - a bracketed IPv6 registry is accepted (distribution 2.8's
        //   grammar, which oci-spec follows, predates it).
        assert!(ImageReference::parse("[::1]:5000/vendor/app").is_ok());
        assert!(Reference::try_from("[::1]:5000/vendor/app").is_err());
    }
}
