//! Repository permissions of users, robots and teams (`read`, `write`, `admin`), and an
//! organization's default permissions (prototypes).
//!
//! Rule: a user or robot delegate is accepted only through [`accounts::delegate_account`] (a
//! user, or a robot of the namespace itself), for direct permissions and prototypes alike.

use std::collections::BTreeMap;

use quayside_client as api;
use serde_json::json;

use crate::db::{self, content::repositories::RepoRow, tenancy::namespaces::NamespaceRow};
use crate::service::access::authz::{self, Action, Resource, Role};
use crate::service::operations::audit::{Caller, Event};
use crate::service::tenancy::accounts::{self, DelegateRefusal};
use crate::service::{Ctx, TenancyError, content::repositories, tenancy::orgs, views};

fn foreign_robot(robot: &str, namespace: &str) -> TenancyError {
    TenancyError::Invalid(format!(
        "Cannot add robot {robot} under namespace {namespace}"
    ))
}

fn parse_role(role: &str) -> Result<Role, TenancyError> {
    Role::parse(role).ok_or_else(|| {
        TenancyError::Invalid(format!(
            "role: {role:?} is not one of ['read', 'write', 'admin']"
        ))
    })
}

fn account_avatar(name: &str, kind: &str, email: Option<&str>) -> api::Avatar {
    if kind == db::tenancy::namespaces::KIND_ROBOT {
        views::avatar(name, None, "robot")
    } else {
        views::avatar(name, email, "user")
    }
}

async fn admin_repo(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<(RepoRow, NamespaceRow), TenancyError> {
    let repo = repositories::checked(ctx, caller, Action::Admin, namespace, repository).await?;
    let ns = db::tenancy::namespaces::by_id(ctx.db.pool(), repo.namespace_id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    Ok((repo, ns))
}

fn user_permission_view(
    row: &db::tenancy::permissions::UserPermRow,
    org_members: Option<&[i64]>,
) -> api::UserPermission {
    let is_robot = row.kind == db::tenancy::namespaces::KIND_ROBOT;
    api::UserPermission {
        role: row.role.clone(),
        name: row.name.clone(),
        is_robot,
        avatar: account_avatar(&row.name, &row.kind, row.email.as_deref()),
        is_org_member: org_members.map(|m| is_robot || m.contains(&row.account_id)),
    }
}

async fn org_members(ctx: &Ctx, ns: &NamespaceRow) -> Result<Option<Vec<i64>>, TenancyError> {
    Ok(if ns.is_org() {
        Some(db::tenancy::teams::org_member_ids(ctx.db.pool(), ns.id).await?)
    } else {
        None
    })
}

/// `GET .../permissions/user/`.
pub async fn list_users(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<api::UserPermissions, TenancyError> {
    let (repo, ns) = admin_repo(ctx, caller, namespace, repository).await?;
    let members = org_members(ctx, &ns).await?;
    let rows = db::tenancy::permissions::users_of_repo(ctx.db.pool(), repo.id).await?;
    Ok(api::UserPermissions {
        permissions: rows
            .iter()
            .map(|r| (r.name.clone(), user_permission_view(r, members.as_deref())))
            .collect::<BTreeMap<_, _>>(),
    })
}

async fn account_row(ctx: &Ctx, name: &str) -> Result<Option<NamespaceRow>, TenancyError> {
    Ok(db::tenancy::namespaces::by_name(ctx.db.pool(), name)
        .await?
        .filter(|a| !a.is_org()))
}

/// `GET .../permissions/user/{username}`.
pub async fn get_user(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    username: &str,
) -> Result<api::UserPermission, TenancyError> {
    let (repo, ns) = admin_repo(ctx, caller, namespace, repository).await?;
    let not_found = || TenancyError::Refused("User does not have permission for repo.".into());
    let account = account_row(ctx, username).await?.ok_or_else(not_found)?;
    let row = db::tenancy::permissions::user_of_repo(ctx.db.pool(), repo.id, account.id)
        .await?
        .ok_or_else(not_found)?;
    let members = org_members(ctx, &ns).await?;
    Ok(user_permission_view(&row, members.as_deref()))
}

/// `GET .../permissions/user/{username}/transitive`: the roles a user holds on the repository,
/// directly and through the teams it is on (`{"permissions": [{"role": ...}]}`); Quay's 404
/// when it holds none or is not a user.
pub async fn user_roles(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    username: &str,
) -> Result<api::TransitivePermissions, TenancyError> {
    let (repo, _) = admin_repo(ctx, caller, namespace, repository).await?;
    let user = db::tenancy::namespaces::by_name(ctx.db.pool(), username)
        .await?
        .filter(NamespaceRow::is_user)
        .ok_or(TenancyError::NotFound)?;
    let roles = db::tenancy::permissions::roles_of_account(ctx.db.pool(), repo.id, user.id).await?;
    if roles.is_empty() {
        return Err(TenancyError::NotFound);
    }
    Ok(api::TransitivePermissions {
        permissions: roles
            .into_iter()
            .map(|role| api::RoleView { role })
            .collect(),
    })
}

/// Legacy repository tokens (`/repository/{repo}/tokens/...`): Quay 3.18 keeps the endpoints
/// but no longer supports the tokens. An administrator of the repository (or a superuser) is
/// answered 410 with Quay's message; anyone else is refused as Quay refuses them.
pub async fn legacy_tokens(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<(), TenancyError> {
    admin_repo(ctx, caller, namespace, repository).await?;
    Ok(())
}

/// `PUT .../permissions/user/{username}` (users and robots `owner+name`).
pub async fn set_user(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    username: &str,
    role: &str,
) -> Result<api::UserPermission, TenancyError> {
    let (repo, ns) = admin_repo(ctx, caller, namespace, repository).await?;
    let role = parse_role(role)?;
    if username == namespace {
        return Err(TenancyError::Invalid(
            "Namespace owner must always be admin.".into(),
        ));
    }
    let account = match accounts::delegate_account(ctx, ns.id, username).await? {
        Ok(account) => account,
        Err(DelegateRefusal::Unknown) => {
            return Err(TenancyError::Invalid(format!(
                "Invalid username: {username}"
            )));
        }
        Err(DelegateRefusal::ForeignRobot) => {
            return Err(foreign_robot(username, namespace));
        }
    };
    db::tenancy::permissions::set_user(ctx.db.pool(), repo.id, account.id, role.as_str()).await?;
    ctx.audit.record(
        caller,
        Event::repo("change_repo_permission", namespace, repository, json!({ "username": username, "repo": repository, "namespace": namespace, "role": role.as_str() })),
        ctx.now_ms(),
    );
    let row = db::tenancy::permissions::user_of_repo(ctx.db.pool(), repo.id, account.id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let members = org_members(ctx, &ns).await?;
    Ok(user_permission_view(&row, members.as_deref()))
}

/// `DELETE .../permissions/user/{username}`.
pub async fn delete_user(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    username: &str,
) -> Result<(), TenancyError> {
    let (repo, _) = admin_repo(ctx, caller, namespace, repository).await?;
    if username == namespace {
        return Err(TenancyError::Invalid(
            "Namespace owner must always be admin.".into(),
        ));
    }
    let not_found = || TenancyError::Invalid("User does not have permission for repo.".into());
    let account = account_row(ctx, username).await?.ok_or_else(not_found)?;
    if !db::tenancy::permissions::delete_user(ctx.db.pool(), repo.id, account.id).await? {
        return Err(not_found());
    }
    ctx.audit.record(
        caller,
        Event::repo(
            "delete_repo_permission",
            namespace,
            repository,
            json!({ "username": username, "repo": repository, "namespace": namespace }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

fn team_permission_view(team: &str, role: &str) -> api::TeamPermission {
    api::TeamPermission {
        role: role.to_owned(),
        name: team.to_owned(),
        avatar: views::avatar(team, None, "team"),
    }
}

/// `GET .../permissions/team/`.
pub async fn list_teams(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<api::TeamPermissions, TenancyError> {
    let (repo, _) = admin_repo(ctx, caller, namespace, repository).await?;
    let rows = db::tenancy::permissions::teams_of_repo(ctx.db.pool(), repo.id).await?;
    Ok(api::TeamPermissions {
        permissions: rows
            .iter()
            .map(|r| (r.team.clone(), team_permission_view(&r.team, &r.role)))
            .collect(),
    })
}

async fn team_of(
    ctx: &Ctx,
    ns: &NamespaceRow,
    team: &str,
) -> Result<Option<db::tenancy::teams::TeamRow>, TenancyError> {
    if !ns.is_org() {
        return Ok(None);
    }
    Ok(db::tenancy::teams::get(ctx.db.pool(), ns.id, team).await?)
}

/// `GET .../permissions/team/{teamname}`: `{"role": ...}`.
pub async fn get_team(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    team: &str,
) -> Result<api::RoleRequest, TenancyError> {
    let (repo, ns) = admin_repo(ctx, caller, namespace, repository).await?;
    let not_found = || TenancyError::Refused("Team does not have permission for repo.".into());
    let team_row = team_of(ctx, &ns, team).await?.ok_or_else(not_found)?;
    let role = db::tenancy::permissions::teams_of_repo(ctx.db.pool(), repo.id)
        .await?
        .into_iter()
        .find(|p| p.team_id == team_row.id)
        .ok_or_else(not_found)?;
    Ok(api::RoleRequest { role: role.role })
}

/// `PUT .../permissions/team/{teamname}`.
pub async fn set_team(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    team: &str,
    role: &str,
) -> Result<api::TeamPermission, TenancyError> {
    let (repo, ns) = admin_repo(ctx, caller, namespace, repository).await?;
    let role = parse_role(role)?;
    let team_row = team_of(ctx, &ns, team).await?.ok_or_else(|| {
        TenancyError::Invalid(format!("No team {team} in organization {namespace}"))
    })?;
    db::tenancy::permissions::set_team(ctx.db.pool(), repo.id, team_row.id, role.as_str()).await?;
    ctx.audit.record(
        caller,
        Event::repo(
            "change_repo_permission",
            namespace,
            repository,
            json!({ "team": team, "repo": repository, "role": role.as_str() }),
        ),
        ctx.now_ms(),
    );
    Ok(team_permission_view(team, role.as_str()))
}

/// `DELETE .../permissions/team/{teamname}`.
pub async fn delete_team(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    team: &str,
) -> Result<(), TenancyError> {
    let (repo, ns) = admin_repo(ctx, caller, namespace, repository).await?;
    let not_found = || TenancyError::Invalid("Team does not have permission for repo.".into());
    let team_row = team_of(ctx, &ns, team).await?.ok_or_else(not_found)?;
    if !db::tenancy::permissions::delete_team(ctx.db.pool(), repo.id, team_row.id).await? {
        return Err(not_found());
    }
    ctx.audit.record(
        caller,
        Event::repo(
            "delete_repo_permission",
            namespace,
            repository,
            json!({ "team": team, "repo": repository }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

// ---- default permissions (prototypes) -------------------------------------------------------

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

fn prototype_account(
    name: &str,
    kind: &str,
    account_id: i64,
    members: &[i64],
) -> api::PrototypeAccount {
    let is_robot = kind == db::tenancy::namespaces::KIND_ROBOT;
    api::PrototypeAccount {
        name: name.to_owned(),
        is_robot: Some(is_robot),
        kind: "user".into(),
        is_org_member: Some(is_robot || members.contains(&account_id)),
        avatar: account_avatar(name, kind, None),
    }
}

fn prototype_view(p: &db::tenancy::permissions::PrototypeRow, members: &[i64]) -> api::Prototype {
    let activating_user = match (
        &p.activating_name,
        &p.activating_kind,
        p.activating_account_id,
    ) {
        (Some(name), Some(kind), Some(id)) => Some(prototype_account(name, kind, id, members)),
        _ => None,
    };
    let delegate = match (
        &p.delegate_team,
        &p.delegate_name,
        &p.delegate_kind,
        p.delegate_account_id,
    ) {
        (Some(team), _, _, _) => api::PrototypeAccount {
            name: team.clone(),
            is_robot: None,
            kind: "team".into(),
            is_org_member: None,
            avatar: views::avatar(team, None, "team"),
        },
        (None, Some(name), Some(kind), Some(id)) => prototype_account(name, kind, id, members),
        _ => api::PrototypeAccount {
            name: String::new(),
            is_robot: None,
            kind: "user".into(),
            is_org_member: None,
            avatar: views::avatar("", None, "user"),
        },
    };
    api::Prototype {
        activating_user,
        delegate,
        role: p.role.clone(),
        id: p.uuid.clone(),
    }
}

/// `GET /api/v1/organization/{orgname}/prototypes`.
pub async fn prototypes(
    ctx: &Ctx,
    caller: &Caller,
    org: &str,
) -> Result<api::Prototypes, TenancyError> {
    let org_row = admin_org(ctx, caller, org).await?;
    let members = db::tenancy::teams::org_member_ids(ctx.db.pool(), org_row.id).await?;
    let rows = db::tenancy::permissions::prototypes(ctx.db.pool(), org_row.id).await?;
    Ok(api::Prototypes {
        prototypes: rows.iter().map(|p| prototype_view(p, &members)).collect(),
    })
}

fn log_prototype(
    ctx: &Ctx,
    caller: &Caller,
    kind: &'static str,
    org: &str,
    p: &db::tenancy::permissions::PrototypeRow,
    original_role: Option<&str>,
) {
    let mut metadata = json!({
        "prototypeid": p.uuid,
        "username": caller.principal.name(),
        "activating_username": p.activating_name,
        "role": p.role,
    });
    if let Some(team) = &p.delegate_team {
        metadata["delegate_team"] = json!(team);
    } else if let Some(user) = &p.delegate_name {
        metadata["delegate_user"] = json!(user);
    }
    if let Some(original) = original_role {
        metadata["original_role"] = json!(original);
    }
    ctx.audit
        .record(caller, Event::namespace(kind, org, metadata), ctx.now_ms());
}

/// `POST /api/v1/organization/{orgname}/prototypes`.
pub async fn create_prototype(
    ctx: &Ctx,
    caller: &Caller,
    org: &str,
    request: &api::CreatePrototypeRequest,
) -> Result<api::Prototype, TenancyError> {
    let org_row = admin_org(ctx, caller, org).await?;
    let role = parse_role(&request.role)?;
    let activating = match request
        .activating_user
        .as_ref()
        .map(|a| a.name.as_str())
        .filter(|n| !n.is_empty())
    {
        None => None,
        Some(name) => Some(
            account_row(ctx, name)
                .await?
                .ok_or_else(|| TenancyError::Invalid("Unknown activating user".into()))?,
        ),
    };
    let (delegate_account, delegate_team) = match request.delegate.kind.as_str() {
        "user" => {
            match accounts::delegate_account(ctx, org_row.id, &request.delegate.name).await? {
                Ok(account) => (Some(account), None),
                Err(DelegateRefusal::Unknown) => (None, None),
                Err(DelegateRefusal::ForeignRobot) => {
                    return Err(foreign_robot(&request.delegate.name, org));
                }
            }
        }
        "team" => (
            None,
            db::tenancy::teams::get(ctx.db.pool(), org_row.id, &request.delegate.name).await?,
        ),
        other => {
            return Err(TenancyError::Invalid(format!(
                "delegate.kind: {other:?} is not one of ['user', 'team']"
            )));
        }
    };
    if delegate_account.is_none() && delegate_team.is_none() {
        return Err(TenancyError::Invalid(
            "Missing delegate user or team".into(),
        ));
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    db::tenancy::permissions::insert_prototype(
        ctx.db.pool(),
        &db::tenancy::permissions::NewPrototype {
            uuid: &uuid,
            org_id: org_row.id,
            activating_account_id: activating.as_ref().map(|a| a.id),
            delegate_account_id: delegate_account.as_ref().map(|a| a.id),
            delegate_team_id: delegate_team.as_ref().map(|t| t.id),
            role: role.as_str(),
        },
        ctx.now_ms(),
    )
    .await?;
    let row = db::tenancy::permissions::prototype(ctx.db.pool(), org_row.id, &uuid)
        .await?
        .ok_or(TenancyError::NotFound)?;
    log_prototype(ctx, caller, "create_prototype_permission", org, &row, None);
    let members = db::tenancy::teams::org_member_ids(ctx.db.pool(), org_row.id).await?;
    Ok(prototype_view(&row, &members))
}

/// `PUT /api/v1/organization/{orgname}/prototypes/{prototypeid}`: the role.
pub async fn update_prototype(
    ctx: &Ctx,
    caller: &Caller,
    org: &str,
    id: &str,
    role: &str,
) -> Result<api::Prototype, TenancyError> {
    let org_row = admin_org(ctx, caller, org).await?;
    let role = parse_role(role)?;
    let existing = db::tenancy::permissions::prototype(ctx.db.pool(), org_row.id, id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    db::tenancy::permissions::set_prototype_role(ctx.db.pool(), existing.id, role.as_str()).await?;
    let row = db::tenancy::permissions::prototype(ctx.db.pool(), org_row.id, id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    log_prototype(
        ctx,
        caller,
        "modify_prototype_permission",
        org,
        &row,
        Some(&existing.role),
    );
    let members = db::tenancy::teams::org_member_ids(ctx.db.pool(), org_row.id).await?;
    Ok(prototype_view(&row, &members))
}

/// `DELETE /api/v1/organization/{orgname}/prototypes/{prototypeid}`.
pub async fn delete_prototype(
    ctx: &Ctx,
    caller: &Caller,
    org: &str,
    id: &str,
) -> Result<(), TenancyError> {
    let org_row = admin_org(ctx, caller, org).await?;
    let existing = db::tenancy::permissions::prototype(ctx.db.pool(), org_row.id, id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    db::tenancy::permissions::delete_prototype(ctx.db.pool(), existing.id).await?;
    log_prototype(
        ctx,
        caller,
        "delete_prototype_permission",
        org,
        &existing,
        None,
    );
    Ok(())
}
