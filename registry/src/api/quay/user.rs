//! `/api/v1/user/...`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::api::AppState;
use crate::service::{AccountError, accounts};

#[derive(Deserialize)]
pub struct InitializeRequest {
    username: Option<String>,
    password: Option<String>,
    email: Option<String>,
    #[serde(default)]
    access_token: bool,
}

fn message(status: StatusCode, message: String) -> Response {
    (status, axum::Json(json!({ "message": message }))).into_response()
}

/// `POST /api/v1/user/initialize`: the first user, in an empty database. Quay answers errors of
/// this endpoint as `{"message": ...}` with status 400.
pub async fn initialize(State(state): State<AppState>, body: axum::body::Bytes) -> Response {
    let request: InitializeRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return message(
                StatusCode::BAD_REQUEST,
                format!("Failed to initialize user: invalid JSON body: {e}"),
            );
        }
    };
    let (Some(username), Some(password)) = (request.username, request.password) else {
        return message(
            StatusCode::BAD_REQUEST,
            "Failed to initialize user: username and password are required".into(),
        );
    };
    let email = request.email.unwrap_or_default();
    match accounts::initialize(
        &state.ctx,
        &username,
        &password,
        &email,
        request.access_token,
    )
    .await
    {
        Ok(done) => {
            let mut body = json!({
                "username": done.username,
                "email": done.email,
                "encrypted_password": done.encrypted_password,
            });
            if let Some(token) = done.access_token {
                body["access_token"] = json!(token);
            }
            axum::Json(body).into_response()
        }
        Err(AccountError::NotAllowed(m)) => message(StatusCode::BAD_REQUEST, m),
        Err(AccountError::Internal(e)) => super::error::ApiError::internal(&e).into_response(),
        Err(e) => message(
            StatusCode::BAD_REQUEST,
            format!("Failed to initialize user: {e}"),
        ),
    }
}
