//! Repository notifications: what to tell whom when something happens in a repository.
//!
//! Rules:
//! - Only a repository administrator (or a superuser) lists, creates, tests, resets and deletes
//!   a repository's notifications, as in Quay. A notification has an event ([`events`]), a
//!   method ([`methods`]) whose `config` is checked on create with Quay's messages (URLs through
//!   the SSRF guard), an `event_config` and a `title`.
//! - Raising an event only queues ([`raise_in`] inside the push's transaction, [`raise`]
//!   otherwise): one row per enabled notification in the database, so a slow or dead receiver
//!   never slows the push and a crash loses nothing. The `notifications` worker
//!   ([`delivery::worker_pass`]) delivers.
//! - Each failed attempt adds one to `number_of_failures` and is retried with backoff; at
//!   [`FAILURE_LIMIT`] (Quay's 3) the notification is no longer delivered (its queued events wait)
//!   until a reset (`POST .../notification/{uuid}`) or a success sets the count back to 0.
//! - `quay_notification` deliveries land in the receivers' in-app notifications
//!   ([`user_notifications`], [`dismiss`]); `email` needs the address confirmed for the
//!   repository ([`authorize_email`], [`confirm_email`]).

pub mod delivery;
pub mod events;
pub mod methods;

use quayside_client as api;
use serde_json::{Value, json};

use crate::db;
use crate::db::content::repositories::RepoRow;
pub use crate::db::operations::notifications::FAILURE_LIMIT;
use crate::db::operations::notifications::{NewNotification, NotificationRow};
use crate::oci::RepoName;
use crate::service::access::authz::{self, Action, Resource};
use crate::service::operations::audit::{Caller, Event as AuditEvent};
use crate::service::operations::mail;
use crate::service::{Ctx, Internal, TenancyError, views};
use events::{Event, Origin};
use methods::Method;

/// The repository after checking that the caller administers it.
async fn administered(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<RepoRow, TenancyError> {
    let name = RepoName::parse(&format!("{namespace}/{repository}"))
        .map_err(|_| TenancyError::NotFound)?;
    authz::require(ctx, &caller.principal, Action::Admin, Resource::Repo(&name)).await?;
    db::content::repositories::get(ctx.db.pool(), namespace, repository)
        .await?
        .ok_or(TenancyError::NotFound)
}

fn view(row: &NotificationRow) -> api::RepoNotification {
    api::RepoNotification {
        uuid: row.uuid.clone(),
        title: row.title.clone(),
        event: row.event.clone(),
        method: row.method.clone(),
        config: serde_json::from_str(&row.config).unwrap_or_else(|_| json!({})),
        event_config: serde_json::from_str(&row.event_config).unwrap_or_else(|_| json!({})),
        number_of_failures: row.number_of_failures,
    }
}

/// Quay's answer when a notification to test, reset or delete is not the repository's.
fn no_such(namespace: &str, repository: &str, uuid: &str) -> TenancyError {
    TenancyError::Invalid(format!(
        "No repository notification found for: {namespace}, {repository}, {uuid}"
    ))
}

/// `GET /repository/{repo}/notification/`.
pub async fn list(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
) -> Result<api::RepoNotifications, TenancyError> {
    let repo = administered(ctx, caller, namespace, repository).await?;
    let rows = db::operations::notifications::list(ctx.db.pool(), repo.id).await?;
    Ok(api::RepoNotifications {
        notifications: rows.iter().map(view).collect(),
    })
}

/// `GET /repository/{repo}/notification/{uuid}`.
pub async fn get(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
) -> Result<api::RepoNotification, TenancyError> {
    let repo = administered(ctx, caller, namespace, repository).await?;
    let row = db::operations::notifications::get(ctx.db.pool(), repo.id, uuid)
        .await?
        .ok_or(TenancyError::NotFound)?;
    Ok(view(&row))
}

/// `POST /repository/{repo}/notification/`: checks the event, the method and its config (Quay's
/// messages), stores the notification and records `add_repo_notification`.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    request: &api::CreateRepoNotification,
) -> Result<api::RepoNotification, TenancyError> {
    let repo = administered(ctx, caller, namespace, repository).await?;
    let method = Method::parse(&request.method)
        .ok_or_else(|| TenancyError::Invalid(format!("Unknown method: {}", request.method)))?;
    let event = Event::parse(&request.event)
        .ok_or_else(|| TenancyError::Invalid(format!("Unknown event: {}", request.event)))?;
    let event_config = match &request.event_config {
        Value::Null => json!({}),
        other => other.clone(),
    };
    event
        .validate_config(&event_config)
        .map_err(TenancyError::Invalid)?;
    methods::validate(ctx, method, &repo, &request.config)
        .await
        .map_err(TenancyError::Invalid)?;
    let title = request
        .title
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if title.is_some_and(|t| t.chars().count() > 255) {
        return Err(TenancyError::Invalid(
            "title must be at most 255 characters".into(),
        ));
    }
    let uuid = uuid::Uuid::new_v4().to_string();
    let config = request.config.to_string();
    let event_config = event_config.to_string();
    let new = NewNotification {
        uuid: &uuid,
        repository_id: repo.id,
        event: event.name(),
        method: method.name(),
        title,
        config: &config,
        event_config: &event_config,
    };
    db::operations::notifications::insert(ctx.db.pool(), &new, ctx.now_ms()).await?;
    ctx.audit.record(
        caller,
        AuditEvent::repo(
            "add_repo_notification",
            &repo.namespace,
            &repo.name,
            json!({
                "repo": repo.name, "namespace": repo.namespace, "notification_id": uuid,
                "event": event.name(), "method": method.name(),
            }),
        ),
        ctx.now_ms(),
    );
    let row = db::operations::notifications::get(ctx.db.pool(), repo.id, &uuid)
        .await?
        .ok_or_else(|| Internal::Other("the new notification vanished".into()))?;
    Ok(view(&row))
}

/// `DELETE /repository/{repo}/notification/{uuid}` (with its queued deliveries).
pub async fn delete(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
) -> Result<(), TenancyError> {
    let repo = administered(ctx, caller, namespace, repository).await?;
    let row = db::operations::notifications::get(ctx.db.pool(), repo.id, uuid)
        .await?
        .ok_or_else(|| no_such(namespace, repository, uuid))?;
    if !db::operations::notifications::delete(ctx.db.pool(), repo.id, uuid).await? {
        return Err(no_such(namespace, repository, uuid));
    }
    ctx.audit.record(
        caller,
        AuditEvent::repo(
            "delete_repo_notification",
            &repo.namespace,
            &repo.name,
            json!({
                "repo": repo.name, "namespace": repo.namespace, "notification_id": uuid,
                "event": row.event, "method": row.method,
            }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

/// `POST /repository/{repo}/notification/{uuid}`: sets `number_of_failures` back to 0, so
/// delivery (of queued events too) resumes.
pub async fn reset(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
) -> Result<(), TenancyError> {
    let repo = administered(ctx, caller, namespace, repository).await?;
    let row = db::operations::notifications::get(ctx.db.pool(), repo.id, uuid)
        .await?
        .ok_or_else(|| no_such(namespace, repository, uuid))?;
    db::operations::notifications::reset_failures(ctx.db.pool(), repo.id, uuid).await?;
    ctx.audit.record(
        caller,
        AuditEvent::repo(
            "reset_repo_notification",
            &repo.namespace,
            &repo.name,
            json!({
                "repo": repo.name, "namespace": repo.namespace, "notification_id": uuid,
                "event": row.event, "method": row.method,
            }),
        ),
        ctx.now_ms(),
    );
    Ok(())
}

/// `POST /repository/{repo}/notification/{uuid}/test`: queues the event's sample payload.
pub async fn test(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    uuid: &str,
) -> Result<(), TenancyError> {
    let repo = administered(ctx, caller, namespace, repository).await?;
    let row = db::operations::notifications::get(ctx.db.pool(), repo.id, uuid)
        .await?
        .ok_or_else(|| no_such(namespace, repository, uuid))?;
    let event = Event::parse(&row.event)
        .ok_or_else(|| Internal::Other(format!("stored event {:?} is unknown", row.event)))?;
    let data = payload(ctx, &repo.namespace, &repo.name, event.sample());
    db::operations::notifications::enqueue_one(
        ctx.db.pool(),
        row.id,
        &data.to_string(),
        performer(caller).as_deref(),
        ctx.now_ms(),
    )
    .await?;
    Ok(())
}

fn performer(caller: &Caller) -> Option<String> {
    caller.principal.account().map(|a| a.name)
}

/// The registry's public scheme and host, as notifications show them: `SERVER_HOSTNAME` and
/// `PREFERRED_URL_SCHEME`, or the listening address.
fn with_origin<T>(ctx: &Ctx, f: impl FnOnce(&Origin<'_>) -> T) -> T {
    let host = match &ctx.config.server_hostname {
        Some(h) => h.clone(),
        None => ctx.config.listen.to_string(),
    };
    let scheme = match &ctx.config.server_hostname {
        Some(_) => ctx.config.url_scheme.as_str(),
        None => "http",
    };
    f(&Origin {
        scheme,
        host: &host,
    })
}

/// An event's payload: the repository's fields and `extra`.
pub fn payload(ctx: &Ctx, namespace: &str, name: &str, extra: Value) -> Value {
    with_origin(ctx, |origin| {
        events::repository_data(origin, namespace, name, extra)
    })
}

/// Queues `event` for the repository's enabled notifications of it, in the caller's
/// transaction (a push's), so the event is raised exactly when the change commits. One
/// statement; nothing is read when the repository has no notification.
pub async fn raise_in(
    ctx: &Ctx,
    tx: &mut db::Tx,
    repo: &RepoRow,
    event: Event,
    extra: Value,
    performer: Option<&str>,
) -> Result<u64, Internal> {
    let data = payload(ctx, &repo.namespace, &repo.name, extra);
    Ok(db::operations::notifications::enqueue_event(
        &mut **tx,
        repo.id,
        event.name(),
        &data.to_string(),
        performer,
        ctx.now_ms(),
    )
    .await?)
}

/// [`raise_in`] on its own, for events raised after the change committed (quota crossings). A
/// failure is logged: the change itself stands.
pub async fn raise(ctx: &Ctx, namespace: &str, repository: &str, event: Event, extra: Value) {
    let result = async {
        let Some(repo) =
            db::content::repositories::get(ctx.db.pool(), namespace, repository).await?
        else {
            return Ok::<u64, Internal>(0);
        };
        let data = payload(ctx, namespace, repository, extra);
        Ok(db::operations::notifications::enqueue_event(
            ctx.db.pool(),
            repo.id,
            event.name(),
            &data.to_string(),
            None,
            ctx.now_ms(),
        )
        .await?)
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(event = event.name(), %namespace, %repository, error = %e, "queueing notifications failed");
    }
}

// ---- in-app notifications -----------------------------------------------------------------

fn signed_in(caller: &Caller) -> Result<i64, TenancyError> {
    caller
        .principal
        .user()
        .map(|u| u.id)
        .ok_or(TenancyError::Forbidden {
            anonymous: caller.principal.is_anonymous(),
        })
}

fn user_view(row: &db::operations::notifications::UserNotificationRow) -> api::Notification {
    api::Notification {
        id: row.uuid.clone(),
        organization: row.organization.clone(),
        kind: row.kind.clone(),
        created: views::format_date(row.created_ms),
        metadata: serde_json::from_str(&row.metadata).unwrap_or_else(|_| json!({})),
        dismissed: row.dismissed,
    }
}

/// The caller's in-app notifications that are not dismissed, newest first, at most `max` (the
/// API adds team invitations to them and pages the whole).
pub async fn user_notifications(
    ctx: &Ctx,
    caller: &Caller,
    max: i64,
) -> Result<Vec<api::Notification>, TenancyError> {
    let account = signed_in(caller)?;
    let rows =
        db::operations::notifications::user_notifications(ctx.db.pool(), account, max).await?;
    Ok(rows.iter().map(user_view).collect())
}

/// `PUT /user/notifications/{uuid}`: dismisses (or restores) one of the caller's notifications.
pub async fn dismiss(
    ctx: &Ctx,
    caller: &Caller,
    uuid: &str,
    dismissed: bool,
) -> Result<api::Notification, TenancyError> {
    let account = signed_in(caller)?;
    let mut tx = ctx.db.begin().await?;
    let row = db::operations::notifications::set_dismissed(&mut tx, account, uuid, dismissed)
        .await?
        .ok_or(TenancyError::NotFound)?;
    tx.commit().await?;
    Ok(user_view(&row))
}

// ---- e-mail addresses authorized per repository -------------------------------------------

fn email_view(repo: &RepoRow, email: &str, confirmed: bool) -> api::AuthorizedEmail {
    api::AuthorizedEmail {
        email: email.to_owned(),
        repository: repo.name.clone(),
        namespace: repo.namespace.clone(),
        confirmed,
    }
}

/// `GET /repository/{repo}/authorizedemail/{email}`: whether the address is confirmed.
pub async fn authorized_email(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    email: &str,
) -> Result<api::AuthorizedEmail, TenancyError> {
    let repo = administered(ctx, caller, namespace, repository).await?;
    let row = db::operations::notifications::authorized_email(ctx.db.pool(), repo.id, email)
        .await?
        .ok_or(TenancyError::NotFound)?;
    Ok(email_view(&repo, &row.email, row.confirmed))
}

/// `POST /repository/{repo}/authorizedemail/{email}`: mails the address a confirmation link
/// (again, while it is not confirmed), as Quay does before e-mail notifications go there.
pub async fn authorize_email(
    ctx: &Ctx,
    caller: &Caller,
    namespace: &str,
    repository: &str,
    email: &str,
) -> Result<api::AuthorizedEmail, TenancyError> {
    let repo = administered(ctx, caller, namespace, repository).await?;
    let email = email.trim();
    if !valid_email(email) {
        return Err(TenancyError::Invalid("Invalid e-mail address".into()));
    }
    let code = crate::service::random_token(40);
    db::operations::notifications::insert_authorized_email(
        ctx.db.pool(),
        repo.id,
        email,
        &code,
        ctx.now_ms(),
    )
    .await?;
    let row = db::operations::notifications::authorized_email(ctx.db.pool(), repo.id, email)
        .await?
        .ok_or_else(|| Internal::Other("the authorized e-mail vanished".into()))?;
    if !row.confirmed {
        let link = with_origin(ctx, |o| {
            format!("{}://{}/authrepoemail?code={}", o.scheme, o.host, row.code)
        });
        mail::send_repo_email_confirmation(ctx, email, &repo.namespace, &repo.name, &link);
    }
    Ok(email_view(&repo, &row.email, row.confirmed))
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
}

/// `GET /authrepoemail?code=...` (the link of the confirmation mail): confirms the address for
/// the repository. Returns `(namespace/repository, email)`.
pub async fn confirm_email(ctx: &Ctx, code: &str) -> Result<(String, String), TenancyError> {
    if code.is_empty() {
        return Err(TenancyError::NotFound);
    }
    let mut tx = ctx.db.begin().await?;
    let row = db::operations::notifications::confirm_email(&mut tx, code)
        .await?
        .ok_or(TenancyError::NotFound)?;
    tx.commit().await?;
    let repo = db::content::repositories::by_id(ctx.db.pool(), row.repository_id)
        .await?
        .ok_or(TenancyError::NotFound)?;
    Ok((format!("{}/{}", repo.namespace, repo.name), row.email))
}
