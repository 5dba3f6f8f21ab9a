//! `airgap-install version`: this program's version and build.

use anyhow::Result;

use super::Context;

/// The arguments of `version`.
#[derive(clap::Args)]
pub struct Args {
    /// Also the commit, target, compiler and build date.
    #[arg(long)]
    verbose: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Prints the version, or with `--verbose` the whole build description.
pub fn run(args: Args, _ctx: &Context) -> Result<()> {
    let info = airgap_install::self_check::build_info();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else if args.verbose {
        print!("{}", info.to_text());
    } else {
        println!("airgap-install {}", info.version);
    }
    Ok(())
}
