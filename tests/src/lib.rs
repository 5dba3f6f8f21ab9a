//! End-to-end test support for the airgap bundle builder.
//!
//! [`fixtures`] generates deterministic container-image fixtures: layer tars,
//! OCI image layouts and `docker save` archives (legacy and Docker 25+ forms).
//! [`registry`] runs a real container registry (Debian's `docker-registry`),
//! [`fault_proxy`] injects faults in front of it, and [`file_server`] serves
//! files as a Helm chart repository would. [`token_server`] issues the JWTs
//! of the bearer-token flow and [`token_registry`] runs the registry with
//! token authentication in front of it. [`https_server`] serves HTTPS with
//! a test CA and per-path answers, for health checks. [`rootfs`] builds a
//! real Debian root filesystem with debootstrap and packs it as an OCI
//! image with umoci, for the SBOM tests, and the older Debian and Alpine
//! root filesystems the release build is run in (tests/tests/sites.rs).

pub mod craft;
pub mod demo_site;
pub mod fault_proxy;
pub mod file_server;
pub mod fixtures;
pub mod harness;
pub mod http_server;
pub mod https_server;
pub mod registry;
pub mod rootfs;
pub mod token_registry;
pub mod token_server;

pub use fixtures::*;
