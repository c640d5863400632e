//! The HTTP layer: URL routing, query parameters, content negotiation, watch streams.
//!
//! Paths follow the apiserver: `/api/v1/...` for the core group, `/apis/{group}/{version}/...`
//! otherwise, then `[namespaces/{ns}/]{plural}[/{name}[/{subresource}[/...]]]`. Methods map to
//! verbs: GET → get/list/watch (`?watch=true`), POST → create, PUT → update, PATCH → patch
//! (by `Content-Type`), DELETE → delete/deletecollection. Responses are always JSON (clients
//! asking for protobuf accept JSON); request bodies may be JSON or YAML (or protobuf for the
//! kinds [`crate::protobuf`] decodes). `Accept: ...;as=Table` gets a `meta.k8s.io/v1 Table`
//! (see [`crate::table`]); `as=PartialObjectMetadata[List]` gets metadata-only objects (gets,
//! lists and watches).
//!
//! Watches stream one JSON event per line. Rules: `resourceVersion` unset or `0` starts with
//! synthetic `ADDED` events for the current objects; a specific version replays the history
//! after it, or sends one `ERROR` event with a `410 Expired` Status when it is too old;
//! `sendInitialEvents=true` sends the current objects then a `BOOKMARK` annotated
//! `k8s.io/initial-events-end`; `allowWatchBookmarks=true` adds a `BOOKMARK` every
//! [`BOOKMARK_INTERVAL`]; `timeoutSeconds` ends the stream; objects that stop (start) matching
//! a label selector are reported as `DELETED` (`ADDED`).
//!
//! Size: about 1,000 lines: the apiserver's URL grammar, negotiation and watch streaming in one
//! place, so every route is parsed the same way.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxState};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use crate::api::{
    Cluster, DeleteOptions, ListOptions, PatchType, Propagation, State, WriteOptions,
};
use crate::rbac::{self, Attributes, User};
use crate::resources::{ResourceType, is_virtual};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult, success_status};
use crate::store::{Event, EventType};
use crate::{discovery, table};

/// Interval between `BOOKMARK` events on watches that allow them.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(2);

/// Shared by all requests.
#[derive(Clone)]
pub struct App {
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// `host:port` the server listens on.
    pub address: String,
    /// Enforce RBAC for non-admin users.
    pub rbac: bool,
    /// The workload runner, when enabled (pod logs).
    pub runner: Option<Arc<crate::workloads::Runner>>,
    /// Becomes `true` when the emulator stops (ends watch streams).
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// The axum router serving everything.
pub fn router(app: App) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(app)
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
        .into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.to_status())
    }
}

async fn handle(AxState(app): AxState<App>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    tracing::debug!(%method, uri = %req.uri(), "request");
    match route(app, req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%method, %path, error = %e, "request failed");
            e.into_response()
        }
    }
}

/// A parsed resource URL.
#[derive(Debug, Clone)]
struct Target {
    rt: Arc<ResourceType>,
    namespace: String,
    name: Option<String>,
    sub: Option<String>,
    /// Raw remainder after `/{subresource}` (proxy paths), without leading slash.
    rest: String,
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn parse_target(st: &State, group: &str, version: &str, rest: &str) -> ApiResult<Target> {
    let segs: Vec<&str> = rest.split('/').collect();
    let segs_decoded: Vec<String> = segs.iter().map(|s| decode(s)).collect();
    let (namespace, start) = if segs_decoded.len() >= 3
        && segs_decoded[0] == "namespaces"
        && st
            .registry
            .by_plural(group, version, &segs_decoded[2])
            .is_some_and(|t| t.namespaced)
    {
        (segs_decoded[1].clone(), 2)
    } else {
        (String::new(), 0)
    };
    let plural = segs_decoded.get(start).cloned().unwrap_or_default();
    let rt = st
        .registry
        .by_plural(group, version, &plural)
        .ok_or_else(ApiError::no_route)?;
    let name = segs_decoded
        .get(start + 1)
        .filter(|s| !s.is_empty())
        .cloned();
    let sub = segs_decoded.get(start + 2).cloned();
    let rest = if segs.len() > start + 3 {
        segs[start + 3..].join("/")
    } else {
        String::new()
    };
    if rt.namespaced && namespace.is_empty() && name.is_some() {
        return Err(ApiError::no_route());
    }
    Ok(Target {
        rt,
        namespace,
        name,
        sub,
        rest,
    })
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn truthy(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| v == "true" || v == "1")
}

fn write_options(q: &HashMap<String, String>, headers: &HeaderMap) -> WriteOptions {
    let ua_manager = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_owned();
    WriteOptions {
        manager: q.get("fieldManager").cloned().unwrap_or(ua_manager),
        dry_run: q.get("dryRun").is_some_and(|v| v == "All"),
        force: truthy(q, "force"),
        strict: q.get("fieldValidation").is_some_and(|v| v == "Strict"),
    }
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> ApiResult<Value> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("protobuf") {
        return crate::protobuf::decode(body);
    }
    if ct.contains("yaml") {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
    }
}

fn verb_for(method: &Method, t: &Target, watch: bool) -> &'static str {
    match *method {
        Method::GET if watch => "watch",
        Method::GET if t.name.is_none() => "list",
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if t.name.is_none() => "deletecollection",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

async fn route(app: App, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let q = query_map(parts.uri.query());
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let user = if app.rbac {
        let user = rbac::authenticate(&app.cluster.lock(), auth.as_deref())
            .ok_or_else(ApiError::unauthorized)?;
        let header = |name: &str| -> Vec<String> {
            parts
                .headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect()
        };
        let as_user = header("impersonate-user").into_iter().next();
        rbac::impersonate(user, as_user.as_deref(), header("impersonate-group"))?
    } else {
        User::admin()
    };
    let trimmed = path.trim_end_matches('/');
    let segs: Vec<&str> = trimmed.split('/').skip(1).collect();

    // Resource requests.
    let resource_gv = match segs.as_slice() {
        ["api", v, rest @ ..] if !rest.is_empty() => Some(("", *v, rest.len())),
        ["apis", g, v, rest @ ..] if !rest.is_empty() => Some((*g, *v, rest.len())),
        _ => None,
    };
    if let Some((group, version, _)) = resource_gv {
        let prefix = if group.is_empty() {
            format!("/api/{version}/")
        } else {
            format!("/apis/{group}/{version}/")
        };
        let rest = path.strip_prefix(&prefix).unwrap_or_default().to_owned();
        let target = parse_target(&app.cluster.lock(), group, version, &rest)?;
        let watch = truthy(&q, "watch");
        let verb = verb_for(&parts.method, &target, watch);
        if app.rbac {
            let attrs = Attributes {
                verb: verb.into(),
                group: target.rt.group.clone(),
                resource: target.rt.plural.clone(),
                subresource: target.sub.clone().unwrap_or_default(),
                namespace: target.namespace.clone(),
                name: target.name.clone().unwrap_or_default(),
                path: None,
            };
            let st = app.cluster.lock();
            if !rbac::authorize(&st, &user, &attrs) {
                let mut e = ApiError::forbidden(rbac::forbidden_message(&user, &attrs));
                e.details =
                    Some(json!({"name": attrs.name, "group": attrs.group, "kind": attrs.resource}));
                return Err(e);
            }
        }
        if target.sub.as_deref() == Some("proxy") && target.rt.is("", "Service") {
            let name = target.name.clone().unwrap_or_default();
            return crate::workloads::proxy::proxy_request(
                &app.cluster,
                &target.namespace,
                &name,
                &target.rest,
                parts,
                body,
            )
            .await;
        }
        let bytes = axum::body::to_bytes(body, 256 << 20)
            .await
            .map_err(|e| ApiError::bad_request(format!("reading body: {e}")))?;
        return resource(
            app,
            target,
            parts.method,
            parts.headers,
            q,
            bytes,
            &user,
            watch,
        )
        .await;
    }

    if app.rbac {
        let attrs = Attributes {
            verb: parts.method.as_str().to_lowercase().replace("head", "get"),
            path: Some(path.clone()),
            ..Default::default()
        };
        if !rbac::authorize(&app.cluster.lock(), &user, &attrs) {
            return Err(ApiError::forbidden(rbac::forbidden_message(&user, &attrs)));
        }
    }
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(ApiError::method_not_allowed(parts.method.as_str()));
    }
    let st = app.cluster.lock();
    let aggregated = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|f| f.contains("as=APIGroupDiscoveryList"))
        });
    if aggregated && matches!(segs.as_slice(), ["api"] | ["apis"]) {
        let doc = discovery::aggregated(&st.registry, segs == ["api"]);
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, discovery::AGGREGATED_CONTENT_TYPE)],
            doc.to_string(),
        )
            .into_response());
    }
    let doc = match segs.as_slice() {
        ["version"] => discovery::version(),
        ["healthz"] | ["livez"] | ["readyz"] => {
            return Ok((StatusCode::OK, "ok").into_response());
        }
        ["api"] => discovery::core_versions(&app.address),
        ["apis"] => discovery::groups(&st.registry),
        ["api", v] => discovery::resources(&st.registry, "", v).ok_or_else(ApiError::no_route)?,
        ["apis", g] => discovery::group(&st.registry, g).ok_or_else(ApiError::no_route)?,
        ["apis", g, v] => {
            discovery::resources(&st.registry, g, v).ok_or_else(ApiError::no_route)?
        }
        ["openapi", "v3"] => discovery::openapi_index(&st.registry),
        ["openapi", "v3", "api", v] => {
            discovery::openapi_gv(&st.registry, "", v).ok_or_else(ApiError::no_route)?
        }
        ["openapi", "v3", "apis", g, v] => {
            discovery::openapi_gv(&st.registry, g, v).ok_or_else(ApiError::no_route)?
        }
        _ => return Err(ApiError::no_route()),
    };
    Ok(json_response(StatusCode::OK, &doc))
}

/// `Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1` (kube-rs
/// metadata APIs and `metadata_watcher`).
fn wants_metadata(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=PartialObjectMetadata"))
        })
}

/// The object as served: whole, or as `PartialObjectMetadata`.
fn render(rt: &ResourceType, obj: &Value, meta_only: bool) -> Value {
    if meta_only {
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
    } else {
        State::present(rt, obj)
    }
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table"))
        })
}

fn list_options(q: &HashMap<String, String>, rt: &ResourceType) -> ApiResult<ListOptions> {
    Ok(ListOptions {
        labels: LabelSelector::parse(
            q.get("labelSelector")
                .map(String::as_str)
                .unwrap_or_default(),
        )?,
        fields: FieldSelector::parse(
            q.get("fieldSelector")
                .map(String::as_str)
                .unwrap_or_default(),
            &rt.kind,
        )?,
        limit: q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0),
        continue_token: q.get("continue").filter(|c| !c.is_empty()).cloned(),
    })
}

fn delete_options(
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<DeleteOptions> {
    let b: Value = if body.is_empty() {
        json!({})
    } else {
        parse_body(headers, body)?
    };
    let policy = q
        .get("propagationPolicy")
        .cloned()
        .or_else(|| b["propagationPolicy"].as_str().map(str::to_owned))
        .or_else(|| {
            match b["orphanDependents"]
                .as_bool()
                .or_else(|| q.get("orphanDependents").map(|v| v == "true"))
            {
                Some(true) => Some("Orphan".into()),
                Some(false) => Some("Background".into()),
                None => None,
            }
        });
    let propagation = match policy.as_deref() {
        None => None,
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid propagationPolicy {other:?}"
            )));
        }
    };
    Ok(DeleteOptions {
        propagation,
        uid: b["preconditions"]["uid"].as_str().map(str::to_owned),
        resource_version: b["preconditions"]["resourceVersion"]
            .as_str()
            .map(str::to_owned),
        grace_period: q
            .get("gracePeriodSeconds")
            .and_then(|g| g.parse().ok())
            .or_else(|| b["gracePeriodSeconds"].as_i64()),
        dry_run: q.get("dryRun").is_some_and(|v| v == "All")
            || b["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "All")),
    })
}

#[allow(clippy::too_many_arguments)]
async fn resource(
    app: App,
    t: Target,
    method: Method,
    headers: HeaderMap,
    q: HashMap<String, String>,
    body: Bytes,
    user: &User,
    watch: bool,
) -> ApiResult<Response> {
    let rt = t.rt.clone();
    let ns = t.namespace.as_str();
    let sub = t.sub.as_deref();
    let is_status = sub == Some("status");
    if let Some(s) = sub {
        let known = match s {
            "status" => rt.status_subresource,
            "log" => rt.is("", "Pod"),
            "token" => rt.is("", "ServiceAccount"),
            "scale" => rt.group == "apps",
            _ => false,
        };
        if !known {
            return Err(ApiError::no_route());
        }
    }
    if is_virtual(&rt) {
        if method != Method::POST {
            return Err(ApiError::method_not_allowed(method.as_str()));
        }
        let review = parse_body(&headers, &body)?;
        return Ok(json_response(
            StatusCode::CREATED,
            &access_review(&app, &rt, review, user),
        ));
    }
    match (method.clone(), t.name.as_deref(), sub) {
        (Method::GET, None, None) if watch => {
            start_watch(&app, &rt, None, ns, &q, wants_metadata(&headers))
        }
        (Method::GET, Some(name), None) if watch => {
            start_watch(&app, &rt, Some(name), ns, &q, wants_metadata(&headers))
        }
        (Method::GET, None, None) => {
            let opts = list_options(&q, &rt)?;
            let st = app.cluster.lock();
            let list = st.list(
                &rt,
                if rt.namespaced && !ns.is_empty() {
                    Some(ns)
                } else {
                    None
                },
                &opts,
            )?;
            if wants_table(&headers) {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let include = q
                    .get("includeObject")
                    .map(String::as_str)
                    .unwrap_or("Metadata");
                return Ok(json_response(
                    StatusCode::OK,
                    &table::table(&rt, &items, list["metadata"].clone(), include),
                ));
            }
            if wants_metadata(&headers) {
                let items: Vec<Value> = list["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|o| render(&rt, o, true))
                    .collect();
                let partial = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                    "metadata": list["metadata"], "items": items});
                return Ok(json_response(StatusCode::OK, &partial));
            }
            Ok(json_response(StatusCode::OK, &list))
        }
        (Method::GET, Some(name), None | Some("status")) => {
            let obj = app.cluster.lock().get(&rt, ns, name)?;
            if wants_table(&headers) && sub.is_none() {
                let include = q
                    .get("includeObject")
                    .map(String::as_str)
                    .unwrap_or("Metadata");
                let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
                return Ok(json_response(
                    StatusCode::OK,
                    &table::table(&rt, &[obj], meta, include),
                ));
            }
            let meta_only = wants_metadata(&headers) && sub.is_none();
            Ok(json_response(StatusCode::OK, &render(&rt, &obj, meta_only)))
        }
        (Method::GET, Some(name), Some("log")) => {
            let pod = app.cluster.lock().get(&rt, ns, name)?;
            let container = q
                .get("container")
                .cloned()
                .or_else(|| {
                    pod["spec"]["containers"][0]["name"]
                        .as_str()
                        .map(str::to_owned)
                })
                .unwrap_or_default();
            let uid = crate::api::uid_of(&pod).to_owned();
            let Some(runner) = app.runner.clone() else {
                return Ok(
                    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], "").into_response()
                );
            };
            if truthy(&q, "follow") {
                let path = runner.log_path(ns, name, &uid, &container);
                return Ok(follow_log(
                    app.cluster.clone(),
                    rt.clone(),
                    ns.to_owned(),
                    name.to_owned(),
                    uid,
                    path,
                ));
            }
            let tail = q.get("tailLines").and_then(|n| n.parse().ok());
            let text = runner.logs(ns, name, &uid, &container, tail);
            Ok((StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response())
        }
        (Method::GET, Some(name), Some("scale")) => {
            let obj = app.cluster.lock().get(&rt, ns, name)?;
            Ok(json_response(StatusCode::OK, &scale_of(&obj)))
        }
        (Method::PUT | Method::PATCH, Some(name), Some("scale")) => {
            let mut st = app.cluster.lock();
            let obj = st.get(&rt, ns, name)?;
            let mut scale = scale_of(&obj);
            if method == Method::PUT {
                scale = parse_body(&headers, &body)?;
            } else {
                let ct = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let doc: Value = serde_json::from_slice(&body)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                match PatchType::from_content_type(ct) {
                    Some(PatchType::Json) => crate::patch::json_patch(&mut scale, &doc)?,
                    Some(_) => crate::patch::merge_patch(&mut scale, &doc),
                    None => return Err(ApiError::unsupported_media_type(ct)),
                }
            }
            let replicas = scale["spec"]["replicas"].clone();
            let patch = json!({"spec": {"replicas": replicas}}).to_string();
            let updated = st.patch(
                &rt,
                ns,
                name,
                PatchType::Merge,
                patch.as_bytes(),
                &write_options(&q, &headers),
                false,
            )?;
            Ok(json_response(StatusCode::OK, &scale_of(&updated)))
        }
        (Method::POST, None, None) => {
            let obj = parse_body(&headers, &body)?;
            let opts = write_options(&q, &headers);
            let created = app.cluster.lock().create(&rt, ns, obj, &opts)?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        (Method::POST, Some(name), Some("token")) => {
            app.cluster.lock().get(&rt, ns, name)?;
            let mut req = if body.is_empty() {
                json!({})
            } else {
                parse_body(&headers, &body)?
            };
            let expiry = req["spec"]["expirationSeconds"].as_i64().unwrap_or(3600);
            let exp = chrono::Utc::now() + chrono::Duration::seconds(expiry);
            req["apiVersion"] = json!("authentication.k8s.io/v1");
            req["kind"] = json!("TokenRequest");
            req["metadata"] = json!({"name": name, "namespace": ns, "creationTimestamp": null});
            req["status"] = json!({"token": rbac::service_account_token(ns, name),
                "expirationTimestamp": exp.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)});
            Ok(json_response(StatusCode::CREATED, &req))
        }
        (Method::PUT, Some(name), None | Some("status")) => {
            let obj = parse_body(&headers, &body)?;
            let opts = write_options(&q, &headers);
            let updated = app
                .cluster
                .lock()
                .update(&rt, ns, name, obj, &opts, is_status)?;
            Ok(json_response(StatusCode::OK, &updated))
        }
        (Method::PATCH, Some(name), None | Some("status")) => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let ptype = PatchType::from_content_type(ct)
                .ok_or_else(|| ApiError::unsupported_media_type(ct))?;
            if ptype == PatchType::Apply && q.get("fieldManager").is_none_or(String::is_empty) {
                return Err(ApiError::invalid(
                    "meta.k8s.io",
                    "PatchOptions",
                    "",
                    vec![crate::status::Cause::new(
                        "FieldValueRequired",
                        "fieldManager",
                        "Required value: is required for apply patch",
                    )],
                ));
            }
            let opts = write_options(&q, &headers);
            let mut st = app.cluster.lock();
            let existed = st.find(&rt, ns, name).is_some();
            let patched = st.patch(&rt, ns, name, ptype, &body, &opts, is_status)?;
            let code = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(json_response(code, &patched))
        }
        (Method::DELETE, Some(name), None) => {
            let opts = delete_options(&q, &headers, &body)?;
            let (obj, gone) = app.cluster.lock().delete(&rt, ns, name, &opts)?;
            if gone && rt.is("", "Namespace") {
                return Ok(json_response(
                    StatusCode::OK,
                    &success_status(
                        &rt.group,
                        &rt.plural,
                        name,
                        obj["metadata"]["uid"].as_str().unwrap_or_default(),
                    ),
                ));
            }
            let code = if gone {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            Ok(json_response(code, &obj))
        }
        (Method::DELETE, None, None) => {
            let lopts = list_options(&q, &rt)?;
            let dopts = delete_options(&q, &headers, &body)?;
            let mut st = app.cluster.lock();
            let list = st.list(
                &rt,
                if rt.namespaced && !ns.is_empty() {
                    Some(ns)
                } else {
                    None
                },
                &ListOptions {
                    limit: 0,
                    continue_token: None,
                    ..lopts
                },
            )?;
            let mut deleted = Vec::new();
            for item in list["items"].as_array().into_iter().flatten() {
                let (n, name) = (
                    crate::api::ns_of(item).to_owned(),
                    crate::api::name_of(item).to_owned(),
                );
                if let Ok((obj, _)) = st.delete(&rt, &n, &name, &dopts) {
                    deleted.push(obj);
                }
            }
            let out = json!({"kind": rt.list_kind(), "apiVersion": rt.api_version(),
                "metadata": {"resourceVersion": st.store.current_rv().to_string()}, "items": deleted});
            Ok(json_response(StatusCode::OK, &out))
        }
        _ => Err(ApiError::method_not_allowed(method.as_str())),
    }
}

/// Streams a container log as it grows, until the Pod is gone or finished.
fn follow_log(
    cluster: Arc<Cluster>,
    rt: Arc<ResourceType>,
    ns: String,
    name: String,
    uid: String,
    path: std::path::PathBuf,
) -> Response {
    let stream = futures_util::stream::unfold(0usize, move |offset| {
        let (cluster, rt, ns, name, uid, path) = (
            cluster.clone(),
            rt.clone(),
            ns.clone(),
            name.clone(),
            uid.clone(),
            path.clone(),
        );
        async move {
            loop {
                let bytes = std::fs::read(&path).unwrap_or_default();
                if bytes.len() > offset {
                    let chunk = Bytes::copy_from_slice(&bytes[offset..]);
                    return Some((Ok::<_, std::io::Error>(chunk), bytes.len()));
                }
                let running = cluster.lock().find(&rt, &ns, &name).is_some_and(|p| {
                    crate::api::uid_of(&p) == uid
                        && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
                });
                if !running {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn scale_of(obj: &Value) -> Value {
    let selector = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
            "uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"],
            "creationTimestamp": obj["metadata"]["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"]},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    })
}

fn access_review(app: &App, rt: &ResourceType, mut review: Value, user: &User) -> Value {
    let spec = &review["spec"];
    let ra = &spec["resourceAttributes"];
    let (subject, attrs) = {
        let attrs = if ra.is_object() {
            Attributes {
                verb: ra["verb"].as_str().unwrap_or_default().into(),
                group: ra["group"].as_str().unwrap_or_default().into(),
                resource: ra["resource"].as_str().unwrap_or_default().into(),
                subresource: ra["subresource"].as_str().unwrap_or_default().into(),
                namespace: ra["namespace"].as_str().unwrap_or_default().into(),
                name: ra["name"].as_str().unwrap_or_default().into(),
                path: None,
            }
        } else {
            let nra = &spec["nonResourceAttributes"];
            Attributes {
                verb: nra["verb"].as_str().unwrap_or_default().into(),
                path: Some(nra["path"].as_str().unwrap_or_default().into()),
                ..Default::default()
            }
        };
        let subject = if rt.plural == "subjectaccessreviews" {
            User {
                name: spec["user"].as_str().unwrap_or_default().into(),
                groups: spec["groups"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|g| g.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        } else {
            user.clone()
        };
        (subject, attrs)
    };
    let allowed = !app.rbac || rbac::authorize(&app.cluster.lock(), &subject, &attrs);
    review["apiVersion"] = json!(rt.api_version());
    review["kind"] = json!(rt.kind);
    review["status"] =
        json!({"allowed": allowed, "reason": if allowed { "allowed by RBAC" } else { "" }});
    review
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut s = json!({"type": kind, "object": object}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(rt: &ResourceType, rv: u64, initial_end: bool) -> Value {
    let mut md = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": md})
}

struct WatchFilter {
    rt: Arc<ResourceType>,
    key: String,
    namespace: Option<String>,
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl WatchFilter {
    /// Selectors match the object as served at the watched version.
    fn selects(&self, o: &Value) -> bool {
        if !self
            .name
            .as_ref()
            .is_none_or(|n| o["metadata"]["name"] == n.as_str())
        {
            return false;
        }
        let o = State::present(&self.rt, o);
        self.labels.matches(&o) && self.fields.matches(&o)
    }

    /// The event to send for a store event, if any.
    fn translate(&self, ev: &Event) -> Option<(&'static str, Arc<Value>)> {
        if ev.res != self.key || self.namespace.as_ref().is_some_and(|n| *n != ev.namespace) {
            return None;
        }
        let now = self.selects(&ev.object);
        match ev.kind {
            EventType::Added | EventType::Deleted => {
                now.then(|| (ev.kind.as_str(), ev.object.clone()))
            }
            EventType::Modified => {
                let before = ev.prev.as_ref().is_some_and(|p| self.selects(p));
                match (before, now) {
                    (true, true) => Some(("MODIFIED", ev.object.clone())),
                    (false, true) => Some(("ADDED", ev.object.clone())),
                    (true, false) => Some(("DELETED", ev.object.clone())),
                    (false, false) => None,
                }
            }
        }
    }
}

fn start_watch(
    app: &App,
    rt: &Arc<ResourceType>,
    name: Option<&str>,
    ns: &str,
    q: &HashMap<String, String>,
    meta_only: bool,
) -> ApiResult<Response> {
    let opts = list_options(q, rt)?;
    let filter = WatchFilter {
        rt: rt.clone(),
        key: rt.store_key(),
        namespace: (rt.namespaced && !ns.is_empty()).then(|| ns.to_owned()),
        name: name
            .map(str::to_owned)
            .or_else(|| opts.fields.required_name().map(str::to_owned)),
        labels: opts.labels.clone(),
        fields: opts.fields.clone(),
    };
    let bookmarks = truthy(q, "allowWatchBookmarks");
    let send_initial = truthy(q, "sendInitialEvents");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let rv_param = q.get("resourceVersion").cloned().unwrap_or_default();
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let rt = rt.clone();

    let st = app.cluster.lock();
    let current = st.store.current_rv();
    let mut initial: Vec<Bytes> = Vec::new();
    let (past, live, mut last_rv) = if rv_param.is_empty() || rv_param == "0" || send_initial {
        for o in st.store.list(&filter.key, filter.namespace.as_deref()) {
            if filter.selects(&o) {
                initial.push(event_line("ADDED", &render(&rt, &o, meta_only)));
            }
        }
        if send_initial {
            initial.push(event_line("BOOKMARK", &bookmark(&rt, current, true)));
        }
        (Vec::new(), st.store.subscribe(), current)
    } else {
        let from: u64 = rv_param
            .parse()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv_param:?}")))?;
        match st.store.watch_from(from) {
            Ok((past, live)) => (past, live, from),
            Err(expired) => {
                let status = ApiError::expired(format!(
                    "too old resource version: {from} ({})",
                    expired.oldest
                ))
                .to_status();
                let line = event_line("ERROR", &status);
                return Ok(stream_response(futures_util::stream::once(async move {
                    Ok::<_, std::io::Error>(line)
                })));
            }
        }
    };
    drop(st);
    for ev in &past {
        if let Some((kind, obj)) = filter.translate(ev) {
            initial.push(event_line(kind, &render(&rt, &obj, meta_only)));
        }
        last_rv = ev.rv;
    }
    let cluster = app.cluster.clone();
    let mut shutdown = app.shutdown.clone();
    tokio::spawn(async move {
        let mut live = live;
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut tick = tokio::time::interval(BOOKMARK_INTERVAL);
        tick.tick().await;
        loop {
            let sleep_until =
                deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = live.recv() => match r {
                    Ok(ev) => {
                        if ev.rv <= last_rv {
                            continue;
                        }
                        last_rv = ev.rv;
                        if let Some((kind, obj)) = filter.translate(&ev)
                            && tx.send(event_line(kind, &render(&rt, &obj, meta_only))).await.is_err() {
                                return;
                            }
                    }
                    // A lagging watcher is closed; the client resumes from its last version.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return,
                },
                _ = tick.tick(), if bookmarks => {
                    let rv = cluster.lock().store.current_rv();
                    // Deliver what is already queued before claiming a newer version.
                    while let Ok(ev) = live.try_recv() {
                        if ev.rv <= last_rv { continue; }
                        last_rv = ev.rv;
                        if let Some((kind, obj)) = filter.translate(&ev)
                            && tx.send(event_line(kind, &render(&rt, &obj, meta_only))).await.is_err() {
                                return;
                            }
                    }
                    let rv = rv.max(last_rv);
                    if tx.send(event_line("BOOKMARK", &bookmark(&rt, rv, false))).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(sleep_until), if deadline.is_some() => return,
                _ = tx.closed() => return,
                _ = shutdown.changed() => return,
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
    });
    Ok(stream_response(stream))
}

fn stream_response<S>(stream: S) -> Response
where
    S: futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
