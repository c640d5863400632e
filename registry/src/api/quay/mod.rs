//! Quay's REST API under `/api/v1`, with Quay's paths, verbs, status codes and JSON shapes.
//!
//! Every endpoint is declared once in [`endpoints`]: method, path, operation id, the OAuth scope
//! it requires, a summary, its query parameters and its handler. The router and the Swagger
//! document of `GET /api/v1/discovery` are both built from that table, so they cannot drift, and
//! the required scope is enforced in one place: the [`Auth`] extractor reads the scope the table
//! attached to the route.
//!
//! Authentication: `Authorization: Bearer <OAuth access token>` (limited to the token's scopes),
//! or basic auth with a user's password (a Quayside convenience with every scope; robots cannot
//! use the API, as in Quay).

pub mod discovery;
pub mod error;
pub mod orgs;
pub mod paths;
pub mod repos;
pub mod robots;
pub mod tags;
pub mod user;

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Extension, FromRequest, FromRequestParts, Request};
use axum::http::Method;
use axum::http::request::Parts;
use axum::routing::{MethodRouter, delete, get, post, put};
use serde::de::DeserializeOwned;

use self::error::ApiError;
use super::{AppState, PeerAddr, credentials};
use crate::service::access::auth::{self, AuthError};
use crate::service::operations::audit::Caller;
use crate::service::scopes::Scope;
use crate::service::{Principal, tenancy::accounts};

/// One endpoint of the API.
pub struct Endpoint {
    pub method: Method,
    /// Path under `/api/v1`, with `{param}` segments.
    pub path: &'static str,
    pub operation_id: &'static str,
    /// The OAuth scope a token needs to call it.
    pub scope: Option<Scope>,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Query parameters: name, type (`boolean`, `string`, `integer`), description.
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// Takes a JSON body.
    pub body: bool,
}

/// The scope the route requires, attached by the table for [`Auth`].
#[derive(Clone, Copy, Debug)]
struct RequiredScope(Option<Scope>);

type Entry = (Endpoint, MethodRouter<AppState>);

#[allow(clippy::too_many_arguments)]
fn ep(
    method: Method,
    path: &'static str,
    operation_id: &'static str,
    scope: Option<Scope>,
    tag: &'static str,
    summary: &'static str,
    query: &'static [(&'static str, &'static str, &'static str)],
    route: MethodRouter<AppState>,
) -> Entry {
    let body = matches!(method, Method::POST | Method::PUT);
    (
        Endpoint {
            method,
            path,
            operation_id,
            scope,
            tag,
            summary,
            query,
            body,
        },
        route.layer(Extension(RequiredScope(scope))),
    )
}

const ROBOT_LIST_QUERY: &[(&str, &str, &str)] = &[
    (
        "permissions",
        "boolean",
        "Whether to include repositories and teams in which the robots have permission.",
    ),
    (
        "token",
        "boolean",
        "If false, the robot's token is not returned.",
    ),
    (
        "limit",
        "integer",
        "If specified, the number of robots to return.",
    ),
];

/// Every endpoint, once.
pub fn endpoints() -> Vec<Entry> {
    use Method as M;
    use Scope::*;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::GET,
            "/discovery",
            "discovery",
            None,
            "discovery",
            "List all of the API endpoints available in the swagger API format.",
            &[("internal", "boolean", "Whether to include internal APIs.")],
            get(discovery::discovery),
        ),
        // Users.
        ep(
            M::POST,
            "/user/initialize",
            "initializeUser",
            None,
            "user",
            "Create the first user (a superuser) of an empty registry, optionally with an access token.",
            none,
            post(user::initialize),
        ),
        ep(
            M::GET,
            "/user/",
            "getLoggedInUser",
            Some(UserRead),
            "user",
            "Get user information for the authenticated user.",
            none,
            get(user::current),
        ),
        ep(
            M::POST,
            "/user/",
            "createNewUser",
            None,
            "user",
            "Create a new user (when FEATURE_USER_CREATION is on).",
            none,
            post(user::sign_up),
        ),
        ep(
            M::GET,
            "/user/notifications",
            "listUserNotifications",
            Some(UserRead),
            "user",
            "List the notifications (team invitations) of the user.",
            none,
            get(user::notifications),
        ),
        ep(
            M::PUT,
            "/teaminvite/{code}",
            "acceptOrganizationTeamInvite",
            Some(UserAdmin),
            "team",
            "Accepts an invite to join a team in an organization.",
            none,
            put(user::accept_invite),
        ),
        ep(
            M::DELETE,
            "/teaminvite/{code}",
            "declineOrganizationTeamInvite",
            Some(UserAdmin),
            "team",
            "Delete an existing invitation to join a team.",
            none,
            delete(user::decline_invite),
        ),
        ep(
            M::POST,
            "/user/starred",
            "createStar",
            Some(RepoRead),
            "user",
            "Star a repository.",
            none,
            post(user::star),
        ),
        ep(
            M::DELETE,
            "/user/starred/{namespace}/{repository}",
            "deleteStar",
            Some(RepoRead),
            "user",
            "Removes a star from a repository.",
            none,
            delete(user::unstar),
        ),
        // Superuser.
        ep(
            M::GET,
            "/superuser/users/",
            "listAllUsers",
            Some(SuperUser),
            "superuser",
            "Returns a list of all users in the system.",
            &[(
                "disabled",
                "boolean",
                "If false, only enabled users will be returned.",
            )],
            get(user::list_users),
        ),
        ep(
            M::POST,
            "/superuser/users/",
            "createInstallUser",
            Some(SuperUser),
            "superuser",
            "Creates a new user with a generated password.",
            none,
            post(user::create_user),
        ),
        ep(
            M::GET,
            "/superuser/users/{username}",
            "getInstallUser",
            Some(SuperUser),
            "superuser",
            "Returns information about the specified user.",
            none,
            get(user::get_user),
        ),
        ep(
            M::PUT,
            "/superuser/users/{username}",
            "changeInstallUser",
            Some(SuperUser),
            "superuser",
            "Updates information about the specified user (password, email, enabled).",
            none,
            put(user::update_user),
        ),
        ep(
            M::DELETE,
            "/superuser/users/{username}",
            "deleteInstallUser",
            Some(SuperUser),
            "superuser",
            "Deletes the specified user and the repositories of their namespace.",
            none,
            delete(user::delete_user),
        ),
        // Organizations.
        ep(
            M::POST,
            "/organization/",
            "createOrganization",
            Some(UserAdmin),
            "organization",
            "Create a new organization.",
            none,
            post(orgs::create),
        ),
        ep(
            M::GET,
            "/organization/{orgname}",
            "getOrganization",
            None,
            "organization",
            "Get the details for the specified organization.",
            none,
            get(orgs::get),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}",
            "changeOrganizationDetails",
            Some(OrgAdmin),
            "organization",
            "Change the details for the specified organization.",
            none,
            put(orgs::update),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}",
            "deleteAdminedOrganization",
            Some(OrgAdmin),
            "organization",
            "Deletes the specified organization.",
            none,
            delete(orgs::delete),
        ),
        // Teams.
        ep(
            M::PUT,
            "/organization/{orgname}/team/{teamname}",
            "updateOrganizationTeam",
            Some(OrgAdmin),
            "team",
            "Create or update the org-wide role and description of a team.",
            none,
            put(orgs::put_team),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/team/{teamname}",
            "deleteOrganizationTeam",
            Some(OrgAdmin),
            "team",
            "Delete the specified team.",
            none,
            delete(orgs::delete_team),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/team/{teamname}/members",
            "getOrganizationTeamMembers",
            Some(OrgAdmin),
            "team",
            "Retrieve the list of members for the specified team.",
            &[(
                "includePending",
                "boolean",
                "Whether to include pending members",
            )],
            get(orgs::team_members),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/team/{teamname}/members/{membername}",
            "updateOrganizationTeamMember",
            Some(OrgAdmin),
            "team",
            "Adds or invites a member to an existing team.",
            none,
            put(orgs::add_team_member),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/team/{teamname}/members/{membername}",
            "deleteOrganizationTeamMember",
            Some(OrgAdmin),
            "team",
            "Delete a member of a team, or their pending invitation.",
            none,
            delete(orgs::remove_team_member),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/team/{teamname}/invite/{email}",
            "inviteTeamMemberEmail",
            Some(OrgAdmin),
            "team",
            "Invites an email address to an existing team.",
            none,
            put(orgs::invite_email),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/team/{teamname}/invite/{email}",
            "deleteTeamMemberEmailInvite",
            Some(OrgAdmin),
            "team",
            "Delete an invite of an email address to join a team.",
            none,
            delete(orgs::delete_invite),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/team/{teamname}/permissions",
            "getOrganizationTeamPermissions",
            Some(OrgAdmin),
            "team",
            "Returns the list of repository permissions for the org's team.",
            none,
            get(orgs::team_permissions),
        ),
        // Default permissions.
        ep(
            M::GET,
            "/organization/{orgname}/prototypes",
            "getOrganizationPrototypePermissions",
            Some(OrgAdmin),
            "prototype",
            "List the existing prototypes for this organization.",
            none,
            get(orgs::prototypes),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/prototypes",
            "createOrganizationPrototypePermission",
            Some(OrgAdmin),
            "prototype",
            "Create a new permission prototype.",
            none,
            post(orgs::create_prototype),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/prototypes/{prototypeid}",
            "updateOrganizationPrototypePermission",
            Some(OrgAdmin),
            "prototype",
            "Update the role of an existing permission prototype.",
            none,
            put(orgs::update_prototype),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/prototypes/{prototypeid}",
            "deleteOrganizationPrototypePermission",
            Some(OrgAdmin),
            "prototype",
            "Delete an existing permission prototype.",
            none,
            delete(orgs::delete_prototype),
        ),
        // Applications and their tokens.
        ep(
            M::GET,
            "/organization/{orgname}/applications",
            "getOrganizationApplications",
            Some(OrgAdmin),
            "organization",
            "List the applications for the specified organization.",
            none,
            get(orgs::applications),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/applications",
            "createOrganizationApplication",
            Some(OrgAdmin),
            "organization",
            "Creates a new application under this organization.",
            none,
            post(orgs::create_application),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/applications/{client_id}",
            "getOrganizationApplication",
            Some(OrgAdmin),
            "organization",
            "Retrieves the application with the specified client_id.",
            none,
            get(orgs::application),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/applications/{client_id}",
            "updateOrganizationApplication",
            Some(OrgAdmin),
            "organization",
            "Updates an application under this organization.",
            none,
            put(orgs::update_application),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/applications/{client_id}",
            "deleteOrganizationApplication",
            Some(OrgAdmin),
            "organization",
            "Deletes the application under this organization.",
            none,
            delete(orgs::delete_application),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/applications/{client_id}/resetclientsecret",
            "resetOrganizationApplicationClientSecret",
            Some(OrgAdmin),
            "organization",
            "Resets the client secret of the application.",
            none,
            post(orgs::reset_client_secret),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/applications/{client_id}/tokens",
            "listOrganizationApplicationTokens",
            Some(OrgAdmin),
            "organization",
            "List all tokens for the specified application (without their secrets).",
            none,
            get(orgs::application_tokens),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/applications/{client_id}/tokens",
            "createOrganizationApplicationToken",
            Some(OrgAdmin),
            "organization",
            "Create an access token for the application with the given scopes; the token is shown once.",
            none,
            post(orgs::create_application_token),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/applications/{client_id}/tokens/{token_uuid}",
            "deleteOrganizationApplicationToken",
            Some(OrgAdmin),
            "organization",
            "Revoke a specific token for the specified application.",
            none,
            delete(orgs::revoke_application_token),
        ),
        // Robots of organizations.
        ep(
            M::GET,
            "/organization/{orgname}/robots",
            "getOrgRobots",
            Some(OrgAdmin),
            "robot",
            "List the organization's robots.",
            ROBOT_LIST_QUERY,
            get(robots::org_list),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/robots/{robot_shortname}",
            "getOrgRobot",
            Some(OrgAdmin),
            "robot",
            "Returns the organization's robot with the specified name.",
            none,
            get(robots::org_get),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/robots/{robot_shortname}",
            "createOrgRobot",
            Some(OrgAdmin),
            "robot",
            "Create a new robot in the organization.",
            none,
            put(robots::org_create),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/robots/{robot_shortname}",
            "deleteOrgRobot",
            Some(OrgAdmin),
            "robot",
            "Delete an existing organization robot.",
            none,
            delete(robots::org_delete),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/robots/{robot_shortname}/regenerate",
            "regenerateOrgRobotToken",
            Some(OrgAdmin),
            "robot",
            "Regenerates the token for an organization robot.",
            none,
            post(robots::org_regenerate),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/robots/{robot_shortname}/permissions",
            "getOrgRobotPermissions",
            Some(OrgAdmin),
            "robot",
            "Returns the list of repository permissions for the org's robot.",
            none,
            get(robots::org_permissions),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/robots/{robot_shortname}/federation",
            "getOrgRobotFederation",
            Some(OrgAdmin),
            "robot",
            "Returns the federation configuration for the organization's robot.",
            none,
            get(robots::org_federation),
        ),
        ep(
            M::POST,
            "/organization/{orgname}/robots/{robot_shortname}/federation",
            "createOrgRobotFederation",
            Some(OrgAdmin),
            "robot",
            "Create or update federation configuration for the organization's robot.",
            none,
            post(robots::org_set_federation),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/robots/{robot_shortname}/federation",
            "deleteOrgRobotFederation",
            Some(OrgAdmin),
            "robot",
            "Delete federation configuration for the organization's robot.",
            none,
            delete(robots::org_delete_federation),
        ),
        // Robots of the user.
        ep(
            M::GET,
            "/user/robots",
            "getUserRobots",
            Some(UserAdmin),
            "robot",
            "List the available robots for the user.",
            ROBOT_LIST_QUERY,
            get(robots::user_list),
        ),
        ep(
            M::GET,
            "/user/robots/{robot_shortname}",
            "getUserRobot",
            Some(UserAdmin),
            "robot",
            "Returns the user's robot with the specified name.",
            none,
            get(robots::user_get),
        ),
        ep(
            M::PUT,
            "/user/robots/{robot_shortname}",
            "createUserRobot",
            Some(UserAdmin),
            "robot",
            "Create a new user robot with the specified name.",
            none,
            put(robots::user_create),
        ),
        ep(
            M::DELETE,
            "/user/robots/{robot_shortname}",
            "deleteUserRobot",
            Some(UserAdmin),
            "robot",
            "Delete an existing robot.",
            none,
            delete(robots::user_delete),
        ),
        ep(
            M::POST,
            "/user/robots/{robot_shortname}/regenerate",
            "regenerateUserRobotToken",
            Some(UserAdmin),
            "robot",
            "Regenerates the token for a user's robot.",
            none,
            post(robots::user_regenerate),
        ),
        ep(
            M::GET,
            "/user/robots/{robot_shortname}/permissions",
            "getUserRobotPermissions",
            Some(UserAdmin),
            "robot",
            "Returns the list of repository permissions for the user's robot.",
            none,
            get(robots::user_permissions),
        ),
        ep(
            M::GET,
            "/user/robots/{robot_shortname}/federation",
            "getUserRobotFederation",
            Some(UserAdmin),
            "robot",
            "Returns the federation configuration for the user's robot.",
            none,
            get(robots::user_federation),
        ),
        ep(
            M::POST,
            "/user/robots/{robot_shortname}/federation",
            "createUserRobotFederation",
            Some(UserAdmin),
            "robot",
            "Create or update federation configuration for the user's robot.",
            none,
            post(robots::user_set_federation),
        ),
        ep(
            M::DELETE,
            "/user/robots/{robot_shortname}/federation",
            "deleteUserRobotFederation",
            Some(UserAdmin),
            "robot",
            "Delete federation configuration for the user's robot.",
            none,
            delete(robots::user_delete_federation),
        ),
        // Repositories.
        ep(
            M::POST,
            "/repository",
            "createRepo",
            Some(RepoCreate),
            "repository",
            "Create a new repository.",
            none,
            post(repos::create),
        ),
        ep(
            M::GET,
            "/repository",
            "listRepos",
            Some(RepoRead),
            "repository",
            "Fetch the list of repositories visible to the current user.",
            &[
                (
                    "namespace",
                    "string",
                    "Filters the repositories returned to this namespace",
                ),
                (
                    "starred",
                    "boolean",
                    "Filters the repositories returned to those starred by the user",
                ),
                (
                    "public",
                    "boolean",
                    "Adds any repositories visible to the user by virtue of being public",
                ),
                (
                    "last_modified",
                    "boolean",
                    "Whether to include when the repository was last modified.",
                ),
                (
                    "popularity",
                    "boolean",
                    "Whether to include the repository's popularity metric.",
                ),
                ("next_page", "string", "The page token for the next page"),
            ],
            get(repos::list),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}",
            "getRepo",
            Some(RepoRead),
            "repository",
            "Fetch the specified repository.",
            &[
                (
                    "includeStats",
                    "boolean",
                    "Whether to include action statistics",
                ),
                (
                    "includeTags",
                    "boolean",
                    "Whether to include repository tags",
                ),
            ],
            get(repos::get),
        ),
        ep(
            M::PUT,
            "/repository/{namespace}/{repository}",
            "updateRepo",
            Some(RepoWrite),
            "repository",
            "Update the description in the specified repository.",
            none,
            put(repos::update),
        ),
        ep(
            M::DELETE,
            "/repository/{namespace}/{repository}",
            "deleteRepository",
            Some(RepoAdmin),
            "repository",
            "Delete a repository.",
            none,
            delete(repos::delete),
        ),
        ep(
            M::POST,
            "/repository/{namespace}/{repository}/changevisibility",
            "changeRepoVisibility",
            Some(RepoAdmin),
            "repository",
            "Change the visibility of a repository.",
            none,
            post(repos::change_visibility),
        ),
        // Repository permissions.
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/permissions/user/",
            "listRepoUserPermissions",
            Some(RepoAdmin),
            "permission",
            "List all user permissions.",
            none,
            get(repos::user_permissions),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/permissions/user/{username}",
            "getUserPermissions",
            Some(RepoAdmin),
            "permission",
            "Get the permission for the specified user.",
            none,
            get(repos::user_permission),
        ),
        ep(
            M::PUT,
            "/repository/{namespace}/{repository}/permissions/user/{username}",
            "changeUserPermissions",
            Some(RepoAdmin),
            "permission",
            "Update the permissions of a user or robot on the repository.",
            none,
            put(repos::set_user_permission),
        ),
        ep(
            M::DELETE,
            "/repository/{namespace}/{repository}/permissions/user/{username}",
            "deleteUserPermissions",
            Some(RepoAdmin),
            "permission",
            "Delete the permission for the user.",
            none,
            delete(repos::delete_user_permission),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/permissions/team/",
            "listRepoTeamPermissions",
            Some(RepoAdmin),
            "permission",
            "List all team permissions.",
            none,
            get(repos::team_permissions),
        ),
        ep(
            M::GET,
            "/repository/{namespace}/{repository}/permissions/team/{teamname}",
            "getTeamPermissions",
            Some(RepoAdmin),
            "permission",
            "Fetch the permission for the specified team.",
            none,
            get(repos::team_permission),
        ),
        ep(
            M::PUT,
            "/repository/{namespace}/{repository}/permissions/team/{teamname}",
            "changeTeamPermissions",
            Some(RepoAdmin),
            "permission",
            "Update the existing team permission.",
            none,
            put(repos::set_team_permission),
        ),
        ep(
            M::DELETE,
            "/repository/{namespace}/{repository}/permissions/team/{teamname}",
            "deleteTeamPermissions",
            Some(RepoAdmin),
            "permission",
            "Delete the permission for the specified team.",
            none,
            delete(repos::delete_team_permission),
        ),
    ]
    .into_iter()
    // Tags, manifests and labels.
    .chain(tags::endpoints())
    .collect()
}

/// The `/api/v1` router, built from [`endpoints`].
pub fn router() -> Router<AppState> {
    let mut by_path: BTreeMap<&'static str, MethodRouter<AppState>> = BTreeMap::new();
    for (endpoint, route) in endpoints() {
        let merged = match by_path.remove(endpoint.path) {
            Some(existing) => existing.merge(route),
            None => route,
        };
        by_path.insert(endpoint.path, merged);
    }
    // Quay answers a path with or without its trailing slash alike; so do we.
    let declared: std::collections::BTreeSet<&'static str> = by_path.keys().copied().collect();
    let mut router = Router::new();
    for (path, route) in by_path {
        let twin = match path.strip_suffix('/') {
            Some(bare) if !bare.is_empty() => bare.to_owned(),
            Some(_) => continue,
            None => format!("{path}/"),
        };
        if !declared.contains(twin.as_str()) {
            router = router.route(&twin, route.clone());
        }
        router = router.route(path, route);
    }
    router.fallback(unrouted)
}

/// Areas of Quay's API that Quayside does not serve yet, by the path segment that names them.
/// Calls to them answer 501 with Quay's error body, so a script learns the feature is missing
/// rather than that its organization or repository does not exist.
const NOT_YET_SERVED: &[(&str, &str)] = &[
    ("quota", "Quota management"),
    ("proxycache", "Proxy cache"),
    ("logs", "Usage logs"),
    ("aggregatelogs", "Usage logs"),
    ("exportlogs", "Usage logs"),
    ("build", "Builds"),
    ("trigger", "Build triggers"),
    ("notification", "Repository notifications"),
    ("mirror", "Repository mirroring"),
    ("security", "Security scanning"),
    ("messages", "Global messages"),
];

/// The answer to a path no endpoint declares: 501 for a known Quay feature not served yet,
/// otherwise Quay's 404.
async fn unrouted(uri: axum::http::Uri) -> ApiError {
    match not_yet_served(uri.path()) {
        Some(feature) => ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            format!("{feature} is not implemented in this version of Quayside"),
        ),
        None => ApiError::not_found(),
    }
}

fn not_yet_served(path: &str) -> Option<&'static str> {
    let rest = path
        .strip_prefix("/api/v1/")
        .unwrap_or(path)
        .trim_matches('/');
    let segments: Vec<&str> = rest.split('/').collect();
    // Skip the segments that carry a namespace or repository name: a repository may be called
    // `build` and still be unknown.
    let names = match segments.first() {
        Some(&"repository") => 3,
        Some(&"organization") => 2,
        _ => 1,
    };
    segments.iter().skip(names).find_map(|segment| {
        NOT_YET_SERVED
            .iter()
            .find(|(name, _)| name == segment)
            .map(|(_, feature)| *feature)
    })
}

/// The authenticated caller of an endpoint, with the endpoint's required scope enforced.
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let ip = parts.extensions.get::<PeerAddr>().map(|p| p.0.ip());
        let required = parts.extensions.get::<RequiredScope>().and_then(|r| r.0);
        let principal = match credentials(&parts.headers) {
            Ok(None) => Principal::Anonymous,
            Ok(Some(creds)) => match auth::authenticate(&state.ctx, &creds).await {
                Ok(p @ (Principal::User(_) | Principal::OAuth(_))) => p,
                // Registry tokens and robots are not API credentials.
                Ok(Principal::Robot(_) | Principal::Token(_) | Principal::Anonymous) => {
                    return Err(ApiError::invalid_token());
                }
                Err(AuthError::Internal(e)) => return Err(ApiError::internal(&e)),
                Err(_) => return Err(ApiError::invalid_token()),
            },
            Err(_) => return Err(ApiError::invalid_token()),
        };
        if let (Some(required), Some(scopes)) = (required, principal.scopes())
            && !scopes.has(required)
        {
            return Err(ApiError::forbidden());
        }
        Ok(Auth(Caller::new(principal, ip)))
    }
}

/// A JSON request body; a missing or malformed body is a 400 naming the problem.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &AppState) -> Result<Self, ApiError> {
        let bytes = axum::body::to_bytes(req.into_body(), 1024 * 1024)
            .await
            .map_err(|_| ApiError::invalid_request("The request body is too large"))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid_request("Missing JSON body"));
        }
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut deserializer)
            .map(Body)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    ApiError::invalid_request(format!("Invalid JSON body: {inner}"))
                } else {
                    ApiError::invalid_request(format!("{path}: {inner}"))
                }
            })
    }
}

/// An optional JSON request body (absent or empty is `None`).
pub struct OptionalBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        match Body::<T>::from_request(req, state).await {
            Ok(Body(v)) => Ok(OptionalBody(Some(v))),
            Err(e) if e.message == "Missing JSON body" => Ok(OptionalBody(None)),
            Err(e) => Err(e),
        }
    }
}

/// Query parameters, with Quay's truthy booleans.
pub struct Query(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(Query(
            parts
                .uri
                .query()
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        ))
    }
}

impl Query {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A boolean parameter (`true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`, any case).
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None | Some("") => Ok(default),
            Some("true" | "1" | "yes" | "on" | "t" | "y") => Ok(true),
            Some("false" | "0" | "no" | "off" | "f" | "n") => Ok(false),
            Some(other) => Err(ApiError::invalid_request(format!(
                "{key}: {other:?} is not a boolean"
            ))),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::invalid_request(format!("{key}: {v:?} is not an integer"))
                })
            })
            .transpose()
    }
}

/// The signed-in user of a caller, for endpoints only users may call.
pub fn require_user(caller: &Caller) -> Result<(), ApiError> {
    accounts::acting_user(&caller.principal)
        .map(|_| ())
        .map_err(ApiError::from)
}

/// Quay's answer to a creation: `"Created"` with 201.
pub fn created() -> axum::response::Response {
    use axum::response::IntoResponse;
    (axum::http::StatusCode::CREATED, axum::Json("Created")).into_response()
}

/// An empty 204.
pub fn no_content() -> axum::response::Response {
    use axum::response::IntoResponse;
    axum::http::StatusCode::NO_CONTENT.into_response()
}
