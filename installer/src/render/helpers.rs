//! The template helpers Helm users expect, written once: `required`,
//! `default`, `toYaml`, `toJson`, `indent`, `nindent`, `quote`, `squote`
//! (shell), `concat`, and `image`,
//! which turns a bundle image name into the internal reference pinned by
//! digest. Every helper returns a value, so they nest as subexpressions:
//! `{{nindent 4 (toYaml site.monitoring)}}`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use handlebars::{
    Context, Handlebars, Helper, HelperDef, PathAndJson, RenderContext, RenderError,
    RenderErrorReason, ScopedJson,
};
use serde_json::Value;

/// A helper's function: its parameters and the largest text it may make
/// ([`HelperLimits::max_bytes`]) to a value or a message.
type HelperFn = fn(&[&PathAndJson], usize) -> Result<Value, String>;

/// What bounds the helpers, which make values in memory before anything is
/// written (so the output budget alone cannot stop them): the largest text
/// a helper may return, and the render's time, checked at every call.
#[derive(Clone, Debug)]
pub struct HelperLimits {
    /// Largest text a helper may return, in bytes: a value larger than one
    /// rendered file may be could never be written whole.
    pub max_bytes: usize,
    /// Longest time all rendering of a render may take.
    pub max_time: Duration,
    /// When the render's time started (set when its budget starts; unset,
    /// time is not checked).
    pub started: Arc<OnceLock<Instant>>,
}

impl HelperLimits {
    /// `max_bytes` and `max_time`, with the clock not yet started.
    pub fn new(max_bytes: usize, max_time: Duration) -> HelperLimits {
        HelperLimits {
            max_bytes,
            max_time,
            started: Arc::new(OnceLock::new()),
        }
    }
}

/// A helper made of a function over its parameters.
struct FnHelper {
    name: &'static str,
    f: HelperFn,
    limits: HelperLimits,
}

impl HelperDef for FnHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let fail = |m: String| RenderErrorReason::Other(format!("{}: {m}", self.name)).into();
        let l = &self.limits;
        if l.started.get().is_some_and(|t| t.elapsed() > l.max_time) {
            return Err(fail(format!(
                "rendering took longer than {} s, the most allowed",
                l.max_time.as_secs()
            )));
        }
        let params: Vec<&PathAndJson> = h.params().iter().collect();
        let value = (self.f)(&params, l.max_bytes).map_err(fail)?;
        if value.as_str().is_some_and(|s| s.len() > l.max_bytes) {
            return Err(fail(too_large(l.max_bytes)));
        }
        Ok(ScopedJson::Derived(value))
    }
}

/// Where a parameter came from, for messages (`site.registry.host`).
fn origin(p: &PathAndJson) -> String {
    p.relative_path()
        .cloned()
        .unwrap_or_else(|| "the value".into())
}

/// A parameter that must be present (a missing field is named).
fn present<'a>(params: &[&'a PathAndJson], i: usize, what: &str) -> Result<&'a Value, String> {
    let p = params
        .get(i)
        .ok_or_else(|| format!("expects {what} as parameter {}", i + 1))?;
    if p.is_value_missing() {
        return Err(format!("{} is not set", origin(p)));
    }
    Ok(p.value())
}

/// Empty in Helm's sense: null, false, "", 0, [] or {}.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Text of a scalar (strings without quotes).
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The message of a helper whose result would be larger than `max` bytes.
fn too_large(max: usize) -> String {
    format!("the result would be larger than {max} bytes, the most one rendered file may have")
}

/// Refuses a result of `len` bytes before it is made.
fn within(len: usize, max: usize) -> Result<(), String> {
    if len > max {
        return Err(too_large(max));
    }
    Ok(())
}

/// Size of `indent_text(n, s)`, without making it.
fn indented_len(n: usize, s: &str) -> usize {
    let lines = s.split('\n').filter(|l| !l.is_empty()).count();
    s.len().saturating_add(n.saturating_mul(lines))
}

fn count(params: &[&PathAndJson], i: usize) -> Result<usize, String> {
    present(params, i, "a number of spaces")?
        .as_u64()
        .filter(|n| *n <= 64)
        .map(|n| n as usize)
        .ok_or_else(|| "the number of spaces must be 0 to 64".into())
}

fn indent_text(n: usize, s: &str) -> String {
    let pad = " ".repeat(n);
    s.split('\n')
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `required "message" VALUE`: VALUE, or the message as an error when it
/// is missing or empty.
fn required(p: &[&PathAndJson], _max: usize) -> Result<Value, String> {
    let msg = text(present(p, 0, "a message")?);
    match p.get(1) {
        Some(v) if !v.is_value_missing() && !is_empty(v.value()) => Ok(v.value().clone()),
        _ => Err(msg),
    }
}

/// `default DEFAULT VALUE`: VALUE unless missing or empty, else DEFAULT.
fn default(p: &[&PathAndJson], _max: usize) -> Result<Value, String> {
    let d = present(p, 0, "a default")?;
    match p.get(1) {
        Some(v) if !v.is_value_missing() && !is_empty(v.value()) => Ok(v.value().clone()),
        _ => Ok(d.clone()),
    }
}

/// `toYaml VALUE`: block YAML without a trailing newline.
fn to_yaml(p: &[&PathAndJson], _max: usize) -> Result<Value, String> {
    let v = present(p, 0, "a value")?;
    let y = serde_saphyr::to_string(v).map_err(|e| e.to_string())?;
    Ok(Value::String(y.trim_end_matches('\n').to_string()))
}

/// `toJson VALUE`: compact JSON.
fn to_json(p: &[&PathAndJson], _max: usize) -> Result<Value, String> {
    let v = present(p, 0, "a value")?;
    Ok(Value::String(
        serde_json::to_string(v).map_err(|e| e.to_string())?,
    ))
}

/// `indent N TEXT`: every non-empty line indented by N spaces.
fn indent(p: &[&PathAndJson], max: usize) -> Result<Value, String> {
    let n = count(p, 0)?;
    let t = text(present(p, 1, "text")?);
    within(indented_len(n, &t), max)?;
    Ok(Value::String(indent_text(n, &t)))
}

/// `nindent N TEXT`: a newline, then `indent N TEXT`.
fn nindent(p: &[&PathAndJson], max: usize) -> Result<Value, String> {
    let n = count(p, 0)?;
    let t = text(present(p, 1, "text")?);
    within(indented_len(n, &t).saturating_add(1), max)?;
    Ok(Value::String(format!("\n{}", indent_text(n, &t))))
}

/// `quote VALUE`: a double-quoted string, escaped so that YAML and JSON
/// read back exactly the value.
fn quote(p: &[&PathAndJson], _max: usize) -> Result<Value, String> {
    let v = present(p, 0, "a value")?;
    if v.is_object() || v.is_array() {
        return Err(format!("{} is not a single value", origin(p[0])));
    }
    Ok(Value::String(
        serde_json::to_string(&text(v)).map_err(|e| e.to_string())?,
    ))
}

/// `squote VALUE`: a single-quoted POSIX shell word, safe whatever the
/// value holds.
fn squote(p: &[&PathAndJson], _max: usize) -> Result<Value, String> {
    let v = present(p, 0, "a value")?;
    if v.is_object() || v.is_array() {
        return Err(format!("{} is not a single value", origin(p[0])));
    }
    Ok(Value::String(format!(
        "'{}'",
        text(v).replace('\'', r"'\''")
    )))
}

/// `concat A B ...`: the texts of the values joined.
fn concat(p: &[&PathAndJson], max: usize) -> Result<Value, String> {
    let parts = (0..p.len())
        .map(|i| present(p, i, "a value").map(text))
        .collect::<Result<Vec<String>, String>>()?;
    within(parts.iter().map(String::len).sum(), max)?;
    Ok(Value::String(parts.concat()))
}

/// `image "NAME"` (or `"NAME:TAG"`): the internal reference pinned by digest.
struct ImageHelper {
    /// `name` and `name:tag` → pinned reference; ambiguous names map to `None`.
    images: BTreeMap<String, Option<String>>,
}

impl HelperDef for ImageHelper {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let params: Vec<&PathAndJson> = h.params().iter().collect();
        let err = |m: String| RenderError::from(RenderErrorReason::Other(format!("image: {m}")));
        let name = text(present(&params, 0, "an image name").map_err(err)?);
        match self.images.get(&name) {
            Some(Some(pinned)) => Ok(ScopedJson::Derived(Value::String(pinned.clone()))),
            Some(None) => Err(err(format!(
                "{name} names several images in the bundle; add the tag ({name}:TAG)"
            ))),
            None => {
                let known: Vec<&String> = self.images.keys().filter(|k| !k.contains(':')).collect();
                Err(err(format!(
                    "no image {name} in the bundle (it has {})",
                    known
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        }
    }
}

/// One image the `image` helper knows: bundle name, tag and pinned reference.
pub struct KnownImage {
    /// Repository name in the bundle.
    pub name: String,
    /// Tag in the bundle.
    pub tag: String,
    /// `registry/prefix/name@sha256:…`.
    pub pinned: String,
}

/// A Handlebars registry in strict mode, without HTML escaping, with every
/// helper registered, each within `limits`.
pub fn registry(images: &[KnownImage], limits: &HelperLimits) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    let fns: [(&'static str, HelperFn); 9] = [
        ("squote", squote),
        ("concat", concat),
        ("required", required),
        ("default", default),
        ("toYaml", to_yaml),
        ("toJson", to_json),
        ("indent", indent),
        ("nindent", nindent),
        ("quote", quote),
    ];
    for (name, f) in fns {
        hb.register_helper(
            name,
            Box::new(FnHelper {
                name,
                f,
                limits: limits.clone(),
            }),
        );
    }
    let mut map: BTreeMap<String, Option<String>> = BTreeMap::new();
    for img in images {
        map.insert(
            format!("{}:{}", img.name, img.tag),
            Some(img.pinned.clone()),
        );
        map.entry(img.name.clone())
            .and_modify(|v| *v = None)
            .or_insert_with(|| Some(img.pinned.clone()));
    }
    hb.register_helper("image", Box::new(ImageHelper { images: map }));
    hb
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, data: &Value) -> Result<String, String> {
        render_within(
            t,
            data,
            &HelperLimits::new(8 << 20, Duration::from_secs(60)),
        )
    }

    fn render_within(t: &str, data: &Value, limits: &HelperLimits) -> Result<String, String> {
        let hb = registry(
            &[
                KnownImage {
                    name: "vendor/app".into(),
                    tag: "1.0".into(),
                    pinned: "reg/p/vendor/app@sha256:aa".into(),
                },
                KnownImage {
                    name: "vendor/two".into(),
                    tag: "1".into(),
                    pinned: "reg/p/vendor/two@sha256:01".into(),
                },
                KnownImage {
                    name: "vendor/two".into(),
                    tag: "2".into(),
                    pinned: "reg/p/vendor/two@sha256:02".into(),
                },
            ],
            limits,
        );
        hb.render_template(t, data).map_err(|e| e.to_string())
    }

    #[test]
    fn helper_values_are_bounded_before_they_are_made() {
        // Found by review while writing the render fuzz target: each level
        // doubles a value in memory, and nothing is written until the end,
        // so the output budget never saw it (40 levels: 2^40 times "ab").
        let doubling = format!(
            "{{{{#with \"ab\"}}}}{}{{{{this}}}}{}{{{{/with}}}}",
            "{{#with (concat this this)}}".repeat(40),
            "{{/with}}".repeat(40)
        );
        let e = render(&doubling, &json!({})).unwrap_err();
        assert!(
            e.contains("concat: the result would be larger than 8388608 bytes"),
            "{e}"
        );
        // indent multiplies by up to 65: refused before it is made.
        let limits = HelperLimits::new(1000, Duration::from_secs(60));
        let d = json!({"lines": "x\n".repeat(100)});
        let e = render_within("{{indent 64 lines}}", &d, &limits).unwrap_err();
        assert!(
            e.contains("indent: the result would be larger than 1000 bytes"),
            "{e}"
        );
        assert!(render_within("{{nindent 2 lines}}", &d, &limits).is_ok());
        let e = render_within(
            "{{quote (concat lines lines lines lines lines lines)}}",
            &d,
            &limits,
        )
        .unwrap_err();
        assert!(e.contains("larger than 1000 bytes"), "{e}");
        // And time is checked at every helper call, not only when writing.
        let limits = HelperLimits::new(1000, Duration::ZERO);
        limits.started.set(Instant::now()).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let e = render_within("{{#with (concat \"a\")}}{{/with}}", &d, &limits).unwrap_err();
        assert!(e.contains("concat: rendering took longer than 0 s"), "{e}");
    }

    #[test]
    fn helpers_behave_like_helms() {
        let d = json!({"a": {"b": "x\"y", "n": 0, "list": [1, 2], "empty": ""}, "nul": null});
        assert_eq!(render("{{quote a.b}}", &d).unwrap(), r#""x\"y""#);
        assert_eq!(render("{{default \"z\" a.empty}}", &d).unwrap(), "z");
        assert_eq!(render("{{default \"z\" a.missing}}", &d).unwrap(), "z");
        assert_eq!(render("{{default \"z\" a.b}}", &d).unwrap(), "x\"y");
        assert_eq!(render("{{toJson a.list}}", &d).unwrap(), "[1,2]");
        assert_eq!(
            render("k:{{nindent 2 (toYaml a.list)}}", &d).unwrap(),
            "k:\n  - 1\n  - 2"
        );
        assert_eq!(render("{{indent 2 \"a\\nb\"}}", &d).unwrap(), "  a\n  b");
        assert_eq!(render("{{squote \"it's\"}}", &d).unwrap(), r"'it'\''s'");
        assert_eq!(render("{{concat \"ws-\" a.b}}", &d).unwrap(), "ws-x\"y");
        assert_eq!(
            render("{{image \"vendor/app\"}}", &d).unwrap(),
            "reg/p/vendor/app@sha256:aa"
        );
        assert_eq!(
            render("{{image \"vendor/two:2\"}}", &d).unwrap(),
            "reg/p/vendor/two@sha256:02"
        );
    }

    #[test]
    fn failures_are_named() {
        let d = json!({"a": {"empty": ""}, "nul": null});
        let e = render("{{required \"set a.x\" a.x}}", &d).unwrap_err();
        assert!(e.contains("set a.x"), "{e}");
        let e = render("{{required \"set a.empty\" a.empty}}", &d).unwrap_err();
        assert!(e.contains("set a.empty"), "{e}");
        let e = render("{{toYaml a.nothing}}", &d).unwrap_err();
        assert!(e.contains("toYaml") && e.contains("not set"), "{e}");
        let e = render("{{a.nothing}}", &d).unwrap_err();
        assert!(
            e.to_lowercase().contains("strict") || e.contains("a.nothing"),
            "{e}"
        );
        let e = render("{{image \"vendor/nope\"}}", &d).unwrap_err();
        assert!(e.contains("vendor/app"), "{e}");
        let e = render("{{image \"vendor/two\"}}", &d).unwrap_err();
        assert!(e.contains("several"), "{e}");
    }
}
