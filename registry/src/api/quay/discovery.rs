//! What the API says about itself: `GET /api/v1/discovery`, a Swagger 2.0 (OpenAPI 2) document
//! of the API in Quay's layout, generated from [`super::endpoints`] (the same list of the areas'
//! declarations that builds the router); `GET /api/v1/error/{error_type}`, the description of an
//! error body's type (from [`super::error::ERROR_TYPES`]); `GET /api/v1/registry/capabilities`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method};
use axum::routing;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::{Endpoint, Entry, ep};
use crate::api::{AppState, public_origin};
use crate::service::scopes::Scope;

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    vec![
        ep(
            M::GET,
            "/discovery",
            "discovery",
            None,
            "discovery",
            "List all of the API endpoints available in the swagger API format.",
            &[("internal", "boolean", "Whether to include internal APIs.")],
            routing::get(discovery),
        ),
        ep(
            M::GET,
            "/error/{error_type}",
            "getErrorDescription",
            None,
            "error",
            "Get a detailed description of the error.",
            &[],
            routing::get(error_description),
        ),
        ep(
            M::GET,
            "/registry/capabilities",
            "getRegistryCapabilities",
            None,
            "capabilities",
            "Get registry capabilities.",
            &[],
            routing::get(capabilities),
        ),
    ]
}

/// `GET /api/v1/error/{error_type}`: Quay's `{type, title, description}`, 404 for an unknown
/// type.
pub async fn error_description(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(error_type): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let description =
        super::error::error_description(&error_type).ok_or_else(ApiError::not_found)?;
    let (scheme, host) = public_origin(&s.ctx, &headers, None);
    Ok(Json(json!({
        "type": format!("{scheme}://{host}/api/v1/error/{error_type}"),
        "title": error_type,
        "description": description,
    })))
}

/// `GET /api/v1/registry/capabilities`, for anyone. Quayside has no sparse-index setting (Quay's
/// `FEATURE_SPARSE_INDEX`, off by default, whose answer this is) and does not apply mirror
/// architecture filters yet (they are stored, see `service::content::mirror`), so it
/// advertises no architectures.
pub async fn capabilities() -> Json<Value> {
    Json(json!({
        "sparse_manifests": {
            "supported": false,
            "required_architectures": [],
            "optional_architectures_allowed": false,
        },
        "mirror_architectures": [],
    }))
}

/// The document for endpoints `table`, served from `host` over `scheme`.
pub fn document(table: &[Endpoint], scheme: &str, host: &str) -> Value {
    let mut paths = Map::new();
    for e in table {
        let full = format!("/api/v1{}", e.path);
        let mut parameters: Vec<Value> = e
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "type": "string", "description": "" }))
            .collect();
        for (name, kind, description) in e.query {
            parameters.push(json!({ "name": name, "in": "query", "required": false, "type": kind, "description": description }));
        }
        if e.body {
            parameters.push(json!({ "name": "body", "in": "body", "required": false, "description": "Request body contents.", "schema": { "type": "object" } }));
        }
        let error = json!({ "schema": { "$ref": "#/definitions/ApiError" } });
        let mut responses = Map::new();
        for (code, description) in [
            ("400", "Bad Request"),
            ("401", "Session required"),
            ("403", "Unauthorized access"),
            ("404", "Not found"),
        ] {
            let mut r = error.clone();
            r["description"] = json!(description);
            responses.insert(code.into(), r);
        }
        match e.method.as_str() {
            "DELETE" => responses.insert("204".into(), json!({ "description": "Deleted" })),
            "POST" => responses.insert(
                "201".into(),
                json!({ "description": "Successful creation" }),
            ),
            _ => responses.insert(
                "200".into(),
                json!({ "description": "Successful invocation" }),
            ),
        };
        let mut operation = json!({
            "operationId": e.operation_id,
            "description": e.summary,
            "tags": [e.tag],
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(scope) = e.scope {
            operation["security"] = json!([{ "oauth2_implicit": [scope.as_str()] }]);
        }
        let entry = paths
            .entry(full.clone())
            .or_insert_with(|| json!({ "x-name": e.operation_id, "x-path": full, "x-tag": e.tag }));
        entry[e.method.as_str().to_ascii_lowercase()] = operation;
    }
    let mut tags: Vec<&str> = table.iter().map(|e| e.tag).collect();
    tags.sort_unstable();
    tags.dedup();
    let scopes: Map<String, Value> = Scope::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), json!(s.description())))
        .collect();
    json!({
        "swagger": "2.0",
        "host": host,
        "basePath": "/",
        "schemes": [scheme],
        "info": {
            "version": "v1",
            "title": "Quayside",
            "description": "This API allows you to perform many of the operations required to work with Quay repositories, users, and organizations.",
            "termsOfService": "",
            "contact": {},
        },
        "securityDefinitions": {
            "oauth2_implicit": {
                "type": "oauth2",
                "flow": "implicit",
                "authorizationUrl": format!("{scheme}://{host}/oauth/authorize"),
                "scopes": scopes,
            },
        },
        "paths": paths,
        "definitions": {
            "ApiError": {
                "type": "object",
                "properties": {
                    "status": { "type": "integer", "description": "Status code of the response." },
                    "type": { "type": "string", "description": "Reference to the type of the error." },
                    "detail": { "type": "string", "description": "Details about the specific instance of the error." },
                    "title": { "type": "string", "description": "Unique error code to identify the type of error." },
                    "error_message": { "type": "string", "description": "Deprecated; alias for detail" },
                    "error_type": { "type": "string", "description": "Deprecated; alias for detail" },
                },
                "required": ["status", "type", "title"],
            },
        },
        "tags": tags.iter().map(|t| json!({ "name": t, "description": "" })).collect::<Vec<_>>(),
    })
}

pub async fn discovery(State(s): State<AppState>, headers: HeaderMap) -> Json<Value> {
    let (scheme, host) = public_origin(&s.ctx, &headers, None);
    let table: Vec<Endpoint> = super::endpoints().into_iter().map(|(e, _)| e).collect();
    Json(document(&table, &scheme, &host))
}
