//! `airgap-install version`: this program's version and build.

use airgap_cli::args::OutputArgs;
use anyhow::Result;

use super::Context;

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
    if args.output.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else if args.verbose {
        print!("{}", info.to_text());
    } else {
        println!("airgap-install {}", info.version);
    }
    Ok(())
}
