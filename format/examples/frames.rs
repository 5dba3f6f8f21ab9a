//! Prints a bundle's frame table: for each frame its number, file offset,
//! compressed and decompressed sizes, frame header descriptor, whether it is
//! a canonical stored frame (docs/format.md §2.4), and the tar entry part it
//! holds. Then the seek table's offset and size. The numbers docs/format.md
//! cites for the demo bundle come from this:
//!
//! ```text
//! cargo run -q -p airgap-format --example frames -- demo.bundle
//! ```
//!
//! Nothing is verified: run `airgap-install verify` for that.

use std::path::PathBuf;

use airgap_format::seekable::is_canonical_stored;
use airgap_format::{ArchiveReader, Limits};

fn main() {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: frames BUNDLE");
        std::process::exit(2);
    };
    if let Err(e) = run(&path) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let reader = ArchiveReader::open(path, Limits::default())?;
    let entries = reader.entries()?;
    let frames = reader.frames();
    println!("frame  offset      compressed  decompressed  FHD   stored  holds");
    let mut compressed = 0;
    for (i, f) in frames.iter().enumerate() {
        let mut bytes = vec![0u8; f.compressed_size as usize];
        reader.read_raw_at(&mut bytes, f.compressed_offset)?;
        let stored = is_canonical_stored(&bytes);
        if !stored {
            compressed += 1;
        }
        let start = f.decompressed_offset;
        let holds = match entries
            .iter()
            .find(|e| e.header_offset <= start && start < e.next_offset)
        {
            Some(e) if e.header_offset == start => format!("header of {}", e.path),
            Some(e) => format!("data of {} (from byte {})", e.path, start - e.data_offset),
            None => "end of archive".to_string(),
        };
        println!(
            "{i:>5}  {:#010x}  {:>10}  {:>12}  {:#04x}  {:<6}  {holds}",
            f.compressed_offset,
            f.compressed_size,
            f.decompressed_size,
            bytes.get(4).copied().unwrap_or(0),
            if stored { "yes" } else { "no" },
        );
    }
    let data_end: u64 = frames.iter().map(|f| f.compressed_size as u64).sum();
    println!(
        "{} frames ({compressed} compressed, {} canonical stored); seek table at {data_end:#x}, {} bytes; file {} bytes",
        frames.len(),
        frames.len() - compressed,
        reader.file_len() - data_end,
        reader.file_len()
    );
    Ok(())
}
