//! The installer: verifies bundles carried into an isolated network and
//! (in later steps) installs them. It links no signing-key or registry-pulling code.

pub mod trust;
