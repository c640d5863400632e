//! Patch engines: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch.
//!
//! Strategic merge patch behaves like merge patch except for lists with merge keys (see
//! [`crate::lists`]): their items are merged by key, `{"$patch": "delete", key...}` removes an
//! item, `{"$patch": "replace"}` in a map replaces it, `$deleteFromPrimitiveList/<field>` removes
//! scalars from a set, and `$setElementOrder/<field>` / `$retainKeys` directives are accepted and
//! ignored (they only affect ordering and defaults). Custom resources reject strategic merge
//! patch with `415`, like the apiserver.

use serde_json::{Map, Value};

use crate::lists::{ListType, ListTypes, same_item};
use crate::status::{ApiError, ApiResult};

/// Applies an RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// Applies an RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, ops: &Value) -> ApiResult<()> {
    let ops = ops
        .as_array()
        .ok_or_else(|| ApiError::bad_request("json patch must be an array of operations"))?;
    for op in ops {
        let path = op["path"]
            .as_str()
            .ok_or_else(|| ApiError::bad_request("json patch operation without path"))?;
        match op["op"].as_str().unwrap_or_default() {
            "add" => add(
                target,
                path,
                op.get("value").cloned().unwrap_or(Value::Null),
            )?,
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                remove(target, path)?;
                add(
                    target,
                    path,
                    op.get("value").cloned().unwrap_or(Value::Null),
                )?;
            }
            "move" => {
                let from = op["from"].as_str().unwrap_or_default();
                let v = remove(target, from)?;
                add(target, path, v)?;
            }
            "copy" => {
                let from = op["from"].as_str().unwrap_or_default();
                let v = target.pointer(from).cloned().ok_or_else(|| missing(from))?;
                add(target, path, v)?;
            }
            "test" => {
                // A missing path tests equal to null (as the apiserver's json-patch does).
                let actual = target.pointer(path).unwrap_or(&Value::Null);
                if actual != op.get("value").unwrap_or(&Value::Null) {
                    return Err(ApiError::invalid_patch(format!(
                        "testing value {path} failed"
                    )));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected json patch operation {other:?}"
                )));
            }
        }
    }
    Ok(())
}

impl ApiError {
    /// `422 Invalid` for a patch that cannot be applied (what the apiserver answers).
    pub fn invalid_patch(message: String) -> Self {
        let mut e = ApiError::bad_request(message);
        e.code = 422;
        e.reason = "Invalid";
        e
    }
}

fn missing(path: &str) -> ApiError {
    ApiError::invalid_patch(format!(
        "the server rejected our request due to an error in our request: doc is missing path: {path:?}"
    ))
}

fn unescape(s: &str) -> String {
    s.replace("~1", "/").replace("~0", "~")
}

fn split_parent(path: &str) -> ApiResult<(&str, String)> {
    let idx = path
        .rfind('/')
        .ok_or_else(|| ApiError::bad_request(format!("invalid json pointer {path:?}")))?;
    Ok((&path[..idx], unescape(&path[idx + 1..])))
}

fn add(target: &mut Value, path: &str, value: Value) -> ApiResult<()> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_parent(path)?;
    let p = target.pointer_mut(parent).ok_or_else(|| missing(path))?;
    match p {
        Value::Object(m) => {
            m.insert(last, value);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
            } else {
                let i: usize = last.parse().map_err(|_| missing(path))?;
                if i > a.len() {
                    return Err(missing(path));
                }
                a.insert(i, value);
            }
        }
        _ => return Err(missing(path)),
    }
    Ok(())
}

fn remove(target: &mut Value, path: &str) -> ApiResult<Value> {
    let (parent, last) = split_parent(path)?;
    let p = target.pointer_mut(parent).ok_or_else(|| missing(path))?;
    match p {
        Value::Object(m) => m.remove(&last).ok_or_else(|| missing(path)),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| missing(path))?;
            if i >= a.len() {
                return Err(missing(path));
            }
            Ok(a.remove(i))
        }
        _ => Err(missing(path)),
    }
}

/// Applies a strategic merge patch to a built-in object.
pub fn strategic_merge_patch(target: &mut Value, patch: &Value) -> ApiResult<()> {
    smp(target, patch, &mut Vec::new(), &ListTypes::builtin())
}

fn smp(target: &mut Value, patch: &Value, path: &mut Vec<String>, lt: &ListTypes) -> ApiResult<()> {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return Ok(());
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut clean = patch.clone();
        strip_directives(&mut clean);
        *target = clean;
        return Ok(());
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else {
        return Ok(());
    };
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(del)) = (t.get_mut(field), v.as_array()) {
                items.retain(|i| !del.contains(i));
            }
            continue;
        }
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        path.push(k.clone());
        match (t.get_mut(k), v) {
            (Some(Value::Array(cur)), Value::Array(items)) => match lt.at(path) {
                ListType::Map(keys) => merge_keyed_list(cur, items, &keys, path, lt)?,
                ListType::Set => {
                    for i in items {
                        if !cur.contains(i) {
                            cur.push(i.clone());
                        }
                    }
                }
                ListType::Atomic => *cur = items.clone(),
            },
            (Some(cur @ Value::Object(_)), Value::Object(_)) => smp(cur, v, path, lt)?,
            _ => {
                let mut clean = v.clone();
                strip_directives(&mut clean);
                t.insert(k.clone(), clean);
            }
        }
        path.pop();
    }
    Ok(())
}

fn merge_keyed_list(
    cur: &mut Vec<Value>,
    items: &[Value],
    keys: &[String],
    path: &mut Vec<String>,
    lt: &ListTypes,
) -> ApiResult<()> {
    // Strategic merge patch identifies items by the first (patchMergeKey) key only.
    let key = &keys[..1];
    for item in items {
        let directive = item.get("$patch").and_then(Value::as_str);
        let pos = cur.iter().position(|c| same_item(c, item, key));
        match (directive, pos) {
            (Some("delete"), Some(i)) => {
                cur.remove(i);
            }
            (Some("delete"), None) => {}
            (Some("replace"), _) => {
                let mut clean = item.clone();
                strip_directives(&mut clean);
                match pos {
                    Some(i) => cur[i] = clean,
                    None => cur.push(clean),
                }
            }
            (_, Some(i)) => smp(&mut cur[i], item, path, lt)?,
            (_, None) => {
                let mut clean = item.clone();
                strip_directives(&mut clean);
                cur.push(clean);
            }
        }
    }
    Ok(())
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
            m.values_mut().for_each(strip_directives);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn json_patch_ops() {
        let mut t = json!({"spec": {"list": [1, 2], "x": 1}});
        json_patch(
            &mut t,
            &json!([
                {"op": "add", "path": "/spec/list/-", "value": 3},
                {"op": "test", "path": "/spec/x", "value": 1},
                {"op": "replace", "path": "/spec/x", "value": 2},
                {"op": "copy", "from": "/spec/x", "path": "/spec/y"},
                {"op": "move", "from": "/spec/y", "path": "/spec/z"},
                {"op": "remove", "path": "/spec/list/0"},
                {"op": "add", "path": "/metadata~1x", "value": true}
            ]),
        )
        .unwrap();
        assert_eq!(
            t,
            json!({"spec": {"list": [2, 3], "x": 2, "z": 2}, "metadata/x": true})
        );
        let err = json_patch(
            &mut t,
            &json!([{"op": "test", "path": "/spec/x", "value": 9}]),
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
        assert!(json_patch(&mut t, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }

    #[test]
    fn strategic_merge_by_keys() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}], "args": ["1"]},
            {"name": "b", "image": "b:1"}
        ]}}}});
        strategic_merge_patch(
            &mut d,
            &json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [
                {"name": "a", "env": [{"name": "Y", "value": "2"}], "args": ["2"]},
                {"name": "b", "$patch": "delete"},
                {"name": "c", "image": "c:1"}
            ]}}}}),
        )
        .unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"],
            json!([
                {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}], "args": ["2"]},
                {"name": "c", "image": "c:1"}
            ])
        );
    }

    #[test]
    fn strategic_merge_finalizers_and_replace() {
        let mut o = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}}});
        strategic_merge_patch(
            &mut o,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["c"],
                "labels": {"$patch": "replace", "z": "3"}}}),
        )
        .unwrap();
        assert_eq!(
            o,
            json!({"metadata": {"finalizers": ["b", "c"], "labels": {"z": "3"}}})
        );
    }
}
