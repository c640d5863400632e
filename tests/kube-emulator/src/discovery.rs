//! Discovery documents: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/{group}[/{version}]`
//! and a minimal OpenAPI v3 index.
//!
//! `/api` and `/apis` answer in the aggregated format (`apidiscovery.k8s.io/v2`) when the client
//! asks for it in `Accept` (kubectl, Helm and kube-rs' `Discovery::run_aggregated` do), and in
//! the legacy format otherwise.
//! The OpenAPI v3 documents only list each resource's paths with the `fieldValidation` query
//! parameter and `x-kubernetes-group-version-kind`: enough for kubectl and Helm to see that the
//! server validates fields itself (so they skip client-side schema validation). They contain no
//! schemas, so `kubectl explain` does not work.

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceType};

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "gitVersion": "v1.37.0-kube-emulator",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.25.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api`.
pub fn core_versions(address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    })
}

fn group_doc(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`.
pub fn groups(reg: &Registry) -> Value {
    let groups: Vec<Value> = reg
        .groups()
        .iter()
        .map(|(g, vs)| group_doc(g, vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn group(reg: &Registry, group: &str) -> Option<Value> {
    let groups = reg.groups();
    let vs = groups.get(group)?;
    let mut doc = group_doc(group, vs);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

struct Sub {
    name: &'static str,
    kind: String,
    group: &'static str,
    version: &'static str,
    verbs: &'static [&'static str],
}

fn verbs(t: &ResourceType) -> Vec<&'static str> {
    if crate::resources::is_virtual(t) {
        vec!["create"]
    } else {
        VERBS.to_vec()
    }
}

/// The subresources of a resource.
fn subresources(t: &ResourceType) -> Vec<Sub> {
    let own = |name, kind: &str, verbs| Sub {
        name,
        kind: kind.to_owned(),
        group: "",
        version: "",
        verbs,
    };
    let mut out = Vec::new();
    if t.status_subresource {
        out.push(own("status", &t.kind, &["get", "patch", "update"]));
    }
    match (t.group.as_str(), t.kind.as_str()) {
        ("apps", "Deployment" | "StatefulSet" | "ReplicaSet") => out.push(Sub {
            group: "autoscaling",
            version: "v1",
            ..own("scale", "Scale", &["get", "patch", "update"])
        }),
        ("", "Pod") => out.push(own("log", "Pod", &["get"])),
        ("", "Service") => out.push(own(
            "proxy",
            "ServiceProxyOptions",
            &["create", "delete", "get", "patch", "update"],
        )),
        ("", "ServiceAccount") => out.push(Sub {
            group: "authentication.k8s.io",
            version: "v1",
            ..own("token", "TokenRequest", &["create"])
        }),
        _ => {}
    }
    out
}

fn resource_entries(t: &ResourceType) -> Vec<Value> {
    let mut main = json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": verbs(t),
    });
    if !t.short_names.is_empty() {
        main["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        main["categories"] = json!(t.categories);
    }
    let mut out = vec![main];
    for sub in subresources(t) {
        let mut e = json!({"name": format!("{}/{}", t.plural, sub.name), "singularName": "",
            "namespaced": t.namespaced, "kind": sub.kind, "verbs": sub.verbs});
        if !sub.group.is_empty() {
            e["group"] = json!(sub.group);
            e["version"] = json!(sub.version);
        }
        out.push(e);
    }
    out
}

/// The media type of aggregated discovery documents.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Aggregated discovery (`apidiscovery.k8s.io/v2`) for `/api` (`core`) or `/apis`.
pub fn aggregated(reg: &Registry, core: bool) -> Value {
    let mut groups: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_owned()])]
    } else {
        reg.groups().into_iter().collect()
    };
    groups.sort_by_key(|(g, _)| g.clone());
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = reg
                        .all()
                        .iter()
                        .filter(|t| t.group == group && t.version == *v)
                        .map(|t| {
                            let gvk = |g: &str, v: &str, k: &str| json!({"group": g, "version": v, "kind": k});
                            let subs: Vec<Value> = subresources(t)
                                .into_iter()
                                .map(|s| {
                                    let (g, ver) = if s.group.is_empty() {
                                        (t.group.as_str(), t.version.as_str())
                                    } else {
                                        (s.group, s.version)
                                    };
                                    json!({"subresource": s.name, "responseKind": gvk(g, ver, &s.kind), "verbs": s.verbs})
                                })
                                .collect();
                            json!({
                                "resource": t.plural,
                                "responseKind": gvk(&t.group, &t.version, &t.kind),
                                "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": t.singular,
                                "verbs": verbs(t),
                                "shortNames": t.short_names,
                                "categories": t.categories,
                                "subresources": subs,
                            })
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
        })
        .collect();
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn resources(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let list: Vec<Value> = reg
        .all()
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .flat_map(|t| resource_entries(t))
        .collect();
    if list.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": crate::resources::api_version(group, version),
        "resources": list,
    }))
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`: one entry per group/version.
pub fn openapi_index(reg: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    let mut gvs: Vec<(String, String)> = reg
        .all()
        .iter()
        .map(|t| (t.group.clone(), t.version.clone()))
        .collect();
    gvs.sort();
    gvs.dedup();
    for (g, v) in gvs {
        let p = gv_path(&g, &v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=kube-emulator")}),
        );
    }
    json!({"paths": paths})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/{group}/{version}`.
pub fn openapi_gv(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let types: Vec<_> = reg
        .all()
        .iter()
        .filter(|t| t.group == group && t.version == version)
        .cloned()
        .collect();
    if types.is_empty() {
        return None;
    }
    let mut paths = serde_json::Map::new();
    for t in types {
        let gvk = json!({"group": t.group, "version": t.version, "kind": t.kind});
        let params = json!([
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
        ]);
        let op = |id: &str| {
            json!({"operationId": id, "parameters": params, "x-kubernetes-group-version-kind": gvk,
                "x-kubernetes-action": id, "responses": {"200": {"description": "OK"}}})
        };
        let base = if t.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}",
                gv_path(&t.group, &t.version),
                t.plural
            )
        } else {
            format!("/{}/{}", gv_path(&t.group, &t.version), t.plural)
        };
        let collection = json!({"get": op("list"), "post": op("post")});
        let item = json!({"get": op("get"), "put": op("put"), "patch": op("patch"), "delete": op("delete")});
        paths.insert(base.clone(), collection);
        paths.insert(format!("{base}/{{name}}"), item);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (kube-emulator)", "version": "v1.37.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
