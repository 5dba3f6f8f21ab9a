//! A recorded, resumable run of `install`, `rollback` or `uninstall`: its
//! journal, its audit records and its step report. Each step's outcome is
//! written to the audit log and the journal before the next step starts.

use std::io::Write;

use airgap_cli::progress::error_line;
use airgap_format::bundle_json::BundleDescriptor;
use airgap_format::display::escape as e;
use anyhow::Result;
use serde::Serialize;
use time::OffsetDateTime;

use super::journal::{Journal, Step};
use crate::state::{operator, rfc3339, AuditRecord, Outcome, State};

/// One step's outcome, as reports and `--json` show it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// The step.
    pub step: Step,
    /// `ok`, `skipped`, `resumed`, `warning` or `failed`.
    pub outcome: Outcome,
    /// One line of detail.
    pub detail: String,
}

/// What a finished step reports: its outcome and one line of detail.
pub trait StepDone {
    /// The outcome recorded.
    fn outcome(&self) -> Outcome;
    /// The line of detail recorded.
    fn detail(&self) -> String;
}

impl StepDone for (Outcome, String) {
    fn outcome(&self) -> Outcome {
        self.0
    }
    fn detail(&self) -> String {
        self.1.clone()
    }
}

/// The command a run belongs to, as the audit log names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `install` (and upgrades).
    Install,
    /// `rollback`.
    Rollback,
    /// `uninstall`.
    Uninstall,
}

impl Command {
    /// The command's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Install => "install",
            Command::Rollback => "rollback",
            Command::Uninstall => "uninstall",
        }
    }
}

/// A recorded, resumable run: its journal (`runs/ID.json`), audit records
/// and step report.
pub struct Run<'s> {
    /// The state folder (locked).
    pub state: &'s State,
    /// The command.
    pub command: Command,
    /// Its steps in order (for `[n/N]`).
    pub order: &'static [Step],
    /// The journal, as last written.
    pub journal: Journal,
    /// The journal's id (`runs/ID.json`).
    pub journal_id: String,
    /// The bundle's digest.
    pub bundle_digest: String,
    /// The bundle, `NAME@VERSION`.
    pub bundle_label: String,
    /// The steps reported so far.
    pub steps: Vec<StepReport>,
    /// Print each step.
    pub progress: bool,
    /// The step under way, for the record of an interruption.
    pub current: std::sync::Arc<std::sync::Mutex<Option<Step>>>,
}

impl<'s> Run<'s> {
    /// A run of `command` with `journal` (as found, or new), not yet
    /// written.
    pub fn new(
        state: &'s State,
        command: Command,
        order: &'static [Step],
        journal: Journal,
        journal_id: String,
        progress: bool,
    ) -> Self {
        Run {
            state,
            command,
            order,
            bundle_digest: journal.bundle_digest.clone(),
            bundle_label: journal.bundle.clone(),
            journal,
            journal_id,
            steps: Vec::new(),
            progress,
            current: Default::default(),
        }
    }

    /// Appends an audit record of this run for `step` (a step, or the
    /// command's own name for the run as a whole).
    pub fn audit_as(&self, step: &str, outcome: Outcome, detail: Option<String>) -> Result<()> {
        self.state.audit(&AuditRecord {
            time: rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).expect("0")),
            operator: operator(),
            command: self.command.as_str().into(),
            bundle_digest: Some(self.bundle_digest.clone()),
            bundle: Some(self.bundle_label.clone()),
            step: step.into(),
            outcome,
            detail,
        })
    }

    /// Appends an audit record of `step`.
    pub fn audit(&self, step: Step, outcome: Outcome, detail: Option<String>) -> Result<()> {
        self.audit_as(step.as_str(), outcome, detail)
    }

    /// Appends an audit record of the run as a whole (`started`, `ok`,
    /// `refused`, …), under the command's name.
    pub fn audit_run(&self, outcome: Outcome, detail: String) -> Result<()> {
        self.audit_as(self.command.as_str(), outcome, Some(detail))
    }

    /// Writes the journal.
    pub fn save_journal(&self) -> Result<()> {
        self.state.write_journal(&self.journal_id, &self.journal)
    }

    /// Whether the journal has `step` finished.
    pub fn done(&self, step: Step) -> bool {
        self.journal.done(step)
    }

    /// Records a finished step: audit log, journal, report line.
    pub fn finish(&mut self, step: Step, outcome: Outcome, detail: String) -> Result<()> {
        self.audit(step, outcome, Some(detail.clone()))?;
        self.journal.mark_done(step);
        self.save_journal()?;
        self.report(step, outcome, detail);
        Ok(())
    }

    /// Adds a line to the report (and prints it with progress).
    pub fn report(&mut self, step: Step, outcome: Outcome, detail: String) {
        if self.progress {
            let n = self
                .order
                .iter()
                .position(|s| *s == step)
                .map_or(0, |i| i + 1);
            // Details carry bundle names and tools' output lines. A
            // reader that went away (`| head`) does not stop the run.
            let _ = writeln!(
                std::io::stdout(),
                "[{n}/{}] {step:<9} {outcome}: {}",
                self.order.len(),
                e(&detail)
            );
        }
        self.steps.push(StepReport {
            step,
            outcome,
            detail,
        });
    }

    /// Records a failure of `step` that stops the run: audit log (the
    /// step's error is the one to report, even when the log cannot take
    /// it) and report.
    pub fn failed(&mut self, step: Step, line: String) {
        if let Err(log) = self.audit(step, Outcome::Failed, Some(line.clone())) {
            tracing::warn!(
                "the failure of step {step} is not in the audit log: {}",
                error_line(log.as_ref())
            );
        }
        self.report(step, Outcome::Failed, line);
    }

    /// Runs `f` as step `step` unless the journal has it; a failure is
    /// logged and stops the run.
    pub fn step<D: StepDone>(
        &mut self,
        step: Step,
        f: impl FnOnce(&mut Self) -> Result<D>,
    ) -> Result<()> {
        if self.done(step) {
            self.report(step, Outcome::Resumed, "done earlier in this run".into());
            return Ok(());
        }
        if let Ok(mut current) = self.current.lock() {
            *current = Some(step);
        }
        match f(self) {
            Ok(done) => self.finish(step, done.outcome(), done.detail()),
            Err(e) => {
                // A step that failed because of a signal (helm killed by
                // the same Ctrl-C) is recorded as interrupted instead.
                airgap_cli::interrupt::wait_if_interrupted();
                self.failed(step, error_line(e.as_ref()));
                Err(e)
            }
        }
    }

    /// Registers the audit record of an interruption (SIGINT, SIGTERM) of
    /// this run: outcome `interrupted`, in the step under way. A run that
    /// already finished (its journal removed) is not recorded as
    /// interrupted.
    pub fn record_interruption(&self) -> airgap_cli::interrupt::OnInterrupt {
        let root = self.state.root().to_path_buf();
        let journal = self.state.journal_path(&self.journal_id);
        let current = self.current.clone();
        let command = self.command.as_str();
        let digest = self.bundle_digest.clone();
        let label = self.bundle_label.clone();
        airgap_cli::interrupt::on_interrupt(move |signal| {
            if !journal.exists() {
                return;
            }
            let step = current
                .lock()
                .ok()
                .and_then(|s| *s)
                .map_or(command, Step::as_str);
            let record = AuditRecord {
                time: rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).expect("0")),
                operator: operator(),
                command: command.into(),
                bundle_digest: Some(digest),
                bundle: Some(label.clone()),
                step: step.into(),
                outcome: Outcome::Interrupted,
                detail: Some(format!(
                    "{} during step {step}; run the same command again to resume, or airgap-install abandon {label} to give the run up",
                    signal.name()
                )),
            };
            // The run holds the state folder's lock; appending needs none.
            let _ = State::open_read_only(&root).audit(&record);
        })
    }
}

/// Logs a refused or failed command that did not get as far as a run.
pub fn audit_failure(
    state: &State,
    command: &str,
    bundle: Option<&BundleDescriptor>,
    digest: Option<String>,
    e: &anyhow::Error,
) {
    let _ = state.audit(&AuditRecord {
        time: rfc3339(OffsetDateTime::now_utc().replace_nanosecond(0).expect("0")),
        operator: operator(),
        command: command.into(),
        bundle_digest: digest,
        bundle: bundle.map(|d| format!("{}@{}", d.name, d.version)),
        step: command.rsplit(' ').next().unwrap_or(command).into(),
        outcome: Outcome::Refused,
        detail: Some(error_line(e.as_ref())),
    });
}

/// The audit log for people: one line per record.
pub fn history_text(records: &[AuditRecord]) -> String {
    let mut s = String::new();
    for r in records {
        s.push_str(&format!(
            "{}  {:<10} {:<18} {:<24} {:<8} {:<8} {}\n",
            e(&r.time),
            e(&r.operator),
            e(&r.command),
            e(r.bundle.as_deref().unwrap_or("-")),
            e(&r.step),
            r.outcome,
            e(r.detail
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or(""))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: [Step; 2] = [Step::Verify, Step::Push];

    fn run(state: &State) -> Run<'_> {
        let journal = Journal {
            bundle_digest: "sha256:ab".into(),
            bundle: "demo@1.0.0".into(),
            ..Journal::default()
        };
        Run::new(state, Command::Install, &ORDER, journal, "ab".into(), false)
    }

    #[test]
    fn finished_steps_are_journaled_and_skipped_when_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(dir.path()).unwrap();
        let mut r = run(&state);
        r.step(Step::Verify, |_| Ok((Outcome::Ok, "checked".to_string())))
            .unwrap();
        let err = r
            .step(Step::Push, |_| -> Result<(Outcome, String)> {
                anyhow::bail!("registry down")
            })
            .unwrap_err();
        assert_eq!(err.to_string(), "registry down");
        let journal = state.journal("ab").unwrap().unwrap();
        assert_eq!(journal.done, [Step::Verify]);

        // Resumed: verify is not run again.
        let mut again = run(&state);
        again.journal = journal;
        again
            .step(Step::Verify, |_| -> Result<(Outcome, String)> {
                panic!("verify ran again")
            })
            .unwrap();
        assert_eq!(again.steps[0].outcome, Outcome::Resumed);
        let report = serde_json::to_string(&again.steps[0]).unwrap();
        assert_eq!(
            report,
            r#"{"step":"verify","outcome":"resumed","detail":"done earlier in this run"}"#
        );

        let log = state.audit_log().unwrap();
        let got: Vec<_> = log
            .iter()
            .map(|r| (r.step.as_str(), r.outcome, r.command.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("verify", Outcome::Ok, "install"),
                ("push", Outcome::Failed, "install")
            ]
        );
        let text = history_text(&log);
        assert!(text.contains(" push     failed   registry down"), "{text}");
    }
}
