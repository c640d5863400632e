//! The superuser panel (users: list, create, disable/enable, delete) and the signed-in user's
//! own settings (e-mail, password, time-machine window).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use maud::html;

use crate::api::AppState;
use crate::service::tenancy::accounts::{self, PageRequest};
use crate::ui::forms::Form;
use crate::ui::layout::{csrf, frame, post_button};
use crate::ui::{UiResult, Viewer, page, see_other};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/superuser", get(panel))
        .route("/superuser/users", post(create_user))
        .route("/superuser/users/{name}/enabled", post(set_enabled))
        .route("/superuser/users/{name}/delete", post(delete_user))
        .route("/user/settings", get(settings).post(save_settings))
        .route("/user/settings/window", post(save_window))
}

async fn panel(State(s): State<AppState>, viewer: Viewer) -> UiResult {
    let users = accounts::list_users(
        &s.ctx,
        &viewer.caller,
        true,
        &PageRequest {
            limit: Some(accounts::MAX_PAGE_LIMIT),
            next_page: None,
        },
    )
    .await?;
    let body = html! {
        h2 #users-h { "Users" }
        table.responsive #users aria-labelledby="users-h" {
            thead { tr { th scope="col" { "User" } th scope="col" { "Email" } th scope="col" { "Superuser" } th scope="col" { "Enabled" } th scope="col" { "Actions" } } }
            tbody {
                @for u in &users.users {
                    tr data-name=(u.username) {
                        th scope="row" data-label="User" { (u.username) }
                        td data-label="Email" { (u.email.as_deref().unwrap_or("")) }
                        td data-label="Superuser" { (if u.super_user { "yes" } else { "no" }) }
                        td data-label="Enabled" { (if u.enabled { "yes" } else { "no" }) }
                        td data-label="Actions" {
                            form.inline method="post" action=(format!("/superuser/users/{}/enabled", u.username)) {
                                (csrf(&viewer))
                                input type="hidden" name="enabled" value=(if u.enabled { "false" } else { "true" });
                                button.secondary type="submit" { (if u.enabled { "Disable" } else { "Enable" }) }
                            }
                            " "
                            (post_button(&viewer, &format!("/superuser/users/{}/delete", u.username), "Delete", Some("Delete this user and their repositories?")))
                        }
                    }
                }
            }
        }
        @if users.next_page.is_some() { p.muted { "Only the first " (accounts::MAX_PAGE_LIMIT) " users are shown." } }
        h2 { "Create a user" }
        form.row method="post" action="/superuser/users" {
            (csrf(&viewer))
            div.field { label for="new-username" { "Username" } input #new-username type="text" name="username" required; }
            div.field { label for="new-email" { "Email" } input #new-email type="email" name="email"; }
            button type="submit" { "Create user" }
        }
    };
    Ok(page(
        &viewer,
        StatusCode::OK,
        frame(&viewer, "Superuser panel", body),
    ))
}

async fn create_user(State(s): State<AppState>, viewer: Viewer, body: Bytes) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let name = form.required("username", "The username")?;
    let created =
        accounts::create_user_by_superuser(&s.ctx, &viewer.caller, name, form.opt("email")).await?;
    let body = html! {
        p { "User " strong { (created.username) } " was created with this temporary password. It is shown once." }
        (crate::ui::layout::copy_block("new-password", "Password", &created.password))
        p { a href="/superuser" { "Back to the superuser panel" } }
    };
    Ok(page(
        &viewer,
        StatusCode::CREATED,
        frame(&viewer, "User created", body),
    ))
}

async fn set_enabled(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    body: Bytes,
) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let enabled = form.text("enabled") == "true";
    accounts::update_user(&s.ctx, &viewer.caller, &name, None, None, Some(enabled)).await?;
    Ok(see_other("/superuser"))
}

async fn delete_user(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    body: Bytes,
) -> UiResult {
    Form::checked(&viewer, &body)?;
    accounts::delete_user(&s.ctx, &viewer.caller, &name).await?;
    Ok(see_other("/superuser"))
}

/// The signed-in user's settings: e-mail, password (the current one required), time machine.
async fn settings(State(s): State<AppState>, viewer: Viewer) -> UiResult {
    super::auth::require_user(&viewer)?;
    let me = accounts::current_user(&s.ctx, &viewer.caller).await?;
    let windows = s.ctx.config.tag_expiration_options.clone();
    let body = html! {
        h2 { "Account" }
        form method="post" action="/user/settings" {
            (csrf(&viewer))
            div.field { label for="email" { "Email" } input #email type="email" name="email" value=[me.email.as_deref()] autocomplete="email"; }
            div.field { label for="new-password" { "New password (leave empty to keep)" } input #new-password type="password" name="new_password" autocomplete="new-password"; }
            div.field { label for="current-password" { "Current password" } input #current-password type="password" name="current_password" autocomplete="current-password" required; }
            button type="submit" #save-account { "Save account" }
        }
        h2 { "Time machine" }
        p { "Tags of your namespace can be restored for " strong #window { (me.tag_expiration_s) " seconds" } " after they change." }
        form.row method="post" action="/user/settings/window" {
            (csrf(&viewer))
            div.field {
                label for="window-choice" { "Window" }
                select #window-choice name="window" {
                    @for w in &windows {
                        @let secs = crate::config::parse_duration_s(w).unwrap_or(0);
                        option value=(secs) selected[secs == me.tag_expiration_s] { (w) }
                    }
                }
            }
            button.secondary type="submit" { "Save window" }
        }
    };
    Ok(page(
        &viewer,
        StatusCode::OK,
        frame(&viewer, "Your settings", body),
    ))
}

async fn save_settings(State(s): State<AppState>, viewer: Viewer, body: Bytes) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let me = accounts::current_user(&s.ctx, &viewer.caller).await?;
    let email = form
        .opt("email")
        .filter(|e| Some(*e) != me.email.as_deref());
    let password = form.opt("new_password");
    accounts::change_own_details(
        &s.ctx,
        &viewer.caller,
        form.text("current_password"),
        password,
        email,
    )
    .await?;
    if password.is_some()
        && let Some(session) = &viewer.session
    {
        // A new password ends the user's other sessions.
        crate::service::tenancy::sessions::end_others(&s.ctx, session).await?;
    }
    Ok(see_other("/user/settings"))
}

async fn save_window(State(s): State<AppState>, viewer: Viewer, body: Bytes) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let seconds: i64 = form
        .text("window")
        .parse()
        .map_err(|_| crate::ui::UiError::bad_request("Choose a window."))?;
    accounts::set_user_window(&s.ctx, &viewer.caller, seconds).await?;
    Ok(see_other("/user/settings"))
}
