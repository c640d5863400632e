//! Garbage collector, namespace controller and CRD cleanup.
//!
//! Runs after every change that can need it (see `needs_pass`), and at least every 500 ms.
//! One pass, under the state lock:
//! - An object whose every `ownerReferences` entry points to a missing owner is deleted
//!   (background). One whose owner is being deleted with `foregroundDeletion` is deleted too;
//!   one whose owner carries the `orphan` finalizer loses that owner reference instead.
//! - An owner's `foregroundDeletion` finalizer is removed once no dependent with
//!   `blockOwnerDeletion: true` remains; its `orphan` finalizer once no dependent refers to it.
//! - A Namespace being deleted has every object in it deleted (their finalizers are honoured);
//!   when it is empty, its `kubernetes` finalizer is dropped and it disappears.
//! - A CustomResourceDefinition being deleted has all its custom objects deleted, then its
//!   `customresourcecleanup.apiextensions.k8s.io` finalizer is dropped and its kind unserved.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::api::{Cluster, DeleteOptions, Propagation, State, name_of, ns_of, uid_of};
use crate::resources::ResourceType;
use crate::store::{Event, EventType};

const MANAGER: &str = "kube-controller-manager";

/// Runs the collector until the cluster is dropped.
pub async fn run(cluster: Arc<Cluster>) {
    let mut rx = cluster.lock().store.subscribe();
    let mut needed = true;
    loop {
        if needed {
            pass(&mut cluster.lock());
        }
        needed = tokio::select! {
            r = rx.recv() => {
                let mut needed = match r {
                    Err(RecvError::Closed) => return,
                    Err(RecvError::Lagged(_)) => true,
                    Ok(ev) => needs_pass(&ev),
                };
                // Coalesce bursts of events into one pass.
                tokio::time::sleep(Duration::from_millis(5)).await;
                loop {
                    match rx.try_recv() {
                        Ok(ev) => needed |= needs_pass(&ev),
                        Err(TryRecvError::Lagged(_)) => needed = true,
                        Err(_) => break,
                    }
                }
                needed
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => true,
        };
    }
}

fn has_owners(o: &Value) -> bool {
    o["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|r| !r.is_empty())
}

/// Whether a change can give a pass something to do: a deletion, an object being deleted, or
/// an object that has (or had) owner references. Most writes (a status update, an Event, a
/// custom resource without owners) cannot, and a pass walks every object: skipping it keeps
/// the collector's cost from growing with the number of objects times the number of writes.
fn needs_pass(ev: &Event) -> bool {
    ev.kind == EventType::Deleted
        || deleting(&ev.object)
        || has_owners(&ev.object)
        || ev.prev.as_deref().is_some_and(has_owners)
}

fn rt_for_key(st: &State, key: &str) -> Option<Arc<ResourceType>> {
    let (group, plural) = key.split_once('/')?;
    st.registry.any_version(group, plural)
}

fn fins(o: &Value) -> Vec<String> {
    o["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn deleting(o: &Value) -> bool {
    o["metadata"]["deletionTimestamp"].is_string()
}

fn drop_finalizer(st: &mut State, key: &str, obj: &Value, finalizer: &str) {
    let Some(rt) = rt_for_key(st, key) else {
        return;
    };
    let mut new = obj.clone();
    let rest: Vec<String> = fins(obj).into_iter().filter(|f| f != finalizer).collect();
    new["metadata"]["finalizers"] = json!(rest);
    let _ = st.controller_update(&rt, new, MANAGER);
}

fn delete(st: &mut State, key: &str, obj: &Value, propagation: Propagation) {
    if deleting(obj) {
        return;
    }
    let Some(rt) = rt_for_key(st, key) else {
        return;
    };
    let opts = DeleteOptions {
        propagation: Some(propagation),
        ..Default::default()
    };
    let _ = st.delete(&rt, ns_of(obj), name_of(obj), &opts);
}

/// One collection pass.
pub fn pass(st: &mut State) {
    let objects: Vec<(String, Arc<Value>)> = st
        .store
        .all()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect();
    let by_uid: HashMap<&str, &Arc<Value>> = objects.iter().map(|(_, o)| (uid_of(o), o)).collect();

    // Dependents.
    let mut referenced: HashSet<String> = HashSet::new();
    let mut blocking: HashSet<String> = HashSet::new();
    for (key, obj) in &objects {
        let Some(refs) = obj["metadata"]["ownerReferences"].as_array() else {
            continue;
        };
        if refs.is_empty() {
            continue;
        }
        let mut all_missing = true;
        let mut foreground = false;
        let mut orphaned: Vec<String> = Vec::new();
        for r in refs {
            let uid = r["uid"].as_str().unwrap_or_default();
            referenced.insert(uid.to_owned());
            if r["blockOwnerDeletion"] == true {
                blocking.insert(uid.to_owned());
            }
            match by_uid.get(uid) {
                None => {}
                Some(owner) => {
                    all_missing = false;
                    if deleting(owner) {
                        let f = fins(owner);
                        if f.iter().any(|x| x == "orphan") {
                            orphaned.push(uid.to_owned());
                        } else if f.iter().any(|x| x == "foregroundDeletion") {
                            foreground = true;
                        }
                    }
                }
            }
        }
        if !orphaned.is_empty() {
            if let Some(rt) = rt_for_key(st, key) {
                let mut new = (**obj).clone();
                let kept: Vec<Value> = refs
                    .iter()
                    .filter(|r| !orphaned.iter().any(|u| r["uid"] == u.as_str()))
                    .cloned()
                    .collect();
                new["metadata"]["ownerReferences"] = json!(kept);
                if kept.is_empty()
                    && let Some(m) = new["metadata"].as_object_mut()
                {
                    m.remove("ownerReferences");
                }
                let _ = st.controller_update(&rt, new, MANAGER);
            }
        } else if all_missing {
            delete(st, key, obj, Propagation::Background);
        } else if foreground {
            delete(st, key, obj, Propagation::Foreground);
        }
    }

    // Owners waiting for their dependents.
    for (key, obj) in &objects {
        if !deleting(obj) {
            continue;
        }
        let f = fins(obj);
        let uid = uid_of(obj);
        if f.iter().any(|x| x == "orphan") && !referenced.contains(uid) {
            drop_finalizer(st, key, obj, "orphan");
        } else if f.iter().any(|x| x == "foregroundDeletion") && !blocking.contains(uid) {
            drop_finalizer(st, key, obj, "foregroundDeletion");
        }
    }

    // Namespaces being deleted.
    for (key, obj) in &objects {
        if key != "/namespaces" || !deleting(obj) {
            continue;
        }
        let ns = name_of(obj);
        let content: Vec<&(String, Arc<Value>)> = objects
            .iter()
            .filter(|(k, o)| k != "/namespaces" && ns_of(o) == ns)
            .collect();
        for (k, o) in &content {
            delete(st, k, o, Propagation::Background);
        }
        let still_there = st
            .store
            .all()
            .any(|(k, o)| k != "/namespaces" && ns_of(o) == ns);
        if !still_there && fins(obj).is_empty() {
            let rt = st.rt("", "namespaces");
            st.purge(&rt, "", ns);
        }
    }

    // CRDs being deleted.
    for (key, obj) in &objects {
        if key != "apiextensions.k8s.io/customresourcedefinitions" || !deleting(obj) {
            continue;
        }
        let cr_key = format!(
            "{}/{}",
            obj["spec"]["group"].as_str().unwrap_or_default(),
            obj["spec"]["names"]["plural"].as_str().unwrap_or_default()
        );
        let crs: Vec<Arc<Value>> = st.store.list(&cr_key, None);
        for cr in &crs {
            delete(st, &cr_key, cr, Propagation::Background);
        }
        if st.store.list(&cr_key, None).is_empty() {
            drop_finalizer(st, key, obj, "customresourcecleanup.apiextensions.k8s.io");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::WriteOptions;

    fn o() -> WriteOptions {
        WriteOptions::controller("t")
    }

    #[test]
    fn background_foreground_orphan() {
        let c = Cluster::new(1000);
        let mut st = c.lock();
        let cm = st.rt("", "configmaps");
        let mk = |st: &mut State, name: &str, owner: Option<&Value>| {
            let mut obj = json!({"metadata": {"name": name}});
            if let Some(owner) = owner {
                obj["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "ConfigMap",
                    "name": name_of(owner), "uid": uid_of(owner), "blockOwnerDeletion": true}]);
            }
            st.create(&cm, "default", obj, &o()).unwrap()
        };
        // Background.
        let owner = mk(&mut st, "owner", None);
        mk(&mut st, "child", Some(&owner));
        st.delete(&cm, "default", "owner", &DeleteOptions::default())
            .unwrap();
        pass(&mut st);
        assert!(st.find(&cm, "default", "child").is_none());
        // Foreground: owner stays until the child is gone.
        let owner = mk(&mut st, "fg", None);
        mk(&mut st, "fg-child", Some(&owner));
        let (_, gone) = st
            .delete(
                &cm,
                "default",
                "fg",
                &DeleteOptions {
                    propagation: Some(Propagation::Foreground),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(!gone);
        pass(&mut st);
        assert!(st.find(&cm, "default", "fg-child").is_none());
        pass(&mut st);
        assert!(st.find(&cm, "default", "fg").is_none());
        // Orphan.
        let owner = mk(&mut st, "or", None);
        mk(&mut st, "or-child", Some(&owner));
        st.delete(
            &cm,
            "default",
            "or",
            &DeleteOptions {
                propagation: Some(Propagation::Orphan),
                ..Default::default()
            },
        )
        .unwrap();
        pass(&mut st);
        pass(&mut st);
        assert!(st.find(&cm, "default", "or").is_none());
        let child = st.find(&cm, "default", "or-child").unwrap();
        assert!(child["metadata"]["ownerReferences"].is_null());
    }

    #[test]
    fn only_writes_that_can_need_a_pass_ask_for_one() {
        let ev = |kind, object: Value, prev: Option<Value>| Event {
            rv: 1,
            res: "/configmaps".into(),
            namespace: "default".into(),
            kind,
            object: Arc::new(object),
            prev: prev.map(Arc::new),
        };
        let plain = json!({"metadata": {"name": "a"}});
        let owned = json!({"metadata": {"name": "a", "ownerReferences": [{"uid": "u"}]}});
        let going = json!({"metadata": {"name": "a", "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        assert!(!needs_pass(&ev(EventType::Added, plain.clone(), None)));
        assert!(!needs_pass(&ev(
            EventType::Modified,
            plain.clone(),
            Some(plain.clone())
        )));
        assert!(needs_pass(&ev(EventType::Deleted, plain.clone(), None)));
        assert!(needs_pass(&ev(EventType::Added, owned.clone(), None)));
        assert!(needs_pass(&ev(
            EventType::Modified,
            plain.clone(),
            Some(owned)
        )));
        assert!(needs_pass(&ev(EventType::Modified, going, Some(plain))));
    }

    #[test]
    fn namespace_deletion_empties_it() {
        let c = Cluster::new(1000);
        let mut st = c.lock();
        let ns = st.rt("", "namespaces");
        let cm = st.rt("", "configmaps");
        st.create(&ns, "", json!({"metadata": {"name": "gone"}}), &o())
            .unwrap();
        st.create(&cm, "gone", json!({"metadata": {"name": "a"}}), &o())
            .unwrap();
        let (n, _) = st
            .delete(&ns, "", "gone", &DeleteOptions::default())
            .unwrap();
        assert_eq!(n["status"]["phase"], "Terminating");
        assert_eq!(
            st.create(&cm, "gone", json!({"metadata": {"name": "b"}}), &o())
                .unwrap_err()
                .code,
            403
        );
        pass(&mut st);
        assert!(st.find(&cm, "gone", "a").is_none());
        pass(&mut st);
        assert!(st.find(&ns, "", "gone").is_none());
    }
}
