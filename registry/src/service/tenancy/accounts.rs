//! Users: the first-user bootstrap (`/api/v1/user/initialize`, `quayside admin create-user`),
//! sign-up, superuser management, the user's own settings (its time machine window) and access
//! tokens. Passwords are hashed and checked by [`crate::service::access::passwords`].

use quayside_client as api;
use serde_json::json;

use crate::db;
use crate::db::tenancy::namespaces::{NamespaceRow, NewUser};
use crate::service::access::authz::{self, Action, Resource};
use crate::service::access::passwords;
use crate::service::content::quota;
use crate::service::operations::audit::{Caller, Event};
use crate::service::{
    AccountError, Ctx, Principal, TenancyError, UserRef, hash_secret, random_token, views,
};

/// Scopes of a token that may do everything its user may.
pub const ALL_SCOPES: &str =
    "org:admin repo:admin repo:create repo:read repo:write super:user user:admin user:read";

/// Checks a namespace (user or organization) name: Quay's `[a-z0-9]+([._-][a-z0-9]+)*`, 2 to 255
/// characters. Such names are always valid OCI path components.
pub fn validate_namespace_name(name: &str) -> Result<(), String> {
    let ok_shape = {
        let mut prev_sep = true;
        let mut ok = !name.is_empty();
        for c in name.chars() {
            let sep = matches!(c, '.' | '_' | '-');
            if !(sep || c.is_ascii_lowercase() || c.is_ascii_digit()) || (sep && prev_sep) {
                ok = false;
                break;
            }
            prev_sep = sep;
        }
        ok && !prev_sep
    };
    if !(2..=255).contains(&name.len()) || !ok_shape {
        return Err(format!(
            "Invalid namespace {name}: names must be 2 to 255 characters of lower-case letters, digits and single separators (. _ -), starting and ending with a letter or digit"
        ));
    }
    Ok(())
}

fn validate_password(password: &str) -> Result<(), AccountError> {
    if password.chars().count() < 8 || password.chars().any(char::is_whitespace) {
        return Err(AccountError::Invalid {
            field: "password",
            message: "Password must be at least 8 characters and contain no whitespace.".into(),
        });
    }
    Ok(())
}

pub(crate) fn validate_email(email: &str) -> Result<(), AccountError> {
    let valid = email.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
    });
    if !valid {
        return Err(AccountError::Invalid {
            field: "email",
            message: format!("Invalid email address: {email}"),
        });
    }
    Ok(())
}

/// What `POST /api/v1/user/initialize` returns.
#[derive(Debug)]
pub struct Initialized {
    pub username: String,
    pub email: String,
    pub encrypted_password: String,
    pub access_token: Option<String>,
}

/// Creates the first user as a superuser, while the database has no users.
pub async fn initialize(
    ctx: &Ctx,
    username: &str,
    password: &str,
    email: &str,
    want_token: bool,
    initialize_token: Option<&str>,
) -> Result<Initialized, AccountError> {
    if !ctx.config.features.user_initialize {
        return Err(AccountError::NotAllowed(
            "Cannot initialize user: FEATURE_USER_INITIALIZE is disabled".into(),
        ));
    }
    if let Some(expected) = &ctx.config.user_initialize_token {
        let given = initialize_token.unwrap_or_default();
        // Compared as digests, so the time taken says nothing about the token.
        let digest = |t: &str| ring::digest::digest(&ring::digest::SHA256, t.as_bytes());
        if digest(given).as_ref() != digest(expected).as_ref() {
            return Err(AccountError::NotAllowed(
                "Cannot initialize user: this registry requires its initialize_token".into(),
            ));
        }
    }
    let already =
        || AccountError::NotAllowed("Cannot initialize user in a non-empty database".into());
    // Cheap early answer; the singleton row claimed below is what decides under concurrency.
    if db::tenancy::namespaces::count_users(ctx.db.pool()).await? > 0 {
        return Err(already());
    }
    let email = (!email.is_empty()).then_some(email);
    let hash = validated_hash(username, password, email).await?;
    let now = ctx.now_ms();
    let mut tx = ctx.db.begin().await?;
    match db::tenancy::namespaces::claim_initialization(&mut tx, now).await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => return Err(already()),
        Err(e) => return Err(e.into()),
    }
    let user = insert_user(ctx, &mut *tx, username, &hash, email, true).await?;
    match tx.commit().await {
        Ok(()) => {}
        Err(e) if e.is_unique_violation() => return Err(already()),
        Err(e) => return Err(e.into()),
    }
    let access_token = if want_token {
        Some(create_access_token(ctx, &user, ALL_SCOPES).await?)
    } else {
        None
    };
    Ok(Initialized {
        username: user.name,
        email: email.unwrap_or_default().to_owned(),
        encrypted_password: ctx.sealer().seal(password),
        access_token,
    })
}

/// Creates a user (and so their namespace).
pub async fn create_user(
    ctx: &Ctx,
    username: &str,
    password: &str,
    email: Option<&str>,
    superuser: bool,
) -> Result<UserRef, AccountError> {
    let hash = validated_hash(username, password, email).await?;
    insert_user(ctx, ctx.db.pool(), username, &hash, email, superuser).await
}

/// Checks a new user's name, password and e-mail, and hashes the password.
async fn validated_hash(
    username: &str,
    password: &str,
    email: Option<&str>,
) -> Result<String, AccountError> {
    validate_namespace_name(username).map_err(|message| AccountError::Invalid {
        field: "username",
        message,
    })?;
    validate_password(password)?;
    if let Some(email) = email {
        validate_email(email)?;
    }
    Ok(passwords::hash_password(password).await?)
}

async fn insert_user<'c>(
    ctx: &Ctx,
    ex: impl db::Exec<'c>,
    username: &str,
    hash: &str,
    email: Option<&str>,
    superuser: bool,
) -> Result<UserRef, AccountError> {
    let new = NewUser {
        name: username,
        email,
        password_hash: Some(hash),
        superuser,
        tag_expiration_s: ctx.config.default_tag_expiration_s,
    };
    match db::tenancy::namespaces::insert_user(ex, &new, ctx.now_ms()).await {
        Ok(id) => Ok(UserRef {
            id,
            name: username.to_owned(),
            superuser: superuser || ctx.is_config_superuser(username),
        }),
        Err(e) if e.is_unique_violation() => Err(AccountError::Conflict(
            "A user or organization with this name already exists".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Why an account may not be given access in a namespace (see [`delegate_account`]).
#[derive(Debug, PartialEq, Eq)]
pub enum DelegateRefusal {
    /// No user or robot of that name (organizations never receive permissions).
    Unknown,
    /// A robot of another namespace.
    ForeignRobot,
}

/// The one rule for who may be given access in namespace `owner_id`, used by every route that
/// grants it (repository permissions, team membership, default permissions): an existing user,
/// or a robot owned by that namespace itself (decided by the robot's owner, not its name).
/// Never an organization, never another namespace's robot.
pub async fn delegate_account(
    ctx: &Ctx,
    owner_id: i64,
    name: &str,
) -> Result<Result<NamespaceRow, DelegateRefusal>, TenancyError> {
    let Some(account) = db::tenancy::namespaces::by_name(ctx.db.pool(), name)
        .await?
        .filter(|a| a.is_user() || a.is_robot())
    else {
        return Ok(Err(DelegateRefusal::Unknown));
    };
    if account.is_robot() {
        let robot = db::tenancy::robots::by_id(ctx.db.pool(), account.id).await?;
        if robot.is_none_or(|r| r.owner_id != owner_id) {
            return Ok(Err(DelegateRefusal::ForeignRobot));
        }
    }
    Ok(Ok(account))
}

/// Issues a new access token for `user`; the secret is returned once and stored hashed.
pub async fn create_access_token(
    ctx: &Ctx,
    user: &UserRef,
    scopes: &str,
) -> Result<String, AccountError> {
    let token = random_token(40);
    db::tenancy::tokens::insert(
        ctx.db.pool(),
        &hash_secret(&token),
        user.id,
        scopes,
        ctx.now_ms(),
        None,
        &db::tenancy::tokens::TokenMeta::default(),
    )
    .await?;
    Ok(token)
}

/// The signed-in user behind a principal that may act as a user (not robots, not anonymous).
pub fn acting_user(principal: &Principal) -> Result<&UserRef, TenancyError> {
    match principal {
        Principal::User(u) => Ok(u),
        Principal::OAuth(o) => Ok(&o.user),
        Principal::Anonymous => Err(TenancyError::Forbidden { anonymous: true }),
        Principal::Robot(_) | Principal::Token(_) => {
            Err(TenancyError::Forbidden { anonymous: true })
        }
    }
}

fn is_superuser(ctx: &Ctx, row: &NamespaceRow) -> bool {
    row.superuser || ctx.is_config_superuser(&row.name)
}

/// `GET /api/v1/user/`.
pub async fn current_user(ctx: &Ctx, caller: &Caller) -> Result<api::User, TenancyError> {
    let user = acting_user(&caller.principal)?;
    if let Some(scopes) = caller.principal.scopes()
        && !(scopes.has(crate::service::scopes::Scope::UserRead)
            || scopes.has(crate::service::scopes::Scope::UserAdmin))
    {
        return Err(TenancyError::Forbidden { anonymous: false });
    }
    let row = db::tenancy::namespaces::by_id(ctx.db.pool(), user.id)
        .await?
        .ok_or(TenancyError::Forbidden { anonymous: true })?;
    let mut organizations = Vec::new();
    for org in db::tenancy::namespaces::orgs_of_account(ctx.db.pool(), user.id).await? {
        let is_admin = authz::can(
            ctx,
            &caller.principal,
            Action::AdminNamespace,
            Resource::Namespace(&org.name),
        )
        .await?;
        let can_create = authz::can(
            ctx,
            &caller.principal,
            Action::CreateRepo,
            Resource::Namespace(&org.name),
        )
        .await?;
        organizations.push(api::UserOrganization {
            avatar: views::avatar(&org.name, org.email.as_deref(), "user"),
            name: org.name,
            can_create_repo: can_create,
            public: false,
            is_org_admin: Some(is_admin),
            preferred_namespace: Some(false),
        });
    }
    Ok(api::User {
        anonymous: false,
        avatar: views::avatar(&row.name, row.email.as_deref(), "user"),
        username: row.name.clone(),
        can_create_repo: true,
        is_me: true,
        verified: true,
        email: row.email.clone(),
        logins: Vec::new(),
        invoice_email: false,
        invoice_email_address: None,
        preferred_namespace: false,
        tag_expiration_s: row.tag_expiration_s,
        prompts: Vec::new(),
        company: None,
        family_name: None,
        given_name: None,
        location: None,
        is_free_account: true,
        has_password_set: row.password_hash.is_some(),
        quotas: quota::summaries(ctx, row.id).await?,
        quota_report: quota::namespace_report(ctx, row.id).await?,
        organizations,
        super_user: is_superuser(ctx, &row).then_some(true),
    })
}

/// `GET /api/v1/users/{username}` (Quay's `getUserInformation`): any user (not an
/// organization or robot) by name. The user themself gets their `GET /user/` view; anyone
/// else the name and avatar, and a superuser caller also `super_user: false` (Quay's rule: it
/// says whether the user is the calling superuser).
pub async fn user_information(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
) -> Result<api::UserInformation, TenancyError> {
    let row = user_row(ctx, username).await?;
    if caller.principal.user().is_some_and(|u| u.id == row.id) {
        return Ok(api::UserInformation::Me(Box::new(
            current_user(ctx, caller).await?,
        )));
    }
    let superuser = authz::can(
        ctx,
        &caller.principal,
        Action::SuperUser,
        Resource::Registry,
    )
    .await?;
    Ok(api::UserInformation::Other(api::PublicUser {
        anonymous: false,
        avatar: views::avatar(&row.name, row.email.as_deref(), "user"),
        username: row.name,
        super_user: superuser.then_some(false),
    }))
}

async fn superuser_view(ctx: &Ctx, row: &NamespaceRow) -> Result<api::SuperUserUser, TenancyError> {
    Ok(api::SuperUserUser {
        kind: "user".into(),
        name: row.name.clone(),
        username: row.name.clone(),
        email: row.email.clone(),
        verified: true,
        avatar: views::avatar(&row.name, row.email.as_deref(), "user"),
        super_user: is_superuser(ctx, row),
        global_readonly_super_user: false,
        enabled: row.enabled,
        quotas: quota::summaries(ctx, row.id).await?,
        quota_report: quota::namespace_report(ctx, row.id).await?,
    })
}

/// A page of a superuser listing: `limit` (1 to 100) entries after the token's position, or
/// every entry without `limit`, as Quay pages `/superuser/users/` and `/superuser/organizations/`.
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    pub limit: Option<i64>,
    pub next_page: Option<String>,
}

/// The largest page a superuser listing serves.
pub const MAX_PAGE_LIMIT: i64 = 100;

impl PageRequest {
    /// The id to start after and the page size, checked; `kind` names the listing in the token.
    pub(crate) fn start(&self, ctx: &Ctx, kind: &str) -> Result<(i64, i64), TenancyError> {
        let limit = match self.limit {
            None => i64::MAX,
            Some(l) if l > MAX_PAGE_LIMIT => {
                return Err(TenancyError::Invalid(
                    "Page limit cannot be above 100".into(),
                ));
            }
            Some(l) if l < 1 => {
                return Err(TenancyError::Invalid(
                    "Page limit must be at least 1".into(),
                ));
            }
            Some(l) => l,
        };
        let after = match &self.next_page {
            None => 0,
            Some(t) if t.is_empty() => 0,
            Some(token) => open_page_token(ctx, kind, token)
                .ok_or_else(|| TenancyError::Invalid("Invalid next_page token".into()))?,
        };
        Ok((after, limit))
    }

    /// The token of the page after one whose last id is `last_id`, when more follow.
    pub(crate) fn next(
        &self,
        ctx: &Ctx,
        kind: &str,
        more: bool,
        last_id: Option<i64>,
    ) -> Option<String> {
        match (self.limit, more, last_id) {
            (Some(_), true, Some(id)) => Some(seal_page_token(ctx, kind, id)),
            _ => None,
        }
    }
}

/// A page token: the position sealed with the installation key, so it cannot be forged.
fn seal_page_token(ctx: &Ctx, kind: &str, after_id: i64) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(ctx.sealer().seal(&format!("{kind}:{after_id}")))
}

fn open_page_token(ctx: &Ctx, kind: &str, token: &str) -> Option<i64> {
    use base64::Engine;
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    let text = ctx.sealer().open(std::str::from_utf8(&sealed).ok()?)?;
    text.strip_prefix(kind)?.strip_prefix(':')?.parse().ok()
}

/// `GET /api/v1/superuser/users/`: every user, or a page of them with `limit`.
pub async fn list_users(
    ctx: &Ctx,
    caller: &Caller,
    include_disabled: bool,
    page: &PageRequest,
) -> Result<api::SuperUserUsers, TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let (after, limit) = page.start(ctx, "users")?;
    let mut rows = db::tenancy::namespaces::list_users_page(
        ctx.db.pool(),
        include_disabled,
        after,
        limit.saturating_add(1),
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.min(rows.len() as i64) as usize);
    let mut users = Vec::with_capacity(rows.len());
    for r in &rows {
        users.push(superuser_view(ctx, r).await?);
    }
    Ok(api::SuperUserUsers {
        users,
        next_page: page.next(ctx, "users", more, rows.last().map(|r| r.id)),
    })
}

/// `GET /api/v1/superuser/users/{username}`.
pub async fn get_user(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
) -> Result<api::SuperUserUser, TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let row = user_row(ctx, username).await?;
    superuser_view(ctx, &row).await
}

async fn user_row(ctx: &Ctx, username: &str) -> Result<NamespaceRow, TenancyError> {
    db::tenancy::namespaces::by_name(ctx.db.pool(), username)
        .await?
        .filter(NamespaceRow::is_user)
        .ok_or(TenancyError::NotFound)
}

/// `POST /api/v1/superuser/users/`: creates a user with a generated password.
pub async fn create_user_by_superuser(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
    email: Option<&str>,
) -> Result<api::CreatedUser, TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let password = random_token(32);
    create_user(ctx, username, &password, email, false).await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "user_create",
            username,
            serde_json::json!({ "email": email, "username": username, "superuser": caller.principal.name() }),
        ),
        ctx.now_ms(),
    );
    Ok(api::CreatedUser {
        username: username.to_owned(),
        email: email.map(str::to_owned),
        encrypted_password: ctx.sealer().seal(&password),
        password,
    })
}

/// `POST /api/v1/user/`: self-service sign-up, when `FEATURE_USER_CREATION` allows it.
pub async fn sign_up(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
    password: &str,
    email: Option<&str>,
) -> Result<api::User, TenancyError> {
    if !ctx.config.features.user_creation {
        return Err(TenancyError::NotFound);
    }
    if db::tenancy::namespaces::by_name(ctx.db.pool(), username)
        .await?
        .is_some()
    {
        return Err(TenancyError::Invalid("The username already exists".into()));
    }
    let user = create_user(ctx, username, password, email, false).await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "user_create",
            username,
            serde_json::json!({ "email": email, "username": username }),
        ),
        ctx.now_ms(),
    );
    let me = Caller::new(Principal::User(user), caller.ip);
    current_user(ctx, &me).await
}

/// `PUT /api/v1/superuser/users/{username}`: password, e-mail, enabled.
pub async fn update_user(
    ctx: &Ctx,
    caller: &Caller,
    username: &str,
    password: Option<&str>,
    email: Option<&str>,
    enabled: Option<bool>,
) -> Result<api::SuperUserUser, TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let row = user_row(ctx, username).await?;
    if is_superuser(ctx, &row) {
        return Err(TenancyError::Invalid("Cannot update a superuser".into()));
    }
    let by = caller.principal.name().map(str::to_owned);
    let now = ctx.now_ms();
    if let Some(password) = password {
        validate_password(password)?;
        let hash = passwords::hash_password(password).await?;
        db::tenancy::namespaces::set_password_hash(ctx.db.pool(), row.id, &hash).await?;
        ctx.audit.record(
            caller,
            Event::namespace(
                "user_change_password",
                username,
                serde_json::json!({ "username": username, "superuser": by }),
            ),
            now,
        );
    }
    if let Some(email) = email {
        validate_email(email)?;
        db::tenancy::namespaces::set_email(ctx.db.pool(), row.id, Some(email)).await?;
        ctx.audit.record(
            caller,
            Event::namespace(
                "user_change_email",
                username,
                serde_json::json!({ "old_email": row.email, "email": email, "superuser": by }),
            ),
            now,
        );
    }
    if let Some(enabled) = enabled {
        db::tenancy::namespaces::set_enabled(ctx.db.pool(), row.id, enabled).await?;
        let kind = if enabled {
            "user_enable"
        } else {
            "user_disable"
        };
        ctx.audit.record(
            caller,
            Event::namespace(
                kind,
                username,
                serde_json::json!({ "username": username, "superuser": by }),
            ),
            now,
        );
    }
    ctx.auth_cache.clear().await;
    let row = user_row(ctx, username).await?;
    superuser_view(ctx, &row).await
}

/// `DELETE /api/v1/superuser/users/{username}`: the user, their robots and their namespace's
/// repositories go.
pub async fn delete_user(ctx: &Ctx, caller: &Caller, username: &str) -> Result<(), TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let row = user_row(ctx, username).await?;
    if is_superuser(ctx, &row) {
        return Err(TenancyError::Invalid("Cannot delete a superuser".into()));
    }
    ctx.audit.record(
        caller,
        Event::namespace(
            "user_delete",
            username,
            serde_json::json!({ "username": username }),
        ),
        ctx.now_ms(),
    );
    let mut tx = ctx.db.begin().await?;
    db::tenancy::namespaces::delete(&mut tx, row.id).await?;
    tx.commit().await?;
    ctx.pull_cache.invalidate().await;
    ctx.auth_cache.clear().await;
    Ok(())
}

impl Ctx {
    /// Listed in `SUPER_USERS`.
    pub fn is_config_superuser(&self, name: &str) -> bool {
        self.config.super_users.iter().any(|s| s == name)
    }
}

/// Whether `seconds` is one of `TAG_EXPIRATION_OPTIONS`: the windows a namespace may choose.
pub fn window_allowed(ctx: &Ctx, seconds: i64) -> bool {
    ctx.config
        .tag_expiration_options
        .iter()
        .filter_map(|o| crate::config::parse_duration_s(o))
        .any(|o| o == seconds)
}

/// `PUT /api/v1/user/` with `tag_expiration_s`: the time machine window of the caller's own
/// namespace (organizations set theirs with `PUT /api/v1/organization/{org}`).
pub async fn set_user_window(ctx: &Ctx, caller: &Caller, seconds: i64) -> Result<(), TenancyError> {
    let user = acting_user(&caller.principal)?.clone();
    if seconds < 0 {
        return Err(TenancyError::Invalid(
            "tag_expiration_s: must be 0 or more seconds".into(),
        ));
    }
    if !window_allowed(ctx, seconds) {
        return Err(TenancyError::Refused(
            "Invalid tag expiration option".into(),
        ));
    }
    db::tenancy::namespaces::set_tag_expiration(ctx.db.pool(), user.id, seconds).await?;
    ctx.audit.record(
        caller,
        Event::namespace(
            "user_change_tag_expiration",
            &user.name,
            json!({ "tag_expiration": seconds }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

/// The web UI's user settings: a signed-in user changes their own password and/or e-mail,
/// proving the current password first (a stolen session alone cannot take the account over).
/// Only a password sign-in may do this (`Principal::User`; not an OAuth token).
pub async fn change_own_details(
    ctx: &Ctx,
    caller: &Caller,
    current_password: &str,
    new_password: Option<&str>,
    email: Option<&str>,
) -> Result<(), TenancyError> {
    let Principal::User(user) = &caller.principal else {
        return Err(TenancyError::Forbidden {
            anonymous: caller.principal.is_anonymous(),
        });
    };
    let credentials = crate::service::access::auth::Credentials::Basic {
        username: user.name.clone(),
        password: current_password.to_owned(),
    };
    match crate::service::access::auth::authenticate(ctx, &credentials, caller.ip).await {
        Ok(Principal::User(u)) if u.id == user.id => {}
        Err(crate::service::access::auth::AuthError::Internal(e)) => return Err(e.into()),
        _ => {
            return Err(TenancyError::Invalid(
                "The current password is not right.".into(),
            ));
        }
    }
    let now = ctx.now_ms();
    if let Some(password) = new_password {
        validate_password(password)?;
        let hash = passwords::hash_password(password).await?;
        db::tenancy::namespaces::set_password_hash(ctx.db.pool(), user.id, &hash).await?;
        ctx.audit.record(
            caller,
            Event::namespace(
                "user_change_password",
                &user.name,
                json!({ "username": user.name }),
            ),
            now,
        );
    }
    if let Some(email) = email {
        validate_email(email)?;
        db::tenancy::namespaces::set_email(ctx.db.pool(), user.id, Some(email)).await?;
        ctx.audit.record(
            caller,
            Event::namespace("user_change_email", &user.name, json!({ "email": email })),
            now,
        );
    }
    ctx.auth_cache.clear().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names() {
        for ok in ["ab", "alice", "my-org", "a.b_c-d", "x1"] {
            assert!(validate_namespace_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a",
            "Alice",
            "-ab",
            "ab-",
            "a--b",
            "a b",
            "a/b",
            "a+b",
            &"a".repeat(256),
        ] {
            assert!(validate_namespace_name(bad).is_err(), "{bad}");
        }
    }
}
