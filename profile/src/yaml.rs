//! Reading a site file's YAML into a JSON value, with a YAML error told in
//! one line and located.

/// A YAML text that could not be read: the message (one line, without the
/// position) and where the parser stopped, when it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line and column.
    pub position: Option<(u32, u32)>,
    /// `not valid YAML: …`.
    pub message: String,
}

/// Parses `text` as YAML into a JSON value.
pub fn parse(text: &str) -> Result<serde_json::Value, YamlError> {
    serde_saphyr::from_str(text).map_err(|e| {
        let position = e.location().map(|l| (l.line() as u32, l.column() as u32));
        let msg = e.without_snippet().to_string();
        let line: Vec<&str> = msg
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let message = format!("not valid YAML: {}", line.join("; "));
        // The position goes in front of the message.
        let message = match position {
            Some((l, c)) => message.replace(&format!(" at line {l}, column {c}"), ""),
            None => message,
        };
        YamlError { position, message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_one_located_line() {
        let e = parse("a: 1\nb: [\n").unwrap_err();
        assert!(e.message.starts_with("not valid YAML"), "{e:?}");
        assert!(!e.message.contains('\n') && !e.message.contains("at line"));
        assert!(e.position.is_some_and(|(l, _)| l >= 2), "{e:?}");
        assert_eq!(parse("a: 1").unwrap(), serde_json::json!({"a": 1}));
    }
}
