//! The error every parser returns.

/// A file that could not be read as the package database or manifest its
/// path or contents suggested: which file, and why, in one line.
///
/// The bundler reports it as a warning naming the file; it never aborts a
/// build. Parsers also use it for records they had to skip inside a file
/// that was otherwise readable (see [`crate::scan`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ParseError {
    /// The path of the file inside the image, as given to the parser.
    pub path: String,
    /// What was wrong, on one line.
    pub reason: String,
}

/// The longest reason kept; longer ones are cut with an ellipsis.
const MAX_REASON: usize = 300;

impl ParseError {
    /// A new error for `path`; the reason is made one line (control
    /// characters become spaces) and cut to a few hundred characters.
    pub fn new(path: &str, reason: impl Into<String>) -> Self {
        let reason: String = reason.into();
        let mut line = String::with_capacity(reason.len().min(MAX_REASON + 3));
        for (count, c) in reason.chars().enumerate() {
            if count == MAX_REASON {
                line.push_str("...");
                break;
            }
            line.push(if c.is_control() { ' ' } else { c });
        }
        ParseError {
            path: path.to_string(),
            reason: line.trim().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_is_one_bounded_line() {
        let e = ParseError::new("var/lib/dpkg/status", "bad\nthing\there ");
        assert_eq!(e.to_string(), "var/lib/dpkg/status: bad thing here");
        let long = ParseError::new("x", "é".repeat(1000));
        assert_eq!(long.reason.chars().count(), MAX_REASON + 3);
    }
}
