//! Workload controllers: Deployments, StatefulSets and Jobs.
//!
//! Each pass (after every change, at least every 500 ms) reconciles every object:
//! - **Deployment**: owns its Pods directly (no ReplicaSets), named
//!   `<deployment>-<template hash>-<5 chars>` and labelled `pod-template-hash`. A changed pod
//!   template rolls the Pods: with `Recreate` all old Pods are deleted before new ones start;
//!   with `RollingUpdate` new Pods are created within `maxSurge` and old ones deleted as long as
//!   `maxUnavailable` allows. Status: `observedGeneration`, `replicas`, `updatedReplicas`,
//!   `readyReplicas`, `availableReplicas`, `unavailableReplicas` and conditions `Available` and
//!   `Progressing` (`minReadySeconds` is ignored: ready means available).
//! - **StatefulSet**: Pods `<name>-<ordinal>` with `controller-revision-hash`, PVCs
//!   `<claim template>-<name>-<ordinal>` from `volumeClaimTemplates` (kept after scale-down),
//!   `OrderedReady` (one at a time, in order) or `Parallel` creation, highest-ordinal-first
//!   scale-down and rolling updates (one Pod at a time, respecting `partition`; `OnDelete`
//!   leaves Pods alone).
//! - **Job**: runs `parallelism` Pods at a time until `completions` Pods succeeded
//!   (condition `Complete`, plus `SuccessCriteriaMet`) or more than `backoffLimit` failed
//!   (condition `Failed` with reason `BackoffLimitExceeded`, plus `FailureTarget`); status
//!   `active`, `ready`, `succeeded`, `failed`, `startTime`, `completionTime`.
//!   `suspend: true` stops it from creating Pods.
//!
//! Condition timestamps only change when a condition's status changes, so an idle cluster
//! sees no writes.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::pod_ready;
use crate::api::{
    Cluster, DeleteOptions, State, WriteOptions, name_of, name_suffix, ns_of, uid_of,
};
use crate::resources::ResourceType;

const MANAGER: &str = "kube-controller-manager";

/// Runs the controllers until the cluster is dropped.
pub async fn run(cluster: Arc<Cluster>) {
    let mut rx = cluster.lock().store.subscribe();
    loop {
        {
            let mut st = cluster.lock();
            deployments(&mut st);
            statefulsets(&mut st);
            jobs(&mut st);
        }
        tokio::select! {
            r = rx.recv() => {
                if matches!(r, Err(RecvError::Closed)) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                while let Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) = rx.try_recv() {}
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// A short stable hash of a pod template.
pub fn template_hash(template: &Value) -> String {
    let mut h = DefaultHasher::new();
    template.to_string().hash(&mut h);
    let n = h.finish();
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHABET[((n >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

fn owned_pods(st: &State, owner: &Value) -> Vec<Arc<Value>> {
    let rt = st.rt("", "pods");
    let uid = uid_of(owner);
    st.store
        .list(&rt.store_key(), Some(ns_of(owner)))
        .into_iter()
        .filter(|p| {
            p["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r["uid"] == uid && r["controller"] == true)
                })
        })
        .collect()
}

fn terminating(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_string()
}

fn terminal(p: &Value) -> bool {
    matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

fn owner_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({"apiVersion": api_version, "kind": kind, "name": name_of(owner), "uid": uid_of(owner),
        "controller": true, "blockOwnerDeletion": true})
}

fn create_pod(
    st: &mut State,
    owner: &Value,
    name: &str,
    extra_labels: &[(&str, String)],
    owner_ref: Value,
    mutate: impl FnOnce(&mut Value),
) {
    let template = &owner["spec"]["template"];
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns_of(owner),
            "labels": template["metadata"]["labels"].clone(),
            "ownerReferences": [owner_ref]},
        "spec": template["spec"].clone(),
    });
    if !pod["metadata"]["labels"].is_object() {
        pod["metadata"]["labels"] = json!({});
    }
    if template["metadata"]["annotations"].is_object() {
        pod["metadata"]["annotations"] = template["metadata"]["annotations"].clone();
    }
    for (k, v) in extra_labels {
        pod["metadata"]["labels"][*k] = json!(v);
    }
    mutate(&mut pod);
    let rt = st.rt("", "pods");
    let ns = ns_of(owner).to_owned();
    if let Err(e) = st.create(&rt, &ns, pod, &WriteOptions::controller(MANAGER)) {
        tracing::warn!(error = %e, "creating pod");
    }
}

fn delete_pod(st: &mut State, p: &Value) {
    let rt = st.rt("", "pods");
    let _ = st.delete(&rt, ns_of(p), name_of(p), &DeleteOptions::default());
}

/// Resolves an int-or-percent against `total` (percentages round up if `up`).
fn int_or_percent(v: &Value, total: i64, up: bool, default: i64) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().unwrap_or(default),
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => {
                let x = total * p;
                if up { (x + 99) / 100 } else { x / 100 }
            }
            None => s.parse().unwrap_or(default),
        },
        _ => default,
    }
}

/// A condition, keeping the previous transition time when the status did not change.
fn condition(old_status: &Value, typ: &str, ok: bool, reason: &str, message: &str) -> Value {
    let status = if ok { "True" } else { "False" };
    let prev = old_status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == typ));
    let (transition, update) = match prev {
        Some(p) if p["status"] == status && p["reason"] == reason => {
            (p["lastTransitionTime"].clone(), p["lastUpdateTime"].clone())
        }
        Some(p) if p["status"] == status => (p["lastTransitionTime"].clone(), json!(now())),
        _ => (json!(now()), json!(now())),
    };
    json!({"type": typ, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": transition, "lastUpdateTime": update})
}

fn put_nonzero(status: &mut Value, key: &str, n: i64) {
    if n != 0 {
        status[key] = json!(n);
    }
}

fn write_status(st: &mut State, rt: &ResourceType, obj: &Value, status: Value) {
    let _ = st.set_status(rt, ns_of(obj), name_of(obj), status, MANAGER);
}

fn deployments(st: &mut State) {
    let rt = st.rt("apps", "deployments");
    for d in st.store.list(&rt.store_key(), None) {
        if terminating(&d) {
            continue;
        }
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let hash = template_hash(&d["spec"]["template"]);
        let pods = owned_pods(st, &d);
        let live: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| !terminating(p) && !terminal(p))
            .collect();
        let (new, old): (Vec<&Arc<Value>>, Vec<&Arc<Value>>) = live
            .iter()
            .partition(|p| p["metadata"]["labels"]["pod-template-hash"] == hash.as_str());
        let ready = |ps: &[&Arc<Value>]| ps.iter().filter(|p| pod_ready(p)).count() as i64;
        let strategy = &d["spec"]["strategy"];
        let recreate = strategy["type"] == "Recreate";
        let max_surge = int_or_percent(&strategy["rollingUpdate"]["maxSurge"], replicas, true, 1);
        let mut max_unavailable = int_or_percent(
            &strategy["rollingUpdate"]["maxUnavailable"],
            replicas,
            false,
            0,
        );
        if max_surge == 0 && max_unavailable == 0 {
            max_unavailable = 1;
        }
        let paused = d["spec"]["paused"] == true;
        if !paused {
            let mk = |st: &mut State| {
                let name = format!("{}-{}-{}", name_of(&d), hash, name_suffix());
                create_pod(
                    st,
                    &d,
                    &name,
                    &[("pod-template-hash", hash.clone())],
                    owner_ref(&d, "apps/v1", "Deployment"),
                    |_| {},
                );
            };
            if recreate {
                if !old.is_empty() {
                    for p in &old {
                        delete_pod(st, p);
                    }
                } else if pods.iter().all(|p| {
                    p["metadata"]["labels"]["pod-template-hash"] == hash.as_str() || terminal(p)
                }) {
                    for _ in (new.len() as i64)..replicas {
                        mk(st);
                    }
                }
            } else {
                let total = live.len() as i64;
                let room = replicas + max_surge - total;
                let missing = replicas - new.len() as i64;
                for _ in 0..missing.min(room).max(0) {
                    mk(st);
                }
                // Old pods: not-ready ones go first; ready ones while availability allows.
                let min_available = replicas - max_unavailable;
                let mut available = ready(&new) + ready(&old);
                let mut olds: Vec<&&Arc<Value>> = old.iter().collect();
                olds.sort_by_key(|p| pod_ready(p));
                for p in olds {
                    if !pod_ready(p) {
                        delete_pod(st, p);
                    } else if available > min_available {
                        delete_pod(st, p);
                        available -= 1;
                    }
                }
            }
            // Too many new pods: drop the not-ready / newest first.
            let extra = new.len() as i64 - replicas;
            if extra > 0 {
                let mut ns: Vec<&&Arc<Value>> = new.iter().collect();
                ns.sort_by(|a, b| {
                    pod_ready(a).cmp(&pod_ready(b)).then(
                        b["metadata"]["creationTimestamp"]
                            .as_str()
                            .cmp(&a["metadata"]["creationTimestamp"].as_str()),
                    )
                });
                for p in ns.into_iter().take(extra as usize) {
                    delete_pod(st, p);
                }
            }
        }
        let available = ready(&live);
        let old_status = &d["status"];
        let mut status = json!({"observedGeneration": d["metadata"]["generation"]});
        put_nonzero(&mut status, "replicas", live.len() as i64);
        put_nonzero(&mut status, "updatedReplicas", new.len() as i64);
        put_nonzero(&mut status, "readyReplicas", available);
        put_nonzero(&mut status, "availableReplicas", available);
        put_nonzero(
            &mut status,
            "unavailableReplicas",
            (replicas - available).max(0),
        );
        let is_available = available >= replicas - max_unavailable;
        let complete = new.len() as i64 == replicas && ready(&new) == replicas && old.is_empty();
        status["conditions"] = json!([
            condition(
                old_status,
                "Available",
                is_available,
                if is_available {
                    "MinimumReplicasAvailable"
                } else {
                    "MinimumReplicasUnavailable"
                },
                if is_available {
                    "Deployment has minimum availability."
                } else {
                    "Deployment does not have minimum availability."
                }
            ),
            condition(
                old_status,
                "Progressing",
                true,
                if complete {
                    "NewReplicaSetAvailable"
                } else {
                    "ReplicaSetUpdated"
                },
                &format!(
                    "Pods with template hash \"{hash}\" {}",
                    if complete {
                        "have successfully progressed."
                    } else {
                        "are progressing."
                    }
                )
            ),
        ]);
        write_status(st, &rt, &d, status);
    }
}

fn statefulsets(st: &mut State) {
    let rt = st.rt("apps", "statefulsets");
    let pvc_rt = st.rt("", "persistentvolumeclaims");
    for s in st.store.list(&rt.store_key(), None) {
        if terminating(&s) {
            continue;
        }
        let name = name_of(&s).to_owned();
        let ns = ns_of(&s).to_owned();
        let replicas = s["spec"]["replicas"].as_i64().unwrap_or(1);
        let revision = format!("{name}-{}", template_hash(&s["spec"]["template"]));
        let parallel = s["spec"]["podManagementPolicy"] == "Parallel";
        let pods = owned_pods(st, &s);
        let ordinal = |p: &Value| -> i64 {
            name_of(p)
                .rsplit('-')
                .next()
                .and_then(|o| o.parse().ok())
                .unwrap_or(-1)
        };
        let by_ordinal = |o: i64| pods.iter().find(|p| ordinal(p) == o);
        let templates = s["spec"]["volumeClaimTemplates"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // Create missing pods.
        for o in 0..replicas {
            if by_ordinal(o).is_some() {
                continue;
            }
            if !parallel
                && (0..o)
                    .any(|lower| by_ordinal(lower).is_none_or(|p| !pod_ready(p) || terminating(p)))
            {
                break;
            }
            for t in &templates {
                let claim = format!("{}-{name}-{o}", name_of(t));
                if st.find(&pvc_rt, &ns, &claim).is_none() {
                    let mut pvc = json!({"metadata": {"name": claim, "namespace": ns,
                        "labels": s["spec"]["selector"]["matchLabels"].clone()}, "spec": t["spec"].clone()});
                    if !pvc["metadata"]["labels"].is_object() {
                        pvc["metadata"]["labels"] = json!({});
                    }
                    let _ = st.create(&pvc_rt, &ns, pvc, &WriteOptions::controller(MANAGER));
                }
            }
            let pod_name = format!("{name}-{o}");
            let svc_name = s["spec"]["serviceName"].clone();
            let claims: Vec<(String, String)> = templates
                .iter()
                .map(|t| (name_of(t).to_owned(), format!("{}-{name}-{o}", name_of(t))))
                .collect();
            create_pod(
                st,
                &s,
                &pod_name,
                &[
                    ("controller-revision-hash", revision.clone()),
                    ("statefulset.kubernetes.io/pod-name", pod_name.clone()),
                    ("apps.kubernetes.io/pod-index", o.to_string()),
                ],
                owner_ref(&s, "apps/v1", "StatefulSet"),
                |pod| {
                    pod["spec"]["hostname"] = json!(pod_name);
                    if svc_name.is_string() {
                        pod["spec"]["subdomain"] = svc_name;
                    }
                    let vols = pod["spec"]
                        .as_object_mut()
                        .map(|m| m.entry("volumes").or_insert(json!([])));
                    if let Some(Value::Array(vols)) = vols {
                        for (vname, claim) in claims {
                            if !vols.iter().any(|v| v["name"] == vname.as_str()) {
                                vols.push(json!({"name": vname, "persistentVolumeClaim": {"claimName": claim}}));
                            }
                        }
                    }
                },
            );
            if !parallel {
                break;
            }
        }
        // Scale down: highest ordinal first.
        let mut extra: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| ordinal(p) >= replicas && !terminating(p))
            .collect();
        extra.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
        if let Some(p) = extra.first() {
            if parallel {
                for p in &extra {
                    delete_pod(st, p);
                }
            } else {
                delete_pod(st, p);
            }
        }
        // Rolling update: one pod at a time, when everything else is ready.
        let strategy = &s["spec"]["updateStrategy"];
        let partition = strategy["rollingUpdate"]["partition"].as_i64().unwrap_or(0);
        let all_ready =
            (0..replicas).all(|o| by_ordinal(o).is_some_and(|p| pod_ready(p) && !terminating(p)));
        if strategy["type"] != "OnDelete" && all_ready {
            let mut outdated: Vec<&Arc<Value>> = pods
                .iter()
                .filter(|p| ordinal(p) >= partition && ordinal(p) < replicas)
                .filter(|p| {
                    p["metadata"]["labels"]["controller-revision-hash"] != revision.as_str()
                })
                .collect();
            outdated.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
            if let Some(p) = outdated.first() {
                delete_pod(st, p);
            }
        }
        let live: Vec<&Arc<Value>> = pods.iter().filter(|p| !terminating(p)).collect();
        let ready = live.iter().filter(|p| pod_ready(p)).count() as i64;
        let updated = live
            .iter()
            .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == revision.as_str())
            .count() as i64;
        let mut status = json!({"observedGeneration": s["metadata"]["generation"], "replicas": live.len(),
            "currentRevision": if updated == live.len() as i64 { revision.clone() } else { s["status"]["currentRevision"].as_str().unwrap_or(&revision).to_owned() },
            "updateRevision": revision, "collisionCount": 0});
        put_nonzero(&mut status, "readyReplicas", ready);
        put_nonzero(&mut status, "availableReplicas", ready);
        put_nonzero(&mut status, "currentReplicas", updated);
        put_nonzero(&mut status, "updatedReplicas", updated);
        write_status(st, &rt, &s, status);
    }
}

fn jobs(st: &mut State) {
    let rt = st.rt("batch", "jobs");
    for j in st.store.list(&rt.store_key(), None) {
        if terminating(&j) {
            continue;
        }
        let old = &j["status"];
        let finished = old["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True"
            })
        });
        if finished {
            continue;
        }
        let completions = j["spec"]["completions"].as_i64().unwrap_or(1);
        let parallelism = j["spec"]["parallelism"].as_i64().unwrap_or(1);
        let backoff_limit = j["spec"]["backoffLimit"].as_i64().unwrap_or(6);
        let suspended = j["spec"]["suspend"] == true;
        let pods = owned_pods(st, &j);
        let succeeded = pods
            .iter()
            .filter(|p| p["status"]["phase"] == "Succeeded")
            .count() as i64;
        let restarts: i64 = pods
            .iter()
            .filter(|p| p["spec"]["restartPolicy"] == "OnFailure")
            .flat_map(|p| {
                p["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|c| c["restartCount"].as_i64().unwrap_or(0))
            .sum();
        let failed = pods
            .iter()
            .filter(|p| p["status"]["phase"] == "Failed")
            .count() as i64
            + restarts;
        let active: Vec<&Arc<Value>> = pods
            .iter()
            .filter(|p| !terminal(p) && !terminating(p))
            .collect();
        let mut status = json!({});
        status["startTime"] = old
            .get("startTime")
            .cloned()
            .unwrap_or_else(|| json!(now()));
        let t = now();
        if succeeded >= completions {
            status["completionTime"] = json!(t);
            status["conditions"] = json!([
                {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": t, "lastTransitionTime": t},
                {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": "Reached expected number of succeeded pods", "lastProbeTime": t, "lastTransitionTime": t},
            ]);
            for p in &active {
                delete_pod(st, p);
            }
        } else if failed > backoff_limit {
            status["conditions"] = json!([
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": t, "lastTransitionTime": t},
                {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": t, "lastTransitionTime": t},
            ]);
            for p in &active {
                delete_pod(st, p);
            }
        } else if !suspended {
            let want = parallelism.min(completions - succeeded);
            for _ in (active.len() as i64)..want {
                let name = format!("{}-{}", name_of(&j), name_suffix());
                create_pod(st, &j, &name, &[], owner_ref(&j, "batch/v1", "Job"), |_| {});
            }
        } else {
            status["conditions"] = json!([condition(
                old,
                "Suspended",
                true,
                "JobSuspended",
                "Job suspended"
            )]);
        }
        let active_now = if status["conditions"].is_array() && !suspended {
            0
        } else {
            active.len() as i64
        };
        put_nonzero(&mut status, "active", active_now);
        put_nonzero(&mut status, "succeeded", succeeded);
        put_nonzero(&mut status, "failed", failed);
        status["ready"] = json!(active.iter().filter(|p| pod_ready(p)).count());
        status["terminating"] = json!(0);
        status["uncountedTerminatedPods"] = json!({});
        write_status(st, &rt, &j, status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_like_the_controller() {
        assert_eq!(int_or_percent(&json!("25%"), 3, true, 0), 1);
        assert_eq!(int_or_percent(&json!("25%"), 3, false, 0), 0);
        assert_eq!(int_or_percent(&json!(2), 3, false, 0), 2);
        assert_eq!(
            template_hash(&json!({"a": 1})),
            template_hash(&json!({"a": 1}))
        );
        assert_ne!(
            template_hash(&json!({"a": 1})),
            template_hash(&json!({"a": 2}))
        );
    }
}
