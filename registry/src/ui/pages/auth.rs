//! Sign-in, sign-out and the first-user page.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};

use crate::api::AppState;
use crate::service::AccountError;
use crate::service::tenancy::accounts;
use crate::service::tenancy::sessions::{self, SignInError, SignedIn};
use crate::ui::forms::Form;
use crate::ui::layout::{csrf, frame};
use crate::ui::{PRE_CSRF_COOKIE, SESSION_COOKIE, UiError, UiResult, Viewer, page, set_cookie};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signin", get(signin_page).post(signin))
        .route("/signout", post(signout))
        .route("/setup", get(setup_page).post(setup))
}

fn signin_form(viewer: &Viewer, username: &str, error: Option<&str>) -> Markup {
    frame(
        viewer,
        "Sign in",
        html! {
            @if let Some(e) = error { p.error role="alert" #signin-error { (e) } }
            form method="post" action="/signin" {
                (csrf(viewer))
                div.field {
                    label for="username" { "Username" }
                    input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
                }
                div.field {
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="current-password" required;
                }
                button type="submit" #signin-submit { "Sign in" }
            }
        },
    )
}

async fn signin_page(State(s): State<AppState>, viewer: Viewer) -> UiResult {
    if sessions::needs_first_user(&s.ctx).await? {
        return Ok(crate::ui::see_other("/setup"));
    }
    if viewer.session.is_some() {
        return Ok(crate::ui::see_other("/"));
    }
    Ok(page(
        &viewer,
        StatusCode::OK,
        signin_form(&viewer, "", None),
    ))
}

/// The response of a successful sign-in: the session cookie, the pre-session cookie cleared.
fn signed_in(viewer: &Viewer, signed: &SignedIn, to: &str) -> Response {
    let mut response = crate::ui::see_other(to);
    let h = response.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(
            SESSION_COOKIE,
            &signed.cookie,
            sessions::LIFETIME_MS / 1000,
            viewer.secure,
        ),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(PRE_CSRF_COOKIE, "", 0, viewer.secure),
    );
    response
}

async fn signin(State(s): State<AppState>, viewer: Viewer, body: Bytes) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let username = form.text("username").trim().to_owned();
    match sessions::sign_in(&s.ctx, &username, form.text("password"), viewer.caller.ip).await {
        Ok(signed) => Ok(signed_in(&viewer, &signed, "/")),
        Err(SignInError::Internal(e)) => Err(e.into()),
        Err(e) => {
            let status = match e {
                SignInError::Overloaded => StatusCode::TOO_MANY_REQUESTS,
                _ => StatusCode::UNAUTHORIZED,
            };
            Ok(page(
                &viewer,
                status,
                signin_form(&viewer, &username, Some(&e.to_string())),
            ))
        }
    }
}

async fn signout(State(s): State<AppState>, viewer: Viewer, body: Bytes) -> UiResult {
    Form::checked(&viewer, &body)?;
    if let Some(session) = &viewer.session {
        sessions::sign_out(&s.ctx, session).await?;
    }
    let mut response = crate::ui::see_other("/signin");
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, viewer.secure),
    );
    Ok(response)
}

fn setup_form(viewer: &Viewer, error: Option<&str>) -> Markup {
    frame(
        viewer,
        "Create the first user",
        html! {
            p { "This registry has no users yet. The first user is a superuser." }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/setup" {
                (csrf(viewer))
                div.field {
                    label for="username" { "Username" }
                    input #username type="text" name="username" autocomplete="username" required autofocus;
                }
                div.field {
                    label for="email" { "Email" }
                    input #email type="email" name="email" autocomplete="email";
                }
                div.field {
                    label for="password" { "Password" }
                    input #password type="password" name="password" autocomplete="new-password" required;
                }
                button type="submit" { "Create user and sign in" }
            }
        },
    )
}

async fn setup_page(State(s): State<AppState>, viewer: Viewer) -> UiResult {
    if !sessions::needs_first_user(&s.ctx).await? {
        return Ok(crate::ui::see_other("/signin"));
    }
    Ok(page(&viewer, StatusCode::OK, setup_form(&viewer, None)))
}

async fn setup(State(s): State<AppState>, viewer: Viewer, body: Bytes) -> UiResult {
    let form = Form::checked(&viewer, &body)?;
    let username = form.text("username").trim();
    let password = form.text("password");
    let email = form.text("email").trim();
    match accounts::initialize(&s.ctx, username, password, email, false, None).await {
        Ok(_) => {}
        Err(AccountError::Internal(e)) => return Err(e.into()),
        Err(e) => {
            return Ok(page(
                &viewer,
                StatusCode::BAD_REQUEST,
                setup_form(&viewer, Some(&e.to_string())),
            ));
        }
    }
    match sessions::sign_in(&s.ctx, username, password, viewer.caller.ip).await {
        Ok(signed) => Ok(signed_in(&viewer, &signed, "/")),
        Err(SignInError::Internal(e)) => Err(e.into()),
        Err(e) => Err(UiError::bad_request(e.to_string())),
    }
}

/// Refuses a page to anonymous viewers the way the API does (401).
pub fn require_user(viewer: &Viewer) -> Result<&crate::service::UserRef, UiError> {
    viewer
        .user()
        .ok_or_else(|| UiError::new(StatusCode::UNAUTHORIZED, "Sign in to see this page."))
}
