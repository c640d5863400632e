//! Structural OpenAPI v3 schemas of custom resources: pruning, defaulting and validation.
//!
//! Order, as in the apiserver: unknown fields are pruned, then schema `default`s are applied,
//! then the object is validated. Rules:
//! - Pruning removes object fields not declared in `properties` unless the schema has
//!   `additionalProperties` or `x-kubernetes-preserve-unknown-fields: true`. At the root
//!   `apiVersion`, `kind` and `metadata` are always kept; `x-kubernetes-embedded-resource`
//!   keeps them in nested objects too.
//! - Defaults fill missing (or null, unless `nullable`) properties of objects that exist.
//! - Validation checks `type` (with `nullable` and `x-kubernetes-int-or-string`), `required`,
//!   `enum`, `pattern`, `minimum`/`maximum` (and their `exclusive*`), `minLength`/`maxLength`,
//!   `minItems`/`maxItems`, `minProperties`/`maxProperties`, `allOf`, `anyOf`, `oneOf`, `not`
//!   and list uniqueness for `x-kubernetes-list-type: set|map`. Every violation becomes one
//!   [`Cause`] whose `field` is the dotted path (`spec.items[1].name`), so the request fails
//!   with `422 Invalid`. CEL rules (`x-kubernetes-validations`) and `format` are not enforced.

use serde_json::Value;

use crate::status::Cause;

/// Removes fields the schema does not declare. Returns the dotted paths of removed fields.
pub fn prune(obj: &mut Value, schema: &Value) -> Vec<String> {
    let mut removed = Vec::new();
    prune_at(obj, schema, true, "", &mut removed);
    removed
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn prune_at(v: &mut Value, schema: &Value, root: bool, path: &str, removed: &mut Vec<String>) {
    if schema["x-kubernetes-int-or-string"] == true {
        return;
    }
    match v {
        Value::Object(m) => {
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
            let embedded = root || schema["x-kubernetes-embedded-resource"] == true;
            let props = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child_path = join(path, &k);
                if let Some(s) = props.and_then(|p| p.get(&k)) {
                    if let Some(child) = m.get_mut(&k) {
                        prune_at(child, s, false, &child_path, removed);
                    }
                } else if additional.is_object() {
                    if let Some(child) = m.get_mut(&k) {
                        prune_at(child, additional, false, &child_path, removed);
                    }
                } else if !preserve && *additional != Value::Bool(true) {
                    m.remove(&k);
                    removed.push(child_path);
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (i, item) in items.iter_mut().enumerate() {
                prune_at(
                    item,
                    &schema["items"],
                    false,
                    &format!("{path}[{i}]"),
                    removed,
                );
            }
        }
        _ => {}
    }
}

/// Applies `default`s from the schema.
pub fn apply_defaults(v: &mut Value, schema: &Value) {
    match v {
        Value::Object(m) => {
            if let Some(props) = schema["properties"].as_object() {
                for (k, s) in props {
                    let missing = match m.get(k) {
                        None => true,
                        Some(Value::Null) => s["nullable"] != true,
                        Some(_) => false,
                    };
                    if missing && let Some(d) = s.get("default") {
                        m.insert(k.clone(), d.clone());
                    }
                    if let Some(child) = m.get_mut(k) {
                        apply_defaults(child, s);
                    }
                }
            }
            if schema["additionalProperties"].is_object() {
                for child in m.values_mut() {
                    apply_defaults(child, &schema["additionalProperties"]);
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for item in items {
                apply_defaults(item, &schema["items"]);
            }
        }
        _ => {}
    }
}

/// Validates an object against its schema; empty when valid.
pub fn validate(obj: &Value, schema: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    validate_at(obj, schema, "", true, &mut causes);
    causes
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn short(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        Value::Object(_) => "\"object\"".into(),
        Value::Array(_) => "\"array\"".into(),
        other => other.to_string(),
    }
}

fn invalid(causes: &mut Vec<Cause>, path: &str, v: &Value, what: String) {
    causes.push(Cause::new(
        "FieldValueInvalid",
        path,
        format!("Invalid value: {}: {what}", short(v)),
    ));
}

fn validate_at(v: &Value, s: &Value, path: &str, root: bool, causes: &mut Vec<Cause>) {
    let shown = if path.is_empty() { "body" } else { path };
    if v.is_null() {
        if s["nullable"] != true && s.get("type").is_some() {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"null\": {shown} in body must be of type {}: \"null\"",
                    s["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    if s["x-kubernetes-int-or-string"] == true {
        if !(v.is_string() || type_name(v) == "integer") {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: {}: {shown} in body must be of type integer or string",
                    short(v)
                ),
            ));
            return;
        }
    } else if let Some(t) = s["type"].as_str() {
        let actual = type_name(v);
        let ok = actual == t || (t == "number" && actual == "integer");
        if !ok {
            causes.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: {}: {shown} in body must be of type {t}: \"{actual}\"",
                    short(v)
                ),
            ));
            return;
        }
    }
    if let Some(e) = s["enum"].as_array()
        && !e.contains(v)
    {
        let allowed = e.iter().map(short).collect::<Vec<_>>().join(", ");
        causes.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {allowed}",
                short(v)
            ),
        ));
    }
    for sub in s["allOf"].as_array().into_iter().flatten() {
        validate_at(v, sub, path, root, causes);
    }
    if let Some(any) = s["anyOf"].as_array()
        && !any
            .iter()
            .any(|sub| validate(v, sub).is_empty() && sub_ok(v, sub, path))
    {
        invalid(
            causes,
            path,
            v,
            format!("{shown} in body must match at least one schema (anyOf)"),
        );
    }
    if let Some(one) = s["oneOf"].as_array() {
        let n = one.iter().filter(|sub| sub_ok(v, sub, path)).count();
        if n != 1 {
            invalid(
                causes,
                path,
                v,
                format!("{shown} in body must match exactly one schema (oneOf)"),
            );
        }
    }
    if s["not"].is_object() && sub_ok(v, &s["not"], path) {
        invalid(
            causes,
            path,
            v,
            format!("{shown} in body must not match the schema (not)"),
        );
    }
    match v {
        Value::String(x) => {
            if let Some(p) = s["pattern"].as_str() {
                match regex::Regex::new(p) {
                    Ok(re) if !re.is_match(x) => invalid(
                        causes,
                        path,
                        v,
                        format!("{shown} in body should match '{p}'"),
                    ),
                    Ok(_) => {}
                    Err(_) => invalid(causes, path, v, format!("invalid pattern '{p}'")),
                }
            }
            let len = x.chars().count() as u64;
            if let Some(n) = s["minLength"].as_u64().filter(|n| len < *n) {
                invalid(
                    causes,
                    path,
                    v,
                    format!("{shown} in body should be at least {n} chars long"),
                );
            }
            if let Some(n) = s["maxLength"].as_u64().filter(|n| len > *n) {
                causes.push(Cause::new(
                    "FieldValueTooLong",
                    path,
                    format!("Too long: may not be more than {n} bytes"),
                ));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(max) = s["maximum"].as_f64() {
                if s["exclusiveMaximum"] == true && x >= max {
                    invalid(
                        causes,
                        path,
                        v,
                        format!("{shown} in body should be less than {}", s["maximum"]),
                    );
                } else if x > max {
                    invalid(
                        causes,
                        path,
                        v,
                        format!(
                            "{shown} in body should be less than or equal to {}",
                            s["maximum"]
                        ),
                    );
                }
            }
            if let Some(min) = s["minimum"].as_f64() {
                if s["exclusiveMinimum"] == true && x <= min {
                    invalid(
                        causes,
                        path,
                        v,
                        format!("{shown} in body should be greater than {}", s["minimum"]),
                    );
                } else if x < min {
                    invalid(
                        causes,
                        path,
                        v,
                        format!(
                            "{shown} in body should be greater than or equal to {}",
                            s["minimum"]
                        ),
                    );
                }
            }
            if let Some(m) = s["multipleOf"].as_f64().filter(|m| *m > 0.0)
                && (x / m).fract().abs() > 1e-9
            {
                invalid(
                    causes,
                    path,
                    v,
                    format!(
                        "{shown} in body should be a multiple of {}",
                        s["multipleOf"]
                    ),
                );
            }
        }
        Value::Array(items) => {
            let len = items.len() as u64;
            if let Some(n) = s["minItems"].as_u64().filter(|n| len < *n) {
                invalid(
                    causes,
                    path,
                    v,
                    format!("{shown} in body should have at least {n} items"),
                );
            }
            if let Some(n) = s["maxItems"].as_u64().filter(|n| len > *n) {
                causes.push(Cause::new(
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {len}: must have at most {n} items"),
                ));
            }
            match s["x-kubernetes-list-type"].as_str() {
                Some("set") => {
                    for (i, it) in items.iter().enumerate() {
                        if items[..i].contains(it) {
                            causes.push(Cause::new(
                                "FieldValueDuplicate",
                                format!("{path}[{i}]"),
                                format!("Duplicate value: {}", short(it)),
                            ));
                        }
                    }
                }
                Some("map") => {
                    let keys: Vec<String> = s["x-kubernetes-list-map-keys"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|k| k.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    for (i, it) in items.iter().enumerate() {
                        if items[..i]
                            .iter()
                            .any(|o| crate::lists::same_item(o, it, &keys))
                        {
                            causes.push(Cause::new(
                                "FieldValueDuplicate",
                                format!("{path}[{i}]"),
                                "Duplicate value: map key already present".to_owned(),
                            ));
                        }
                    }
                }
                _ => {}
            }
            if s["items"].is_object() {
                for (i, it) in items.iter().enumerate() {
                    validate_at(it, &s["items"], &format!("{path}[{i}]"), false, causes);
                }
            }
        }
        Value::Object(m) => {
            for r in s["required"].as_array().into_iter().flatten() {
                if let Some(r) = r.as_str()
                    && !m.contains_key(r)
                {
                    causes.push(Cause::new(
                        "FieldValueRequired",
                        join(path, r),
                        "Required value",
                    ));
                }
            }
            let len = m.len() as u64;
            if let Some(n) = s["minProperties"].as_u64().filter(|n| len < *n) {
                invalid(
                    causes,
                    path,
                    v,
                    format!("{shown} in body should have at least {n} properties"),
                );
            }
            if let Some(n) = s["maxProperties"].as_u64().filter(|n| len > *n) {
                invalid(
                    causes,
                    path,
                    v,
                    format!("{shown} in body should have at most {n} properties"),
                );
            }
            let props = s["properties"].as_object();
            for (k, child) in m {
                if root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(cs) = props.and_then(|p| p.get(k)) {
                    validate_at(child, cs, &join(path, k), false, causes);
                } else if s["additionalProperties"].is_object() {
                    validate_at(
                        child,
                        &s["additionalProperties"],
                        &join(path, k),
                        false,
                        causes,
                    );
                }
            }
        }
        Value::Bool(_) | Value::Null => {}
    }
}

fn sub_ok(v: &Value, s: &Value, path: &str) -> bool {
    let mut c = Vec::new();
    validate_at(v, s, path, false, &mut c);
    c.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "mode": {"type": "string", "enum": ["fast", "safe"], "default": "safe"},
                "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                "port": {"x-kubernetes-int-or-string": true}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }})
    }

    #[test]
    fn prune_default_validate() {
        let mut obj = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"},
            "spec": {"size": 3, "unknown": 1, "extra": {"anything": {"goes": true}}}, "junk": 1});
        let removed = prune(&mut obj, &schema());
        assert_eq!(removed, vec!["junk".to_owned(), "spec.unknown".to_owned()]);
        apply_defaults(&mut obj, &schema());
        assert_eq!(obj["spec"]["mode"], "safe");
        assert_eq!(obj["spec"]["extra"]["anything"]["goes"], true);
        assert!(validate(&obj, &schema()).is_empty());
    }

    #[test]
    fn violations_name_their_fields() {
        let obj = json!({"spec": {"size": 11, "mode": "slow", "name": "ABCDEFG",
            "tags": ["a", "b", 3], "port": 1.5}, "status": {"ready": "yes"}});
        let causes = validate(&obj, &schema());
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        for f in [
            "spec.size",
            "spec.mode",
            "spec.name",
            "spec.tags",
            "spec.tags[2]",
            "spec.port",
            "status.ready",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
        let size = causes.iter().find(|c| c.field == "spec.size").unwrap();
        assert_eq!(
            size.message,
            "Invalid value: 11: spec.size in body should be less than or equal to 10"
        );
        let missing = validate(&json!({"spec": {}}), &schema());
        assert_eq!(missing[0].field, "spec.size");
        assert_eq!(missing[0].reason, "FieldValueRequired");
    }
}
