//! Byte progress bars on stderr, shown only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-count progress bar; hidden when stderr is not a terminal or when
/// output is machine-readable.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar for `total` bytes labelled `label`; drawn only when `visible`
    /// and stderr is a terminal.
    pub fn bytes(total: u64, label: &str, visible: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(total),
            if visible && std::io::stderr().is_terminal() {
                ProgressDrawTarget::stderr()
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(label.to_string());
        Progress { bar }
    }

    /// Adds `n` bytes.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Runs a command-line program's body: logs to stderr (`RUST_LOG`, default
/// warn), and on error prints one `error: …` line and exits with status 1.
pub fn run_main<E>(run: impl FnOnce() -> Result<(), E>) -> std::process::ExitCode
where
    E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let e: Box<dyn std::error::Error + Send + Sync> = e.into();
            eprintln!("error: {}", error_line(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Formats an error and its causes on one line, skipping a cause whose text
/// is already part of the line (errors that embed their source).
pub fn error_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !out.contains(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
        cur = err.source();
    }
    out.replace(['\n', '\r'], " ")
}
