//! OAuth applications of organizations, and access tokens minted for them.
//!
//! Quay's web UI mints a token through an interactive OAuth authorize flow ("Generate Token").
//! Quayside offers the API way Quay itself added for that:
//! `POST /api/v1/organization/{org}/applications/{client_id}/tokens` with a name, a scope string
//! and an optional lifetime. The caller must administer the organization and hold every scope it
//! asks for (a token can never mint a stronger one). The token is shown once and stored as a
//! SHA-256 digest.

use quayside_client as api;
use serde_json::json;

use crate::db::{self, tenancy::apps::AppRow, tenancy::namespaces::NamespaceRow};
use crate::service::access::authz::{self, Action, Resource};
use crate::service::operations::audit::{Caller, Event};
use crate::service::scopes::{Scope, Scopes};
use crate::service::{
    Ctx, TenancyError, hash_secret, random_token, tenancy::accounts, tenancy::orgs, views,
};

/// Quay's default (and longest) token lifetime: ten years.
pub const MAX_TOKEN_LIFETIME_S: i64 = 315_576_000;

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

async fn app_row(ctx: &Ctx, org: &NamespaceRow, client_id: &str) -> Result<AppRow, TenancyError> {
    db::tenancy::apps::get(ctx.db.pool(), org.id, client_id)
        .await?
        .ok_or(TenancyError::NotFound)
}

fn view(ctx: &Ctx, app: &AppRow) -> api::Application {
    api::Application {
        name: app.name.clone(),
        description: app.description.clone(),
        application_uri: app.application_uri.clone(),
        client_id: app.client_id.clone(),
        client_secret: ctx.sealer().open(&app.client_secret_sealed),
        redirect_uri: Some(app.redirect_uri.clone()),
        avatar_email: app.avatar_email.clone(),
    }
}

fn fields(
    request: &api::ApplicationRequest,
) -> Result<db::tenancy::apps::AppFields<'_>, TenancyError> {
    if request.name.trim().is_empty() {
        return Err(TenancyError::Invalid("name: must not be empty".into()));
    }
    Ok(db::tenancy::apps::AppFields {
        name: &request.name,
        description: request.description.as_deref().unwrap_or_default(),
        application_uri: request.application_uri.as_deref().unwrap_or_default(),
        redirect_uri: request.redirect_uri.as_deref().unwrap_or_default(),
        avatar_email: request.avatar_email.as_deref(),
    })
}

/// `GET /api/v1/app/{client_id}`: public information about an application, for anyone (Quay's
/// OAuth consent page): its name, description, URI, avatar and its organization as the caller
/// may see it (without teams).
pub async fn information(
    ctx: &Ctx,
    caller: &Caller,
    client_id: &str,
) -> Result<api::ApplicationInformation, TenancyError> {
    let app = db::tenancy::apps::by_client_id(ctx.db.pool(), client_id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let org = db::tenancy::namespaces::by_id(ctx.db.pool(), app.org_id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let email = app.avatar_email.clone().or_else(|| org.email.clone());
    Ok(api::ApplicationInformation {
        avatar: views::avatar(&app.name, email.as_deref(), "app"),
        name: app.name,
        description: app.description,
        uri: app.application_uri,
        organization: orgs::view_without_teams(ctx, caller, &org).await?,
    })
}

/// `GET /api/v1/organization/{orgname}/applications`.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    org: &str,
) -> Result<api::Applications, TenancyError> {
    let org = admin_org(ctx, caller, org).await?;
    let apps = db::tenancy::apps::list(ctx.db.pool(), org.id).await?;
    Ok(api::Applications {
        applications: apps.iter().map(|a| view(ctx, a)).collect(),
    })
}

/// `POST /api/v1/organization/{orgname}/applications`.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    request: &api::ApplicationRequest,
) -> Result<api::Application, TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let f = fields(request)?;
    let client_id = random_token(20);
    let secret = random_token(40);
    db::tenancy::apps::insert(
        ctx.db.pool(),
        org.id,
        &client_id,
        &ctx.sealer().seal(&secret),
        &f,
        ctx.now_ms(),
    )
    .await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "create_application",
            org_name,
            json!({ "application_name": request.name, "client_id": client_id }),
        ),
        ctx.now_ms(),
    );
    let app = app_row(ctx, &org, &client_id).await?;
    Ok(view(ctx, &app))
}

/// `GET .../applications/{client_id}`.
pub async fn get(
    ctx: &Ctx,
    caller: &Caller,
    org: &str,
    client_id: &str,
) -> Result<api::Application, TenancyError> {
    let org = admin_org(ctx, caller, org).await?;
    Ok(view(ctx, &app_row(ctx, &org, client_id).await?))
}

/// `PUT .../applications/{client_id}`.
pub async fn update(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    client_id: &str,
    request: &api::ApplicationRequest,
) -> Result<api::Application, TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let app = app_row(ctx, &org, client_id).await?;
    db::tenancy::apps::update(ctx.db.pool(), app.id, &fields(request)?).await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "update_application",
            org_name,
            json!({ "application_name": request.name, "client_id": client_id }),
        ),
        ctx.now_ms(),
    );
    Ok(view(ctx, &app_row(ctx, &org, client_id).await?))
}

/// `DELETE .../applications/{client_id}`: the application and every token minted for it.
pub async fn delete(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    client_id: &str,
) -> Result<(), TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let app = app_row(ctx, &org, client_id).await?;
    db::tenancy::apps::delete(ctx.db.pool(), app.id).await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "delete_application",
            org_name,
            json!({ "application_name": app.name, "client_id": client_id }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

/// `POST .../applications/{client_id}/resetclientsecret`.
pub async fn reset_secret(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    client_id: &str,
) -> Result<api::Application, TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let app = app_row(ctx, &org, client_id).await?;
    db::tenancy::apps::set_secret(ctx.db.pool(), app.id, &ctx.sealer().seal(&random_token(40)))
        .await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "reset_application_client_secret",
            org_name,
            json!({ "application_name": app.name, "client_id": client_id }),
        ),
        ctx.now_ms(),
    );
    Ok(view(ctx, &app_row(ctx, &org, client_id).await?))
}

fn token_view(t: &db::tenancy::tokens::TokenRow, secret: Option<String>) -> api::ApplicationToken {
    api::ApplicationToken {
        uuid: t.uuid.clone().unwrap_or_default(),
        name: t.name.clone(),
        scope: t.scopes.clone(),
        expires_at: t.expires_ms.map(views::iso_date),
        created: Some(views::iso_date(t.created_ms)),
        created_by: Some(t.owner.clone()),
        last_accessed: None,
        token: secret,
    }
}

/// Whether the caller's own rights cover a scope: each scope needs the permission it stands for.
async fn may_mint(
    ctx: &Ctx,
    caller: &Caller,
    org: &str,
    scope: Scope,
) -> Result<bool, TenancyError> {
    let p = &caller.principal;
    let user = accounts::acting_user(p)?;
    Ok(match scope {
        Scope::RepoRead | Scope::RepoWrite | Scope::RepoAdmin | Scope::OrgAdmin => {
            authz::can(ctx, p, Action::AdminNamespace, Resource::Namespace(org)).await?
        }
        Scope::RepoCreate => {
            authz::can(ctx, p, Action::CreateRepo, Resource::Namespace(org)).await?
        }
        Scope::UserRead | Scope::UserAdmin => true,
        Scope::SuperUser => user.superuser,
    })
}

/// `POST .../applications/{client_id}/tokens`: mints an access token for the calling user with
/// the chosen scopes.
pub async fn create_token(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    client_id: &str,
    request: &api::CreateTokenRequest,
) -> Result<api::ApplicationToken, TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let app = app_row(ctx, &org, client_id).await?;
    let user = accounts::acting_user(&caller.principal)?.clone();
    let name = request.name.trim();
    if name.is_empty() {
        return Err(TenancyError::Refused("'name' must not be empty".into()));
    }
    if name.chars().count() > 255 {
        return Err(TenancyError::Refused(
            "'name' must be at most 255 characters".into(),
        ));
    }
    let scopes = Scopes::parse(&request.scope).map_err(TenancyError::Refused)?;
    if scopes.is_empty() {
        return Err(TenancyError::Refused(format!(
            "Invalid scope: {}",
            request.scope
        )));
    }
    if let Some(own) = caller.principal.scopes()
        && !own.contains(scopes)
    {
        return Err(TenancyError::Forbidden { anonymous: false });
    }
    for scope in scopes.iter() {
        if !may_mint(ctx, caller, org_name, scope).await? {
            return Err(TenancyError::Forbidden { anonymous: false });
        }
    }
    let lifetime = match request.expiration {
        None => MAX_TOKEN_LIFETIME_S,
        Some(s) if s <= 0 => {
            return Err(TenancyError::Refused(
                "'expiration' must be a positive number of seconds".into(),
            ));
        }
        Some(s) => s.min(MAX_TOKEN_LIFETIME_S),
    };
    let secret = random_token(40);
    let uuid = uuid::Uuid::new_v4().to_string();
    let now = ctx.now_ms();
    let scope_text = scopes.to_string();
    db::tenancy::tokens::insert(
        ctx.db.pool(),
        &hash_secret(&secret),
        user.id,
        &scope_text,
        now,
        Some(now + lifetime * 1000),
        &db::tenancy::tokens::TokenMeta {
            application_id: Some(app.id),
            uuid: Some(&uuid),
            name: Some(name),
        },
    )
    .await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "create_oauth_api_token",
            org_name,
            json!({ "oauth_token_uuid": uuid, "scope": scope_text, "token_display_name": name, "application_name": app.name, "client_id": client_id }),
        ),
        now,
    );
    let row = db::tenancy::tokens::of_application(ctx.db.pool(), app.id)
        .await?
        .into_iter()
        .find(|t| t.uuid.as_deref() == Some(uuid.as_str()))
        .ok_or(TenancyError::NotFound)?;
    Ok(token_view(&row, Some(secret)))
}

/// `GET .../applications/{client_id}/tokens`: without the secrets.
pub async fn tokens(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    client_id: &str,
) -> Result<api::ApplicationTokens, TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let app = app_row(ctx, &org, client_id).await?;
    let rows = db::tenancy::tokens::of_application(ctx.db.pool(), app.id).await?;
    Ok(api::ApplicationTokens {
        tokens: rows.iter().map(|t| token_view(t, None)).collect(),
    })
}

/// `DELETE .../applications/{client_id}/tokens/{uuid}`: revokes a token.
pub async fn revoke_token(
    ctx: &Ctx,
    caller: &Caller,
    org_name: &str,
    client_id: &str,
    uuid: &str,
) -> Result<(), TenancyError> {
    let org = admin_org(ctx, caller, org_name).await?;
    let app = app_row(ctx, &org, client_id).await?;
    if !db::tenancy::tokens::delete_of_application(ctx.db.pool(), app.id, uuid).await? {
        return Err(TenancyError::NotFound);
    }
    ctx.audit.record(
        caller,
        Event::namespace("revoke_oauth_api_token", org_name, json!({ "oauth_token_uuid": uuid, "application_name": app.name, "client_id": client_id })),
        ctx.now_ms(),
    );
    Ok(())
}
