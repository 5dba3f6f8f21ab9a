//! The product profile: what a vendor declares about its product so that
//! one generic installer can install it. This crate holds the part both
//! tools share: the site file's schema (JSON Schema 2020-12 with a few
//! keywords of ours, [`schema`]), checking a site file against it with
//! errors in words (`FIELD.PATH: expected … (found …)`, located at their
//! line and column), and finding a field in a YAML text ([`locate`]).
//!
//! The bundler checks a vendor's schema and example site file at build
//! time; the installer checks a site's file against the schema its bundle
//! carries.

pub mod changes;
pub mod fill;
pub mod init;
pub mod locate;
pub mod ordered;
pub mod profile;
pub mod schema;
pub mod yaml;

pub use fill::Filled;
pub use profile::Profile;
pub use schema::{Problem, SiteSchema};
