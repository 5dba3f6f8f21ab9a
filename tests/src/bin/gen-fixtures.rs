//! `gen-fixtures`: writes deterministic image fixtures.
//!
//! ```text
//! gen-fixtures demo OUT_DIR
//! gen-fixtures reference OUT_DIR
//! gen-fixtures bench-layout OUT_DIR --size BYTES --layers N [--seed S] [--ref REF]
//! gen-fixtures release OUT_DIR --version V [--scale F] [--changed-seed N]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use airgap_e2e::fixtures::{
    layer_tar, noise, write_demo, write_gzip_layout_streaming, write_oci_layout, write_reference,
    ImageSpec, LayerBlob, PlatformImage, BENCH_REF,
};
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
      Build with --release for large sizes.
  gen-fixtures release OUT_DIR --version V [--scale F] [--changed-seed N]
      OCI layout with one release V of a three-image product (linux/amd64, gzip
      layers of incompressible data; MiB at --scale 1, the default):
        vendor/control-plane:V     os base 30 + runtime 20 + app 25
        vendor/workspace-server:V  os base 30 + runtime 20 + app 40
        vendor/dashboard:V         os base 30 + app 10
      The os base layer is the same blob in all three images, the runtime layer
      in the first two. Every layer is the same in every release except
      workspace-server's app (top) layer, whose bytes come from --changed-seed
      (default 1): two releases with different seeds differ in that one layer
      and its image's config. Built in memory: peak RSS is about 5× the layer
      data (125 MiB × F), so keep F small (bench/delta.sh uses 1).";

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
        Some("release") => release(&args[1..]),
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

/// MiB of the release images' layers at scale 1: os base, runtime, and the
/// control-plane, workspace-server and dashboard app layers.
const RELEASE_MIB: [f64; 5] = [30.0, 20.0, 25.0, 40.0, 10.0];

fn release(args: &[String]) -> Result<()> {
    let mut out: Option<PathBuf> = None;
    let mut version: Option<String> = None;
    let mut scale: f64 = 1.0;
    let mut changed_seed: u64 = 1;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--version" => version = Some(value("--version")?),
            "--scale" => scale = value("--scale")?.parse().context("--scale: not a number")?,
            "--changed-seed" => {
                changed_seed = value("--changed-seed")?
                    .parse()
                    .context("--changed-seed: not a number")?
            }
            flag if flag.starts_with('-') => bail!("unknown option {flag}\n{USAGE}"),
            path if out.is_none() => out = Some(PathBuf::from(path)),
            extra => bail!("unexpected argument {extra}\n{USAGE}"),
        }
    }
    let (Some(out), Some(version)) = (out, version) else {
        bail!("release needs OUT_DIR and --version\n{USAGE}")
    };
    if !(scale.is_finite() && scale > 0.0 && scale <= 64.0) {
        bail!("--scale must be a number above 0 and at most 64");
    }
    let start = Instant::now();
    // One gzip layer holding one file of `mib × scale` MiB of noise. Fixed
    // seeds keep the unchanged layers byte for byte the same across releases;
    // the changed layer's seed is kept apart from them.
    let layer = |path: &str, mib: f64, seed: u64| {
        let len = (mib * scale * 1_048_576.0).round().max(1.0) as usize;
        LayerBlob::gzipped(layer_tar(&[(path, &noise(len, seed), 0o644)]))
    };
    let [base_mib, runtime_mib, control_mib, workspace_mib, dashboard_mib] = RELEASE_MIB;
    let base = layer("usr/lib/os-base.bin", base_mib, 101);
    let runtime = layer("usr/lib/runtime.bin", runtime_mib, 102);
    let control = layer("opt/control-plane/app.bin", control_mib, 103);
    let workspace = layer(
        "opt/workspace-server/app.bin",
        workspace_mib,
        1_000_000 + changed_seed,
    );
    let dashboard = layer("opt/dashboard/app.bin", dashboard_mib, 105);
    let changed = (workspace.digest(), workspace.bytes.len());
    let image = |name: &str, layers: Vec<LayerBlob>| ImageSpec {
        ref_name: format!("vendor/{name}:{version}"),
        platforms: vec![PlatformImage::linux(
            "amd64",
            layers,
            &[&format!("/opt/{name}/app") as &str],
        )],
    };
    let images = [
        image(
            "control-plane",
            vec![base.clone(), runtime.clone(), control],
        ),
        image("workspace-server", vec![base.clone(), runtime, workspace]),
        image("dashboard", vec![base, dashboard]),
    ];
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    write_oci_layout(&out, &images)?;
    println!(
        "wrote {} (release {version}, scale {scale}) in {:.1}s; changed layer {} ({} bytes)",
        out.display(),
        start.elapsed().as_secs_f64(),
        changed.0,
        changed.1
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
