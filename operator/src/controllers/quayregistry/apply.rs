//! Apply: make the cluster hold the desired objects and nothing else the operator owns.
//!
//! Rules:
//! - Objects are written with server-side apply under the one field manager
//!   [`FIELD_MANAGER`], with `force` (the operator owns these objects).
//! - An object is only written when it differs from what is live: when the live object lacks
//!   the digest annotation of the desired one (the desired object changed), or when a field the
//!   operator sets no longer has the operator's value (someone changed it). So a reconcile with
//!   nothing to do makes no write at all.
//! - `CreateOnly` objects are created when missing and never touched afterwards.
//! - Owned objects (found by label when read) that are neither desired nor kept are deleted,
//!   in the background (their dependents go with them).

use std::collections::BTreeSet;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::Value;

use super::build::{ApplyMode, DesiredObject};
use super::names::{APPLIED_HASH_ANNOTATION, FIELD_MANAGER};
use super::observed::{ObjKey, Observed};

/// What apply did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Objects written (created or changed).
    pub written: Vec<ObjKey>,
    /// Objects deleted as no longer desired.
    pub deleted: Vec<ObjKey>,
}

/// Whether every field of `desired` has the same value in `live` (objects: every key of
/// `desired` present with a matching value; lists: same length, matching element by element;
/// anything else: equal).
pub fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .all(|(k, v)| l.get(k).is_some_and(|lv| is_subset(v, lv))),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(a, b)| is_subset(a, b))
        }
        (d, l) => d == l,
    }
}

/// Whether `live` already is what `desired` asks for.
pub fn up_to_date(desired: &DesiredObject, live: &DynamicObject) -> bool {
    if desired.mode == ApplyMode::CreateOnly {
        return true;
    }
    if live.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let want = desired.body["metadata"]["annotations"][APPLIED_HASH_ANNOTATION].as_str();
    if want.is_none()
        || live
            .annotations()
            .get(APPLIED_HASH_ANNOTATION)
            .map(String::as_str)
            != want
    {
        return false;
    }
    match serde_json::to_value(live) {
        Ok(live) => is_subset(&desired.body, &live),
        Err(_) => false,
    }
}

/// The objects that would be written and deleted (no API calls).
pub fn plan(
    desired: &[DesiredObject],
    keep: &BTreeSet<ObjKey>,
    observed: &Observed,
) -> (Vec<DesiredObject>, Vec<ObjKey>) {
    let writes = desired
        .iter()
        .filter(|d| {
            observed
                .owned
                .get(&d.key)
                .is_none_or(|live| !up_to_date(d, live))
        })
        .cloned()
        .collect();
    let wanted: BTreeSet<&ObjKey> = desired.iter().map(|d| &d.key).collect();
    let deletes = observed
        .owned
        .iter()
        .filter(|(k, o)| {
            !wanted.contains(k) && !keep.contains(k) && o.metadata.deletion_timestamp.is_none()
        })
        .map(|(k, _)| k.clone())
        .collect();
    (writes, deletes)
}

/// Writes what differs and deletes what is no longer desired.
pub async fn apply(
    client: &Client,
    desired: &[DesiredObject],
    keep: &BTreeSet<ObjKey>,
    observed: &Observed,
) -> Result<Applied, kube::Error> {
    let (writes, deletes) = plan(desired, keep, observed);
    let mut out = Applied::default();
    for d in writes {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &d.key.namespace, &d.kind.ar);
        match d.mode {
            ApplyMode::Apply => {
                let params = PatchParams::apply(FIELD_MANAGER).force();
                api.patch(&d.key.name, &params, &Patch::Apply(&d.body))
                    .await?;
            }
            ApplyMode::CreateOnly => {
                let obj: DynamicObject =
                    serde_json::from_value(d.body.clone()).map_err(kube::Error::SerdeError)?;
                match api.create(&PostParams::default(), &obj).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        tracing::debug!(object = %d.key, "applied");
        out.written.push(d.key);
    }
    for key in deletes {
        let kind = super::kinds::owned(observed.capabilities)
            .into_iter()
            .find(|k| k.ar.api_version == key.api_version && k.ar.kind == key.kind);
        let Some(kind) = kind else { continue };
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &key.namespace, &kind.ar);
        match api.delete(&key.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
        tracing::info!(object = %key, "deleted (no longer desired)");
        out.deleted.push(key);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_ignores_fields_the_server_adds() {
        let desired = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        let live = json!({"spec": {"replicas": 2, "progressDeadlineSeconds": 600, "template": {"spec": {"containers": [{"name": "a", "image": "x", "imagePullPolicy": "IfNotPresent"}], "dnsPolicy": "ClusterFirst"}}}, "status": {}});
        assert!(is_subset(&desired, &live));
    }

    #[test]
    fn subset_sees_changed_values_and_list_lengths() {
        let desired = json!({"spec": {"replicas": 2, "ports": [{"port": 443}]}});
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"replicas": 3, "ports": [{"port": 443}]}})
        ));
        assert!(!is_subset(
            &desired,
            &json!({"spec": {"replicas": 2, "ports": [{"port": 443}, {"port": 80}]}})
        ));
        assert!(!is_subset(&desired, &json!({"spec": {}})));
    }
}
