//! `airgap-bundle`: the release engineer's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use airgap_bundle::build::{build, BuildOptions};
use airgap_bundle::lock_command::lock_manifest;
use airgap_bundle::pull::PullOptions;
use airgap_bundle::sign::{keygen, SecretKey};
use airgap_cli::completions::Shell;
use airgap_cli::progress::UsageError;
use airgap_registry::credentials::{password_from_stdin, Credentials};
use anyhow::{bail, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};

/// Builds signed, content-addressed air-gap bundles.
#[derive(Parser)]
#[command(name = "airgap-bundle", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a signing key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (minisign format).
    Keygen {
        /// Path prefix of the two files.
        #[arg(long)]
        out: PathBuf,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Sign a file (such as a release's SHA256SUMS) with minisign's format: FILE.minisig.
    #[command(
        after_help = "Example:\n  airgap-bundle sign dist/x86_64/SHA256SUMS --key release.key\n  minisign -Vm dist/x86_64/SHA256SUMS -p release.pub"
    )]
    Sign {
        /// The file.
        file: PathBuf,
        /// Secret key to sign with.
        #[arg(long)]
        key: PathBuf,
        /// Where to write the signature (default: FILE.minisig).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Build a bundle from a manifest.
    #[command(
        after_help = "Example:\n  airgap-bundle build manifests/demo.yaml --key vendor.key --out demo-1.0.0.bundle\n  airgap-bundle build release.yaml --key vendor.key --out release.bundle --locked --split 4GiB"
    )]
    Build {
        /// The bundle manifest (YAML).
        manifest: PathBuf,
        /// Secret key to sign with.
        #[arg(long)]
        key: PathBuf,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Lock file to build from (default: NAME.lock.json beside the manifest).
        #[arg(long)]
        lock: Option<PathBuf>,
        /// Refuse registry images and remote charts the lock file does not pin.
        #[arg(long)]
        locked: bool,
        /// Make no SBOMs (quick local builds); vendor SBOMs are still carried.
        #[arg(long)]
        skip_sbom: bool,
        /// Read every layer for the SBOMs, neither using nor storing the
        /// layer scans kept in the cache folder's scans/.
        #[arg(long)]
        no_scan_cache: bool,
        /// Build a delta: leave out the image and chart blobs this older
        /// bundle of the same product stores (it must be signed by --key).
        #[arg(long, value_name = "OLD_BUNDLE")]
        base: Option<PathBuf>,
        /// Write media parts OUT.part-001, OUT.part-002, … of at most this
        /// size (4GiB for FAT32, 4.7GB for a DVD) instead of one file.
        #[arg(long, value_name = "SIZE")]
        split: Option<String>,
        #[command(flatten)]
        pull: PullArgs,
        /// zstd level for compressible entries (1-19).
        #[arg(long, default_value_t = airgap_format::writer::DEFAULT_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
        level: i32,
        /// Print the result as JSON and draw no progress bars.
        #[arg(long)]
        json: bool,
    },
    /// Resolve every registry image and remote chart to a digest and write the lock file.
    Lock {
        /// The bundle manifest (YAML).
        manifest: PathBuf,
        /// Lock file to write (default: NAME.lock.json beside the manifest).
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        pull: PullArgs,
        /// Print the lock as JSON.
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
    /// Node-locked licences (vendor side).
    License {
        #[command(subcommand)]
        command: LicenseCommand,
    },
    /// Print the shell completion script for bash, zsh or fish.
    #[command(
        after_help = "Example:\n  airgap-bundle completion bash > /etc/bash_completion.d/airgap-bundle"
    )]
    Completion {
        /// The shell.
        shell: Shell,
    },
    /// Write the man pages, one per command, into a folder.
    #[command(after_help = "Example:\n  airgap-bundle man --out /usr/local/share/man/man1")]
    Man {
        /// The folder (created if missing), such as /usr/local/share/man/man1.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum LicenseCommand {
    /// Sign a licence bound to the node fingerprint in a site's request.
    Issue {
        /// The site's request (from `airgap-install license request`).
        #[arg(long)]
        request: PathBuf,
        /// The vendor's secret key (minisign format, from `airgap-bundle keygen`).
        #[arg(long)]
        key: PathBuf,
        /// Customer name.
        #[arg(long)]
        customer: String,
        /// Expiry: YYYY-MM-DD (midnight UTC) or an RFC 3339 time.
        #[arg(long)]
        expires: String,
        /// Start of validity (default: now).
        #[arg(long)]
        not_before: Option<String>,
        /// Days after expiry during which the licence still works, with warnings.
        #[arg(long, default_value_t = 0)]
        grace_days: u32,
        /// Licensed features, comma-separated.
        #[arg(long, value_delimiter = ',')]
        features: Vec<String>,
        /// A limit NAME=NUMBER (workspaces=5); repeatable.
        #[arg(long = "limit")]
        limits: Vec<String>,
        /// The serial ledger: the last serial issued per site (default: KEY's folder/licenses-issued.json).
        #[arg(long)]
        ledger: Option<PathBuf>,
        /// Where to write the licence.
        #[arg(long)]
        out: PathBuf,
    },
}

/// How to reach registries and chart repositories.
#[derive(Args)]
struct PullArgs {
    /// Cache folder: pulled blobs, and layer scans for SBOMs (default: $AIRGAP_BUNDLE_CACHE, else $XDG_CACHE_HOME/airgap-bundle, else ~/.cache/airgap-bundle).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Downloads at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=32))]
    jobs: u16,
    /// Registry auth file (Docker config.json or Podman auth.json format), read first.
    #[arg(long)]
    authfile: Option<PathBuf>,
    /// HOST=USER: log in to HOST as USER, with the password from --password-stdin.
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password for --username from standard input.
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

impl PullArgs {
    fn options(self) -> Result<PullOptions> {
        let mut o = PullOptions::default();
        if let Some(d) = self.cache_dir {
            o.cache_dir = d;
        }
        o.jobs = self.jobs as usize;
        if let Some(f) = &self.authfile {
            if !f.is_file() {
                bail!("--authfile {}: file not found", f.display());
            }
        }
        o.authfile = self.authfile;
        if let Some(hu) = self.username {
            let Some((host, user)) = hu
                .split_once('=')
                .filter(|(h, u)| !h.is_empty() && !u.is_empty())
            else {
                return Err(UsageError(format!("--username {hu:?}: expected HOST=USER")).into());
            };
            let host = airgap_bundle::sources::reference::api_host(host).to_string();
            o.login = Some((
                host,
                Credentials {
                    username: user.to_string(),
                    password: password_from_stdin()?,
                },
            ));
        }
        Ok(o)
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Sign { file, key, out } => {
            let key = SecretKey::from_file(&key)?;
            let out = out.unwrap_or_else(|| {
                let mut name = file.clone().into_os_string();
                name.push(".minisig");
                PathBuf::from(name)
            });
            let sig = airgap_bundle::sign::sign_file(&key, &file, &out)?;
            println!(
                "wrote {}: signature of {} by {}",
                out.display(),
                file.display(),
                sig.key_id
            );
        }
        Command::Keygen { out, force } => {
            let (key, public, id) = keygen(&out, force)?;
            println!(
                "key id {id}\nsecret key: {}\npublic key: {}",
                key.display(),
                public.display()
            );
        }
        Command::Build {
            manifest,
            key,
            out,
            lock,
            locked,
            skip_sbom,
            no_scan_cache,
            base,
            split,
            pull,
            level,
            json,
        } => {
            // Option values first: a malformed one is a usage error (exit
            // 2), whatever the files hold.
            let split = split
                .as_deref()
                .map(|s| {
                    airgap_bundle::output::PartSize::parse(s)
                        .map_err(|e| UsageError(format!("{e:#}")))
                })
                .transpose()?;
            let key = SecretKey::from_file(&key)?;
            let mut options = BuildOptions::from_env()?;
            options.level = level;
            options.progress = !json;
            options.pull = pull.options()?;
            options.lock_path = lock;
            options.locked = locked;
            options.skip_sbom = skip_sbom;
            options.scan_cache = !no_scan_cache;
            options.base = base;
            options.split = split;
            let result = build(&manifest, &key, &out, &options)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&result)?);
            } else {
                if result.parts.is_empty() {
                    println!(
                        "wrote {} ({} bytes, {}, signed by {})",
                        result.path.display(),
                        result.archive_size,
                        airgap_format::display::count(result.blobs as u64, "blob"),
                        result.key_id,
                    );
                } else {
                    let n = result.parts.len();
                    println!(
                        "wrote {} as {} ({} bytes, {}, signed by {}):",
                        result.path.display(),
                        airgap_format::display::count(n as u64, "part"),
                        result.archive_size,
                        airgap_format::display::count(result.blobs as u64, "blob"),
                        result.key_id,
                    );
                    for p in &result.parts {
                        println!("    {}", p.display());
                    }
                }
                println!("bundle digest {}", result.bundle_digest);
                if let Some(b) = &result.base {
                    println!(
                        "delta against {} {} ({}): {} blobs ({} bytes) left to the base",
                        b.name,
                        b.version,
                        b.digest,
                        result.blobs_left_to_base,
                        result.bytes_left_to_base
                    );
                }
                if let Some(s) = &result.sbom {
                    println!(
                        "SBOMs: {} scanned, {}, {}, {} ({:.2} s)",
                        airgap_format::display::count(s.images_scanned as u64, "image platform"),
                        airgap_format::display::count(s.packages as u64, "package"),
                        airgap_format::display::count(s.vendor_sboms as u64, "vendor SBOM"),
                        airgap_format::display::count(s.warnings.len() as u64, "warning"),
                        s.seconds
                    );
                    // Every build that scanned says where its layer scans came from.
                    if s.layers_read + s.layers_cached > 0 {
                        println!(
                            "layer scans: {} read, {} from the scan cache",
                            s.layers_read, s.layers_cached
                        );
                    }
                }
                if let Some(p) = result.pull {
                    println!(
                        "pulled {} blobs ({} bytes); {} from the cache",
                        p.blobs_downloaded, p.bytes_downloaded, p.cache_hits
                    );
                }
            }
        }
        Command::Lock {
            manifest,
            out,
            pull,
            json,
        } => {
            let (path, lock) = lock_manifest(&manifest, out.as_deref(), pull.options()?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&lock)?);
            } else {
                for i in &lock.images {
                    println!("{}\n    {}", i.source, i.resolved);
                }
                for c in &lock.charts {
                    let name = c
                        .chart
                        .as_deref()
                        .map(|n| format!(" {n}"))
                        .unwrap_or_default();
                    println!("{}{name} {}\n    {}", c.source, c.version, c.digest);
                }
                println!(
                    "wrote {} ({}, {} pinned)",
                    path.display(),
                    airgap_format::display::count(lock.images.len() as u64, "image"),
                    airgap_format::display::count(lock.charts.len() as u64, "chart")
                );
            }
        }
        Command::Inspect { file, json } => {
            print!(
                "{}",
                airgap_format::inspect::inspect(&file)?.to_output(json)
            );
        }
        Command::License {
            command:
                LicenseCommand::Issue {
                    request,
                    key,
                    customer,
                    expires,
                    not_before,
                    grace_days,
                    features,
                    limits,
                    ledger,
                    out,
                },
        } => {
            use airgap_licenses::{issue, ledger::Ledger, Request, Terms};
            // Option values first: a malformed one is a usage error (exit
            // 2), whatever the files hold.
            let mut parsed_limits = std::collections::BTreeMap::new();
            let usage = |option: &str, e: airgap_licenses::LicenseError| {
                UsageError(format!("{option}: {e}"))
            };
            for l in &limits {
                let (name, value) = issue::parse_limit(l).map_err(|e| usage("--limit", e))?;
                if parsed_limits.insert(name.clone(), value).is_some() {
                    return Err(UsageError(format!(
                        "--limit {name} is given twice; give each limit once"
                    ))
                    .into());
                }
            }
            let terms = Terms {
                customer,
                expires: issue::parse_date(&expires).map_err(|e| usage("--expires", e))?,
                not_before: not_before
                    .as_deref()
                    .map(issue::parse_date)
                    .transpose()
                    .map_err(|e| usage("--not-before", e))?,
                grace_days,
                features: issue::parse_features(&features.join(","))
                    .map_err(|e| usage("--features", e))?,
                limits: parsed_limits,
            };
            let request = Request::from_file(&request)?;
            let secret = SecretKey::from_file(&key)?;
            let ledger = ledger.unwrap_or_else(|| {
                key.parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(std::path::Path::new("."))
                    .join("licenses-issued.json")
            });
            // Check the request and terms before a serial is reserved, so a
            // refused licence costs no serial (issuing is deterministic).
            airgap_licenses::issue(
                &request,
                &terms,
                1,
                secret.signing_key(),
                secret.key_id(),
                time::OffsetDateTime::now_utc(),
            )?;
            let serial = Ledger::next_serial(&ledger, &Ledger::site_key(&request))?;
            let text = airgap_licenses::issue(
                &request,
                &terms,
                serial,
                secret.signing_key(),
                secret.key_id(),
                time::OffsetDateTime::now_utc(),
            )?;
            airgap_format::atomic_file::write_file_atomic(&out, text.as_bytes(), 0o644)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "wrote {}: serial {serial} for {} ({}), expires {}; ledger {}",
                out.display(),
                terms.customer,
                request.product,
                expires,
                ledger.display()
            );
        }
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
    }
    Ok(())
}

fn main() -> ExitCode {
    airgap_cli::progress::run_main(|| run(Cli::parse()))
}
