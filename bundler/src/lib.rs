//! The bundler: resolves a YAML manifest's images, charts and files into one
//! signed, content-addressed bundle archive.

pub mod build;
pub mod cache;
pub mod chart;
pub mod chart_source;
pub mod delta;
pub mod inputs;
pub mod lock;
pub mod lock_command;
pub mod manifest;
pub mod output;
pub mod plan;
pub mod profile_check;
pub mod pull;
pub mod sbom;
pub mod scan_cache;
pub mod sign;
pub mod sources;
