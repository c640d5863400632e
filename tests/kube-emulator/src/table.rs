//! `meta.k8s.io/v1 Table` responses (what `kubectl get` asks for), including CRD printer columns.
//!
//! Columns: `Name`, then the CRD's `additionalPrinterColumns` (evaluated with a small JSONPath
//! subset: `.a.b`, `.a[0].b`, `.a[*].b` and `.a[?(@.k=="v")].b`) or a few built-in columns, then
//! `Age` unless a CRD defines its own columns. Cells of `type: date` are rendered as ages.
//! Rows carry the object as `PartialObjectMetadata` (`includeObject=Metadata`, the default),
//! the full object (`Object`) or nothing (`None`).

use serde_json::{Value, json};

use crate::resources::ResourceType;

/// Evaluates a simple JSONPath against an object; returns all matches.
pub fn jsonpath<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut cur: Vec<&Value> = vec![obj];
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let field = &r[..end];
            rest = &r[end..];
            if field.is_empty() {
                continue;
            }
            cur = cur.into_iter().filter_map(|v| v.get(field)).collect();
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return vec![];
            };
            let inner = &r[..end];
            rest = &r[end + 1..];
            let items = cur.into_iter().filter_map(Value::as_array).flatten();
            cur = if inner == "*" {
                items.collect()
            } else if let Ok(i) = inner.parse::<usize>() {
                // Index applies to each matched array separately; approximate by position.
                items.skip(i).take(1).collect()
            } else if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (key, want) = f.split_once("==").unwrap_or((f, ""));
                let want = want.trim().trim_matches(|c| c == '"' || c == '\'');
                items
                    .filter(|it| it.get(key.trim()).and_then(Value::as_str) == Some(want))
                    .collect()
            } else {
                return vec![];
            };
        } else {
            return vec![];
        }
    }
    cur
}

/// Human-readable age, like kubectl's (`12s`, `5m`, `3h`, `2d`).
pub fn age(timestamp: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(timestamp) else {
        return "<unknown>".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

fn cell(v: Vec<&Value>, typ: &str) -> Value {
    match v.as_slice() {
        [] => Value::Null,
        [one] => {
            if typ == "date" {
                one.as_str().map(|s| json!(age(s))).unwrap_or(Value::Null)
            } else {
                (*one).clone()
            }
        }
        many => json!(
            many.iter()
                .map(|x| x
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| x.to_string()))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

struct Column {
    name: String,
    typ: String,
    path: String,
    priority: i64,
    description: String,
}

fn col(name: &str, typ: &str, path: &str) -> Column {
    Column {
        name: name.into(),
        typ: typ.into(),
        path: path.into(),
        priority: 0,
        description: String::new(),
    }
}

fn columns(rt: &ResourceType) -> Vec<Column> {
    let mut cols = vec![col("Name", "string", ".metadata.name")];
    if let Some(crd) = &rt.crd
        && !crd.printer_columns.is_empty()
    {
        cols.extend(crd.printer_columns.iter().map(|c| Column {
            name: c["name"].as_str().unwrap_or_default().into(),
            typ: c["type"].as_str().unwrap_or("string").into(),
            path: c["jsonPath"].as_str().unwrap_or_default().into(),
            priority: c["priority"].as_i64().unwrap_or(0),
            description: c["description"].as_str().unwrap_or_default().into(),
        }));
        return cols;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            cols.push(col("Status", "string", ".status.phase"));
            cols.push(col(
                "Restarts",
                "integer",
                ".status.containerStatuses[*].restartCount",
            ));
        }
        ("apps", "Deployment" | "StatefulSet") => {
            cols.push(col("Ready", "integer", ".status.readyReplicas"));
            cols.push(col("Replicas", "integer", ".spec.replicas"));
        }
        ("", "Service") => {
            cols.push(col("Type", "string", ".spec.type"));
            cols.push(col("Cluster-IP", "string", ".spec.clusterIP"));
        }
        ("batch", "Job") => cols.push(col("Succeeded", "integer", ".status.succeeded")),
        ("", "Namespace" | "PersistentVolumeClaim") => {
            cols.push(col("Status", "string", ".status.phase"))
        }
        _ => {}
    }
    cols.push(col("Age", "date", ".metadata.creationTimestamp"));
    cols
}

/// A Table for `objects`; `include` is the `includeObject` parameter.
pub fn table(rt: &ResourceType, objects: &[Value], list_meta: Value, include: &str) -> Value {
    let cols = columns(rt);
    let defs: Vec<Value> = cols
        .iter()
        .map(|c| {
            json!({"name": c.name, "type": if c.typ == "date" { "string" } else { c.typ.as_str() },
                "format": if c.name == "Name" { "name" } else { "" },
                "description": c.description, "priority": c.priority})
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let cells: Vec<Value> = cols.iter().map(|c| cell(jsonpath(o, &c.path), &c.typ)).collect();
            let object = match include {
                "None" => Value::Null,
                "Object" => o.clone(),
                _ => json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": defs,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_subset() {
        let o = json!({"spec": {"size": 3}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}});
        assert_eq!(jsonpath(&o, ".spec.size"), vec![&json!(3)]);
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type==\"Synced\")].status"),
            vec![&json!("False")]
        );
        assert_eq!(
            jsonpath(&o, ".status.conditions[0].type"),
            vec![&json!("Ready")]
        );
        assert_eq!(jsonpath(&o, ".status.conditions[*].type").len(), 2);
        assert!(jsonpath(&o, ".spec.missing").is_empty());
    }
}
