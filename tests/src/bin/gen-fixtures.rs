//! `gen-fixtures`: writes deterministic image fixtures.
//!
//! ```text
//! gen-fixtures demo OUT_DIR
//! gen-fixtures reference OUT_DIR
//! gen-fixtures bench-layout OUT_DIR --size BYTES --layers N [--seed S] [--ref REF]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use airgap_e2e::fixtures::{write_demo, write_gzip_layout_streaming, write_reference, BENCH_REF};
use anyhow::{bail, Context, Result};

const USAGE: &str = "\
usage:
  gen-fixtures demo OUT_DIR
      OUT_DIR/images/web-oci/          OCI layout, demo/web:1.0.0 (linux/amd64 + linux/arm64)
      OUT_DIR/images/worker-docker.tar docker save (legacy), demo/worker:1.0.0
  gen-fixtures reference OUT_DIR
      OUT_DIR/images/platform-oci/     OCI layout, vendor/{control-plane,workspace-server,dashboard}:1.4.0
  gen-fixtures bench-layout OUT_DIR --size BYTES --layers N [--seed S] [--ref REF]
      OCI layout with one image (default ref bench/big:1.0) of N gzip layers holding
      BYTES of random data in all. BYTES takes K/M/G (KiB/MiB/GiB) suffixes.
      Build with --release for large sizes.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-fixtures: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("demo") => {
            let [_, out] = args else {
                bail!("demo takes exactly one argument\n{USAGE}")
            };
            let demo = write_demo(&PathBuf::from(out))?;
            println!("wrote {}", demo.web_oci_dir.display());
            println!("wrote {}", demo.worker_docker_tar.display());
            Ok(())
        }
        Some("reference") => {
            let [_, out] = args else {
                bail!("reference takes exactly one argument\n{USAGE}")
            };
            println!("wrote {}", write_reference(&PathBuf::from(out))?.display());
            Ok(())
        }
        Some("bench-layout") => bench_layout(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("unknown or missing subcommand\n{USAGE}"),
    }
}

fn bench_layout(args: &[String]) -> Result<()> {
    let mut out: Option<PathBuf> = None;
    let mut size: Option<u64> = None;
    let mut layers: Option<usize> = None;
    let mut seed: u64 = 1;
    let mut reference = BENCH_REF.to_string();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--size" => size = Some(parse_size(&value("--size")?)?),
            "--layers" => {
                layers = Some(
                    value("--layers")?
                        .parse()
                        .context("--layers: not a number")?,
                )
            }
            "--seed" => seed = value("--seed")?.parse().context("--seed: not a number")?,
            "--ref" => reference = value("--ref")?,
            flag if flag.starts_with('-') => bail!("unknown option {flag}\n{USAGE}"),
            path if out.is_none() => out = Some(PathBuf::from(path)),
            extra => bail!("unexpected argument {extra}\n{USAGE}"),
        }
    }
    let (Some(out), Some(size), Some(layers)) = (out, size, layers) else {
        bail!("bench-layout needs OUT_DIR, --size and --layers\n{USAGE}")
    };
    let start = Instant::now();
    write_gzip_layout_streaming(&out, &reference, size, layers, seed)?;
    println!(
        "wrote {} ({reference}, {size} bytes in {layers} layers) in {:.1}s",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `1234`, `64K`, `512M`, `1G` (also `KiB`/`MiB`/`GiB`, binary units).
fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .with_context(|| format!("bad size {text:?}"))?;
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        _ => bail!("bad size unit in {text:?}"),
    };
    n.checked_mul(mult)
        .with_context(|| format!("size {text:?} overflows"))
}
