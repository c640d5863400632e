//! Teams of an organization and their members (`/api/v1/organization/{orgname}/team/...`,
//! `/api/v1/teaminvite/{code}`).

use serde::{Deserialize, Serialize};

use crate::common::Avatar;

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use crate::permissions::RepositoryGrants;
#[cfg(feature = "client")]
use reqwest::Method;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TeamRequest {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PUT /api/v1/organization/{orgname}/team/{teamname}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub name: String,
    pub description: String,
    pub can_view: bool,
    pub role: String,
    pub avatar: Avatar,
    pub new_team: bool,
}

/// A member (or a pending invitation) of a team.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamMember {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `user` (users and robots) or `invite` (an invited e-mail address).
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_robot: Option<bool>,
    pub avatar: Avatar,
    pub invited: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamMembers {
    pub name: String,
    pub members: Vec<TeamMember>,
    pub can_edit: bool,
}

/// `PUT /api/v1/teaminvite/{code}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedInvite {
    pub org: String,
    pub team: String,
}

#[cfg(feature = "client")]
impl Client {
    pub async fn put_team(&self, org: &str, team: &str, request: &TeamRequest) -> Result<Team> {
        self.json(
            Method::PUT,
            &format!("/organization/{}/team/{}", seg(org), seg(team)),
            Some(request),
        )
        .await
    }

    pub async fn delete_team(&self, org: &str, team: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("/organization/{}/team/{}", seg(org), seg(team)),
            Self::NONE,
        )
        .await
    }

    pub async fn team_members(&self, org: &str, team: &str) -> Result<TeamMembers> {
        self.json(
            Method::GET,
            &format!("/organization/{}/team/{}/members", seg(org), seg(team)),
            Self::NONE,
        )
        .await
    }

    pub async fn add_team_member(&self, org: &str, team: &str, member: &str) -> Result<TeamMember> {
        self.json(
            Method::PUT,
            &format!(
                "/organization/{}/team/{}/members/{}",
                seg(org),
                seg(team),
                seg(member)
            ),
            Self::NONE,
        )
        .await
    }

    pub async fn remove_team_member(&self, org: &str, team: &str, member: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!(
                "/organization/{}/team/{}/members/{}",
                seg(org),
                seg(team),
                seg(member)
            ),
            Self::NONE,
        )
        .await
    }

    /// The team's roles on repositories.
    pub async fn team_permissions(&self, org: &str, team: &str) -> Result<RepositoryGrants> {
        self.json(
            Method::GET,
            &format!("/organization/{}/team/{}/permissions", seg(org), seg(team)),
            Self::NONE,
        )
        .await
    }
}
