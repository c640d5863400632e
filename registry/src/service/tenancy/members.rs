//! Members of an organization (`/api/v1/organization/{orgname}/members...`) and its outside
//! collaborators (`.../collaborators`), as Quay defines them.
//!
//! Rules:
//! - A member is a user on at least one team of the organization; the list leaves robots out,
//!   while a single member's view also answers for the organization's own robots.
//! - A collaborator is a user on no team of the organization who holds a direct permission on
//!   one of its repositories.
//! - Removing a member takes the user off every team of the organization and every direct
//!   permission on its repositories, in one transaction; the last user on the organization's
//!   admin teams cannot be removed (Quay's rule), so an organization never loses its owners.
//! - Only administrators of the organization (and superusers) see or change any of this.

use std::collections::BTreeMap;

use quayside_client as api;
use serde_json::json;

use crate::db;
use crate::db::tenancy::namespaces::{KIND_ROBOT, NamespaceRow};
use crate::service::access::authz::{self, Action, Resource};
use crate::service::operations::audit::{Caller, Event};
use crate::service::tenancy::orgs;
use crate::service::{Ctx, TenancyError, views};

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

fn kind_of(kind: &str) -> &'static str {
    if kind == KIND_ROBOT { "robot" } else { "user" }
}

fn account_avatar(name: &str, kind: &str, email: Option<&str>) -> api::Avatar {
    match kind == KIND_ROBOT {
        true => views::avatar(name, None, "robot"),
        false => views::avatar(name, email, "user"),
    }
}

fn team_of(name: &str) -> api::MemberTeam {
    api::MemberTeam {
        name: name.to_owned(),
        avatar: views::avatar(name, None, "team"),
    }
}

/// `GET .../members`: the users on the organization's teams.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
) -> Result<api::OrganizationMembers, TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let pool = ctx.db.pool();
    let mut members: BTreeMap<i64, api::OrganizationMember> = BTreeMap::new();
    let mut order = Vec::new();
    for m in db::tenancy::members::memberships(pool, org.id, None).await? {
        if m.kind == KIND_ROBOT {
            continue;
        }
        let entry = members.entry(m.account_id).or_insert_with(|| {
            order.push(m.account_id);
            api::OrganizationMember {
                name: m.name.clone(),
                kind: "user".into(),
                avatar: account_avatar(&m.name, &m.kind, m.email.as_deref()),
                teams: Vec::new(),
                repositories: Vec::new(),
            }
        });
        entry.teams.push(team_of(&m.team));
    }
    for g in db::tenancy::members::direct_grants(pool, org.id, None).await? {
        if let Some(member) = members.get_mut(&g.account_id) {
            member.repositories.push(g.repository);
        }
    }
    Ok(api::OrganizationMembers {
        members: order
            .into_iter()
            .filter_map(|id| members.remove(&id))
            .collect(),
    })
}

/// `GET .../members/{membername}`: one member, or one of the organization's robots.
pub async fn get(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    member: &str,
) -> Result<api::OrganizationMember, TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let pool = ctx.db.pool();
    let account = db::tenancy::namespaces::by_name(pool, member)
        .await?
        .filter(|a| !a.is_org())
        .ok_or(TenancyError::NotFound)?;
    let teams = db::tenancy::members::memberships(pool, org.id, Some(account.id)).await?;
    let own_robot = account.kind == KIND_ROBOT
        && member
            .split_once('+')
            .is_some_and(|(namespace, _)| namespace == org.name);
    if teams.is_empty() && !own_robot {
        return Err(TenancyError::NotFound);
    }
    let repositories = db::tenancy::members::direct_grants(pool, org.id, Some(account.id))
        .await?
        .into_iter()
        .map(|g| g.repository)
        .collect();
    Ok(api::OrganizationMember {
        name: account.name.clone(),
        kind: kind_of(&account.kind).into(),
        avatar: account_avatar(&account.name, &account.kind, account.email.as_deref()),
        teams: teams.iter().map(|t| team_of(&t.team)).collect(),
        repositories,
    })
}

/// `DELETE .../members/{membername}`: the user leaves every team and loses every direct
/// permission in the organization.
pub async fn remove(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    member: &str,
) -> Result<(), TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let account = db::tenancy::namespaces::by_name(ctx.db.pool(), member)
        .await?
        .filter(|a| a.is_user())
        .ok_or(TenancyError::NotFound)?;
    let mut tx = ctx.db.begin().await?;
    // Under the organization's row lock, so two removals cannot each leave the other admin.
    if !db::tenancy::namespaces::lock(&mut tx, org.id).await? {
        return Err(TenancyError::NotFound);
    }
    let admins = db::tenancy::members::admin_user_ids(&mut *tx, org.id).await?;
    if admins == [account.id] {
        return Err(TenancyError::Refused(
            "Cannot remove user as they are the only organization admin".into(),
        ));
    }
    let teams = db::tenancy::members::memberships(&mut *tx, org.id, Some(account.id)).await?;
    let grants = db::tenancy::members::direct_grants(&mut *tx, org.id, Some(account.id)).await?;
    db::tenancy::members::remove(&mut tx, org.id, account.id).await?;
    tx.commit().await?;
    let now = ctx.now_ms();
    for t in &teams {
        ctx.audit.record(
            caller,
            Event::namespace(
                "org_remove_team_member",
                org_name,
                json!({ "member": member, "team": t.team }),
            ),
            now,
        );
    }
    for g in &grants {
        ctx.audit.record(
            caller,
            Event::repo(
                "delete_repo_permission",
                org_name,
                &g.repository,
                json!({ "username": member, "repo": g.repository, "namespace": org_name }),
            ),
            now,
        );
    }
    Ok(())
}

/// `GET .../collaborators`: users on no team with direct permissions in the organization.
pub async fn collaborators(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
) -> Result<api::Collaborators, TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let pool = ctx.db.pool();
    let on_teams: std::collections::HashSet<i64> =
        db::tenancy::members::memberships(pool, org.id, None)
            .await?
            .into_iter()
            .map(|m| m.account_id)
            .collect();
    let mut out: Vec<api::Collaborator> = Vec::new();
    let mut last = None;
    for g in db::tenancy::members::direct_grants(pool, org.id, None).await? {
        if on_teams.contains(&g.account_id) || g.kind == KIND_ROBOT {
            continue;
        }
        if last != Some(g.account_id) {
            last = Some(g.account_id);
            out.push(api::Collaborator {
                kind: "user".into(),
                name: g.name.clone(),
                avatar: account_avatar(&g.name, &g.kind, g.email.as_deref()),
                repositories: Vec::new(),
            });
        }
        if let Some(c) = out.last_mut() {
            c.repositories.push(g.repository);
        }
    }
    Ok(api::Collaborators { collaborators: out })
}
