//! OAuth applications of an organization and the access tokens issued for them
//! (`/api/v1/organization/{orgname}/applications/...`).

use serde::{Deserialize, Serialize};

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ApplicationRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub name: String,
    pub description: String,
    pub application_uri: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: Option<String>,
    pub avatar_email: Option<String>,
}

/// `GET /api/v1/app/{client_id}`: what anyone may know of an application (the OAuth consent
/// page shows it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplicationInformation {
    pub name: String,
    pub description: String,
    pub uri: String,
    pub avatar: crate::Avatar,
    pub organization: crate::Organization,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Applications {
    pub applications: Vec<Application>,
}

/// `POST /api/v1/organization/{orgname}/applications/{client_id}/tokens`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateTokenRequest {
    pub name: String,
    /// Space- or comma-separated scopes, e.g. `repo:read repo:write`.
    pub scope: String,
    /// Lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<i64>,
}

/// An application token; `token` (the secret) only in the answer that created it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplicationToken {
    pub uuid: String,
    pub name: Option<String>,
    pub scope: String,
    pub expires_at: Option<String>,
    pub created: Option<String>,
    pub created_by: Option<String>,
    pub last_accessed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApplicationTokens {
    pub tokens: Vec<ApplicationToken>,
}

#[cfg(feature = "client")]
impl Client {
    pub async fn create_application(
        &self,
        org: &str,
        request: &ApplicationRequest,
    ) -> Result<Application> {
        self.json(
            Method::POST,
            &format!("/organization/{}/applications", seg(org)),
            Some(request),
        )
        .await
    }

    /// Mints an access token for an application with the given scopes; the secret is in the
    /// answer only.
    pub async fn create_application_token(
        &self,
        org: &str,
        client_id: &str,
        request: &CreateTokenRequest,
    ) -> Result<ApplicationToken> {
        self.json(
            Method::POST,
            &format!(
                "/organization/{}/applications/{}/tokens",
                seg(org),
                seg(client_id)
            ),
            Some(request),
        )
        .await
    }
}
