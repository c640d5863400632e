//! Teams of an organization: roles (`admin`, `creator`, `member`), members (users and the
//! organization's robots) and invitations.
//!
//! When mail is not configured, users are added directly. When it is (and
//! `FEATURE_REQUIRE_TEAM_INVITE` is on), a user who is not yet a member of the organization is
//! invited instead and joins by accepting (`PUT /api/v1/teaminvite/{code}`); the invitation is
//! also listed in the user's notifications so it can be accepted through the API whatever
//! happens to the e-mail. Robots always join directly.

use quayside_client as api;
use serde_json::json;

use crate::db::{self, tenancy::namespaces::NamespaceRow, tenancy::teams::TeamRow};
use crate::service::access::authz::{self, Action, Resource, TeamRole};
use crate::service::operations::audit::{Caller, Event};
use crate::service::{
    Ctx, TenancyError, operations::mail, tenancy::accounts, tenancy::orgs, views,
};

/// Quay's team name rule: `^([a-z0-9]+(?:[._-][a-z0-9]+)*)$`, 2 to 255 characters.
pub fn validate_team_name(name: &str) -> Result<(), String> {
    accounts::validate_namespace_name(name).map_err(|_| {
        format!(
            "Invalid team name {name}: Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$ and be 2 to 255 characters"
        )
    })
}

async fn admin_org(ctx: &Ctx, caller: &Caller, org: &str) -> Result<NamespaceRow, TenancyError> {
    authz::require(
        ctx,
        &caller.principal,
        Action::AdminNamespace,
        Resource::Namespace(org),
    )
    .await?;
    orgs::org_row(ctx, org).await
}

async fn team_row(ctx: &Ctx, org: &NamespaceRow, team: &str) -> Result<TeamRow, TenancyError> {
    db::tenancy::teams::get(ctx.db.pool(), org.id, team)
        .await?
        .ok_or(TenancyError::NotFound)
}

fn team_view(team: &TeamRow, can_view: bool, new_team: bool) -> api::Team {
    api::Team {
        name: team.name.clone(),
        description: team.description.clone(),
        can_view,
        role: team.role.clone(),
        avatar: views::avatar(&team.name, None, "team"),
        new_team,
    }
}

/// The caller may no longer administer the organization if `team` stops being an admin team
/// for them.
async fn would_lose_admin(
    ctx: &Ctx,
    caller: &Caller,
    org: &NamespaceRow,
    team: &str,
) -> Result<bool, TenancyError> {
    let Some(account) = caller.principal.account() else {
        return Ok(false);
    };
    if caller.principal.user().is_some_and(|u| u.superuser) {
        return Ok(false);
    }
    let admin_teams = db::tenancy::teams::admin_teams_of(ctx.db.pool(), org.id, account.id).await?;
    Ok(admin_teams.len() == 1 && admin_teams[0] == team)
}

/// `PUT /api/v1/organization/{orgname}/team/{teamname}`: creates the team or updates its role
/// and description.
pub async fn put(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    team_name: &str,
    role: &str,
    description: Option<&str>,
) -> Result<api::Team, TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let role = TeamRole::parse(role).ok_or_else(|| {
        TenancyError::Invalid(format!(
            "role: {role:?} is not one of ['member', 'creator', 'admin']"
        ))
    })?;
    let now = ctx.now_ms();
    match db::tenancy::teams::get(ctx.db.pool(), org.id, team_name).await? {
        None => {
            validate_team_name(team_name).map_err(TenancyError::Invalid)?;
            let description = description.unwrap_or_default();
            match db::tenancy::teams::insert(
                ctx.db.pool(),
                org.id,
                team_name,
                role.as_str(),
                description,
                now,
            )
            .await
            {
                Ok(_) => {}
                Err(e) if e.is_unique_violation() => {}
                Err(e) => return Err(e.into()),
            }
            ctx.audit.record(
                caller,
                Event::namespace("org_create_team", org_name, json!({ "team": team_name })),
                now,
            );
            let team = team_row(ctx, &org, team_name).await?;
            Ok(team_view(&team, true, true))
        }
        Some(team) => {
            let new_description = description.unwrap_or(&team.description).to_owned();
            if new_description != team.description {
                ctx.audit.record(
                    caller,
                    Event::namespace(
                        "org_set_team_description",
                        org_name,
                        json!({ "team": team_name, "description": new_description }),
                    ),
                    now,
                );
            }
            if role.as_str() != team.role {
                if team.role == "admin" && would_lose_admin(ctx, caller, &org, team_name).await? {
                    return Err(TenancyError::Refused(format!(
                        "Cannot remove admin from team '{team_name}' because calling user would no longer have admin on org '{org_name}'"
                    )));
                }
                ctx.audit.record(
                    caller,
                    Event::namespace(
                        "org_set_team_role",
                        org_name,
                        json!({ "team": team_name, "role": role.as_str() }),
                    ),
                    now,
                );
            }
            db::tenancy::teams::update(ctx.db.pool(), team.id, role.as_str(), &new_description)
                .await?;
            let team = team_row(ctx, &org, team_name).await?;
            Ok(team_view(&team, true, false))
        }
    }
}

/// `DELETE /api/v1/organization/{orgname}/team/{teamname}`.
pub async fn delete(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    team_name: &str,
) -> Result<(), TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let team = db::tenancy::teams::get(ctx.db.pool(), org.id, team_name)
        .await?
        .ok_or_else(|| {
            TenancyError::Refused(format!(
                "Team '{team_name}' is not a team in org '{org_name}'"
            ))
        })?;
    if team.role == "admin" && would_lose_admin(ctx, caller, &org, team_name).await? {
        let who = caller.principal.name().unwrap_or_default();
        return Err(TenancyError::Refused(format!(
            "Deleting team '{team_name}' would remove admin ability for user '{who}' in organization '{org_name}'"
        )));
    }
    db::tenancy::teams::delete(ctx.db.pool(), team.id).await?;
    ctx.audit.record(
        caller,
        Event::namespace("org_delete_team", org_name, json!({ "team": team_name })),
        ctx.now_ms(),
    );
    Ok(())
}

fn member_view(name: &str, kind: &str, email: Option<&str>, invited: bool) -> api::TeamMember {
    let robot = kind == db::tenancy::namespaces::KIND_ROBOT;
    api::TeamMember {
        name: Some(name.to_owned()),
        email: None,
        kind: "user".into(),
        is_robot: Some(robot),
        avatar: views::avatar(
            name,
            if robot { None } else { email },
            if robot { "robot" } else { "user" },
        ),
        invited,
    }
}

fn invite_view(invite: &db::tenancy::teams::InviteRow) -> api::TeamMember {
    match (&invite.account_name, &invite.email) {
        (Some(name), _) => member_view(name, "user", None, true),
        (None, email) => {
            let email = email.clone().unwrap_or_default();
            api::TeamMember {
                name: None,
                avatar: views::avatar(&email, Some(&email), "user"),
                email: Some(email),
                kind: "invite".into(),
                is_robot: None,
                invited: true,
            }
        }
    }
}

/// `GET /api/v1/organization/{orgname}/team/{teamname}/members`.
pub async fn members(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    team_name: &str,
    include_pending: bool,
) -> Result<api::TeamMembers, TenancyError> {
    let p = &caller.principal;
    let is_admin = authz::can(
        ctx,
        p,
        Action::AdminNamespace,
        Resource::Namespace(org_name),
    )
    .await?;
    let org = orgs::org_row(ctx, org_name).await.map_err(|e| match e {
        TenancyError::NotFound if !is_admin => TenancyError::Forbidden {
            anonymous: p.is_anonymous(),
        },
        other => other,
    })?;
    let team = team_row(ctx, &org, team_name).await;
    let members = match &team {
        Ok(t) => db::tenancy::teams::members(ctx.db.pool(), t.id).await?,
        Err(_) => Vec::new(),
    };
    let is_team_member = p
        .account()
        .is_some_and(|a| members.iter().any(|m| m.account_id == a.id));
    if !is_admin && !is_team_member {
        return Err(TenancyError::Forbidden {
            anonymous: p.is_anonymous(),
        });
    }
    let team = team?;
    let mut views: Vec<api::TeamMember> = members
        .iter()
        .map(|m| member_view(&m.name, &m.kind, m.email.as_deref(), false))
        .collect();
    if include_pending && is_admin {
        for invite in db::tenancy::teams::invites_of_team(ctx.db.pool(), team.id).await? {
            views.push(invite_view(&invite));
        }
    }
    Ok(api::TeamMembers {
        name: team_name.to_owned(),
        members: views,
        can_edit: is_admin,
    })
}

/// `PUT /api/v1/organization/{orgname}/team/{teamname}/members/{membername}`: adds a user or
/// robot, or invites a user (see the module documentation).
pub async fn add_member(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    team_name: &str,
    member: &str,
) -> Result<api::TeamMember, TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let team = team_row(ctx, &org, team_name).await?;
    let account = match accounts::delegate_account(ctx, org.id, member).await? {
        Ok(account) => account,
        Err(accounts::DelegateRefusal::Unknown) => {
            return Err(TenancyError::Invalid("Unknown user".into()));
        }
        Err(accounts::DelegateRefusal::ForeignRobot) => {
            return Err(TenancyError::Refused(
                "Cannot add the specified robot to this team, as it is not a member of the organization".into(),
            ));
        }
    };
    let now = ctx.now_ms();
    if !account.is_robot()
        && ctx.config.mail_configured()
        && ctx.config.features.require_team_invite
    {
        let org_members = db::tenancy::teams::org_member_ids(ctx.db.pool(), org.id).await?;
        if !org_members.contains(&account.id) {
            let inviter = caller.principal.account();
            let code = crate::service::random_token(64);
            db::tenancy::teams::insert_invite(
                ctx.db.pool(),
                team.id,
                Some(account.id),
                None,
                inviter.as_ref().map(|a| a.id),
                &code,
                now,
            )
            .await?;
            mail::send_team_invite(
                ctx,
                account.email.as_deref(),
                member,
                org_name,
                team_name,
                inviter.as_ref().map(|a| a.name.as_str()),
                &code,
            );
            ctx.audit.record(
                caller,
                Event::namespace(
                    "org_invite_team_member",
                    org_name,
                    json!({ "user": member, "member": member, "team": team_name }),
                ),
                now,
            );
            return Ok(member_view(
                &account.name,
                &account.kind,
                account.email.as_deref(),
                true,
            ));
        }
    }
    db::tenancy::teams::add_member(ctx.db.pool(), team.id, account.id).await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "org_add_team_member",
            org_name,
            json!({ "member": member, "team": team_name }),
        ),
        now,
    );
    Ok(member_view(
        &account.name,
        &account.kind,
        account.email.as_deref(),
        false,
    ))
}

/// `DELETE .../members/{membername}`: removes a member, or the member's pending invitation.
pub async fn remove_member(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    team_name: &str,
    member: &str,
) -> Result<(), TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let team = team_row(ctx, &org, team_name).await?;
    let account = db::tenancy::namespaces::by_name(ctx.db.pool(), member)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let now = ctx.now_ms();
    if db::tenancy::teams::delete_account_invites(ctx.db.pool(), team.id, account.id).await? > 0 {
        ctx.audit.record(
            caller,
            Event::namespace(
                "org_delete_team_member_invite",
                org_name,
                json!({ "user": member, "team": team_name, "member": member }),
            ),
            now,
        );
        return Ok(());
    }
    if caller
        .principal
        .account()
        .is_some_and(|a| a.id == account.id)
        && team.role == "admin"
        && would_lose_admin(ctx, caller, &org, team_name).await?
    {
        return Err(TenancyError::Refused(
            "User cannot remove themselves from their only admin team.".into(),
        ));
    }
    if !db::tenancy::teams::remove_member(ctx.db.pool(), team.id, account.id).await? {
        return Err(TenancyError::Refused(format!(
            "User {member} does not belong to team {team_name}"
        )));
    }
    ctx.audit.record(
        caller,
        Event::namespace(
            "org_remove_team_member",
            org_name,
            json!({ "member": member, "team": team_name }),
        ),
        now,
    );
    Ok(())
}

/// `PUT .../invite/{email}`: invites an e-mail address (mail must be configured).
pub async fn invite_email(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    team_name: &str,
    email: &str,
) -> Result<api::TeamMember, TenancyError> {
    if !ctx.config.features.mailing {
        return Err(TenancyError::NotFound);
    }
    let org = admin_org(ctx, caller, org_name).await?;
    let team = team_row(ctx, &org, team_name).await?;
    accounts::validate_email(email)
        .map_err(|_| TenancyError::Invalid("Invalid email address".into()))?;
    let inviter = caller.principal.account();
    let code = crate::service::random_token(64);
    let now = ctx.now_ms();
    db::tenancy::teams::insert_invite(
        ctx.db.pool(),
        team.id,
        None,
        Some(email),
        inviter.as_ref().map(|a| a.id),
        &code,
        now,
    )
    .await?;
    mail::send_team_invite(
        ctx,
        Some(email),
        email,
        org_name,
        team_name,
        inviter.as_ref().map(|a| a.name.as_str()),
        &code,
    );
    ctx.audit.record(
        caller,
        Event::namespace(
            "org_invite_team_member",
            org_name,
            json!({ "email": email, "team": team_name, "member": email }),
        ),
        now,
    );
    let invite = db::tenancy::teams::InviteRow {
        id: 0,
        team_id: team.id,
        team: team_name.to_owned(),
        org: org_name.to_owned(),
        account_id: None,
        account_name: None,
        email: Some(email.to_owned()),
        inviter: None,
        code,
        created_ms: now,
    };
    Ok(invite_view(&invite))
}

/// `DELETE .../invite/{email}`.
pub async fn delete_email_invite(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    team_name: &str,
    email: &str,
) -> Result<(), TenancyError> {
    if !ctx.config.features.mailing {
        return Err(TenancyError::NotFound);
    }
    let org = admin_org(ctx, caller, org_name).await?;
    let team = team_row(ctx, &org, team_name).await?;
    if db::tenancy::teams::delete_email_invites(ctx.db.pool(), team.id, email).await? == 0 {
        return Err(TenancyError::NotFound);
    }
    ctx.audit.record(
        caller,
        Event::namespace(
            "org_delete_team_member_invite",
            org_name,
            json!({ "email": email, "team": team_name, "member": email }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

/// `GET .../team/{teamname}/permissions`.
pub async fn permissions(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    team_name: &str,
) -> Result<api::RepositoryGrants, TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let team = team_row(ctx, &org, team_name).await?;
    let grants = db::tenancy::permissions::of_team(ctx.db.pool(), team.id).await?;
    Ok(grants_view(grants))
}

pub(crate) fn grants_view(
    grants: Vec<db::tenancy::permissions::GrantRow>,
) -> api::RepositoryGrants {
    api::RepositoryGrants {
        permissions: grants
            .into_iter()
            .map(|g| api::RepositoryGrant {
                repository: api::PermissionRepository {
                    is_public: g.visibility == "public",
                    name: g.repository,
                },
                role: g.role,
            })
            .collect(),
    }
}

/// The invitations addressed to the caller, as Quay's `org_team_invite` notifications.
pub async fn notifications(ctx: &Ctx, caller: &Caller) -> Result<api::Notifications, TenancyError> {
    let user = accounts::acting_user(&caller.principal)?;
    let row = db::tenancy::namespaces::by_id(ctx.db.pool(), user.id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let invites =
        db::tenancy::teams::invites_for(ctx.db.pool(), user.id, row.email.as_deref()).await?;
    Ok(api::Notifications {
        notifications: invites
            .into_iter()
            .map(|i| api::Notification {
                id: format!("invite-{}", i.id),
                organization: Some(i.org.clone()),
                kind: "org_team_invite".into(),
                created: views::format_date(i.created_ms),
                metadata: json!({ "code": i.code, "inviter": i.inviter, "org": i.org, "team": i.team }),
                dismissed: false,
            })
            .collect(),
        additional: false,
    })
}

/// `PUT /api/v1/teaminvite/{code}`: the invited user joins (every team of that organization
/// they are invited to).
pub async fn accept_invite(
    ctx: &Ctx,
    caller: &Caller,
    code: &str,
) -> Result<api::AcceptedInvite, TenancyError> {
    let user = accounts::acting_user(&caller.principal)?.clone();
    let invite = db::tenancy::teams::invite_by_code(ctx.db.pool(), code)
        .await?
        .ok_or_else(|| TenancyError::Refused("Invalid confirmation code.".into()))?;
    let row = db::tenancy::namespaces::by_id(ctx.db.pool(), user.id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let addressed_to_me = invite.account_id == Some(user.id)
        || (invite.account_id.is_none() && invite.email.is_some() && invite.email == row.email);
    if !addressed_to_me {
        let to = invite
            .account_name
            .clone()
            .or(invite.email.clone())
            .unwrap_or_default();
        return Err(TenancyError::Refused(format!(
            "This invite is intended for \"{to}\". Please login to that account and try again."
        )));
    }
    let now = ctx.now_ms();
    for other in
        db::tenancy::teams::invites_for(ctx.db.pool(), user.id, row.email.as_deref()).await?
    {
        if other.org != invite.org {
            continue;
        }
        db::tenancy::teams::add_member(ctx.db.pool(), other.team_id, user.id).await?;
        db::tenancy::teams::delete_invite(ctx.db.pool(), other.id).await?;
        ctx.audit.record(
            caller,
            Event::namespace(
                "org_team_member_invite_accepted",
                &other.org,
                json!({ "member": user.name, "team": other.team, "inviter": other.inviter }),
            ),
            now,
        );
    }
    Ok(api::AcceptedInvite {
        org: invite.org,
        team: invite.team,
    })
}

/// `DELETE /api/v1/teaminvite/{code}`: declines an invitation.
pub async fn decline_invite(ctx: &Ctx, caller: &Caller, code: &str) -> Result<(), TenancyError> {
    let user = accounts::acting_user(&caller.principal)?.clone();
    let invite = db::tenancy::teams::invite_by_code(ctx.db.pool(), code)
        .await?
        .ok_or_else(|| TenancyError::Refused("Invalid confirmation code.".into()))?;
    let row = db::tenancy::namespaces::by_id(ctx.db.pool(), user.id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    if invite.account_id != Some(user.id) && !(invite.email.is_some() && invite.email == row.email)
    {
        return Err(TenancyError::Refused("Invalid confirmation code.".into()));
    }
    db::tenancy::teams::delete_invite(ctx.db.pool(), invite.id).await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "org_team_member_invite_declined",
            &invite.org,
            json!({ "member": user.name, "team": invite.team, "inviter": invite.inviter }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}
