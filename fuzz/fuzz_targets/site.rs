#![no_main]
//! The site file (`site.yaml`), as `airgap-install render`, `install` and
//! `plan` load it against the reference product's schema
//! ([`SiteFile::from_text`]: YAML, the schema's checks with their messages,
//! the schema's defaults, the installer's own fields), then what render
//! does with a valid site: the site as template data with stand-ins for its
//! secrets ([`site_data`]), each secret reference resolved
//! ([`SecretRef::resolve`]), the internal CA's path, the profile's health
//! checks filled in.
//!
//! Secret files are resolved against a temporary folder holding copies of
//! `manifests/site-secrets/`; a reference to an absolute path or one that
//! climbs out with `..` is not resolved, so the target reads nothing
//! outside that folder. What render reads is valid: the filled site
//! (defaults applied) passes the schema again.
//!
//! Seeds (`fuzz/seeds/site/`): the example site, hybrid and LDAP/SAML/NFS
//! variants of it, and the error cases of the site tests.

use std::path::{Component, Path};
use std::sync::LazyLock;

use airgap_install::render::{site_data, stand_in_secret};
use airgap_install::profile::BundleProfile;
use airgap_install::site::SiteFile;
use libfuzzer_sys::fuzz_target;

static REFERENCE: LazyLock<BundleProfile> = LazyLock::new(|| {
    BundleProfile::from_texts(
        include_str!("../../templates/profile.yaml"),
        include_str!("../../templates/site.schema.json"),
    )
    .expect("the reference profile")
});

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
    let base = BASE.path();
    let site = match SiteFile::from_text(&base.join("site.yaml"), text.to_string(), Some(&*REFERENCE)) {
        Ok(site) => site,
        Err(e) => {
            let e = e.to_string();
            assert!(!e.contains('\n'), "a multi-line error: {e:?}");
            return;
        }
    };

    // What render reads is valid.
    let problems = REFERENCE.schema.check(&site.value);
    assert!(problems.is_empty(), "the filled site is refused: {problems:?}");

    // What render does with it.
    let data = site_data(&site, |n, _, _| Ok(stand_in_secret(n))).expect("site data");
    assert!(data.is_object());
    for airgap_install::site::SecretField {
        field,
        reference: r,
        ..
    } in site.secrets()
    {
        if r.file.as_deref().is_some_and(|f| !stays_inside(f)) {
            continue;
        }
        match r.resolve(field, base) {
            Ok(v) => assert!(!v.is_empty()),
            Err(e) => {
                let e = e.to_string();
                assert!(e.starts_with(field.as_str()), "{e}");
                assert!(!e.contains("fuzz-"), "a secret value in an error: {e}");
            }
        }
    }
    if let Some(ca) = site.internal_ca() {
        assert!(
            site.site
                .internal_ca
                .as_deref()
                .is_some_and(|p| p.is_absolute())
                || ca.starts_with(base)
        );
    }
    for t in REFERENCE.profile.health_targets(&site.value).expect("health checks") {
        assert!(
            t.url.starts_with("https://") || t.url.starts_with("http://"),
            "{}",
            t.url
        );
    }
});
