//! `airgap-bundle lock MANIFEST`: pins registry images and remote charts.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use airgap_bundle::lock::LockFile;
use airgap_bundle::lock_command::lock_manifest;
use airgap_cli::args::OutputArgs;
use airgap_cli::report::{emit, Report};
use anyhow::Result;
use serde::Serialize;

use super::pull_args::PullArgs;

/// Arguments of `lock`.
#[derive(clap::Args)]
pub struct Args {
    /// The bundle manifest (YAML).
    manifest: PathBuf,
    /// Lock file to write (default: NAME.lock.json beside the manifest).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    pull: PullArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// The lock written: as JSON the lock file's content, as text each pin and
/// where the file went.
#[derive(Serialize)]
#[serde(transparent)]
struct Locked<'a> {
    #[serde(skip)]
    path: &'a Path,
    lock: &'a LockFile,
}

impl Report for Locked<'_> {
    fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let lock = self.lock;
        for i in &lock.images {
            writeln!(out, "{}\n    {}", i.source, i.resolved)?;
        }
        for c in &lock.charts {
            let name = c
                .chart
                .as_deref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            writeln!(out, "{}{name} {}\n    {}", c.source, c.version, c.digest)?;
        }
        writeln!(
            out,
            "wrote {} ({}, {} pinned)",
            self.path.display(),
            airgap_format::display::count(lock.images.len() as u64, "image"),
            airgap_format::display::count(lock.charts.len() as u64, "chart")
        )
    }
}

/// Resolves the manifest's sources, writes the lock file and prints it.
pub fn run(args: Args) -> Result<()> {
    let (path, lock) = lock_manifest(&args.manifest, args.out.as_deref(), args.pull.options()?)?;
    emit(
        &Locked {
            path: &path,
            lock: &lock,
        },
        args.output.json,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_each_pin_and_the_file() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let lock: LockFile = serde_json::from_value(serde_json::json!({
            "lockVersion": 1,
            "images": [{"source": "nginx:1.25", "resolved": format!("docker.io/library/nginx:1.25@{d}"),
                        "digest": d, "mediaType": "application/vnd.oci.image.index.v1+json", "size": 10}],
            "charts": [{"source": "https://charts.example", "chart": "web", "version": "1.0.0", "digest": d},
                       {"source": "oci://r.example/charts/db", "version": "2.0.0", "digest": d}],
        }))
        .unwrap();
        let locked = Locked {
            path: Path::new("m.lock.json"),
            lock: &lock,
        };
        let mut text = Vec::new();
        locked.write_text(&mut text).unwrap();
        assert_eq!(
            String::from_utf8(text).unwrap(),
            format!(
                "nginx:1.25\n    docker.io/library/nginx:1.25@{d}\n\
                 https://charts.example web 1.0.0\n    {d}\n\
                 oci://r.example/charts/db 2.0.0\n    {d}\n\
                 wrote m.lock.json (1 image, 2 charts pinned)\n"
            )
        );
        // The JSON is the lock file's alone.
        assert_eq!(
            serde_json::to_value(&locked).unwrap(),
            serde_json::to_value(&lock).unwrap()
        );
    }
}
