//! `GET /oauth2/federation/robot/token`: a federated (keyless) robot login. Basic auth carries
//! the robot's name and an OIDC ID token from an issuer it trusts; the answer is a robot token
//! valid for one hour (`{"token": ...}`), or 401 `{"error": ...}`.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use quayside_client::RobotToken;
use serde_json::json;

use super::{AppState, PeerAddr, credentials};
use crate::service::access::auth::Credentials;
use crate::service::tenancy::federation::{self, FederationError};
use crate::telemetry::RouteLabel;

pub fn router() -> Router<AppState> {
    Router::new().route("/oauth2/federation/robot/token", get(robot_token))
}

fn refuse(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({ "error": message })),
    )
        .into_response()
}

async fn robot_token(State(state): State<AppState>, request: Request) -> Response {
    let ip = request.extensions().get::<PeerAddr>().map(|p| p.0.ip());
    let mut response = match credentials(request.headers()) {
        Ok(Some(Credentials::Basic { username, password })) => {
            match federation::exchange(&state.ctx, &username, &password, ip).await {
                Ok(token) => axum::Json(RobotToken { token }).into_response(),
                Err(FederationError::Refused(m)) => refuse(&m),
                Err(FederationError::Internal(e)) => {
                    tracing::error!(error = %e, "federated robot login failed internally");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        axum::Json(json!({ "error": "internal server error" })),
                    )
                        .into_response()
                }
            }
        }
        _ => refuse("missing auth"),
    };
    response.extensions_mut().insert(RouteLabel("federation"));
    response
}
