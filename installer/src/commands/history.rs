//! `airgap-install history`: the audit log.

use airgap_install::{install, state};
use anyhow::Result;

use super::{print_text, Context};

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
    let text = if args.json {
        let mut lines = String::new();
        for r in &records {
            lines += &serde_json::to_string(r)?;
            lines.push('\n');
        }
        lines
    } else {
        install::run::history_text(&records)
    };
    print_text(&text)
}
