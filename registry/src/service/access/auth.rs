//! Authentication: turns credentials into a [`Principal`].
//!
//! - Basic `username:password` for users (the password or Quay's encrypted password);
//!   `$app:<application-specific token>` for users' application tokens (as Quay: only with the
//!   user name `$app`, while `FEATURE_APP_SPECIFIC_TOKENS` is on);
//!   `$oauthtoken:<access token>` for access tokens; `owner+robot:<token>` for robots, where the
//!   token is the robot's own or a short-lived one from a federated (keyless) exchange.
//! - Bearer: a registry JWT issued by `/v2/auth` (for this registry's audience, and only while its
//!   account, looked up by id, exists and is enabled), or an access token.
//!
//! Successful password checks are cached briefly (argon2 is deliberately slow, and clients send
//! basic credentials with every token request). So are failed ones, keyed by a hash of the user
//! name, the password tried and the account's stored hash: an attacker repeating the same wrong
//! password costs no argon2, while the right password (another key) and a changed password (its
//! new stored hash is part of the key) are never refused by the cache, so it locks no one out.
//! Argon2 itself runs within [`passwords::login_slot`]'s global and per-client bounds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::db;
use crate::service::invalidation::{Invalidation, Topic};
use crate::service::scopes::Scopes;
use crate::service::{
    Ctx, Grant, Internal, OAuthRef, Principal, RobotRef, UserRef, access::passwords,
    constant_time_eq, hash_secret,
};

const CACHE_TTL_MS: i64 = 60_000;
/// The user name that goes with an application-specific token (Quay's).
pub const APP_TOKEN_USERNAME: &str = "$app";
const CACHE_MAX: usize = 10_000;

#[derive(Clone)]
pub enum Credentials {
    Basic { username: String, password: String },
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("invalid or expired token")]
    InvalidToken,
    #[error("this account is disabled")]
    Disabled,
    /// `ROBOTS_DISALLOW` is set.
    #[error("Robot accounts have been disabled. Please contact your administrator.")]
    RobotsDisabled,
    #[error("Could not find robot with username: {0} and supplied password.")]
    InvalidRobot(String),
    /// Too many password checks at once (globally or from this client); answered 429.
    #[error(transparent)]
    Overloaded(#[from] passwords::Overloaded),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<crate::db::DbError> for AuthError {
    fn from(e: crate::db::DbError) -> Self {
        AuthError::Internal(Internal::Db(e))
    }
}

/// Failed basic credentials remembered at most (beyond, expired ones go, then all).
const FAILED_MAX: usize = 4096;
const FAILED_TTL_MS: i64 = 60_000;

/// Recently verified basic credentials, keyed by a hash of `username\0password`, and recently
/// failed ones (see the module documentation). Entries hold while the
/// [`Topic::Credentials`] generation stands: an account change on any replica clears them
/// everywhere ([`crate::service::invalidation`]).
pub struct CredentialCache {
    bus: Arc<Invalidation>,
    /// The generation `entries` and `failed` were filled at.
    seen: AtomicU64,
    entries: Mutex<HashMap<String, (UserRef, i64)>>,
    failed: Mutex<HashMap<String, i64>>,
    /// Checks under way, by the key of their credentials: a concurrent check of the same
    /// credentials waits for the first and reads its outcome from the caches, so a client
    /// sending its credentials on several parallel requests costs one argon2.
    checking: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Holds the per-credentials turn of [`CredentialCache::checking`]; forgets it on drop when no
/// one else waits for it.
struct CheckTurn<'a> {
    cache: &'a CredentialCache,
    key: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for CheckTurn<'_> {
    fn drop(&mut self) {
        self._guard.take();
        if let Ok(mut checking) = self.cache.checking.lock()
            && Arc::strong_count(&self.lock) <= 2
        {
            checking.remove(&self.key);
        }
    }
}

impl CredentialCache {
    pub fn new(bus: Arc<Invalidation>) -> CredentialCache {
        CredentialCache {
            seen: AtomicU64::new(bus.generation(Topic::Credentials)),
            bus,
            entries: Mutex::default(),
            failed: Mutex::default(),
            checking: Mutex::default(),
        }
    }

    /// Whether the cache may answer: the listener is up, and entries filled at an older
    /// generation are dropped first.
    fn usable(&self) -> bool {
        if !self.bus.cache_allowed() {
            return false;
        }
        let now = self.bus.generation(Topic::Credentials);
        if self.seen.swap(now, Ordering::SeqCst) != now {
            self.forget();
        }
        true
    }

    async fn turn(&self, key: &str) -> CheckTurn<'_> {
        let lock = match self.checking.lock() {
            Ok(mut checking) => checking.entry(key.to_owned()).or_default().clone(),
            Err(_) => Arc::default(),
        };
        let guard = lock.clone().lock_owned().await;
        CheckTurn {
            cache: self,
            key: key.to_owned(),
            lock,
            _guard: Some(guard),
        }
    }

    fn failed_recently(&self, key: &str, now_ms: i64) -> bool {
        self.usable()
            && self
                .failed
                .lock()
                .is_ok_and(|f| f.get(key).is_some_and(|exp| *exp > now_ms))
    }

    fn put_failed(&self, key: String, now_ms: i64) {
        if let Ok(mut failed) = self.failed.lock() {
            if failed.len() >= FAILED_MAX {
                failed.retain(|_, exp| *exp > now_ms);
                if failed.len() >= FAILED_MAX {
                    failed.clear();
                }
            }
            failed.insert(key, now_ms + FAILED_TTL_MS);
        }
    }

    fn get(&self, key: &str, now_ms: i64) -> Option<UserRef> {
        if !self.usable() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(_, exp)| *exp > now_ms)
            .map(|(u, _)| u.clone())
    }

    fn put(&self, key: String, user: UserRef, now_ms: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_MAX {
                entries.retain(|_, (_, exp)| *exp > now_ms);
                if entries.len() >= CACHE_MAX {
                    entries.clear();
                }
            }
            entries.insert(key, (user, now_ms + CACHE_TTL_MS));
        }
    }

    /// Forgets everything, here and in every other replica (after a password change or a user
    /// is disabled or deleted).
    pub async fn clear(&self) {
        self.forget();
        self.bus.publish(Topic::Credentials).await;
    }

    fn forget(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
        if let Ok(mut failed) = self.failed.lock() {
            failed.clear();
        }
    }
}

/// Authenticates `credentials` presented by `client` (the peer's address, for the per-client
/// bound on password checks).
pub async fn authenticate(
    ctx: &Ctx,
    credentials: &Credentials,
    client: Option<IpAddr>,
) -> Result<Principal, AuthError> {
    match credentials {
        Credentials::Basic { username, password }
            if username == APP_TOKEN_USERNAME && ctx.config.app_tokens.enabled =>
        {
            app_token_user(ctx, password).await.map(Principal::User)
        }
        Credentials::Basic { username, password } if username == "$oauthtoken" => {
            access_token_user(ctx, password).await.map(Principal::OAuth)
        }
        Credentials::Basic { username, password } if username.contains('+') => {
            robot(ctx, username, password).await.map(Principal::Robot)
        }
        Credentials::Basic { username, password } => password_user(ctx, username, password, client)
            .await
            .map(Principal::User),
        Credentials::Bearer(token) if token.matches('.').count() == 2 => {
            let grant = ctx
                .jwt
                .verify(&ctx.db, token, &ctx.registry_service(), ctx.now_ms() / 1000)
                .await
                .map_err(|_| AuthError::InvalidToken)?;
            registry_token_account(ctx, grant)
                .await
                .map(Principal::Token)
        }
        Credentials::Bearer(token) => access_token_user(ctx, token).await.map(Principal::OAuth),
    }
}

/// A registry token is bound to its account's id: it is refused once that account is deleted
/// (a new account of the same name has another id) or disabled, or, for a robot, once its owner
/// is disabled. The names and the superuser flag are refreshed from the account, so a demoted
/// superuser's token carries no superuser power.
async fn registry_token_account(ctx: &Ctx, mut grant: Grant) -> Result<Grant, AuthError> {
    let id = match (&grant.user, &grant.robot) {
        (Some(u), _) => u.id,
        (None, Some(r)) => r.id,
        (None, None) => return Ok(grant),
    };
    let account = db::tenancy::namespaces::token_account(ctx.db.pool(), id)
        .await?
        .ok_or(AuthError::InvalidToken)?;
    if let Some(user) = &mut grant.user {
        if account.kind != db::tenancy::namespaces::KIND_USER {
            return Err(AuthError::InvalidToken);
        }
        if !account.enabled {
            return Err(AuthError::Disabled);
        }
        user.superuser = account.superuser || ctx.is_config_superuser(&account.name);
        user.name = account.name;
    } else if let Some(robot) = &mut grant.robot {
        let Some((owner, owner_enabled)) = account.owner else {
            return Err(AuthError::InvalidToken);
        };
        if account.kind != db::tenancy::namespaces::KIND_ROBOT {
            return Err(AuthError::InvalidToken);
        }
        if !account.enabled || !owner_enabled {
            return Err(AuthError::Disabled);
        }
        robot.name = account.name;
        robot.owner = owner;
    }
    Ok(grant)
}

fn user_ref(ctx: &Ctx, row: &db::tenancy::namespaces::NamespaceRow) -> UserRef {
    UserRef {
        id: row.id,
        name: row.name.clone(),
        superuser: row.superuser || ctx.is_config_superuser(&row.name),
    }
}

async fn password_user(
    ctx: &Ctx,
    username: &str,
    password: &str,
    client: Option<IpAddr>,
) -> Result<UserRef, AuthError> {
    let cache_key = hash_secret(&format!("{username}\0{password}"));
    if let Some(user) = ctx.auth_cache.get(&cache_key, ctx.now_ms()) {
        return Ok(user);
    }
    let _turn = ctx.auth_cache.turn(&cache_key).await;
    let now = ctx.now_ms();
    if let Some(user) = ctx.auth_cache.get(&cache_key, now) {
        return Ok(user);
    }
    let row = db::tenancy::namespaces::by_name(ctx.db.pool(), username).await?;
    let row = row.filter(|r| r.is_user());
    let stored = row.as_ref().and_then(|r| r.password_hash.as_deref());
    let failed_key = hash_secret(&format!(
        "{username}\0{password}\0{}",
        stored.unwrap_or(DUMMY_HASH)
    ));
    if ctx.auth_cache.failed_recently(&failed_key, now) {
        return Err(AuthError::InvalidCredentials);
    }
    let slot = passwords::login_slot(client).await?;
    let (Some(row), Some(hash)) = (row.as_ref(), stored) else {
        if row.is_none() {
            // Spend the same time as a real check so user names cannot be probed by timing.
            let _ = passwords::verify_password(&slot, password, DUMMY_HASH).await;
        }
        ctx.auth_cache.put_failed(failed_key, now);
        return Err(AuthError::InvalidCredentials);
    };
    let mut ok = passwords::verify_password(&slot, password, hash).await?;
    if !ok && let Some(unsealed) = ctx.sealer().open(password) {
        ok = passwords::verify_password(&slot, &unsealed, hash).await?;
    }
    drop(slot);
    if !ok {
        ctx.auth_cache.put_failed(failed_key, now);
        return Err(AuthError::InvalidCredentials);
    }
    if !row.enabled {
        return Err(AuthError::Disabled);
    }
    let user = user_ref(ctx, row);
    ctx.auth_cache.put(cache_key, user.clone(), now);
    Ok(user)
}

/// An application-specific token (user name `$app`): the unexpired token with this hash, of an
/// enabled user; the user acts with their own rights. Its use is recorded (`last_accessed`).
async fn app_token_user(ctx: &Ctx, token: &str) -> Result<UserRef, AuthError> {
    let now = ctx.now_ms();
    let found = db::tenancy::app_tokens::live_by_hash(ctx.db.pool(), &hash_secret(token), now)
        .await?
        .ok_or(AuthError::InvalidToken)?;
    let row = db::tenancy::namespaces::by_id(ctx.db.pool(), found.namespace_id)
        .await?
        .filter(|r| r.is_user())
        .ok_or(AuthError::InvalidToken)?;
    if !row.enabled {
        return Err(AuthError::Disabled);
    }
    ctx.audit.touch_app_token(found.id, now);
    Ok(user_ref(ctx, &row))
}

async fn access_token_user(ctx: &Ctx, token: &str) -> Result<OAuthRef, AuthError> {
    let found = db::tenancy::tokens::find(ctx.db.pool(), &hash_secret(token), ctx.now_ms()).await?;
    let Some(found) = found else {
        return Err(AuthError::InvalidToken);
    };
    let row = db::tenancy::namespaces::by_id(ctx.db.pool(), found.namespace_id)
        .await?
        .filter(|r| r.is_user())
        .ok_or(AuthError::InvalidToken)?;
    if !row.enabled {
        return Err(AuthError::Disabled);
    }
    let application = match found.application_id {
        Some(id) => db::tenancy::apps::client_id_of(ctx.db.pool(), id).await?,
        None => None,
    };
    Ok(OAuthRef {
        user: user_ref(ctx, &row),
        scopes: Scopes::parse(&found.scopes).unwrap_or_default(),
        token_id: found.id,
        application,
    })
}

/// Authenticates a robot by its token (compared in constant time) or by a short-lived token
/// from a federated exchange.
async fn robot(ctx: &Ctx, name: &str, secret: &str) -> Result<RobotRef, AuthError> {
    if ctx.config.robots_disallow && !ctx.config.robots_whitelist.iter().any(|w| w == name) {
        return Err(AuthError::RobotsDisabled);
    }
    let invalid = || AuthError::InvalidRobot(name.to_owned());
    let row = db::tenancy::robots::by_name(ctx.db.pool(), name)
        .await?
        .ok_or_else(invalid)?;
    let owner = db::tenancy::namespaces::by_id(ctx.db.pool(), row.owner_id)
        .await?
        .ok_or_else(invalid)?;
    if !owner.enabled {
        return Err(AuthError::Disabled);
    }
    let ok = if secret.matches('.').count() == 2 {
        ctx.jwt
            .verify_robot_login(&ctx.db, secret, name, ctx.now_ms() / 1000)
            .await
            .is_ok()
    } else {
        constant_time_eq(hash_secret(secret).as_bytes(), row.token_hash.as_bytes())
    };
    if !ok {
        return Err(invalid());
    }
    ctx.audit.touch_robot(row.account_id, ctx.now_ms());
    Ok(RobotRef {
        id: row.account_id,
        name: row.name,
        owner: row.owner,
    })
}

/// An argon2 hash of a random password, verified against when the user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0qUQdtOjMDsGwi0jPCiAbs8Trm/zU+zLKmWe+JgjdXo";
