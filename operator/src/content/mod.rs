//! The machinery every content controller (Organization, Robot, later Quota and ProxyCache)
//! shares: connecting to the registry, ownership of registry objects, deletion policy, the
//! `Ready`/`Synced` conditions, events and the drift-correcting resync.
//!
//! Rules:
//! - A content kind implements [`ContentKind`]: what its registry object is called, how to
//!   bring it to the spec ([`ContentKind::sync`], which reads first and writes only what
//!   differs) and how to remove it. [`reconcile`] does everything else, the same way for every
//!   kind; [`run`] runs a kind's controller.
//! - A reconcile that finds nothing to change makes zero writes: not to the registry (sync
//!   compares before it writes), not to the resource (the status is written only when it
//!   differs), no event.
//! - Two resources claiming the same registry object (same registry, same name): the older
//!   one owns it, the newer one reports `Conflict` and touches nothing, not even on deletion.
//! - The finalizer [`FINALIZER`] is present only while deleting the resource has something to
//!   do (`deletionPolicy: Delete`, or objects outside the resource's namespace to clean up).
//! - Transient failures retry with back-off; an invalid spec or a conflict waits for a change
//!   (or the next resync).
//! - The controller's own writes to a resource (status, finalizer) do not trigger a reconcile:
//!   only a change of generation, labels, annotations or deletion does (see [`own_writes`]),
//!   besides the resync and the kind's own watches.
//! - A reconcile decides from the resource as it is, never from a cache that has not seen the
//!   controller's last write yet: when the cached resourceVersion is not the one that write
//!   returned, the resource is read again (see [`KindContext::current`]).

pub mod bootstrap;
pub mod connection;
pub mod duration;
pub mod error;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use serde_json::{Map, Value, json};

use crate::crd::{ContentStatus, DeletionPolicy, QuayRegistry, RegistryRef};
use crate::runtime::conditions::{Computed, merge};
use crate::runtime::context::Context;
pub use connection::Connection;
pub use error::ContentError;

/// The finalizer of every content kind.
pub const FINALIZER: &str = "quayside.dev/registry-object";
/// The field manager of content status writes.
pub const FIELD_MANAGER: &str = "quayside-operator";

/// What a sync did.
#[derive(Debug, Default)]
pub struct Synced {
    /// The registry object existed before this reconcile.
    pub existed: bool,
    /// What this reconcile changed in the registry, in words (empty: nothing).
    pub changes: Vec<String>,
    /// The kind's own status fields (beside `conditions`, `observedGeneration`, `registry`).
    pub status: Map<String, Value>,
    /// Look again this soon (e.g. a scheduled token rotation), if sooner than the resync.
    pub requeue: Option<Duration>,
}

/// A custom resource describing one registry object.
pub trait ContentKind:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// E.g. `organization`, for messages.
    const NOUN: &'static str;
    fn registry_ref(&self) -> &RegistryRef;
    fn deletion_policy(&self) -> DeletionPolicy;
    fn resync_interval(&self) -> Option<&str>;
    /// The registry object's name (defaults applied), e.g. `acme` or `acme+deployer`.
    fn object_name(&self) -> String;
    fn content_status(&self) -> Option<&ContentStatus>;
    /// The current status as JSON (`Null` when there is none).
    fn status_json(&self) -> Value;
    /// Checks the spec before any call (names, roles, ...).
    fn validate(&self) -> Result<(), ContentError>;
    /// Deleting the resource must clean up objects owner references cannot reach.
    fn needs_cleanup(&self) -> bool {
        false
    }
    /// Brings the registry object (and what the kind keeps in Kubernetes) to the spec.
    fn sync(
        &self,
        ctx: &Context,
        conn: &Connection,
    ) -> impl Future<Output = Result<Synced, ContentError>> + Send;
    /// Removes the registry object (absent is fine).
    fn delete(
        &self,
        ctx: &Context,
        conn: &Connection,
    ) -> impl Future<Output = Result<(), ContentError>> + Send;
    /// Removes what the kind keeps in Kubernetes outside owner references.
    fn cleanup(&self, _ctx: &Context) -> impl Future<Output = Result<(), ContentError>> + Send {
        async { Ok(()) }
    }
}

/// What a kind's reconcile is handed: the shared context and the controller's cache of
/// every resource of the kind (for conflicts).
pub struct KindContext<K: ContentKind> {
    pub ctx: Arc<Context>,
    pub store: Store<K>,
    /// uid → the resourceVersion the controller's last write to the resource returned.
    written: Mutex<HashMap<String, String>>,
}

impl<K: ContentKind> KindContext<K> {
    pub fn new(ctx: Arc<Context>, store: Store<K>) -> Self {
        KindContext {
            ctx,
            store,
            written: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers the resourceVersion of `obj` as returned by a write of this controller.
    fn remember(&self, obj: &K) {
        if let (Some(uid), Some(rv)) = (obj.uid(), obj.resource_version())
            && let Ok(mut w) = self.written.lock()
        {
            w.insert(uid, rv);
        }
    }

    fn forget(&self, obj: &K) {
        if let (Some(uid), Ok(mut w)) = (obj.uid(), self.written.lock()) {
            w.remove(&uid);
        }
    }

    /// `obj` if the cache has seen this controller's last write to it, else the resource as
    /// the API server has it now (`None`: it is gone). The watch that fills the cache can lag
    /// behind the write (under load, by seconds): deciding from the older copy would, say,
    /// take a resource whose status was just written for one never reconciled.
    pub async fn current(&self, obj: Arc<K>) -> Result<Option<Arc<K>>, ContentError> {
        let expected = obj
            .uid()
            .and_then(|uid| self.written.lock().ok()?.get(&uid).cloned());
        match expected {
            None => Ok(Some(obj)),
            Some(rv) if obj.resource_version().as_deref() == Some(rv.as_str()) => Ok(Some(obj)),
            Some(_) => {
                let ns = obj.namespace().unwrap_or_default();
                let api: Api<K> = Api::namespaced(self.ctx.client.clone(), &ns);
                match api.get_opt(&obj.name_any()).await? {
                    Some(fresh) if fresh.uid() == obj.uid() => {
                        self.remember(&fresh);
                        Ok(Some(Arc::new(fresh)))
                    }
                    _ => {
                        self.forget(&obj);
                        Ok(None)
                    }
                }
            }
        }
    }
}

/// What a change must touch for the controller to reconcile the resource: its generation (the
/// spec), labels, annotations (e.g. `quayside.dev/rotate`) or deletion. The status and
/// finalizer writes of the controller itself change none of them, so they trigger nothing.
pub fn own_writes<K: Resource>(obj: &K) -> Option<u64> {
    let m = obj.meta();
    let mut h = DefaultHasher::new();
    m.uid.hash(&mut h);
    m.generation.hash(&mut h);
    m.labels.hash(&mut h);
    m.annotations.hash(&mut h);
    m.deletion_timestamp.as_ref().map(|t| t.0).hash(&mut h);
    Some(h.finish())
}

fn key<K: ContentKind>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// The resync interval of `obj` (its override, else the operator's).
pub fn resync<K: ContentKind>(obj: &K, ctx: &Context) -> Duration {
    obj.resync_interval()
        .and_then(|s| duration::parse(s).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(ctx.settings.resync_interval)
}

/// How two resources are ordered when they claim the same thing: the older one first (by
/// creation time, then by `namespace/name`, so a tie within the same second still has one
/// answer). Works across kinds.
pub fn age<R: Resource>(o: &R) -> (Option<k8s_openapi::jiff::Timestamp>, String) {
    (
        o.meta().creation_timestamp.as_ref().map(|t| t.0),
        format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()),
    )
}

/// The resource that owns the registry object `obj` claims, when it is another one.
pub fn owner_of_claim<K: ContentKind>(obj: &K, all: &[Arc<K>]) -> Option<String> {
    let ns = obj.namespace().unwrap_or_default();
    let mine = (
        connection::registry_key(&ns, obj.registry_ref()),
        obj.object_name(),
    );
    all.iter()
        .filter(|o| o.uid() != obj.uid() && o.meta().deletion_timestamp.is_none())
        .filter(|o| {
            let ons = o.namespace().unwrap_or_default();
            (
                connection::registry_key(&ons, o.registry_ref()),
                o.object_name(),
            ) == mine
        })
        .filter(|o| age(o.as_ref()) < age(obj))
        .map(|o| key(o.as_ref()))
        .min()
}

/// Reconciles one content resource (see the module rules).
pub async fn reconcile<K: ContentKind>(
    obj: Arc<K>,
    kc: Arc<KindContext<K>>,
) -> Result<Action, ContentError> {
    let ctx = &kc.ctx;
    let started = std::time::Instant::now();
    let Some(obj) = kc.current(obj).await? else {
        return Ok(Action::await_change());
    };
    let result = reconcile_inner(obj.as_ref(), kc.as_ref()).await;
    ctx.metrics
        .reconciled(started.elapsed(), result.as_ref().err().map(|e| e.reason()));
    if result.is_ok() {
        ctx.succeeded(&format!("{}:{}", K::NOUN, key(obj.as_ref())));
    }
    result
}

async fn reconcile_inner<K: ContentKind>(
    obj: &K,
    kc: &KindContext<K>,
) -> Result<Action, ContentError> {
    let ctx = &kc.ctx;
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let conflict = owner_of_claim(obj, &kc.store.state());
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);

    if obj.meta().deletion_timestamp.is_some() {
        if has_finalizer {
            finalize(obj, ctx, conflict.is_some()).await?;
            set_finalizer(&api, obj, false).await?;
        }
        kc.forget(obj);
        return Ok(Action::await_change());
    }

    let wanted = obj.deletion_policy() == DeletionPolicy::Delete || obj.needs_cleanup();
    let outcome = match (&conflict, obj.validate()) {
        (Some(owner), _) => Err(ContentError::Conflict(format!(
            "{} {} is already managed by {owner}; this resource changes nothing",
            K::NOUN,
            obj.object_name()
        ))),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => {
            // The finalizer goes on before the registry object exists, so a deletion can
            // never miss it.
            if wanted != has_finalizer {
                kc.remember(&set_finalizer(&api, obj, wanted).await?);
            }
            match connection::connect(ctx, &ns, obj.registry_ref()).await {
                Ok(conn) => obj.sync(ctx, &conn).await.map(|s| (s, conn.endpoint)),
                Err(e) => Err(e),
            }
        }
    };
    if conflict.is_some() && has_finalizer {
        kc.remember(&set_finalizer(&api, obj, false).await?);
    }
    let every = resync(obj, ctx);
    match outcome {
        Ok((synced, endpoint)) => {
            announce(obj, ctx, &synced).await;
            write_status(kc, &api, obj, Ok(&synced), Some(endpoint)).await?;
            Ok(Action::requeue(
                synced.requeue.map_or(every, |r| r.min(every)),
            ))
        }
        Err(e) => {
            let previous = obj
                .content_status()
                .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Synced"))
                .map(|c| (c.reason.clone(), c.message.clone()));
            if previous != Some((e.reason().to_owned(), e.to_string())) {
                publish(
                    ctx,
                    obj,
                    EventType::Warning,
                    e.reason(),
                    "Sync",
                    &e.to_string(),
                )
                .await;
            }
            write_status(kc, &api, obj, Err(&e), None).await?;
            if e.retry() {
                Err(e)
            } else {
                Ok(Action::requeue(every))
            }
        }
    }
}

/// Deletion: remove the registry object (policy `Delete`, and only the owner of the claim),
/// then what the kind keeps outside owner references.
async fn finalize<K: ContentKind>(
    obj: &K,
    ctx: &Context,
    conflicted: bool,
) -> Result<(), ContentError> {
    if obj.deletion_policy() == DeletionPolicy::Delete && !conflicted {
        let ns = obj.namespace().unwrap_or_default();
        match connection::connect(ctx, &ns, obj.registry_ref()).await {
            Ok(conn) => {
                obj.delete(ctx, &conn).await?;
                publish(
                    ctx,
                    obj,
                    EventType::Normal,
                    "Deleted",
                    "Delete",
                    &format!(
                        "deleted {} {} from the registry",
                        K::NOUN,
                        obj.object_name()
                    ),
                )
                .await;
            }
            // The registry itself is gone: so is the object.
            Err(ContentError::RegistryNotFound(_)) if obj.registry_ref().name.is_some() => {}
            // A spec that never named a registry cannot have made anything.
            Err(ContentError::InvalidSpec(_)) => {}
            Err(e) => return Err(e),
        }
    }
    obj.cleanup(ctx).await
}

/// Returns the resource as the write left it.
async fn set_finalizer<K: ContentKind>(
    api: &Api<K>,
    obj: &K,
    present: bool,
) -> Result<K, ContentError> {
    let mut list: Vec<String> = obj
        .finalizers()
        .iter()
        .filter(|f| f.as_str() != FINALIZER)
        .cloned()
        .collect();
    if present {
        list.push(FINALIZER.into());
    }
    let patch = json!({"metadata": {
        "finalizers": list,
        "resourceVersion": obj.resource_version(),
    }});
    Ok(api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?)
}

/// Events for what a successful sync changed: `Created`, `Adopted`, `Updated` (the spec
/// changed) or `DriftCorrected` (someone changed the registry object by hand).
async fn announce<K: ContentKind>(obj: &K, ctx: &Context, synced: &Synced) {
    let name = obj.object_name();
    let status = obj.content_status();
    let first = status.is_none_or(|s| s.conditions.is_empty());
    let converged_here = status.is_some_and(|s| {
        s.observed_generation == obj.meta().generation
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    });
    let (reason, action, note) = if !synced.existed {
        ("Created", "Create", format!("created {} {name}", K::NOUN))
    } else if first {
        (
            "Adopted",
            "Adopt",
            format!("adopted the existing {} {name}", K::NOUN),
        )
    } else if synced.changes.is_empty() {
        return;
    } else if converged_here {
        ("DriftCorrected", "CorrectDrift", String::new())
    } else {
        ("Updated", "Update", String::new())
    };
    let note = if synced.changes.is_empty() {
        note
    } else if note.is_empty() {
        synced.changes.join("; ")
    } else {
        format!("{note}: {}", synced.changes.join("; "))
    };
    publish(ctx, obj, EventType::Normal, reason, action, &note).await;
}

/// Writes the status when it differs from what the resource has.
async fn write_status<K: ContentKind>(
    kc: &KindContext<K>,
    api: &Api<K>,
    obj: &K,
    outcome: Result<&Synced, &ContentError>,
    endpoint: Option<String>,
) -> Result<(), ContentError> {
    let previous = obj.content_status().cloned().unwrap_or_default();
    let prev_condition = |t: &str| previous.conditions.iter().find(|c| c.type_ == t);
    let name = obj.object_name();
    let (computed, mut fields) = match outcome {
        Ok(synced) => {
            let first = previous.conditions.is_empty();
            let reason = match prev_condition("Synced") {
                Some(c) if c.status == "True" => c.reason.clone(),
                _ if !synced.existed => "Created".into(),
                _ if first => "Adopted".into(),
                _ => "Synced".into(),
            };
            (
                vec![
                    Computed::new(
                        "Ready",
                        true,
                        "UpToDate",
                        format!("{} {name} matches the spec", K::NOUN),
                    ),
                    Computed::new("Synced", true, reason, "the last reconcile succeeded"),
                ],
                synced.status.clone(),
            )
        }
        Err(e) => {
            // A registry we cannot reach says nothing about the object: Ready keeps what it
            // was; a spec it refused or a conflict means it does not match.
            let ready = match (e, prev_condition("Ready")) {
                (
                    ContentError::RegistryUnreachable(_)
                    | ContentError::RegistryNotReady(_)
                    | ContentError::Unauthorized(_)
                    | ContentError::Kube(_)
                    | ContentError::Registry(_),
                    Some(c),
                ) => Computed::new(
                    "Ready",
                    c.status == "True",
                    c.reason.clone(),
                    c.message.clone(),
                ),
                _ => Computed::new("Ready", false, e.reason(), e.to_string()),
            };
            // Keep the kind's fields as they were.
            let mut fields = match obj.status_json() {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            for k in ["conditions", "observedGeneration", "registry"] {
                fields.remove(k);
            }
            (
                vec![
                    ready,
                    Computed::new("Synced", false, e.reason(), e.to_string()),
                ],
                fields,
            )
        }
    };
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let content = ContentStatus {
        observed_generation: obj.meta().generation,
        conditions: merge(&previous.conditions, computed, &now, obj.meta().generation),
        registry: endpoint.or(previous.registry),
    };
    let Value::Object(common) = serde_json::to_value(&content).unwrap_or(Value::Null) else {
        return Ok(());
    };
    fields.extend(common);
    let status = Value::Object(fields);
    if same_status(&obj.status_json(), &status) {
        return Ok(());
    }
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let written = api
        .patch_status(
            &obj.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
    kc.remember(&written);
    Ok(())
}

/// Equal statuses, ignoring the order of object keys.
fn same_status(a: &Value, b: &Value) -> bool {
    fn canon(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), canon(v)))
                    .collect::<BTreeMap<_, _>>()
                    .into_iter()
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(canon).collect()),
            other => other.clone(),
        }
    }
    canon(a) == canon(b)
}

/// Publishes an event about `obj` (see [`crate::runtime::events::publish`]: each distinct
/// message is its own Event).
pub async fn publish<K: ContentKind>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: &str,
) {
    crate::runtime::events::publish(
        &ctx.recorder,
        &obj.object_ref(&()),
        type_,
        reason,
        action,
        note,
    )
    .await;
}

/// Retry with back-off: 1 s, 2 s, 4 s, ... up to 5 minutes per resource.
pub fn error_policy<K: ContentKind>(
    obj: Arc<K>,
    error: &ContentError,
    kc: Arc<KindContext<K>>,
) -> Action {
    let key = format!("{}:{}", K::NOUN, key(obj.as_ref()));
    let (attempts, delay) = kc.ctx.backoff(&key);
    tracing::warn!(resource = %key, %error, attempts, ?delay, "reconcile failed; retrying");
    Action::requeue(delay)
}

/// Runs the controller of kind `K` in `namespace` (all when `None`) until `shutdown`:
/// resources are reconciled when they change, when the QuayRegistry they name changes (it
/// becomes Available, say) and every resync interval. `configure` adds the kind's own
/// watches (e.g. the Secrets it owns).
pub async fn run<K, F>(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
    configure: F,
) where
    K: ContentKind,
    F: FnOnce(Controller<K>, &kube::Client, &Option<String>) -> Controller<K>,
{
    let client = ctx.client.clone();
    let api: Api<K> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let registries: Api<QuayRegistry> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let (store, writer) = reflector::store();
    let changes = reflector::reflector(writer, watcher(api, watcher::Config::default()))
        .applied_objects()
        .predicate_filter(own_writes::<K>, PredicateConfig::default());
    let controller = Controller::for_stream(changes, store.clone());
    let by_registry = store.clone();
    let controller = controller.watches(registries, watcher::Config::default(), move |qr| {
        let ns = qr.namespace();
        let name = qr.name_any();
        by_registry
            .state()
            .into_iter()
            .filter(|o| o.namespace() == ns && o.registry_ref().name.as_deref() == Some(&name))
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect::<Vec<_>>()
    });
    let controller = configure(controller, &client, &namespace);
    let kc = Arc::new(KindContext::new(ctx, store));
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<K>, error_policy::<K>, kc)
        .for_each(|_| futures_util::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Organization, ProxyCache, Quota, Robot};
    use serde::Deserialize as _;

    #[test]
    fn the_samples_parse_and_pass_the_operators_checks() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/samples");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let v = serde_yaml::Value::deserialize(doc).unwrap();
                match v["kind"].as_str() {
                    Some("Organization") => {
                        let o: Organization = serde_yaml::from_value(v).unwrap();
                        o.validate().unwrap();
                        seen += 1;
                    }
                    Some("Robot") => {
                        let r: Robot = serde_yaml::from_value(v).unwrap();
                        r.validate().unwrap();
                        seen += 1;
                    }
                    Some("Quota") => {
                        let q: Quota = serde_yaml::from_value(v).unwrap();
                        q.validate().unwrap();
                        seen += 1;
                    }
                    Some("ProxyCache") => {
                        let p: ProxyCache = serde_yaml::from_value(v).unwrap();
                        p.validate().unwrap();
                        seen += 1;
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(
            seen, 5,
            "organization.yaml, organization-external.yaml, robot.yaml, quota.yaml, proxycache.yaml"
        );
    }

    #[test]
    fn statuses_compare_without_key_order_or_nulls() {
        let a = json!({"a": 1, "b": {"c": [1, 2], "d": null}});
        let b = json!({"b": {"c": [1, 2]}, "a": 1});
        assert!(same_status(&a, &b));
        assert!(!same_status(&a, &json!({"a": 2, "b": {"c": [1, 2]}})));
    }
}
