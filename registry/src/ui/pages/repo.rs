//! A repository: its page (description, pull commands, tags), tag history with time-machine
//! restore, tag changes (add/move, expiration, delete), the manifest page (layers, labels,
//! referrers) and the settings page (description, visibility, permissions, delete).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use maud::{Markup, html};
use quayside_client as api;
use serde_json::Value;

use super::repos::repo_href;
use crate::api::AppState;
use crate::service::content::{labels, manifests, repositories, tags};
use crate::service::tenancy::permissions;
use crate::ui::forms::{Form, query};
use crate::ui::layout::{copy_block, csrf, date, frame, post_button, rendered, short_digest, size};
use crate::ui::{UiError, UiResult, Viewer, markdown, page, see_other};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/repository/{ns}/{repo}", get(show))
        .route("/repository/{ns}/{repo}/history", get(history))
        .route("/repository/{ns}/{repo}/tag", post(put_tag))
        .route(
            "/repository/{ns}/{repo}/tag/{tag}/expiration",
            post(set_expiration),
        )
        .route("/repository/{ns}/{repo}/tag/{tag}/delete", post(delete_tag))
        .route(
            "/repository/{ns}/{repo}/tag/{tag}/restore",
            post(restore_tag),
        )
        .route("/repository/{ns}/{repo}/manifest/{digest}", get(manifest))
        .route(
            "/repository/{ns}/{repo}/manifest/{digest}/labels",
            post(add_label),
        )
        .route(
            "/repository/{ns}/{repo}/manifest/{digest}/labels/{id}/delete",
            post(delete_label),
        )
        .route("/repository/{ns}/{repo}/description", post(set_description))
        .route("/repository/{ns}/{repo}/settings", get(settings))
        .route("/repository/{ns}/{repo}/visibility", post(set_visibility))
        .route("/repository/{ns}/{repo}/permissions", post(set_permission))
        .route("/repository/{ns}/{repo}/delete", post(delete_repo))
}

/// The most index manifests whose platforms one page reads.
const MAX_INDEX_DESCRIBED: usize = 30;

type RepoPath = Path<(String, String)>;
type TagPath = Path<(String, String, String)>;

/// The tabs of a repository's pages.
fn tabs(ns: &str, repo: &str, current: &str, r: &api::Repository) -> Markup {
    let base = repo_href(ns, repo);
    let mut items = vec![
        ("Tags", base.clone()),
        ("History", format!("{base}/history")),
    ];
    if r.can_admin {
        items.push(("Usage logs", format!("{base}/logs")));
        items.push(("Settings", format!("{base}/settings")));
    }
    html! {
        nav.tabs aria-label="Repository" {
            @for (label, href) in items {
                a href=(href) aria-current=[(label == current).then_some("page")] { (label) }
            }
        }
    }
}

fn visibility(r: &api::Repository) -> Markup {
    html! {
        @if r.is_public { span.badge.public { "public" } } @else { span.badge.private { "private" } }
    }
}

/// Every live tag of a repository (paged through the API's history call, 100 at a time).
async fn live_tags(
    s: &AppState,
    viewer: &Viewer,
    ns: &str,
    repo: &str,
) -> Result<Vec<api::Tag>, UiError> {
    let mut out = Vec::new();
    let mut page_no = 1;
    loop {
        let q = api::TagHistoryQuery {
            only_active_tags: true,
            page: Some(page_no),
            limit: Some(tags::MAX_PAGE),
            specific_tag: None,
        };
        let h = tags::history(&s.ctx, &viewer.caller, ns, repo, &q).await?;
        out.extend(h.tags);
        if !h.has_additional {
            break;
        }
        page_no += 1;
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `os/arch[/variant]` of each manifest an index lists.
fn platforms(manifest_data: &str) -> Vec<String> {
    let Ok(v) = serde_json::from_str::<Value>(manifest_data) else {
        return Vec::new();
    };
    v["manifests"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|m| {
                    let p = &m["platform"];
                    let os = p["os"].as_str()?;
                    let arch = p["architecture"].as_str()?;
                    Some(match p["variant"].as_str() {
                        Some(var) => format!("{os}/{arch}/{var}"),
                        None => format!("{os}/{arch}"),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn show(State(s): State<AppState>, viewer: Viewer, Path((ns, repo)): RepoPath) -> UiResult {
    let r = repositories::get(&s.ctx, &viewer.caller, &ns, &repo, false, false).await?;
    let tag_list = live_tags(&s, &viewer, &ns, &repo).await?;
    let mut index_platforms: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tag_list.iter().filter(|t| t.is_manifest_list) {
        if index_platforms.len() >= MAX_INDEX_DESCRIBED {
            break;
        }
        if index_platforms.contains_key(&t.manifest_digest) {
            continue;
        }
        if let Ok(m) =
            manifests::describe(&s.ctx, &viewer.caller, &ns, &repo, &t.manifest_digest).await
        {
            index_platforms.insert(t.manifest_digest.clone(), platforms(&m.manifest_data));
        }
    }
    let base = repo_href(&ns, &repo);
    let full = format!("{}/{}/{}", viewer.host, ns, repo);
    let first_tag = tag_list
        .iter()
        .find(|t| t.name == "latest")
        .or(tag_list.first());
    let pull = match first_tag {
        Some(t) => format!(
            "podman pull {full}:{}\npodman pull {full}@{}",
            t.name, t.manifest_digest
        ),
        None => format!("podman pull {full}:latest"),
    };
    let signed_in = viewer.session.is_some();
    let body = html! {
        p {
            (visibility(&r)) " "
            @if signed_in {
                form.inline method="post" action=(format!("{base}/star")) {
                    (csrf(&viewer))
                    input type="hidden" name="starred" value=(if r.is_starred { "false" } else { "true" });
                    input type="hidden" name="back" value=(base);
                    button.secondary type="submit" aria-pressed=(r.is_starred) {
                        @if r.is_starred { "★ Starred" } @else { "☆ Star" }
                    }
                }
            }
        }
        (tabs(&ns, &repo, "Tags", &r))
        section aria-labelledby="description-h" {
            h2 #description-h { "Description" }
            @match r.description.as_deref().filter(|d| !d.trim().is_empty()) {
                Some(d) => div.description #description { (rendered(markdown::render(d))) },
                None => p.muted { "No description." },
            }
            @if r.can_write {
                details {
                    summary { "Edit description" }
                    form method="post" action=(format!("{base}/description")) {
                        (csrf(&viewer))
                        div.field {
                            label for="description-text" { "Description (Markdown; HTML is shown as text)" }
                            textarea #description-text name="description" { (r.description.clone().unwrap_or_default()) }
                        }
                        button type="submit" { "Save description" }
                    }
                }
            }
        }
        section aria-labelledby="pull-h" {
            h2 #pull-h { "Pull" }
            (copy_block("pull-commands", "Pull commands", &pull))
        }
        section aria-labelledby="tags-h" {
            h2 #tags-h { "Tags" }
            @if r.can_write {
                details {
                    summary { "Add or move a tag" }
                    form.row method="post" action=(format!("{base}/tag")) {
                        (csrf(&viewer))
                        div.field { label for="new-tag" { "Tag" } input #new-tag type="text" name="tag" required; }
                        div.field {
                            label for="new-tag-digest" { "Manifest digest" }
                            input #new-tag-digest type="text" name="digest" required placeholder="sha256:…" value=[first_tag.map(|t| t.manifest_digest.as_str())];
                        }
                        button type="submit" { "Save tag" }
                    }
                }
            }
            @if tag_list.is_empty() {
                p.muted #no-tags { "No tags yet. Push one: " code { "podman push " (full) ":latest" } }
            } @else {
                div.field {
                    label for="tag-filter" { "Filter tags" }
                    input #tag-filter type="search" data-filter="tags" placeholder="tag name";
                    span #tags-count .muted aria-live="polite" { (tag_list.len()) (if tag_list.len() == 1 { " tag" } else { " tags" }) }
                }
                div.table-wrap {
                    table.responsive #tags {
                        thead { tr {
                            th scope="col" { "Tag" } th scope="col" { "Size" } th scope="col" { "Last modified" }
                            th scope="col" { "Expires" } th scope="col" { "Manifest" } th scope="col" { "Platforms" }
                            @if r.can_write { th scope="col" { "Actions" } }
                        } }
                        tbody {
                            @for t in &tag_list {
                                (tag_row(&viewer, &base, &r, t, index_platforms.get(&t.manifest_digest)))
                            }
                        }
                    }
                }
            }
        }
    };
    let title = format!("{ns}/{repo}");
    Ok(page(&viewer, StatusCode::OK, frame(&viewer, &title, body)))
}

fn tag_row(
    viewer: &Viewer,
    base: &str,
    r: &api::Repository,
    t: &api::Tag,
    platforms: Option<&Vec<String>>,
) -> Markup {
    let tag_base = format!("{base}/tag/{}", t.name);
    html! {
        tr data-name=(t.name) {
            th scope="row" data-label="Tag" { (t.name) }
            td data-label="Size" { (t.size.map(size).unwrap_or_else(|| "—".into())) }
            td data-label="Last modified" { (t.last_modified.as_deref().map(date).unwrap_or_default()) }
            td data-label="Expires" { (t.expiration.as_deref().map(date).unwrap_or_else(|| "never".into())) }
            td data-label="Manifest" { a href=(format!("{base}/manifest/{}", t.manifest_digest)) { (short_digest(&t.manifest_digest)) } }
            td data-label="Platforms" {
                @if t.is_manifest_list {
                    @match platforms { Some(p) if !p.is_empty() => (p.join(", ")), _ => "index" }
                } @else { span.muted { "—" } }
            }
            @if r.can_write {
                td data-label="Actions" {
                    form.inline method="post" action=(format!("{tag_base}/expiration")) {
                        (csrf(viewer))
                        label for=(format!("exp-{}", t.name)) { "Expires (UTC)" }
                        " "
                        input id=(format!("exp-{}", t.name)) type="datetime-local" name="expiration";
                        " "
                        button.secondary type="submit" { "Set" }
                    }
                    " "
                    (post_button(viewer, &format!("{tag_base}/delete"), "Delete", Some("Delete this tag?")))
                }
            }
        }
    }
}

async fn history(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo)): RepoPath,
    RawQuery(raw): RawQuery,
) -> UiResult {
    let r = repositories::get(&s.ctx, &viewer.caller, &ns, &repo, false, false).await?;
    let q = query(raw.as_deref());
    let page_no = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1i64)
        .max(1);
    let specific = q.get("tag").filter(|t| !t.is_empty()).cloned();
    let h = tags::history(
        &s.ctx,
        &viewer.caller,
        &ns,
        &repo,
        &api::TagHistoryQuery {
            only_active_tags: false,
            page: Some(page_no),
            limit: Some(tags::MAX_PAGE),
            specific_tag: specific.clone(),
        },
    )
    .await?;
    let base = repo_href(&ns, &repo);
    let body = html! {
        (tabs(&ns, &repo, "History", &r))
        p { "Every tag change, newest first. Restore puts a tag back on the manifest it pointed to (within the namespace's time-machine window)." }
        form.row method="get" action=(format!("{base}/history")) {
            div.field { label for="history-tag" { "Tag" } input #history-tag type="text" name="tag" value=[specific.as_deref()]; }
            button type="submit" { "Show" }
        }
        div.table-wrap {
            table.responsive #history {
                thead { tr { th scope="col" { "Tag" } th scope="col" { "Manifest" } th scope="col" { "From" } th scope="col" { "Until" } th scope="col" { "Action" } } }
                tbody {
                    @for t in &h.tags {
                        tr data-name=(t.name) {
                            th scope="row" data-label="Tag" { (t.name) @if t.reversion { " " span.badge { "restored" } } }
                            td data-label="Manifest" { a href=(format!("{base}/manifest/{}", t.manifest_digest)) { (short_digest(&t.manifest_digest)) } }
                            td data-label="From" { (t.start_ts.map(crate::ui::layout::time_s).unwrap_or_default()) }
                            td data-label="Until" { (t.end_ts.map(crate::ui::layout::time_s).unwrap_or_else(|| "now".into())) }
                            td data-label="Action" {
                                @if r.can_write && t.end_ts.is_some() {
                                    form.inline method="post" action=(format!("{base}/tag/{}/restore", t.name)) {
                                        (csrf(&viewer))
                                        input type="hidden" name="digest" value=(t.manifest_digest);
                                        button.secondary type="submit" { "Restore " (t.name) " to " (t.manifest_digest.chars().take(19).collect::<String>()) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if page_no > 1 { a href=(format!("{base}/history?page={}", page_no - 1)) rel="prev" { "Newer" } }
            @if h.has_additional { a href=(format!("{base}/history?page={}", page_no + 1)) rel="next" { "Older" } }
        }
    };
    let title = format!("{ns}/{repo}: tag history");
    Ok(page(&viewer, StatusCode::OK, frame(&viewer, &title, body)))
}

async fn put_tag(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo)): RepoPath,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let tag = form.required("tag", "The tag")?;
    let digest = form.required("digest", "The manifest digest")?;
    let request = api::ChangeTagRequest {
        manifest_digest: Some(digest.to_owned()),
        expiration: None,
    };
    tags::change(&s.ctx, &viewer.caller, &ns, &repo, tag, &request).await?;
    Ok(see_other(&repo_href(&ns, &repo)))
}

/// `YYYY-MM-DDTHH:MM[:SS]` (a `datetime-local` field, read as UTC) to epoch seconds.
fn parse_local(text: &str) -> Option<i64> {
    let formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"];
    formats.iter().find_map(|f| {
        chrono::NaiveDateTime::parse_from_str(text, f)
            .ok()
            .map(|t| t.and_utc().timestamp())
    })
}

async fn set_expiration(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo, tag)): TagPath,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let expiration = match form.opt("expiration") {
        None => None,
        Some(text) => Some(parse_local(text).ok_or_else(|| {
            UiError::bad_request("The expiration must be a date and time (YYYY-MM-DDTHH:MM).")
        })? as f64),
    };
    let request = api::ChangeTagRequest {
        manifest_digest: None,
        expiration: Some(expiration),
    };
    tags::change(&s.ctx, &viewer.caller, &ns, &repo, &tag, &request).await?;
    Ok(see_other(&repo_href(&ns, &repo)))
}

async fn delete_tag(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo, tag)): TagPath,
    body: Bytes,
) -> UiResult {
    Form::checked(&viewer, &body)?;
    tags::delete(&s.ctx, &viewer.caller, &ns, &repo, &tag).await?;
    Ok(see_other(&repo_href(&ns, &repo)))
}

async fn restore_tag(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo, tag)): TagPath,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    tags::restore(&s.ctx, &viewer.caller, &ns, &repo, &tag, form.opt("digest")).await?;
    Ok(see_other(&format!("{}/history", repo_href(&ns, &repo))))
}

async fn manifest(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo, digest)): TagPath,
) -> UiResult {
    let r = repositories::get(&s.ctx, &viewer.caller, &ns, &repo, false, false).await?;
    let m = manifests::describe(&s.ctx, &viewer.caller, &ns, &repo, &digest).await?;
    let label_list = labels::list(&s.ctx, &viewer.caller, &ns, &repo, &digest, None).await?;
    // Pull access was just decided by `describe`; referrers answer with the same decision.
    let referrers: Vec<Value> = match repositories::parse_name(&format!("{ns}/{repo}")) {
        Ok(name) => {
            match manifests::referrers(&s.ctx, &viewer.caller.principal, &name, &m.digest, None)
                .await
            {
                Ok((body, _)) => serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["manifests"].as_array().cloned())
                    .unwrap_or_default(),
                Err(_) => Vec::new(),
            }
        }
        Err(_) => Vec::new(),
    };
    let base = repo_href(&ns, &repo);
    let mbase = format!("{base}/manifest/{}", m.digest);
    let pretty = serde_json::from_str::<Value>(&m.manifest_data)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| m.manifest_data.clone());
    let body = html! {
        (tabs(&ns, &repo, "", &r))
        dl {
            dt { "Digest" } dd { code #manifest-digest { (m.digest) } }
            dt { "Kind" } dd { @if m.is_manifest_list { "Index (multi-platform)" } @else { "Image manifest" } }
            @if let Some(t) = &m.config_media_type { dt { "Config media type" } dd { code { (t) } } }
            dt { "Compressed size of layers" } dd { (size(m.layers_compressed_size)) }
        }
        (copy_block("pull-digest", "Pull by digest", &format!("podman pull {}/{}/{}@{}", viewer.host, ns, repo, m.digest)))
        @if m.is_manifest_list {
            h2 { "Platforms" }
            ul { @for p in platforms(&m.manifest_data) { li { (p) } } }
        }
        @if let Some(layers) = &m.layers {
            h2 { "Layers" }
            div.table-wrap {
                table.responsive #layers {
                    thead { tr { th scope="col" { "#" } th scope="col" { "Command" } th scope="col" { "Size" } th scope="col" { "Digest" } } }
                    tbody {
                        @for l in layers {
                            tr {
                                td data-label="#" { (l.index) }
                                td data-label="Command" { code { (l.command.as_ref().map(|c| c.join(" ")).unwrap_or_default()) } }
                                td data-label="Size" { (size(l.compressed_size)) }
                                td data-label="Digest" { (short_digest(&l.blob_digest)) }
                            }
                        }
                    }
                }
            }
        }
        h2 #labels-h { "Labels" }
        @if label_list.labels.is_empty() { p.muted #no-labels { "No labels." } } @else {
            div.table-wrap {
                table.responsive #labels aria-labelledby="labels-h" {
                    thead { tr { th scope="col" { "Key" } th scope="col" { "Value" } th scope="col" { "Source" } @if r.can_write { th scope="col" { "Remove" } } } }
                    tbody {
                        @for l in &label_list.labels {
                            tr data-name=(l.key) {
                                th scope="row" data-label="Key" { (l.key) }
                                td data-label="Value" { (l.value) }
                                td data-label="Source" { (l.source_type) }
                                @if r.can_write {
                                    td data-label="Remove" {
                                        (post_button(&viewer, &format!("{mbase}/labels/{}/delete", l.id), "Remove", None))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if r.can_write {
            form.row method="post" action=(format!("{mbase}/labels")) {
                (csrf(&viewer))
                div.field { label for="label-key" { "Label key" } input #label-key type="text" name="key" required; }
                div.field { label for="label-value" { "Label value" } input #label-value type="text" name="value" required; }
                button type="submit" #add-label { "Add label" }
            }
        }
        h2 { "Referrers" }
        @if referrers.is_empty() { p.muted { "No signatures, SBOMs or other artifacts refer to this manifest." } } @else {
            table.responsive #referrers {
                thead { tr { th scope="col" { "Artifact type" } th scope="col" { "Manifest" } th scope="col" { "Size" } } }
                tbody {
                    @for d in &referrers {
                        @let rd = d["digest"].as_str().unwrap_or("");
                        tr {
                            td data-label="Artifact type" { (d["artifactType"].as_str().unwrap_or("—")) }
                            td data-label="Manifest" { a href=(format!("{base}/manifest/{rd}")) { (short_digest(rd)) } }
                            td data-label="Size" { (size(d["size"].as_i64().unwrap_or(0))) }
                        }
                    }
                }
            }
        }
        details {
            summary { "Manifest JSON" }
            pre #manifest-json tabindex="0" { (pretty) }
        }
    };
    let title = format!(
        "{ns}/{repo}@{}",
        m.digest.chars().take(19).collect::<String>()
    );
    Ok(page(&viewer, StatusCode::OK, frame(&viewer, &title, body)))
}

async fn add_label(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo, digest)): TagPath,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let new = labels::NewLabel {
        key: form.required("key", "The label key")?,
        value: form.text("value"),
        media_type: None,
    };
    labels::add(&s.ctx, &viewer.caller, &ns, &repo, &digest, new).await?;
    Ok(see_other(&format!(
        "{}/manifest/{digest}",
        repo_href(&ns, &repo)
    )))
}

async fn delete_label(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo, digest, id)): Path<(String, String, String, String)>,
    body: Bytes,
) -> UiResult {
    Form::checked(&viewer, &body)?;
    labels::delete(&s.ctx, &viewer.caller, &ns, &repo, &digest, &id).await?;
    Ok(see_other(&format!(
        "{}/manifest/{digest}",
        repo_href(&ns, &repo)
    )))
}

async fn set_description(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo)): RepoPath,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    repositories::update(&s.ctx, &viewer.caller, &ns, &repo, form.text("description")).await?;
    Ok(see_other(&repo_href(&ns, &repo)))
}

async fn settings(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo)): RepoPath,
) -> UiResult {
    let r = repositories::get(&s.ctx, &viewer.caller, &ns, &repo, false, false).await?;
    if !r.can_admin {
        return Err(if viewer.session.is_none() {
            UiError::new(StatusCode::UNAUTHORIZED, "Sign in to see this page.")
        } else {
            UiError::new(
                StatusCode::FORBIDDEN,
                "You do not have access to this page.",
            )
        });
    }
    let users = permissions::list_users(&s.ctx, &viewer.caller, &ns, &repo).await?;
    let teams = if r.is_organization {
        Some(permissions::list_teams(&s.ctx, &viewer.caller, &ns, &repo).await?)
    } else {
        None
    };
    let base = repo_href(&ns, &repo);
    let roles = ["read", "write", "admin"];
    let body = html! {
        (tabs(&ns, &repo, "Settings", &r))
        h2 { "Visibility" }
        form.row method="post" action=(format!("{base}/visibility")) {
            (csrf(&viewer))
            fieldset {
                legend { "This repository is " (if r.is_public { "public" } else { "private" }) }
                label.choice { input type="radio" name="visibility" value="public" checked[r.is_public]; " Public" }
                " "
                label.choice { input type="radio" name="visibility" value="private" checked[!r.is_public]; " Private" }
            }
            button type="submit" { "Change visibility" }
        }
        h2 #perms-h { "Permissions" }
        table.responsive #permissions aria-labelledby="perms-h" {
            thead { tr { th scope="col" { "Account" } th scope="col" { "Kind" } th scope="col" { "Role" } th scope="col" { "Remove" } } }
            tbody {
                @for (name, p) in &users.permissions {
                    tr {
                        th scope="row" data-label="Account" { (name) }
                        td data-label="Kind" { (if p.is_robot { "robot" } else { "user" }) }
                        td data-label="Role" { (p.role) }
                        td data-label="Remove" {
                            form.inline method="post" action=(format!("{base}/permissions")) {
                                (csrf(&viewer))
                                input type="hidden" name="kind" value="user";
                                input type="hidden" name="name" value=(name);
                                input type="hidden" name="role" value="none";
                                button.secondary type="submit" { "Remove" }
                            }
                        }
                    }
                }
                @if let Some(t) = &teams {
                    @for (name, p) in &t.permissions {
                        tr {
                            th scope="row" data-label="Account" { (name) }
                            td data-label="Kind" { "team" }
                            td data-label="Role" { (p.role) }
                            td data-label="Remove" {
                                form.inline method="post" action=(format!("{base}/permissions")) {
                                    (csrf(&viewer))
                                    input type="hidden" name="kind" value="team";
                                    input type="hidden" name="name" value=(name);
                                    input type="hidden" name="role" value="none";
                                    button.secondary type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        form.row method="post" action=(format!("{base}/permissions")) {
            (csrf(&viewer))
            div.field {
                label for="perm-kind" { "Kind" }
                select #perm-kind name="kind" {
                    option value="user" { "User or robot" }
                    @if teams.is_some() { option value="team" { "Team" } }
                }
            }
            div.field { label for="perm-name" { "Name" } input #perm-name type="text" name="name" required placeholder="user, owner+robot or team"; }
            div.field {
                label for="perm-role" { "Role" }
                select #perm-role name="role" { @for role in roles { option value=(role) { (role) } } }
            }
            button type="submit" { "Grant" }
        }
        h2 { "Delete repository" }
        p { "Deleting removes every tag and manifest of " strong { (ns) "/" (repo) } "." }
        (post_button(&viewer, &format!("{base}/delete"), "Delete repository", Some("Delete this repository and all its tags?")))
    };
    let title = format!("{ns}/{repo}: settings");
    Ok(page(&viewer, StatusCode::OK, frame(&viewer, &title, body)))
}

async fn set_visibility(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo)): RepoPath,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let v = form.required("visibility", "The visibility")?;
    repositories::change_visibility(&s.ctx, &viewer.caller, &ns, &repo, v).await?;
    Ok(see_other(&format!("{}/settings", repo_href(&ns, &repo))))
}

async fn set_permission(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo)): RepoPath,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let name = form.required("name", "The name")?;
    let role = form.required("role", "The role")?;
    let c = &viewer.caller;
    match (form.text("kind"), role) {
        ("team", "none") => permissions::delete_team(&s.ctx, c, &ns, &repo, name).await?,
        ("team", role) => {
            permissions::set_team(&s.ctx, c, &ns, &repo, name, role).await?;
        }
        (_, "none") => permissions::delete_user(&s.ctx, c, &ns, &repo, name).await?,
        (_, role) => {
            permissions::set_user(&s.ctx, c, &ns, &repo, name, role).await?;
        }
    }
    Ok(see_other(&format!("{}/settings", repo_href(&ns, &repo))))
}

async fn delete_repo(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo)): RepoPath,
    body: Bytes,
) -> UiResult {
    Form::checked(&viewer, &body)?;
    repositories::delete(&s.ctx, &viewer.caller, &ns, &repo).await?;
    Ok(see_other("/"))
}
