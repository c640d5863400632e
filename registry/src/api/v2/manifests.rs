//! `GET|HEAD|PUT|DELETE /v2/<name>/manifests/<reference>`: content negotiation through
//! `Accept`, a bounded body on push, and the audit records of pulls, pushes and tag ends.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::V2Error;
use super::{Req, content_length, created, header_value};
use crate::service::RegistryError;
use crate::service::content::{manifests, proxy_cache};

pub(super) async fn get(req: &Req<'_>, reference: &str) -> Result<Response, V2Error> {
    let name = req.name()?;
    let accept = accept_list(req.headers);
    // A proxy-cache organization first brings its copy up to date with the upstream.
    proxy_cache::prepare_manifest(req.ctx, &req.principal, name, reference)
        .await
        .map_err(|e| req.fail(e))?;
    let served = manifests::get(req.ctx, &req.principal, name, reference, &accept)
        .await
        .map_err(|e| req.fail(e))?;
    let head = *req.method == Method::HEAD;
    if !head {
        let key = if reference.contains(':') {
            "manifest_digest"
        } else {
            "tag"
        };
        req.record("pull_repo", name, serde_json::json!({ key: reference }))
            .await;
    }
    let mut response = Response::new(if head {
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

pub(super) async fn put(req: &Req<'_>, reference: &str, body: Body) -> Result<Response, V2Error> {
    let name = req.name()?;
    let content_type = req
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let bytes = read_manifest_body(req.headers, body)
        .await
        .map_err(|e| req.fail(e))?;
    let pushed = manifests::put(
        req.ctx,
        &req.principal,
        name,
        reference,
        content_type,
        bytes,
    )
    .await
    .map_err(|e| req.fail(e))?;
    let mut metadata = serde_json::json!({ "manifest_digest": pushed.digest.as_str() });
    if !reference.contains(':') {
        metadata["tag"] = serde_json::json!(reference);
    }
    req.record("push_repo", name, metadata).await;
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

pub(super) async fn delete(req: &Req<'_>, reference: &str) -> Result<Response, V2Error> {
    let name = req.name()?;
    let ended = manifests::delete(req.ctx, &req.principal, name, reference)
        .await
        .map_err(|e| req.fail(e))?;
    for tag in ended {
        req.record(
            "delete_tag",
            name,
            serde_json::json!({ "tag": tag, "digest": reference }),
        )
        .await;
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Reads a manifest body, refusing more than the size limit. A moderately oversized body is
/// read and dropped so the client receives the 413 rather than a broken pipe; far beyond the
/// limit the connection is cut.
pub(super) async fn read_manifest_body(
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

pub(super) fn accept_list(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| crate::oci::manifest::bare_media_type(v).to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
