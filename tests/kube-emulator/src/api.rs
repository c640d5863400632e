//! API semantics on top of the store: what create, update, patch and delete mean.
//!
//! Every write goes through `State::commit` which, in order: fixes `apiVersion`/`kind`,
//! keeps server-owned metadata (`uid`, `creationTimestamp`, `deletionTimestamp`, ...), keeps
//! `status` on main-resource writes and everything but `status` on `/status` writes (for kinds
//! with a status subresource), applies built-in defaults or the CRD schema (prune, default,
//! validate), bumps `generation` when anything outside `metadata`/`status` changed, records
//! field ownership in `managedFields`, and finally stores the object. A write that changes
//! nothing is a no-op: no new `resourceVersion`, no watch event (controllers rely on this).
//!
//! Deletion: an object with finalizers gets `deletionTimestamp` and stays until a write
//! removes its last finalizer. `propagationPolicy=Foreground` adds the `foregroundDeletion`
//! finalizer and `Orphan` the `orphan` finalizer; the garbage collector ([`crate::gc`]) acts on
//! them. Namespaces enter phase `Terminating` and are emptied by the namespace controller.
//! Pods bound to the emulated node are deleted gracefully: the workload runner removes them
//! once their processes have stopped.
//!
//! Size: about 1,100 lines of code and 100 of tests, on purpose: every write's semantics go
//! through one `commit` path, and keeping create, update, patch and delete beside it is what lets
//! a reader check that they agree.

use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::apply::{self, Scope};
use crate::defaults;
use crate::lists::ListTypes;
use crate::patch;
use crate::resources::{Registry, ResourceType, types_from_crd};
use crate::schema;
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult, Cause};
use crate::store::Store;

/// The node name pods are bound to when the workload runner runs them.
pub const NODE_NAME: &str = "kube-emulator";

/// How a write is attributed and whether it is persisted.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// Field manager for `managedFields`.
    pub manager: String,
    /// `dryRun=All`: validate and answer, but store nothing.
    pub dry_run: bool,
    /// `force=true` for server-side apply.
    pub force: bool,
    /// `fieldValidation=Strict`: unknown fields are an error instead of being dropped.
    pub strict: bool,
}

impl WriteOptions {
    /// Options for writes made by the emulator's own controllers.
    pub fn controller(name: &str) -> Self {
        Self {
            manager: name.to_owned(),
            dry_run: false,
            force: false,
            strict: false,
        }
    }
}

/// The patch content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/json-patch+json`.
    Json,
    /// `application/strategic-merge-patch+json`.
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// The patch type of a request `Content-Type`.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// `propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// Dependents are deleted in the background after the owner is gone.
    Background,
    /// The owner stays (with the `foregroundDeletion` finalizer) until blocking dependents are gone.
    Foreground,
    /// Dependents lose their owner reference and are kept.
    Orphan,
}

/// Parameters of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// Requested propagation; `None` means the kind's default.
    pub propagation: Option<Propagation>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
    /// `gracePeriodSeconds`.
    pub grace_period: Option<i64>,
    /// `dryRun=All`.
    pub dry_run: bool,
}

/// Selection and paging of a list.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0: no limit).
    pub limit: usize,
    /// `continue` token.
    pub continue_token: Option<String>,
}

/// Mutable cluster state: objects and served kinds, guarded by one lock.
#[derive(Debug)]
pub struct State {
    /// All objects.
    pub store: Store,
    /// Served kinds.
    pub registry: Registry,
    next_service_ip: u32,
}

/// The shared cluster state. Background controllers follow it through
/// [`Store::subscribe`](crate::store::Store::subscribe).
#[derive(Debug)]
pub struct Cluster {
    state: Mutex<State>,
}

impl Cluster {
    /// A cluster with the default namespaces, their `default` ServiceAccounts and the
    /// `cluster-admin` ClusterRole bound to `system:masters`.
    pub fn new(history_limit: usize) -> Arc<Self> {
        let cluster = Arc::new(Self {
            state: Mutex::new(State {
                store: Store::new(history_limit),
                registry: Registry::default(),
                next_service_ip: 1,
            }),
        });
        {
            let mut st = cluster.lock();
            let opts = WriteOptions::controller("kube-apiserver");
            let ns_rt = st.rt("", "namespaces");
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                let r = st.create(&ns_rt, "", json!({"metadata": {"name": ns}}), &opts);
                debug_assert!(r.is_ok());
            }
            let cr = st.rt("rbac.authorization.k8s.io", "clusterroles");
            let crb = st.rt("rbac.authorization.k8s.io", "clusterrolebindings");
            let _ = st.create(&cr, "", json!({"metadata": {"name": "cluster-admin"},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]}), &opts);
            let _ = st.create(&crb, "", json!({"metadata": {"name": "cluster-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]}), &opts);
        }
        cluster
    }

    /// Locks the state. Never hold it across an `.await`.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (writes are single puts).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    bytes
        .iter()
        .take(n)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Five random characters, as the apiserver appends to `generateName`.
pub fn name_suffix() -> String {
    random_suffix(5)
}

fn rv_of(obj: &Value) -> &str {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
}

/// `metadata.namespace` or empty.
pub fn ns_of(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or_default()
}

/// `metadata.name` or empty.
pub fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

/// `metadata.uid` or empty.
pub fn uid_of(obj: &Value) -> &str {
    obj["metadata"]["uid"].as_str().unwrap_or_default()
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj["metadata"]["finalizers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Everything that counts for `generation`: the object without metadata and status.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    v
}

/// The object without fields that change on every write.
fn comparable(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(md) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        md.remove("resourceVersion");
        md.remove("managedFields");
    }
    v
}

fn continue_token(rv: u64, after: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(json!({"rv": rv, "start": after}).to_string())
}

fn parse_continue(token: &str) -> ApiResult<(u64, String)> {
    let bad = || ApiError::bad_request("continue key is not valid");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((
        v["rv"].as_u64().ok_or_else(bad)?,
        v["start"].as_str().ok_or_else(bad)?.to_owned(),
    ))
}

impl State {
    /// The served type of a built-in `group/plural` (any version).
    ///
    /// # Panics
    /// Never for the built-in kinds the emulator itself uses.
    pub fn rt(&self, group: &str, plural: &str) -> Arc<ResourceType> {
        #[allow(clippy::expect_used)]
        self.registry
            .any_version(group, plural)
            .expect("built-in resource type")
    }

    /// The object as served at `rt`'s version.
    pub fn present(rt: &ResourceType, obj: &Value) -> Value {
        let mut v = if rt.is("events.k8s.io", "Event") {
            crate::events::events_view(obj)
        } else if rt.is("", "Event") {
            crate::events::core_view(obj)
        } else {
            obj.clone()
        };
        v["apiVersion"] = json!(rt.api_version());
        v["kind"] = json!(rt.kind);
        v
    }

    /// The shape an object written at `rt`'s version is stored in.
    fn to_storage(rt: &ResourceType, obj: Value) -> Value {
        if rt.is("events.k8s.io", "Event") {
            crate::events::to_storage(&obj)
        } else {
            obj
        }
    }

    /// Reads one object.
    pub fn get(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<Value> {
        self.store
            .get(&rt.store_key(), ns, name)
            .map(|o| Self::present(rt, &o))
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))
    }

    /// Reads one object, if present (no conversion).
    pub fn find(&self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.store.get(&rt.store_key(), ns, name)
    }

    /// Lists objects (`ns` `None`: all namespaces) as a `<Kind>List`.
    pub fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> ApiResult<Value> {
        let current = self.store.current_rv();
        let (list_rv, start) = match &opts.continue_token {
            Some(t) => {
                let (rv, start) = parse_continue(t)?;
                if rv < self.store.compacted_rv() {
                    return Err(ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ));
                }
                (rv, Some(start))
            }
            None => (current, None),
        };
        let mut items: Vec<Value> = self
            .store
            .list(&rt.store_key(), ns)
            .into_iter()
            .filter(|o| {
                start
                    .as_ref()
                    .is_none_or(|s| format!("{}/{}", ns_of(o), name_of(o)) > *s)
            })
            .map(|o| Self::present(rt, &o))
            .filter(|o| opts.labels.matches(o) && opts.fields.matches(o))
            .collect();
        let mut metadata = json!({"resourceVersion": list_rv.to_string()});
        if opts.limit > 0 && items.len() > opts.limit {
            let rest = items.split_off(opts.limit);
            if let Some(last) = items.last() {
                let key = format!("{}/{}", ns_of(last), name_of(last));
                metadata["continue"] = json!(continue_token(list_rv, &key));
                metadata["remainingItemCount"] = json!(rest.len());
            }
        }
        Ok(json!({
            "kind": rt.list_kind(),
            "apiVersion": rt.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    fn check_namespace(&self, rt: &ResourceType, ns: &str, name: &str) -> ApiResult<()> {
        if !rt.namespaced {
            return Ok(());
        }
        match self.store.get("/namespaces", "", ns) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if n["metadata"]["deletionTimestamp"].is_string() => {
                Err(ApiError::forbidden(format!(
                    "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                    rt.plural,
                )))
            }
            Some(_) => Ok(()),
        }
    }

    fn check_identity(rt: &ResourceType, ns: &str, obj: &mut Value) -> ApiResult<()> {
        if !obj.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        if let Some(k) = obj["kind"].as_str()
            && k != rt.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind of the object ({k}) does not match the resource ({})",
                rt.kind
            )));
        }
        if let Some(av) = obj["apiVersion"].as_str() {
            let (g, _) = crate::resources::split_api_version(av);
            if g != rt.group {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({})",
                    rt.api_version()
                )));
            }
        }
        if !obj["metadata"].is_object() {
            obj["metadata"] = json!({});
        }
        if rt.namespaced {
            match obj["metadata"]["namespace"].as_str() {
                Some(n) if !n.is_empty() && n != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => obj["metadata"]["namespace"] = json!(ns),
            }
        } else if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        obj["apiVersion"] = json!(rt.api_version());
        obj["kind"] = json!(rt.kind);
        Ok(())
    }

    /// Creates an object in `ns` (empty for cluster-scoped kinds).
    pub fn create(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        self.create_inner(rt, ns, obj, opts, true)
    }

    /// Create; `track: false` when `managedFields` were computed by server-side apply.
    fn create_inner(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        mut obj: Value,
        opts: &WriteOptions,
        track: bool,
    ) -> ApiResult<Value> {
        Self::check_identity(rt, ns, &mut obj)?;
        self.check_namespace(rt, ns, name_of(&obj))?;
        let md = &mut obj["metadata"];
        if md["name"].as_str().is_none_or(str::is_empty) {
            match md["generateName"].as_str() {
                Some(g) if !g.is_empty() => md["name"] = json!(format!("{g}{}", name_suffix())),
                _ => {
                    return Err(ApiError::invalid(
                        &rt.group,
                        &rt.kind,
                        "",
                        vec![Cause::new(
                            "FieldValueRequired",
                            "metadata.name",
                            "Required value: name or generateName is required",
                        )],
                    ));
                }
            }
        }
        let name = name_of(&obj).to_owned();
        if self.store.get(&rt.store_key(), ns, &name).is_some() {
            return Err(ApiError::already_exists(&rt.group, &rt.plural, &name));
        }
        if let Some(m) = obj["metadata"].as_object_mut() {
            for k in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                m.remove(k);
            }
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now()));
            m.insert("generation".into(), json!(1));
        }
        if rt.status_subresource
            && let Some(m) = obj.as_object_mut()
        {
            m.remove("status");
        }
        defaults::initial_status(rt, &mut obj);
        if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            let f = obj["metadata"]
                .as_object_mut()
                .map(|m| m.entry("finalizers").or_insert(json!([])));
            if let Some(Value::Array(f)) = f {
                let fin = json!("customresourcecleanup.apiextensions.k8s.io");
                if !f.contains(&fin) {
                    f.push(fin);
                }
            }
        }
        self.commit(
            rt,
            None,
            obj,
            opts,
            Scope::Main(rt.status_subresource),
            track,
        )
    }

    /// Replaces an object (PUT). `scope` selects the main resource or `/status`.
    pub fn update(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        mut obj: Value,
        opts: &WriteOptions,
        status: bool,
    ) -> ApiResult<Value> {
        Self::check_identity(rt, ns, &mut obj)?;
        let old = self
            .store
            .get(&rt.store_key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        if name_of(&obj) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&obj)
            )));
        }
        let rv = rv_of(&obj);
        if !rv.is_empty() && rv != rv_of(&old) {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let uid = uid_of(&obj);
        if !uid.is_empty() && uid != uid_of(&old) {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                "Precondition failed: UID in precondition does not match the UID in object",
            ));
        }
        let scope = if status {
            Scope::Status
        } else {
            Scope::Main(rt.status_subresource)
        };
        self.commit(rt, Some(&old), obj, opts, scope, true)
    }

    /// Patches an object (PATCH). Apply patches create the object when it does not exist.
    #[allow(clippy::too_many_arguments)] // mirrors the request: target, patch, options, subresource
    pub fn patch(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        ptype: PatchType,
        body: &[u8],
        opts: &WriteOptions,
        status: bool,
    ) -> ApiResult<Value> {
        let scope = if status {
            Scope::Status
        } else {
            Scope::Main(rt.status_subresource)
        };
        let old = self.store.get(&rt.store_key(), ns, name);
        if ptype == PatchType::Apply {
            let mut applied: Value = serde_yaml::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
            if !applied.is_object() {
                return Err(ApiError::bad_request("apply patch must be an object"));
            }
            if applied["apiVersion"].as_str().is_none_or(str::is_empty)
                || applied["kind"].as_str().is_none_or(str::is_empty)
            {
                return Err(ApiError::bad_request(
                    "apiVersion and kind must be set in an apply patch",
                ));
            }
            // The name may be omitted in the body (it is in the URL).
            if name_of(&applied).is_empty() {
                if !applied["metadata"].is_object() {
                    applied["metadata"] = json!({});
                }
                applied["metadata"]["name"] = json!(name);
            }
            if name_of(&applied) != name {
                return Err(ApiError::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
            if opts.manager.is_empty() {
                return Err(ApiError::bad_request(
                    "fieldManager is required for apply requests",
                ));
            }
            Self::check_identity(rt, ns, &mut applied)?;
            if let Some(old) = &old {
                let rv = rv_of(&applied);
                if !rv.is_empty() && rv != rv_of(old) {
                    return Err(ApiError::conflict(
                        &rt.group,
                        &rt.plural,
                        name,
                        "the object has been modified; please apply your changes to the latest version and try again",
                    ));
                }
            }
            let schema = rt.crd.as_ref().and_then(|c| c.schema.as_ref());
            // Merging collapses items of a list-map that share a key (the last one would
            // win); the apiserver refuses such a configuration, on create and update alike.
            if let Some(schema) = schema {
                let dups: Vec<Cause> = schema::validate(&applied, schema)
                    .into_iter()
                    .filter(|c| c.reason == "FieldValueDuplicate")
                    .collect();
                if !dups.is_empty() {
                    return Err(ApiError::invalid(&rt.group, &rt.kind, name, dups));
                }
            }
            let lt = ListTypes::from_schema(schema);
            let old_view = old.as_deref().map(|o| Self::present(rt, o));
            let merged = apply::apply(
                old_view.as_ref(),
                &applied,
                &opts.manager,
                opts.force,
                &rt.api_version(),
                &lt,
                scope,
            )
            .map_err(|causes| ApiError::apply_conflict(&rt.group, &rt.plural, name, causes))?;
            return match old {
                None if status => Err(ApiError::not_found(&rt.group, &rt.plural, name)),
                None => self.create_inner(rt, ns, merged, opts, false),
                Some(old) => self.commit(rt, Some(&old), merged, opts, scope, false),
            };
        }
        let old = old.ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        let mut new = Self::present(rt, &old);
        match ptype {
            PatchType::Merge => patch::merge_patch(&mut new, &doc),
            PatchType::Json => patch::json_patch(&mut new, &doc)?,
            PatchType::Strategic => {
                if rt.crd.is_some() {
                    return Err(ApiError::unsupported_media_type(
                        "application/strategic-merge-patch+json",
                    ));
                }
                patch::strategic_merge_patch(&mut new, &doc)?;
            }
            PatchType::Apply => {}
        }
        let rv = rv_of(&new);
        if !rv.is_empty() && rv != rv_of(&old) {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        if name_of(&new) != name {
            return Err(ApiError::bad_request(
                "metadata.name cannot be changed by a patch",
            ));
        }
        self.commit(rt, Some(&old), new, opts, scope, true)
    }

    /// Validates, defaults, tracks and stores a new version of an object.
    fn commit(
        &mut self,
        rt: &ResourceType,
        old: Option<&Value>,
        mut new: Value,
        opts: &WriteOptions,
        scope: Scope,
        track: bool,
    ) -> ApiResult<Value> {
        // Everything below works in `rt`'s view; the store gets its storage shape.
        let old_view = old.map(|o| Self::present(rt, o));
        let old = old_view.as_ref();
        let name = name_of(&new).to_owned();
        if let Some(old) = old {
            match scope {
                Scope::Status => {
                    let mut merged = old.clone();
                    merged["status"] = new.get("status").cloned().unwrap_or(Value::Null);
                    if merged["status"].is_null()
                        && let Some(m) = merged.as_object_mut()
                    {
                        m.remove("status");
                    }
                    merged["metadata"]["managedFields"] = new["metadata"]["managedFields"].clone();
                    if merged["metadata"]["managedFields"].is_null()
                        && let Some(m) = merged["metadata"].as_object_mut()
                    {
                        m.remove("managedFields");
                    }
                    new = merged;
                }
                Scope::Main(with_status) => {
                    if with_status {
                        match old.get("status") {
                            Some(s) => new["status"] = s.clone(),
                            None => {
                                if let Some(m) = new.as_object_mut() {
                                    m.remove("status");
                                }
                            }
                        }
                    }
                }
            }
            for k in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "namespace",
            ] {
                match old["metadata"].get(k) {
                    Some(v) => new["metadata"][k] = v.clone(),
                    None => {
                        if let Some(m) = new["metadata"].as_object_mut() {
                            m.remove(k);
                        }
                    }
                }
            }
            // A Service keeps its allocated cluster IP when an update omits it.
            if rt.is("", "Service") && new["spec"].is_object() && new["spec"]["clusterIP"].is_null()
            {
                new["spec"]["clusterIP"] = old["spec"]["clusterIP"].clone();
                new["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            }
            new["metadata"]["generation"] = old["metadata"]["generation"].clone();
            new["apiVersion"] = json!(rt.api_version());
            new["kind"] = json!(rt.kind);
            if old["metadata"]["deletionTimestamp"].is_string() {
                let before = finalizers(old);
                if let Some(f) = finalizers(&new).iter().find(|f| !before.contains(f)) {
                    return Err(ApiError::invalid(
                        &rt.group,
                        &rt.kind,
                        &name,
                        vec![Cause::new(
                            "FieldValueForbidden",
                            "metadata.finalizers",
                            format!(
                                "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers [{f:?}]"
                            ),
                        )],
                    ));
                }
            }
        }

        let schema = rt.crd.as_ref().and_then(|c| c.schema.as_ref());
        if rt.crd.is_some() {
            if let Some(schema) = schema {
                let pruned = schema::prune(&mut new, schema);
                if opts.strict && !pruned.is_empty() {
                    return Err(ApiError::bad_request(format!(
                        "strict decoding error: {}",
                        pruned
                            .iter()
                            .map(|p| format!("unknown field \"{p}\""))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                schema::apply_defaults(&mut new, schema);
                let causes = schema::validate(&new, schema);
                if !causes.is_empty() {
                    return Err(ApiError::invalid(&rt.group, &rt.kind, &name, causes));
                }
            }
        } else {
            let mut ip_counter = self.next_service_ip;
            defaults::apply_builtin_defaults(rt, &mut new, || {
                ip_counter += 1;
                format!("10.96.{}.{}", (ip_counter >> 8) & 0xff, ip_counter & 0xff)
            });
            self.next_service_ip = ip_counter;
            let mut causes = defaults::validate_builtin(rt, &new);
            if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
                causes.extend(validate_crd(&new));
            }
            if !causes.is_empty() {
                return Err(ApiError::invalid(&rt.group, &rt.kind, &name, causes));
            }
        }
        if let Some(md) = new["metadata"].as_object_mut() {
            for k in ["labels", "annotations"] {
                if md
                    .get(k)
                    .is_some_and(|v| v.as_object().is_some_and(|m| m.is_empty()))
                {
                    md.remove(k);
                }
            }
        }
        if let Some(old) = old
            && spec_part(old) != spec_part(&new)
        {
            let g = old["metadata"]["generation"].as_i64().unwrap_or(0);
            new["metadata"]["generation"] = json!(g + 1);
        }
        if track {
            let lt = ListTypes::from_schema(schema);
            apply::track_update(old, &mut new, &opts.manager, &rt.api_version(), &lt, scope);
        }
        if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            let mut st = new.get("status").cloned().unwrap_or(json!({}));
            let t = now();
            st["conditions"] = json!([
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": t},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": t},
            ]);
            st["acceptedNames"] = new["spec"]["names"].clone();
            let storage: Vec<Value> = new["spec"]["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|v| v["storage"] == true)
                .map(|v| v["name"].clone())
                .collect();
            st["storedVersions"] = json!(storage);
            new["status"] = st;
        }
        if let Some(old) = old
            && comparable(old) == comparable(&new)
        {
            return Ok(Self::present(rt, old));
        }
        if opts.dry_run {
            return Ok(new);
        }
        // Finalized deletion: the last finalizer is gone.
        if new["metadata"]["deletionTimestamp"].is_string()
            && finalizers(&new).is_empty()
            && !rt.is("", "Pod")
        {
            let ns = ns_of(&new).to_owned();
            self.store.put(&rt.store_key(), Self::to_storage(rt, new));
            let gone = self.store.remove(&rt.store_key(), &ns, &name);
            self.after_remove(rt, &name);
            return Ok(gone.map(|g| Self::present(rt, &g)).unwrap_or(json!({})));
        }
        let stored = self.store.put(&rt.store_key(), Self::to_storage(rt, new));
        if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            self.registry.set_crd(&name, types_from_crd(&stored));
        }
        if rt.is("", "Namespace") && old.is_none() {
            let sa = self.rt("", "serviceaccounts");
            let _ = self.create(
                &sa,
                &name,
                json!({"metadata": {"name": "default"}}),
                &WriteOptions::controller("kube-controller-manager"),
            );
        }
        Ok(Self::present(rt, &stored))
    }

    fn after_remove(&mut self, rt: &ResourceType, name: &str) {
        if rt.is("apiextensions.k8s.io", "CustomResourceDefinition") {
            self.registry.remove_crd(name);
        }
    }

    /// Deletes an object. Returns the object (with `deletionTimestamp` if it lingers) and
    /// whether it is gone.
    pub fn delete(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<(Value, bool)> {
        let key = rt.store_key();
        let old = self
            .store
            .get(&key, ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        if let Some(uid) = &opts.uid
            && uid != uid_of(&old)
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    uid_of(&old)
                ),
            ));
        }
        if let Some(rv) = &opts.resource_version
            && rv != rv_of(&old)
        {
            return Err(ApiError::conflict(
                &rt.group,
                &rt.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    rv_of(&old)
                ),
            ));
        }
        let mut new = (*old).clone();
        let mut fins = finalizers(&new);
        let propagation =
            opts.propagation
                .unwrap_or(if rt.is("batch", "Job") || rt.is("batch", "CronJob") {
                    Propagation::Orphan
                } else {
                    Propagation::Background
                });
        let already = old["metadata"]["deletionTimestamp"].is_string();
        match propagation {
            Propagation::Foreground
                if !fins.iter().any(|f| f == "foregroundDeletion")
                    && self.has_dependents(uid_of(&old)) =>
            {
                fins.push("foregroundDeletion".into())
            }
            Propagation::Orphan
                if !fins.iter().any(|f| f == "orphan") && self.has_dependents(uid_of(&old)) =>
            {
                fins.push("orphan".into())
            }
            _ => {}
        }
        let graceful_pod = rt.is("", "Pod")
            && old["spec"]["nodeName"].is_string()
            && opts.grace_period != Some(0)
            && !matches!(
                old["status"]["phase"].as_str(),
                Some("Succeeded" | "Failed")
            );
        let lingering = !fins.is_empty() || graceful_pod || rt.is("", "Namespace");
        if opts.dry_run {
            return Ok((Self::present(rt, &old), !lingering));
        }
        if lingering {
            if already
                && fins == finalizers(&old)
                && !(rt.is("", "Pod") && opts.grace_period == Some(0))
            {
                return Ok((Self::present(rt, &old), false));
            }
            if rt.is("", "Pod") && opts.grace_period == Some(0) && fins.is_empty() {
                let gone = self.store.remove(&key, ns, name);
                return Ok((
                    gone.map(|g| Self::present(rt, &g)).unwrap_or_default(),
                    true,
                ));
            }
            new["metadata"]["finalizers"] = json!(fins);
            if fins.is_empty()
                && let Some(m) = new["metadata"].as_object_mut()
            {
                m.remove("finalizers");
            }
            if !already {
                new["metadata"]["deletionTimestamp"] = json!(now());
                let grace = if graceful_pod {
                    opts.grace_period
                        .or_else(|| old["spec"]["terminationGracePeriodSeconds"].as_i64())
                        .unwrap_or(30)
                } else {
                    0
                };
                new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            }
            if rt.is("", "Namespace") {
                new["status"]["phase"] = json!("Terminating");
            }
            let stored = self.store.put(&key, new);
            return Ok((Self::present(rt, &stored), false));
        }
        let gone = self.store.remove(&key, ns, name);
        self.after_remove(rt, name);
        Ok((
            gone.map(|g| Self::present(rt, &g)).unwrap_or_default(),
            true,
        ))
    }

    fn has_dependents(&self, uid: &str) -> bool {
        self.store.all().any(|(_, o)| {
            o["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
        })
    }

    /// Removes an object immediately, whatever its finalizers (used by the workload runner
    /// for pods whose processes have stopped, and by namespace cleanup).
    pub fn purge(&mut self, rt: &ResourceType, ns: &str, name: &str) -> Option<Arc<Value>> {
        let gone = self.store.remove(&rt.store_key(), ns, name);
        if gone.is_some() {
            self.after_remove(rt, name);
        }
        gone
    }

    /// Writes a new status for an object on behalf of a controller (no-op when unchanged).
    pub fn set_status(
        &mut self,
        rt: &ResourceType,
        ns: &str,
        name: &str,
        status: Value,
        manager: &str,
    ) -> ApiResult<Value> {
        let old = self
            .store
            .get(&rt.store_key(), ns, name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, name))?;
        if old.get("status") == Some(&status) {
            return Ok((*old).clone());
        }
        let mut new = (*old).clone();
        new["status"] = status;
        self.commit(
            rt,
            Some(&old),
            new,
            &WriteOptions::controller(manager),
            Scope::Status,
            true,
        )
    }

    /// Replaces an object on behalf of a controller (no precondition, no-op when unchanged).
    pub fn controller_update(
        &mut self,
        rt: &ResourceType,
        obj: Value,
        manager: &str,
    ) -> ApiResult<Value> {
        let ns = ns_of(&obj).to_owned();
        let name = name_of(&obj).to_owned();
        let old = self
            .store
            .get(&rt.store_key(), &ns, &name)
            .ok_or_else(|| ApiError::not_found(&rt.group, &rt.plural, &name))?;
        self.commit(
            rt,
            Some(&old),
            obj,
            &WriteOptions::controller(manager),
            Scope::Main(rt.status_subresource),
            true,
        )
    }
}

fn validate_crd(crd: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    if group.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.group",
            "Required value",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.plural",
            "Required value",
        ));
    }
    if spec["names"]["kind"].as_str().is_none_or(str::is_empty) {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.names.kind",
            "Required value",
        ));
    }
    if !matches!(spec["scope"].as_str(), Some("Namespaced" | "Cluster")) {
        causes.push(Cause::new(
            "FieldValueNotSupported",
            "spec.scope",
            "Unsupported value: supported values: \"Cluster\", \"Namespaced\"",
        ));
    }
    let name = name_of(crd);
    if name != format!("{plural}.{group}") {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "metadata.name",
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::new(
            "FieldValueRequired",
            "spec.versions",
            "Required value: must have at least one version",
        ));
    } else if versions.iter().filter(|v| v["storage"] == true).count() != 1 {
        causes.push(Cause::new(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: must have exactly one version marked as storage version",
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> WriteOptions {
        WriteOptions::controller("test")
    }

    #[test]
    fn create_update_conflict_and_generation() {
        let c = Cluster::new(100);
        let mut st = c.lock();
        let cm = st.rt("", "configmaps");
        let a = st
            .create(
                &cm,
                "default",
                json!({"metadata": {"generateName": "x-"}, "data": {"k": "v"}}),
                &opts(),
            )
            .unwrap();
        let name = name_of(&a).to_owned();
        assert!(name.starts_with("x-") && name.len() == 7);
        assert_eq!(a["metadata"]["generation"], 1);
        let mut b = a.clone();
        b["data"]["k"] = json!("w");
        let b2 = st
            .update(&cm, "default", &name, b.clone(), &opts(), false)
            .unwrap();
        assert_eq!(b2["metadata"]["generation"], 2);
        let err = st
            .update(&cm, "default", &name, b, &opts(), false)
            .unwrap_err();
        assert_eq!(err.code, 409);
        // Label-only change: same generation.
        let mut c2 = b2.clone();
        c2["metadata"]["labels"] = json!({"a": "b"});
        let c3 = st
            .update(&cm, "default", &name, c2, &opts(), false)
            .unwrap();
        assert_eq!(c3["metadata"]["generation"], 2);
        // No-op write keeps the resourceVersion.
        let same = st
            .update(&cm, "default", &name, c3.clone(), &opts(), false)
            .unwrap();
        assert_eq!(
            same["metadata"]["resourceVersion"],
            c3["metadata"]["resourceVersion"]
        );
        assert_eq!(
            st.create(&cm, "nope", json!({"metadata": {"name": "a"}}), &opts())
                .unwrap_err()
                .code,
            404
        );
    }

    #[test]
    fn finalizers_hold_deletion() {
        let c = Cluster::new(100);
        let mut st = c.lock();
        let cm = st.rt("", "configmaps");
        st.create(
            &cm,
            "default",
            json!({"metadata": {"name": "f", "finalizers": ["x/y"]}}),
            &opts(),
        )
        .unwrap();
        let (o, gone) = st
            .delete(&cm, "default", "f", &DeleteOptions::default())
            .unwrap();
        assert!(!gone);
        assert!(o["metadata"]["deletionTimestamp"].is_string());
        let mut o2 = o.clone();
        o2["metadata"]["finalizers"] = json!(["x/y", "new"]);
        assert_eq!(
            st.update(&cm, "default", "f", o2, &opts(), false)
                .unwrap_err()
                .code,
            422
        );
        st.patch(
            &cm,
            "default",
            "f",
            PatchType::Merge,
            br#"{"metadata":{"finalizers":null}}"#,
            &opts(),
            false,
        )
        .unwrap();
        assert!(st.find(&cm, "default", "f").is_none());
    }

    #[test]
    fn apply_refuses_duplicate_list_map_keys_on_create_and_update() {
        let c = Cluster::new(100);
        let mut st = c.lock();
        let crds = st.rt("apiextensions.k8s.io", "customresourcedefinitions");
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "components": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["kind"],
                "items": {"type": "object", "required": ["kind"], "properties": {
                    "kind": {"type": "string"}, "managed": {"type": "boolean"}}}}}}}});
        st.create(
            &crds,
            "",
            json!({"metadata": {"name": "widgets.example.com"}, "spec": {"group": "example.com",
                "scope": "Namespaced", "names": {"plural": "widgets", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": schema}}]}}),
            &opts(),
        )
        .unwrap();
        let rt = st
            .registry
            .by_plural("example.com", "v1", "widgets")
            .unwrap();
        let body = |components: Value| {
            serde_json::to_vec(&json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "w"}, "spec": {"components": components}}))
            .unwrap()
        };
        let dup = body(json!([{"kind": "a", "managed": true}, {"kind": "a", "managed": false}]));
        let apply = |st: &mut State, b: &[u8]| {
            st.patch(
                &rt,
                "default",
                "w",
                PatchType::Apply,
                b,
                &WriteOptions::controller("m"),
                false,
            )
        };
        let on_create = apply(&mut st, &dup).unwrap_err();
        assert_eq!(on_create.code, 422);
        apply(&mut st, &body(json!([{"kind": "a", "managed": true}]))).unwrap();
        let on_update = apply(&mut st, &dup).unwrap_err();
        assert_eq!(on_update.code, 422);
        assert_eq!(on_update.to_status(), on_create.to_status());
        let stored = st.get(&rt, "default", "w").unwrap();
        assert_eq!(
            stored["spec"]["components"],
            json!([{"kind": "a", "managed": true}])
        );
    }
}
