//! The OCI distribution client of both programs: the HTTP side ([`client`]:
//! TLS with extra CA certificates or plain HTTP when asked, the basic and
//! bearer-token challenge flows, credentials looked up the way Docker and
//! Podman do), one retry policy ([`retry`]), typed errors ([`error`]), the
//! media types ([`media_types`]), and the verbs: manifests, tags and the
//! catalog ([`manifest`]), blobs up and down ([`blob`]), a walker over
//! manifests and indexes ([`walk`]), and the `host[:port]` grammar
//! ([`host`]). The resumable download of a blob into
//! a file, which only the bundler needs, is behind the `pull` feature.

pub mod blob;
pub mod client;
pub mod credentials;
#[cfg(feature = "pull")]
pub mod download;
pub mod error;
pub mod host;
pub mod manifest;
pub mod media_types;
pub mod retry;
pub mod tls;
pub mod walk;

pub use client::{Client, Transport};
pub use credentials::Credentials;
pub use error::{Error, Mismatch};

/// The HTTP client the transport is built on (the installer's health checks use it too).
pub use ureq;
