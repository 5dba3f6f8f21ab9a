//! Byte progress bars on stderr, shown only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-count progress bar; hidden when stderr is not a terminal or when
/// output is machine-readable.
#[derive(Clone)]
pub struct Progress {
    bar: ProgressBar,
}

fn target(visible: bool) -> ProgressDrawTarget {
    if visible && std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

fn styled(bar: ProgressBar, label: &str) -> Progress {
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>24} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    Progress { bar }
}

/// Several bars drawn together (one per item and an overall one).
pub struct ProgressGroup {
    multi: indicatif::MultiProgress,
}

impl ProgressGroup {
    /// A group drawn only when `visible` and stderr is a terminal.
    pub fn new(visible: bool) -> Self {
        ProgressGroup {
            multi: indicatif::MultiProgress::with_draw_target(target(visible)),
        }
    }

    /// Adds a bar for `total` bytes labelled `label`.
    pub fn add(&self, total: u64, label: &str) -> Progress {
        styled(self.multi.add(ProgressBar::new(total)), label)
    }
}

impl Progress {
    /// A bar for `total` bytes labelled `label`; drawn only when `visible`
    /// and stderr is a terminal.
    pub fn bytes(total: u64, label: &str, visible: bool) -> Self {
        styled(
            ProgressBar::with_draw_target(Some(total), target(visible)),
            label,
        )
    }

    /// Adds `n` bytes.
    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// The work turned out `n` bytes larger than the total it began with.
    pub fn grow(&self, n: u64) {
        self.bar.inc_length(n);
    }

    /// Bytes done so far, and the total.
    pub fn counts(&self) -> (u64, u64) {
        (self.bar.position(), self.bar.length().unwrap_or(0))
    }

    /// Removes the bar.
    pub fn finish(&self) {
        let (done, total) = self.counts();
        tracing::debug!(done, total, "progress at the end");
        self.bar.finish_and_clear();
    }
}

/// Runs a command-line program's body: logs to stderr (`RUST_LOG`, default
/// warn), and on error prints one `error: …` line and exits with status 1.
pub fn run_main<E>(run: impl FnOnce() -> Result<(), E>) -> std::process::ExitCode
where
    E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    // Log lines carry untrusted names: they are escaped like every other
    // line (so no colour codes either).
    tracing_subscriber::fmt()
        .with_writer(|| EscapedLog(std::io::stderr()))
        .with_ansi(false)
        .with_env_filter(log_filter(std::env::var("RUST_LOG").ok().as_deref()))
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

/// A log writer that escapes what a terminal would act on, except the
/// line break that ends each event (`tracing` writes one event per call).
struct EscapedLog<W>(W);

impl<W: std::io::Write> std::io::Write for EscapedLog<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, end) = match text.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (&*text, ""),
        };
        write!(self.0, "{}{end}", crate::display::Escaped(body))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Crates whose logs carry the values they handle (a template engine logs
/// the secrets it renders): never logged, whatever `RUST_LOG` says.
const SILENCED: &[&str] = &["handlebars"];

/// The log filter: `RUST_LOG` (default `warn`) with [`SILENCED`] crates off.
pub fn log_filter(rust_log: Option<&str>) -> tracing_subscriber::EnvFilter {
    let mut directives: Vec<String> = rust_log
        .unwrap_or("warn")
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !SILENCED.iter().any(|c| d.starts_with(c)))
        .map(str::to_string)
        .collect();
    if directives.is_empty() {
        directives.push("warn".into());
    }
    directives.extend(SILENCED.iter().map(|c| format!("{c}=off")));
    tracing_subscriber::EnvFilter::try_new(directives.join(","))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,handlebars=off"))
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
    // Line breaks become spaces (several messages list things on lines of
    // their own); every other control is escaped.
    crate::display::one_line(&out.replace(['\n', '\r'], " "), MAX_ERROR_LINE)
}

/// Longest error line printed, in bytes: a longer one keeps its start and
/// its end (where the fix is named).
pub const MAX_ERROR_LINE: usize = 2000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_engine_logs_stay_off() {
        for rust_log in [
            None,
            Some("debug"),
            Some("trace,handlebars=trace"),
            Some(""),
        ] {
            let f = log_filter(rust_log).to_string();
            assert!(f.contains("handlebars=off"), "{f}");
            assert!(!f.contains("handlebars=trace"), "{f}");
        }
    }
}
