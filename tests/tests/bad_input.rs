//! Bad manifests and bad sources: one clear error line naming the file and
//! the problem, exit code 1, and no output file (not even a partial one).

use std::path::{Path, PathBuf};

use airgap_e2e::harness::*;
use airgap_e2e::*;

struct Case {
    dir: tempfile::TempDir,
    key: PathBuf,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = keygen(dir.path(), "k");
        let (oci, docker) = demo_images();
        write_oci_layout(&dir.path().join("layout"), &oci).unwrap();
        write_docker_archive_legacy(&dir.path().join("w.tar"), &docker).unwrap();
        Case { dir, key }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// Builds `yaml`; asserts a clean failure whose line contains every `needle`.
    fn refuses(&self, yaml: &str, needles: &[&str]) -> String {
        let m = self.path("m.yaml");
        std::fs::write(&m, yaml).unwrap();
        let out = self.path("out.bundle");
        let line = fails(&mut build_cmd(&m, &self.key, &out));
        for n in needles {
            assert!(line.contains(n), "{line:?} should contain {n:?}");
        }
        assert!(!out.exists(), "no output file may be left behind");
        assert!(
            partial_files(self.dir.path()).is_empty(),
            "no partial file may be left behind"
        );
        line
    }
}

const HEAD: &str = "name: t\nversion: 1.0.0\n";

#[test]
fn malformed_yaml() {
    let c = Case::new();
    c.refuses("name: [t\nversion: 1.0.0\n", &["m.yaml:"]);
}

#[test]
fn unknown_field_names_line_and_column() {
    let c = Case::new();
    c.refuses(
        &format!("{HEAD}images:\n  - source: oci-layout:layout:{DEMO_WEB_REF}\n    tagg: x\n"),
        &["m.yaml:5:5", "tagg"],
    );
}

#[test]
fn missing_required_field() {
    let c = Case::new();
    c.refuses("name: t\n", &["m.yaml", "version"]);
}

#[test]
fn invalid_version() {
    let c = Case::new();
    c.refuses(
        "name: t\nversion: v1\n",
        &["m.yaml:2:10", "semantic version"],
    );
}

#[test]
fn missing_source_path() {
    let c = Case::new();
    c.refuses(
        &format!("{HEAD}images:\n  - source: oci-layout:nope:{DEMO_WEB_REF}\n"),
        &["m.yaml:4:13", "images[0].source", "nope", "not found"],
    );
    c.refuses(
        &format!("{HEAD}files:\n  - source: nope.pdf\n"),
        &["m.yaml:4:13", "files[0].source", "nope.pdf", "not found"],
    );
    c.refuses(
        &format!("{HEAD}charts:\n  - source: nochart\n"),
        &["m.yaml:4:13", "charts[0].source", "not found"],
    );
}

#[test]
fn unknown_image_reference() {
    let c = Case::new();
    c.refuses(
        &format!("{HEAD}images:\n  - source: oci-layout:layout:demo/nothing:1\n"),
        &["m.yaml:4", "no image named", "demo/nothing:1", DEMO_WEB_REF],
    );
    c.refuses(
        &format!("{HEAD}images:\n  - source: docker-archive:w.tar:demo/nothing:1\n"),
        &["m.yaml:4", "no image named", DEMO_WORKER_REF],
    );
}

#[test]
fn unknown_transport() {
    let c = Case::new();
    c.refuses(
        &format!("{HEAD}images:\n  - source: oci-archive:x.tar\n"),
        &[
            "m.yaml:4:13",
            "image transport \"oci-archive\" is not supported",
        ],
    );
}

fn some_layer(layout: &Path) -> PathBuf {
    let base = demo_base_layer().digest();
    layout
        .join("blobs/sha256")
        .join(base.trim_start_matches("sha256:"))
}

#[test]
fn layout_missing_a_blob() {
    let c = Case::new();
    let blob = some_layer(&c.path("layout"));
    std::fs::remove_file(&blob).unwrap();
    let hex = blob.file_name().unwrap().to_str().unwrap().to_string();
    c.refuses(
        &format!("{HEAD}images:\n  - source: oci-layout:layout:{DEMO_WEB_REF}\n"),
        &["m.yaml:4", &hex, "missing"],
    );
}

#[test]
fn layout_blob_with_wrong_content() {
    let c = Case::new();
    let blob = some_layer(&c.path("layout"));
    let mut bytes = std::fs::read(&blob).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x55;
    std::fs::write(&blob, bytes).unwrap();
    let hex = blob.file_name().unwrap().to_str().unwrap().to_string();
    c.refuses(
        &format!("{HEAD}images:\n  - source: oci-layout:layout:{DEMO_WEB_REF}\n"),
        &[&hex, "does not match its digest"],
    );
}

#[test]
fn bad_file_kind_lists_allowed_values() {
    let c = Case::new();
    std::fs::write(c.path("a.txt"), "x").unwrap();
    c.refuses(
        &format!("{HEAD}files:\n  - source: a.txt\n    kind: manual\n"),
        &["m.yaml:5", "documentation", "security-report"],
    );
}

#[test]
fn unsafe_file_name() {
    let c = Case::new();
    std::fs::write(c.path("a.txt"), "x").unwrap();
    c.refuses(
        &format!("{HEAD}files:\n  - source: a.txt\n    name: ../../etc/passwd\n"),
        &["m.yaml:5", "files[0].name"],
    );
}

#[test]
fn encrypted_or_garbage_key() {
    let c = Case::new();
    std::fs::write(c.path("m.yaml"), HEAD).unwrap();
    std::fs::write(c.path("bad.key"), "untrusted comment: x\nnot base64!!\n").unwrap();
    let line = fails(&mut build_cmd(
        &c.path("m.yaml"),
        &c.path("bad.key"),
        &c.path("o.bundle"),
    ));
    assert!(line.contains("bad.key"), "{line}");
    assert!(!c.path("o.bundle").exists());
}

#[test]
fn chart_yaml_outside_the_format_rules_is_refused() {
    // docs/format.md §5.1, Strings: the bundler names the chart file and
    // the fix instead of writing a bundle verify would refuse.
    let c = Case::new();
    for (i, (chart_yaml, needles)) in [
        (
            "name: Hello_World\nversion: 0.1.0\n",
            &[
                "charts[0].source",
                "Chart.yaml: chart name \"Hello_World\" is not valid",
                "rename the chart",
            ][..],
        ),
        (
            "name: ../../tmp/x\nversion: 0.1.0\n",
            &["chart name \"../../tmp/x\" is not valid"][..],
        ),
        (
            "name: hello\nversion: \"1.0\"\n",
            &[
                "Chart.yaml: version \"1.0\" is not valid",
                "set version: in Chart.yaml",
            ][..],
        ),
        (
            "name: hello\nversion: 1.0.0-18446744073709551616\n",
            &["pre-release identifier 18446744073709551616 exceeds"][..],
        ),
        (
            "name: hello\nversion: 0.1.0\nappVersion: \"1.0\\e]0;pwned\\a\"\n",
            &[
                "Chart.yaml: appVersion \"1.0\\u{1b}]0;pwned\\u{7}\" is not valid",
                "set appVersion: in Chart.yaml",
            ][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = c.path(&format!("chart{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("Chart.yaml"), chart_yaml).unwrap();
        c.refuses(&format!("{HEAD}charts:\n  - source: chart{i}\n"), needles);
    }
}

#[test]
fn manifest_strings_outside_the_format_rules_are_refused() {
    let c = Case::new();
    c.refuses(
        "name: t\nversion: 1.0.0\ndescription: \"clear\\e[2J\"\n",
        &[
            "m.yaml:3:14: description: \"clear\\u{1b}[2J\" is not valid",
            "line feeds are allowed",
        ],
    );
    c.refuses(
        "name: t\nversion: 1.0.0\ndescription: \"evil \\u202Egnp.exe\"\n",
        &["m.yaml:3:14: description:", "\\u{202e}"],
    );
    c.refuses(
        &format!(
            "name: t\nversion: 1.0.0\ndescription: {}\n",
            "d".repeat(4097)
        ),
        &["description:", "at most 4096 bytes"],
    );
    c.refuses(
        &format!("name: t\nversion: 1.0.0-{}\n", "a".repeat(123)),
        &["m.yaml:2:10: version:", "129 bytes, above 128"],
    );
    std::fs::write(c.path("a.txt"), "x").unwrap();
    c.refuses(
        &format!("{HEAD}files:\n  - source: a.txt\n    mediaType: text/plain; charset=utf-8\n"),
        &[
            "m.yaml:5:16: files[0].mediaType: \"text/plain; charset=utf-8\" is not a media type",
            "such as text/markdown",
        ],
    );
    c.refuses(
        &format!("{HEAD}files:\n  - source: a.txt\n    name: \"docs/\\u202Etxt.exe\"\n"),
        &["m.yaml:5:11", "files[0].name"],
    );
    c.refuses(
        &format!("{HEAD}images:\n  - source: oci-layout:layout:{DEMO_WEB_REF}\n    platforms: [linux/ARM64]\n"),
        &["m.yaml:5:17", "images[0].platforms[0]: \"linux/ARM64\" is not a platform"],
    );
}
