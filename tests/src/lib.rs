//! End-to-end test support for the airgap bundle builder.
//!
//! [`fixtures`] generates deterministic container-image fixtures: layer tars,
//! OCI image layouts and `docker save` archives (legacy and Docker 25+ forms).

pub mod fixtures;
pub mod harness;

pub use fixtures::*;
