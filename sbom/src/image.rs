//! One image (one platform): its layers read in order with whiteouts
//! applied ([`crate::layers`]), every file a parser understands scanned,
//! and the packages of the final filesystem returned, each marked with the
//! layer it came from.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::FileExt;

use crate::layers::{self, Compression, Content, FileInfo, Layer, LayerOps, Want};
use crate::{
    classify_file, ecosystems, is_executable, scan, Distro, FileKind, Package, ParseError, Scan,
};

/// Property naming the digest of the layer a package was found in.
pub const LAYER_PROPERTY: &str = "airgap:layer";

/// One layer to read: its digest, compression and bytes.
pub struct LayerInput<'r> {
    /// `sha256:…` of the (compressed) layer blob.
    pub digest: String,
    /// How it is compressed.
    pub compression: Compression,
    /// Its bytes.
    pub reader: Box<dyn Read + Send + 'r>,
}

/// What scanning an image found.
#[derive(Clone, Debug, Default)]
pub struct ImageScan {
    /// The distribution, from `os-release`, when the image has one.
    pub distro: Option<Distro>,
    /// Packages in the final filesystem, sorted by ecosystem, name, version
    /// and location.
    pub packages: Vec<Package>,
    /// Files or records that could not be read, one line each, naming the
    /// layer and file. They never stop a scan.
    pub warnings: Vec<String>,
    /// Layers read in this scan.
    pub layers_read: usize,
    /// Layers whose reading came from a [`LayerCache`] instead.
    pub layers_cached: usize,
}

/// What the walk keeps per path until the distribution is known.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Found {
    /// A file whose reading needs the distribution (package databases,
    /// `os-release`, Debian copyright files).
    Later(FileKind, Vec<u8>),
    /// Packages read at once, with the file's warnings.
    Packages(Vec<Package>, Vec<String>),
}

/// What reading one layer gave the image scan: the files it holds that
/// name packages (or, for package databases and the like, their bytes) and
/// what it deletes or replaces. It depends only on the layer's bytes and
/// this scanner, so it can stand in for reading the layer again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerRecord(LayerOps<Found>);

/// The first bytes of an encoded [`LayerRecord`]: the encoding's name and
/// version.
const RECORD_TAG: &[u8] = b"airgap-sbom layer record 1\n";

impl LayerRecord {
    /// The record as bytes: [`RECORD_TAG`], then a postcard encoding.
    pub fn encode(&self) -> Vec<u8> {
        // Writing to a Vec cannot fail; an empty record would only be
        // refused on reading.
        postcard::to_extend(&self.0, RECORD_TAG.to_vec()).unwrap_or_default()
    }

    /// Reads bytes made by [`LayerRecord::encode`]. Anything else (another
    /// version, truncated or damaged bytes) is an error, never a panic.
    pub fn decode(bytes: &[u8]) -> Result<LayerRecord, String> {
        let body = bytes
            .strip_prefix(RECORD_TAG)
            .ok_or("not a layer record of this version")?;
        match postcard::take_from_bytes::<LayerOps<Found>>(body) {
            Ok((ops, [])) => Ok(LayerRecord(ops)),
            Ok((_, rest)) => Err(format!("{} bytes after the record", rest.len())),
            Err(e) => Err(format!("damaged layer record: {e}")),
        }
    }
}

/// Where the results of reading layers are kept between scans, by layer
/// digest. The keeper is responsible for keying them by this scanner's
/// version too, and for storing a record only once the layer's bytes have
/// been checked against its digest.
pub trait LayerCache: Sync {
    /// The record kept for the layer `digest`, if any.
    fn get(&self, digest: &str) -> Option<LayerRecord>;
    /// A record made by reading the layer `digest`.
    fn put(&self, digest: &str, record: LayerRecord);
}

/// Whether a spooled file starts as an executable does.
fn spooled_executable(file: &std::fs::File) -> bool {
    let mut head = [0u8; 4];
    file.read_exact_at(&mut head, 0).is_ok() && is_executable(&head)
}

/// Scans an image's layers, base first. Fails only when a layer is not a
/// readable tar stream; malformed package databases become warnings.
pub fn scan_image(layers: Vec<LayerInput<'_>>) -> Result<ImageScan, layers::WalkError> {
    scan_image_cached(layers, None)
}

/// [`scan_image`], taking what `cache` holds for a layer instead of reading
/// it, and giving it what reading the others gave. The result is the same
/// with or without a cache.
pub fn scan_image_cached(
    layers: Vec<LayerInput<'_>>,
    cache: Option<&dyn LayerCache>,
) -> Result<ImageScan, layers::WalkError> {
    let digests: Vec<String> = layers.iter().map(|l| l.digest.clone()).collect();
    let no_distro = Distro::default();
    let mut warnings = Vec::new();
    let mut layers_cached = 0;
    let inputs: Vec<Layer<'_, Found>> = layers
        .into_iter()
        .map(|l| match cache.and_then(|c| c.get(&l.digest)) {
            Some(LayerRecord(ops)) => {
                layers_cached += 1;
                Layer::Known(ops)
            }
            None => Layer::Read(l.compression, l.reader),
        })
        .collect();
    let walk = layers::walk_layers(
        inputs,
        cache.is_some(),
        |f: &FileInfo| match classify_file(f.path, f.mode) {
            Some(kind) => Want::Read(kind.max_size()),
            None => Want::Skip,
        },
        |path, content| {
            let kind = classify_file(path, 0o755)?;
            let later = matches!(
                kind,
                FileKind::OsRelease
                    | FileKind::DpkgStatus
                    | FileKind::DpkgCopyright
                    | FileKind::ApkInstalled
                    | FileKind::RpmSqlite
            );
            let s = match content {
                // Read later with the others of its kind.
                content if later => match content.to_vec() {
                    Ok(bytes) => return Some(Found::Later(kind, bytes)),
                    Err(e) => Scan {
                        packages: Vec::new(),
                        warnings: vec![ParseError::new(path, format!("cannot read: {e}"))],
                    },
                },
                Content::Memory(bytes) if kind == FileKind::Executable && !is_executable(bytes) => {
                    return None
                }
                Content::Memory(bytes) => scan(kind, path, bytes, &no_distro),
                Content::Spooled(file, _)
                    if kind == FileKind::Executable && !spooled_executable(file) =>
                {
                    return None
                }
                Content::Spooled(file, size) => {
                    crate::scan_file(kind, path, file, size, &no_distro)
                }
            };
            let w = s.warnings.iter().map(|w| w.to_string()).collect();
            Some(Found::Packages(s.packages, w))
        },
    )?;
    let layers_read = digests.len() - layers_cached;
    if let Some(cache) = cache {
        for (digest, ops) in digests.iter().zip(walk.read) {
            if let Some(ops) = ops {
                cache.put(digest, LayerRecord(ops));
            }
        }
    }
    for w in walk.warnings {
        let layer = digests.get(w.layer).map(String::as_str).unwrap_or("?");
        match w.path {
            Some(p) => warnings.push(format!("layer {layer}: {p}: {}", w.message)),
            None => warnings.push(format!("layer {layer}: {}", w.message)),
        }
    }
    // A file's warnings are kept only if it is still visible at the end.
    for (layer, found) in walk.found.values() {
        if let Found::Packages(_, w) = found {
            for w in w {
                warnings.push(format!("layer {}: {w}", digests[*layer]));
            }
        }
    }
    let distro = crate::OS_RELEASE_PATHS
        .iter()
        .find_map(|p| match walk.found.get(*p) {
            Some((_, Found::Later(FileKind::OsRelease, bytes))) => crate::parse_os_release(bytes),
            _ => None,
        });
    let d = distro.clone().unwrap_or_default();
    let mut packages = Vec::new();
    let mut copyright: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, (layer, found)) in &walk.found {
        let layer_digest = &digests[*layer];
        let mut found_packages = match found {
            Found::Packages(p, _) => p.clone(),
            Found::Later(FileKind::OsRelease, _) => continue,
            Found::Later(FileKind::DpkgCopyright, bytes) => {
                if let Some(name) = ecosystems::dpkg::copyright_package(path) {
                    copyright.insert(
                        name.to_string(),
                        ecosystems::dpkg::copyright_licenses(bytes),
                    );
                }
                continue;
            }
            Found::Later(kind, bytes) => {
                let s = scan(*kind, path, bytes, &d);
                for w in s.warnings {
                    warnings.push(format!("layer {layer_digest}: {w}"));
                }
                s.packages
            }
        };
        for p in &mut found_packages {
            p.properties
                .insert(LAYER_PROPERTY.to_string(), layer_digest.clone());
        }
        packages.extend(found_packages);
    }
    for p in &mut packages {
        if p.ecosystem == crate::Ecosystem::Deb && p.licenses.is_empty() {
            if let Some(l) = copyright.get(&p.name) {
                p.licenses = l.clone();
            }
        }
    }
    packages.sort_by(|a, b| {
        (a.ecosystem.as_str(), &a.name, &a.version, &a.location).cmp(&(
            b.ecosystem.as_str(),
            &b.name,
            &b.version,
            &b.location,
        ))
    });
    Ok(ImageScan {
        distro,
        packages,
        warnings,
        layers_read,
        layers_cached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data, mode) in files {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(*mode);
            h.set_entry_type(tar::EntryType::Regular);
            h.set_cksum();
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn input(n: usize, bytes: Vec<u8>) -> LayerInput<'static> {
        LayerInput {
            digest: format!("sha256:{n:064}"),
            compression: Compression::None,
            reader: Box::new(std::io::Cursor::new(bytes)),
        }
    }

    #[test]
    fn packages_of_the_final_filesystem_with_their_layer() {
        let status = b"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n\nPackage: gone\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n";
        let status2 = b"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n";
        let l0 = layer(&[
            ("var/lib/dpkg/status", status, 0o644),
            (
                "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
                b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n",
                0o644,
            ),
            (
                "app/node_modules/left-pad/package.json",
                br#"{"name":"left-pad","version":"1.3.0","license":"WTFPL"}"#,
                0o644,
            ),
        ]);
        // The upper layer rewrites the dpkg database, deletes the npm
        // package and brings os-release last.
        let l1 = layer(&[
            ("var/lib/dpkg/status", status2, 0o644),
            ("app/node_modules/.wh.left-pad", b"", 0o644),
            ("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n", 0o644),
        ]);
        let s = scan_image(vec![input(0, l0), input(1, l1)]).unwrap();
        let names: Vec<(&str, &str, &str)> = s
            .packages
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.purl.as_str(),
                    p.properties[LAYER_PROPERTY].as_str(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (
                    "bash",
                    "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12",
                    format!("sha256:{:064}", 1).as_str()
                ),
                (
                    "six",
                    "pkg:pypi/six@1.16.0",
                    format!("sha256:{:064}", 0).as_str()
                ),
            ]
        );
        assert_eq!(s.distro.unwrap().id, "debian");
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn malformed_databases_warn_and_name_the_file() {
        let l0 = layer(&[(
            "lib/apk/db/installed",
            b"P:musl\nV:1.2.4-r2\n\nthis is not an apk database\x00\xff\n",
            0o644,
        )]);
        let s = scan_image(vec![input(0, l0)]).unwrap();
        assert!(
            s.warnings
                .iter()
                .all(|w| w.contains("lib/apk/db/installed")),
            "{:?}",
            s.warnings
        );
    }

    /// A cache in memory that counts what it is asked.
    #[derive(Default)]
    struct MemoryCache {
        kept: std::sync::Mutex<BTreeMap<String, Vec<u8>>>,
        gets: std::sync::atomic::AtomicUsize,
    }

    impl LayerCache for MemoryCache {
        fn get(&self, digest: &str) -> Option<LayerRecord> {
            self.gets.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let kept = self.kept.lock().unwrap();
            kept.get(digest).map(|b| LayerRecord::decode(b).unwrap())
        }
        fn put(&self, digest: &str, record: LayerRecord) {
            self.kept
                .lock()
                .unwrap()
                .insert(digest.to_string(), record.encode());
        }
    }

    #[test]
    fn a_cached_scan_equals_a_fresh_one_and_reads_no_cached_layer() {
        let status = b"Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b2\n\nPackage: broken\n";
        let l0 = layer(&[
            ("var/lib/dpkg/status", status, 0o644),
            ("etc/os-release", b"ID=debian\nVERSION_ID=\"12\"\n", 0o644),
            (
                "usr/share/doc/bash/copyright",
                b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-3+\n",
                0o644,
            ),
        ]);
        let l1 = layer(&[
            (
                "app/node_modules/left-pad/package.json",
                br#"{"name":"left-pad","version":"1.3.0","license":"WTFPL"}"#,
                0o644,
            ),
            ("app/node_modules/bad/package.json", b"{not json", 0o644),
            (
                "lib/apk/db/installed",
                b"P:musl\nV:1.2.4-r2\n\nthis is not an apk database\x00\xff\n",
                0o644,
            ),
        ]);
        let fresh = scan_image(vec![input(0, l0.clone()), input(1, l1.clone())]).unwrap();
        assert_eq!(fresh.packages.len(), 3, "{:?}", fresh.packages);
        assert!(
            fresh
                .warnings
                .iter()
                .any(|w| w.contains("bad/package.json"))
                && fresh.warnings.iter().any(|w| w.contains("apk/db")),
            "{:?}",
            fresh.warnings
        );
        let cache = MemoryCache::default();
        let first = scan_image_cached(
            vec![input(0, l0.clone()), input(1, l1.clone())],
            Some(&cache),
        )
        .unwrap();
        assert_eq!((first.layers_read, first.layers_cached), (2, 0));
        assert_eq!(cache.kept.lock().unwrap().len(), 2);
        // Layers the cache holds are not read: their bytes here are garbage.
        let again = scan_image_cached(
            vec![input(0, b"garbage".to_vec()), input(1, l1)],
            Some(&cache),
        )
        .unwrap();
        assert_eq!((again.layers_read, again.layers_cached), (0, 2));
        for s in [&first, &again] {
            assert_eq!(s.packages, fresh.packages);
            assert_eq!(s.warnings, fresh.warnings);
            assert_eq!(s.distro, fresh.distro);
        }
        assert_eq!(cache.gets.load(std::sync::atomic::Ordering::Relaxed), 4);
    }

    #[test]
    fn damaged_records_are_refused_without_a_panic() {
        let l0 = layer(&[
            ("var/lib/dpkg/status", b"Package: a\nVersion: 1\n", 0o644),
            ("etc/os-release", b"ID=debian\n", 0o644),
        ]);
        let cache = MemoryCache::default();
        scan_image_cached(vec![input(0, l0)], Some(&cache)).unwrap();
        let good = cache.kept.lock().unwrap().values().next().unwrap().clone();
        assert!(LayerRecord::decode(&good).is_ok());
        assert!(LayerRecord::decode(b"").is_err());
        assert!(LayerRecord::decode(b"airgap-sbom layer record 0\n").is_err());
        for cut in 0..good.len() {
            assert!(LayerRecord::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(LayerRecord::decode(&longer).is_err());
        // Overwritten bytes give an error or some record, never a panic.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut b = good.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let at = (seed as usize) % b.len();
                b[at] = (seed >> 32) as u8;
            }
            let _ = LayerRecord::decode(&b);
        }
    }
}
