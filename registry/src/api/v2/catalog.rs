//! `GET /v2/_catalog`: the repositories the caller may see, paginated with `n`/`last` and a
//! `Link` header.

use axum::response::Response;

use super::error::V2Error;
use super::{Req, json_page, next_link};
use crate::service::content::repositories;

pub(super) async fn list(req: &Req<'_>) -> Result<Response, V2Error> {
    let page = repositories::catalog(
        req.ctx,
        &req.principal,
        req.query.int("n").map_err(|e| req.fail(e))?,
        req.query.get("last"),
    )
    .await
    .map_err(|e| req.fail(e))?;
    let link = page
        .more
        .then(|| next_link("/v2/_catalog", &page.items, req.query.get("n")));
    Ok(json_page(
        serde_json::json!({ "repositories": page.items }),
        link,
    ))
}
