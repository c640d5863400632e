//! Application-specific tokens (Quay's `FEATURE_APP_SPECIFIC_TOKENS`): passwords a user creates
//! for registry logins with the user name `$app` (checked in `access::auth`).
//!
//! Rule: a token is shown in the clear only to its owner, on creation and on `GET` of that one
//! token (as Quay); it is stored hashed (what logins look up) and sealed with the installation
//! key (what that `GET` opens), never in the clear. It expires `APP_SPECIFIC_TOKEN_EXPIRATION`
//! after its creation (never without it); an expired or revoked token logs nobody in, and
//! [`gc_pass`] deletes tokens `EXPIRED_APP_SPECIFIC_TOKEN_GC` after they expired. With the
//! feature off every endpoint answers 404 and `$app` logs nobody in.

use quayside_client as api;
use serde_json::{Map, Value, json};

use crate::db;
use crate::service::access::authz::{self, Action, Resource};
use crate::service::operations::audit::{Caller, Event};
use crate::service::tenancy::accounts;
use crate::service::views::format_date;
use crate::service::{Ctx, TenancyError, hash_secret, random_token};

/// Length of a token (Quay's 60-character name and 60-character secret).
const TOKEN_LEN: usize = 120;
/// The window `expiring` looks ahead without a configured expiration (Quay's `4w`).
const DEFAULT_EXPIRATION_WINDOW_S: i64 = 28 * 86_400;

fn view(row: &db::tenancy::app_tokens::AppTokenRow, token_code: Option<String>) -> api::AppToken {
    api::AppToken {
        uuid: row.uuid.clone(),
        title: row.title.clone(),
        last_accessed: row.last_accessed_ms.map(format_date),
        created: Some(format_date(row.created_ms)),
        expiration: row.expires_ms.map(format_date),
        token_code,
    }
}

fn enabled(ctx: &Ctx) -> Result<(), TenancyError> {
    if ctx.config.app_tokens.enabled {
        Ok(())
    } else {
        Err(TenancyError::NotFound)
    }
}

/// Tokens "expiring soon": unexpired, expiring within a tenth of the configured lifetime.
fn expiring_soon(ctx: &Ctx, row: &db::tenancy::app_tokens::AppTokenRow, now_ms: i64) -> bool {
    let lifetime = ctx
        .config
        .app_tokens
        .expiration_s
        .unwrap_or(DEFAULT_EXPIRATION_WINDOW_S);
    let soon_ms = ((lifetime * 1000) as f64 * 0.1).ceil().max(1000.0) as i64;
    row.expires_ms
        .is_some_and(|e| e > now_ms && e <= now_ms + soon_ms)
}

/// `GET /user/apptoken`: the caller's own tokens (superusers too).
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    expiring: Option<bool>,
) -> Result<api::AppTokens, TenancyError> {
    enabled(ctx)?;
    let user = accounts::acting_user(&caller.principal)?;
    let now = ctx.now_ms();
    let rows = db::tenancy::app_tokens::of_user(ctx.db.pool(), user.id).await?;
    Ok(api::AppTokens {
        tokens: rows
            .iter()
            .filter(|r| expiring != Some(true) || expiring_soon(ctx, r, now))
            .map(|r| view(r, None))
            .collect(),
        only_expiring: expiring,
    })
}

/// `GET /superuser/apptokens`: every token of the installation (without their codes).
pub async fn list_all(
    ctx: &Ctx,
    caller: &Caller,
    expiring: Option<bool>,
) -> Result<api::AppTokens, TenancyError> {
    enabled(ctx)?;
    authz::require(
        ctx,
        &caller.principal,
        Action::SuperUser,
        Resource::Registry,
    )
    .await?;
    let now = ctx.now_ms();
    let rows = db::tenancy::app_tokens::all(ctx.db.pool()).await?;
    Ok(api::AppTokens {
        tokens: rows
            .iter()
            .filter(|r| expiring != Some(true) || expiring_soon(ctx, r, now))
            .map(|r| view(r, None))
            .collect(),
        only_expiring: expiring,
    })
}

/// `POST /user/apptoken` with `{"title": ...}`.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    body: &Map<String, Value>,
) -> Result<api::AppTokenAnswer, TenancyError> {
    enabled(ctx)?;
    let user = accounts::acting_user(&caller.principal)?.clone();
    let title = match body.get("title") {
        None => {
            return Err(TenancyError::Invalid(
                "'title' is a required property".into(),
            ));
        }
        Some(Value::String(t)) => t.clone(),
        Some(other) => {
            return Err(TenancyError::Invalid(format!(
                "{other} is not of type 'string'"
            )));
        }
    };
    if title.chars().count() > 255 {
        return Err(TenancyError::Invalid(
            "title: must be at most 255 characters".into(),
        ));
    }
    let now = ctx.now_ms();
    let code = random_token(TOKEN_LEN);
    let uuid = uuid::Uuid::new_v4().to_string();
    let sealed = ctx.sealer().seal(&code);
    let expires_ms = ctx.config.app_tokens.expiration_s.map(|s| now + s * 1000);
    db::tenancy::app_tokens::insert(
        ctx.db.pool(),
        &db::tenancy::app_tokens::NewAppToken {
            uuid: &uuid,
            namespace_id: user.id,
            title: &title,
            token_hash: &hash_secret(&code),
            token_sealed: &sealed,
            created_ms: now,
            expires_ms,
        },
    )
    .await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "create_app_specific_token",
            &user.name,
            json!({ "app_specific_token_title": title, "app_specific_token": uuid }),
        ),
        now,
    );
    let row = db::tenancy::app_tokens::by_uuid(ctx.db.pool(), &uuid, user.id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    Ok(api::AppTokenAnswer {
        token: view(&row, Some(code)),
    })
}

/// `GET /user/apptoken/{uuid}`: one of the caller's unexpired tokens, with its code.
pub async fn get(
    ctx: &Ctx,
    caller: &Caller,
    uuid: &str,
) -> Result<api::AppTokenAnswer, TenancyError> {
    enabled(ctx)?;
    let user = accounts::acting_user(&caller.principal)?;
    let row = db::tenancy::app_tokens::by_uuid(ctx.db.pool(), uuid, user.id)
        .await?
        .filter(|r| r.expires_ms.is_none_or(|e| e > ctx.now_ms()))
        .ok_or(TenancyError::NotFound)?;
    let code = ctx.sealer().open(&row.token_sealed).ok_or_else(|| {
        TenancyError::Refused(
            "The token was sealed with another installation secret; revoke it and create a new one"
                .into(),
        )
    })?;
    Ok(api::AppTokenAnswer {
        token: view(&row, Some(code)),
    })
}

/// `DELETE /user/apptoken/{uuid}`: revokes one of the caller's tokens (expired or not).
pub async fn revoke(ctx: &Ctx, caller: &Caller, uuid: &str) -> Result<(), TenancyError> {
    enabled(ctx)?;
    let user = accounts::acting_user(&caller.principal)?.clone();
    let row = db::tenancy::app_tokens::by_uuid(ctx.db.pool(), uuid, user.id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    if !db::tenancy::app_tokens::delete(ctx.db.pool(), uuid, user.id).await? {
        return Err(TenancyError::NotFound);
    }
    ctx.audit.record(
        caller,
        Event::namespace(
            "revoke_app_specific_token",
            &user.name,
            json!({ "app_specific_token_title": row.title, "app_specific_token": row.uuid }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

/// Deletes the tokens that expired more than `EXPIRED_APP_SPECIFIC_TOKEN_GC` ago; returns how
/// many. Idempotent, safe on every replica at once.
pub async fn gc_pass(ctx: &Ctx) -> Result<u64, crate::db::DbError> {
    let before = ctx.now_ms() - ctx.config.app_tokens.gc_window_s * 1000;
    db::tenancy::app_tokens::delete_expired_before(ctx.db.pool(), before).await
}
