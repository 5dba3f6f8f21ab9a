//! Helpers for the end-to-end tests: locating the built binaries and the
//! real tools, running commands, and building the demo bundle.

pub use crate::registry::{RegistryFolder, SkopeoTarget};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A workspace binary (`airgap-bundle`, `airgap-install`, `gen-fixtures`),
/// built by `cargo build --workspace --bins` (tests/run.sh does this).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first (tests/run.sh does)",
        path.display()
    );
    path
}

/// Fails the test unless `tool` is on the PATH.
pub fn require_tool(tool: &str) {
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{tool} is not installed: tests/run.sh installs it (apt-get install -y {tool})"
    );
}

/// Runs a command, returning its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command and fails the test unless it succeeds; returns stdout.
pub fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a command that must fail cleanly: exit code 1 (not a panic's 101, not
/// a signal), one `error:` line on stderr. Returns that line.
pub fn fails(cmd: &mut Command) -> String {
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{cmd:?} should fail with exit 1, got {}; stderr: {stderr}",
        out.status
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0].to_string()
}

/// Runs a command that must stop with a usage error: exit status 2 and
/// one `error:` line. Returns that line.
pub fn usage_error(cmd: &mut Command) -> String {
    let out = run(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{cmd:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr.trim_end().to_string()
}

/// A key pair made with `airgap-bundle keygen`: (secret, public).
pub fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let prefix = dir.join(name);
    ok(Command::new(bin("airgap-bundle"))
        .arg("keygen")
        .arg("--out")
        .arg(&prefix));
    (prefix.with_extension("key"), prefix.with_extension("pub"))
}

/// `airgap-bundle build` with a fixed SOURCE_DATE_EPOCH, its cache folder
/// (pulled blobs, layer scans) `cache` beside `out`, so that each test's
/// builds share a cache and no other's.
pub fn build_cmd(manifest: &Path, key: &Path, out: &Path) -> Command {
    let mut c = Command::new(bin("airgap-bundle"));
    let cache = out.parent().unwrap_or(Path::new(".")).join("cache");
    c.arg("build")
        .arg(manifest)
        .arg("--key")
        .arg(key)
        .arg("--out")
        .arg(out)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .env("AIRGAP_BUNDLE_CACHE", cache)
        .env_remove("XDG_CACHE_HOME");
    c
}

/// Keeps a command away from this machine's configuration: no home folder,
/// registry auth file, Docker or Podman configuration, and no trusted-keys
/// folder for the installer, so only what the test passes counts.
pub fn without_ambient_config(c: &mut Command) -> &mut Command {
    c.env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config")
        .env("HOME", "/nonexistent-home")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .env_remove("XDG_RUNTIME_DIR")
}

/// `airgap-install push BUNDLE --trust PUB --registry REGISTRY
/// --relocation-map MAP`, [`without_ambient_config`].
pub fn push_cmd(bundle: &Path, public: &Path, registry: &str, map: &Path) -> Command {
    let mut c = Command::new(bin("airgap-install"));
    c.arg("push")
        .arg(bundle)
        .arg("--trust")
        .arg(public)
        .arg("--registry")
        .arg(registry)
        .arg("--relocation-map")
        .arg(map);
    without_ambient_config(&mut c);
    c
}

/// `airgap-install verify FILE --trust PUB`.
pub fn verify_cmd(bundle: &Path, public: &Path) -> Command {
    let mut c = Command::new(bin("airgap-install"));
    c.arg("verify").arg(bundle).arg("--trust").arg(public);
    // Keep any site configuration out of the tests.
    c.env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config");
    c
}

/// Builds the demo bundle into `dir`; returns (bundle, secret key, public key).
pub fn demo_bundle(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (key, public) = keygen(dir, "vendor");
    let out = dir.join("demo.bundle");
    ok(&mut build_cmd(
        &repo_root().join("manifests/demo.yaml"),
        &key,
        &out,
    ));
    (out, key, public)
}

/// Files in `dir` whose names contain `.partial` (leftovers of a failed build).
pub fn partial_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.to_string_lossy().contains(".partial"))
                .collect()
        })
        .unwrap_or_default()
}

/// The real Helm 3 binary: `$AIRGAP_HELM`, else `target/tools/helm`
/// (scripts/install-helm.sh puts it there; tests/run.sh runs that script).
pub fn helm() -> PathBuf {
    let path = std::env::var_os("AIRGAP_HELM")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/tools/helm"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-helm.sh (tests/run.sh does)",
        path.display()
    );
    path
}

/// The release `scripts/release.sh` built for this test run: its `--out`
/// folder (`x86_64/`, `aarch64/`, each with both tools, their SBOMs,
/// `SHA256SUMS` and its signature) and the public key that signed it.
pub struct ReleaseBuild {
    /// The `--out` folder.
    pub dir: PathBuf,
    /// The public key of the key the sums were signed with.
    pub public_key: PathBuf,
}

impl ReleaseBuild {
    /// One architecture's folder (`x86_64`, `aarch64`).
    pub fn arch(&self, arch: &str) -> PathBuf {
        self.dir.join(arch)
    }
}

/// The release build of this run: `$AIRGAP_RELEASE_DIR` and
/// `$AIRGAP_RELEASE_PUB`, which tests/run.sh sets after running
/// scripts/release.sh once (a release build takes minutes, so the tests
/// share it). Unset: `None`, and the test skips with a note, unless
/// `AIRGAP_REQUIRE_TOOLS=1`, where it fails.
pub fn release_build() -> Option<ReleaseBuild> {
    let dir = std::env::var_os("AIRGAP_RELEASE_DIR").map(PathBuf::from);
    let public_key = std::env::var_os("AIRGAP_RELEASE_PUB").map(PathBuf::from);
    match (dir, public_key) {
        (Some(dir), Some(public_key)) if dir.is_dir() && public_key.is_file() => {
            Some(ReleaseBuild { dir, public_key })
        }
        _ => {
            assert!(
                std::env::var_os("AIRGAP_REQUIRE_TOOLS").is_none(),
                "AIRGAP_RELEASE_DIR and AIRGAP_RELEASE_PUB are not set: tests/run.sh builds \
                 the release with scripts/release.sh and sets them"
            );
            eprintln!(
                "skipped: no release build (AIRGAP_RELEASE_DIR); bash tests/run.sh makes one"
            );
            None
        }
    }
}

/// A small tmpfs that fills up: mounted in a private mount namespace held
/// by a `sleep` process (with a user namespace when not root, so no
/// privilege is needed where unprivileged user namespaces are allowed),
/// and reached from here and from the programs under test through
/// `/proc/PID/root`. It vanishes with the process, when dropped.
pub struct SmallFs {
    holder: std::process::Child,
    mount_point: tempfile::TempDir,
}

impl SmallFs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it: `4m`).
    /// Fails the test, saying why, when no mount namespace can be made.
    pub fn mount(size: &str) -> SmallFs {
        use std::io::BufRead;
        require_tool("unshare");
        let mount_point = tempfile::Builder::new()
            .prefix("airgap-smallfs-")
            .tempdir()
            .expect("mount point");
        let mut c = Command::new("unshare");
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            c.args(["--user", "--map-root-user"]);
        }
        c.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o \"size=$1,mode=0777\" airgap-smallfs \"$2\" && echo mounted && exec sleep 1800",
            )
            .arg("sh")
            .arg(size)
            .arg(mount_point.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut holder = c.spawn().expect("run unshare");
        let mut line = String::new();
        let _ =
            std::io::BufReader::new(holder.stdout.as_mut().expect("stdout")).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let out = holder.wait_with_output().expect("unshare output");
            panic!(
                "cannot mount a {size} tmpfs in a private mount namespace (unshare: {}): as root this needs CAP_SYS_ADMIN; otherwise unprivileged user namespaces (Debian: sysctl kernel.unprivileged_userns_clone=1)",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        SmallFs {
            holder,
            mount_point,
        }
    }

    /// The tmpfs, as every process can reach it.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/root{}",
            self.holder.id(),
            self.mount_point.path().display()
        ))
    }

    /// Bytes free on the tmpfs.
    pub fn free(&self) -> u64 {
        let c = std::ffi::CString::new(self.path().as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path and a zeroed statvfs to fill.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
        assert_eq!(rc, 0, "statvfs {}", self.path().display());
        s.f_bavail as u64 * s.f_frsize as u64
    }

    /// Fills the tmpfs with the file `filler` until exactly `leave` bytes
    /// (rounded down to whole pages) are free; returns the filler's path.
    pub fn fill(&self, leave: u64) -> PathBuf {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("filler");
        let chunk = vec![0x5au8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        let len = f.metadata().expect("filler size").len();
        f.set_len(len.saturating_sub(leave))
            .expect("truncate filler");
        path
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Puts a `kubectl` stand-in into `dir` (created if needed), for tests of
/// `install --apply` and `preflight --apply`, whose preflight asks kubectl
/// for its version and the cluster's. There is no Kubernetes cluster on
/// these machines: the stand-in answers `kubectl version` (client and
/// server, as kubectl 1.30 prints them with `-o json`) and refuses anything
/// else. Returns `dir`.
pub fn kubectl_stand_in(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("kubectl");
    std::fs::write(
        &path,
        "#!/bin/sh\n# A stand-in: no Kubernetes cluster on the test machines.\n[ \"$1\" = version ] || { echo \"kubectl stand-in: only 'version' is answered\" >&2; exit 1; }\nfor a in \"$@\"; do [ \"$a\" = --client ] && { echo '{\"clientVersion\":{\"gitVersion\":\"v1.30.0\"}}'; exit 0; }; done\necho '{\"clientVersion\":{\"gitVersion\":\"v1.30.0\"},\"serverVersion\":{\"gitVersion\":\"v1.30.0\"}}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir.to_path_buf()
}

/// The first line of a `helm` wrapper script: answers `helm version` (as
/// preflight asks it) as Helm 3.14 would, before the wrapper does its own work.
pub const HELM_VERSION_LINE: &str = "[ \"$1\" = version ] && { echo v3.14.0; exit 0; }\n";

/// A `helm` in `dir/wrap` that runs the real Helm ([`helm`]) as `helm
/// template` for `upgrade --install` (so the chart is pulled from the site
/// registry and rendered with the values for real; the manifests go to
/// `LOG.rendered`), answers `uninstall` with success, fails an upgrade when
/// `HELM_FAILS` is set, and logs every call to `log`; and the kubectl
/// stand-in beside it. There is no Kubernetes cluster on these machines:
/// what the installer asks Helm to do is what the tests check. Returns a
/// `PATH` with both first.
pub fn helm_without_cluster(dir: &Path, log: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let wrap = dir.join("wrap");
    std::fs::create_dir_all(&wrap).unwrap();
    let script = wrap.join("helm");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{HELM_VERSION_LINE}echo \"$@\" >> '{log}'\n[ \"$1\" = uninstall ] && exit 0\n[ \"$1 $2\" = \"upgrade --install\" ] || exit 9\n[ -z \"$HELM_FAILS\" ] || {{ echo 'Error: UPGRADE FAILED: timed out' >&2; exit 1; }}\nshift 2\nexec '{helm}' template \"$@\" --kube-version 1.30.0 > '{log}.rendered'\n",
            log = log.display(),
            helm = helm().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    kubectl_stand_in(&wrap);
    format!(
        "{}:{}",
        wrap.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Removes the proxy variables from a command's environment, so that
/// requests to loopback servers go straight to them.
pub fn without_proxies(c: &mut Command) -> &mut Command {
    for v in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env_remove(v);
    }
    c
}
