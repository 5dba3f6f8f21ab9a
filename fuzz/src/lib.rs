//! Helpers shared by the fuzz targets in `fuzz_targets/`.

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
