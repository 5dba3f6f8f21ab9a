//! Licence verification for `license activate` and `license status`.
//!
//! [`verify`] applies every check in a fixed order and stops at the first
//! failure: armor and envelope; algorithm; trusted key and signature; signed
//! payload and headers; product; node fingerprint; clock; validity window;
//! serial against the active licence.

use airgap_format::PublicKey;
use time::{Duration, OffsetDateTime};

use crate::clock::{check_clock, is_behind, DEFAULT_MAX_DRIFT};
use crate::error::LicenseError;
use crate::fingerprint::{Component, Fingerprint, NodeIds};
use crate::license::{ArmoredLicense, LicensePayload};

/// The licence currently active on the node, as the installer stored it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActiveLicense {
    /// Its serial.
    pub serial: u64,
    /// Its digest ([`Verified::digest`]).
    pub digest: String,
}

/// What a licence is checked against, besides the trusted keys and the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The time now, from the system clock.
    pub now: OffsetDateTime,
    /// The latest time seen before (the installer's watermark), if any.
    pub watermark: Option<OffsetDateTime>,
    /// How far `now` may be behind the watermark or the issue time.
    pub max_drift: Duration,
    /// The active licence, if any: the new one must not have a lower serial.
    pub active: Option<ActiveLicense>,
    /// The product the caller expects; `None` accepts any product (the
    /// fingerprint check still applies, keyed with the licence's product).
    pub product: Option<String>,
}

impl Context {
    /// A context at `now`, with no watermark, no active licence, any product
    /// and [`DEFAULT_MAX_DRIFT`].
    pub fn new(now: OffsetDateTime) -> Self {
        Context {
            now,
            watermark: None,
            max_drift: DEFAULT_MAX_DRIFT,
            active: None,
            product: None,
        }
    }
}

/// Where a verified licence stands at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Within its validity window.
    Valid {
        /// Whole days until it expires (rounded down).
        days_left: u32,
    },
    /// Expired, but within its grace period: it still works and the caller
    /// warns.
    Grace {
        /// End of the grace period.
        grace_ends: OffsetDateTime,
        /// Whole days until the grace period ends (rounded down).
        days_left: u32,
    },
}

/// A licence that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The signed payload.
    pub payload: LicensePayload,
    /// The licence's identity: SHA-256 of the signed payload bytes, hex.
    pub digest: String,
    /// Valid or in its grace period.
    pub standing: Standing,
    /// The licence is the active one (same serial and digest): activating
    /// it again changes nothing.
    pub same_as_active: bool,
}

/// An authentic licence and where it stands on this node, for `license status`.
#[derive(Debug)]
pub struct Status {
    /// The signed payload.
    pub payload: LicensePayload,
    /// The licence's identity (see [`Verified::digest`]).
    pub digest: String,
    /// The result of the product, node, clock and validity checks: a
    /// standing, or why the licence does not work here now.
    pub standing: Result<Standing, LicenseError>,
}

/// Verifies licence text for activation. `what` names the file in errors;
/// `trusted` are the vendor keys; `node` this node's ids. Checks, stopping
/// at the first failure:
///
/// 1. armor and envelope are well formed;
/// 2. the envelope's algorithm is on the allow-list;
/// 3. the key id is trusted and the signature verifies;
/// 4. the signed payload follows the rules, its `alg` and `keyId` equal the
///    envelope's, and every header equals the signed value;
/// 5. the product is `ctx.product` (when given);
/// 6. every bound fingerprint component equals this node's;
/// 7. the clock is not set back: `now` is not earlier than the watermark,
///    nor than `issuedAt`, by more than `ctx.max_drift`;
/// 8. `notBefore <= now < expires + graceDays` (grace: accepted, flagged);
/// 9. the serial is not lower than the active licence's, and an equal
///    serial means the same licence.
pub fn verify(
    text: &str,
    what: &str,
    trusted: &[PublicKey],
    node: &NodeIds,
    ctx: &Context,
) -> Result<Verified, LicenseError> {
    let (payload, digest) = authenticate(text, what, trusted)?;
    let standing = evaluate(&payload, what, node, ctx)?;
    let mut same_as_active = false;
    if let Some(active) = &ctx.active {
        if payload.serial < active.serial {
            return Err(LicenseError::OlderSerial {
                what: what.to_string(),
                serial: payload.serial,
                active: active.serial,
            });
        }
        if payload.serial == active.serial {
            if digest != active.digest {
                return Err(LicenseError::SerialConflict {
                    what: what.to_string(),
                    serial: payload.serial,
                });
            }
            same_as_active = true;
        }
    }
    Ok(Verified {
        payload,
        digest,
        standing,
        same_as_active,
    })
}

/// For `license status` on a stored licence: checks 1 to 4 of [`verify`]
/// as errors (an unauthentic licence shows nothing), then checks 5 to 8
/// into [`Status::standing`], so that an expired or moved licence can still
/// be shown with the reason it does not work. `ctx.active` is ignored.
pub fn status(
    text: &str,
    what: &str,
    trusted: &[PublicKey],
    node: &NodeIds,
    ctx: &Context,
) -> Result<Status, LicenseError> {
    let (payload, digest) = authenticate(text, what, trusted)?;
    let standing = evaluate(&payload, what, node, ctx);
    Ok(Status {
        payload,
        digest,
        standing,
    })
}

/// Checks 1 to 4: the signed payload and the licence's digest.
fn authenticate(
    text: &str,
    what: &str,
    trusted: &[PublicKey],
) -> Result<(LicensePayload, String), LicenseError> {
    let armored = ArmoredLicense::parse(text, what)?;
    let payload = armored.verify_signature(what, trusted)?;
    Ok((payload, armored.digest()))
}

/// Checks 5 to 8 on an authentic payload.
fn evaluate(
    payload: &LicensePayload,
    what: &str,
    node: &NodeIds,
    ctx: &Context,
) -> Result<Standing, LicenseError> {
    if let Some(expected) = &ctx.product {
        if *expected != payload.product {
            return Err(LicenseError::WrongProduct {
                what: what.to_string(),
                product: payload.product.clone(),
                expected: expected.clone(),
            });
        }
    }
    check_node(payload, what, node)?;
    check_clock(what, ctx.now, ctx.watermark, ctx.max_drift)?;
    if is_behind(ctx.now, payload.issued_at, ctx.max_drift) {
        return Err(LicenseError::ClockBehind {
            what: what.to_string(),
            now: ctx.now,
            issued_at: payload.issued_at,
        });
    }
    standing_at(payload, what, ctx.now)
}

fn check_node(payload: &LicensePayload, what: &str, node: &NodeIds) -> Result<(), LicenseError> {
    let local = Fingerprint::compute(&payload.product, node)?;
    let wrong = |component| LicenseError::WrongNode {
        what: what.to_string(),
        component,
    };
    // Machine first: the likelier mistake, and the more useful message.
    for component in [Component::Machine, Component::Cluster] {
        if !payload.binds(component) {
            continue;
        }
        match component {
            Component::Machine => {
                if local.machine != payload.fingerprint.machine {
                    return Err(wrong(component));
                }
            }
            Component::Cluster => match &local.cluster {
                None => {
                    return Err(LicenseError::ClusterUidRequired {
                        what: what.to_string(),
                    })
                }
                Some(cluster) => {
                    if payload.fingerprint.cluster.as_ref() != Some(cluster) {
                        return Err(wrong(component));
                    }
                }
            },
        }
    }
    Ok(())
}

/// Where an authentic payload stands at `now`: not yet valid and expired
/// past its grace period are errors.
pub fn standing_at(
    payload: &LicensePayload,
    what: &str,
    now: OffsetDateTime,
) -> Result<Standing, LicenseError> {
    if now < payload.not_before {
        return Err(LicenseError::NotYetValid {
            what: what.to_string(),
            not_before: payload.not_before,
        });
    }
    let days =
        |end: OffsetDateTime| u32::try_from((end - now).whole_days().max(0)).unwrap_or(u32::MAX);
    if now < payload.expires {
        return Ok(Standing::Valid {
            days_left: days(payload.expires),
        });
    }
    let grace_ends = payload.grace_ends();
    if now < grace_ends {
        return Ok(Standing::Grace {
            grace_ends,
            days_left: days(grace_ends),
        });
    }
    Err(LicenseError::Expired {
        what: what.to_string(),
        expires: payload.expires,
        grace_days: payload.grace_days,
        grace_ended: grace_ends,
    })
}
