//! What the two command-line tools share and the libraries leave out:
//! progress bars and the one-line error format ([`progress`]), logging and
//! exit codes ([`progress::run_main`]), SIGINT/SIGTERM handling
//! ([`interrupt`]), shell completions and man pages ([`completions`]), the
//! flag groups both binaries use ([`args`]) and the text-or-JSON report of a
//! command's result ([`report`]). The libraries (`airgap-format`,
//! `airgap-registry`, `airgap-sbom`, `airgap-licenses`) depend on none of it.

pub mod args;
pub mod completions;
pub mod interrupt;
pub mod progress;
pub mod report;
