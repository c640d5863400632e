//! Application-specific tokens (`/user/apptoken...`, `/superuser/apptokens`): passwords for
//! registry logins with the user name `$app`.

use serde::{Deserialize, Serialize};

/// One token. `token_code` only where Quay shows it: on creation and on `GET` of one token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppToken {
    pub uuid: String,
    pub title: String,
    pub last_accessed: Option<String>,
    pub created: Option<String>,
    pub expiration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_code: Option<String>,
}

/// `GET /user/apptoken` and `GET /superuser/apptokens`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppTokens {
    pub tokens: Vec<AppToken>,
    /// The `expiring` query parameter as given (`null` without it), as Quay echoes it.
    pub only_expiring: Option<bool>,
}

/// `POST /user/apptoken` and `GET /user/apptoken/{uuid}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AppTokenAnswer {
    pub token: AppToken,
}
