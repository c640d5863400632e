//! The repository list (namespace filter, search, star) and the new-repository form.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use maud::html;
use quayside_client as api;

use super::auth::require_user;
use crate::api::AppState;
use crate::service::content::repositories;
use crate::service::tenancy::{accounts, sessions};
use crate::ui::forms::{Form, query};
use crate::ui::layout::{csrf, frame};
use crate::ui::{UiResult, Viewer, page, see_other};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(list))
        .route("/new/repository", get(new_page).post(create))
        .route("/repository/{ns}/{repo}/star", post(star))
}

/// Pages read while searching (50 repositories each).
const SEARCH_PAGES: usize = 10;

/// The organizations the viewer belongs to (for the namespace filter and the create form).
pub async fn my_orgs(s: &AppState, viewer: &Viewer) -> Vec<api::UserOrganization> {
    if viewer.session.is_none() {
        return Vec::new();
    }
    accounts::current_user(&s.ctx, &viewer.caller)
        .await
        .map(|u| u.organizations)
        .unwrap_or_default()
}

async fn list(State(s): State<AppState>, viewer: Viewer, RawQuery(raw): RawQuery) -> UiResult {
    if viewer.session.is_none() && sessions::needs_first_user(&s.ctx).await? {
        return Ok(see_other("/setup"));
    }
    let q = query(raw.as_deref());
    let namespace = q
        .get("namespace")
        .map(|n| n.trim())
        .filter(|n| !n.is_empty());
    let search = q
        .get("q")
        .map(|n| n.trim().to_lowercase())
        .unwrap_or_default();
    let starred = q.get("starred").is_some_and(|v| v == "on") && viewer.session.is_some();
    let mut options = repositories::ListOptions {
        namespace: namespace.map(str::to_owned),
        public: namespace.is_none() && !starred,
        starred,
        last_modified: true,
        popularity: false,
        next_page: q.get("next_page").filter(|p| !p.is_empty()).cloned(),
    };
    let mut shown = Vec::new();
    let mut next_page;
    let mut pages = 0;
    loop {
        let listed = repositories::list(&s.ctx, &viewer.caller, &options).await?;
        pages += 1;
        next_page = listed.next_page;
        shown.extend(listed.repositories.into_iter().filter(|r| {
            search.is_empty()
                || r.name.to_lowercase().contains(&search)
                || r.namespace.to_lowercase().contains(&search)
                || r.description
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(&search)
        }));
        if search.is_empty() || pages >= SEARCH_PAGES || next_page.is_none() {
            break;
        }
        options.next_page = next_page.clone();
    }
    let orgs = my_orgs(&s, &viewer).await;
    let signed_in = viewer.user().map(|u| u.name.clone());
    let next_link = next_page.map(|token| {
        let mut qs = form_urlencoded::Serializer::new(String::new());
        if let Some(ns) = namespace {
            qs.append_pair("namespace", ns);
        }
        if !search.is_empty() {
            qs.append_pair("q", &search);
        }
        if starred {
            qs.append_pair("starred", "on");
        }
        qs.append_pair("next_page", &token);
        format!("/?{}", qs.finish())
    });
    let body = html! {
        form.row method="get" action="/" role="search" {
            div.field {
                label for="namespace" { "Namespace" }
                input #namespace type="text" name="namespace" value=[namespace] list="namespaces" placeholder="any";
                datalist #namespaces {
                    @if let Some(me) = &signed_in { option value=(me) {} }
                    @for o in &orgs { option value=(o.name) {} }
                }
            }
            div.field {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(search) placeholder="name or description";
            }
            @if signed_in.is_some() {
                div.field {
                    label.choice for="starred" {
                        input #starred type="checkbox" name="starred" checked[starred];
                        " Starred only"
                    }
                }
            }
            button type="submit" { "Filter" }
            @if signed_in.is_some() { a href="/new/repository" { "Create repository" } }
        }
        @if shown.is_empty() {
            p.muted #no-repositories { "No repositories to show." }
        } @else {
            div.table-wrap {
                table.responsive #repositories {
                    caption.muted { (shown.len()) " repositories" }
                    thead { tr { th scope="col" { "Repository" } th scope="col" { "Visibility" } th scope="col" { "Description" } th scope="col" { "Last modified" } th scope="col" { "Star" } } }
                    tbody {
                        @for r in &shown {
                            tr data-name=(format!("{}/{}", r.namespace, r.name)) {
                                td data-label="Repository" { a href=(repo_href(&r.namespace, &r.name)) { (r.namespace) "/" (r.name) } }
                                td data-label="Visibility" {
                                    @if r.is_public { span.badge.public { "public" } } @else { span.badge.private { "private" } }
                                }
                                td data-label="Description" { (first_line(r.description.as_deref().unwrap_or(""))) }
                                td data-label="Last modified" { (r.last_modified.map(crate::ui::layout::time_s).unwrap_or_default()) }
                                td data-label="Star" {
                                    @if signed_in.is_some() {
                                        form.inline method="post" action=(format!("{}/star", repo_href(&r.namespace, &r.name))) {
                                            (csrf(&viewer))
                                            input type="hidden" name="starred" value=(if r.is_starred { "false" } else { "true" });
                                            button.secondary type="submit" aria-pressed=(r.is_starred) aria-label=(format!("Star {}/{}", r.namespace, r.name)) {
                                                @if r.is_starred { "★ Starred" } @else { "☆ Star" }
                                            }
                                        }
                                    } @else if r.is_starred { "★" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(link) = next_link { nav.pager aria-label="Pages" { a href=(link) rel="next" { "Next page" } } }
    };
    Ok(page(
        &viewer,
        StatusCode::OK,
        frame(&viewer, "Repositories", body),
    ))
}

/// The first line of a description, for lists (cut at 140 characters).
fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.trim().trim_start_matches('#').trim();
    if line.chars().count() > 140 {
        let cut: String = line.chars().take(139).collect();
        format!("{cut}…")
    } else {
        line.to_owned()
    }
}

/// The UI path of a repository (its name's segments as they are: names are `[a-z0-9._/-]`).
pub fn repo_href(namespace: &str, name: &str) -> String {
    format!("/repository/{namespace}/{name}")
}

async fn new_page(State(s): State<AppState>, viewer: Viewer, RawQuery(raw): RawQuery) -> UiResult {
    let me = require_user(&viewer)?.name.clone();
    let q = query(raw.as_deref());
    let chosen = q.get("namespace").cloned().unwrap_or_else(|| me.clone());
    let orgs = my_orgs(&s, &viewer).await;
    let body = html! {
        form method="post" action="/new/repository" {
            (csrf(&viewer))
            div.field {
                label for="namespace" { "Namespace" }
                select #namespace name="namespace" {
                    option value=(me) selected[chosen == me] { (me) }
                    @for o in orgs.iter().filter(|o| o.can_create_repo) {
                        option value=(o.name) selected[chosen == o.name] { (o.name) }
                    }
                }
            }
            div.field {
                label for="repository" { "Repository name" }
                input #repository type="text" name="repository" required pattern="[a-z0-9][a-z0-9._\\/\\-]*" aria-describedby="repository-help";
                small #repository-help .muted { "Lower-case letters, digits, '.', '_', '-' and '/'." }
            }
            fieldset {
                legend { "Visibility" }
                label.choice { input type="radio" name="visibility" value="private" checked; " Private: only people you grant can pull" }
                br;
                label.choice { input type="radio" name="visibility" value="public"; " Public: anyone can pull" }
            }
            div.field {
                label for="description" { "Description (Markdown)" }
                textarea #description name="description" {}
            }
            button type="submit" #create-repository { "Create repository" }
        }
    };
    Ok(page(
        &viewer,
        StatusCode::OK,
        frame(&viewer, "Create repository", body),
    ))
}

async fn create(State(s): State<AppState>, viewer: Viewer, body: Bytes) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let request = api::CreateRepositoryRequest {
        namespace: form.opt("namespace").map(str::to_owned),
        repository: form
            .required("repository", "The repository name")?
            .to_owned(),
        visibility: form.opt("visibility").unwrap_or("private").to_owned(),
        description: form.text("description").to_owned(),
        repo_kind: None,
    };
    let created = repositories::create(&s.ctx, &viewer.caller, &request).await?;
    Ok(see_other(&repo_href(&created.namespace, &created.name)))
}

async fn star(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((ns, repo)): Path<(String, String)>,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let on = form.text("starred") != "false";
    repositories::star(&s.ctx, &viewer.caller, &ns, &repo, on).await?;
    let back = form
        .opt("back")
        .filter(|b| b.starts_with('/') && !b.starts_with("//"));
    Ok(see_other(back.unwrap_or("/")))
}
