//! The command-line conventions both programs keep: shell completions and
//! man pages, examples in `--help`, exit status 2 for usage errors, JSON
//! failures with `--json`, the bundle digest in `verify`'s output and
//! `--expect-digest`, and log lines and colour on a terminal (`NO_COLOR`).

use std::path::Path;
use std::process::Command;

use airgap_e2e::harness::*;
use serde_json::Value;

fn installer() -> Command {
    let mut c = Command::new(bin("airgap-install"));
    c.env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config")
        .env_remove("RUST_LOG");
    c
}

fn bundler() -> Command {
    let mut c = Command::new(bin("airgap-bundle"));
    c.env_remove("RUST_LOG");
    c
}

#[test]
fn completions_and_man_pages_for_both_programs() {
    let tmp = tempfile::tempdir().unwrap();
    for (program, subcommands) in [
        (
            "airgap-install",
            &["verify", "push", "install", "abandon", "man"][..],
        ),
        (
            "airgap-bundle",
            &["build", "lock", "keygen", "completion"][..],
        ),
    ] {
        let bash = ok(Command::new(bin(program)).args(["completion", "bash"]));
        for sub in subcommands {
            assert!(bash.contains(sub), "{program}: no {sub} in\n{bash}");
        }
        for shell in ["zsh", "fish"] {
            let text = ok(Command::new(bin(program)).args(["completion", shell]));
            assert!(text.contains(subcommands[0]), "{program} {shell}: {text}");
        }
        let out = run(Command::new(bin(program)).args(["completion", "tcsh"]));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{program}: a shell clap refuses"
        );

        let dir = tmp.path().join(program);
        let listed = ok(Command::new(bin(program)).arg("man").arg("--out").arg(&dir));
        let page = dir.join(format!("{program}-{}.1", subcommands[0]));
        assert!(
            listed.lines().any(|l| Path::new(l) == page),
            "{page:?} not in {listed}"
        );
        let text = std::fs::read_to_string(&page).unwrap();
        assert!(text.starts_with(".ie") || text.starts_with(".TH"), "{text}");
        assert!(
            text.contains(&format!(".TH {program}-{} 1", subcommands[0])),
            "{text}"
        );
        assert!(dir.join(format!("{program}.1")).is_file());
    }
    let install =
        std::fs::read_to_string(tmp.path().join("airgap-install/airgap-install-install.1"))
            .unwrap();
    assert!(install.contains("\\-\\-apply"), "{install}");
    assert!(tmp
        .path()
        .join("airgap-install/airgap-install-license-request.1")
        .is_file());
}

#[test]
fn help_shows_an_example() {
    for (program, sub) in [
        ("airgap-bundle", "build"),
        ("airgap-install", "verify"),
        ("airgap-install", "push"),
        ("airgap-install", "install"),
        ("airgap-install", "render"),
    ] {
        let help = ok(Command::new(bin(program)).args([sub, "--help"]));
        let example = help
            .split_once("Example:\n")
            .unwrap_or_else(|| panic!("{program} {sub} --help has no example:\n{help}"))
            .1;
        assert!(
            example
                .trim_start()
                .starts_with(&format!("{program} {sub} ")),
            "{program} {sub}: {example}"
        );
    }
}

#[test]
fn usage_errors_the_programs_find_exit_with_2() {
    // Found by the parser.
    let out = run(installer().arg("verify"));
    assert_eq!(out.status.code(), Some(2));
    // Found by the programs.
    let line = usage_error(bundler().args([
        "build", "m.yaml", "--key", "k", "--out", "o", "--split", "4XB",
    ]));
    assert!(line.contains("--split"), "{line}");
    let line = usage_error(bundler().args([
        "license",
        "issue",
        "--request",
        "/nonexistent/request.json",
        "--key",
        "k",
        "--customer",
        "c",
        "--expires",
        "someday",
        "--out",
        "o",
    ]));
    assert!(line.contains("--expires"), "{line}");
    let line = usage_error(installer().args([
        "push",
        "b.bundle",
        "--registry",
        "https://registry.example",
    ]));
    assert!(line.contains("without a scheme"), "{line}");
    let line = usage_error(installer().args(["verify", "b.bundle", "--expect-digest", "abc"]));
    assert!(line.contains("--expect-digest"), "{line}");
    let state = tempfile::tempdir().unwrap();
    let line = usage_error(
        installer()
            .arg("--state-dir")
            .arg(state.path())
            .args(["abandon", "x"]),
    );
    assert!(line.contains("NAME@VERSION"), "{line}");
    // Not usage errors: exit status 1.
    fails(installer().args([
        "verify",
        "/nonexistent.bundle",
        "--trust",
        "/nonexistent.pub",
    ]));
}

#[test]
fn verify_shows_the_bundle_digest_and_checks_the_published_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _key, public) = demo_bundle(tmp.path());
    let report: Value =
        serde_json::from_str(&ok(verify_cmd(&bundle, &public).arg("--json"))).unwrap();
    let digest = report["bundleDigest"].as_str().unwrap().to_string();
    assert!(report.get("expectedDigest").is_none(), "{report:#}");

    let text = ok(&mut verify_cmd(&bundle, &public));
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("OK "), "{text}");
    assert_eq!(lines[1], format!("   bundle digest: {digest}"), "{text}");

    let text = ok(verify_cmd(&bundle, &public).args(["--expect-digest", &digest]));
    assert!(
        text.contains(&format!("bundle digest: {digest} (as expected)")),
        "{text}"
    );
    let report: Value = serde_json::from_str(&ok(verify_cmd(&bundle, &public).args([
        "--expect-digest",
        &digest,
        "--json",
    ])))
    .unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["expectedDigest"], digest.as_str());

    let other = format!("sha256:{}", "0".repeat(64));
    let line = fails(verify_cmd(&bundle, &public).args(["--expect-digest", &other]));
    assert!(line.contains(&digest) && line.contains(&other), "{line}");
    assert!(
        line.contains("not the bundle the vendor published"),
        "{line}"
    );
    let out = run(verify_cmd(&bundle, &public).args(["--expect-digest", &other, "--json"]));
    assert_eq!(out.status.code(), Some(1));
    let failure: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(failure["ok"], false, "{failure:#}");
    assert_eq!(failure["expectedDigest"], other.as_str(), "{failure:#}");
    assert!(
        failure["error"].as_str().unwrap().contains(&digest),
        "{failure:#}"
    );
}

#[test]
fn json_commands_print_their_failure_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let (bundle, _key, _public) = demo_bundle(tmp.path());
    let (_, stranger) = keygen(tmp.path(), "stranger");
    let site = tmp.path().join("site.yaml");
    std::fs::write(&site, "not: a site\n").unwrap();
    let state = tmp.path().join("state");
    let b = bundle.display().to_string();
    let s = site.display().to_string();
    let k = stranger.display().to_string();
    let out_dir = tmp.path().join("out").display().to_string();
    for args in [
        vec![
            "push",
            &b,
            "--trust",
            &k,
            "--registry",
            "127.0.0.1:9",
            "--json",
        ],
        vec![
            "render", &b, "--trust", &k, "--site", &s, "--out", &out_dir, "--json",
        ],
        vec!["plan", &b, "--trust", &k, "--json"],
        vec!["sbom", &b, "--trust", &k, "--list", "--json"],
        vec!["install", &b, "--trust", &k, "--site", &s, "--json"],
        vec!["verify", &b, "--trust", &k, "--json"],
    ] {
        let out = run(installer().arg("--state-dir").arg(&state).args(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        let failure: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e}): {stderr}"));
        assert_eq!(failure["ok"], false, "{args:?}: {failure:#}");
        assert_eq!(failure["file"], b.as_str(), "{args:?}: {failure:#}");
        let error = failure["error"].as_str().unwrap();
        assert_eq!(
            stderr.trim_end(),
            format!("error: {error}"),
            "{args:?}: the same line on stderr"
        );
    }
}

/// Runs `airgap-install ARGS` under a pseudo-terminal (util-linux
/// `script`), with `env`; returns what the terminal showed.
fn on_terminal(args: &str, env: &[(&str, &str)]) -> String {
    require_tool("script");
    let mut c = Command::new("script");
    c.args(["-qec", &format!("\"$AIRGAP_BIN\" {args}"), "/dev/null"])
        .env("AIRGAP_BIN", bin("airgap-install"))
        .env("AIRGAP_INSTALL_CONFIG_DIR", "/nonexistent-airgap-config")
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        c.env(k, v);
    }
    String::from_utf8_lossy(&run(&mut c).stdout).replace("\r\n", "\n")
}

#[test]
fn terminal_logs_are_short_and_no_color_turns_colour_off() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // A damaged audit log line: `history` warns about it.
    std::fs::write(state.join("audit.log"), "{\"time\":\"2026\n").unwrap();
    let history = format!("--state-dir {} history", state.display());
    let failing = format!(
        "--state-dir {} plan /nonexistent.bundle --trust /nonexistent.pub",
        state.display()
    );

    let plain = on_terminal(&history, &[("NO_COLOR", "1")]);
    let warning = plain
        .lines()
        .find(|l| l.contains("is damaged"))
        .unwrap_or_else(|| panic!("no warning: {plain:?}"));
    assert!(warning.starts_with("warning: "), "{warning:?}");
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(
        !plain.contains("airgap_install"),
        "no module path: {plain:?}"
    );
    let error = on_terminal(&failing, &[("NO_COLOR", "1")]);
    assert!(error.starts_with("error: "), "{error:?}");

    let coloured = on_terminal(&history, &[]);
    assert!(
        coloured.contains("\x1b[1;33mwarning\x1b[0m: "),
        "{coloured:?}"
    );
    let coloured = on_terminal(&failing, &[("NO_COLOR", "")]);
    assert!(
        coloured.starts_with("\x1b[1;31merror\x1b[0m: "),
        "{coloured:?}"
    );

    // Not a terminal: the log line keeps its time, level and module.
    let out = run(installer().arg("--state-dir").arg(&state).arg("history"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(" WARN "), "{stderr}");
    assert!(!stderr.contains('\x1b'), "{stderr}");
}
