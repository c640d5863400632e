//! Organizations (`/api/v1/organization/{orgname}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::common::Avatar;
use crate::quota::{QuotaReport, QuotaSummary};

#[cfg(feature = "client")]
use crate::client::{Client, Result, seg};
#[cfg(feature = "client")]
use reqwest::Method;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateOrganizationRequest {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateOrganizationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_email: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_email_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_expiration_s: Option<i64>,
}

/// A team inside `GET /api/v1/organization/{orgname}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrganizationTeam {
    pub name: String,
    pub description: String,
    pub role: String,
    pub avatar: Avatar,
    pub can_view: bool,
    pub repo_count: i64,
    pub member_count: i64,
    pub is_synced: bool,
}

/// `GET /api/v1/organization/{orgname}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub name: String,
    pub email: String,
    pub avatar: Avatar,
    pub is_admin: bool,
    pub is_member: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teams: Option<BTreeMap<String, OrganizationTeam>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_teams: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_email: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_email_address: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_expiration_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_free_account: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quotas: Option<Vec<QuotaSummary>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_report: Option<QuotaReport>,
}

/// An organization as the superuser panel lists it, with its storage use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuperUserOrganization {
    pub name: String,
    pub email: String,
    pub avatar: Avatar,
    pub quotas: Vec<QuotaSummary>,
    pub quota_report: QuotaReport,
}

/// `GET /api/v1/superuser/organizations/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuperUserOrganizations {
    pub organizations: Vec<SuperUserOrganization>,
    /// With `limit`: the token of the next page, absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

/// `PUT /api/v1/superuser/organizations/{name}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuperUserUpdateOrganization {
    /// The new name of the organization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[cfg(feature = "client")]
impl Client {
    /// The organization's members (users on its teams) with their teams and direct permissions.
    pub async fn organization_members(&self, org: &str) -> Result<OrganizationMembers> {
        let path = format!("/organization/{}/members", seg(org));
        self.json(Method::GET, &path, Self::NONE).await
    }

    /// Removes a user from every team of the organization and every permission on its
    /// repositories.
    pub async fn remove_organization_member(&self, org: &str, member: &str) -> Result<()> {
        let path = format!("/organization/{}/members/{}", seg(org), seg(member));
        self.unit(Method::DELETE, &path, Self::NONE).await
    }

    /// Every organization with its quota and usage (superusers only).
    pub async fn superuser_organizations(&self) -> Result<SuperUserOrganizations> {
        self.json(Method::GET, "/superuser/organizations/", Self::NONE)
            .await
    }

    pub async fn create_organization(&self, request: &CreateOrganizationRequest) -> Result<()> {
        self.unit(Method::POST, "/organization/", Some(request))
            .await
    }

    pub async fn organization(&self, org: &str) -> Result<Organization> {
        self.json(
            Method::GET,
            &format!("/organization/{}", seg(org)),
            Self::NONE,
        )
        .await
    }

    pub async fn update_organization(
        &self,
        org: &str,
        request: &UpdateOrganizationRequest,
    ) -> Result<Organization> {
        self.json(
            Method::PUT,
            &format!("/organization/{}", seg(org)),
            Some(request),
        )
        .await
    }

    pub async fn delete_organization(&self, org: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("/organization/{}", seg(org)),
            Self::NONE,
        )
        .await
    }
}

/// A team as an organization member's view names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberTeam {
    pub name: String,
    pub avatar: Avatar,
}

/// `GET /api/v1/organization/{orgname}/members[/{membername}]`: a member (a user on a team of
/// the organization, or one of its robots), its teams there and the repositories it holds a
/// direct permission on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationMember {
    pub name: String,
    /// `user` or `robot`.
    pub kind: String,
    pub avatar: Avatar,
    pub teams: Vec<MemberTeam>,
    pub repositories: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrganizationMembers {
    pub members: Vec<OrganizationMember>,
}

/// `GET /api/v1/organization/{orgname}/collaborators`: a user on no team of the organization
/// with direct permissions on some of its repositories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collaborator {
    pub kind: String,
    pub name: String,
    pub avatar: Avatar,
    pub repositories: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collaborators {
    pub collaborators: Vec<Collaborator>,
}
