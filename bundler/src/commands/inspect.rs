//! `airgap-bundle inspect FILE`: a bundle's summary from its head.

use std::io::{self, Write};
use std::path::PathBuf;

use airgap_cli::args::OutputArgs;
use airgap_cli::report::{emit, Report};
use airgap_format::inspect::InspectReport;
use anyhow::Result;
use serde::Serialize;

/// Arguments of `inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle.
    file: PathBuf,
    #[command(flatten)]
    output: OutputArgs,
}

/// The summary, printed as [`InspectReport::to_output`] prints it.
#[derive(Serialize)]
#[serde(transparent)]
struct Inspected(InspectReport);

impl Report for Inspected {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.0.render_text().as_bytes())
    }
}

/// Reads the bundle's head and prints its summary (no verification).
pub fn run(args: Args) -> Result<()> {
    let report = airgap_format::inspect::inspect(&args.file)?;
    emit(&Inspected(report), args.output.json)
}
