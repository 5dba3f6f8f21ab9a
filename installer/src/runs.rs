//! Unfinished runs: the journals that an `install` (`runs/HEX.json`), a
//! `rollback` (`runs/rollback-NAME.json`) or an `uninstall`
//! (`runs/uninstall-NAME.json`) interrupted or stopped by a failed step
//! leaves in the state folder. `status` lists them with how to resume or abandon each;
//! `abandon` gives one up: it records that in the audit log and removes the
//! journal, so the next `install` of that bundle starts from the
//! beginning.

use airgap_cli::progress::UsageError;
use airgap_format::display::escape as e;
use anyhow::{bail, Result};
use serde::Serialize;
use time::OffsetDateTime;

use crate::install::journal::{RunKind, Step};
use crate::install::steps::STEPS;
use crate::state::{operator, rfc3339, AuditRecord, Outcome, State};

/// Hex digits of the bundle digest that name a run where its bundle's
/// `NAME@VERSION` does not.
const SHORT_ID: usize = 12;

/// An unfinished run, as `status` shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnfinishedRun {
    /// The journal's name (`runs/ID.json`): the bundle digest's hex for an
    /// install, `rollback-NAME` or `uninstall-NAME`.
    pub id: String,
    /// The command that resumes it: `install`, `rollback` or `uninstall`.
    pub command: String,
    /// The bundle, `NAME@VERSION`.
    pub bundle: String,
    /// The bundle digest.
    pub bundle_digest: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// `install`, `upgrade`, `downgrade` or `apply`, when the journal says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<RunKind>,
    /// The version it replaces, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_version: Option<String>,
    /// The steps it finished, in order.
    pub done: Vec<Step>,
    /// The step a resumed run starts with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<Step>,
    /// The bundle file as verified (for media parts, every part's path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_file: Option<String>,
    /// The command that gives the run up.
    pub abandon: String,
}

/// Every unfinished run in the state folder, oldest first. A journal that
/// cannot be read is left out, with a warning naming it.
pub fn unfinished(state: &State) -> Result<Vec<UnfinishedRun>> {
    let mut runs = Vec::new();
    for id in state.journal_ids()? {
        let journal = match state.journal(&id) {
            Ok(Some(j)) => j,
            Ok(None) => continue,
            Err(err) => {
                tracing::warn!(
                    "{}; remove it to start that bundle's install from the beginning",
                    airgap_cli::progress::error_line(err.as_ref())
                );
                continue;
            }
        };
        let (command, order): (&str, &[Step]) = match journal.kind {
            Some(RunKind::Rollback) => ("rollback", &crate::rollback::STEPS),
            Some(RunKind::Uninstall) => ("uninstall", &crate::uninstall::STEPS),
            _ => ("install", &STEPS),
        };
        // Install's preflight runs on every start and is never journaled.
        let next_step = journal.next_step(order);
        runs.push(UnfinishedRun {
            id,
            command: command.to_string(),
            bundle: journal.bundle,
            bundle_digest: journal.bundle_digest,
            started_at: journal.started_at,
            kind: journal.kind,
            from_version: journal.from_version,
            done: journal.done,
            next_step,
            bundle_file: journal.file.map(|f| f.path),
            abandon: String::new(),
        });
    }
    runs.sort_by(|a, b| (&a.started_at, &a.id).cmp(&(&b.started_at, &b.id)));
    // NAME@VERSION names a run unless another run has the same (a bundle
    // rebuilt under the same version): then the start of its digest does.
    let names: Vec<String> = runs.iter().map(|r| r.bundle.clone()).collect();
    for r in &mut runs {
        let unique = names.iter().filter(|n| **n == r.bundle).count() == 1;
        let id = if unique && !r.bundle.is_empty() {
            r.bundle.clone()
        } else {
            r.id.chars().take(SHORT_ID).collect()
        };
        r.abandon = format!("airgap-install abandon {id}");
    }
    Ok(runs)
}

/// The unfinished runs for people; empty when there are none.
pub fn unfinished_text(runs: &[UnfinishedRun]) -> String {
    if runs.is_empty() {
        return String::new();
    }
    let mut s = String::from("unfinished runs:\n");
    for r in runs {
        let what = match (&r.kind, &r.from_version) {
            (Some(k), Some(v)) => format!("{} from {}", k.as_str(), e(v)),
            (Some(k), None) => k.as_str().to_string(),
            _ => "install".into(),
        };
        s.push_str(&format!(
            "  {}  {}  {what}, started {}\n",
            e(&r.bundle),
            e(&r.bundle_digest),
            e(&r.started_at)
        ));
        s.push_str(&format!(
            "    done: {}; next: {}\n",
            if r.done.is_empty() {
                "nothing yet".to_string()
            } else {
                done_list(&r.done)
            },
            r.next_step.map_or("the last record", Step::as_str)
        ));
        s.push_str(&format!(
            "    to resume: run the same airgap-install {} command again{}\n",
            r.command,
            match &r.bundle_file {
                Some(f) => format!(" (bundle {})", e(f)),
                None => String::new(),
            }
        ));
        s.push_str(&format!("    to give it up: {}\n", r.abandon));
    }
    s
}

/// Gives up the unfinished run named `which` (`NAME@VERSION`, or the start
/// of its bundle digest, with or without `sha256:`): records `abandoned`
/// in the audit log, then removes its journal. Needs the state folder's
/// lock, so a run still going on cannot be abandoned.
pub fn abandon(state: &State, which: &str) -> Result<UnfinishedRun> {
    let hex = which.strip_prefix("sha256:").unwrap_or(which);
    let by_digest = hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !which.contains('@') && !by_digest {
        return Err(UsageError(format!(
            "{}: expected NAME@VERSION or the start of a bundle digest (4 hex digits or more), as airgap-install status shows them",
            airgap_format::display::quote(which)
        ))
        .into());
    }
    let hex = hex.to_ascii_lowercase();
    let runs = unfinished(state)?;
    let matching: Vec<&UnfinishedRun> = runs
        .iter()
        .filter(|r| r.bundle == which || (by_digest && r.id.starts_with(&hex)))
        .collect();
    let run = match matching.as_slice() {
        [one] => (*one).clone(),
        [] => bail!(
            "no unfinished install run matches {}; airgap-install status lists them",
            airgap_format::display::quote(which)
        ),
        many => bail!(
            "{} matches {} unfinished runs ({}); give more of the bundle digest",
            airgap_format::display::quote(which),
            many.len(),
            many.iter()
                .map(|r| r.id.chars().take(SHORT_ID).collect::<String>())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    state.audit(&AuditRecord {
        time: rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).expect("0")),
        operator: operator(),
        command: "abandon".into(),
        bundle_digest: Some(run.bundle_digest.clone()),
        bundle: Some(run.bundle.clone()),
        step: run.command.clone(),
        outcome: Outcome::Abandoned,
        detail: Some(format!(
            "the run started {} gave up after {}; its journal is removed",
            run.started_at,
            if run.done.is_empty() {
                "no step".to_string()
            } else {
                done_list(&run.done)
            }
        )),
    })?;
    state.remove_journal(&run.id)?;
    Ok(run)
}

/// `verify, license, …`
fn done_list(done: &[Step]) -> String {
    done.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::journal::Journal;

    fn journal(state: &State, hex: &str, bundle: &str, done: &[Step]) {
        state
            .write_journal(
                hex,
                &Journal {
                    bundle_digest: format!("sha256:{hex}"),
                    bundle: bundle.into(),
                    started_at: "2026-11-22T10:00:00Z".into(),
                    done: done.to_vec(),
                    kind: Some(RunKind::Upgrade),
                    from_version: Some("1.0.0".into()),
                    ..Journal::default()
                },
            )
            .unwrap();
    }

    #[test]
    fn runs_are_listed_and_abandoned_by_name_or_digest() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let a = "a".repeat(64);
        let b = format!("ab{}", "0".repeat(62));
        let c = "c".repeat(64);
        journal(&state, &a, "demo@1.1.0", &[Step::Verify, Step::License]);
        journal(&state, &b, "demo@1.1.0", &[]);
        journal(&state, &c, "other@2.0.0", &[Step::Verify]);
        let runs = unfinished(&state).unwrap();
        assert_eq!(runs.len(), 3);
        assert_eq!(runs[0].next_step, Some(Step::Push));
        assert_eq!(runs[0].abandon, "airgap-install abandon aaaaaaaaaaaa");
        assert_eq!(runs[2].abandon, "airgap-install abandon other@2.0.0");
        let text = unfinished_text(&runs);
        assert!(text.contains("done: verify, license; next: push"), "{text}");
        assert!(text.contains("upgrade from 1.0.0"), "{text}");

        let err = abandon(&state, "demo@1.1.0").unwrap_err().to_string();
        assert!(err.contains("matches 2 unfinished runs"), "{err}");
        let err = abandon(&state, "a").unwrap_err();
        assert!(err.is::<UsageError>(), "{err}");
        assert!(abandon(&state, "sha256:aaaa").is_ok());
        assert!(abandon(&state, "other@2.0.0").is_ok());
        let err = abandon(&state, "other@2.0.0").unwrap_err().to_string();
        assert!(err.contains("no unfinished install run matches"), "{err}");
        let left = unfinished(&state).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].abandon, "airgap-install abandon demo@1.1.0");
        let log = state.audit_log().unwrap();
        assert_eq!(log.len(), 2);
        assert_eq!(log[0].outcome, Outcome::Abandoned);
        assert_eq!(log[0].command, "abandon");
        assert!(
            log[0]
                .detail
                .as_deref()
                .unwrap()
                .contains("verify, license"),
            "{log:?}"
        );
    }
}
