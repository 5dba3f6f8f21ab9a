//! Build facts `airgap-install version --verbose` prints: the commit, the
//! target, the compiler and the build date. The date is `SOURCE_DATE_EPOCH`
//! when set, else the commit's own date, never the clock: a rebuild of the
//! same commit gives the same bytes.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=AIRGAP_BUILD_COMMIT");
    // A new commit checked out: the facts change.
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        println!("cargo:rerun-if-changed={head}");
    }
    if let Some(refs) = git(&["rev-parse", "--symbolic-full-name", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &refs]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("AIRGAP_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .filter(|e| e.parse::<i64>().is_ok())
        .or_else(|| git(&["log", "-1", "--format=%ct"]))
        .unwrap_or_default();
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=AIRGAP_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=AIRGAP_BUILD_EPOCH={epoch}");
    println!(
        "cargo:rustc-env=AIRGAP_BUILD_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!("cargo:rustc-env=AIRGAP_BUILD_RUSTC={rustc}");
}
