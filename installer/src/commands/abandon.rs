//! `airgap-install abandon`: an unfinished install run given up, recorded
//! in the audit log, its journal removed.

use airgap_format::display::escape as e;
use airgap_install::{runs, state};
use anyhow::Result;

use super::{print_text, Context};

/// The arguments of `abandon`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  airgap-install abandon demo@1.1.0\n  airgap-install abandon 0ec365e162ca"
)]
pub struct Args {
    /// The run: its bundle as NAME@VERSION, or the start of its bundle digest (as `status` shows).
    run: String,
}

/// Abandons the run and says so.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let state = state::State::open(&ctx.state_dir)?;
    let r = runs::abandon(&state, &args.run)?;
    print_text(&format!(
        "abandoned the unfinished run of {} ({}); its journal is removed, and the audit log records it\n",
        e(&r.bundle),
        r.bundle_digest
    ))
}
