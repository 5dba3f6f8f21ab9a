//! Every size bound the reader applies to untrusted archives, in one place.

/// Bounds applied while reading an archive. The defaults suit real bundles
/// with a wide margin; each bound exists so that a hostile file cannot make
/// the reader allocate or loop without limit.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest `bundle.json` accepted.
    pub max_bundle_json: u64,
    /// Largest `bundle.json.minisig` accepted.
    pub max_signature: u64,
    /// Largest decompressed size of one zstd frame.
    pub max_frame_size: u32,
    /// Largest number of frames in the seek table.
    pub max_frames: u32,
    /// Largest `index.json` or `oci-layout` entry read into memory.
    pub max_layout_file: u64,
    /// Largest number of entries in an archive.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bundle_json: 64 << 20,
            max_signature: 16 << 10,
            max_frame_size: 8 << 20,
            max_frames: 64 << 20,
            max_layout_file: 16 << 20,
            max_entries: 1 << 20,
        }
    }
}
