//! `airgap-install status`: what is installed, and the unfinished install
//! runs.

use airgap_cli::args::OutputArgs;
use airgap_cli::report::print_json;
use airgap_install::{install, runs, state};
use anyhow::Result;

use super::{print_text, Context};

/// The arguments of `status`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    output: OutputArgs,
}

/// Prints the install records and the unfinished runs.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let state = state::State::open_read_only(&ctx.state_dir);
    let records = state.install_records()?;
    let unfinished = runs::unfinished(&state)?;
    if args.output.json {
        // Through a JSON value, whose keys are sorted, as before.
        print_json(&serde_json::json!({
            "installed": records,
            "unfinished": unfinished,
        }))
    } else {
        print_text(&format!(
            "{}{}",
            install::records::status_text(&records),
            runs::unfinished_text(&unfinished)
        ))
    }
}
