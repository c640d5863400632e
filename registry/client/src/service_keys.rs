//! Service keys (`/superuser/keys...`, `/superuser/approvedkeys/{kid}`): the public keys, by key
//! id, that verify the JWTs of a service; those of service `quay` sign this registry's tokens.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::Avatar;

/// The superuser who approved a key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceKeyApprover {
    pub kind: String,
    pub name: String,
    pub username: String,
    pub email: Option<String>,
    pub verified: bool,
    pub avatar: Avatar,
    pub super_user: bool,
    pub global_readonly_super_user: bool,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceKeyApproval {
    pub approver: Option<ServiceKeyApprover>,
    /// `Super User API`, `Key Rotation` or `Automatic`.
    pub approval_type: String,
    pub approved_date: Option<String>,
    pub notes: Option<String>,
}

/// One key, as `GET /superuser/keys/{kid}` answers (dates as HTTP dates, Quay's `jsonify`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceKey {
    pub name: String,
    pub kid: String,
    pub service: String,
    /// The public key as a JWK.
    pub jwk: Value,
    pub metadata: Value,
    pub created_date: String,
    pub expiration_date: Option<String>,
    pub rotation_duration: Option<i64>,
    pub approval: Option<ServiceKeyApproval>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceKeys {
    pub keys: Vec<ServiceKey>,
}

/// `POST /superuser/keys`: the private key is shown once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CreatedServiceKey {
    pub kid: String,
    pub name: String,
    pub service: String,
    pub public_key: String,
    pub private_key: String,
}
