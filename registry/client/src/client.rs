//! An async client of the `/api/v1` endpoints, authenticated with an OAuth access token.

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::*;

/// What went wrong talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The registry answered with an error status; `body` is what it said.
    #[error("{status}: {body}")]
    Api { status: StatusCode, body: String },
}

impl ClientError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Http(e) => e.status(),
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A client of one registry.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~+".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// `base` is the registry's origin, e.g. `https://quay.example.com`.
    pub fn new(base: impl Into<String>) -> Client {
        Client::with_http(reqwest::Client::new(), base)
    }

    pub fn with_http(http: reqwest::Client, base: impl Into<String>) -> Client {
        Client {
            http,
            base: base.into().trim_end_matches('/').to_owned(),
            token: None,
        }
    }

    /// Authenticates further requests with an OAuth access token.
    pub fn with_token(mut self, token: impl Into<String>) -> Client {
        self.token = Some(token.into());
        self
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<reqwest::Response> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            Err(ClientError::Api { status, body })
        }
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T> {
        Ok(self.send(method, path, body).await?.json().await?)
    }

    async fn unit(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<()> {
        self.send(method, path, body).await.map(|_| ())
    }

    const NONE: Option<&'static ()> = None;

    /// Creates the first user (a superuser) of an empty registry; with `access_token` the answer
    /// carries an access token for it.
    pub async fn initialize(&self, request: &InitializeRequest) -> Result<Initialized> {
        self.json(Method::POST, "/user/initialize", Some(request))
            .await
    }

    pub async fn current_user(&self) -> Result<User> {
        self.json(Method::GET, "/user/", Self::NONE).await
    }

    pub async fn list_users(&self) -> Result<SuperUserUsers> {
        self.json(Method::GET, "/superuser/users/", Self::NONE)
            .await
    }

    pub async fn create_user(&self, request: &CreateUserRequest) -> Result<CreatedUser> {
        self.json(Method::POST, "/superuser/users/", Some(request))
            .await
    }

    pub async fn update_user(
        &self,
        username: &str,
        request: &UpdateUserRequest,
    ) -> Result<SuperUserUser> {
        self.json(
            Method::PUT,
            &format!("/superuser/users/{}", seg(username)),
            Some(request),
        )
        .await
    }

    pub async fn delete_user(&self, username: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("/superuser/users/{}", seg(username)),
            Self::NONE,
        )
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

    pub async fn create_repository(
        &self,
        request: &CreateRepositoryRequest,
    ) -> Result<CreatedRepository> {
        self.json(Method::POST, "/repository", Some(request)).await
    }

    pub async fn repository(&self, namespace: &str, name: &str) -> Result<Repository> {
        self.json(
            Method::GET,
            &format!("/repository/{}/{}", seg(namespace), seg(name)),
            Self::NONE,
        )
        .await
    }

    pub async fn list_repositories(&self, namespace: &str) -> Result<RepositoryList> {
        self.json(
            Method::GET,
            &format!("/repository?namespace={}", seg(namespace)),
            Self::NONE,
        )
        .await
    }

    pub async fn delete_repository(&self, namespace: &str, name: &str) -> Result<()> {
        self.unit(
            Method::DELETE,
            &format!("/repository/{}/{}", seg(namespace), seg(name)),
            Self::NONE,
        )
        .await
    }

    pub async fn change_visibility(
        &self,
        namespace: &str,
        name: &str,
        visibility: &str,
    ) -> Result<()> {
        let body = ChangeVisibilityRequest {
            visibility: visibility.into(),
        };
        self.unit(
            Method::POST,
            &format!(
                "/repository/{}/{}/changevisibility",
                seg(namespace),
                seg(name)
            ),
            Some(&body),
        )
        .await
    }

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

fn owner(org: Option<&str>) -> String {
    match org {
        Some(o) => format!("/organization/{}", seg(o)),
        None => "/user".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(seg("org+robot"), "org+robot");
        assert_eq!(seg("a b/c@d"), "a%20b%2Fc%40d");
    }
}
