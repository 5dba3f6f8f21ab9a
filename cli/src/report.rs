//! What a command prints on success: one value, as text for people or as
//! JSON (`--json`) for programs. A closed standard output (`| head`) ends
//! the output quietly instead of panicking.

use std::io::{self, Write};

use serde::Serialize;

/// A command's result, printable both ways.
pub trait Report: Serialize {
    /// Writes the text form, for a person at a terminal.
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()>;
}

/// Prints `report` to standard output: pretty JSON when `json`, else its
/// text form.
pub fn emit<R: Report + ?Sized>(report: &R, json: bool) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = if json {
        print_json_to(&mut out, report)
    } else {
        report.write_text(&mut out).and_then(|()| out.flush())
    };
    quiet_on_closed_pipe(written)
}

/// Prints any serialisable value as pretty JSON and a newline.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    quiet_on_closed_pipe(print_json_to(&mut out, value))
}

/// Prints plain text (a newline is added) to standard output; a closed pipe
/// ends it quietly, like [`emit`].
pub fn print_text(text: &str) -> anyhow::Result<()> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    quiet_on_closed_pipe(
        out.write_all(text.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush()),
    )
}

/// Made whole first, then written at once: a write error keeps its kind
/// (a closed pipe stays [`io::ErrorKind::BrokenPipe`]), and a line-buffered
/// standard output is not written one line at a time.
fn print_json_to<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    let mut text = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    text.push(b'\n');
    out.write_all(&text)?;
    out.flush()
}

/// A reader that went away is not an error of ours.
fn quiet_on_closed_pipe(r: io::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct R {
        n: u32,
    }
    impl Report for R {
        fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
            writeln!(out, "n = {}", self.n)
        }
    }

    #[test]
    fn both_forms() {
        let mut v = Vec::new();
        R { n: 3 }.write_text(&mut v).unwrap();
        assert_eq!(v, b"n = 3\n");
        let mut v = Vec::new();
        print_json_to(&mut v, &R { n: 3 }).unwrap();
        assert_eq!(String::from_utf8(v).unwrap(), "{\n  \"n\": 3\n}\n");
    }

    #[test]
    fn a_closed_pipe_under_json_is_still_a_closed_pipe() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let e = print_json_to(&mut Closed, &R { n: 3 }).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(quiet_on_closed_pipe(Err(e)).is_ok());
    }

    #[test]
    fn closed_pipe_is_quiet() {
        assert!(quiet_on_closed_pipe(Err(io::ErrorKind::BrokenPipe.into())).is_ok());
        assert!(quiet_on_closed_pipe(Err(io::ErrorKind::Other.into())).is_err());
    }
}
