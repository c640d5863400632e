//! `GET|HEAD|DELETE /v2/<name>/blobs/<digest>`: blob bytes with single `Range` requests
//! (206 with `Content-Range`; 416 with `Content-Range: bytes */<size>` when unsatisfiable).
//!
//! Ranges follow RFC 9110 §14: positions are arbitrary-precision decimals, so a position past
//! `u64::MAX` saturates instead of failing; an end past the blob clamps to its last byte; a
//! well-formed range whose end precedes its start, or that starts past the end, is unsatisfiable
//! (416); a header this server does not implement (another unit, several ranges, not numbers)
//! is ignored and the whole blob served, as §14.2 allows. No arithmetic on positions can
//! overflow.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::V2Error;
use super::{Req, header_value};
use crate::service::RegistryError;
use crate::service::content::blobs::{self, ByteRange};
use crate::service::content::proxy_cache::{self, BlobSource};

pub(super) async fn get(req: &Req<'_>, digest: &str) -> Result<Response, V2Error> {
    let name = req.name()?;
    let head = *req.method == Method::HEAD;
    let ranged = req.headers.contains_key(header::RANGE);
    // A proxy-cache organization fetches what the repository does not hold yet.
    match proxy_cache::prepare_blob(&req.state.ctx, &req.principal, name, digest, head, ranged)
        .await
        .map_err(|e| req.fail(e))?
    {
        None | Some(BlobSource::Local) => {}
        Some(BlobSource::Upstream { digest, size }) => {
            let mut response = Response::new(Body::empty());
            blob_headers(response.headers_mut(), digest.as_str(), size);
            return Ok(response);
        }
        Some(BlobSource::Streaming {
            digest,
            size,
            stream,
        }) => {
            let mut response = Response::new(Body::from_stream(stream));
            match size {
                Some(size) => blob_headers(response.headers_mut(), digest.as_str(), size),
                None => {
                    blob_headers(response.headers_mut(), digest.as_str(), 0);
                    response.headers_mut().remove(header::CONTENT_LENGTH);
                }
            }
            return Ok(response);
        }
    }
    if head {
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
            .with_detail(serde_json::json!({ "size": size }))
            .with_content_range(format!("bytes */{size}")),
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

/// `Range: bytes=a-b`, `bytes=a-`, `bytes=-n` (a single range); `None` when the header is
/// absent or not one this server implements (then the whole blob is served). A range with
/// `b < a` is returned as it is: resolving it against the blob finds it unsatisfiable.
pub fn parse_range(headers: &HeaderMap) -> Option<ByteRange> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    match (a.trim(), b.trim()) {
        ("", n) => position(n).map(ByteRange::Suffix),
        (a, "") => position(a).map(|start| ByteRange::From { start, end: None }),
        (a, b) => Some(ByteRange::From {
            start: position(a)?,
            end: Some(position(b)?),
        }),
    }
}

/// A byte position: one or more ASCII digits, saturating at `u64::MAX` (no blob is that large,
/// so a saturated end still means "to the last byte" and a saturated start is past the end).
fn position(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
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

    fn range(v: &str) -> Option<ByteRange> {
        parse_range(&headers(header::RANGE, v))
    }

    #[test]
    fn ranges() {
        assert_eq!(
            range("bytes=0-9"),
            Some(ByteRange::From {
                start: 0,
                end: Some(9)
            })
        );
        assert_eq!(
            range("bytes=5-"),
            Some(ByteRange::From {
                start: 5,
                end: None
            })
        );
        assert_eq!(range("bytes=-5"), Some(ByteRange::Suffix(5)));
        // Kept, so that resolving finds it unsatisfiable (416), not ignored (200).
        assert_eq!(
            range("bytes=9-0"),
            Some(ByteRange::From {
                start: 9,
                end: Some(0)
            })
        );
        // Not implemented: ignored.
        assert_eq!(range("bytes=0-1,3-4"), None);
        assert_eq!(range("items=0-1"), None);
        assert_eq!(range("bytes=a-1"), None);
        assert_eq!(range("bytes=+1-2"), None);
        assert_eq!(range("bytes=-"), None);
    }

    #[test]
    fn huge_positions_saturate_and_resolve_without_overflow() {
        let max = u64::MAX.to_string();
        let past_max = "99999999999999999999999999";
        for end in [max.as_str(), past_max] {
            let r = range(&format!("bytes=0-{end}")).unwrap();
            assert_eq!(
                r,
                ByteRange::From {
                    start: 0,
                    end: Some(u64::MAX)
                }
            );
            // Clamped to the last byte (RFC 9110 §14.1.2).
            assert_eq!(r.resolve(100), Some(0..100));
        }
        let r = range(&format!("bytes={max}-")).unwrap();
        assert_eq!(r.resolve(100), None);
        let r = range(&format!("bytes=-{past_max}")).unwrap();
        assert_eq!(r.resolve(100), Some(0..100));
        assert_eq!(range("bytes=500-0").unwrap().resolve(1000), None);
        assert_eq!(range("bytes=500-0").unwrap().resolve(100), None);
        assert_eq!(range("bytes=-0").unwrap().resolve(100), None);
    }
}
