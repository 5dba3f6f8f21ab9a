//! Byte progress bars on stderr, shown only when stderr is a terminal;
//! [`run_main`], which runs a command line's body: logging, the `error:`
//! line, exit statuses, interruptions.

use std::io::IsTerminal;
use std::sync::{Mutex, OnceLock};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle, WeakProgressBar};

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

/// Every bar made so far (dropped ones no longer upgrade), and the live
/// groups: what [`clear_all`] clears.
struct Live {
    bars: Vec<WeakProgressBar>,
    groups: Vec<(u64, MultiProgress)>,
    next_group: u64,
}

fn live() -> std::sync::MutexGuard<'static, Live> {
    static LIVE: OnceLock<Mutex<Live>> = OnceLock::new();
    LIVE.get_or_init(|| {
        Mutex::new(Live {
            bars: Vec::new(),
            groups: Vec::new(),
            next_group: 0,
        })
    })
    .lock()
    .unwrap_or_else(|e| e.into_inner())
}

/// Clears every progress bar from the terminal and draws none after that
/// (the command is being interrupted).
pub fn clear_all() {
    let mut live = live();
    for bar in live.bars.drain(..).filter_map(|w| w.upgrade()) {
        bar.finish_and_clear();
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    for (_, group) in live.groups.drain(..) {
        let _ = group.clear();
        group.set_draw_target(ProgressDrawTarget::hidden());
    }
}

fn styled(bar: ProgressBar, label: &str) -> Progress {
    {
        let mut live = live();
        live.bars.retain(|w| w.upgrade().is_some());
        live.bars.push(bar.downgrade());
    }
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
    multi: MultiProgress,
    id: u64,
}

impl ProgressGroup {
    /// A group drawn only when `visible` and stderr is a terminal.
    pub fn new(visible: bool) -> Self {
        let multi = MultiProgress::with_draw_target(target(visible));
        let mut live = live();
        let id = live.next_group;
        live.next_group += 1;
        live.groups.push((id, multi.clone()));
        ProgressGroup { multi, id }
    }

    /// Adds a bar for `total` bytes labelled `label`.
    pub fn add(&self, total: u64, label: &str) -> Progress {
        styled(self.multi.add(ProgressBar::new(total)), label)
    }
}

impl Drop for ProgressGroup {
    fn drop(&mut self) {
        live().groups.retain(|(id, _)| *id != self.id);
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

/// Exit status of a command-line usage error: clap's own, and
/// [`UsageError`]'s.
pub const EXIT_USAGE: u8 = 2;

/// A usage problem the program finds itself (a malformed option value,
/// options that do not fit together): [`run_main`] exits with status 2
/// for it, as for the usage errors the parser finds.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Whether `e` or one of its causes is a [`UsageError`].
pub fn is_usage_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<UsageError>())
}

/// Whether to colour what goes to stderr: it is a terminal, `NO_COLOR` is
/// unset or empty (<https://no-color.org>), and `TERM` is not `dumb`.
pub fn stderr_color() -> bool {
    color_wanted(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("TERM").as_deref(),
    )
}

fn color_wanted(
    terminal: bool,
    no_color: Option<&std::ffi::OsStr>,
    term: Option<&std::ffi::OsStr>,
) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

/// `word` in bold colour `sgr` (an ANSI SGR colour code) when `color`.
fn paint(word: &str, sgr: &str, color: bool) -> String {
    if color {
        format!("\x1b[1;{sgr}m{word}\x1b[0m")
    } else {
        word.to_string()
    }
}

/// Runs a command-line program's body: logs to stderr (`RUST_LOG`,
/// default warn), and on error prints one `error: …` line and exits with
/// status 1 (2 for a [`UsageError`]). SIGINT and SIGTERM end it as
/// [`crate::interrupt`] says.
///
/// On a terminal a log line is `warning: MESSAGE`, its level word in
/// colour unless `NO_COLOR` is set; elsewhere (a pipe, a file, a service's
/// journal) it keeps its time and module: `2026-…Z  WARN module: MESSAGE`.
pub fn run_main(run: impl FnOnce() -> anyhow::Result<()>) -> std::process::ExitCode {
    crate::interrupt::install();
    let color = stderr_color();
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    // Log lines carry untrusted names: they are escaped like every other
    // line (so no colour codes from them either).
    if std::io::stderr().is_terminal() {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .event_format(TerminalFormat { color })
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_writer(|| EscapedLog(std::io::stderr()))
            .with_ansi(false)
            .with_env_filter(filter)
            .init();
    }
    let result = run();
    // A failure the signal caused (a child killed by the same Ctrl-C), or
    // an end that came with it, is the signal thread's to report.
    crate::interrupt::wait_if_interrupted();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "{}: {}",
                paint("error", "31", color),
                error_line(e.as_ref())
            );
            if is_usage_error(&e) {
                std::process::ExitCode::from(EXIT_USAGE)
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// Log lines for a terminal: `LEVEL: MESSAGE FIELDS`, no time, no module;
/// the message and fields escaped, the level word coloured when `color`.
struct TerminalFormat {
    color: bool,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for TerminalFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::FormatFields as _;
        let mut body = String::new();
        ctx.format_fields(
            tracing_subscriber::fmt::format::Writer::new(&mut body),
            event,
        )?;
        writeln!(
            writer,
            "{}: {}",
            level_word(*event.metadata().level(), self.color),
            airgap_format::display::Escaped(&body)
        )
    }
}

/// `warning`, `error`, … for a log level, coloured when `color`.
fn level_word(level: tracing::Level, color: bool) -> String {
    let (word, sgr) = match level {
        tracing::Level::ERROR => ("error", "31"),
        tracing::Level::WARN => ("warning", "33"),
        tracing::Level::INFO => ("info", "32"),
        tracing::Level::DEBUG => ("debug", "34"),
        tracing::Level::TRACE => ("trace", "35"),
    };
    paint(word, sgr, color)
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
        write!(self.0, "{}{end}", airgap_format::display::Escaped(body))?;
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
    airgap_format::display::one_line(&out.replace(['\n', '\r'], " "), MAX_ERROR_LINE)
}

/// Longest error line printed, in bytes: a longer one keeps its start and
/// its end (where the fix is named).
pub const MAX_ERROR_LINE: usize = 2000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        let xterm = Some(OsStr::new("xterm-256color"));
        assert!(color_wanted(true, None, xterm));
        assert!(color_wanted(true, Some(OsStr::new("")), xterm));
        assert!(!color_wanted(true, Some(OsStr::new("1")), xterm));
        assert!(!color_wanted(false, None, xterm));
        assert!(!color_wanted(true, None, Some(OsStr::new("dumb"))));
        assert_eq!(level_word(tracing::Level::WARN, false), "warning");
        assert_eq!(
            level_word(tracing::Level::WARN, true),
            "\x1b[1;33mwarning\x1b[0m"
        );
    }

    #[test]
    fn usage_errors_are_found_under_context() {
        let e = anyhow::Error::new(UsageError("--x: expected Y".into()));
        assert!(is_usage_error(&e));
        assert!(is_usage_error(&e.context("parsing")));
        assert!(!is_usage_error(&anyhow::anyhow!("plain")));
    }

    #[test]
    fn interrupted_bars_are_cleared() {
        let bar = Progress::bytes(10, "x", false);
        let group = ProgressGroup::new(false);
        let member = group.add(5, "y");
        clear_all();
        assert!(bar.bar.is_finished());
        assert!(member.bar.is_finished());
        assert!(live().groups.is_empty());
    }

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
