//! `airgap-install render`: the site's configuration rendered from the
//! bundle's templates (values per release, install-plan.sh, plan.json).

use std::path::PathBuf;

use airgap_install::trust;
use anyhow::Result;

use super::{json_failure, Context};

/// The arguments of `render`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle.
    file: PathBuf,
    /// The site file (site.yaml).
    #[arg(long)]
    site: PathBuf,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// The relocation map written by push (charts then install from the internal registry).
    #[arg(long)]
    relocation: Option<PathBuf>,
    /// A trusted public key (minisign format); repeatable.
    #[arg(long)]
    trust: Vec<PathBuf>,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

/// Renders into the output folder and prints the plan.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    let Args {
        file,
        site,
        out,
        relocation,
        trust: keys,
        json,
    } = args;
    json_failure(json, Some(file.as_path()), &[], || {
        let trusted = trust::load_trusted(&keys, &ctx.config_dir)?;
        let site = airgap_install::site::SiteFile::load(&site)?;
        let license = airgap_install::license::active_text(&ctx.state_dir)?;
        let options = airgap_install::render::RenderOptions {
            site: &site,
            out: &out,
            relocation: relocation.as_deref(),
            license: license.as_deref(),
        };
        let plan = airgap_install::render::render(&file, &trusted, &options)?;
        if json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else {
            print!("{}", plan.to_text(&out));
        }
        Ok(())
    })
}
