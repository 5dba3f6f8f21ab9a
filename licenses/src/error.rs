//! Why a licence, a request or a node identity is refused: one variant per
//! refusal, each a one-line message that names the file.

use std::fmt;

use time::{Duration, OffsetDateTime};

use crate::fingerprint::Component;
use crate::limits::MAX_QUOTED_CHARS;
use crate::utc;

/// Why a licence, request, node identity or ledger is refused. Every message
/// is one line and starts with the file (or other input) concerned.
#[derive(Debug, thiserror::Error)]
pub enum LicenseError {
    /// Reading or writing a file failed.
    #[error("{what}: {source}")]
    Io {
        /// The file.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The input is larger than its bound (see [`crate::limits`]).
    #[error("{what}: larger than {limit} bytes")]
    TooLarge {
        /// The file.
        what: String,
        /// The bound, in bytes.
        limit: u64,
    },
    /// The input is not in the expected format (truncated, garbled, a field
    /// out of its rules); `reason` says what is wrong.
    #[error("{what}: {reason}")]
    Malformed {
        /// The file.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The signature algorithm is not on the allow-list.
    #[error("{what}: algorithm {alg:?} is not allowed (allowed: {allowed})", allowed = crate::license::ALLOWED_ALGORITHMS.join(", "))]
    AlgorithmNotAllowed {
        /// The file.
        what: String,
        /// The algorithm named by the file (shortened if long).
        alg: String,
    },
    /// Signed by a key that is not trusted.
    #[error("{what}: signed by unknown key {key_id} (trusted: {trusted})")]
    UnknownKey {
        /// The file.
        what: String,
        /// The signer's key id.
        key_id: String,
        /// The trusted key ids, comma-separated, or "none".
        trusted: String,
    },
    /// The signature does not match the signed payload.
    #[error("{what}: signature by key {key_id} does not match the licence (altered or corrupted)")]
    BadSignature {
        /// The file.
        what: String,
        /// The signer's key id.
        key_id: String,
    },
    /// A human-readable header differs from the signed payload.
    #[error("{what}: header {header} does not match the signed licence")]
    HeaderMismatch {
        /// The file.
        what: String,
        /// The header name (`Customer`, …).
        header: &'static str,
    },
    /// The licence is for another product than the one expected.
    #[error("{what}: licence is for product {product:?}, not {expected:?}")]
    WrongProduct {
        /// The file.
        what: String,
        /// The product the licence is for.
        product: String,
        /// The product expected.
        expected: String,
    },
    /// A bound fingerprint component differs from this node's.
    #[error("{what}: licence is for another node ({component} fingerprint differs)")]
    WrongNode {
        /// The file.
        what: String,
        /// The component that differs.
        component: Component,
    },
    /// The licence is bound to a cluster but no cluster UID was given.
    #[error("{what}: licence is bound to a Kubernetes cluster, but no cluster UID was given (pass --cluster-uid with the UID of the kube-system namespace)")]
    ClusterUidRequired {
        /// The file.
        what: String,
    },
    /// The clock reads earlier than the last time seen, by more than the
    /// allowed drift.
    #[error("{what}: system clock set back: it reads {now}, earlier than the last time seen ({last_seen}) by more than the allowed {drift}; correct the clock", now = utc::format(*.now), last_seen = utc::format(*.last_seen), drift = human_duration(*.max_drift))]
    ClockSetBack {
        /// The file.
        what: String,
        /// The time now, as read from the clock.
        now: OffsetDateTime,
        /// The watermark: the latest time seen before.
        last_seen: OffsetDateTime,
        /// The allowed drift.
        max_drift: Duration,
    },
    /// The clock reads earlier than the licence's issue time, by more than
    /// the allowed drift.
    #[error("{what}: system clock is behind: it reads {now}, before the licence was issued ({issued_at}); correct the clock", now = utc::format(*.now), issued_at = utc::format(*.issued_at))]
    ClockBehind {
        /// The file.
        what: String,
        /// The time now, as read from the clock.
        now: OffsetDateTime,
        /// The licence's issue time.
        issued_at: OffsetDateTime,
    },
    /// The licence's validity starts later.
    #[error("{what}: not valid before {not_before}", not_before = utc::format(*.not_before))]
    NotYetValid {
        /// The file.
        what: String,
        /// Start of validity.
        not_before: OffsetDateTime,
    },
    /// The licence expired and its grace period is over.
    #[error("{what}: expired on {expires} ({grace})", expires = utc::format(*.expires), grace = grace_text(*.grace_days, *.grace_ended))]
    Expired {
        /// The file.
        what: String,
        /// End of validity.
        expires: OffsetDateTime,
        /// Length of the grace period.
        grace_days: u32,
        /// End of the grace period.
        grace_ended: OffsetDateTime,
    },
    /// The licence's serial is lower than the active licence's.
    #[error("{what}: serial {serial} is older than the active licence's serial {active}; refusing a replayed licence")]
    OlderSerial {
        /// The file.
        what: String,
        /// The licence's serial.
        serial: u64,
        /// The active licence's serial.
        active: u64,
    },
    /// The licence has the active licence's serial but is another licence.
    #[error("{what}: serial {serial} is the active licence's serial, but the licence differs; refusing a conflicting licence with the same serial")]
    SerialConflict {
        /// The file.
        what: String,
        /// The serial.
        serial: u64,
    },
    /// Licence terms given to the issuer break the format's rules.
    #[error("licence terms: {reason}")]
    InvalidTerms {
        /// What is wrong.
        reason: String,
    },
    /// No random bytes for a request nonce.
    #[error("cannot get random bytes for the request nonce: {reason}")]
    Random {
        /// The operating system's error.
        reason: String,
    },
}

impl LicenseError {
    /// The reason may quote the input (serde names an unknown field as it
    /// was written, newlines and all): it is kept to one line, with control
    /// and bidirectional characters escaped, and at most
    /// [`MAX_REASON_CHARS`](crate::limits::MAX_REASON_CHARS) characters.
    pub(crate) fn malformed(what: &str, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        let max = crate::limits::MAX_REASON_CHARS;
        let shown: String = reason.chars().take(max).collect();
        let mut reason_line = airgap_format::display::escape(&shown).into_owned();
        if shown.len() < reason.len() {
            reason_line.push('…');
        }
        LicenseError::Malformed {
            what: what.to_string(),
            reason: reason_line,
        }
    }

    pub(crate) fn io(what: impl fmt::Display, source: std::io::Error) -> Self {
        LicenseError::Io {
            what: what.to_string(),
            source,
        }
    }
}

/// Untrusted text shortened for an error message (quote it with `{:?}` so
/// that control characters are escaped).
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

fn grace_text(days: u32, ended: OffsetDateTime) -> String {
    match days {
        0 => "no grace period".to_string(),
        1 => format!("grace period of 1 day ended {}", utc::format(ended)),
        n => format!("grace period of {n} days ended {}", utc::format(ended)),
    }
}

/// "5 minutes", "90 seconds", "1 hour".
pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.whole_seconds();
    let (n, unit) = if secs != 0 && secs % 3600 == 0 {
        (secs / 3600, "hour")
    } else if secs != 0 && secs % 60 == 0 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}
