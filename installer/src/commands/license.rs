//! `airgap-install license request|activate|status`: node-locked licences.

use std::path::PathBuf;

use airgap_cli::args::OutputArgs;
use airgap_cli::progress::error_line;
use airgap_format::display::escape as e;
use airgap_format::PublicKey;
use airgap_install::license as lic;
use airgap_install::{state, trust};
use airgap_licenses::NodeIds;
use anyhow::Result;

use super::{print_text, show, Context};

/// The arguments of `license`: one of its subcommands.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Write a licence request for this node (its fingerprint, never the raw ids) to send to the vendor.
    Request(RequestArgs),
    /// Verify a licence for this node and make it the active one.
    Activate(ActivateArgs),
    /// Show the active licence; exit status 1 when it is not valid.
    Status(StatusArgs),
}

/// The arguments of `license request`.
#[derive(clap::Args)]
struct RequestArgs {
    /// Where to write the request.
    #[arg(long)]
    out: PathBuf,
    /// The Kubernetes cluster's identity (`kubectl get namespace kube-system -o jsonpath='{.metadata.uid}'`).
    #[arg(long)]
    cluster_uid: Option<String>,
    /// Product id: the bundle's name (default: the one installed bundle's; required before anything is installed).
    #[arg(long)]
    product: Option<String>,
    /// Print the request as JSON on standard output too.
    #[arg(long)]
    json: bool,
}

/// The arguments of `license activate`.
#[derive(clap::Args)]
struct ActivateArgs {
    /// The licence file.
    file: PathBuf,
    #[command(flatten)]
    check: CheckArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// The arguments of `license status`.
#[derive(clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    check: CheckArgs,
    #[command(flatten)]
    output: OutputArgs,
}

/// What a licence is checked against: the vendor's keys and this node.
#[derive(clap::Args)]
struct CheckArgs {
    /// A trusted vendor key (minisign format); repeatable.
    #[arg(long)]
    trust: Vec<PathBuf>,
    /// The Kubernetes cluster's identity, when the licence is bound to it.
    #[arg(long)]
    cluster_uid: Option<String>,
}

impl CheckArgs {
    /// The trusted keys, this node's identity and the state folder, opened.
    fn open(&self, ctx: &Context) -> Result<(Vec<PublicKey>, NodeIds, state::State)> {
        let trusted = trust::load_trusted(&self.trust, &ctx.config_dir)?;
        let node = lic::node_ids(self.cluster_uid.as_deref())?;
        let state = state::State::open(&ctx.state_dir)?;
        Ok((trusted, node, state))
    }
}

/// Runs the `license` subcommand named.
pub fn run(args: Args, ctx: &Context) -> Result<()> {
    match args.command {
        Command::Request(a) => request(a, ctx),
        Command::Activate(a) => activate(a, ctx),
        Command::Status(a) => status(a, ctx),
    }
}

/// Writes the request for this node and says where.
fn request(args: RequestArgs, ctx: &Context) -> Result<()> {
    let RequestArgs {
        out,
        cluster_uid,
        product,
        json,
    } = args;
    let node = lic::node_ids(cluster_uid.as_deref())?;
    let product = match product {
        Some(p) => p,
        None => lic::default_product(&ctx.state_dir)?,
    };
    let request = lic::request(&product, &node, &out)?;
    // As JSON: the text of the file written (pretty, with a newline).
    show(&request, json, |r| {
        format!(
            "wrote {}: licence request for product {} from machine fingerprint {}{}; send it to the vendor\n",
            e(&out.display().to_string()),
            e(&r.product),
            &r.fingerprint.machine[..16],
            if r.fingerprint.cluster.is_some() { " (with the cluster's)" } else { "" }
        )
    })
}

/// Verifies the licence, makes it the active one, records the outcome in
/// the audit log and shows the licence.
fn activate(args: ActivateArgs, ctx: &Context) -> Result<()> {
    let ActivateArgs {
        file,
        check,
        output: OutputArgs { json },
    } = args;
    let (trusted, node, state) = check.open(ctx)?;
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
    show(&a, json, |a| {
        format!(
            "{}: serial {}{}\n{}",
            if a.already_active {
                "already active"
            } else {
                "activated"
            },
            a.license.serial,
            a.replaced_serial
                .map(|s| format!(" (replaces serial {s})"))
                .unwrap_or_default(),
            a.license.to_text()
        )
    })
}

/// Shows the active licence; fails when there is none or it is not valid.
fn status(args: StatusArgs, ctx: &Context) -> Result<()> {
    let StatusArgs {
        check,
        output: OutputArgs { json },
    } = args;
    let (trusted, node, state) = check.open(ctx)?;
    let Some(s) = lic::status(&state, &trusted, &node)? else {
        if json {
            print_text(&format!("{}\n", serde_json::json!({"state": "none"})))?;
        }
        anyhow::bail!("no licence is active (airgap-install license activate FILE)");
    };
    show(&s, json, |s| s.to_text())?;
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
    Ok(())
}
