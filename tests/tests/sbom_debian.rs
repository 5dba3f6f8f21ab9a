//! The SBOM scanner on a real Debian image (issue 5): a `debootstrap
//! --variant=minbase` root filesystem packed as an OCI image with umoci
//! ([`airgap_e2e::rootfs`]), its layers read by `airgap_sbom::image::scan_image`.
//!
//! - the dpkg packages found are exactly those `dpkg-query -W` reports for
//!   that root filesystem;
//! - an upper layer that rewrites `var/lib/dpkg/status` without one
//!   package and whites out files hides that package and those files;
//! - the purls carry `distro=<ID>-<VERSION_ID>` from the image's os-release.
//!
//! The first run builds the root filesystem (a minute or two, from the
//! Debian mirror apt uses here); later runs reuse it from target/test-rootfs/.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{Cursor, Write};
use std::sync::OnceLock;
use std::time::Instant;

use airgap_e2e::rootfs::{debian_minbase, DebianImage};
use airgap_sbom::image::{scan_image, ImageScan, LayerInput, LAYER_PROPERTY};
use airgap_sbom::layers::Compression;
use airgap_sbom::{props, Ecosystem, Package};
use sha2::{Digest, Sha256};

type Triple = (String, String, String);

/// The real stderr, past the harness's capture: counts and timings show in
/// every run.
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// The image's own layers, base first, read from the layout's blob files.
fn base_layers(img: &DebianImage) -> Vec<LayerInput<'static>> {
    img.layers
        .iter()
        .map(|l| LayerInput {
            digest: l.digest.clone(),
            compression: Compression::from_media_type(&l.media_type)
                .unwrap_or_else(|| panic!("odd layer media type {}", l.media_type)),
            reader: Box::new(std::io::BufReader::new(
                File::open(&l.path).expect("open layer blob"),
            )),
        })
        .collect()
}

/// The scan of the image as built (done once per test process).
fn base_scan() -> &'static ImageScan {
    static SCAN: OnceLock<ImageScan> = OnceLock::new();
    SCAN.get_or_init(|| {
        let img = debian_minbase();
        let start = Instant::now();
        let scan = scan_image(base_layers(img)).expect("scan the Debian image");
        let size: u64 = img.layers.iter().map(|l| l.size).sum();
        note(&format!(
            "sbom_debian: scanned {} layer(s), {:.1} MB compressed, in {:.2} s: {} packages, {} warnings",
            img.layers.len(),
            size as f64 / 1e6,
            start.elapsed().as_secs_f64(),
            scan.packages.len(),
            scan.warnings.len()
        ));
        scan
    })
}

fn debs(scan: &ImageScan) -> Vec<&Package> {
    scan.packages
        .iter()
        .filter(|p| p.ecosystem == Ecosystem::Deb)
        .collect()
}

/// (name, version, arch) of the dpkg packages a scan found, sorted; fails
/// on a package without an arch or found twice.
fn deb_triples(scan: &ImageScan) -> Vec<Triple> {
    let mut v: Vec<Triple> = debs(scan)
        .iter()
        .map(|p| {
            let arch = p
                .properties
                .get(props::ARCH)
                .unwrap_or_else(|| panic!("{} has no {} property", p.name, props::ARCH));
            (p.name.clone(), p.version.clone(), arch.clone())
        })
        .collect();
    v.sort();
    let unique: BTreeSet<&Triple> = v.iter().collect();
    assert_eq!(
        unique.len(),
        v.len(),
        "a dpkg package reported twice: {v:?}"
    );
    v
}

/// What one side has that the other lacks, for failure messages.
fn difference(found: &[Triple], expected: &[Triple]) -> String {
    let f: BTreeSet<&Triple> = found.iter().collect();
    let e: BTreeSet<&Triple> = expected.iter().collect();
    format!(
        "found but not in dpkg-query: {:?}\nin dpkg-query but not found: {:?}",
        f.difference(&e).collect::<Vec<_>>(),
        e.difference(&f).collect::<Vec<_>>()
    )
}

#[test]
fn dpkg_packages_equal_dpkg_query() {
    let img = debian_minbase();
    let scan = base_scan();
    let expected = img.dpkg_query();
    let found = deb_triples(scan);
    let mut by_ecosystem: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &scan.packages {
        *by_ecosystem.entry(p.ecosystem.as_str()).or_default() += 1;
    }
    note(&format!(
        "sbom_debian: {} {} minbase: dpkg-query lists {} packages, the scan found {} dpkg packages; all found by ecosystem: {by_ecosystem:?}",
        img.suite,
        img.rootfs.display(),
        expected.len(),
        found.len()
    ));
    assert!(
        expected.len() > 50,
        "a minbase root filesystem has some 90 packages, dpkg-query listed {}",
        expected.len()
    );
    assert_eq!(found, expected, "{}", difference(&found, &expected));
    let base = &img.layers[0].digest;
    for p in debs(scan) {
        assert_eq!(p.location, "/var/lib/dpkg/status", "{p:?}");
        // One layer holds the whole root filesystem.
        assert_eq!(p.properties.get(LAYER_PROPERTY), Some(base), "{p:?}");
    }
    // A clean Debian image gives no warnings.
    assert!(scan.warnings.is_empty(), "warnings: {:#?}", scan.warnings);
}

#[test]
fn purls_carry_the_distro_of_os_release() {
    let img = debian_minbase();
    let scan = base_scan();
    let os = img.os_release();
    let id = os.get("ID").expect("os-release ID");
    let version_id = os.get("VERSION_ID").expect("os-release VERSION_ID");
    note(&format!(
        "sbom_debian: os-release of the image: ID={id} VERSION_ID={version_id}"
    ));
    let distro = scan.distro.as_ref().expect("the scan found os-release");
    assert_eq!(&distro.id, id);
    assert_eq!(distro.version_id.as_ref(), Some(version_id));
    let qualifier = format!("distro={id}-{version_id}");
    let debs = debs(scan);
    assert!(!debs.is_empty());
    for p in debs {
        let (head, qualifiers) = p
            .purl
            .split_once('?')
            .unwrap_or_else(|| panic!("{} has no qualifiers", p.purl));
        // Name and version are percent-encoded (`libstdc%2B%2B6`).
        assert_eq!(
            percent_decode(head),
            format!("pkg:deb/{id}/{}@{}", p.name, p.version),
            "{}",
            p.purl
        );
        let q: Vec<&str> = qualifiers.split('&').collect();
        assert!(
            q.contains(&qualifier.as_str()),
            "{} lacks {qualifier}",
            p.purl
        );
        let arch = format!("arch={}", p.properties[props::ARCH]);
        assert!(q.contains(&arch.as_str()), "{} lacks {arch}", p.purl);
    }
}

/// `%XX` escapes decoded.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        if b[i] == b'%' {
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).expect("UTF-8 after decoding")
}

/// The dpkg status file without the paragraphs of package `name`.
fn status_without(status: &str, name: &str) -> String {
    let header = format!("Package: {name}");
    let kept: Vec<&str> = status
        .split("\n\n")
        .filter(|para| !para.lines().any(|l| l == header))
        .collect();
    assert!(
        kept.len() < status.split("\n\n").count(),
        "{name} is not in the status file"
    );
    kept.join("\n\n")
}

/// A gzip-compressed tar layer of regular files (whiteouts are empty files).
fn gzip_layer(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append_data(&mut h, path, data.as_slice())
            .expect("append to the layer");
    }
    let tar = tar.into_inner().expect("finish the layer");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip the layer");
    gz.finish().expect("gzip the layer")
}

/// Whether `usr/share/doc/NAME/copyright` is a regular file of the rootfs
/// (not reached through a symlinked doc folder, as some packages have).
fn has_own_copyright(img: &DebianImage, name: &str) -> bool {
    let doc = img.rootfs.join("usr/share/doc").join(name);
    fs::symlink_metadata(&doc).is_ok_and(|m| m.is_dir())
        && fs::symlink_metadata(doc.join("copyright")).is_ok_and(|m| m.is_file())
}

#[test]
fn an_upper_layer_removing_a_package_hides_it() {
    let img = debian_minbase();
    let base = base_scan();
    let expected = img.dpkg_query();
    let base_debs = debs(base);
    let licensed = |name: &str| {
        base_debs
            .iter()
            .any(|p| p.name == name && !p.licenses.is_empty())
            && has_own_copyright(img, name)
    };
    // The package the upper layer removes, and one whose copyright file
    // alone it deletes (the package stays, its licenses go).
    let victim = ["hostname", "gzip", "sed"]
        .into_iter()
        .find(|n| licensed(n))
        .map(String::from)
        .or_else(|| expected.iter().map(|t| t.0.clone()).find(|n| licensed(n)))
        .expect("a package with its own copyright file and licenses");
    let survivor = expected
        .iter()
        .map(|t| t.0.clone())
        .find(|n| *n != victim && licensed(n))
        .expect("a second package with licenses");

    let status = fs::read_to_string(img.dpkg_admindir().join("status")).expect("read status");
    let mut files = vec![(
        "var/lib/dpkg/status".to_string(),
        status_without(&status, &victim).into_bytes(),
    )];
    // Its documentation folder and its dpkg info files go too, as they
    // would with `dpkg --purge` in a container build step.
    files.push((format!("usr/share/doc/.wh.{victim}"), Vec::new()));
    let mut info: Vec<String> = fs::read_dir(img.dpkg_admindir().join("info"))
        .expect("read dpkg info")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| {
            f.strip_prefix(victim.as_str())
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with(':'))
        })
        .collect();
    info.sort();
    assert!(!info.is_empty(), "{victim} has no dpkg info files");
    for f in &info {
        files.push((format!("var/lib/dpkg/info/.wh.{f}"), Vec::new()));
    }
    files.push((
        format!("usr/share/doc/{survivor}/.wh.copyright"),
        Vec::new(),
    ));
    let upper = gzip_layer(&files);
    let upper_digest = format!("sha256:{}", hex::encode(Sha256::digest(&upper)));
    note(&format!(
        "sbom_debian: upper layer {upper_digest} removes {victim} (status stanza, doc folder, {} info files) and {survivor}'s copyright file",
        info.len()
    ));

    let mut layers = base_layers(img);
    layers.push(LayerInput {
        digest: upper_digest.clone(),
        compression: Compression::Gzip,
        reader: Box::new(Cursor::new(upper)),
    });
    let scan = scan_image(layers).expect("scan base + upper");

    let want: Vec<Triple> = expected.iter().filter(|t| t.0 != victim).cloned().collect();
    assert_eq!(want.len(), expected.len() - 1);
    let found = deb_triples(&scan);
    assert_eq!(found, want, "{}", difference(&found, &want));
    assert!(
        !scan.packages.iter().any(|p| p.name == victim),
        "{victim} is still reported"
    );
    for p in debs(&scan) {
        assert_eq!(
            p.properties.get(LAYER_PROPERTY),
            Some(&upper_digest),
            "{} should come from the upper layer's status file",
            p.name
        );
        assert_eq!(p.location, "/var/lib/dpkg/status");
    }
    // The whited-out copyright file no longer gives licenses; the others
    // still do.
    let after: BTreeMap<&str, &Package> = debs(&scan)
        .into_iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    assert!(
        after[survivor.as_str()].licenses.is_empty(),
        "{survivor}'s copyright file was whited out, yet it has licenses {:?}",
        after[survivor.as_str()].licenses
    );
    for p in base_debs
        .iter()
        .filter(|p| p.name != victim && p.name != survivor)
    {
        assert_eq!(
            after[p.name.as_str()].licenses,
            p.licenses,
            "{}'s licenses changed",
            p.name
        );
    }
    assert_eq!(scan.distro, base.distro);
    assert!(scan.warnings.is_empty(), "warnings: {:#?}", scan.warnings);
}
