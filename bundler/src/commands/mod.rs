//! The subcommands of `airgap-bundle`, one module each: its arguments
//! (`Args`, a `clap::Args` struct) and `run`, which does the work and prints
//! the result. `main.rs` only parses and dispatches.

pub mod build;
pub mod completion;
pub mod inspect;
pub mod keygen;
pub mod license;
pub mod lock;
pub mod man;
pub mod pull_args;
pub mod sign;
