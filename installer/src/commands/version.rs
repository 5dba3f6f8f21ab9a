//! `airgap-install version`: this program's version and build.

use airgap_cli::args::OutputArgs;
use anyhow::Result;

use super::{show, Context};

/// The arguments of `version`.
#[derive(clap::Args)]
pub struct Args {
    /// Also the commit, target, compiler and build date.
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// Prints the version, or with `--verbose` the whole build description.
pub fn run(args: Args, _ctx: &Context) -> Result<()> {
    let info = airgap_install::self_check::build_info();
    show(&info, args.output.json, |i| {
        if args.verbose {
            i.to_text()
        } else {
            format!("airgap-install {}\n", i.version)
        }
    })
}
