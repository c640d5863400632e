//! Repository permissions of users, robots and teams (`.../permissions/{user,team}/...`), and
//! the repositories a team or robot has a role on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::Avatar;

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

/// A repository a team or robot has a role on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionRepository {
    pub name: String,
    pub is_public: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryGrant {
    pub repository: PermissionRepository,
    pub role: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryGrants {
    pub permissions: Vec<RepositoryGrant>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRequest {
    pub role: String,
}

/// A user's or robot's permission on a repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserPermission {
    pub role: String,
    pub name: String,
    pub is_robot: bool,
    pub avatar: Avatar,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_org_member: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserPermissions {
    pub permissions: BTreeMap<String, UserPermission>,
}

/// A team's permission on a repository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamPermission {
    pub role: String,
    pub name: String,
    pub avatar: Avatar,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TeamPermissions {
    pub permissions: BTreeMap<String, TeamPermission>,
}

#[cfg(feature = "client")]
impl Client {
    /// Gives a user or robot (`owner+name`) a role (`read`, `write`, `admin`) on a repository.
    pub async fn set_user_permission(
        &self,
        namespace: &str,
        name: &str,
        user: &str,
        role: &str,
    ) -> Result<UserPermission> {
        let body = RoleRequest { role: role.into() };
        self.json(
            Method::PUT,
            &format!(
                "/repository/{}/{}/permissions/user/{}",
                seg(namespace),
                seg(name),
                seg(user)
            ),
            Some(&body),
        )
        .await
    }

    pub async fn delete_user_permission(
        &self,
        namespace: &str,
        name: &str,
        user: &str,
    ) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!(
                "/repository/{}/{}/permissions/user/{}",
                seg(namespace),
                seg(name),
                seg(user)
            ),
            Self::NONE,
        )
        .await
    }

    pub async fn set_team_permission(
        &self,
        namespace: &str,
        name: &str,
        team: &str,
        role: &str,
    ) -> Result<TeamPermission> {
        let body = RoleRequest { role: role.into() };
        self.json(
            Method::PUT,
            &format!(
                "/repository/{}/{}/permissions/team/{}",
                seg(namespace),
                seg(name),
                seg(team)
            ),
            Some(&body),
        )
        .await
    }

    /// The teams' roles on a repository.
    pub async fn team_permissions_of(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<TeamPermissions> {
        self.json(
            Method::GET,
            &format!(
                "/repository/{}/{}/permissions/team/",
                seg(namespace),
                seg(name)
            ),
            Self::NONE,
        )
        .await
    }

    pub async fn delete_team_permission(
        &self,
        namespace: &str,
        name: &str,
        team: &str,
    ) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!(
                "/repository/{}/{}/permissions/team/{}",
                seg(namespace),
                seg(name),
                seg(team)
            ),
            Self::NONE,
        )
        .await
    }
}

/// One role of `GET .../permissions/user/{username}/transitive`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleView {
    pub role: String,
}

/// `GET /api/v1/repository/{repo}/permissions/user/{username}/transitive`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitivePermissions {
    pub permissions: Vec<RoleView>,
}
