//! TLS roots and TLS failures in words. The roots are the system's (read
//! with `rustls-native-certs`, so `SSL_CERT_FILE` and `SSL_CERT_DIR` are
//! honoured) plus any site CA files given (`--ca-file`, a site file's
//! `internalCa`, a manifest's `caFile`). rustls only, never OpenSSL.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::client::one_line;

/// The system CA bundles read when the system store yields nothing
/// (Debian's, then Red Hat's); all found are used.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

/// Largest CA bundle read (Debian's whole system bundle is about 220 KB).
pub const MAX_CA_FILE: u64 = 4 << 20;

/// The certificates to trust: every certificate in `ca_files` (each must
/// hold at least one) and the system's ([`system_roots`]). Errors name
/// the file.
pub fn trust_roots(ca_files: &[PathBuf]) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let mut certs = site_roots(ca_files)?;
    certs.extend(system_roots());
    Ok(certs)
}

/// Every certificate in `ca_files`, each of which must hold at least one.
/// Errors name the file.
pub fn site_roots(ca_files: &[PathBuf]) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let mut certs = Vec::new();
    for f in ca_files {
        let pem = airgap_format::regular_file::read_regular(f, MAX_CA_FILE, "a CA bundle")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let found = pem_certificates(&pem);
        if found.is_empty() {
            bail!("{}: no PEM certificate found", f.display());
        }
        certs.extend(found);
    }
    Ok(certs)
}

/// The system's CA certificates, as `rustls-native-certs` finds them:
/// the file `SSL_CERT_FILE` and the folder `SSL_CERT_DIR` name when set,
/// else the platform's store. When that yields none, the bundles at the
/// usual paths (Debian's, Red Hat's). A store that cannot be read is said
/// at debug level (a warning when `SSL_CERT_FILE` or `SSL_CERT_DIR` asked
/// for it), and trusts nothing more.
pub fn system_roots() -> Vec<ureq::tls::Certificate<'static>> {
    let found = rustls_native_certs::load_native_certs();
    let asked = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    for e in &found.errors {
        if asked {
            tracing::warn!("system CA certificates: {e}");
        } else {
            tracing::debug!("system CA certificates: {e}");
        }
    }
    if !found.certs.is_empty() || asked {
        return found
            .certs
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect();
    }
    let mut certs = Vec::new();
    for f in SYSTEM_CA_BUNDLES {
        if let Ok(pem) =
            airgap_format::regular_file::read_regular(Path::new(f), MAX_CA_FILE, "a CA bundle")
        {
            certs.extend(pem_certificates(&pem));
        }
    }
    certs
}

/// The certificates of a PEM text; other items are skipped.
fn pem_certificates(pem: &[u8]) -> Vec<ureq::tls::Certificate<'static>> {
    ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.to_owned()),
            _ => None,
        })
        .collect()
}

/// The TLS error in a failed request, if it failed of one.
pub fn tls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Rustls(t) => Some(t),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    }
}

/// A TLS failure in words, `TLS: certificate expired`; a certificate from
/// an unknown CA is `TLS: certificate not trusted`, which callers complete
/// with where to name the CA.
pub fn describe_tls(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => "TLS: certificate not trusted".into(),
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "TLS: certificate is for another host".into()
            }
            C::Expired | C::ExpiredContext { .. } => "TLS: certificate expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "TLS: certificate not valid yet (check the clock)".into()
            }
            C::Revoked => "TLS: certificate revoked".into(),
            C::BadSignature => "TLS: certificate has a bad signature".into(),
            C::BadEncoding => "TLS: certificate is malformed".into(),
            C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                "TLS: certificate is not for server authentication".into()
            }
            // webpki's words for a CA certificate served as the server's own.
            other if format!("{other:?}").contains("CaUsedAsEndEntity") => {
                "TLS: the server presents a CA certificate as its own; give it a server certificate issued by that CA".into()
            }
            other => one_line(&format!("TLS: certificate rejected ({other:?})")),
        },
        rustls::Error::InvalidMessage(_) => {
            "TLS: the server does not speak TLS (plain HTTP?)".into()
        }
        rustls::Error::AlertReceived(a) => {
            one_line(&format!("TLS: the server refused the handshake ({a:?})"))
        }
        rustls::Error::PeerIncompatible(_) => {
            "TLS: no TLS version or cipher in common with the server".into()
        }
        other => one_line(&format!("TLS: {other}")),
    }
}
