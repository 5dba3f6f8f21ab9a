//! `airgap-install`: the operator's command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use airgap_cli::completions::Shell;
use airgap_cli::progress::{error_line, Progress, UsageError};
use airgap_format::display::{count, escape as e};
use airgap_format::{verify_archive, Digest, Limits};
use airgap_install::push::{push, OnExistingTag, PushOptions};
use airgap_install::target::Target;
use airgap_install::{install, runs, state, trust};
use airgap_registry::client::Fixes;
use airgap_registry::credentials::{self, Credentials};
use airgap_registry::Transport;
use anyhow::Result;
use clap::{Args, CommandFactory, Parser, Subcommand};

/// Verifies and installs air-gap bundles.
#[derive(Parser)]
#[command(name = "airgap-install", version, about)]
struct Cli {
    /// Configuration folder (holds trusted-keys/); default $AIRGAP_INSTALL_CONFIG_DIR or /etc/airgap-install.
    #[arg(long, global = true)]
    config_dir: Option<PathBuf>,
    /// State folder (installed bundles, licence, audit log); default $AIRGAP_INSTALL_STATE_DIR or /var/lib/airgap-install.
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install or upgrade: verify, activate the licence, push, render, apply, check health, record.
    #[command(
        after_help = "Example:\n  airgap-install install /media/usb/demo-1.1.0.bundle --site /etc/airgap-install/site.yaml --apply\n\nAn interrupted run is resumed by running the same command again."
    )]
    Install {
        /// The bundle.
        file: PathBuf,
        /// The site file (site.yaml).
        #[arg(long)]
        site: PathBuf,
        /// A trusted public key (minisign format); repeatable.
        #[arg(long)]
        trust: Vec<PathBuf>,
        #[command(flatten)]
        upload: UploadArgs,
        /// Run install-plan.sh through helm (backups first when upgrading), then the health checks.
        #[arg(long)]
        apply: bool,
        /// Install a bundle that is not newer than the installed one (written to the audit log).
        #[arg(long)]
        allow_downgrade: bool,
        /// Do not run the health checks after --apply.
        #[arg(long)]
        skip_health: bool,
        /// Seconds each health check may take.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
        health_timeout: u64,
        /// The Kubernetes cluster's identity (kube-system namespace UID), when the licence is bound to it.
        #[arg(long)]
        cluster_uid: Option<String>,
        /// For a delta bundle: the base bundle it was built against, for the
        /// blobs the registry does not already have.
        #[arg(long, value_name = "BASE_BUNDLE")]
        base: Option<PathBuf>,
        /// Do not run the preflight checks first (recorded in the audit log).
        #[arg(long)]
        skip_preflight: bool,
        /// Print the result as JSON and draw no progress bars.
        #[arg(long)]
        json: bool,
    },
    /// Check everything an install will need, before anything changes; report every problem at once.
    Preflight {
        /// The bundle.
        file: PathBuf,
        /// The site file (site.yaml).
        #[arg(long)]
        site: PathBuf,
        /// A trusted public key (minisign format); repeatable.
        #[arg(long)]
        trust: Vec<PathBuf>,
        #[command(flatten)]
        upload: UploadArgs,
        /// Also check what `install --apply` needs: helm, kubectl, the cluster.
        #[arg(long)]
        apply: bool,
        /// A downgrade would be accepted.
        #[arg(long)]
        allow_downgrade: bool,
        /// The Kubernetes cluster's identity, when the licence is bound to it.
        #[arg(long)]
        cluster_uid: Option<String>,
        /// For a delta bundle: the base bundle it was built against.
        #[arg(long, value_name = "BASE_BUNDLE")]
        base: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Go back to an earlier installed version: its recorded configuration, applied again with the images still in the registry.
    Rollback {
        /// The installed bundle's name (may be left out when only one is installed).
        name: Option<String>,
        /// The version to go back to (default: the one installed before the current).
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// The site file (the registry's TLS settings, the health checks).
        #[arg(long)]
        site: PathBuf,
        #[command(flatten)]
        login: LoginArgs,
        /// Do not run the health checks after applying.
        #[arg(long)]
        skip_health: bool,
        /// Seconds each health check may take.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
        health_timeout: u64,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an installed bundle's Helm releases (reverse install order) and mark its record.
    Uninstall {
        /// The installed bundle's name.
        name: String,
        /// Also delete its images and charts from the registry, by digest, where the registry allows deletes.
        #[arg(long, requires = "site")]
        purge_images: bool,
        /// The site file (the registry's address and TLS settings, for --purge-images).
        #[arg(long)]
        site: Option<PathBuf>,
        #[command(flatten)]
        login: LoginArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what installing a bundle would change against what is installed.
    Plan {
        /// The bundle.
        file: PathBuf,
        /// A trusted public key (minisign format); repeatable.
        #[arg(long)]
        trust: Vec<PathBuf>,
        /// The site file: ask its registry what the push would send, and
        /// compare the rendered configuration.
        #[arg(long)]
        site: Option<PathBuf>,
        #[command(flatten)]
        upload: UploadArgs,
        /// For a delta bundle: the base bundle it was built against.
        #[arg(long, value_name = "BASE_BUNDLE")]
        base: Option<PathBuf>,
        /// Show every rendered file in full (a first install otherwise
        /// lists its files with their line counts).
        #[arg(long)]
        diff: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what is installed, and the unfinished install runs.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give up an unfinished install run: record it in the audit log and remove its journal.
    #[command(
        after_help = "Example:\n  airgap-install abandon demo@1.1.0\n  airgap-install abandon 0ec365e162ca"
    )]
    Abandon {
        /// The run: its bundle as NAME@VERSION, or the start of its bundle digest (as `status` shows).
        run: String,
    },
    /// Show the audit log.
    History {
        /// Print JSON lines as stored.
        #[arg(long)]
        json: bool,
    },
    /// Node-locked licences: request, activate, status.
    License {
        #[command(subcommand)]
        command: LicenseCommand,
    },
    /// Check a bundle's signature, then every entry against it.
    #[command(
        after_help = "Example:\n  airgap-install verify /media/usb/demo-1.0.0.bundle --trust vendor.pub \\\n      --expect-digest sha256:6643c7c002edf162be63565a09bfc8d95211a534f5c08251b19f7ab0a3c78b4f"
    )]
    Verify {
        /// The bundle.
        file: PathBuf,
        /// A trusted public key (minisign format); repeatable.
        #[arg(long)]
        trust: Vec<PathBuf>,
        /// The bundle digest the vendor published (sha256:…): fail unless the bundle has it.
        #[arg(long, value_name = "DIGEST")]
        expect_digest: Option<String>,
        /// Print the result as JSON and draw no progress bar.
        #[arg(long)]
        json: bool,
    },
    /// Put the bundle's images into the site's registry (signature checked first).
    #[command(
        after_help = "Example:\n  airgap-install push /media/usb/demo-1.0.0.bundle --registry registry.internal.example:5000/platform \\\n      --ca-file internal-ca.pem --relocation-map relocation-map.json"
    )]
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
        #[command(flatten)]
        upload: UploadArgs,
        /// For a delta bundle: the base bundle it was built against, for the
        /// blobs the registry does not already have.
        #[arg(long, value_name = "BASE_BUNDLE")]
        base: Option<PathBuf>,
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
    #[command(
        after_help = "Example:\n  airgap-install render /media/usb/demo-1.0.0.bundle --site site.yaml --relocation relocation-map.json --out rendered/"
    )]
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
    /// Print the shell completion script for bash, zsh or fish.
    #[command(
        after_help = "Example:\n  airgap-install completion bash > /etc/bash_completion.d/airgap-install"
    )]
    Completion {
        /// The shell.
        shell: Shell,
    },
    /// Write the man pages, one per command, into a folder.
    #[command(after_help = "Example:\n  airgap-install man --out /usr/local/share/man/man1")]
    Man {
        /// The folder (created if missing), such as /usr/local/share/man/man1.
        #[arg(long)]
        out: PathBuf,
    },
    /// Print this program's version; with --verbose, its commit, target, compiler and build date.
    Version {
        /// Also the commit, target, compiler and build date.
        #[arg(long)]
        verbose: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check this program's own file against the release's signed SHA256SUMS beside it.
    #[command(
        after_help = "Example:\n  /media/release/x86_64/airgap-install self-check --trust /media/release/release.pub"
    )]
    SelfCheck {
        /// The release's public key (minisign format); repeatable.
        #[arg(long)]
        trust: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum LicenseCommand {
    /// Write a licence request for this node (its fingerprint, never the raw ids) to send to the vendor.
    Request {
        /// Where to write the request.
        #[arg(long)]
        out: PathBuf,
        /// The Kubernetes cluster's identity (`kubectl get namespace kube-system -o jsonpath='{.metadata.uid}'`).
        #[arg(long)]
        cluster_uid: Option<String>,
        /// Product id (default: the one installed bundle's name, else reference-platform).
        #[arg(long)]
        product: Option<String>,
        /// Print the request as JSON on standard output too.
        #[arg(long)]
        json: bool,
    },
    /// Verify a licence for this node and make it the active one.
    Activate {
        /// The licence file.
        file: PathBuf,
        /// A trusted vendor key (minisign format); repeatable.
        #[arg(long)]
        trust: Vec<PathBuf>,
        /// The Kubernetes cluster's identity, when the licence is bound to it.
        #[arg(long)]
        cluster_uid: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the active licence; exit status 1 when it is not valid.
    Status {
        /// A trusted vendor key (minisign format); repeatable.
        #[arg(long)]
        trust: Vec<PathBuf>,
        /// The Kubernetes cluster's identity, when the licence is bound to it.
        #[arg(long)]
        cluster_uid: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
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
    /// For a delta: the base it needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    base: Option<airgap_format::bundle_json::BaseEntry>,
    /// Blobs left to the base.
    base_blobs: usize,
    /// Media parts checked, when split.
    parts: usize,
    /// The digest given with --expect-digest (the bundle has it).
    #[serde(skip_serializing_if = "Option::is_none")]
    expected_digest: Option<String>,
}

/// Runs a command's `body`; with `--json`, a failure is also printed on
/// stdout as `{"ok": false, "file": FILE, "error": LINE}` plus `extra`
/// fields, before the usual `error:` line on stderr.
fn json_failure(
    json: bool,
    file: Option<&Path>,
    extra: &[(&str, Option<&str>)],
    body: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let result = body();
    if let (true, Err(err)) = (json, &result) {
        let mut failure = serde_json::json!({
            "ok": false,
            "error": error_line(err.as_ref()),
        });
        if let Some(file) = file {
            failure["file"] = serde_json::Value::from(file.display().to_string());
        }
        for (key, value) in extra {
            if let Some(v) = value {
                failure[*key] = serde_json::Value::from(*v);
            }
        }
        println!("{}", serde_json::to_string_pretty(&failure)?);
    }
    result
}

fn run(cli: Cli) -> Result<()> {
    run_command(cli).map_err(state::explain_full_disk)
}

fn run_command(cli: Cli) -> Result<()> {
    let state_dir = state::state_dir(cli.state_dir.as_deref());
    let config_dir = trust::config_dir(cli.config_dir.as_deref());
    match cli.command {
        Command::Install {
            file,
            site,
            trust: keys,
            upload,
            apply,
            allow_downgrade,
            skip_health,
            health_timeout,
            cluster_uid,
            base,
            skip_preflight,
            json,
        } => json_failure(json, Some(file.as_path()), &[], || {
            let trusted = trust::load_trusted(&keys, &config_dir)?;
            let site = airgap_install::site::SiteFile::load(&site)?;
            let credentials = registry_credentials(
                &site.site.registry.host,
                upload.username,
                upload.password_stdin,
            )?;
            // A licence in the bundle needs this node's identity; a node
            // without a machine id can still install a bundle without one.
            let node = airgap_install::license::node_ids(cluster_uid.as_deref());
            if let Err(e) = &node {
                tracing::debug!("no node identity: {e:#}");
            }
            let state = state::State::open(&state_dir)?;
            let options = install::InstallOptions {
                bundle: &file,
                site: &site,
                trusted: &trusted,
                registry: install::access::RegistryAccess::for_site(&site, credentials),
                jobs: upload.jobs as usize,
                apply,
                allow_downgrade,
                skip_health,
                health_timeout,
                node: node.ok(),
                progress: !json,
                base: base.as_deref(),
                on_existing_tag: upload.on_existing_tag,
                skip_preflight,
            };
            let report = install::install(&state, &options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{} {} {} ({}): {}",
                    report.kind,
                    e(&report.name),
                    e(&report.version),
                    report.bundle_digest,
                    match &report.from_version {
                        Some(v) => format!("was {}", e(v)),
                        None => "new".into(),
                    }
                );
            }
            Ok(())
        })?,
        Command::Preflight {
            file,
            site,
            trust: keys,
            upload,
            apply,
            allow_downgrade,
            cluster_uid,
            base,
            json,
        } => {
            // A report with problems is itself the JSON answer (`"ok":
            // false`); only a failure before it is reported as such.
            let mut failed = 0;
            json_failure(json, Some(file.as_path()), &[], || {
                let trusted = trust::load_trusted(&keys, &config_dir)?;
                let site = airgap_install::site::SiteFile::load(&site)?;
                let access = install::access::RegistryAccess::for_site(
                    &site,
                    registry_credentials(
                        &site.site.registry.host,
                        upload.username,
                        upload.password_stdin,
                    )?,
                );
                let node = airgap_install::license::node_ids(cluster_uid.as_deref()).ok();
                let state = state::State::open_read_only(&state_dir);
                let bundle = airgap_format::SignedBundle::open(&file, &trusted, Limits::default())?;
                let report = airgap_install::preflight::preflight(
                    &state,
                    &airgap_install::preflight::PreflightOptions {
                        bundle: &bundle,
                        site: &site,
                        trusted: &trusted,
                        registry: &access,
                        apply,
                        allow_downgrade,
                        node: node.as_ref(),
                        base: base.as_deref(),
                        on_existing_tag: upload.on_existing_tag,
                        jobs: upload.jobs as usize,
                        skip_version: false,
                    },
                )?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    print!("{}", report.to_table());
                }
                failed = report.failures().len();
                Ok(())
            })?;
            if failed > 0 {
                anyhow::bail!(
                    "preflight found {}; nothing was changed",
                    count(failed as u64, "problem")
                );
            }
        }
        Command::Rollback {
            name,
            to,
            site,
            login,
            skip_health,
            health_timeout,
            json,
        } => json_failure(json, None, &[], || {
            let site = airgap_install::site::SiteFile::load(&site)?;
            let registry = install::access::RegistryAccess::for_site(
                &site,
                registry_credentials(
                    &site.site.registry.host,
                    login.username,
                    login.password_stdin,
                )?,
            );
            let state = state::State::open(&state_dir)?;
            let report = airgap_install::rollback::rollback(
                &state,
                &airgap_install::rollback::RollbackOptions {
                    name: name.as_deref(),
                    to: to.as_deref(),
                    site: &site,
                    registry,
                    skip_health,
                    health_timeout,
                    progress: !json,
                },
            );
            let report = report?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "rollback {} {} -> {} ({})",
                    e(&report.name),
                    e(report.from_version.as_deref().unwrap_or("")),
                    e(&report.version),
                    report.bundle_digest
                );
            }
            Ok(())
        })?,
        Command::Uninstall {
            name,
            purge_images,
            site,
            login,
            json,
        } => json_failure(json, None, &[], || {
            let registry = match &site {
                Some(path) => {
                    let site = airgap_install::site::SiteFile::load(path)?;
                    let creds = registry_credentials(
                        &site.site.registry.host,
                        login.username,
                        login.password_stdin,
                    )?;
                    Some(install::access::RegistryAccess::for_site(&site, creds))
                }
                None => None,
            };
            let state = state::State::open(&state_dir)?;
            let report = airgap_install::uninstall::uninstall(
                &state,
                &airgap_install::uninstall::UninstallOptions {
                    name: &name,
                    purge_images,
                    registry,
                    progress: !json,
                },
            );
            let report = report?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("uninstalled {} {}", e(&report.name), e(&report.version));
                for n in &report.not_deleted {
                    println!("  not deleted: {}", e(n));
                }
            }
            Ok(())
        })?,
        Command::Plan {
            file,
            trust: keys,
            site,
            upload,
            base,
            diff,
            json,
        } => json_failure(json, Some(file.as_path()), &[], || {
            let trusted = trust::load_trusted(&keys, &config_dir)?;
            let site = site
                .map(|s| airgap_install::site::SiteFile::load(&s))
                .transpose()?;
            let registry = match &site {
                Some(site) => Some(install::access::RegistryAccess::for_site(
                    site,
                    registry_credentials(
                        &site.site.registry.host,
                        upload.username,
                        upload.password_stdin,
                    )?,
                )),
                None => None,
            };
            let state = state::State::open(&state_dir)?;
            let plan = install::upgrade::plan(
                &state,
                &install::upgrade::PlanOptions {
                    bundle: &file,
                    trusted: &trusted,
                    site: site.as_ref(),
                    registry,
                    base: base.as_deref(),
                    jobs: upload.jobs as usize,
                    on_existing_tag: upload.on_existing_tag,
                    full_diff: diff,
                },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", plan.to_text());
            }
            Ok(())
        })?,
        Command::Status { json } => {
            let state = state::State::open_read_only(&state_dir);
            let records = state.install_records()?;
            let unfinished = runs::unfinished(&state)?;
            if json {
                let status = serde_json::json!({
                    "installed": records,
                    "unfinished": unfinished,
                });
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", install::records::status_text(&records));
                print!("{}", runs::unfinished_text(&unfinished));
            }
        }
        Command::Abandon { run } => {
            let state = state::State::open(&state_dir)?;
            let r = runs::abandon(&state, &run)?;
            println!(
                "abandoned the unfinished run of {} ({}); its journal is removed, and the audit log records it",
                e(&r.bundle),
                r.bundle_digest
            );
        }
        Command::History { json } => {
            let records = state::State::open_read_only(&state_dir).audit_log()?;
            if json {
                for r in &records {
                    println!("{}", serde_json::to_string(r)?);
                }
            } else {
                print!("{}", install::run::history_text(&records));
            }
        }
        Command::License { command } => license(command, &state_dir, &config_dir)?,
        Command::Verify {
            file,
            trust: keys,
            expect_digest,
            json,
        } => {
            let expected = expect_digest
                .as_deref()
                .map(|d| {
                    d.parse::<Digest>().map_err(|err| {
                        UsageError(format!(
                            "--expect-digest: {err}; give the bundle digest as the vendor published it (sha256: and 64 hex characters)"
                        ))
                    })
                })
                .transpose()?;
            json_failure(
                json,
                Some(file.as_path()),
                &[("expectedDigest", expect_digest.as_deref())],
                || verify(&file, &keys, &config_dir, expected, json),
            )?
        }
        Command::Push {
            file,
            trust: keys,
            registry,
            ca_file,
            plain_http,
            upload,
            relocation_map,
            base,
            json,
        } => json_failure(json, Some(file.as_path()), &[], || {
            let target =
                Target::parse(&registry).map_err(|err| UsageError(error_line(err.as_ref())))?;
            let trusted = trust::load_trusted(&keys, &config_dir)?;
            // Before the push: the map is written after it.
            airgap_format::atomic_file::check_output_folder(&relocation_map)
                .map_err(|e| anyhow::anyhow!("--relocation-map: {e}"))?;
            let credentials =
                registry_credentials(&target.host, upload.username, upload.password_stdin)?;
            // Blobs a delta leaves to its base may be in the registry under
            // the repositories an installed release used.
            let records = state::State::open_read_only(&state_dir).install_records()?;
            let options = PushOptions {
                known: airgap_install::survey::known_images(&records, &target),
                target,
                transport: Transport {
                    ca_files: ca_file.into_iter().collect(),
                    plain_http,
                    user_agent: Some(user_agent()),
                    fixes: Fixes {
                        use_https: "drop --plain-http".into(),
                        use_plain_http:
                            "pass --plain-http if the registry is meant to speak plain HTTP".into(),
                        trust_ca: "pass the CA certificate (PEM) that issued it with --ca-file"
                            .into(),
                    },
                },
                credentials,
                jobs: upload.jobs as usize,
                on_existing_tag: upload.on_existing_tag,
                progress: !json,
                base,
            };
            let bundle = airgap_format::SignedBundle::open(&file, &trusted, Limits::default())?;
            let report = push(&bundle, &trusted, &options)?;
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
                    println!("{:<32} -> {}  {}", e(&i.source), e(&i.pinned), e(&i.status));
                }
                println!(
                    "{} blobs uploaded ({} bytes), {} mounted, {} already present; relocation map: {}",
                    report.blobs_uploaded,
                    report.bytes_uploaded,
                    report.blobs_mounted,
                    report.blobs_present,
                    e(&relocation_map.display().to_string())
                );
            }
            Ok(())
        })?,
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
        } => json_failure(json, Some(file.as_path()), &[], || {
            let trusted = trust::load_trusted(&keys, &config_dir)?;
            let site = airgap_install::site::SiteFile::load(&site)?;
            let license = airgap_install::license::active_text(&state_dir)?;
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
        })?,
        Command::Sbom {
            file,
            trust: keys,
            list,
            summary,
            out,
            image,
            format,
            json,
        } => json_failure(json, Some(file.as_path()), &[], || {
            use airgap_install::sbom;
            let trusted = trust::load_trusted(&keys, &config_dir)?;
            let bundle = airgap_format::SignedBundle::open(&file, &trusted, Limits::default())?;
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
                let rows: Vec<_> = sbom::summary(&bundle)?
                    .into_iter()
                    .filter(|r| {
                        image.as_deref().is_none_or(|i| {
                            r.image == i || r.image.rsplit_once(':').is_some_and(|(n, _)| n == i)
                        })
                    })
                    .collect();
                if rows.is_empty() && !json {
                    println!(
                        "{}: no generated image SBOMs to summarise",
                        e(&file.display().to_string())
                    );
                } else if json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    print!("{}", sbom::summary_table(&rows));
                }
            } else if let Some(out) = out {
                let written = sbom::extract(&bundle, &out, &selection)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&written)?);
                } else {
                    for w in &written {
                        println!("{}", e(&w.path.display().to_string()));
                    }
                }
            } else {
                let _ = list;
                let d = &bundle.descriptor;
                let entries: Vec<_> = sbom::list(&bundle)
                    .iter()
                    .filter(|e| selection.wants(e))
                    .collect();
                if json {
                    println!("{}", serde_json::to_string_pretty(&entries)?);
                } else if entries.is_empty() {
                    println!(
                        "{}: bundle {} {} carries no SBOMs (built with --skip-sbom, or by an older bundler)",
                        e(&file.display().to_string()),
                        e(&d.name),
                        e(&d.version)
                    );
                } else {
                    print!("{}", sbom::list_table(&entries));
                }
            }
            Ok(())
        })?,
        Command::Health {
            site,
            json,
            timeout,
        } => health(&site, json, timeout)?,
        Command::Completion { shell } => airgap_cli::completions::write_completions(
            Cli::command(),
            shell,
            &mut std::io::stdout(),
        )
        .map_err(|err| anyhow::anyhow!("cannot write the completion script: {err}"))?,
        Command::Man { out } => {
            for page in airgap_cli::completions::write_man_pages(Cli::command(), &out)? {
                println!("{}", page.display());
            }
        }
        Command::Version { verbose, json } => {
            let info = airgap_install::self_check::build_info();
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else if verbose {
                print!("{}", info.to_text());
            } else {
                println!("airgap-install {}", info.version);
            }
        }
        Command::SelfCheck { trust: keys, json } => {
            let exe = std::env::current_exe()
                .map_err(|err| anyhow::anyhow!("cannot find this program's own file: {err}"))?;
            json_failure(json, Some(exe.as_path()), &[], || {
                let trusted = trust::load_trusted(&keys, &config_dir)?;
                let r = airgap_install::self_check::self_check(&exe, &trusted)?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&r)?);
                } else {
                    println!(
                        "OK {}: {} is listed in {}, signed by {}",
                        e(&r.file),
                        r.digest,
                        e(&r.sums),
                        r.signer
                    );
                }
                Ok(())
            })?
        }
    }
    Ok(())
}

/// `airgap-install verify`: checks the bundle, compares its digest with
/// `expected`, prints the report.
fn verify(
    file: &Path,
    keys: &[PathBuf],
    config_dir: &Path,
    expected: Option<Digest>,
    json: bool,
) -> Result<()> {
    let size = airgap_format::parts::Source::open(file)
        .and_then(|s| s.len())
        .unwrap_or(0);
    let progress = Progress::bytes(size, "verify", !json);
    let result = trust::load_trusted(keys, config_dir).and_then(|trusted| {
        Ok(verify_archive(file, &trusted, Limits::default(), &|n| {
            progress.inc(n)
        })?)
    });
    progress.finish();
    let v = result?;
    if let Some(want) = expected {
        if v.bundle_digest != want {
            anyhow::bail!(
                "{}: the bundle digest is {}, not {} as given with --expect-digest: this is not the bundle the vendor published; do not use it, get it again and check the digest with the vendor",
                e(&file.display().to_string()),
                v.bundle_digest,
                want
            );
        }
    }
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
        base: d.base.clone(),
        base_blobs: d.base_blobs.len(),
        parts: d.split.as_ref().map_or(0, |s| s.parts.len()),
        expected_digest: expected.map(|d| d.to_string()),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "OK {} {} {}: signed by {}, {}, {}, {}, {} verified",
        e(&report.file),
        e(&report.name),
        e(&report.version),
        report.signer_key_id,
        count(report.images as u64, "image"),
        count(report.charts as u64, "chart"),
        count(report.files as u64, "file"),
        count(report.blobs as u64, "blob")
    );
    println!(
        "   bundle digest: {}{}",
        report.bundle_digest,
        if expected.is_some() {
            " (as expected)"
        } else {
            ""
        }
    );
    if report.parts > 0 {
        println!("   media parts: {}, each checked on its own", report.parts);
    }
    if let Some(b) = &report.base {
        println!(
            "   delta bundle: {} blobs are left to its base {} {} ({}); install needs them in the registry or --base",
            report.base_blobs,
            e(&b.name),
            e(&b.version),
            b.digest
        );
    }
    Ok(())
}

/// A registry login: a user name, its password on standard input.
#[derive(Args)]
struct LoginArgs {
    /// User name for the registry; the password is read from standard input (--password-stdin).
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the registry password from standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

/// The `User-Agent` sent to registries.
fn user_agent() -> String {
    format!("airgap-install/{}", env!("CARGO_PKG_VERSION"))
}

/// How `push` and `install` upload to the site registry.
#[derive(Args)]
struct UploadArgs {
    /// User name for the registry; the password is read from standard input (--password-stdin).
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the registry password from standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Blobs uploaded at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// When a tag already points at another image: fail (stop before pushing), skip (keep it) or overwrite.
    #[arg(long, value_enum, default_value_t = OnExistingTag::Fail)]
    on_existing_tag: OnExistingTag,
}

/// Credentials for `host`: from `--username` and standard input, else the
/// usual credential stores.
fn registry_credentials(
    host: &str,
    username: Option<String>,
    password_stdin: bool,
) -> Result<Option<Credentials>> {
    Ok(match (username, password_stdin) {
        (Some(username), true) => Some(Credentials {
            username,
            password: credentials::password_from_stdin()?,
        }),
        // A broken credentials file or helper must not stop a push to a
        // registry that needs no credentials: warn and go on.
        _ => credentials::lookup(host).unwrap_or_else(|e| {
            tracing::warn!("ignoring stored credentials: {}", error_line(e.as_ref()));
            None
        }),
    })
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

/// `airgap-install license …`.
fn license(
    command: LicenseCommand,
    state_dir: &std::path::Path,
    config_dir: &std::path::Path,
) -> Result<()> {
    use airgap_install::license as lic;
    match command {
        LicenseCommand::Request {
            out,
            cluster_uid,
            product,
            json,
        } => {
            let node = lic::node_ids(cluster_uid.as_deref())?;
            let product = product.unwrap_or_else(|| lic::default_product(state_dir));
            let request = lic::request(&product, &node, &out)?;
            if json {
                print!("{}", request.to_json_pretty());
            } else {
                println!(
                    "wrote {}: licence request for product {} from machine fingerprint {}{}; send it to the vendor",
                    e(&out.display().to_string()),
                    e(&request.product),
                    &request.fingerprint.machine[..16],
                    if request.fingerprint.cluster.is_some() { " (with the cluster's)" } else { "" }
                );
            }
        }
        LicenseCommand::Activate {
            file,
            trust: keys,
            cluster_uid,
            json,
        } => {
            let trusted = trust::load_trusted(&keys, config_dir)?;
            let node = lic::node_ids(cluster_uid.as_deref())?;
            let state = state::State::open(state_dir)?;
            let what = file.display().to_string();
            let result = airgap_licenses::license::read_license_file(&file)
                .map_err(anyhow::Error::from)
                .and_then(|text| lic::activate(&state, &text, &what, &what, &trusted, &node, None));
            let record = |outcome: state::Outcome, detail: String| {
                state.audit(&state::AuditRecord {
                    time: state::rfc3339(
                        time::OffsetDateTime::now_utc()
                            .replace_nanosecond(0)
                            .expect("0"),
                    ),
                    operator: state::operator(),
                    command: "license activate".into(),
                    bundle_digest: None,
                    bundle: None,
                    step: "activate".into(),
                    outcome,
                    detail: Some(detail),
                })
            };
            let a = match result {
                Ok(a) => a,
                Err(e) => {
                    if let Err(log) = record(state::Outcome::Refused, error_line(e.as_ref())) {
                        tracing::warn!(
                            "the refusal is not in the audit log: {}",
                            error_line(log.as_ref())
                        );
                    }
                    return Err(e);
                }
            };
            let l = &a.license;
            record(
                if l.state == lic::LicenseState::Grace {
                    state::Outcome::Warning
                } else {
                    state::Outcome::Ok
                },
                format!(
                    "{what}: serial {} for {} ({}), expires {}{}",
                    l.serial,
                    l.customer,
                    l.product,
                    l.expires,
                    if a.already_active {
                        ", already active"
                    } else {
                        ""
                    }
                ),
            )?;
            if l.state == lic::LicenseState::Grace {
                tracing::warn!(
                    "{what}: expired on {}; in its grace period until {} ({} days left): renew it",
                    l.expires,
                    l.grace_ends,
                    l.days_left.unwrap_or(0)
                );
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&a)?);
            } else {
                println!(
                    "{}: serial {}{}",
                    if a.already_active {
                        "already active"
                    } else {
                        "activated"
                    },
                    l.serial,
                    a.replaced_serial
                        .map(|s| format!(" (replaces serial {s})"))
                        .unwrap_or_default()
                );
                print!("{}", l.to_text());
            }
        }
        LicenseCommand::Status {
            trust: keys,
            cluster_uid,
            json,
        } => {
            let trusted = trust::load_trusted(&keys, config_dir)?;
            let node = lic::node_ids(cluster_uid.as_deref())?;
            let state = state::State::open(state_dir)?;
            let Some(s) = lic::status(&state, &trusted, &node)? else {
                if json {
                    println!("{}", serde_json::json!({"state": "none"}));
                }
                anyhow::bail!("no licence is active (airgap-install license activate FILE)");
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print!("{}", s.to_text());
            }
            match s.state {
                lic::LicenseState::Valid => {}
                lic::LicenseState::Grace => tracing::warn!(
                    "the licence expired on {}; it works until {} (grace period): renew it",
                    s.expires,
                    s.grace_ends
                ),
                lic::LicenseState::Invalid => anyhow::bail!(
                    "the licence is not valid: {}",
                    s.problem.as_deref().unwrap_or("unknown reason")
                ),
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    airgap_cli::progress::run_main(|| run(Cli::parse()))
}
