//! Service keys (`/superuser/keys...`, `/superuser/approvedkeys/{kid}`): superusers list,
//! create, approve, extend, rename and delete the public keys that verify the JWTs of a service.
//!
//! Rule: only superusers manage keys, and every change is in the audit log with Quay's kinds
//! (`service_key_create`, `service_key_approve`, `service_key_extend`, `service_key_modify`,
//! `service_key_delete`). A key created here is approved at once (as Quay's superuser panel
//! does) and its private key is answered once. For service `quay` (the registry's own,
//! [`jwt::INSTANCE_SERVICE`]) the private key is also kept, sealed with the installation secret,
//! and the registry signs new tokens with it: creating one rotates the signing key. Changes
//! here invalidate this replica's cached key set at once; others see them within
//! [`jwt::RING_TTL_MS`].

use quayside_client as api;
use serde_json::{Map, Value, json};

use crate::db;
use crate::service::access::authz;
use crate::service::access::jwt;
use crate::service::operations::audit::{Caller, Event};
use crate::service::{Ctx, TenancyError, views};

/// Quay's approval type of keys approved through the API.
const APPROVAL_SUPERUSER: &str = "Super User API";

/// A date as Flask's `jsonify` writes a `datetime`: `Thu, 03 Dec 2026 12:00:00 GMT`.
fn http_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

async fn view(
    ctx: &Ctx,
    row: &db::operations::service_keys::ServiceKeyRow,
) -> Result<api::ServiceKey, TenancyError> {
    let approval = match &row.approval_type {
        None => None,
        Some(kind) => {
            let approver = match row.approver_id {
                Some(id) => db::tenancy::namespaces::by_id(ctx.db.pool(), id)
                    .await?
                    .map(|n| api::ServiceKeyApprover {
                        kind: "user".into(),
                        avatar: views::avatar(&n.name, n.email.as_deref(), "user"),
                        super_user: n.superuser || ctx.is_config_superuser(&n.name),
                        name: n.name.clone(),
                        username: n.name,
                        email: n.email,
                        verified: true,
                        global_readonly_super_user: false,
                        enabled: n.enabled,
                    }),
                None => None,
            };
            Some(api::ServiceKeyApproval {
                approver,
                approval_type: kind.clone(),
                approved_date: row.approved_ms.map(http_date),
                notes: row.approval_notes.clone(),
            })
        }
    };
    Ok(api::ServiceKey {
        name: row.name.clone(),
        kid: row.kid.clone(),
        service: row.service.clone(),
        jwk: serde_json::from_str(&row.jwk).unwrap_or(Value::Null),
        metadata: serde_json::from_str(&row.metadata).unwrap_or_else(|_| json!({})),
        created_date: http_date(row.created_ms),
        expiration_date: row.expires_ms.map(http_date),
        rotation_duration: row.rotation_duration_s,
        approval,
    })
}

fn valid_name(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_whitespace() || c.is_ascii_alphanumeric() || "-_:/".contains(c))
}

fn valid_service(service: &str) -> bool {
    !service.is_empty()
        && service
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `expiration` of a body: absent, `null` (or `""` on update): never; a unix timestamp in the
/// future. `Err` carries Quay's message.
fn expiration(value: &Value, now_ms: i64, past: &str) -> Result<Option<i64>, TenancyError> {
    let seconds = match value {
        Value::Null => return Ok(None),
        Value::String(s) if s.is_empty() => return Ok(None),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    }
    .filter(|s| s.is_finite())
    .ok_or_else(|| {
        TenancyError::Invalid(format!("Invalid expiration date: {value} is not a number"))
    })?;
    let ms = (seconds * 1000.0) as i64;
    if ms <= now_ms {
        return Err(TenancyError::Invalid(past.into()));
    }
    Ok(Some(ms))
}

fn string_field<'a>(
    body: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, TenancyError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(TenancyError::Invalid(format!(
            "{other} is not of type 'string'"
        ))),
    }
}

fn metadata_field(body: &Map<String, Value>) -> Result<Option<Map<String, Value>>, TenancyError> {
    match body.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(TenancyError::Invalid(format!(
            "{other} is not of type 'object'"
        ))),
    }
}

fn record(ctx: &Ctx, caller: &Caller, kind: &'static str, metadata: Value) {
    ctx.audit.record(
        caller,
        Event {
            kind,
            namespace: None,
            repository: None,
            metadata,
        },
        ctx.now_ms(),
    );
}

/// `GET /superuser/keys`.
pub async fn list(ctx: &Ctx, caller: &Caller) -> Result<api::ServiceKeys, TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let mut keys = Vec::new();
    for row in db::operations::service_keys::all(ctx.db.pool()).await? {
        keys.push(view(ctx, &row).await?);
    }
    Ok(api::ServiceKeys { keys })
}

/// `GET /superuser/keys/{kid}`.
pub async fn get(ctx: &Ctx, caller: &Caller, kid: &str) -> Result<api::ServiceKey, TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let row = db::operations::service_keys::by_kid(ctx.db.pool(), kid)
        .await?
        .ok_or(TenancyError::NotFound)?;
    view(ctx, &row).await
}

/// `POST /superuser/keys`: generates a key pair, approves it and answers the private key once.
pub async fn create(
    ctx: &Ctx,
    caller: &Caller,
    body: &Map<String, Value>,
) -> Result<api::CreatedServiceKey, TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let user = caller
        .principal
        .user()
        .cloned()
        .ok_or(TenancyError::Forbidden { anonymous: true })?;
    let service = string_field(body, "service")?
        .ok_or_else(|| TenancyError::Invalid("'service' is a required property".into()))?
        .to_owned();
    let Some(expiration_value) = body.get("expiration") else {
        return Err(TenancyError::Invalid(
            "'expiration' is a required property".into(),
        ));
    };
    let name = string_field(body, "name")?.unwrap_or_default().to_owned();
    if !valid_name(&name) {
        return Err(TenancyError::Invalid(format!(
            "Invalid service key friendly name: {name}"
        )));
    }
    if !valid_service(&service) {
        return Err(TenancyError::Invalid(format!(
            "Invalid service name: {service}"
        )));
    }
    let notes = string_field(body, "notes")?.unwrap_or_default().to_owned();
    let now = ctx.now_ms();
    let expires_ms = expiration(
        expiration_value,
        now,
        "Expiration date cannot be in the past",
    )?;
    let mut metadata = metadata_field(body)?.unwrap_or_default();
    metadata.insert("created_by".into(), json!("Quay Superuser Panel"));
    metadata.insert("creator".into(), json!(user.name));
    metadata.insert(
        "ip".into(),
        json!(caller.ip.map(|ip| ip.to_string()).unwrap_or_default()),
    );
    let key = ctx
        .jwt
        .generate()
        .map_err(|e| TenancyError::Internal(crate::service::Internal::Other(e.to_string())))?;
    let ours = service == jwt::INSTANCE_SERVICE;
    let jwk = key.jwk.to_string();
    let metadata_text = Value::Object(metadata).to_string();
    let mut tx = ctx.db.begin().await?;
    db::operations::service_keys::insert(
        &mut *tx,
        &db::operations::service_keys::NewServiceKey {
            kid: &key.kid,
            service: &service,
            name: &name,
            jwk: &jwk,
            metadata: &metadata_text,
            created_ms: now,
            expires_ms,
            origin: jwt::ORIGIN_GENERATED,
            private_sealed: ours.then_some(key.private_sealed.as_str()),
        },
    )
    .await?;
    db::operations::service_keys::approve(
        &mut *tx,
        &key.kid,
        APPROVAL_SUPERUSER,
        Some(user.id),
        &notes,
        now,
    )
    .await?;
    tx.commit().await?;
    ctx.jwt.invalidate();
    let log = json!({
        "kid": key.kid, "preshared": true, "service": service, "name": name,
        "expiration_date": expires_ms.map(http_date), "auto_approved": true,
    });
    record(ctx, caller, "service_key_create", log.clone());
    record(ctx, caller, "service_key_approve", log);
    Ok(api::CreatedServiceKey {
        kid: key.kid,
        name,
        service,
        public_key: key.public_pem,
        private_key: key.private_pem,
    })
}

/// `PUT /superuser/keys/{kid}`: `expiration` (a future unix time, or `null` for never),
/// `name`, `metadata` (merged into the key's).
pub async fn update(
    ctx: &Ctx,
    caller: &Caller,
    kid: &str,
    body: &Map<String, Value>,
) -> Result<api::ServiceKey, TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let row = db::operations::service_keys::by_kid(ctx.db.pool(), kid)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let name = string_field(body, "name")?;
    let metadata = metadata_field(body)?;
    if let Some(name) = name
        && !valid_name(name)
    {
        return Err(TenancyError::Invalid(format!(
            "Invalid service key friendly name: {name}"
        )));
    }
    let now = ctx.now_ms();
    let mut log = json!({
        "kid": row.kid, "service": row.service, "name": name.unwrap_or(&row.name),
        "expiration_date": row.expires_ms.map(http_date),
    });
    if let Some(value) = body.get("expiration") {
        let expires_ms = expiration(value, now, "Cannot have an expiration date in the past")?;
        db::operations::service_keys::set_expiration(ctx.db.pool(), kid, expires_ms).await?;
        log["old_expiration_date"] = json!(row.expires_ms.map(http_date));
        log["expiration_date"] = json!(expires_ms.map(http_date));
        record(ctx, caller, "service_key_extend", log.clone());
    }
    if body.contains_key("name") || body.contains_key("metadata") {
        let merged = metadata.map(|m| {
            let mut current: Map<String, Value> =
                serde_json::from_str(&row.metadata).unwrap_or_default();
            current.extend(m);
            Value::Object(current).to_string()
        });
        db::operations::service_keys::update(ctx.db.pool(), kid, name, merged.as_deref()).await?;
        record(ctx, caller, "service_key_modify", log);
    }
    ctx.jwt.invalidate();
    let row = db::operations::service_keys::by_kid(ctx.db.pool(), kid)
        .await?
        .ok_or(TenancyError::NotFound)?;
    view(ctx, &row).await
}

/// `DELETE /superuser/keys/{kid}`: the key stops verifying at once on this replica.
pub async fn delete(ctx: &Ctx, caller: &Caller, kid: &str) -> Result<(), TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let row = db::operations::service_keys::delete(ctx.db.pool(), kid)
        .await?
        .ok_or(TenancyError::NotFound)?;
    ctx.jwt.invalidate();
    record(
        ctx,
        caller,
        "service_key_delete",
        json!({
            "kid": kid, "service": row.service, "name": row.name,
            "created_date": http_date(row.created_ms),
            "expiration_date": row.expires_ms.map(http_date),
        }),
    );
    Ok(())
}

/// `POST /superuser/approvedkeys/{kid}` with optional `notes`: approves a key (an approved key
/// stays as it is).
pub async fn approve(
    ctx: &Ctx,
    caller: &Caller,
    kid: &str,
    body: &Map<String, Value>,
) -> Result<(), TenancyError> {
    authz::require_superuser(ctx, &caller.principal).await?;
    let user = caller.principal.user().cloned();
    let notes = string_field(body, "notes")?.unwrap_or_default();
    let row = db::operations::service_keys::by_kid(ctx.db.pool(), kid)
        .await?
        .ok_or(TenancyError::NotFound)?;
    let approved = db::operations::service_keys::approve(
        ctx.db.pool(),
        kid,
        APPROVAL_SUPERUSER,
        user.map(|u| u.id),
        notes,
        ctx.now_ms(),
    )
    .await?;
    if approved {
        ctx.jwt.invalidate();
        record(
            ctx,
            caller,
            "service_key_approve",
            json!({
                "kid": kid, "service": row.service, "name": row.name,
                "expiration_date": row.expires_ms.map(http_date),
            }),
        );
    }
    Ok(())
}
