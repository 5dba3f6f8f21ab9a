//! Helpers shared by the fuzz targets in `fuzz_targets/`.

pub mod sealed;

use std::io::Write;

/// A temporary file holding `data`, in `/dev/shm` when the machine has it
/// (the archive readers take paths, and a RAM-backed file keeps the
/// executions per second up).
pub fn temp_file(data: &[u8]) -> tempfile::NamedTempFile {
    let dir = std::path::Path::new("/dev/shm");
    let mut f = if dir.is_dir() {
        tempfile::NamedTempFile::new_in(dir)
    } else {
        tempfile::NamedTempFile::new()
    }
    .expect("a temporary file for the fuzz input");
    f.write_all(data).expect("writing the fuzz input");
    f.flush().expect("writing the fuzz input");
    f
}

/// Checks the rule every refusal of untrusted input follows: one line
/// (an error that spans lines, or carries a raw control character from
/// the input, breaks logs and lets input forge lines). Panics, so that
/// the fuzzer reports the input, when `message` breaks it.
///
/// With `AIRGAP_FUZZ_DEBUG` set, it also prints the message: run a target
/// binary on one input (`fuzz/target/*/release/TARGET FILE`) to see how
/// far that input gets.
pub fn assert_one_line(what: &str, message: &str) {
    static DEBUG: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *DEBUG.get_or_init(|| std::env::var_os("AIRGAP_FUZZ_DEBUG").is_some()) {
        eprintln!("{what}: {message}");
    }
    assert!(
        !message.chars().any(|c| c == '\n' || c == '\r'),
        "{what}: the error is not one line: {message:?}"
    );
}
