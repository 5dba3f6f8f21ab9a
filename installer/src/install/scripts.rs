//! The scripts a run starts: a rendered configuration's backup and restore
//! scripts, and its `install-plan.sh`, with their output kept (the tail)
//! for the audit log.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use time::OffsetDateTime;

use super::journal::Step;
use super::run::Run;
use crate::render::spec::FileRole;
use crate::state::Outcome;

/// Largest backup or install-plan output kept in the audit log (the tail).
const MAX_LOGGED_OUTPUT: usize = 16 << 10;

/// SHA-256 of a file, as `sha256:HEX`.
pub fn file_digest(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    Ok(airgap_format::Digest::of(&bytes).to_string())
}

/// Runs every script of `role` the render produced, in plan order; their
/// output and exit status go to the audit log, and a failure stops the run.
/// Backups write into a new `backups/STAMP` folder in the state folder,
/// returned; a restore reads the folder `run.journal.backup_dir` names.
pub fn run_backups(run: &mut Run, config_dir: &Path, role: FileRole) -> Result<Option<PathBuf>> {
    #[derive(Deserialize)]
    struct PlanFiles {
        files: Vec<PlanFile>,
    }
    #[derive(Deserialize)]
    struct PlanFile {
        path: String,
        #[serde(default)]
        role: Option<FileRole>,
    }
    let plan_path = config_dir.join("plan.json");
    let bytes = crate::state::read_bounded(&plan_path, crate::state::MAX_STATE_FILE)?
        .ok_or_else(|| anyhow!("{}: missing", plan_path.display()))?;
    let plan: PlanFiles = serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: not a render plan", plan_path.display()))?;
    let scripts: Vec<String> = plan
        .files
        .into_iter()
        .filter(|f| f.role == Some(role))
        .map(|f| f.path)
        .collect();
    let step = match role {
        FileRole::Backup => Step::Backup,
        FileRole::Restore => Step::Restore,
    };
    if scripts.is_empty() {
        // A rollback's restore step records this itself.
        if role == FileRole::Backup {
            run.audit(
                step,
                Outcome::Skipped,
                Some("the bundle renders no backup script".into()),
            )?;
        }
        return Ok(None);
    }
    let backup_dir = match role {
        FileRole::Backup => {
            // A new folder per upgrade: the nanoseconds keep two runs
            // within one second apart.
            let now = OffsetDateTime::now_utc();
            let stamp = format!("{}-{:09}", now.unix_timestamp(), now.nanosecond());
            let dir = run.state.root().join("backups").join(stamp);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("{}: cannot create", dir.display()))?;
            dir
        }
        FileRole::Restore => match &run.journal.backup_dir {
            Some(dir) => PathBuf::from(dir),
            None => return Ok(None),
        },
    };
    let config_dir = &std::path::absolute(config_dir)
        .with_context(|| format!("{}: cannot resolve", config_dir.display()))?;
    for s in scripts {
        let path = config_dir.join(&s);
        let mut cmd = Command::new(&path);
        cmd.current_dir(config_dir).env("BACKUP_DIR", &backup_dir);
        let output = cmd
            .output()
            .with_context(|| format!("{}: cannot run", path.display()))?;
        let text = tail(&output.stdout, &output.stderr);
        let status = output
            .status
            .code()
            .map_or("killed by a signal".into(), |c| format!("exit status {c}"));
        let ok = output.status.success();
        run.audit(
            step,
            if ok { Outcome::Ok } else { Outcome::Failed },
            Some(format!("{s}: {status}\n{text}")),
        )?;
        if !ok {
            match role {
                FileRole::Backup => bail!(
                    "backup {s} failed ({status}); the upgrade was stopped before anything changed: {}",
                    last_line(&text)
                ),
                FileRole::Restore => bail!(
                    "restore {s} failed ({status}); nothing was applied: {}",
                    last_line(&text)
                ),
            }
        }
    }
    Ok(Some(backup_dir))
}

/// Runs a rendered configuration's `install-plan.sh` from `config_dir`,
/// leaving the health checks to the run's own step; its output's last line.
pub fn run_install_plan(config_dir: &Path) -> Result<String> {
    let script = config_dir.join("install-plan.sh");
    // The health step runs the checks (or skips them with --skip-health);
    // the script's own check would only repeat them.
    let mut env = vec![("AIRGAP_SKIP_HEALTH".to_string(), "1".to_string())];
    if let Ok(me) = std::env::current_exe() {
        env.push(("AIRGAP_INSTALL".into(), me.display().to_string()));
    }
    let out = run_logged(&script, config_dir, &env)?;
    Ok(last_line(&out))
}

/// Runs a script, its output kept (the tail) for the audit log.
pub fn run_logged(script: &Path, dir: &Path, env: &[(String, String)]) -> Result<String> {
    // Run from `dir`: a relative script path (a relative state folder) is
    // made absolute first.
    let script = &std::path::absolute(script)
        .with_context(|| format!("{}: cannot resolve", script.display()))?;
    let output = Command::new(script)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .with_context(|| format!("{}: cannot run", script.display()))?;
    let text = tail(&output.stdout, &output.stderr);
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}",
            script.display(),
            output.status,
            last_line(&text)
        );
    }
    Ok(text)
}

/// Standard output then standard error, cut to the last
/// [`MAX_LOGGED_OUTPUT`] bytes (at a character boundary).
fn tail(stdout: &[u8], stderr: &[u8]) -> String {
    let mut all = String::from_utf8_lossy(stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(stderr));
    if all.len() > MAX_LOGGED_OUTPUT {
        let mut cut = all.len() - MAX_LOGGED_OUTPUT;
        while !all.is_char_boundary(cut) {
            cut += 1;
        }
        all = format!("[…]{}", &all[cut..]);
    }
    all
}

/// The last line of `text` that is not blank.
pub fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_cut_to_its_tail_and_the_last_line_found() {
        assert_eq!(tail(b"out\n", b"err\n"), "out\nerr\n");
        let long = "é".repeat(MAX_LOGGED_OUTPUT);
        let t = tail(long.as_bytes(), b"");
        assert!(t.starts_with("[…]é"), "{}", &t[..10]);
        assert!(t.len() <= MAX_LOGGED_OUTPUT + "[…]".len());
        assert_eq!(last_line("a\nlast\n  \n"), "last");
        assert_eq!(last_line(""), "");
    }
}
