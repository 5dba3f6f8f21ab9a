//! Shell scripts the installer writes (`install-plan.sh`). Strings from a
//! bundle, a site file or a relocation map reach a script only as a quoted
//! word ([`word`], through [`Script::command`]) or as the text of one
//! comment line ([`Script::comment`]), escaped so it cannot end the line.
//! Code of the script's own is `&'static str`: it cannot carry input.

use airgap_format::display::Escaped;
use anyhow::{bail, Result};

/// A POSIX shell script being written.
#[derive(Debug)]
pub struct Script {
    text: String,
}

impl Default for Script {
    fn default() -> Self {
        Script::new()
    }
}

impl Script {
    /// A script starting with `#!/bin/sh`.
    pub fn new() -> Script {
        Script {
            text: "#!/bin/sh\n".to_string(),
        }
    }

    /// Code of the script's own, as written (never input).
    pub fn code(&mut self, code: &'static str) {
        self.text.push_str(code);
    }

    /// One comment line: `# TEXT`, with line breaks and every other
    /// control or bidirectional formatting character escaped.
    pub fn comment(&mut self, text: &str) {
        self.text.push_str("# ");
        self.text.push_str(&Escaped(text).to_string());
        self.text.push('\n');
    }

    /// One command line: `indent`, `program` (code of the script's own,
    /// such as `"$HELM"`), then each argument as a quoted word.
    pub fn command(
        &mut self,
        indent: &'static str,
        program: &'static str,
        args: &[&str],
    ) -> Result<()> {
        let mut line = format!("{indent}{program}");
        for a in args {
            line.push(' ');
            line.push_str(&word(a)?);
        }
        self.text.push_str(&line);
        self.text.push('\n');
        Ok(())
    }

    /// The script's text.
    pub fn finish(self) -> String {
        self.text
    }
}

/// `s` as one POSIX shell word: as it is when made only of characters no
/// shell treats specially, else single-quoted (inside single quotes only
/// `'` is special; it is written `'\''`). A control or bidirectional
/// formatting character is refused: inert inside quotes, it would still
/// act on the terminal of the operator who reviews the script (and a NUL
/// cannot be passed to a program at all).
///
/// Not `shlex::try_quote`: it quotes `=` and `,` (every `--set KEY=VALUE`
/// would become `'KEY=VALUE'`) and writes a word holding `'` in double
/// quotes, so the scripts of every existing bundle would change bytes.
pub fn word(s: &str) -> Result<String> {
    if !airgap_format::display::is_display_safe(s) {
        bail!(
            "{}: holds a control or bidirectional formatting character, which a script cannot show safely (rename it)",
            airgap_format::display::quote(s)
        );
    }
    Ok(
        if !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:@=+,".contains(c))
        {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use airgap_format::display::is_display_safe;
    use std::process::Command;

    const HOSTILE: &[&str] = &[
        "plain",
        "",
        "new\nline; touch PWNED",
        "$(touch PWNED)",
        "`touch PWNED`",
        "'; touch PWNED; '",
        "\"; touch PWNED; \"",
        "a;touch PWNED",
        "a&&touch PWNED",
        "a|touch PWNED",
        "${HOME}",
        "*",
        "-rf",
        "tab\there",
        "cr\rhere",
        "esc\u{1b}]0;title\u{7}",
        "back\\slash'",
        "ünï\u{202e}cøde",
        "ünïcøde ok",
    ];

    /// Runs the script with `sh` in a fresh folder: prints each word of
    /// each command on a line of its own, runs nothing else.
    fn run(script: &str) -> (Vec<Vec<String>>, bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sh");
        std::fs::write(&path, script).unwrap();
        let out = Command::new("sh")
            .arg(&path)
            .current_dir(dir.path())
            .env("SHOW", "show")
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}\n{out:?}");
        let mut commands = Vec::new();
        for record in String::from_utf8(out.stdout).unwrap().split("\u{1e}\n") {
            if record.is_empty() {
                continue;
            }
            commands.push(
                record
                    .split('\u{1f}')
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
        }
        (commands, dir.path().join("PWNED").exists())
    }

    #[test]
    fn hostile_words_and_comments_stay_inert() {
        let mut s = Script::new();
        s.code("set -eu\nshow() { for a in \"$@\"; do printf '%s\\037' \"$a\"; done; printf '\\036\\n'; }\n");
        let mut passed = Vec::new();
        for h in HOSTILE {
            s.comment(&format!("release {h} (chart {h})"));
            match s.command("", "show", &["x", h, "y"]) {
                Ok(()) => passed.push(*h),
                Err(e) => {
                    assert!(!is_display_safe(h), "{h:?}: {e}");
                    assert!(e.to_string().contains("rename it"), "{e}");
                }
            }
        }
        assert_eq!(passed.len(), HOSTILE.len() - 5, "{passed:?}");
        let text = s.finish();
        // One line per comment and per command, plus the header lines.
        assert_eq!(
            text.lines().filter(|l| l.starts_with('#')).count(),
            1 + HOSTILE.len(),
            "{text}"
        );
        assert_eq!(
            text.lines().count(),
            3 + HOSTILE.len() + passed.len(),
            "{text}"
        );
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{202e}'),
            "{text}"
        );
        let (commands, pwned) = run(&text);
        assert!(!pwned, "a word ran a command:\n{text}");
        let want: Vec<Vec<String>> = passed
            .iter()
            .map(|h| {
                ["x", h, "y"]
                    .iter()
                    .filter(|w| !w.is_empty())
                    .map(|w| w.to_string())
                    .collect()
            })
            .collect();
        assert_eq!(commands, want);
    }

    #[test]
    fn words() {
        assert_eq!(word("values/a.yaml").unwrap(), "values/a.yaml");
        assert_eq!(word("it's").unwrap(), r"'it'\''s'");
        assert_eq!(word("").unwrap(), "''");
        assert!(word("a\0b").unwrap_err().to_string().contains("control"));
    }
}
