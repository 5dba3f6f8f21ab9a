//! SIGINT and SIGTERM: what a command does when it is interrupted.
//!
//! [`install`] (called by [`crate::progress::run_main`]) starts a thread
//! that waits for either signal. When one arrives it clears the progress
//! bars, prints `interrupted; run the same command again to resume` on
//! stderr, runs the clean-up hooks the command registered with
//! [`on_interrupt`] (newest first: remove a partial file, write an audit
//! record), and exits with status 128 + the signal's number (130 for
//! SIGINT, 143 for SIGTERM). A second signal during the clean-up ends the
//! process at once, with the same status.
//!
//! The hooks run on the signal thread while the command's own threads go
//! on; a thread that fails because of the signal (a child process killed
//! by the same Ctrl-C) calls [`wait_if_interrupted`] so that it does not
//! report that failure or exit first.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The message printed when a command is interrupted.
pub const MESSAGE: &str = "interrupted; run the same command again to resume";

/// A signal that interrupts a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Int,
    /// SIGTERM (`kill`, a service manager stopping the command).
    Term,
}

impl Signal {
    /// The signal's name, `SIGINT` or `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        }
    }

    /// The signal's number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Int => libc::SIGINT,
            Signal::Term => libc::SIGTERM,
        }
    }

    /// The exit status of a command it interrupted: 128 + its number.
    pub fn exit_code(self) -> i32 {
        128 + self.number()
    }

    fn from_number(n: i32) -> Option<Signal> {
        match n {
            libc::SIGINT => Some(Signal::Int),
            libc::SIGTERM => Some(Signal::Term),
            _ => None,
        }
    }
}

type Hook = Box<dyn FnOnce(Signal) + Send>;

/// The registered hooks, by id, oldest first.
fn hooks() -> &'static Mutex<Vec<(u64, Hook)>> {
    static HOOKS: OnceLock<Mutex<Vec<(u64, Hook)>>> = OnceLock::new();
    HOOKS.get_or_init(|| Mutex::new(Vec::new()))
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Set (in the signal handler itself) as soon as a signal arrives.
fn flag() -> &'static Arc<AtomicBool> {
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

/// A registered clean-up hook; dropping it unregisters the hook.
#[must_use = "the hook is unregistered when this is dropped"]
pub struct OnInterrupt {
    id: u64,
}

impl Drop for OnInterrupt {
    fn drop(&mut self) {
        let mut h = hooks().lock().unwrap_or_else(|e| e.into_inner());
        h.retain(|(id, _)| *id != self.id);
    }
}

/// Registers `hook` to run if the command is interrupted while the
/// returned guard lives. Hooks run on the signal thread, newest first,
/// while other threads go on: a hook must not wait for anything those
/// threads hold for long.
pub fn on_interrupt(hook: impl FnOnce(Signal) + Send + 'static) -> OnInterrupt {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    hooks()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((id, Box::new(hook)));
    OnInterrupt { id }
}

/// Removes `path` (a file, or a folder and what it holds) if the command
/// is interrupted while the guard lives.
pub fn remove_on_interrupt(path: std::path::PathBuf) -> OnInterrupt {
    on_interrupt(move |_| {
        let _ = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(_) => Ok(()),
        };
    })
}

/// Whether a signal has arrived.
pub fn interrupted() -> bool {
    flag().load(Ordering::SeqCst)
}

/// When a signal has arrived, waits for the signal thread to end the
/// process (it never returns then); otherwise returns at once. For a
/// thread whose failure may be the signal's doing.
pub fn wait_if_interrupted() {
    if interrupted() {
        loop {
            std::thread::park();
        }
    }
}

/// Runs the hooks registered so far, newest first, and forgets them.
pub fn run_hooks(signal: Signal) {
    let taken = std::mem::take(&mut *hooks().lock().unwrap_or_else(|e| e.into_inner()));
    for (_, hook) in taken.into_iter().rev() {
        // One failing hook must not keep the others from running.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(signal)));
    }
}

/// Installs the handler for SIGINT and SIGTERM (see the module
/// documentation). Later calls do nothing. When the handler cannot be
/// installed, the signals keep their default action.
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if let Err(e) = register() {
            tracing::debug!("no handler for SIGINT and SIGTERM: {e}");
        }
    });
}

fn register() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        // The second signal ends the process at once: registered before
        // the flag, so the first one finds it unset.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, flag().clone())?;
        signal_hook::flag::register(sig, flag().clone())?;
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().find_map(Signal::from_number) {
                crate::progress::clear_all();
                eprintln!("{MESSAGE}");
                run_hooks(signal);
                std::process::exit(signal.exit_code());
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_run_newest_first_once_and_dropped_ones_do_not() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let add = |name: &'static str| {
            let seen = seen.clone();
            on_interrupt(move |s| seen.lock().unwrap().push((name, s)))
        };
        let _a = add("a");
        let b = add("b");
        let _c = add("c");
        drop(b);
        let dir = tempfile::tempdir().unwrap();
        let partial = dir.path().join("x.partial");
        std::fs::write(&partial, b"x").unwrap();
        let _p = remove_on_interrupt(partial.clone());
        run_hooks(Signal::Term);
        run_hooks(Signal::Term);
        assert_eq!(
            *seen.lock().unwrap(),
            [("c", Signal::Term), ("a", Signal::Term)]
        );
        assert!(!partial.exists());
        assert_eq!(Signal::Int.exit_code(), 130);
        assert_eq!(Signal::Term.exit_code(), 143);
    }
}
