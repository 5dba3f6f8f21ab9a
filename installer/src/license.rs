//! Licences at the site: the request a node sends out, activation of the
//! signed licence that comes back (from a file or carried in a bundle), and
//! its status. The checks themselves live in the `airgap-licenses` crate;
//! this module ties them to this node's identity and the installer's state
//! (active licence, clock watermark, audit log).

use airgap_format::display::escape as e;
use std::path::{Path, PathBuf};

use airgap_format::atomic_file::write_file_atomic;
use airgap_format::PublicKey;
use airgap_licenses::clock::DEFAULT_MAX_DRIFT;
use airgap_licenses::verify::{ActiveLicense, Context as LicenseContext, Standing};
use airgap_licenses::{LicensePayload, NodeIds, Request};
use anyhow::{Context, Result};
use serde::Serialize;
use time::OffsetDateTime;

use crate::state::{rfc3339, LicenseRecord, State};

/// Environment variable naming the root the machine id is read under
/// (`ROOT/etc/machine-id`), for an installer running in a container with
/// the host's `/etc` mounted elsewhere. Default `/`.
pub const HOST_ROOT_ENV: &str = "AIRGAP_INSTALL_HOST_ROOT";

/// This node's identity: its machine id (under `$AIRGAP_INSTALL_HOST_ROOT`
/// or `/`) and, when given, the Kubernetes cluster's `kube-system` UID.
pub fn node_ids(cluster_uid: Option<&str>) -> Result<NodeIds> {
    let root = std::env::var_os(HOST_ROOT_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"));
    Ok(NodeIds::read(&root, cluster_uid)?)
}

/// The product a request is for when `--product` is not given: the one
/// bundle installed; when none or several are, an error with the fix.
pub fn default_product(state_root: &Path) -> Result<String> {
    let installed = State::open_read_only(state_root)
        .install_names()
        .unwrap_or_default();
    match installed.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!(
            "nothing is installed yet, so the product is not known: give --product NAME, the bundle's name (airgap-install inspect BUNDLE shows it)"
        ),
        several => anyhow::bail!(
            "{} bundles are installed ({}): give --product NAME for the one the licence is for",
            several.len(),
            several.join(", ")
        ),
    }
}

/// Writes a licence request for `product` from this node to `out`.
pub fn request(product: &str, node: &NodeIds, out: &Path) -> Result<Request> {
    let installer = format!("airgap-install {}", env!("CARGO_PKG_VERSION"));
    let request = Request::new(product, node, &installer, OffsetDateTime::now_utc())?;
    write_file_atomic(out, request.to_json_pretty().as_bytes(), 0o644)
        .with_context(|| format!("{}: cannot write the request", out.display()))?;
    Ok(request)
}

/// What activating a licence did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Activation {
    /// The licence's terms.
    pub license: LicenseSummary,
    /// It was the active licence already: nothing changed.
    pub already_active: bool,
    /// The serial of the licence it replaced, if any.
    pub replaced_serial: Option<u64>,
}

/// A licence's terms and where it stands, for people and for `--json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LicenseSummary {
    /// Product id.
    pub product: String,
    /// Customer.
    pub customer: String,
    /// Serial number.
    pub serial: u64,
    /// Issue time.
    pub issued_at: String,
    /// Start of validity.
    pub not_before: String,
    /// End of validity.
    pub expires: String,
    /// Grace period after `expires`, in days.
    pub grace_days: u32,
    /// End of the grace period.
    pub grace_ends: String,
    /// Licensed features.
    pub features: Vec<String>,
    /// Licensed limits.
    pub limits: std::collections::BTreeMap<String, u64>,
    /// Signing key id.
    pub key_id: String,
    /// Where it stands: `valid`, `grace` or `invalid`.
    pub state: LicenseState,
    /// Whole days until expiry (`valid`) or until the grace period ends (`grace`).
    pub days_left: Option<u32>,
    /// Why it does not work here now (`invalid` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Where a licence stands here and now, as `--json` and the audit log
/// name it: the [`Standing`] the licences crate found, or `invalid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LicenseState {
    /// Within its validity window.
    Valid,
    /// Expired, but within its grace period: it still works, with a warning.
    Grace,
    /// It does not work here now (see the summary's `problem`).
    Invalid,
}

impl From<&Standing> for LicenseState {
    fn from(s: &Standing) -> Self {
        match s {
            Standing::Valid { .. } => LicenseState::Valid,
            Standing::Grace { .. } => LicenseState::Grace,
        }
    }
}

impl LicenseSummary {
    fn new(p: &LicensePayload, standing: Result<Standing, String>) -> Self {
        let (state, days_left, problem) = match standing {
            Ok(s @ Standing::Valid { days_left }) | Ok(s @ Standing::Grace { days_left, .. }) => {
                (LicenseState::from(&s), Some(days_left), None)
            }
            Err(e) => (LicenseState::Invalid, None, Some(e)),
        };
        LicenseSummary {
            product: p.product.clone(),
            customer: p.customer.clone(),
            serial: p.serial,
            issued_at: rfc3339(p.issued_at),
            not_before: rfc3339(p.not_before),
            expires: rfc3339(p.expires),
            grace_days: p.grace_days,
            grace_ends: rfc3339(p.grace_ends()),
            features: p.features.clone(),
            limits: p.limits.clone(),
            key_id: p.key_id.clone(),
            state,
            days_left,
            problem,
        }
    }

    /// Several lines for people; every value from the licence escaped.
    pub fn to_text(&self) -> String {
        let limits = if self.limits.is_empty() {
            "none".to_string()
        } else {
            self.limits
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let standing = match (self.state, self.days_left) {
            (LicenseState::Valid, Some(d)) => format!("valid, {d} days left"),
            (LicenseState::Grace, Some(d)) => format!(
                "EXPIRED on {}, in its grace period: {d} days left until {}",
                self.expires, self.grace_ends
            ),
            _ => format!(
                "NOT VALID: {}",
                self.problem.as_deref().unwrap_or("unknown reason")
            ),
        };
        format!(
            "Customer:  {}\nProduct:   {}\nSerial:    {}\nIssued:    {}\nValid:     {} to {} (grace {} days)\nFeatures:  {}\nLimits:    {}\nSigned by: {}\nStatus:    {}\n",
            e(&self.customer),
            e(&self.product),
            self.serial,
            e(&self.issued_at),
            e(&self.not_before),
            e(&self.expires),
            self.grace_days,
            e(&if self.features.is_empty() { "none".to_string() } else { self.features.join(", ") }),
            e(&limits),
            e(&self.key_id),
            e(&standing)
        )
    }
}

fn context(state: &State, now: OffsetDateTime, product: Option<&str>) -> Result<LicenseContext> {
    let active = state.active_license()?.map(|(_, r)| ActiveLicense {
        serial: r.serial,
        digest: r.digest,
    });
    Ok(LicenseContext {
        now,
        watermark: state.watermark()?,
        max_drift: DEFAULT_MAX_DRIFT,
        active,
        product: product.map(str::to_string),
    })
}

/// The text of the licence a bundle carries, read from the archive and
/// checked against its signed digest; `None` when it carries none.
pub fn bundle_license_text(bundle: &airgap_format::SignedBundle) -> Result<Option<String>> {
    let Some(entry) = &bundle.descriptor.license else {
        return Ok(None);
    };
    let bytes = bundle.read_blob(&entry.digest, crate::state::MAX_LICENSE_FILE, "license")?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("license {}: not UTF-8 text", entry.digest))?;
    Ok(Some(text))
}

/// Verifies `text` (named `what` in errors) for this node and `product`
/// as [`activate`] would, without storing anything or moving the clock
/// watermark: what `preflight` reports.
pub fn check(
    state: &State,
    text: &str,
    what: &str,
    trusted: &[PublicKey],
    node: &NodeIds,
    product: Option<&str>,
) -> Result<LicenseSummary> {
    let ctx = context(state, OffsetDateTime::now_utc(), product)?;
    let verified = airgap_licenses::verify::verify(text, what, trusted, node, &ctx)?;
    Ok(LicenseSummary::new(
        &verified.payload,
        Ok(verified.standing),
    ))
}

/// Verifies `text` (named `what` in errors) for this node and, when it
/// passes, stores it as the active licence and moves the clock watermark.
/// `product`, when given, is the product the licence must be for (the
/// bundle's name when a bundle carries it). `source` is recorded.
pub fn activate(
    state: &State,
    text: &str,
    what: &str,
    source: &str,
    trusted: &[PublicKey],
    node: &NodeIds,
    product: Option<&str>,
) -> Result<Activation> {
    let now = OffsetDateTime::now_utc();
    let ctx = context(state, now, product)?;
    let replaced_serial = ctx.active.as_ref().map(|a| a.serial);
    let verified = airgap_licenses::verify::verify(text, what, trusted, node, &ctx)?;
    state.observe_time(now, DEFAULT_MAX_DRIFT)?;
    if !verified.same_as_active {
        state.store_license(
            text,
            &LicenseRecord {
                serial: verified.payload.serial,
                digest: verified.digest.clone(),
                activated_at: rfc3339(now.replace_nanosecond(0).unwrap_or(now)),
                source: source.to_string(),
            },
        )?;
    }
    Ok(Activation {
        license: LicenseSummary::new(&verified.payload, Ok(verified.standing)),
        already_active: verified.same_as_active,
        replaced_serial: replaced_serial.filter(|_| !verified.same_as_active),
    })
}

/// The active licence and where it stands now; `None` when none was
/// activated. A stored licence that no longer verifies (changed keys, a
/// damaged state file) is an error.
pub fn status(
    state: &State,
    trusted: &[PublicKey],
    node: &NodeIds,
) -> Result<Option<LicenseSummary>> {
    let Some((text, _)) = state.active_license()? else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc();
    let ctx = context(state, now, None)?;
    let what = state
        .root()
        .join("license/active.lic")
        .display()
        .to_string();
    let s = airgap_licenses::verify::status(&text, &what, trusted, node, &ctx)?;
    let standing = s.standing.map_err(|e| e.to_string());
    if standing.is_ok() {
        // The clock was checked against the watermark above. Moving the
        // watermark forward is kept when the state folder can be written,
        // but one that cannot (a full disk) must not hide the status.
        if let Err(e) = state.observe_time(now, DEFAULT_MAX_DRIFT) {
            tracing::warn!("{e:#}; the clock watermark was not moved forward");
        }
    }
    Ok(Some(LicenseSummary::new(&s.payload, standing)))
}

/// The active licence's text, for rendering the control plane's
/// configuration; `None` when none was activated.
pub fn active_text(state_root: &Path) -> Result<Option<String>> {
    let path = state_root.join("license/active.lic");
    match crate::state::read_bounded(&path, crate::state::MAX_LICENSE_FILE)? {
        None => Ok(None),
        Some(bytes) => {
            Ok(Some(String::from_utf8(bytes).with_context(|| {
                format!("{}: not UTF-8", path.display())
            })?))
        }
    }
}
