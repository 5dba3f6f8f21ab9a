//! The tools as release artifacts: `airgap-bundle sign` writes a signature
//! the real `minisign` accepts; `airgap-install self-check` checks its own
//! file against the signed `SHA256SUMS` beside it (written by the stock
//! `sha256sum`), and refuses a changed file or an untrusted key;
//! `airgap-install version --verbose` names the commit and target.

use std::path::Path;
use std::process::Command;

use airgap_e2e::harness::*;

/// A release folder: a copy of the installer, its sums and their signature.
fn release(dir: &Path, key: &Path) -> std::path::PathBuf {
    let rel = dir.join("release");
    std::fs::create_dir_all(&rel).unwrap();
    let exe = rel.join("airgap-install");
    std::fs::copy(bin("airgap-install"), &exe).unwrap();
    let sums = ok(Command::new("sha256sum")
        .arg("airgap-install")
        .current_dir(&rel));
    std::fs::write(rel.join("SHA256SUMS"), sums).unwrap();
    let out = ok(Command::new(bin("airgap-bundle"))
        .arg("sign")
        .arg(rel.join("SHA256SUMS"))
        .arg("--key")
        .arg(key));
    assert!(out.starts_with("wrote "), "{out}");
    exe
}

#[test]
fn self_check_verifies_its_own_file_against_the_signed_sums() {
    require_tool("minisign");
    require_tool("sha256sum");
    let tmp = tempfile::tempdir().unwrap();
    let (key, public) = keygen(tmp.path(), "release");
    let exe = release(tmp.path(), &key);
    let rel = exe.parent().unwrap();
    // The stock minisign accepts the signature.
    ok(Command::new("minisign")
        .arg("-Vm")
        .arg(rel.join("SHA256SUMS"))
        .arg("-p")
        .arg(&public));

    let check = |trust: &Path| {
        let mut c = Command::new(&exe);
        c.arg("self-check")
            .arg("--trust")
            .arg(trust)
            .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config");
        c
    };
    let out = ok(&mut check(&public));
    assert!(
        out.starts_with(&format!("OK {}: sha256:", exe.display())) && out.contains("is listed in"),
        "{out}"
    );

    // Another key: refused, naming the key.
    let (_, other) = keygen(tmp.path(), "other");
    let err = fails(&mut check(&other));
    assert!(
        err.contains("SHA256SUMS") && err.contains("--trust is not the release key"),
        "{err}"
    );

    // A changed file: refused, saying so.
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&exe)
        .unwrap()
        .write_all(b"\0")
        .unwrap();
    let err = fails(&mut check(&public));
    assert!(
        err.contains("the file was changed since the release was signed"),
        "{err}"
    );

    // No sums beside it: named, with what is needed.
    std::fs::remove_file(rel.join("SHA256SUMS")).unwrap();
    let err = fails(&mut check(&public));
    assert!(
        err.contains("SHA256SUMS: not found; self-check needs the release's SHA256SUMS and SHA256SUMS.minisig"),
        "{err}"
    );
}

#[test]
fn version_verbose_names_the_commit_and_target() {
    let out = ok(Command::new(bin("airgap-install")).args(["version", "--verbose"]));
    assert!(out.starts_with("airgap-install "), "{out}");
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(repo_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(head) = head {
        assert!(out.contains(&format!("commit:  {head}")), "{out}");
    }
    assert!(
        out.contains("target:  x86_64-") || out.contains("target:  aarch64-"),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(
        Command::new(bin("airgap-install")).args(["version", "--json"])
    ))
    .unwrap();
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(json["buildDate"].as_str().unwrap().ends_with('Z'), "{json}");
}

/// The files of one release folder, by name, with their SHA-256.
fn release_files(dir: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let sum = ok(Command::new("sha256sum").arg(&path));
            (name, sum.split_whitespace().next().unwrap().to_string())
        })
        .collect()
}

/// The same commit, built a second time from a copy of the tree in another
/// folder, into other target and output folders, gives the same bytes as
/// the run's release build: every binary, SBOM, `SHA256SUMS` and its
/// signature (Ed25519 signatures are deterministic), for every
/// architecture. Takes as long as a release build.
#[test]
fn release_builds_are_reproducible() {
    let Some(release) = release_build() else {
        return;
    };
    require_tool("sha256sum");
    let tmp = tempfile::tempdir().unwrap();
    // The working tree as it is (uncommitted changes too), without build
    // output, in a folder of another name and depth.
    let src = tmp.path().join("elsewhere/airgap-copy");
    std::fs::create_dir_all(&src).unwrap();
    ok(Command::new("sh").arg("-c").arg(format!(
        "tar -C '{}' --exclude=./target --exclude=./fuzz/target -cf - . | tar -C '{}' -xf -",
        repo_root().display(),
        src.display()
    )));
    let key = release.public_key.with_extension("key");
    let out = tmp.path().join("out");
    ok(Command::new("bash")
        .arg("scripts/release.sh")
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&out)
        .arg("--target-dir")
        .arg(tmp.path().join("target"))
        .current_dir(&src));
    let mut compared = 0;
    for arch in ["x86_64", "aarch64"] {
        let first = release.arch(arch);
        if !first.is_dir() {
            continue;
        }
        let a = release_files(&first);
        let b = release_files(&out.join(arch));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{arch}: the two builds made different files"
        );
        let differ: Vec<&str> = a
            .iter()
            .filter(|(name, sum)| b[*name] != **sum)
            .map(|(name, _)| name.as_str())
            .collect();
        if !differ.is_empty() {
            // Keep the second build for diffoscope.
            let kept = tmp.keep();
            panic!(
                "{arch}: the two builds differ in {differ:?} (first {}, second {})",
                first.display(),
                kept.join("out").join(arch).display()
            );
        }
        assert!(a.contains_key("airgap-install") && a.contains_key("SHA256SUMS.minisig"));
        compared += 1;
    }
    assert!(
        compared > 0,
        "{}: no architecture folder",
        release.dir.display()
    );
}
