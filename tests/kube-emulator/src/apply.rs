//! Server-side apply and `managedFields` tracking.
//!
//! Field ownership is recorded in `metadata.managedFields` in the apiserver's `FieldsV1` format
//! (`f:<field>`, `k:<keys json>` for items of keyed lists, `v:<json>` for set members, `.` for
//! the item itself). Internally a field set is a set of paths, one per owned leaf.
//!
//! Rules (the subset of structured-merge-diff semantics that clients notice):
//! - An apply (`application/apply-patch+yaml`) by manager M sets M's `Apply` entry to exactly the
//!   fields in the applied configuration. Fields M applied before but not now are removed from
//!   the object unless another manager also owns them.
//! - Applying a field owned by another manager with a different value is a `409 Conflict`
//!   listing each field, unless `force=true`, which transfers ownership to M.
//! - Any other write (create, update, merge/JSON/strategic patch) by manager M gives M's
//!   `Update` entry the fields it changed and takes them away from every other manager.
//! - Fields the server owns (`metadata.name/namespace/uid/resourceVersion/generation/
//!   creationTimestamp/managedFields/deletion*`, `apiVersion`, `kind`) are never tracked.
//!   With a `status` subresource, writes to the main resource track everything but `status`
//!   and writes to `/status` track only `status` (recorded with `subresource: status`).

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::lists::{ListType, ListTypes, key_value, same_item};
use crate::status::Cause;

/// One owned leaf: `["f:spec", "f:containers", "k:{\"name\":\"a\"}", "f:image"]`.
pub type FieldPath = Vec<String>;

/// Which part of an object a write may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The main resource; `true` if the kind has a status subresource (then status is excluded).
    Main(bool),
    /// The `/status` subresource.
    Status,
}

impl Scope {
    fn subresource(self) -> &'static str {
        match self {
            Scope::Main(_) => "",
            Scope::Status => "status",
        }
    }
}

const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "generateName",
];

/// The owned paths of an object (as written) within `scope`.
pub fn field_paths(obj: &Value, lt: &ListTypes, scope: Scope) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    let Some(m) = obj.as_object() else {
        return out;
    };
    for (k, v) in m {
        let tracked = match (scope, k.as_str()) {
            (_, "apiVersion" | "kind") => false,
            (Scope::Status, "status") => true,
            (Scope::Status, _) => false,
            (Scope::Main(true), "status") => false,
            _ => true,
        };
        if !tracked {
            continue;
        }
        if k == "metadata" {
            if let Some(md) = v.as_object() {
                for (mk, mv) in md {
                    if SERVER_METADATA.contains(&mk.as_str()) {
                        continue;
                    }
                    let mut names = vec!["metadata".to_owned(), mk.clone()];
                    let mut path = vec!["f:metadata".to_owned(), format!("f:{mk}")];
                    collect(mv, &mut names, &mut path, lt, &mut out);
                }
            }
            continue;
        }
        let mut names = vec![k.clone()];
        let mut path = vec![format!("f:{k}")];
        collect(v, &mut names, &mut path, lt, &mut out);
    }
    out
}

fn collect(
    v: &Value,
    names: &mut Vec<String>,
    path: &mut FieldPath,
    lt: &ListTypes,
    out: &mut BTreeSet<FieldPath>,
) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, child) in m {
                names.push(k.clone());
                path.push(format!("f:{k}"));
                collect(child, names, path, lt, out);
                path.pop();
                names.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match lt.at(names) {
            ListType::Map(keys) => {
                for item in items {
                    path.push(item_key(item, &keys));
                    let mut me = path.clone();
                    me.push(".".into());
                    out.insert(me);
                    if let Some(m) = item.as_object() {
                        for (k, child) in m {
                            names.push(k.clone());
                            path.push(format!("f:{k}"));
                            collect(child, names, path, lt, out);
                            path.pop();
                            names.pop();
                        }
                    }
                    path.pop();
                }
            }
            ListType::Set => {
                for item in items {
                    let mut p = path.clone();
                    p.push(format!("v:{item}"));
                    out.insert(p);
                }
            }
            ListType::Atomic => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

fn item_key(item: &Value, keys: &[String]) -> String {
    let mut m = Map::new();
    for k in keys {
        let v = key_value(item, k);
        if !v.is_null() {
            m.insert(k.clone(), v);
        }
    }
    format!("k:{}", Value::Object(m))
}

fn find_item(items: &[Value], elem: &str) -> Option<usize> {
    if let Some(k) = elem.strip_prefix("k:") {
        let keys: Value = serde_json::from_str(k).ok()?;
        let names: Vec<String> = keys.as_object()?.keys().cloned().collect();
        items.iter().position(|i| same_item(i, &keys, &names))
    } else if let Some(v) = elem.strip_prefix("v:") {
        let v: Value = serde_json::from_str(v).ok()?;
        items.iter().position(|i| *i == v)
    } else if let Some(i) = elem.strip_prefix("i:") {
        i.parse().ok().filter(|i| *i < items.len())
    } else {
        None
    }
}

/// The value at an owned path, if present.
pub fn value_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for elem in path {
        if elem == "." {
            return Some(cur);
        }
        cur = if let Some(f) = elem.strip_prefix("f:") {
            cur.get(f)?
        } else {
            let items = cur.as_array()?;
            &items[find_item(items, elem)?]
        };
    }
    Some(cur)
}

/// Removes the field or list item an owned path designates.
pub fn remove_path(obj: &mut Value, path: &[String]) {
    let (last, parent) = match path.split_last() {
        Some((l, p)) if l == "." => match p.split_last() {
            Some((item, pp)) => (item, pp),
            None => return,
        },
        Some(x) => x,
        None => return,
    };
    let mut cur = obj;
    for elem in parent {
        cur = if let Some(f) = elem.strip_prefix("f:") {
            match cur.get_mut(f) {
                Some(c) => c,
                None => return,
            }
        } else {
            let Some(items) = cur.as_array_mut() else {
                return;
            };
            let Some(i) = find_item(items, elem) else {
                return;
            };
            &mut items[i]
        };
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(items) = cur.as_array_mut()
        && let Some(i) = find_item(items, last)
    {
        items.remove(i);
    }
}

/// Encodes owned paths as `FieldsV1`.
pub fn to_fields_v1(paths: &BTreeSet<FieldPath>) -> Value {
    let mut root = Map::new();
    for p in paths {
        let mut cur = &mut root;
        for elem in p {
            let entry = cur
                .entry(elem.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(m) = entry else {
                break;
            };
            cur = m;
        }
    }
    Value::Object(root)
}

/// Decodes `FieldsV1` into owned paths.
pub fn from_fields_v1(v: &Value) -> BTreeSet<FieldPath> {
    fn walk(v: &Value, path: &mut FieldPath, out: &mut BTreeSet<FieldPath>) {
        match v.as_object() {
            Some(m) if !m.is_empty() => {
                for (k, child) in m {
                    path.push(k.clone());
                    walk(child, path, out);
                    path.pop();
                }
            }
            _ => {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    subresource: String,
    time: String,
    paths: BTreeSet<FieldPath>,
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().into(),
                    operation: e["operation"].as_str().unwrap_or("Update").into(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().into(),
                    subresource: e["subresource"].as_str().unwrap_or_default().into(),
                    time: e["time"].as_str().unwrap_or_default().into(),
                    paths: from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn write_entries(obj: &mut Value, entries: Vec<Entry>) {
    let list: Vec<Value> = entries
        .into_iter()
        .filter(|e| !e.paths.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.paths),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            md.remove("managedFields");
        } else {
            md.insert("managedFields".into(), Value::Array(list));
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Records a non-apply write by `manager` (see the module rules). `old` is `None` on create.
/// The managed fields of `new` are taken from the client if it sent any, else from `old`.
pub fn track_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    lt: &ListTypes,
    scope: Scope,
) {
    let new_paths = field_paths(new, lt, scope);
    let old_paths = old.map(|o| field_paths(o, lt, scope)).unwrap_or_default();
    let changed: BTreeSet<FieldPath> = new_paths
        .iter()
        .filter(|p| !old_paths.contains(*p) || old.and_then(|o| value_at(o, p)) != value_at(new, p))
        .cloned()
        .collect();
    let removed: BTreeSet<FieldPath> = old_paths.difference(&new_paths).cloned().collect();
    let mut entries = if new["metadata"]["managedFields"].is_array() {
        read_entries(new)
    } else {
        old.map(read_entries).unwrap_or_default()
    };
    let sub = scope.subresource();
    let mut mine = None;
    for (i, e) in entries.iter_mut().enumerate() {
        if e.manager == manager && e.operation == "Update" && e.subresource == sub {
            mine = Some(i);
            continue;
        }
        e.paths
            .retain(|p| !changed.contains(p) && !removed.contains(p));
    }
    if !changed.is_empty() || mine.is_some() {
        let idx = match mine {
            Some(i) => i,
            None => {
                entries.push(Entry {
                    manager: manager.to_owned(),
                    operation: "Update".into(),
                    api_version: api_version.to_owned(),
                    subresource: sub.to_owned(),
                    time: now(),
                    paths: BTreeSet::new(),
                });
                entries.len() - 1
            }
        };
        let e = &mut entries[idx];
        e.paths.extend(changed.iter().cloned());
        e.paths
            .retain(|p| !removed.contains(p) && new_paths.contains(p));
        if !changed.is_empty() {
            e.time = now();
            e.api_version = api_version.to_owned();
        }
    }
    write_entries(new, entries);
}

/// Server-side apply of `applied` by `manager` onto `live` (`None`: the object is new).
/// Returns the merged object with updated `managedFields`, or the conflicts.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    api_version: &str,
    lt: &ListTypes,
    scope: Scope,
) -> Result<Value, Vec<Cause>> {
    let applied_paths = field_paths(applied, lt, scope);
    let sub = scope.subresource();
    let Some(live) = live else {
        let mut obj = applied.clone();
        if let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            md.remove("managedFields");
        }
        write_entries(
            &mut obj,
            vec![Entry {
                manager: manager.to_owned(),
                operation: "Apply".into(),
                api_version: api_version.to_owned(),
                subresource: sub.to_owned(),
                time: now(),
                paths: applied_paths,
            }],
        );
        return Ok(obj);
    };
    let mut entries = read_entries(live);
    let is_mine =
        |e: &Entry| e.manager == manager && e.operation == "Apply" && e.subresource == sub;

    let mut conflicts = Vec::new();
    for e in entries.iter_mut().filter(|e| !is_mine(e)) {
        let clashing: Vec<FieldPath> = e
            .paths
            .intersection(&applied_paths)
            .filter(|p| {
                p.last().is_some_and(|l| l != ".") && value_at(live, p) != value_at(applied, p)
            })
            .cloned()
            .collect();
        for p in &clashing {
            conflicts.push(Cause::new(
                "FieldManagerConflict",
                display_path(p),
                format!(
                    "conflict with \"{}\" using {}: {}",
                    e.manager,
                    e.api_version,
                    display_path(p)
                ),
            ));
        }
        if force {
            for p in &clashing {
                e.paths.remove(p);
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }

    let mut merged = live.clone();
    merge(&mut merged, applied, &mut Vec::new(), lt);

    let previously: BTreeSet<FieldPath> = entries
        .iter()
        .filter(|e| is_mine(e))
        .flat_map(|e| e.paths.iter().cloned())
        .collect();
    let others: BTreeSet<FieldPath> = entries
        .iter()
        .filter(|e| !is_mine(e))
        .flat_map(|e| e.paths.iter().cloned())
        .collect();
    // Remove deeper paths first so item removals do not hide field removals.
    // A path owned as a leaf before (an empty map such as `spec: {}`) that is now an ancestor
    // of applied paths is still applied, not removed.
    let mut removed: Vec<&FieldPath> = previously
        .iter()
        .filter(|p| !applied_paths.contains(*p) && !others.contains(*p))
        .filter(|p| !applied_paths.iter().any(|a| a.starts_with(p)))
        .collect();
    removed.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in removed {
        remove_path(&mut merged, p);
    }

    entries.retain(|e| !is_mine(e));
    entries.push(Entry {
        manager: manager.to_owned(),
        operation: "Apply".into(),
        api_version: api_version.to_owned(),
        subresource: sub.to_owned(),
        time: now(),
        paths: applied_paths,
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// `.spec.containers[name="a"].image` style rendering of a path (as in conflict messages).
pub fn display_path(p: &[String]) -> String {
    let mut s = String::new();
    for elem in p {
        if let Some(f) = elem.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = elem.strip_prefix("k:") {
            let inner = serde_json::from_str::<Value>(k)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            s.push_str(&format!("[{inner}]"));
        } else if let Some(v) = elem.strip_prefix("v:") {
            s.push_str(&format!("[{v}]"));
        }
    }
    s
}

/// Merges an applied configuration into the live object, following list semantics.
fn merge(live: &mut Value, applied: &Value, names: &mut Vec<String>, lt: &ListTypes) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, av) in a {
                if names.len() == 1 && names[0] == "metadata" && k == "managedFields" {
                    continue;
                }
                if av.is_null() {
                    continue;
                }
                names.push(k.clone());
                match l.get_mut(k) {
                    Some(lv) => merge(lv, av, names, lt),
                    None => {
                        l.insert(k.clone(), av.clone());
                    }
                }
                names.pop();
            }
        }
        (Value::Array(l), Value::Array(a)) => match lt.at(names) {
            ListType::Map(keys) => {
                for item in a {
                    match l.iter_mut().find(|x| same_item(x, item, &keys)) {
                        Some(x) => merge(x, item, names, lt),
                        None => l.push(item.clone()),
                    }
                }
            }
            ListType::Set => {
                for item in a {
                    if !l.contains(item) {
                        l.push(item.clone());
                    }
                }
            }
            ListType::Atomic => *l = a.clone(),
        },
        (l, a) => *l = a.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "d"}, "data": data})
    }

    const LT: ListTypes<'static> = ListTypes::builtin();

    /// Applies `obj` as field manager `m` (not forced) over `prev`.
    fn apply_as_m(prev: Option<&Value>, obj: &Value) -> Value {
        apply(prev, obj, "m", false, "v1", &LT, Scope::Main(false)).unwrap()
    }

    #[test]
    fn fields_v1_round_trip() {
        let obj = json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let paths = field_paths(&obj, &LT, Scope::Main(true));
        let v1 = to_fields_v1(&paths);
        assert_eq!(
            v1,
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}})
        );
        assert_eq!(from_fields_v1(&v1), paths);
    }

    #[test]
    fn apply_removes_fields_the_manager_dropped() {
        let first = apply_as_m(None, &cm(json!({"a": "1", "b": "2"})));
        let second = apply_as_m(Some(&first), &cm(json!({"a": "1"})));
        assert_eq!(second["data"], json!({"a": "1"}));
    }

    #[test]
    fn an_empty_map_applied_before_can_be_filled_later() {
        let first = apply_as_m(
            None,
            &json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "spec": {}}),
        );
        let second = apply_as_m(
            Some(&first),
            &json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}, "spec": {"a": 1}}),
        );
        assert_eq!(second["spec"], json!({"a": 1}));
    }

    #[test]
    fn apply_conflicts_and_force() {
        let first = apply(
            None,
            &cm(json!({"a": "1"})),
            "alice",
            false,
            "v1",
            &LT,
            Scope::Main(false),
        )
        .unwrap();
        let err = apply(
            Some(&first),
            &cm(json!({"a": "2"})),
            "bob",
            false,
            "v1",
            &LT,
            Scope::Main(false),
        )
        .unwrap_err();
        assert_eq!(err[0].field, ".data.a");
        assert!(err[0].message.contains("alice"));
        // Same value: shared ownership, no conflict.
        let shared = apply(
            Some(&first),
            &cm(json!({"a": "1"})),
            "bob",
            false,
            "v1",
            &LT,
            Scope::Main(false),
        )
        .unwrap();
        // alice drops the field, bob still owns it: it stays.
        let after = apply(
            Some(&shared),
            &cm(json!({})),
            "alice",
            false,
            "v1",
            &LT,
            Scope::Main(false),
        )
        .unwrap();
        assert_eq!(after["data"]["a"], "1");
        let forced = apply(
            Some(&first),
            &cm(json!({"a": "2"})),
            "bob",
            true,
            "v1",
            &LT,
            Scope::Main(false),
        )
        .unwrap();
        assert_eq!(forced["data"]["a"], "2");
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, vec!["bob"]);
    }

    #[test]
    fn updates_take_ownership_of_changed_fields() {
        let first = apply(
            None,
            &cm(json!({"a": "1", "b": "2"})),
            "alice",
            false,
            "v1",
            &LT,
            Scope::Main(false),
        )
        .unwrap();
        let mut updated = first.clone();
        updated["data"]["a"] = json!("changed");
        track_update(
            Some(&first),
            &mut updated,
            "editor",
            "v1",
            &LT,
            Scope::Main(false),
        );
        let mf = updated["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 2);
        assert_eq!(mf[0]["fieldsV1"], json!({"f:data": {"f:b": {}}}));
        assert_eq!(mf[1]["manager"], "editor");
        assert_eq!(mf[1]["fieldsV1"], json!({"f:data": {"f:a": {}}}));
        // alice re-applies without `a`: it is no longer hers, so it is not removed.
        let again = apply(
            Some(&updated),
            &cm(json!({"b": "2"})),
            "alice",
            false,
            "v1",
            &LT,
            Scope::Main(false),
        )
        .unwrap();
        assert_eq!(again["data"], json!({"a": "changed", "b": "2"}));
    }

    #[test]
    fn keyed_list_items_are_removed_as_a_whole() {
        let d = |names: &[&str]| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": names.iter().map(|n| json!({"name": n, "image": "x"})).collect::<Vec<_>>()}}}})
        };
        let lt = ListTypes::builtin();
        let a = apply(
            None,
            &d(&["a", "b"]),
            "m",
            false,
            "apps/v1",
            &lt,
            Scope::Main(true),
        )
        .unwrap();
        let b = apply(
            Some(&a),
            &d(&["a"]),
            "m",
            false,
            "apps/v1",
            &lt,
            Scope::Main(true),
        )
        .unwrap();
        assert_eq!(
            b["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "x"}])
        );
    }
}
