//! What can go wrong talking to a registry, as variants callers match on
//! (never on the words): not found, unauthorized (with the scope asked
//! for), denied, another status with the registry's error body, a reply
//! that breaks the protocol, the connection, TLS, a transport setting
//! that does not match the registry, and this side's own failures.

/// A registry request's failure. Each message is whole: it names the
/// request (or what was asked for) and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The registry has no such manifest, blob, repository or upload
    /// session (HTTP 404).
    #[error("{what}: not found (HTTP 404){}", body.suffix())]
    NotFound {
        /// What was asked for: `manifest host/repo:tag`, a request.
        what: String,
        /// The registry's error body.
        body: ErrorBody,
    },
    /// The registry (or its token service) wants other credentials than
    /// those given, or some when none were: HTTP 401.
    #[error("{message}")]
    Unauthorized {
        /// The scope asked for (`repository:a/b:pull,push`; empty for `/v2/`).
        scope: String,
        /// What happened and the fix.
        message: String,
    },
    /// The credentials were accepted but may not do this:
    /// `insufficient_scope`, or HTTP 403.
    #[error("{message}")]
    Denied {
        /// The scope asked for.
        scope: String,
        /// What happened and the fix.
        message: String,
    },
    /// Any other status than the request expects, with the registry's
    /// error body (429 and 5xx after every attempt).
    #[error("{what}: HTTP {status}: {}", body.line())]
    Status {
        /// The request or what was asked for.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error body.
        body: ErrorBody,
    },
    /// A reply that breaks the protocol: a header missing, content that
    /// does not match its digest, a body too large.
    #[error("{0}")]
    Protocol(String),
    /// The connection failed (refused, reset, timed out, cut off, host not
    /// found); `transient` when another attempt might cure it, after every
    /// attempt it was given.
    #[error("{message}")]
    Transport {
        /// The request and what happened.
        message: String,
        /// Whether another attempt might cure it.
        transient: bool,
    },
    /// The TLS handshake failed (other than for a [`Mismatch`]).
    #[error("{message}")]
    Tls {
        /// The request and the failure in words.
        message: String,
    },
    /// A transport setting that the registry's answer shows to be wrong;
    /// the message names the fix.
    #[error("{message}")]
    Mismatch {
        /// What does not match.
        mismatch: Mismatch,
        /// The request, what the registry speaks, and the fix.
        message: String,
    },
    /// This side failed: a request body that could not be read, a file
    /// that could not be written.
    #[error(transparent)]
    Local(#[from] anyhow::Error),
}

/// A transport setting that the registry's answer shows to be wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Plain HTTP was spoken to a registry that speaks HTTPS.
    SpeaksHttps,
    /// HTTPS was spoken to a registry that speaks plain HTTP.
    SpeaksPlainHttp,
    /// The registry's certificate is from a CA this side does not trust.
    UnknownIssuer,
}

/// A registry's error body as sent (`{"errors":[{"code":…}]}` by the OCI
/// distribution spec, anything from a proxy), at most 1 MiB.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorBody(pub String);

impl ErrorBody {
    /// The body on one line, shortened, for messages.
    pub fn line(&self) -> String {
        crate::client::one_line(&self.0)
    }

    /// `: BODY` on one line, or nothing for an empty body.
    fn suffix(&self) -> String {
        match self.line() {
            l if l.is_empty() => String::new(),
            l => format!(": {l}"),
        }
    }

    /// Whether it carries the error `code` ([`crate::client::has_error_code`]).
    pub fn has_code(&self, code: &str) -> bool {
        crate::client::has_error_code(&self.0, code)
    }
}

/// The result of a registry request.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error for an unexpected `status` of the request `what`, with
    /// the body the registry sent: 404 is [`Error::NotFound`], 403
    /// [`Error::Denied`], anything else [`Error::Status`]. (A 401 is
    /// answered, or turned into [`Error::Unauthorized`], by the client.)
    pub fn from_status(what: &str, status: u16, body: String, scope: &str) -> Error {
        let body = ErrorBody(body);
        match status {
            404 => Error::NotFound {
                what: what.to_string(),
                body,
            },
            403 => Error::Denied {
                scope: scope.to_string(),
                message: format!("{what}: HTTP 403: {}", body.line()),
            },
            _ => Error::Status {
                what: what.to_string(),
                status,
                body,
            },
        }
    }

    /// Whether another attempt (or a new upload session) might cure it: a
    /// connection that failed or was cut off.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Transport {
                transient: true,
                ..
            }
        )
    }

    /// The HTTP status the registry answered with, when it did.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::NotFound { .. } => Some(404),
            Error::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The registry's error body, when it sent one.
    pub fn body(&self) -> Option<&ErrorBody> {
        match self {
            Error::NotFound { body, .. } | Error::Status { body, .. } => Some(body),
            _ => None,
        }
    }
}

/// The registry [`Error`] in `e`'s chain, if a registry request failed.
pub fn find(e: &anyhow::Error) -> Option<&Error> {
    e.chain().find_map(|c| c.downcast_ref::<Error>())
}

/// The [`Mismatch`] in `e`'s chain, if a request failed of one.
pub fn mismatch(e: &anyhow::Error) -> Option<Mismatch> {
    match find(e)? {
        Error::Mismatch { mismatch, .. } => Some(*mismatch),
        _ => None,
    }
}

/// Whether `e` is (or wraps) a transient failure ([`Error::is_transient`]).
pub fn is_transient(e: &anyhow::Error) -> bool {
    find(e).is_some_and(Error::is_transient)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_variants() {
        let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        let e = Error::from_status("manifest r/a:1", 404, body.into(), "repository:a:pull");
        assert!(matches!(&e, Error::NotFound { what, .. } if what == "manifest r/a:1"));
        assert_eq!(e.status(), Some(404));
        assert!(e.body().unwrap().has_code("MANIFEST_UNKNOWN"));
        assert_eq!(
            e.to_string(),
            format!("manifest r/a:1: not found (HTTP 404): {body}")
        );
        let e = Error::from_status("HEAD /v2/a/blobs/x", 404, String::new(), "s");
        assert_eq!(e.to_string(), "HEAD /v2/a/blobs/x: not found (HTTP 404)");

        let e = Error::from_status(
            "mount from b",
            403,
            r#"{"errors":[{"code":"DENIED"}]}"#.into(),
            "repository:a:pull,push",
        );
        match &e {
            Error::Denied { scope, message } => {
                assert_eq!(scope, "repository:a:pull,push");
                assert_eq!(
                    message,
                    r#"mount from b: HTTP 403: {"errors":[{"code":"DENIED"}]}"#
                );
            }
            other => panic!("{other:?}"),
        }

        let e = Error::from_status(
            "PUT manifest 1",
            400,
            "{\n\"errors\": [{\"code\": \"DIGEST_INVALID\"}]\n}".into(),
            "s",
        );
        assert!(matches!(e, Error::Status { status: 400, .. }));
        assert!(e.body().unwrap().has_code("DIGEST_INVALID"));
        assert_eq!(
            e.to_string(),
            r#"PUT manifest 1: HTTP 400: { "errors": [{"code": "DIGEST_INVALID"}] }"#
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn variants_are_found_through_context() {
        let e = anyhow::Error::new(Error::Transport {
            message: "GET x: connection refused".into(),
            transient: true,
        })
        .context("image a");
        assert!(is_transient(&e));
        assert_eq!(mismatch(&e), None);
        let e = anyhow::Error::new(Error::Mismatch {
            mismatch: Mismatch::SpeaksHttps,
            message: "m".into(),
        })
        .context("outer");
        assert_eq!(mismatch(&e), Some(Mismatch::SpeaksHttps));
        assert!(!is_transient(&e));
        assert!(find(&anyhow::anyhow!("no registry error")).is_none());
    }
}
