//! `GET|HEAD|DELETE /v2/<name>/blobs/<digest>`: blob bytes with single `Range` requests
//! (206 with `Content-Range`, 416 when unsatisfiable).

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::V2Error;
use super::{Req, header_value};
use crate::service::RegistryError;
use crate::service::content::blobs::{self, ByteRange};

pub(super) async fn get(req: &Req<'_>, digest: &str) -> Result<Response, V2Error> {
    let name = req.name()?;
    if *req.method == Method::HEAD {
        let (digest, size) = blobs::stat(req.ctx, &req.principal, name, digest)
            .await
            .map_err(|e| req.fail(e))?;
        let mut response = Response::new(Body::empty());
        blob_headers(response.headers_mut(), digest.as_str(), size);
        return Ok(response);
    }
    let range = parse_range(req.headers);
    let blob = blobs::open(req.ctx, &req.principal, name, digest, range)
        .await
        .map_err(|e| match e {
            RegistryError::RangeInvalid { size } => V2Error::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "BLOB_UNKNOWN",
                format!("requested range not satisfiable (blob is {size} bytes)"),
            )
            .with_detail(serde_json::json!({ "size": size })),
            other => req.fail(other),
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

pub(super) async fn delete(req: &Req<'_>, digest: &str) -> Result<Response, V2Error> {
    blobs::delete(req.ctx, &req.principal, req.name()?, digest)
        .await
        .map_err(|e| req.fail(e))?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `Range: bytes=a-b`, `bytes=a-`, `bytes=-n` (a single range).
pub(super) fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
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
pub(super) fn blob_headers(h: &mut HeaderMap, digest: &str, len: u64) {
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
    }
}
