#![no_main]
//! The site file (`site.yaml`), as `airgap-install render`, `install` and
//! `health` load it: [`Site::parse`] (YAML, the typed schema with its
//! defaults, and every check of the installer's validation), then what
//! render does with a valid site: the site as template data with stand-ins
//! for its secrets ([`site_data`]), each secret reference resolved
//! ([`SecretRef::resolve`]), the internal CA's path, the health targets.
//!
//! Secret files are resolved against a temporary folder holding copies of
//! `manifests/site-secrets/`; a reference to an absolute path or one that
//! climbs out with `..` is not resolved, so the target reads nothing
//! outside that folder. A valid site must also read back, unchanged, from
//! its own serialisation ([`Site::from_value`]): validation normalises
//! (the registry prefix loses its slashes), and what it gives is valid.
//!
//! Seeds (`fuzz/seeds/site/`): the example site, hybrid and LDAP/SAML/NFS
//! variants of it, and the error cases of the site tests.

use std::path::{Component, Path};
use std::sync::LazyLock;

use airgap_install::render::{site_data, stand_in_secret};
use airgap_install::site::{Site, SiteFile};
use libfuzzer_sys::fuzz_target;

/// The temporary folder the site file is in, with its secrets.
static BASE: LazyLock<tempfile::TempDir> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let secrets = dir.path().join("site-secrets");
    std::fs::create_dir(&secrets).expect("site-secrets");
    for (name, bytes) in [
        (
            "control-plane-db.password",
            &include_bytes!("../../manifests/site-secrets/control-plane-db.password")[..],
        ),
        (
            "genomics-db.password",
            &include_bytes!("../../manifests/site-secrets/genomics-db.password")[..],
        ),
        (
            "genomics.token",
            &include_bytes!("../../manifests/site-secrets/genomics.token")[..],
        ),
        (
            "imaging.token",
            &include_bytes!("../../manifests/site-secrets/imaging.token")[..],
        ),
        (
            "internal-ca.pem",
            &include_bytes!("../../manifests/site-secrets/internal-ca.pem")[..],
        ),
        (
            "platform.lic",
            &include_bytes!("../../manifests/site-secrets/platform.lic")[..],
        ),
        ("empty", &b""[..]),
        ("not-utf8", &b"\xff\xfe"[..]),
    ] {
        std::fs::write(secrets.join(name), bytes).expect("a secret file");
    }
    // The example's environment variables.
    std::env::set_var("PLATFORM_OIDC_CLIENT_SECRET", "fuzz-oidc-secret");
    std::env::set_var("IMAGING_DB_PASSWORD", "fuzz-imaging-password");
    std::env::set_var("FUZZ_EMPTY", "");
    dir
});

/// A relative path that stays below the folder it is resolved in.
fn stays_inside(p: &Path) -> bool {
    !p.is_absolute()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let site = match Site::parse(text) {
        Ok(site) => site,
        Err(e) => {
            assert!(!e.message.contains('\n'), "a multi-line error: {e:?}");
            return;
        }
    };
    let base = BASE.path();

    // Validation is idempotent: the normalised site reads back as itself.
    let json = serde_json::to_value(&site).expect("a site serialises");
    let again = Site::from_value(&json)
        .unwrap_or_else(|e| panic!("a valid site, written out, is refused: {e}"));
    assert_eq!(serde_json::to_value(&again).expect("serialises"), json);

    // What render does with it.
    let data = site_data(&site, |n, _, _| Ok(stand_in_secret(n))).expect("site data");
    assert!(data.is_object());
    for (field, r) in site.secrets() {
        if r.file.as_deref().is_some_and(|f| !stays_inside(f)) {
            continue;
        }
        match r.resolve(&field, base) {
            Ok(v) => assert!(!v.is_empty()),
            Err(e) => {
                let e = e.to_string();
                assert!(e.starts_with(&field), "{e}");
                assert!(!e.contains("fuzz-"), "a secret value in an error: {e}");
            }
        }
    }
    let file = SiteFile {
        path: base.join("site.yaml"),
        site,
        text: text.to_string(),
    };
    if let Some(ca) = file.internal_ca() {
        assert!(
            file.site
                .internal_ca
                .as_deref()
                .is_some_and(|p| p.is_absolute())
                || ca.starts_with(base)
        );
    }
    for t in airgap_install::health::targets(&file.site) {
        assert!(
            t.url.starts_with("https://") || t.url.starts_with("http://"),
            "{}",
            t.url
        );
    }
});
