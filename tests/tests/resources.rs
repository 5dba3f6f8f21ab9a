//! Resource exhaustion, end to end:
//!
//! - a build onto a small tmpfs that the bundle does not fit fails with one
//!   error line naming the file and the fix, and leaves nothing behind
//!   (whole bundles and media parts).
//!
//! The tmpfs is mounted in a private mount namespace
//! ([`airgap_e2e::harness::SmallFs`]).

use std::path::Path;
use std::process::Command;

use airgap_e2e::harness::*;

/// Every file and folder below `dir`, relative, sorted.
fn listing(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// Building onto a full disk
// ---------------------------------------------------------------------------

#[test]
fn a_build_onto_a_full_disk_fails_clearly_and_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "vendor");
    // 12 MiB of incompressible layers: a 12 MiB bundle, onto 4 MiB.
    let layout = tmp.path().join("big");
    ok(Command::new(bin("gen-fixtures"))
        .arg("bench-layout")
        .arg(&layout)
        .args(["--size", "12M", "--layers", "2"]));
    let manifest = tmp.path().join("big.yaml");
    std::fs::write(
        &manifest,
        format!(
            "name: big\nversion: 1.0.0\nimages:\n  - source: oci-layout:{}:bench/big:1.0\n",
            layout.display()
        ),
    )
    .unwrap();
    let small = SmallFs::mount("4m");
    let free = small.free();
    for (name, extra) in [("whole", &[][..]), ("split", &["--split", "1MiB"][..])] {
        let out = small.path().join(format!("{name}.bundle"));
        let line = fails(build_cmd(&manifest, &key, &out).args(extra));
        eprintln!("{name}: {line}");
        assert!(
            line.contains(&out.display().to_string()),
            "the error names the bundle file: {line}"
        );
        assert!(line.contains("No space left on device"), "{line}");
        assert!(line.contains("--out"), "the error says what to do: {line}");
        assert!(
            !line.contains("bench/big") && !line.contains(&layout.display().to_string()),
            "the source is not the problem: {line}"
        );
        assert_eq!(
            listing(&small.path()),
            Vec::<String>::new(),
            "nothing left behind"
        );
        assert_eq!(small.free(), free, "every byte given back");
    }
    // With room, the same build completes and verifies.
    let roomy = tmp.path().join("roomy.bundle");
    ok(&mut build_cmd(&manifest, &key, &roomy));
    ok(&mut verify_cmd(&roomy, &public));
}
