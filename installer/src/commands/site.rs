//! `airgap-install site check`: a site file checked against the site
//! schema of the bundle's product profile, every problem at once.

use std::io::{self, Write};
use std::path::PathBuf;

use airgap_cli::args::{BundleArgs, OutputArgs};
use airgap_cli::report::{emit, print_json, Report};
use airgap_format::display::count;
use airgap_format::{Limits, SignedBundle};
use airgap_install::profile::{self, SiteProblem};
use airgap_install::trust;
use anyhow::{bail, Result};

use super::{json_failure, Context};

/// The arguments of `site`: one of its subcommands.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Check a site file against the site schema the bundle's product profile carries; list every problem.
    Check(CheckArgs),
}

/// The arguments of `site check`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  airgap-install site check /media/usb/platform-1.4.0.bundle --site site.yaml"
)]
struct CheckArgs {
    #[command(flatten)]
    bundle: BundleArgs,
    /// The site file (site.yaml).
    #[arg(long)]
    site: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

/// What `site check` found.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CheckReport {
    ok: bool,
    file: String,
    bundle: String,
    schema: String,
    problems: Vec<SiteProblem>,
}

impl Report for CheckReport {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "{}: valid against the site schema of {} ({})",
            self.file, self.bundle, self.schema
        )
    }
}

/// Runs the subcommand.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    match args.command {
        Command::Check(a) => check(a, ctx),
    }
}

fn check(args: CheckArgs, ctx: &Context) -> Result<()> {
    let json = args.output.json;
    let file = args.site.display().to_string();
    // Failing to open or read the bundle is a failure of the command (a
    // JSON failure with --json); problems of the site file are its report.
    let mut report = None;
    json_failure(json, Some(&args.bundle.file), &[], || {
        let trusted = trust::load_trusted(&args.bundle.trust, &ctx.config_dir)?;
        let bundle = SignedBundle::open(&args.bundle.file, &trusted, Limits::default())?;
        let d = &bundle.descriptor;
        let Some(p) = profile::read(&bundle)? else {
            bail!(
                "{}: bundle {} {} carries no product profile (profile.yaml among its templates), so there is no schema to check against; render and install check its site files with the installer's built-in model, or ask the vendor for a bundle with a profile (templates.md §8)",
                args.bundle.file.display(),
                d.name,
                d.version
            );
        };
        let problems = profile::check_site_file(&args.site, &p.schema)?;
        report = Some(CheckReport {
            ok: problems.is_empty(),
            file: file.clone(),
            bundle: format!("{} {}", d.name, d.version),
            schema: p.profile.site_schema,
            problems,
        });
        Ok(())
    })?;
    let report = report.expect("set when the check ran");
    if report.ok {
        return emit(&report, json);
    }
    if json {
        print_json(&report)?;
    }
    let listed: Vec<String> = report
        .problems
        .iter()
        .enumerate()
        .map(|(i, pr)| format!("({}) {file}:{pr}", i + 1))
        .collect();
    bail!(
        "{file}: {} against the site schema of {}: {}",
        count(report.problems.len() as u64, "problem"),
        report.bundle,
        listed.join(" ")
    )
}
