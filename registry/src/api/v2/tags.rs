//! `GET /v2/<name>/tags/list`: the repository's live tags, paginated with `n`/`last` and a
//! `Link` header.

use axum::response::Response;

use super::error::V2Error;
use super::{Req, json_page, next_link};
use crate::service::content::repositories;

pub(super) async fn list(req: &Req<'_>) -> Result<Response, V2Error> {
    let name = req.name()?;
    let page = repositories::list_tags(
        req.ctx,
        &req.principal,
        name,
        req.query.int("n").map_err(|e| req.fail(e))?,
        req.query.get("last"),
    )
    .await
    .map_err(|e| req.fail(e))?;
    let link = page.more.then(|| {
        next_link(
            &format!("/v2/{name}/tags/list"),
            &page.items,
            req.query.get("n"),
        )
    });
    Ok(json_page(
        serde_json::json!({ "name": name.as_str(), "tags": page.items }),
        link,
    ))
}
