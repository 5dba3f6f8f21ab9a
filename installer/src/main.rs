//! `airgap-install`: the operator's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use airgap_format::progress::{error_line, Progress};
use airgap_format::{verify_archive, Limits};
use airgap_install::push::{push, OnExistingTag, PushOptions};
use airgap_install::target::Target;
use airgap_install::trust;
use airgap_registry::credentials::{self, Credentials};
use airgap_registry::Transport;
use anyhow::Result;
use clap::{Parser, Subcommand};

/// Verifies and installs air-gap bundles.
#[derive(Parser)]
#[command(name = "airgap-install", version, about)]
struct Cli {
    /// Configuration folder (holds trusted-keys/); default $AIRGAP_INSTALL_CONFIG_DIR or /etc/airgap-install.
    #[arg(long, global = true)]
    config_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a bundle's signature, then every entry against it.
    Verify {
        /// The bundle.
        file: PathBuf,
        /// A trusted public key (minisign format); repeatable.
        #[arg(long)]
        trust: Vec<PathBuf>,
        /// Print the result as JSON and draw no progress bar.
        #[arg(long)]
        json: bool,
    },
    /// Put the bundle's images into the site's registry (signature checked first).
    Push {
        /// The bundle.
        file: PathBuf,
        /// A trusted public key (minisign format); repeatable.
        #[arg(long)]
        trust: Vec<PathBuf>,
        /// Target registry: HOST[:PORT][/PREFIX].
        #[arg(long)]
        registry: String,
        /// Extra CA certificates (PEM) to trust for the registry.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Use plain HTTP (no TLS) for this registry.
        #[arg(long)]
        plain_http: bool,
        /// User name; the password is read from standard input (--password-stdin).
        #[arg(long, requires = "password_stdin")]
        username: Option<String>,
        /// Read the password from standard input.
        #[arg(long, requires = "username")]
        password_stdin: bool,
        /// Blobs uploaded at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
        /// When a tag already points at another image: skip (keep it), overwrite, or fail.
        #[arg(long, value_enum, default_value_t = OnExistingTag::Fail)]
        on_existing_tag: OnExistingTag,
        /// Where to write the relocation map (JSON) that later steps read.
        #[arg(long, default_value = "relocation-map.json")]
        relocation_map: PathBuf,
        /// Print the result as JSON and draw no progress bar.
        #[arg(long)]
        json: bool,
    },
    /// Summarise a bundle from its head (no verification).
    Inspect {
        /// The bundle.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Render the site's configuration from the bundle's templates: values per release, install-plan.sh, plan.json.
    Render {
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
    },
    /// List or extract the bundle's SBOMs (signature and digests checked).
    Sbom {
        /// The bundle.
        file: PathBuf,
        /// A trusted public key (minisign format); repeatable.
        #[arg(long)]
        trust: Vec<PathBuf>,
        /// List the SBOMs the bundle carries.
        #[arg(long, conflicts_with_all = ["out", "summary"])]
        list: bool,
        /// Package counts by ecosystem per image and platform.
        #[arg(long, conflicts_with = "out")]
        summary: bool,
        /// Write the SBOMs into this folder (the bundle SBOM and the per-image ones).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only this image (NAME or NAME:TAG).
        #[arg(long)]
        image: Option<String>,
        /// Only this format.
        #[arg(long, value_parser = ["cyclonedx", "spdx"])]
        format: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check that the control plane and every workspace answer GET <url>/health.
    Health {
        /// The site file (site.yaml).
        #[arg(long)]
        site: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Seconds each check may take (connection, TLS, response and body).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
        timeout: u64,
    },
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct VerifyReport {
    ok: bool,
    file: String,
    name: String,
    version: String,
    bundle_digest: String,
    signer_key_id: String,
    images: usize,
    charts: usize,
    files: usize,
    blobs: usize,
    total_size: u64,
    archive_size: u64,
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Verify {
            file,
            trust: keys,
            json,
        } => {
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let progress = Progress::bytes(size, "verify", !json);
            let result = trust::load_trusted(&keys, &trust::config_dir(cli.config_dir.as_deref()))
                .and_then(|trusted| {
                    Ok(verify_archive(&file, &trusted, Limits::default(), &|n| {
                        progress.inc(n)
                    })?)
                });
            progress.finish();
            let v = match result {
                Ok(v) => v,
                Err(e) => {
                    if json {
                        let failure = serde_json::json!({
                            "ok": false,
                            "file": file.display().to_string(),
                            "error": error_line(e.as_ref()),
                        });
                        println!("{}", serde_json::to_string_pretty(&failure)?);
                    }
                    return Err(e);
                }
            };
            let d = &v.descriptor;
            let report = VerifyReport {
                ok: true,
                file: file.display().to_string(),
                name: d.name.clone(),
                version: d.version.clone(),
                bundle_digest: v.bundle_digest.to_string(),
                signer_key_id: v.signer.to_string(),
                images: d.images.len(),
                charts: d.charts.len(),
                files: d.files.len(),
                blobs: d.blobs.len(),
                total_size: d.total_size,
                archive_size: v.archive_size,
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "OK {} {} {}: signed by {}, {} images, {} charts, {} files, {} blobs verified",
                    report.file,
                    report.name,
                    report.version,
                    report.signer_key_id,
                    report.images,
                    report.charts,
                    report.files,
                    report.blobs
                );
            }
        }
        Command::Push {
            file,
            trust: keys,
            registry,
            ca_file,
            plain_http,
            username,
            password_stdin,
            jobs,
            on_existing_tag,
            relocation_map,
            json,
        } => {
            let trusted =
                trust::load_trusted(&keys, &trust::config_dir(cli.config_dir.as_deref()))?;
            let target = Target::parse(&registry)?;
            let credentials = match (username, password_stdin) {
                (Some(username), true) => Some(Credentials {
                    username,
                    password: credentials::password_from_stdin()?,
                }),
                // A broken credentials file or helper must not stop a push to
                // a registry that needs no credentials: warn and go on.
                _ => credentials::lookup(&target.host).unwrap_or_else(|e| {
                    tracing::warn!("ignoring stored credentials: {}", error_line(e.as_ref()));
                    None
                }),
            };
            let options = PushOptions {
                target,
                transport: Transport {
                    ca_files: ca_file.into_iter().collect(),
                    plain_http,
                    user_agent: Some(format!("airgap-install/{}", env!("CARGO_PKG_VERSION"))),
                },
                credentials,
                jobs: jobs as usize,
                on_existing_tag,
                progress: !json,
            };
            let report = push(&file, &trusted, &options)?;
            report.relocation.write(&relocation_map)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                for i in report
                    .relocation
                    .images
                    .iter()
                    .chain(&report.relocation.charts)
                {
                    println!("{:<32} -> {}  {}", i.source, i.pinned, i.status);
                }
                println!(
                    "{} blobs uploaded ({} bytes), {} mounted, {} already present; relocation map: {}",
                    report.blobs_uploaded,
                    report.bytes_uploaded,
                    report.blobs_mounted,
                    report.blobs_present,
                    relocation_map.display()
                );
            }
        }
        Command::Inspect { file, json } => {
            print!(
                "{}",
                airgap_format::inspect::inspect(&file)?.to_output(json)
            );
        }
        Command::Render {
            file,
            site,
            out,
            relocation,
            trust: keys,
            json,
        } => {
            let trusted =
                trust::load_trusted(&keys, &trust::config_dir(cli.config_dir.as_deref()))?;
            let site = airgap_install::site::SiteFile::load(&site)?;
            let options = airgap_install::render::RenderOptions {
                site: &site,
                out: &out,
                relocation: relocation.as_deref(),
            };
            let plan = airgap_install::render::render(&file, &trusted, &options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", plan.to_text(&out));
            }
        }
        Command::Sbom {
            file,
            trust: keys,
            list,
            summary,
            out,
            image,
            format,
            json,
        } => {
            use airgap_install::sbom;
            let trusted =
                trust::load_trusted(&keys, &trust::config_dir(cli.config_dir.as_deref()))?;
            let selection = sbom::SbomSelection {
                image: image.clone(),
                format: format.as_deref().map(|f| {
                    if f == "spdx" {
                        airgap_format::bundle_json::SbomFormat::Spdx
                    } else {
                        airgap_format::bundle_json::SbomFormat::Cyclonedx
                    }
                }),
            };
            if summary {
                let rows: Vec<_> = sbom::summary(&file, &trusted)?
                    .into_iter()
                    .filter(|r| {
                        image.as_deref().is_none_or(|i| {
                            r.image == i || r.image.rsplit_once(':').is_some_and(|(n, _)| n == i)
                        })
                    })
                    .collect();
                if rows.is_empty() && !json {
                    println!("{}: no generated image SBOMs to summarise", file.display());
                } else if json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    print!("{}", sbom::summary_table(&rows));
                }
            } else if let Some(out) = out {
                let written = sbom::extract(&file, &trusted, &out, &selection)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&written)?);
                } else {
                    for w in &written {
                        println!("{}", w.path.display());
                    }
                }
            } else {
                let _ = list;
                let (d, mut entries) = sbom::list(&file, &trusted)?;
                entries.retain(|e| selection.wants(e));
                if json {
                    println!("{}", serde_json::to_string_pretty(&entries)?);
                } else if entries.is_empty() {
                    println!(
                        "{}: bundle {} {} carries no SBOMs (built with --skip-sbom, or by an older bundler)",
                        file.display(),
                        d.name,
                        d.version
                    );
                } else {
                    print!("{}", sbom::list_table(&entries));
                }
            }
        }
        Command::Health {
            site,
            json,
            timeout,
        } => health(&site, json, timeout)?,
    }
    Ok(())
}

/// `airgap-install health`: prints the table or JSON, then fails when any
/// check did.
fn health(site: &std::path::Path, json: bool, timeout: u64) -> Result<()> {
    use airgap_install::health;
    let site = airgap_install::site::SiteFile::load(site)?;
    let report = health::check_site(&site, std::time::Duration::from_secs(timeout))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    let failed = report.checks.len() - report.passed();
    if failed > 0 {
        anyhow::bail!("{failed} of {} health checks failed", report.checks.len());
    }
    Ok(())
}

fn main() -> ExitCode {
    airgap_format::progress::run_main(|| run(Cli::parse()))
}
