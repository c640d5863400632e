//! How lists merge: the list semantics shared by strategic merge patch and server-side apply.
//!
//! A list is `Atomic` (replaced as a whole), a `Set` of scalars, or a `Map` whose items are
//! identified by key fields. Built-in kinds use the merge keys of the common fields
//! (`containers`/`initContainers`/`env`/`volumes`/`imagePullSecrets` by `name`, container
//! `ports` by `containerPort`+`protocol`, Service `ports` by `port`+`protocol`, `volumeMounts`
//! by `mountPath`, `conditions` by `type`, `ownerReferences` by `uid`, `finalizers` as a set);
//! every other built-in list is atomic. Custom resources use their schema's
//! `x-kubernetes-list-type` / `x-kubernetes-list-map-keys` (default atomic), as the apiserver does.

use serde_json::Value;

/// The merge semantics of one list field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars.
    Set,
    /// Items identified by these key fields.
    Map(Vec<String>),
}

/// Resolves list types for one object, from a CRD schema or the built-in table.
#[derive(Debug, Clone, Copy)]
pub struct ListTypes<'a> {
    schema: Option<&'a Value>,
}

impl<'a> ListTypes<'a> {
    /// Built-in semantics.
    pub const fn builtin() -> Self {
        Self { schema: None }
    }

    /// Semantics from a CRD's `openAPIV3Schema` (`None`: built-in table).
    pub fn from_schema(schema: Option<&'a Value>) -> Self {
        Self { schema }
    }

    /// The type of the list at `path` (field names from the root; list positions omitted).
    pub fn at(&self, path: &[String]) -> ListType {
        if let Some(last) = path.last()
            && path.len() == 2
            && path[0] == "metadata"
        {
            return match last.as_str() {
                "finalizers" => ListType::Set,
                "ownerReferences" => ListType::Map(vec!["uid".into()]),
                _ => ListType::Atomic,
            };
        }
        match self.schema {
            Some(schema) => schema_list_type(schema, path),
            None => builtin_list_type(path),
        }
    }
}

fn schema_list_type(schema: &Value, path: &[String]) -> ListType {
    let mut cur = schema;
    for seg in path {
        // Step through arrays transparently.
        while cur["type"] == "array" {
            cur = &cur["items"];
        }
        cur = if let Some(p) = cur["properties"].get(seg) {
            p
        } else if cur["additionalProperties"].is_object() {
            &cur["additionalProperties"]
        } else {
            return ListType::Atomic;
        };
    }
    match cur["x-kubernetes-list-type"].as_str() {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            cur["x-kubernetes-list-map-keys"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|k| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => ListType::Atomic,
    }
}

fn builtin_list_type(path: &[String]) -> ListType {
    let Some(last) = path.last() else {
        return ListType::Atomic;
    };
    let keys = |k: &[&str]| ListType::Map(k.iter().map(|s| (*s).to_owned()).collect());
    let in_container = path.len() >= 2
        && matches!(
            path[path.len() - 2].as_str(),
            "containers" | "initContainers" | "ephemeralContainers"
        );
    match last.as_str() {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "imagePullSecrets" => keys(&["name"]),
        "env" if in_container => keys(&["name"]),
        "ports" if in_container => keys(&["containerPort", "protocol"]),
        "ports" if path.len() == 2 && path[0] == "spec" => keys(&["port", "protocol"]),
        "volumeMounts" => keys(&["mountPath"]),
        "volumeDevices" => keys(&["devicePath"]),
        "conditions" => keys(&["type"]),
        "hostAliases" => keys(&["ip"]),
        "topologySpreadConstraints" => keys(&["topologyKey", "whenUnsatisfiable"]),
        "volumeClaimTemplates" => keys(&["metadata"]),
        _ => ListType::Atomic,
    }
}

/// The value of key field `k` in a list item, with the apiserver's default for `protocol`.
pub fn key_value(item: &Value, k: &str) -> Value {
    match item.get(k) {
        Some(v) if !v.is_null() => v.clone(),
        _ if k == "protocol" => Value::String("TCP".into()),
        _ => Value::Null,
    }
}

/// Whether two list items have the same keys.
pub fn same_item(a: &Value, b: &Value, keys: &[String]) -> bool {
    keys.iter().all(|k| key_value(a, k) == key_value(b, k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn builtin_merge_keys_depend_on_context() {
        let lt = ListTypes::builtin();
        assert_eq!(
            lt.at(&p(&["spec", "template", "spec", "containers", "ports"])),
            ListType::Map(p(&["containerPort", "protocol"]))
        );
        assert_eq!(
            lt.at(&p(&["spec", "ports"])),
            ListType::Map(p(&["port", "protocol"]))
        );
        assert_eq!(lt.at(&p(&["spec", "containers", "args"])), ListType::Atomic);
        assert_eq!(lt.at(&p(&["metadata", "finalizers"])), ListType::Set);
    }

    #[test]
    fn schema_list_types() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                "items": {"type": "object", "properties": {"tags": {"type": "array", "x-kubernetes-list-type": "set"}}}}
        }}}});
        let lt = ListTypes::from_schema(Some(&schema));
        assert_eq!(lt.at(&p(&["spec", "items"])), ListType::Map(p(&["id"])));
        assert_eq!(lt.at(&p(&["spec", "items", "tags"])), ListType::Set);
        assert_eq!(lt.at(&p(&["spec", "other"])), ListType::Atomic);
        assert!(same_item(
            &json!({"port": 80}),
            &json!({"port": 80, "protocol": "TCP"}),
            &p(&["port", "protocol"])
        ));
    }
}
