//! The aarch64 release (scripts/release.sh cross-compiles it on x86_64 with
//! `cargo zigbuild`): both tools are static aarch64 executables, the sums
//! and their signature check with the stock `sha256sum` and `minisign`, and
//! the installer runs under emulation (`qemu-aarch64-static`): `--version`,
//! `version --verbose` naming the aarch64 musl target, `self-check` against
//! the signed sums beside it, and `verify` of the demo bundle (a damaged
//! copy refused). The bundler builds the demo bundle under emulation too,
//! giving the same bytes as the native build: ISA-L (the gzip layer's
//! scan) and zstd work as cross-compiled.

use std::path::{Path, PathBuf};
use std::process::Command;

use airgap_e2e::harness::*;

const TARGET: &str = "aarch64-unknown-linux-musl";
const QEMU: &str = "qemu-aarch64-static";

/// What the ELF headers say about an executable.
#[derive(Debug)]
struct Elf {
    /// `e_machine` (183 is EM_AARCH64).
    machine: u16,
    /// `e_type`: 2 is an executable, 3 a position-independent one.
    kind: u16,
    /// A PT_INTERP program header: the file names a dynamic loader.
    interpreter: bool,
    /// DT_NEEDED entries in the dynamic segment: shared libraries it needs.
    /// (A static-pie has a dynamic segment, for relocating itself, and none.)
    needed: usize,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().unwrap())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Reads a 64-bit little-endian ELF file's header, program headers and
/// dynamic segment.
fn elf(path: &Path) -> Elf {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&b[..4], b"\x7fELF", "{}: not an ELF file", path.display());
    assert_eq!(b[4], 2, "{}: not a 64-bit ELF file", path.display());
    assert_eq!(b[5], 1, "{}: not little-endian", path.display());
    let kind = u16_at(&b, 16);
    let machine = u16_at(&b, 18);
    let phoff = u64_at(&b, 32) as usize;
    let phentsize = u16_at(&b, 54) as usize;
    let phnum = u16_at(&b, 56) as usize;
    let (mut interpreter, mut needed) = (false, 0);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        match u32_at(&b, ph) {
            3 => interpreter = true,
            2 => {
                let (offset, size) = (u64_at(&b, ph + 8) as usize, u64_at(&b, ph + 32) as usize);
                for entry in b[offset..offset + size].chunks_exact(16) {
                    match u64_at(entry, 0) {
                        0 => break,
                        1 => needed += 1,
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Elf {
        machine,
        kind,
        interpreter,
        needed,
    }
}

/// The aarch64 release folder, or `None` (skip) when this run has no
/// release build.
fn aarch64() -> Option<(PathBuf, PathBuf)> {
    let release = release_build()?;
    let dir = release.arch("aarch64");
    assert!(
        dir.is_dir(),
        "{}: no aarch64 folder in the release (scripts/release.sh builds it)",
        dir.display()
    );
    Some((dir, release.public_key))
}

/// `qemu-aarch64-static PROGRAM`, with no site configuration.
fn emulated(program: &Path) -> Command {
    let mut c = Command::new(QEMU);
    c.arg(program)
        .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config");
    c
}

#[test]
fn both_tools_are_static_aarch64_executables() {
    let Some((dir, _)) = aarch64() else { return };
    for tool in ["airgap-install", "airgap-bundle"] {
        let path = dir.join(tool);
        let e = elf(&path);
        assert_eq!(e.machine, 183, "{}: not aarch64: {e:?}", path.display());
        assert!(
            e.kind == 2 || e.kind == 3,
            "{}: not an executable: {e:?}",
            path.display()
        );
        assert!(
            !e.interpreter && e.needed == 0,
            "{}: not static (it names a loader or shared libraries): {e:?}",
            path.display()
        );
    }
    // The x86_64 folder beside it holds x86_64 executables (62).
    let x86 = dir.parent().unwrap().join("x86_64/airgap-install");
    if x86.is_file() {
        assert_eq!(elf(&x86).machine, 62, "{}", x86.display());
    }
}

#[test]
fn sums_and_signature_check_with_the_stock_tools() {
    let Some((dir, public)) = aarch64() else {
        return;
    };
    require_tool("sha256sum");
    require_tool("minisign");
    let out = ok(Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&dir));
    for file in [
        "airgap-bundle",
        "airgap-install",
        "airgap-bundle.cdx.json",
        "airgap-install.cdx.json",
    ] {
        assert!(out.contains(&format!("{file}: OK")), "{out}");
    }
    ok(Command::new("minisign")
        .arg("-Vm")
        .arg(dir.join("SHA256SUMS"))
        .arg("-p")
        .arg(&public));
    // Each SBOM names the aarch64 target and the binary's digest.
    for tool in ["airgap-bundle", "airgap-install"] {
        let sbom: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{tool}.cdx.json"))).unwrap())
                .unwrap();
        let component = &sbom["metadata"]["component"];
        assert_eq!(
            component["description"],
            format!("{tool} for {TARGET}, static")
        );
        let digest = ok(Command::new("sha256sum").arg(dir.join(tool)));
        assert_eq!(
            component["hashes"][0]["content"].as_str().unwrap(),
            digest.split_whitespace().next().unwrap()
        );
        let names: Vec<&str> = sbom["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert!(
            names.contains(&"musl") && names.contains(&"zstd"),
            "{names:?}"
        );
    }
}

#[test]
fn installer_runs_under_emulation() {
    let Some((dir, public)) = aarch64() else {
        return;
    };
    require_tool(QEMU);
    let install = dir.join("airgap-install");

    let out = ok(emulated(&install).arg("--version"));
    assert!(
        out.starts_with(&format!("airgap-install {}", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    let out = ok(emulated(&install).args(["version", "--verbose"]));
    assert!(out.contains(&format!("target:  {TARGET}")), "{out}");
    assert!(out.contains("commit:  "), "{out}");

    // self-check: its own file (qemu reports the guest program as
    // /proc/self/exe) against the signed sums beside it.
    let out = ok(emulated(&install)
        .arg("self-check")
        .arg("--trust")
        .arg(&public));
    assert!(
        out.starts_with(&format!("OK {}: sha256:", install.display())),
        "{out}"
    );
    // Another key is refused.
    let tmp = tempfile::tempdir().unwrap();
    let (_, other) = keygen(tmp.path(), "other");
    let out = run(emulated(&install)
        .arg("self-check")
        .arg("--trust")
        .arg(&other));
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    // verify of the demo bundle (built natively).
    let (bundle, _, vendor) = demo_bundle(tmp.path());
    let out = ok(emulated(&install)
        .arg("verify")
        .arg(&bundle)
        .arg("--trust")
        .arg(&vendor));
    assert!(out.contains("OK"), "{out}");
    // A damaged copy is refused.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let damaged = tmp.path().join("damaged.bundle");
    std::fs::write(&damaged, bytes).unwrap();
    let out = run(emulated(&install)
        .arg("verify")
        .arg(&damaged)
        .arg("--trust")
        .arg(&vendor));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[test]
fn bundler_builds_the_same_bundle_under_emulation() {
    let Some((dir, _)) = aarch64() else {
        return;
    };
    require_tool(QEMU);
    let tmp = tempfile::tempdir().unwrap();
    // The native (debug) build of the demo bundle...
    let (native, key, _) = demo_bundle(tmp.path());
    // ...and the aarch64 release bundler's, under emulation: the layer
    // scans (ISA-L inflates the web image's gzip layer) and the zstd
    // frames run as cross-compiled, and the bundle is byte for byte the
    // same.
    let emulated_out = tmp.path().join("aarch64/demo.bundle");
    std::fs::create_dir_all(emulated_out.parent().unwrap()).unwrap();
    let out = run(emulated(&dir.join("airgap-bundle"))
        .arg("build")
        .arg(repo_root().join("manifests/demo.yaml"))
        .arg("--key")
        .arg(&key)
        .arg("--out")
        .arg(&emulated_out)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("AIRGAP_BUNDLE_CACHE", tmp.path().join("aarch64/cache"))
        .env_remove("XDG_CACHE_HOME"));
    assert!(out.status.success(), "{out:?}");
    assert!(
        std::fs::read(&native).unwrap() == std::fs::read(&emulated_out).unwrap(),
        "the aarch64 bundler built other bytes than the native one"
    );
}
