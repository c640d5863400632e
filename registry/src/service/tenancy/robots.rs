//! Robot accounts (`owner+shortname`) of organizations and users: creation, listing, token
//! regeneration, deletion, their permissions, and their federation (keyless login) settings.
//!
//! A robot's token is kept encrypted with the installation key so administrators can read it
//! back (as in Quay), and as a SHA-256 digest that logins are compared against in constant time.

use quayside_client as api;
use serde_json::{Value, json};

use crate::db::{self, tenancy::robots::RobotRow};
use crate::service::access::authz::{self, Action, Resource};
use crate::service::operations::audit::{Caller, Event};
use crate::service::{
    Ctx, TenancyError, hash_secret, random_token, tenancy::accounts, tenancy::orgs, tenancy::teams,
    views,
};

/// Whose robots: an organization's, or the calling user's own.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'a> {
    Org(&'a str),
    User,
}

const NOT_FOUND: &str = "Could not find robot with specified username";

/// Resolves the owner namespace and checks that the caller administers it.
async fn owner_name(ctx: &Ctx, caller: &Caller, owner: Owner<'_>) -> Result<String, TenancyError> {
    let name = match owner {
        Owner::Org(org) => org.to_owned(),
        Owner::User => accounts::acting_user(&caller.principal)?.name.clone(),
    };
    authz::require(
        ctx,
        &caller.principal,
        Action::AdminNamespace,
        Resource::Namespace(&name),
    )
    .await?;
    Ok(name)
}

async fn owner_row(
    ctx: &Ctx,
    owner: Owner<'_>,
    name: &str,
) -> Result<db::tenancy::namespaces::NamespaceRow, TenancyError> {
    match owner {
        Owner::Org(_) => orgs::org_row(ctx, name).await,
        Owner::User => db::tenancy::namespaces::by_name(ctx.db.pool(), name)
            .await?
            .ok_or(TenancyError::NotFound),
    }
}

async fn robot_row(ctx: &Ctx, owner: &str, shortname: &str) -> Result<RobotRow, TenancyError> {
    db::tenancy::robots::by_name(ctx.db.pool(), &format!("{owner}+{shortname}"))
        .await?
        .ok_or_else(|| TenancyError::Refused(NOT_FOUND.into()))
}

fn token_of(ctx: &Ctx, row: &RobotRow) -> Result<String, TenancyError> {
    ctx.sealer().open(&row.token_sealed).ok_or_else(|| {
        TenancyError::Internal(crate::service::Internal::Other(format!(
            "the token of robot {} cannot be decrypted (was SECRET_KEY changed?)",
            row.name
        )))
    })
}

fn view(row: &RobotRow, token: Option<String>, metadata: Option<Option<Value>>) -> api::Robot {
    api::Robot {
        name: row.name.clone(),
        created: Some(views::format_date(row.created_ms)),
        last_accessed: row.last_accessed_ms.map(views::format_date),
        description: row.description.clone(),
        token,
        unstructured_metadata: metadata.map(|m| m.unwrap_or(Value::Null)),
        teams: None,
        repositories: None,
    }
}

fn stored_metadata(row: &RobotRow) -> Value {
    row.unstructured_metadata
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_else(|| json!({}))
}

/// `PUT .../robots/{shortname}`.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    shortname: &str,
    description: Option<&str>,
    metadata: Option<&Value>,
) -> Result<api::Robot, TenancyError> {
    let owner_name = owner_name(ctx, caller, owner).await?;
    let owner_ns = owner_row(ctx, owner, &owner_name).await?;
    if ctx.config.robots_disallow {
        return Err(TenancyError::Invalid(
            "Robot accounts have been disabled. Please contact your administrator.".into(),
        ));
    }
    if let Err(issue) = accounts::validate_namespace_name(shortname) {
        return Err(TenancyError::Invalid(format!(
            "The name for the robot '{shortname}' is invalid: {issue}"
        )));
    }
    let description = description.unwrap_or_default();
    if description.chars().count() > 255 {
        return Err(TenancyError::Invalid(
            "description: must be at most 255 characters".into(),
        ));
    }
    if metadata.is_some_and(|m| !m.is_object()) {
        return Err(TenancyError::Invalid(
            "unstructured_metadata: must be an object".into(),
        ));
    }
    let name = format!("{owner_name}+{shortname}");
    let token = random_token(64);
    let sealed = ctx.sealer().seal(&token);
    let hash = hash_secret(&token);
    let metadata_text = metadata.map(Value::to_string);
    let now = ctx.now_ms();
    let mut tx = ctx.db.begin().await?;
    let new = db::tenancy::robots::NewRobot {
        owner_id: owner_ns.id,
        name: &name,
        shortname,
        description,
        unstructured_metadata: metadata_text.as_deref(),
        token_sealed: &sealed,
        token_hash: &hash,
    };
    match db::tenancy::robots::insert(&mut tx, &new, now).await {
        Ok(_) => {}
        Err(e) if e.is_unique_violation() => {
            return Err(TenancyError::Invalid(format!(
                "Existing robot with name: {name}"
            )));
        }
        Err(e) => return Err(e.into()),
    }
    // Read back inside the transaction: after the commit the robot may already be gone with
    // its organization, and the answer describes what was created.
    let row = db::tenancy::robots::by_name(&mut *tx, &name)
        .await?
        .ok_or_else(|| TenancyError::Refused(NOT_FOUND.into()))?;
    tx.commit().await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "create_robot",
            &owner_name,
            json!({ "robot": shortname, "description": description, "unstructured_metadata": metadata }),
        ),
        now,
    );
    Ok(view(&row, Some(token), Some(metadata.cloned())))
}

/// `GET .../robots/{shortname}`.
pub async fn get(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    shortname: &str,
) -> Result<api::Robot, TenancyError> {
    let owner_name = owner_name(ctx, caller, owner).await?;
    let row = robot_row(ctx, &owner_name, shortname).await?;
    let token = token_of(ctx, &row)?;
    let metadata = stored_metadata(&row);
    Ok(view(&row, Some(token), Some(Some(metadata))))
}

/// `GET .../robots`: organization members see the list; tokens and permissions only for those
/// who administer the owner.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    with_permissions: bool,
    with_token: bool,
    limit: Option<i64>,
) -> Result<api::Robots, TenancyError> {
    let p = &caller.principal;
    let name = match owner {
        Owner::Org(org) => org.to_owned(),
        Owner::User => accounts::acting_user(p)?.name.clone(),
    };
    authz::require(ctx, p, Action::ViewNamespace, Resource::Namespace(&name)).await?;
    let is_admin = authz::can(ctx, p, Action::AdminNamespace, Resource::Namespace(&name)).await?;
    let owner_ns = owner_row(ctx, owner, &name).await?;
    let rows =
        db::tenancy::robots::list(ctx.db.pool(), owner_ns.id, limit.unwrap_or(i64::MAX).max(0))
            .await?;
    let mut robots = Vec::with_capacity(rows.len());
    for row in rows {
        let token = if is_admin && with_token {
            Some(token_of(ctx, &row)?)
        } else {
            None
        };
        let mut robot = view(&row, token, None);
        if is_admin && with_permissions {
            let teams = match owner {
                Owner::Org(_) => {
                    db::tenancy::teams::of_account(ctx.db.pool(), owner_ns.id, row.account_id)
                        .await?
                }
                Owner::User => Vec::new(),
            };
            robot.teams = Some(
                teams
                    .into_iter()
                    .map(|t| api::RobotTeam {
                        avatar: views::avatar(&t.name, None, "team"),
                        name: t.name,
                    })
                    .collect(),
            );
            robot.repositories = Some(
                db::tenancy::permissions::of_account(ctx.db.pool(), row.account_id)
                    .await?
                    .into_iter()
                    .map(|g| g.repository)
                    .collect(),
            );
        }
        robots.push(robot);
    }
    Ok(api::Robots { robots })
}

/// `DELETE .../robots/{shortname}`.
pub async fn delete(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    shortname: &str,
) -> Result<(), TenancyError> {
    let owner_name = owner_name(ctx, caller, owner).await?;
    let row = db::tenancy::robots::by_name(ctx.db.pool(), &format!("{owner_name}+{shortname}"))
        .await?
        .ok_or_else(|| {
            TenancyError::Refused(format!(
                "Could not find robot with username: {owner_name}+{shortname}"
            ))
        })?;
    db::tenancy::robots::delete(ctx.db.pool(), row.account_id).await?;
    ctx.audit.record(
        caller,
        Event::namespace("delete_robot", &owner_name, json!({ "robot": shortname })),
        ctx.now_ms(),
    );
    Ok(())
}

/// `POST .../robots/{shortname}/regenerate`.
pub async fn regenerate(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    shortname: &str,
) -> Result<api::Robot, TenancyError> {
    let owner_name = owner_name(ctx, caller, owner).await?;
    let row = robot_row(ctx, &owner_name, shortname).await?;
    let token = random_token(64);
    db::tenancy::robots::set_token(
        ctx.db.pool(),
        row.account_id,
        &ctx.sealer().seal(&token),
        &hash_secret(&token),
    )
    .await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "regenerate_robot_token",
            &owner_name,
            json!({ "robot": shortname }),
        ),
        ctx.now_ms(),
    );
    Ok(view(&row, Some(token), None))
}

/// `GET .../robots/{shortname}/permissions`.
pub async fn permissions(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    shortname: &str,
) -> Result<api::RepositoryGrants, TenancyError> {
    let owner_name = owner_name(ctx, caller, owner).await?;
    let row = robot_row(ctx, &owner_name, shortname).await?;
    let grants = db::tenancy::permissions::of_account(ctx.db.pool(), row.account_id).await?;
    Ok(teams::grants_view(grants))
}

/// `GET .../robots/{shortname}/federation`.
pub async fn federation(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    shortname: &str,
) -> Result<Vec<api::FederationEntry>, TenancyError> {
    let owner_name = owner_name(ctx, caller, owner).await?;
    let row = robot_row(ctx, &owner_name, shortname).await?;
    Ok(serde_json::from_str(&row.federation).unwrap_or_default())
}

/// `POST .../robots/{shortname}/federation`: replaces the trusted identities.
pub async fn set_federation(
    ctx: &Ctx,
    caller: &Caller,
    owner: Owner<'_>,
    shortname: &str,
    entries: &[api::FederationEntry],
) -> Result<Vec<api::FederationEntry>, TenancyError> {
    let owner_name = owner_name(ctx, caller, owner).await?;
    let row = robot_row(ctx, &owner_name, shortname).await?;
    let mut seen = Vec::new();
    for e in entries {
        if e.issuer.is_empty() || e.subject.is_empty() {
            return Err(TenancyError::Invalid(
                "Missing one or more required fields (issuer, subject)".into(),
            ));
        }
        if !(e.issuer.starts_with("http://") || e.issuer.starts_with("https://")) {
            return Err(TenancyError::Invalid(
                "Issuer must be a URL (http:// or https://)".into(),
            ));
        }
        if seen.contains(&e) {
            return Err(TenancyError::Invalid(
                "Duplicate federation config entry".into(),
            ));
        }
        seen.push(e);
    }
    let text = serde_json::to_string(entries).unwrap_or_else(|_| "[]".into());
    db::tenancy::robots::set_federation(ctx.db.pool(), row.account_id, &text).await?;
    let kind = if entries.is_empty() {
        "delete_robot_federation"
    } else {
        "create_robot_federation"
    };
    ctx.audit.record(
        caller,
        Event::namespace(
            kind,
            &owner_name,
            json!({ "config": entries, "robot": shortname }),
        ),
        ctx.now_ms(),
    );
    Ok(entries.to_vec())
}
