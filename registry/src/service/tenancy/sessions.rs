//! Web UI sessions.
//!
//! Rule: a session is a user's password sign-in, remembered server-side. The browser holds a
//! random 48-character value in an `HttpOnly` cookie; the database holds its SHA-256 (never the
//! value), the user's id, the session's CSRF token and its end ([`LIFETIME_MS`]). Every request
//! re-reads the account, so a disabled, deleted or demoted user's session carries no more than
//! the account now has; sign-out deletes the row. Only users sign in here: robots, `$app`
//! tokens and `$oauthtoken` are registry or API credentials, not UI ones. A signed-in session's
//! principal is [`Principal::User`], so every page decides with the same `authz::can` as the
//! API.

use std::net::IpAddr;

use crate::db;
use crate::service::access::auth::{self, AuthError, Credentials};
use crate::service::{
    Ctx, Internal, Principal, UserRef, constant_time_eq, hash_secret, random_token,
};

/// How long a session lasts after sign-in: 12 hours.
pub const LIFETIME_MS: i64 = 12 * 3600 * 1000;

/// A resolved session.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: UserRef,
    pub csrf: String,
    /// The hash of the cookie's value (the row's key).
    pub id_hash: String,
}

/// A new session: the cookie value to hand the browser once, and the session.
pub struct SignedIn {
    pub cookie: String,
    pub session: Session,
}

/// Why a sign-in was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("Invalid username or password.")]
    Invalid,
    #[error("This account is disabled.")]
    Disabled,
    #[error("Too many sign-in attempts; try again shortly.")]
    Overloaded,
    #[error(transparent)]
    Internal(#[from] Internal),
}

/// Checks `username`/`password` (the same check as registry logins, with its per-client bound)
/// and opens a session.
pub async fn sign_in(
    ctx: &Ctx,
    username: &str,
    password: &str,
    client: Option<IpAddr>,
) -> Result<SignedIn, SignInError> {
    if username.is_empty() || username.contains('+') || username.starts_with('$') {
        return Err(SignInError::Invalid);
    }
    let credentials = Credentials::Basic {
        username: username.to_owned(),
        password: password.to_owned(),
    };
    let user = match auth::authenticate(ctx, &credentials, client).await {
        Ok(Principal::User(u)) => u,
        Ok(_) => return Err(SignInError::Invalid),
        Err(AuthError::Disabled) => return Err(SignInError::Disabled),
        Err(AuthError::Overloaded(_)) => return Err(SignInError::Overloaded),
        Err(AuthError::Internal(e)) => return Err(SignInError::Internal(e)),
        Err(_) => return Err(SignInError::Invalid),
    };
    open(ctx, user).await.map_err(SignInError::Internal)
}

/// Opens a session for `user` (after a sign-in, or for the first user just created).
pub async fn open(ctx: &Ctx, user: UserRef) -> Result<SignedIn, Internal> {
    let cookie = random_token(48);
    let csrf = random_token(32);
    let id_hash = hash_secret(&cookie);
    let now = ctx.now_ms();
    // Ended sessions go when a new one starts (indexed on `expires_ms`; no worker needed).
    db::tenancy::sessions::delete_expired(ctx.db.pool(), now).await?;
    db::tenancy::sessions::insert(
        ctx.db.pool(),
        &id_hash,
        user.id,
        &csrf,
        now,
        now + LIFETIME_MS,
    )
    .await?;
    Ok(SignedIn {
        cookie,
        session: Session {
            user,
            csrf,
            id_hash,
        },
    })
}

/// The session a cookie value names, if it is current and its user is an enabled user.
pub async fn resolve(ctx: &Ctx, cookie: &str) -> Result<Option<Session>, Internal> {
    if cookie.len() != 48 || !cookie.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(None);
    }
    let id_hash = hash_secret(cookie);
    let Some(row) = db::tenancy::sessions::get(ctx.db.pool(), &id_hash).await? else {
        return Ok(None);
    };
    if row.expires_ms <= ctx.now_ms() {
        db::tenancy::sessions::delete(ctx.db.pool(), &id_hash).await?;
        return Ok(None);
    }
    let Some(account) = db::tenancy::namespaces::token_account(ctx.db.pool(), row.user_id).await?
    else {
        return Ok(None);
    };
    if account.kind != db::tenancy::namespaces::KIND_USER || !account.enabled {
        return Ok(None);
    }
    let superuser = account.superuser || ctx.is_config_superuser(&account.name);
    Ok(Some(Session {
        user: UserRef {
            id: row.user_id,
            name: account.name,
            superuser,
        },
        csrf: row.csrf,
        id_hash,
    }))
}

/// Whether `presented` is the session's CSRF token (compared in constant time).
pub fn csrf_matches(session: &Session, presented: &str) -> bool {
    constant_time_eq(session.csrf.as_bytes(), presented.as_bytes())
}

/// Ends a session.
pub async fn sign_out(ctx: &Ctx, session: &Session) -> Result<(), Internal> {
    db::tenancy::sessions::delete(ctx.db.pool(), &session.id_hash).await?;
    Ok(())
}

/// Ends every other session of the session's user (after a password change).
pub async fn end_others(ctx: &Ctx, session: &Session) -> Result<(), Internal> {
    db::tenancy::sessions::delete_of_user_except(ctx.db.pool(), session.user.id, &session.id_hash)
        .await?;
    Ok(())
}

/// Whether the installation has no user yet (the UI then offers the first-user page).
pub async fn needs_first_user(ctx: &Ctx) -> Result<bool, Internal> {
    Ok(db::tenancy::namespaces::count_users(ctx.db.pool()).await? == 0)
}
