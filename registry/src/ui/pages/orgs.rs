//! Organizations: create, the organization page (teams, robots), a team's members and role,
//! and a robot's credentials (Docker login command, `.dockerconfigjson`, Kubernetes Secret).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use base64::Engine;
use maud::html;

use super::auth::require_user;
use crate::api::AppState;
use crate::service::tenancy::robots::Owner;
use crate::service::tenancy::{orgs, robots, teams};
use crate::ui::forms::Form;
use crate::ui::layout::{copy_block, csrf, frame, post_button};
use crate::ui::{UiResult, Viewer, page, see_other};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/new/organization", get(new_page).post(create))
        .route("/organization/{org}", get(show))
        .route("/organization/{org}/teams", post(create_team))
        .route("/organization/{org}/teams/{team}", get(team))
        .route(
            "/organization/{org}/teams/{team}/members",
            post(team_member),
        )
        .route("/organization/{org}/robots", post(create_robot))
        .route("/organization/{org}/robots/{robot}", get(robot))
        .route(
            "/organization/{org}/robots/{robot}/regenerate",
            post(regenerate_robot),
        )
}

const ROLES: [&str; 3] = ["member", "creator", "admin"];

fn org_tabs(org: &str, current: &str) -> maud::Markup {
    let items = [
        ("Overview", format!("/organization/{org}")),
        ("Repositories", format!("/?namespace={org}")),
        ("Usage logs", format!("/organization/{org}/logs")),
    ];
    html! {
        nav.tabs aria-label="Organization" {
            @for (label, href) in items {
                a href=(href) aria-current=[(label == current).then_some("page")] { (label) }
            }
        }
    }
}

async fn new_page(viewer: Viewer) -> UiResult {
    require_user(&viewer)?;
    let body = html! {
        form method="post" action="/new/organization" {
            (csrf(&viewer))
            div.field {
                label for="org-name" { "Organization name" }
                input #org-name type="text" name="name" required pattern="[a-z0-9][a-z0-9_\\-]*";
            }
            div.field {
                label for="org-email" { "Email (optional)" }
                input #org-email type="email" name="email";
            }
            button type="submit" #create-organization { "Create organization" }
        }
    };
    Ok(page(
        &viewer,
        StatusCode::OK,
        frame(&viewer, "Create organization", body),
    ))
}

async fn create(State(s): State<AppState>, viewer: Viewer, body: Bytes) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let name = form.required("name", "The organization name")?;
    orgs::create(&s.ctx, &viewer.caller, name, form.opt("email")).await?;
    Ok(see_other(&format!("/organization/{name}")))
}

async fn show(State(s): State<AppState>, viewer: Viewer, Path(org): Path<String>) -> UiResult {
    let o = orgs::get(&s.ctx, &viewer.caller, &org).await?;
    let robot_list = if o.is_admin {
        Some(robots::list(&s.ctx, &viewer.caller, Owner::Org(&org), false, false, None).await?)
    } else {
        None
    };
    let team_names: Vec<String> = o.ordered_teams.clone().unwrap_or_else(|| {
        o.teams
            .as_ref()
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    });
    let body = html! {
        (org_tabs(&org, "Overview"))
        h2 #teams-h { "Teams" }
        @if team_names.is_empty() { p.muted { "No teams you can see." } } @else {
            table.responsive #teams aria-labelledby="teams-h" {
                thead { tr { th scope="col" { "Team" } th scope="col" { "Role" } th scope="col" { "Members" } th scope="col" { "Repositories" } } }
                tbody {
                    @for name in &team_names {
                        @if let Some(t) = o.teams.as_ref().and_then(|m| m.get(name)) {
                            tr data-name=(name) {
                                th scope="row" data-label="Team" {
                                    @if t.can_view { a href=(format!("/organization/{org}/teams/{name}")) { (name) } } @else { (name) }
                                }
                                td data-label="Role" { (t.role) }
                                td data-label="Members" { (t.member_count) }
                                td data-label="Repositories" { (t.repo_count) }
                            }
                        }
                    }
                }
            }
        }
        @if o.is_admin {
            form.row method="post" action=(format!("/organization/{org}/teams")) {
                (csrf(&viewer))
                div.field { label for="team-name" { "New team" } input #team-name type="text" name="name" required; }
                div.field {
                    label for="team-role" { "Role" }
                    select #team-role name="role" { @for r in ROLES { option value=(r) { (r) } } }
                }
                div.field { label for="team-description" { "Description" } input #team-description type="text" name="description"; }
                button type="submit" #create-team { "Create team" }
            }
        }
        @if let Some(list) = &robot_list {
            h2 #robots-h { "Robot accounts" }
            @if list.robots.is_empty() { p.muted { "No robot accounts." } } @else {
                table.responsive #robots aria-labelledby="robots-h" {
                    thead { tr { th scope="col" { "Robot" } th scope="col" { "Description" } th scope="col" { "Created" } } }
                    tbody {
                        @for r in &list.robots {
                            @let short = r.name.split_once('+').map_or(r.name.as_str(), |(_, s)| s);
                            tr data-name=(r.name) {
                                th scope="row" data-label="Robot" { a href=(format!("/organization/{org}/robots/{short}")) { (r.name) } }
                                td data-label="Description" { (r.description) }
                                td data-label="Created" { (r.created.as_deref().map(crate::ui::layout::date).unwrap_or_default()) }
                            }
                        }
                    }
                }
            }
            form.row method="post" action=(format!("/organization/{org}/robots")) {
                (csrf(&viewer))
                div.field { label for="robot-name" { "New robot (short name)" } input #robot-name type="text" name="name" required pattern="[a-z][a-z0-9_]*"; }
                div.field { label for="robot-description" { "Description" } input #robot-description type="text" name="description"; }
                button type="submit" #create-robot { "Create robot" }
            }
        }
    };
    let title = format!("Organization {org}");
    Ok(page(&viewer, StatusCode::OK, frame(&viewer, &title, body)))
}

async fn create_team(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(org): Path<String>,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let name = form.required("name", "The team name")?;
    let role = form.opt("role").unwrap_or("member");
    teams::put(
        &s.ctx,
        &viewer.caller,
        &org,
        name,
        role,
        form.opt("description"),
    )
    .await?;
    Ok(see_other(&format!("/organization/{org}/teams/{name}")))
}

async fn team(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((org, team)): Path<(String, String)>,
) -> UiResult {
    let o = orgs::get(&s.ctx, &viewer.caller, &org).await?;
    let members = teams::members(&s.ctx, &viewer.caller, &org, &team, true).await?;
    let info = o.teams.as_ref().and_then(|t| t.get(&team));
    let action = format!("/organization/{org}/teams/{team}/members");
    let body = html! {
        (org_tabs(&org, ""))
        @if let Some(t) = info {
            p { "Role: " strong #team-role-current { (t.role) } @if !t.description.is_empty() { " · " (t.description) } }
        }
        @if members.can_edit {
            form.row method="post" action=(format!("/organization/{org}/teams")) {
                (csrf(&viewer))
                input type="hidden" name="name" value=(team);
                div.field {
                    label for="team-role" { "Change role" }
                    select #team-role name="role" {
                        @for r in ROLES { option value=(r) selected[info.is_some_and(|t| t.role == r)] { (r) } }
                    }
                }
                input type="hidden" name="description" value=(info.map(|t| t.description.as_str()).unwrap_or(""));
                button.secondary type="submit" { "Save role" }
            }
        }
        h2 #members-h { "Members" }
        @if members.members.is_empty() { p.muted #no-members { "No members." } } @else {
            table.responsive #members aria-labelledby="members-h" {
                thead { tr { th scope="col" { "Member" } th scope="col" { "Kind" } @if members.can_edit { th scope="col" { "Remove" } } } }
                tbody {
                    @for m in &members.members {
                        @let name = m.name.clone().or_else(|| m.email.clone()).unwrap_or_default();
                        tr data-name=(name) {
                            th scope="row" data-label="Member" { (name) @if m.invited { " " span.badge { "invited" } } }
                            td data-label="Kind" { (if m.is_robot == Some(true) { "robot" } else { m.kind.as_str() }) }
                            @if members.can_edit {
                                td data-label="Remove" {
                                    form.inline method="post" action=(action) {
                                        (csrf(&viewer))
                                        input type="hidden" name="member" value=(name);
                                        input type="hidden" name="remove" value="1";
                                        button.secondary type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if members.can_edit {
            form.row method="post" action=(action) {
                (csrf(&viewer))
                div.field { label for="member-name" { "Add member (user or robot)" } input #member-name type="text" name="member" required; }
                button type="submit" #add-member { "Add member" }
            }
        }
    };
    let title = format!("Team {org}/{team}");
    Ok(page(&viewer, StatusCode::OK, frame(&viewer, &title, body)))
}

async fn team_member(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((org, team)): Path<(String, String)>,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let member = form.required("member", "The member")?;
    if form.checked_box("remove") {
        teams::remove_member(&s.ctx, &viewer.caller, &org, &team, member).await?;
    } else {
        teams::add_member(&s.ctx, &viewer.caller, &org, &team, member).await?;
    }
    Ok(see_other(&format!("/organization/{org}/teams/{team}")))
}

async fn create_robot(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(org): Path<String>,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let name = form.required("name", "The robot name")?;
    robots::create(
        &s.ctx,
        &viewer.caller,
        Owner::Org(&org),
        name,
        form.opt("description"),
        None,
    )
    .await?;
    Ok(see_other(&format!("/organization/{org}/robots/{name}")))
}

/// The `.dockerconfigjson` of a login.
fn docker_config(host: &str, user: &str, token: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{token}"));
    let v = serde_json::json!({ "auths": { host: { "auth": auth, "email": "" } } });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

async fn robot(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((org, short)): Path<(String, String)>,
) -> UiResult {
    let r = robots::get(&s.ctx, &viewer.caller, Owner::Org(&org), &short).await?;
    let token = r.token.clone().unwrap_or_default();
    let host = &viewer.host;
    let login = format!("podman login -u='{}' -p='{}' {host}", r.name, token);
    let config = docker_config(host, &r.name, &token);
    let secret_name = format!("{}-pull-secret", r.name.replace(['+', '_'], "-"));
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {secret_name}\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n",
        base64::engine::general_purpose::STANDARD.encode(config.as_bytes())
    );
    let body = html! {
        (org_tabs(&org, ""))
        @if !r.description.is_empty() { p { (r.description) } }
        p.notice { "The token is a password: whoever holds it can act as this robot. Grant the robot permissions on repositories from their settings, or add it to a team." }
        (copy_block("robot-login", "Docker / Podman login", &login))
        (copy_block("robot-dockerconfig", ".dockerconfigjson", &config))
        (copy_block("robot-secret", "Kubernetes Secret", &secret))
        (post_button(&viewer, &format!("/organization/{org}/robots/{short}/regenerate"), "Regenerate token", Some("Regenerate this robot's token? The old one stops working.")))
    };
    let title = format!("Robot {}", r.name);
    Ok(page(&viewer, StatusCode::OK, frame(&viewer, &title, body)))
}

async fn regenerate_robot(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((org, short)): Path<(String, String)>,
    body: Bytes,
) -> UiResult {
    Form::checked(&viewer, &body)?;
    robots::regenerate(&s.ctx, &viewer.caller, Owner::Org(&org), &short).await?;
    Ok(see_other(&format!("/organization/{org}/robots/{short}")))
}
