//! The HTTP side of the OCI distribution API, shared by both programs:
//! TLS with extra CA certificates (or plain HTTP when asked), the basic and
//! bearer-token challenge flows, credentials looked up the way Docker and
//! Podman do, and retries with back-off. It knows nothing of pushing or
//! pulling images: the installer builds its push on it, the bundler its pull.

pub mod client;
pub mod credentials;

pub use client::{Client, Transport};
pub use credentials::Credentials;

/// The HTTP client the transport is built on, for callers that read responses.
pub use ureq;
