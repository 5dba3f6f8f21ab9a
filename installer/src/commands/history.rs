//! `airgap-install history`: the audit log.

use airgap_install::{install, state};
use anyhow::Result;

use super::Context;

/// The arguments of `history`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON lines as stored.
    #[arg(long)]
    json: bool,
}

/// Prints the audit log, as a table or as JSON lines.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let records = state::State::open_read_only(&ctx.state_dir).audit_log()?;
    if args.json {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print!("{}", install::run::history_text(&records));
    }
    Ok(())
}
