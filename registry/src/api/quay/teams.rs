//! Teams of organizations (`/api/v1/organization/{orgname}/team/...`) and the invitations to
//! join them (`/api/v1/teaminvite/{code}`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing;
use quayside_client as api;

use super::error::ApiError;
use super::{Auth, Body, Entry, Query, ep, no_content};
use crate::api::AppState;
use crate::service::scopes::Scope::{OrgAdmin, UserAdmin};
use crate::service::tenancy::teams;

/// The endpoints of this area, for the route table.
pub(super) fn endpoints() -> Vec<Entry> {
    use Method as M;
    let none: &[(&str, &str, &str)] = &[];
    vec![
        ep(
            M::PUT,
            "/organization/{orgname}/team/{teamname}",
            "updateOrganizationTeam",
            Some(OrgAdmin),
            "team",
            "Create or update the org-wide role and description of a team.",
            none,
            routing::put(put_team),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/team/{teamname}",
            "deleteOrganizationTeam",
            Some(OrgAdmin),
            "team",
            "Delete the specified team.",
            none,
            routing::delete(delete_team),
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
            routing::get(team_members),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/team/{teamname}/members/{membername}",
            "updateOrganizationTeamMember",
            Some(OrgAdmin),
            "team",
            "Adds or invites a member to an existing team.",
            none,
            routing::put(add_team_member),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/team/{teamname}/members/{membername}",
            "deleteOrganizationTeamMember",
            Some(OrgAdmin),
            "team",
            "Delete a member of a team, or their pending invitation.",
            none,
            routing::delete(remove_team_member),
        ),
        ep(
            M::PUT,
            "/organization/{orgname}/team/{teamname}/invite/{email}",
            "inviteTeamMemberEmail",
            Some(OrgAdmin),
            "team",
            "Invites an email address to an existing team.",
            none,
            routing::put(invite_email),
        ),
        ep(
            M::DELETE,
            "/organization/{orgname}/team/{teamname}/invite/{email}",
            "deleteTeamMemberEmailInvite",
            Some(OrgAdmin),
            "team",
            "Delete an invite of an email address to join a team.",
            none,
            routing::delete(delete_invite),
        ),
        ep(
            M::GET,
            "/organization/{orgname}/team/{teamname}/permissions",
            "getOrganizationTeamPermissions",
            Some(OrgAdmin),
            "team",
            "Returns the list of repository permissions for the org's team.",
            none,
            routing::get(team_permissions),
        ),
        ep(
            M::PUT,
            "/teaminvite/{code}",
            "acceptOrganizationTeamInvite",
            Some(UserAdmin),
            "team",
            "Accepts an invite to join a team in an organization.",
            none,
            routing::put(accept_invite),
        ),
        ep(
            M::DELETE,
            "/teaminvite/{code}",
            "declineOrganizationTeamInvite",
            Some(UserAdmin),
            "team",
            "Delete an existing invitation to join a team.",
            none,
            routing::delete(decline_invite),
        ),
    ]
}

pub async fn put_team(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team)): Path<(String, String)>,
    Body(b): Body<api::TeamRequest>,
) -> Result<Json<api::Team>, ApiError> {
    Ok(Json(
        teams::put(&s.ctx, &c, &org, &team, &b.role, b.description.as_deref()).await?,
    ))
}

pub async fn delete_team(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    teams::delete(&s.ctx, &c, &org, &team).await?;
    Ok(no_content())
}

pub async fn team_members(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team)): Path<(String, String)>,
    q: Query,
) -> Result<Json<api::TeamMembers>, ApiError> {
    let pending = q.flag("includePending", false)?;
    Ok(Json(
        teams::members(&s.ctx, &c, &org, &team, pending).await?,
    ))
}

pub async fn add_team_member(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team, member)): Path<(String, String, String)>,
) -> Result<Json<api::TeamMember>, ApiError> {
    Ok(Json(
        teams::add_member(&s.ctx, &c, &org, &team, &member).await?,
    ))
}

pub async fn remove_team_member(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team, member)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    teams::remove_member(&s.ctx, &c, &org, &team, &member).await?;
    Ok(no_content())
}

/// With mail off Quay does not serve the e-mail invitation routes: 405 (in Quay's error body
/// here, where Quay answers Flask's HTML page).
fn require_mailing(s: &AppState) -> Result<(), ApiError> {
    match s.ctx.config.features.mailing {
        true => Ok(()),
        false => Err(ApiError::new(
            axum::http::StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "The method is not allowed for the requested URL.",
        )),
    }
}

pub async fn invite_email(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team, email)): Path<(String, String, String)>,
) -> Result<Json<api::TeamMember>, ApiError> {
    require_mailing(&s)?;
    Ok(Json(
        teams::invite_email(&s.ctx, &c, &org, &team, &email).await?,
    ))
}

pub async fn delete_invite(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team, email)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    require_mailing(&s)?;
    teams::delete_email_invite(&s.ctx, &c, &org, &team, &email).await?;
    Ok(no_content())
}

pub async fn team_permissions(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((org, team)): Path<(String, String)>,
) -> Result<Json<api::RepositoryGrants>, ApiError> {
    Ok(Json(teams::permissions(&s.ctx, &c, &org, &team).await?))
}

pub async fn accept_invite(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(code): Path<String>,
) -> Result<Json<api::AcceptedInvite>, ApiError> {
    Ok(Json(teams::accept_invite(&s.ctx, &c, &code).await?))
}

pub async fn decline_invite(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    teams::decline_invite(&s.ctx, &c, &code).await?;
    Ok(no_content())
}
