//! Defaulting and validation of built-in kinds: the part of the apiserver's per-kind strategies
//! that clients observe.
//!
//! Defaults (only where absent): Pod specs (also inside templates) get `restartPolicy: Always`,
//! `terminationGracePeriodSeconds: 30`, `dnsPolicy`, `schedulerName`, and each container
//! `imagePullPolicy`, `terminationMessagePath/Policy`, port `protocol: TCP` and probe timings;
//! Deployments/StatefulSets get `replicas: 1` and their update strategy; Jobs get
//! `parallelism`, `completions`, `backoffLimit` and a generated selector + template labels;
//! Services get `type: ClusterIP`, a fake `clusterIP` (never routed: see the README), port
//! `protocol` and `targetPort`; Secrets get `type: Opaque` and `stringData` folded into `data`;
//! Namespaces get the `kubernetes` finalizer and phase `Active`; PVCs are `Bound` at once.
//!
//! Validation is deliberately shallow: names must be DNS-1123 subdomains (`422` otherwise),
//! Pods need at least one container with a `name` and an `image`, workload selectors must
//! match their template labels.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::resources::ResourceType;
use crate::selector::LabelSelector;
use crate::status::Cause;

fn set_default(obj: &mut Map<String, Value>, key: &str, v: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_owned(), v);
    }
}

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    v.get_mut(key).and_then(Value::as_object_mut)
}

/// Defaults a `PodSpec`.
pub fn default_pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    set_default(s, "restartPolicy", json!("Always"));
    set_default(s, "terminationGracePeriodSeconds", json!(30));
    set_default(s, "dnsPolicy", json!("ClusterFirst"));
    set_default(s, "schedulerName", json!("default-scheduler"));
    set_default(s, "securityContext", json!({}));
    for list in ["initContainers", "containers"] {
        if let Some(cs) = s.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
                let latest = !image.contains(':') || image.ends_with(":latest");
                let policy = if latest { "Always" } else { "IfNotPresent" };
                set_default(c, "imagePullPolicy", json!(policy));
                set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
                set_default(c, "terminationMessagePolicy", json!("File"));
                set_default(c, "resources", json!({}));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(p, "protocol", json!("TCP"));
                    }
                }
                for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                    if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
                        set_default(p, "periodSeconds", json!(10));
                        set_default(p, "timeoutSeconds", json!(1));
                        set_default(p, "successThreshold", json!(1));
                        set_default(p, "failureThreshold", json!(3));
                    }
                }
            }
        }
    }
}

/// Applies the built-in defaults of `rt`'s kind to a new or updated object.
pub fn apply_builtin_defaults(
    rt: &ResourceType,
    obj: &mut Value,
    service_ip: impl FnOnce() -> String,
) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
            }
        }
        ("apps", "Deployment") => {
            if let Some(s) = obj_mut(obj, "spec") {
                set_default(s, "replicas", json!(1));
                set_default(s, "revisionHistoryLimit", json!(10));
                set_default(s, "progressDeadlineSeconds", json!(600));
                set_default(
                    s,
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
                );
            }
            default_template(obj);
        }
        ("apps", "StatefulSet") => {
            if let Some(s) = obj_mut(obj, "spec") {
                set_default(s, "replicas", json!(1));
                set_default(s, "podManagementPolicy", json!("OrderedReady"));
                set_default(s, "revisionHistoryLimit", json!(10));
                set_default(
                    s,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
            }
            default_template(obj);
        }
        ("apps", "ReplicaSet" | "DaemonSet") => default_template(obj),
        ("batch", "Job") => {
            let uid = obj["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if let Some(s) = obj_mut(obj, "spec") {
                set_default(s, "parallelism", json!(1));
                set_default(s, "completions", json!(1));
                set_default(s, "backoffLimit", json!(6));
                set_default(s, "completionMode", json!("NonIndexed"));
                set_default(s, "suspend", json!(false));
                if s.get("manualSelector") != Some(&json!(true)) {
                    set_default(
                        s,
                        "selector",
                        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
                    );
                    let labels = s
                        .entry("template")
                        .or_insert(json!({}))
                        .as_object_mut()
                        .map(|t| t.entry("metadata").or_insert(json!({})))
                        .and_then(Value::as_object_mut)
                        .map(|m| m.entry("labels").or_insert(json!({})));
                    if let Some(Value::Object(l)) = labels {
                        set_default(l, "batch.kubernetes.io/controller-uid", json!(uid));
                        set_default(l, "controller-uid", json!(uid));
                        set_default(l, "batch.kubernetes.io/job-name", json!(name));
                        set_default(l, "job-name", json!(name));
                    }
                }
            }
            default_template(obj);
        }
        ("batch", "CronJob") => {
            if let Some(t) = obj.pointer_mut("/spec/jobTemplate/spec/template/spec") {
                default_pod_spec(t);
            }
        }
        ("", "Service") => {
            let headless = obj["spec"]["clusterIP"] == "None";
            if let Some(s) = obj_mut(obj, "spec") {
                set_default(s, "type", json!("ClusterIP"));
                set_default(s, "sessionAffinity", json!("None"));
                if !headless
                    && s.get("type") != Some(&json!("ExternalName"))
                    && s.get("clusterIP").is_none_or(|v| v.is_null() || v == "")
                {
                    let ip = service_ip();
                    s.insert("clusterIP".into(), json!(ip));
                    s.insert("clusterIPs".into(), json!([ip]));
                }
                if let Some(ports) = s.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(p, "protocol", json!("TCP"));
                        if let Some(port) = p.get("port").cloned() {
                            set_default(p, "targetPort", port);
                        }
                    }
                }
            }
        }
        ("", "Secret") => {
            if let Some(o) = obj.as_object_mut() {
                set_default(o, "type", json!("Opaque"));
                if let Some(Value::Object(sd)) = o.remove("stringData") {
                    let data = o.entry("data").or_insert(json!({}));
                    if !data.is_object() {
                        *data = json!({});
                    }
                    for (k, v) in sd {
                        let s = v.as_str().unwrap_or_default();
                        data[k] = json!(base64::engine::general_purpose::STANDARD.encode(s));
                    }
                }
            }
        }
        ("", "Namespace") => {
            let name = obj["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if let Some(md) = obj_mut(obj, "metadata") {
                let labels = md.entry("labels").or_insert(json!({}));
                if let Some(l) = labels.as_object_mut() {
                    l.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
            }
            if let Some(o) = obj.as_object_mut() {
                let spec = o.entry("spec").or_insert(json!({}));
                if let Some(s) = spec.as_object_mut() {
                    set_default(s, "finalizers", json!(["kubernetes"]));
                }
            }
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(s) = obj_mut(obj, "spec") {
                set_default(s, "volumeMode", json!("Filesystem"));
            }
        }
        _ => {}
    }
}

fn default_template(obj: &mut Value) {
    if let Some(spec) = obj.pointer_mut("/spec/template/spec") {
        default_pod_spec(spec);
    }
}

/// Status the server sets on create for some kinds (namespaces, PVCs, pods).
pub fn initial_status(rt: &ResourceType, obj: &mut Value) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => obj["status"] = json!({"phase": "Active"}),
        ("", "PersistentVolumeClaim") => {
            let uid = obj["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let size = obj["spec"]["resources"]["requests"]["storage"].clone();
            let modes = obj["spec"]["accessModes"].clone();
            obj["spec"]["volumeName"] = json!(format!("pvc-{uid}"));
            obj["status"] =
                json!({"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}});
        }
        ("", "Pod") => {
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        _ => {}
    }
}

/// DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// Shallow validation of built-in kinds; empty when valid.
pub fn validate_builtin(rt: &ResourceType, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    // RBAC objects allow ':' in names (system:...); everything else is a DNS subdomain.
    let name_ok = if rt.group == "rbac.authorization.k8s.io" {
        !name.is_empty() && !name.contains('/')
    } else if matches!(rt.kind.as_str(), "Namespace" | "Service") {
        is_dns_subdomain(name) && !name.contains('.')
    } else {
        is_dns_subdomain(name)
    };
    if !name_ok {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
        ));
    }
    let pod_spec = match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => Some(("spec", &obj["spec"])),
        ("apps", "Deployment" | "StatefulSet" | "ReplicaSet" | "DaemonSet") | ("batch", "Job") => {
            Some(("spec.template.spec", &obj["spec"]["template"]["spec"]))
        }
        _ => None,
    };
    if let Some((path, spec)) = pod_spec {
        match spec["containers"].as_array() {
            Some(cs) if !cs.is_empty() => {
                for (i, c) in cs.iter().enumerate() {
                    if c["name"].as_str().is_none_or(str::is_empty) {
                        causes.push(Cause::new(
                            "FieldValueRequired",
                            format!("{path}.containers[{i}].name"),
                            "Required value",
                        ));
                    }
                    if c["image"].as_str().is_none_or(str::is_empty) {
                        causes.push(Cause::new(
                            "FieldValueRequired",
                            format!("{path}.containers[{i}].image"),
                            "Required value",
                        ));
                    }
                }
            }
            _ => causes.push(Cause::new(
                "FieldValueRequired",
                format!("{path}.containers"),
                "Required value",
            )),
        }
        if rt.group == "batch" {
            let rp = spec["restartPolicy"].as_str().unwrap_or_default();
            if !matches!(rp, "Never" | "OnFailure") {
                causes.push(Cause::new(
                    "FieldValueNotSupported",
                    "spec.template.spec.restartPolicy",
                    format!(
                        "Unsupported value: {rp:?}: supported values: \"OnFailure\", \"Never\""
                    ),
                ));
            }
        }
    }
    if rt.group == "apps" {
        let sel = LabelSelector::from_object(obj["spec"].get("selector"));
        if obj["spec"]["selector"].is_null() {
            causes.push(Cause::new(
                "FieldValueRequired",
                "spec.selector",
                "Required value",
            ));
        } else if !sel.matches(&obj["spec"]["template"]) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                "spec.template.metadata.labels",
                "Invalid value: `selector` does not match template `labels`",
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::Registry;

    #[test]
    fn secrets_fold_string_data() {
        let r = Registry::default();
        let rt = r.by_plural("", "v1", "secrets").unwrap();
        let mut s =
            json!({"metadata": {"name": "s"}, "stringData": {"a": "hi"}, "data": {"b": "eA=="}});
        apply_builtin_defaults(&rt, &mut s, String::new);
        assert_eq!(s["data"], json!({"a": "aGk=", "b": "eA=="}));
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("stringData").is_none());
    }

    #[test]
    fn deployments_are_defaulted_and_validated() {
        let r = Registry::default();
        let rt = r.by_plural("apps", "v1", "deployments").unwrap();
        let mut d = json!({"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "x"}},
            "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "img:1", "ports": [{"containerPort": 80}]}]}}}});
        apply_builtin_defaults(&rt, &mut d, String::new);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"],
            "TCP"
        );
        assert!(validate_builtin(&rt, &d).is_empty());
        d["spec"]["template"]["metadata"]["labels"]["app"] = json!("y");
        d["metadata"]["name"] = json!("Bad_Name");
        let fields: Vec<String> = validate_builtin(&rt, &d)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            vec!["metadata.name", "spec.template.metadata.labels"]
        );
    }
}
