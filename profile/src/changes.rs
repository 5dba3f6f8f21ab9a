//! What a new version's profile asks of an existing site file: the fields
//! it renamed (applied, so the old file keeps working, with a warning),
//! what its schema refuses in the file (a new required field, a removed
//! one), and the defaults that change for fields the file leaves out.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::profile::Profile;
use crate::schema::{escape_pointer, field_path, without_nulls, SiteSchema};
use crate::Problem;

/// A renamed field the site file still used, moved to its new name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Renamed {
    /// Where the value was (`workspaces[1].db`).
    pub from: String,
    /// Where it is now (`workspaces[1].database`).
    pub to: String,
}

/// A field the site file leaves out whose default value changes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DefaultChange {
    /// The field (`monitoring.metricsPort`).
    pub field: String,
    /// The value the installed version gave it (`null`: none).
    pub from: Value,
    /// The value the new version gives it (`null`: none).
    pub to: Value,
}

/// What a new version's profile asks of a site file.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SiteChanges {
    /// Renamed fields the file still uses (they keep working).
    pub renamed: Vec<Renamed>,
    /// What the new schema refuses in the file (after the renames): it
    /// must change before the new version can be installed.
    pub problems: Vec<Problem>,
    /// Defaults that change for fields the file leaves out.
    pub defaults: Vec<DefaultChange>,
}

impl Profile {
    /// Moves every field of `site` that the profile's `renames` name by its
    /// old name to its new one (where the new one is not set already), and
    /// says which. `[]` in a rename is every item of that list.
    pub fn apply_renames(&self, site: &mut Value) -> Vec<Renamed> {
        let mut out = Vec::new();
        for r in &self.renames {
            let from: Vec<&str> = r.from.split('.').collect();
            let to: Vec<&str> = r.to.split('.').collect();
            let common = from
                .iter()
                .zip(&to)
                .take(from.len().min(to.len()) - 1)
                .take_while(|(a, b)| a == b)
                .count();
            rename_under(
                site,
                &from[..common],
                &from[common..],
                &to[common..],
                String::new(),
                &mut out,
            );
        }
        out
    }
}

/// Walks `prefix` (with `[]` over every item), then moves `from` to `to`
/// below each place reached.
fn rename_under(
    node: &mut Value,
    prefix: &[&str],
    from: &[&str],
    to: &[&str],
    at: String,
    out: &mut Vec<Renamed>,
) {
    let Some((first, rest)) = prefix.split_first() else {
        move_field(node, from, to, &at, out);
        return;
    };
    let (key, list) = match first.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (*first, false),
    };
    let Some(child) = node.get_mut(key) else {
        return;
    };
    let here = join(&at, key);
    if list {
        if let Value::Array(items) = child {
            for (i, item) in items.iter_mut().enumerate() {
                rename_under(item, rest, from, to, format!("{here}[{i}]"), out);
            }
        }
    } else {
        rename_under(child, rest, from, to, here, out);
    }
}

fn move_field(node: &mut Value, from: &[&str], to: &[&str], at: &str, out: &mut Vec<Renamed>) {
    if from.iter().chain(to).any(|s| s.contains("[]")) || from.is_empty() || to.is_empty() {
        return;
    }
    // Take the value out of its old place.
    let Some(parent) = from[..from.len() - 1]
        .iter()
        .try_fold(&mut *node, |n, k| n.get_mut(*k))
    else {
        return;
    };
    let Some(map) = parent.as_object_mut() else {
        return;
    };
    let last = from[from.len() - 1];
    if map.get(last).is_none_or(Value::is_null) {
        return;
    }
    // Where the new name is set already, the new one wins: leave it.
    let taken = to
        .iter()
        .try_fold(&*node, |n, k| n.get(*k))
        .is_some_and(|v| !v.is_null());
    if taken {
        return;
    }
    let Some(value) = from[..from.len() - 1]
        .iter()
        .try_fold(&mut *node, |n, k| n.get_mut(*k))
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove(last))
    else {
        return;
    };
    let mut target = node;
    for k in &to[..to.len() - 1] {
        if !target.get(*k).is_some_and(Value::is_object) {
            if let Some(m) = target.as_object_mut() {
                m.insert((*k).to_string(), Value::Object(Map::new()));
            } else {
                return;
            }
        }
        target = target.get_mut(*k).expect("inserted");
    }
    if let Some(m) = target.as_object_mut() {
        m.insert(to[to.len() - 1].to_string(), value);
        out.push(Renamed {
            from: join(at, &from.join(".")),
            to: join(at, &to.join(".")),
        });
    }
}

fn join(at: &str, rest: &str) -> String {
    if at.is_empty() {
        rest.to_string()
    } else {
        format!("{at}.{rest}")
    }
}

/// What the new version's `profile` and `schema` ask of `site` (as read
/// from its file), against the installed version's `old` schema when it
/// is known (without it, no default can be compared).
pub fn site_changes(
    profile: &Profile,
    schema: &SiteSchema,
    old: Option<&SiteSchema>,
    site: &Value,
) -> SiteChanges {
    let mut site = without_nulls(site);
    let renamed = profile.apply_renames(&mut site);
    let problems = schema.check(&site);
    let mut defaults = Vec::new();
    if let Some(old) = old {
        let before = old.fill(&site).value;
        let after = schema.fill(&site).value;
        compare(&site, &before, &after, "", &mut defaults);
    }
    SiteChanges {
        renamed,
        problems,
        defaults,
    }
}

/// The fields `site` leaves out whose filled values differ, below the
/// JSON pointer `at`.
fn compare(site: &Value, before: &Value, after: &Value, at: &str, out: &mut Vec<DefaultChange>) {
    let given = |p: &str| site.pointer(p).is_some_and(|v| !v.is_null());
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            let mut keys: Vec<&String> = b.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = format!("{at}/{}", escape_pointer(k));
                let (bv, av) = (
                    b.get(k).unwrap_or(&Value::Null),
                    a.get(k).unwrap_or(&Value::Null),
                );
                if bv == av {
                    continue;
                }
                if given(&p)
                    || (bv.is_object() && av.is_object())
                    || (bv.is_array() && av.is_array())
                {
                    compare(site, bv, av, &p, out);
                } else {
                    out.push(DefaultChange {
                        field: field_path(after, &p),
                        from: bv.clone(),
                        to: av.clone(),
                    });
                }
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                compare(site, bv, av, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(renames: &str) -> Profile {
        Profile::parse(&format!(
            "profileVersion: 1\nproduct: p\nsiteSchema: s.json\nrenames:\n{renames}"
        ))
        .unwrap()
    }

    #[test]
    fn renames_move_the_value_and_say_where() {
        let p = profile(
            "  - {from: db, to: database}\n  - {from: \"teams[].addr\", to: \"teams[].url\"}\n  - {from: old.deep.x, to: fresh.y}\n",
        );
        let mut site = json!({
            "db": {"host": "h"},
            "teams": [{"addr": "a"}, {"url": "kept", "addr": "dropped-not"}, {}],
            "old": {"deep": {"x": 1}}
        });
        let got = p.apply_renames(&mut site);
        let got: Vec<(String, String)> = got.into_iter().map(|r| (r.from, r.to)).collect();
        assert_eq!(
            got,
            [
                ("db".to_string(), "database".to_string()),
                ("teams[0].addr".into(), "teams[0].url".into()),
                ("old.deep.x".into(), "fresh.y".into()),
            ]
        );
        assert_eq!(site["database"], json!({"host": "h"}));
        assert_eq!(site["teams"][0], json!({"url": "a"}));
        assert_eq!(
            site["teams"][1],
            json!({"url": "kept", "addr": "dropped-not"}),
            "the new name set already wins; the old one is left for the schema to refuse"
        );
        assert_eq!(site["fresh"], json!({"y": 1}));
    }

    #[test]
    fn changes_name_new_requirements_and_changed_defaults() {
        let schema = |extra: Value| {
            let mut s = json!({
                "$schema": crate::schema::DIALECT,
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "name": {"type": "string"},
                    "port": {"type": "integer", "default": 80},
                    "mode": {"type": "string", "default": "a"},
                    "database": {"type": "object"}
                }
            });
            for (k, v) in extra.as_object().unwrap() {
                s[k] = v.clone();
            }
            SiteSchema::new(s).unwrap()
        };
        let old = schema(json!({}));
        let mut new_value = old.value().clone();
        new_value["properties"]["port"]["default"] = json!(8080);
        new_value["properties"]["token"] = json!({"type": "string"});
        new_value["required"] = json!(["token"]);
        new_value["properties"]
            .as_object_mut()
            .unwrap()
            .remove("name");
        let new = SiteSchema::new(new_value).unwrap();
        let p = profile("  - {from: db, to: database}\n");
        let site = json!({"name": "x", "mode": "b", "db": {}});
        let c = site_changes(&p, &new, Some(&old), &site);
        assert_eq!(
            c.renamed,
            [Renamed {
                from: "db".into(),
                to: "database".into()
            }]
        );
        let problems: Vec<String> = c.problems.iter().map(|p| p.to_string()).collect();
        assert!(
            problems.iter().any(|p| p.starts_with("token: required")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("name: unknown field")),
            "{problems:?}"
        );
        assert_eq!(
            c.defaults,
            [DefaultChange {
                field: "port".into(),
                from: json!(80),
                to: json!(8080)
            }],
            "mode is set in the file: its default does not matter"
        );
    }
}
