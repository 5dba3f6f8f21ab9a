//! End-to-end test support for the airgap bundle builder.
//!
//! [`fixtures`] generates deterministic container-image fixtures: layer tars,
//! OCI image layouts and `docker save` archives (legacy and Docker 25+ forms).
//! [`registry`] runs a real container registry (Debian's `docker-registry`),
//! [`fault_proxy`] injects faults in front of it, and [`file_server`] serves
//! files as a Helm chart repository would.

pub mod fault_proxy;
pub mod file_server;
pub mod fixtures;
pub mod harness;
pub mod registry;

pub use fixtures::*;
