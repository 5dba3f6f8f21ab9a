//! `hash-files`: the reference hasher for `bench/bundle.sh`.
//!
//! ```text
//! hash-files FILE...
//! ```
//!
//! Reads each file with 1 MiB buffers and SHA-256s it with the `sha2` crate
//! (which picks SHA-NI at run time when the CPU has it), printing
//! `<hex>  <path>` per file, like `sha256sum`. This is the floor the bundler
//! and the installer are measured against: they must read and hash the same
//! bytes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::process::ExitCode;

use sha2::{Digest, Sha256};

const BUF: usize = 1 << 20;

fn hash_file(path: &str, buf: &mut [u8]) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    loop {
        match file.read(buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher.finalize().into())
}

fn main() -> ExitCode {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() || paths.iter().any(|p| p == "-h" || p == "--help") {
        eprintln!("usage: hash-files FILE...");
        return if paths.is_empty() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    let mut buf = vec![0u8; BUF];
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut status = ExitCode::SUCCESS;
    for path in &paths {
        match hash_file(path, &mut buf) {
            Ok(digest) => {
                if writeln!(out, "{}  {path}", hex::encode(digest)).is_err() {
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => {
                eprintln!("hash-files: {path}: {e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
