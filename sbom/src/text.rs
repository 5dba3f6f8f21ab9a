//! Shared readers for the text formats: deb822 paragraphs (dpkg status,
//! Debian copyright files) and RFC 822 style headers (Python metadata).

/// One field of a paragraph: its name, and its value with continuation
/// lines joined by `\n` (each stripped of its leading whitespace).
#[derive(Debug, Clone)]
pub(crate) struct Field<'a> {
    pub name: &'a str,
    pub value: String,
}

/// A paragraph: its fields in order and the line (1-based) it starts on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Paragraph<'a> {
    pub fields: Vec<Field<'a>>,
    pub line: usize,
}

impl Paragraph<'_> {
    /// The first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    }

    /// Every field named `name`, in order.
    pub fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value.as_str())
    }
}

/// Lines of `text`, `\n` or `\r\n` terminated.
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l))
}

/// Splits deb822 text into paragraphs (blank or whitespace-only lines
/// separate them; `#` comment lines are skipped). Lines that are neither
/// a field nor a continuation are counted in the second value.
pub(crate) fn deb822_paragraphs(text: &str) -> (Vec<Paragraph<'_>>, usize) {
    let mut out = Vec::new();
    let mut current = Paragraph::default();
    let mut bad_lines = 0;
    for (i, line) in lines(text).enumerate() {
        if line.trim().is_empty() {
            if !current.fields.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            match current.fields.last_mut() {
                Some(field) => {
                    field.value.push('\n');
                    field.value.push_str(line.trim());
                }
                None => bad_lines += 1,
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() => {
                if current.fields.is_empty() {
                    current.line = i + 1;
                }
                current.fields.push(Field {
                    name: name.trim(),
                    value: value.trim().to_string(),
                });
            }
            _ => bad_lines += 1,
        }
    }
    if !current.fields.is_empty() {
        out.push(current);
    }
    (out, bad_lines)
}

/// Reads the header block of an RFC 822 style message (up to the first
/// blank line), as Python's `METADATA` and `PKG-INFO` are. Continuation
/// lines (leading whitespace) are joined to the previous field with `\n`.
/// Lines that are not fields are counted in the second value.
pub(crate) fn rfc822_headers(text: &str) -> (Paragraph<'_>, usize) {
    let mut para = Paragraph {
        fields: Vec::new(),
        line: 1,
    };
    let mut bad_lines = 0;
    for line in lines(text) {
        // Only an empty line ends the headers: a whitespace-only one is a
        // blank line inside a folded value (setuptools indents those too).
        if line.is_empty() {
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            match para.fields.last_mut() {
                Some(field) => {
                    field.value.push('\n');
                    field.value.push_str(line.trim());
                }
                None => bad_lines += 1,
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value)) if !name.trim().is_empty() && !name.contains(' ') => {
                para.fields.push(Field {
                    name: name.trim(),
                    value: value.trim().to_string(),
                });
            }
            _ => bad_lines += 1,
        }
    }
    (para, bad_lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_continuations_comments_and_crlf() {
        let text = "# c\r\nPackage: a\r\nDescription: x\r\n more\r\n .\r\n\r\n \t\r\nPackage: b\nbroken line\n";
        let (paras, bad) = deb822_paragraphs(text);
        assert_eq!(paras.len(), 2);
        assert_eq!(paras[0].get("package"), Some("a"));
        assert_eq!(paras[0].get("Description"), Some("x\nmore\n."));
        assert_eq!(paras[1].line, 8);
        assert_eq!(bad, 1);
    }

    #[test]
    fn rfc822_stops_at_body() {
        let text = "Name: x\nClassifier: a\nClassifier: b\nLicense: l1\n        \n        l2\n\nName: body\n";
        let (para, bad) = rfc822_headers(text);
        assert_eq!(para.get("name"), Some("x"));
        assert_eq!(para.all("Classifier").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(para.get("License"), Some("l1\n\nl2"));
        assert_eq!(bad, 0);
    }
}
