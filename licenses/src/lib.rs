//! Node-locked licences, activated fully offline: node fingerprints,
//! requests, signed licence files and their verification, with rollback
//! protection. A library only: the bundler issues, the installer activates.
//! Nothing is implemented yet (issue 6).
