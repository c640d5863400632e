//! `GET /v2/<name>/referrers/<digest>`: the image index of manifests whose `subject` is the
//! digest, filtered by `artifactType` (then `OCI-Filters-Applied` says so).

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;

use super::Req;
use super::error::V2Error;
use crate::service::content::{manifests, proxy_cache};

pub(super) async fn list(req: &Req<'_>, digest: &str) -> Result<Response, V2Error> {
    // A proxy-cache organization passes the upstream's answer through when it has one.
    if let Some(body) = proxy_cache::upstream_referrers(
        req.ctx,
        &req.principal,
        req.name()?,
        digest,
        req.query.get("artifactType"),
    )
    .await
    .map_err(|e| req.fail(e))?
    {
        let mut response = Response::new(Body::from(body));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(crate::oci::manifest::OCI_INDEX),
        );
        return Ok(response);
    }
    let (body, filtered) = manifests::referrers(
        req.ctx,
        &req.principal,
        req.name()?,
        digest,
        req.query.get("artifactType"),
    )
    .await
    .map_err(|e| req.fail(e))?;
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
