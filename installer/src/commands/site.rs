//! `airgap-install site check|init`: a site file checked against the site
//! schema of the bundle's product profile, every problem at once; or a
//! starting site file written from that schema.

use std::io::{self, Write};
use std::path::PathBuf;

use airgap_cli::args::{BundleArgs, OutputArgs};
use airgap_cli::report::{emit, print_json, Report};
use airgap_format::display::{count, escape};
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
    /// Write a commented starting site file from the bundle's site schema.
    Init(InitArgs),
}

/// The arguments of `site init`.
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  airgap-install site init /media/usb/platform-1.4.0.bundle --out site.yaml"
)]
struct InitArgs {
    #[command(flatten)]
    bundle: BundleArgs,
    /// Where to write the site file.
    #[arg(long)]
    out: PathBuf,
    /// Replace the file if it exists (a site file is edited by hand: by default it is kept).
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    output: OutputArgs,
}

/// What `site init` wrote.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct InitReport {
    file: String,
    bundle: String,
    schema: String,
    /// Values left to fill in (`CHANGE-ME`, outside comments).
    placeholders: usize,
}

impl Report for InitReport {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "wrote {}: a starting site file for {} ({}); replace its {} {}, then run airgap-install site check",
            self.file, self.bundle, self.schema, self.placeholders, airgap_profile::init::PLACEHOLDER
        )
    }
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
    /// Fields named by an old name the profile renamed: they keep working.
    renamed: Vec<SiteProblem>,
    /// The infrastructure the product requires, as the file describes it
    /// (when it is valid).
    requirements: Vec<airgap_profile::profile::Described>,
}

impl Report for CheckReport {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        for r in &self.renamed {
            // Field paths are the site file's keys: escaped, as on every
            // terminal line.
            writeln!(out, "warning: {}", escape(&format!("{}:{r}", self.file)))?;
        }
        writeln!(
            out,
            "{}: valid against the site schema of {} ({})",
            self.file, self.bundle, self.schema
        )?;
        if !self.requirements.is_empty() {
            writeln!(
                out,
                "infrastructure the product needs, as the file describes it:"
            )?;
            let w = self
                .requirements
                .iter()
                .map(|r| r.kind.len())
                .max()
                .unwrap_or(0);
            let w2 = self
                .requirements
                .iter()
                .map(|r| r.at.chars().count())
                .max()
                .unwrap_or(0);
            for r in &self.requirements {
                writeln!(
                    out,
                    "  {:<w$}  {:<w2$}  {}",
                    r.kind,
                    escape(&r.at),
                    escape(&r.summary)
                )?;
            }
        }
        Ok(())
    }
}

/// Runs the subcommand.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    match args.command {
        Command::Check(a) => check(a, ctx),
        Command::Init(a) => init(a, ctx),
    }
}

/// The bundle's profile, or the error that says it has none.
fn bundle_profile(bundle: &SignedBundle) -> Result<profile::BundleProfile> {
    let d = &bundle.descriptor;
    match profile::read(bundle)? {
        Some(p) => Ok(p),
        None => bail!(
            "{}: bundle {} {} carries no product profile (profile.yaml among its templates), so there is no site schema: it has no templates to render, or an older airgap-bundle built it (ask the vendor to rebuild it; templates.md §8)",
            bundle.path().display(),
            d.name,
            d.version
        ),
    }
}

fn init(args: InitArgs, ctx: &Context) -> Result<()> {
    let json = args.output.json;
    json_failure(json, Some(&args.bundle.file), &[], || {
        let trusted = trust::load_trusted(&args.bundle.trust, &ctx.config_dir)?;
        let bundle = SignedBundle::open(&args.bundle.file, &trusted, Limits::default())?;
        let p = bundle_profile(&bundle)?;
        let d = &bundle.descriptor;
        let title = format!("{} {}", d.name, d.version);
        if !args.force && std::fs::symlink_metadata(&args.out).is_ok() {
            bail!(
                "{}: exists, and a site file is edited by hand; pass --force to replace it, or name another --out",
                args.out.display()
            );
        }
        let text = airgap_profile::init::starting_site(&p.schema_text, &title)
            .map_err(|e| anyhow::anyhow!("template {}: {e}", p.profile.site_schema))?;
        airgap_format::atomic_file::write_file_atomic(&args.out, text.as_bytes(), 0o644)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        emit(
            &InitReport {
                file: args.out.display().to_string(),
                bundle: title,
                schema: p.profile.site_schema,
                placeholders: text
                    .lines()
                    .filter(|l| !l.trim_start().starts_with('#'))
                    .filter(|l| l.contains(airgap_profile::init::PLACEHOLDER))
                    .count(),
            },
            json,
        )
    })
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
        let p = bundle_profile(&bundle)?;
        let (problems, renamed) = profile::check_site_file(&args.site, &p)?;
        let requirements = if problems.is_empty() {
            let site = airgap_install::site::SiteFile::load(&args.site, Some(&p))?;
            p.profile.describe_requirements(&site.value)
        } else {
            Vec::new()
        };
        report = Some(CheckReport {
            ok: problems.is_empty(),
            file: file.clone(),
            bundle: format!("{} {}", d.name, d.version),
            schema: p.profile.site_schema,
            problems,
            renamed,
            requirements,
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
