//! Bounds on rendering a bundle's templates. The templates come from the
//! vendor (signed, but a stolen key or an insider must still not hang or
//! exhaust a site), the data from the site file; neither may make a render
//! run without end, recurse without end, or write without end.
//!
//! - **Before compiling**, each template's text is scanned for how deep its
//!   blocks (`{{#…}}`) and subexpressions (`(…)`) nest; deeper than
//!   [`RenderLimits::max_nesting`] is refused, so the template parser's
//!   recursion is bounded.
//! - **Before rendering**, every compiled template is analysed: a partial
//!   must be named statically (`{{> name}}`), partial blocks
//!   (`{{#> name}}…{{/name}}`) and decorators other than `{{#*inline}}` are
//!   refused, no partial may include itself directly or through others,
//!   and chains of partials are at most [`RenderLimits::max_partial_depth`]
//!   deep. Each template's worst-case amount of work is a polynomial in the
//!   length of the longest list or map in the data (each `{{#each}}` can
//!   repeat its body that often); with the data of a render, it must stay
//!   within [`RenderLimits::max_steps`]. So a loop that writes nothing still
//!   ends.
//! - **While rendering**, output is counted as it is written: at most
//!   [`RenderLimits::max_file_bytes`] per file and
//!   [`RenderLimits::max_total_bytes`] for all files, and rendering stops
//!   when all of it has taken [`RenderLimits::max_time`].

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::time::{Duration, Instant};

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::Handlebars;
use serde_json::Value;

/// The bounds on one `render`.
#[derive(Clone, Debug)]
pub struct RenderLimits {
    /// Deepest nesting of blocks or of subexpressions in one template.
    pub max_nesting: usize,
    /// Longest chain of partials including partials.
    pub max_partial_depth: usize,
    /// Most steps (elements rendered, counting every repetition of an
    /// `{{#each}}` body) one template may take in the worst case.
    pub max_steps: u64,
    /// Largest output of one template.
    pub max_file_bytes: usize,
    /// Largest output of all templates of a render together.
    pub max_total_bytes: usize,
    /// Longest time all rendering of a render may take.
    pub max_time: Duration,
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits {
            max_nesting: 64,
            max_partial_depth: 16,
            max_steps: 10_000_000,
            max_file_bytes: 8 << 20,
            max_total_bytes: 64 << 20,
            max_time: Duration::from_secs(60),
        }
    }
}

/// Checks how deep blocks and subexpressions nest in a template's text,
/// before the parser (which recurses once per level) sees it. The count is
/// lexical and errs on the safe side: a `{{#` inside a comment counts too.
pub fn check_nesting(text: &str, limits: &RenderLimits) -> Result<(), String> {
    let b = text.as_bytes();
    let (mut blocks, mut deepest_block) = (0usize, 0usize);
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] != b'{' || b[i + 1] != b'{' {
            i += 1;
            continue;
        }
        // Inside a tag: {{ [~] [#^/] … }}
        let mut j = i + 2;
        while j < b.len() && b[j] == b'{' {
            j += 1;
        }
        if j < b.len() && b[j] == b'~' {
            j += 1;
        }
        match b.get(j) {
            Some(b'#') => {
                blocks += 1;
                deepest_block = deepest_block.max(blocks);
            }
            Some(b'/') => blocks = blocks.saturating_sub(1),
            _ => {}
        }
        let (mut parens, mut deepest_paren) = (0usize, 0usize);
        while j + 1 < b.len() && !(b[j] == b'}' && b[j + 1] == b'}') {
            match b[j] {
                b'(' => {
                    parens += 1;
                    deepest_paren = deepest_paren.max(parens);
                }
                b')' => parens = parens.saturating_sub(1),
                _ => {}
            }
            j += 1;
        }
        if deepest_paren > limits.max_nesting {
            return Err(format!(
                "subexpressions nest {deepest_paren} deep; at most {} are allowed",
                limits.max_nesting
            ));
        }
        if deepest_block > limits.max_nesting {
            return Err(format!(
                "blocks nest more than {} deep, the most allowed",
                limits.max_nesting
            ));
        }
        i = j + 2;
    }
    Ok(())
}

/// Worst-case work as a polynomial in `m`, the length of the longest list
/// or map in the data: `coefficients[k]` steps repeated `m^k` times.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Work(Vec<u64>);

impl Work {
    fn constant(n: u64) -> Work {
        Work(vec![n])
    }

    fn add(&mut self, other: &Work) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a = a.saturating_add(*b);
        }
    }

    /// Repeated once per element: every power goes up by one.
    fn repeated(&self) -> Work {
        let mut v = vec![0];
        v.extend(&self.0);
        Work(v)
    }

    fn at(&self, m: u64) -> u64 {
        let mut total = 0u64;
        let mut power = 1u64;
        for c in &self.0 {
            total = total.saturating_add(c.saturating_mul(power));
            power = power.saturating_mul(m.max(1));
        }
        total
    }
}

/// Where a partial name can lead: a registered template, or an inline
/// partial defined in some template.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Node {
    Template(String),
    Inline {
        owner: String,
        name: String,
        index: usize,
    },
}

impl Node {
    fn shown(&self) -> String {
        match self {
            Node::Template(t) => t.clone(),
            Node::Inline { owner, name, .. } => format!("{owner} (inline partial {name})"),
        }
    }
}

/// The result of analysing every registered template.
pub struct Analysis {
    work: HashMap<String, Work>,
}

struct Analyser<'a> {
    hb: &'a Handlebars<'a>,
    /// Inline partials by name, wherever defined.
    inline: BTreeMap<String, Vec<(Node, &'a Template)>>,
    limits: &'a RenderLimits,
    done: HashMap<Node, Work>,
    path: Vec<Node>,
}

impl Analysis {
    /// Analyses every template registered in `hb`.
    pub fn new(hb: &Handlebars<'_>, limits: &RenderLimits) -> Result<Analysis, String> {
        let mut inline: BTreeMap<String, Vec<(Node, &Template)>> = BTreeMap::new();
        for (owner, t) in hb.get_templates() {
            collect_inline(owner, t, &mut inline, &mut 0)?;
        }
        let mut a = Analyser {
            hb,
            inline,
            limits,
            done: HashMap::new(),
            path: Vec::new(),
        };
        let mut work = HashMap::new();
        let names: BTreeSet<&String> = hb.get_templates().keys().collect();
        for name in names {
            let w = a.node(&Node::Template(name.clone()))?;
            work.insert(name.clone(), w);
        }
        Ok(Analysis { work })
    }

    /// Checks that rendering `template` with `data` stays within the steps
    /// allowed.
    pub fn check(&self, template: &str, data: &Value, limits: &RenderLimits) -> Result<(), String> {
        let Some(w) = self.work.get(template) else {
            return Ok(());
        };
        let m = longest_collection(data);
        let steps = w.at(m as u64);
        if steps > limits.max_steps {
            return Err(format!(
                "could take up to {steps} steps with this data ({{{{#each}}}} repeats its body up to {m} times, once per element of the longest list in the site file and bundle), more than the {} allowed; nest fewer loops",
                limits.max_steps
            ));
        }
        Ok(())
    }
}

/// The length of the longest array or object anywhere in `v`.
fn longest_collection(v: &Value) -> usize {
    match v {
        Value::Array(a) => a
            .iter()
            .map(longest_collection)
            .max()
            .unwrap_or(0)
            .max(a.len()),
        Value::Object(o) => o
            .values()
            .map(longest_collection)
            .max()
            .unwrap_or(0)
            .max(o.len()),
        _ => 0,
    }
}

/// Every `{{#*inline "name"}}` in `t`, and refuses other decorators.
fn collect_inline<'a>(
    owner: &str,
    t: &'a Template,
    out: &mut BTreeMap<String, Vec<(Node, &'a Template)>>,
    index: &mut usize,
) -> Result<(), String> {
    for e in &t.elements {
        match e {
            TemplateElement::DecoratorBlock(d) | TemplateElement::DecoratorExpression(d) => {
                let is_inline = matches!(&d.name, Parameter::Name(n) if n == "inline");
                let name = match d.params.first() {
                    Some(Parameter::Literal(Value::String(s))) => Some(s.clone()),
                    Some(Parameter::Name(s)) => Some(s.clone()),
                    _ => None,
                };
                match (is_inline, name, &d.template, e) {
                    (true, Some(name), Some(body), TemplateElement::DecoratorBlock(_)) => {
                        out.entry(name.clone()).or_default().push((
                            Node::Inline {
                                owner: owner.to_string(),
                                name,
                                index: *index,
                            },
                            body,
                        ));
                        *index += 1;
                        collect_inline(owner, body, out, index)?;
                    }
                    _ => {
                        return Err(format!(
                            "template {owner}: only {{{{#*inline \"NAME\"}}}}…{{{{/inline}}}} decorators are supported"
                        ))
                    }
                }
            }
            TemplateElement::HelperBlock(h) => {
                for inner in [&h.template, &h.inverse].into_iter().flatten() {
                    collect_inline(owner, inner, out, index)?;
                }
            }
            TemplateElement::PartialBlock(_) => {
                return Err(format!(
                    "template {owner}: partial blocks ({{{{#> NAME}}}}…{{{{/NAME}}}}) are not supported; use {{{{> NAME}}}}"
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

impl Analyser<'_> {
    /// Worst-case work of a node, memoised; refuses cycles and chains of
    /// partials deeper than allowed.
    fn node(&mut self, n: &Node) -> Result<Work, String> {
        if let Some(r) = self.done.get(n) {
            return Ok(r.clone());
        }
        if let Some(i) = self.path.iter().position(|p| p == n) {
            let mut chain: Vec<String> = self.path[i..].iter().map(Node::shown).collect();
            chain.push(n.shown());
            return Err(format!(
                "template {}: partials include each other in a loop ({}); a partial may not include itself",
                self.path[i].shown(),
                chain.join(" -> ")
            ));
        }
        if self.path.len() >= self.limits.max_partial_depth {
            let chain: Vec<String> = self.path.iter().map(Node::shown).collect();
            return Err(format!(
                "template {}: partials nest more than {} deep ({} -> …)",
                self.path[0].shown(),
                self.limits.max_partial_depth,
                chain.join(" -> ")
            ));
        }
        let template: &Template = match n {
            Node::Template(name) => match self.hb.get_template(name) {
                Some(t) => t,
                None => return Err(format!("no template {name}")),
            },
            Node::Inline { name, .. } => {
                let list = self.inline.get(name).cloned().unwrap_or_default();
                list.into_iter()
                    .find(|(node, _)| node == n)
                    .map(|(_, t)| t)
                    .ok_or_else(|| format!("no inline partial {name}"))?
            }
        };
        self.path.push(n.clone());
        let owner = n.shown();
        let r = self.elements(&owner, template);
        self.path.pop();
        let r = r?;
        self.done.insert(n.clone(), r.clone());
        Ok(r)
    }

    fn elements(&mut self, owner: &str, t: &Template) -> Result<Work, String> {
        let mut work = Work::default();
        for e in &t.elements {
            work.add(&Work::constant(1));
            match e {
                TemplateElement::HelperBlock(h) => {
                    let body = match &h.template {
                        Some(b) => self.elements(owner, b)?,
                        None => Work::default(),
                    };
                    let inverse = match &h.inverse {
                        Some(b) => self.elements(owner, b)?,
                        None => Work::default(),
                    };
                    let repeats = matches!(&h.name, Parameter::Name(n) if n == "each");
                    let body_work = if repeats {
                        // Each repetition is a step, even of an empty body.
                        let mut once = body;
                        once.add(&Work::constant(1));
                        once.repeated()
                    } else {
                        body
                    };
                    work.add(&body_work);
                    work.add(&inverse);
                }
                TemplateElement::PartialExpression(d) => {
                    let name = match &d.name {
                        Parameter::Name(n) => n.clone(),
                        _ => {
                            return Err(format!(
                                "template {owner}: a partial's name must be written out ({{{{> NAME}}}}), not computed"
                            ))
                        }
                    };
                    if name.starts_with('@') {
                        return Err(format!(
                            "template {owner}: {{{{> {name}}}}} is not supported"
                        ));
                    }
                    // Every place the name can lead: inline partials of
                    // that name anywhere, and the template of that name.
                    let mut targets: Vec<Node> = self
                        .inline
                        .get(&name)
                        .map(|l| l.iter().map(|(n, _)| n.clone()).collect())
                        .unwrap_or_default();
                    if self.hb.get_template(&name).is_some() {
                        targets.push(Node::Template(name.clone()));
                    }
                    if targets.is_empty() {
                        return Err(format!(
                            "template {owner}: partial {name} is neither a template of the bundle nor an inline partial"
                        ));
                    }
                    // Where it can lead to several, their sum bounds each.
                    for target in targets {
                        let w = self.node(&target)?;
                        work.add(&w);
                    }
                }
                TemplateElement::DecoratorBlock(_) => {
                    // An inline partial's definition renders nothing
                    // itself; its body counts where it is used.
                }
                _ => {}
            }
        }
        Ok(work)
    }
}

/// How far a render has gone: time and output, shared by every template
/// rendered in it.
pub struct Budget {
    limits: RenderLimits,
    started: Instant,
    total: Cell<usize>,
    /// Why the last render stopped, when a bound stopped it.
    stopped: RefCell<Option<String>>,
}

impl Budget {
    /// A budget starting now.
    pub fn new(limits: RenderLimits) -> Budget {
        Budget {
            limits,
            started: Instant::now(),
            total: Cell::new(0),
            stopped: RefCell::new(None),
        }
    }

    /// When the budget started: the render's time counts from then.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The bounds.
    pub fn limits(&self) -> &RenderLimits {
        &self.limits
    }

    /// A writer for one template's output; `counted` when the output is
    /// kept (not a probe render whose output is only compared).
    pub fn writer(&self, counted: bool) -> BoundedWriter<'_> {
        *self.stopped.borrow_mut() = None;
        BoundedWriter {
            budget: self,
            buf: Vec::new(),
            counted,
        }
    }

    /// Why the last render stopped, if a bound stopped it.
    pub fn stopped(&self) -> Option<String> {
        self.stopped.borrow().clone()
    }
}

/// Collects one template's output, refusing to grow past the bounds.
pub struct BoundedWriter<'a> {
    budget: &'a Budget,
    buf: Vec<u8>,
    counted: bool,
}

impl BoundedWriter<'_> {
    /// The output written.
    pub fn into_inner(self) -> Vec<u8> {
        self.buf
    }

    fn stop(&self, why: String) -> io::Error {
        *self.budget.stopped.borrow_mut() = Some(why.clone());
        io::Error::other(why)
    }
}

impl io::Write for BoundedWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let l = &self.budget.limits;
        if self.budget.started.elapsed() > l.max_time {
            return Err(self.stop(format!(
                "rendering took longer than {} s, the most allowed",
                l.max_time.as_secs()
            )));
        }
        if self.buf.len() + data.len() > l.max_file_bytes {
            return Err(self.stop(format!(
                "output larger than {} bytes, the most one rendered file may have",
                l.max_file_bytes
            )));
        }
        if self.counted {
            let total = self.budget.total.get() + data.len();
            if total > l.max_total_bytes {
                return Err(self.stop(format!(
                    "rendered files larger than {} bytes in all, the most allowed",
                    l.max_total_bytes
                )));
            }
            self.budget.total.set(total);
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn analyse(templates: &[(&str, &str)]) -> Result<Analysis, String> {
        let limits = RenderLimits::default();
        let mut hb = Handlebars::new();
        for (name, text) in templates {
            check_nesting(text, &limits)?;
            hb.register_template_string(name, *text)
                .map_err(|e| e.to_string())?;
        }
        Analysis::new(&hb, &limits)
    }

    #[test]
    fn nesting_is_bounded_before_parsing() {
        let l = RenderLimits::default();
        let deep = "{{#if a}}".repeat(100_000) + &"{{/if}}".repeat(100_000);
        let e = check_nesting(&deep, &l).unwrap_err();
        assert!(e.contains("blocks nest more than 64 deep"), "{e}");
        let parens = format!(
            "{{{{concat {}x{}}}}}",
            "(concat ".repeat(5000),
            ")".repeat(5000)
        );
        let e = check_nesting(&parens, &l).unwrap_err();
        assert!(e.contains("subexpressions nest 5000 deep"), "{e}");
        let ok = "{{#if a}}{{#each b}}{{concat (concat x y) z}}{{/each}}{{/if}}".repeat(1000);
        check_nesting(&ok, &l).unwrap();
    }

    #[test]
    fn recursion_through_partials_is_refused() {
        let e = analyse(&[("a.hbs", "{{> b.hbs}}"), ("b.hbs", "x{{> a.hbs}}")])
            .err()
            .unwrap();
        assert!(e.contains("partials include each other in a loop"), "{e}");
        assert!(
            e.contains("a.hbs -> b.hbs -> a.hbs") || e.contains("b.hbs -> a.hbs -> b.hbs"),
            "{e}"
        );
        let e = analyse(&[("a.hbs", "{{#*inline \"p\"}}{{> p}}{{/inline}}{{> p}}")])
            .err()
            .unwrap();
        assert!(e.contains("in a loop"), "{e}");
        let e = analyse(&[("a.hbs", "{{> (concat \"a\" \"b\")}}")])
            .err()
            .unwrap();
        assert!(e.contains("must be written out"), "{e}");
        let e = analyse(&[
            ("a.hbs", "{{#> layout}}x{{/layout}}"),
            ("layout", "{{> @partial-block}}"),
        ])
        .err()
        .unwrap();
        assert!(e.contains("partial blocks"), "{e}");
        let e = analyse(&[("a.hbs", "{{> nope}}")]).err().unwrap();
        assert!(e.contains("partial nope is neither"), "{e}");
    }

    #[test]
    fn doubling_partials_are_bounded_by_steps_not_time() {
        // p0 includes p1 twice, p1 includes p2 twice, …: 2^40 expansions.
        let mut templates: Vec<(String, String)> = (0..40)
            .map(|i| {
                (
                    format!("p{i}"),
                    format!("{{{{> p{0}}}}}{{{{> p{0}}}}}", i + 1),
                )
            })
            .collect();
        templates.push(("p40".into(), "x".into()));
        let refs: Vec<(&str, &str)> = templates
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let e = analyse(&refs).err().unwrap();
        assert!(e.contains("partials nest more than 16 deep"), "{e}");
        // Within the depth, the doubling still shows in the steps.
        let limits = RenderLimits {
            max_partial_depth: 64,
            ..RenderLimits::default()
        };
        let mut hb = Handlebars::new();
        for (n, t) in &refs {
            hb.register_template_string(n, *t).unwrap();
        }
        let a = Analysis::new(&hb, &limits).unwrap();
        let e = a.check("p0", &json!({}), &limits).unwrap_err();
        assert!(e.contains("steps"), "{e}");
    }

    #[test]
    fn nested_loops_are_bounded_by_the_data() {
        let a = analyse(&[(
            "t",
            "{{#each xs}}{{#each ../xs}}{{#each ../../xs}}{{/each}}{{/each}}{{/each}}",
        )])
        .unwrap();
        let l = RenderLimits::default();
        a.check("t", &json!({"xs": [1, 2, 3]}), &l).unwrap();
        let big: Vec<u32> = (0..1000).collect();
        let e = a.check("t", &json!({"xs": big}), &l).unwrap_err();
        assert!(e.contains("up to 1000 times"), "{e}");
        // The reference product's templates use inline partials in a loop.
        analyse(&[(
            "backup.sh.hbs",
            "{{#*inline \"dump\"}}{{#if x}}a{{else}}b{{/if}}{{/inline}}{{#each ws}}{{> dump db=this}}{{/each}}",
        )])
        .unwrap();
    }

    #[test]
    fn output_and_time_are_bounded() {
        use std::io::Write;
        let limits = RenderLimits {
            max_file_bytes: 10,
            max_total_bytes: 15,
            ..RenderLimits::default()
        };
        let b = Budget::new(limits);
        let mut w = b.writer(true);
        w.write_all(b"0123456789").unwrap();
        assert!(w.write_all(b"x").is_err());
        assert!(b.stopped().unwrap().contains("one rendered file"));
        let mut w = b.writer(true);
        w.write_all(b"01234").unwrap();
        assert!(w.write_all(b"5").is_err());
        assert!(b.stopped().unwrap().contains("in all"));
        // Probe renders do not count towards the total.
        let mut w = b.writer(false);
        w.write_all(b"0123456789").unwrap();
        let b = Budget::new(RenderLimits {
            max_time: Duration::ZERO,
            ..RenderLimits::default()
        });
        std::thread::sleep(Duration::from_millis(2));
        assert!(b.writer(true).write_all(b"x").is_err());
        assert!(b.stopped().unwrap().contains("longer than 0 s"));
    }
}
