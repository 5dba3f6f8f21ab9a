//! Bundles written as media parts (`build --split SIZE`): the parts verify
//! in place, each on its own, naming exactly the damaged, missing, short or
//! stray ones; `cat FILE.part-*` gives a whole bundle that stock zstd, tar
//! and minisign read; and the installer pushes straight from the parts.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use airgap_e2e::fixtures::{
    layer_tar, noise, write_oci_layout, ImageSpec, LayerBlob, PlatformImage,
};
use airgap_e2e::harness::*;
use airgap_e2e::registry::Registry;
use serde_json::Value;

const PART: u64 = 256 << 10;

/// An image of incompressible layers (about 1.8 MiB), so the bundle needs
/// several 256 KiB parts.
fn manifest(dir: &Path) -> PathBuf {
    let layers: Vec<LayerBlob> = [(600usize << 10, 1u64), (700 << 10, 2), (500 << 10, 3)]
        .iter()
        .map(|(len, seed)| {
            LayerBlob::gzipped(layer_tar(&[(
                &format!("data/{seed}.bin"),
                &noise(*len, *seed),
                0o644,
            )]))
        })
        .collect();
    write_oci_layout(
        &dir.join("images"),
        &[ImageSpec {
            ref_name: "media/app:2.0.0".into(),
            platforms: vec![PlatformImage::linux("amd64", layers, &["/app"])],
        }],
    )
    .unwrap();
    std::fs::write(dir.join("notes.md"), "# Release notes\n").unwrap();
    let m = dir.join("media.yaml");
    std::fs::write(
        &m,
        format!(
            "name: media\nversion: 2.0.0\nimages:\n  - source: oci-layout:{}:media/app:2.0.0\nfiles:\n  - source: {}\n    kind: release-notes\n",
            dir.join("images").display(),
            dir.join("notes.md").display()
        ),
    )
    .unwrap();
    m
}

fn part(base: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.part-{n:03}", base.display()))
}

fn descriptor(bundle: &Path) -> airgap_format::BundleDescriptor {
    let r = airgap_format::ArchiveReader::open(bundle, airgap_format::Limits::default()).unwrap();
    r.read_descriptor_unverified().unwrap().1
}

fn flip(path: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], offset).unwrap();
}

/// Builds the split bundle into `dir`; returns (FILE, public key, part count).
fn split_bundle(dir: &Path) -> (PathBuf, PathBuf, usize) {
    let (key, public) = keygen(dir, "vendor");
    let m = manifest(dir);
    let out = dir.join("media.bundle");
    let report: Value = serde_json::from_str(&ok(build_cmd(&m, &key, &out).args([
        "--skip-sbom",
        "--split",
        "256KiB",
        "--json",
    ])))
    .unwrap();
    let parts = report["parts"].as_array().unwrap().len();
    (out, public, parts)
}

#[test]
fn split_bundles_verify_in_place_and_join_into_a_whole_bundle() {
    require_tool("zstd");
    require_tool("minisign");
    let tmp = tempfile::tempdir().unwrap();
    let (out, public, n) = split_bundle(tmp.path());
    assert!(n >= 7, "{n} parts");
    assert!(!out.exists(), "a split build writes only parts");
    let d = descriptor(&out);
    assert_eq!(d.format_version, 5);
    let split = d.split.as_ref().unwrap();
    assert_eq!(split.part_size, PART);
    assert_eq!(split.parts.len(), n);
    for (i, p) in split.parts.iter().enumerate() {
        let len = std::fs::metadata(part(&out, i + 1)).unwrap().len();
        assert_eq!(len, p.size, "part {}", i + 1);
        if i + 1 < n {
            assert_eq!(len, PART);
        }
    }
    // Verified in place, named by FILE or by any part.
    let v: Value = serde_json::from_str(&ok(verify_cmd(&out, &public).arg("--json"))).unwrap();
    assert_eq!(v["parts"], n);
    ok(&mut verify_cmd(&part(&out, 3), &public));
    // inspect lists the parts.
    let text = ok(Command::new(bin("airgap-bundle")).arg("inspect").arg(&out));
    assert!(
        text.contains(&format!("parts ({n}, 256.0 KiB each)")),
        "{text}"
    );

    // cat gives a whole bundle: verified, and read by stock tools.
    let whole = tmp.path().join("joined.bundle");
    let mut joined = Vec::new();
    for i in 1..=n {
        joined.extend(std::fs::read(part(&out, i)).unwrap());
    }
    std::fs::write(&whole, &joined).unwrap();
    ok(&mut verify_cmd(&whole, &public));
    let x = tmp.path().join("x");
    std::fs::create_dir_all(&x).unwrap();
    ok(Command::new("sh").arg("-c").arg(format!(
        "zstd -dc '{}' | tar -x -C '{}'",
        whole.display(),
        x.display()
    )));
    ok(Command::new("minisign")
        .arg("-Vm")
        .arg(x.join("bundle.json"))
        .arg("-x")
        .arg(x.join("bundle.json.minisig"))
        .arg("-p")
        .arg(&public));
    // bundle.json is canonical JSON padded with spaces to its reserved size.
    let raw = std::fs::read(x.join("bundle.json")).unwrap();
    let parsed: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(parsed["split"]["parts"].as_array().unwrap().len(), n);
    // A whole file cut short is refused.
    let short = tmp.path().join("short.bundle");
    std::fs::write(&short, &joined[..joined.len() - 1]).unwrap();
    fails(&mut verify_cmd(&short, &public));

    // The same build again is byte-identical, part for part.
    let out2 = tmp.path().join("media2.bundle");
    ok(build_cmd(
        &tmp.path().join("media.yaml"),
        &tmp.path().join("vendor.key"),
        &out2,
    )
    .args(["--skip-sbom", "--split", "256KiB"]));
    for i in 1..=n {
        assert!(
            std::fs::read(part(&out, i)).unwrap() == std::fs::read(part(&out2, i)).unwrap(),
            "part {i} differs between two builds"
        );
    }
    assert!(!part(&out2, n + 1).exists());
}

#[test]
fn a_damaged_missing_short_or_stray_part_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let (out, public, n) = split_bundle(tmp.path());
    let pristine: Vec<Vec<u8>> = (1..=n)
        .map(|i| std::fs::read(part(&out, i)).unwrap())
        .collect();
    let restore = || {
        for (i, bytes) in pristine.iter().enumerate() {
            std::fs::write(part(&out, i + 1), bytes).unwrap();
        }
        let _ = std::fs::remove_file(part(&out, n + 1));
    };
    let named = |err: &str, i: usize| err.contains(&format!("media.bundle.part-{i:03}: "));

    // One flipped byte in the middle of part 3: only part 3 is named.
    flip(&part(&out, 3), PART / 2);
    let err = fails(&mut verify_cmd(&out, &public));
    assert!(named(&err, 3) && err.contains("1 of"), "{err}");
    for i in (1..=n).filter(|i| *i != 3) {
        assert!(!named(&err, i), "part {i} named too: {err}");
    }
    assert!(err.contains("copy them again"), "{err}");
    // Two damaged parts: both named in one run.
    flip(&part(&out, n - 1), 1000);
    let err = fails(&mut verify_cmd(&out, &public));
    assert!(
        named(&err, 3) && named(&err, n - 1) && err.contains("2 of"),
        "{err}"
    );
    restore();
    ok(&mut verify_cmd(&out, &public));

    // A short part (an interrupted copy).
    let p2 = part(&out, 2);
    std::fs::write(&p2, &pristine[1][..100_000]).unwrap();
    let err = fails(&mut verify_cmd(&out, &public));
    assert!(
        err.contains("part-002: 100000 bytes, the other parts are 262144"),
        "{err}"
    );
    restore();

    // A missing middle part.
    std::fs::remove_file(part(&out, 4)).unwrap();
    let err = fails(&mut verify_cmd(&out, &public));
    assert!(err.contains("part-004: missing"), "{err}");
    restore();

    // A stray part from another build after the last one.
    std::fs::write(part(&out, n + 1), b"left over").unwrap();
    let err = fails(&mut verify_cmd(&out, &public));
    assert!(
        err.contains(&format!("part-{:03}", n + 1)) && err.contains("not a part of this bundle"),
        "{err}"
    );
    restore();

    // Damage in the head (bundle.json, in part 1) or the tail (the seal and
    // seek table, in the last part) names that part.
    flip(&part(&out, 1), 2000);
    let err = fails(&mut verify_cmd(&out, &public));
    assert!(err.contains("part-001"), "{err}");
    restore();
    let last = part(&out, n);
    flip(&last, pristine[n - 1].len() as u64 - 3);
    let err = fails(&mut verify_cmd(&out, &public));
    assert!(err.contains(&format!("part-{n:03}")), "{err}");
    restore();
    ok(&mut verify_cmd(&out, &public));
}

#[test]
fn the_installer_pushes_straight_from_the_parts() {
    require_tool("skopeo");
    let tmp = tempfile::tempdir().unwrap();
    let (out, public, _) = split_bundle(tmp.path());
    let reg = Registry::start_plain();
    let map = tmp.path().join("relocation-map.json");
    ok(Command::new(bin("airgap-install"))
        .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config")
        .arg("push")
        .arg(part(&out, 1))
        .arg("--trust")
        .arg(&public)
        .arg("--registry")
        .arg(format!("{}/site", reg.addr()))
        .arg("--plain-http")
        .arg("--relocation-map")
        .arg(&map));
    let d = descriptor(&out);
    assert_eq!(
        reg.skopeo_inspect_raw_digest("site/media/app:2.0.0"),
        Some(d.images[0].digest.to_string())
    );
    let copied = tmp.path().join("copied");
    let mut args = vec!["copy".to_string()];
    args.extend(reg.skopeo_src_args());
    args.push(reg.docker_ref("site/media/app:2.0.0"));
    args.push(format!("oci:{}:app", copied.display()));
    ok(Command::new("skopeo").args(&args));
}
