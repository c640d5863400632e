//! OAuth applications of organizations.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::{DbResult, Exec};

#[derive(Clone, Debug)]
pub struct AppRow {
    pub id: i64,
    pub org_id: i64,
    pub client_id: String,
    pub client_secret_sealed: String,
    pub name: String,
    pub description: String,
    pub application_uri: String,
    pub redirect_uri: String,
    pub avatar_email: Option<String>,
}

const SELECT: &str = "SELECT id, org_id, client_id, client_secret_sealed, name, description, \
    application_uri, redirect_uri, avatar_email FROM oauth_application";

fn from_row(r: &AnyRow) -> Result<AppRow, sqlx::Error> {
    Ok(AppRow {
        id: r.try_get("id")?,
        org_id: r.try_get("org_id")?,
        client_id: r.try_get("client_id")?,
        client_secret_sealed: r.try_get("client_secret_sealed")?,
        name: r.try_get("name")?,
        description: r.try_get("description")?,
        application_uri: r.try_get("application_uri")?,
        redirect_uri: r.try_get("redirect_uri")?,
        avatar_email: r.try_get("avatar_email")?,
    })
}

pub struct AppFields<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub application_uri: &'a str,
    pub redirect_uri: &'a str,
    pub avatar_email: Option<&'a str>,
}

pub async fn insert<'c>(
    ex: impl Exec<'c>,
    org_id: i64,
    client_id: &str,
    secret_sealed: &str,
    f: &AppFields<'_>,
    now_ms: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO oauth_application (org_id, client_id, client_secret_sealed, name, description, application_uri, redirect_uri, avatar_email, created_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(org_id)
    .bind(client_id)
    .bind(secret_sealed)
    .bind(f.name)
    .bind(f.description)
    .bind(f.application_uri)
    .bind(f.redirect_uri)
    .bind(f.avatar_email)
    .bind(now_ms)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn list<'c>(ex: impl Exec<'c>, org_id: i64) -> DbResult<Vec<AppRow>> {
    let rows = sqlx::query(&format!("{SELECT} WHERE org_id = $1 ORDER BY id"))
        .bind(org_id)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|r| Ok(from_row(r)?)).collect()
}

pub async fn get<'c>(ex: impl Exec<'c>, org_id: i64, client_id: &str) -> DbResult<Option<AppRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE org_id = $1 AND client_id = $2"))
        .bind(org_id)
        .bind(client_id)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// The application with this client id, whatever its organization.
pub async fn by_client_id<'c>(ex: impl Exec<'c>, client_id: &str) -> DbResult<Option<AppRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE client_id = $1"))
        .bind(client_id)
        .fetch_optional(ex)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

pub async fn update<'c>(ex: impl Exec<'c>, id: i64, f: &AppFields<'_>) -> DbResult<()> {
    sqlx::query(
        "UPDATE oauth_application SET name = $1, description = $2, application_uri = $3, redirect_uri = $4, avatar_email = $5 WHERE id = $6",
    )
    .bind(f.name)
    .bind(f.description)
    .bind(f.application_uri)
    .bind(f.redirect_uri)
    .bind(f.avatar_email)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn set_secret<'c>(ex: impl Exec<'c>, id: i64, secret_sealed: &str) -> DbResult<()> {
    sqlx::query("UPDATE oauth_application SET client_secret_sealed = $1 WHERE id = $2")
        .bind(secret_sealed)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn delete<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<()> {
    sqlx::query("DELETE FROM oauth_application WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

pub async fn client_id_of<'c>(ex: impl Exec<'c>, id: i64) -> DbResult<Option<String>> {
    let row = sqlx::query("SELECT client_id FROM oauth_application WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await?;
    Ok(row.map(|r| r.try_get("client_id")).transpose()?)
}
