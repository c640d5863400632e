//! Organizations: creation (with the `owners` team holding the creator), Quay's organization
//! view, settings and deletion. Organizations and users share one name space and cannot nest.

use std::collections::BTreeMap;

use quayside_client as api;
use serde_json::json;

use crate::db::{self, tenancy::namespaces::NamespaceRow};
use crate::service::access::authz::{self, Action, Resource};
use crate::service::content::quota;
use crate::service::operations::audit::{Caller, Event};
use crate::service::scopes::Scope;
use crate::service::{Ctx, TenancyError, tenancy::accounts, views};

/// The team every organization starts with.
pub const OWNERS: &str = "owners";

/// The organization named `name`, or `NotFound`.
pub async fn org_row(ctx: &Ctx, name: &str) -> Result<NamespaceRow, TenancyError> {
    db::tenancy::namespaces::by_name(ctx.db.pool(), name)
        .await?
        .filter(NamespaceRow::is_org)
        .ok_or(TenancyError::NotFound)
}

/// `POST /api/v1/organization/`.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    email: Option<&str>,
) -> Result<(), TenancyError> {
    let user = accounts::acting_user(&caller.principal)?.clone();
    if let Some(scopes) = caller.principal.scopes()
        && !scopes.has(Scope::UserAdmin)
    {
        return Err(TenancyError::Forbidden { anonymous: false });
    }
    accounts::validate_namespace_name(name).map_err(TenancyError::Invalid)?;
    let email = email.filter(|e| !e.is_empty());
    if let Some(e) = email {
        accounts::validate_email(e)
            .map_err(|_| TenancyError::Invalid("Invalid email address".into()))?;
    }
    let now = ctx.now_ms();
    let mut tx = ctx.db.begin().await?;
    let org_id = match db::tenancy::namespaces::insert_org(
        &mut *tx,
        name,
        email,
        ctx.config.default_tag_expiration_s,
        now,
    )
    .await
    {
        Ok(id) => id,
        Err(e) if e.is_unique_violation() => {
            return Err(TenancyError::Invalid(
                "A user or organization with this name already exists".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let team_id = db::tenancy::teams::insert(&mut *tx, org_id, OWNERS, "admin", "", now).await?;
    db::tenancy::teams::add_member(&mut *tx, team_id, user.id).await?;
    tx.commit().await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "org_create",
            name,
            json!({ "email": email, "namespace": name }),
        ),
        now,
    );
    Ok(())
}

/// `GET /api/v1/organization/{orgname}`: Quay's view, with teams for members and settings for
/// administrators.
pub async fn get(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
) -> Result<api::Organization, TenancyError> {
    let org = org_row(ctx, name).await?;
    view(ctx, caller, &org).await
}

/// Quay's organization view as other resources embed it: no teams (empty lists), the rest as
/// the caller may see it.
pub async fn view_without_teams(
    ctx: &Ctx,
    caller: &Caller,
    org: &NamespaceRow,
) -> Result<api::Organization, TenancyError> {
    let mut v = view(ctx, caller, org).await?;
    v.teams = Some(BTreeMap::new());
    v.ordered_teams = Some(Vec::new());
    Ok(v)
}

async fn view(
    ctx: &Ctx,
    caller: &Caller,
    org: &NamespaceRow,
) -> Result<api::Organization, TenancyError> {
    let p = &caller.principal;
    let is_admin = authz::can(
        ctx,
        p,
        Action::AdminNamespace,
        Resource::Namespace(&org.name),
    )
    .await?;
    let is_member = authz::can(
        ctx,
        p,
        Action::ViewNamespace,
        Resource::Namespace(&org.name),
    )
    .await?;
    let (teams, ordered_teams) = if is_member {
        let all = db::tenancy::teams::list(ctx.db.pool(), org.id).await?;
        let mine: Vec<i64> = match p.account() {
            Some(a) if !is_admin => db::tenancy::teams::of_account(ctx.db.pool(), org.id, a.id)
                .await?
                .into_iter()
                .map(|t| t.id)
                .collect(),
            _ => Vec::new(),
        };
        let ordered = all.iter().map(|t| t.name.clone()).collect();
        let map: BTreeMap<String, api::OrganizationTeam> = all
            .into_iter()
            .map(|t| {
                let view = api::OrganizationTeam {
                    avatar: views::avatar(&t.name, None, "team"),
                    can_view: is_admin || mine.contains(&t.id),
                    name: t.name.clone(),
                    description: t.description,
                    role: t.role,
                    repo_count: t.repo_count,
                    member_count: t.member_count,
                    is_synced: false,
                };
                (t.name, view)
            })
            .collect();
        (Some(map), Some(ordered))
    } else {
        (None, None)
    };
    let (quotas, quota_report) = if is_admin || is_member {
        (
            Some(quota::summaries(ctx, org.id).await?),
            Some(quota::namespace_report(ctx, org.id).await?),
        )
    } else {
        (None, None)
    };
    Ok(api::Organization {
        name: org.name.clone(),
        email: if is_admin {
            org.email.clone().unwrap_or_default()
        } else {
            String::new()
        },
        avatar: views::avatar(&org.name, org.email.as_deref(), "user"),
        is_admin,
        is_member,
        teams,
        ordered_teams,
        invoice_email: is_admin.then_some(false),
        invoice_email_address: is_admin.then_some(None),
        tag_expiration_s: is_admin.then_some(org.tag_expiration_s),
        is_free_account: is_admin.then_some(true),
        quotas,
        quota_report,
    })
}

/// `GET /api/v1/superuser/organizations/`: every organization with its quota and usage.
pub async fn list_for_superuser(
    ctx: &Ctx,
    caller: &Caller,
    page: &accounts::PageRequest,
) -> Result<api::SuperUserOrganizations, TenancyError> {
    authz::require(
        ctx,
        &caller.principal,
        Action::SuperUser,
        Resource::Registry,
    )
    .await?;
    let (after, limit) = page.start(ctx, "orgs")?;
    let mut rows =
        db::tenancy::namespaces::list_orgs_page(ctx.db.pool(), after, limit.saturating_add(1))
            .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.min(rows.len() as i64) as usize);
    let next_page = page.next(ctx, "orgs", more, rows.last().map(|r| r.id));
    let mut organizations = Vec::new();
    for org in rows {
        organizations.push(superuser_org_view(ctx, org).await?);
    }
    Ok(api::SuperUserOrganizations {
        organizations,
        next_page,
    })
}

async fn superuser_org_view(
    ctx: &Ctx,
    org: NamespaceRow,
) -> Result<api::SuperUserOrganization, TenancyError> {
    Ok(api::SuperUserOrganization {
        avatar: views::avatar(&org.name, org.email.as_deref(), "org"),
        email: org.email.clone().unwrap_or_default(),
        quotas: quota::summaries(ctx, org.id).await?,
        quota_report: quota::namespace_report(ctx, org.id).await?,
        name: org.name,
    })
}

/// `PUT /api/v1/superuser/organizations/{name}`: a superuser renames an organization (its
/// robots follow: `old+bot` becomes `new+bot`). Without a new name nothing changes. Answers the
/// organization as the superuser list shows it.
pub async fn rename_by_superuser(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    new_name: Option<&str>,
) -> Result<api::SuperUserOrganization, TenancyError> {
    authz::require(
        ctx,
        &caller.principal,
        Action::SuperUser,
        Resource::Registry,
    )
    .await?;
    let org = org_row(ctx, name).await?;
    let Some(new_name) = new_name.filter(|n| *n != name) else {
        return superuser_org_view(ctx, org).await;
    };
    accounts::validate_namespace_name(new_name).map_err(TenancyError::Invalid)?;
    let taken = || TenancyError::Invalid(format!("Username {new_name} is already taken"));
    let mut tx = ctx.db.begin().await?;
    if db::tenancy::namespaces::by_name(&mut *tx, new_name)
        .await?
        .is_some()
    {
        return Err(taken());
    }
    match db::tenancy::namespaces::rename(&mut tx, org.id, new_name).await {
        Err(e) if e.is_unique_violation() => return Err(taken()),
        r => r?,
    }
    tx.commit().await?;
    ctx.pull_cache.invalidate().await;
    // Robots are renamed with their organization: a cached login under an old name must go.
    ctx.auth_cache.clear().await;
    ctx.audit.record(
        caller,
        Event::namespace(
            "org_change_name",
            new_name,
            json!({ "old_name": name, "new_name": new_name, "superuser": caller.principal.name() }),
        ),
        ctx.now_ms(),
    );
    let org = org_row(ctx, new_name).await?;
    superuser_org_view(ctx, org).await
}

/// `DELETE /api/v1/superuser/organizations/{name}`: a superuser deletes an organization (as
/// its admin may, see [`delete`]).
pub async fn delete_by_superuser(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
) -> Result<(), TenancyError> {
    authz::require(
        ctx,
        &caller.principal,
        Action::SuperUser,
        Resource::Registry,
    )
    .await?;
    delete(ctx, caller, name).await
}

/// `PUT /api/v1/organization/{orgname}`.
pub async fn update(
    ctx: &Ctx,
    caller: &Caller,
    name: &str,
    request: &api::UpdateOrganizationRequest,
) -> Result<api::Organization, TenancyError> {
    authz::require(
        ctx,
        &caller.principal,
        Action::AdminNamespace,
        Resource::Namespace(name),
    )
    .await?;
    let org = org_row(ctx, name).await?;
    let now = ctx.now_ms();
    if let Some(email) = &request.email {
        let current = org.email.clone().unwrap_or_default();
        if *email != current {
            if !email.is_empty() {
                accounts::validate_email(email)
                    .map_err(|_| TenancyError::Invalid("Invalid email address".into()))?;
            }
            db::tenancy::namespaces::set_email(
                ctx.db.pool(),
                org.id,
                (!email.is_empty()).then_some(email.as_str()),
            )
            .await?;
            ctx.audit.record(
                caller,
                Event::namespace(
                    "org_change_email",
                    name,
                    json!({ "email": email, "namespace": name, "old_email": current }),
                ),
                now,
            );
        }
    }
    if let Some(seconds) = request.tag_expiration_s {
        if seconds < 0 {
            return Err(TenancyError::Invalid(
                "tag_expiration_s: must be 0 or more seconds".into(),
            ));
        }
        // The time machine window is one of TAG_EXPIRATION_OPTIONS (Quay's rule and message).
        if !crate::service::tenancy::accounts::window_allowed(ctx, seconds) {
            return Err(TenancyError::Refused(
                "Invalid tag expiration option".into(),
            ));
        }
        db::tenancy::namespaces::set_tag_expiration(ctx.db.pool(), org.id, seconds).await?;
        ctx.audit.record(
            caller,
            Event::namespace(
                "org_change_tag_expiration",
                name,
                json!({ "tag_expiration": seconds, "namespace": name }),
            ),
            now,
        );
    }
    if request.invoice_email.is_some() || request.invoice_email_address.is_some() {
        // Billing does not exist here; the change is accepted and recorded like Quay does.
        ctx.audit.record(
            caller,
            Event::namespace("org_change_invoicing", name, json!({ "invoice_email": request.invoice_email, "invoice_email_address": request.invoice_email_address, "namespace": name })),
            now,
        );
    }
    let org = org_row(ctx, name).await?;
    view(ctx, caller, &org).await
}

/// `DELETE /api/v1/organization/{orgname}`: the organization with its repositories, teams and
/// robots.
pub async fn delete(ctx: &Ctx, caller: &Caller, name: &str) -> Result<(), TenancyError> {
    authz::require(
        ctx,
        &caller.principal,
        Action::AdminNamespace,
        Resource::Namespace(name),
    )
    .await?;
    let org = org_row(ctx, name).await?;
    ctx.audit.record(
        caller,
        Event::namespace("org_delete", name, json!({ "namespace": name })),
        ctx.now_ms(),
    );
    let mut tx = ctx.db.begin().await?;
    db::tenancy::namespaces::delete(&mut tx, org.id).await?;
    tx.commit().await?;
    ctx.pull_cache.invalidate().await;
    Ok(())
}
