//! The installer: verifies bundles carried into an isolated network and puts
//! their images into the site's registry. It links no signing-key or
//! registry-pulling code.

pub mod health;
pub mod install;
pub mod license;
pub mod out_dir;
pub mod preflight;
pub mod profile;
pub mod push;
pub mod relocation;
pub mod render;
pub mod rollback;
pub mod runs;
pub mod sbom;
pub mod self_check;
pub mod site;
pub mod state;
pub mod target;
pub mod trust;
pub mod uninstall;
pub use push::survey;
