//! Default permissions (Quay's prototypes) of an organization
//! (`/api/v1/organization/{orgname}/prototypes`).

use serde::{Deserialize, Serialize};

use crate::common::Avatar;

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrototypeName {
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrototypeDelegateRequest {
    pub name: String,
    /// `user` (users and robots) or `team`.
    pub kind: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreatePrototypeRequest {
    pub role: String,
    pub delegate: PrototypeDelegateRequest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activating_user: Option<PrototypeName>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrototypeAccount {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_robot: Option<bool>,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_org_member: Option<bool>,
    pub avatar: Avatar,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prototype {
    pub activating_user: Option<PrototypeAccount>,
    pub delegate: PrototypeAccount,
    pub role: String,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prototypes {
    pub prototypes: Vec<Prototype>,
}

#[cfg(feature = "client")]
impl Client {
    pub async fn create_prototype(
        &self,
        org: &str,
        request: &CreatePrototypeRequest,
    ) -> Result<Prototype> {
        self.json(
            Method::POST,
            &format!("/organization/{}/prototypes", seg(org)),
            Some(request),
        )
        .await
    }

    pub async fn prototypes(&self, org: &str) -> Result<Prototypes> {
        self.json(
            Method::GET,
            &format!("/organization/{}/prototypes", seg(org)),
            Self::NONE,
        )
        .await
    }

    pub async fn delete_prototype(&self, org: &str, id: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("/organization/{}/prototypes/{}", seg(org), seg(id)),
            Self::NONE,
        )
        .await
    }
}
