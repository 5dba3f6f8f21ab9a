//! The airgap bundle format, shared by the bundler (which writes it) and the
//! installer (which reads and verifies it).
//!
//! A bundle is one file: a tar stream compressed as independent zstd frames
//! with a seek table (the zstd seekable format), whose first entries are
//! `bundle.json` and its minisign signature, followed by an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`). See `docs/format.md`.

pub mod atomic_file;
pub mod bundle_json;
pub mod canonical_json;
pub mod digest;
pub mod display;
pub mod fields;
pub mod inspect;
pub mod limits;
pub mod parts;
pub mod reader;
pub mod regular_file;
pub mod seekable;
pub mod signature;
pub mod signed;
pub mod strict_json;
#[cfg(test)]
mod tamper_tests;
pub mod tar_entry;
#[cfg(test)]
mod test_bundle;
pub mod verify;
pub mod writer;

pub use bundle_json::BundleDescriptor;
pub use digest::Digest;
pub use limits::Limits;
pub use reader::ArchiveReader;
pub use signature::{KeyId, PublicKey, Signature};
pub use signed::SignedBundle;
pub use verify::{verify_archive, Verified, VerifyError};
pub use writer::{ArchiveWriter, Compression, WriterOptions};
