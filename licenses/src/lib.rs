//! Node-locked licences, activated fully offline: node fingerprints,
//! requests, signed licence files and their verification, with rollback
//! protection. A library only: the bundler issues, the installer activates.
//!
//! The flow, and the file formats, are specified in `docs/licenses.md`:
//!
//! 1. On the site, [`NodeIds::read`] and [`Request::new`] produce a licence
//!    request carrying the node's [`Fingerprint`] (keyed hashes, never the
//!    raw ids).
//! 2. The vendor signs a licence for it with `issue::issue` (feature
//!    `issue`, with the serial from `ledger::Ledger`).
//! 3. On the site, [`verify()`] checks a licence before activation and
//!    [`status()`] shows the stored one; [`check_clock`] and
//!    [`advance_watermark`] keep the clock watermark.
//!
//! Every bound on untrusted input is in [`limits`].

pub mod clock;
pub mod error;
pub mod fingerprint;
#[cfg(any(test, feature = "issue"))]
pub mod issue;
#[cfg(any(test, feature = "issue"))]
pub mod ledger;
pub mod license;
pub mod limits;
pub mod names;
pub mod request;
pub mod utc;
pub mod verify;

#[cfg(test)]
mod tests;

pub use clock::{advance_watermark, check_clock, DEFAULT_MAX_DRIFT};
pub use error::LicenseError;
pub use fingerprint::{Component, Fingerprint, NodeIds};
#[cfg(any(test, feature = "issue"))]
pub use issue::{issue, Terms};
#[cfg(any(test, feature = "issue"))]
pub use ledger::Ledger;
pub use license::{
    read_license_file, ArmoredLicense, LicensePayload, ALLOWED_ALGORITHMS, SIGNING_DOMAIN,
};
pub use request::Request;
pub use verify::{status, verify, ActiveLicense, Context, Standing, Status, Verified};
