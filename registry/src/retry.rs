//! The one retry policy of every registry request, pull and push alike:
//! how many attempts, how long to wait before the next one (doubling,
//! bounded, or longer when the registry's `Retry-After` asks), and the
//! line that says so on a terminal.

use std::io::IsTerminal;
use std::time::Duration;

use ureq::http::Response;
use ureq::Body;

/// Attempts for one request (or one download without progress, one
/// upload session) before giving up.
pub const ATTEMPTS: u32 = 6;
/// Longest wait a `Retry-After` header is honoured for; a registry that
/// asks for longer is asked again after this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Attempts and waits: the first wait, doubled after each failure up to a
/// longest, or what the registry asked for when that is longer (up to a
/// bound).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait after the first failure.
    pub first: Duration,
    /// Times the wait doubles at most (0.2 s doubled 5 times is 6.4 s).
    pub doublings: u32,
    /// Longest `Retry-After` honoured.
    pub max_retry_after: Duration,
}

/// The policy of every request: 6 attempts, 0.2 s doubling up to 6.4 s,
/// a `Retry-After` honoured up to 60 s.
pub const POLICY: Policy = Policy {
    attempts: ATTEMPTS,
    first: Duration::from_millis(200),
    doublings: 5,
    max_retry_after: MAX_RETRY_AFTER,
};

impl Policy {
    /// The wait after failed attempt `attempt` (counted from 1), before
    /// the next: ours, or what the registry asked for when that is longer
    /// (at most [`Policy::max_retry_after`]).
    pub fn delay(&self, attempt: u32, asked: Option<Duration>) -> Duration {
        let ours = self.first * (1u32 << attempt.saturating_sub(1).min(self.doublings));
        match asked {
            Some(asked) => ours.max(asked.min(self.max_retry_after)),
            None => ours,
        }
    }

    /// The wait before another attempt after failed attempt `attempt`, or
    /// `None` when it was the last one.
    pub fn next(&self, attempt: u32, asked: Option<Duration>) -> Option<Duration> {
        (attempt < self.attempts).then(|| self.delay(attempt, asked))
    }
}

/// The wait before attempt `attempt + 1` under [`POLICY`]: 0.2 s doubling
/// up to 6.4 s, or what the registry's `Retry-After` asked for when that
/// is longer (at most [`MAX_RETRY_AFTER`]).
pub fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    POLICY.delay(attempt, retry_after)
}

/// Whether an HTTP status is worth asking again: 429 and any 5xx.
pub fn retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// The wait a response's `Retry-After` header asks for, in seconds (the
/// form registries send; an HTTP date is not read and leaves the
/// back-off as it is).
pub fn retry_after(resp: &Response<Body>) -> Option<Duration> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// Parses a `Retry-After` value in whole seconds (`120`); an HTTP date or
/// anything else is `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The line that says a request to `host` is tried again:
/// `registry.example:5000: connection refused; retrying in 0.4 s (attempt 3 of 6)`.
pub fn retry_line(host: &str, reason: &str, delay: Duration, next: u32, attempts: u32) -> String {
    let secs = delay.as_secs_f64();
    let wait = if delay.subsec_millis() == 0 {
        format!("{} s", delay.as_secs())
    } else {
        format!("{secs:.1} s")
    };
    format!("{host}: {reason}; retrying in {wait} (attempt {next} of {attempts})")
}

/// Says that a request is tried again ([`retry_line`]): as a warning
/// when standard error is a terminal, so that a wait is never silent;
/// otherwise at info level, for logs (`RUST_LOG=info`).
pub fn report_retry(host: &str, reason: &str, delay: Duration, next: u32, attempts: u32) {
    let line = retry_line(host, reason, delay, next, attempts);
    if std::io::stderr().is_terminal() {
        tracing::warn!("{line}");
    } else {
        tracing::info!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds() {
        let ms = Duration::from_millis;
        let waits: Vec<Duration> = (1..=8).map(|a| backoff(a, None)).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 6400, 6400, 6400].map(ms));
        // Attempt 0 (never asked for) is not a panic.
        assert_eq!(backoff(0, None), ms(200));
        assert_eq!(backoff(u32::MAX, None), ms(6400));
    }

    #[test]
    fn backoff_waits_as_asked_within_bounds() {
        let s = Duration::from_secs;
        assert_eq!(backoff(1, Some(s(8))), s(8));
        assert_eq!(backoff(5, Some(s(1))), Duration::from_millis(3200));
        assert_eq!(backoff(1, Some(s(6 * 3600))), MAX_RETRY_AFTER);
    }

    #[test]
    fn next_stops_after_the_last_attempt() {
        assert_eq!(POLICY.next(1, None), Some(Duration::from_millis(200)));
        assert_eq!(POLICY.next(5, None), Some(Duration::from_millis(3200)));
        assert_eq!(POLICY.next(6, None), None);
        let once = Policy {
            attempts: 1,
            ..POLICY
        };
        assert_eq!(once.next(1, None), None);
    }

    #[test]
    fn statuses_and_retry_after() {
        assert!(retryable_status(429) && retryable_status(500) && retryable_status(599));
        assert!(!retryable_status(404) && !retryable_status(400) && !retryable_status(600));
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn retries_are_said_in_one_line() {
        assert_eq!(
            retry_line(
                "registry.example:5000",
                "connection refused",
                Duration::from_secs(2),
                2,
                6
            ),
            "registry.example:5000: connection refused; retrying in 2 s (attempt 2 of 6)"
        );
        assert_eq!(
            retry_line("r", "HTTP 503", Duration::from_millis(400), 3, 6),
            "r: HTTP 503; retrying in 0.4 s (attempt 3 of 6)"
        );
    }
}
