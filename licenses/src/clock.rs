//! Clock rollback detection. The installer keeps a watermark, the latest
//! time it has seen; a clock reading earlier than the watermark by more than
//! a small drift means the clock was set back (perhaps to stretch an expired
//! licence) and is refused.

use time::{Duration, OffsetDateTime};

use crate::error::LicenseError;

/// How far the clock may read behind the watermark (or behind a licence's
/// issue time) before it counts as set back: 5 minutes.
pub const DEFAULT_MAX_DRIFT: Duration = Duration::minutes(5);

/// Refuses `now` if it is earlier than `watermark` by more than `max_drift`
/// (a negative drift counts as zero). `what` names the input in the error.
pub fn check_clock(
    what: &str,
    now: OffsetDateTime,
    watermark: Option<OffsetDateTime>,
    max_drift: Duration,
) -> Result<(), LicenseError> {
    let Some(last_seen) = watermark else {
        return Ok(());
    };
    if is_behind(now, last_seen, max_drift) {
        return Err(LicenseError::ClockSetBack {
            what: what.to_string(),
            now,
            last_seen,
            max_drift: max_drift.max(Duration::ZERO),
        });
    }
    Ok(())
}

/// Whether `now` is earlier than `reference` by more than `max_drift`.
pub(crate) fn is_behind(
    now: OffsetDateTime,
    reference: OffsetDateTime,
    max_drift: Duration,
) -> bool {
    match now.checked_add(max_drift.max(Duration::ZERO)) {
        Some(latest) => latest < reference,
        None => false,
    }
}

/// The watermark to store after a successful check at `now`: the later of
/// the two, so it never moves back (not even within the drift).
pub fn advance_watermark(watermark: Option<OffsetDateTime>, now: OffsetDateTime) -> OffsetDateTime {
    match watermark {
        Some(w) if w > now => w,
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn drift_is_tolerated_and_beyond_it_refused() {
        let mark = datetime!(2026-06-01 12:00:00 UTC);
        let d = DEFAULT_MAX_DRIFT;
        assert!(check_clock("state", mark, None, d).is_ok());
        assert!(check_clock("state", mark - Duration::minutes(5), Some(mark), d).is_ok());
        assert!(check_clock("state", mark + Duration::days(3), Some(mark), d).is_ok());
        let err = check_clock("state", mark - Duration::minutes(6), Some(mark), d).unwrap_err();
        assert_eq!(
            err.to_string(),
            "state: system clock set back: it reads 2026-06-01T11:54:00Z, earlier than the last time seen (2026-06-01T12:00:00Z) by more than the allowed 5 minutes; correct the clock"
        );
        assert_eq!(
            advance_watermark(Some(mark), mark - Duration::minutes(1)),
            mark
        );
        assert_eq!(
            advance_watermark(Some(mark), mark + Duration::SECOND),
            mark + Duration::SECOND
        );
        assert_eq!(advance_watermark(None, mark), mark);
    }
}
