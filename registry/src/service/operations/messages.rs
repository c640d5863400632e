//! Global messages: notices (maintenance windows, outages) a superuser shows to every user.
//!
//! Rules, as Quay's: anyone may list them (no sign-in needed); only superusers create and
//! delete them. A message has `content`, a `media_type` (`text/markdown` or `text/plain`) and a
//! `severity` (`info`, `warning` or `error`); anything else is refused with Quay's validation
//! error. Deleting a message that does not exist succeeds (nothing to do), as in Quay.

use quayside_client as api;

use crate::db::operations::messages::{self as db_messages, MessageRow};
use crate::service::access::authz;
use crate::service::operations::audit::Caller;
use crate::service::{Ctx, TenancyError};

pub const MEDIA_TYPES: [&str; 2] = ["text/markdown", "text/plain"];
pub const SEVERITIES: [&str; 3] = ["info", "warning", "error"];

/// `GET /messages`.
pub async fn list(ctx: &Ctx) -> Result<api::GlobalMessages, TenancyError> {
    let rows = db_messages::list(ctx.db.pool()).await?;
    Ok(api::GlobalMessages {
        messages: rows
            .into_iter()
            .map(|m| api::GlobalMessage {
                uuid: m.uuid,
                content: m.content,
                severity: m.severity,
                media_type: m.media_type,
            })
            .collect(),
    })
}

/// Checks a new message as Quay's schema does; the error names the property.
pub fn validate(message: &api::NewGlobalMessage) -> Result<(), String> {
    if !MEDIA_TYPES.contains(&message.media_type.as_str()) {
        return Err(format!(
            "'{}' is not one of ['text/markdown', 'text/plain']",
            message.media_type
        ));
    }
    if !SEVERITIES.contains(&message.severity.as_str()) {
        return Err(format!(
            "'{}' is not one of ['info', 'warning', 'error']",
            message.severity
        ));
    }
    Ok(())
}

/// Reads a `POST /messages` body as Quay's schema does, with its error messages.
pub fn parse_request(body: &serde_json::Value) -> Result<api::NewGlobalMessage, String> {
    let message = body
        .get("message")
        .ok_or("'message' is a required property")?;
    if !message.is_object() {
        return Err(format!("{message} is not of type 'object'"));
    }
    let field = |name: &str| -> Result<String, String> {
        match message.get(name) {
            None => Err(format!("'{name}' is a required property")),
            Some(serde_json::Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("{other} is not of type 'string'")),
        }
    };
    let parsed = api::NewGlobalMessage {
        content: field("content")?,
        media_type: field("media_type")?,
        severity: field("severity")?,
    };
    validate(&parsed)?;
    Ok(parsed)
}

/// `POST /messages`.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    message: &api::NewGlobalMessage,
) -> Result<(), TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    validate(message).map_err(TenancyError::Invalid)?;
    db_messages::insert(
        ctx.db.pool(),
        &MessageRow {
            uuid: uuid::Uuid::new_v4().to_string(),
            content: message.content.clone(),
            media_type: message.media_type.clone(),
            severity: message.severity.clone(),
        },
        ctx.now_ms(),
    )
    .await?;
    Ok(())
}

/// `DELETE /message/{uuid}`.
pub async fn delete(ctx: &Ctx, caller: &Caller, uuid: &str) -> Result<(), TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    db_messages::delete(ctx.db.pool(), uuid).await?;
    Ok(())
}
