//! `airgap-install status`: what is installed, and the unfinished install
//! runs.

use airgap_cli::args::OutputArgs;
use airgap_install::{install, runs, state};
use anyhow::Result;

use super::Context;

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
        let status = serde_json::json!({
            "installed": records,
            "unfinished": unfinished,
        });
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", install::records::status_text(&records));
        print!("{}", runs::unfinished_text(&unfinished));
    }
    Ok(())
}
