//! Robot accounts of a user or an organization (`.../robots/...`) and robot federation
//! (keyless tokens).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::common::Avatar;

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use crate::permissions::RepositoryGrants;
#[cfg(feature = "client")]
use reqwest::Method;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateRobotRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unstructured_metadata: Option<Value>,
}

/// A robot account. `token` is there for those who administer it; `unstructured_metadata` on
/// single-robot answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Robot {
    pub name: String,
    pub created: Option<String>,
    pub last_accessed: Option<String>,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unstructured_metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<Vec<RobotTeam>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotTeam {
    pub name: String,
    pub avatar: Avatar,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Robots {
    pub robots: Vec<Robot>,
}

/// One trusted identity of a federated (keyless) robot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederationEntry {
    pub issuer: String,
    pub subject: String,
}

/// `GET /oauth2/federation/robot/token`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotToken {
    pub token: String,
}

#[cfg(feature = "client")]
impl Client {
    /// Robots of an organization, or of the caller with `org = None`.
    pub async fn robots(&self, org: Option<&str>) -> Result<Robots> {
        self.json(
            Method::GET,
            &format!("{}/robots?permissions=true&token=true", owner(org)),
            Self::NONE,
        )
        .await
    }

    pub async fn robot(&self, org: Option<&str>, shortname: &str) -> Result<Robot> {
        self.json(
            Method::GET,
            &format!("{}/robots/{}", owner(org), seg(shortname)),
            Self::NONE,
        )
        .await
    }

    pub async fn create_robot(
        &self,
        org: Option<&str>,
        shortname: &str,
        request: &CreateRobotRequest,
    ) -> Result<Robot> {
        self.json(
            Method::PUT,
            &format!("{}/robots/{}", owner(org), seg(shortname)),
            Some(request),
        )
        .await
    }

    pub async fn delete_robot(&self, org: Option<&str>, shortname: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("{}/robots/{}", owner(org), seg(shortname)),
            Self::NONE,
        )
        .await
    }

    pub async fn regenerate_robot_token(
        &self,
        org: Option<&str>,
        shortname: &str,
    ) -> Result<Robot> {
        self.json(
            Method::POST,
            &format!("{}/robots/{}/regenerate", owner(org), seg(shortname)),
            Self::NONE,
        )
        .await
    }

    pub async fn set_robot_federation(
        &self,
        org: Option<&str>,
        shortname: &str,
        entries: &[FederationEntry],
    ) -> Result<Vec<FederationEntry>> {
        self.json(
            Method::POST,
            &format!("{}/robots/{}/federation", owner(org), seg(shortname)),
            Some(entries),
        )
        .await
    }

    /// The robot's roles on repositories.
    pub async fn robot_permissions(
        &self,
        org: Option<&str>,
        shortname: &str,
    ) -> Result<RepositoryGrants> {
        self.json(
            Method::GET,
            &format!("{}/robots/{}/permissions", owner(org), seg(shortname)),
            Self::NONE,
        )
        .await
    }

    /// The robot's trusted federation identities.
    pub async fn robot_federation(
        &self,
        org: Option<&str>,
        shortname: &str,
    ) -> Result<Vec<FederationEntry>> {
        self.json(
            Method::GET,
            &format!("{}/robots/{}/federation", owner(org), seg(shortname)),
            Self::NONE,
        )
        .await
    }
}

#[cfg(feature = "client")]
fn owner(org: Option<&str>) -> String {
    match org {
        Some(o) => format!("/organization/{}", seg(o)),
        None => "/user".into(),
    }
}
