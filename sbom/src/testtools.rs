//! Test helpers that use real tools when this machine has them: the Go
//! toolchain, rpm and rpmbuild, cargo-auditable. Each returns `None` when
//! the tool is missing (the test then says it was skipped); when the tool
//! is there, a failure to use it fails the test.

use std::path::Path;
use std::process::{Command, Stdio};

/// Whether `program` runs. When `AIRGAP_REQUIRE_TOOLS` is set (tests/run.sh
/// installs every tool and sets it), a missing tool fails the test instead
/// of skipping it.
fn have(program: &str, arg: &str) -> bool {
    let found = Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found && std::env::var_os("AIRGAP_REQUIRE_TOOLS").is_some() {
        panic!("{program} is required (AIRGAP_REQUIRE_TOOLS is set) but does not run");
    }
    found
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// Builds `hello`, a Go program whose module `example.com/hello` requires
/// `example.com/greeting v1.2.3`, replaced by the local directory
/// `./greeting` (so it builds offline). Returns the directory holding it.
pub(crate) fn go_hello() -> Option<tempfile::TempDir> {
    if !have("go", "version") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "go.mod", "module example.com/hello\n\ngo 1.18\n\nrequire example.com/greeting v1.2.3\n\nreplace example.com/greeting => ./greeting\n");
    write(d, "main.go", "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/greeting\"\n)\n\nfunc main() { fmt.Println(greeting.Hello()) }\n");
    write(
        d,
        "greeting/go.mod",
        "module example.com/greeting\n\ngo 1.18\n",
    );
    write(
        d,
        "greeting/greeting.go",
        "package greeting\n\nfunc Hello() string { return \"hello\" }\n",
    );
    run(Command::new("go")
        .args(["build", "-buildvcs=false", "-trimpath", "-o", "hello", "."])
        .current_dir(d)
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOWORK", "off")
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .env(
            "GOCACHE",
            std::env::temp_dir().join("airgap-sbom-test-gocache"),
        ));
    Some(dir)
}

/// Builds a noarch rpm with rpmbuild, installs it into a fresh database
/// with `rpm -i --justdb`, and returns the database's `rpmdb.sqlite`.
pub(crate) fn rpm_db() -> Option<Vec<u8>> {
    if !have("rpmbuild", "--version") || !have("rpm", "--version") {
        return None;
    }
    if !have("rpm", "--eval=%{_db_backend}") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "t.spec", "Name: sbom-test\nVersion: 1.2.3\nRelease: 4.fc40\nEpoch: 2\nSummary: test package\nLicense: MIT AND Apache-2.0\nBuildArch: noarch\n\n%description\nA test package.\n\n%files\n");
    let top = d.join("top");
    let db = d.join("db");
    run(Command::new("rpmbuild")
        .arg("-bb")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg(d.join("t.spec")));
    let rpm = top.join("RPMS/noarch/sbom-test-1.2.3-4.fc40.noarch.rpm");
    run(Command::new("rpm").arg("--initdb").arg("--dbpath").arg(&db));
    run(Command::new("rpm")
        .args(["-i", "--justdb", "--nodeps", "--noscripts", "--nosignature"])
        .args(["--ignorearch", "--ignoreos", "--dbpath"])
        .arg(&db)
        .arg(&rpm));
    let sqlite = db.join("rpmdb.sqlite");
    if !sqlite.exists() {
        // This rpm uses another database backend.
        return None;
    }
    Some(std::fs::read(sqlite).unwrap())
}

/// Builds `sbom-audit-hello` (depending on the local crate
/// `sbom-audit-dep` 0.2.0) with `cargo auditable build --offline` and
/// returns the binary.
pub(crate) fn cargo_auditable_hello() -> Option<Vec<u8>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let installed = Command::new(&cargo)
        .args(["auditable", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "Cargo.toml", "[package]\nname = \"sbom-audit-hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nsbom-audit-dep = { path = \"dep\" }\n\n[workspace]\n");
    write(
        d,
        "src/main.rs",
        "fn main() { println!(\"{}\", sbom_audit_dep::hello()); }\n",
    );
    write(
        d,
        "dep/Cargo.toml",
        "[package]\nname = \"sbom-audit-dep\"\nversion = \"0.2.0\"\nedition = \"2021\"\n",
    );
    write(
        d,
        "dep/src/lib.rs",
        "pub fn hello() -> &'static str { \"hello\" }\n",
    );
    run(Command::new(cargo)
        .args(["auditable", "build", "--offline", "--quiet"])
        .current_dir(d)
        .env("CARGO_TARGET_DIR", d.join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS"));
    Some(std::fs::read(d.join("target/debug/sbom-audit-hello")).unwrap())
}
