//! Service keys: the public keys, by key id, that verify JWTs of a service (Quay's `servicekey`
//! with its approval in the same row). The keys of service `quay` are this registry's own.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec, Tx};

#[derive(Clone, Debug)]
pub struct ServiceKeyRow {
    pub id: i64,
    pub kid: String,
    pub service: String,
    pub name: String,
    pub jwk: String,
    pub metadata: String,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub rotation_duration_s: Option<i64>,
    pub origin: String,
    pub private_sealed: Option<String>,
    pub approval_type: Option<String>,
    pub approver_id: Option<i64>,
    pub approver: Option<String>,
    pub approved_ms: Option<i64>,
    pub approval_notes: Option<String>,
}

/// A new key.
pub struct NewServiceKey<'a> {
    pub kid: &'a str,
    pub service: &'a str,
    pub name: &'a str,
    pub jwk: &'a str,
    pub metadata: &'a str,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub origin: &'a str,
    pub private_sealed: Option<&'a str>,
}

const SELECT: &str = "SELECT k.id, k.kid, k.service, k.name, k.jwk, k.metadata, k.created_ms, \
    k.expires_ms, k.rotation_duration_s, k.origin, k.private_sealed, k.approval_type, \
    k.approver_id, n.name AS approver, k.approved_ms, k.approval_notes \
    FROM service_key k LEFT JOIN namespace n ON n.id = k.approver_id";

fn from_row(r: &AnyRow) -> Result<ServiceKeyRow, sqlx::Error> {
    Ok(ServiceKeyRow {
        id: r.try_get("id")?,
        kid: r.try_get("kid")?,
        service: r.try_get("service")?,
        name: r.try_get("name")?,
        jwk: r.try_get("jwk")?,
        metadata: r.try_get("metadata")?,
        created_ms: r.try_get("created_ms")?,
        expires_ms: r.try_get("expires_ms")?,
        rotation_duration_s: r.try_get("rotation_duration_s")?,
        origin: r.try_get("origin")?,
        private_sealed: r.try_get("private_sealed")?,
        approval_type: r.try_get("approval_type")?,
        approver_id: r.try_get("approver_id")?,
        approver: r.try_get("approver")?,
        approved_ms: r.try_get("approved_ms")?,
        approval_notes: r.try_get("approval_notes")?,
    })
}

/// Inserts a key; a key id that exists already is a unique violation.
pub async fn insert<'c>(ex: impl Exec<'c>, new: &NewServiceKey<'_>) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO service_key (kid, service, name, jwk, metadata, created_ms, expires_ms, origin, private_sealed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new.kid)
    .bind(new.service)
    .bind(new.name)
    .bind(new.jwk)
    .bind(new.metadata)
    .bind(new.created_ms)
    .bind(new.expires_ms)
    .bind(new.origin)
    .bind(new.private_sealed)
    .execute(ex)
    .await?;
    Ok(())
}

/// Registers the key derived from the installation secret, once in the installation's life:
/// inserts it (approved automatically) unless it was registered before, even if it has since
/// been deleted (the instance setting `registered_name` remembers). Returns whether it was
/// inserted now. Run in a transaction, so the mark and the key are written together.
pub async fn register_once(
    tx: &mut Tx,
    registered_name: &str,
    new: &NewServiceKey<'_>,
) -> DbResult<bool> {
    let marked = sqlx::query(
        "INSERT INTO instance_setting (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(registered_name)
    .bind(new.kid)
    .execute(&mut **tx)
    .await?;
    if marked.rows_affected() == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO service_key (kid, service, name, jwk, metadata, created_ms, expires_ms, origin, \
         approval_type, approved_ms, approval_notes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'Automatic', $6, '') ON CONFLICT (kid) DO NOTHING",
    )
    .bind(new.kid)
    .bind(new.service)
    .bind(new.name)
    .bind(new.jwk)
    .bind(new.metadata)
    .bind(new.created_ms)
    .bind(new.expires_ms)
    .bind(new.origin)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}

/// Every key, oldest first.
pub async fn all<'c>(ex: impl Exec<'c>) -> DbResult<Vec<ServiceKeyRow>> {
    let rows = sqlx::query(&format!("{SELECT} ORDER BY k.created_ms, k.id"))
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

/// The keys of `service`, oldest first.
pub async fn of_service<'c>(ex: impl Exec<'c>, service: &str) -> DbResult<Vec<ServiceKeyRow>> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE k.service = $1 ORDER BY k.created_ms, k.id"
    ))
    .bind(service)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

pub async fn by_kid<'c>(ex: impl Exec<'c>, kid: &str) -> DbResult<Option<ServiceKeyRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE k.kid = $1"))
        .bind(kid)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Sets the expiration (`None`: never); returns whether the key exists.
pub async fn set_expiration<'c>(
    ex: impl Exec<'c>,
    kid: &str,
    expires_ms: Option<i64>,
) -> DbResult<bool> {
    let done = sqlx::query("UPDATE service_key SET expires_ms = $2 WHERE kid = $1")
        .bind(kid)
        .bind(expires_ms)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Sets the friendly name and, when given, the metadata.
pub async fn update<'c>(
    ex: impl Exec<'c>,
    kid: &str,
    name: Option<&str>,
    metadata: Option<&str>,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE service_key SET name = COALESCE($2, name), metadata = COALESCE($3, metadata) WHERE kid = $1",
    )
    .bind(kid)
    .bind(name)
    .bind(metadata)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Approves an unapproved key; returns whether it was approved now (false: already approved
/// or missing).
pub async fn approve<'c>(
    ex: impl Exec<'c>,
    kid: &str,
    approval_type: &str,
    approver_id: Option<i64>,
    notes: &str,
    now_ms: i64,
) -> DbResult<bool> {
    let done = sqlx::query(
        "UPDATE service_key SET approval_type = $2, approver_id = $3, approval_notes = $4, approved_ms = $5 \
         WHERE kid = $1 AND approval_type IS NULL",
    )
    .bind(kid)
    .bind(approval_type)
    .bind(approver_id)
    .bind(notes)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes a key; returns the deleted row.
pub async fn delete<'c, E: Exec<'c> + Copy>(ex: E, kid: &str) -> DbResult<Option<ServiceKeyRow>> {
    let Some(row) = by_kid(ex, kid).await? else {
        return Ok(None);
    };
    let done = sqlx::query("DELETE FROM service_key WHERE kid = $1")
        .bind(kid)
        .execute(ex)
        .await?;
    Ok((done.rows_affected() > 0).then_some(row))
}
