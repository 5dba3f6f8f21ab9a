//! The layer scan cache: what the SBOM scan found in each layer, kept under
//! `scans/` in the cache folder so that a rebuild, or the next release on
//! the same base images, reads only the layers it has not seen.
//!
//! - An entry is keyed by this program's identity (its GNU build ID, the
//!   linker's hash of the executable, else SHA-256 of the executable) and the
//!   layer's digest: any other build of `airgap-bundle` (another version,
//!   another scanner) has other keys, so a cached result is always what this
//!   program would find by reading the layer.
//! - An entry is stored only after the build that read the layer has
//!   written it to the bundle and checked its bytes against its digest, so a
//!   damaged or swapped layer never leaves a result under a good digest.
//! - An entry is a zstd frame of an [`airgap_sbom::image::LayerRecord`],
//!   written to a temporary file and renamed into place. A damaged or
//!   unreadable one is a miss: it is removed with a warning and the layer is
//!   read again.
//!
//! The cache is trusted as the user's own files, like the rest of the
//! cache folder: whoever can write to it can change what later SBOMs say.
//! `--no-scan-cache` builds without it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use airgap_format::Digest;
use airgap_sbom::image::{LayerCache, LayerRecord};
use anyhow::{Context, Result};

/// Largest entry file read (compressed).
const MAX_ENTRY: u64 = 256 << 20;
/// Largest entry once decompressed.
const MAX_RECORD: u64 = 1 << 30;

/// The scan cache of one build.
pub struct ScanCache {
    dir: PathBuf,
    /// The key prefix: this executable's identity, worked out on first use
    /// (`None` when the executable cannot be read: no cache then).
    scanner: OnceLock<Option<Digest>>,
    /// Records made by this build, not yet stored (their layers are not yet
    /// checked).
    pending: Mutex<BTreeMap<String, LayerRecord>>,
}

/// What a build did with the scan cache.
#[derive(Debug, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanCacheReport {
    /// The folder (`scans/` of the cache folder).
    pub dir: PathBuf,
    /// Layers whose scan was stored by this build.
    pub stored: usize,
}

impl ScanCache {
    /// The scan cache under the cache folder `cache_dir`. Nothing is read
    /// or created until a layer is looked up or stored.
    pub fn open(cache_dir: &Path) -> ScanCache {
        ScanCache {
            dir: cache_dir.join("scans"),
            scanner: OnceLock::new(),
            pending: Mutex::new(BTreeMap::new()),
        }
    }

    /// This program's identity, worked out once: its GNU build ID (the
    /// linker's hash of the executable, read from its ELF notes), else the
    /// SHA-256 of the whole executable.
    fn scanner(&self) -> Option<&Digest> {
        self.scanner
            .get_or_init(|| {
                scanner_identity()
                    .map_err(|e| tracing::warn!("scan cache not used: {e:#}"))
                    .ok()
            })
            .as_ref()
    }

    /// The folder entries are kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the entry for the layer `digest` is (or would be) kept.
    fn path(&self, digest: &str) -> Option<PathBuf> {
        let scanner = self.scanner()?;
        let key = Digest::of(format!("{scanner}\n{digest}\n").as_bytes());
        Some(self.dir.join(format!("{}.zst", key.hex())))
    }

    /// Reads an entry; `Ok(None)` when there is none.
    fn load(&self, path: &Path) -> Result<Option<LayerRecord>> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("cannot open"),
        };
        let size = file.metadata().context("cannot stat")?.len();
        anyhow::ensure!(
            size <= MAX_ENTRY,
            "{size} bytes, above the {MAX_ENTRY}-byte limit"
        );
        let mut bytes = Vec::new();
        zstd::stream::read::Decoder::new(file)
            .context("cannot read")?
            .take(MAX_RECORD + 1)
            .read_to_end(&mut bytes)
            .context("not a zstd frame")?;
        anyhow::ensure!(
            bytes.len() as u64 <= MAX_RECORD,
            "above the {MAX_RECORD}-byte limit once decompressed"
        );
        LayerRecord::decode(&bytes)
            .map(Some)
            .map_err(anyhow::Error::msg)
    }

    /// Writes one entry through a temporary file.
    fn store(&self, digest: &str, record: &LayerRecord) -> Result<()> {
        let Some(dest) = self.path(digest) else {
            return Ok(());
        };
        std::fs::create_dir_all(&self.dir).context("cannot create the folder")?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".scan-")
            .tempfile_in(&self.dir)
            .context("cannot create a temporary file")?;
        let mut z = zstd::stream::write::Encoder::new(tmp.as_file_mut(), 3)
            .context("cannot start compressing")?;
        z.write_all(&record.encode())
            .and_then(|()| z.finish().map(|_| ()))
            .context("cannot write")?;
        tmp.persist(&dest)
            .map_err(|e| e.error)
            .context("cannot store")?;
        Ok(())
    }

    /// Stores the records of this build whose layers `checked` says were
    /// written and checked against their digests; the others are dropped.
    /// A record that cannot be stored is a warning, not an error. Returns
    /// how many were stored.
    pub fn commit(&self, checked: impl Fn(&str) -> bool) -> usize {
        let pending = std::mem::take(&mut *self.pending.lock().expect("lock"));
        if self.scanner().is_none() {
            return 0;
        }
        let mut stored = 0;
        for (digest, record) in pending.iter().filter(|(d, _)| checked(d)) {
            match self.store(digest, record) {
                Ok(()) => stored += 1,
                Err(e) => tracing::warn!(
                    "scan cache: {}: layer {digest}: {e:#}; not kept",
                    self.dir.display()
                ),
            }
        }
        stored
    }
}

/// The identity of the running executable, as a digest: SHA-256 of
/// `gnu-build-id:HEX` when it has a GNU build ID note (reading a few pages),
/// else SHA-256 of the file (reading all of it; a release build with debug
/// information is about 100 MB).
fn scanner_identity() -> Result<Digest> {
    let exe = std::env::current_exe().context("finding this program's executable")?;
    let read = || -> Result<Digest> {
        let file = std::fs::File::open(&exe).context("cannot open")?;
        let cache = object::ReadCache::new(&file);
        if let Ok(elf) = object::File::parse(&cache) {
            use object::Object;
            if let Ok(Some(id)) = elf.build_id() {
                if id.len() >= 16 {
                    let text = format!("gnu-build-id:{}", hex::encode(id));
                    return Ok(Digest::of(text.as_bytes()));
                }
            }
        }
        drop(cache);
        let file = std::fs::File::open(&exe).context("cannot open")?;
        let (d, _) = airgap_format::digest::hash_reader(file).context("cannot read")?;
        Ok(d)
    };
    read().with_context(|| exe.display().to_string())
}

impl LayerCache for ScanCache {
    fn get(&self, digest: &str) -> Option<LayerRecord> {
        // Another image of this build may have read the layer already.
        if let Some(r) = self.pending.lock().expect("lock").get(digest) {
            return Some(r.clone());
        }
        let path = self.path(digest)?;
        match self.load(&path) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(
                    "scan cache: {}: {e:#}; removed, layer {digest} is read again",
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    fn put(&self, digest: &str, record: LayerRecord) {
        self.pending
            .lock()
            .expect("lock")
            .insert(digest.to_string(), record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airgap_sbom::image::{scan_image_cached, LayerInput};
    use airgap_sbom::layers::Compression;

    fn layer() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let status = b"Package: bash\nStatus: install ok installed\nVersion: 5.2\n";
        let mut h = tar::Header::new_ustar();
        h.set_size(status.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, "var/lib/dpkg/status", &status[..])
            .unwrap();
        b.into_inner().unwrap()
    }

    fn scan(cache: &ScanCache, bytes: Vec<u8>) -> airgap_sbom::image::ImageScan {
        let input = LayerInput {
            digest: format!("sha256:{:064}", 7),
            compression: Compression::None,
            reader: Box::new(std::io::Cursor::new(bytes)),
        };
        scan_image_cached(vec![input], Some(cache)).unwrap()
    }

    #[test]
    fn the_program_is_identified_by_its_build_id() {
        let id = scanner_identity().unwrap();
        assert_eq!(scanner_identity().unwrap(), id);
        // The test executable is linked like the bundler: with a GNU build
        // ID, so the whole file is not hashed.
        let exe = std::env::current_exe().unwrap();
        let (whole, _) =
            airgap_format::digest::hash_reader(std::fs::File::open(exe).unwrap()).unwrap();
        assert_ne!(id, whole);
    }

    #[test]
    fn only_checked_layers_are_stored_and_damaged_entries_are_misses() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = ScanCache::open(tmp.path());
        let first = scan(&cache, layer());
        assert_eq!((first.layers_read, first.layers_cached), (1, 0));
        // Not checked: nothing is kept.
        assert_eq!(cache.commit(|_| false), 0);
        let cache = ScanCache::open(tmp.path());
        assert_eq!(scan(&cache, layer()).layers_read, 1);
        assert_eq!(cache.commit(|_| true), 1);
        // A new build finds it and reads nothing.
        let cache = ScanCache::open(tmp.path());
        let again = scan(&cache, b"not read".to_vec());
        assert_eq!((again.layers_read, again.layers_cached), (0, 1));
        assert_eq!(again.packages, first.packages);
        // Damaged entries are removed and the layer is read again.
        let entry = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "zst"))
            .unwrap();
        let good = std::fs::read(&entry).unwrap();
        for bad in [
            b"garbage".to_vec(),
            good[..good.len() / 2].to_vec(),
            zstd::encode_all(&b"airgap-sbom layer record 1\n\xff\xff\xff"[..], 3).unwrap(),
        ] {
            std::fs::write(&entry, bad).unwrap();
            let cache = ScanCache::open(tmp.path());
            let s = scan(&cache, layer());
            assert_eq!((s.layers_read, s.layers_cached), (1, 0));
            assert_eq!(s.packages, first.packages);
            assert!(!entry.exists());
        }
    }
}
