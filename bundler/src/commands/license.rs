//! `airgap-bundle license issue`: node-locked licences, the vendor's side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use airgap_bundle::sign::SecretKey;
use airgap_cli::progress::UsageError;
use airgap_licenses::{issue, ledger::Ledger, LicenseError, Request, Terms};
use anyhow::Result;

/// Arguments of `license`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The `license` subcommands.
#[derive(clap::Subcommand)]
enum Command {
    /// Sign a licence bound to the node fingerprint in a site's request.
    Issue(IssueArgs),
}

/// Arguments of `license issue`.
#[derive(clap::Args)]
struct IssueArgs {
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
}

/// Runs the `license` subcommand given.
pub fn run(args: Args) -> Result<()> {
    match args.command {
        Command::Issue(args) => run_issue(args),
    }
}

/// Signs a licence for the request's node, taking the next serial from the
/// ledger, and says what was written.
fn run_issue(args: IssueArgs) -> Result<()> {
    let IssueArgs {
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
    } = args;
    // Option values first: a malformed one is a usage error (exit 2),
    // whatever the files hold.
    let mut parsed_limits = BTreeMap::new();
    let usage = |option: &str, e: LicenseError| UsageError(format!("{option}: {e}"));
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
        features: issue::parse_features(&features.join(",")).map_err(|e| usage("--features", e))?,
        limits: parsed_limits,
    };
    let request = Request::from_file(&request)?;
    let secret = SecretKey::from_file(&key)?;
    let ledger = ledger.unwrap_or_else(|| {
        key.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
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
    airgap_cli::report::print_text(&format!(
        "wrote {}: serial {serial} for {} ({}), expires {}; ledger {}",
        out.display(),
        terms.customer,
        request.product,
        expires,
        ledger.display()
    ))
}
