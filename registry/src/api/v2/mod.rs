//! The OCI Distribution 1.1 surface (`/v2`) and the Docker token server (`/v2/auth`).
//!
//! Every `/v2/...` request goes through [`dispatch`]: authenticate, parse the path with
//! [`route::parse`], call one service function, shape the response. Errors become the OCI
//! envelope in [`error`].

pub mod error;
pub mod route;
pub mod token;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures_util::TryStreamExt;

use self::error::V2Error;
use self::route::Route;
use super::{AppState, ConnScheme, PeerAddr, credentials, public_origin};
use crate::oci::RepoName;
use crate::service::content::blobs::ByteRange;
use crate::service::content::uploads::{self, MountOutcome};
use crate::service::operations::audit::{Caller, Event};
use crate::service::{
    Principal, RegistryError, access::auth, content::blobs, content::manifests,
    content::repositories,
};
use crate::storage::ByteStream;
use crate::telemetry::RouteLabel;

const API_VERSION: &str = "registry/2.0";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v2/auth", get(token::get_token).post(token::post_token))
        .route("/v2", any(dispatch))
        .route("/v2/", any(dispatch))
        .route("/v2/{*rest}", any(dispatch))
}

/// What the failing request would need: its scope, for the `WWW-Authenticate` challenge.
struct Challenge {
    realm: String,
    service: String,
    scope: Option<String>,
}

impl Challenge {
    fn header(&self) -> String {
        match &self.scope {
            Some(scope) => format!(
                "Bearer realm=\"{}\",service=\"{}\",scope=\"{scope}\"",
                self.realm, self.service
            ),
            None => format!(
                "Bearer realm=\"{}\",service=\"{}\"",
                self.realm, self.service
            ),
        }
    }
}

fn scope_for(method: &Method, route: &Route<'_>) -> Option<String> {
    match route {
        Route::Catalog => Some("registry:catalog:*".into()),
        Route::Base | Route::Unknown => None,
        other => {
            let actions = match *method {
                Method::GET | Method::HEAD => "pull",
                Method::DELETE => "delete",
                _ => "pull,push",
            };
            other.name().map(|n| format!("repository:{n}:{actions}"))
        }
    }
}

async fn dispatch(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let rest = path
        .strip_prefix("/v2")
        .unwrap_or(path)
        .trim_start_matches('/');
    let route = route::parse(rest);
    let (scheme, host) = public_origin(
        &state.ctx,
        &parts.headers,
        parts.extensions.get::<ConnScheme>(),
    );
    let challenge = Challenge {
        realm: format!("{scheme}://{host}/v2/auth"),
        service: host,
        scope: scope_for(&parts.method, &route),
    };
    let ip = parts.extensions.get::<PeerAddr>().map(|p| p.0.ip());
    let handled = handle(
        &state,
        &parts.method,
        &parts.uri,
        &parts.headers,
        &route,
        body,
        &challenge,
        ip,
    );
    let mut response = match crate::service::operations::audit::CLIENT_IP
        .scope(ip, handled)
        .await
    {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static(API_VERSION),
    );
    response.extensions_mut().insert(RouteLabel(route.label()));
    response
}

/// Records a pull or push, waiting for room in the audit queue (back-pressure rather than
/// unbounded memory when pulls outpace the database).
async fn record(
    state: &AppState,
    principal: &Principal,
    ip: Option<std::net::IpAddr>,
    kind: &'static str,
    name: &crate::oci::RepoName,
    metadata: serde_json::Value,
) {
    let mut metadata = metadata;
    metadata["repo"] = serde_json::json!(name.repository());
    metadata["namespace"] = serde_json::json!(name.namespace());
    state
        .ctx
        .audit
        .record_pressed(
            &Caller::new(principal.clone(), ip),
            Event::repo(kind, name.namespace(), name.repository(), metadata),
            state.ctx.now_ms(),
        )
        .await;
}

#[allow(clippy::too_many_arguments)]
async fn handle(
    state: &AppState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    route: &Route<'_>,
    body: Body,
    challenge: &Challenge,
    ip: Option<std::net::IpAddr>,
) -> Result<Response, V2Error> {
    let ctx = &*state.ctx;
    let principal = match credentials(headers) {
        Ok(None) => Principal::Anonymous,
        Ok(Some(creds)) => auth::authenticate(ctx, &creds).await.map_err(|e| match e {
            auth::AuthError::Internal(i) => {
                V2Error::from_registry(RegistryError::Internal(i), || challenge.header())
            }
            other => V2Error::unauthorized(challenge.header()).with_message(other.to_string()),
        })?,
        Err(_) => return Err(V2Error::unauthorized(challenge.header())),
    };
    let fail = |e: RegistryError| V2Error::from_registry(e, || challenge.header());
    let query = Query::parse(uri.query());
    let name = match route.name() {
        Some(n) => Some(repositories::parse_name(n).map_err(fail)?),
        None => None,
    };
    let name = name.as_ref();
    let need_name = || {
        name.ok_or_else(|| {
            V2Error::new(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                "repository name not known to registry",
            )
        })
    };

    match (route, method) {
        (Route::Base, &Method::GET | &Method::HEAD) => {
            if principal.is_anonymous() {
                return Err(V2Error::unauthorized(challenge.header()));
            }
            Ok((StatusCode::OK, axum::Json(serde_json::json!({}))).into_response())
        }
        (Route::Catalog, &Method::GET) => {
            let page = repositories::catalog(
                ctx,
                &principal,
                query.int("n").map_err(fail)?,
                query.get("last"),
            )
            .await
            .map_err(fail)?;
            let link = page
                .more
                .then(|| next_link("/v2/_catalog", &page.items, query.get("n")));
            Ok(json_page(
                serde_json::json!({ "repositories": page.items }),
                link,
            ))
        }
        (Route::Tags { .. }, &Method::GET) => {
            let name = need_name()?;
            let page = repositories::list_tags(
                ctx,
                &principal,
                name,
                query.int("n").map_err(fail)?,
                query.get("last"),
            )
            .await
            .map_err(fail)?;
            let link = page.more.then(|| {
                next_link(
                    &format!("/v2/{name}/tags/list"),
                    &page.items,
                    query.get("n"),
                )
            });
            Ok(json_page(
                serde_json::json!({ "name": name.as_str(), "tags": page.items }),
                link,
            ))
        }
        (Route::Manifest { reference, .. }, &Method::GET | &Method::HEAD) => {
            let accept = accept_list(headers);
            let served = manifests::get(ctx, &principal, need_name()?, reference, &accept)
                .await
                .map_err(fail)?;
            if *method == Method::GET {
                let key = if reference.contains(':') {
                    "manifest_digest"
                } else {
                    "tag"
                };
                record(
                    state,
                    &principal,
                    ip,
                    "pull_repo",
                    need_name()?,
                    serde_json::json!({ key: reference }),
                )
                .await;
            }
            let mut response = Response::new(if *method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(served.content.clone())
            });
            let h = response.headers_mut();
            h.insert(header::CONTENT_TYPE, header_value(&served.media_type));
            h.insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(served.content.len()),
            );
            h.insert("Docker-Content-Digest", header_value(&served.digest));
            h.insert(
                header::ETAG,
                header_value(&format!("\"{}\"", served.digest)),
            );
            Ok(response)
        }
        (Route::Manifest { reference, .. }, &Method::PUT) => {
            let name = need_name()?;
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let bytes = read_manifest_body(headers, body).await.map_err(fail)?;
            let pushed = manifests::put(ctx, &principal, name, reference, content_type, bytes)
                .await
                .map_err(fail)?;
            let mut metadata = serde_json::json!({ "manifest_digest": pushed.digest.as_str() });
            if !reference.contains(':') {
                metadata["tag"] = serde_json::json!(reference);
            }
            record(state, &principal, ip, "push_repo", name, metadata).await;
            let mut response = created(&format!("/v2/{name}/manifests/{}", pushed.digest));
            let h = response.headers_mut();
            h.insert(
                "Docker-Content-Digest",
                header_value(pushed.digest.as_str()),
            );
            if let Some(subject) = pushed.subject {
                h.insert("OCI-Subject", header_value(subject.as_str()));
            }
            Ok(response)
        }
        (Route::Manifest { reference, .. }, &Method::DELETE) => {
            let name = need_name()?;
            let ended = manifests::delete(ctx, &principal, name, reference)
                .await
                .map_err(fail)?;
            for tag in ended {
                record(
                    state,
                    &principal,
                    ip,
                    "delete_tag",
                    name,
                    serde_json::json!({ "tag": tag, "digest": reference }),
                )
                .await;
            }
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Route::Blob { digest, .. }, &Method::GET | &Method::HEAD) => {
            let name = need_name()?;
            if *method == Method::HEAD {
                let (digest, size) = blobs::stat(ctx, &principal, name, digest)
                    .await
                    .map_err(fail)?;
                let mut response = Response::new(Body::empty());
                blob_headers(response.headers_mut(), digest.as_str(), size);
                return Ok(response);
            }
            let range = parse_range(headers);
            let blob = blobs::open(ctx, &principal, name, digest, range)
                .await
                .map_err(|e| match e {
                    RegistryError::RangeInvalid { size } => V2Error::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "BLOB_UNKNOWN",
                        format!("requested range not satisfiable (blob is {size} bytes)"),
                    )
                    .with_detail(serde_json::json!({ "size": size })),
                    other => fail(other),
                })?;
            let served_len = blob.range.as_ref().map_or(blob.size, |r| r.end - r.start);
            let mut response = Response::new(Body::from_stream(blob.stream));
            blob_headers(response.headers_mut(), blob.digest.as_str(), served_len);
            if let Some(r) = blob.range {
                *response.status_mut() = StatusCode::PARTIAL_CONTENT;
                response.headers_mut().insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes {}-{}/{}", r.start, r.end - 1, blob.size)),
                );
            }
            Ok(response)
        }
        (Route::Blob { digest, .. }, &Method::DELETE) => {
            blobs::delete(ctx, &principal, need_name()?, digest)
                .await
                .map_err(fail)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Route::UploadStart { .. }, &Method::POST) => {
            let name = need_name()?;
            if let Some(mount) = query.get("mount") {
                return match uploads::mount(ctx, &principal, name, mount, query.get("from"))
                    .await
                    .map_err(fail)?
                {
                    MountOutcome::Mounted(c) => Ok(blob_created(name, c.digest.as_str())),
                    MountOutcome::Started(s) => {
                        Ok(upload_accepted(name, &s.uuid, s.size, StatusCode::ACCEPTED))
                    }
                };
            }
            if let Some(digest) = query.get("digest") {
                let c = uploads::monolithic(ctx, &principal, name, digest, body_stream(body))
                    .await
                    .map_err(fail)?;
                return Ok(blob_created(name, c.digest.as_str()));
            }
            let s = uploads::start(ctx, &principal, name).await.map_err(fail)?;
            Ok(upload_accepted(name, &s.uuid, s.size, StatusCode::ACCEPTED))
        }
        (Route::Upload { uuid, .. }, &Method::GET) => {
            let name = need_name()?;
            let s = uploads::status(ctx, &principal, name, uuid)
                .await
                .map_err(fail)?;
            Ok(upload_accepted(
                name,
                &s.uuid,
                s.size,
                StatusCode::NO_CONTENT,
            ))
        }
        (Route::Upload { uuid, .. }, &Method::PATCH) => {
            let name = need_name()?;
            let range = match headers.get(header::CONTENT_RANGE) {
                None => None,
                Some(v) => Some(parse_content_range(v).ok_or_else(|| {
                    fail(RegistryError::UploadInvalid(
                        "Content-Range must be <start>-<end>".into(),
                    ))
                })?),
            };
            let s = uploads::append(ctx, &principal, name, uuid, range, body_stream(body))
                .await
                .map_err(fail)?;
            Ok(upload_accepted(name, &s.uuid, s.size, StatusCode::ACCEPTED))
        }
        (Route::Upload { uuid, .. }, &Method::PUT) => {
            let name = need_name()?;
            let has_body = content_length(headers).is_some_and(|l| l > 0)
                || headers.contains_key(header::TRANSFER_ENCODING);
            let body = has_body.then(|| body_stream(body));
            let c = uploads::complete(ctx, &principal, name, uuid, query.get("digest"), body)
                .await
                .map_err(fail)?;
            Ok(blob_created(name, c.digest.as_str()))
        }
        (Route::Upload { uuid, .. }, &Method::DELETE) => {
            uploads::cancel(ctx, &principal, need_name()?, uuid)
                .await
                .map_err(fail)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (Route::Referrers { digest, .. }, &Method::GET) => {
            let (body, filtered) = manifests::referrers(
                ctx,
                &principal,
                need_name()?,
                digest,
                query.get("artifactType"),
            )
            .await
            .map_err(fail)?;
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::oci::manifest::OCI_INDEX),
            );
            if filtered {
                response.headers_mut().insert(
                    "OCI-Filters-Applied",
                    HeaderValue::from_static("artifactType"),
                );
            }
            Ok(response)
        }
        (Route::Unknown, _) => Err(V2Error::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "no such endpoint",
        )),
        (_, method) => Err(V2Error::unsupported(format!(
            "method {method} is not supported here"
        ))),
    }
}

/// Reads a manifest body, refusing more than the size limit. A moderately oversized body is
/// read and dropped so the client receives the 413 rather than a broken pipe; far beyond the
/// limit the connection is cut.
async fn read_manifest_body(
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, RegistryError> {
    let limit = crate::oci::manifest::MAX_MANIFEST_BYTES;
    let too_large = RegistryError::ManifestTooLarge { limit };
    if content_length(headers).is_some_and(|l| l > 4 * limit as u64) {
        return Err(too_large);
    }
    let mut stream = body.into_data_stream();
    let mut bytes = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        let chunk = chunk
            .map_err(|e| RegistryError::ManifestInvalid(format!("reading the body failed: {e}")))?;
        seen += chunk.len();
        if seen <= limit {
            bytes.extend_from_slice(&chunk);
        } else if seen > 4 * limit {
            return Err(too_large);
        }
    }
    if seen > limit {
        return Err(too_large);
    }
    Ok(bytes.freeze())
}

/// Query parameters of a `/v2` request.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        Query(
            query
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn int(&self, key: &str) -> Result<Option<i64>, RegistryError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    RegistryError::Unsupported(format!("query parameter {key} must be a number"))
                })
            })
            .transpose()
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

fn accept_list(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| crate::oci::manifest::bare_media_type(v).to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// `Range: bytes=a-b`, `bytes=a-`, `bytes=-n` (a single range).
fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    match (a.trim(), b.trim()) {
        ("", n) => n.parse().ok().map(ByteRange::Suffix),
        (a, "") => a
            .parse()
            .ok()
            .map(|start| ByteRange::From { start, end: None }),
        (a, b) => {
            let (start, end): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
            (end >= start).then_some(ByteRange::From {
                start,
                end: Some(end),
            })
        }
    }
}

/// `Content-Range: <start>-<end>` (OCI) or `bytes <start>-<end>/<total>`.
fn parse_content_range(v: &HeaderValue) -> Option<(u64, u64)> {
    let s = v.to_str().ok()?.trim();
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let s = s.split('/').next()?;
    let (a, b) = s.split_once('-')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn blob_headers(h: &mut HeaderMap, digest: &str, len: u64) {
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("Docker-Content-Digest", header_value(digest));
    h.insert(header::ETAG, header_value(&format!("\"{digest}\"")));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=31536000"),
    );
}

fn created(location: &str) -> Response {
    let mut r = StatusCode::CREATED.into_response();
    r.headers_mut()
        .insert(header::LOCATION, header_value(location));
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    r
}

fn blob_created(name: &RepoName, digest: &str) -> Response {
    let mut r = created(&format!("/v2/{name}/blobs/{digest}"));
    r.headers_mut()
        .insert("Docker-Content-Digest", header_value(digest));
    r
}

fn upload_accepted(name: &RepoName, uuid: &str, size: u64, status: StatusCode) -> Response {
    let mut r = status.into_response();
    let h = r.headers_mut();
    h.insert(
        header::LOCATION,
        header_value(&format!("/v2/{name}/blobs/uploads/{uuid}")),
    );
    h.insert(
        header::RANGE,
        header_value(&format!("0-{}", size.saturating_sub(1))),
    );
    h.insert("Docker-Upload-UUID", header_value(uuid));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    h.insert("OCI-Chunk-Min-Length", HeaderValue::from(0));
    r
}

fn json_page(body: serde_json::Value, link: Option<String>) -> Response {
    let mut r = axum::Json(body).into_response();
    if let Some(link) = link {
        r.headers_mut().insert(header::LINK, header_value(&link));
    }
    r
}

fn next_link(path: &str, items: &[String], n: Option<&str>) -> String {
    let last = items.last().map(String::as_str).unwrap_or_default();
    let n = n
        .map(str::to_owned)
        .unwrap_or_else(|| items.len().to_string());
    let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(k: header::HeaderName, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(k, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range(&headers(header::RANGE, "bytes=0-9")),
            Some(ByteRange::From {
                start: 0,
                end: Some(9)
            })
        );
        assert_eq!(
            parse_range(&headers(header::RANGE, "bytes=5-")),
            Some(ByteRange::From {
                start: 5,
                end: None
            })
        );
        assert_eq!(
            parse_range(&headers(header::RANGE, "bytes=-5")),
            Some(ByteRange::Suffix(5))
        );
        assert_eq!(parse_range(&headers(header::RANGE, "bytes=9-0")), None);
        assert_eq!(parse_range(&headers(header::RANGE, "bytes=0-1,3-4")), None);
        assert_eq!(
            parse_content_range(&HeaderValue::from_static("0-99")),
            Some((0, 99))
        );
        assert_eq!(
            parse_content_range(&HeaderValue::from_static("bytes 100-199/*")),
            Some((100, 199))
        );
        assert_eq!(parse_content_range(&HeaderValue::from_static("x")), None);
    }

    #[test]
    fn accept_lists_merge_headers() {
        let mut h = HeaderMap::new();
        h.append(header::ACCEPT, HeaderValue::from_static("application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json;q=0.9"));
        h.append(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.docker.distribution.manifest.v2+json"),
        );
        assert_eq!(accept_list(&h).len(), 3);
        assert_eq!(
            accept_list(&h)[1],
            "application/vnd.oci.image.manifest.v1+json"
        );
    }

    #[test]
    fn links() {
        assert_eq!(
            next_link("/v2/a/b/tags/list", &["v1".into(), "v2".into()], Some("2")),
            "</v2/a/b/tags/list?n=2&last=v2>; rel=\"next\""
        );
    }
}
