//! Shell completions and man pages for a clap command line: what the
//! `completion` and `man` subcommands of both programs print and write.

use std::path::{Path, PathBuf};

/// The shells completions are made for (`bash`, `zsh`, `fish`, `elvish`,
/// `powershell`).
pub use clap_complete::Shell;

/// Writes the completion script of `cmd` for `shell` to `out`.
pub fn write_completions(
    mut cmd: clap::Command,
    shell: Shell,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let name = cmd.get_name().to_string();
    // Generated whole first: clap_complete panics on a failed write.
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut text);
    out.write_all(&text).and_then(|_| out.flush())
}

/// Writes one man page (section 1) per command and subcommand of `cmd`
/// into the folder `out`, creating it: `NAME.1`, `NAME-SUB.1`,
/// `NAME-SUB-SUB.1`. Hidden commands get none. Returns the files written.
pub fn write_man_pages(cmd: clap::Command, out: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| named(out, "cannot create the folder", e))?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    page(&cmd, out, &mut written)?;
    Ok(written)
}

fn page(cmd: &clap::Command, out: &Path, written: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let path = out.join(man.get_filename());
    let mut text = Vec::new();
    man.render(&mut text)
        .map_err(|e| named(&path, "cannot render", e))?;
    airgap_format::atomic_file::write_file_atomic(&path, &text, 0o644)
        .map_err(|e| named(&path, "cannot write", e))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(sub, out, written)?;
    }
    Ok(())
}

/// `e` as `PATH: WHAT: e`, of the same kind.
fn named(path: &Path, what: &str, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {what}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> clap::Command {
        clap::Command::new("tool")
            .version("1.0")
            .about("A tool")
            .subcommand(clap::Command::new("go").about("Go somewhere"))
            .subcommand(
                clap::Command::new("license")
                    .subcommand(clap::Command::new("request").about("Ask")),
            )
            .subcommand(clap::Command::new("secret").hide(true))
    }

    #[test]
    fn one_man_page_per_visible_command() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("man1");
        let files = write_man_pages(cmd(), &out).unwrap();
        let mut names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "tool-go.1",
                "tool-license-request.1",
                "tool-license.1",
                "tool.1"
            ]
        );
        let page = std::fs::read_to_string(out.join("tool-go.1")).unwrap();
        assert!(page.contains(".TH tool-go 1"), "{page}");
    }

    #[test]
    fn bash_completions_name_the_subcommands() {
        let mut out = Vec::new();
        write_completions(cmd(), Shell::Bash, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("go") && text.contains("license"), "{text}");
    }
}
