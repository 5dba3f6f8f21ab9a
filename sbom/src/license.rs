//! Declared licenses as the SBOM formats want them.
//!
//! A package declares licenses as strings ([`crate::Package::licenses`]):
//! SPDX identifiers (`MIT`), SPDX expressions (`MIT OR Apache-2.0`), or
//! whatever its metadata says (`BSD License`, `GPLv2+`, a whole license
//! text). Each string is read as an SPDX license expression (SPDX 2.3
//! Annex D) against the SPDX License List that the `spdx` crate carries
//! (3.29.0, the list the vendored CycloneDX schema enumerates):
//!
//! - identifiers match case-insensitively and are written in their
//!   canonical case; operators may be in any case and are written in
//!   capitals; `/` is read as `OR` (Cargo's old syntax); redundant
//!   parentheses go; a GNU `-only` id with `+` becomes its `-or-later` id;
//! - nothing else is guessed: `GPLv2+` or `Apache 2` are not on the list,
//!   so they stay names. A compliance team sees what the package said, not
//!   what a heuristic made of it.
//!
//! A package with several declared strings is read conjunctively (`AND`)
//! wherever one expression is needed: the conservative reading, under
//! which every declared license must be honoured.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::OnceLock;

use crate::document::{idstring, UniqueIds};

/// Deepest parenthesis nesting accepted; deeper strings are names.
const MAX_DEPTH: usize = 16;
/// Most tokens read; longer strings (license texts) are names.
const MAX_TOKENS: usize = 256;

/// A valid SPDX license expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expr {
    /// A license on the SPDX list, optionally with `+` ("or later").
    License {
        /// Canonical identifier.
        id: &'static str,
        /// Followed by `+`.
        plus: bool,
    },
    /// `LicenseRef-…`, as written.
    Ref(String),
    /// A license with an exception from the SPDX exceptions list.
    With(Box<Expr>, &'static str),
    /// Conjunction of two or more terms.
    And(Vec<Expr>),
    /// Disjunction of two or more terms.
    Or(Vec<Expr>),
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::License { id, plus } => write!(f, "{id}{}", if *plus { "+" } else { "" }),
            Expr::Ref(r) => f.write_str(r),
            Expr::With(l, e) => write!(f, "{l} WITH {e}"),
            Expr::And(terms) => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" AND ")?;
                    }
                    match t {
                        Expr::Or(_) => write!(f, "({t})")?,
                        _ => write!(f, "{t}")?,
                    }
                }
                Ok(())
            }
            Expr::Or(terms) => {
                for (i, t) in terms.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    write!(f, "{t}")?;
                }
                Ok(())
            }
        }
    }
}

impl Expr {
    /// The `LicenseRef-…` identifiers it uses.
    fn refs<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Expr::Ref(r) => out.push(r),
            Expr::License { .. } => {}
            Expr::With(l, _) => l.refs(out),
            Expr::And(t) | Expr::Or(t) => t.iter().for_each(|t| t.refs(out)),
        }
    }

    /// `a AND b`, flattening nested conjunctions.
    fn and(terms: Vec<Expr>) -> Expr {
        let mut flat = Vec::new();
        for t in terms {
            match t {
                Expr::And(inner) => flat.extend(inner),
                t => flat.push(t),
            }
        }
        if flat.len() == 1 {
            flat.pop().expect("one term")
        } else {
            Expr::And(flat)
        }
    }

    fn or(terms: Vec<Expr>) -> Expr {
        let mut flat = Vec::new();
        for t in terms {
            match t {
                Expr::Or(inner) => flat.extend(inner),
                t => flat.push(t),
            }
        }
        if flat.len() == 1 {
            flat.pop().expect("one term")
        } else {
            Expr::Or(flat)
        }
    }
}

/// What one declared license string is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Declared {
    /// A single license on the SPDX list, without `+`: its canonical id.
    Id(&'static str),
    /// Any other valid SPDX expression (compound, `+`, `LicenseRef-`).
    Expression(Expr),
    /// Not an SPDX expression: the string, trimmed.
    Name(String),
}

/// Reads one declared license string.
pub(crate) fn classify(text: &str) -> Declared {
    let text = text.trim();
    match parse(text) {
        Some(Expr::License { id, plus: false }) => Declared::Id(id),
        Some(e) => Declared::Expression(e),
        None => Declared::Name(text.to_string()),
    }
}

/// The SPDX License List version the identifiers come from (`3.29`), as
/// SPDX's `licenseListVersion` wants it (major.minor).
pub(crate) fn license_list_version() -> &'static str {
    let v = spdx::identifiers::VERSION;
    match v.match_indices('.').nth(1) {
        Some((i, _)) => &v[..i],
        None => v,
    }
}

fn lookup(
    table: &'static OnceLock<HashMap<String, &'static str>>,
    names: fn() -> Vec<&'static str>,
    word: &str,
) -> Option<&'static str> {
    table
        .get_or_init(|| {
            names()
                .into_iter()
                .map(|n| (n.to_ascii_lowercase(), n))
                .collect()
        })
        .get(&word.to_ascii_lowercase())
        .copied()
}

/// Whether an entry of the `spdx` crate's license table is an identifier
/// of the SPDX License List. The table also holds `NOASSERTION` and, for
/// its own handling of GNU `-only` / `-or-later` pairs, bare GNU names
/// that the list never had (`GFDL-1.1-invariants`: a GNU name, not
/// deprecated, whose `-only` form exists). Real bare GNU ids
/// (`GPL-2.0`, `GFDL-1.1`) are deprecated list entries and stay.
fn on_the_list(l: &spdx::License) -> bool {
    use spdx::flags::{IS_DEPRECATED, IS_GNU};
    if matches!(l.name, "NOASSERTION" | "NONE") {
        return false;
    }
    let synthetic_gnu_base = l.flags & IS_GNU != 0
        && l.flags & IS_DEPRECATED == 0
        && !l.name.ends_with("-only")
        && !l.name.ends_with("-or-later")
        && spdx::license_id(&format!("{}-only", l.name)).is_some();
    !synthetic_gnu_base
}

fn license_id(word: &str) -> Option<&'static str> {
    static TABLE: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    lookup(
        &TABLE,
        || {
            spdx::identifiers::LICENSES
                .iter()
                .filter(|l| on_the_list(l))
                .map(|l| l.name)
                .collect()
        },
        word,
    )
}

fn exception_id(word: &str) -> Option<&'static str> {
    static TABLE: OnceLock<HashMap<String, &'static str>> = OnceLock::new();
    lookup(
        &TABLE,
        || {
            spdx::identifiers::EXCEPTIONS
                .iter()
                .map(|e| e.name)
                .collect()
        },
        word,
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok<'a> {
    Open,
    Close,
    And,
    Or,
    With,
    Word(&'a str),
}

fn word(w: &str) -> Tok<'_> {
    if w.eq_ignore_ascii_case("and") {
        Tok::And
    } else if w.eq_ignore_ascii_case("or") {
        Tok::Or
    } else if w.eq_ignore_ascii_case("with") {
        Tok::With
    } else {
        Tok::Word(w)
    }
}

/// Splits on whitespace; `(`, `)` and `/` are tokens of their own.
/// `None` past [`MAX_TOKENS`].
fn tokenize(text: &str) -> Option<Vec<Tok<'_>>> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        let delim = match c {
            '(' => Some(Tok::Open),
            ')' => Some(Tok::Close),
            '/' => Some(Tok::Or),
            c if c.is_whitespace() => None,
            _ => {
                start.get_or_insert(i);
                continue;
            }
        };
        if let Some(s) = start.take() {
            out.push(word(&text[s..i]));
        }
        out.extend(delim);
        if out.len() > MAX_TOKENS {
            return None;
        }
    }
    if let Some(s) = start {
        out.push(word(&text[s..]));
    }
    Some(out)
}

/// Parses a whole string as an SPDX expression; `None` if it is not one.
fn parse(text: &str) -> Option<Expr> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, pos: 0 };
    let e = p.or_expr(0)?;
    (p.pos == p.tokens.len()).then_some(e)
}

struct Parser<'a> {
    tokens: Vec<Tok<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Tok<'a>> {
        self.tokens.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        let t = self.peek();
        self.pos += 1;
        t
    }

    fn or_expr(&mut self, depth: usize) -> Option<Expr> {
        let mut terms = vec![self.and_expr(depth)?];
        while self.peek() == Some(Tok::Or) {
            self.pos += 1;
            terms.push(self.and_expr(depth)?);
        }
        Some(Expr::or(terms))
    }

    fn and_expr(&mut self, depth: usize) -> Option<Expr> {
        let mut terms = vec![self.with_expr(depth)?];
        while self.peek() == Some(Tok::And) {
            self.pos += 1;
            terms.push(self.with_expr(depth)?);
        }
        Some(Expr::and(terms))
    }

    fn with_expr(&mut self, depth: usize) -> Option<Expr> {
        match self.next()? {
            Tok::Open => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let e = self.or_expr(depth + 1)?;
                (self.next()? == Tok::Close).then_some(e)
            }
            Tok::Word(w) => {
                let simple = simple_expression(w)?;
                if self.peek() != Some(Tok::With) {
                    return Some(simple);
                }
                self.pos += 1;
                match (simple, self.next()?) {
                    (l @ Expr::License { .. }, Tok::Word(e)) => {
                        Some(Expr::With(Box::new(l), exception_id(e)?))
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// `license-id`, `license-id+` or `LicenseRef-idstring`.
fn simple_expression(word: &str) -> Option<Expr> {
    const REF: &str = "licenseref-";
    if word.len() > REF.len() && word[..REF.len()].eq_ignore_ascii_case(REF) {
        let id = &word[REF.len()..];
        let valid = id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        return valid.then(|| Expr::Ref(format!("LicenseRef-{id}")));
    }
    let (base, plus) = match word.strip_suffix('+') {
        Some(base) => (base, true),
        None => (word, false),
    };
    // Deprecated list entries such as `GPL-2.0+` carry the `+` in the id.
    if let Some(id) = license_id(word) {
        return Some(Expr::License { id, plus: false });
    }
    let id = license_id(base)?;
    // GNU licenses say "or later" with their own ids (SPDX 2.3 Annex D):
    // `GPL-2.0-only+` is `GPL-2.0-or-later`.
    if plus {
        if let Some(later) = id
            .strip_suffix("-only")
            .and_then(|b| license_id(&format!("{b}-or-later")))
        {
            return Some(Expr::License {
                id: later,
                plus: false,
            });
        }
    }
    Some(Expr::License { id, plus })
}

/// A package's declared licenses as CycloneDX `licenses` wants them:
/// either a list of licenses (each an SPDX id or a name), or a single
/// SPDX expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CdxLicenses {
    /// `[{"license": {"id"|"name": …}}, …]`; empty when none were declared.
    List(Vec<CdxLicense>),
    /// `[{"expression": …}]`.
    Expression(String),
}

/// One entry of [`CdxLicenses::List`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CdxLicense {
    /// An identifier on the SPDX list.
    Id(&'static str),
    /// Anything else.
    Name(String),
}

/// CycloneDX allows a list of licenses or one expression, not both. One
/// declared expression is given as it is; several strings that are all
/// valid SPDX, at least one compound, become one conjunction; otherwise
/// (names among them) every string is a list entry, expressions written
/// out as names.
pub(crate) fn cyclonedx_licenses(declared: &[String]) -> CdxLicenses {
    let all: Vec<Declared> = declared.iter().map(|d| classify(d)).collect();
    let has_expr = all.iter().any(|d| matches!(d, Declared::Expression(_)));
    let has_name = all.iter().any(|d| matches!(d, Declared::Name(_)));
    if has_expr && !has_name {
        let terms = all
            .into_iter()
            .map(|d| match d {
                Declared::Id(id) => Expr::License { id, plus: false },
                Declared::Expression(e) => e,
                Declared::Name(_) => unreachable!("no names"),
            })
            .collect();
        return CdxLicenses::Expression(Expr::and(terms).to_string());
    }
    CdxLicenses::List(
        all.into_iter()
            .map(|d| match d {
                Declared::Id(id) => CdxLicense::Id(id),
                Declared::Expression(e) => CdxLicense::Name(e.to_string()),
                Declared::Name(n) => CdxLicense::Name(n),
            })
            .collect(),
    )
}

/// A license an SPDX document defines itself (`hasExtractedLicensingInfos`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExtractedLicense {
    /// `LicenseRef-…`.
    pub id: String,
    /// What the package declared.
    pub text: String,
    /// Why the document defines it.
    pub comment: &'static str,
}

/// The licenses of one SPDX document: turns each package's declared
/// strings into a `licenseDeclared` expression and collects the
/// `LicenseRef-`s it needed.
pub(crate) struct SpdxLicenses {
    ids: UniqueIds,
    /// Generated reference per declared name.
    by_name: HashMap<String, String>,
    extracted: BTreeMap<String, ExtractedLicense>,
}

const DECLARED_REF: &str = "A license reference that a package's declared license expression \
    uses; the package's metadata named it but its text was not part of the scan.";
const DECLARED_NAME: &str = "A license a package declared by a name or text that is not an \
    SPDX license expression; the text is the declaration as found.";

impl SpdxLicenses {
    /// Prepares for a document whose packages declare `all` (every
    /// declared string of every package): references the packages use
    /// themselves are kept as they are, so generated ones avoid them.
    pub fn new<'a>(all: impl IntoIterator<Item = &'a str>) -> Self {
        let mut me = SpdxLicenses {
            ids: UniqueIds::default(),
            by_name: HashMap::new(),
            extracted: BTreeMap::new(),
        };
        for text in all {
            if let Declared::Expression(e) = classify(text) {
                let mut refs = Vec::new();
                e.refs(&mut refs);
                for r in refs {
                    me.ids.reserve(r);
                    me.extracted
                        .entry(r.to_string())
                        .or_insert_with(|| ExtractedLicense {
                            id: r.to_string(),
                            text: text.trim().to_string(),
                            comment: DECLARED_REF,
                        });
                }
            }
        }
        me
    }

    /// The `licenseDeclared` value for a package's declared strings: a
    /// valid expression (names become `LicenseRef-`s defined in
    /// [`Self::extracted`]), or `NOASSERTION` when none were declared.
    pub fn declared(&mut self, declared: &[String]) -> String {
        if declared.is_empty() {
            return "NOASSERTION".to_string();
        }
        let terms = declared
            .iter()
            .map(|d| match classify(d) {
                Declared::Id(id) => Expr::License { id, plus: false },
                Declared::Expression(e) => e,
                Declared::Name(name) => Expr::Ref(self.name_ref(name)),
            })
            .collect();
        Expr::and(terms).to_string()
    }

    fn name_ref(&mut self, name: String) -> String {
        if let Some(id) = self.by_name.get(&name) {
            return id.clone();
        }
        // `+` (or later) is not allowed in an id: spell it, so that
        // `GPL-2+` and `GPL-2` do not end up as look-alike ids.
        let base = format!(
            "LicenseRef-{}",
            idstring(&name.replace('+', "-plus"), 64, "unnamed")
        );
        let id = self.ids.unique(&base, "-");
        self.extracted.insert(
            id.clone(),
            ExtractedLicense {
                id: id.clone(),
                text: name.clone(),
                comment: DECLARED_NAME,
            },
        );
        self.by_name.insert(name, id.clone());
        id
    }

    /// Every `LicenseRef-` the document's expressions use, sorted by id.
    pub fn extracted(self) -> Vec<ExtractedLicense> {
        self.extracted.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expr(s: &str) -> String {
        match classify(s) {
            Declared::Expression(e) => e.to_string(),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn identifiers_expressions_and_names() {
        assert_eq!(classify("MIT"), Declared::Id("MIT"));
        assert_eq!(classify(" apache-2.0 "), Declared::Id("Apache-2.0"));
        assert_eq!(
            classify("GPL-2.0-or-later"),
            Declared::Id("GPL-2.0-or-later")
        );
        // Deprecated ids are still on the list.
        assert_eq!(classify("GPL-2.0"), Declared::Id("GPL-2.0"));
        // So are the deprecated ones that carry the `+` in the id.
        assert_eq!(classify("GPL-2.0+"), Declared::Id("GPL-2.0+"));
        assert_eq!(classify("GPL-2.0-only+"), Declared::Id("GPL-2.0-or-later"));
        assert_eq!(expr("Apache-2.0+"), "Apache-2.0+");
        assert_eq!(expr("(MIT OR Apache-2.0)"), "MIT OR Apache-2.0");
        assert_eq!(expr("MIT/Apache-2.0"), "MIT OR Apache-2.0");
        assert_eq!(expr("mit or apache-2.0"), "MIT OR Apache-2.0");
        assert_eq!(
            expr("(MIT OR Apache-2.0) AND BSD-3-Clause"),
            "(MIT OR Apache-2.0) AND BSD-3-Clause"
        );
        assert_eq!(
            expr("MIT AND (BSD-2-Clause AND Zlib)"),
            "MIT AND BSD-2-Clause AND Zlib"
        );
        assert_eq!(
            expr("GPL-2.0-only WITH classpath-exception-2.0 OR MIT"),
            "GPL-2.0-only WITH Classpath-exception-2.0 OR MIT"
        );
        assert_eq!(expr("LicenseRef-Proprietary"), "LicenseRef-Proprietary");
        assert_eq!(expr("licenseref-x.1 AND ISC"), "LicenseRef-x.1 AND ISC");
        for name in [
            "BSD License",
            "GPLv2+",
            "Apache 2",
            "MIT AND",
            "(MIT",
            "MIT)",
            "MIT WITH MIT",
            "Classpath-exception-2.0 WITH MIT",
            "LicenseRef-",
            "LicenseRef-a_b",
            "(MIT) WITH Classpath-exception-2.0",
            "",
            "public-domain",
        ] {
            assert_eq!(classify(name), Declared::Name(name.trim().to_string()));
        }
        let deep = format!("{}MIT{}", "(".repeat(100), ")".repeat(100));
        assert!(matches!(classify(&deep), Declared::Name(_)));
        let long = "MIT AND ".repeat(200) + "MIT";
        assert!(matches!(classify(&long), Declared::Name(_)));
        assert_eq!(license_list_version(), "3.29");
    }

    #[test]
    fn every_identifier_accepted_is_in_the_cyclonedx_schema() {
        // CycloneDX `license.id` is written for any identifier accepted
        // here; the vendored schema enumerates the same list version
        // (3.29.0), so it must accept each of them, exceptions included.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/spdx.schema.json");
        let schema: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert!(schema["$comment"].as_str().unwrap().ends_with("3.29.0"));
        assert_eq!(spdx::identifiers::VERSION, "3.29.0");
        let allowed: std::collections::BTreeSet<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        let accepted: Vec<&str> = spdx::identifiers::LICENSES
            .iter()
            .filter(|l| on_the_list(l))
            .map(|l| l.name)
            .chain(spdx::identifiers::EXCEPTIONS.iter().map(|e| e.name))
            .collect();
        assert!(accepted.len() > 700, "{}", accepted.len());
        let missing: Vec<&&str> = accepted.iter().filter(|n| !allowed.contains(**n)).collect();
        assert!(missing.is_empty(), "not in the schema: {missing:?}");
        for id in accepted {
            assert!(license_id(id).is_some() || exception_id(id).is_some());
        }
        assert_eq!(license_id("GFDL-1.1-invariants"), None);
        assert_eq!(license_id("NOASSERTION"), None);
        assert_eq!(license_id("GFDL-1.1"), Some("GFDL-1.1"));
    }

    #[test]
    fn cyclonedx_shapes() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(cyclonedx_licenses(&[]), CdxLicenses::List(vec![]));
        assert_eq!(
            cyclonedx_licenses(&v(&["MIT", "BSD License"])),
            CdxLicenses::List(vec![
                CdxLicense::Id("MIT"),
                CdxLicense::Name("BSD License".into())
            ])
        );
        assert_eq!(
            cyclonedx_licenses(&v(&["MIT OR Apache-2.0"])),
            CdxLicenses::Expression("MIT OR Apache-2.0".into())
        );
        assert_eq!(
            cyclonedx_licenses(&v(&["Zlib", "MIT OR Apache-2.0"])),
            CdxLicenses::Expression("Zlib AND (MIT OR Apache-2.0)".into())
        );
        assert_eq!(
            cyclonedx_licenses(&v(&["Custom", "MIT OR Apache-2.0"])),
            CdxLicenses::List(vec![
                CdxLicense::Name("Custom".into()),
                CdxLicense::Name("MIT OR Apache-2.0".into())
            ])
        );
    }

    #[test]
    fn spdx_declared_and_extracted() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let a = v(&["MIT", "BSD License"]);
        let b = v(&["LicenseRef-BSD-License OR Apache-2.0"]);
        let c = v(&["BSD License"]);
        let d = v(&["BSD_License"]);
        let all: Vec<&str> = [&a, &b, &c, &d]
            .iter()
            .flat_map(|l| l.iter().map(String::as_str))
            .collect();
        let mut l = SpdxLicenses::new(all);
        assert_eq!(l.declared(&[]), "NOASSERTION");
        // The package's own LicenseRef-BSD-License is kept; the name gets another.
        assert_eq!(l.declared(&a), "MIT AND LicenseRef-BSD-License-2");
        assert_eq!(l.declared(&b), "LicenseRef-BSD-License OR Apache-2.0");
        assert_eq!(l.declared(&c), "LicenseRef-BSD-License-2");
        assert_eq!(l.declared(&d), "LicenseRef-BSD-License-3");
        let x = l.extracted();
        let ids: Vec<&str> = x.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "LicenseRef-BSD-License",
                "LicenseRef-BSD-License-2",
                "LicenseRef-BSD-License-3"
            ]
        );
        assert_eq!(x[1].text, "BSD License");
        assert_eq!(x[2].text, "BSD_License");
    }
}
