//! SBOMs for bundles: generated from image contents (reading layers in
//! order, applying whiteouts, never unpacking), carried from vendors, and
//! aggregated per bundle in CycloneDX and SPDX. A library only: the bundler
//! generates, the installer extracts. Nothing is implemented yet (issue 5).
