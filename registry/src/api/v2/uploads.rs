//! Blob uploads: `POST /v2/<name>/blobs/uploads/` (a new session, a monolithic upload with
//! `?digest=`, or a cross-repository `?mount=&from=`) and `GET|PATCH|PUT|DELETE` on
//! `/v2/<name>/blobs/uploads/<uuid>` (status, a chunk with `Content-Range`, completion, cancel).
//!
//! A chunk's `Content-Range` is checked before any arithmetic: positions are decimal digits and
//! at most [`MAX_OFFSET`] (offsets are stored as signed 64-bit integers), so the service's
//! `end - start + 1` cannot overflow; a range beyond that answers 416 like any other range that
//! does not continue the upload.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::V2Error;
use super::{Req, body_stream, content_length, created, header_value};
use crate::oci::RepoName;
use crate::service::RegistryError;
use crate::service::content::uploads::{self, MountOutcome};

pub(super) async fn start(req: &Req<'_>, body: Body) -> Result<Response, V2Error> {
    let name = req.name()?;
    let (ctx, principal) = (req.ctx, &req.principal);
    if let Some(mount) = req.query.get("mount") {
        return match uploads::mount(ctx, principal, name, mount, req.query.get("from"))
            .await
            .map_err(|e| req.fail(e))?
        {
            MountOutcome::Mounted(c) => Ok(blob_created(name, c.digest.as_str())),
            MountOutcome::Started(s) => {
                Ok(upload_accepted(name, &s.uuid, s.size, StatusCode::ACCEPTED))
            }
        };
    }
    if let Some(digest) = req.query.get("digest") {
        let c = uploads::monolithic(ctx, principal, name, digest, body_stream(body))
            .await
            .map_err(|e| req.fail(e))?;
        return Ok(blob_created(name, c.digest.as_str()));
    }
    let s = uploads::start(ctx, principal, name)
        .await
        .map_err(|e| req.fail(e))?;
    Ok(upload_accepted(name, &s.uuid, s.size, StatusCode::ACCEPTED))
}

pub(super) async fn status(req: &Req<'_>, uuid: &str) -> Result<Response, V2Error> {
    let name = req.name()?;
    let s = uploads::status(req.ctx, &req.principal, name, uuid)
        .await
        .map_err(|e| req.fail(e))?;
    Ok(upload_accepted(
        name,
        &s.uuid,
        s.size,
        StatusCode::NO_CONTENT,
    ))
}

pub(super) async fn append(req: &Req<'_>, uuid: &str, body: Body) -> Result<Response, V2Error> {
    let name = req.name()?;
    let range = match req.headers.get(header::CONTENT_RANGE) {
        None => None,
        Some(v) => match parse_content_range(v) {
            Ok(range) => Some(range),
            Err(ChunkRangeError::Malformed) => {
                return Err(req.fail(RegistryError::UploadInvalid(
                    "Content-Range must be <start>-<end>".into(),
                )));
            }
            Err(ChunkRangeError::TooLarge) => {
                let s = uploads::status(req.ctx, &req.principal, name, uuid)
                    .await
                    .map_err(|e| req.fail(e))?;
                return Err(req.fail(RegistryError::RangeInvalid { size: s.size }));
            }
        },
    };
    let s = uploads::append(
        req.ctx,
        &req.principal,
        name,
        uuid,
        range,
        body_stream(body),
    )
    .await
    .map_err(|e| req.fail(e))?;
    Ok(upload_accepted(name, &s.uuid, s.size, StatusCode::ACCEPTED))
}

pub(super) async fn complete(req: &Req<'_>, uuid: &str, body: Body) -> Result<Response, V2Error> {
    let name = req.name()?;
    let has_body = content_length(req.headers).is_some_and(|l| l > 0)
        || req.headers.contains_key(header::TRANSFER_ENCODING);
    let body = has_body.then(|| body_stream(body));
    let c = uploads::complete(
        req.ctx,
        &req.principal,
        name,
        uuid,
        req.query.get("digest"),
        body,
    )
    .await
    .map_err(|e| req.fail(e))?;
    Ok(blob_created(name, c.digest.as_str()))
}

pub(super) async fn cancel(req: &Req<'_>, uuid: &str) -> Result<Response, V2Error> {
    uploads::cancel(req.ctx, &req.principal, req.name()?, uuid)
        .await
        .map_err(|e| req.fail(e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The largest byte position an upload may reach.
pub const MAX_OFFSET: u64 = i64::MAX as u64;

#[derive(Debug, PartialEq, Eq)]
pub enum ChunkRangeError {
    /// Not `<start>-<end>` in decimal digits.
    Malformed,
    /// A position past [`MAX_OFFSET`].
    TooLarge,
}

/// `Content-Range: <start>-<end>` (OCI) or `bytes <start>-<end>/<total>`, inclusive. An end
/// before the start is returned as it is (the service answers 416 for it).
pub fn parse_content_range(v: &HeaderValue) -> Result<(u64, u64), ChunkRangeError> {
    let s = v.to_str().map_err(|_| ChunkRangeError::Malformed)?.trim();
    let s = s.strip_prefix("bytes ").unwrap_or(s);
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or(ChunkRangeError::Malformed)?;
    Ok((chunk_position(a.trim())?, chunk_position(b.trim())?))
}

fn chunk_position(s: &str) -> Result<u64, ChunkRangeError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ChunkRangeError::Malformed);
    }
    match s.parse::<u64>() {
        Ok(n) if n <= MAX_OFFSET => Ok(n),
        _ => Err(ChunkRangeError::TooLarge),
    }
}
pub(super) fn blob_created(name: &RepoName, digest: &str) -> Response {
    let mut r = created(&format!("/v2/{name}/blobs/{digest}"));
    r.headers_mut()
        .insert("Docker-Content-Digest", header_value(digest));
    r
}
pub(super) fn upload_accepted(
    name: &RepoName,
    uuid: &str,
    size: u64,
    status: StatusCode,
) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        let parse = |v: &'static str| parse_content_range(&HeaderValue::from_static(v));
        assert_eq!(parse("0-99"), Ok((0, 99)));
        assert_eq!(parse("bytes 100-199/*"), Ok((100, 199)));
        assert_eq!(parse("bytes 100-199/200"), Ok((100, 199)));
        assert_eq!(parse("9-0"), Ok((9, 0)));
        assert_eq!(parse("x"), Err(ChunkRangeError::Malformed));
        assert_eq!(parse("-5"), Err(ChunkRangeError::Malformed));
        assert_eq!(parse("+1-5"), Err(ChunkRangeError::Malformed));
        assert_eq!(
            parse("0-18446744073709551615"),
            Err(ChunkRangeError::TooLarge)
        );
        assert_eq!(
            parse("0-99999999999999999999999"),
            Err(ChunkRangeError::TooLarge)
        );
        assert_eq!(
            parse("9223372036854775807-9223372036854775807"),
            Ok((MAX_OFFSET, MAX_OFFSET))
        );
        assert_eq!(
            parse("9223372036854775808-9223372036854775808"),
            Err(ChunkRangeError::TooLarge)
        );
        // Within the bounds, the service's `end - start + 1` cannot overflow.
        let (start, end) = parse("0-9223372036854775807").unwrap();
        assert!(
            end.checked_sub(start)
                .and_then(|d| d.checked_add(1))
                .is_some()
        );
    }
}
